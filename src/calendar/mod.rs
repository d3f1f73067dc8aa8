//! The calendar: the Vietnamese lunar calendar, the statutory and official days off, and the
//! working-day calendar the planner asks. Pure data and arithmetic: no config, no IO, no clock.

pub mod holidays;
pub mod lunar;
pub mod workdays;
