//! `lazymm litmus FILE|DIR...`: command-line front end.

use crate::{agreement, check_files, collect_files, FileReport, Options, Status};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Check litmus tests under the Linux-kernel memory model.
#[derive(clap::Args, Debug, Clone)]
pub struct LitmusArgs {
    /// Litmus files, or directories searched recursively for `*.litmus`.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print one JSON document (`{"reports": [...], "summary": {...}}`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Time limit per test, in seconds (0 = none).
    #[arg(long, default_value = "10")]
    pub timeout: f64,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Print only a one-line summary per file and the totals.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Totals over a run.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    pub checked: usize,
    pub with_result: usize,
    pub agreeing: usize,
    pub disagreeing: usize,
    pub unsupported: usize,
    pub errors: usize,
    pub timeouts: usize,
}

/// Summarise reports.
pub fn summarize(reports: &[FileReport]) -> Summary {
    let mut s = Summary {
        files: reports.len(),
        ..Default::default()
    };
    for r in reports {
        match r.status {
            Status::Ok => s.checked += 1,
            Status::Unsupported => s.unsupported += 1,
            Status::Error => s.errors += 1,
            Status::Timeout => s.timeouts += 1,
        }
        match r.agrees {
            Some(true) => {
                s.with_result += 1;
                s.agreeing += 1
            }
            Some(false) => {
                s.with_result += 1;
                s.disagreeing += 1
            }
            None => {}
        }
    }
    s
}

/// herd7-style text for one report.
pub fn render(r: &FileReport, quiet: bool) -> String {
    let mut s = String::new();
    let f = r.file.display();
    match (&r.status, &r.outcome) {
        (Status::Ok, Some(o)) => {
            let cmp = match (&r.expected, r.agrees) {
                (Some(e), Some(true)) => format!(
                    " (Result: {}{} agrees)",
                    e.verdict,
                    if e.datarace { " DATARACE" } else { "" }
                ),
                (Some(e), Some(false)) => format!(
                    " (Result: {}{} DISAGREES)",
                    e.verdict,
                    if e.datarace { " DATARACE" } else { "" }
                ),
                (Some(e), None) => format!(" (Result: {} not compared)", e.verdict),
                (None, _) => String::new(),
            };
            if quiet {
                s.push_str(&format!(
                    "{f}: {} {} {} {}{}{}\n",
                    o.verdict,
                    o.positive,
                    o.negative,
                    o.state_count,
                    if o.data_race { " DATARACE" } else { "" },
                    cmp
                ));
                return s;
            }
            s.push_str(&format!(
                "Test {} {}\n",
                o.name,
                if matches!(o.quantifier, crate::parse::Quantifier::Forall) {
                    "Required"
                } else {
                    "Allowed"
                }
            ));
            s.push_str(&format!("States {}\n", o.state_count));
            for st in &o.states {
                s.push_str(st);
                s.push('\n');
            }
            if o.state_count > o.states.len() {
                s.push_str(&format!(
                    "... ({} more states not listed)\n",
                    o.state_count - o.states.len()
                ));
            }
            s.push_str(if o.validated { "Ok\n" } else { "No\n" });
            s.push_str(&format!(
                "Witnesses\nPositive: {} Negative: {}\n",
                o.positive, o.negative
            ));
            if o.data_race {
                s.push_str("Flag data-race\n");
            }
            let q = match o.quantifier {
                crate::parse::Quantifier::Exists => "exists",
                crate::parse::Quantifier::NotExists => "~exists",
                crate::parse::Quantifier::Forall => "forall",
            };
            s.push_str(&format!("Condition {q} {}\n", o.condition));
            s.push_str(&format!(
                "Observation {} {} {} {}\n",
                o.name, o.verdict, o.positive, o.negative
            ));
            s.push_str(&format!(
                "File {f}: {}{} in {:.3}s\n\n",
                o.verdict, cmp, r.seconds
            ));
        }
        _ => {
            s.push_str(&format!(
                "{}{}\n",
                match r.status {
                    Status::Error => String::new(),
                    _ => format!("{f}: "),
                },
                printable(r.message.as_deref().unwrap_or("error"))
            ));
            if !quiet {
                s.push('\n');
            }
        }
    }
    s
}

/// A message as a terminal may show it: control characters and bytes that
/// were not UTF-8 (read as U+FFFD) escaped, at most 160 characters (a
/// binary file's first "line" can be kilobytes).
pub fn printable(msg: &str) -> String {
    let mut out = String::new();
    for (n, c) in msg.chars().enumerate() {
        if n == 160 {
            out.push_str("...");
            break;
        }
        match c {
            '\u{fffd}' => out.push_str("\\x??"),
            c if c.is_control() && c != '\n' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Run the `litmus` subcommand.  Returns the process exit code: 0 when every
/// annotated verdict agrees (or there is none), 1 on a disagreement, 2 on bad
/// input (syntax error, unreadable file, timeout).
pub fn run(args: &LitmusArgs) -> anyhow::Result<i32> {
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        anyhow::bail!("no .litmus files found in the given paths");
    }
    let opts = Options {
        timeout: if args.timeout > 0.0 && args.timeout.is_finite() {
            Some(Duration::from_secs_f64(args.timeout))
        } else {
            None
        },
    };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let reports = check_files(&files, &opts, jobs);
    let sum = summarize(&reports);
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({ "reports": reports, "summary": sum });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        // A file that could not be read or parsed is an error: said on
        // stderr, once, never echoed raw; verdicts (and `unsupported`, a
        // verdict about the checker) go to stdout.
        let mut err = std::io::stderr().lock();
        for r in &reports {
            let text = render(r, args.quiet);
            if matches!(r.status, Status::Error) {
                err.write_all(text.as_bytes())?;
            } else {
                out.write_all(text.as_bytes())?;
            }
        }
        if reports.len() > 1 || args.quiet {
            writeln!(
                out,
                "Summary: {} files, {} checked, {} with a verdict to compare: {} agree, {} disagree; {} unsupported, {} errors, {} timeouts",
                sum.files, sum.checked, sum.with_result, sum.agreeing, sum.disagreeing, sum.unsupported, sum.errors, sum.timeouts
            )?;
        }
    }
    let _ = agreement;
    Ok(if sum.errors > 0 || sum.timeouts > 0 {
        2
    } else if sum.disagreeing > 0 {
        1
    } else {
        0
    })
}
