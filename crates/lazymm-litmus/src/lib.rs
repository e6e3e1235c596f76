//! lazymm-litmus: a checker for the Linux-kernel memory model (LKMM).
//!
//! It reads litmus tests in the kernel's C format, enumerates candidate
//! executions and decides, with the axioms of `linux-kernel.cat` (6.12),
//! whether the final condition is reachable: `Never`, `Sometimes` or
//! `Always`, like `herd7`.
//!
//! ```
//! let src = "C SB\n{}\nP0(int *x, int *y) { WRITE_ONCE(*x, 1); smp_mb(); int r0 = READ_ONCE(*y); }\n\
//!            P1(int *x, int *y) { WRITE_ONCE(*y, 1); smp_mb(); int r0 = READ_ONCE(*x); }\n\
//!            exists (0:r0=0 /\\ 1:r0=0)\n";
//! let test = lazymm_litmus::parse(src).unwrap();
//! let out = lazymm_litmus::check(&test, &Default::default()).unwrap();
//! assert_eq!(out.verdict, lazymm_litmus::Verdict::Never);
//! ```

pub mod check;
pub mod cli;
pub mod exec;
pub mod herd;
pub mod lisa;
pub mod model;
pub mod parse;
pub mod rel;

pub use check::{check, CheckError, Options, Outcome, Verdict};
pub use parse::{parse, Expected, LitmusError, Test};

use serde::Serialize;
use std::path::{Path, PathBuf};

/// CPU time of the calling thread, seconds (`CLOCK_THREAD_CPUTIME_ID`).
/// Time limits are on CPU time, so that the load of the machine does not
/// decide whether a test finishes.
pub fn thread_cpu_seconds() -> f64 {
    // SAFETY: an all-zero `timespec` is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is valid for writes; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Status of one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Checked; see `outcome`.
    Ok,
    /// Uses a construct the checker does not model.
    Unsupported,
    /// Syntax error or unreadable file.
    Error,
    /// Too large to enumerate within the time limit.
    Timeout,
}

/// The report on one litmus file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    pub status: Status,
    /// `file:line: expected ...`, `unsupported: ...` or the timeout message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The `Result:` annotation of the file, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
    /// Whether the verdict agrees with `expected` (None: nothing to compare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agrees: Option<bool>,
    pub seconds: f64,
}

/// Compare an outcome with a `Result:` annotation.  `None` when the
/// annotation is not a verdict (`Maybe`, `Flag ...`).
pub fn agreement(expected: &Expected, out: &Outcome) -> Option<bool> {
    let v = match expected.verdict.as_str() {
        "Never" => Verdict::Never,
        "Sometimes" => Verdict::Sometimes,
        "Always" => Verdict::Always,
        "DEADLOCK" => return Some(out.positive + out.negative == 0),
        _ => return None,
    };
    Some(v == out.verdict && expected.datarace == out.data_race)
}

/// Check litmus source text (`file` is only used in messages).
pub fn check_source(file: &Path, src: &str, opts: &Options) -> FileReport {
    let start = std::time::Instant::now();
    let expected = parse::expected_result(src);
    let mut rep = FileReport {
        file: file.to_path_buf(),
        status: Status::Ok,
        message: None,
        outcome: None,
        expected: expected.clone(),
        agrees: None,
        seconds: 0.0,
    };
    let err = |rep: &mut FileReport, e: &LitmusError| match e {
        LitmusError::Syntax { line, msg } => {
            rep.status = Status::Error;
            rep.message = Some(if *line > 0 {
                format!("{}:{line}: {msg}", file.display())
            } else {
                format!("{}: {msg}", file.display())
            });
        }
        LitmusError::Unsupported(c) => {
            rep.status = Status::Unsupported;
            rep.message = Some(format!("unsupported: {c}"));
        }
    };
    match parse(src) {
        Err(e) => err(&mut rep, &e),
        Ok(t) => match std::panic::catch_unwind(|| check(&t, opts)).unwrap_or_else(|_| {
            Err(CheckError::Litmus(LitmusError::Unsupported(
                "internal error while checking (please report)".into(),
            )))
        }) {
            Ok(o) => {
                rep.agrees = expected.as_ref().and_then(|e| agreement(e, &o));
                rep.outcome = Some(o);
            }
            Err(CheckError::Litmus(e)) => err(&mut rep, &e),
            Err(e @ CheckError::Timeout(_)) => {
                rep.status = Status::Timeout;
                rep.message = Some(e.to_string());
            }
        },
    }
    rep.seconds = start.elapsed().as_secs_f64();
    rep
}

/// Read and check one file.
pub fn check_file(file: &Path, opts: &Options) -> FileReport {
    match std::fs::read(file) {
        Ok(bytes) => check_source(file, &String::from_utf8_lossy(&bytes), opts),
        Err(e) => FileReport {
            file: file.to_path_buf(),
            status: Status::Error,
            message: Some(format!("{}: cannot read: {e}", file.display())),
            outcome: None,
            expected: None,
            agrees: None,
            seconds: 0.0,
        },
    }
}

/// All `.litmus` files under `paths` (files are taken as given), sorted.
pub fn collect_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "litmus") {
            out.push(p);
        }
    }
    Ok(())
}

/// Check many files on `jobs` threads; reports come back in input order.
pub fn check_files(files: &[PathBuf], opts: &Options, jobs: usize) -> Vec<FileReport> {
    par_map(files, jobs, |f| check_file(f, opts))
}

/// `f` over `items` on `jobs` threads (each takes the next item);
/// results come back in input order.
pub fn par_map<T: Sync, R: Send + Clone>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let jobs = jobs.max(1).min(items.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<R>>> = std::sync::Mutex::new(vec![None; items.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
