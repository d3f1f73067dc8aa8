//! What the daemon gives back when it goes back to waiting, the way Android compacts a
//! cached app: the pages of its own program that start-up and the last sweep read (loading
//! the YAML, planning, composing, SQLite), and the heap's free memory at its top.
//!
//! Between sweeps the daemon runs almost nothing (the cron scheduler's tick, the signal
//! task), yet every page of program text it ever executed stays mapped, and the kernel
//! maps 64 KiB around each one it faults in: most of the idle daemon's memory was its own
//! read-only program text (BENCHMARKS.md, "Idle"). `madvise(MADV_PAGEOUT)` on those mappings
//! lets the kernel reclaim them; the next sweep reads back the pages it runs. Only clean,
//! read-only mappings of the daemon's own executable are advised: shared libraries are
//! shared with other processes, and writable data is never touched.

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

/// The read-only private mappings of this process's own executable, as (start, length).
fn program_mappings() -> Option<Vec<(usize, usize)>> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let exe = exe.to_str()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some(own_readonly(&maps, exe))
}

/// The lines of `/proc/PID/maps` that map `exe` read-only and private (`r--p`, `r-xp`).
fn own_readonly(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            // start-end perms offset dev inode path; the path may hold spaces.
            let mut fields = line.splitn(6, ' ');
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?.trim_start();
            if path != exe || !matches!(perms, "r--p" | "r-xp") {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end - start))
        })
        .collect()
}

#[cfg(target_os = "linux")]
fn advise(maps: &[(usize, usize)]) -> Released {
    let mut r = Released::default();
    for &(start, len) in maps {
        // SAFETY: the range is one of this process's own file mappings, read-only and
        // private, as /proc/self/maps lists it: MADV_PAGEOUT only lets the kernel drop
        // clean pages it can read back from the file; the mapping itself stays.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
        if rc == 0 {
            r.advised += len;
            r.supported = true;
        }
    }
    r
}

#[cfg(not(target_os = "linux"))]
fn advise(_: &[(usize, usize)]) -> Released {
    Released::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_programs_own_read_only_private_mappings_are_chosen() {
        let maps = "\
556e24ae8000-556e24dc4000 r--p 00000000 fe:00 5556528                    /opt/nv bin/nhacviec
556e24dc4000-556e2589b000 r-xp 002db000 fe:00 5556528                    /opt/nv bin/nhacviec
556e2589b000-556e259eb000 r--p 00db1000 fe:00 5556528                    /opt/nv bin/nhacviec
556e259eb000-556e259f1000 rw-p 00f00000 fe:00 5556528                    /opt/nv bin/nhacviec
556e259f1000-556e259f2000 r-xs 00000000 fe:00 5556529                    /opt/nv bin/nhacviec
7f0000000000-7f0000100000 r-xp 00000000 fe:00 17                         /usr/lib/libc.so.6
7f0000200000-7f0000300000 rw-p 00000000 00:00 0                          [heap]
7f0000400000-7f0000500000 r-xp 00000000 fe:00 5556528                    /opt/nv bin/nhacviec (deleted)
";
        let got = own_readonly(maps, "/opt/nv bin/nhacviec");
        assert_eq!(
            got,
            vec![
                (0x556e24ae8000, 0x556e24dc4000 - 0x556e24ae8000),
                (0x556e24dc4000, 0x556e2589b000 - 0x556e24dc4000),
                (0x556e2589b000, 0x556e259eb000 - 0x556e2589b000),
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
        for &(start, len) in &maps {
            for off in (0..len).step_by(4096) {
                // SAFETY: inside a readable mapping of this process, read a byte.
                sum = sum
                    .wrapping_add(unsafe { std::ptr::read_volatile((start + off) as *const u8) });
            }
        }
        std::hint::black_box(sum);
        let before = resident_program_kb();
        let r = release();
        let after = resident_program_kb();
        assert!(r.supported, "this kernel takes MADV_PAGEOUT");
        assert!(r.advised >= maps.iter().map(|m| m.1).sum::<usize>() / 2);
        // The test runs on, so it faults some pages back at once; most stay out.
        assert!(
            after * 2 < before,
            "resident program pages: {before} kB before, {after} kB after"
        );
    }
}
