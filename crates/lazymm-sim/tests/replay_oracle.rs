//! Replay through the runtime reproduces the reference oracle's exec-aware
//! transition counts exactly, for every scheme, and the ledger stays clean.

use std::path::PathBuf;

use lazymm::{Arch, SchemeKind};
use lazymm_sim::replay::{replay, scan, ReplayConfig};
use lazymm_sim::run::Transitions;
use lazymm_trace::ParseOptions;

fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces")
}

const TRACES: [&str; 4] = ["hackbench-proc", "hackbench-thread", "sched-pipe", "build"];

fn expected(v: &serde_json::Value) -> Transitions {
    let g = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("oracle field {k}"));
    Transitions {
        user_to_user_diff_mm: g("user_to_user_diff_mm"),
        user_to_user_same_mm: g("user_to_user_same_mm"),
        user_to_kernel: g("user_to_kernel"),
        kernel_to_kernel: g("kernel_to_kernel"),
        kernel_to_user_lazy_reuse: g("kernel_to_user_lazy_reuse"),
        kernel_to_user_diff_mm: g("kernel_to_user_diff_mm"),
        kernel_to_user_lazy_unknown: g("kernel_to_user_lazy_unknown"),
        switches: g("switches"),
    }
}

#[test]
fn replay_matches_the_oracle_for_every_scheme() {
    let opts = ParseOptions::default();
    for name in TRACES {
        let path = traces_dir().join(format!("{name}.perf.txt.gz"));
        let oracle: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(traces_dir().join(format!("{name}.oracle.json"))).unwrap(),
        )
        .unwrap();
        let ea = &oracle["exec_aware"];
        let summary = scan(&path, &opts).unwrap();
        for scheme in SchemeKind::ALL {
            for arch in [Arch::X86, Arch::Arm64, Arch::PowerpcHash] {
                let r = replay(
                    &path,
                    &opts,
                    &summary,
                    &ReplayConfig {
                        scheme,
                        arch,
                        options: Default::default(),
                    },
                )
                .unwrap();
                assert_eq!(
                    r.transitions,
                    expected(&ea["total"]),
                    "{name} {scheme} {arch}: total"
                );
                for (cpu, t) in &r.per_cpu {
                    assert_eq!(
                        *t,
                        expected(&ea["per_cpu"][cpu.to_string()]),
                        "{name} {scheme} {arch}: cpu {cpu}"
                    );
                }
                if scheme.known_unsafe().is_none() {
                    assert!(
                        r.run.clean(),
                        "{name} {scheme} {arch}: {:?} {:?}",
                        r.run.violations,
                        r.anomalies
                    );
                }
                assert!(r.run.exits > 0, "{name}: mms torn down");
            }
        }
    }
}
