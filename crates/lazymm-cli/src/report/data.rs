//! Data selection: which runs each chart and table is drawn from.

use super::*;

pub(super) const THREADS: &str = "ctxswitch-threads";
pub(super) const PROCESSES: &str = "ctxswitch-processes";
pub(super) const EXIT_STORM: &str = "exit-storm";

pub(super) fn is_trace(r: &RunReport) -> bool {
    r.workload.starts_with("trace:")
}

pub(super) fn per(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The quantity the cost charts and the break-even are drawn in, a
/// parameter of every chart so that another measure of cost (simulated
/// time, a measured machine) replaces the constant cost model's cycles in
/// one place.
#[derive(Clone, Copy)]
pub(super) struct Quantity {
    /// What it is, for titles: "est. cycles".
    pub(super) name: &'static str,
    /// Its unit, for axes: "cycles".
    pub(super) unit: &'static str,
    /// Per switch (switch path only).
    pub(super) per_switch: fn(&RunReport) -> f64,
    /// Per address-space exit (teardown, IPIs included).
    pub(super) per_exit: fn(&RunReport) -> f64,
}

/// Exact counts: cache-line transfers between CPUs (the constant cost
/// model's cycles are gone; time comes from the timing simulator, per
/// machine, in [`super::timed`]).
pub(super) const TRANSFERS: Quantity = Quantity {
    name: "coherence transfers",
    unit: "transfers",
    per_switch: |r| r.transfers_per_switch,
    per_exit: |r| per(r.teardown_access.coherence_transfers, r.exits).unwrap_or(0.0),
};

/// (scheme, a = switch-path us per lazy round trip, e = us per exit).
pub(super) type Trip = (String, f64, f64);

pub(super) struct Ctx<'a> {
    pub(super) runs: &'a [RunReport],
    pub(super) sweep: &'a [RunReport],
    pub(super) schemes: Vec<String>,
    pub(super) archs: Vec<String>,
    /// Scheme -> known-unsafe reason.
    pub(super) known_unsafe: BTreeMap<String, String>,
    /// Schemes with a ledger violation in a run while not declared unsafe.
    pub(super) failed: BTreeSet<String>,
    pub(super) traces: Vec<String>,
    /// The y quantity of the count charts.
    pub(super) q: Quantity,
    /// Simulated time per machine preset.
    pub(super) machines: &'a [MachineTime],
}

impl<'a> Ctx<'a> {
    pub(super) fn new(input: &ReportInput<'a>) -> Ctx<'a> {
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
            q: TRANSFERS,
            machines: input.machines,
        }
    }

    /// A context over `runs` alone (no sweep).
    pub(super) fn new_runs(runs: &'a [RunReport]) -> Ctx<'a> {
        let input = ReportInput {
            runs,
            sweep: &[],
            machines: &[],
            command: String::new(),
        };
        Ctx::new(&input)
    }

    pub(super) fn idx(&self, scheme: &str) -> usize {
        self.schemes.iter().position(|s| s == scheme).unwrap_or(0)
    }
    pub(super) fn color(&self, scheme: &str) -> RGBColor {
        PALETTE[self.idx(scheme) % PALETTE.len()]
    }
    pub(super) fn unsafe_or_failed(&self, scheme: &str) -> bool {
        self.known_unsafe.contains_key(scheme) || self.failed.contains(scheme)
    }
    /// The scheme's name with `*` when it is known unsafe, `!` when its
    /// ledger failed unexpectedly.
    pub(super) fn label(&self, scheme: &str) -> String {
        if self.failed.contains(scheme) {
            format!("{scheme} !")
        } else if self.known_unsafe.contains_key(scheme) {
            format!("{scheme} *")
        } else {
            scheme.to_string()
        }
    }

    /// The sweep when it has `workload`, else `compare`'s runs.
    pub(super) fn source(&self, workload: &str) -> &'a [RunReport] {
        if self.sweep.iter().any(|r| r.workload == workload) {
            self.sweep
        } else {
            self.runs
        }
    }

    /// `(cpus, value)` of `workload` on `arch` for `scheme`, by CPU count.
    pub(super) fn by_cpus(
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

    pub(super) fn find(
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

    pub(super) fn trace_run(&self, trace: &str, arch: &str, scheme: &str) -> Option<&'a RunReport> {
        self.runs
            .iter()
            .chain(self.sweep)
            .find(|r| r.workload == trace && r.arch == arch && r.scheme == scheme)
    }

    /// The CPU count and run set of the break-even model on `arch`:
    /// a count with both `ctxswitch-threads` and `exit-storm` runs,
    /// [`BREAK_EVEN_CPUS`] when available, else the largest.
    pub(super) fn break_even_cpus(&self, arch: &str) -> Option<(usize, &'a [RunReport])> {
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

    /// Each trace's lazy round trips per exit on `arch` (traces with exits).
    pub(super) fn trace_l(&self, arch: &str) -> Vec<(String, f64)> {
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
