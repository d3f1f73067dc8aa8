//! A ledger that lives only in memory: `simulate` replays a period against it and throws
//! it away.

use super::{Ledger, LedgerError};
use std::path::{Path, PathBuf};

impl Ledger {
    /// An empty ledger in memory, with the current schema. Nothing is read or written on
    /// disk; its errors name it `:memory:`.
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        // An empty path is never a file: the scratch copy starts empty.
        let mut ledger = Ledger::scratch_copy(Path::new(""))?;
        ledger.path = PathBuf::from(":memory:");
        Ok(ledger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ledger::{LogFilter, NewDelivery};
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn starts_empty_and_keeps_what_is_written() {
        let mut l = Ledger::in_memory().unwrap();
        assert!(l.query(&LogFilter::default()).unwrap().is_empty());
        let now = Utc.with_ymd_and_hms(2024, 1, 22, 1, 0, 0).unwrap();
        let item = NewDelivery {
            key: crate::delivery::ledger::DeliveryKey {
                task: "T.1".into(),
                occurrence: NaiveDate::from_ymd_opt(2024, 1, 30).unwrap(),
                office: "a".into(),
                kind: "on-day".into(),
            },
            role: "lead".into(),
            due_at: now,
            late: false,
        };
        assert_eq!(l.skip(&[item], "test", now).unwrap(), 1);
        assert_eq!(l.query(&LogFilter::default()).unwrap().len(), 1);
        assert_eq!(l.path(), Path::new(":memory:"));
    }
}
