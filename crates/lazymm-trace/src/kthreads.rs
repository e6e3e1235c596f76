//! Kernel-thread identification: the `NAME.kthreads.txt` sidecar, the name
//! heuristic, and the `/proc` scan used by [`crate::capture`].

use crate::TraceError;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// `PF_KTHREAD` in `/proc/*/task/*/stat` field 9 (`flags`).
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// Name prefixes of kernel threads used when no sidecar is available.
pub const KTHREAD_NAME_PREFIXES: &[&str] = &[
    "kworker/",
    "ksoftirqd/",
    "rcu_",
    "rcuc/",
    "rcuog/",
    "rcuop/",
    "migration/",
    "idle_inject/",
    "cpuhp/",
    "watchdog/",
    "watchdogd",
    "irq/",
    "kthreadd",
    "kswapd",
    "kcompactd",
    "khugepaged",
    "kauditd",
    "khungtaskd",
    "kdevtmpfs",
    "kblockd",
    "kintegrityd",
    "kthrotld",
    "ksmd",
    "kstrp",
    "oom_reaper",
    "writeback",
    "jbd2/",
    "ext4-",
    "xfs",
    "scsi_",
    "ata_sff",
    "md",
    "edac-poller",
    "devfreq_wq",
    "zswap",
    "mm_percpu_wq",
    "netns",
    "inet_frag_wq",
    "blkcg_punt_bio",
    "tpm_dev_wq",
    "ipv6_addrconf",
    "kmpath_",
    "kaluad",
    "hwrng",
    "psimon",
    "swapper",
    "napi/",
    "card",
    "nvme",
    "virtio",
    "scsi_eh_",
    "pool_workqueue_",
    "hrtimer",
];

/// `true` when `comm` looks like a kernel thread's name (heuristic used only
/// without a sidecar; see [`KTHREAD_NAME_PREFIXES`]). Exact names that are
/// too short to be prefixes (`md`, `card`, ...) must match exactly or be
/// followed by a non-letter.
pub fn looks_like_kthread(comm: &[u8]) -> bool {
    KTHREAD_NAME_PREFIXES.iter().any(|p| {
        let p = p.as_bytes();
        if !comm.starts_with(p) {
            return false;
        }
        if p.len() >= 5 || p.ends_with(b"/") || p.ends_with(b"_") || p.ends_with(b"-") {
            return true;
        }
        comm.get(p.len()).is_none_or(|c| !c.is_ascii_alphabetic())
    })
}

/// Reads a sidecar: one decimal TID per line; blank lines and `#` comments
/// are ignored; anything else is an error `file:line: cause`.
pub fn read_sidecar(path: &Path) -> Result<BTreeSet<i32>, TraceError> {
    let f = std::fs::File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut set = BTreeSet::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| TraceError::io(path, e))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match t.parse::<i32>() {
            Ok(tid) if tid >= 0 => {
                set.insert(tid);
            }
            _ => {
                return Err(TraceError::input(
                    path,
                    i as u64 + 1,
                    format!("expected a decimal TID, found `{t}`"),
                ))
            }
        }
    }
    Ok(set)
}

/// The sidecar path by name convention: the trace's name with its
/// `.perf.txt.gz` / `.perf.txt` / `.txt.gz` / `.txt` / `.gz` suffix replaced
/// by `.kthreads.txt`, in the same directory.
pub fn sidecar_path_for(trace: &Path) -> PathBuf {
    let name = trace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".perf.txt.gz", ".perf.txt", ".txt.gz", ".txt", ".gz"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(&name);
    trace.with_file_name(format!("{stem}.kthreads.txt"))
}

/// Parses the content of a `/proc/<pid>/task/<tid>/stat` file: `true` when
/// field 9 (`flags`, counted after the last `)` which ends the comm) has
/// [`PF_KTHREAD`]. `None` when the content is malformed.
pub fn stat_is_kthread(stat: &str) -> Option<bool> {
    let close = stat.rfind(')')?;
    // After ')': field 3 (state) is the first token; flags is field 9.
    let flags = stat[close + 1..].split_ascii_whitespace().nth(6)?;
    let flags: u64 = flags.parse().ok()?;
    Some(flags & PF_KTHREAD != 0)
}

/// Scans `/proc/*/task/*/stat` and returns the TIDs of all kernel threads.
/// Tasks that vanish during the scan are skipped.
pub fn scan_proc_kthreads(proc_root: &Path) -> Result<BTreeSet<i32>, TraceError> {
    let mut set = BTreeSet::new();
    let rd = std::fs::read_dir(proc_root).map_err(|e| TraceError::io(proc_root, e))?;
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let _ = pid;
        let Ok(tasks) = std::fs::read_dir(ent.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                continue;
            };
            if stat_is_kthread(&stat) == Some(true) {
                set.insert(tid);
            }
        }
    }
    Ok(set)
}

/// Writes a sidecar (sorted, one TID per line).
pub fn write_sidecar(path: &Path, tids: &BTreeSet<i32>) -> Result<(), TraceError> {
    let mut s = String::with_capacity(tids.len() * 6);
    for t in tids {
        s.push_str(&t.to_string());
        s.push('\n');
    }
    std::fs::write(path, s).map_err(|e| TraceError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic() {
        for k in [
            "kworker/1:0-vir",
            "ksoftirqd/0",
            "rcu_preempt",
            "migration/1",
            "kthreadd",
            "md",
            "irq/9-acpi",
        ] {
            assert!(looks_like_kthread(k.as_bytes()), "{k}");
        }
        for u in [
            "bash",
            "make",
            "mdadm",
            "perf",
            "sched-messaging",
            "cardinal",
            "tokio-rt-worker",
        ] {
            assert!(!looks_like_kthread(u.as_bytes()), "{u}");
        }
    }

    #[test]
    fn sidecar_names() {
        assert_eq!(
            sidecar_path_for(Path::new("/a/b.perf.txt.gz")),
            Path::new("/a/b.kthreads.txt")
        );
        assert_eq!(
            sidecar_path_for(Path::new("x.txt")),
            Path::new("x.kthreads.txt")
        );
    }

    #[test]
    fn stat_parse() {
        let k = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 2";
        assert_eq!(stat_is_kthread(k), Some(true));
        let u = "1 (sys (t) d) S 0 1 1 0 -1 4194560 0 0";
        assert_eq!(stat_is_kthread(u), Some(false));
        assert_eq!(stat_is_kthread("garbage"), None);
    }
}
