//! The plan: YAML text → a located tree → a validated `Config` (every error at once, with
//! diagnostics), deadline phrases, and the pure planner that turns (config, calendar, now,
//! what the ledger knows) into nudges. No IO beyond reading the config file, never the clock;
//! nothing here knows about email, SQLite or the daemon.

pub mod config;
pub mod deadline;
pub mod diag;
pub mod ics;
pub mod planner;
pub mod yaml;
mod yaml_events;
pub use yaml_events::pipeline_loads;
