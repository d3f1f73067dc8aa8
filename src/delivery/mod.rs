//! Delivery: nudges grouped into Vietnamese emails (templates), the SMTP and outbox
//! transports, the SQLite delivery ledger, and one sweep (plan − ledger → send → record):
//! `reconcile` decides it without IO, `sweep` carries it out, `preview` is its dry run.
//! It uses `plan` and `calendar`; it never reads the clock or handles signals (`service` does).

pub mod email;
pub mod ledger;
pub mod preview;
pub mod reconcile;
pub mod simulate;
pub mod sweep;
pub mod transport;
