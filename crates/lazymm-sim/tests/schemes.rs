//! The schemes of issue 4 (`lightweight-v2`, `hazard-handoff`, `shootdown`,
//! `hazard-ipi`) and the RCU pair (`rcu`, `rcu-lazy-aware`): exact counts on
//! small directed runs, one directed test per path that changes
//! `current->mm`, the ledger over every workload and profile, and the
//! failures of the unsafe variants, asserted.

use lazymm::schemes::lightweight_v2::LightweightV2;
use lazymm::schemes::{KernelOptions, SchemeOptions};
use lazymm::{Arch, LedgerCounts, Machine, MachineConfig, MmRef, Next, SchemeKind, ViolationKind};
use lazymm_sim::{run, AccessCounts, CountingPlatform, RunConfig, WorkloadKind};

type M = Machine<CountingPlatform>;

/// The new schemes that must be safe.
const SAFE: [SchemeKind; 5] = [
    SchemeKind::LightweightV2,
    SchemeKind::HazardHandoff,
    SchemeKind::Shootdown,
    SchemeKind::HazardIpi,
    SchemeKind::RcuLazyAware,
];

fn machine(cpus: usize, arch: Arch, scheme: SchemeKind) -> M {
    machine_with(cpus, arch, scheme, KernelOptions::default())
}

fn machine_with(cpus: usize, arch: Arch, scheme: SchemeKind, kernel: KernelOptions) -> M {
    let mut cfg = MachineConfig::new(cpus, arch, scheme);
    cfg.options.kernel = kernel;
    Machine::new(CountingPlatform::new(), cfg).unwrap()
}

fn delta(m: &M, f: impl FnOnce()) -> AccessCounts {
    let before = m.p.counts();
    f();
    m.p.counts().since(&before)
}

/// A process with one thread per CPU, each CPU running its thread.
fn spread_process(m: &M) -> MmRef {
    let mm = m.mm_alloc(0).unwrap();
    for _ in 1..m.ncpus {
        m.mmget(0, mm);
    }
    for c in 0..m.ncpus {
        m.switch_to(c, Next::User(mm));
    }
    mm
}

/// CPU `c` ran a thread of `mm` that blocked there and was then dropped
/// (it exited elsewhere): `c` is left lazily borrowing `mm`, no reference.
fn make_lazy(m: &M, c: usize, mm: MmRef) {
    m.mmget(c, mm);
    m.switch_to(c, Next::User(mm));
    m.switch_to(c, Next::Kernel);
    m.mmput(c, mm);
}

/// The current user task of `c` exits (`exit_mm`, then its last switch).
fn exit_current(m: &M, c: usize) {
    m.exit_mm(c);
    m.switch_to(c, Next::Kernel);
}

fn quiesce_all(m: &M) -> LedgerCounts {
    for c in 0..m.ncpus {
        m.quiesce_cpu(c);
    }
    m.finish().ledger
}

fn assert_clean(c: &LedgerCounts, what: &str) {
    assert_eq!((c.uaf, c.double_free, c.leaked), (0, 0, 0), "{what}: {c:?}");
    assert_eq!(c.allocs, c.frees, "{what}");
}

// ----------------------------------------------------------------------
// the switch path: no count traffic, no transfers, exact accesses
// ----------------------------------------------------------------------

/// Per lazy round trip (user -> idle -> same user) once warm: (stores,
/// loads, full fences). No RMW at all.
fn round_trip_accesses(s: SchemeKind) -> (u64, u64, u64) {
    match s {
        // publish + release-store unlazy; the mailbox check at each of the
        // two finish_task_switch.
        SchemeKind::LightweightV2 | SchemeKind::HazardHandoff => (2, 2, 0),
        // mmgrab_lazy_tlb / mmdrop_lazy_tlb are a full fence each.
        SchemeKind::Shootdown => (0, 0, 2),
        // smp_mb + store to publish, smp_mb + store NULL to clear.
        SchemeKind::HazardIpi => (2, 0, 2),
        // one QS report per context switch.
        SchemeKind::Rcu => (2, 0, 0),
        // lazy flag set on grab, cleared on drop.
        SchemeKind::RcuLazyAware => (2, 0, 0),
        _ => unreachable!(),
    }
}

#[test]
fn no_count_rmw_and_no_transfer_per_lazy_round_trip_once_warm() {
    for scheme in SAFE.into_iter().chain([SchemeKind::Rcu]) {
        for arch in Arch::ALL {
            let m = machine(4, arch, scheme);
            let mm = spread_process(&m);
            for c in 0..4 {
                m.switch_to(c, Next::Kernel);
                m.switch_to(c, Next::User(mm));
            }
            let d = delta(&m, || {
                for _ in 0..50 {
                    for c in 0..4 {
                        m.switch_to(c, Next::Kernel);
                        m.switch_to(c, Next::User(mm));
                    }
                }
            });
            let what = format!("{scheme} {arch}");
            assert_eq!(d.count_rmws(), 0, "{what}: no RMW on any count");
            assert_eq!(d.rmws, 0, "{what}: no RMW at all");
            assert_eq!(d.coherence_transfers, 0, "{what}: no coherence transfer");
            assert_eq!(d.shared_rmw, 0, "{what}");
            assert_eq!(d.remote_loads, 0, "{what}");
            let (stores, loads, fences) = round_trip_accesses(scheme);
            // x86: enter_lazy_tlb and switch_mm_irqs_off write
            // cpu_tlbstate_shared.is_lazy (read by should_flush_tlb).
            let rt_stores = if arch.is_x86() { 2 } else { 0 };
            assert_eq!(d.stores, 200 * (stores + rt_stores), "{what}: stores");
            // The runtime's own, every scheme (issue 9, items 8 and 12): on
            // x86 (arch/x86/mm/tlb.c switch_mm_irqs_off) the same-mm path
            // reads mm_cpumask (the WARN_ON_ONCE test), then smp_mb() and
            // the tlb_gen read on the lazy reuse; arm64 and powerpc return
            // at once when prev == next. Plus kernel/sched/sched.h
            // switch_mm_cid() (every scheme, issue 9 item 8):
            // smp_mb__after_mmgrab() on user -> kernel (a no-op on x86,
            // smp_mb() on arm64 and powerpc) and smp_mb() on kernel -> user.
            let (rt_loads, rt_fences) = if arch.is_x86() { (2, 2) } else { (0, 2) };
            assert_eq!(d.loads, 200 * (loads + rt_loads), "{what}: loads");
            assert_eq!(d.fences, 200 * (fences + rt_fences), "{what}: full fences");
            for c in 0..4 {
                exit_current(&m, c);
            }
            let l = quiesce_all(&m);
            if scheme != SchemeKind::Rcu {
                assert_clean(&l, &what);
            }
        }
    }
}

/// `count` RMWs of a whole `ctxswitch-threads` run on 8 CPUs: only its one
/// exit's, whatever the number of switches.
fn ctxswitch_count_rmws(scheme: SchemeKind, arch: Arch) -> u64 {
    let _ = arch;
    match scheme {
        // The users' final drop only: nothing is counted for lazy CPUs.
        SchemeKind::Shootdown | SchemeKind::HazardIpi | SchemeKind::RcuLazyAware => 1,
        // The 8 CPUs are lazy on the mm at the exit, on every profile: since
        // issue 9 x86 too (6.12's flush_tlb_func moves only the MMU and
        // leaves the lazy borrow, so the fix-up hands a unit to each): 8
        // grabs, 8 drops, 1.
        SchemeKind::LightweightV2 => 8 + 8 + 1,
        // One batched add, 8 drops, 1.
        SchemeKind::HazardHandoff | SchemeKind::Lightweight => 1 + 8 + 1,
        // rcu: the users' final drop; the free waits for a grace period.
        SchemeKind::Rcu => 1,
        _ => unreachable!(),
    }
}

#[test]
fn ctxswitch_threads_count_traffic_is_exit_only() {
    let all = SAFE
        .into_iter()
        .chain([SchemeKind::Lightweight, SchemeKind::Rcu]);
    for scheme in all {
        for arch in Arch::ALL {
            let go = |rounds| {
                run(&RunConfig {
                    scheme,
                    arch,
                    cpus: 8,
                    workload: WorkloadKind::CtxswitchThreads,
                    seed: 1,
                    rounds,
                    options: SchemeOptions::default(),
                })
                .unwrap()
            };
            let (short, long) = (go(400), go(800));
            for r in [&short, &long] {
                if scheme != SchemeKind::Rcu {
                    assert!(r.clean(), "{scheme} {arch}: {:?}", r.violations);
                }
                assert_eq!(r.exits, 1, "{scheme} {arch}: one process");
                assert_eq!(
                    r.count_rmw,
                    ctxswitch_count_rmws(scheme, arch),
                    "{scheme} {arch}"
                );
            }
            assert!(long.lazy_enters >= short.lazy_enters + 1000);
            // Twice the round trips, not one more coherence transfer or
            // shared RMW: none per lazy round trip.
            assert_eq!(
                long.coherence_transfers, short.coherence_transfers,
                "{scheme} {arch}"
            );
            assert_eq!(long.shared_rmw, short.shared_rmw, "{scheme} {arch}");
        }
    }
    // refcount, for contrast: two count RMWs per lazy round trip.
    let r = run(&RunConfig {
        scheme: SchemeKind::Refcount,
        arch: Arch::X86,
        cpus: 8,
        workload: WorkloadKind::CtxswitchThreads,
        seed: 1,
        rounds: 400,
        options: SchemeOptions::default(),
    })
    .unwrap();
    assert!(r.count_rmw >= 2 * r.lazy_enters - 16, "{}", r.count_rmw);
}

// ----------------------------------------------------------------------
// exit: who is visited, who is IPI'd
// ----------------------------------------------------------------------

/// What one exit cost, counted from just before `exit_mm` to just after
/// the exiting task's last switch.
#[derive(Debug, PartialEq, Eq)]
struct ExitCost {
    ipis: u64,
    flush_ipis: u64,
    scan_steps: u64,
    handoffs: u64,
    freed_at_exit: bool,
}

/// PeterZ's adversarial shape on 8 CPUs: process A walks CPUs 1..=7,
/// leaving each lazy on A; CPUs 1..=3 then run process B (so they no longer
/// borrow A, but their `mm_cpumask(A)` bits stay where the profile keeps
/// them); A's last thread exits on CPU 0.
fn walked_exit(arch: Arch, scheme: SchemeKind) -> (ExitCost, LedgerCounts) {
    walked_exit_with(arch, scheme, KernelOptions::default())
}

fn walked_exit_with(
    arch: Arch,
    scheme: SchemeKind,
    kernel: KernelOptions,
) -> (ExitCost, LedgerCounts) {
    let m = machine_with(8, arch, scheme, kernel);
    let a = m.mm_alloc(0).unwrap();
    for c in 1..8 {
        m.switch_to(c, Next::User(a));
        m.switch_to(c, Next::Kernel);
    }
    let b = m.mm_alloc(1).unwrap();
    m.mmget(1, b);
    m.mmget(1, b);
    for c in 1..4 {
        m.switch_to(c, Next::User(b));
    }
    m.switch_to(0, Next::User(a));
    let before = m.stats();
    exit_current(&m, 0);
    let after = m.stats();
    let cost = ExitCost {
        ipis: after.cpu.ipis - before.cpu.ipis,
        flush_ipis: after.cpu.flush_ipis - before.cpu.flush_ipis,
        scan_steps: after.cpu.scan_steps - before.cpu.scan_steps,
        handoffs: after.cpu.handoffs - before.cpu.handoffs,
        freed_at_exit: after.ledger.frees == before.ledger.frees + 1,
    };
    for c in 1..4 {
        exit_current(&m, c);
    }
    (cost, quiesce_all(&m))
}

#[test]
fn exit_of_a_walked_process_on_powerpc_hash() {
    let e = |ipis, scan_steps, handoffs, freed_at_exit| ExitCost {
        ipis,
        flush_ipis: 0,
        scan_steps,
        handoffs,
        freed_at_exit,
    };
    let cases = [
        // Every CPU the process walked is in the (never trimmed) mask: all
        // 8 are shot, CPU 0 by a direct call (kernel/smp.c
        // smp_call_function_many_cond, SCF_RUN_LOCAL): 7 IPIs (8 before
        // issue 9, item 5).
        (SchemeKind::Shootdown, e(7, 0, 0, true)),
        // Only the CPUs whose hazard slot holds A: 4..=7, and CPU 0 (lazy on
        // its own mm since exit_mm) by a direct call. All 8 slots are read.
        (SchemeKind::HazardIpi, e(4, 8, 0, true)),
        // No IPI: the scan visits the 8 mask bits and hands a unit to the
        // CPUs still lazy; A is freed when the last of them unlazies.
        // lightweight ends the exiting CPU 0's own borrow first (the kernel
        // patch's self take in lazy_tlb_handoff(), kernel/patches/0001), so
        // it hands units to 4..=7 only; v2 and hazard-handoff, as their
        // authors wrote them, hand CPU 0 a unit too (5).
        (SchemeKind::Lightweight, e(0, 8, 4, false)),
        (SchemeKind::LightweightV2, e(0, 8, 5, false)),
        (SchemeKind::HazardHandoff, e(0, 8, 5, false)),
        // The grace period waits for the 5 lazy CPUs: the free is deferred;
        // the snapshot reads the 8 CPUs' words.
        (SchemeKind::RcuLazyAware, e(0, 8, 0, false)),
    ];
    for (scheme, want) in cases {
        let (got, l) = walked_exit(Arch::PowerpcHash, scheme);
        assert_eq!(got, want, "{scheme}");
        assert_clean(&l, scheme.name());
    }
}

#[test]
fn exit_of_a_walked_process_on_x86_pre_issue_9_leaves_nothing_to_the_scheme() {
    // lazymm's pre-issue-9 x86 (Andy's 2022 unlazy_mm_irqs_off in the flush
    // handler, the mask bit cleared after CR3): kept as an option.
    // The page-table-freeing flush IPIs the 4 CPUs lazy on A (4..=7; CPUs
    // 1..=3 cleared their bit when they switched to B) and the exiting CPU
    // unlazies in its local flush: no scheme has anything left to do.
    // hazard-ipi still reads all 8 slots (it never uses the mask);
    // rcu-lazy-aware's snapshot reads the 8 words and frees at once.
    for (scheme, scan_steps) in [
        (SchemeKind::Shootdown, 0),
        (SchemeKind::HazardIpi, 8),
        (SchemeKind::Lightweight, 0),
        (SchemeKind::LightweightV2, 0),
        (SchemeKind::HazardHandoff, 0),
        (SchemeKind::RcuLazyAware, 8),
    ] {
        // (x86-lazy-cpumask under this option keeps the unlazied CPUs' bits:
        // see exit_of_a_walked_process_on_x86_6_12.)
        let (got, l) = walked_exit_with(Arch::X86, scheme, KernelOptions::PRE_ISSUE_9);
        assert_eq!(
            got,
            ExitCost {
                ipis: 0,
                flush_ipis: 4,
                scan_steps,
                handoffs: 0,
                freed_at_exit: true
            },
            "{scheme} x86"
        );
        assert_clean(&l, scheme.name());
    }
}

#[test]
fn exit_of_a_walked_process_on_x86_6_12() {
    // Linux 6.12 (issue 9, items 1, 4, 5): arch/x86/mm/tlb.c flush_tlb_func
    // switches the 4 lazy CPUs' MMU to init_mm and leaves active_mm and the
    // lazy borrow; their mask bits go with the switch (x86) or stay (lazy
    // cpumask, post-6.12 209954cbc7d0, which clears only CPUs that enter the
    // handler with another mm loaded: 1..=3). So the schemes have work again:
    // on x86 the fix-up visits all 8 online CPUs (the mask no longer covers
    // the borrowers) and hands the 5 lazy ones (0, 4..=7) a unit;
    // shoot-down IPIs every online CPU but itself (7; kernel/smp.c runs the
    // local one as a direct call); with the lazy cpumask the mask (0, 4..=7)
    // would suffice here, but not once a munmap flush ran (kernel_model.rs
    // flush_paths::lazy_cpumask_mask_scan_misses_a_cpu_after_munmap): it
    // too visits / shoots every online CPU (scan 5 -> 8, shoot-down IPIs
    // 4 -> 7). hazard-ipi IPIs the 4 remote slot holders; rcu-lazy-aware's
    // grace period waits for them.
    let e = |ipis, flush_ipis, scan_steps, handoffs, freed_at_exit| ExitCost {
        ipis,
        flush_ipis,
        scan_steps,
        handoffs,
        freed_at_exit,
    };
    let cases = [
        (
            SchemeKind::LightweightV2,
            e(0, 4, 8, 5, false),
            e(0, 7, 8, 5, false),
        ),
        (
            SchemeKind::HazardHandoff,
            e(0, 4, 8, 5, false),
            e(0, 7, 8, 5, false),
        ),
        (
            SchemeKind::Shootdown,
            e(7, 4, 0, 0, true),
            e(7, 7, 0, 0, true),
        ),
        (
            SchemeKind::HazardIpi,
            e(4, 4, 8, 0, true),
            e(4, 7, 8, 0, true),
        ),
        (
            SchemeKind::RcuLazyAware,
            e(0, 4, 8, 0, false),
            e(0, 7, 8, 0, false),
        ),
    ];
    for (scheme, x86, lazy_mask) in cases {
        for (arch, want) in [(Arch::X86, x86), (Arch::X86LazyCpumask, lazy_mask)] {
            let (got, l) = walked_exit(arch, scheme);
            assert_eq!(got, want, "{scheme} {arch}");
            assert_clean(&l, scheme.name());
        }
    }
}

#[test]
fn shootdown_on_arm64_shoots_every_online_cpu_and_radix_piggybacks() {
    // arm64 never tracks mm_cpumask: lazymm's default is every online
    // CPU, whoever is lazy (lazymm's extension: 6.12 has no such default,
    // issue 9 item 10), 7 IPIs and CPU 0's direct call (item 5).
    let (got, l) = walked_exit(Arch::Arm64, SchemeKind::Shootdown);
    assert_eq!((got.ipis, got.flush_ipis, got.freed_at_exit), (7, 0, true));
    assert_clean(&l, "arm64");
    // powerpc radix, 6.12: exit_mmap's flush is fullmm, a tlbie broadcast
    // (arch/powerpc/mm/book3s64/radix_tlb.c flush_type_needed), so
    // cleanup_lazy_tlbs shoots the mask: 7 IPIs.
    let (got, l) = walked_exit(Arch::PowerpcRadix, SchemeKind::Shootdown);
    assert_eq!((got.ipis, got.flush_ipis, got.freed_at_exit), (7, 0, true));
    assert_clean(&l, "radix");
    // With exit_flush_lazy_tlbs at exit (option radix-exit-ipi): it IPIs
    // the mask but the caller (smp_call_function_many: 7 remote) and clears
    // it; __mmdrop then shoots only CPU 0 itself, a direct call.
    let k = KernelOptions {
        radix_exit_lazy_ipi: true,
        ..KernelOptions::default()
    };
    let (got, l) = walked_exit_with(Arch::PowerpcRadix, SchemeKind::Shootdown, k);
    assert_eq!((got.ipis, got.flush_ipis, got.freed_at_exit), (0, 7, true));
    assert_clean(&l, "radix, exit IPIs");
}

#[test]
fn batched_grab_of_hazard_handoff_against_v2_per_cpu_grab() {
    // arm64, 8 CPUs all lazy on A, A exits on CPU 0: count RMWs over the
    // exit and the unlazies. v2: 8 mmgrab + 8 owner drops + the users'
    // final drop; hazard-handoff: one add of 8 (all used) + 8 drops + 1.
    for (scheme, expect) in [
        (SchemeKind::LightweightV2, 8 + 8 + 1),
        (SchemeKind::HazardHandoff, 1 + 8 + 1),
    ] {
        let m = machine(8, Arch::Arm64, scheme);
        let a = m.mm_alloc(0).unwrap();
        for c in 1..8 {
            m.switch_to(c, Next::User(a));
            m.switch_to(c, Next::Kernel);
        }
        m.switch_to(0, Next::User(a));
        let d = delta(&m, || {
            exit_current(&m, 0);
            for c in 0..8 {
                m.quiesce_cpu(c);
            }
        });
        assert_eq!(d.count_rmws(), expect, "{scheme}");
        let l = m.finish().ledger;
        assert_eq!(l.frees, 1);
        assert_clean(&l, scheme.name());
    }
}

// ----------------------------------------------------------------------
// every path that changes current->mm, per scheme
// ----------------------------------------------------------------------

/// Checks the ledger mid-run: nothing freed under a CPU so far.
fn no_violation(m: &M, what: &str) {
    let c = m.ledger.counts();
    assert_eq!(
        (c.uaf, c.double_free),
        (0, 0),
        "{what}: {:?}",
        m.ledger.violations()
    );
}

/// The word a CPU's first / second slot holds (a counted load by CPU 0).
fn slots(m: &M, cpu: usize) -> (u64, u64) {
    use core::sync::atomic::Ordering::SeqCst;
    use lazymm::Platform;
    (
        m.p.load(0, &m.percpu[cpu].slot, SeqCst),
        m.p.load(0, &m.percpu[cpu].slot2, SeqCst),
    )
}

/// Does CPU `cpu`'s published per-CPU state say it borrows an mm lazily?
/// (`shootdown` publishes nothing: its private `active_mm` is read.)
fn publishes_lazy(m: &M, scheme: SchemeKind, cpu: usize) -> bool {
    let (slot, _) = slots(m, cpu);
    match scheme {
        SchemeKind::RcuLazyAware => slot & 1 == 1,
        SchemeKind::Shootdown => {
            let l = m.local(cpu);
            l.curr.is_none() && !l.active.is_init()
        }
        _ => slot != 0,
    }
}

/// Does the scheme leave lazily borrowed mms to `__mmput` on this profile
/// (no exit flush unlazying them)?
/// Does a CPU's lazy borrow survive the exit flush? On every profile since
/// issue 9: x86's 6.12 flush_tlb_func (arch/x86/mm/tlb.c) moves only the
/// MMU of a lazy CPU and leaves `active_mm` and the borrow (Andy's 2022
/// unlazy, which did not, is the `unlazy2022` option); the others do not
/// IPI lazy CPUs at exit.
fn lazies_survive_exit_flush(_arch: Arch) -> bool {
    true
}

/// Is an mm whose last user exited on CPU 0, while CPU 1 borrows it
/// lazily, freed at the exit already (`true`), or only once the lazy CPUs
/// stop borrowing it?
fn freed_at_exit_with_a_lazy_cpu(scheme: SchemeKind, arch: Arch) -> bool {
    match scheme {
        // __mmdrop unlazies the lazy CPUs by IPI before freeing.
        SchemeKind::Shootdown | SchemeKind::HazardIpi => true,
        _ => !lazies_survive_exit_flush(arch),
    }
}

const PROFILES: [Arch; 5] = Arch::ALL;

#[test]
fn path_exit_mm_with_another_cpu_lazy() {
    for scheme in SAFE {
        for arch in PROFILES {
            let what = format!("{scheme} {arch}");
            let m = machine(2, arch, scheme);
            let a = m.mm_alloc(0).unwrap();
            make_lazy(&m, 1, a);
            m.switch_to(0, Next::User(a));
            m.exit_mm(0); // the last user; CPU 0 is lazy on a as it exits
            assert_eq!(
                !m.ledger.is_allocated(a),
                freed_at_exit_with_a_lazy_cpu(scheme, arch),
                "{what}"
            );
            m.switch_to(0, Next::Kernel); // the exiting task's last switch
            m.switch_to(1, Next::Kernel); // kernel -> kernel, still lazy
            m.interrupt_point(1); // CPU 1's MMU walks whatever is loaded
            no_violation(&m, &what);
            let b = m.mm_alloc(1).unwrap();
            m.mmget(1, b);
            m.switch_to(1, Next::User(b)); // CPU 1 stops borrowing a
                                           // CPU 0 (idle since the exit) may still borrow a.
            assert_eq!(
                m.ledger.is_allocated(a),
                !freed_at_exit_with_a_lazy_cpu(scheme, arch),
                "{what}: CPU 0 still lazy"
            );
            m.switch_to(0, Next::User(b)); // ... and now it stops too
            assert!(!m.ledger.is_allocated(a), "{what}: freed once unborrowed");
            exit_current(&m, 0);
            exit_current(&m, 1);
            let l = quiesce_all(&m);
            assert_clean(&l, &what);
            assert_eq!(l.frees, 2, "{what}");
        }
    }
}

#[test]
fn path_kthread_use_and_unuse_mm() {
    for scheme in SAFE {
        for arch in PROFILES {
            let what = format!("{scheme} {arch}");
            let m = machine(2, arch, scheme);
            let a = m.mm_alloc(0).unwrap();
            m.mmget(0, a); // a second thread, which will block on CPU 1
            m.switch_to(0, Next::User(a));
            m.switch_to(1, Next::User(a));
            m.switch_to(1, Next::Kernel); // CPU 1: a kworker, lazy on a
                                          // The kworker adopts a ("we must still mmgrab(mm) and
                                          // mmdrop_lazy_tlb(active_mm)": the same mm as the lazy one).
            m.mmget(1, a); // mmget_not_zero
            m.kthread_use_mm(1, a);
            assert!(!publishes_lazy(&m, scheme, 1), "{what}: no lazy borrow now");
            m.mmput(1, a); // the blocked thread exits elsewhere
            m.kthread_unuse_mm(1); // lazy on a again
            assert!(publishes_lazy(&m, scheme, 1), "{what}: lazy again");
            m.mmput(1, a); // the kworker's users reference
            no_violation(&m, &what);
            m.exit_mm(0); // the last user
            assert_eq!(
                !m.ledger.is_allocated(a),
                freed_at_exit_with_a_lazy_cpu(scheme, arch),
                "{what}"
            );
            m.switch_to(0, Next::Kernel);
            m.interrupt_point(1);
            no_violation(&m, &what);
            // CPU 0 runs another process: its own lazy borrow of a ends.
            let c = m.mm_alloc(0).unwrap();
            m.switch_to(0, Next::User(c));
            // The kworker adopts another mm: the lazy borrow of a ends.
            let b = m.mm_alloc(1).unwrap();
            m.kthread_use_mm(1, b);
            // The kworker sleeps and is woken: with an adopted mm it switches
            // out and in like a user task of b.
            m.switch_to(1, Next::Kernel);
            m.switch_to(1, Next::User(b));
            m.switch_to(0, Next::User(c)); // a QS for CPU 0's callbacks
            assert!(!m.ledger.is_allocated(a), "{what}: a freed");
            m.kthread_unuse_mm(1);
            m.mmput(1, b); // b's only users reference (the allocation's)
            m.switch_to(1, Next::Kernel);
            exit_current(&m, 0);
            let l = quiesce_all(&m);
            assert_clean(&l, &what);
            assert_eq!(l.frees, 3, "{what}");
        }
    }
}

/// Scheme IPIs CPU `cpu` has handled so far.
fn ipis_handled(m: &M, cpu: usize) -> u64 {
    m.cpu_stats(cpu).ipis_handled
}

#[test]
fn path_exec_from_a_user_task_and_from_a_kthread() {
    for scheme in SAFE {
        for arch in PROFILES {
            let what = format!("{scheme} {arch}");
            // exec from a user task: the old mm's last user is the exec.
            let m = machine(2, arch, scheme);
            let a = m.mm_alloc(0).unwrap();
            make_lazy(&m, 1, a);
            m.switch_to(0, Next::User(a));
            let c = m.mm_alloc(0).unwrap();
            let before = m.stats().cpu;
            m.exec(0, c); // mmput(a): CPU 0 is not lazy on a, CPU 1 is
            let after = m.stats().cpu;
            let x86 = !lazies_survive_exit_flush(arch);
            // Remote IPIs only (kernel/smp.c: the local CPU is a direct
            // call): CPU 1, whether by the all-online default (arm64, and
            // x86 since issue 9), the walked mask (powerpc-hash) or its
            // hazard slot.
            let want_ipis = match scheme {
                SchemeKind::Shootdown | SchemeKind::HazardIpi => 1,
                _ => 0,
            };
            assert_eq!(after.ipis - before.ipis, want_ipis, "{what}: exec ipis");
            let want_handoffs = match scheme {
                SchemeKind::LightweightV2 | SchemeKind::HazardHandoff if !x86 => 1,
                _ => 0,
            };
            assert_eq!(after.handoffs - before.handoffs, want_handoffs, "{what}");
            m.interrupt_point(1);
            no_violation(&m, &what);

            // exec from a kthread: CPU 1's kworker, lazy on d, becomes a user
            // process (call_usermodehelper): the borrow of d ends there.
            exit_current(&m, 0); // the exec'd task (of c) exits
            let d = m.mm_alloc(0).unwrap();
            m.mmget(0, d);
            m.switch_to(0, Next::User(d));
            m.switch_to(1, Next::Kernel);
            m.switch_to(1, Next::User(d));
            m.switch_to(1, Next::Kernel); // kworker, lazy on d
            m.mmput(1, d);
            let e = m.mm_alloc(1).unwrap();
            m.exec(1, e);
            assert!(!publishes_lazy(&m, scheme, 1), "{what}: exec unlazied");
            if matches!(
                scheme,
                SchemeKind::LightweightV2 | SchemeKind::HazardHandoff | SchemeKind::HazardIpi
            ) {
                assert_eq!(slots(&m, 1).0, 0, "{what}: lazy_mm cleared");
            }
            let h1 = ipis_handled(&m, 1);
            m.exit_mm(0); // d's last user: CPU 1 no longer borrows it
                          // (shootdown IPIs CPU 1 anyway where the mask cannot tell:
                          // arm64's all-online default, hash's never-trimmed mask.)
            if scheme != SchemeKind::Shootdown {
                assert_eq!(ipis_handled(&m, 1), h1, "{what}: CPU 1 not shot");
            }
            if matches!(
                scheme,
                SchemeKind::LightweightV2 | SchemeKind::HazardHandoff
            ) {
                assert_eq!(slots(&m, 1).1, 0, "{what}: nothing handed to CPU 1");
            }
            m.switch_to(0, Next::Kernel);
            exit_current(&m, 1);
            let l = quiesce_all(&m);
            assert_clean(&l, &what);
            assert_eq!(l.frees, 4, "{what}");
        }
    }
}

#[test]
fn path_exec_from_a_kthread_after_its_lazy_mm_exited() {
    for scheme in SAFE {
        for arch in PROFILES {
            let what = format!("{scheme} {arch}");
            let m = machine(2, arch, scheme);
            let a = m.mm_alloc(0).unwrap();
            make_lazy(&m, 1, a); // CPU 1: a kworker lazy on a
            m.switch_to(0, Next::User(a));
            exit_current(&m, 0); // a's teardown: CPU 1 still borrows it
            no_violation(&m, &what);
            let e = m.mm_alloc(1).unwrap();
            m.exec(1, e); // the kworker execs: the borrow of a ends
            no_violation(&m, &what);
            // CPU 1's next switch (drains a handed unit) and CPU 0 leaving
            // its own lazy borrow of a (its exit) free a.
            m.switch_to(1, Next::Kernel);
            let f = m.mm_alloc(0).unwrap();
            m.switch_to(0, Next::User(f));
            m.switch_to(1, Next::User(e));
            assert!(!m.ledger.is_allocated(a), "{what}: a freed");
            exit_current(&m, 0);
            exit_current(&m, 1);
            let l = quiesce_all(&m);
            assert_clean(&l, &what);
            assert_eq!(l.frees, 3, "{what}");
        }
    }
}

#[test]
fn path_cpu_offline_and_online() {
    for scheme in SAFE {
        for arch in PROFILES {
            let what = format!("{scheme} {arch}");
            let m = machine(3, arch, scheme);
            // 1. CPU 1 lazy on a goes offline: its borrow ends; a's exit
            //    does not touch it.
            let a = m.mm_alloc(0).unwrap();
            make_lazy(&m, 1, a);
            m.cpu_offline(1);
            assert!(!publishes_lazy(&m, scheme, 1), "{what}: offline unlazied");
            if scheme != SchemeKind::RcuLazyAware {
                assert_eq!(slots(&m, 1), (0, 0), "{what}: slots empty offline");
            }
            m.switch_to(0, Next::User(a));
            let h1 = ipis_handled(&m, 1);
            exit_current(&m, 0);
            assert_eq!(ipis_handled(&m, 1), h1, "{what}: offline CPU not shot");
            no_violation(&m, &what);
            m.cpu_online(1);
            // 2. CPU 2 lazy on b, b exits (a unit handed to CPU 2 / a
            //    deferred free), then CPU 2 goes offline: the unit is
            //    dropped there, and b is freed once CPU 0 stops borrowing.
            let b = m.mm_alloc(0).unwrap();
            make_lazy(&m, 2, b);
            m.switch_to(0, Next::User(b));
            exit_current(&m, 0);
            m.cpu_offline(2);
            if matches!(
                scheme,
                SchemeKind::LightweightV2 | SchemeKind::HazardHandoff
            ) {
                assert_eq!(slots(&m, 2), (0, 0), "{what}: mailbox drained offline");
            }
            no_violation(&m, &what);
            let c = m.mm_alloc(1).unwrap();
            m.mmget(1, c);
            m.switch_to(0, Next::User(c));
            m.switch_to(1, Next::User(c));
            assert!(!m.ledger.is_allocated(b), "{what}: b freed");
            m.cpu_online(2);
            m.mmget(2, c); // a third thread of c, run by CPU 2
            m.switch_to(2, Next::User(c));
            m.switch_to(2, Next::Kernel);
            m.interrupt_point(2);
            exit_current(&m, 0);
            exit_current(&m, 1);
            m.switch_to(2, Next::User(c));
            exit_current(&m, 2);
            let l = quiesce_all(&m);
            assert_clean(&l, &what);
            assert_eq!(l.frees, 3, "{what}");
        }
    }
}

// ----------------------------------------------------------------------
// lightweight-v2 as posted: the unconditional drain is a use-after-free
// ----------------------------------------------------------------------

/// CPU 1 lazily borrows a; a's last user exits on CPU 0, which hands CPU 1
/// (and itself) a unit through the mailbox; both CPUs then switch between
/// kernel threads, still borrowing a.
fn v2_drain_scenario(literal_v2: bool) -> (LedgerCounts, Vec<lazymm::Violation>) {
    let cfg = MachineConfig::new(2, Arch::Arm64, SchemeKind::LightweightV2);
    let m = Machine::with_scheme(
        CountingPlatform::new(),
        cfg,
        Box::new(LightweightV2 {
            opts: SchemeOptions::default(),
            literal_v2,
        }),
    )
    .unwrap();
    let a = m.mm_alloc(0).unwrap();
    make_lazy(&m, 1, a);
    m.switch_to(0, Next::User(a));
    m.exit_mm(0); // hand-offs to CPU 1 and CPU 0; the users' unit dropped
    m.switch_to(0, Next::Kernel); // kernel -> kernel: v2 drains CPU 0's unit
    m.switch_to(1, Next::Kernel); // ... and CPU 1's: the last one
    m.interrupt_point(1); // CPU 1's MMU walks a
    let v = m.ledger.violations();
    (quiesce_all(&m), v)
}

#[test]
fn lightweight_v2_literal_drain_frees_under_a_lazy_cpu() {
    let (l, v) = v2_drain_scenario(true);
    assert!(l.uaf >= 2, "{l:?}");
    assert!(
        v.iter()
            .any(|v| v.kind == ViolationKind::UseAfterFree && v.cpu == 1),
        "{v:?}"
    );
    // The 2022 rule (keep drop_mm while it is lazy_mm): clean.
    let (l, _) = v2_drain_scenario(false);
    assert_clean(&l, "2022 rule");
    assert_eq!(l.frees, 1);
}

// ----------------------------------------------------------------------
// rcu: idle is quiescent, the ledger shows the use-after-free
// ----------------------------------------------------------------------

/// CPU 1 idles lazily on a; a's last user exits on CPU 0, which then
/// switches (its own quiescent state).
fn rcu_idle_lazy(arch: Arch, scheme: SchemeKind) -> (M, MmRef) {
    let m = machine(2, arch, scheme);
    let a = m.mm_alloc(0).unwrap();
    make_lazy(&m, 1, a);
    m.switch_to(0, Next::User(a));
    exit_current(&m, 0);
    (m, a)
}

#[test]
fn rcu_frees_under_an_idle_lazy_cpu() {
    for arch in [Arch::Arm64, Arch::PowerpcRadix, Arch::PowerpcHash] {
        let (m, a) = rcu_idle_lazy(arch, SchemeKind::Rcu);
        // The grace period ended: CPU 1 is idle (extended QS), CPU 0
        // switched. a is freed while CPU 1 still has it loaded.
        assert!(!m.ledger.is_allocated(a), "{arch}");
        let v = m.ledger.violations();
        assert!(
            v.iter().any(|v| v.kind == ViolationKind::UseAfterFree
                && v.cpu == 1
                && v.site == "freed while loaded in an MMU"),
            "{arch}: {v:?}"
        );
        m.interrupt_point(1); // and its next page-table walk
        assert!(m.ledger.counts().uaf >= 2, "{arch}");
        assert_eq!(m.stats().cpu.frees_deferred, 1, "{arch}");
        assert!(SchemeKind::Rcu.known_unsafe().is_some());
    }
    // x86, Linux 6.12: the exit flush's IPI (arch/x86/mm/tlb.c
    // flush_tlb_func) moves CPU 1's MMU to init_mm but leaves its active_mm
    // on a: the mm is freed while a CPU's active_mm names it (issue 9, item
    // 4). Under Andy's 2022 unlazy (the pre-issue-9 model) the flush
    // unlazied CPU 1 entirely and RCU looked safe on x86.
    let (m, a) = rcu_idle_lazy(Arch::X86, SchemeKind::Rcu);
    assert!(!m.ledger.is_allocated(a));
    let v = m.ledger.violations();
    assert!(
        v.iter()
            .any(|v| v.kind == ViolationKind::UseAfterFree
                && v.site == "freed while a CPU's active_mm"),
        "x86: {v:?}"
    );
}

#[test]
fn rcu_lazy_aware_waits_for_the_lazy_cpu() {
    for arch in [Arch::Arm64, Arch::PowerpcRadix, Arch::PowerpcHash] {
        let (m, a) = rcu_idle_lazy(arch, SchemeKind::RcuLazyAware);
        // CPU 1 (and CPU 0, lazy since exit_mm) borrow a: not quiescent.
        assert!(m.ledger.is_allocated(a), "{arch}");
        let st = m.stats();
        assert_eq!((st.cpu.frees_deferred, st.peak_pinned), (1, 1), "{arch}");
        m.switch_to(1, Next::Kernel); // kernel -> kernel: still lazy, no QS
        m.switch_to(0, Next::Kernel);
        m.interrupt_point(1);
        assert!(m.ledger.is_allocated(a), "{arch}: kernel->kernel is no QS");
        let b = m.mm_alloc(1).unwrap();
        m.mmget(1, b);
        m.switch_to(1, Next::User(b)); // CPU 1: QS
        m.switch_to(0, Next::Kernel);
        assert!(m.ledger.is_allocated(a), "{arch}: CPU 0 still lazy");
        m.switch_to(0, Next::User(b)); // CPU 0: QS, and it runs the callback
        assert!(!m.ledger.is_allocated(a), "{arch}: grace period over");
        exit_current(&m, 0);
        exit_current(&m, 1);
        let l = quiesce_all(&m);
        assert_clean(&l, arch.name());
        assert_eq!(l.frees, 2);
    }
}

#[test]
fn rcu_shows_the_use_after_free_on_every_workload_and_profile() {
    for workload in WorkloadKind::ALL {
        for arch in Arch::ALL {
            let mut uaf = 0;
            for seed in 0..3 {
                let r = run(&RunConfig {
                    scheme: SchemeKind::Rcu,
                    arch,
                    cpus: 8,
                    workload,
                    seed,
                    rounds: 150,
                    options: SchemeOptions::default(),
                })
                .unwrap();
                assert!(r.known_unsafe.is_some());
                assert_eq!(r.double_free, 0, "{workload} {arch}");
                uaf += r.uaf;
            }
            if lazies_survive_exit_flush(arch) {
                assert!(uaf > 0, "{workload} {arch}: no use-after-free shown");
            } else {
                unreachable!("{workload} {arch}: every profile keeps lazy borrows since issue 9");
            }
        }
    }
}

#[test]
fn rcu_lazy_aware_cost_is_deferred_frees_and_pinned_mms() {
    // Short-lived processes: any CPU lazy on *any* mm holds every grace
    // period up, so many more mms stay pinned than under a scheme that
    // tracks which mm each CPU borrows.
    for arch in [Arch::Arm64, Arch::PowerpcHash, Arch::X86] {
        let go = |scheme| {
            run(&RunConfig {
                scheme,
                arch,
                cpus: 8,
                workload: WorkloadKind::ForkExecExit,
                seed: 1,
                rounds: 300,
                options: SchemeOptions::default(),
            })
            .unwrap()
        };
        let (rla, lw) = (go(SchemeKind::RcuLazyAware), go(SchemeKind::Lightweight));
        assert!(rla.clean() && lw.clean());
        assert!(rla.frees_deferred > 0, "{arch}");
        assert!(rla.peak_pinned > lw.peak_pinned, "{arch}: {rla:?}");
        assert_eq!(rla.count_rmw, rla.exits, "{arch}: one count RMW per exit");
    }
}

// ----------------------------------------------------------------------
// the ledger: clean everywhere
// ----------------------------------------------------------------------

#[test]
fn new_schemes_clean_over_seeds_cpus_workloads_profiles() {
    let mut runs = 0;
    for scheme in SAFE {
        for workload in WorkloadKind::ALL {
            for arch in Arch::ALL {
                for cpus in [1, 2, 3, 8, 33] {
                    for seed in 0..6 {
                        let r = run(&RunConfig {
                            scheme,
                            arch,
                            cpus,
                            workload,
                            seed,
                            rounds: 150,
                            options: SchemeOptions::default(),
                        })
                        .unwrap();
                        assert!(
                            r.clean(),
                            "{scheme} {workload} {arch} cpus={cpus} seed={seed}: {:?}",
                            r.violations
                        );
                        // Shoot-down's 6.12 hotplug race is labelled on
                        // hotplug runs (the sequential executor never
                        // interleaves it: the ledger stays clean).
                        assert_eq!(
                            r.known_unsafe.is_some(),
                            scheme == SchemeKind::Shootdown && workload == WorkloadKind::Hotplug,
                            "{scheme} {workload}"
                        );
                        runs += 1;
                    }
                }
            }
        }
    }
    assert_eq!(runs, 5 * WorkloadKind::ALL.len() * 5 * 5 * 6);
}

#[test]
fn handoff_schemes_clean_without_deferred_frees() {
    for scheme in [SchemeKind::LightweightV2, SchemeKind::HazardHandoff] {
        let options = SchemeOptions {
            defer_free: false,
            ..SchemeOptions::default()
        };
        for workload in WorkloadKind::ALL {
            for arch in Arch::ALL {
                let r = run(&RunConfig {
                    scheme,
                    arch,
                    cpus: 6,
                    workload,
                    seed: 3,
                    rounds: 200,
                    options,
                })
                .unwrap();
                assert!(r.clean(), "{scheme} {workload} {arch}: {:?}", r.violations);
            }
        }
    }
}

#[test]
fn names_parse_and_every_scheme_lists_its_ordering_sites() {
    for (k, n) in [
        (SchemeKind::LightweightV2, "lightweight-v2"),
        (SchemeKind::HazardHandoff, "hazard-handoff"),
        (SchemeKind::Shootdown, "shootdown"),
        (SchemeKind::HazardIpi, "hazard-ipi"),
        (SchemeKind::Rcu, "rcu"),
        (SchemeKind::RcuLazyAware, "rcu-lazy-aware"),
    ] {
        assert_eq!(k.name(), n);
        assert_eq!(SchemeKind::parse(n), Some(k));
        assert!(SchemeKind::ALL.contains(&k));
        let s = lazymm::schemes::build::<CountingPlatform>(k, &SchemeOptions::default()).unwrap();
        assert_eq!(s.kind(), k);
        let sites = s.ordering_sites();
        assert!(!sites.is_empty(), "{n}");
        let mut names: Vec<&str> = sites.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), sites.len(), "{n}: site names unique");
    }
    assert!(SchemeKind::Rcu.known_unsafe().is_some());
    for k in SAFE {
        assert!(k.known_unsafe().is_none(), "{k}");
    }
}
