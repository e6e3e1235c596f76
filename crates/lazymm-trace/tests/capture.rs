//! Captures a short command with perf and parses it.
//!
//! These tests need `perf` with readable sched tracepoints, so they are
//! `#[ignore]`d (visible as "ignored" in every test summary) and run by CI
//! explicitly: `cargo test --release -p lazymm-trace --test capture -- --ignored`.
//! There a missing or refused perf is a failure, never a silent pass.

use lazymm_trace::{
    capture, preflight_check, CaptureOptions, ParseOptions, TraceEvent, TraceReader,
};
use std::ffi::OsString;

#[test]
#[ignore = "needs perf with sched tracepoints: cargo test -p lazymm-trace --test capture -- --ignored"]
fn capture_short_command() {
    let opts = CaptureOptions {
        echo_stderr: false,
        ..CaptureOptions::default()
    };
    if let Err(e) = preflight_check(&opts) {
        panic!("perf capture not possible here: {e}");
    }
    let dir = std::env::temp_dir().join(format!("lazymm-capture-{}", std::process::id()));
    let out = dir.join("short");
    let cmd: Vec<OsString> = ["sh", "-c", "sleep 0.2; true"]
        .iter()
        .map(OsString::from)
        .collect();
    let report = match capture(&out, &cmd, &opts) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            panic!("perf record failed here: {e}");
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    assert!(report.trace.is_file() && report.sidecar.is_file());
    assert!(
        report.kthreads_union > 0,
        "a Linux system has kernel threads"
    );
    assert_eq!(report.record_status, Some(0));
    let summary = report.summary.as_ref().expect("validated");
    assert!(summary.events.sched_switch > 0);
    assert!(summary.tgids_available);
    assert_eq!(summary.warning_count(), 0, "{:?}", summary.warning_samples);
    // The recorded command shows up: perf-exec execs `sh`.
    assert!(summary.events.sched_process_exec >= 1);

    // Parse again through the public reader: the sidecar is found by name.
    let mut r = TraceReader::open(&report.trace, &ParseOptions::default()).expect("open");
    let mut execs = 0;
    while let Some(ev) = r.next_event().expect("event") {
        if let TraceEvent::Exec { new_mm, .. } = ev {
            execs += 1;
            assert!(r.mm_info(new_mm).is_some());
        }
    }
    let s = r.finish();
    assert_eq!(s.events.sched_process_exec, execs);
    assert!(matches!(
        s.kthreads,
        lazymm_trace::KthreadOrigin::Sidecar(_)
    ));

    // perf's default field set (no `pid/` prefix) parses too: each thread
    // is its own mm, and the result says so.
    let out = std::process::Command::new("perf")
        .arg("script")
        .arg("-i")
        .arg(&report.data)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("perf script");
    let plain = dir.join("short-default.perf.txt");
    std::fs::write(&plain, &out.stdout).expect("write");
    let opts = ParseOptions {
        kthreads: lazymm_trace::KthreadSource::Sidecar(report.sidecar.clone()),
        ..ParseOptions::default()
    };
    let mut r = TraceReader::open(&plain, &opts).expect("open");
    while r.next_event().expect("event").is_some() {}
    let d = r.finish();
    assert!(d.per_thread_mm && !d.tgids_available);
    assert_eq!(d.events, s.events);
    let w = |k| d.warnings.get(&k).copied().unwrap_or(0);
    assert_eq!(
        w(lazymm_trace::WarningKind::UnparsedLine),
        0,
        "{:?}",
        d.warning_samples
    );
    assert_eq!(
        w(lazymm_trace::WarningKind::MalformedFields),
        0,
        "{:?}",
        d.warning_samples
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Capture options of the tests below, perf checked usable.
fn perf_opts(system_wide: bool) -> CaptureOptions {
    let opts = CaptureOptions {
        echo_stderr: false,
        system_wide,
        ..CaptureOptions::default()
    };
    preflight_check(&opts).expect("perf usable");
    opts
}

fn assert_nothing_left(dir: &std::path::Path) {
    for suf in [".data", ".perf.txt.gz", ".kthreads.txt"] {
        assert!(!dir.join(format!("t{suf}")).exists(), "t{suf} left behind");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A command that cannot be started is refused before perf runs, and no
/// file is left behind.
#[test]
#[ignore = "needs perf with sched tracepoints: cargo test -p lazymm-trace --test capture -- --ignored"]
fn capture_of_a_missing_command_is_an_error_and_leaves_nothing() {
    let opts = perf_opts(true);
    let dir = std::env::temp_dir().join(format!("lazymm-capture-miss-{}", std::process::id()));
    let out = dir.join("t");
    let e = capture(&out, &["/nonexistent/cmd".into()], &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "capture: cannot run `/nonexistent/cmd`: no such file"
    );
    for suf in [".data", ".perf.txt.gz", ".kthreads.txt"] {
        assert!(!dir.join(format!("t{suf}")).exists(), "t{suf} left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A recorded command that fails is an error naming its status; the
/// partial files are removed.
#[test]
#[ignore = "needs perf with sched tracepoints: cargo test -p lazymm-trace --test capture -- --ignored"]
fn capture_of_a_failing_command_is_an_error_and_leaves_nothing() {
    let opts = perf_opts(true);
    let dir = std::env::temp_dir().join(format!("lazymm-capture-fail-{}", std::process::id()));
    let out = dir.join("t");
    let cmd: Vec<OsString> = ["sh", "-c", "exit 3"].iter().map(OsString::from).collect();
    let e = capture(&out, &cmd, &opts).unwrap_err().to_string();
    assert!(
        e.starts_with("capture: the recorded command `sh -c 'exit 3'` failed (exit status: 3)"),
        "{e}"
    );
    assert_nothing_left(&dir);
}

/// `--command-only`: perf without `-a`; the trace still parses.
#[test]
#[ignore = "needs perf with sched tracepoints: cargo test -p lazymm-trace --test capture -- --ignored"]
fn capture_command_only() {
    let opts = perf_opts(false);
    let dir = std::env::temp_dir().join(format!("lazymm-capture-only-{}", std::process::id()));
    let cmd: Vec<OsString> = ["sh", "-c", "sleep 0.1; true"]
        .iter()
        .map(OsString::from)
        .collect();
    let r = capture(&dir.join("t"), &cmd, &opts).expect("capture");
    assert!(
        !r.record_command.iter().any(|a| a == "-a"),
        "{:?}",
        r.record_command
    );
    let s = r.summary.expect("validated");
    assert!(s.events.sched_switch > 0);
    assert!(s.events.sched_process_exec >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}
