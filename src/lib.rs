//! nhacviec: email reminders for the tasks of a Vietnamese administrative plan.

pub mod calendar;
pub mod calendar_report;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod diag;
pub mod holidays;
pub mod ledger;
pub mod log_report;
pub mod lunar;
pub mod output;
pub mod planner;
pub mod yaml;
pub mod email;
pub mod transport;
