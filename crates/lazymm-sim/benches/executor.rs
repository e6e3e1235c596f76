//! Throughput of the deterministic executor and of trace replay (one core).
//!
//! `cargo bench -p lazymm-sim --bench executor` prints simulated context
//! switches per second and replayed trace events per second. Timing is
//! reported, never asserted.

use std::path::PathBuf;
use std::time::Instant;

use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayConfig};
use lazymm_sim::{run, RunConfig, WorkloadKind};
use lazymm_trace::ParseOptions;

fn main() {
    println!("deterministic executor, one core");
    for scheme in SchemeKind::ALL {
        for (workload, cpus, rounds) in [
            (WorkloadKind::CtxswitchThreads, 64, 200_000),
            (WorkloadKind::CtxswitchThreads, 1024, 10_000),
            (WorkloadKind::KthreadMix, 64, 20_000),
        ] {
            let cfg = RunConfig {
                scheme,
                arch: Arch::X86,
                cpus,
                workload,
                seed: 1,
                rounds,
                options: Default::default(),
            };
            let t = Instant::now();
            let r = run(&cfg).expect("run");
            let s = t.elapsed().as_secs_f64();
            println!(
                "  {:12} {:18} {:5} CPUs: {:>10} switches in {:.3} s = {:6.1} M switches/s (ledger clean: {})",
                scheme.name(),
                workload.name(),
                cpus,
                r.switches,
                s,
                r.switches as f64 / s / 1e6,
                r.clean()
            );
        }
    }
    println!("trace replay, one core (parse + replay, per scheme)");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces");
    let opts = ParseOptions::default();
    for name in ["hackbench-proc", "hackbench-thread", "sched-pipe", "build"] {
        let path = dir.join(format!("{name}.perf.txt.gz"));
        let summary = scan(&path, &opts).expect("scan");
        for scheme in SchemeKind::ALL {
            let t = Instant::now();
            let mut events = 0;
            let reps = 10;
            for _ in 0..reps {
                let r = replay(
                    &path,
                    &opts,
                    &summary,
                    &ReplayConfig {
                        scheme,
                        arch: Arch::X86,
                        options: Default::default(),
                    },
                )
                .expect("replay");
                events += r.events;
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "  {name:16} {:12}: {:6.2} M events/s",
                scheme.name(),
                events as f64 / s / 1e6
            );
        }
    }
}
