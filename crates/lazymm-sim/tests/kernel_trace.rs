//! The model against the Linux 6.12 hand-off kernel of `kernel/patches/`,
//! teardown by teardown (docs/kernel.md, "Final: exit by exit").
//!
//! `kernel/results/debug-trace-exit.*` is one capture of the patched kernel
//! (`kernel/run.sh trace debug "400 4000 0 0"`): the scheduler trace with
//! the patch's `lazy_tlb:lazy_tlb_exit_mm` events and the `counter` trace
//! clock, the kernel's own `lazy_tlb_teardown` events of the same run
//! (`.lazytlb.txt`: `<tid> <cpu> <time> <event> <fields>`) and its counters.
//! Replaying the trace through `lightweight` on x86 must give, for every
//! kernel teardown, a teardown by the same task with the same self take
//! (`lazy_tlb_handoff()` ending its caller's own borrow first) and the same
//! references handed, to the same CPUs, and the same lazy-enter count.

use std::path::PathBuf;

use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayConfig, ReplayReport};
use lazymm_trace::{KthreadSource, ParseOptions};

fn results() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kernel/results")
}

fn replay_capture() -> ReplayReport {
    replay_named("debug-trace-exit", SchemeKind::Lightweight)
}

/// Replays `kernel/results/NAME.perf.txt.gz` through `scheme` on x86.
fn replay_named(name: &str, scheme: SchemeKind) -> ReplayReport {
    let path = results().join(format!("{name}.perf.txt.gz"));
    let opts = ParseOptions {
        kthreads: KthreadSource::Sidecar(results().join(format!("{name}.kthreads.txt"))),
        ..ParseOptions::default()
    };
    let summary = scan(&path, &opts).unwrap();
    replay(
        &path,
        &opts,
        &summary,
        &ReplayConfig {
            scheme,
            arch: Arch::X86,
            options: Default::default(),
        },
    )
    .unwrap()
}

/// One kernel teardown: tid, CPU, self take, references given, and the CPUs
/// given one (its `lazy_tlb_handoff` events, which precede it).
type KernelTeardown = (i32, u32, u64, u64, Vec<u32>);

/// The kernel's `lazy_tlb_teardown` events, with their hand-offs.
fn kernel_teardowns() -> Vec<KernelTeardown> {
    let p = results().join("debug-trace-exit.lazytlb.txt");
    let text = std::fs::read_to_string(&p).unwrap();
    let field = |line: &str, k: &str| -> u64 {
        let at = line
            .find(k)
            .unwrap_or_else(|| panic!("{}: no {k} in {line}", p.display()));
        line[at + k.len()..]
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{}: bad {k} in {line}", p.display()))
    };
    let mut pending: std::collections::BTreeMap<i32, Vec<u32>> = Default::default();
    let mut out = Vec::new();
    for l in text.lines() {
        let mut w = l.split_whitespace();
        let tid: i32 = w.next().and_then(|v| v.parse().ok()).unwrap();
        let cpu: u32 = w.next().and_then(|v| v.parse().ok()).unwrap();
        if l.contains(" lazy_tlb_handoff ") {
            pending
                .entry(tid)
                .or_default()
                .push(field(l, " cpu=") as u32);
        } else if l.contains(" lazy_tlb_teardown ") {
            let mut cpus = pending.remove(&tid).unwrap_or_default();
            cpus.sort_unstable();
            out.push((tid, cpu, field(l, "self_take="), field(l, "given="), cpus));
        }
    }
    out
}

#[test]
fn replay_matches_the_hand_off_kernel_teardown_by_teardown() {
    let r = replay_capture();
    let kernel = kernel_teardowns();
    let model: Vec<_> = r.teardowns.iter().filter(|t| t.event != "end").collect();
    // kernel/results/debug-trace-exit.stats.txt, trace-off - trace-on:
    // scans 537, teardown_self_takes 268, handoffs_given 11, lazy_enters
    // 4828 (switch 4280 + exit 548).
    assert_eq!(kernel.len(), 537);
    assert_eq!(model.len(), 537);
    assert_eq!(r.run.lazy_enters, 4828);
    assert_eq!(model.iter().map(|t| t.self_takes).sum::<u64>(), 268);
    assert_eq!(model.iter().map(|t| t.handoffs).sum::<u64>(), 11);
    // No repair was needed; every exit_mm event found its task running.
    let an = &r.anomalies;
    assert_eq!(
        (
            an.exec_without_switch_in,
            an.exit_without_switch_in,
            an.forced_idle,
            an.identity_changes,
            an.exit_mm_not_running,
            an.exit_put_not_running
        ),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!((r.run.uaf, r.run.double_free, r.run.leaked), (0, 0, 0));
    // Matched per task, in order: same self take and hand-offs everywhere;
    // the CPU differs only for the 4 execs whose task migrated between
    // exec_mmap() (the kernel's teardown) and sched_process_exec (the
    // replay's), docs/kernel.md.
    let mut by_tid: std::collections::BTreeMap<i32, Vec<_>> = Default::default();
    for t in &model {
        by_tid.entry(t.tid).or_default().push(*t);
    }
    let mut seen: std::collections::BTreeMap<i32, usize> = Default::default();
    let mut other_cpu = Vec::new();
    for (tid, cpu, self_take, given, cpus) in &kernel {
        let (tid, cpu) = (*tid, *cpu);
        let i = seen.entry(tid).or_default();
        let m = by_tid
            .get(&tid)
            .and_then(|v| v.get(*i))
            .unwrap_or_else(|| panic!("kernel teardown by tid {tid} has no model teardown"));
        *i += 1;
        let mut model_cpus = m.handoff_cpus.clone();
        model_cpus.sort_unstable();
        assert_eq!(
            (m.self_takes, m.handoffs, &model_cpus),
            (*self_take, *given, cpus),
            "tid {tid}: model (self take, hand-offs, their CPUs) vs kernel"
        );
        if m.cpu != cpu {
            assert_eq!(m.event, "exec", "tid {tid}");
            other_cpu.push(tid);
        }
    }
    assert_eq!(other_cpu, [125, 439, 455, 463]);
}

/// The stock kernel (`MMU_LAZY_TLB_REFCOUNT`, the same series with the
/// hand-off off) against `refcount`, same capture method
/// (`kernel/run.sh trace stock-debug "400 4000 0 0"`;
/// `kernel/results/stock-debug-trace-exit.stats.txt`, trace-off -
/// trace-on: lazy_enters 3288, mm_count_rmws 6576, mm_frees 537).
#[test]
fn replay_matches_the_stock_kernel() {
    let r = replay_named("stock-debug-trace-exit", SchemeKind::Refcount);
    assert_eq!(r.run.lazy_enters, 3288);
    let in_trace = r.teardowns.iter().filter(|t| t.event != "end").count();
    assert_eq!(in_trace, 537);
    let an = &r.anomalies;
    assert_eq!(
        (
            an.forced_idle,
            an.exit_mm_not_running,
            an.exit_put_not_running
        ),
        (0, 0, 0)
    );
    assert_eq!((r.run.uaf, r.run.double_free, r.run.leaked), (0, 0, 0));
}
