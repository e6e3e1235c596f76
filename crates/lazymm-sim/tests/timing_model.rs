//! The timing model's parts: machine files (every preset parses, every
//! error names file:line and cause), the coherence model's serialization,
//! and the exit driver.

use core::sync::atomic::Ordering;

use lazymm::{LineKind, Platform, SchemeKind};
use lazymm_sim::timing::model::{Model, Params};
use lazymm_sim::timing::spec::{preset_names, MachineSpec};
use lazymm_sim::timing::{exit_cost, timed_machine};
use lazymm_sim::CountingPlatform;

#[test]
fn every_preset_parses_with_sources() {
    for name in preset_names() {
        let s = MachineSpec::load(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, name);
        for (k, f) in s.figures() {
            assert!(!f.source.trim().is_empty(), "{name} {k}");
        }
    }
    assert_eq!(MachineSpec::load("power8-16s").unwrap().cpus(), 1536);
    assert_eq!(MachineSpec::load("epyc-9654-2s").unwrap().cpus(), 384);
}

fn power8_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../machines/power8-16s.toml"
    ))
    .unwrap()
}

fn parse_err(text: &str) -> String {
    MachineSpec::parse("m.toml", text).unwrap_err().to_string()
}

#[test]
fn errors_name_file_line_and_cause() {
    let t = power8_text();
    // A figure without a source.
    let bad = t.replacen("rmw_local = { value = 15, source", "rmw_local = 15\n#", 1);
    let line = bad
        .lines()
        .position(|l| l.starts_with("rmw_local = 15"))
        .unwrap()
        + 1;
    assert_eq!(
        parse_err(&bad),
        format!("m.toml:{line}: `cost_ns.rmw_local` has no source: write {{ value = .., source = \"where it comes from\" }}")
    );
    // An unknown key.
    let bad = format!("{t}\nfrobnicate = {{ value = 1, source = \"x\" }}\n");
    let line = bad.lines().count();
    assert_eq!(
        parse_err(&bad),
        format!("m.toml:{line}: unknown key `cost_ns.frobnicate`")
    );
    // Not a number.
    let bad = t.replacen("fence = { value = 25,", "fence = { value = fast,", 1);
    let line = bad
        .lines()
        .position(|l| l.starts_with("fence = { value = fast"))
        .unwrap()
        + 1;
    assert_eq!(
        parse_err(&bad),
        format!("m.toml:{line}: `value` is not a finite number: `fast`")
    );
    // A missing figure.
    let bad: String = t
        .lines()
        .filter(|l| !l.starts_with("wakeup ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        parse_err(&bad),
        "m.toml: missing `cost_ns.wakeup` (a { value = .., source = \"..\" } table)"
    );
    // An unknown arch.
    let bad = t.replacen("arch = \"powerpc-hash\"", "arch = \"vax\"", 1);
    assert!(
        parse_err(&bad).starts_with("m.toml:12: unknown arch `vax`"),
        "{}",
        parse_err(&bad)
    );
    // An unknown kernel option, and a kernel without its source.
    let bad = t.replacen("kernel = \"no-mm-cid\"", "kernel = \"no-such\"", 1);
    assert!(
        parse_err(&bad).starts_with("m.toml:15: `kernel`: unknown kernel option `no-such`"),
        "{}",
        parse_err(&bad)
    );
    let bad: String = t
        .lines()
        .filter(|l| !l.starts_with("kernel_source ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        parse_err(&bad),
        "m.toml:15: `kernel` needs a `kernel_source`"
    );
    // A key given twice.
    let bad = format!("{t}\n[cost_ns]\nfence = {{ value = 1, source = \"x\" }}\n");
    assert!(parse_err(&bad).contains("`cost_ns.fence` given twice (first at line"));
    // Unterminated string, missing file.
    assert_eq!(parse_err("name = \"x\n"), "m.toml:1: unterminated string");
    assert!(MachineSpec::load("/nonexistent/m.toml")
        .unwrap_err()
        .to_string()
        .starts_with("/nonexistent/m.toml: no such preset or file (presets: power8-16s"));
}

#[test]
fn distance_classes() {
    let p = Params::of(&MachineSpec::load("power8-16s").unwrap());
    // cpu = ((socket * dies + die) * cores + core) * smt + thread
    assert_eq!(p.distance(0, 7), 0); // SMT siblings
    assert_eq!(p.distance(0, 8), 1); // same chip
    assert_eq!(p.distance(0, 96), 3); // another socket of the drawer
    assert_eq!(p.distance(0, 4 * 96), 4); // another drawer
    let e = Params::of(&MachineSpec::load("epyc-9654-2s").unwrap());
    assert_eq!(e.distance(0, 1), 0);
    assert_eq!(e.distance(0, 2), 1); // same CCX
    assert_eq!(e.distance(0, 16), 2); // another CCD
    assert_eq!(e.distance(0, 192), 3); // other socket
}

/// A line everyone RMWs at time 0 serves one transfer at a time: the last
/// requester finishes after every transfer, whatever the CPU count.
#[test]
fn a_hot_line_serializes() {
    let spec = MachineSpec::load("epyc-9654-2s").unwrap();
    let p = CountingPlatform::timed(Model::new(Params::of(&spec), 384));
    let l = p.line(LineKind::MmCount);
    let a = p.atomic(0, l);
    // CPU 0 owns the line; CPUs 16, 32, ... 176 (other CCDs of socket 0)
    // each take it once.
    p.fetch_add(0, &a, 1, Ordering::Relaxed);
    let others: Vec<usize> = (1..12).map(|d| 16 * d).collect();
    for &c in &others {
        p.fetch_add(c, &a, 1, Ordering::Relaxed);
    }
    p.model(|m| {
        // 6 ns local RMW, then 11 cross-CCD transfers of 110 ns, each
        // followed by its 6 ns RMW; the k-th waits for the k-1 before it.
        assert_eq!(m.clock[0], 6_000);
        for (k, &c) in others.iter().enumerate() {
            assert_eq!(m.clock[c], (k as u64 + 1) * 110_000 + 6_000, "cpu {c}");
        }
        let h = m.hottest(1);
        assert_eq!(h[0].transfers, 11);
        assert_eq!(h[0].busy_ns, 1210.0);
    });
    // Loads by the owner hit; a load elsewhere fetches, then hits.
    p.load(176, &a, Ordering::Relaxed);
    p.load(1, &a, Ordering::Relaxed);
    p.load(1, &a, Ordering::Relaxed);
    p.fence(1, Ordering::SeqCst);
    p.model(|m| {
        // CPU 1 (same core as 0, another CCD than 176) waits for the line to
        // be free (at 1 210 ns), fetches it (110), hits once (1), fences (10).
        assert_eq!(m.clock[1], 1_210_000 + 110_000 + 1_000 + 1_000 + 10_000);
    });
}

/// A request that queues gets the line from a requester queued ahead of
/// it: on Zen 4 (`coherence.local_first = 2`) from the nearest in its CCX,
/// at that distance; on POWER8 (`0`) from any of them, at their mean.
#[test]
fn a_queued_request_is_served_from_the_queue() {
    let spec = MachineSpec::load("epyc-9654-2s").unwrap();
    let p = CountingPlatform::timed(Model::new(Params::of(&spec), 384));
    let l = p.line(LineKind::MmCount);
    let a = p.atomic(0, l);
    p.fetch_add(0, &a, 1, Ordering::Relaxed);
    // CPU 16 (another CCD) takes it from CPU 0; CPU 17, its SMT sibling,
    // queued behind it, gets it from 16's core: 8 ns, not 110.
    p.fetch_add(16, &a, 1, Ordering::Relaxed);
    p.fetch_add(17, &a, 1, Ordering::Relaxed);
    p.model(|m| {
        assert_eq!(m.clock[16], 110_000 + 6_000);
        assert_eq!(m.clock[17], 110_000 + 8_000 + 6_000);
        assert_eq!(m.hottest(1)[0].by_distance, [1, 0, 1, 0, 0]);
    });

    let spec = MachineSpec::load("power8-16s").unwrap();
    let p = CountingPlatform::timed(Model::new(Params::of(&spec), 1536));
    let l = p.line(LineKind::MmCount);
    let a = p.atomic(0, l);
    p.fetch_add(0, &a, 1, Ordering::Relaxed);
    // CPU 8 (another core of the chip: 60 ns), CPU 384 (another drawer:
    // 400 ns), then CPU 9 (8's SMT sibling) queued behind both: the mean
    // of 10 and 400.
    p.fetch_add(8, &a, 1, Ordering::Relaxed);
    p.fetch_add(384, &a, 1, Ordering::Relaxed);
    p.fetch_add(9, &a, 1, Ordering::Relaxed);
    p.model(|m| {
        assert_eq!(m.clock[8], 60_000 + 15_000);
        // 384 queued behind 8 alone: from 8, two hops.
        assert_eq!(m.clock[384], 60_000 + 400_000 + 15_000);
        assert_eq!(m.clock[9], 60_000 + 400_000 + 205_000 + 15_000);
    });
}

/// The exit driver: shoot-down IPIs every lazy CPU, hazard+IPI scans every
/// CPU and IPIs the true holders one at a time, the lightweight hand-off
/// sends none; all ledgers clean.
#[test]
fn exit_cost_by_scheme() {
    let spec = MachineSpec::load("power8-16s").unwrap();
    let sd = exit_cost(&spec, SchemeKind::Shootdown, 63).unwrap();
    let hz = exit_cost(&spec, SchemeKind::HazardIpi, 63).unwrap();
    let lw = exit_cost(&spec, SchemeKind::Lightweight, 63).unwrap();
    for e in [&sd, &hz, &lw] {
        assert!(e.clean, "{}", e.scheme);
        eprintln!(
            "{} exit {:.1} us, ipis {} flush {} scans {}",
            e.scheme, e.exit_us, e.ipis, e.flush_ipis, e.scan_steps
        );
    }
    // powerpc-radix with shoot-down, as 6.12: the fullmm exit flush is a
    // tlbie broadcast (arch/powerpc/mm/book3s64/radix_tlb.c
    // flush_type_needed), no IPI, so __mmdrop's shoot-down
    // (kernel/fork.c cleanup_lazy_tlbs) IPIs the 63 lazy CPUs itself.
    assert_eq!((sd.ipis, sd.flush_ipis), (63, 0));
    // hazard+IPI: scans all 1536 slots and IPIs the 63 holders one after the
    // other; the exiting CPU (lazy on its own mm since exit_mm) is served by
    // a direct call, not an IPI (kernel/smp.c smp_call_function_many_cond
    // runs the local CPU's function in place).
    assert_eq!((hz.ipis, hz.scan_steps), (63, 1536));
    assert_eq!((lw.ipis, lw.flush_ipis), (0, 0));
    assert!(hz.exit_us > sd.exit_us);
    assert!(sd.exit_us > lw.exit_us);
    let _ = timed_machine(&spec, SchemeKind::Refcount).unwrap();
}

/// The stated extrapolation: whole sockets added, every other figure kept.
#[test]
fn scaled_adds_whole_sockets() {
    let e = MachineSpec::load("epyc-9654-2s").unwrap();
    let big = e.scaled(4096);
    assert_eq!(big.cpus(), 4032); // 21 sockets of 192: the most that fit in 4096
    assert!(big.topology.sockets.source.starts_with("EXTRAPOLATION"));
    assert_eq!(big.latency_ns, e.latency_ns);
    let p = Params::of(&big);
    assert_eq!(p.distance(0, 192), 3); // the original pair of sockets: one hop
    assert_eq!(p.distance(0, 2 * 192), 4); // an added socket: two hops
    assert_eq!(e.scaled(384), e);
    assert_eq!(e.scaled(100).cpus(), 192);
}

/// PeterZ's adversarial exit under load: every ledger clean; shoot-down's
/// IPIs make its exits the slowest. On x86 as 6.12 (issue 9: the mask bit is
/// cleared before the CR3 write) the hand-off's fix-up visits every online
/// CPU, as hazard+IPI's scan does, so the two cost the same order.
#[test]
fn exit_walk_by_scheme() {
    use lazymm_sim::timing::exit_walk::run;
    let spec = MachineSpec::load("xeon-8480-2s").unwrap();
    let lw = run(&spec, SchemeKind::Lightweight, 4, 200_000.0).unwrap();
    let hz = run(&spec, SchemeKind::HazardIpi, 4, 200_000.0).unwrap();
    let sd = run(&spec, SchemeKind::Shootdown, 4, 200_000.0).unwrap();
    for r in [&lw, &hz, &sd] {
        assert!(r.clean, "{}", r.scheme);
        assert!(r.exits_per_s > 0.0, "{}", r.scheme);
    }
    assert!(sd.mean_exit_us > hz.mean_exit_us);
    assert!(sd.mean_exit_us > lw.mean_exit_us);
    assert!(sd.exits_per_s < lw.exits_per_s);
    assert!(lw.mean_exit_us < 2.0 * hz.mean_exit_us && hz.mean_exit_us < 2.0 * lw.mean_exit_us);
}

/// The round-based workloads in simulated time run exactly what the
/// untimed run does (same counts, same ledger), and the time is the model's:
/// shoot-down's exit-storm pays its broadcast IPIs per exit, refcount none.
#[test]
fn rounds_timed_counts_match_untimed() {
    use lazymm_sim::run::{run, RunConfig};
    use lazymm_sim::timing::rounds;
    use lazymm_sim::workloads::WorkloadKind;
    let spec = MachineSpec::load("epyc-9654-2s").unwrap();
    for w in [WorkloadKind::ExitStorm, WorkloadKind::ForkExecExit] {
        for s in [SchemeKind::Refcount, SchemeKind::Shootdown] {
            let t = rounds::run(&spec, s, w, 30, 1).unwrap();
            let u = run(&RunConfig {
                scheme: s,
                arch: spec.arch(),
                cpus: spec.cpus(),
                workload: w,
                seed: 1,
                rounds: 30,
                options: Default::default(),
            })
            .unwrap();
            assert_eq!(t.counts.transitions, u.transitions, "{w} {s:?}");
            assert_eq!(t.counts.exits, u.exits, "{w} {s:?}");
            assert_eq!(t.counts.ipis + t.counts.flush_ipis, u.ipis + u.flush_ipis);
            assert!(t.counts.clean() && u.clean());
            assert!(t.simulated_us > 0.0 && t.scheme_ns_per_switch > 0.0);
        }
    }
    let rc = rounds::run(&spec, SchemeKind::Refcount, WorkloadKind::ExitStorm, 30, 1).unwrap();
    let sd = rounds::run(&spec, SchemeKind::Shootdown, WorkloadKind::ExitStorm, 30, 1).unwrap();
    assert!(sd.scheme_ns_per_switch > 10.0 * rc.scheme_ns_per_switch);
}

/// A trace replayed in simulated time: the same exact counts as the untimed
/// replay; the machinery's time is charged per switch and exit event.
#[test]
fn trace_timed_counts_match_untimed() {
    use lazymm_sim::replay::{replay, scan, ReplayConfig};
    use lazymm_sim::timing::trace;
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../traces/build.perf.txt.gz"
    ));
    let opts = lazymm_trace::ParseOptions::default();
    let summary = scan(path, &opts).unwrap();
    let spec = MachineSpec::load("epyc-9654-2s").unwrap();
    for s in [SchemeKind::Refcount, SchemeKind::Lightweight] {
        let t = trace::run(&spec, s, path, &opts, &summary).unwrap();
        let u = replay(
            path,
            &opts,
            &summary,
            &ReplayConfig {
                scheme: s,
                arch: spec.arch(),
                // The kernel the preset names (epyc: `lru-gen`).
                options: lazymm::SchemeOptions {
                    kernel: lazymm::schemes::KernelOptions::parse(&spec.kernel).unwrap(),
                    ..Default::default()
                },
            },
        )
        .unwrap();
        assert_eq!(t.replay.transitions, u.transitions);
        assert_eq!(t.replay.run.exits, u.run.exits);
        assert_eq!(t.replay.run.access, u.run.access);
        assert!(t.switch_events > 0 && t.ns_per_switch > 0.0, "{s:?}");
    }
    // A trace wider than the machine is an error naming both.
    // (POWER8 cut to one CPU; the build trace ran on two.)
    let one = power8_text()
        .replace("sockets = { value = 16", "sockets = { value = 1")
        .replace(
            "sockets_per_node = { value = 4",
            "sockets_per_node = { value = 1",
        )
        .replace(
            "cores_per_die = { value = 12",
            "cores_per_die = { value = 1",
        )
        .replace("smt = { value = 8", "smt = { value = 1");
    let small = MachineSpec::parse("one.toml", &one).unwrap();
    assert_eq!(small.cpus(), 1);
    let e = trace::run(&small, SchemeKind::Refcount, path, &opts, &summary).unwrap_err();
    assert!(
        e.contains("build.perf.txt.gz") && e.contains("1 CPUs"),
        "{e}"
    );
}

/// The optional `[coherence]` figures: their defaults when absent (so no
/// published preset changes), and an error naming file, line and rule when
/// out of range.
#[test]
fn coherence_figures_default_and_range() {
    let t = power8_text();
    let s = MachineSpec::parse("m.toml", &t).unwrap();
    assert_eq!(
        (s.coherence.steal.value, s.coherence.hold.value),
        (1.0, 0.5)
    );
    let with = |extra: &str| t.replacen("[coherence]\n", &format!("[coherence]\n{extra}\n"), 1);
    let line = t.lines().position(|l| l == "[coherence]").unwrap() + 2;
    let ok =
        MachineSpec::parse("m.toml", &with("steal = { value = 2.5, source = \"x\" }")).unwrap();
    assert_eq!(ok.coherence.steal.value, 2.5);
    assert_eq!(
        parse_err(&with("steal = { value = 0, source = \"x\" }")),
        format!("m.toml:{line}: `coherence.steal` = 0 must be above 0 and at most 100 (a multiple of the distance's latency)")
    );
    assert_eq!(
        parse_err(&with("hold = { value = 9, source = \"x\" }")),
        format!(
            "m.toml:{line}: `coherence.hold` = 9 must be at most 8 (a fraction of the transfer)"
        )
    );
    let bad = t.replacen(
        "local_first = { value = 0,",
        "local_first = { value = 4,",
        1,
    );
    let line = bad
        .lines()
        .position(|l| l.starts_with("local_first = { value = 4"))
        .unwrap()
        + 1;
    assert_eq!(
        parse_err(&bad),
        format!("m.toml:{line}: `coherence.local_first` = 4 must be 0 (none), 1 (core), 2 (die) or 3 (socket)")
    );
}
