//! The round-based synthetic workloads ([`crate::workloads`]: the ping-pongs,
//! exit-storm, fork-exec-exit, kthread-mix, hotplug) in simulated time.
//!
//! The workload runs unchanged through [`Sched`] on a timed machine: every
//! access of the runtime and the scheme is priced by the coherence model at
//! its CPU's clock. What the scheme code does not do through atomics is
//! charged after each CPU's turn: the machine's `switch` per context switch
//! the turn made, and the IPIs it sent (sender and handlers, as in
//! [`super::IpiLedger`]). A round ends when its slowest turn ends: at the
//! end of each round every clock moves to the latest one (the drivers'
//! rounds are lock-step, so a CPU cannot run ahead of a wake-up that
//! another CPU's turn in the same round caused). This is coarser than
//! [`super::wis`] (no wake-up latency, no idle time inside a round): the
//! figures are the scheme's cost per switch and per exit under the
//! workload's mix, on the preset's topology.

use lazymm::{CpuStats, SchemeKind};
use serde::Serialize;

use super::model::LineTime;
use super::spec::MachineSpec;
use super::{timed_machine, IpiLedger};
use crate::run::{report, RunReport};
use crate::sched::Sched;
use crate::workloads::{self, WorkloadKind};

/// The result of one timed run of a round-based workload.
#[derive(Clone, Debug, Serialize)]
pub struct RoundsResult {
    /// Machine preset.
    pub machine: String,
    /// Scheme.
    pub scheme: String,
    /// Workload.
    pub workload: String,
    /// CPUs.
    pub cpus: usize,
    /// Rounds asked for.
    pub rounds: u64,
    /// Simulated time of the whole run (us), the final exits included.
    pub simulated_us: f64,
    /// Context switches per simulated second, all CPUs.
    pub switches_per_s: f64,
    /// Address spaces torn down per simulated second.
    pub exits_per_s: f64,
    /// IPIs (scheme + flush) sent per CPU per simulated second.
    pub ipis_per_cpu_s: f64,
    /// Simulated time of the runtime's and the scheme's own accesses and
    /// IPIs (waits for lines included, `switch` not), all CPUs, per context
    /// switch (ns).
    pub scheme_ns_per_switch: f64,
    /// The lines that spent most time moving.
    pub hottest: Vec<LineTime>,
    /// The exact counts of the same run (identical to the untimed run's).
    pub counts: RunReport,
}

/// Runs `workload` for `rounds` rounds of `scheme` on `spec`.
pub fn run(
    spec: &MachineSpec,
    scheme: SchemeKind,
    workload: WorkloadKind,
    rounds: u64,
    seed: u64,
) -> Result<RoundsResult, String> {
    let m = timed_machine(spec, scheme)?;
    let n = m.ncpus;
    let switch = m.p.model(|md| md.p.switch);
    {
        let mut s = Sched::new(&m, seed);
        let last: Vec<CpuStats> = (0..n).map(|c| m.cpu_stats(c)).collect();
        let last = std::rc::Rc::new(std::cell::RefCell::new(last));
        let ledger = std::rc::Rc::new(std::cell::RefCell::new(IpiLedger::new(&m)));
        let (l2, g2) = (last.clone(), ledger.clone());
        s.turn_hook = Some(Box::new(move |m, cpu| {
            settle(
                m,
                cpu,
                scheme,
                switch,
                &mut l2.borrow_mut(),
                &mut g2.borrow_mut(),
            );
        }));
        s.round_hook = Some(Box::new(|m| {
            m.p.model(|md| {
                let t = md.clock.iter().copied().max().unwrap_or(0);
                md.clock.iter_mut().for_each(|c| *c = t);
            });
        }));
        workloads::run(&mut s, workload, rounds).map_err(|e| e.to_string())?;
        s.quiesce();
        // The set-up before the first round and the final exits.
        for c in 0..n {
            settle(
                &m,
                c,
                scheme,
                switch,
                &mut last.borrow_mut(),
                &mut ledger.borrow_mut(),
            );
        }
    }
    let (end, scheme_ps, hottest) = m.p.model(|md| {
        (
            md.clock.iter().copied().max().unwrap_or(0),
            md.work.iter().sum::<u64>(),
            md.hottest(4),
        )
    });
    let counts = report(&m, scheme, workload.name(), seed);
    let secs = end as f64 * 1e-12;
    let per_s = |x: u64| if secs > 0.0 { x as f64 / secs } else { 0.0 };
    Ok(RoundsResult {
        machine: spec.name.clone(),
        scheme: scheme.name().into(),
        workload: workload.name().into(),
        cpus: n,
        rounds,
        simulated_us: secs * 1e6,
        switches_per_s: per_s(counts.switches),
        exits_per_s: per_s(counts.exits),
        ipis_per_cpu_s: per_s(counts.ipis + counts.flush_ipis) / n as f64,
        scheme_ns_per_switch: if counts.switches > 0 {
            scheme_ps as f64 / 1000.0 / counts.switches as f64
        } else {
            0.0
        },
        hottest,
        counts,
    })
}

/// After `cpu`'s turn: `switch` per context switch it made since `last`,
/// and the IPIs it sent.
fn settle(
    m: &lazymm::Machine<crate::CountingPlatform>,
    cpu: usize,
    scheme: SchemeKind,
    switch: u64,
    last: &mut [CpuStats],
    ledger: &mut IpiLedger,
) {
    let before = last[cpu];
    let now = m.cpu_stats(cpu);
    let d = now.switches() - before.switches();
    if d > 0 {
        m.p.model(|md| md.clock[cpu] += d * switch);
    }
    ledger.settle(m, cpu, scheme, &before);
    last[cpu] = m.cpu_stats(cpu);
}
