//! The access-level schedule explorer from the command line.
//!
//! ```text
//! cargo run --release -p lazymm-verify --example explore -- SCHEME [FIRST COUNT]
//! cargo run --release -p lazymm-verify --example explore -- SCHEME replay SEED [EVENTS]
//! ```
//!
//! `SCHEME` is a scheme id, `all` (every scheme not known unsafe), or
//! `lightweight:read-users` (the refuted non-atomic unlazy). A failing seed
//! is printed; `replay` runs it again and prints the last EVENTS accesses.
use lazymm::{SchemeKind, SchemeOptions, UnlazyPlain};
use lazymm_sim::explore::{format_trace, ExploreConfig, Explorer};

fn config(name: &str) -> ExploreConfig {
    match name {
        "lightweight:read-users" => {
            let mut c = ExploreConfig::new(SchemeKind::Lightweight);
            c.options = SchemeOptions {
                unlazy_plain: UnlazyPlain::ReadUsers,
                ..SchemeOptions::default()
            };
            c
        }
        _ => ExploreConfig::new(SchemeKind::parse(name).expect("scheme id")),
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let name = a.first().map(String::as_str).unwrap_or("all");
    if a.get(1).map(String::as_str) == Some("replay") {
        let seed: u64 = a[2].parse().expect("seed");
        let events: usize = a.get(3).and_then(|s| s.parse().ok()).unwrap_or(80);
        let ex = Explorer::new(config(name));
        let o = ex.run_seed(seed, events);
        println!("{name}: {o}\n{}", format_trace(&o.trace));
        return;
    }
    let first: u64 = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let count: u64 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let names: Vec<String> = if name == "all" {
        SchemeKind::ALL
            .into_iter()
            .filter(|k| k.known_unsafe().is_none())
            .map(|k| k.name().to_string())
            .collect()
    } else {
        vec![name.to_string()]
    };
    for n in names {
        let ex = Explorer::new(config(&n));
        let r = ex.explore(first, count);
        match &r.failure {
            Some(f) => println!(
                "{n}: FAILED after {} schedules ({:.1}s): {f}\n  replay: cargo run --release -p lazymm-verify --example explore -- {n} replay {}",
                r.schedules, r.seconds, f.seed
            ),
            None => println!(
                "{n}: {} schedules clean in {:.1}s ({:.0} schedules/s, {:.0} points/schedule)",
                r.schedules,
                r.seconds,
                r.rate(),
                r.steps as f64 / r.schedules as f64
            ),
        }
    }
}
