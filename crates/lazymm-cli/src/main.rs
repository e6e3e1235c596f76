//! `lazymm`: compare lazy TLB mm reference-counting schemes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod compare;
mod table;

/// Lazy TLB mm reference counting: every scheme, counted, checked, compared.
#[derive(Parser, Debug)]
#[command(name = "lazymm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// The main job: every scheme x workload x profile x CPU count, counted
    /// and checked by the ledger (a table, or --json).
    Compare(compare::CompareArgs),
    /// One synthetic configuration (or a --sweep over CPU counts).
    Sim(compare::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Compare(a) => compare::compare(&a),
        Cmd::Sim(a) => compare::sim(&a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lazymm: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
