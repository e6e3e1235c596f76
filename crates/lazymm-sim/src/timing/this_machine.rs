//! `lazymm bench`'s real-thread shapes in simulated time, to hold the model
//! against this machine (`crates/lazymm-bench/src/switches.rs`, `run_loop`):
//!
//! * **ping-pong**: one process, one thread per CPU, a token passed round a
//!   ring through an atomic. The CPU whose turn it is sees the token (a
//!   load of a line the previous holder wrote), switches idle -> user,
//!   passes the token (`fetch_add`), switches user -> idle;
//! * **free-run**: every CPU switches user -> idle -> user as fast as it
//!   can, all on one mm.
//!
//! Each `switch_to` costs the machine's `switch` (the runtime's own work,
//! calibrated on one thread) plus whatever the scheme's accesses cost in the
//! coherence model. The real threads spin instead of sleeping: the
//! machine's `wakeup` is what leaving the spin loop costs the ping-pong
//! turn that follows (calibrated: [`wakeup_for_pingpong`]).
//!
//! The `this-machine` preset is filled per run from `calibrate.rs` through
//! the solves below, each through the model's own run of the measured
//! pattern: the inter-CPU latency from the hand-off
//! ([`latency_for_handoff`]), the steal factor from what a steal adds to it
//! ([`steal_for_handoff`]), `switch` from the runtime's warm switch loop
//! ([`switch_for_runtime`]) and `wakeup` from a ping-pong on private
//! machines ([`wakeup_for_pingpong`]). None of them runs a scheme's shared
//! line: what `lazymm validate` compares (refcount's and shoot-down's
//! costs against lightweight's) stays the model's prediction.

use core::sync::atomic::Ordering;

use lazymm::{LineKind, Next, Platform, SchemeKind};
use serde::Serialize;

use super::model::{Access, Model, Params};
use super::spec::MachineSpec;
use super::timed_machine;

/// The two real-thread shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Token ring.
    PingPong,
    /// Free-running round trips.
    FreeRun,
}

impl Shape {
    /// The shape's name (as `lazymm bench` names its workload).
    pub fn name(self) -> &'static str {
        match self {
            Shape::PingPong => "ping-pong",
            Shape::FreeRun => "free-run",
        }
    }
}

/// Simulated switches per second of `scheme` on `threads` CPUs of `spec`
/// (machine CPU `c * stride` for thread `c`, as `lazymm bench
/// --cpu-stride`), over `round_trips` round trips per CPU.
pub fn switches_per_s(
    spec: &MachineSpec,
    scheme: SchemeKind,
    shape: Shape,
    threads: usize,
    round_trips: u64,
) -> Result<f64, String> {
    let m = timed_machine(spec, scheme)?;
    let threads = threads.clamp(1, m.ncpus);
    let switch = m.p.model(|md| md.p.switch);
    let mm = m.mm_alloc(0).map_err(|e| e.to_string())?;
    for _ in 1..threads {
        m.mmget(0, mm);
    }
    let token_line = m.p.line(LineKind::CpuIpi);
    let token = m.p.atomic(0, token_line);
    let step = |cpu: usize, next: Next| {
        m.p.model(|md| md.clock[cpu] += switch);
        m.switch_to(cpu, next);
    };
    for c in 0..threads {
        step(c, Next::User(mm));
        step(c, Next::Kernel);
    }
    let start = m.p.model(|md| md.clock.iter().copied().max().unwrap_or(0));
    m.p.model(|md| md.clock.iter_mut().for_each(|c| *c = start));
    let mut trips = 0u64;
    match shape {
        Shape::PingPong => {
            let mut passed = start;
            for k in 0..round_trips * threads as u64 {
                let c = (k % threads as u64) as usize;
                m.p.model(|md| md.clock[c] = md.clock[c].max(passed));
                // Ordering: Acquire, as the bench's wait loop.
                m.p.load(c, &token, Ordering::Acquire);
                // Leaving the spin loop (`cost_ns.wakeup`).
                m.p.model(|md| md.clock[c] += md.p.wakeup);
                step(c, Next::User(mm));
                // Ordering: Release, as the bench's token pass.
                m.p.fetch_add(c, &token, 1, Ordering::Release);
                passed = m.p.model(|md| md.clock[c]);
                step(c, Next::Kernel);
                trips += 1;
            }
        }
        Shape::FreeRun => {
            for _ in 0..round_trips * threads as u64 {
                let c = m.p.model(|md| {
                    (0..threads)
                        .min_by_key(|&c| (md.clock[c], c))
                        .expect("at least one thread")
                });
                step(c, Next::User(mm));
                step(c, Next::Kernel);
                trips += 1;
            }
        }
    }
    let end =
        m.p.model(|md| md.clock[..threads].iter().copied().max().unwrap_or(start));
    for c in 0..threads {
        m.switch_to(c, Next::User(mm));
        m.exit_mm(c);
        m.switch_to(c, Next::Kernel);
        m.quiesce_cpu(c);
    }
    let st = m.finish();
    if scheme.known_unsafe().is_none()
        && (st.ledger.uaf != 0 || st.ledger.double_free != 0 || st.ledger.leaked != 0)
    {
        return Err(format!(
            "{}: ledger not clean: {:?}",
            scheme.name(),
            st.ledger
        ));
    }
    let secs = (end - start) as f64 * 1e-12;
    Ok(2.0 * trips as f64 / secs.max(1e-12))
}

/// The calibration's hand-off pattern (`lazymm-bench`'s `calibrate.rs`,
/// `handoff`) run in the model on CPUs 0 and 1 of `spec`: two CPUs take
/// turns on one token line; the CPU whose turn it is loads the token (a
/// miss: the other CPU wrote it last) and passes it with an RMW (which must
/// take the line back from the other CPU's shared copy: it was spinning on
/// it). Returns simulated ns per hand-off.
pub fn handoff_ns(spec: &MachineSpec, turns: u64) -> f64 {
    handoff_pattern_ns(spec, turns, false)
}

/// The calibration's hand-off with a steal (`calibrate.rs`,
/// `handoff_steal`): as [`handoff_ns`], and before passing the token the
/// CPU whose turn it is RMWs a second line the other CPU RMW'd on its turn.
/// Simulated ns per hand-off.
pub fn handoff_steal_ns(spec: &MachineSpec, turns: u64) -> f64 {
    handoff_pattern_ns(spec, turns, true)
}

fn handoff_pattern_ns(spec: &MachineSpec, turns: u64, steal: bool) -> f64 {
    let mut md = Model::new(Params::of(spec), spec.cpus().max(2));
    md.add_line(0);
    md.add_line(0);
    let turns = turns.max(2);
    let mut passed = 0u64;
    let mut start = 0u64;
    for k in 0..turns + 2 {
        let c = (k % 2) as usize;
        md.clock[c] = md.clock[c].max(passed);
        md.access(c, 0, Access::Load);
        if steal {
            md.access(c, 1, Access::Rmw);
        }
        md.access(c, 0, Access::Rmw);
        passed = md.clock[c];
        if k == 1 {
            // Two warm-up turns: the lines start nowhere.
            start = passed;
        }
    }
    (passed - start) as f64 / 1000.0 / turns as f64
}

/// The inter-CPU latency (ns) at which the model's [`handoff_ns`] equals
/// `measured_ns`, the real hand-off `calibrate.rs` measured on this
/// machine: the model charges that pattern a load miss plus an upgrade
/// (two transfers) and local work, linear in the latency, so two model
/// runs give the line and the solve is exact. The measured hand-off is one
/// figure of the whole pattern; taking it as the latency itself (as this
/// preset did before) charged every transfer twice what the hardware does.
/// `spec`'s `latency_ns.socket`, `.node` and `.remote` are ignored (set
/// here). Errors if the model's hand-off does not grow with the latency.
pub fn latency_for_handoff(spec: &MachineSpec, measured_ns: f64) -> Result<f64, String> {
    let at = |l: f64| {
        let mut s = spec.clone();
        for f in [
            &mut s.latency_ns.socket,
            &mut s.latency_ns.node,
            &mut s.latency_ns.remote,
        ] {
            f.value = l;
        }
        handoff_ns(&s, 1000)
    };
    Ok(linear_solve(at, (100.0, 200.0), measured_ns)
        .map_err(|(t1, t2)| {
            format!("the model's hand-off does not grow with the latency ({t1} ns at 100 ns, {t2} ns at 200 ns)")
        })?
        .max(0.0))
}

/// The steal factor (`coherence.steal`) at which the model's
/// [`handoff_steal_ns`] exceeds its [`handoff_ns`] by `measured_ns`, what a
/// steal added to the real hand-off (`calibrate.rs`, `steal`). `spec`'s
/// latencies must already be solved from the plain hand-off
/// ([`latency_for_handoff`]), which no steal enters. The added time is
/// linear in the factor (the steal is on the critical path), so two runs
/// give the exact solve. Clamped to `[0.01, 100]`; errors if the pattern
/// does not grow with the factor (no inter-CPU latency).
pub fn steal_for_handoff(spec: &MachineSpec, measured_ns: f64) -> Result<f64, String> {
    let base = handoff_ns(spec, 1000);
    let at = |f: f64| {
        let mut s = spec.clone();
        s.coherence.steal.value = f;
        handoff_steal_ns(&s, 1000) - base
    };
    Ok(linear_solve(at, (1.0, 2.0), measured_ns)
        .map_err(|(t1, t2)| {
            format!("the model's hand-off with a steal does not grow with the steal factor (+{t1} ns at 1, +{t2} ns at 2)")
        })?
        .clamp(0.01, 100.0))
}

/// The `x` at which `at(x)` = `target` for an `at` linear and increasing in
/// `x`, from its values at the two points `xs`; `Err` with those values if
/// it does not increase.
fn linear_solve(at: impl Fn(f64) -> f64, xs: (f64, f64), target: f64) -> Result<f64, (f64, f64)> {
    let (t1, t2) = (at(xs.0), at(xs.1));
    let slope = (t2 - t1) / (xs.1 - xs.0);
    if slope <= 0.0 {
        return Err((t1, t2));
    }
    Ok(xs.0 + (target - t1) / slope)
}

/// The machine's `switch` (the non-scheme part of a context switch) from
/// `measured_ns`, `calibrate.rs`'s `runtime_switch`: the real runtime's
/// whole per-switch time on one thread alone with `lightweight`, which
/// includes that scheme's own atomics. The model prices those accesses
/// itself, so the part left to `switch` is the measured time minus what the
/// model charges `lightweight`'s accesses on one CPU alone (the free-run
/// shape on one thread with `switch` = 0); at least 0.
pub fn switch_for_runtime(spec: &MachineSpec, measured_ns: f64) -> Result<f64, String> {
    let mut s = spec.clone();
    s.cost_ns.switch.value = 0.0;
    let rate = switches_per_s(&s, SchemeKind::Lightweight, Shape::FreeRun, 1, 2_000)?;
    Ok((measured_ns - 1e9 / rate).max(0.0))
}

/// The machine's `wakeup` for the ping-pong shape from `measured_ns`,
/// `calibrate.rs`'s `woken_switch`: one turn of a ping-pong whose holder
/// switches to its user task, passes the token and switches back, each
/// thread on a private machine running `lightweight` (no runtime state
/// shared: only the token moves). The model's own run of that turn is its
/// `lightweight` ping-pong with `wakeup` = 0 (one shared mm, but
/// `lightweight` touches no shared line on these switches); what the real
/// turn costs beyond it is what leaving a spin loop costs the switch that
/// follows (on this guest: nothing in one host placement, about 50 ns in
/// the other). At least 0.
pub fn wakeup_for_pingpong(spec: &MachineSpec, measured_ns: f64) -> Result<f64, String> {
    let mut s = spec.clone();
    s.cost_ns.wakeup.value = 0.0;
    let rate = switches_per_s(&s, SchemeKind::Lightweight, Shape::PingPong, 2, 2_000)?;
    // Two switches per turn.
    Ok((measured_ns - 2e9 / rate).max(0.0))
}

/// The calibration's contended pattern (`calibrate.rs`, `contended`) in
/// the model: CPUs 0 and 1 each run `work_ns` of local work, then an RMW
/// on one shared line, over and over, whichever CPU's clock is behind
/// going first (as free-running threads). Simulated ns per operation per
/// CPU.
pub fn contended_ns(spec: &MachineSpec, work_ns: f64, ops: u64) -> f64 {
    let mut md = Model::new(Params::of(spec), spec.cpus().max(2));
    md.add_line(0);
    let work = super::model::ps(work_ns);
    let ops = ops.max(4);
    let mut done = [0u64; 2];
    let mut start = None;
    for k in 0..2 * ops {
        let c = usize::from(md.clock[1] < md.clock[0]);
        md.clock[c] += work;
        md.access(c, 0, Access::Rmw);
        done[c] += 1;
        if k == 7 {
            // Warm-up: the line starts nowhere.
            start = Some((md.clock[0].min(md.clock[1]), done));
        }
    }
    let (t0, d0) = start.unwrap_or((0, [0, 0]));
    let end = md.clock[0].max(md.clock[1]);
    let n = (done[0] - d0[0] + done[1] - d0[1]).max(1);
    // Two CPUs ran in parallel over [t0, end].
    2.0 * (end - t0) as f64 / 1000.0 / n as f64
}

/// The end of [`hold_for_contended`]'s range: a hold solved here means the
/// measurement is beyond what the model can express.
pub const HOLD_MAX: f64 = 8.0;

/// The hold (`coherence.hold`) for `calibrate.rs`'s `contended`
/// measurement: the least hold (in thousandths, the model's resolution) at
/// which the model's [`contended_ns`] adds to the uncontended operation
/// (`work_ns` plus the local RMW) no more than was measured
/// (`measured_extra_ns`). A longer hold lets a CPU run more RMWs per visit
/// of the line, so the addition falls as the hold grows: smoothly where the
/// transfer is long against the work (this guest's slow placement), in
/// steps where it is short (the fast one: every RMW steals, then two per
/// visit, ...); there the least hold is the edge of the step that crosses
/// the measurement. Bisection over `[0, 8]`; a measurement beyond the range
/// gives its end. `spec`'s latency and steal must already be solved.
pub fn hold_for_contended(spec: &MachineSpec, work_ns: f64, measured_extra_ns: f64) -> f64 {
    let solo = work_ns + spec.cost_ns.rmw_local.value;
    let extra = |milli: u64| {
        let mut s = spec.clone();
        s.coherence.hold.value = milli as f64 / 1000.0;
        contended_ns(&s, work_ns, 4000) - solo
    };
    let (mut lo, mut hi) = (0u64, (HOLD_MAX * 1000.0) as u64);
    if extra(lo) <= measured_extra_ns {
        return 0.0;
    }
    if extra(hi) > measured_extra_ns {
        return HOLD_MAX;
    }
    // Invariant: extra(lo) > measured >= extra(hi).
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if extra(mid) > measured_extra_ns {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi as f64 / 1000.0
}
