//! nhacviec: email reminders for the tasks of a Vietnamese administrative plan.

pub mod calendar;
pub mod calendar_report;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod deadline;
pub mod diag;
pub mod email;
pub mod holidays;
pub mod ledger;
pub mod log_report;
pub mod logging;
pub mod lunar;
pub mod output;
pub mod planner;
pub mod sweep;
pub mod transport;
pub mod yaml;
