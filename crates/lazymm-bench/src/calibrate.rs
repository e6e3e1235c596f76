//! This machine's cost of the operations the cost model prices: an atomic RMW
//! on a line the CPU owns, an RMW on a line two cores fight over, a one-way
//! cache-line hand-off, and a full fence. Printed next to the simulator's
//! x86 table (`lazymm_sim::cost::CostTable`) so a reader can see how the model
//! compares with this machine. Measured, never asserted.
//!
//! The machine may be shared with other jobs, so every figure is taken from
//! many short samples, the threads released together by a spinning barrier
//! for each; a two-thread sample counts only if the threads' timed intervals
//! overlapped by at least 90% (otherwise the "contended" RMWs were not
//! contended at all). Reported: the median of the kept samples, and their
//! count.

use std::hint::black_box;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lazymm::{Arch, Machine, MachineConfig, Next, SchemeKind, StdPlatform};
use lazymm_sim::cost::CostTable;
use lazymm_sim::timing::spec::{Figure as SpecFigure, MachineSpec};
use lazymm_sim::timing::this_machine::{
    hold_for_contended, latency_for_handoff, steal_for_handoff, switch_for_runtime,
    wakeup_for_pingpong,
};
use serde::Serialize;

use crate::switches::spin_wait;
use crate::Padded;

/// One figure: median ns/op over the samples kept.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Figure {
    /// Median ns per operation over kept samples.
    pub ns: f64,
    /// 10th percentile (the least disturbed samples).
    pub p10_ns: f64,
    /// Samples kept.
    pub samples: usize,
    /// Samples taken.
    pub taken: usize,
}

/// What [`calibrate`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// Threads used for the multi-thread figures.
    pub threads: usize,
    /// `fetch_add(SeqCst)` (x86: `lock xadd`) on a line only this thread
    /// touches, one thread.
    pub local_rmw: Figure,
    /// The same with every thread hammering its own padded counter at once.
    pub local_rmw_parallel: Figure,
    /// `fetch_add(SeqCst)` with every thread hammering one counter at once
    /// (throughput: threads x wall time / all operations; no overlap
    /// filter, see [`sampled_with`]).
    pub shared_rmw: Figure,
    /// One-way hand-off of a line between threads that take turns (a token
    /// passed by RMW): each RMW is on a line the other core wrote last, so
    /// one line transfer plus the waiter noticing it.
    pub handoff: Figure,
    /// What a steal adds to a hand-off: before passing the token, after a
    /// little local work, the holder RMWs a second line the other core
    /// RMW'd on its turn (refcount's `mmdrop`; [`steal`]). Per hand-off.
    pub steal: Figure,
    /// One-way latency of a cache-line transfer: two threads ping-pong
    /// plain stores through two lines (each writes one line and spins
    /// reading the other): half a round trip.
    pub transfer: Figure,
    /// `fence(SeqCst)` (x86: `mfence`) after a store, minus the store alone.
    pub fence: Figure,
    /// The runtime's own work per context switch: one thread alone runs
    /// `Machine<StdPlatform>` + `lightweight` (which touches no shared line
    /// alone) through `switch_to(User)` + `switch_to(Kernel)`; half the
    /// round trip, ledger and bookkeeping included. The timing model's
    /// `switch` for this machine.
    pub runtime_switch: Figure,
    /// One ping-pong turn of two threads on private machines, each turn a
    /// switch to the user task, the pass, a switch back ([`woken_switch`]):
    /// the runtime's switch right after a wake-up.
    pub woken_switch: Figure,
    /// Local work then an RMW, one thread on a private line, per operation
    /// ([`contended`]).
    pub contended_solo: Figure,
    /// The same, 2 threads on one shared line, per operation per thread.
    pub contended: Figure,
    /// The timestamp counter's rate (x86_64: `rdtsc` ticks per ns, close to
    /// the nominal core clock), to turn ns into approximate cycles.
    pub tsc_ghz: Option<f64>,
    /// `shared_rmw / local_rmw` (medians).
    pub measured_shared_over_local: f64,
    /// `handoff / local_rmw` (medians): the counterpart of the model's
    /// `transfer / local_rmw` (an RMW on a line another CPU wrote last).
    pub measured_handoff_over_local: f64,
    /// `transfer / local_rmw` (medians; the store ping-pong, which on this
    /// VM degrades badly when the two vCPUs sit far apart on the host).
    pub measured_transfer_over_local: f64,
    /// `fence / local_rmw` (medians).
    pub measured_fence_over_local: f64,
    /// The simulator's x86 table.
    pub model: CostTable,
    /// `model.transfer / model.local_rmw`.
    pub model_transfer_over_local: f64,
    /// `model.fence / model.local_rmw`.
    pub model_fence_over_local: f64,
}

/// A reusable spinning barrier (yields after a while, for busy machines).
struct SpinBarrier {
    n: u64,
    arrived: Padded<AtomicU64>,
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        SpinBarrier {
            n: n as u64,
            arrived: Padded(AtomicU64::new(0)),
        }
    }

    /// Waits for round `round` (0, 1, 2, ...) to be complete.
    fn wait(&self, round: u64) {
        // Ordering: AcqRel/Acquire: a barrier.
        self.arrived.0.fetch_add(1, Ordering::AcqRel);
        let target = (round + 1) * self.n;
        let mut spins = 0;
        while self.arrived.0.load(Ordering::Acquire) < target {
            spin_wait(&mut spins);
        }
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

/// Takes `samples` samples on `threads` threads (thread `t` pinned to core
/// `t`), released together by a spinning barrier; in each, thread `t` runs
/// `f(t)`, which returns its operation count. A sample's figure is the mean
/// over threads of (its time / its operations); multi-thread samples whose
/// intervals overlapped less than 90% are dropped (on a machine shared with
/// other jobs, one thread may have run while the other was descheduled: its
/// "contended" operations were not contended).
pub fn sampled<F>(threads: usize, samples: usize, f: F) -> Figure
where
    F: Fn(usize) -> u64 + Sync,
{
    sampled_with(threads, samples, true, f)
}

/// [`sampled`], optionally without the overlap filter: then a sample's
/// figure is `threads * (last end - first start) / total operations` (for
/// RMWs on one contended line, where the hardware need not be fair: one
/// core may finish its share long before the other, so per-thread intervals
/// would not overlap although every operation was contended).
pub fn sampled_with<F>(threads: usize, samples: usize, overlap_filter: bool, f: F) -> Figure
where
    F: Fn(usize) -> u64 + Sync,
{
    let barrier = SpinBarrier::new(threads);
    let epoch = Instant::now();
    let per_thread: Vec<Vec<(f64, f64, u64)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (f, barrier) = (&f, &barrier);
                s.spawn(move || {
                    crate::switches::pin_to_core(t);
                    let mut v = Vec::with_capacity(samples);
                    for r in 0..samples as u64 {
                        barrier.wait(r);
                        let a = epoch.elapsed().as_nanos() as f64;
                        let ops = f(t);
                        let b = epoch.elapsed().as_nanos() as f64;
                        v.push((a, b, ops));
                    }
                    v
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let mut kept = Vec::new();
    for i in 0..samples {
        let iv: Vec<(f64, f64, u64)> = per_thread.iter().map(|v| v[i]).collect();
        let start = iv.iter().map(|x| x.0).fold(f64::MIN, f64::max);
        let end = iv.iter().map(|x| x.1).fold(f64::MAX, f64::min);
        let longest = iv.iter().map(|x| x.1 - x.0).fold(0.0, f64::max);
        if !overlap_filter {
            let first = iv.iter().map(|x| x.0).fold(f64::MAX, f64::min);
            let last = iv.iter().map(|x| x.1).fold(f64::MIN, f64::max);
            let ops: u64 = iv.iter().map(|x| x.2).sum();
            kept.push(threads as f64 * (last - first) / ops.max(1) as f64);
            continue;
        }
        if threads > 1 && (end - start) < 0.9 * longest {
            continue;
        }
        let per_op = iv
            .iter()
            .map(|x| (x.1 - x.0) / x.2.max(1) as f64)
            .sum::<f64>()
            / threads as f64;
        kept.push(per_op);
    }
    let n = kept.len();
    Figure {
        p10_ns: percentile(&mut kept, 0.1),
        ns: percentile(&mut kept, 0.5),
        samples: n,
        taken: samples,
    }
}

const OPS: u64 = 20_000;

fn rmw_burst(a: &AtomicU64) -> u64 {
    for _ in 0..OPS {
        a.fetch_add(1, Ordering::SeqCst);
    }
    OPS
}

fn handoff(threads: usize, samples: usize) -> Figure {
    handoff_with(threads, samples, false, 0)
}

/// Dependent multiply-adds the turn holder runs before passing the token
/// in the [`steal`] patterns: in real code a steal follows the code that
/// leads to it (refcount's `mmdrop` ends a context switch), and a core
/// issues a store's ownership request as soon as its address is known, so
/// the local work before it can hide part of the transfer. An RMW right
/// after a spin loop's exit (no work) is the worst case and no switch path's
/// case. About 20 multiplies: the order of the runtime's own switch work.
const STEAL_WORK: u64 = 20;

fn local_work(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(x.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(i));
    }
    x
}

/// The hand-off pattern; the turn holder first runs `work` local
/// multiply-adds, and with `steal` it then RMWs a second line `y` before
/// passing the token. The previous holder RMW'd `y` on its turn, so each
/// such RMW takes a line another core holds modified while this one has no
/// copy: a steal, on the critical path (refcount's `mmdrop` of `mm_count`
/// on the switch to the user task, after the other CPU's `mmgrab`).
fn handoff_with(threads: usize, samples: usize, steal: bool, work: u64) -> Figure {
    let token = Padded(AtomicU64::new(0));
    let y = Padded(AtomicU64::new(0));
    let n = threads as u64;
    let per_sample = 2_000u64;
    sampled(threads, samples, |t| {
        // Each sample: every thread takes `per_sample` turns. The token
        // keeps counting across samples, so turn order is preserved.
        let mut mine = 0;
        let mut spins = 0;
        while mine < per_sample {
            // Ordering: Acquire/Release make it a real hand-off, as a
            // wake-up is.
            let v = token.0.load(Ordering::Acquire);
            if v % n == t as u64 {
                if work > 0 {
                    black_box(local_work(work));
                }
                if steal {
                    // Ordering: SeqCst, as the kernel's value-returning
                    // atomics (`atomic_dec_and_test` in `mmdrop`).
                    y.0.fetch_add(1, Ordering::SeqCst);
                }
                // Ordering: AcqRel: Release pairs with the other thread's
                // Acquire load of the token above (it sees this turn's
                // writes, `y` included, when it sees its turn); Acquire
                // orders this turn after the previous holder's pass.
                token.0.fetch_add(1, Ordering::AcqRel);
                mine += 1;
                spins = 0;
            } else {
                spin_wait(&mut spins);
            }
        }
        // The figure is per hand-off: every thread's interval covers all
        // threads' turns.
        per_sample * n
    })
}

/// What a steal adds to a hand-off: the [`handoff_with`] pattern with
/// [`STEAL_WORK`] and the steal, minus the same without the steal, on 2
/// threads. The two are measured in 16 alternating batches (this guest's
/// placement can change within a second), and the figure is the
/// difference of the medians, at least 0; `samples`/`taken` are the
/// steal run's.
fn steal(samples: usize) -> Figure {
    let batches = 16usize;
    let per = samples.div_ceil(2).max(3);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut kept, mut taken) = (0, 0);
    for _ in 0..batches {
        let w = handoff_with(2, per, true, STEAL_WORK);
        let o = handoff_with(2, per, false, STEAL_WORK);
        with.push(w.ns);
        without.push(o.ns);
        kept += w.samples;
        taken += w.taken;
    }
    let d: Vec<f64> = with
        .iter()
        .zip(&without)
        .map(|(w, o)| (w - o).max(0.0))
        .collect();
    let mut d10 = d.clone();
    let mut d50 = d;
    Figure {
        p10_ns: percentile(&mut d10, 0.1),
        ns: percentile(&mut d50, 0.5),
        samples: kept,
        taken,
    }
}

fn transfer(samples: usize) -> Figure {
    let lines = [Padded(AtomicU64::new(0)), Padded(AtomicU64::new(0))];
    const TRIPS: u64 = 2_000;
    sampled(2, samples, |t| {
        let (mine, other) = (&lines[t].0, &lines[1 - t].0);
        // Ordering: Relaxed: only this thread writes `mine`, and the
        // sampling barrier (AcqRel) orders its last store before this load.
        let base = mine.load(Ordering::Relaxed);
        let mut spins = 0;
        for i in 1..=TRIPS {
            if t == 0 {
                // Ordering: Release/Acquire: a message each way.
                mine.store(base + i, Ordering::Release);
            }
            while other.load(Ordering::Acquire) < base + i {
                spin_wait(&mut spins);
            }
            if t == 1 {
                // Ordering: Release pairs with thread 0's Acquire spin.
                mine.store(base + i, Ordering::Release);
            }
        }
        // Each thread's interval covers TRIPS round trips = 2 * TRIPS
        // one-way transfers.
        2 * TRIPS
    })
}

fn fence_fig(samples: usize) -> Figure {
    let a = Padded(AtomicU64::new(0));
    let stores = sampled(1, samples, |_| {
        for i in 0..OPS {
            // Ordering: Relaxed: one thread, nothing to pair with (the
            // store whose cost the fence figure subtracts).
            a.0.store(black_box(i), Ordering::Relaxed);
        }
        OPS
    });
    let fenced = sampled(1, samples, |_| {
        for i in 0..OPS {
            // Ordering: Relaxed, then the SeqCst fence being measured.
            a.0.store(black_box(i), Ordering::Relaxed);
            fence(Ordering::SeqCst);
        }
        OPS
    });
    Figure {
        ns: (fenced.ns - stores.ns).max(0.0),
        p10_ns: (fenced.p10_ns - stores.p10_ns).max(0.0),
        samples: fenced.samples,
        taken: fenced.taken,
    }
}

fn runtime_switch(samples: usize) -> Figure {
    let m = Machine::new(
        StdPlatform,
        MachineConfig::new(1, Arch::X86, SchemeKind::Lightweight),
    )
    .expect("a one-CPU machine");
    let mm = m.mm_alloc(0).expect("one mm");
    m.switch_to(0, Next::User(mm));
    m.switch_to(0, Next::Kernel);
    const TRIPS: u64 = 2_000;
    let f = sampled(1, samples, |_| {
        for _ in 0..TRIPS {
            m.switch_to(0, Next::User(mm));
            m.switch_to(0, Next::Kernel);
        }
        2 * TRIPS
    });
    m.switch_to(0, Next::User(mm));
    m.exit_mm(0);
    m.switch_to(0, Next::Kernel);
    m.quiesce_cpu(0);
    m.finish();
    f
}

/// Operations of one [`contended`] sample per thread.
const CONTENDED_OPS: u64 = 2_000;

fn work_then_rmw(y: &AtomicU64) -> u64 {
    for _ in 0..CONTENDED_OPS {
        black_box(local_work(STEAL_WORK));
        // Ordering: SeqCst, as the kernel's value-returning atomics.
        y.fetch_add(1, Ordering::SeqCst);
    }
    CONTENDED_OPS
}

/// Free-running RMWs on one line with a little local work between them
/// ([`STEAL_WORK`] multiply-adds, then `fetch_add`), as refcount's
/// `mm_count` sees them when two CPUs switch as fast as they can: per
/// operation, alone on a private line (`.0`) and with 2 threads on one
/// shared line (`.1`). How much the second adds tells how many RMWs a core
/// runs per visit of the line (`this_machine::hold_for_contended`).
fn contended(samples: usize) -> (Figure, Figure) {
    let own = Padded(AtomicU64::new(0));
    let solo = sampled(1, samples, |_| work_then_rmw(&own.0));
    let shared = Padded(AtomicU64::new(0));
    let both = sampled(2, samples, |_| work_then_rmw(&shared.0));
    (solo, both)
}

/// One turn of a ping-pong in which each of 2 threads drives a private
/// one-CPU `Machine<StdPlatform>` + `lightweight` (no runtime state shared
/// between the threads: only the token's line moves): the turn holder
/// switches to its user task, passes the token, switches back to idle. Per
/// turn (hand-off). With [`handoff`] and [`runtime_switch`] it tells what a
/// switch costs right after a spin-loop wake-up, beyond its cost in a warm
/// loop: `this_machine::wakeup_for_pingpong`.
fn woken_switch(samples: usize) -> Figure {
    let machines: Vec<Machine<StdPlatform>> = (0..2)
        .map(|_| {
            Machine::new(
                StdPlatform,
                MachineConfig::new(1, Arch::X86, SchemeKind::Lightweight),
            )
            .expect("a one-CPU machine")
        })
        .collect();
    let mms: Vec<_> = machines
        .iter()
        .map(|m| {
            let mm = m.mm_alloc(0).expect("one mm");
            m.switch_to(0, Next::User(mm));
            m.switch_to(0, Next::Kernel);
            mm
        })
        .collect();
    let token = Padded(AtomicU64::new(0));
    let per_sample = 2_000u64;
    let f = sampled(2, samples, |t| {
        let (m, mm) = (&machines[t], mms[t]);
        let mut mine = 0;
        let mut spins = 0;
        while mine < per_sample {
            // Ordering: Acquire pairs with the other thread's Release pass:
            // a wake-up.
            if token.0.load(Ordering::Acquire) % 2 == t as u64 {
                m.switch_to(0, Next::User(mm));
                // Ordering: Release: the other thread's wake-up.
                token.0.fetch_add(1, Ordering::Release);
                m.switch_to(0, Next::Kernel);
                mine += 1;
                spins = 0;
            } else {
                spin_wait(&mut spins);
            }
        }
        per_sample * 2
    });
    for (m, &mm) in machines.iter().zip(&mms) {
        m.switch_to(0, Next::User(mm));
        m.exit_mm(0);
        m.switch_to(0, Next::Kernel);
        m.quiesce_cpu(0);
        m.finish();
    }
    f
}

/// The figures the timing model's `this-machine` preset takes from a
/// calibration (a subset of [`Calibration`], cheap enough to re-measure
/// before every repetition of a real-thread comparison: the guest's two
/// vCPUs move between host placements whose hand-off differs by 6x).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ModelFigures {
    /// [`Calibration::handoff`].
    pub handoff: Figure,
    /// [`Calibration::steal`].
    pub steal: Figure,
    /// [`Calibration::local_rmw`].
    pub local_rmw: Figure,
    /// [`Calibration::fence`].
    pub fence: Figure,
    /// [`Calibration::runtime_switch`].
    pub runtime_switch: Figure,
    /// [`Calibration::woken_switch`].
    pub woken_switch: Figure,
    /// [`Calibration::contended_solo`].
    pub contended_solo: Figure,
    /// [`Calibration::contended`].
    pub contended: Figure,
}

impl Calibration {
    /// The figures the `this-machine` preset uses.
    pub fn model_figures(&self) -> ModelFigures {
        ModelFigures {
            handoff: self.handoff,
            steal: self.steal,
            local_rmw: self.local_rmw,
            fence: self.fence,
            runtime_switch: self.runtime_switch,
            woken_switch: self.woken_switch,
            contended_solo: self.contended_solo,
            contended: self.contended,
        }
    }
}

/// The one-way hand-off alone (2 threads, `samples` samples): a quick
/// check, after a measurement, that the machine is still the one the
/// calibration before it described (this guest's vCPUs move between host
/// placements whose hand-offs differ several-fold).
pub fn handoff_check(samples: usize) -> Figure {
    handoff(2, samples.max(3))
}

/// Measures only the [`ModelFigures`] (`samples` samples each; 2 threads
/// for the hand-off).
pub fn calibrate_model(samples: usize) -> ModelFigures {
    let samples = samples.max(3);
    // The two-thread figures first, back to back, next to the hand-off the
    // placement check compares with.
    let handoff = handoff(2, samples);
    let steal = steal(samples);
    let (contended_solo, contended) = contended(samples);
    let local = Padded(AtomicU64::new(0));
    ModelFigures {
        handoff,
        steal,
        local_rmw: sampled(1, samples, |_| rmw_burst(&local.0)),
        fence: fence_fig(samples),
        runtime_switch: runtime_switch(samples),
        woken_switch: woken_switch(samples),
        contended_solo,
        contended,
    }
}

/// The `this-machine` preset with the figures `cal` measured in place of
/// the committed ones (`machines/this-machine.toml`): the local RMW and the
/// fence as measured; then, each solved through the model's own run of the
/// pattern measured (`lazymm_sim::timing::this_machine`), the transfer
/// latency from the hand-off, the steal factor from what a steal adds to
/// it, `switch` from the runtime's warm switch, the hold from the
/// contended RMW, and `wakeup` from the ping-pong on private machines.
pub fn this_machine_spec(cal: &ModelFigures) -> MachineSpec {
    let mut s = MachineSpec::load("this-machine").expect("the shipped preset parses");
    let src = |what: &str, f: &Figure| SpecFigure {
        value: f.ns,
        source: format!(
            "measured in this run by calibrate.rs ({what}: median of {} kept samples of {})",
            f.samples, f.taken
        ),
    };
    // The local figures first: every solve below runs the model with them.
    s.cost_ns.rmw_local = src("local_rmw", &cal.local_rmw);
    s.cost_ns.fence = src("fence", &cal.fence);
    let latency = latency_for_handoff(&s, cal.handoff.ns).unwrap_or(cal.handoff.ns);
    s.latency_ns.socket = SpecFigure {
        value: latency,
        source: format!(
            "solved from calibrate.rs handoff ({:.1} ns, median of {} kept samples of {}): the latency at which the model's own run of that pattern (a load miss plus an upgrade: two transfers) takes as long (this_machine::latency_for_handoff)",
            cal.handoff.ns, cal.handoff.samples, cal.handoff.taken
        ),
    };
    s.latency_ns.node = s.latency_ns.socket.clone();
    s.latency_ns.remote = s.latency_ns.socket.clone();
    if let Ok(steal) = steal_for_handoff(&s, cal.steal.ns) {
        s.coherence.steal = SpecFigure {
            value: steal,
            source: format!(
                "solved from calibrate.rs steal ({:.1} ns added to a hand-off by an RMW of a line the other CPU wrote, median of 16 batches): the steal factor at which the model's own run of that pattern adds as much (this_machine::steal_for_handoff)",
                cal.steal.ns
            ),
        };
    }
    let own = src("runtime_switch", &cal.runtime_switch);
    s.cost_ns.switch = match switch_for_runtime(&s, cal.runtime_switch.ns) {
        Ok(v) => SpecFigure {
            value: v,
            source: format!(
                "{}, minus what the model charges lightweight's own accesses on one CPU (this_machine::switch_for_runtime: the measurement includes them)",
                own.source
            ),
        },
        Err(_) => own,
    };
    let work = (cal.contended_solo.ns - s.cost_ns.rmw_local.value).max(0.0);
    let added = (cal.contended.ns - cal.contended_solo.ns).max(0.0);
    s.coherence.hold = SpecFigure {
        value: hold_for_contended(&s, work, added),
        source: format!(
            "solved from calibrate.rs contended ({:.1} ns per RMW with local work, 2 threads on one line, against {:.1} ns alone): the hold at which the model's own run of that pattern adds as much (this_machine::hold_for_contended)",
            cal.contended.ns, cal.contended_solo.ns
        ),
    };
    if let Ok(w) = wakeup_for_pingpong(&s, cal.woken_switch.ns) {
        s.cost_ns.wakeup = SpecFigure {
            value: w,
            source: format!(
                "solved from calibrate.rs woken_switch ({:.1} ns per turn, median of {} kept samples of {}): what a turn of that pattern (a spin-loop wake-up, the runtime's switch pair on a private machine, the pass) costs beyond the model's own run of it with no wake-up cost (this_machine::wakeup_for_pingpong)",
                cal.woken_switch.ns, cal.woken_switch.samples, cal.woken_switch.taken
            ),
        };
    }
    s.origin = "machines/this-machine.toml + calibrate.rs (this run)".into();
    s
}

#[cfg(target_arch = "x86_64")]
fn tsc_ghz() -> Option<f64> {
    // SAFETY: rdtsc has no preconditions on x86_64.
    let t0 = unsafe { core::arch::x86_64::_rdtsc() };
    let s = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    // SAFETY: as above.
    let t1 = unsafe { core::arch::x86_64::_rdtsc() };
    let ns = s.elapsed().as_nanos() as f64;
    Some((t1.wrapping_sub(t0)) as f64 / ns)
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_ghz() -> Option<f64> {
    None
}

/// Measures this machine with `threads` threads (at least 2; 2 on this
/// machine: one per core), taking `samples` samples of each figure (each
/// sample about 20 000 operations: 100 samples take well under a second
/// per figure on an idle machine).
pub fn calibrate(threads: usize, samples: usize) -> Calibration {
    let threads = threads.max(2);
    let samples = samples.max(3);
    let local = Padded(AtomicU64::new(0));
    let local_rmw = sampled(1, samples, |_| rmw_burst(&local.0));
    let own: Vec<Padded<AtomicU64>> = (0..threads).map(|_| Padded(AtomicU64::new(0))).collect();
    let local_rmw_parallel = sampled(threads, samples, |t| rmw_burst(&own[t].0));
    let shared = Padded(AtomicU64::new(0));
    let shared_rmw = sampled_with(threads, samples, false, |_| rmw_burst(&shared.0));
    let handoff = handoff(threads, samples);
    let steal = steal(samples);
    let transfer = transfer(samples);
    let fence = fence_fig(samples);
    let runtime_switch = runtime_switch(samples);
    let woken_switch = woken_switch(samples);
    let (contended_solo, contended) = contended(samples);
    let model = CostTable::for_arch(Arch::X86);
    Calibration {
        threads,
        local_rmw,
        local_rmw_parallel,
        shared_rmw,
        handoff,
        steal,
        transfer,
        fence,
        runtime_switch,
        woken_switch,
        contended_solo,
        contended,
        tsc_ghz: tsc_ghz(),
        measured_shared_over_local: shared_rmw.ns / local_rmw.ns,
        measured_handoff_over_local: handoff.ns / local_rmw.ns,
        measured_transfer_over_local: transfer.ns / local_rmw.ns,
        measured_fence_over_local: fence.ns / local_rmw.ns,
        model,
        model_transfer_over_local: model.transfer / model.local_rmw,
        model_fence_over_local: model.fence / model.local_rmw,
    }
}
