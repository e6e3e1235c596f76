//! What `compare`, `sim` and `replay` print: the verdict (default), the
//! full table fitted to the terminal, CSV, Markdown or JSON.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use lazymm_sim::RunReport;

use crate::report::format::sig;
use crate::table::Table;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A few lines per profile: the scheme to pick per workload.
    Verdict,
    /// Every run, one row each (fitted to the terminal's width).
    Table,
    /// Every run, comma-separated, every column.
    Csv,
    /// Every run as a Markdown table, every column.
    Markdown,
    /// Everything, machine-readable.
    Json,
}

/// The output options shared by `compare`, `sim` and `replay`.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output format [default: verdict for compare, table for sim and replay].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// The full table, one row per run (same as --format table).
    #[arg(long, conflicts_with_all = ["format", "json"])]
    table: bool,
    /// JSON on stdout (same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

impl OutputArgs {
    /// The format asked for, else `default`.
    pub fn format(&self, default: Format) -> Format {
        if self.json {
            Format::Json
        } else if self.table {
            Format::Table
        } else {
            self.format.unwrap_or(default)
        }
    }
}

/// Fewer exits than this and a per-exit figure means nothing.
pub const MIN_EXITS: u64 = 16;

/// Whether the run's per-exit figures mean anything: enough exits, and
/// exits that are part of the workload (the `ctxswitch-*` workloads only
/// tear their mms down once, after the measured switches).
pub fn per_exit_meaningful(r: &RunReport) -> bool {
    r.exits >= MIN_EXITS && !r.workload.starts_with("ctxswitch-")
}

fn ledger(r: &RunReport) -> String {
    if r.clean() {
        "ok".into()
    } else if r.known_unsafe.is_some() {
        "KNOWN-UNSAFE".into()
    } else {
        "FAIL".into()
    }
}

fn ratio(x: f64) -> String {
    sig(x)
}

type Cell = fn(&RunReport) -> String;

/// The columns, in display order, with the priority at which they are
/// kept when the terminal is narrow (0: always).
const COLUMNS: &[(&str, u8, Cell)] = &[
    ("scheme", 0, |r| r.scheme.clone()),
    ("workload", 0, |r| r.workload.clone()),
    ("arch", 0, |r| r.arch.clone()),
    ("cpus", 0, |r| r.cpus.to_string()),
    ("switches", 5, |r| r.switches.to_string()),
    ("lazy_enters", 7, |r| r.lazy_enters.to_string()),
    ("count_rmw", 6, |r| r.count_rmw.to_string()),
    ("shared_rmw", 9, |r| r.shared_rmw.to_string()),
    ("coherence_transfers", 9, |r| {
        r.coherence_transfers.to_string()
    }),
    ("fences", 8, |r| r.fences.to_string()),
    ("ipis", 8, |r| r.ipis.to_string()),
    ("flush_ipis", 8, |r| r.flush_ipis.to_string()),
    ("scan_steps", 8, |r| r.scan_steps.to_string()),
    ("mm_exits", 5, |r| r.exits.to_string()),
    ("async_mmputs", 10, |r| r.async_mmputs.to_string()),
    ("rcu_delayed_drops", 10, |r| r.rcu_delayed_drops.to_string()),
    ("uaf", 7, |r| r.uaf.to_string()),
    ("double_free", 7, |r| r.double_free.to_string()),
    ("leaked", 7, |r| r.leaked.to_string()),
    ("shared_rmw/sw", 3, |r| ratio(r.shared_rmw_per_switch)),
    ("transfers/sw", 1, |r| ratio(r.transfers_per_switch)),
    ("transfers/exit", 2, |r| {
        if per_exit_meaningful(r) {
            ratio(r.teardown_access.coherence_transfers as f64 / r.exits as f64)
        } else {
            String::new()
        }
    }),
    ("ipis/exit", 4, |r| {
        if per_exit_meaningful(r) {
            ratio(r.ipis_per_exit)
        } else {
            String::new()
        }
    }),
    ("ledger", 0, ledger),
];

/// The width of the terminal on stdout, when stdout is one.
pub fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
    {
        return Some(w);
    }
    let (_, w) = console::Term::stdout().size_checked()?;
    Some(usize::from(w))
}

/// The table of `runs` fitted to `width` columns (all columns when
/// `None`): the least important columns are dropped first, and a line
/// below the table says which.
pub fn render_table(runs: &[RunReport], width: Option<usize>) -> String {
    let mut keep: Vec<bool> = vec![true; COLUMNS.len()];
    let mut hidden: Vec<&str> = Vec::new();
    let build = |keep: &[bool]| {
        let head: Vec<&str> = COLUMNS
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.0)
            .collect();
        let mut t = Table::new(&head);
        for r in runs {
            t.row(
                COLUMNS
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(c, _)| (c.2)(r))
                    .collect(),
            );
        }
        t.render()
    };
    let mut out = build(&keep);
    if let Some(w) = width {
        let mut by_priority: Vec<usize> =
            (0..COLUMNS.len()).filter(|&i| COLUMNS[i].1 > 0).collect();
        // Highest priority number (least important) first; rightmost first
        // among equals.
        by_priority.sort_by(|&a, &b| COLUMNS[b].1.cmp(&COLUMNS[a].1).then(b.cmp(&a)));
        for i in by_priority {
            if out.lines().map(|l| l.chars().count()).max().unwrap_or(0) <= w {
                break;
            }
            keep[i] = false;
            hidden.push(COLUMNS[i].0);
            out = build(&keep);
        }
        if !hidden.is_empty() {
            hidden.reverse();
            let note = format!(
                "({} columns hidden to fit {w} columns: {}; --format csv or markdown has them all)",
                hidden.len(),
                hidden.join(", ")
            );
            // Wrapped to the width too.
            let mut line = String::new();
            for word in note.split(' ') {
                if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > w {
                    out.push_str(&line);
                    out.push('\n');
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Every column, comma-separated, with a header line.
pub fn render_csv(runs: &[RunReport]) -> String {
    let mut o = COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>().join(",");
    o.push('\n');
    for r in runs {
        let cells: Vec<String> = COLUMNS.iter().map(|c| csv_cell(&(c.2)(r))).collect();
        o.push_str(&cells.join(","));
        o.push('\n');
    }
    o
}

/// Every column as a Markdown table (numbers right-aligned).
pub fn render_markdown(runs: &[RunReport]) -> String {
    let mut o = String::from("|");
    for c in COLUMNS {
        o.push_str(&format!(" {} |", c.0));
    }
    o.push_str("\n|");
    for (i, _) in COLUMNS.iter().enumerate() {
        o.push_str(if i < 3 || i + 1 == COLUMNS.len() {
            "---|"
        } else {
            "---:|"
        });
    }
    o.push('\n');
    for r in runs {
        o.push('|');
        for c in COLUMNS {
            o.push_str(&format!(" {} |", (c.2)(r).replace('|', "\\|")));
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs() -> Vec<RunReport> {
        ["refcount", "lightweight"]
            .iter()
            .map(|s| {
                lazymm_sim::run(&lazymm_sim::RunConfig {
                    scheme: lazymm::SchemeKind::parse(s).expect("scheme"),
                    arch: lazymm::Arch::parse("x86").expect("arch"),
                    cpus: 2,
                    workload: lazymm_sim::WorkloadKind::ExitStorm,
                    seed: 1,
                    rounds: 40,
                    options: Default::default(),
                })
                .expect("run")
            })
            .collect()
    }

    #[test]
    fn significant_digits() {
        assert_eq!(sig(0.004), "0.00400");
        assert_eq!(sig(0.0040321), "0.00403");
        assert_eq!(sig(2.314), "2.31");
        assert_eq!(sig(43.21), "43.2");
        assert_eq!(sig(221.4), "221");
        assert_eq!(sig(43516.0), "43516");
        assert_eq!(sig(0.0), "0");
    }

    #[test]
    fn the_table_fits_the_width_dropping_the_least_important_columns() {
        let r = runs();
        let full = render_table(&r, None);
        let wide = full.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(wide > 200, "{full}");
        for w in [80, 100, 120, 160] {
            let t = render_table(&r, Some(w));
            assert!(t.lines().all(|l| l.chars().count() <= w), "{w}: {t}");
            assert!(t.contains("columns hidden to fit"), "{t}");
            let body = t.split("\n(").next().expect("table");
            let head = body.lines().next().expect("header");
            for kept in [
                "scheme",
                "workload",
                "arch",
                "cpus",
                "transfers/sw",
                "ledger",
            ] {
                assert!(head.contains(kept), "{w}: {head}");
            }
        }
        assert_eq!(render_table(&r, Some(wide)), full);
    }
}
