//! `lazymm compare` and `lazymm sim`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::builder::PossibleValuesParser;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayConfig};
use lazymm_sim::{RunConfig, RunReport, WorkloadKind};
use lazymm_trace::{ParseOptions, TraceSummary};
use serde::Serialize;

use crate::output::{self, Format, OutputArgs};
use crate::report::format::sig;
use crate::report::timed::{self, MachineTime, TimedPlan};

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
    /// CPU counts (comma-separated, each 1..=4096) [default: 2,8,64].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=4096))]
    cpus: Vec<u16>,
    /// Scheduler rounds per run (each gives every CPU one turn) [default:
    /// per workload and CPU count, see `lazymm sim --help`].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rounds: Option<u64>,
    /// Seed of the deterministic executor (0..=2^64-1).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = parse_seed)]
    seed: u64,
    #[command(flatten)]
    out: OutputArgs,
    /// Worker threads (1.., default: available cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Directory of `*.perf.txt.gz` traces replayed beside the synthetic
    /// workloads (default: the bundled `traces/`).
    #[arg(long, value_name = "DIR")]
    traces: Option<PathBuf>,
    /// Synthetic workloads only.
    #[arg(long, conflicts_with = "traces")]
    no_traces: bool,
    /// Also write a report folder (index.html with SVG charts), including a
    /// CPU-count sweep of the selected schemes and profiles (up to 4096
    /// CPUs, or the largest --cpus given) and, per machine, simulated time
    /// from 2 CPUs to 4096 (beyond the preset: extrapolated) and the exit walk.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Machine presets or files whose simulated time the verdict (and the
    /// report) gives, comma-separated [default: every preset: power8-16s,
    /// epyc-9654-2s, xeon-8480-2s, altra-q80-2s, this-machine]. `none`: counts only.
    #[arg(long, value_delimiter = ',', value_name = "NAME|FILE")]
    machine: Vec<String>,
}

/// Arguments of `lazymm sim`.
#[derive(Args, Debug)]
pub struct SimArgs {
    /// CPUs (1..=4096) [default: 64; with --sweep, the largest count: 4096].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
    cpus: Option<u16>,
    /// Workload.
    #[arg(long, default_value = "ctxswitch-threads", value_parser = PossibleValuesParser::new(workload_names()))]
    workload: String,
    /// Architecture profile.
    #[arg(long, default_value = "x86", value_parser = PossibleValuesParser::new(arch_names()))]
    arch: String,
    /// Schemes (comma-separated); default: all.
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(scheme_names()))]
    schemes: Vec<String>,
    /// Sweep CPU counts 2, 4, 8, ... up to --cpus (default 4096) and print
    /// schemes x CPU counts.
    #[arg(long)]
    sweep: bool,
    /// Scheduler rounds [default: ctxswitch-*: max(512, 90000/CPUs), about
    /// 60k switches; exit-storm: max(256, 4 x CPUs); others: 1500; the same
    /// rule as `compare` and its report].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    rounds: Option<u64>,
    /// Seed (0..=2^64-1).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = parse_seed)]
    seed: u64,
    #[command(flatten)]
    out: OutputArgs,
    /// Worker threads (1.., default: available cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Simulated time on a machine preset or file instead of counts:
    /// ctxswitch-threads is will-it-scale context_switch1_threads -t CPUS/2,
    /// exit-storm one exit with every other CPU lazy, on the machine (grown
    /// by whole sockets, an extrapolation, when --cpus exceeds it; default
    /// --cpus: the machine's size). The other workloads run their rounds on
    /// the machine in simulated time (`lazymm timed --workload`).
    #[arg(long, value_name = "NAME|FILE")]
    machine: Option<String>,
}

/// `--seed`: an unsigned 64-bit integer, said plainly when it is not.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    s.parse::<u64>().map_err(|_| {
        format!("`{s}` is not a seed: a seed is a whole number from 0 to 18446744073709551615")
    })
}

/// The values named (each once, in the order first given), or all.
pub fn parse_all<T: Copy + PartialEq>(
    names: &[String],
    all: &[T],
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<T> {
    if names.is_empty() {
        all.to_vec()
    } else {
        // Already validated by clap's PossibleValuesParser.
        let mut v: Vec<T> = Vec::new();
        for t in names.iter().filter_map(|n| parse(n)) {
            if !v.contains(&t) {
                v.push(t);
            }
        }
        v
    }
}

/// The CPU counts given, each once, in the order given.
fn dedup_cpus(cpus: &[u16]) -> Vec<usize> {
    let mut v: Vec<usize> = Vec::new();
    for &c in cpus {
        if !v.contains(&(c as usize)) {
            v.push(c as usize);
        }
    }
    v
}

/// The JSON document of `compare` / `sim`.
#[derive(Serialize)]
struct Output<'a> {
    runs: &'a [RunReport],
    unexpected_failures: Vec<String>,
    /// Simulated time per machine (every parameter with its source).
    machines: &'a [MachineTime],
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
pub fn run_all(cfgs: Vec<RunConfig>, jobs: Option<u16>, quiet: bool) -> Result<Vec<RunReport>> {
    run_jobs(cfgs.into_iter().map(Job::Synthetic).collect(), jobs, quiet)
}

/// Seconds between progress lines when stderr is not a terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

fn secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Runs `cfgs` on `jobs` threads. Progress goes to stderr: a bar with an
/// ETA on a terminal, else a line every [`PROGRESS_EVERY`].
pub fn run_jobs(cfgs: Vec<Job>, jobs: Option<u16>, quiet: bool) -> Result<Vec<RunReport>> {
    let jobs = jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let tty = std::io::stderr().is_terminal();
    let pb = if quiet || !tty {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cfgs.len() as u64)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs, ETA {eta} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let finished = AtomicBool::new(false);
    let total = cfgs.len();
    let results: Mutex<Vec<Option<Result<RunReport, String>>>> =
        Mutex::new(vec![None; cfgs.len()].into_iter().collect());
    let start = Instant::now();
    std::thread::scope(|sc| {
        if !quiet && !tty {
            sc.spawn(|| {
                let mut last = Instant::now();
                while !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() < PROGRESS_EVERY {
                        continue;
                    }
                    last = Instant::now();
                    let d = done.load(Ordering::Relaxed);
                    let el = start.elapsed();
                    let eta = if d > 0 {
                        secs(el.mul_f64((total - d) as f64 / d as f64))
                    } else {
                        "unknown".into()
                    };
                    eprintln!(
                        "lazymm: {d}/{total} runs done, {} elapsed, ETA {eta}",
                        secs(el)
                    );
                }
            });
        }
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                sc.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= cfgs.len() {
                        break;
                    }
                    let c = &cfgs[i];
                    pb.set_message(c.label());
                    let r = c.run();
                    results.lock().expect("results lock")[i] = Some(r);
                    done.fetch_add(1, Ordering::Relaxed);
                    pb.inc(1);
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        finished.store(true, Ordering::Relaxed);
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
            Some(Err(e)) => anyhow::bail!("{}: {e}", cfgs[i].label()),
            None => anyhow::bail!("{} did not complete", cfgs[i].label()),
        }
    }
    Ok(out)
}

/// Runs whose ledger failed while their scheme is not declared unsafe.
fn unexpected_failures(runs: &[RunReport]) -> Vec<String> {
    runs.iter()
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
        .collect()
}

/// Prints `runs` in `fmt` (`sweep`: the matrix view of `sim --sweep` for
/// the default); returns the exit code.
pub fn emit(runs: &[RunReport], machines: &[MachineTime], fmt: Format, sweep: bool) -> Result<u8> {
    let unexpected = unexpected_failures(runs);
    let mut o = match fmt {
        Format::Json => {
            let out = Output {
                runs,
                unexpected_failures: unexpected.clone(),
                machines,
            };
            serde_json::to_string_pretty(&out)? + "\n"
        }
        Format::Csv => output::render_csv(runs),
        Format::Markdown => output::render_markdown(runs),
        Format::Table => table_text(runs),
        Format::Verdict if sweep => sweep_matrix(runs),
        Format::Verdict => crate::report::verdict::terminal(runs, machines),
    };
    if !matches!(fmt, Format::Json | Format::Csv | Format::Markdown) && !unexpected.is_empty() {
        o.push('\n');
        for u in &unexpected {
            o.push_str(&format!("LEDGER FAILURE: {u}\n"));
        }
    }
    print!("{o}");
    Ok(if unexpected.is_empty() { 0 } else { 1 })
}

/// The metrics table of `runs`, fitted to the terminal, and the
/// known-unsafe reasons.
pub fn table_text(runs: &[RunReport]) -> String {
    let mut o = output::render_table(runs, output::terminal_width());
    let known = crate::report::verdict::known_unsafe_lines(runs);
    if !known.is_empty() {
        o.push('\n');
        o.push_str(&known);
    }
    o
}

/// `sim --sweep`: one row per scheme, one column per CPU count; the cell
/// is teardown transfers per exit for `exit-storm`, else coherence
/// transfers per switch (exact counts).
fn sweep_matrix(runs: &[RunReport]) -> String {
    let exit = runs.iter().all(|r| r.workload == "exit-storm");
    let mut counts: Vec<usize> = runs.iter().map(|r| r.cpus).collect();
    counts.sort();
    counts.dedup();
    let mut schemes: Vec<&str> = Vec::new();
    for r in runs {
        if !schemes.contains(&r.scheme.as_str()) {
            schemes.push(&r.scheme);
        }
    }
    let mut head: Vec<String> = vec!["scheme".into()];
    head.extend(counts.iter().map(|c| c.to_string()));
    head.push("ledger".into());
    let head_ref: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut t = crate::table::Table::new(&head_ref);
    for s in &schemes {
        let mut row = vec![s.to_string()];
        let mut worst = "ok";
        for c in &counts {
            let r = runs.iter().find(|r| r.scheme == *s && r.cpus == *c);
            row.push(match r {
                Some(r) if exit && !output::per_exit_meaningful(r) => String::new(),
                Some(r) if exit => {
                    sig(r.teardown_access.coherence_transfers as f64 / r.exits as f64)
                }
                Some(r) => sig(r.transfers_per_switch),
                None => String::new(),
            });
            if let Some(r) = r {
                if !r.clean() {
                    worst = if r.known_unsafe.is_some() && worst != "FAIL" {
                        "KNOWN-UNSAFE"
                    } else {
                        "FAIL"
                    };
                }
            }
        }
        row.push(worst.into());
        t.row(row);
    }
    let (w, a) = runs
        .first()
        .map(|r| (r.workload.as_str(), r.arch.as_str()))
        .unwrap_or(("", ""));
    let mut o = format!(
        "{w} on {a}: {} by CPU count, exact counts (seed {}; --table for every count; \
         --machine for simulated time)\n",
        if exit {
            "teardown cache-line transfers per exit (blank: fewer than 16 exits)"
        } else {
            "cache-line transfers per switch (switch path)"
        },
        runs.first().map_or(0, |r| r.seed)
    );
    o.push_str(&t.render());
    let known = crate::report::verdict::known_unsafe_lines(runs);
    if !known.is_empty() {
        o.push('\n');
        o.push_str(&known);
    }
    o
}

/// `lazymm compare`.
pub fn compare(a: &CompareArgs) -> Result<u8> {
    let fmt = a.out.format(Format::Verdict);
    let quiet = fmt == Format::Json;
    // Before any work: the report folder must be writable.
    if let Some(dir) = &a.report {
        crate::report::check_writable(dir)?;
    }
    let schemes = parse_all(&a.schemes, &SchemeKind::ALL, SchemeKind::parse);
    let workloads = parse_all(&a.workloads, &WorkloadKind::ALL, WorkloadKind::parse);
    let archs = parse_all(&a.archs, &Arch::ALL, Arch::parse);
    let cpus_list = if a.cpus.is_empty() {
        vec![2, 8, 64]
    } else {
        dedup_cpus(&a.cpus)
    };
    let mut cfgs = Vec::new();
    for &w in &workloads {
        for &arch in &archs {
            for &cpus in &cpus_list {
                for &scheme in &schemes {
                    cfgs.push(RunConfig {
                        scheme,
                        arch,
                        cpus,
                        workload: w,
                        seed: a.seed,
                        rounds: a
                            .rounds
                            .unwrap_or_else(|| crate::report::default_rounds(w, cpus)),
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
        jobs.extend(trace_jobs(&dir, &schemes, &archs)?);
    }
    let specs = if a.machine.len() == 1 && a.machine[0] == "none" {
        Vec::new()
    } else {
        timed::load_machines(&a.machine)?
    };
    let runs = run_jobs(jobs, a.jobs, quiet)?;
    let machines = timed::run_machines(
        &specs,
        &schemes,
        TimedPlan {
            sweep_to: a.report.as_ref().map(|_| {
                if a.cpus.is_empty() {
                    crate::report::SWEEP_MAX_CPUS
                } else {
                    cpus_list.iter().copied().max().unwrap_or(64)
                }
            }),
            at: None,
            walk: a.report.is_some(),
        },
        n_jobs(a.jobs),
        quiet,
    )?;
    let sweep = match &a.report {
        Some(_) => {
            let max = if a.cpus.is_empty() {
                crate::report::SWEEP_MAX_CPUS
            } else {
                cpus_list.iter().copied().max().unwrap_or(64)
            };
            run_all(
                crate::report::sweep_configs(a.seed, &schemes, &archs, max, a.rounds),
                a.jobs,
                quiet,
            )?
        }
        None => Vec::new(),
    };
    if let Some(dir) = &a.report {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        crate::report::write_report(
            dir,
            &crate::report::ReportInput {
                runs: &runs,
                sweep: &sweep,
                machines: &machines,
                command,
            },
        )?;
    }
    let code = emit(&runs, &machines, fmt, false)?;
    if let (Some(dir), false) = (&a.report, quiet) {
        println!();
        println!("report: {}", dir.join("index.html").display());
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

/// The replay of every trace of `dir` ([`trace_files`]) through every
/// scheme on every profile, each trace scanned once.
pub fn trace_jobs(dir: &Path, schemes: &[SchemeKind], archs: &[Arch]) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for path in trace_files(dir)? {
        let summary = Arc::new(scan(&path, &ParseOptions::default())?);
        for &arch in archs {
            for &scheme in schemes {
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
    Ok(jobs)
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
    if let Some(m) = &a.machine {
        return sim_timed(a, m);
    }
    let fmt = a.out.format(if a.sweep {
        Format::Verdict
    } else {
        Format::Table
    });
    let schemes = parse_all(&a.schemes, &SchemeKind::ALL, SchemeKind::parse);
    let w = WorkloadKind::parse(&a.workload).expect("validated by clap");
    let arch = Arch::parse(&a.arch).expect("validated by clap");
    let counts: Vec<usize> = if a.sweep {
        let max = a.cpus.map_or(crate::report::SWEEP_MAX_CPUS, usize::from);
        let mut v = Vec::new();
        let mut c = 2usize;
        while c < max {
            v.push(c);
            c *= 2;
        }
        v.push(max);
        v
    } else {
        vec![a.cpus.map_or(64, usize::from)]
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
                rounds: a
                    .rounds
                    .unwrap_or_else(|| crate::report::default_rounds(w, cpus)),
                options: Default::default(),
            });
        }
    }
    let runs = run_all(cfgs, a.jobs, fmt == Format::Json)?;
    emit(&runs, &[], fmt, a.sweep)
}

/// Worker threads: `--jobs` or the available cores.
fn n_jobs(jobs: Option<u16>) -> usize {
    jobs.map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// `lazymm sim --machine W` for a round-based workload other than the two
/// shapes above: its rounds in simulated time ([`rounds::run`]).
fn sim_rounds(
    a: &SimArgs,
    spec: &[lazymm_sim::timing::spec::MachineSpec],
    schemes: &[SchemeKind],
    fmt: Format,
) -> Result<u8> {
    use lazymm_sim::timing::rounds;
    if a.sweep {
        anyhow::bail!(
            "--machine with --sweep: only ctxswitch-threads and exit-storm sweep CPU counts; \
             run {} at one --cpus",
            a.workload
        );
    }
    let w = WorkloadKind::parse(&a.workload)
        .ok_or_else(|| anyhow::anyhow!("unknown workload {}", a.workload))?;
    let mut out = Vec::new();
    for sp in spec {
        let sp = a
            .cpus
            .map_or_else(|| sp.clone(), |c| sp.scaled(usize::from(c)));
        let r = a
            .rounds
            .unwrap_or_else(|| crate::report::default_rounds(w, sp.cpus()));
        for &s in schemes {
            out.push(rounds::run(&sp, s, w, r, a.seed).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
    }
    let bad = out.iter().any(|r| {
        !r.counts.clean()
            && SchemeKind::parse(&r.scheme)
                .and_then(|s| s.known_unsafe_with(&Default::default(), r.workload == "hotplug"))
                .is_none()
    });
    if fmt == Format::Json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(u8::from(bad));
    }
    let mut t = crate::table::Table::new(&[
        "machine",
        "cpus",
        "scheme",
        "sim us",
        "switches/s",
        "exits/s",
        "IPIs/s per CPU",
        "scheme ns/switch",
        "vs refcount",
        "bottleneck",
        "ledger",
    ]);
    for r in &out {
        let base = out
            .iter()
            .find(|b| b.machine == r.machine && b.scheme == "refcount")
            .map(|b| b.scheme_ns_per_switch);
        t.row(vec![
            r.machine.clone(),
            r.cpus.to_string(),
            r.scheme.clone(),
            sig(r.simulated_us),
            timed::rate(r.switches_per_s),
            timed::rate(r.exits_per_s),
            sig(r.ipis_per_cpu_s),
            sig(r.scheme_ns_per_switch),
            base.filter(|b| *b > 0.0)
                .map(|b| format!("{}×", sig(r.scheme_ns_per_switch / b)))
                .unwrap_or_default(),
            r.hottest.first().map_or("-".into(), |l| l.kind.to_string()),
            if r.counts.clean() { "ok" } else { "VIOLATION" }.into(),
        ]);
    }
    print!(
        "{} in simulated time: each round every CPU takes a turn; `switch` charged per context \
         switch, IPIs per send; scheme ns/switch: the runtime's and scheme's own time \
         (accesses, line waits, IPIs) per switch\n{}",
        a.workload,
        t.render()
    );
    Ok(u8::from(bad))
}

/// `lazymm sim --machine`: simulated time on one machine.
fn sim_timed(a: &SimArgs, machine: &str) -> Result<u8> {
    let fmt = a.out.format(Format::Table);
    let spec = timed::load_machines(&[machine.to_string()])?;
    let schemes = parse_all(&a.schemes, &SchemeKind::ALL, SchemeKind::parse);
    if !matches!(a.workload.as_str(), "ctxswitch-threads" | "exit-storm") {
        return sim_rounds(a, &spec, &schemes, fmt);
    }
    let cpus = a.cpus.map(usize::from);
    let plan = TimedPlan {
        sweep_to: a
            .sweep
            .then(|| cpus.unwrap_or(crate::report::SWEEP_MAX_CPUS)),
        at: if a.sweep { None } else { cpus },
        walk: false,
    };
    let quiet = fmt == Format::Json;
    let machines = timed::run_machines(&spec, &schemes, plan, n_jobs(a.jobs), quiet)?;
    if fmt == Format::Json {
        println!("{}", serde_json::to_string_pretty(&machines)?);
        return Ok(0);
    }
    let exit = a.workload == "exit-storm";
    let mut o = String::new();
    for mt in &machines {
        o.push_str(&format!(
            "{} ({}, {} CPUs): {}, simulated time ({})\n",
            mt.spec.name,
            mt.spec.arch,
            mt.cpus,
            if exit {
                "one exit with every other CPU holding the mm lazily"
            } else {
                "will-it-scale context_switch1_threads -t CPUs/2"
            },
            mt.extrapolation
        ));
        let mut t = crate::table::Table::new(if exit {
            &[
                "cpus",
                "scheme",
                "exit us",
                "vs refcount",
                "scheme IPIs",
                "flush IPIs",
                "scans",
                "ledger",
            ]
        } else {
            &[
                "cpus",
                "scheme",
                "switches/s",
                "vs refcount",
                "us/lazy round trip",
                "bottleneck",
                "ledger",
            ]
        });
        if exit {
            for p in &mt.exits {
                let b = mt.exit("refcount", p.cpus).map(|b| b.exit_us);
                t.row(vec![
                    p.cpus.to_string(),
                    p.scheme.clone(),
                    sig(p.exit_us),
                    b.filter(|b| *b > 0.0)
                        .map(|b| format!("{}×", sig(p.exit_us / b)))
                        .unwrap_or_default(),
                    p.ipis.to_string(),
                    p.flush_ipis.to_string(),
                    p.scan_steps.to_string(),
                    if p.clean { "ok" } else { "VIOLATION" }.into(),
                ]);
            }
        } else {
            for p in &mt.scaling {
                t.row(vec![
                    p.cpus_used.to_string(),
                    p.scheme.clone(),
                    timed::rate(p.switches_per_s),
                    mt.ratio(&p.scheme, p.cpus_used)
                        .map(|r| format!("{}×", sig(r)))
                        .unwrap_or_default(),
                    sig(p.us_per_lazy_round_trip),
                    p.bottleneck
                        .as_ref()
                        .map(|(l, u)| format!("{l} {:.0}%", u * 100.0))
                        .unwrap_or_else(|| "-".into()),
                    if p.clean { "ok" } else { "VIOLATION" }.into(),
                ]);
            }
        }
        o.push_str(&t.render());
    }
    print!("{o}");
    Ok(0)
}
