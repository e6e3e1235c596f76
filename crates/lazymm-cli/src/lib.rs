//! The `lazymm` command line as a library: every subcommand's arguments and
//! its implementation, so that tests and examples call the same functions
//! the binary does (`src/main.rs` only parses the command line and turns the
//! result into an exit status).

use clap::{Parser, Subcommand};

pub mod bench_cmd;
pub mod compare;
pub mod output;
pub mod replay_cmd;
pub mod report;
pub mod table;
pub mod validate_cmd;

/// Lazy TLB mm reference counting: every scheme, counted, checked, compared.
#[derive(Parser, Debug)]
#[command(name = "lazymm", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
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

/// Runs the parsed command; `Ok` carries the process's exit status (0
/// clean, 1 a ledger failure or a failed check), `Err` bad input (the
/// binary prints it with [`error_text`] and exits 2).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.cmd {
        Cmd::Compare(a) => compare::compare(&a),
        Cmd::Sim(a) => compare::sim(&a),
        Cmd::Replay(a) => replay_cmd::replay_cmd(&a),
        Cmd::Capture(a) => lazymm_trace::cli::run_capture(&a).map(exit_u8),
        Cmd::Litmus(a) => lazymm_litmus::cli::run(&a).map(exit_u8),
        Cmd::Bench(a) => bench_cmd::bench(&a),
        Cmd::Timed(a) => validate_cmd::timed(&a),
        Cmd::Validate(a) => validate_cmd::validate(&a),
    }
}

/// The error and its causes, each said once: a cause whose text the
/// message already contains (`path: No such file or directory` over the
/// `io::Error` itself) is not repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    s
}
