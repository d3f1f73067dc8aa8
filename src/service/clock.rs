//! The one place that reads the wall clock.
//!
//! Planning and the ledger take `now` as a parameter; the daemon asks this clock. With
//! `--at` the clock starts at that moment and then runs at the real pace, so retries and
//! timeouts still take real time while the plan is computed "as of" another day.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Added to the real time: zero in normal operation.
    offset: Duration,
}

impl Clock {
    pub fn real() -> Self {
        Self {
            offset: Duration::zero(),
        }
    }

    /// A clock that reads `start` now and runs on from there.
    #[allow(clippy::disallowed_methods)]
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            offset: start - Utc::now(),
        }
    }

    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    /// Whether this clock shows the real time.
    pub fn is_real(&self) -> bool {
        self.offset.is_zero()
    }
}
