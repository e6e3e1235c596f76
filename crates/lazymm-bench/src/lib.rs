//! # lazymm-bench
//!
//! Wall-clock measurements on this machine, never asserted:
//!
//! * [`run_bench`]: every scheme of [`SchemeKind::ALL`] on real OS threads
//!   (a `lazymm::Machine<StdPlatform>`, the same scheme code as the
//!   simulator), repetitions of the schemes interleaved, reported as
//!   switches/s and as **ratios to `refcount` measured in the same
//!   repetition** (median and spread over repetitions), with each scheme's
//!   ledger;
//! * [`calibrate::calibrate`]: this machine's local vs shared-line RMW, line
//!   hand-off and fence costs next to the simulator's cost model;
//! * `benches/peers.rs` (`cargo bench -p lazymm-bench`): the cost of one
//!   "borrow + release" of a shared object in lazymm and in the peer crates
//!   (Arc, arc-swap, crossbeam-epoch, haphazard, seize, hazarc).
#![warn(missing_docs)]

pub mod calibrate;
pub mod switches;

use std::time::Duration;

use lazymm::{Arch, LedgerCounts, SchemeKind};
use serde::Serialize;

pub use calibrate::{calibrate, Calibration};
pub use switches::{Length, RunOpts, SwitchRun, Workload};

/// A value alone on its cache line(s) (128 bytes: x86 prefetches line
/// pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

/// What [`run_bench`] runs.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Schemes; `refcount` is added when missing (it is the baseline).
    pub schemes: Vec<SchemeKind>,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// OS threads (= CPUs) per run.
    pub threads: usize,
    /// Architecture profile of the machine model.
    pub arch: Arch,
    /// Length of one measurement.
    pub length: Length,
    /// Repetitions (each runs every scheme once, in a rotated order).
    pub reps: usize,
    /// Pin each CPU's thread to a core (see [`switches::pin_to_core`]).
    pub pin: bool,
    /// Machine CPU of bench thread `c`: `c * cpu_stride` (see
    /// [`switches::RunOpts::stride`]).
    pub cpu_stride: usize,
}

impl BenchConfig {
    /// Every scheme, the two token/free-running workloads and the stress
    /// mix, 2 threads, x86, 5 repetitions of 300 ms.
    pub fn new(threads: usize) -> Self {
        BenchConfig {
            schemes: SchemeKind::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            threads,
            arch: Arch::X86,
            length: Length::Time(Duration::from_millis(300)),
            reps: 5,
            pin: true,
            cpu_stride: 1,
        }
    }

    /// A short configuration for tests and `--quick`.
    pub fn quick(threads: usize) -> Self {
        BenchConfig {
            length: Length::Time(Duration::from_millis(40)),
            reps: 3,
            ..BenchConfig::new(threads)
        }
    }

    /// The schemes in run order, `refcount` first.
    pub fn scheme_list(&self) -> Vec<SchemeKind> {
        let mut v = vec![SchemeKind::Refcount];
        for &s in &self.schemes {
            if !v.contains(&s) {
                v.push(s);
            }
        }
        v
    }

    /// Measurements [`run_bench`] makes (for a progress bar).
    pub fn total_runs(&self) -> usize {
        self.reps * self.workloads.len() * self.scheme_list().len()
    }
}

/// Median, minimum and maximum of a sample.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `xs` (empty: all zero).
    pub fn of(xs: &[f64]) -> Spread {
        if xs.is_empty() {
            return Spread::default();
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    /// `(max - min) / median`, in percent.
    pub fn range_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            100.0 * (self.max - self.min) / self.median
        }
    }
}

/// The ledger's counts (summed over repetitions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Uses after free.
    pub uaf: u64,
    /// Double frees.
    pub double_free: u64,
    /// mms never freed after quiesce.
    pub leaked: u64,
    /// mms allocated.
    pub allocs: u64,
    /// mms freed.
    pub frees: u64,
}

impl Ledger {
    /// No use-after-free, double free or leak.
    pub fn clean(&self) -> bool {
        self.uaf == 0 && self.double_free == 0 && self.leaked == 0
    }

    fn add(&mut self, b: &LedgerCounts) {
        self.uaf += b.uaf;
        self.double_free += b.double_free;
        self.leaked += b.leaked;
        self.allocs += b.allocs;
        self.frees += b.frees;
    }
}

/// One row: a scheme on a workload, over all repetitions.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Scheme id.
    pub scheme: String,
    /// Workload id.
    pub workload: Workload,
    /// OS threads.
    pub threads: usize,
    /// Context switches per second, one value per repetition.
    pub rates: Vec<f64>,
    /// Their median and range.
    pub switches_per_s: Spread,
    /// `rate / refcount's rate in the same repetition`: median and range.
    pub ratio_to_refcount: Spread,
    /// Switches per second of CPU time per thread (see
    /// [`SwitchRun::cpu_rate`]), one value per repetition.
    pub cpu_rates: Vec<f64>,
    /// Their median and range.
    pub switches_per_cpu_s: Spread,
    /// `cpu_rate / refcount's cpu_rate in the same repetition`.
    pub cpu_ratio_to_refcount: Spread,
    /// Ping-pong: the p90 window rate of each repetition (see
    /// [`SwitchRun::peak_rate`]); empty for other workloads.
    pub peak_rates: Vec<f64>,
    /// Their median and range.
    pub peak_switches_per_s: Option<Spread>,
    /// `peak_rate / refcount's peak_rate in the same repetition`.
    pub peak_ratio_to_refcount: Option<Spread>,
    /// Fraction of the timed phase the threads ran (1.0: never
    /// descheduled), median and range.
    pub utilization: Spread,
    /// Ledger summed over repetitions.
    pub ledger: Ledger,
    /// `ok`, `FAIL`, or `KNOWN-UNSAFE`.
    pub verdict: String,
    /// Address spaces torn down, summed.
    pub teardowns: u64,
    /// IPIs (scheme + exit flush), summed.
    pub ipis: u64,
}

/// A scheme that could not run (e.g. not implemented yet).
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// Scheme id.
    pub scheme: String,
    /// Why.
    pub reason: String,
}

/// Everything [`run_bench`] measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// OS threads per run.
    pub threads: usize,
    /// Profile.
    pub arch: String,
    /// Repetitions.
    pub reps: usize,
    /// One measurement's length in seconds (time-bounded runs).
    pub seconds: Option<f64>,
    /// One measurement's length in iterations per CPU (iteration-bounded).
    pub iterations: Option<u64>,
    /// Rows, by workload then scheme (refcount first).
    pub rows: Vec<Row>,
    /// Schemes that could not run.
    pub skipped: Vec<Skipped>,
    /// Known-unsafe schemes with their reason.
    pub known_unsafe: Vec<Skipped>,
    /// Cores the OS reports.
    pub available_parallelism: usize,
    /// Threads pinned to cores (ping-pong, free-run).
    pub pinned: bool,
    /// Machine CPU of bench thread `c` is `c * cpu_stride` (ping-pong,
    /// free-run).
    pub cpu_stride: usize,
    /// `/proc/loadavg` (1, 5, 15 min) at the start and at the end: other
    /// work on the machine during the run.
    pub loadavg: [Option<[f64; 3]>; 2],
}

/// The 1, 5 and 15 minute load averages (Linux), if readable.
pub fn loadavg() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

impl BenchReport {
    /// Does any scheme not declared known-unsafe have a dirty ledger?
    pub fn has_failure(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == "FAIL")
    }
}

/// Runs `cfg`: for each repetition, for each workload, every scheme once
/// (the order rotated by one each repetition so that no scheme always runs
/// first or last). `progress(done, total, label)` is called after each
/// measurement. Fails only if `refcount` itself cannot run.
pub fn run_bench(
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<BenchReport, String> {
    let load0 = loadavg();
    let schemes = cfg.scheme_list();
    let total = cfg.total_runs();
    let mut done = 0;
    // results[rep][workload][scheme]
    let mut results: Vec<Vec<Vec<Option<SwitchRun>>>> =
        vec![vec![vec![None; schemes.len()]; cfg.workloads.len()]; cfg.reps];
    let mut skipped: Vec<Skipped> = Vec::new();
    for (rep, per_rep) in results.iter_mut().enumerate() {
        for (&w, per_w) in cfg.workloads.iter().zip(per_rep.iter_mut()) {
            for k in 0..schemes.len() {
                let si = (k + rep) % schemes.len();
                let s = schemes[si];
                done += 1;
                if skipped.iter().any(|x| x.scheme == s.name()) {
                    progress(done, total, s.name());
                    continue;
                }
                match switches::run(
                    s,
                    cfg.arch,
                    cfg.threads,
                    w,
                    cfg.length,
                    switches::RunOpts {
                        pin: cfg.pin,
                        stride: cfg.cpu_stride,
                    },
                ) {
                    Ok(r) => per_w[si] = Some(r),
                    Err(e) if s == SchemeKind::Refcount => return Err(e),
                    Err(e) => skipped.push(Skipped {
                        scheme: s.name().into(),
                        reason: e,
                    }),
                }
                progress(done, total, &format!("{w} {s} rep {}", rep + 1));
            }
        }
    }
    let mut rows = Vec::new();
    for (wi, &w) in cfg.workloads.iter().enumerate() {
        let base: Vec<Option<f64>> = results
            .iter()
            .map(|rep| rep[wi][0].as_ref().map(SwitchRun::rate))
            .collect();
        let peak_base: Vec<Option<f64>> = results
            .iter()
            .map(|rep| rep[wi][0].as_ref().and_then(|r| r.peak_rate))
            .collect();
        let cpu_base: Vec<Option<f64>> = results
            .iter()
            .map(|rep| rep[wi][0].as_ref().map(SwitchRun::cpu_rate))
            .collect();
        for (si, &s) in schemes.iter().enumerate() {
            let all: Vec<Option<&SwitchRun>> =
                results.iter().map(|rep| rep[wi][si].as_ref()).collect();
            let runs: Vec<&SwitchRun> = all.iter().flatten().copied().collect();
            if runs.is_empty() {
                continue;
            }
            let rates: Vec<f64> = runs.iter().map(|r| r.rate()).collect();
            let ratios: Vec<f64> = all
                .iter()
                .zip(&base)
                .filter_map(|(r, b)| Some(r.as_ref()?.rate() / (*b)?))
                .collect();
            let cpu_rates: Vec<f64> = runs.iter().map(|r| r.cpu_rate()).collect();
            let cpu_ratios: Vec<f64> = all
                .iter()
                .zip(&cpu_base)
                .filter_map(|(r, b)| Some(r.as_ref()?.cpu_rate() / (*b)?))
                .collect();
            let util: Vec<f64> = runs.iter().map(|r| r.utilization()).collect();
            let peak_rates: Vec<f64> = runs.iter().filter_map(|r| r.peak_rate).collect();
            let peak_ratios: Vec<f64> = all
                .iter()
                .zip(&peak_base)
                .filter_map(|(r, b)| Some(r.as_ref()?.peak_rate? / (*b)?))
                .collect();
            let some = |v: &[f64]| (!v.is_empty()).then(|| Spread::of(v));
            let mut ledger = Ledger::default();
            for r in &runs {
                ledger.add(&r.ledger);
            }
            let verdict = if ledger.clean() {
                "ok"
            } else if s.known_unsafe().is_some() {
                "KNOWN-UNSAFE"
            } else {
                "FAIL"
            };
            rows.push(Row {
                scheme: s.name().into(),
                workload: w,
                threads: cfg.threads,
                switches_per_s: Spread::of(&rates),
                ratio_to_refcount: Spread::of(&ratios),
                rates,
                switches_per_cpu_s: Spread::of(&cpu_rates),
                cpu_ratio_to_refcount: Spread::of(&cpu_ratios),
                cpu_rates,
                utilization: Spread::of(&util),
                peak_switches_per_s: some(&peak_rates),
                peak_ratio_to_refcount: some(&peak_ratios),
                peak_rates,
                ledger,
                verdict: verdict.into(),
                teardowns: runs.iter().map(|r| r.teardowns).sum(),
                ipis: runs.iter().map(|r| r.ipis).sum(),
            });
        }
    }
    let known_unsafe = schemes
        .iter()
        .filter_map(|s| {
            Some(Skipped {
                scheme: s.name().into(),
                reason: s.known_unsafe()?.into(),
            })
        })
        .collect();
    Ok(BenchReport {
        threads: cfg.threads,
        arch: cfg.arch.name().into(),
        reps: cfg.reps,
        seconds: match cfg.length {
            Length::Time(d) => Some(d.as_secs_f64()),
            Length::Iterations(_) => None,
        },
        iterations: match cfg.length {
            Length::Iterations(n) => Some(n),
            Length::Time(_) => None,
        },
        rows,
        skipped,
        known_unsafe,
        available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        loadavg: [load0, loadavg()],
        pinned: cfg.pin,
        cpu_stride: cfg.cpu_stride,
    })
}
