//! The verdict. Per machine preset, in simulated time
//! ([`super::timed::machine_lines`]): the pick by switch throughput and by
//! exit latency as ratios to `refcount`, the one scheme with the smallest
//! worst ratio and its break-even. Per profile, in exact counts: per
//! workload family the scheme with the fewest cache-line transfers (switch
//! path plus teardown) as a ratio to `refcount`, and the ledger.
//!
//! A scheme is only ever called the pick *for a workload*; the one pick
//! named for a whole profile is the scheme whose worst ratio over every
//! workload is smallest, so a scheme that wins one workload while it is far
//! worse on another is never presented as "the cheapest".

use super::*;

/// The baseline every ratio is taken against.
pub(crate) const BASELINE: &str = "refcount";

/// The count of a whole run in `q`: switch path plus teardown (IPIs are
/// counted apart). The count a workload family is ranked by.
pub(super) fn run_cost(q: &Quantity, r: &RunReport) -> f64 {
    (q.per_switch)(r) * r.switches as f64 + (q.per_exit)(r) * r.exits as f64
}

/// One workload family on one profile.
pub(crate) struct Family {
    /// `ctxswitch-threads`, ..., or `trace:NAME`.
    pub(crate) workload: String,
    /// The CPU count judged (the largest one run).
    pub(crate) cpus: usize,
    /// Eligible schemes (clean ledger, not known unsafe) with their run's
    /// transfers (exact count), fewest first.
    pub(crate) costs: Vec<(String, f64)>,
    /// The baseline's transfers, when it was run.
    pub(crate) baseline: Option<f64>,
}

impl Family {
    /// `scheme`'s cost as a ratio to the baseline (or absolute transfers when
    /// the baseline was not run).
    pub(crate) fn ratio(&self, scheme: &str) -> Option<f64> {
        let c = self.costs.iter().find(|(s, _)| s == scheme)?.1;
        match self.baseline {
            Some(b) if b > 0.0 => Some(c / b),
            Some(_) => None,
            None => Some(c),
        }
    }
}

/// The verdict for one profile.
pub(crate) struct ArchVerdict {
    pub(crate) arch: String,
    pub(crate) families: Vec<Family>,
    /// The scheme other than the baseline with the smallest worst-case
    /// ratio over every family, that ratio and the family it is reached on.
    pub(crate) overall: Option<(String, f64, String)>,
    /// Runs with a clean ledger, known-unsafe violations, unexpected ones.
    pub(crate) ledger: (usize, usize, usize),
}

/// The verdict of every profile in `cx`, from `cx.runs` (and the sweep's
/// runs for the break-even when `compare`'s own runs lack them).
pub(super) fn verdicts(cx: &Ctx) -> Vec<ArchVerdict> {
    let eligible = |s: &str| !cx.unsafe_or_failed(s);
    let mut out = Vec::new();
    for arch in &cx.archs {
        let mut workloads: Vec<String> = Vec::new();
        for r in cx.runs.iter().filter(|r| &r.arch == arch) {
            if !workloads.contains(&r.workload) {
                workloads.push(r.workload.clone());
            }
        }
        let mut families = Vec::new();
        for w in &workloads {
            let Some(cpus) = cx
                .runs
                .iter()
                .filter(|r| &r.arch == arch && &r.workload == w)
                .map(|r| r.cpus)
                .max()
            else {
                continue;
            };
            let of = |s: &str| {
                cx.runs.iter().find(|r| {
                    &r.arch == arch && &r.workload == w && r.cpus == cpus && r.scheme == s
                })
            };
            let mut costs: Vec<(String, f64)> = cx
                .schemes
                .iter()
                .filter(|s| eligible(s))
                .filter_map(|s| of(s).map(|r| (s.clone(), run_cost(&cx.q, r))))
                .collect();
            costs.sort_by(|a, b| a.1.total_cmp(&b.1));
            let baseline = of(BASELINE).map(|r| run_cost(&cx.q, r));
            if !costs.is_empty() {
                families.push(Family {
                    workload: w.clone(),
                    cpus,
                    costs,
                    baseline,
                });
            }
        }
        // Minimax: the scheme whose worst ratio is smallest, among schemes
        // run on every family.
        let mut overall: Option<(String, f64, String)> = None;
        for s in cx
            .schemes
            .iter()
            .filter(|s| eligible(s) && s.as_str() != BASELINE)
        {
            let mut worst: Option<(f64, &str)> = None;
            let mut everywhere = true;
            for f in &families {
                match f.ratio(s) {
                    Some(x) => {
                        if worst.is_none_or(|(w, _)| x > w) {
                            worst = Some((x, &f.workload));
                        }
                    }
                    None => everywhere = false,
                }
            }
            if let (true, Some((w, fam))) = (everywhere, worst) {
                if overall.as_ref().is_none_or(|o| w < o.1) {
                    overall = Some((s.clone(), w, fam.to_string()));
                }
            }
        }
        let mut ledger = (0, 0, 0);
        for r in cx.runs.iter().filter(|r| &r.arch == arch) {
            if r.clean() {
                ledger.0 += 1;
            } else if r.known_unsafe.is_some() {
                ledger.1 += 1;
            } else {
                ledger.2 += 1;
            }
        }
        out.push(ArchVerdict {
            arch: arch.clone(),
            families,
            overall,
            ledger,
        });
    }
    out
}

/// A ratio to the baseline with three significant digits and `×`.
fn times(x: f64) -> String {
    format!("{}×", sig(x))
}

/// The short terminal view: per machine the verdict in simulated time,
/// then per profile the exact counts and the ledger.
pub(crate) fn terminal(runs: &[RunReport], machines: &[MachineTime]) -> String {
    let input = ReportInput {
        runs,
        sweep: &[],
        machines,
        command: String::new(),
    };
    let cx = Ctx::new(&input);
    let mut o = String::new();
    if !machines.is_empty() {
        let _ = writeln!(
            o,
            "Simulated time per machine preset (--machine), as ratios to refcount; picked among schemes\n\
             with a clean ledger that are not known unsafe; L: lazy round trips per process lifetime."
        );
        let eligible = |s: &str| !cx.unsafe_or_failed(s);
        for mt in machines {
            let _ = writeln!(o);
            for l in timed::machine_lines(mt, &eligible) {
                let _ = writeln!(o, "{l}");
            }
        }
        let _ = writeln!(o);
    }
    let has_baseline = cx.schemes.iter().any(|s| s == BASELINE);
    let _ = writeln!(
        o,
        "Exact counts per profile: cache-line transfers of a run (switch path + teardown; IPIs\n\
         apart){}; --table for every run.",
        if has_baseline {
            " as a ratio to refcount (below 1× is fewer)"
        } else {
            " (refcount not run: absolute transfers)"
        }
    );
    for v in verdicts(&cx) {
        let _ = writeln!(o);
        for l in arch_lines(&v, has_baseline) {
            let _ = writeln!(o, "{l}");
        }
    }
    let known = known_unsafe_lines(runs);
    if !known.is_empty() {
        let _ = writeln!(o);
        o.push_str(&known);
    }
    o
}

/// The known-unsafe reasons of `runs` (one line per scheme), with the
/// profiles on which the violations were seen.
pub(crate) fn known_unsafe_lines(runs: &[RunReport]) -> String {
    let mut reasons: Vec<(&str, &str)> = runs
        .iter()
        .filter(|r| !r.clean())
        .filter_map(|r| Some((r.scheme.as_str(), r.known_unsafe.as_deref()?)))
        .collect();
    reasons.sort();
    reasons.dedup();
    let mut o = String::new();
    for (s, why) in reasons {
        let mut archs: Vec<&str> = runs
            .iter()
            .filter(|r| r.scheme == s && !r.clean())
            .map(|r| r.arch.as_str())
            .collect();
        archs.sort();
        archs.dedup();
        o.push_str(&format!(
            "KNOWN-UNSAFE {s} (violations on {}): {why}\n",
            archs.join(", ")
        ));
    }
    o
}

/// The verdict of one profile as text lines: a heading, one line per
/// workload family, the one scheme over every family.
pub(crate) fn arch_lines(v: &ArchVerdict, has_baseline: bool) -> Vec<String> {
    let mut o = String::new();
    let (ok, known, fail) = v.ledger;
    let _ = writeln!(
        o,
        "{}  (ledger: {ok} ok, {known} known-unsafe, {fail} FAIL)",
        v.arch
    );
    let wf = v
        .families
        .iter()
        .map(|f| f.workload.chars().count())
        .max()
        .unwrap_or(8);
    let ws = v
        .families
        .iter()
        .map(|f| f.costs[0].0.len())
        .max()
        .unwrap_or(8);
    for f in &v.families {
        let pick = &f.costs[0].0;
        let fmt = |s: &str| {
            f.ratio(s).map_or("–".to_string(), |x| {
                if has_baseline {
                    times(x)
                } else {
                    format!("{} transfers", sig(x))
                }
            })
        };
        let mut line = format!(
            "  {:<wf$}  {:>4} CPUs  fewest {:<ws$}  {:>9}",
            f.workload,
            f.cpus,
            pick,
            fmt(pick)
        );
        // A per-workload winner that is far worse elsewhere is said so.
        if has_baseline {
            let worst = v
                .families
                .iter()
                .filter_map(|g| g.ratio(pick).map(|x| (x, &g.workload)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((x, w)) = worst {
                if x > 1.5 {
                    let _ = write!(line, "  (but {} on {w})", times(x));
                }
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    match &v.overall {
        Some((s, w, fam)) if has_baseline && *w <= 1.0 => {
            let _ = writeln!(
                o,
                "  => {s}: never more transfers than refcount on these workloads (at worst {} on {fam})",
                times(*w)
            );
        }
        Some((s, w, fam)) if has_baseline => {
            let _ = writeln!(
                    o,
                    "  => no scheme has as few transfers as refcount on every workload; the smallest worst case is {s}: {} on {fam}",
                    times(*w)
                );
        }
        Some((s, _, _)) => {
            let _ = writeln!(o, "  => on every workload above: {s}");
        }
        None => {
            let _ = writeln!(o, "  => no eligible scheme was run on every workload");
        }
    }
    o.lines().map(str::to_string).collect()
}
