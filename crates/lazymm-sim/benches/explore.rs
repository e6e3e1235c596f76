//! Throughput of the access-level schedule explorer.
//!
//! `cargo bench -p lazymm-sim --bench explore` prints, for every scheme not
//! known unsafe, schedules per second and scheduling points per second on
//! one thread (seeds 1 000 000 onward, the long run's), then the rate of
//! all of them together over every core (`explore_parallel`), and the
//! projected wall time of the long run (a million schedules per scheme).
//! `LAZYMM_BENCH_SCHEDULES` sets the schedules per scheme (default 2 000).
//! Timing is reported, never asserted; a failing schedule is reported too.

use std::time::Instant;

use lazymm::schemes::{SchemeKind, SchemeOptions};
use lazymm_sim::explore::{explore_parallel, ExploreConfig, ExplorePlatform, Explorer};

fn main() {
    let n: u64 = std::env::var("LAZYMM_BENCH_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let first = 1_000_000;
    let kinds: Vec<SchemeKind> = SchemeKind::ALL
        .into_iter()
        .filter(|&k| {
            k.known_unsafe().is_none()
                && lazymm::schemes::build::<ExplorePlatform>(k, &SchemeOptions::default()).is_ok()
        })
        .collect();
    println!("explorer, one thread, {n} schedules per scheme (seeds {first}..)");
    for &kind in &kinds {
        let r = Explorer::new(ExploreConfig::new(kind)).explore(first, n);
        println!(
            "  {:16} {:7.0} schedules/s {:6.2} M points/s ({:.0} points/schedule){}",
            kind.name(),
            r.rate(),
            r.steps as f64 / r.seconds / 1e6,
            r.steps as f64 / r.schedules as f64,
            r.failure
                .map_or(String::new(), |f| format!(", FAILED: {f}"))
        );
    }
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let cfgs: Vec<ExploreConfig> = kinds.iter().map(|&k| ExploreConfig::new(k)).collect();
    let t = Instant::now();
    let reports = explore_parallel(&cfgs, first, n, cores, 500, &|_, _| {});
    let s = t.elapsed().as_secs_f64();
    let all: u64 = reports.iter().map(|r| r.schedules).sum();
    let rate = all as f64 / s;
    println!(
        "all {} schemes over {cores} threads: {all} schedules in {s:.1} s = {rate:.0} schedules/s; \
         long run (10^6 per scheme) projected {:.0} min",
        kinds.len(),
        1e6 * kinds.len() as f64 / rate / 60.0
    );
}
