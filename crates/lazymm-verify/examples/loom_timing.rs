//! Times every loom scenario of every scheme (the numbers in
//! docs/verification.md). `cargo run --release -p lazymm-verify --example
//! loom_timing [scheme]`; honours `LOOM_MAX_PREEMPTIONS`.
use lazymm::{SchemeKind, SchemeOptions};
use lazymm_verify::{scenarios, verdict};

fn main() {
    let only = std::env::args().nth(1);
    let total = std::time::Instant::now();
    for kind in SchemeKind::ALL {
        if only.as_deref().is_some_and(|o| o != kind.name()) {
            continue;
        }
        for arch in scenarios::ARCHES {
            for s in scenarios::for_scheme(kind, arch) {
                let v = verdict(s, kind, SchemeOptions::default());
                println!(
                    "{:12} {:8} {:50} {:>8} execs {:>7.2}s {}",
                    kind.name(),
                    arch.name(),
                    s.name,
                    v.executions,
                    v.seconds,
                    if v.failure.is_some() { "FAIL" } else { "ok" }
                );
            }
        }
    }
    println!("total {:.1}s", total.elapsed().as_secs_f64());
}
