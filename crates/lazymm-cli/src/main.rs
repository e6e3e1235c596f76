//! `lazymm`: compare lazy TLB mm reference-counting schemes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_cmd;
mod compare;
mod output;
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

/// The error and its causes, each said once: a cause whose text the
/// message already contains (`path: No such file or directory` over the
/// `io::Error` itself) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
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

/// Output into a closed pipe (`lazymm compare | head`) ends the process
/// quietly, as it does for Unix tools, instead of a panic in `println!`.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread exists;
    // restoring the default disposition of SIGPIPE has no other effect on
    // this process's memory.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
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
            eprintln!("lazymm: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}
