//! Everything the commands print: the plan, the log, the calendar and the check summary, as
//! text tables, CSV, JSON or iCalendar.

pub mod calendar;
pub mod log;
pub mod table;

pub use table::{Format, Table};
