//! The before/after table behind docs/verification.md ("Verdicts that
//! changed", costs): every scheme's exit cost and ledger on every profile,
//! Linux 6.12 against lazymm's pre-issue-9 model (`KernelOptions::PRE_ISSUE_9`),
//! 64 CPUs, seed 1, 200 rounds. Printed, never asserted:
//!
//! `cargo run --release -p lazymm-sim --example cost_table`

use lazymm::schemes::KernelOptions;
use lazymm::{Arch, SchemeKind, SchemeOptions};
use lazymm_sim::run::{run, RunConfig, RunReport};
use lazymm_sim::workloads::WorkloadKind;

fn one(scheme: SchemeKind, arch: Arch, workload: WorkloadKind, kernel: KernelOptions) -> RunReport {
    run(&RunConfig {
        scheme,
        arch,
        cpus: 64,
        workload,
        seed: 1,
        rounds: 200,
        options: SchemeOptions {
            kernel,
            ..SchemeOptions::default()
        },
    })
    .unwrap_or_else(|e| panic!("{scheme} {arch} {workload}: {e}"))
}

fn main() {
    for workload in [
        WorkloadKind::ExitStorm,
        WorkloadKind::KthreadMix,
        WorkloadKind::Hotplug,
    ] {
        for arch in Arch::ALL {
            for scheme in SchemeKind::ALL {
                let b = one(scheme, arch, workload, KernelOptions::PRE_ISSUE_9);
                let a = one(scheme, arch, workload, KernelOptions::default());
                println!(
                    "{:15} {:17} {:15} scan/exit {:6.1} -> {:6.1}  ipis/exit {:6.2} -> {:6.2}  fences {:7} -> {:7}  ledger {}/{}/{} -> {}/{}/{}",
                    workload.name(),
                    arch.name(),
                    scheme.name(),
                    b.scan_steps_per_exit,
                    a.scan_steps_per_exit,
                    b.ipis_per_exit,
                    a.ipis_per_exit,
                    b.fences,
                    a.fences,
                    b.uaf,
                    b.double_free,
                    b.leaked,
                    a.uaf,
                    a.double_free,
                    a.leaked,
                );
            }
        }
    }
}
