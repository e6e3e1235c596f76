//! Recording a new trace with `perf` (the procedure of `traces/FORMAT.md`).

use crate::kthreads::{scan_proc_kthreads, write_sidecar};
use crate::reader::{KthreadSource, ParseOptions, TraceReader};
use crate::{TraceError, TraceSummary};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The tracepoints recorded, in `perf record -e` order.
pub const TRACE_EVENTS: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_process_fork",
    "sched:sched_process_exit",
    "sched:sched_process_exec",
    "sched:sched_process_free",
    "sched:sched_migrate_task",
    "sched:sched_wakeup_new",
];

/// The `perf script -F` field list.
pub const SCRIPT_FIELDS: &str = "comm,pid,tid,cpu,time,event,trace";

/// Options of [`capture()`].
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// The `perf` executable (default `perf`, searched in `PATH`).
    pub perf: PathBuf,
    /// Per-CPU ring buffer size for `perf record -m` (default `16M`).
    pub mmap: String,
    /// Keep `NAME.data` after conversion (default `true`).
    pub keep_data: bool,
    /// Parse the converted trace and include its summary (default `true`).
    pub validate: bool,
    /// The procfs root to scan for kernel threads (default `/proc`).
    pub proc_root: PathBuf,
    /// Forward perf's and the command's stderr to ours (default `true`).
    pub echo_stderr: bool,
    /// Record every CPU (`perf record -a`: every process of the machine is
    /// in the trace, the default), or only the command and its children
    /// (`false`: switches between other tasks are not recorded, so the
    /// replay infers them as gaps).
    pub system_wide: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            perf: PathBuf::from("perf"),
            mmap: "16M".into(),
            keep_data: true,
            validate: true,
            proc_root: PathBuf::from("/proc"),
            echo_stderr: true,
            system_wide: true,
        }
    }
}

/// What a capture produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureReport {
    /// `NAME.data` (raw perf data; removed unless `keep_data`).
    pub data: PathBuf,
    /// `NAME.perf.txt.gz` (the trace).
    pub trace: PathBuf,
    /// `NAME.kthreads.txt` (the sidecar).
    pub sidecar: PathBuf,
    /// `perf --version`.
    pub perf_version: String,
    /// The `perf record` command line.
    pub record_command: Vec<String>,
    /// Exit status of `perf record` (it returns the command's status).
    pub record_status: Option<i32>,
    /// Kernel threads before, after, and in the union written.
    pub kthreads_before: usize,
    /// Kernel threads found after the run.
    pub kthreads_after: usize,
    /// Size of the union written to the sidecar.
    pub kthreads_union: usize,
    /// perf's messages about lost events or chunks (empty when none).
    pub lost: Vec<String>,
    /// Uncompressed size of the text trace.
    pub text_bytes: u64,
    /// Summary of parsing the result (when `validate`).
    pub summary: Option<TraceSummary>,
}

/// `NAME` without a `.perf.txt.gz` / `.data` suffix the user may have typed.
fn base_name(out: &Path) -> PathBuf {
    let s = out.as_os_str().to_string_lossy();
    for suf in [".perf.txt.gz", ".perf.txt", ".data"] {
        if let Some(b) = s.strip_suffix(suf) {
            return PathBuf::from(b);
        }
    }
    out.to_path_buf()
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Finds an executable in `PATH` (or checks a path with a slash).
pub fn find_in_path(exe: &Path) -> Option<PathBuf> {
    if exe.components().count() > 1 {
        return exe.is_file().then(|| exe.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(exe))
        .find(|p| p.is_file())
}

/// Effective UID from `/proc/self/status` (no libc needed).
fn euid() -> Option<u32> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_ascii_whitespace().nth(2)?.parse().ok()
}

/// Checks that `perf` exists and that system-wide sched tracepoints can be
/// recorded. Returns `perf --version`.
pub fn preflight(opts: &CaptureOptions) -> Result<String, TraceError> {
    let Some(perf) = find_in_path(&opts.perf) else {
        return Err(TraceError::Capture(format!(
            "`{}` not found in PATH: install perf (Debian: `apt-get install linux-perf`)",
            opts.perf.display()
        )));
    };
    let out = Command::new(&perf)
        .arg("--version")
        .output()
        .map_err(|e| TraceError::Capture(format!("cannot run `{}`: {e}", perf.display())))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(TraceError::Capture(format!(
            "`{} --version` failed ({}): {}; on Debian install the `linux-perf` package matching the kernel",
            perf.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let paranoid_path = "/proc/sys/kernel/perf_event_paranoid";
    let paranoid: Option<i32> = std::fs::read_to_string(paranoid_path)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let root = euid() == Some(0);
    if !root && paranoid.is_some_and(|p| p > -1) {
        return Err(TraceError::Capture(format!(
            "system-wide sched tracepoints are not readable: run as root, or set {paranoid_path} to -1 \
             (now {}; `sysctl kernel.perf_event_paranoid=-1`) and make tracefs (/sys/kernel/tracing) readable",
            paranoid.unwrap_or(0)
        )));
    }
    // tracefs: if it is mounted, the sched events must be readable. If it is
    // not mounted, perf mounts it itself (as root).
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let ev = Path::new(dir).join("events/sched/sched_switch/format");
        if Path::new(dir).join("events").is_dir() {
            if let Err(e) = std::fs::read(&ev) {
                return Err(TraceError::Capture(format!(
                    "sched tracepoints are not readable ({}: {e}): run as root, or set \
                     {paranoid_path} to -1 and make tracefs readable",
                    ev.display()
                )));
            }
            break;
        }
    }
    Ok(version)
}

/// Runs `cmd` (stdout inherited), forwarding (optionally) and collecting
/// its stderr lines.
fn run_collect_stderr(
    mut cmd: Command,
    echo: bool,
) -> Result<(std::process::ExitStatus, Vec<String>), TraceError> {
    cmd.stderr(Stdio::piped()).stdout(Stdio::inherit());
    let prog = format!("`{}`", cmd.get_program().to_string_lossy());
    let mut child = cmd
        .spawn()
        .map_err(|e| TraceError::Capture(format!("cannot run {prog}: {e}")))?;
    let stderr = child.stderr.take();
    let handle = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(se) = stderr {
            for line in BufReader::new(se).split(b'\n').map_while(Result::ok) {
                let l = String::from_utf8_lossy(&line).into_owned();
                if echo {
                    eprintln!("{l}");
                }
                lines.push(l);
            }
        }
        lines
    });
    let status = child
        .wait()
        .map_err(|e| TraceError::Capture(format!("waiting for {prog}: {e}")))?;
    let lines = handle.join().unwrap_or_default();
    Ok((status, lines))
}

fn lost_lines(lines: &[String]) -> impl Iterator<Item = &String> {
    lines.iter().filter(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("lost")
            && !l.contains("lost 0 ")
            && (l.contains("chunk") || l.contains("event") || l.contains("sample"))
    })
}

/// Records a system-wide scheduler trace of `cmd` with `perf`:
///
/// 1. checks `perf` and permissions ([`preflight`]);
/// 2. scans `/proc/*/task/*/stat` for kernel threads;
/// 3. `perf record -a -m 16M -e sched:... -o NAME.data -- CMD...`;
/// 4. scans again and writes the union to `NAME.kthreads.txt`;
/// 5. `perf script -F comm,pid,tid,cpu,time,event,trace` into
///    `NAME.perf.txt.gz`;
/// 6. reports lost events if perf mentions any, and (optionally) parses
///    the result.
///
/// A failure at any step, including the recorded command exiting with a
/// non-zero status, is an error naming the cause, and removes the partial
/// `NAME.data`, `NAME.perf.txt.gz` and `NAME.kthreads.txt`.
pub fn capture(
    out_name: &Path,
    cmd: &[OsString],
    opts: &CaptureOptions,
) -> Result<CaptureReport, TraceError> {
    let base = base_name(out_name);
    let files = [".data", ".perf.txt.gz", ".kthreads.txt"].map(|s| with_suffix(&base, s));
    let r = capture_inner(out_name, cmd, opts);
    if r.is_err() {
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
    }
    r
}

/// The command line as a person would type it.
fn shown(cmd: &[OsString]) -> String {
    cmd.iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn capture_inner(
    out_name: &Path,
    cmd: &[OsString],
    opts: &CaptureOptions,
) -> Result<CaptureReport, TraceError> {
    if cmd.is_empty() {
        return Err(TraceError::Capture("no command to record".into()));
    }
    let perf_version = preflight(opts)?;
    // The command must exist before perf is started: otherwise perf's own
    // failure shows up as a cascade of unrelated `perf script` errors.
    let exe = Path::new(&cmd[0]);
    match find_in_path(exe) {
        None if exe.components().count() > 1 => {
            return Err(TraceError::Capture(format!(
                "cannot run `{}`: no such file",
                exe.display()
            )))
        }
        None => {
            return Err(TraceError::Capture(format!(
                "cannot run `{}`: not found in PATH",
                exe.display()
            )))
        }
        Some(_) => {}
    }
    let base = base_name(out_name);
    if let Some(dir) = base.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| TraceError::io(dir, e))?;
    }
    let data = with_suffix(&base, ".data");
    let trace = with_suffix(&base, ".perf.txt.gz");
    let sidecar = with_suffix(&base, ".kthreads.txt");

    let before = scan_proc_kthreads(&opts.proc_root)?;

    let mut record: Vec<OsString> = vec!["record".into()];
    if opts.system_wide {
        record.push("-a".into());
    }
    record.extend(["-m".into(), opts.mmap.clone().into()]);
    for ev in TRACE_EVENTS {
        record.push("-e".into());
        record.push(OsString::from(ev));
    }
    record.push("-o".into());
    record.push(data.clone().into_os_string());
    record.push("--".into());
    record.extend(cmd.iter().cloned());
    let mut c = Command::new(&opts.perf);
    c.args(&record).stdin(Stdio::inherit());
    let (status, rec_err) = run_collect_stderr(c, opts.echo_stderr)?;
    if !data.is_file() {
        let tail: Vec<&str> = rec_err
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        return Err(TraceError::Capture(format!(
            "`perf record` wrote no data ({status}); sched tracepoints may not be readable: run as root, \
             or set /proc/sys/kernel/perf_event_paranoid to -1 and make tracefs readable. perf said: {}",
            tail.join(" | ")
        )));
    }

    if !status.success() {
        let said: Vec<&str> = rec_err
            .iter()
            .filter(|l| !l.starts_with("[ perf record:"))
            .map(String::as_str)
            .collect();
        let tail = &said[said.len().saturating_sub(3)..];
        return Err(TraceError::Capture(format!(
            "the recorded command `{}` failed ({status}){}; nothing kept",
            shown(cmd),
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {}", tail.join(" | "))
            }
        )));
    }

    let after = scan_proc_kthreads(&opts.proc_root)?;
    let union: std::collections::BTreeSet<i32> = before.union(&after).copied().collect();
    write_sidecar(&sidecar, &union)?;

    // perf script -> gzip
    let mut script = Command::new(&opts.perf);
    script
        .arg("script")
        .arg("-i")
        .arg(&data)
        .arg("-F")
        .arg(SCRIPT_FIELDS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = script
        .spawn()
        .map_err(|e| TraceError::Capture(format!("cannot run perf script: {e}")))?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut se) = stderr {
            let _ = se.read_to_string(&mut s);
        }
        s
    });
    let file = std::fs::File::create(&trace).map_err(|e| TraceError::io(&trace, e))?;
    let mut gz = GzEncoder::new(std::io::BufWriter::new(file), Compression::new(6));
    let mut text_bytes = 0u64;
    if let Some(mut so) = child.stdout.take() {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = so
                .read(&mut buf)
                .map_err(|e| TraceError::Capture(format!("reading perf script output: {e}")))?;
            if n == 0 {
                break;
            }
            text_bytes += n as u64;
            gz.write_all(&buf[..n])
                .map_err(|e| TraceError::io(&trace, e))?;
        }
    }
    let w = gz.finish().map_err(|e| TraceError::io(&trace, e))?;
    w.into_inner()
        .map_err(|e| TraceError::io(&trace, e.into_error()))?
        .sync_all()
        .map_err(|e| TraceError::io(&trace, e))?;
    let st = child
        .wait()
        .map_err(|e| TraceError::Capture(format!("waiting for perf script: {e}")))?;
    let script_err = err_thread.join().unwrap_or_default();
    if !st.success() {
        return Err(TraceError::Capture(format!(
            "`perf script` failed ({st}): {}",
            script_err.trim()
        )));
    }
    let script_lines: Vec<String> = script_err.lines().map(str::to_string).collect();
    let lost: Vec<String> = lost_lines(&rec_err)
        .chain(lost_lines(&script_lines))
        .cloned()
        .collect();
    if !opts.keep_data {
        let _ = std::fs::remove_file(&data);
    }
    let summary = if opts.validate {
        let popts = ParseOptions {
            kthreads: KthreadSource::Sidecar(sidecar.clone()),
            ..ParseOptions::default()
        };
        let mut r = TraceReader::open(&trace, &popts)?;
        while r.next_event()?.is_some() {}
        Some(r.finish())
    } else {
        None
    };
    Ok(CaptureReport {
        data,
        trace,
        sidecar,
        perf_version,
        record_command: std::iter::once(opts.perf.as_os_str())
            .chain(record.iter().map(OsString::as_os_str))
            .map(|s: &OsStr| s.to_string_lossy().into_owned())
            .collect(),
        record_status: status.code(),
        kthreads_before: before.len(),
        kthreads_after: after.len(),
        kthreads_union: union.len(),
        lost,
        text_bytes,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(base_name(Path::new("a/b.perf.txt.gz")), Path::new("a/b"));
        assert_eq!(base_name(Path::new("x")), Path::new("x"));
        assert_eq!(
            with_suffix(Path::new("a/b"), ".data"),
            Path::new("a/b.data")
        );
    }

    #[test]
    fn lost_detection() {
        let l = vec![
            "Warning:".to_string(),
            "Processed 100 events and lost 3 chunks!".to_string(),
            "Processed 100 events and lost 0 chunks!".to_string(),
            "my workload lost its way".to_string(),
            "'trace' not valid for hardware events. Ignoring.".to_string(),
        ];
        assert_eq!(lost_lines(&l).count(), 1);
    }

    #[test]
    fn missing_perf_is_a_clear_error() {
        let opts = CaptureOptions {
            perf: PathBuf::from("perf-does-not-exist-xyz"),
            ..CaptureOptions::default()
        };
        let e = capture(Path::new("/tmp/x"), &["true".into()], &opts).unwrap_err();
        assert!(e.to_string().contains("linux-perf"), "{e}");
    }
}
