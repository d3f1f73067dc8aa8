//! nhacviec: email reminders for the tasks of a Vietnamese administrative plan.

pub mod calendar;
pub mod config;
pub mod deadline;
pub mod diag;
pub mod email;
pub mod output;
pub mod planner;
pub mod transport;
pub mod yaml;
