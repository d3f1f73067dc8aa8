//! A test that cannot set up what it tests (mount a tmpfs, make a file unwritable, find a
//! tool) must not pass silently. Under CI (`CI=true`) it fails; elsewhere it prints
//! `skipped: <reason>` and, when `NHACVIEC_SKIPPED_LOG` names a file, appends a line to it,
//! so that `scripts/test` can end with the count of skipped tests.
#![allow(dead_code)]

use std::io::Write as _;

/// Fails the test under CI; elsewhere records the skip. The caller returns right after.
pub fn skip_or_fail(reason: &str) {
    let test = format!(
        "{}::{}",
        env!("CARGO_CRATE_NAME"),
        std::thread::current().name().unwrap_or("?")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} cannot run here, and CI must run it: {reason}");
    }
    println!("skipped: {reason}");
    if let Some(log) = std::env::var_os("NHACVIEC_SKIPPED_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("NHACVIEC_SKIPPED_LOG {}: {e}", log.to_string_lossy()));
        // One line per skip: `scripts/test` counts lines.
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        writeln!(f, "{test}: {reason}").expect("write NHACVIEC_SKIPPED_LOG");
    }
}
