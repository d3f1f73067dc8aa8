//! `nhacviec plan --format ics` through the real binary, read back by a real iCalendar
//! parser (Python's `icalendar`, Debian package python3-icalendar).

#[path = "support/skip.rs"]
mod skip;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/khanh-hoa-2024.yaml")
}

fn nhacviec(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(args)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("run nhacviec");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A Python that has `icalendar`: the system's (where the Debian package installs it)
/// before whatever `python3` is first on PATH. `None`: skip, except under CI.
fn python() -> Option<&'static str> {
    let found = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import icalendar"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        skip::skip_or_fail("python3-icalendar is missing (apt-get install python3-icalendar)");
    }
    found
}

/// Parses the file with `icalendar`, writes it back out, parses that again, and returns
/// what it read: per event its UID, start, summary, description and alarm triggers.
const READ: &str = r#"
import json, sys, icalendar
raw = open(sys.argv[1], 'rb').read()
cal = icalendar.Calendar.from_ical(raw)
again = icalendar.Calendar.from_ical(cal.to_ical())
def events(c):
    out = []
    for e in c.walk('VEVENT'):
        alarms = []
        for a in e.walk('VALARM'):
            t = a.decoded('TRIGGER')
            alarms.append(str(t) if not hasattr(t, 'isoformat') else t.isoformat())
        out.append({
            'uid': str(e['UID']),
            'start': e.decoded('DTSTART').isoformat(),
            'end': e.decoded('DTEND').isoformat(),
            'stamp': e.decoded('DTSTAMP').isoformat(),
            'summary': str(e['SUMMARY']),
            'description': str(e['DESCRIPTION']),
            'alarms': alarms,
        })
    return out
first = events(cal)
assert first == events(again), 'round trip changed the events'
print(json.dumps({'name': str(cal.get('X-WR-CALNAME')), 'events': first}))
"#;

fn read_ics(python: &str, path: &Path) -> Value {
    let out = Command::new(python)
        .args(["-c", READ, path.to_str().unwrap()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "icalendar rejected the feed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn event<'a>(v: &'a Value, uid: &str) -> &'a Value {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uid"] == uid)
        .unwrap_or_else(|| panic!("no event {uid}"))
}

fn uids(v: &Value) -> BTreeSet<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_office_feed_is_valid_icalendar_with_the_policy_alarms() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let c = seed();
    let text = nhacviec(&[
        "plan",
        "-c",
        c.to_str().unwrap(),
        "--format",
        "ics",
        "--office",
        "kstthc",
    ]);
    // RFC 5545 framing: CRLF, lines of at most 75 octets, continuation lines start with a space.
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
        assert!(!line.contains('\n'), "bare LF in {line:?}");
    }
    let path = dir.path().join("kstthc.ics");
    std::fs::write(&path, &text).unwrap();
    let v = read_ics(py, &path);
    assert!(
        v["name"]
            .as_str()
            .unwrap()
            .ends_with("Phòng Kiểm soát thủ tục hành chính")
    );

    // I.2, Quý II/2024, led by kstthc: 30/06/2024 (a Sunday), the default policy
    // [14d, 7d, 3wd, 1wd] and on_day: calendar days relative, the others at the planner's
    // sweep (08:00 in Hà Nội = 01:00 UTC): 3wd on Wed 26/06, and the due-day reminder on
    // Fri 28/06, the last working day, which 1wd falls on too (one reminder, as sent).
    let i2 = event(&v, "I.2-1-kstthc@nhacviec");
    assert_eq!(i2["start"], "2024-06-30");
    assert_eq!(i2["end"], "2024-07-01");
    assert!(
        i2["summary"]
            .as_str()
            .unwrap()
            .starts_with("[chủ trì] I.2 Tham mưu")
    );
    let d = i2["description"].as_str().unwrap();
    assert!(
        d.contains("Kết quả/sản phẩm: Chương trình được Ủy ban nhân dân tỉnh phê duyệt"),
        "{d}"
    );
    assert!(d.contains("Vai trò: chủ trì"), "{d}");
    assert!(d.contains("Tiến độ theo kế hoạch: Quý II/2024"), "{d}");
    assert_eq!(
        i2["alarms"],
        serde_json::json!([
            "-14 days, 0:00:00",
            "-7 days, 0:00:00",
            "2024-06-26T01:00:00+00:00",
            "2024-06-28T01:00:00+00:00"
        ])
    );
    // VII.5 every quarter: one event per occurrence, numbered, not dated, in the UID.
    let all = nhacviec(&["plan", "-c", c.to_str().unwrap(), "--format", "ics"]);
    let path = dir.path().join("all.ics");
    std::fs::write(&path, &all).unwrap();
    let v = read_ics(py, &path);
    // Escaped commas read back as commas.
    let v1 = event(&v, "V.1-1-qttv@nhacviec");
    assert!(
        v1["description"]
            .as_str()
            .unwrap()
            .contains("Kết quả/sản phẩm: Quyết định phê duyệt tiêu chuẩn, định mức\n")
    );
    for k in 1..=4 {
        event(&v, &format!("VII.5-{k}-hctc@nhacviec"));
    }
    // A cooperating office gets the first and last reminders before (policy `cooperating`),
    // as `plan` lists them.
    let coop = event(&v, "I.2-1-kinh-te@nhacviec");
    assert!(coop["summary"].as_str().unwrap().starts_with("[phối hợp]"));
    assert_eq!(
        coop["alarms"],
        serde_json::json!(["-14 days, 0:00:00", "2024-06-26T01:00:00+00:00"])
    );
}

#[test]
fn a_moved_deadline_keeps_the_uids() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("plan.yaml");
    let seed_text = std::fs::read_to_string(seed()).unwrap();
    std::fs::write(&cfg, &seed_text).unwrap();
    let before = dir.path().join("before.ics");
    std::fs::write(
        &before,
        nhacviec(&["plan", "-c", cfg.to_str().unwrap(), "--format", "ics"]),
    )
    .unwrap();
    // I.2 moves from Quý II to Quý III.
    let moved = seed_text.replacen(
        "    deadline: Quý II/2024\n    lead: kstthc",
        "    deadline: Quý III/2024\n    lead: kstthc",
        1,
    );
    assert_ne!(moved, seed_text);
    std::fs::write(&cfg, moved).unwrap();
    let after = dir.path().join("after.ics");
    std::fs::write(
        &after,
        nhacviec(&["plan", "-c", cfg.to_str().unwrap(), "--format", "ics"]),
    )
    .unwrap();
    let (b, a) = (read_ics(py, &before), read_ics(py, &after));
    assert_eq!(uids(&b), uids(&a));
    assert_eq!(event(&b, "I.2-1-kstthc@nhacviec")["start"], "2024-06-30");
    assert_eq!(event(&a, "I.2-1-kstthc@nhacviec")["start"], "2024-09-30");
}
