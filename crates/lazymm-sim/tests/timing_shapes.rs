//! The published shapes, reproduced by the timing mode with one parameter
//! set per machine (`machines/*.toml`). Simulated time is deterministic, so
//! these are exact checks of the model, not timing of this machine.
//!
//! Published numbers: `../shared/reference/kernel-history.md` 3.3 (POWER8,
//! Nick Piggin) and 4.2 (EPYC 9654, Mathieu Desnoyers); the ranges are
//! issue 10's.

use lazymm::SchemeKind;
use lazymm_sim::timing::spec::MachineSpec;
use lazymm_sim::timing::wis::{run, WisConfig, WisResult};

fn wis(machine: &str, scheme: SchemeKind, t: usize) -> WisResult {
    let spec = MachineSpec::load(machine).expect("preset parses");
    let r = run(&spec, scheme, &WisConfig::new(t)).expect("runs");
    if scheme.known_unsafe().is_none() {
        assert!(r.clean, "{machine} {scheme:?} -t {t}: ledger not clean");
    }
    r
}

#[test]
fn power8_t768_refcount_and_shootdown() {
    let rc = wis("power8-16s", SchemeKind::Refcount, 768);
    let sd = wis("power8-16s", SchemeKind::Shootdown, 768);
    let (rc_m, sd_m) = (rc.iterations_per_s / 1e6, sd.iterations_per_s / 1e6);
    eprintln!("power8 -t 768: refcount {rc_m:.2} M/s (published 1.83), shootdown {sd_m:.1} M/s (published ~118)");
    assert!((0.9..=3.7).contains(&rc_m), "refcount {rc_m} M/s");
    assert!((60.0..=240.0).contains(&sd_m), "shootdown {sd_m} M/s");
    // The refcount run is bound by one line, mm_count, busy the whole
    // window; shoot-down has no such line.
    assert_eq!(rc.hottest[0].kind, "mm.count");
    assert!(
        rc.bottleneck_utilization > 0.8,
        "{}",
        rc.bottleneck_utilization
    );
    assert!(
        sd.bottleneck_utilization < 0.1,
        "{}",
        sd.bottleneck_utilization
    );
    // Every switch goes through idle: user -> kernel and kernel -> user
    // (lazy reuse) only.
    assert_eq!(rc.transitions.user_to_user_same_mm, 0);
    assert_eq!(rc.cpus_used, 1536);
}

/// The ratio range for POWER8 `-t 768`, shoot-down over refcount:
/// 30-130x (published: ~118 M / 1.83 M = 64x). A queued request pays the
/// mean latency of the requesters queued ahead of it (no locality on
/// POWER8's larx/stcx. and snoop retries: `coherence.local_first = 0`), so
/// mm_count serves one transfer per ~350 ns, the expectation over 16
/// sockets (refcount 1.42 M/s, shoot-down 74.6 M/s: 52.5x); before, a fixed
/// arrival order replayed the lock-step start and put half the transfers
/// inside one socket (29.3x, docs/timing.md).
#[test]
fn power8_t768_ratio() {
    let rc = wis("power8-16s", SchemeKind::Refcount, 768);
    let sd = wis("power8-16s", SchemeKind::Shootdown, 768);
    let ratio = sd.iterations_per_s / rc.iterations_per_s;
    assert!((30.0..=130.0).contains(&ratio), "ratio {ratio}");
    // The transfers come from all over the machine: most two hops away.
    let h = &rc.hottest[0];
    assert_eq!(h.kind, "mm.count");
    assert!(h.by_distance[4] * 2 > h.transfers, "{:?}", h.by_distance);
}

#[test]
fn power8_t1536_every_scheme() {
    for s in SchemeKind::ALL {
        let r = wis("power8-16s", s, 1536);
        let m = r.iterations_per_s / 1e6;
        eprintln!("power8 -t 1536 {}: {m:.1} M/s (published 177)", s.name());
        assert!((90.0..=350.0).contains(&m), "{} {m} M/s", s.name());
        // user -> user only: no lazy transitions in the window.
        assert_eq!(r.transitions.user_to_kernel, 0, "{}", s.name());
    }
}

fn epyc_speedup(t: usize) -> f64 {
    let rc = wis("epyc-9654-2s", SchemeKind::Refcount, t);
    let hz = wis("epyc-9654-2s", SchemeKind::HazardIpi, t);
    100.0 * (hz.iterations_per_s / rc.iterations_per_s - 1.0)
}

/// The parts of Mathieu's curve the model reproduces: no difference up to
/// `-t 12`, none once every CPU has two threads (`-t 384`, `768`), and the
/// peak at `-t 192` (one thread per hardware thread).
#[test]
fn epyc_hazard_ipi_speedup_shape() {
    let ts = [1usize, 2, 3, 6, 12, 24, 48, 96, 192, 384, 768];
    let sp: Vec<f64> = ts.iter().map(|&t| epyc_speedup(t)).collect();
    for (t, s) in ts.iter().zip(&sp) {
        eprintln!("epyc -t {t}: hazard-ipi vs refcount {s:+.1} %");
    }
    for (t, s) in ts.iter().zip(&sp) {
        if *t <= 12 {
            assert!(s.abs() <= 5.0, "-t {t}: {s:+.1} %");
        }
        if *t >= 384 {
            assert!(*s <= 10.0, "-t {t}: {s:+.1} %");
        }
    }
    let peak = ts[sp
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0];
    assert_eq!(peak, 192, "peak at -t {peak}");
    // Rising from -t 12 to the peak, as published (+0.8, 3, 12, 21, 28 %):
    // the refcount line queues before it saturates only because switches
    // and wake-ups vary (`cost_ns.spread`); without it the model's clocks
    // locked into step and refcount fell all at once at -t 96 (+38 %,
    // above the peak).
    let rise: Vec<f64> = ts
        .iter()
        .zip(&sp)
        .filter(|(t, _)| (12..=192).contains(*t))
        .map(|(_, s)| *s)
        .collect();
    assert!(
        rise.windows(2).all(|w| w[0] < w[1]),
        "not rising to the peak: {rise:?}"
    );
}

/// The shape is the spread's existence, not its value: any spread from
/// 0.25 to 0.9 keeps the peak at -t 192 and the rise to it.
#[test]
fn epyc_shape_holds_for_any_spread() {
    for spread in [0.25, 0.9] {
        let mut spec = MachineSpec::load("epyc-9654-2s").expect("preset parses");
        spec.cost_ns.spread.value = spread;
        let sp = |t: usize| {
            let rc = run(&spec, SchemeKind::Refcount, &WisConfig::new(t)).expect("runs");
            let hz = run(&spec, SchemeKind::HazardIpi, &WisConfig::new(t)).expect("runs");
            100.0 * (hz.iterations_per_s / rc.iterations_per_s - 1.0)
        };
        let v: Vec<f64> = [48, 96, 192, 384].iter().map(|&t| sp(t)).collect();
        eprintln!("spread {spread}: -t 48, 96, 192, 384: {v:?}");
        assert!(
            v[0] < v[1] && v[1] < v[2] && v[3] < v[2],
            "spread {spread}: {v:?}"
        );
        assert!(
            (14.0..=56.0).contains(&v[2]),
            "spread {spread}: -t 192 {}",
            v[2]
        );
    }
}

/// Mathieu's peak, +28 % at `-t 192` (issue 10: between +14 % and +56 %).
/// Reproduced with the kernel the preset names (`lru-gen`: Linux 6.12 as
/// distributions build it, `lru_gen_use_mm()`'s store to one line of the
/// mm on every switch to a user task, which caps both kernels): +32 %.
/// Without it the model gives +113 % (docs/timing.md): at 192 pairs the
/// demand on mm_count is twice what the line serves across two sockets.
#[test]
fn epyc_t192_peak_magnitude() {
    let s = epyc_speedup(192);
    assert!((14.0..=56.0).contains(&s), "-t 192: {s:+.1} %");
}
