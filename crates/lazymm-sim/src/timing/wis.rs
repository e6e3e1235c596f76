//! will-it-scale `context_switch1_threads -t N`, as run, in simulated time.
//!
//! `tests/context_switch1.c`: testcase `i` makes two pipes and a partner
//! thread; the two pass one byte back and forth (`write` then `read`), and
//! `*iterations += 2` per round trip, so the benchmark's figure is one
//! iteration per hand-off. `main.c` binds testcase `i` to core
//! `i % ncores` (the partner inherits the binding), so the pair shares the
//! core's hardware threads: here thread `j` of testcase `i` runs on
//! hardware thread `(2 * (i / ncores) + j) % smt` of that core while there
//! is at most one thread per hardware thread, so every switch goes through
//! idle (the lazy path). Beyond, the pipe's synchronous wake-up finds no
//! idle sibling and wakes the partner on the writer's CPU: both threads of
//! testcase `i` share hardware thread `(i / ncores) % smt` and switch user
//! to user. Threads stay where they are placed (no load balancing).
//!
//! Events, each at a CPU's clock: `Token` (the running thread has the byte:
//! it writes, waking its partner, then blocks in `read`: a switch to the
//! next runnable thread or idle) and `Wake` (an idle CPU switches to the
//! thread woken on it, `wakeup` after the wake). Every switch goes through
//! [`Sched`] and the runtime, so the scheme's own accesses are timed by the
//! coherence model; the non-scheme part costs the machine's `switch`.

use std::time::Instant;

use lazymm::SchemeKind;
use serde::Serialize;

use super::model::{ps, LineTime};
use super::spec::MachineSpec;
use super::{handled, now, timed_machine, wake_idle, Events, IpiLedger};
use crate::run::Transitions;
use crate::sched::{Sched, TaskId};

/// What to run.
#[derive(Clone, Debug)]
pub struct WisConfig {
    /// `-t N`: pairs of threads.
    pub pairs: usize,
    /// Simulated warm-up before measuring (ns).
    pub warmup_ns: f64,
    /// Simulated measurement window (ns).
    pub window_ns: f64,
    /// Place the two threads of testcase `i` on hardware threads `2i` and
    /// `2i + 1` (neighbours: SMT siblings, else adjacent cores of one die)
    /// instead of will-it-scale's binding, while there is one thread per
    /// hardware thread. Identical to the binding on SMT2 machines; on
    /// machines without SMT the binding puts both threads on one CPU (user
    /// to user switches, no lazy path), this keeps every switch through
    /// idle. Not the benchmark as run: the report says so where used.
    pub spread: bool,
}

impl WisConfig {
    /// `-t pairs` with a 0.2 ms warm-up and a 2 ms window.
    pub fn new(pairs: usize) -> WisConfig {
        WisConfig {
            pairs,
            warmup_ns: 200_000.0,
            window_ns: 2_000_000.0,
            spread: false,
        }
    }
}

/// The result of one run.
#[derive(Clone, Debug, Serialize)]
pub struct WisResult {
    /// Machine preset.
    pub machine: String,
    /// Scheme.
    pub scheme: String,
    /// Architecture profile.
    pub arch: String,
    /// `-t N`.
    pub pairs: usize,
    /// Hardware threads of the machine.
    pub cpus: usize,
    /// Hardware threads running a benchmark thread.
    pub cpus_used: usize,
    /// will-it-scale's `total`: iterations per simulated second, all pairs.
    pub iterations_per_s: f64,
    /// Context switches per simulated second, all CPUs.
    pub switches_per_s: f64,
    /// Switches in the window by kind.
    pub transitions: Transitions,
    /// IPIs (scheme + flush) handled per CPU per simulated second.
    pub ipis_per_cpu_s: f64,
    /// The lines that spent most time moving, in the window.
    pub hottest: Vec<LineTime>,
    /// Busy fraction of the hottest line over the window (1.0: saturated).
    pub bottleneck_utilization: f64,
    /// Ledger clean at the end.
    pub clean: bool,
    /// Accesses the model priced in the event loop (warm-up + window).
    pub accesses: u64,
    /// Wall-clock seconds the whole run took (set-up and quiesce included).
    pub wall_s: f64,
    /// Simulated accesses per wall-clock second in the event loop.
    pub accesses_per_wall_s: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Token,
    Wake,
}

/// Runs `-t cfg.pairs` of `scheme` on `spec`.
pub fn run(spec: &MachineSpec, scheme: SchemeKind, cfg: &WisConfig) -> Result<WisResult, String> {
    let wall = Instant::now();
    let m = timed_machine(spec, scheme)?;
    let n = m.ncpus;
    let smt = spec.topology.smt.value as usize;
    let cores = spec.cores();
    if cfg.pairs == 0 {
        return Err("-t must be at least 1".into());
    }
    if 2 * cfg.pairs > 8 * n {
        return Err(format!(
            "-t {} puts more than 8 threads on each of {n} hardware threads",
            cfg.pairs
        ));
    }
    let warm = ps(cfg.warmup_ns);
    let window = ps(cfg.window_ns);
    // The window opens at the warm-up's end once every benchmark thread has
    // run twice (will-it-scale measures only after every task started; the
    // model starts every pair at once, and the burst of first switches on
    // one line can outlast the warm-up), at the latest 10 windows later.
    let mut end = warm + 10 * window + window;
    // Up to one thread per hardware thread, the pair's threads sit on
    // sibling hardware threads of their core and every switch goes through
    // idle. Beyond, there is no idle CPU to wake the partner on, and the
    // pipe's synchronous wake-up (`WF_SYNC`, wake_affine) puts it on the
    // writer's CPU: the pair shares one hardware thread and switches user
    // to user.
    let crowded = 2 * cfg.pairs > n;
    let place = |i: usize, j: usize| -> usize {
        if cfg.spread && !crowded {
            return (2 * i + j) % n;
        }
        let core = i % cores;
        let hw = if crowded {
            (i / cores) % smt
        } else {
            (2 * (i / cores) + j) % smt
        };
        core * smt + hw
    };
    let mut used = vec![false; n];
    let mut iterations = 0u64;
    let (sw0, sw1, ipis_handled, hottest, loop_wall, loop_acc) = {
        let mut s = Sched::new(&m, 1);
        let mut partner: Vec<TaskId> = Vec::new();
        let mut ev = Events::new();
        let mut lead: Option<TaskId> = None;
        for i in 0..cfg.pairs {
            let (ca, cb) = (place(i, 0), place(i, 1));
            used[ca] = true;
            used[cb] = true;
            let a = match lead {
                Some(l) => s.new_thread(l, ca),
                None => {
                    let t = s.new_process(ca).map_err(|e| e.to_string())?;
                    lead = Some(t);
                    t
                }
            };
            let b = s.new_thread(a, cb);
            if partner.len() <= b as usize {
                partner.resize(b as usize + 1, 0);
            }
            partner[a as usize] = b;
            partner[b as usize] = a;
            // The testcase thread holds the byte first.
            s.wake(a, ca);
            ev.push(0, ca, Ev::Wake);
        }
        let loop_start = (Instant::now(), m.p.model(|md| md.accesses));
        let mut sw0 = None;
        let mut h0 = 0u64;
        let mut ipis = IpiLedger::new(&m);
        let mut runs = vec![0u8; n];
        let mut starting = used.iter().filter(|&&u| u).count();
        let mut open = false;
        while let Some((t, cpu, e)) = ev.next(&m, end) {
            if !open && t >= warm && (starting == 0 || t >= warm + 10 * window) {
                open = true;
                end = t + window;
                sw0 = Some(m.stats().cpu);
                h0 = handled(&m).iter().sum();
                m.p.model(|md| md.reset_accounting());
            }
            let before = m.cpu_stats(cpu);
            match e {
                Ev::Wake => {
                    if !wake_idle(&mut s, cpu) {
                        continue;
                    }
                }
                Ev::Token => {
                    let Some(cur) = s.curr[cpu] else { continue };
                    if open {
                        iterations += 1;
                    }
                    if runs[cpu] < 2 {
                        runs[cpu] += 1;
                        if runs[cpu] == 2 {
                            starting -= 1;
                        }
                    }
                    let p = partner[cur as usize];
                    let pc = s.tasks[p as usize].cpu as usize;
                    s.wake(p, pc);
                    if pc != cpu && s.curr[pc].is_none() {
                        let wakeup = m.p.model(|md| md.wakeup_cost());
                        ev.push(now(&m, cpu) + wakeup, pc, Ev::Wake);
                    }
                    m.p.model(|md| {
                        let sw = md.switch_cost();
                        md.clock[cpu] += sw;
                    });
                    s.block(cpu);
                }
            }
            ipis.settle(&m, cpu, scheme, &before);
            if s.curr[cpu].is_some() {
                ev.push(now(&m, cpu), cpu, Ev::Token);
            }
        }
        let sw1 = m.stats().cpu;
        let h1: u64 = handled(&m).iter().sum();
        let hot = m.p.model(|md| md.hottest(4));
        let loop_wall = loop_start.0.elapsed().as_secs_f64();
        let loop_acc = m.p.model(|md| md.accesses) - loop_start.1;
        s.quiesce();
        (
            sw0.unwrap_or_default(),
            sw1,
            h1 - h0,
            hot,
            loop_wall,
            loop_acc,
        )
    };
    let st = m.finish();
    let window_s = cfg.window_ns * 1e-9;
    let util = hottest
        .first()
        .map(|l| l.busy_ns / cfg.window_ns)
        .unwrap_or(0.0);
    let wall_s = wall.elapsed().as_secs_f64();
    let tr = Transitions::of(&sw1).since(&Transitions::of(&sw0));
    Ok(WisResult {
        machine: spec.name.clone(),
        scheme: scheme.name().into(),
        arch: spec.arch.clone(),
        pairs: cfg.pairs,
        cpus: n,
        cpus_used: used.iter().filter(|&&u| u).count(),
        iterations_per_s: iterations as f64 / window_s,
        switches_per_s: tr.switches as f64 / window_s,
        transitions: tr,
        ipis_per_cpu_s: ipis_handled as f64 / n as f64 / window_s,
        hottest,
        bottleneck_utilization: util,
        clean: st.ledger.uaf == 0 && st.ledger.double_free == 0 && st.ledger.leaked == 0,
        accesses: loop_acc,
        wall_s,
        accesses_per_wall_s: loop_acc as f64 / loop_wall.max(1e-9),
    })
}
