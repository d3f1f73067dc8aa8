//! nhacviec: email reminders for the tasks of a Vietnamese administrative plan.
//!
//! Codemap, one folder per domain, lower layers first (a folder may use the ones above it in
//! this list, never one below):
//!
//! - [`i18n`]: the two languages (Vietnamese first) every human-facing message is written in.
//! - [`calendar`]: the Vietnamese lunar calendar, the days off and the working-day arithmetic.
//! - [`plan`]: the YAML plan → a validated `Config`; deadline phrases; the pure planner; the
//!   iCalendar feed of its deadlines.
//! - [`import`]: a plan's document (.docx, or text from a PDF) → a config for review.
//! - [`delivery`]: emails from nudges, transports, the delivery ledger, one sweep.
//! - [`web`]: the status pages, `/metrics` and the emails' confirmation links (axum).
//! - [`service`]: the daemon loop, signals, systemd, logging, the clock.
//! - [`cli`]: the commands and their renderings (tables, CSV, JSON, iCalendar).

pub mod calendar;
pub mod cli;
pub mod delivery;
pub mod i18n;
pub mod import;
pub mod plan;
pub mod service;
pub mod web;
