//! Exact, deterministic operation counts on small directed runs.

use lazymm::schemes::KernelOptions;
use lazymm::{Arch, Machine, MachineConfig, MmRef, Next, SchemeKind};
use lazymm_sim::{AccessCounts, CountingPlatform};

fn machine(cpus: usize, arch: Arch, scheme: SchemeKind) -> Machine<CountingPlatform> {
    Machine::new(
        CountingPlatform::new(),
        MachineConfig::new(cpus, arch, scheme),
    )
    .unwrap()
}

/// A process with one thread per CPU, each CPU running its thread.
fn spread_process(m: &Machine<CountingPlatform>) -> MmRef {
    let mm = m.mm_alloc(0).unwrap();
    for _ in 1..m.ncpus {
        m.mmget(0, mm);
    }
    for c in 0..m.ncpus {
        m.switch_to(c, Next::User(mm));
    }
    mm
}

fn delta(m: &Machine<CountingPlatform>, f: impl FnOnce()) -> AccessCounts {
    let before = m.p.counts();
    f();
    m.p.counts().since(&before)
}

#[test]
fn refcount_one_count_rmw_entering_and_one_leaving() {
    for arch in Arch::ALL {
        let m = machine(2, arch, SchemeKind::Refcount);
        let _mm = spread_process(&m);
        for _ in 0..10 {
            let enter = delta(&m, || m.switch_to(0, Next::Kernel));
            assert_eq!(enter.count_rmws(), 1, "{arch}: user->kernel is one mmgrab");
            assert_eq!(enter.rmws, 1, "{arch}: and nothing else atomic");
            let leave = delta(&m, || m.switch_to(0, Next::User(_mm)));
            assert_eq!(leave.count_rmws(), 1, "{arch}: kernel->user is one mmdrop");
            assert_eq!(leave.rmws, 1, "{arch}");
        }
    }
}

#[test]
fn refcount_round_trips_on_two_cpus_bounce_the_count_line() {
    let m = machine(2, Arch::X86, SchemeKind::Refcount);
    let mm = spread_process(&m);
    // Warm up, then alternate the two CPUs' round trips: every count RMW
    // takes the line from the other CPU.
    for c in 0..2 {
        m.switch_to(c, Next::Kernel);
        m.switch_to(c, Next::User(mm));
    }
    // Interleaved as on a real machine: both enter idle, both wake.
    let d = delta(&m, || {
        for _ in 0..50 {
            m.switch_to(0, Next::Kernel);
            m.switch_to(1, Next::Kernel);
            m.switch_to(0, Next::User(mm));
            m.switch_to(1, Next::User(mm));
        }
    });
    assert_eq!(d.count_rmws(), 200);
    assert_eq!(
        d.shared_rmw, 200,
        "every RMW finds the line last written by the other CPU"
    );
    assert_eq!(d.coherence_transfers, 200);
}

/// A 4-CPU process, each CPU warmed by one lazy round trip, then 50 more
/// rounds of user -> kernel -> same user on every CPU: their accesses.
fn warm_round_trips(m: &Machine<CountingPlatform>) -> AccessCounts {
    let mm = spread_process(m);
    for c in 0..4 {
        m.switch_to(c, Next::Kernel);
        m.switch_to(c, Next::User(mm));
    }
    delta(m, || {
        for _ in 0..50 {
            for c in 0..4 {
                m.switch_to(c, Next::Kernel);
                m.switch_to(c, Next::User(mm));
            }
        }
    })
}

#[test]
fn lightweight_no_count_traffic_and_no_transfers_once_warm() {
    for arch in Arch::ALL {
        let m = machine(4, arch, SchemeKind::Lightweight);
        let d = warm_round_trips(&m);
        assert_eq!(d.count_rmws(), 0, "{arch}: no RMW on any count");
        assert_eq!(
            d.coherence_transfers, 0,
            "{arch}: no coherence transfer once warm"
        );
        assert_eq!(d.shared_rmw, 0, "{arch}");
        assert_eq!(d.remote_loads, 0, "{arch}");
        // x86 6.12 (arch/x86/mm/tlb.c switch_mm_irqs_off): a lazy CPU
        // returning to the same mm does smp_mb() before reading tlb_gen;
        // arm64 and powerpc return early (prev == next): issue 9, item 8/12.
        // Plus kernel/sched/sched.h switch_mm_cid() on every round trip:
        // smp_mb__after_mmgrab() on user -> kernel (x86: none; arm64,
        // powerpc: smp_mb()) and smp_mb() on kernel -> user (issue 9, item
        // 8): 2 fences per round trip on every profile.
        assert_eq!(d.fences, 400, "{arch}");
        // Each round trip: one store publishing the slot, one plain store
        // clearing it (same mm: the non-atomic unlazy). On x86 also the two
        // per-CPU writes of `cpu_tlbstate_shared.is_lazy` that a flusher's
        // should_flush_tlb reads (arch/x86/mm/tlb.c enter_lazy_tlb: true;
        // switch_mm_irqs_off: false), on the CPU's own line (issue 9,
        // omitted flush paths).
        let tlbstate = if arch.is_x86() { 400 } else { 0 };
        assert_eq!(d.stores, 400 + tlbstate, "{arch}");
        assert_eq!(d.rmws, 0, "{arch}");
    }
}

#[test]
fn lightweight_unlazy_to_another_mm_is_one_local_xchg() {
    let m = machine(2, Arch::X86, SchemeKind::Lightweight);
    let a = spread_process(&m);
    let b = m.mm_alloc(0).unwrap();
    m.switch_to(0, Next::Kernel);
    m.switch_to(0, Next::User(b));
    m.switch_to(0, Next::User(a));
    m.switch_to(0, Next::Kernel);
    let d = delta(&m, || m.switch_to(0, Next::User(b)));
    assert_eq!(d.count_rmws(), 0);
    assert_eq!(d.rmw_by_kind[4], 1, "one xchg on the CPU's own slot");
    assert_eq!(d.transfers_by_kind[4], 0, "on a line it owns");
    m.switch_to(0, Next::User(a));
}

/// Teardown on CPU 0 of a process that ran on every CPU and left each lazy:
/// the number of CPUs the fix-up visits is the profile's.
fn fixup_visits(arch: Arch, cpus: usize) -> (u64, u64, u64) {
    fixup_visits_with(arch, cpus, KernelOptions::default())
}

fn fixup_visits_with(arch: Arch, cpus: usize, kernel: KernelOptions) -> (u64, u64, u64) {
    let mut cfg = MachineConfig::new(cpus, arch, SchemeKind::Lightweight);
    cfg.options.kernel = kernel;
    let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
    let mm = m.mm_alloc(0).unwrap();
    // One thread walks CPUs 1.., leaving each lazy; the last exits on CPU 0.
    for c in 1..cpus {
        m.switch_to(c, Next::User(mm));
        m.switch_to(c, Next::Kernel);
    }
    m.switch_to(0, Next::User(mm));
    let before = m.stats().cpu;
    m.exit_mm(0);
    let after = m.stats().cpu;
    m.switch_to(0, Next::Kernel);
    for c in 0..cpus {
        m.quiesce_cpu(c);
    }
    let st = m.finish();
    assert_eq!(
        (st.ledger.uaf, st.ledger.double_free, st.ledger.leaked),
        (0, 0, 0),
        "{arch}"
    );
    (
        after.scan_steps - before.scan_steps,
        after.handoffs - before.handoffs,
        after.flush_ipis - before.flush_ipis,
    )
}

#[test]
fn lightweight_fixup_visits_exactly_what_the_profile_says() {
    // The exiting CPU 0 borrows its own dying mm after exit_mm; the teardown
    // ends that borrow first (the kernel patch's lazy_tlb_handoff() self
    // take, kernel/patches/0001), so the scan still visits CPU 0's slot but
    // finds it empty: 7 hand-offs, to the 7 other lazy CPUs (8 before the
    // self take, CPU 0 handing a unit to itself).
    // arm64: mm_cpumask is not tracked: all online CPUs.
    assert_eq!(fixup_visits(Arch::Arm64, 8), (8, 7, 0));
    // powerpc-hash: every CPU the mm ran on; all 8 are lazy on it (CPU 0 by exit_mm).
    assert_eq!(fixup_visits(Arch::PowerpcHash, 8), (8, 7, 0));
    // powerpc-radix without shoot-down: a broadcast tlbie, the mask stays.
    assert_eq!(fixup_visits(Arch::PowerpcRadix, 8), (8, 7, 0));
    // x86, Linux 6.12 (arch/x86/mm/tlb.c flush_tlb_func): the exit flush
    // IPIs the 7 lazy CPUs, which switch only their MMU to init_mm and keep
    // active_mm and the lazy borrow, clearing their mask bit: the fix-up must
    // visit every online CPU (the mask no longer covers them) and hands the
    // 7 a unit (issue 9, items 1 and 4).
    assert_eq!(fixup_visits(Arch::X86, 8), (8, 7, 7));
    // post-6.12 lazy cpumask (209954cbc7d0): the flush leaves the lazy CPUs'
    // bits set, so the mask scan finds all 8 (7 with the mm in their slot).
    assert_eq!(fixup_visits(Arch::X86LazyCpumask, 8), (8, 7, 7));
    // lazymm's pre-issue-9 model (Andy's 2022 unlazy in the flush handler,
    // bit cleared after CR3): the flush unlazies everyone, nothing is left.
    let pre = KernelOptions::PRE_ISSUE_9;
    assert_eq!(fixup_visits_with(Arch::X86, 8, pre), (0, 0, 7));
    // With the lazy cpumask the handler clears a CPU's bit only when it
    // enters with another mm loaded (flush_tlb_func after 209954cbc7d0:
    // the test is made on entry), so the unlazied CPUs keep their bits: the
    // scan visits 8 and finds nothing.
    assert_eq!(fixup_visits_with(Arch::X86LazyCpumask, 8, pre), (8, 0, 7));
}

#[test]
fn batched_grab_costs_one_count_rmw_per_teardown_scan() {
    // The exiting CPU 0 takes its own borrow first (no RMW: no unit was
    // handed to it), so 7 lazy CPUs get a unit. batched: one add of 8, the
    // unused one returned, 7 owner drops, the users' final drop; unbatched:
    // 7 grabs instead of the add and the return.
    for (batched, expect) in [(true, 1 + 1 + 7 + 1), (false, 7 + 7 + 1)] {
        let mut cfg = MachineConfig::new(8, Arch::Arm64, SchemeKind::Lightweight);
        cfg.options.batched_grab = batched;
        let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
        let mm = m.mm_alloc(0).unwrap();
        for c in 1..8 {
            m.switch_to(c, Next::User(mm));
            m.switch_to(c, Next::Kernel);
        }
        m.switch_to(0, Next::User(mm));
        let d = delta(&m, || {
            m.exit_mm(0);
            m.switch_to(0, Next::Kernel);
            for c in 0..8 {
                m.quiesce_cpu(c);
            }
        });
        assert_eq!(d.count_rmws(), expect, "batched = {batched}");
        assert_eq!(m.finish().ledger.frees, 1);
    }
}

/// Issue 9, item 9: include/linux/sched/mm.h mmdrop_lazy_tlb() must be a
/// full barrier for membarrier (kernel/sched/core.c finish_task_switch;
/// arch/powerpc/include/asm/membarrier.h: the kernel -> user barrier "is
/// implied by mmdrop()"). Without switch_mm_cid (option `no-mm-cid`, a
/// kernel without CONFIG_RSEQ), lightweight's plain same-mm unlazy is a
/// store, so on powerpc it adds one smp_mb() per kernel -> user return;
/// x86 has its own smp_mb() on the lazy return (switch_mm_irqs_off) and
/// arm64 the dsb(ish) of __switch_to (arch/arm64/kernel/process.c), so
/// neither adds one. litmus/membarrier-lazy-unlazy+{no-mb,mb}.litmus:
/// Sometimes without the barrier, Never with.
#[test]
fn membarrier_barrier_of_the_plain_unlazy_without_mm_cid() {
    for arch in Arch::ALL {
        for scheme in [
            SchemeKind::Lightweight,
            SchemeKind::LightweightV2,
            SchemeKind::HazardHandoff,
        ] {
            let mut cfg = MachineConfig::new(4, arch, scheme);
            cfg.options.kernel.no_mm_cid = true;
            let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
            let d = warm_round_trips(&m);
            let fences = match arch {
                Arch::X86 | Arch::X86LazyCpumask => 200, // switch_mm's smp_mb()
                Arch::Arm64 => 0,                        // __switch_to's dsb
                Arch::PowerpcHash | Arch::PowerpcRadix => 200, // the scheme's smp_mb()
            };
            assert_eq!(d.fences, fences, "{scheme} {arch}");
        }
    }
}

/// kthread-mix (kernel workers adopt mms with `kthread_use_mm` and drop
/// them with kernel/fork.c mmput_async half the time; their kworker turn
/// runs `mmput_async_fn`), 8 CPUs, arm64, seed 1, 200 rounds, under 6.12
/// and under PREEMPT_RT (option `preempt-rt`: include/linux/sched/mm.h
/// mmdrop_sched queues the final drop of kernel/sched/core.c
/// finish_task_switch with `call_rcu`): the report's `async_mmputs` and
/// `rcu_delayed_drops`, exactly.
#[test]
fn report_counts_mmput_async_and_rcu_delayed_drops() {
    use lazymm_sim::{run, RunConfig, WorkloadKind};
    for scheme in SchemeKind::ALL {
        // Under PREEMPT_RT, the final drops finish_task_switch makes:
        // refcount's and mockup's lazy reference, and the unit a
        // lightweight teardown handed to another CPU (its own borrow is
        // taken by the teardown, kernel/patches/0001). v2 and
        // hazard-handoff drop outside finish_task_switch (mailbox /
        // drop_mm); the others hold no count.
        let rt_drops = match scheme {
            SchemeKind::Refcount | SchemeKind::Mockup => 3,
            SchemeKind::Lightweight => 2,
            _ => 0,
        };
        let mut deferred = None;
        for rt in [false, true] {
            let mut cfg = RunConfig {
                scheme,
                arch: Arch::Arm64,
                cpus: 8,
                workload: WorkloadKind::KthreadMix,
                seed: 1,
                rounds: 200,
                options: Default::default(),
            };
            cfg.options.kernel.preempt_rt = rt;
            let r = run(&cfg).expect("run");
            if scheme.known_unsafe().is_none() {
                assert!(r.clean(), "{scheme} rt={rt}: {:?}", r.violations);
            }
            // The scheduler's choices do not depend on the scheme: 3 of the
            // 10 teardowns ran on a kworker, whatever the option.
            assert_eq!((r.async_mmputs, r.exits), (3, 10), "{scheme} rt={rt}");
            let want = if rt { rt_drops } else { 0 };
            assert_eq!(r.rcu_delayed_drops, want, "{scheme} rt={rt}");
            // Each call_rcu'd drop is a deferred free the 6.12 run made at once.
            match deferred {
                None => deferred = Some(r.frees_deferred),
                Some(base) => assert_eq!(r.frees_deferred, base + want, "{scheme}"),
            }
        }
    }
}
