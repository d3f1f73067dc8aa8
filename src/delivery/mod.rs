//! Delivery: nudges grouped into Vietnamese emails (templates), the SMTP and outbox
//! transports, the SQLite delivery ledger, and one sweep (plan − ledger → send → record).
//! It uses `plan` and `calendar`; it never reads the clock or handles signals (`service` does).

pub mod email;
pub mod ledger;
pub mod sweep;
pub mod transport;
