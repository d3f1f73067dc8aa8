//! What the daemon gives back when it goes back to waiting, the way Android compacts a
//! cached app: the pages of its own program that start-up and the last sweep read (loading
//! the YAML, planning, composing, SQLite), and the heap's free memory at its top.
//!
//! Between sweeps the daemon runs almost nothing (the cron scheduler's tick, the signal
//! task), yet every page of program text it ever executed stays mapped, and the kernel
//! maps 64 KiB around each one it faults in: most of the idle daemon's memory was its own
//! read-only program text (BENCHMARKS.md, "Idle"). Only read-only private mappings of the
//! daemon's own executable are advised: shared libraries are shared with other processes,
//! and writable data is never touched.
//!
//! A mapping that holds nothing but the file's pages (no private copy, `Anonymous: 0 kB` in
//! `/proc/self/smaps`: the program text and constants) is unmapped with `MADV_DONTNEED`:
//! the pages leave the daemon's memory but stay in the page cache, so the next sweep or
//! reload maps them back with minor faults instead of reading the binary from disk again,
//! as `MADV_PAGEOUT` made it do (a reload of 10,000 tasks spent about a tenth of its time
//! there). Nothing is lost: a read-only mapping's file pages are the file's. A mapping with
//! private copies (the relocated `.data.rel.ro`, written by the loader before it was made
//! read-only) gets `MADV_PAGEOUT`, which keeps its contents: `MADV_DONTNEED` would throw the
//! relocations away.

/// What [`release`] gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Bytes of program mappings advised (their resident part is what the kernel reclaims).
    pub advised: usize,
    /// Whether the kernel accepted the advice (Linux 5.4 or later).
    pub supported: bool,
}

/// Advises the kernel that the daemon's program pages and free heap are not needed now.
/// Never fails: on a kernel without `MADV_PAGEOUT`, or without `/proc`, it does nothing.
pub fn release() -> Released {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory at the heap's top and in free chunks to
    // the kernel; it is thread-safe (it takes the arenas' locks).
    unsafe {
        libc::malloc_trim(0);
    }
    program_mappings()
        .map(|maps| advise(&maps))
        .unwrap_or_default()
}

/// One read-only private mapping of this process's own executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    start: usize,
    len: usize,
    /// Whether it holds private copies of pages (`Anonymous:` above 0 kB): then only
    /// `MADV_PAGEOUT` keeps its contents.
    private_copies: bool,
}

/// The read-only private mappings of this process's own executable.
fn program_mappings() -> Option<Vec<Mapping>> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let exe = exe.to_str()?;
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    Some(own_readonly(&smaps, exe))
}

/// The mappings of `/proc/PID/smaps` that map `exe` read-only and private (`r--p`, `r-xp`),
/// with whether each holds private copies. A mapping whose `Anonymous:` line is missing is
/// taken to hold some.
fn own_readonly(smaps: &str, exe: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    // Whether the last header line was one of ours (its `Anonymous:` line comes after it).
    let mut ours = false;
    for line in smaps.lines() {
        if let Some(v) = line.strip_prefix("Anonymous:") {
            if ours && let Some(m) = out.last_mut() {
                m.private_copies = v.trim().trim_end_matches("kB").trim() != "0";
            }
            continue;
        }
        // start-end perms offset dev inode path; the path may hold spaces.
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        let path = fields.nth(3).map(str::trim_start);
        ours = path == Some(exe) && matches!(perms, "r--p" | "r-xp") && end > start;
        if ours {
            out.push(Mapping {
                start,
                len: end - start,
                private_copies: true,
            });
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn advise(maps: &[Mapping]) -> Released {
    let mut r = Released::default();
    for m in maps {
        let advice = if m.private_copies {
            libc::MADV_PAGEOUT
        } else {
            libc::MADV_DONTNEED
        };
        // SAFETY: the range is one of this process's own file mappings, read-only and
        // private, as /proc/self/smaps lists it. MADV_PAGEOUT only lets the kernel drop
        // pages it can read back; MADV_DONTNEED is given only to a mapping with no private
        // copy, whose every page is the file's and comes back from it the same (a
        // read-only mapping cannot gain one meanwhile). The mapping itself stays.
        let rc = unsafe { libc::madvise(m.start as *mut libc::c_void, m.len, advice) };
        if rc == 0 {
            r.advised += m.len;
            r.supported = true;
        }
    }
    r
}

#[cfg(not(target_os = "linux"))]
fn advise(_: &[Mapping]) -> Released {
    Released::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_programs_own_read_only_private_mappings_are_chosen() {
        let smaps = "\
556e24ae8000-556e24dc4000 r--p 00000000 fe:00 5556528                    /opt/nv bin/nhacviec
Size:               2928 kB
Rss:                 964 kB
Anonymous:             0 kB
556e24dc4000-556e2589b000 r-xp 002db000 fe:00 5556528                    /opt/nv bin/nhacviec
Rss:                1200 kB
Anonymous:             0 kB
556e2589b000-556e259eb000 r--p 00db1000 fe:00 5556528                    /opt/nv bin/nhacviec
Rss:                1344 kB
Anonymous:          1344 kB
556e259eb000-556e259f1000 rw-p 00f00000 fe:00 5556528                    /opt/nv bin/nhacviec
Anonymous:            24 kB
556e259f1000-556e259f2000 r-xs 00000000 fe:00 5556529                    /opt/nv bin/nhacviec
Anonymous:             0 kB
556e259f2000-556e259f3000 r--p 00f06000 fe:00 5556528                    /opt/nv bin/nhacviec
7f0000000000-7f0000100000 r-xp 00000000 fe:00 17                         /usr/lib/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-p 00000000 00:00 0                          [heap]
Anonymous:           124 kB
7f0000400000-7f0000500000 r-xp 00000000 fe:00 5556528                    /opt/nv bin/nhacviec (deleted)
Anonymous:             0 kB
";
        let got = own_readonly(smaps, "/opt/nv bin/nhacviec");
        let m = |start: usize, end: usize, private_copies| Mapping {
            start,
            len: end - start,
            private_copies,
        };
        assert_eq!(
            got,
            vec![
                m(0x556e24ae8000, 0x556e24dc4000, false),
                m(0x556e24dc4000, 0x556e2589b000, false),
                // The relocated constants: private copies, paged out, never dropped.
                m(0x556e2589b000, 0x556e259eb000, true),
                // No `Anonymous:` line: taken to hold private copies.
                m(0x556e259f2000, 0x556e259f3000, true),
            ]
        );
    }

    /// Resident kilobytes of this test program's own read-only mappings.
    fn resident_program_kb() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_str().unwrap().to_string();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut kb = 0;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && range.contains('-')
                && range.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            {
                ours = line.ends_with(&exe) && !line.contains(" rw");
            } else if ours && let Some(v) = line.strip_prefix("Rss:") {
                kb += v
                    .trim()
                    .trim_end_matches(" kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap();
            }
        }
        kb
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_reclaims_the_programs_pages_it_was_told_of() {
        // Fault in as much of the program as a test can: read every byte of its mappings.
        let maps = program_mappings().unwrap();
        assert!(
            !maps.is_empty(),
            "the test program's own mappings are listed"
        );
        let mut sum = 0u8;
        for m in &maps {
            for off in (0..m.len).step_by(4096) {
                // SAFETY: inside a readable mapping of this process, read a byte.
                sum = sum
                    .wrapping_add(unsafe { std::ptr::read_volatile((m.start + off) as *const u8) });
            }
        }
        std::hint::black_box(sum);
        // Pointers the loader relocated (in `.data.rel.ro`, a read-only mapping with private
        // copies): dropping that mapping's pages instead of paging them out would bring
        // back the file's unrelocated bytes.
        static WORDS: [&str; 3] = ["một", "hai", "ba"];
        let words = || std::hint::black_box(&WORDS).map(str::to_string);
        let before_words = words();
        let before = resident_program_kb();
        let r = release();
        let after = resident_program_kb();
        assert_eq!(
            words(),
            before_words,
            "relocated constants survive the release"
        );
        assert!(r.supported, "this kernel takes the advice");
        assert!(r.advised >= maps.iter().map(|m| m.len).sum::<usize>() / 2);
        // The test runs on, so it faults some pages back at once; most stay out.
        assert!(
            after * 2 < before,
            "resident program pages: {before} kB before, {after} kB after"
        );
    }
}
