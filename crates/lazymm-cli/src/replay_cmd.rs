//! `lazymm replay`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::PossibleValuesParser;
use clap::Args;
use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayAnomalies, ReplayConfig};
use lazymm_sim::run::Transitions;
use lazymm_sim::RunReport;
use lazymm_trace::{KthreadSource, ParseOptions, TraceSummary};
use serde::Serialize;

use crate::compare::emit_table;
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
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
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

/// `lazymm replay`.
pub fn replay_cmd(a: &ReplayArgs) -> Result<u8> {
    let schemes: Vec<SchemeKind> = if a.schemes.is_empty() {
        SchemeKind::ALL.to_vec()
    } else {
        a.schemes
            .iter()
            .filter_map(|s| SchemeKind::parse(s))
            .collect()
    };
    let archs: Vec<Arch> = a.archs.iter().filter_map(|s| Arch::parse(s)).collect();
    let opts = ParseOptions {
        kthreads: match &a.kthreads {
            Some(p) => KthreadSource::Sidecar(p.clone()),
            None => KthreadSource::Auto,
        },
        strict: a.strict,
        ..ParseOptions::default()
    };
    let mut outs = Vec::new();
    let mut all_runs = Vec::new();
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
                o.schemes.push(r.run.clone());
                all_runs.push(r.run);
            }
        }
        if let Some(o) = out {
            outs.push(o);
        }
    }
    let failed = all_runs
        .iter()
        .any(|r| !r.clean() && r.known_unsafe.is_none());
    if a.json {
        println!("{}", serde_json::to_string_pretty(&outs)?);
    } else {
        for o in &outs {
            let s = &o.summary;
            println!("trace {}", o.trace);
            println!(
                "  {} lines, {} events replayed, CPUs {:?}, {} gaps repaired (inferred switches), {} warnings",
                s.lines,
                o.events,
                s.cpus_seen,
                s.gaps_repaired(),
                s.warning_count()
            );
            println!(
                "  kernel threads from: {:?}; TGIDs available: {}",
                s.kthreads, s.tgids_available
            );
            if s.per_thread_mm {
                println!("  NOTE: no TGID in the trace: every thread is treated as its own mm");
            }
            for w in &s.warning_samples {
                println!("  warning: {w}");
            }
            let an = &o.anomalies;
            println!(
                "  replay work-arounds: exec_without_switch_in {}, exit_without_switch_in {}, switch_in_dead {}, forced_idle {}, identity_changes {}",
                an.exec_without_switch_in, an.exit_without_switch_in, an.switch_in_dead, an.forced_idle, an.identity_changes
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
            emit_table(&o.schemes);
            println!();
        }
    }
    Ok(if failed { 1 } else { 0 })
}
