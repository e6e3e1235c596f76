use lazymm::{Arch, SchemeKind};
use lazymm_sim::{run, RunConfig, WorkloadKind};

#[test]
fn smoke_print() {
    for scheme in SchemeKind::ALL {
        for w in WorkloadKind::ALL {
            for arch in Arch::ALL {
                for cpus in [2, 8] {
                    let r = run(&RunConfig {
                        scheme,
                        arch,
                        cpus,
                        workload: w,
                        seed: 1,
                        rounds: 200,
                        options: Default::default(),
                    })
                    .unwrap();
                    println!("{:12} {:20} {:17} {:3} sw={:6} lazy={:5} cntrmw={:5} shared={:5} xfer={:5} exits={:4} flushipi={:4} scan={:4} hand={:4} uaf={} df={} leak={} {:?}",
                        r.scheme, r.workload, r.arch, r.cpus, r.switches, r.lazy_enters, r.count_rmw, r.shared_rmw, r.coherence_transfers, r.exits, r.flush_ipis, r.scan_steps, r.handoffs, r.uaf, r.double_free, r.leaked, r.violations.first());
                }
            }
        }
    }
}
