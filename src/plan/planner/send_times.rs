//! When a nudge of a given day is sent: the first sweep inside the sending window.
#![deny(clippy::arithmetic_side_effects)]

use crate::plan::config::Config;
use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Tz;
use std::collections::HashMap;

/// When the sweeps fall on a given day: the first sweep inside the sending window.
/// Cached per day: by offset from `first` inside `first..=last`, in a map outside.
pub(super) struct SendTimes<'a> {
    cfg: &'a Config,
    first: NaiveDate,
    days: Vec<Option<DateTime<Tz>>>,
    cache: HashMap<NaiveDate, DateTime<Tz>>,
}

impl<'a> SendTimes<'a> {
    pub(super) fn new(cfg: &'a Config, first: NaiveDate, last: NaiveDate) -> Self {
        let len = usize::try_from(last.signed_duration_since(first).num_days())
            .map_or(0, |n| n.saturating_add(1));
        Self {
            cfg,
            first,
            days: vec![None; len],
            cache: HashMap::new(),
        }
    }

    pub(super) fn at(&mut self, day: NaiveDate) -> DateTime<Tz> {
        let slot = usize::try_from(day.signed_duration_since(self.first).num_days())
            .ok()
            .filter(|i| *i < self.days.len());
        if let Some(i) = slot
            && let Some(t) = self.days[i]
        {
            return t;
        }
        if let Some(t) = self.cache.get(&day) {
            return *t;
        }
        let s = &self.cfg.schedule;
        let tz = s.timezone;
        // A time in a DST gap (02:30 on the spring-forward day in Europe/Berlin) does not
        // exist: it moves to the first local time after the gap, minute by minute (gaps are
        // whole minutes, at most a few hours); the UTC reading is the last resort.
        let local = |t: chrono::NaiveTime| {
            let at = day.and_time(t);
            (0..=24 * 60)
                .filter_map(|m| at.checked_add_signed(chrono::TimeDelta::minutes(m)))
                .find_map(|l| tz.from_local_datetime(&l).earliest())
                .unwrap_or_else(|| tz.from_utc_datetime(&at))
        };
        let start = local(s.window_start);
        let end = local(s.window_end);
        let first = s
            .sweeps
            .iter()
            .filter_map(|sw| sw.cron.find_next_occurrence(&start, true).ok())
            .filter(|t| *t <= end)
            .min()
            .unwrap_or(start);
        match slot {
            Some(i) => self.days[i] = Some(first),
            None => {
                self.cache.insert(day, first);
            }
        }
        first
    }
}
