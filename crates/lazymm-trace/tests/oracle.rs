//! Independent check of the resolved event stream against the oracle files
//! (`traces/*.oracle.json`): a test-only switch classifier must reproduce the
//! `exec_aware` counts (totals and per CPU) exactly, and, with mm identity
//! reduced to the TGID, the classic `total` / `per_cpu` counts too.

use lazymm_trace::{for_each_event, MmInfo, MmKey, ParseOptions, TraceEvent};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

const KINDS: [&str; 8] = [
    "user_to_user_diff_mm",
    "user_to_user_same_mm",
    "user_to_kernel",
    "kernel_to_kernel",
    "kernel_to_user_lazy_reuse",
    "kernel_to_user_diff_mm",
    "kernel_to_user_lazy_unknown",
    "switches",
];

type Counts = BTreeMap<&'static str, u64>;

fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces")
}

/// Classifies switches; `ident` maps an mm to the identity compared.
fn classify<I: PartialEq + Copy>(
    events: &[TraceEvent],
    ident: impl Fn(MmKey) -> I,
    inferred_only: bool,
) -> (Counts, BTreeMap<u32, Counts>) {
    let mut total: Counts = KINDS.iter().map(|&k| (k, 0)).collect();
    let mut per_cpu: BTreeMap<u32, Counts> = BTreeMap::new();
    let mut lazy: BTreeMap<u32, Option<I>> = BTreeMap::new();
    for ev in events {
        if let TraceEvent::Exec { cpu, new_mm, .. } = *ev {
            // exec loads the new mm on the CPU (exec_mmap / activate_mm).
            lazy.insert(cpu, Some(ident(new_mm)));
            continue;
        }
        let TraceEvent::Switch {
            cpu,
            prev,
            next,
            inferred,
            ..
        } = *ev
        else {
            continue;
        };
        let held = lazy.entry(cpu).or_insert(None);
        let kind = match (prev.mm, next.mm) {
            (Some(p), Some(n)) => {
                *held = Some(ident(n));
                if ident(p) == ident(n) {
                    "user_to_user_same_mm"
                } else {
                    "user_to_user_diff_mm"
                }
            }
            (Some(p), None) => {
                *held = Some(ident(p));
                "user_to_kernel"
            }
            (None, None) => "kernel_to_kernel",
            (None, Some(n)) => {
                let n = ident(n);
                let k = match *held {
                    None => "kernel_to_user_lazy_unknown",
                    Some(h) if h == n => "kernel_to_user_lazy_reuse",
                    Some(_) => "kernel_to_user_diff_mm",
                };
                *held = Some(n);
                k
            }
        };
        let pc = per_cpu
            .entry(cpu)
            .or_insert_with(|| KINDS.iter().map(|&k| (k, 0)).collect());
        if inferred_only && !inferred {
            continue;
        }
        for m in [&mut total, pc] {
            *m.entry(kind).or_default() += 1;
            *m.entry("switches").or_default() += 1;
        }
    }
    (total, per_cpu)
}

fn expect(block: &Value) -> (Counts, BTreeMap<u32, Counts>) {
    let counts = |v: &Value| -> Counts {
        KINDS
            .iter()
            .map(|&k| {
                (
                    k,
                    v[k].as_u64().unwrap_or_else(|| panic!("oracle lacks {k}")),
                )
            })
            .collect()
    };
    let per_cpu = block["per_cpu"]
        .as_object()
        .expect("per_cpu")
        .iter()
        .map(|(c, v)| (c.parse().expect("cpu"), counts(v)))
        .collect();
    (counts(&block["total"]), per_cpu)
}

fn check(name: &str) {
    let dir = traces_dir();
    let trace = dir.join(format!("{name}.perf.txt.gz"));
    let oracle: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.oracle.json"))).expect("oracle"),
    )
    .expect("json");
    let mut events = Vec::new();
    let summary = for_each_event(&trace, &ParseOptions::default(), |e| events.push(*e))
        .unwrap_or_else(|e| panic!("{e}"));
    let mms: Vec<MmInfo> = summary.mms.clone();

    let got = classify(&events, |k| k, false);
    let want = expect(&oracle["exec_aware"]);
    println!("{name}: exec_aware total {:?}", got.0);
    assert_eq!(got, want, "{name}: exec_aware (total, per_cpu) mismatch");
    // Classic model: identity = TGID only.
    let classic = classify(&events, |k| mms[k.index()].tgid, false);
    assert_eq!(
        classic,
        expect(&oracle),
        "{name}: classic (total, per_cpu) mismatch"
    );
    let got = classify(&events, |k| mms[k.index()].tgid, true);
    assert_eq!(
        got,
        expect(&oracle["inferred"]),
        "{name}: inferred block mismatch"
    );

    // Summary counters against the oracle.
    for (k, v) in oracle["events"].as_object().expect("events") {
        let ours = match k.as_str() {
            "sched_switch" => summary.events.sched_switch,
            "sched_process_fork" => summary.events.sched_process_fork,
            "sched_process_exit" => summary.events.sched_process_exit,
            "sched_process_exec" => summary.events.sched_process_exec,
            "sched_process_free" => summary.events.sched_process_free,
            "sched_migrate_task" => summary.events.sched_migrate_task,
            "sched_wakeup_new" => summary.events.sched_wakeup_new,
            other => panic!("unexpected event kind {other}"),
        };
        assert_eq!(Some(ours), v.as_u64(), "{name}: events.{k}");
    }
    let an = &oracle["anomalies"];
    assert_eq!(
        Some(summary.gaps_repaired()),
        an["gaps_filled"].as_u64(),
        "{name}: gaps"
    );
    assert_eq!(
        Some(summary.gaps_after_idle),
        oracle["inferred"]["gaps_after_idle"].as_u64(),
        "{name}: gaps after idle"
    );
    let fallback: Vec<i64> = an["fallback_tids"]
        .as_array()
        .expect("fallback_tids")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    let ours: Vec<i64> = summary
        .anomalies
        .tgid_fallback_tids
        .iter()
        .map(|&t| t.into())
        .collect();
    assert_eq!(ours, fallback, "{name}: fallback tids");
    assert_eq!(
        Some(summary.anomalies.next_tgid_fallback_switches),
        an["next_pid_never_current_fallback_switches"].as_u64(),
        "{name}: next fallback switches"
    );
    assert_eq!(
        Some(summary.anomalies.switch_prefix_tid_ne_prev_pid),
        an["switch_prefix_tid_ne_prev_pid"].as_u64(),
        "{name}: prefix tid != prev_pid"
    );
    assert_eq!(
        Some(summary.anomalies.tid_with_multiple_tgids),
        an["tid_with_multiple_tgids"].as_u64(),
        "{name}: tid with multiple tgids"
    );
    let cpus: Vec<u64> = oracle["cpus_seen"]
        .as_array()
        .expect("cpus")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(
        summary
            .cpus_seen
            .iter()
            .map(|&c| u64::from(c))
            .collect::<Vec<_>>(),
        cpus
    );
    assert!(summary.tgids_available && !summary.per_thread_mm);
    assert_eq!(
        summary.warning_count(),
        0,
        "{name}: {:?}",
        summary.warning_samples
    );
    let first = oracle["first_time"].as_f64().expect("first_time");
    assert_eq!(summary.first_time_us, Some((first * 1e6).round() as u64));
}

#[test]
fn oracle_hackbench_proc() {
    check("hackbench-proc");
}

#[test]
fn oracle_hackbench_thread() {
    check("hackbench-thread");
}

#[test]
fn oracle_sched_pipe() {
    check("sched-pipe");
}

#[test]
fn oracle_build() {
    check("build");
}
