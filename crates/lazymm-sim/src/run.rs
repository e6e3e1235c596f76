//! One simulated run: a scheme on a profile and a workload, counted.

use lazymm::schemes::SchemeOptions;
use lazymm::{Arch, Machine, MachineConfig, SchemeKind};
use serde::Serialize;

use crate::counting::{AccessCounts, CountingPlatform};
use crate::sched::Sched;
use crate::workloads::{self, WorkloadKind};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Scheme.
    pub scheme: SchemeKind,
    /// Profile.
    pub arch: Arch,
    /// CPUs.
    pub cpus: usize,
    /// Workload.
    pub workload: WorkloadKind,
    /// Seed.
    pub seed: u64,
    /// Scheduler rounds (each gives every CPU a turn).
    pub rounds: u64,
    /// Scheme options.
    pub options: SchemeOptions,
}

/// Switches by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Transitions {
    /// user -> user, different mm.
    pub user_to_user_diff_mm: u64,
    /// user -> user, same mm.
    pub user_to_user_same_mm: u64,
    /// user -> kernel.
    pub user_to_kernel: u64,
    /// kernel -> kernel.
    pub kernel_to_kernel: u64,
    /// kernel -> user, same mm as lazily held.
    pub kernel_to_user_lazy_reuse: u64,
    /// kernel -> user, another mm.
    pub kernel_to_user_diff_mm: u64,
    /// kernel -> user, nothing held before.
    pub kernel_to_user_lazy_unknown: u64,
    /// Total.
    pub switches: u64,
}

impl Transitions {
    /// `self - earlier`, field by field.
    pub fn since(&self, e: &Transitions) -> Transitions {
        Transitions {
            user_to_user_diff_mm: self.user_to_user_diff_mm - e.user_to_user_diff_mm,
            user_to_user_same_mm: self.user_to_user_same_mm - e.user_to_user_same_mm,
            user_to_kernel: self.user_to_kernel - e.user_to_kernel,
            kernel_to_kernel: self.kernel_to_kernel - e.kernel_to_kernel,
            kernel_to_user_lazy_reuse: self.kernel_to_user_lazy_reuse - e.kernel_to_user_lazy_reuse,
            kernel_to_user_diff_mm: self.kernel_to_user_diff_mm - e.kernel_to_user_diff_mm,
            kernel_to_user_lazy_unknown: self.kernel_to_user_lazy_unknown
                - e.kernel_to_user_lazy_unknown,
            switches: self.switches - e.switches,
        }
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Transitions) {
        self.user_to_user_diff_mm += o.user_to_user_diff_mm;
        self.user_to_user_same_mm += o.user_to_user_same_mm;
        self.user_to_kernel += o.user_to_kernel;
        self.kernel_to_kernel += o.kernel_to_kernel;
        self.kernel_to_user_lazy_reuse += o.kernel_to_user_lazy_reuse;
        self.kernel_to_user_diff_mm += o.kernel_to_user_diff_mm;
        self.kernel_to_user_lazy_unknown += o.kernel_to_user_lazy_unknown;
        self.switches += o.switches;
    }

    /// From the runtime's counters.
    pub fn of(s: &lazymm::CpuStats) -> Self {
        Transitions {
            user_to_user_diff_mm: s.user_to_user_diff_mm,
            user_to_user_same_mm: s.user_to_user_same_mm,
            user_to_kernel: s.user_to_kernel,
            kernel_to_kernel: s.kernel_to_kernel,
            kernel_to_user_lazy_reuse: s.kernel_to_user_lazy_reuse,
            kernel_to_user_diff_mm: s.kernel_to_user_diff_mm,
            kernel_to_user_lazy_unknown: s.kernel_to_user_lazy_unknown,
            switches: s.switches(),
        }
    }
}

/// Everything a run reports: exact counts. Time comes from the timing mode
/// ([`crate::timing`]), not from a constant price per count.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Scheme id.
    pub scheme: String,
    /// Workload (or trace) name.
    pub workload: String,
    /// Profile.
    pub arch: String,
    /// CPUs.
    pub cpus: usize,
    /// Seed.
    pub seed: u64,
    /// Why the scheme is expected to fail the ledger, if it is.
    pub known_unsafe: Option<String>,
    /// Switches by kind.
    pub transitions: Transitions,
    /// Context switches.
    pub switches: u64,
    /// Lazy borrows begun (user->kernel, exit_mm, kthread_unuse_mm).
    pub lazy_enters: u64,
    /// Address spaces torn down (`__mmput`).
    pub exits: u64,
    /// All atomic accesses.
    pub access: AccessCounts,
    /// The part of `access` made by teardown work.
    pub teardown_access: AccessCounts,
    /// RMWs on a line another CPU also uses.
    pub shared_rmw: u64,
    /// RMWs on mm `count` lines.
    pub count_rmw: u64,
    /// Coherence transfers.
    pub coherence_transfers: u64,
    /// Full fences.
    pub fences: u64,
    /// Scheme IPIs (shoot-down, hazard+IPI).
    pub ipis: u64,
    /// Exit-flush IPIs the architecture sends anyway.
    pub flush_ipis: u64,
    /// CPUs examined by teardown scans.
    pub scan_steps: u64,
    /// References handed over by fix-ups.
    pub handoffs: u64,
    /// Teardowns that ended their calling task's own lazy borrow first
    /// (`lightweight`; the kernel's `teardown_self_takes`).
    pub self_takes: u64,
    /// Frees deferred out of interrupts-off context.
    pub frees_deferred: u64,
    /// `mmput_async` calls that dropped the last `users` reference and
    /// queued `__mmput` to a kworker (kernel/fork.c mmput_async; the
    /// kworker's teardowns are counted in `exits`).
    pub async_mmputs: u64,
    /// PREEMPT_RT (option `preempt-rt`): final `mm_count` drops in
    /// `finish_task_switch` queued to `__mmdrop_delayed` with `call_rcu`
    /// (include/linux/sched/mm.h mmdrop_sched); each is also in
    /// `frees_deferred`. 0 without the option.
    pub rcu_delayed_drops: u64,
    /// Frees that ran with interrupts off.
    pub frees_irqs_off: u64,
    /// Most torn-down-but-unfreed mms at once.
    pub peak_pinned: u64,
    /// Uses after free.
    pub uaf: u64,
    /// Double frees.
    pub double_free: u64,
    /// Leaked mms.
    pub leaked: u64,
    /// Shared-line RMWs per switch (switch path only).
    pub shared_rmw_per_switch: f64,
    /// Coherence transfers per switch (switch path only).
    pub transfers_per_switch: f64,
    /// IPIs (scheme + flush) per exit.
    pub ipis_per_exit: f64,
    /// Scan steps per exit.
    pub scan_steps_per_exit: f64,
    /// Lazy round trips per exit (how many unlazies one exit amortises).
    pub lazy_enters_per_exit: f64,
    /// First violations, for humans.
    pub violations: Vec<String>,
}

impl RunReport {
    /// Did the ledger stay clean?
    pub fn clean(&self) -> bool {
        self.uaf == 0 && self.double_free == 0 && self.leaked == 0
    }
}

pub(crate) fn ratio(a: f64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a / b as f64
    }
}

/// Builds the report of a finished machine.
pub fn report(
    m: &Machine<CountingPlatform>,
    scheme: SchemeKind,
    workload: &str,
    seed: u64,
) -> RunReport {
    let st = m.finish();
    let all = m.p.counts();
    let td = m.p.teardown_counts();
    let sw = all.since(&td);
    let c = st.cpu;
    let switches = c.switches();
    let exits = c.teardowns;
    let ipis_all = c.ipis + c.flush_ipis;
    RunReport {
        scheme: scheme.name().into(),
        workload: workload.into(),
        arch: m.arch.name().into(),
        cpus: m.ncpus,
        seed,
        known_unsafe: scheme
            .known_unsafe_with(&m.opts.kernel, workload == "hotplug")
            .map(String::from),
        transitions: Transitions::of(&c),
        switches,
        lazy_enters: c.lazy_enters,
        exits,
        access: all,
        teardown_access: td,
        shared_rmw: all.shared_rmw,
        count_rmw: all.count_rmws(),
        coherence_transfers: all.coherence_transfers,
        fences: all.fences,
        ipis: c.ipis,
        flush_ipis: c.flush_ipis,
        scan_steps: c.scan_steps,
        handoffs: c.handoffs,
        self_takes: c.self_takes,
        frees_deferred: c.frees_deferred,
        async_mmputs: c.async_mmputs,
        rcu_delayed_drops: c.rcu_delayed_drops,
        frees_irqs_off: st.ledger.frees_irqs_off,
        peak_pinned: st.peak_pinned,
        uaf: st.ledger.uaf,
        double_free: st.ledger.double_free,
        leaked: st.ledger.leaked,
        shared_rmw_per_switch: ratio(sw.shared_rmw as f64, switches),
        transfers_per_switch: ratio(sw.coherence_transfers as f64, switches),
        ipis_per_exit: ratio(ipis_all as f64, exits),
        scan_steps_per_exit: ratio(c.scan_steps as f64, exits),
        lazy_enters_per_exit: ratio(c.lazy_enters as f64, exits),
        violations: m
            .ledger
            .violations()
            .iter()
            .map(|v| {
                format!(
                    "{:?} of mm {}#{} by cpu {} at {}",
                    v.kind, v.mm.idx, v.mm.gen, v.cpu as i64, v.site
                )
            })
            .collect(),
    }
}

/// Builds a machine for `cfg` (counting backend).
pub fn machine(cfg: &RunConfig) -> Result<Machine<CountingPlatform>, String> {
    let mut mc = MachineConfig::new(cfg.cpus, cfg.arch, cfg.scheme);
    mc.options = cfg.options;
    mc.max_mms = (8 * cfg.cpus).max(1024);
    Machine::new(CountingPlatform::new(), mc).map_err(|e| e.0)
}

/// Runs one configuration to completion and reports.
pub fn run(cfg: &RunConfig) -> Result<RunReport, String> {
    let m = machine(cfg)?;
    {
        let mut s = Sched::new(&m, cfg.seed);
        workloads::run(&mut s, cfg.workload, cfg.rounds).map_err(|e| e.to_string())?;
        s.quiesce();
    }
    Ok(report(&m, cfg.scheme, cfg.workload.name(), cfg.seed))
}
