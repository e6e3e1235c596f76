//! Simulated time per machine preset (`lazymm_sim::timing`): the figures
//! the verdict, the summary and the report's time charts are drawn from.
//!
//! Per machine (`machines/*.toml` or a user's file, `MachineSpec::load`):
//!
//! * will-it-scale `context_switch1_threads -t cpus/2` (one thread per
//!   hardware thread: every switch goes through idle, the lazy path) at the
//!   machine's own size and, for the report, at 2, 4, ... CPUs busy on the
//!   machine and beyond its size on `MachineSpec::scaled` (whole sockets
//!   added two hops away: an extrapolation, stated) up to 4096 CPUs;
//! * one exit with every other CPU holding the mm lazily (`exit_cost`) at
//!   the same CPU counts;
//! * PeterZ's adversarial exit under load (`exit_walk::run`, processes
//!   visiting [`WALK`] CPUs) at the machine's own size (at most
//!   [`WALK_MAX_CPUS`]), for IPIs per CPU per second (report only);
//! * the break-even in lazy round trips per process lifetime:
//!   `L* = (exit_us - exit_us(refcount)) / (t_rt(refcount) - t_rt)`, where
//!   `t_rt` is the CPU time per lazy round trip of the will-it-scale run at
//!   the machine's size (`cpus_used × window / lazy round trips`), so
//!   `t_rt(refcount) - t_rt` is the switch path a scheme saves per lazy
//!   round trip.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lazymm_sim::timing::exit_walk;
use lazymm_sim::timing::spec::{Figure as SpecFigure, MachineSpec};
use lazymm_sim::timing::wis::{self, WisConfig};
use serde::Serialize;

use super::*;

/// CPUs each process of the exit walk visits before it exits.
pub(crate) const WALK: usize = 8;
/// The exit walk runs on at most this many CPUs (larger presets are cut by
/// whole sockets, `MachineSpec::scaled`): its cost grows with CPUs x exits
/// x the slot schemes' scans, and 1536-CPU POWER8 took a minute per scheme.
pub(crate) const WALK_MAX_CPUS: usize = 384;
/// Simulated window of the exit walk (ns).
pub(crate) const WALK_WINDOW_NS: f64 = 500_000.0;

/// One will-it-scale point.
#[derive(Clone, Debug, Serialize)]
pub struct WisPoint {
    /// Scheme.
    pub scheme: String,
    /// Hardware threads of the (possibly scaled) machine.
    pub cpus: usize,
    /// The machine was grown beyond the preset (`MachineSpec::scaled`).
    pub extrapolated: bool,
    /// `-t N`.
    pub pairs: usize,
    /// Hardware threads running a benchmark thread (2 × pairs).
    pub cpus_used: usize,
    /// `as-run` (will-it-scale's binding) or `spread` (the pair on
    /// neighbouring CPUs: machines without SMT, where the binding puts the
    /// pair on one CPU and no switch goes through idle).
    pub placement: &'static str,
    /// Context switches per simulated second, all CPUs.
    pub switches_per_s: f64,
    /// will-it-scale's total (iterations per simulated second).
    pub iterations_per_s: f64,
    /// Lazy round trips (user → idle → user) per simulated second.
    pub lazy_round_trips_per_s: f64,
    /// CPU time per lazy round trip, us (`cpus_used / lazy_round_trips_per_s`).
    pub us_per_lazy_round_trip: f64,
    /// The line with the most transfer time, and its busy fraction.
    pub bottleneck: Option<(String, f64)>,
    /// Ledger clean.
    pub clean: bool,
}

/// One exit with every other CPU lazy.
#[derive(Clone, Debug, Serialize)]
pub struct ExitPoint {
    /// Scheme.
    pub scheme: String,
    /// Hardware threads of the (possibly scaled) machine.
    pub cpus: usize,
    /// The machine was grown beyond the preset.
    pub extrapolated: bool,
    /// Exit latency (us), IPIs included.
    pub exit_us: f64,
    /// Scheme IPIs.
    pub ipis: u64,
    /// Exit-flush IPIs.
    pub flush_ipis: u64,
    /// CPUs scanned.
    pub scan_steps: u64,
    /// Ledger clean.
    pub clean: bool,
}

/// PeterZ's adversarial exit under load at the machine's own size.
#[derive(Clone, Debug, Serialize)]
pub struct WalkPoint {
    /// Scheme.
    pub scheme: String,
    /// CPUs each process visits.
    pub walk: usize,
    /// CPUs of the machine it ran on (the preset, cut to [`WALK_MAX_CPUS`]).
    pub cpus: usize,
    /// Exits per simulated second.
    pub exits_per_s: f64,
    /// IPIs handled per CPU per simulated second.
    pub ipis_per_cpu_s: f64,
    /// Mean exit latency (us).
    pub mean_exit_us: f64,
    /// Ledger clean.
    pub clean: bool,
}

/// A scheme against refcount on one machine, in time.
#[derive(Clone, Debug, Serialize)]
pub struct TimeBreakEven {
    /// Scheme.
    pub scheme: String,
    /// Switch path saved per lazy round trip vs refcount (us; negative: costs more).
    pub saving_us_per_round_trip: f64,
    /// Exit time added vs refcount (us; negative: cheaper exit).
    pub extra_exit_us: f64,
    /// Lazy round trips per process lifetime above which the scheme is
    /// cheaper (when there is one crossing).
    pub break_even_l: Option<f64>,
    /// The verdict in words.
    pub verdict: String,
}

/// Everything simulated on one machine.
#[derive(Clone, Debug, Serialize)]
pub struct MachineTime {
    /// The preset (every figure with its source).
    pub spec: MachineSpec,
    /// Hardware threads of the preset.
    pub cpus: usize,
    /// How CPU counts beyond the preset were made.
    pub extrapolation: String,
    /// Simulated window of each will-it-scale run (ns) after a warm-up (ns).
    pub wis_window_ns: f64,
    /// Warm-up (ns).
    pub wis_warmup_ns: f64,
    /// will-it-scale points, by CPU count then scheme.
    pub scaling: Vec<WisPoint>,
    /// One exit per CPU count and scheme.
    pub exits: Vec<ExitPoint>,
    /// The exit walk at the machine's size (report only).
    pub walk: Vec<WalkPoint>,
    /// Per scheme other than refcount, at the machine's size.
    pub break_even: Vec<TimeBreakEven>,
}

/// What to simulate.
#[derive(Clone, Copy, Debug)]
pub struct TimedPlan {
    /// Sweep CPU counts (2, 4, ... and beyond the preset) up to this many;
    /// `None`: the machine's own size only.
    pub sweep_to: Option<usize>,
    /// Only this CPU count (overrides `sweep_to`).
    pub at: Option<usize>,
    /// Run the exit walk.
    pub walk: bool,
}

/// The machines named (presets or files), each once; all presets when none.
pub fn load_machines(names: &[String]) -> Result<Vec<MachineSpec>> {
    let names: Vec<String> = if names.is_empty() {
        lazymm_sim::timing::spec::preset_names()
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        names.to_vec()
    };
    let mut v: Vec<MachineSpec> = Vec::new();
    for n in &names {
        let s = MachineSpec::load(n).map_err(|e| anyhow!("{e}"))?;
        if !v.iter().any(|m| m.name == s.name) {
            v.push(s);
        }
    }
    Ok(v)
}

/// The CPU counts of a machine's sweep: 2, 4, ... up to `max`, and the
/// preset's own size (where the verdict and the break-even are taken) even
/// above `max`.
pub fn sweep_counts(native: usize, max: usize) -> Vec<usize> {
    let mut v = pow2_upto(max.max(2));
    if !v.contains(&native) {
        v.push(native);
    }
    v.sort();
    v
}

/// Whether `spec`'s `switch` figure is a kernel context switch (at least
/// [`KERNEL_SWITCH_NS`]). `this-machine`'s is the library runtime's own
/// per-switch work (~10 ns, `lazymm bench`'s threads): such a machine is
/// simulated at its own size only, never extrapolated to thousands of
/// CPUs (it would also take hours: hundreds of millions of switches per
/// simulated window).
pub fn kernel_switch(spec: &MachineSpec) -> bool {
    spec.cost_ns.switch.value >= KERNEL_SWITCH_NS
}

/// The smallest `switch` figure taken as a kernel context switch (ns).
pub const KERNEL_SWITCH_NS: f64 = 100.0;

enum Job {
    Wis(usize, SchemeKind, usize),
    Exit(usize, SchemeKind, usize),
    Walk(usize, SchemeKind),
}

enum Out {
    Wis(usize, WisPoint),
    Exit(usize, ExitPoint),
    Walk(usize, WalkPoint),
}

fn spec_at(spec: &MachineSpec, cpus: usize) -> (MachineSpec, bool) {
    if cpus > spec.cpus() {
        (spec.scaled(cpus), true)
    } else {
        (spec.clone(), false)
    }
}

fn run_job(specs: &[MachineSpec], j: &Job) -> std::result::Result<Out, String> {
    match *j {
        Job::Wis(m, scheme, cpus) => {
            let (spec, extrapolated) = spec_at(&specs[m], cpus);
            // One thread per hardware thread of the machine as built
            // (`scaled` rounds to whole sockets and caps at 4096).
            let pairs = (cpus.min(spec.cpus()) / 2).max(1);
            let mut cfg = WisConfig::new(pairs);
            cfg.spread = spec.topology.smt.value as usize == 1;
            let r = wis::run(&spec, scheme, &cfg)?;
            let window_s = cfg.window_ns * 1e-9;
            let trips = r.transitions.user_to_kernel as f64;
            let trips_per_s = trips / window_s;
            Ok(Out::Wis(
                m,
                WisPoint {
                    scheme: r.scheme,
                    cpus: spec.cpus(),
                    extrapolated,
                    pairs,
                    cpus_used: r.cpus_used,
                    placement: if cfg.spread { "spread" } else { "as-run" },
                    switches_per_s: r.switches_per_s,
                    iterations_per_s: r.iterations_per_s,
                    lazy_round_trips_per_s: trips_per_s,
                    us_per_lazy_round_trip: if trips > 0.0 {
                        r.cpus_used as f64 / trips_per_s * 1e6
                    } else {
                        0.0
                    },
                    bottleneck: r
                        .hottest
                        .first()
                        .filter(|l| l.busy_ns > 0.0)
                        .map(|l| (l.kind.to_string(), r.bottleneck_utilization)),
                    clean: r.clean,
                },
            ))
        }
        Job::Exit(m, scheme, cpus) => {
            let (spec, extrapolated) = spec_at(&specs[m], cpus);
            let n = cpus.min(spec.cpus());
            let e = lazymm_sim::timing::exit_cost(&spec, scheme, n.saturating_sub(1))?;
            Ok(Out::Exit(
                m,
                ExitPoint {
                    scheme: e.scheme,
                    cpus: n,
                    extrapolated,
                    exit_us: e.exit_us,
                    ipis: e.ipis,
                    flush_ipis: e.flush_ipis,
                    scan_steps: e.scan_steps,
                    clean: e.clean,
                },
            ))
        }
        Job::Walk(m, scheme) => {
            let spec = if specs[m].cpus() > WALK_MAX_CPUS {
                specs[m].scaled(WALK_MAX_CPUS)
            } else {
                specs[m].clone()
            };
            let w = exit_walk::run(&spec, scheme, WALK, WALK_WINDOW_NS)?;
            Ok(Out::Walk(
                m,
                WalkPoint {
                    scheme: w.scheme,
                    walk: w.walk,
                    cpus: spec.cpus(),
                    exits_per_s: w.exits_per_s,
                    ipis_per_cpu_s: w.ipis_per_cpu_s,
                    mean_exit_us: w.mean_exit_us,
                    clean: w.clean,
                },
            ))
        }
    }
}

/// Simulates `schemes` on every machine of `specs` per `plan`, on `jobs`
/// threads, with progress on stderr unless `quiet`.
pub fn run_machines(
    specs: &[MachineSpec],
    schemes: &[SchemeKind],
    plan: TimedPlan,
    jobs: usize,
    quiet: bool,
) -> Result<Vec<MachineTime>> {
    let mut work = Vec::new();
    for (m, spec) in specs.iter().enumerate() {
        let native = spec.cpus();
        let counts = match (plan.at, plan.sweep_to) {
            (Some(c), _) => vec![c],
            (None, Some(max)) if !kernel_switch(spec) => sweep_counts(native, max.min(native)),
            (None, Some(max)) => sweep_counts(native, max),
            (None, None) => vec![native],
        };
        // Largest first: the slowest jobs start first.
        for &c in counts.iter().rev() {
            for &s in schemes {
                work.push(Job::Wis(m, s, c));
                work.push(Job::Exit(m, s, c));
            }
        }
        if plan.walk {
            for &s in schemes {
                work.push(Job::Walk(m, s));
            }
        }
    }
    let total = work.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<std::result::Result<Out, String>>>> =
        Mutex::new((0..total).map(|_| None).collect());
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|sc| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                sc.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let r = run_job(specs, &work[i]);
                    results.lock().expect("results lock")[i] = Some(r);
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        if !quiet {
            let mut last = Instant::now();
            while workers.iter().any(|w| !w.is_finished()) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() >= Duration::from_secs(5) {
                    last = Instant::now();
                    let d = done.load(Ordering::Relaxed);
                    let msg = format!(
                        "lazymm: simulated time: {d}/{total} runs on {} machine(s), {}s elapsed",
                        specs.len(),
                        start.elapsed().as_secs()
                    );
                    if tty {
                        eprint!("\r{msg}");
                    } else {
                        eprintln!("{msg}");
                    }
                }
            }
            if tty && start.elapsed() >= Duration::from_secs(5) {
                eprintln!();
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    let mut out: Vec<MachineTime> = specs
        .iter()
        .map(|s| MachineTime {
            spec: s.clone(),
            cpus: s.cpus(),
            extrapolation: format!(
                "beyond {} CPUs: MachineSpec::scaled, whole sockets of {} CPUs added as further \
                 nodes two hops from the others (latency_ns.remote), every other figure unchanged",
                s.cpus(),
                s.cpus_per_socket()
            ),
            wis_window_ns: WisConfig::new(1).window_ns,
            wis_warmup_ns: WisConfig::new(1).warmup_ns,
            scaling: Vec::new(),
            exits: Vec::new(),
            walk: Vec::new(),
            break_even: Vec::new(),
        })
        .collect();
    for (i, r) in results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .enumerate()
    {
        let label = || match work[i] {
            Job::Wis(m, s, c) => format!("{} will-it-scale {} at {c} CPUs", specs[m].name, s),
            Job::Exit(m, s, c) => format!("{} exit {} at {c} CPUs", specs[m].name, s),
            Job::Walk(m, s) => format!("{} exit walk {}", specs[m].name, s),
        };
        match r {
            Some(Ok(Out::Wis(m, p))) => out[m].scaling.push(p),
            Some(Ok(Out::Exit(m, p))) => out[m].exits.push(p),
            Some(Ok(Out::Walk(m, p))) => out[m].walk.push(p),
            Some(Err(e)) => return Err(anyhow!("{}: {e}", label())),
            None => return Err(anyhow!("{} did not complete", label())),
        }
    }
    for mt in &mut out {
        let order = |s: &str| schemes.iter().position(|k| k.name() == s).unwrap_or(0);
        mt.scaling.sort_by_key(|p| (p.cpus_used, order(&p.scheme)));
        mt.exits.sort_by_key(|p| (p.cpus, order(&p.scheme)));
        mt.walk.sort_by_key(|w| order(&w.scheme));
        mt.break_even = time_break_even(mt);
    }
    Ok(out)
}

impl MachineTime {
    /// The ledger label of `scheme`'s simulated-time runs on this machine
    /// whose clean flags are `clean`, from those runs alone (no hotplug
    /// here: a scheme known unsafe only under hotplug is clean in them):
    /// "clean", "known unsafe" (a dirty ledger the scheme is known for on
    /// this kernel, without hotplug) or "FAIL", with the row class.
    pub fn ledger(
        &self,
        scheme: &str,
        clean: impl IntoIterator<Item = bool>,
    ) -> (&'static str, Option<&'static str>) {
        if clean.into_iter().all(|c| c) {
            return ("clean", None);
        }
        let known = lazymm::SchemeKind::parse(scheme).and_then(|k| {
            let opts = lazymm::schemes::KernelOptions::parse(&self.spec.kernel).ok()?;
            k.known_unsafe_with(&opts, false)
        });
        if known.is_some() {
            ("known unsafe", Some("unsafe"))
        } else {
            ("FAIL", Some("fail"))
        }
    }

    /// The ledger of every simulated-time run of `scheme` at the machine's
    /// size `cpus` (will-it-scale, the exit, the walk).
    pub fn ledger_at(&self, scheme: &str, cpus: usize) -> (&'static str, Option<&'static str>) {
        let w = self.wis(scheme, cpus).map(|p| p.clean);
        let e = self.exit(scheme, cpus).map(|p| p.clean);
        let k = self
            .walk
            .iter()
            .filter(|p| p.scheme == scheme)
            .map(|p| p.clean);
        self.ledger(scheme, w.into_iter().chain(e).chain(k))
    }

    /// The will-it-scale point of `scheme` with `cpus` CPUs busy.
    pub fn wis(&self, scheme: &str, cpus: usize) -> Option<&WisPoint> {
        self.scaling
            .iter()
            .find(|p| p.scheme == scheme && p.cpus_used == cpus)
    }
    /// The exit point of `scheme` at `cpus`.
    pub fn exit(&self, scheme: &str, cpus: usize) -> Option<&ExitPoint> {
        self.exits
            .iter()
            .find(|p| p.scheme == scheme && p.cpus == cpus)
    }
    /// Schemes in the order run.
    pub fn schemes(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for p in &self.scaling {
            if !v.contains(&p.scheme) {
                v.push(p.scheme.clone());
            }
        }
        v
    }
    /// (scheme, a = us per lazy round trip, e = exit us) at the machine's
    /// size, for the lifetime model.
    pub fn trips(&self) -> Vec<Trip> {
        self.schemes()
            .into_iter()
            .filter_map(|s| {
                let w = self.wis(&s, self.cpus)?;
                let e = self.exit(&s, self.cpus)?;
                Some((s, w.us_per_lazy_round_trip, e.exit_us))
            })
            .collect()
    }
    /// `scheme`'s will-it-scale switches/s as a ratio to refcount's with
    /// `cpus` CPUs busy.
    pub fn ratio(&self, scheme: &str, cpus: usize) -> Option<f64> {
        let b = self.wis(BASELINE, cpus)?.switches_per_s;
        let s = self.wis(scheme, cpus)?.switches_per_s;
        (b > 0.0).then(|| s / b)
    }
    /// The figures with their sources.
    pub fn figures(&self) -> Vec<(String, &SpecFigure)> {
        self.spec.figures()
    }
}

fn time_break_even(mt: &MachineTime) -> Vec<TimeBreakEven> {
    let trips = mt.trips();
    let Some(b) = trips.iter().find(|t| t.0 == BASELINE).cloned() else {
        return Vec::new();
    };
    trips
        .iter()
        .filter(|t| t.0 != BASELINE)
        .map(|t| {
            let (l, verdict) = break_even(t, &b);
            TimeBreakEven {
                scheme: t.0.clone(),
                saving_us_per_round_trip: b.1 - t.1,
                extra_exit_us: t.2 - b.2,
                break_even_l: l,
                verdict,
            }
        })
        .collect()
}

/// Time with a unit: `1.23 us`, `456 ns`, `2.04 ms`.
pub(crate) fn us(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{} ms", sig(x / 1000.0))
    } else if x.abs() >= 1.0 || x == 0.0 {
        format!("{} us", sig(x))
    } else {
        format!("{} ns", sig(x * 1000.0))
    }
}

/// A rate: `95.9 M/s`.
pub(crate) fn rate(x: f64) -> String {
    if x >= 1e9 {
        format!("{} G/s", sig(x / 1e9))
    } else if x >= 1e6 {
        format!("{} M/s", sig(x / 1e6))
    } else if x >= 1e3 {
        format!("{} k/s", sig(x / 1e3))
    } else {
        format!("{}/s", sig(x))
    }
}

/// The verdict of one machine in time: the pick by switch throughput, by
/// exit latency, the one scheme with the smallest worst ratio over both,
/// and its break-even against refcount. `eligible`: schemes that may be
/// picked (clean ledger, not known unsafe).
pub(crate) fn machine_lines(mt: &MachineTime, eligible: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut o = Vec::new();
    let n = mt.cpus;
    o.push(format!(
        "{}  ({}, {n} CPUs; will-it-scale context_switch1_threads -t {}{}; one exit, {} CPUs lazy)",
        mt.spec.name,
        mt.spec.arch,
        n / 2,
        if mt.scaling.iter().any(|p| p.placement == "spread") {
            ", pairs on neighbouring CPUs (no SMT)"
        } else {
            ""
        },
        n - 1
    ));
    let schemes: Vec<String> = mt
        .schemes()
        .into_iter()
        .filter(|s| eligible(s) && mt.wis(s, n).is_some() && mt.exit(s, n).is_some())
        .collect();
    let base_w = mt.wis(BASELINE, n);
    let base_e = mt.exit(BASELINE, n);
    // Cost ratios to refcount (below 1: cheaper): time per switch and time per exit.
    let sw_cost = |s: &str| -> Option<f64> {
        let b = base_w?.switches_per_s;
        let x = mt.wis(s, n)?.switches_per_s;
        (x > 0.0).then(|| b / x)
    };
    let ex_cost = |s: &str| -> Option<f64> {
        let b = base_e?.exit_us;
        let x = mt.exit(s, n)?.exit_us;
        (b > 0.0).then(|| x / b)
    };
    let best = |f: &dyn Fn(&str) -> Option<f64>| -> Option<(String, f64)> {
        schemes
            .iter()
            .filter_map(|s| f(s).map(|x| (s.clone(), x)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let ws = schemes.iter().map(|s| s.len()).max().unwrap_or(8);
    if let (Some((s, _)), Some(b)) = (best(&sw_cost), base_w) {
        let p = mt.wis(&s, n).expect("picked from the runs");
        o.push(format!(
            "  switches/s         pick {s:<ws$}  {:>9} refcount  ({} vs {})",
            format!("{}×", sig(p.switches_per_s / b.switches_per_s)),
            rate(p.switches_per_s),
            rate(b.switches_per_s)
        ));
    }
    if let (Some((s, _)), Some(b)) = (best(&ex_cost), base_e) {
        let p = mt.exit(&s, n).expect("picked from the runs");
        o.push(format!(
            "  exit latency       pick {s:<ws$}  {:>9} refcount  ({} vs {})",
            format!("{}×", sig(p.exit_us / b.exit_us)),
            us(p.exit_us),
            us(b.exit_us)
        ));
    }
    // PeterZ's framing: the scheme that beats refcount's process lifetime
    // (L x a + e) from the fewest lazy round trips per lifetime.
    let mut best_be: Option<(&TimeBreakEven, f64)> = None;
    for b in mt.break_even.iter().filter(|b| eligible(&b.scheme)) {
        let from = match b.break_even_l {
            Some(l) if b.saving_us_per_round_trip > 0.0 => l,
            None if b.saving_us_per_round_trip >= 0.0 && b.extra_exit_us <= 0.0 => 0.0,
            _ => continue,
        };
        if best_be.is_none_or(|(_, l)| from < l) {
            best_be = Some((b, from));
        }
    }
    match best_be {
        Some((b, l)) => o.push(format!(
            "  => {}: cheaper than refcount from L = {} lazy round trips per process lifetime\n     \
             (saves {} of CPU per lazy round trip, exit {}{}; {}× refcount's switches/s)",
            b.scheme,
            sig(l),
            us(b.saving_us_per_round_trip),
            if b.extra_exit_us >= 0.0 { "+" } else { "" },
            us(b.extra_exit_us),
            mt.ratio(&b.scheme, n).map(sig).unwrap_or_else(|| "–".into())
        )),
        None if base_w.is_some() => o.push(
            "  => refcount: no eligible scheme beats its process lifetime at any L".into(),
        ),
        None => o.push("  => refcount was not timed: no break-even".into()),
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> MachineTime {
        MachineTime {
            spec: MachineSpec::load("epyc-9654-2s").expect("preset"),
            cpus: 384,
            extrapolation: String::new(),
            wis_window_ns: 0.0,
            wis_warmup_ns: 0.0,
            scaling: Vec::new(),
            exits: Vec::new(),
            walk: Vec::new(),
            break_even: Vec::new(),
        }
    }

    /// Time tables label a scheme by its own simulated-time runs: shoot-down
    /// is known unsafe only under 6.12 hotplug, which no timed run does, so a
    /// clean timed run is "clean" and a dirty one is a FAIL; mockup's leak is
    /// known whatever the workload.
    #[test]
    fn ledger_labels_come_from_the_runs() {
        let mt = machine();
        assert_eq!(mt.ledger("shootdown", [true, true]), ("clean", None));
        assert_eq!(
            mt.ledger("shootdown", [true, false]),
            ("FAIL", Some("fail"))
        );
        assert_eq!(
            mt.ledger("mockup", [false]),
            ("known unsafe", Some("unsafe"))
        );
        assert_eq!(mt.ledger("mockup", [true]), ("clean", None));
        assert_eq!(mt.ledger_at("shootdown", 384), ("clean", None));
    }
}
