//! Bad input and resolution semantics on small synthetic traces.

use lazymm_trace::{
    KthreadOrigin, KthreadSource, MmKey, ParseOptions, PrevState, TraceError, TraceEvent,
    TraceInput, TraceReader, TraceSummary, WarningKind,
};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

fn sw(tgid: i32, tid: i32, cpu: u32, t: u64, prev: i32, state: &str, next: i32) -> String {
    format!(
        "            task {tgid:>5}/{tid:<5} [{cpu:03}] {:>6}.{:06}:       sched:sched_switch: prev_comm=task prev_pid={prev} prev_prio=120 prev_state={state} ==> next_comm=task next_pid={next} next_prio=120\n",
        t / 1_000_000,
        t % 1_000_000
    )
}

fn ev(tgid: i32, tid: i32, cpu: u32, t: u64, name: &str, fields: &str) -> String {
    format!(
        "            task {tgid:>5}/{tid:<5} [{cpu:03}] {:>6}.{:06}: sched:{name}: {fields}\n",
        t / 1_000_000,
        t % 1_000_000
    )
}

fn opts() -> ParseOptions {
    ParseOptions {
        kthreads: KthreadSource::IdleOnly,
        ..ParseOptions::default()
    }
}

fn input(text: &str) -> TraceInput {
    TraceInput::Bytes {
        name: PathBuf::from("mem.perf.txt"),
        data: Arc::from(text.as_bytes()),
    }
}

fn read_all(
    inp: TraceInput,
    o: &ParseOptions,
) -> Result<(Vec<TraceEvent>, TraceSummary), TraceError> {
    let mut r = TraceReader::new(inp, o)?;
    let mut v = Vec::new();
    while let Some(e) = r.next_event()? {
        v.push(e);
    }
    Ok((v, r.finish()))
}

/// (prev tid, prev mm, next tid, next mm, inferred)
type Sw = (i32, Option<MmKey>, i32, Option<MmKey>, bool);

fn switches(evs: &[TraceEvent]) -> Vec<Sw> {
    evs.iter()
        .filter_map(|e| match *e {
            TraceEvent::Switch {
                prev,
                next,
                inferred,
                ..
            } => Some((prev.tid, prev.mm, next.tid, next.mm, inferred)),
            _ => None,
        })
        .collect()
}

fn base() -> String {
    let mut s = String::new();
    s += &sw(100, 100, 0, 1_000_000, 100, "S", 0);
    s += &sw(0, 0, 0, 1_000_010, 0, "R", 100);
    s
}

#[test]
fn clean_synthetic_trace() {
    let (evs, s) = read_all(input(&base()), &opts()).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(s.warning_count(), 0);
    assert_eq!(s.lines, 2);
    assert_eq!(s.first_time_us, Some(1_000_000));
    assert_eq!(s.last_time_us, Some(1_000_010));
    assert_eq!(s.mms.len(), 1);
}

#[test]
fn truncated_gzip_is_an_error_with_line() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces/build.perf.txt.gz");
    let bytes = std::fs::read(&path).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let inp = TraceInput::Bytes {
        name: PathBuf::from("cut.perf.txt.gz"),
        data: Arc::from(cut),
    };
    let err = read_all(inp, &opts()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("cut.perf.txt.gz:"), "{msg}");
    assert!(msg.contains("gzip stream truncated"), "{msg}");
    let line = err.line().unwrap();
    assert!(line > 1000, "{msg}");
    // Also a file on disk.
    let dir = std::env::temp_dir().join(format!("lazymm-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("cut.perf.txt.gz");
    std::fs::write(&p, cut).unwrap();
    let err = TraceReader::open(&p, &opts()).err().unwrap();
    assert!(err.to_string().contains("cut.perf.txt.gz:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_gzip_is_an_error() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(base().as_bytes()).unwrap();
    let mut bytes = gz.finish().unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    bytes[n - 6] ^= 0xff; // CRC/ISIZE
    let inp = TraceInput::Bytes {
        name: PathBuf::from("bad.gz"),
        data: Arc::from(bytes),
    };
    let err = read_all(inp, &opts()).unwrap_err();
    assert!(err.to_string().contains("gzip"), "{err}");
}

#[test]
fn gzip_is_detected_by_magic() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(base().as_bytes()).unwrap();
    let inp = TraceInput::Bytes {
        name: PathBuf::from("no-extension"),
        data: Arc::from(gz.finish().unwrap()),
    };
    let (evs, _) = read_all(inp, &opts()).unwrap();
    assert_eq!(evs.len(), 2);
}

#[test]
fn garbage_lines_warn_or_fail_in_strict_mode() {
    let text = sw(100, 100, 0, 1_000_000, 100, "S", 0)
        + "this is not perf output\n"
        + "\u{0}\u{1}\u{ff} binary [x] junk\n"
        + &sw(0, 0, 0, 1_000_010, 0, "R", 100);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(s.warnings.get(&WarningKind::UnparsedLine), Some(&2));
    assert!(
        s.warning_samples[0].starts_with("mem.perf.txt:2: "),
        "{:?}",
        s.warning_samples
    );
    let strict = ParseOptions {
        strict: true,
        ..opts()
    };
    let err = read_all(input(&text), &strict).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(err.to_string().starts_with("mem.perf.txt:2: "), "{err}");
}

#[test]
fn malformed_fields_are_counted() {
    let text = base()
        + "            task   100/100   [000]      1.000020:       sched:sched_switch: prev_comm=task prev_pid=100 prev_prio=120\n"
        + &ev(100, 100, 0, 1_000_030, "sched_process_exit", "comm=task pid=abc prio=120 group_dead=true");
    let (_, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(
        s.warnings.get(&WarningKind::MalformedFields),
        Some(&2),
        "{:?}",
        s.warning_samples
    );
    assert_eq!(s.events.sched_switch, 2);
}

#[test]
fn unknown_events_warn_or_fail_in_strict_mode() {
    let text = base()
        + "            task   100/100   [000]      1.000020: irq:irq_handler_entry: irq=5 name=foo\n"
        + "            task   100/100   [000]      1.000021: sched:sched_wakeup: comm=a pid=5 prio=1 target_cpu=000\n";
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(s.events.unknown, 2);
    assert_eq!(s.warnings.get(&WarningKind::UnknownEvent), Some(&2));
    let strict = ParseOptions {
        strict: true,
        ..opts()
    };
    let err = read_all(input(&text), &strict).unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert!(err.to_string().contains("irq:irq_handler_entry"), "{err}");
}

#[test]
fn timestamps_out_of_order_are_kept_and_counted() {
    let text = sw(100, 100, 0, 2_000_000, 100, "S", 0) + &sw(0, 0, 0, 1_000_000, 0, "R", 100);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(s.warnings.get(&WarningKind::TimeOutOfOrder), Some(&1));
    assert_eq!(s.first_time_us, Some(2_000_000));
    assert_eq!(s.last_time_us, Some(2_000_000));
}

#[test]
fn cpu_above_limit_is_an_error() {
    let text = base() + &sw(100, 100, 5000, 1_000_020, 100, "S", 0);
    let err = read_all(input(&text), &opts()).unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert!(
        err.to_string()
            .contains("CPU 5000 is above the maximum 4095"),
        "{err}"
    );
    let text = base()
        + &ev(
            100,
            100,
            0,
            1_000_020,
            "sched_migrate_task",
            "comm=a pid=100 prio=120 orig_cpu=0 dest_cpu=9999",
        );
    let err = read_all(input(&text), &opts()).unwrap_err();
    assert!(err.to_string().contains("CPU 9999"), "{err}");
    // 4095 itself is fine.
    let text = base() + &sw(100, 100, 4095, 1_000_020, 100, "S", 0);
    let (_, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(s.cpus_seen, vec![0, 4095]);
}

#[test]
fn missing_sidecar_falls_back_to_heuristic_or_fails_when_explicit() {
    let text = sw(100, 100, 0, 1_000_000, 100, "S", 15).replace(
        "next_comm=task next_pid=15",
        "next_comm=rcu_preempt next_pid=15",
    ) + &sw(15, 15, 0, 1_000_010, 15, "I", 100);
    let auto = ParseOptions::default();
    let (evs, s) = read_all(input(&text), &auto).unwrap();
    assert_eq!(s.kthreads, KthreadOrigin::Heuristic);
    assert_eq!(s.warnings.get(&WarningKind::NoSidecar), Some(&1));
    assert!(
        s.warning_samples[0].contains("mem.kthreads.txt"),
        "{:?}",
        s.warning_samples
    );
    let sw = switches(&evs);
    assert_eq!(sw[0].3, None, "rcu_preempt is a kernel thread by name");
    let explicit = ParseOptions {
        kthreads: KthreadSource::Sidecar(PathBuf::from("/nonexistent/x.kthreads.txt")),
        ..ParseOptions::default()
    };
    let err = read_all(input(&text), &explicit).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/x.kthreads.txt"),
        "{err}"
    );
}

#[test]
fn bad_sidecar_content_is_an_error_with_line() {
    let dir = std::env::temp_dir().join(format!("lazymm-sidecar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let side = dir.join("t.kthreads.txt");
    std::fs::write(&side, "2\n3\nabc\n").unwrap();
    let o = ParseOptions {
        kthreads: KthreadSource::Sidecar(side.clone()),
        ..ParseOptions::default()
    };
    let err = read_all(input(&base()), &o).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("t.kthreads.txt:3: expected a decimal TID, found `abc`"),
        "{err}"
    );
    // Found by convention next to the trace.
    std::fs::write(&side, "15\n").unwrap();
    let trace = dir.join("t.perf.txt");
    std::fs::write(&trace, sw(100, 100, 0, 1, 100, "S", 15)).unwrap();
    let (evs, s) = read_all(TraceInput::Path(trace), &ParseOptions::default()).unwrap();
    assert_eq!(s.kthreads, KthreadOrigin::Sidecar(side));
    assert_eq!(switches(&evs)[0].3, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blank_and_overlong_lines() {
    let long = format!("{}\n", "x".repeat(100_000));
    let text = base() + "\n   \n" + &long + &sw(100, 100, 0, 1_000_020, 100, "S", 0);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(evs.len(), 3);
    assert_eq!(s.warnings.get(&WarningKind::BlankLine), Some(&2));
    assert_eq!(s.warnings.get(&WarningKind::LineTooLong), Some(&1));
    assert_eq!(s.lines, 6);
    if let TraceEvent::Switch { line, .. } = evs[2] {
        assert_eq!(line, 6);
    }
}

#[test]
fn empty_input_is_an_error() {
    let e = read_all(input(""), &opts()).unwrap_err();
    assert_eq!(e.to_string(), "mem.perf.txt: empty trace: no line to read");
    // --lenient does not make an empty file a trace.
    let lenient = ParseOptions {
        lenient: true,
        ..opts()
    };
    assert!(read_all(input(""), &lenient).is_err());
}

/// Deterministic pseudo-random bytes (xorshift), newlines included.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn random_bytes_are_an_error_and_never_echoed_raw() {
    let data = noise(4000);
    let inp = TraceInput::Bytes {
        name: PathBuf::from("rnd.perf.txt"),
        data: Arc::from(&data[..]),
    };
    let e = read_all(inp, &opts()).unwrap_err().to_string();
    assert!(
        e.starts_with("rnd.perf.txt: no sched_switch event could be read in "),
        "{e}"
    );
}

#[test]
fn no_switch_event_is_an_error() {
    let text = "            task   100/100   [000]      1.000000:       sched:sched_process_free: comm=task pid=100 prio=120\n";
    let e = read_all(input(text), &opts()).unwrap_err().to_string();
    assert!(
        e.contains("no sched_switch event could be read in 1 lines"),
        "{e}"
    );
}

#[test]
fn more_unreadable_lines_than_events_needs_lenient() {
    // Two switches, three junk lines.
    let text = base() + "junk one\njunk two\njunk three\n";
    let e = read_all(input(&text), &opts()).unwrap_err().to_string();
    assert!(
        e.starts_with("mem.perf.txt: 3 of 5 lines are unreadable, more than the 2 events read (first: mem.perf.txt:3: "),
        "{e}"
    );
    let lenient = ParseOptions {
        lenient: true,
        ..opts()
    };
    let (evs, s) = read_all(input(&text), &lenient).unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(s.warnings.get(&WarningKind::UnparsedLine), Some(&3));
    // Equal counts are accepted.
    let text = base() + "junk one\njunk two\n";
    assert!(read_all(input(&text), &opts()).is_ok());
}

#[test]
fn binary_bytes_are_escaped_in_warnings() {
    let text = base() + "\u{1b}[31mred\u{7}\n";
    let (_, s) = read_all(input(&text), &opts()).unwrap();
    let w = s.warning_samples.join("\n");
    assert!(w.contains("\\x1b[31mred\\x07"), "{w}");
    assert!(!w.contains('\u{1b}'));
}

#[test]
fn gap_repair_emits_one_inferred_switch() {
    // CPU 1: 100 -> idle, then (unseen idle -> 200), 200 -> 100.
    let text = sw(100, 100, 1, 1_000_000, 100, "S", 0) + &sw(200, 200, 1, 1_000_100, 200, "R", 100);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    let v = switches(&evs);
    assert_eq!(v.len(), 3);
    assert_eq!((v[1].0, v[1].2, v[1].4), (0, 200, true));
    assert_eq!((v[2].0, v[2].2, v[2].4), (200, 100, false));
    assert_eq!(s.gaps_per_cpu.get(&1), Some(&1));
    assert_eq!(s.gaps_after_idle, 1);
    assert_eq!(s.events.inferred_switch, 1);
    assert_eq!(s.events.sched_switch, 2);
    if let TraceEvent::Switch {
        prev_state, line, ..
    } = evs[1]
    {
        assert_eq!(prev_state, PrevState::Unknown);
        assert_eq!(line, 2);
    }
}

#[test]
fn fork_child_resolved_by_look_ahead() {
    // 100 forks 101 (a thread: its own lines show 100/101) and 300 (a process).
    let text = ev(
        100,
        100,
        0,
        1_000_000,
        "sched_process_fork",
        "comm=p pid=100 child_comm=p child_pid=101",
    ) + &ev(
        100,
        100,
        0,
        1_000_001,
        "sched_process_fork",
        "comm=p pid=100 child_comm=p child_pid=300",
    ) + &sw(100, 100, 0, 1_000_002, 100, "S", 101)
        + &sw(100, 101, 0, 1_000_003, 101, "S", 300)
        + &sw(300, 300, 0, 1_000_004, 300, "S", 0);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    let forks: Vec<bool> = evs
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Fork { new_mm, .. } => Some(*new_mm),
            _ => None,
        })
        .collect();
    assert_eq!(forks, vec![false, true]);
    let v = switches(&evs);
    assert_eq!(v[0].1, v[0].3, "thread shares the parent's mm");
    assert_ne!(v[1].1, v[1].3, "process has its own mm");
    assert!(s.anomalies.tgid_fallback_tids.is_empty());
}

#[test]
fn never_current_next_falls_back_to_tid() {
    let text = sw(100, 100, 0, 1_000_000, 100, "S", 68);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    let v = switches(&evs);
    assert_eq!(s.mms[v[0].3.unwrap().index()].tgid, 68);
    assert_eq!(s.anomalies.tgid_fallback_tids, vec![68]);
    assert_eq!(s.anomalies.next_tgid_fallback_switches, 1);
}

#[test]
fn exec_and_group_death_bump_generations() {
    let text = sw(100, 100, 0, 1_000_000, 100, "S", 0)
        + &sw(0, 0, 0, 1_000_001, 0, "R", 100)
        + &ev(
            100,
            100,
            0,
            1_000_002,
            "sched_process_exec",
            "filename=/bin/x pid=100 old_pid=100",
        )
        + &sw(100, 100, 0, 1_000_003, 100, "S", 0)
        + &sw(0, 0, 0, 1_000_004, 0, "R", 100)
        + &ev(
            100,
            100,
            0,
            1_000_005,
            "sched_process_exit",
            "comm=x pid=100 prio=120 group_dead=true",
        )
        + &sw(100, 100, 0, 1_000_006, 100, "R+", 15)
        + &sw(15, 15, 0, 1_000_007, 15, "I", 100)
        + &sw(100, -1, 0, 1_000_008, 100, "Z", 0);
    let o = ParseOptions {
        kthreads: KthreadSource::Heuristic,
        ..ParseOptions::default()
    };
    let text = text.replace(
        "next_comm=task next_pid=15",
        "next_comm=kworker/0:1 next_pid=15",
    );
    let (evs, s) = read_all(input(&text), &o).unwrap();
    let gen = |k: Option<MmKey>| k.map(|k| s.mms[k.index()].generation);
    let v = switches(&evs);
    assert_eq!(gen(v[0].1), Some(0));
    assert_eq!(gen(v[2].1), Some(1), "after exec");
    assert_eq!(
        gen(v[4].1),
        Some(1),
        "exit: the dying task still switches out on its mm"
    );
    assert_eq!(
        gen(v[5].3),
        Some(2),
        "switched in after group death: new generation"
    );
    assert_eq!(gen(v[6].1), Some(2));
    let exec = evs.iter().find_map(|e| match *e {
        TraceEvent::Exec { old_mm, new_mm, .. } => Some((gen(old_mm), gen(Some(new_mm)))),
        _ => None,
    });
    assert_eq!(exec, Some((Some(0), Some(1))));
    assert_eq!(s.anomalies.prefix_tid_unresolved, 1);
}

#[test]
fn default_field_set_without_tgids() {
    // perf's default output: `comm tid [cpu] time: event:`; threads 101 and
    // 102 of one process cannot be grouped, each is its own mm.
    let text = "            p   101 [000]     1.000000: sched:sched_switch: prev_comm=p prev_pid=101 prev_prio=120 prev_state=S ==> next_comm=p next_pid=102 next_prio=120\n\
                            p   102 [000]     1.000001: sched:sched_switch: prev_comm=p prev_pid=102 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120\n";
    let (evs, s) = read_all(input(text), &opts()).unwrap();
    assert!(s.per_thread_mm);
    assert!(!s.tgids_available);
    assert_eq!(s.warnings.get(&WarningKind::NoTgidPrefix), Some(&2));
    let v = switches(&evs);
    assert_ne!(v[0].1, v[0].3);
    assert!(s.anomalies.tgid_fallback_tids.is_empty());
}

#[test]
fn kthreadd_children_are_kernel_threads() {
    let text = ev(
        2,
        2,
        0,
        1_000_000,
        "sched_process_fork",
        "comm=kthreadd pid=2 child_comm=kworker/0:3 child_pid=500",
    ) + &sw(2, 2, 0, 1_000_001, 2, "S", 500);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(s.anomalies.kthreadd_children, 1);
    assert_eq!(switches(&evs)[0].3, None);
    assert!(evs
        .iter()
        .any(|e| matches!(e, TraceEvent::Fork { new_mm: false, child, .. } if child.mm.is_none())));
}

#[test]
fn summary_serializes_to_json() {
    let (_, s) = read_all(input(&base()), &opts()).unwrap();
    let j = serde_json::to_string(&s).unwrap();
    assert!(j.contains("\"sched_switch\":2"), "{j}");
}

#[test]
fn reused_tid_and_reused_tgid() {
    // TID 500 is first a thread of 100; it exits, is freed, and the TID is
    // reused by a new process 500 forked by 200, switched in before any
    // line of its own. Later TGID 500 dies and is reused by another process.
    let text = sw(100, 100, 0, 1_000_000, 100, "S", 500)
        + &ev(
            100,
            500,
            0,
            1_000_001,
            "sched_process_exit",
            "comm=t pid=500 prio=120 group_dead=false",
        )
        + &sw(100, -1, 0, 1_000_002, 500, "X", 0)
        + &ev(
            0,
            0,
            0,
            1_000_003,
            "sched_process_free",
            "comm=t pid=500 prio=120",
        )
        + &sw(0, 0, 0, 1_000_004, 0, "R", 200)
        + &ev(
            200,
            200,
            0,
            1_000_005,
            "sched_process_fork",
            "comm=p pid=200 child_comm=p child_pid=500",
        )
        + &sw(200, 200, 0, 1_000_006, 200, "S", 500)
        + &ev(
            500,
            500,
            0,
            1_000_007,
            "sched_process_exit",
            "comm=p pid=500 prio=120 group_dead=true",
        )
        + &sw(500, 500, 0, 1_000_008, 500, "X", 200)
        + &ev(
            200,
            200,
            0,
            1_000_009,
            "sched_process_fork",
            "comm=p pid=200 child_comm=p child_pid=500",
        )
        + &sw(200, 200, 0, 1_000_010, 200, "S", 500)
        + &sw(500, 500, 0, 1_000_011, 500, "S", 0);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    let info = |k: Option<MmKey>| k.map(|k| (s.mms[k.index()].tgid, s.mms[k.index()].generation));
    let v = switches(&evs);
    assert_eq!(info(v[0].3), Some((100, 0)), "thread of 100");
    assert_eq!(info(v[1].1), Some((100, 0)));
    assert_eq!(info(v[3].3), Some((500, 0)), "reused TID: new process 500");
    assert_eq!(
        info(v[4].1),
        Some((500, 0)),
        "dying task switches out on its mm"
    );
    let forks: Vec<_> = evs
        .iter()
        .filter_map(|e| match *e {
            TraceEvent::Fork { child, new_mm, .. } => Some((info(child.mm), new_mm)),
            _ => None,
        })
        .collect();
    assert_eq!(forks, vec![(Some((500, 0)), true), (Some((500, 1)), true)]);
    assert_eq!(info(v[5].3), Some((500, 1)), "reused TGID: new generation");
    assert_eq!(info(v[6].1), Some((500, 1)));
    assert_eq!(s.anomalies.tid_with_multiple_tgids, 1);
    assert!(s.anomalies.tgid_fallback_tids.is_empty());
}

#[test]
fn exec_changing_the_tid_is_not_a_gap() {
    // Thread 101 of 100 execs and takes over TID 100.
    let text = sw(100, 100, 0, 1_000_000, 100, "S", 101)
        + &ev(
            100,
            100,
            0,
            1_000_001,
            "sched_process_exec",
            "filename=/bin/x pid=100 old_pid=101",
        )
        + &sw(100, 100, 0, 1_000_002, 100, "S", 0);
    let (evs, s) = read_all(input(&text), &opts()).unwrap();
    assert_eq!(s.anomalies.exec_tid_changed, 1);
    assert_eq!(s.gaps_repaired(), 0);
    assert_eq!(switches(&evs).len(), 2);
}
