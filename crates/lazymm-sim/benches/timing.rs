//! Speed of the timing mode (issue 10's performance item): the 1536-CPU
//! POWER8 point, every scheme, will-it-scale `-t 768` and `-t 1536` plus one
//! exit with 1535 CPUs lazy, on one core; and the simulator's own speed in
//! simulated accesses per second.
//!
//! `taskset -c 0 cargo bench -p lazymm-sim --bench timing` prints, per run,
//! wall seconds and simulated accesses per wall second, then the whole
//! point's wall and CPU time (CPU time from `/proc/self/stat`, so a shared
//! machine shows as wall > CPU) against the 60 s target. Timing is
//! reported, never asserted.

use std::time::Instant;

use lazymm::SchemeKind;
use lazymm_sim::timing::exit_cost;
use lazymm_sim::timing::spec::MachineSpec;
use lazymm_sim::timing::wis::{run, WisConfig};

/// This process's user + system CPU seconds (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name: state is field 3,
    // utime 14 and stime 15 (1-based), in clock ticks (USER_HZ = 100).
    let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let spec = MachineSpec::load("power8-16s").expect("preset");
    println!(
        "timing mode, {} ({} CPUs), one core: will-it-scale -t 768 and -t 1536, one exit, every scheme",
        spec.name,
        spec.cpus()
    );
    let (w0, c0) = (Instant::now(), cpu_seconds());
    let mut acc = 0u64;
    for t in [768usize, 1536] {
        for s in SchemeKind::ALL {
            let r = run(&spec, s, &WisConfig::new(t)).expect("run");
            acc += r.accesses;
            println!(
                "  -t {t:4} {:15} {:>9.2} M it/s  {:>8} accesses  {:6.3} s wall  {:7.2} M simulated accesses/s",
                s.name(),
                r.iterations_per_s / 1e6,
                r.accesses,
                r.wall_s,
                r.accesses_per_wall_s / 1e6
            );
        }
    }
    for s in SchemeKind::ALL {
        let t = Instant::now();
        let e = exit_cost(&spec, s, spec.cpus() - 1).expect("exit");
        println!(
            "  exit      {:15} {:>9.1} us simulated  {:6.3} s wall",
            s.name(),
            e.exit_us,
            t.elapsed().as_secs_f64()
        );
    }
    let (w, c) = (w0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "  whole point: {w:.2} s wall, {c:.2} s CPU (target: under 60 s on one core); {:.2} M simulated accesses per CPU second in the event loops",
        acc as f64 / c.max(1e-9) / 1e6
    );
}
