//! `lazymm replay`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::PossibleValuesParser;
use clap::Args;
use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayAnomalies, ReplayConfig, TeardownRecord};
use lazymm_sim::run::Transitions;
use lazymm_sim::RunReport;
use lazymm_trace::{KthreadOrigin, KthreadSource, ParseOptions, TraceSummary};
use serde::Serialize;

use crate::compare::table_text;
use crate::output::{self, Format, OutputArgs};
use crate::table::Table;

/// Arguments of `lazymm replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Traces: `perf script -F comm,pid,tid,cpu,time,event,trace` output,
    /// gzip or plain (see traces/FORMAT.md).
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Schemes (comma-separated); default: all.
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(SchemeKind::ALL.iter().map(|s| s.name())))]
    schemes: Vec<String>,
    /// Architecture profiles (comma-separated).
    #[arg(long = "arch", value_delimiter = ',', default_value = "x86", value_parser = PossibleValuesParser::new(Arch::ALL.iter().map(|s| s.name())))]
    archs: Vec<String>,
    /// Kernel-thread sidecar (default: NAME.kthreads.txt beside the trace,
    /// else a name heuristic, said in the output).
    #[arg(long, value_name = "FILE")]
    kthreads: Option<PathBuf>,
    /// Treat unparsable lines and unknown events as errors instead of
    /// counted warnings.
    #[arg(long)]
    strict: bool,
    /// Accept a trace with more skipped lines than events (each still
    /// counted as a warning).
    #[arg(long)]
    lenient: bool,
    /// Write every teardown of every replay to FILE, one JSON object a line
    /// (trace, scheme, arch, the trace line and task that caused it, its
    /// CPU, self takes and hand-offs): for an exit-by-exit check against a
    /// kernel (kernel/compare_teardowns.py, docs/kernel.md).
    #[arg(long, value_name = "FILE")]
    teardowns: Option<PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

/// Where the kernel-thread set came from, in words.
pub fn kthreads_origin(k: &KthreadOrigin) -> String {
    match k {
        KthreadOrigin::Sidecar(p) => format!("the sidecar {}", p.display()),
        KthreadOrigin::Heuristic => "their names (no sidecar)".into(),
        KthreadOrigin::IdleOnly => "none: only the idle task (TID 0)".into(),
    }
}

#[derive(Serialize)]
struct TraceOut {
    trace: String,
    summary: TraceSummary,
    transitions: Transitions,
    per_cpu: BTreeMap<u32, Transitions>,
    anomalies: ReplayAnomalies,
    events: u64,
    schemes: Vec<RunReport>,
}

/// An output file that is deleted unless [`PartialFile::finish`] wrote it.
struct PartialFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl PartialFile {
    fn create(path: &std::path::Path) -> Result<Self> {
        let file =
            std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
        })
    }

    fn finish(mut self, data: &[u8]) -> Result<()> {
        use std::io::Write;
        let mut f = self.file.take().expect("finished once");
        f.write_all(data)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One line of `--teardowns`.
#[derive(Serialize)]
struct TeardownLine<'a> {
    trace: &'a str,
    scheme: &'a str,
    arch: &'a str,
    #[serde(flatten)]
    teardown: &'a TeardownRecord,
}

/// `lazymm replay`.
pub fn replay_cmd(a: &ReplayArgs) -> Result<u8> {
    let fmt = a.out.format(Format::Table);
    let schemes: Vec<SchemeKind> = if a.schemes.is_empty() {
        SchemeKind::ALL.to_vec()
    } else {
        a.schemes
            .iter()
            .filter_map(|s| SchemeKind::parse(s))
            .collect()
    };
    let schemes = crate::compare::parse_all(
        &schemes
            .iter()
            .map(|s| s.name().to_string())
            .collect::<Vec<_>>(),
        &SchemeKind::ALL,
        SchemeKind::parse,
    );
    let archs = crate::compare::parse_all(&a.archs, &Arch::ALL, Arch::parse);
    let opts = ParseOptions {
        kthreads: match &a.kthreads {
            Some(p) => KthreadSource::Sidecar(p.clone()),
            None => KthreadSource::Auto,
        },
        strict: a.strict,
        lenient: a.lenient,
        ..ParseOptions::default()
    };
    // Created before any work (an unwritable path is said at once) and
    // removed again if the replays fail.
    let mut teardown_file = match &a.teardowns {
        Some(p) => Some(PartialFile::create(p)?),
        None => None,
    };
    let mut outs = Vec::new();
    let mut all_runs = Vec::new();
    let mut teardown_lines = String::new();
    for path in &a.traces {
        let summary = scan(path, &opts)?;
        let mut out: Option<TraceOut> = None;
        for &arch in &archs {
            for &scheme in &schemes {
                let r = replay(
                    path,
                    &opts,
                    &summary,
                    &ReplayConfig {
                        scheme,
                        arch,
                        options: Default::default(),
                    },
                )?;
                let o = out.get_or_insert_with(|| TraceOut {
                    trace: r.trace.clone(),
                    summary: r.summary.clone(),
                    transitions: r.transitions,
                    per_cpu: r.per_cpu.clone(),
                    anomalies: r.anomalies.clone(),
                    events: r.events,
                    schemes: Vec::new(),
                });
                if a.teardowns.is_some() {
                    for t in &r.teardowns {
                        teardown_lines.push_str(&serde_json::to_string(&TeardownLine {
                            trace: &r.trace,
                            scheme: scheme.name(),
                            arch: arch.name(),
                            teardown: t,
                        })?);
                        teardown_lines.push('\n');
                    }
                }
                o.schemes.push(r.run.clone());
                all_runs.push(r.run);
            }
        }
        if let Some(o) = out {
            outs.push(o);
        }
    }
    if let Some(f) = teardown_file.take() {
        f.finish(teardown_lines.as_bytes())?;
    }
    let failed = all_runs
        .iter()
        .any(|r| !r.clean() && r.known_unsafe.is_none());
    if fmt == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outs)?);
    } else if fmt == Format::Csv {
        print!("{}", output::render_csv(&all_runs));
    } else if fmt == Format::Markdown {
        print!("{}", output::render_markdown(&all_runs));
    } else {
        for o in &outs {
            let s = &o.summary;
            println!("trace {}", o.trace);
            println!(
                "  {} lines, {} events replayed, CPUs {}, {} gaps repaired (inferred switches), {} warnings",
                s.lines,
                o.events,
                s.cpus_seen
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                s.gaps_repaired(),
                s.warning_count()
            );
            println!("  kernel threads from: {}", kthreads_origin(&s.kthreads));
            if s.per_thread_mm {
                println!("  TGIDs: none in the trace: every thread is treated as its own mm");
            } else if !s.tgids_available {
                println!("  TGIDs: some lines lack the `pid/` TGID prefix (counted as warnings)");
            } else {
                println!("  TGIDs: on every line");
            }
            for w in &s.warning_samples {
                println!("  warning: {w}");
            }
            let an = &o.anomalies;
            println!(
                "  replay work-arounds: exec_without_switch_in {}, exit_without_switch_in {}, switch_in_dead {}, forced_idle {}, identity_changes {}, exit_mm_not_running {}, exit_put_not_running {}",
                an.exec_without_switch_in, an.exit_without_switch_in, an.switch_in_dead, an.forced_idle, an.identity_changes, an.exit_mm_not_running, an.exit_put_not_running
            );
            let mut t = Table::new(&[
                "cpu",
                "user_to_user_diff_mm",
                "user_to_user_same_mm",
                "user_to_kernel",
                "kernel_to_kernel",
                "kernel_to_user_lazy_reuse",
                "kernel_to_user_diff_mm",
                "kernel_to_user_lazy_unknown",
                "switches",
            ]);
            let row = |name: String, x: &Transitions| {
                vec![
                    name,
                    x.user_to_user_diff_mm.to_string(),
                    x.user_to_user_same_mm.to_string(),
                    x.user_to_kernel.to_string(),
                    x.kernel_to_kernel.to_string(),
                    x.kernel_to_user_lazy_reuse.to_string(),
                    x.kernel_to_user_diff_mm.to_string(),
                    x.kernel_to_user_lazy_unknown.to_string(),
                    x.switches.to_string(),
                ]
            };
            for (c, x) in &o.per_cpu {
                t.row(row(format!("cpu{c}"), x));
            }
            t.row(row("total".into(), &o.transitions));
            println!();
            print!("{}", t.render());
            println!();
            print!("{}", table_text(&o.schemes));
            println!();
        }
    }
    Ok(if failed { 1 } else { 0 })
}
