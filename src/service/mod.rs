//! The service: the daemon loop (cron sweeps, retries, signals, reloads, systemd
//! notifications), the stop signal, logging, the change summary for reloads, and the only
//! reader of the clock. It drives `delivery`; it does no planning or rendering of its own.

pub mod changes;
pub mod clock;
pub mod cron;
pub mod daemon;
pub mod event_loop;
pub mod logging;
pub mod rest;
pub mod shutdown;
