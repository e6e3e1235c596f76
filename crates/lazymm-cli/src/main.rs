//! `lazymm`: compare lazy TLB mm reference-counting schemes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_cmd;
mod compare;
mod replay_cmd;
mod report;
mod table;
mod validate_cmd;

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
    /// Replay captured perf scheduler traces through every scheme.
    Replay(replay_cmd::ReplayArgs),
    /// Record a scheduler trace of CMD with perf, ready for `replay`.
    Capture(lazymm_trace::cli::CaptureArgs),
    /// Decide kernel-format litmus tests under the Linux-kernel memory model.
    Litmus(lazymm_litmus::cli::LitmusArgs),
    /// Real OS threads as CPUs: every scheme as a ratio to refcount in one
    /// run, peer-crate comparison and this machine's calibration.
    Bench(bench_cmd::BenchArgs),
    /// Simulated time: will-it-scale context_switch1_threads -t N on a
    /// machine preset or file (--machine), every scheme.
    Timed(validate_cmd::TimedArgs),
    /// The timing model against the published numbers and this machine's
    /// real threads, side by side, with the parameters used.
    Validate(validate_cmd::ValidateArgs),
}

fn exit_u8(c: i32) -> u8 {
    u8::try_from(c).unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Compare(a) => compare::compare(&a),
        Cmd::Sim(a) => compare::sim(&a),
        Cmd::Replay(a) => replay_cmd::replay_cmd(&a),
        Cmd::Capture(a) => lazymm_trace::cli::run_capture(&a).map(exit_u8),
        Cmd::Litmus(a) => lazymm_litmus::cli::run(&a).map(exit_u8),
        Cmd::Bench(a) => bench_cmd::bench(&a),
        Cmd::Timed(a) => validate_cmd::timed(&a),
        Cmd::Validate(a) => validate_cmd::validate(&a),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lazymm: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
