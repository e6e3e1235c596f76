//! `lazymm compare --report DIR`: an offline report folder (`index.html`
//! with inline SVG charts, the charts as `*.svg` files, `data.json`) that a
//! kernel engineer can use to decide which scheme to ship.
//!
//! Nothing here hard-codes the scheme list: every chart and table iterates
//! over the scheme names present in the runs, in order of first appearance.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use lazymm::{Arch, SchemeKind};
use lazymm_sim::{RunConfig, RunReport, WorkloadKind};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod charts;
mod data;
pub(crate) mod format;
mod prose;
pub mod timed;
pub(crate) mod verdict;

use charts::*;
use data::*;
use format::*;
use prose::*;
use timed::MachineTime;
use verdict::*;

/// What the report is made of.
pub struct ReportInput<'a> {
    /// The runs of `compare` (synthetic workloads and trace replays).
    pub runs: &'a [RunReport],
    /// The extra runs of [`sweep_configs`] (CPU-count sweep, exit-storm).
    pub sweep: &'a [RunReport],
    /// Simulated time per machine preset (`timed::run_machines`).
    pub machines: &'a [MachineTime],
    /// The exact command line that produced the report.
    pub command: String,
}

/// Largest CPU count of the context-switch sweep (and of `sim --sweep`).
pub(crate) const SWEEP_MAX_CPUS: usize = 4096;
/// Largest CPU count of the exit-storm sweep (an exit-storm wave walks every
/// process across every CPU: N^2 work per wave).
///
/// Not 4096: one wave at 4096 CPUs (4096 rounds) takes 61 s for the nine
/// schemes on one architecture with `--jobs 2` (lightweight alone 3.6 s;
/// the schemes that scan every CPU per exit dominate), one wave at 2048
/// 6 s: even one wave per count past 256 adds over a minute per
/// architecture to the report (the rounds and the CPU count of the
/// caption's claim: `lazymm sim --cpus 4096 --workload exit-storm
/// --rounds 4096 --arch x86 --jobs 2`).
/// `timing::exit_cost` (the time-exit figures) goes to 4096.
pub(super) const EXIT_SWEEP_MAX_CPUS: usize = 256;
/// CPU count at which the exit table takes exit-storm.
const BREAK_EVEN_CPUS: usize = 64;
const MIN_ROUNDS: u64 = 512;

/// Scheduler rounds of a run when `--rounds` is not given: the one rule of
/// `compare`, `sim` and the report's sweep, so that the same configuration
/// gives the same figures everywhere.
///
/// `ctxswitch-*`: about 0.69 switches per CPU per round, so `90_000 / cpus`
/// rounds gives ~60k switches per run; and at least [`MIN_ROUNDS`], so that
/// every CPU switches a few hundred times at any CPU count: per-CPU one-off
/// costs (first touch of a CPU's slot line, the final teardown) are then
/// amortised over the same number of switches at 4096 CPUs as at 128.
/// `exit-storm`: each wave takes `cpus` rounds and ends in `cpus` exits:
/// four waves. Others: 1500.
pub fn default_rounds(w: WorkloadKind, cpus: usize) -> u64 {
    match w {
        WorkloadKind::CtxswitchThreads | WorkloadKind::CtxswitchProcesses => {
            (90_000 / cpus as u64).max(MIN_ROUNDS)
        }
        WorkloadKind::ExitStorm => (4 * cpus as u64).max(256),
        _ => 1500,
    }
}

fn pow2_upto(max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut c = 2;
    while c <= max {
        v.push(c);
        c *= 2;
    }
    if v.last() != Some(&max) && max >= 2 {
        v.push(max);
    }
    v
}

/// The extra runs the report needs beyond `compare`'s: for each of
/// `schemes` and `archs`, `ctxswitch-threads` and `ctxswitch-processes` at
/// 2, 4, ..., `max_cpus` CPUs and `exit-storm` at 2, 4, ..., min(256,
/// `max_cpus`) CPUs (which includes the break-even CPU count, 64), with
/// `rounds` or [`default_rounds`].
pub fn sweep_configs(
    seed: u64,
    schemes: &[SchemeKind],
    archs: &[Arch],
    max_cpus: usize,
    rounds: Option<u64>,
) -> Vec<RunConfig> {
    let mut v = Vec::new();
    let mut push = |scheme, arch, workload, cpus| {
        v.push(RunConfig {
            scheme,
            arch,
            cpus,
            workload,
            seed,
            rounds: rounds.unwrap_or_else(|| default_rounds(workload, cpus)),
            options: Default::default(),
        })
    };
    for &arch in archs {
        for &scheme in schemes {
            for workload in [
                WorkloadKind::CtxswitchThreads,
                WorkloadKind::CtxswitchProcesses,
            ] {
                for cpus in pow2_upto(max_cpus) {
                    push(scheme, arch, workload, cpus);
                }
            }
            for cpus in pow2_upto(EXIT_SWEEP_MAX_CPUS.min(max_cpus)) {
                push(scheme, arch, WorkloadKind::ExitStorm, cpus);
            }
        }
    }
    v
}

/// Fails unless a report can be written into `dir` (created if missing):
/// checked before any work is done.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("{}: cannot create the report folder: {e}", dir.display()))?;
    let probe = dir.join(".lazymm-write-check");
    std::fs::write(&probe, b"")
        .map_err(|e| anyhow!("{}: cannot write the report there: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes the report folder `dir` (created if missing): `index.html`, one
/// SVG per chart, `data.json`. Returns the files written.
pub fn write_report(dir: &Path, input: &ReportInput) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cx = Ctx::new(input);
    let mut figs: BTreeMap<&'static str, Vec<Figure>> = BTreeMap::new();
    for arch in &cx.archs {
        if let Some(f) = scaling_chart(&cx, arch)? {
            figs.entry("scaling").or_default().push(f);
        }
        figs.entry("exit")
            .or_default()
            .extend(exit_charts(&cx, arch)?);
        if let Some(f) = traces_chart(&cx, arch)? {
            figs.entry("traces").or_default().push(f);
        }
    }
    for mt in input.machines {
        figs.entry("time-scaling")
            .or_default()
            .extend(time_scaling_chart(&cx, mt)?);
        figs.entry("time-exit")
            .or_default()
            .extend(time_exit_chart(&cx, mt)?);
        if let Some(f) = break_even_chart(&cx, mt)? {
            figs.entry("break-even").or_default().push(f);
        }
    }
    // Everything is rendered before the first file is written; a failed
    // write removes what was written, so no partial report is left behind.
    let mut files: Vec<(PathBuf, String)> = figs
        .values()
        .flatten()
        .map(|f| (dir.join(&f.file), f.svg.clone()))
        .collect();
    files.push((dir.join("data.json"), data_json(&cx, input)?));
    files.push((dir.join("index.html"), build_html(&cx, input, &figs)));
    let mut written = Vec::new();
    for (p, text) in files {
        if let Err(e) = std::fs::write(&p, text) {
            for w in &written {
                let _ = std::fs::remove_file(w);
            }
            return Err(anyhow!("{}: {e}", p.display()));
        }
        written.push(p);
    }
    Ok(written)
}

/// `data.json`: the runs every chart and table is drawn from (exact
/// counts), the simulated time per machine with every machine parameter and
/// its source, and the parameters of the sweep and of the derived figures,
/// so that a reader can redraw them.
fn data_json(_cx: &Ctx, input: &ReportInput) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Parameters {
        sweep_max_cpus: usize,
        exit_sweep_max_cpus: usize,
        exit_table_cpus: usize,
        default_rounds: &'static str,
        time_scaling: &'static str,
        us_per_lazy_round_trip: &'static str,
        exit_us: &'static str,
        exit_walk: String,
        break_even: &'static str,
    }
    #[derive(serde::Serialize)]
    struct Data<'a> {
        command: &'a str,
        version: &'static str,
        parameters: Parameters,
        machines: &'a [MachineTime],
        runs: &'a [RunReport],
        sweep: &'a [RunReport],
    }
    Ok(serde_json::to_string(&Data {
        command: &input.command,
        version: env!("CARGO_PKG_VERSION"),
        parameters: Parameters {
            sweep_max_cpus: input.sweep.iter().map(|r| r.cpus).max().unwrap_or(0),
            exit_sweep_max_cpus: EXIT_SWEEP_MAX_CPUS,
            exit_table_cpus: BREAK_EVEN_CPUS,
            default_rounds: "ctxswitch-*: max(512, 90000 / cpus); exit-storm: max(256, 4 * cpus); others: 1500 (each run's rounds are not in RunReport: see the command's --rounds)",
            time_scaling: "machines[].scaling: lazymm_sim::timing::wis::run, -t cpus/2 (one thread per hardware thread, every switch through idle), window machines[].wis_window_ns after wis_warmup_ns; cpus beyond the preset on MachineSpec::scaled (machines[].extrapolation)",
            us_per_lazy_round_trip: "cpus_used / lazy_round_trips_per_s (lazy round trips: user -> idle switches in the window)",
            exit_us: "lazymm_sim::timing::exit_cost: one exit with cpus - 1 CPUs holding the mm lazily, IPIs included",
            exit_walk: format!("lazymm_sim::timing::exit_walk::run, walk {}, window {} ns, at the preset's size", timed::WALK, timed::WALK_WINDOW_NS),
            break_even: "at the preset's size: L* = (exit_us - exit_us(refcount)) / (us_per_lazy_round_trip(refcount) - us_per_lazy_round_trip)",
        },
        machines: input.machines,
        runs: input.runs,
        sweep: input.sweep,
    })?)
}
