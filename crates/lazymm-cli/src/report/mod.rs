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
use lazymm_sim::cost::CostTable;
use lazymm_sim::{RunConfig, RunReport, WorkloadKind};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

mod charts;
mod data;
mod format;
mod prose;

use charts::*;
use data::*;
use format::*;
use prose::*;

/// What the report is made of.
pub struct ReportInput<'a> {
    /// The runs of `compare` (synthetic workloads and trace replays).
    pub runs: &'a [RunReport],
    /// The extra runs of [`sweep_configs`] (CPU-count sweep, exit-storm).
    pub sweep: &'a [RunReport],
    /// The exact command line that produced the report.
    pub command: String,
}

/// Largest CPU count of the context-switch sweep.
const SWEEP_MAX_CPUS: usize = 4096;
/// Largest CPU count of the exit-storm sweep (an exit-storm wave walks every
/// process across every CPU: N^2 work per wave).
const EXIT_SWEEP_MAX_CPUS: usize = 256;
/// CPU count at which the break-even model takes its two inputs.
const BREAK_EVEN_CPUS: usize = 64;
/// Scheduler rounds per context-switch sweep run: about 0.69 switches per CPU
/// per round, so `90_000 / cpus` rounds gives ~60k switches per run; and at
/// least [`MIN_ROUNDS`], so that every CPU switches a few hundred times at
/// any CPU count: per-CPU one-off costs (first touch of a CPU's slot line,
/// the final teardown) are then amortised over the same number of switches
/// at 4096 CPUs as at 128, instead of growing linearly with the CPU count.
fn ctxswitch_rounds(cpus: usize) -> u64 {
    (90_000 / cpus as u64).max(MIN_ROUNDS)
}
const MIN_ROUNDS: u64 = 512;
/// Exit-storm rounds: each wave takes `cpus` rounds and ends in `cpus` exits.
fn exit_storm_rounds(cpus: usize) -> u64 {
    (4 * cpus as u64).max(256)
}

fn pow2_upto(max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut c = 2;
    while c <= max {
        v.push(c);
        c *= 2;
    }
    v
}

/// The extra runs the report needs beyond `compare`'s: for every scheme and
/// profile, `ctxswitch-threads` and `ctxswitch-processes` at 2, 4, ..., 4096
/// CPUs (~60k switches each) and `exit-storm` at 2, 4, ..., 256 CPUs (which
/// includes the break-even CPU count, 64).
pub fn sweep_configs(seed: u64) -> Vec<RunConfig> {
    let mut v = Vec::new();
    for &arch in Arch::ALL.iter() {
        for &scheme in SchemeKind::ALL.iter() {
            for workload in [
                WorkloadKind::CtxswitchThreads,
                WorkloadKind::CtxswitchProcesses,
            ] {
                for cpus in pow2_upto(SWEEP_MAX_CPUS) {
                    v.push(RunConfig {
                        scheme,
                        arch,
                        cpus,
                        workload,
                        seed,
                        rounds: ctxswitch_rounds(cpus),
                        options: Default::default(),
                    });
                }
            }
            for cpus in pow2_upto(EXIT_SWEEP_MAX_CPUS) {
                v.push(RunConfig {
                    scheme,
                    arch,
                    cpus,
                    workload: WorkloadKind::ExitStorm,
                    seed,
                    rounds: exit_storm_rounds(cpus),
                    options: Default::default(),
                });
            }
        }
    }
    v
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
        if let Some(f) = break_even_chart(&cx, arch)? {
            figs.entry("break-even").or_default().push(f);
        }
        if let Some(f) = traces_chart(&cx, arch)? {
            figs.entry("traces").or_default().push(f);
        }
    }
    let mut written = Vec::new();
    for f in figs.values().flatten() {
        let p = dir.join(&f.file);
        std::fs::write(&p, &f.svg).with_context(|| format!("writing {}", p.display()))?;
        written.push(p);
    }
    #[derive(serde::Serialize)]
    struct Data<'a> {
        command: &'a str,
        runs: &'a [RunReport],
        sweep: &'a [RunReport],
    }
    let p = dir.join("data.json");
    let json = serde_json::to_string(&Data {
        command: &input.command,
        runs: input.runs,
        sweep: input.sweep,
    })?;
    std::fs::write(&p, json).with_context(|| format!("writing {}", p.display()))?;
    written.push(p);
    let p = dir.join("index.html");
    std::fs::write(&p, build_html(&cx, input, &figs))
        .with_context(|| format!("writing {}", p.display()))?;
    written.push(p);
    Ok(written)
}
