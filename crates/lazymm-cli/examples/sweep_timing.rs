//! How long the report's CPU-count sweep takes (`lazymm compare --report`'s
//! `sweep_configs`: every scheme and profile, 2 to 4096 CPUs, seed 1), run
//! by the same `compare::run_all` on every core. Timing is printed, never
//! asserted:
//!
//! `cargo run --release -p lazymm-cli --example sweep_timing`

use std::time::Instant;

use lazymm::{Arch, SchemeKind};
use lazymm_cli::compare::run_all;
use lazymm_cli::report::sweep_configs;

fn main() -> anyhow::Result<()> {
    let t0 = Instant::now();
    let cfgs = sweep_configs(1, &SchemeKind::ALL, &Arch::ALL, 4096, None);
    let n = cfgs.len();
    let switches: u64 = run_all(cfgs, None, false)?.iter().map(|r| r.switches).sum();
    println!(
        "sweep: {n} runs, {switches} switches in {:.2} s wall",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
