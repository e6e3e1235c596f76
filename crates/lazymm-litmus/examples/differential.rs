//! Differential run of lazymm against herd7 over any files or directories:
//!
//! ```text
//! cargo run --release -p lazymm-litmus --example differential -- [OPTIONS] DIR|FILE...
//! ```
//!
//! Needs the `herd7-lkmm` wrapper of `shared/tools/herd7/build.sh`
//! (`$HERD7_LKMM`, default `$HOME/.cache/herd7/bin/herd7-lkmm`).  Prints, per
//! argument, the table agree / verdict / race / states / refused / unsupported
//! / timeouts, the CPU time of each checker on the same files and their
//! ratio, then every file on which they do not agree.  Exit code 1 if they
//! disagree on some file (verdict, data-race flag or state set).
use clap::Parser;
use lazymm_litmus::herd::{self, Diff, DiffOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    /// Litmus files, or directories searched recursively for `*.litmus`;
    /// one table row per argument.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Time limit per test for each checker, seconds.
    #[arg(long, default_value = "30")]
    timeout: u64,
    /// Files checked in parallel (each checker runs on one core per file).
    #[arg(long, default_value = "1")]
    jobs: usize,
    /// Cache herd7's results in this directory (keyed by file content).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Only the files whose herd7 result is already in the cache (e.g. to
    /// tabulate a run that was stopped); the others are counted as skipped.
    #[arg(long, requires = "cache")]
    cached_only: bool,
    /// herd7-lkmm wrapper (default: $HERD7_LKMM or ~/.cache/herd7/bin/herd7-lkmm).
    #[arg(long)]
    herd: Option<PathBuf>,
    /// One JSON document with every row and the summaries.
    #[arg(long)]
    json: bool,
    /// Only run herd7 (one file after the other, filling `--cache`) and
    /// print one line per file; no lazymm, no table.  For long herd7 runs
    /// in the background (`--timeout 600`).
    #[arg(long, requires = "cache")]
    herd_only: bool,
}

fn main() {
    let cli = Cli::parse();
    let Some(herd_bin) = cli.herd.clone().or_else(herd::herd_path) else {
        eprintln!(
            "error: herd7 not found: build it with shared/tools/herd7/build.sh, or set HERD7_LKMM"
        );
        std::process::exit(2);
    };
    let opts = DiffOptions {
        herd: herd_bin,
        timeout: Duration::from_secs(cli.timeout),
        jobs: cli.jobs,
        cache: cli.cache.clone(),
    };
    if cli.herd_only {
        for p in &cli.paths {
            let files = lazymm_litmus::collect_files(std::slice::from_ref(p)).unwrap_or_else(|e| {
                eprintln!("error: {}: {e}", p.display());
                std::process::exit(2);
            });
            for f in files {
                let h = herd::cached_herd(&f, &opts);
                println!(
                    "{:?} {:?} {:.1}s CPU {:.1}s wall {}: {}",
                    h.status,
                    h.verdict,
                    h.cpu_seconds,
                    h.wall_seconds,
                    f.display(),
                    h.message
                );
            }
        }
        return;
    }
    let mut all = Vec::new();
    let mut sums = Vec::new();
    for p in &cli.paths {
        let files = match lazymm_litmus::collect_files(std::slice::from_ref(p)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                std::process::exit(2);
            }
        };
        let files: Vec<PathBuf> = if cli.cached_only {
            let n = files.len();
            let kept: Vec<PathBuf> = files
                .into_iter()
                .filter(|f| herd::is_cached(f, &opts))
                .collect();
            eprintln!(
                "{}: {} of {n} files have a cached herd7 result; the other {} are skipped",
                p.display(),
                kept.len(),
                n - kept.len()
            );
            kept
        } else {
            files
        };
        let start = std::time::Instant::now();
        let rows = herd::differential(&files, &opts);
        let s = herd::diff_summary(&rows);
        if !cli.json {
            eprintln!(
                "{}: {} files in {:.0}s wall",
                p.display(),
                files.len(),
                start.elapsed().as_secs_f64()
            );
        }
        sums.push((p.clone(), s));
        all.extend(rows);
    }
    let disagree = all.iter().any(|r| r.diff.is_disagreement());
    if cli.json {
        let doc = serde_json::json!({
            "rows": all,
            "summaries": sums.iter().map(|(p, s)| serde_json::json!({"path": p, "summary": s})).collect::<Vec<_>>(),
        });
        println!("{doc}");
    } else {
        println!("| corpus | files | agree | verdict | race | states | both refuse | herd7 refuses | lazymm unsupported | lazymm errors | herd7 timeouts | lazymm timeouts | herd7 CPU s | lazymm CPU s | ratio | ratio, both finished |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (p, s) in &sums {
            println!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.2} | {:.0}x | {:.0}x |",
                p.display(),
                s.files,
                s.agree,
                s.verdict,
                s.race,
                s.states,
                s.both_refuse,
                s.herd_refuses,
                s.lazymm_unsupported,
                s.lazymm_errors,
                s.herd_timeouts,
                s.lazymm_timeouts,
                s.herd_cpu_seconds,
                s.lazymm_cpu_seconds,
                s.ratio,
                s.ratio_both_finished
            );
        }
        for r in all.iter().filter(|r| r.diff != Diff::Agree) {
            let l = match &r.lazymm.outcome {
                Some(o) => format!(
                    "{}{} ({} states)",
                    o.verdict,
                    if o.data_race { " DATARACE" } else { "" },
                    o.state_count
                ),
                None => r.lazymm.message.clone().unwrap_or_default(),
            };
            let h = match &r.herd.verdict {
                Some(v) => format!(
                    "{v}{} ({} states)",
                    if r.herd.data_race { " DATARACE" } else { "" },
                    r.herd.states.len()
                ),
                None => r.herd.message.clone(),
            };
            println!("{:?}: {}: herd7 {h}; lazymm {l}", r.diff, r.file.display());
            if r.diff == Diff::States {
                let ls = herd::lazymm_states(&r.lazymm);
                for s in r.herd.states.difference(&ls) {
                    println!("    herd7 only:  {s}");
                }
                for s in ls.difference(&r.herd.states) {
                    println!("    lazymm only: {s}");
                }
            }
        }
    }
    std::process::exit(if disagree { 1 } else { 0 });
}
