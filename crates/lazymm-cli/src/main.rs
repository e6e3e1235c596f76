//! `lazymm`: compare lazy TLB mm reference-counting schemes. The commands
//! live in the `lazymm_cli` library (`src/lib.rs`); this binary parses the
//! command line, runs it and turns the result into an exit status.

use std::process::ExitCode;

use clap::Parser;
use lazymm_cli::{error_text, run, Cli};

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
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lazymm: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}
