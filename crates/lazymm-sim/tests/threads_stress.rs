//! Real OS threads as CPUs: a short stress per scheme, ledger checked.

use lazymm::{Arch, SchemeKind};
use lazymm_sim::threads::{run_threads, ThreadsConfig};

fn steps() -> u64 {
    std::env::var("LAZYMM_STRESS_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn stress_every_scheme_on_real_threads() {
    for scheme in SchemeKind::ALL {
        if scheme.known_unsafe().is_some() {
            continue;
        }
        for (arch, cpus) in [(Arch::X86, 3), (Arch::Arm64, 4), (Arch::PowerpcHash, 2)] {
            let cfg = ThreadsConfig::stress(scheme, arch, cpus, steps());
            let r = run_threads(&cfg).unwrap();
            let l = r.stats.ledger;
            let sw = r.stats.cpu.switches();
            eprintln!(
                "{scheme} {arch} x{cpus}: {sw} switches, {} teardowns, {:?}",
                r.stats.cpu.teardowns, r.elapsed
            );
            assert!(sw >= 100_000, "{scheme}: only {sw} switches");
            assert!(
                r.stats.cpu.teardowns >= 10,
                "{scheme}: only {} exits",
                r.stats.cpu.teardowns
            );
            assert_eq!(
                (l.uaf, l.double_free, l.leaked),
                (0, 0, 0),
                "{scheme} {arch}"
            );
            assert_eq!(l.allocs, l.frees, "{scheme} {arch}");
        }
    }
}

/// Issue 9's omitted flush paths on real threads: one step in 8 a
/// `munmap` or an `mprotect` (x86 should_flush_tlb, powerpc radix
/// flush_type_needed), every safe scheme, the ledger's stale-TLB check
/// included.
#[test]
fn stress_munmap_and_mprotect_flushes_on_real_threads() {
    for scheme in SchemeKind::ALL {
        if scheme.known_unsafe().is_some() {
            continue;
        }
        for (arch, cpus) in [(Arch::X86, 3), (Arch::PowerpcRadix, 3)] {
            let mut cfg = ThreadsConfig::stress(scheme, arch, cpus, steps() / 4);
            cfg.flush_one_in = 8;
            let r = run_threads(&cfg).unwrap();
            let l = r.stats.ledger;
            assert!(r.stats.cpu.tlb_flushes > 0, "{scheme} {arch}");
            assert_eq!(
                (l.uaf, l.double_free, l.leaked),
                (0, 0, 0),
                "{scheme} {arch}: {:?}",
                r.stats
            );
        }
    }
}

#[test]
fn stress_the_mockup_shows_only_leaks() {
    let r = run_threads(&ThreadsConfig::stress(
        SchemeKind::Mockup,
        Arch::Arm64,
        3,
        steps() / 2,
    ))
    .unwrap();
    let l = r.stats.ledger;
    assert_eq!((l.uaf, l.double_free), (0, 0));
}
