//! nhacviec: email reminders for the tasks of a Vietnamese administrative plan.

pub mod calendar;
pub mod calendar_report;
pub mod holidays;
pub mod lunar;
