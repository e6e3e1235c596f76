//! `lazymm compare` and `lazymm sim`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::builder::PossibleValuesParser;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayConfig};
use lazymm_sim::{RunConfig, RunReport, WorkloadKind};
use lazymm_trace::{ParseOptions, TraceSummary};
use serde::Serialize;

use crate::table::Table;

fn scheme_names() -> Vec<&'static str> {
    SchemeKind::ALL.iter().map(|s| s.name()).collect()
}
fn workload_names() -> Vec<&'static str> {
    WorkloadKind::ALL.iter().map(|s| s.name()).collect()
}
fn arch_names() -> Vec<&'static str> {
    Arch::ALL.iter().map(|s| s.name()).collect()
}

/// Arguments of `lazymm compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Schemes (comma-separated); default: all.
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(scheme_names()))]
    schemes: Vec<String>,
    /// Synthetic workloads (comma-separated); default: all.
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(workload_names()))]
    workloads: Vec<String>,
    /// Architecture profiles (comma-separated); default: all.
    #[arg(long = "arch", value_delimiter = ',', value_parser = PossibleValuesParser::new(arch_names()))]
    archs: Vec<String>,
    /// CPU counts (comma-separated, each 1..=4096).
    #[arg(long, value_delimiter = ',', default_value = "2,8,64", value_parser = clap::value_parser!(u16).range(1..=4096))]
    cpus: Vec<u16>,
    /// Scheduler rounds per run (each gives every CPU one turn).
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rounds: u64,
    /// Seed of the deterministic executor.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Machine-readable output (JSON on stdout).
    #[arg(long)]
    json: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Directory of `*.perf.txt.gz` traces replayed beside the synthetic
    /// workloads (default: the bundled `traces/`).
    #[arg(long, value_name = "DIR")]
    traces: Option<PathBuf>,
    /// Synthetic workloads only.
    #[arg(long, conflicts_with = "traces")]
    no_traces: bool,
    /// Also write a report folder (index.html with SVG charts), including a
    /// CPU-count sweep up to 4096 CPUs.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
}

/// Arguments of `lazymm sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// CPUs (1..=4096).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    cpus: u16,
    /// Workload.
    #[arg(long, default_value = "ctxswitch-threads", value_parser = PossibleValuesParser::new(workload_names()))]
    workload: String,
    /// Architecture profile.
    #[arg(long, default_value = "x86", value_parser = PossibleValuesParser::new(arch_names()))]
    arch: String,
    /// Schemes (comma-separated); default: all.
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(scheme_names()))]
    schemes: Vec<String>,
    /// Sweep CPU counts 2, 4, 8, ... up to --cpus.
    #[arg(long)]
    sweep: bool,
    /// Scheduler rounds.
    #[arg(long, default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rounds: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Worker threads.
    #[arg(long)]
    jobs: Option<usize>,
}

fn parse_all<T: Copy>(names: &[String], all: &[T], parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    if names.is_empty() {
        all.to_vec()
    } else {
        // Already validated by clap's PossibleValuesParser.
        names.iter().filter_map(|n| parse(n)).collect()
    }
}

/// The JSON document of `compare` / `sim`.
#[derive(Serialize)]
struct Output<'a> {
    runs: &'a [RunReport],
    unexpected_failures: Vec<String>,
    cost_model: Vec<(String, lazymm_sim::cost::CostTable)>,
}

/// One unit of work of `compare`.
#[derive(Debug)]
pub enum Job {
    /// A synthetic workload.
    Synthetic(RunConfig),
    /// A trace replay.
    Trace {
        /// The trace.
        path: PathBuf,
        /// Its scan.
        summary: Arc<TraceSummary>,
        /// Scheme and profile.
        cfg: ReplayConfig,
    },
}

impl Job {
    fn label(&self) -> String {
        match self {
            Job::Synthetic(c) => format!("{} {} {} {}", c.scheme, c.workload, c.arch, c.cpus),
            Job::Trace { path, cfg, .. } => {
                format!("{} {} {}", cfg.scheme, path.display(), cfg.arch)
            }
        }
    }
    fn run(&self) -> Result<RunReport, String> {
        match self {
            Job::Synthetic(c) => lazymm_sim::run(c),
            Job::Trace { path, summary, cfg } => {
                replay(path, &ParseOptions::default(), summary, cfg)
                    .map(|r| r.run)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Runs `cfgs` on `jobs` threads with a progress bar.
pub fn run_all(cfgs: Vec<RunConfig>, jobs: Option<usize>, quiet: bool) -> Result<Vec<RunReport>> {
    run_jobs(cfgs.into_iter().map(Job::Synthetic).collect(), jobs, quiet)
}

/// Runs `cfgs` on `jobs` threads with a progress bar.
pub fn run_jobs(cfgs: Vec<Job>, jobs: Option<usize>, quiet: bool) -> Result<Vec<RunReport>> {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cfgs.len() as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunReport, String>>>> =
        Mutex::new(vec![None; cfgs.len()].into_iter().collect());
    std::thread::scope(|sc| {
        for _ in 0..jobs {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cfgs.len() {
                    break;
                }
                let c = &cfgs[i];
                pb.set_message(c.label());
                let r = c.run();
                results.lock().expect("results lock")[i] = Some(r);
                pb.inc(1);
            });
        }
    });
    pb.finish_and_clear();
    let mut out = Vec::new();
    for (i, r) in results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .enumerate()
    {
        match r {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => anyhow::bail!("{} failed: {e}", cfgs[i].label()),
            None => anyhow::bail!("{} did not complete", cfgs[i].label()),
        }
    }
    Ok(out)
}

fn f(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// Prints `runs` as the table or JSON; returns the exit code.
pub fn emit(runs: &[RunReport], json: bool) -> Result<u8> {
    let unexpected: Vec<String> = runs
        .iter()
        .filter(|r| !r.clean() && r.known_unsafe.is_none())
        .map(|r| {
            format!(
                "{} on {} ({}, {} CPUs, seed {}): uaf {} double_free {} leaked {}: {}",
                r.scheme,
                r.workload,
                r.arch,
                r.cpus,
                r.seed,
                r.uaf,
                r.double_free,
                r.leaked,
                r.violations.first().map(String::as_str).unwrap_or("")
            )
        })
        .collect();
    if json {
        let mut archs: Vec<Arch> = runs.iter().filter_map(|r| Arch::parse(&r.arch)).collect();
        archs.sort();
        archs.dedup();
        let out = Output {
            runs,
            unexpected_failures: unexpected.clone(),
            cost_model: archs
                .iter()
                .map(|a| {
                    (
                        a.name().to_string(),
                        lazymm_sim::cost::CostTable::for_arch(*a),
                    )
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        emit_table(runs);
        if !unexpected.is_empty() {
            println!();
            for u in &unexpected {
                println!("LEDGER FAILURE: {u}");
            }
        }
    }
    Ok(if unexpected.is_empty() { 0 } else { 1 })
}

/// Prints the metrics table of `runs` (and the known-unsafe reasons).
pub fn emit_table(runs: &[RunReport]) {
    {
        let mut t = Table::new(&[
            "scheme",
            "workload",
            "arch",
            "cpus",
            "switches",
            "lazy_enters",
            "count_rmw",
            "shared_rmw",
            "coherence_transfers",
            "fences",
            "ipis",
            "flush_ipis",
            "scan_steps",
            "exits",
            "uaf",
            "double_free",
            "leaked",
            "shared_rmw/sw",
            "transfers/sw",
            "cycles/sw",
            "cycles/exit",
            "ipis/exit",
            "ledger",
        ]);
        for r in runs {
            let status = if r.clean() {
                "ok".to_string()
            } else if r.known_unsafe.is_some() {
                "KNOWN-UNSAFE".to_string()
            } else {
                "FAIL".to_string()
            };
            t.row(vec![
                r.scheme.clone(),
                r.workload.clone(),
                r.arch.clone(),
                r.cpus.to_string(),
                r.switches.to_string(),
                r.lazy_enters.to_string(),
                r.count_rmw.to_string(),
                r.shared_rmw.to_string(),
                r.coherence_transfers.to_string(),
                r.fences.to_string(),
                r.ipis.to_string(),
                r.flush_ipis.to_string(),
                r.scan_steps.to_string(),
                r.exits.to_string(),
                r.uaf.to_string(),
                r.double_free.to_string(),
                r.leaked.to_string(),
                f(r.shared_rmw_per_switch),
                f(r.transfers_per_switch),
                f(r.cycles_per_switch),
                f(r.cycles_per_exit),
                f(r.ipis_per_exit),
                status,
            ]);
        }
        print!("{}", t.render());
        let known: Vec<&RunReport> = runs
            .iter()
            .filter(|r| !r.clean() && r.known_unsafe.is_some())
            .collect();
        if !known.is_empty() {
            let mut reasons: Vec<(&str, &str)> = known
                .iter()
                .map(|r| (r.scheme.as_str(), r.known_unsafe.as_deref().unwrap_or("")))
                .collect();
            reasons.sort();
            reasons.dedup();
            println!();
            for (s, why) in reasons {
                println!("KNOWN-UNSAFE {s}: {why}");
            }
        }
    }
}

/// `lazymm compare`.
pub fn compare(a: &CompareArgs) -> Result<u8> {
    let schemes = parse_all(&a.schemes, &SchemeKind::ALL, SchemeKind::parse);
    let workloads = parse_all(&a.workloads, &WorkloadKind::ALL, WorkloadKind::parse);
    let archs = parse_all(&a.archs, &Arch::ALL, Arch::parse);
    let mut cfgs = Vec::new();
    for &w in &workloads {
        for &arch in &archs {
            for &cpus in &a.cpus {
                for &scheme in &schemes {
                    cfgs.push(RunConfig {
                        scheme,
                        arch,
                        cpus: cpus as usize,
                        workload: w,
                        seed: a.seed,
                        rounds: a.rounds,
                        options: Default::default(),
                    });
                }
            }
        }
    }
    let mut jobs: Vec<Job> = cfgs.into_iter().map(Job::Synthetic).collect();
    if !a.no_traces {
        let dir = match &a.traces {
            Some(d) => d.clone(),
            None => bundled_traces()?,
        };
        for path in trace_files(&dir)? {
            let summary = Arc::new(scan(&path, &ParseOptions::default())?);
            for &arch in &archs {
                for &scheme in &schemes {
                    jobs.push(Job::Trace {
                        path: path.clone(),
                        summary: summary.clone(),
                        cfg: ReplayConfig {
                            scheme,
                            arch,
                            options: Default::default(),
                        },
                    });
                }
            }
        }
    }
    let runs = run_jobs(jobs, a.jobs, a.json)?;
    let code = emit(&runs, a.json)?;
    if let Some(dir) = &a.report {
        let sweep = run_all(crate::report::sweep_configs(a.seed), a.jobs, a.json)?;
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let files = crate::report::write_report(
            dir,
            &crate::report::ReportInput {
                runs: &runs,
                sweep: &sweep,
                command,
            },
        )?;
        if !a.json {
            println!();
            println!(
                "report: {} ({} files)",
                dir.join("index.html").display(),
                files.len()
            );
        }
    }
    Ok(code)
}

/// The bundled traces: `traces/` of the working directory, else of the
/// source tree this binary was built from.
pub fn bundled_traces() -> Result<PathBuf> {
    let here = PathBuf::from("traces");
    if here.join("FORMAT.md").is_file() {
        return Ok(here);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces");
    if built.join("FORMAT.md").is_file() {
        return Ok(built);
    }
    anyhow::bail!(
        "the bundled traces were not found (looked in ./traces and {}); pass --traces DIR or --no-traces",
        built.display()
    )
}

/// The `*.perf.txt.gz` / `*.perf.txt` files of `dir`, sorted.
pub fn trace_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.ends_with(".perf.txt.gz") || n.ends_with(".perf.txt")
        })
        .collect();
    v.sort();
    if v.is_empty() {
        anyhow::bail!("{}: no *.perf.txt.gz traces", dir.display());
    }
    Ok(v)
}

/// `lazymm sim`.
pub fn sim(a: &SimArgs) -> Result<u8> {
    let schemes = parse_all(&a.schemes, &SchemeKind::ALL, SchemeKind::parse);
    let w = WorkloadKind::parse(&a.workload).expect("validated by clap");
    let arch = Arch::parse(&a.arch).expect("validated by clap");
    let counts: Vec<usize> = if a.sweep {
        let mut v = Vec::new();
        let mut c = 2usize;
        while c < a.cpus as usize {
            v.push(c);
            c *= 2;
        }
        v.push(a.cpus as usize);
        v
    } else {
        vec![a.cpus as usize]
    };
    let mut cfgs = Vec::new();
    for &cpus in &counts {
        for &scheme in &schemes {
            cfgs.push(RunConfig {
                scheme,
                arch,
                cpus,
                workload: w,
                seed: a.seed,
                rounds: a.rounds,
                options: Default::default(),
            });
        }
    }
    let runs = run_all(cfgs, a.jobs, a.json)?;
    emit(&runs, a.json)
}
