//! Stand-alone front end: `cargo run --release -p lazymm-litmus --example litmus -- FILE|DIR...`
//! (the same as `lazymm litmus ...`).
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: lazymm_litmus::cli::LitmusArgs,
}

fn main() {
    let cli = Cli::parse();
    match lazymm_litmus::cli::run(&cli.args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
