//! Captures a short command with perf and parses it, where perf works here.
//! Skips (with the reason printed) where it does not: never fails because
//! perf is absent or not permitted.

use lazymm_trace::{
    capture, preflight_check, CaptureOptions, ParseOptions, TraceEvent, TraceReader,
};
use std::ffi::OsString;

#[test]
fn capture_short_command() {
    let opts = CaptureOptions {
        echo_stderr: false,
        ..CaptureOptions::default()
    };
    if let Err(e) = preflight_check(&opts) {
        println!("SKIPPED: perf capture not possible here: {e}");
        return;
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
            // perf present but recording refused (container, paranoid, ...).
            println!("SKIPPED: perf record failed here: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            return;
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
