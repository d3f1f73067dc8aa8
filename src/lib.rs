//! nhacviec: email reminders for the tasks of a Vietnamese administrative plan.

pub mod calendar;
pub mod ledger;
pub mod log_report;
pub mod output;
