//! Timing mode: simulated time instead of counts.
//!
//! The same runtime and scheme code run on the counting backend
//! ([`crate::counting::CountingPlatform`]), which in timing mode forwards
//! every counted access to a coherence and clock [`model::Model`]: per-CPU
//! clocks, per-line owner and sharers, transfer latency by topology
//! distance, one transfer at a time per line. Machines are data
//! ([`spec::MachineSpec`], `machines/*.toml`). Drivers:
//!
//! * [`wis::run`]: will-it-scale `context_switch1_threads -t N` as run
//!   (N pairs of threads passing a token through pipes, placed as
//!   will-it-scale places them);
//! * [`exit_walk::run`]: PeterZ's adversarial exit (processes walk across
//!   CPUs, then exit) for exits/s, IPIs per CPU per second and exit latency
//!   under load;
//! * [`exit_cost`]: one address-space teardown while every other CPU holds
//!   the mm lazily (the exit latency and IPIs of each scheme);
//! * [`this_machine`]: the real-thread benchmark's shapes (`lazymm bench`'s
//!   ping-pong and free-run), to hold the model against this machine.
//!
//! See `docs/timing.md` for the model, the presets and the published
//! numbers it is checked against.

pub mod exit_walk;
pub mod model;
pub mod rounds;
pub mod spec;
pub mod this_machine;
pub mod trace;
pub mod wis;

use core::cell::RefCell;

use lazymm::{CpuId, Machine, MachineConfig, SchemeKind};
use serde::Serialize;

use crate::counting::CountingPlatform;
use crate::sched::Sched;
use model::{Access, Model, Params};
use spec::MachineSpec;

impl Access {
    /// A store (`rmw == false`) or an RMW.
    #[inline]
    pub fn write(rmw: bool) -> Access {
        if rmw {
            Access::Rmw
        } else {
            Access::Store
        }
    }
}

impl CountingPlatform {
    /// A counting platform in timing mode.
    pub fn timed(model: Model) -> CountingPlatform {
        let mut p = CountingPlatform::default();
        p.timing = Some(RefCell::new(model));
        p
    }

    /// The timing model hook (no-op outside timing mode).
    #[inline]
    pub(crate) fn time(&self, cpu: CpuId, line: u32, a: Access) {
        if let Some(t) = &self.timing {
            t.borrow_mut().access(cpu, line, a);
        }
    }

    /// Runs `f` on the timing model. Panics outside timing mode.
    pub fn model<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let t = self
            .timing
            .as_ref()
            .expect("CountingPlatform::model called outside timing mode");
        f(&mut t.borrow_mut())
    }
}

/// A machine of `spec`'s size in timing mode.
pub fn timed_machine(
    spec: &MachineSpec,
    scheme: SchemeKind,
) -> Result<Machine<CountingPlatform>, String> {
    let n = spec.cpus();
    let model = Model::new(Params::of(spec), n);
    let mut mc = MachineConfig::new(n, spec.arch(), scheme);
    mc.max_mms = (4 * n).max(1024);
    // The kernel the machine's figures were measured on (validated when the
    // file was read).
    mc.options.kernel = lazymm::schemes::KernelOptions::parse(&spec.kernel)?;
    Machine::new(CountingPlatform::timed(model), mc).map_err(|e| e.0)
}

/// Charges the IPIs `cpu` sent during its last step (`sent` scheme IPIs,
/// `flushes` exit-flush IPIs) to its clock: a broadcast (the exit flush,
/// shoot-lazies' `on_each_cpu_mask`) sends all, then waits for the slowest;
/// `smp_call_function_single(.., wait=1)` (hazard+IPI) waits for each in
/// turn. Handlers on the targets are charged by [`charge_handlers`].
pub fn charge_ipis(
    m: &Machine<CountingPlatform>,
    cpu: CpuId,
    scheme: SchemeKind,
    sent: u64,
    flushes: u64,
) {
    m.p.model(|md| {
        let p = md.p.clone();
        let round = p.ipi_delivery + p.ipi_handler;
        let mut t = 0;
        if flushes > 0 {
            t += flushes * p.ipi_send + round;
        }
        if sent > 0 {
            t += if scheme == SchemeKind::Shootdown {
                sent * p.ipi_send + round
            } else {
                sent * (p.ipi_send + round)
            };
        }
        md.clock[cpu] += t;
        md.work[cpu] += t;
    });
}

/// Charges each CPU whose handled-IPI count rose since `before` (per-CPU
/// `ipis_handled + flush_ipis_handled`) one handler per IPI.
pub fn charge_handlers(m: &Machine<CountingPlatform>, before: &[u64]) {
    m.p.model(|md| {
        for (cpu, b) in before.iter().enumerate() {
            let s = m.cpu_stats(cpu);
            let now = s.ipis_handled + s.flush_ipis_handled;
            if now > *b {
                let t = (now - b) * md.p.ipi_handler;
                md.clock[cpu] += t;
                md.work[cpu] += t;
            }
        }
    });
}

/// Per-CPU handled IPIs (for [`charge_handlers`]).
pub fn handled(m: &Machine<CountingPlatform>) -> Vec<u64> {
    (0..m.ncpus)
        .map(|c| {
            let s = m.cpu_stats(c);
            s.ipis_handled + s.flush_ipis_handled
        })
        .collect()
}

/// The IPI accounting of a step-at-a-time driver: after a step of `cpu`,
/// charges what it sent ([`charge_ipis`]) and what each target handled
/// ([`charge_handlers`]). Only the acting CPU of a step sends, so the
/// per-CPU handled counts it keeps are current between steps.
pub struct IpiLedger {
    last_handled: Vec<u64>,
}

impl IpiLedger {
    /// Starts from the machine's current handled counts.
    pub fn new(m: &Machine<CountingPlatform>) -> IpiLedger {
        IpiLedger {
            last_handled: handled(m),
        }
    }

    /// Charges the IPIs `cpu` sent since its stats were `before`.
    pub fn settle(
        &mut self,
        m: &Machine<CountingPlatform>,
        cpu: CpuId,
        scheme: SchemeKind,
        before: &lazymm::CpuStats,
    ) {
        let a = m.cpu_stats(cpu);
        let (si, fi) = (a.ipis - before.ipis, a.flush_ipis - before.flush_ipis);
        if si + fi > 0 {
            charge_ipis(m, cpu, scheme, si, fi);
            charge_handlers(m, &self.last_handled);
            self.last_handled = handled(m);
        }
    }
}

/// A time-ordered event queue of `(time ps, cpu, event)`; ties in time go
/// in push order.
pub struct Events<E: Ord + Copy> {
    heap: std::collections::BinaryHeap<core::cmp::Reverse<(u64, u64, u32, E)>>,
    seq: u64,
}

impl<E: Ord + Copy> Events<E> {
    /// Empty.
    pub fn new() -> Self {
        Events {
            heap: std::collections::BinaryHeap::new(),
            seq: 0,
        }
    }

    /// `e` for `cpu` at `t`.
    pub fn push(&mut self, t: u64, cpu: usize, e: E) {
        self.seq += 1;
        self.heap
            .push(core::cmp::Reverse((t, self.seq, cpu as u32, e)));
    }

    /// The earliest event before `end`, with the CPU's clock brought up to
    /// its time; `None` when none is left before `end`.
    pub fn next(&mut self, m: &Machine<CountingPlatform>, end: u64) -> Option<(u64, usize, E)> {
        let core::cmp::Reverse((t, _, cpu, e)) = self.heap.pop()?;
        if t >= end {
            return None;
        }
        let cpu = cpu as usize;
        m.p.model(|md| md.clock[cpu] = md.clock[cpu].max(t));
        Some((t, cpu, e))
    }
}

impl<E: Ord + Copy> Default for Events<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// An idle `cpu` with a woken task switches to it, paying the machine's
/// `switch`. `false` (nothing done) if the CPU is busy or has nothing queued.
pub fn wake_idle(s: &mut Sched<'_, CountingPlatform>, cpu: CpuId) -> bool {
    if s.curr[cpu].is_some() || s.rq[cpu].is_empty() {
        return false;
    }
    s.m.p.model(|md| {
        let sw = md.switch_cost();
        md.clock[cpu] += sw;
    });
    s.idle_pick(cpu);
    true
}

/// The clock of `cpu` (ps).
pub fn now(m: &Machine<CountingPlatform>, cpu: CpuId) -> u64 {
    m.p.model(|md| md.clock[cpu])
}

/// The cost of one exit.
#[derive(Clone, Debug, Serialize)]
pub struct ExitCost {
    /// Machine preset.
    pub machine: String,
    /// Scheme.
    pub scheme: String,
    /// CPUs holding the mm lazily when it exits.
    pub lazy_cpus: usize,
    /// Simulated time of the final `exit_mm` + `__mmput` on the exiting CPU,
    /// IPIs included (us).
    pub exit_us: f64,
    /// Scheme IPIs sent.
    pub ipis: u64,
    /// Exit-flush IPIs sent.
    pub flush_ipis: u64,
    /// CPUs examined by teardown scans.
    pub scan_steps: u64,
    /// The ledger stayed clean.
    pub clean: bool,
}

/// One address space torn down while `lazy_cpus` other CPUs (the first
/// ones) hold it lazily: each ran a thread of the process, which blocked,
/// then exited; the last thread exits on CPU 0 and pays the teardown.
pub fn exit_cost(
    spec: &MachineSpec,
    scheme: SchemeKind,
    lazy_cpus: usize,
) -> Result<ExitCost, String> {
    let m = timed_machine(spec, scheme)?;
    let n = (lazy_cpus + 1).min(m.ncpus);
    let (exit_ps, ipis, flush_ipis, scans) = {
        let mut s = Sched::new(&m, 1);
        let lead = s.new_process(0).map_err(|e| e.to_string())?;
        let mut threads = vec![lead];
        for c in 1..n {
            threads.push(s.new_thread(lead, c));
        }
        for (c, &t) in threads.iter().enumerate() {
            s.wake(t, c);
            s.schedule(c);
        }
        for c in 1..n {
            s.exit_current(c);
        }
        m.p.model(|md| {
            let t = md.clock.iter().copied().max().unwrap_or(0);
            md.clock.iter_mut().for_each(|c| *c = t);
        });
        let before = m.cpu_stats(0);
        let hb = handled(&m);
        let t0 = m.p.model(|md| md.clock[0]);
        s.exit_current(0);
        let after = m.cpu_stats(0);
        let (si, fi) = (
            after.ipis - before.ipis,
            after.flush_ipis - before.flush_ipis,
        );
        charge_ipis(&m, 0, scheme, si, fi);
        charge_handlers(&m, &hb);
        let t1 = m.p.model(|md| md.clock[0]);
        s.quiesce();
        (t1 - t0, si, fi, after.scan_steps - before.scan_steps)
    };
    let st = m.finish();
    Ok(ExitCost {
        machine: spec.name.clone(),
        scheme: scheme.name().into(),
        lazy_cpus: n - 1,
        exit_us: exit_ps as f64 / 1e6,
        ipis,
        flush_ipis,
        scan_steps: scans,
        clean: st.ledger.uaf == 0 && st.ledger.double_free == 0 && st.ledger.leaked == 0,
    })
}
