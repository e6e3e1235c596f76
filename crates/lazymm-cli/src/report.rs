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

// ---------------------------------------------------------------------------
// Data selection
// ---------------------------------------------------------------------------

const THREADS: &str = "ctxswitch-threads";
const PROCESSES: &str = "ctxswitch-processes";
const EXIT_STORM: &str = "exit-storm";

fn is_trace(r: &RunReport) -> bool {
    r.workload.starts_with("trace:")
}

fn per(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Switch-path cycles per lazy round trip.
fn round_trip_cycles(r: &RunReport) -> f64 {
    if r.lazy_enters > 0 {
        r.cycles_per_switch * r.switches as f64 / r.lazy_enters as f64
    } else {
        2.0 * r.cycles_per_switch
    }
}

/// (scheme, a = switch-path cycles per lazy round trip, e = cycles per exit).
type Trip = (String, f64, f64);

struct Ctx<'a> {
    runs: &'a [RunReport],
    sweep: &'a [RunReport],
    schemes: Vec<String>,
    archs: Vec<String>,
    /// Scheme -> known-unsafe reason.
    known_unsafe: BTreeMap<String, String>,
    /// Schemes with a ledger violation in a run while not declared unsafe.
    failed: BTreeSet<String>,
    traces: Vec<String>,
}

impl<'a> Ctx<'a> {
    fn new(input: &'a ReportInput<'a>) -> Ctx<'a> {
        let mut schemes: Vec<String> = Vec::new();
        let mut archs: Vec<String> = Vec::new();
        let mut traces: Vec<String> = Vec::new();
        let mut known_unsafe = BTreeMap::new();
        let mut failed = BTreeSet::new();
        for r in input.runs.iter().chain(input.sweep) {
            if !schemes.contains(&r.scheme) {
                schemes.push(r.scheme.clone());
            }
            if !archs.contains(&r.arch) {
                archs.push(r.arch.clone());
            }
            if is_trace(r) && !traces.contains(&r.workload) {
                traces.push(r.workload.clone());
            }
            if let Some(k) = &r.known_unsafe {
                known_unsafe.insert(r.scheme.clone(), k.clone());
            }
            if !r.clean() && r.known_unsafe.is_none() {
                failed.insert(r.scheme.clone());
            }
        }
        traces.sort();
        Ctx {
            runs: input.runs,
            sweep: input.sweep,
            schemes,
            archs,
            known_unsafe,
            failed,
            traces,
        }
    }

    fn idx(&self, scheme: &str) -> usize {
        self.schemes.iter().position(|s| s == scheme).unwrap_or(0)
    }
    fn color(&self, scheme: &str) -> RGBColor {
        PALETTE[self.idx(scheme) % PALETTE.len()]
    }
    fn unsafe_or_failed(&self, scheme: &str) -> bool {
        self.known_unsafe.contains_key(scheme) || self.failed.contains(scheme)
    }
    /// The scheme's name with `*` when it is known unsafe, `!` when its
    /// ledger failed unexpectedly.
    fn label(&self, scheme: &str) -> String {
        if self.failed.contains(scheme) {
            format!("{scheme} !")
        } else if self.known_unsafe.contains_key(scheme) {
            format!("{scheme} *")
        } else {
            scheme.to_string()
        }
    }

    /// The sweep when it has `workload`, else `compare`'s runs.
    fn source(&self, workload: &str) -> &'a [RunReport] {
        if self.sweep.iter().any(|r| r.workload == workload) {
            self.sweep
        } else {
            self.runs
        }
    }

    /// `(cpus, value)` of `workload` on `arch` for `scheme`, by CPU count.
    fn by_cpus(
        &self,
        workload: &str,
        arch: &str,
        scheme: &str,
        f: impl Fn(&RunReport) -> Option<f64>,
    ) -> Vec<(f64, f64)> {
        let mut m: BTreeMap<usize, f64> = BTreeMap::new();
        for r in self.source(workload) {
            if r.workload == workload && r.arch == arch && r.scheme == scheme {
                if let Some(v) = f(r) {
                    m.entry(r.cpus).or_insert(v);
                }
            }
        }
        m.into_iter().map(|(c, v)| (c as f64, v)).collect()
    }

    fn find(
        &self,
        src: &'a [RunReport],
        workload: &str,
        arch: &str,
        scheme: &str,
        cpus: usize,
    ) -> Option<&'a RunReport> {
        src.iter().find(|r| {
            r.workload == workload && r.arch == arch && r.scheme == scheme && r.cpus == cpus
        })
    }

    fn trace_run(&self, trace: &str, arch: &str, scheme: &str) -> Option<&'a RunReport> {
        self.runs
            .iter()
            .chain(self.sweep)
            .find(|r| r.workload == trace && r.arch == arch && r.scheme == scheme)
    }

    /// The CPU count and run set of the break-even model on `arch`:
    /// a count with both `ctxswitch-threads` and `exit-storm` runs,
    /// [`BREAK_EVEN_CPUS`] when available, else the largest.
    fn break_even_cpus(&self, arch: &str) -> Option<(usize, &'a [RunReport])> {
        for src in [self.sweep, self.runs] {
            let counts = |w: &str| -> BTreeSet<usize> {
                src.iter()
                    .filter(|r| r.workload == w && r.arch == arch)
                    .map(|r| r.cpus)
                    .collect()
            };
            let both: Vec<usize> = counts(THREADS)
                .intersection(&counts(EXIT_STORM))
                .copied()
                .collect();
            if both.contains(&BREAK_EVEN_CPUS) {
                return Some((BREAK_EVEN_CPUS, src));
            }
            if let Some(&c) = both.last() {
                return Some((c, src));
            }
        }
        None
    }

    /// Per scheme: (cycles per lazy round trip, cycles per exit) on `arch`.
    fn lifetime_inputs(&self, arch: &str) -> Option<(usize, Vec<Trip>)> {
        let (cpus, src) = self.break_even_cpus(arch)?;
        let mut v = Vec::new();
        for s in &self.schemes {
            let t = self.find(src, THREADS, arch, s, cpus);
            let e = self.find(src, EXIT_STORM, arch, s, cpus);
            if let (Some(t), Some(e)) = (t, e) {
                if e.exits > 0 {
                    v.push((s.clone(), round_trip_cycles(t), e.cycles_per_exit));
                }
            }
        }
        Some((cpus, v))
    }

    /// Each trace's lazy round trips per exit on `arch` (traces with exits).
    fn trace_l(&self, arch: &str) -> Vec<(String, f64)> {
        let mut v = Vec::new();
        for t in &self.traces {
            let r = self
                .runs
                .iter()
                .chain(self.sweep)
                .find(|r| &r.workload == t && r.arch == arch && r.exits > 0);
            if let Some(r) = r {
                v.push((
                    t.trim_start_matches("trace:").to_string(),
                    r.lazy_enters_per_exit,
                ));
            }
        }
        v
    }
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A number for tables.
fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if !x.is_finite() {
        "∞".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else if x.abs() >= 0.001 {
        format!("{x:.4}")
    } else {
        format!("{x:.2e}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_else(|| "–".into())
}

/// A number with about three significant digits, for labels.
fn short(x: f64) -> String {
    if x >= 100.0 || x == 0.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A number for axis labels: 1, 10, 100, 1k, 10k, 1M, 0.1, 0.01 ...
fn tick(x: f64) -> String {
    let a = x.abs();
    let s = if a >= 1e9 {
        format!("{}G", trim(x / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(x / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(x / 1e3))
    } else if a > 0.0 && a < 0.001 {
        let e = x.log10().round() as i32;
        if (x - 10f64.powi(e)).abs() < 1e-3 * x.abs() {
            format!("1e{e}")
        } else {
            format!("{x:.0e}")
        }
    } else {
        trim(x)
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

// ---------------------------------------------------------------------------
// Axes: values are transformed (log) by hand, so every chart has one
// coordinate type and we control the ticks.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Scale {
    Lin,
    Log(f64),
}

#[derive(Clone, Debug)]
struct Axis {
    scale: Scale,
    /// Bounds in transformed space.
    lo: f64,
    hi: f64,
    /// A log axis whose floor stands for zero (one decade below the
    /// smallest positive value), labelled "0".
    zero_floor: bool,
}

impl Axis {
    /// Linear from 0 or logarithmic (base 10) when the positive values span
    /// more than ~1.5 decades; zeros sit on the floor of a log axis.
    fn auto(vals: impl IntoIterator<Item = f64>) -> Axis {
        let vals: Vec<f64> = vals.into_iter().filter(|v| v.is_finite()).collect();
        let max = vals.iter().copied().fold(0.0f64, f64::max);
        let min_pos = vals
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if max <= 0.0 {
            return Axis {
                scale: Scale::Lin,
                lo: 0.0,
                hi: 1.0,
                zero_floor: false,
            };
        }
        if max / min_pos > 30.0 {
            let mut a = Axis::log10(min_pos, max);
            if vals.iter().any(|v| *v <= 0.0) {
                a.lo -= 1.0;
                a.zero_floor = true;
            }
            a
        } else {
            Axis {
                scale: Scale::Lin,
                lo: 0.0,
                hi: nice_ceil(max * 1.08),
                zero_floor: false,
            }
        }
    }
    fn log10(min_pos: f64, max: f64) -> Axis {
        let lo = min_pos.log10().floor();
        let mut hi = max.log10().ceil();
        if hi <= lo {
            hi = lo + 1.0;
        }
        Axis {
            scale: Scale::Log(10.0),
            lo,
            hi,
            zero_floor: false,
        }
    }
    fn log2(min: f64, max: f64) -> Axis {
        Axis {
            scale: Scale::Log(2.0),
            lo: min.log2().floor(),
            hi: max.log2().ceil().max(min.log2().floor() + 1.0),
            zero_floor: false,
        }
    }
    fn is_log(&self) -> bool {
        matches!(self.scale, Scale::Log(_))
    }
    /// Value -> transformed coordinate (zeros and negatives to the floor of a
    /// log axis).
    fn t(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Lin => v,
            Scale::Log(b) => {
                if v > 0.0 {
                    (v.ln() / b.ln()).max(self.lo)
                } else {
                    self.lo
                }
            }
        }
    }
    fn floor(&self) -> f64 {
        self.lo
    }
    fn value(&self, t: f64) -> f64 {
        match self.scale {
            Scale::Lin => t,
            Scale::Log(b) => b.powf(t),
        }
    }
    fn label(&self, t: f64) -> String {
        if self.zero_floor && (t - self.lo).abs() < 1e-9 {
            return "0".into();
        }
        match self.scale {
            // CPU counts: 1024, not 1.024k.
            Scale::Log(b) if (b - 2.0).abs() < 1e-9 => format!("{}", self.value(t).round()),
            _ => tick(self.value(t)),
        }
    }
    /// (bold, light) tick positions in transformed space.
    fn ticks(&self) -> (Vec<f64>, Vec<f64>) {
        match self.scale {
            Scale::Lin => {
                let step = nice_step((self.hi - self.lo) / 5.0);
                let mut bold = Vec::new();
                let mut v = (self.lo / step).ceil() * step;
                while v <= self.hi + step * 1e-9 {
                    bold.push(v);
                    v += step;
                }
                (bold, Vec::new())
            }
            Scale::Log(b) => {
                let span = self.hi - self.lo;
                let every = if span > 12.0 { 2.0 } else { 1.0 };
                let mut bold = Vec::new();
                let mut light = Vec::new();
                let mut k = self.lo.ceil();
                while k <= self.hi + 1e-9 {
                    if ((k - self.lo.ceil()) / every).fract() == 0.0 {
                        bold.push(k);
                    }
                    if b == 10.0 && span <= 4.0 {
                        for m in 2..10 {
                            let t = k + (m as f64).log10();
                            if t < self.hi {
                                light.push(t);
                            }
                        }
                    }
                    k += 1.0;
                }
                (bold, light)
            }
        }
    }
    fn desc(&self, what: &str) -> String {
        if self.is_log() {
            format!("{what} (log)")
        } else {
            what.to_string()
        }
    }
}

/// A linear f64 coordinate with our own tick positions (the axes' values
/// are already transformed), formatted by the chart's label formatter.
struct Ticked {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, (bold, light): (Vec<f64>, Vec<f64>)) -> Ticked {
        Ticked {
            lo,
            hi,
            bold,
            light,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = if self.hi > self.lo {
            self.hi - self.lo
        } else {
            1.0
        };
        let f = (v - self.lo) / span;
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

fn nice_ceil(v: f64) -> f64 {
    let s = nice_step(v / 5.0);
    (v / s).ceil() * s
}

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

fn de<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart drawing failed: {e:?}")
}

fn font(size: f64) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// Evaluates `$body` with `$e` bound to the marker of scheme index `$kind`
/// at `$at` (each shape is its own type, so this is a macro): a shape per
/// scheme keeps overlapping lines apart in print and for colour-blind readers.
macro_rules! with_marker {
    ($kind:expr, $at:expr, $color:expr, $filled:expr, |$e:ident| $body:expr) => {{
        let color: RGBColor = $color;
        let st = if $filled {
            color.filled()
        } else {
            color.stroke_width(2)
        };
        let at = $at;
        match $kind % 6 {
            0 => {
                let $e = EmptyElement::at(at) + Circle::new((0, 0), 4, st);
                $body
            }
            1 => {
                let $e = EmptyElement::at(at) + TriangleMarker::new((0, 0), 5, st);
                $body
            }
            2 => {
                let $e = EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], st);
                $body
            }
            3 => {
                let $e = EmptyElement::at(at) + Cross::new((0, 0), 4, color.stroke_width(2));
                $body
            }
            4 => {
                let $e =
                    EmptyElement::at(at) + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], st);
                $body
            }
            _ => {
                let $e = EmptyElement::at(at)
                    + PathElement::new(vec![(-5, 0), (5, 0)], color.stroke_width(3))
                    + PathElement::new(vec![(0, -5), (0, 5)], color.stroke_width(3));
                $body
            }
        }
    }};
}

struct Line {
    scheme: String,
    dashed: bool,
    /// A marker on every `mark_every`-th point.
    mark_every: usize,
    points: Vec<(f64, f64)>,
}

enum LegendKind {
    Line { dashed: bool, marker: usize },
    Bar,
    Note,
}

struct LegendItem {
    label: String,
    color: RGBColor,
    kind: LegendKind,
}

fn draw_legend(area: &Area, title: &str, items: &[LegendItem]) -> Result<()> {
    area.draw(&Text::new(title.to_string(), (10, 14), font(14.0)))
        .map_err(de)?;
    let mut y = 44;
    for it in items {
        match it.kind {
            LegendKind::Line { dashed, marker: m } => {
                let st = it.color.stroke_width(2);
                if dashed {
                    area.draw(&DashedPathElement::new(vec![(8, y), (52, y)], 6, 4, st))
                        .map_err(de)?;
                } else {
                    area.draw(&PathElement::new(vec![(8, y), (52, y)], st))
                        .map_err(de)?;
                }
                with_marker!(m, (30, y), it.color, !dashed, |e| area.draw(&e).map_err(de))?;
            }
            LegendKind::Bar => {
                area.draw(&Rectangle::new(
                    [(14, y - 7), (46, y + 7)],
                    it.color.filled(),
                ))
                .map_err(de)?;
            }
            LegendKind::Note => {}
        }
        let (x, f) = match it.kind {
            LegendKind::Note => (8, font(12.0).color(&RGBColor(70, 70, 70))),
            _ => (60, font(13.0)),
        };
        area.draw(&Text::new(
            it.label.clone(),
            (x, y),
            f.pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(de)?;
        y += if matches!(it.kind, LegendKind::Note) {
            18
        } else {
            24
        };
    }
    Ok(())
}

fn scheme_legend(cx: &Ctx, schemes: &[String], lines: bool) -> Vec<LegendItem> {
    schemes
        .iter()
        .map(|s| LegendItem {
            label: cx.label(s),
            color: cx.color(s),
            kind: if lines {
                LegendKind::Line {
                    dashed: false,
                    marker: cx.idx(s),
                }
            } else {
                LegendKind::Bar
            },
        })
        .collect()
}

fn note(label: &str) -> LegendItem {
    LegendItem {
        label: label.to_string(),
        color: BLACK,
        kind: LegendKind::Note,
    }
}

fn unsafe_notes(cx: &Ctx, schemes: &[String]) -> Vec<LegendItem> {
    let mut v = Vec::new();
    if schemes.iter().any(|s| cx.known_unsafe.contains_key(s)) {
        v.push(note("* known unsafe (see ledger)"));
    }
    if schemes.iter().any(|s| cx.failed.contains(s)) {
        v.push(note("! ledger FAILED (see ledger)"));
    }
    v
}

/// Vertical markers of a line panel: (x value, label).
type VLines = Vec<(f64, String)>;

#[allow(clippy::too_many_arguments)]
fn line_panel(
    cx: &Ctx,
    area: &Area,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x: &Axis,
    lines: &[Line],
    vlines: &VLines,
) -> Result<Axis> {
    let y = Axis::auto(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let (xb, xl) = x.ticks();
    let (yb, yl) = y.ticks();
    let nxb = xb.len();
    let nyb = yb.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(16.0))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            Ticked::new(x.lo, x.hi, (xb, xl)),
            Ticked::new(y.lo, y.hi, (yb, yl)),
        )
        .map_err(de)?;
    let xf = |v: &f64| x.label(*v);
    let yf = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_labels(nxb)
        .y_labels(nyb)
        .x_desc(x.desc(x_desc))
        .y_desc(y.desc(y_desc))
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(de)?;
    for (i, (vx, label)) in vlines.iter().enumerate() {
        let tx = x.t(*vx);
        if tx < x.lo || tx > x.hi {
            continue;
        }
        let grey = RGBColor(110, 110, 110);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(tx, y.lo), (tx, y.hi)],
                5,
                4,
                grey.stroke_width(1),
            ))
            .map_err(de)?;
        // Labels stacked from the top, alternately, to keep close markers
        // readable.
        let ty = y.hi - (y.hi - y.lo) * (0.03 + 0.07 * (i % 3) as f64);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((tx, ty))
                    + Text::new(
                        label.clone(),
                        (4, 0),
                        font(11.0).color(&grey).pos(Pos::new(HPos::Left, VPos::Top)),
                    ),
            ))
            .map_err(de)?;
    }
    for l in lines {
        let color = cx.color(&l.scheme);
        let pts: Vec<(f64, f64)> = l.points.iter().map(|&(a, b)| (x.t(a), y.t(b))).collect();
        let st = color.stroke_width(2);
        if l.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 7, 5, st))
                .map_err(de)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), st))
                .map_err(de)?;
        }
        let m = cx.idx(&l.scheme);
        let every = l.mark_every.max(1);
        // Offset per scheme so that coinciding lines show every marker.
        let off = cx.idx(&l.scheme) % every;
        for &p in pts.iter().skip(off).step_by(every) {
            with_marker!(m, p, color, !l.dashed, |e| chart
                .draw_series(std::iter::once(e))
                .map(|_| ())
                .map_err(de))?;
        }
    }
    Ok(y)
}

struct Bars {
    scheme: String,
    values: Vec<Option<f64>>,
}

fn bar_panel(
    cx: &Ctx,
    area: &Area,
    title: &str,
    y_desc: &str,
    groups: &[String],
    bars: &[Bars],
) -> Result<()> {
    let y = Axis::auto(bars.iter().flat_map(|b| b.values.iter().flatten().copied()));
    let g = groups.len().max(1);
    let xb: Vec<f64> = (0..g).map(|i| i as f64 + 0.5).collect();
    let (yb, yl) = y.ticks();
    let nyb = yb.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(16.0))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(64)
        .build_cartesian_2d(
            Ticked::new(0.0, g as f64, (xb, Vec::new())),
            Ticked::new(y.lo, y.hi, (yb, yl)),
        )
        .map_err(de)?;
    let xf = |v: &f64| {
        let i = v.floor() as usize;
        groups.get(i).cloned().unwrap_or_default()
    };
    let yf = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_labels(g)
        .y_labels(nyb)
        .disable_x_mesh()
        .y_desc(y.desc(y_desc))
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(de)?;
    let n = bars.len().max(1);
    let w = 0.84 / n as f64;
    for (k, b) in bars.iter().enumerate() {
        let color = cx.color(&b.scheme);
        for (i, v) in b.values.iter().enumerate() {
            let Some(v) = *v else { continue };
            let x0 = i as f64 + 0.08 + k as f64 * w;
            let x1 = x0 + w * 0.9;
            let top = y.t(v);
            if top > y.floor() {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, y.floor()), (x1, top)],
                        color.filled(),
                    )))
                    .map_err(de)?;
            } else {
                // A zero: a short stub and "0", so "no data" and "zero" differ.
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, y.floor()), (x1, y.floor())],
                        color.stroke_width(3),
                    )))
                    .map_err(de)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        "0",
                        ((x0 + x1) / 2.0, y.floor()),
                        font(10.0)
                            .color(&color)
                            .pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )))
                    .map_err(de)?;
            }
        }
    }
    Ok(())
}

/// An SVG drawn into a string: `f` gets the chart area and the legend strip.
fn svg(
    w: u32,
    h: u32,
    legend_w: u32,
    f: impl FnOnce(&Area, &Area) -> Result<()>,
) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        let (main, legend) = root.split_horizontally(w - legend_w);
        f(&main, &legend)?;
        root.present().map_err(de)?;
    }
    Ok(s)
}

// ---------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------

struct Figure {
    file: String,
    svg: String,
    caption: String,
}

fn scaling_chart(cx: &Ctx, arch: &str) -> Result<Option<Figure>> {
    let metric = |f: fn(&RunReport) -> f64, dashed_too: bool| -> Vec<Line> {
        let mut v = Vec::new();
        for s in &cx.schemes {
            for (w, dashed) in [(THREADS, false), (PROCESSES, true)] {
                if dashed && !dashed_too {
                    continue;
                }
                let points = cx.by_cpus(w, arch, s, |r| Some(f(r)));
                if !points.is_empty() {
                    v.push(Line {
                        scheme: s.clone(),
                        dashed,
                        mark_every: 1,
                        points,
                    });
                }
            }
        }
        v
    };
    let cyc = metric(|r| r.cycles_per_switch, true);
    let tr = metric(|r| r.transfers_per_switch, true);
    if cyc.iter().all(|l| l.dashed) && cyc.is_empty() {
        return Ok(None);
    }
    if cyc.is_empty() {
        return Ok(None);
    }
    let xs: Vec<f64> = cyc
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let xmax = xs.iter().copied().fold(0.0, f64::max);
    let x = Axis::log2(xmin, xmax.max(xmin * 2.0));
    let schemes: Vec<String> = cx
        .schemes
        .iter()
        .filter(|s| cyc.iter().any(|l| &l.scheme == *s))
        .cloned()
        .collect();
    let s = svg(1240, 470, 230, |main, legend| {
        let panels = main.split_evenly((1, 2));
        line_panel(
            cx,
            &panels[0],
            &format!("{arch}: est. cycles per switch"),
            "CPUs",
            "cycles / switch",
            &x,
            &cyc,
            &Vec::new(),
        )?;
        line_panel(
            cx,
            &panels[1],
            &format!("{arch}: coherence transfers per switch"),
            "CPUs",
            "transfers / switch",
            &x,
            &tr,
            &Vec::new(),
        )?;
        let mut items = scheme_legend(cx, &schemes, true);
        items.push(note(""));
        items.push(note("solid: ctxswitch-threads"));
        items.push(note("  (one shared mm)"));
        items.push(note("dashed: ctxswitch-processes"));
        items.push(note("  (an mm per pair)"));
        items.push(note("switch path only"));
        items.push(note("a log axis' floor marked"));
        items.push(note("  \"0\" holds the zeros"));
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })?;
    Ok(Some(Figure {
        file: format!("scaling-{}.svg", file_part(arch)),
        svg: s,
        caption: format!(
            "{arch}: will-it-scale context_switch1 shape — every switch passes through idle. \
             Solid: threads of one process (the lazily held mm is shared by all CPUs); \
             dashed: processes (one mm per pair). x: simulated CPUs (log2)."
        ),
    }))
}

fn exit_charts(cx: &Ctx, arch: &str) -> Result<Vec<Figure>> {
    // Categories: exit-storm at the break-even CPU count, then the traces.
    let mut groups: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<Option<&RunReport>>> = Vec::new(); // [group][scheme]
    if let Some((cpus, src)) = cx.break_even_cpus(arch) {
        groups.push(format!("exit-storm@{cpus}"));
        rows.push(
            cx.schemes
                .iter()
                .map(|s| cx.find(src, EXIT_STORM, arch, s, cpus))
                .collect(),
        );
    }
    for t in &cx.traces {
        let r: Vec<Option<&RunReport>> = cx
            .schemes
            .iter()
            .map(|s| cx.trace_run(t, arch, s))
            .collect();
        if r.iter().flatten().any(|r| r.exits > 0) {
            groups.push(t.trim_start_matches("trace:").to_string());
            rows.push(r);
        }
    }
    let exit_lines = |f: fn(&RunReport) -> Option<f64>| -> Vec<Line> {
        cx.schemes
            .iter()
            .filter_map(|s| {
                let points = cx.by_cpus(EXIT_STORM, arch, s, f);
                (!points.is_empty()).then(|| Line {
                    scheme: s.clone(),
                    dashed: false,
                    mark_every: 1,
                    points,
                })
            })
            .collect()
    };
    let cyc_lines = exit_lines(|r| (r.exits > 0).then_some(r.cycles_per_exit));
    let ipi_lines = exit_lines(|r| per(r.ipis + r.flush_ipis, r.exits));

    let bars = |f: fn(&RunReport) -> Option<f64>| -> Vec<Bars> {
        cx.schemes
            .iter()
            .enumerate()
            .map(|(k, s)| Bars {
                scheme: s.clone(),
                values: rows
                    .iter()
                    .map(|row| row[k].filter(|r| r.exits > 0).and_then(f))
                    .collect(),
            })
            .filter(|b| b.values.iter().any(Option::is_some))
            .collect()
    };
    let scheme_ipis = bars(|r| per(r.ipis, r.exits));
    let flush_ipis = bars(|r| per(r.flush_ipis, r.exits));
    let scans = bars(|r| Some(r.scan_steps_per_exit));
    let cycles = bars(|r| Some(r.cycles_per_exit));
    let schemes: Vec<String> = cx
        .schemes
        .iter()
        .filter(|s| {
            cycles.iter().any(|b| &b.scheme == *s) || cyc_lines.iter().any(|l| &l.scheme == *s)
        })
        .cloned()
        .collect();
    let xs: Vec<f64> = cyc_lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let mut figs = Vec::new();
    if !groups.is_empty() {
        let s = svg(1400, 860, 230, |main, legend| {
            let p = main.split_evenly((2, 2));
            bar_panel(
                cx,
                &p[0],
                "scheme IPIs per exit",
                "IPIs / exit",
                &groups,
                &scheme_ipis,
            )?;
            bar_panel(
                cx,
                &p[1],
                "exit-flush IPIs per exit (the architecture's)",
                "IPIs / exit",
                &groups,
                &flush_ipis,
            )?;
            bar_panel(
                cx,
                &p[2],
                "teardown scan steps per exit",
                "CPUs scanned / exit",
                &groups,
                &scans,
            )?;
            bar_panel(
                cx,
                &p[3],
                "est. cycles per exit",
                "cycles / exit",
                &groups,
                &cycles,
            )?;
            let mut items = scheme_legend(cx, &schemes, false);
            items.push(note(""));
            items.push(note("x: workload; \"0\" marks a"));
            items.push(note("  zero, a gap marks no data"));
            items.push(note("exit-storm: PeterZ's"));
            items.push(note("  adversarial exit (each"));
            items.push(note("  process walks every CPU)"));
            items.push(note("traces: as captured"));
            items.push(note("cycles include all IPIs"));
            items.extend(unsafe_notes(cx, &schemes));
            draw_legend(legend, "scheme", &items)
        })?;
        figs.push(Figure {
            file: format!("exit-cost-{}.svg", file_part(arch)),
            svg: s,
            caption: format!(
                "{arch}: teardown cost per address-space exit (__mmput), for exit-storm at the \
                 break-even CPU count and for each bundled trace. Scheme IPIs are the scheme's \
                 own (shoot-down, hazard+IPI); flush IPIs are the architecture's exit-time TLB \
                 flush, sent whatever the scheme."
            ),
        });
    }
    if !xs.is_empty() {
        let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let xmax = xs.iter().copied().fold(0.0, f64::max);
        let x = Axis::log2(xmin, xmax.max(xmin * 2.0));
        let s = svg(1240, 470, 230, |main, legend| {
            let p = main.split_evenly((1, 2));
            line_panel(
                cx,
                &p[0],
                &format!("{arch}: exit-storm, est. cycles per exit"),
                "CPUs",
                "cycles / exit",
                &x,
                &cyc_lines,
                &Vec::new(),
            )?;
            line_panel(
                cx,
                &p[1],
                &format!("{arch}: exit-storm, IPIs per exit"),
                "CPUs",
                "IPIs (scheme + flush) / exit",
                &x,
                &ipi_lines,
                &Vec::new(),
            )?;
            let mut items = scheme_legend(cx, &schemes, true);
            items.push(note(""));
            items.push(note("exit-storm: each process"));
            items.push(note("  walks every CPU, then"));
            items.push(note("  exits; in waves"));
            items.extend(unsafe_notes(cx, &schemes));
            draw_legend(legend, "scheme", &items)
        })?;
        figs.push(Figure {
            file: format!("exit-scaling-{}.svg", file_part(arch)),
            svg: s,
            caption: format!(
                "{arch}: PeterZ's adversarial exit as the CPU count grows (x: CPUs, log2): the \
                 teardown work a scheme moves from the switch path to the exit path."
            ),
        });
    }
    Ok(figs)
}

const L_MIN: f64 = 0.1;

fn l_max(traces: &[(String, f64)]) -> f64 {
    let m = traces.iter().map(|t| t.1).fold(0.0, f64::max);
    10f64.powf((m * 10.0).log10().ceil().max(5.0))
}

fn break_even_chart(cx: &Ctx, arch: &str) -> Result<Option<Figure>> {
    let Some((cpus, inputs)) = cx.lifetime_inputs(arch) else {
        return Ok(None);
    };
    if inputs.is_empty() {
        return Ok(None);
    }
    let traces = cx.trace_l(arch);
    let lmax = l_max(&traces);
    let x = Axis::log10(L_MIN, lmax);
    let ls: Vec<f64> = (0..=80)
        .map(|i| 10f64.powf(x.lo + (x.hi - x.lo) * i as f64 / 80.0))
        .collect();
    let lines: Vec<Line> = inputs
        .iter()
        .map(|(s, a, e)| Line {
            scheme: s.clone(),
            dashed: false,
            mark_every: 8,
            points: ls.iter().map(|&l| (l, l * a + e)).collect(),
        })
        .collect();
    let vlines: VLines = traces
        .iter()
        .map(|(n, l)| (*l, format!("{n} (L={})", short(*l))))
        .collect();
    let schemes: Vec<String> = inputs.iter().map(|i| i.0.clone()).collect();
    let s = svg(1240, 560, 230, |main, legend| {
        line_panel(
            cx,
            main,
            &format!("{arch}: cycles per process lifetime vs lazy round trips ({cpus} CPUs)"),
            "L = lazy round trips per process lifetime",
            "cycles per process lifetime",
            &x,
            &lines,
            &vlines,
        )?;
        let mut items = scheme_legend(cx, &schemes, true);
        items.push(note(""));
        items.push(note("cost(L) = L x a + e"));
        items.push(note("a: switch-path cycles per"));
        items.push(note("  lazy round trip"));
        items.push(note(&format!("  (ctxswitch-threads@{cpus})")));
        items.push(note("e: cycles per exit"));
        items.push(note(&format!("  (exit-storm@{cpus})")));
        items.push(note("dashed grey: bundled traces"));
        items.push(note("  (their lazy enters per exit)"));
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })?;
    Ok(Some(Figure {
        file: format!("break-even-{}.svg", file_part(arch)),
        svg: s,
        caption: format!(
            "{arch}: PeterZ's question — an xchg on every unlazy versus work once per process \
             exit. Lifetime cost of one process as a function of L, its lazy round trips, at \
             {cpus} CPUs. Where two lines cross is the break-even L (table below)."
        ),
    }))
}

fn traces_chart(cx: &Ctx, arch: &str) -> Result<Option<Figure>> {
    let rows: Vec<(String, Vec<Option<&RunReport>>)> = cx
        .traces
        .iter()
        .map(|t| {
            (
                t.trim_start_matches("trace:").to_string(),
                cx.schemes
                    .iter()
                    .map(|s| cx.trace_run(t, arch, s))
                    .collect(),
            )
        })
        .filter(|(_, r): &(String, Vec<Option<&RunReport>>)| r.iter().any(Option::is_some))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let groups: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let bars = |f: fn(&RunReport) -> Option<f64>| -> Vec<Bars> {
        cx.schemes
            .iter()
            .enumerate()
            .map(|(k, s)| Bars {
                scheme: s.clone(),
                values: rows.iter().map(|row| row.1[k].and_then(f)).collect(),
            })
            .filter(|b| b.values.iter().any(Option::is_some))
            .collect()
    };
    let cyc = bars(|r| Some(r.cycles_per_switch));
    let shared = bars(|r| Some(r.shared_rmw_per_switch));
    let transfers = bars(|r| Some(r.transfers_per_switch));
    let ipis = bars(|r| per(r.ipis + r.flush_ipis, r.exits));
    let schemes: Vec<String> = cyc.iter().map(|b| b.scheme.clone()).collect();
    let cpus: BTreeSet<usize> = rows
        .iter()
        .flat_map(|r| r.1.iter().flatten().map(|r| r.cpus))
        .collect();
    let cpus: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    let s = svg(1400, 820, 230, |main, legend| {
        let p = main.split_evenly((2, 2));
        bar_panel(
            cx,
            &p[0],
            "est. cycles per switch",
            "cycles / switch",
            &groups,
            &cyc,
        )?;
        bar_panel(
            cx,
            &p[1],
            "shared-line RMWs per switch",
            "shared RMW / switch",
            &groups,
            &shared,
        )?;
        bar_panel(
            cx,
            &p[2],
            "coherence transfers per switch",
            "transfers / switch",
            &groups,
            &transfers,
        )?;
        bar_panel(
            cx,
            &p[3],
            "IPIs per exit (scheme + flush)",
            "IPIs / exit",
            &groups,
            &ipis,
        )?;
        let mut items = scheme_legend(cx, &schemes, false);
        items.push(note(""));
        items.push(note(&format!("real perf traces, {} CPUs", cpus.join("/"))));
        items.push(note("switch path only"));
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })?;
    Ok(Some(Figure {
        file: format!("traces-{}.svg", file_part(arch)),
        svg: s,
        caption: format!(
            "{arch}: the bundled real scheduler traces replayed through every scheme \
             ({} CPUs as captured).",
            cpus.join("/")
        ),
    }))
}

// ---------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------

struct Table {
    head: Vec<String>,
    rows: Vec<(Option<&'static str>, Vec<String>)>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    fn row(&mut self, cells: Vec<String>) {
        self.rows.push((None, cells));
    }
    fn row_class(&mut self, class: &'static str, cells: Vec<String>) {
        self.rows.push((Some(class), cells));
    }
    fn html(&self) -> String {
        let mut s = String::from("<table>\n<thead><tr>");
        for h in &self.head {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("</tr></thead>\n<tbody>\n");
        for (class, cells) in &self.rows {
            match class {
                Some(c) => {
                    let _ = write!(s, "<tr class=\"{c}\">");
                }
                None => s.push_str("<tr>"),
            }
            for c in cells {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table>\n");
        s
    }
}

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1440px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .86em; }
th, td { border: 1px solid #ccc; padding: .2em .55em; text-align: right; }
th { background: #f2f2f2; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
tr.unsafe td { color: #8a6d00; background: #fffbe6; }
tr.fail td { color: #a00; background: #ffecec; font-weight: bold; }
tr.best td { background: #eaf7ea; }
figure { margin: 1em 0 2em; } figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; max-width: 1100px; }
pre, code { background: #f6f6f6; } pre { padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.ok { color: #060; font-weight: bold; } .bad { color: #a00; font-weight: bold; }
details > summary { cursor: pointer; font-weight: bold; margin: .4em 0; }
nav ul { columns: 2; }
"#;

fn figure_html(f: &Figure) -> String {
    let body = f.svg.find("<svg").map(|i| &f.svg[i..]).unwrap_or(&f.svg);
    format!(
        "<figure id=\"{id}\">\n{body}\n<figcaption>{cap} <a href=\"{file}\">{file}</a></figcaption>\n</figure>\n",
        id = esc(f.file.trim_end_matches(".svg")),
        body = body,
        cap = esc(&f.caption),
        file = esc(&f.file),
    )
}

fn status(cx: &Ctx, s: &str) -> String {
    if cx.failed.contains(s) {
        "FAIL".into()
    } else if cx.known_unsafe.contains_key(s) {
        "known unsafe".into()
    } else {
        "clean".into()
    }
}

fn class(cx: &Ctx, s: &str) -> Option<&'static str> {
    if cx.failed.contains(s) {
        Some("fail")
    } else if cx.known_unsafe.contains_key(s) {
        Some("unsafe")
    } else {
        None
    }
}

fn push_row(t: &mut Table, c: Option<&'static str>, cells: Vec<String>) {
    match c {
        Some(c) => t.row_class(c, cells),
        None => t.row(cells),
    }
}

/// Break-even of `(name, a, e)` pairs: `L* = (e_j - e_i) / (a_i - a_j)`.
fn break_even(i: &Trip, j: &Trip) -> (Option<f64>, String) {
    let (ni, ai, ei) = (&i.0, i.1, i.2);
    let (nj, aj, ej) = (&j.0, j.1, j.2);
    let da = ai - aj;
    let de = ej - ei;
    let eps = 1e-9 * (ai.abs() + aj.abs() + ei.abs() + ej.abs() + 1.0);
    if da.abs() <= eps {
        let v = if de.abs() <= eps {
            "equal at every L".to_string()
        } else if de > 0.0 {
            format!("{ni} cheaper at every L (same switch cost, cheaper exit)")
        } else {
            format!("{nj} cheaper at every L (same switch cost, cheaper exit)")
        };
        return (None, v);
    }
    let l = de / da;
    if l > 0.0 {
        // Below l the one with the cheaper exit wins.
        let (cheap_exit, cheap_switch) = if ei < ej { (ni, nj) } else { (nj, ni) };
        (
            Some(l),
            format!(
                "{cheap_exit} cheaper below L = {}, {cheap_switch} above",
                num(l)
            ),
        )
    } else {
        let w = if ai + ei < aj + ej || (ai <= aj && ei <= ej) {
            ni
        } else {
            nj
        };
        (None, format!("{w} cheaper at every L ≥ 0"))
    }
}

fn lifetime(a: f64, e: f64, l: f64) -> f64 {
    l * a + e
}

fn build_html(cx: &Ctx, input: &ReportInput, figs: &BTreeMap<&'static str, Vec<Figure>>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>lazymm report</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>lazymm: lazy-TLB mm reference counting — which scheme to ship</h1>\n\
         <p>Produced by <code>{cmd}</code> (lazymm {ver}). Counts are exact and deterministic \
         for the seed; <em>cycles</em> are estimates from the cost model \
         (<a href=\"#cost-model\">below</a>). {nruns} runs from <code>compare</code> and \
         {nsweep} sweep runs. Schemes: {schemes}. Profiles: {archs}.</p>\n",
        cmd = esc(&input.command),
        ver = env!("CARGO_PKG_VERSION"),
        nruns = input.runs.len(),
        nsweep = input.sweep.len(),
        schemes = esc(&cx.schemes.join(", ")),
        archs = esc(&cx.archs.join(", ")),
    );
    h.push_str(
        "<nav><ul>\
         <li><a href=\"#summary\">Summary</a></li>\
         <li><a href=\"#scaling\">1. Scaling with CPU count</a></li>\
         <li><a href=\"#exit\">2. Exit cost</a></li>\
         <li><a href=\"#break-even\">3. Break-even: xchg per unlazy vs work per exit</a></li>\
         <li><a href=\"#traces\">4. Real traces</a></li>\
         <li><a href=\"#ledger\">5. Ledger</a></li>\
         <li><a href=\"#cost-model\">6. Cost model and command</a></li>\
         <li><a href=\"#all-runs\">All runs</a></li>\
         </ul></nav>\n",
    );

    // ---- Summary ----
    h.push_str("<h2 id=\"summary\">Summary</h2>\n");
    h.push_str(&summary_html(cx));

    // ---- 1. Scaling ----
    h.push_str(
        "<h2 id=\"scaling\">1. Scaling with CPU count (ctxswitch-threads vs ctxswitch-processes)</h2>\n\
         <p>The published shape: on a shared mm, classic refcounting puts two RMWs on one \
         cache line per idle round trip, so its switch path pays a line transfer per switch \
         once more than two CPUs share the mm; schemes without shared-line traffic stay flat. \
         The model charges each transfer a fixed cost (no queueing), so the collapse shows as \
         the step to ~1 transfer per switch; on real machines those transfers also serialise \
         on the one line, which is what turns the step into a throughput collapse at high \
         CPU counts. Every sweep run gives each CPU at least ~350 switches; the slot schemes' \
         small rise up to a few hundred CPUs is one-off per-CPU work (first touch of each \
         CPU's line, the final teardown) spread over fewer switches per CPU, not \
         contention.</p>\n",
    );
    for f in figs.get("scaling").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&scaling_table(cx));

    // ---- 2. Exit ----
    h.push_str("<h2 id=\"exit\">2. Exit cost</h2>\n");
    for f in figs.get("exit").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&exit_table(cx));

    // ---- 3. Break-even ----
    h.push_str(&break_even_html(cx, figs.get("break-even")));

    // ---- 4. Traces ----
    h.push_str("<h2 id=\"traces\">4. Real traces</h2>\n");
    if cx.traces.is_empty() {
        h.push_str("<p>No trace replays in this run (<code>--no-traces</code>?).</p>\n");
    }
    for f in figs.get("traces").into_iter().flatten() {
        h.push_str(&figure_html(f));
    }
    h.push_str(&traces_table(cx));

    // ---- 5. Ledger ----
    h.push_str(&ledger_html(cx));

    // ---- 6. Cost model ----
    h.push_str(&cost_html(cx, input));

    // ---- All runs ----
    h.push_str(
        "<h2 id=\"all-runs\">All runs</h2>\n<p>Every run of <code>compare</code>; the sweep runs \
         and all fields are in <a href=\"data.json\">data.json</a>.</p>\n\
         <details><summary>Show the table</summary>\n",
    );
    let mut t = Table::new(&[
        "scheme",
        "workload",
        "arch",
        "cpus",
        "switches",
        "lazy_enters",
        "exits",
        "count_rmw",
        "shared_rmw",
        "transfers",
        "fences",
        "ipis",
        "flush_ipis",
        "scan_steps",
        "uaf",
        "double_free",
        "leaked",
        "cycles/sw",
        "cycles/exit",
        "ipis/exit",
    ]);
    for r in cx.runs {
        let c = if r.clean() {
            None
        } else if r.known_unsafe.is_some() {
            Some("unsafe")
        } else {
            Some("fail")
        };
        push_row(
            &mut t,
            c,
            vec![
                r.scheme.clone(),
                r.workload.clone(),
                r.arch.clone(),
                r.cpus.to_string(),
                r.switches.to_string(),
                r.lazy_enters.to_string(),
                r.exits.to_string(),
                r.count_rmw.to_string(),
                r.shared_rmw.to_string(),
                r.coherence_transfers.to_string(),
                r.fences.to_string(),
                r.ipis.to_string(),
                r.flush_ipis.to_string(),
                r.scan_steps.to_string(),
                r.uaf.to_string(),
                r.double_free.to_string(),
                r.leaked.to_string(),
                num(r.cycles_per_switch),
                num(r.cycles_per_exit),
                num(r.ipis_per_exit),
            ],
        );
    }
    h.push_str(&t.html());
    h.push_str("</details>\n</body></html>\n");
    h
}

fn summary_html(cx: &Ctx) -> String {
    let mut h = String::new();
    let mut items = Vec::new();
    for arch in &cx.archs {
        let safe = |s: &str| !cx.unsafe_or_failed(s);
        // Cheapest switch path at the largest CPU count of the threads sweep.
        let mut at_max: Vec<(String, usize, f64)> = Vec::new();
        for s in cx.schemes.iter().filter(|s| safe(s)) {
            if let Some(&(c, v)) = cx
                .by_cpus(THREADS, arch, s, |r| Some(r.cycles_per_switch))
                .last()
            {
                at_max.push((s.clone(), c as usize, v));
            }
        }
        let mut line = format!("<li><b>{}</b>: ", esc(arch));
        if let Some(best) = at_max.iter().min_by(|a, b| a.2.total_cmp(&b.2)).cloned() {
            let worst = at_max
                .iter()
                .max_by(|a, b| a.2.total_cmp(&b.2))
                .cloned()
                .unwrap_or(best.clone());
            let _ = write!(
                line,
                "cheapest switch path at {} CPUs (ctxswitch-threads): <b>{}</b> at {} cycles/switch \
                 (most expensive clean scheme: {} at {}). ",
                best.1,
                esc(&best.0),
                num(best.2),
                esc(&worst.0),
                num(worst.2)
            );
        }
        if let Some((cpus, inputs)) = cx.lifetime_inputs(arch) {
            let safe_in: Vec<&Trip> = inputs.iter().filter(|i| safe(&i.0)).collect();
            let cheap_exit = safe_in.iter().min_by(|a, b| a.2.total_cmp(&b.2));
            let cheap_trip = safe_in.iter().min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some(be) = cheap_exit {
                let _ = write!(
                    line,
                    "Cheapest exit (exit-storm@{cpus}): <b>{}</b> at {} cycles/exit. ",
                    esc(&be.0),
                    num(be.2)
                );
            }
            if let (Some(x), Some(t)) = (cheap_exit, cheap_trip) {
                if x.0 != t.0 {
                    if let (Some(l), _) = break_even(x, t) {
                        let _ = write!(
                            line,
                            "{} (cheapest lazy round trip, {} cycles) beats {} from L = {} \
                             lazy round trips per process lifetime. ",
                            esc(&t.0),
                            num(t.1),
                            esc(&x.0),
                            short(l)
                        );
                    }
                }
            }
            let traces = cx.trace_l(arch);
            let mut per_trace = Vec::new();
            for (n, l) in &traces {
                if let Some(w) = safe_in
                    .iter()
                    .min_by(|a, b| lifetime(a.1, a.2, *l).total_cmp(&lifetime(b.1, b.2, *l)))
                {
                    per_trace.push(format!("{} (L={}): {}", esc(n), short(*l), esc(&w.0)));
                }
            }
            if !per_trace.is_empty() {
                let _ = write!(
                    line,
                    "Cheapest per process lifetime at each trace's L: {}.",
                    per_trace.join("; ")
                );
            }
        }
        line.push_str("</li>");
        items.push(line);
    }
    h.push_str(
        "<p>Per profile, among schemes whose ledger is clean and that are not known unsafe:</p>\n<ul>\n",
    );
    for i in items {
        h.push_str(&i);
        h.push('\n');
    }
    h.push_str("</ul>\n");

    // Decision table.
    let mut t = Table::new(&[
        "arch",
        "scheme",
        "cycles/sw threads (min CPUs)",
        "cycles/sw threads (max CPUs)",
        "transfers/sw threads (max CPUs)",
        "cycles/sw processes (max CPUs)",
        "round trip a",
        "exit e",
        "IPIs/exit (exit-storm)",
        "ledger",
    ]);
    for arch in &cx.archs {
        let be = cx.lifetime_inputs(arch);
        for s in &cx.schemes {
            let thr = cx.by_cpus(THREADS, arch, s, |r| Some(r.cycles_per_switch));
            let thr_t = cx.by_cpus(THREADS, arch, s, |r| Some(r.transfers_per_switch));
            let pro = cx.by_cpus(PROCESSES, arch, s, |r| Some(r.cycles_per_switch));
            let inp = be
                .as_ref()
                .and_then(|(_, v)| v.iter().find(|i| &i.0 == s).cloned());
            let ipis = be.as_ref().and_then(|(cpus, _)| {
                let (_, src) = cx.break_even_cpus(arch)?;
                let r = cx.find(src, EXIT_STORM, arch, s, *cpus)?;
                per(r.ipis + r.flush_ipis, r.exits)
            });
            if thr.is_empty() && inp.is_none() {
                continue;
            }
            let at = |v: &Vec<(f64, f64)>, first: bool| {
                let p = if first { v.first() } else { v.last() };
                p.map(|(c, x)| format!("{} @{}", num(*x), *c as usize))
                    .unwrap_or_else(|| "–".into())
            };
            push_row(
                &mut t,
                class(cx, s),
                vec![
                    arch.clone(),
                    s.clone(),
                    at(&thr, true),
                    at(&thr, false),
                    at(&thr_t, false),
                    at(&pro, false),
                    opt(inp.as_ref().map(|i| i.1)),
                    opt(inp.as_ref().map(|i| i.2)),
                    opt(ipis),
                    status(cx, s),
                ],
            );
        }
    }
    h.push_str(
        "<p>Decision table (a: switch-path cycles per lazy round trip, e: cycles per exit, both \
         at the break-even CPU count of <a href=\"#break-even\">section 3</a>):</p>\n",
    );
    h.push_str(&t.html());
    h
}

fn scaling_table(cx: &Ctx) -> String {
    let mut h = String::new();
    for (w, what) in [
        (THREADS, "ctxswitch-threads"),
        (PROCESSES, "ctxswitch-processes"),
    ] {
        let counts: BTreeSet<usize> = cx
            .source(w)
            .iter()
            .filter(|r| r.workload == w)
            .map(|r| r.cpus)
            .collect();
        if counts.is_empty() {
            continue;
        }
        let mut head = vec!["arch".to_string(), "scheme".to_string()];
        head.extend(counts.iter().map(|c| format!("{c} CPUs")));
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head_ref);
        for arch in &cx.archs {
            for s in &cx.schemes {
                let pts: BTreeMap<usize, (f64, f64)> = cx
                    .source(w)
                    .iter()
                    .filter(|r| r.workload == w && &r.arch == arch && &r.scheme == s)
                    .map(|r| (r.cpus, (r.cycles_per_switch, r.transfers_per_switch)))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let mut row = vec![arch.clone(), s.clone()];
                for c in &counts {
                    row.push(
                        pts.get(c)
                            .map(|(cy, tr)| format!("{} ({})", num(*cy), num(*tr)))
                            .unwrap_or_else(|| "–".into()),
                    );
                }
                push_row(&mut t, class(cx, s), row);
            }
        }
        let _ = write!(
            h,
            "<details><summary>{what}: est. cycles per switch (coherence transfers per switch), \
             by CPU count</summary>\n{}</details>\n",
            t.html()
        );
    }
    h
}

fn exit_table(cx: &Ctx) -> String {
    let mut t = Table::new(&[
        "arch",
        "workload",
        "cpus",
        "scheme",
        "exits",
        "scheme IPIs/exit",
        "flush IPIs/exit",
        "scan steps/exit",
        "cycles/exit",
        "lazy enters/exit",
        "peak pinned",
        "frees deferred",
        "frees irqs-off",
    ]);
    let mut rows = 0;
    for arch in &cx.archs {
        let mut runs: Vec<&RunReport> = Vec::new();
        if let Some((cpus, src)) = cx.break_even_cpus(arch) {
            runs.extend(
                src.iter()
                    .filter(|r| r.workload == EXIT_STORM && &r.arch == arch && r.cpus == cpus),
            );
        }
        for tr in &cx.traces {
            runs.extend(cx.schemes.iter().filter_map(|s| cx.trace_run(tr, arch, s)));
        }
        for r in runs {
            rows += 1;
            push_row(
                &mut t,
                class(cx, &r.scheme),
                vec![
                    arch.clone(),
                    r.workload.clone(),
                    r.cpus.to_string(),
                    r.scheme.clone(),
                    r.exits.to_string(),
                    opt(per(r.ipis, r.exits)),
                    opt(per(r.flush_ipis, r.exits)),
                    opt((r.exits > 0).then_some(r.scan_steps_per_exit)),
                    opt((r.exits > 0).then_some(r.cycles_per_exit)),
                    opt((r.exits > 0).then_some(r.lazy_enters_per_exit)),
                    r.peak_pinned.to_string(),
                    r.frees_deferred.to_string(),
                    r.frees_irqs_off.to_string(),
                ],
            );
        }
    }
    if rows == 0 {
        return "<p>No exit-storm or trace runs.</p>\n".into();
    }
    format!(
        "<details open><summary>Exit cost table (exit-storm at the break-even CPU count, and \
         every trace)</summary>\n{}</details>\n",
        t.html()
    )
}

fn break_even_html(cx: &Ctx, figs: Option<&Vec<Figure>>) -> String {
    let mut h = String::from(
        "<h2 id=\"break-even\">3. Break-even: an xchg on every unlazy vs work once per exit</h2>\n\
         <p>PeterZ, in the seed thread: <q>You do the xchg() on every unlazy, while the IPI would \
         be once per process exit.</q> Which is cheaper depends on how many lazy round trips a \
         process makes in its lifetime. The model:</p>\n\
         <pre>cost(L) = L × a + e\n\
         a = switch-path cycles per lazy round trip\n  \
         = cycles_per_switch × switches / lazy_enters   of ctxswitch-threads at N CPUs\n\
         e = cycles per exit (teardown work incl. scheme and flush IPIs)\n  \
         = cycles_per_exit                              of exit-storm at the same N CPUs\n\
         break-even between schemes i and j:  L* = (e_j − e_i) / (a_i − a_j), when L* &gt; 0</pre>\n\
         <p>exit-storm is the adversarial exit (each process visited every CPU before it \
         exits), so e is an upper bound for ordinary exits; the per-trace L is the trace's \
         lazy enters per exit.</p>\n",
    );
    for arch in &cx.archs {
        let Some((cpus, inputs)) = cx.lifetime_inputs(arch) else {
            continue;
        };
        if inputs.is_empty() {
            continue;
        }
        let _ = writeln!(h, "<h3>{} (N = {cpus} CPUs)</h3>", esc(arch));
        if let Some(f) = figs
            .into_iter()
            .flatten()
            .find(|f| f.file == format!("break-even-{}.svg", file_part(arch)))
        {
            h.push_str(&figure_html(f));
        }
        let traces = cx.trace_l(arch);
        let mut head: Vec<String> = vec![
            "scheme".into(),
            "a: cycles / lazy round trip".into(),
            "e: cycles / exit".into(),
        ];
        for (n, l) in &traces {
            head.push(format!("cost at {n} (L={})", short(*l)));
        }
        head.push("ledger".into());
        let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
        let mut t = Table::new(&head_ref);
        for i in &inputs {
            let mut row = vec![i.0.clone(), num(i.1), num(i.2)];
            for (_, l) in &traces {
                row.push(num(lifetime(i.1, i.2, *l)));
            }
            row.push(status(cx, &i.0));
            push_row(&mut t, class(cx, &i.0), row);
        }
        h.push_str(&t.html());
        let mut p = Table::new(&["scheme i", "scheme j", "break-even L*", "verdict"]);
        for (k, i) in inputs.iter().enumerate() {
            for j in inputs.iter().skip(k + 1) {
                let (l, v) = break_even(i, j);
                let c = if cx.unsafe_or_failed(&i.0) || cx.unsafe_or_failed(&j.0) {
                    Some("unsafe")
                } else {
                    None
                };
                push_row(
                    &mut p,
                    c,
                    vec![
                        i.0.clone(),
                        j.0.clone(),
                        l.map(num).unwrap_or_else(|| "none".into()),
                        v,
                    ],
                );
            }
        }
        if inputs.len() > 1 {
            h.push_str("<p>Break-even L between each pair of schemes:</p>\n");
            h.push_str(&p.html());
        }
    }
    h
}

fn traces_table(cx: &Ctx) -> String {
    if cx.traces.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&[
        "trace",
        "arch",
        "cpus",
        "scheme",
        "switches",
        "lazy enters",
        "exits",
        "cycles/switch",
        "shared RMW/switch",
        "transfers/switch",
        "IPIs/exit",
        "cycles/exit",
        "ledger",
    ]);
    for tr in &cx.traces {
        for arch in &cx.archs {
            for s in &cx.schemes {
                let Some(r) = cx.trace_run(tr, arch, s) else {
                    continue;
                };
                push_row(
                    &mut t,
                    class(cx, s),
                    vec![
                        tr.trim_start_matches("trace:").to_string(),
                        arch.clone(),
                        r.cpus.to_string(),
                        s.clone(),
                        r.switches.to_string(),
                        r.lazy_enters.to_string(),
                        r.exits.to_string(),
                        num(r.cycles_per_switch),
                        num(r.shared_rmw_per_switch),
                        num(r.transfers_per_switch),
                        opt(per(r.ipis + r.flush_ipis, r.exits)),
                        opt((r.exits > 0).then_some(r.cycles_per_exit)),
                        if r.clean() { "ok" } else { "VIOLATION" }.to_string(),
                    ],
                );
            }
        }
    }
    format!(
        "<details><summary>Trace table (every trace, profile and scheme)</summary>\n{}</details>\n",
        t.html()
    )
}

fn ledger_html(cx: &Ctx) -> String {
    let mut h = String::from("<h2 id=\"ledger\">5. Ledger</h2>\n");
    let bad: Vec<&RunReport> = cx
        .runs
        .iter()
        .chain(cx.sweep)
        .filter(|r| !r.clean())
        .collect();
    let total = cx.runs.len() + cx.sweep.len();
    if bad.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"ok\">All clean: {total} runs, no use-after-free, no double free, no leak.</p>"
        );
        return h;
    }
    let unexpected = bad.iter().filter(|r| r.known_unsafe.is_none()).count();
    if unexpected == 0 {
        let _ = writeln!(
            h,
            "<p class=\"ok\">No unexpected failures: every violation below is from a scheme \
             declared known-unsafe (kept for its counterexample). {} of {total} runs have \
             violations.</p>",
            bad.len()
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"bad\">{unexpected} run(s) of schemes NOT declared known-unsafe have \
             ledger violations — these schemes must not ship.</p>"
        );
    }
    // Per scheme summary.
    #[derive(Default)]
    struct Agg<'r> {
        runs: usize,
        uaf: u64,
        df: u64,
        leaked: u64,
        archs: BTreeSet<&'r str>,
        workloads: BTreeSet<&'r str>,
    }
    let mut per_scheme: BTreeMap<&str, Agg> = BTreeMap::new();
    for r in &bad {
        let e = per_scheme.entry(&r.scheme).or_default();
        e.runs += 1;
        e.uaf += r.uaf;
        e.df += r.double_free;
        e.leaked += r.leaked;
        e.archs.insert(&r.arch);
        e.workloads.insert(&r.workload);
    }
    let mut t = Table::new(&[
        "scheme",
        "runs with violations",
        "profiles",
        "workloads",
        "uaf",
        "double_free",
        "leaked",
        "known_unsafe",
    ]);
    for s in &cx.schemes {
        if let Some(e) = per_scheme.get(s.as_str()) {
            push_row(
                &mut t,
                Some(
                    if cx.known_unsafe.contains_key(s) && !cx.failed.contains(s) {
                        "unsafe"
                    } else {
                        "fail"
                    },
                ),
                vec![
                    s.clone(),
                    e.runs.to_string(),
                    e.archs.iter().copied().collect::<Vec<_>>().join(", "),
                    e.workloads.iter().copied().collect::<Vec<_>>().join(", "),
                    e.uaf.to_string(),
                    e.df.to_string(),
                    e.leaked.to_string(),
                    cx.known_unsafe
                        .get(s)
                        .cloned()
                        .unwrap_or_else(|| "NOT declared: unexpected failure".into()),
                ],
            );
        }
    }
    h.push_str(&t.html());
    let mut t = Table::new(&[
        "scheme",
        "workload",
        "arch",
        "cpus",
        "seed",
        "uaf",
        "double_free",
        "leaked",
        "known_unsafe",
        "first violation",
    ]);
    for r in &bad {
        push_row(
            &mut t,
            Some(if r.known_unsafe.is_some() {
                "unsafe"
            } else {
                "fail"
            }),
            vec![
                r.scheme.clone(),
                r.workload.clone(),
                r.arch.clone(),
                r.cpus.to_string(),
                r.seed.to_string(),
                r.uaf.to_string(),
                r.double_free.to_string(),
                r.leaked.to_string(),
                if r.known_unsafe.is_some() {
                    "known unsafe (reason above)".into()
                } else {
                    "UNEXPECTED".into()
                },
                r.violations.first().cloned().unwrap_or_default(),
            ],
        );
    }
    let _ = write!(
        h,
        "<details{}><summary>Every run with a violation ({})</summary>\n{}</details>\n",
        if unexpected > 0 { " open" } else { "" },
        bad.len(),
        t.html()
    );
    h
}

fn cost_html(cx: &Ctx, input: &ReportInput) -> String {
    let mut h = String::from(
        "<h2 id=\"cost-model\">6. Cost model and command</h2>\n\
         <p>Estimated cycles = plain accesses × access + remote loads × remote_load + RMWs × \
         local_rmw + coherence transfers × transfer + full fences × fence + IPIs × (ipi_send + \
         ipi_handle). Per-switch figures count the switch path only (teardown work excluded); \
         per-exit figures count the teardown work and all IPIs (scheme + exit flush). Round \
         numbers of the right order for each machine class \
         (<code>lazymm_sim::cost::CostTable::for_arch</code>); substitute your own.</p>\n",
    );
    let mut t = Table::new(&[
        "arch",
        "access",
        "local_rmw",
        "transfer",
        "remote_load",
        "fence",
        "ipi_send",
        "ipi_handle",
    ]);
    for a in &cx.archs {
        let Some(arch) = Arch::parse(a) else {
            t.row(vec![a.clone(), "unknown profile".into()]);
            continue;
        };
        let c = CostTable::for_arch(arch);
        t.row(vec![
            a.clone(),
            num(c.access),
            num(c.local_rmw),
            num(c.transfer),
            num(c.remote_load),
            num(c.fence),
            num(c.ipi_send),
            num(c.ipi_handle),
        ]);
    }
    h.push_str(&t.html());
    let _ = write!(
        h,
        "<p>Command:</p>\n<pre>{}</pre>\n\
         <p>Sweep (<code>report::sweep_configs</code>, same seed): every scheme and profile; \
         ctxswitch-threads and ctxswitch-processes at 2, 4, …, {SWEEP_MAX_CPUS} CPUs with \
         max({MIN_ROUNDS}, 90000 / CPUs) rounds (at least ~60k switches per run, at least ~350 \
         switches per CPU); exit-storm at 2, 4, …, \
         {EXIT_SWEEP_MAX_CPUS} CPUs with max(256, 4 × CPUs) rounds. The break-even model uses \
         {BREAK_EVEN_CPUS} CPUs when those runs exist.</p>\n",
        esc(&input.command)
    );
    h
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
