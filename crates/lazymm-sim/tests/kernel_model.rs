//! Issue 9: what modelling Linux 6.12 (instead of lazymm's earlier model)
//! does to every scheme's counts, per profile. Each test names the kernel
//! function it reproduces; the table behind docs/verification.md
//! ("Verdicts that changed", costs) is printed by
//! `cargo run --release -p lazymm-sim --example cost_table`.

use lazymm::schemes::{HotplugModel, KernelOptions};
use lazymm::{Arch, Machine, MachineConfig, Next, SchemeKind};
use lazymm_sim::CountingPlatform;

fn machine(cpus: usize, arch: Arch, scheme: SchemeKind) -> Machine<CountingPlatform> {
    Machine::new(
        CountingPlatform::new(),
        MachineConfig::new(cpus, arch, scheme),
    )
    .unwrap()
}

/// Item 5: kernel/smp.c smp_call_function_many_cond (on_each_cpu_mask with
/// SCF_RUN_LOCAL) runs the calling CPU's function as a direct call: the
/// shoot-down of kernel/fork.c cleanup_lazy_tlbs on 2 CPUs, the exiting CPU
/// lazy on its own mm and the other CPU not, sends no IPI at all (arm64:
/// every online CPU is a target; before issue 9 the self-call counted as
/// one IPI per exit).
#[test]
fn shootdown_self_call_is_not_an_ipi() {
    let m = machine(2, Arch::Arm64, SchemeKind::Shootdown);
    let mm = m.mm_alloc(0).unwrap();
    m.switch_to(0, Next::User(mm));
    m.exit_mm(0);
    m.switch_to(0, Next::Kernel);
    let st = m.stats().cpu;
    // CPU 1 (idle, never ran mm) is IPIed; CPU 0 runs do_shoot_lazy_tlb
    // directly.
    assert_eq!(st.ipis, 1);
    assert_eq!(
        st.ipis_handled, 1,
        "one IPI handled; CPU 0's was a direct call"
    );
    for c in 0..2 {
        m.quiesce_cpu(c);
    }
    assert!(m.finish().ledger.frees == 1);
}

/// Item 6: arch/powerpc/mm/book3s64/radix_tlb.c exit_flush_lazy_tlbs is
/// smp_call_function_many, which excludes the caller: with the radix
/// exit-IPI option the exiting CPU stays lazy with its bit set until
/// kernel/fork.c cleanup_lazy_tlbs shoots it (a direct call); and 6.12's
/// fullmm exit flush (flush_type_needed: "In the fullmm case there's no
/// point doing the exit_flush_lazy_tlbs") sends no flush IPI at all.
#[test]
fn powerpc_radix_exit_flush_excludes_the_caller() {
    for (ipi, flush_ipis) in [(true, 1), (false, 0)] {
        let mut cfg = MachineConfig::new(2, Arch::PowerpcRadix, SchemeKind::Shootdown);
        cfg.options.kernel.radix_exit_lazy_ipi = ipi;
        let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
        let mm = m.mm_alloc(0).unwrap();
        m.mmget(0, mm);
        m.switch_to(1, Next::User(mm));
        m.switch_to(1, Next::Kernel);
        m.mmput(1, mm);
        m.switch_to(0, Next::User(mm));
        m.exit_mm(0);
        let st = m.stats().cpu;
        assert_eq!(st.flush_ipis, flush_ipis, "radix_exit_lazy_ipi = {ipi}");
        // The exiting CPU 0 is never flush-IPIed (caller excluded); its own
        // lazy borrow is shot by cleanup_lazy_tlbs' direct call; CPU 1 by
        // the flush (option) or by the shoot-down IPI.
        assert_eq!(
            st.ipis,
            if ipi { 0 } else { 1 },
            "radix_exit_lazy_ipi = {ipi}"
        );
        m.switch_to(0, Next::Kernel);
        for c in 0..2 {
            m.quiesce_cpu(c);
        }
        let f = m.finish();
        assert_eq!((f.ledger.uaf, f.ledger.leaked, f.ledger.frees), (0, 0, 1));
    }
}

/// Item 2: kernel/cpu.c finish_cpu does the dying CPU's mmdrop_lazy_tlb on
/// the control CPU, after kernel/sched/core.c idle_task_exit switched only
/// the MMU: under refcount the lazy reference is dropped exactly once and
/// the mm is freed when its last user exits (no leak, no early free), on
/// every profile.
#[test]
fn hotplug_6_12_drops_the_lazy_reference_in_finish_cpu() {
    for arch in Arch::ALL {
        let m = machine(2, arch, SchemeKind::Refcount);
        let mm = m.mm_alloc(0).unwrap();
        m.switch_to(1, Next::User(mm));
        m.switch_to(1, Next::Kernel); // lazy on mm: count 2
        m.mmget(1, mm);
        m.mmput(1, mm);
        let before = m.stats().ledger;
        m.cpu_offline(1); // finish_cpu: mmdrop_lazy_tlb -> count 1
        m.cpu_online(1);
        m.switch_to(0, Next::User(mm));
        m.exit_mm(0);
        m.switch_to(0, Next::Kernel);
        for c in 0..2 {
            m.quiesce_cpu(c);
        }
        let f = m.finish();
        assert_eq!(before.frees, 0, "{arch}");
        assert_eq!(
            (f.ledger.uaf, f.ledger.leaked, f.ledger.frees),
            (0, 0, 1),
            "{arch}"
        );
    }
}

/// Item 7: kernel/sched/core.c finish_task_switch does
/// mmdrop_lazy_tlb_sched(rq->prev_mm) also when the kernel thread ran on
/// `init_mm` (after boot, a shoot-down, hotplug): include/linux/sched/mm.h
/// mmdrop_lazy_tlb_sched is an RMW on init_mm's count under refcount
/// (mmdrop_sched), smp_mb() under shoot-down. Plus kernel/sched/sched.h
/// switch_mm_cid's smp_mb() on kernel -> user (item 8), every scheme. A CPU
/// fresh from boot (active_mm == &init_mm) switching to a user task:
/// (count-line RMWs, full fences) per scheme, and with `no-mm-cid` the
/// membarrier barrier lazymm's schemes add on powerpc (item 9).
#[test]
fn finish_task_switch_drops_init_mm() {
    for (arch, scheme, no_mm_cid, want) in [
        (Arch::Arm64, SchemeKind::Refcount, false, (1, 1)),
        (Arch::Arm64, SchemeKind::Shootdown, false, (0, 2)),
        (Arch::Arm64, SchemeKind::Lightweight, false, (0, 1)),
        (Arch::PowerpcHash, SchemeKind::Lightweight, true, (0, 1)),
        (Arch::PowerpcHash, SchemeKind::HazardHandoff, true, (0, 1)),
        (Arch::Arm64, SchemeKind::Lightweight, true, (0, 0)),
        (Arch::PowerpcHash, SchemeKind::Refcount, true, (1, 0)),
    ] {
        let mut cfg = MachineConfig::new(2, arch, scheme);
        cfg.options.kernel.no_mm_cid = no_mm_cid;
        let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
        let mm = m.mm_alloc(1).unwrap();
        let before = m.p.counts();
        m.switch_to(0, Next::User(mm));
        let d = m.p.counts().since(&before);
        // (powerpc's smp_mb() after newly setting the mm_cpumask bit is
        // counted with the bit's RMW, not as a fence.)
        assert_eq!(
            (d.count_rmws(), d.fences),
            want,
            "{scheme} {arch} no_mm_cid={no_mm_cid}"
        );
    }
}

/// The omitted path `free_pgtables` (mm/mmap.c exit_mmap; the lower page
/// tables are freed by tlb_finish_mmu at __mmput, before __mmdrop) as a
/// ledger event, with 6.12's hotplug (kernel/cpu.c takedown_cpu:
/// __cpu_disable, then the dying CPU runs on until idle_task_exit in
/// kernel/sched/core.c). CPU 1 is lazy on mm and has gone offline; mm's
/// last task exits on CPU 0. x86's exit flush is an IPI and
/// on_each_cpu_mask (kernel/smp.c smp_call_function_many_cond) skips the
/// offline CPU, so its CR3 and paging-structure caches still point at
/// page tables that free_pgtables freed: its next walk is a use-after-free
/// of page tables while the mm_struct lives, whatever the scheme. arm64
/// and powerpc flush by broadcast (reaching the dying CPU too): no such
/// walk. The later `sched_force_init_mm` form (option `force-init-mm`)
/// leaves lazy mode before going offline: clean everywhere.
#[test]
fn free_pgtables_under_a_dying_cpu() {
    const SITE: &str = "MMU walk of page tables freed by free_pgtables";
    for kernel in [
        KernelOptions::default(),
        KernelOptions::parse("force-init-mm").unwrap(),
    ] {
        for arch in Arch::ALL {
            // hazard-ipi's scan waits for the offline CPU's finish_cpu
            // (it cannot be IPIed): not a sequential schedule.
            for scheme in SchemeKind::ALL
                .into_iter()
                .filter(|&k| k != SchemeKind::HazardIpi)
            {
                let mut cfg = MachineConfig::new(2, arch, scheme);
                cfg.options.kernel = kernel;
                let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
                let mm = m.mm_alloc(0).unwrap();
                m.mmget(0, mm);
                m.switch_to(1, Next::User(mm));
                m.exit_mm(1); // CPU 1 lazy on mm
                m.cpu_disable(1);
                m.switch_to(0, Next::User(mm));
                m.exit_mm(0); // __mmput: exit_mmap, free_pgtables
                m.interrupt_point(1); // the dying CPU's MMU walks
                m.cpu_dead(1);
                m.cpu_online(1);
                m.switch_to(0, Next::Kernel);
                for c in 0..2 {
                    m.quiesce_cpu(c);
                }
                m.finish();
                let hit = m.ledger.violations().iter().any(|v| v.site == SITE);
                let want = arch.is_x86() && kernel.hotplug == HotplugModel::Linux612;
                assert_eq!(hit, want, "{scheme} {arch} {kernel:?}");
            }
        }
    }
}

/// Issue 9, "Kernel paths the model omits", the flush side: x86
/// `should_flush_tlb` and the `tlb_gen` catch-up, `munmap` flushes while
/// the process lives, powerpc radix's `flush_type_needed` trims, x86 deep
/// idle (`leave_mm`) and KVM's paravirt flush. Each test names the kernel
/// function it reproduces (Linux 6.12.117).
mod flush_paths {
    use lazymm::ledger::Ledger;
    use lazymm::runtime::RADIX_TRIM_TIMER;
    use lazymm::schemes::KernelOptions;
    use lazymm::{Arch, Machine, MachineConfig, MmRef, Next, SchemeKind, SchemeOptions};
    use lazymm_sim::run::{run, RunConfig, RunReport};
    use lazymm_sim::workloads::WorkloadKind;
    use lazymm_sim::CountingPlatform;

    fn mach(
        cpus: usize,
        arch: Arch,
        scheme: SchemeKind,
        kernel: &str,
    ) -> Machine<CountingPlatform> {
        let mut cfg = MachineConfig::new(cpus, arch, scheme);
        cfg.options.kernel = KernelOptions::parse(kernel).unwrap();
        Machine::new(CountingPlatform::new(), cfg).unwrap()
    }

    /// A process with a thread running on each of `cpus` CPUs.
    fn spread(m: &Machine<CountingPlatform>, cpus: usize) -> MmRef {
        let mm = m.mm_alloc(0).unwrap();
        for c in 0..cpus {
            if c > 0 {
                m.mmget(0, mm);
            }
            m.switch_to(c, Next::User(mm));
        }
        mm
    }

    /// Every CPU's task exits (those running `mm`), every CPU quiesced:
    /// the ledger's (uaf, double free, leaked, frees).
    fn finish(
        m: &Machine<CountingPlatform>,
        cpus: usize,
        mm: MmRef,
        users_on: &[usize],
    ) -> (u64, u64, u64, u64) {
        for &c in users_on {
            if m.local(c).curr.is_none() {
                m.switch_to(c, Next::User(mm));
            }
            m.exit_mm(c);
            m.switch_to(c, Next::Kernel);
        }
        for c in 0..cpus {
            m.interrupt_point(c);
            m.quiesce_cpu(c);
        }
        let l = m.finish().ledger;
        (l.uaf, l.double_free, l.leaked, l.frees)
    }

    /// arch/x86/mm/tlb.c `native_flush_tlb_multi` without `freed_tables`
    /// (`on_each_cpu_cond_mask(should_flush_tlb, ...)`): of the 3 other
    /// CPUs of the mask, the 2 lazy ones get no IPI ("Lazy TLB will get
    /// flushed at the next context switch"), the running one does; the
    /// caller flushes itself by a direct call. A lazy CPU returning to the
    /// mm then catches up in `switch_mm_irqs_off` (`smp_mb()`, `tlb_gen`
    /// read, "TLB contents went out of date while we were in lazy mode"):
    /// the ledger's stale-TLB check stays clean.
    #[test]
    fn should_flush_tlb_skips_lazy_cpus_and_tlb_gen_catches_up() {
        for arch in [Arch::X86, Arch::X86LazyCpumask] {
            let m = mach(4, arch, SchemeKind::Lightweight, "");
            let mm = spread(&m, 4);
            m.switch_to(1, Next::Kernel);
            m.switch_to(2, Next::Kernel);
            let a = m.p.counts();
            m.mprotect(0);
            let d = m.p.counts().since(&a);
            let st = m.stats().cpu;
            assert_eq!(
                (st.tlb_flushes, st.tlb_flush_ipis, st.lazy_flush_skips),
                (1, 1, 2),
                "{arch}"
            );
            // inc_mm_tlb_gen (one RMW, its full barrier); the mask word;
            // loaded_mm + is_lazy of each of the 3 other CPUs; tlb_gen read
            // by CPU 0's and CPU 3's flush_tlb_func.
            assert_eq!((d.rmws, d.fences, d.loads), (1, 1, 1 + 6 + 2), "{arch}");
            assert_eq!(m.local(1).loaded_tlb_gen, 0, "{arch}: lazy CPU 1 is behind");
            assert_eq!(m.local(3).loaded_tlb_gen, 1, "{arch}: CPU 3 flushed");
            m.switch_to(1, Next::User(mm));
            assert_eq!(
                m.local(1).loaded_tlb_gen,
                1,
                "{arch}: caught up at the switch"
            );
            assert_eq!(m.stats().ledger.uaf, 0, "{arch}");
            assert_eq!(finish(&m, 4, mm, &[0, 1, 2, 3]), (0, 0, 0, 1), "{arch}");
        }
    }

    /// The ledger's stale-TLB check (what the `tlb_gen` protocol of
    /// arch/x86/mm/tlb.c guarantees) fails when a CPU runs the mm's user
    /// code behind a flush that returned, in either order.
    #[test]
    fn a_stale_tlb_is_a_use_after_free() {
        let l = Ledger::new(4, 4);
        let mm = l.alloc(1);
        l.tlb_user(1, Some(mm), 0);
        l.flush_done(0, mm, 1);
        assert_eq!(
            l.counts().uaf,
            1,
            "flush returned while CPU 1 runs mm behind it"
        );
        l.tlb_user(2, Some(mm), 0);
        assert_eq!(l.counts().uaf, 2, "CPU 2 returns to mm behind the flush");
        l.tlb_user(3, Some(mm), 1);
        l.tlb_user(1, None, 0);
        l.flush_done(0, mm, 1);
        assert_eq!(l.counts().uaf, 3, "only CPU 2 is still behind");
        // A queued paravirt flush covers a preempted vCPU until it runs.
        l.tlb_flush_queued(2);
        l.flush_done(0, mm, 2);
        assert_eq!(l.counts().uaf, 4, "CPU 3 is behind generation 2");
        l.tlb_refreshed(2);
        l.tlb_user(2, Some(mm), 0);
        assert_eq!(
            l.counts().uaf,
            4,
            "the host's flush brought CPU 2 up to date"
        );
    }

    /// `munmap` while the process lives (mm/mmap.c `unmap_region`: zap,
    /// `free_pgtables`, `tlb_finish_mmu` with `freed_tables`): x86
    /// `native_flush_tlb_multi` IPIs every CPU of the mask, lazy ones
    /// included, and 6.12's `flush_tlb_func` moves a lazy CPU's MMU to
    /// `init_mm` leaving `active_mm` (and the scheme's borrow); arm64 and
    /// powerpc hash flush by broadcast; powerpc radix with 2 users takes
    /// `flush_type_needed`'s `tlbie` (no trim). Then the process exits:
    /// every scheme clean on every profile (those known unsafe aside).
    #[test]
    fn munmap_flush_reaches_lazy_cpus_while_the_process_lives() {
        for arch in Arch::ALL {
            for scheme in SchemeKind::ALL {
                if scheme.known_unsafe().is_some() {
                    continue;
                }
                let m = mach(4, arch, scheme, "");
                let mm = spread(&m, 4);
                m.exit_mm(1); // two threads exit: CPUs 1, 2 lazy on mm
                m.switch_to(1, Next::Kernel);
                m.exit_mm(2);
                m.switch_to(2, Next::Kernel);
                m.munmap(0);
                let st = m.stats().cpu;
                let want = if arch.is_x86() { 3 } else { 0 };
                assert_eq!(st.tlb_flush_ipis, want, "{scheme} {arch}");
                assert_eq!(st.radix_trims, 0, "{scheme} {arch}");
                for c in [1, 2] {
                    let l = m.local(c);
                    assert_eq!(l.loaded.is_init(), arch.is_x86(), "{scheme} {arch} cpu{c}");
                    // shoot-down holds no lazy reference, and a lazy
                    // CPU's active_mm is still mm everywhere in 6.12.
                    assert_eq!(l.active, mm, "{scheme} {arch} cpu{c}");
                }
                assert_eq!(finish(&m, 4, mm, &[0, 3]), (0, 0, 0, 1), "{scheme} {arch}");
            }
        }
    }

    /// The post-6.12 lazy mask (x86-lazy-cpumask, commit 209954cbc7d0)
    /// under `munmap`: the munmap flush moves a lazy CPU's MMU to `init_mm`
    /// keeping its bit and `active_mm`; the exit flush then finds "another
    /// mm loaded" and clears the bit (`flush_tlb_func`: `f->mm !=
    /// loaded_mm`), so a teardown that scans the mask afterwards misses a
    /// CPU whose `active_mm` is the mm: the mask scan (option `mask-scan`)
    /// frees the mm under it. The fix (default): on x86-lazy-cpumask too,
    /// the teardown visits every CPU.
    #[test]
    fn lazy_cpumask_mask_scan_misses_a_cpu_after_munmap() {
        for scheme in [
            SchemeKind::Lightweight,
            SchemeKind::LightweightV2,
            SchemeKind::HazardHandoff,
            SchemeKind::Shootdown,
        ] {
            for (kernel, bad) in [("mask-scan", true), ("", false)] {
                let m = mach(2, Arch::X86LazyCpumask, scheme, kernel);
                let mm = spread(&m, 2);
                m.exit_mm(1);
                m.switch_to(1, Next::Kernel); // CPU 1 lazy on mm
                m.munmap(0); // CPU 1's MMU to init_mm, bit kept
                m.exit_mm(0); // exit flush clears CPU 1's bit; teardown
                m.switch_to(0, Next::Kernel);
                let counts = finish(&m, 2, mm, &[]);
                let freed_under = m
                    .ledger
                    .violations()
                    .iter()
                    .any(|v| v.cpu == 1 && v.site == "freed while a CPU's active_mm");
                assert_eq!(freed_under, bad, "{scheme} kernel={kernel:?}");
                if !bad {
                    assert_eq!(counts, (0, 0, 0, 1), "{scheme}");
                }
            }
        }
    }

    /// arch/powerpc/mm/book3s64/radix_tlb.c `flush_type_needed(mm, false)`:
    /// the only thread of a process (`mm_users <= 1`) munmaps on CPU 0
    /// while CPUs 1 and 2, where it ran before, are lazy on its mm:
    /// `exit_flush_lazy_tlbs` IPIs them (`smp_call_function_many`, the
    /// caller excluded) and `exit_lazy_flush_tlb` switches each properly to
    /// `init_mm` (`mmdrop_lazy_tlb`) and clears its bit. Under shoot-down
    /// the exit then shoots nobody (kernel/fork.c `cleanup_lazy_tlbs` finds
    /// an empty mask but the caller) instead of 2 CPUs.
    #[test]
    fn radix_single_user_munmap_trims_lazy_cpus() {
        for (munmap, shot) in [(true, 0), (false, 2)] {
            let m = mach(4, Arch::PowerpcRadix, SchemeKind::Shootdown, "");
            let mm = m.mm_alloc(0).unwrap();
            for c in [1, 2] {
                m.switch_to(c, Next::User(mm));
                m.switch_to(c, Next::Kernel); // the thread migrates on
            }
            m.switch_to(0, Next::User(mm));
            if munmap {
                m.munmap(0);
                let st = m.stats().cpu;
                assert_eq!((st.radix_trims, st.tlb_flush_ipis), (1, 2));
                for c in [1, 2] {
                    assert!(m.local(c).active.is_init(), "cpu{c} unlazied");
                }
            }
            let before = m.stats().cpu.ipis;
            assert_eq!(finish(&m, 4, mm, &[0]), (0, 0, 0, 1));
            assert_eq!(m.stats().cpu.ipis - before, shot, "munmap={munmap}");
        }
    }

    /// radix_tlb.c `tick_and_test_trim_clock`: with 2 users, a flush that
    /// is not CPU-local is a `tlbie`, except every 1073rd
    /// (`tlb_mm_cpumask_trim_timer`) on a CPU, which trims the mask with
    /// `exit_flush_lazy_tlbs`; once CPU 1's bit is gone the flushes are
    /// local and the clock stops.
    #[test]
    fn radix_trim_clock_trims_every_1073rd_flush() {
        let m = mach(2, Arch::PowerpcRadix, SchemeKind::Refcount, "");
        let mm = spread(&m, 2);
        m.switch_to(1, Next::Kernel); // lazy, users still 2
        for _ in 0..RADIX_TRIM_TIMER - 1 {
            m.mprotect(0);
        }
        let st = m.stats().cpu;
        assert_eq!((st.radix_trims, st.tlb_flush_ipis), (0, 0));
        m.mprotect(0);
        let st = m.stats().cpu;
        assert_eq!((st.radix_trims, st.tlb_flush_ipis), (1, 1));
        assert!(m.local(1).active.is_init(), "CPU 1 unlazied by the trim");
        for _ in 0..2 * RADIX_TRIM_TIMER {
            m.mprotect(0);
        }
        assert_eq!(m.stats().cpu.radix_trims, 1, "local flushes from now on");
        assert_eq!(m.local(0).trim_clock, 0);
        m.switch_to(1, Next::User(mm));
        assert_eq!(finish(&m, 2, mm, &[0, 1]), (0, 0, 0, 1));
    }

    /// (workload, profile, scheme, [without, with] deep idle).
    type IdleRow = (&'static str, &'static str, SchemeKind, [(u64, u64, u64); 2]);
    /// Six counts of a row.
    type Counts6 = (u64, u64, u64, u64, u64, u64);
    /// (kernel options, scheme, [bare metal, guest]).
    type PvRow = (
        &'static str,
        SchemeKind,
        [(u64, u64, u64, u64, u64, u64); 2],
    );

    fn one_run(scheme: SchemeKind, arch: Arch, workload: WorkloadKind, kernel: &str) -> RunReport {
        run(&RunConfig {
            scheme,
            arch,
            cpus: 16,
            workload,
            seed: 1,
            rounds: 200,
            options: SchemeOptions {
                kernel: KernelOptions::parse(kernel).unwrap(),
                ..SchemeOptions::default()
            },
        })
        .expect("run")
    }

    /// drivers/cpuidle/cpuidle.c `cpuidle_enter_state` → arch/x86/mm/tlb.c
    /// `leave_mm` for `CPUIDLE_FLAG_TLB_FLUSHED` states
    /// (drivers/idle/intel_idle.c): a lazy CPU entering deep idle switches
    /// its MMU to `init_mm` and, on x86, leaves the mask, so the exit flush
    /// does not IPI it (x86-lazy-cpumask keeps the bit: the flush still
    /// IPIs it, once, to clear it). Per-exit costs of every scheme (16
    /// CPUs, seed 1, 200 rounds), without and with `deep-idle`: (exit-flush
    /// IPIs, scheme IPIs, scan steps) per exit, x 100, truncated. The table
    /// of docs/verification.md ("Issue 9 — omitted flush paths").
    #[test]
    fn deep_idle_exit_cost_of_every_scheme() {
        #[rustfmt::skip]
        let want: &[IdleRow] = &[
            ("exit-storm", "x86", SchemeKind::Refcount, [(6, 0, 0), (3, 0, 0)]),
            ("exit-storm", "x86", SchemeKind::Mockup, [(6, 0, 1600), (3, 0, 1600)]),
            ("exit-storm", "x86", SchemeKind::Lightweight, [(6, 0, 1600), (3, 0, 1600)]),
            ("exit-storm", "x86", SchemeKind::LightweightV2, [(6, 0, 1600), (3, 0, 1600)]),
            ("exit-storm", "x86", SchemeKind::HazardHandoff, [(6, 0, 1600), (3, 0, 1600)]),
            ("exit-storm", "x86", SchemeKind::Shootdown, [(6, 1500, 0), (3, 1500, 0)]),
            ("exit-storm", "x86", SchemeKind::HazardIpi, [(6, 6, 1600), (3, 6, 1600)]),
            ("exit-storm", "x86", SchemeKind::Rcu, [(6, 0, 1600), (3, 0, 1600)]),
            ("exit-storm", "x86", SchemeKind::RcuLazyAware, [(6, 0, 1600), (3, 0, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::Refcount, [(1420, 0, 0), (1420, 0, 0)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::Mockup, [(1420, 0, 1600), (1420, 0, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::Lightweight, [(1420, 0, 1600), (1420, 0, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::LightweightV2, [(1420, 0, 1600), (1420, 0, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::HazardHandoff, [(1420, 0, 1600), (1420, 0, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::Shootdown, [(1420, 1500, 0), (1420, 1500, 0)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::HazardIpi, [(1420, 6, 1600), (1420, 6, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::Rcu, [(1420, 0, 1600), (1420, 0, 1600)]),
            ("exit-storm", "x86-lazy-cpumask", SchemeKind::RcuLazyAware, [(1420, 0, 1600), (1420, 0, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::Refcount, [(6, 0, 0), (0, 0, 0)]),
            ("fork-exec-exit", "x86", SchemeKind::Mockup, [(6, 0, 1600), (0, 0, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::Lightweight, [(6, 0, 1600), (0, 0, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::LightweightV2, [(6, 0, 1600), (0, 0, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::HazardHandoff, [(6, 0, 1600), (0, 0, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::Shootdown, [(6, 1500, 0), (0, 1500, 0)]),
            ("fork-exec-exit", "x86", SchemeKind::HazardIpi, [(6, 6, 1600), (0, 6, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::Rcu, [(6, 0, 1600), (0, 0, 1600)]),
            ("fork-exec-exit", "x86", SchemeKind::RcuLazyAware, [(6, 0, 1600), (0, 0, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::Refcount, [(14, 0, 0), (14, 0, 0)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::Mockup, [(14, 0, 1600), (14, 0, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::Lightweight, [(14, 0, 1600), (14, 0, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::LightweightV2, [(14, 0, 1600), (14, 0, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::HazardHandoff, [(14, 0, 1600), (14, 0, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::Shootdown, [(14, 1500, 0), (14, 1500, 0)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::HazardIpi, [(14, 6, 1600), (14, 6, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::Rcu, [(14, 0, 1600), (14, 0, 1600)]),
            ("fork-exec-exit", "x86-lazy-cpumask", SchemeKind::RcuLazyAware, [(14, 0, 1600), (14, 0, 1600)]),
        ];
        let mut got = Vec::new();
        for workload in [WorkloadKind::ExitStorm, WorkloadKind::ForkExecExit] {
            for arch in [Arch::X86, Arch::X86LazyCpumask] {
                for scheme in SchemeKind::ALL {
                    let mut row = [(0, 0, 0); 2];
                    for (i, k) in ["", "deep-idle"].into_iter().enumerate() {
                        let r = one_run(scheme, arch, workload, k);
                        let per = |x: u64| x * 100 / r.exits.max(1);
                        row[i] = (per(r.flush_ipis), per(r.ipis), per(r.scan_steps));
                        if scheme.known_unsafe().is_none() {
                            assert_eq!(
                                (r.uaf, r.double_free, r.leaked),
                                (0, 0, 0),
                                "{scheme} {arch} {workload} {k}"
                            );
                        }
                    }
                    println!(
                        "            (\"{}\", \"{}\", SchemeKind::{:?}, {:?}),",
                        workload.name(),
                        arch.name(),
                        scheme,
                        row
                    );
                    got.push((workload.name(), arch.name(), scheme, row));
                }
            }
        }
        assert_eq!(got, want);
    }

    /// arch/x86/kernel/kvm.c `kvm_flush_tlb_multi` (option `kvm-pv-flush`)
    /// and Nick Piggin's "IPIs are rare" (shoot-lazies: the exit flush has
    /// already taken lazy CPUs off the mm, so the shoot-down finds few). An
    /// 8-vCPU guest: a process ran a thread on every vCPU; vCPUs 1-7 are
    /// lazy on its mm, 4-7 preempted by the host; the last thread exits on
    /// vCPU 0. The PV flush IPIs only 1-3 and sets `KVM_VCPU_FLUSH_TLB` on
    /// 4-7 (the host flushes them at `record_steal_time`), which stay lazy
    /// with their MMU on the mm. Per (kernel, pv): (exit-flush IPIs, flushes
    /// queued, scheme IPIs, scheme IPIs to preempted vCPUs, handoffs,
    /// uses after free), the ledger clean for every scheme not known unsafe
    /// once the vCPUs run again.
    ///
    /// The answer: under Andy's 2022 flush (`pre-issue-9`: the flush
    /// unlazies, shoot-down scans the mask) shoot-down sends 0 IPIs on bare
    /// metal and 4 in the guest, every one to a preempted vCPU (the sender
    /// waits for the host to run it). Under 6.12's flush (MMU only) x86
    /// shoot-down must IPI every online CPU anyway (7 either way), and the
    /// hand-off schemes' fix-up hands the same references (7 for
    /// lightweight, whose teardown takes the exiting vCPU's own borrow
    /// first; 8 for v2 and hazard-handoff): the PV flush only saves
    /// exit-flush IPIs. And `rcu`, clean on x86 under the 2022
    /// flush on bare metal ("the exit flush saves it"), frees under the
    /// preempted lazy vCPUs in a guest (12 uses after free).
    #[test]
    fn kvm_pv_flush_leaves_preempted_vcpus_lazy() {
        #[rustfmt::skip]
        let want: &[PvRow] = &[
            ("", SchemeKind::Refcount, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 0, 0)]),
            ("", SchemeKind::Mockup, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 4, 0)]),
            ("", SchemeKind::Lightweight, [(7, 0, 0, 0, 7, 0), (3, 4, 0, 0, 7, 0)]),
            ("", SchemeKind::LightweightV2, [(7, 0, 0, 0, 8, 0), (3, 4, 0, 0, 8, 0)]),
            ("", SchemeKind::HazardHandoff, [(7, 0, 0, 0, 8, 0), (3, 4, 0, 0, 8, 0)]),
            ("", SchemeKind::Shootdown, [(7, 0, 7, 4, 0, 0), (3, 4, 7, 4, 0, 0)]),
            ("", SchemeKind::HazardIpi, [(7, 0, 7, 4, 0, 0), (3, 4, 7, 4, 0, 0)]),
            ("", SchemeKind::Rcu, [(7, 0, 0, 0, 0, 8), (3, 4, 0, 0, 0, 16)]),
            ("", SchemeKind::RcuLazyAware, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 0, 0)]),
            ("pre-issue-9", SchemeKind::Refcount, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 0, 0)]),
            ("pre-issue-9", SchemeKind::Mockup, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 4, 0)]),
            ("pre-issue-9", SchemeKind::Lightweight, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 4, 0)]),
            ("pre-issue-9", SchemeKind::LightweightV2, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 4, 0)]),
            ("pre-issue-9", SchemeKind::HazardHandoff, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 4, 0)]),
            ("pre-issue-9", SchemeKind::Shootdown, [(7, 0, 0, 0, 0, 0), (3, 4, 4, 4, 0, 0)]),
            ("pre-issue-9", SchemeKind::HazardIpi, [(7, 0, 0, 0, 0, 0), (3, 4, 4, 4, 0, 0)]),
            ("pre-issue-9", SchemeKind::Rcu, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 0, 12)]),
            ("pre-issue-9", SchemeKind::RcuLazyAware, [(7, 0, 0, 0, 0, 0), (3, 4, 0, 0, 0, 0)]),
        ];
        let mut got = Vec::new();
        for kernel in ["", "pre-issue-9"] {
            for scheme in SchemeKind::ALL {
                let mut row = [(0, 0, 0, 0, 0, 0); 2];
                for (i, pv) in [false, true].into_iter().enumerate() {
                    let k = if pv {
                        format!("{kernel},kvm-pv-flush")
                    } else {
                        kernel.to_string()
                    };
                    let m = mach(8, Arch::X86, scheme, &k);
                    let mm = spread(&m, 8);
                    for c in 1..8 {
                        m.exit_mm(c);
                        m.switch_to(c, Next::Kernel);
                    }
                    for c in 4..8 {
                        m.vcpu_preempt(c);
                    }
                    let before: Vec<u64> = (4..8).map(|c| m.cpu_stats(c).ipis_handled).collect();
                    m.exit_mm(0);
                    m.switch_to(0, Next::Kernel);
                    let st = m.stats().cpu;
                    let to_preempted: u64 = (4..8)
                        .zip(before)
                        .map(|(c, b)| m.cpu_stats(c).ipis_handled - b)
                        .sum();
                    // (Unless the scheme's own IPIs moved them: x86
                    // shoot-down IPIs every online CPU at the final mmdrop,
                    // hazard-ipi the CPUs whose hazard pointer names mm.)
                    if pv && kernel.is_empty() && st.ipis == 0 {
                        for c in 4..8 {
                            assert_eq!(m.local(c).loaded, mm, "{scheme}: vCPU {c} stays on mm");
                        }
                    }
                    for c in 4..8 {
                        m.vcpu_resume(c);
                    }
                    let l = finish(&m, 8, mm, &[]);
                    row[i] = (
                        st.flush_ipis,
                        st.pv_flush_queued,
                        st.ipis,
                        to_preempted,
                        st.handoffs,
                        l.0,
                    );
                    if scheme.known_unsafe().is_none() {
                        assert_eq!(l, (0, 0, 0, 1), "{scheme} {k}");
                    }
                }
                println!("            ({kernel:?}, SchemeKind::{scheme:?}, {row:?}),");
                got.push((kernel, scheme, row));
            }
        }
        assert_eq!(got, want);
    }

    /// The `munmap-mix` workload (16 CPUs, seed 1, 200 rounds, lightweight)
    /// on every profile, counted: (flushes, their IPIs, lazy CPUs x86's
    /// `should_flush_tlb` skipped, radix `flush_type_needed` trims, exits,
    /// uses after free). x86 IPIs lazy CPUs only for `munmap`; radix IPIs
    /// only when a trim runs (`mm_users <= 1` or the trim clock); arm64 and
    /// powerpc hash never (broadcast); x86-lazy-cpumask IPIs more (its mask
    /// keeps CPUs that ran the mm before, each cleared by one flush).
    #[test]
    fn munmap_mix_counts_per_profile() {
        let mut got = Vec::new();
        for arch in Arch::ALL {
            let m = mach(16, arch, SchemeKind::Lightweight, "");
            let mut s = lazymm_sim::Sched::new(&m, 1);
            lazymm_sim::workloads::run(&mut s, WorkloadKind::MunmapMix, 200).unwrap();
            s.quiesce();
            let f = m.finish();
            let c = f.cpu;
            let row = (
                c.tlb_flushes,
                c.tlb_flush_ipis,
                c.lazy_flush_skips,
                c.radix_trims,
                c.teardowns,
                f.ledger.uaf,
            );
            println!("            ({:?}, {row:?}),", arch.name());
            got.push((arch.name(), row));
        }
        let want: &[(&str, Counts6)] = &[
            ("x86", (240, 237, 104, 0, 19, 0)),
            ("x86-lazy-cpumask", (240, 359, 127, 0, 19, 0)),
            ("arm64", (240, 0, 0, 0, 19, 0)),
            ("powerpc-radix", (240, 90, 0, 18, 19, 0)),
            ("powerpc-hash", (240, 0, 0, 0, 19, 0)),
        ];
        assert_eq!(got, want);
    }
}

/// Issue 9, the omitted teardown paths: RCU's quiescent states with kernel
/// threads told from idle (item 11), `mmput_async` (kernel/fork.c),
/// PREEMPT_RT's `mmdrop_sched` (include/linux/sched/mm.h). See
/// docs/verification.md, "Issue 9 — omitted teardown paths".
mod teardown_paths {
    use lazymm::ledger::LedgerCounts;
    use lazymm::runtime::{CpuStats, MachineStats};
    use lazymm::schemes::KernelOptions;
    use lazymm::{Arch, Machine, MachineConfig, MmRef, Next, SchemeKind};
    use lazymm_sim::sched::Sched;
    use lazymm_sim::workloads::{self, WorkloadKind};
    use lazymm_sim::CountingPlatform;

    fn machine_with(
        cpus: usize,
        arch: Arch,
        scheme: SchemeKind,
        kernel: KernelOptions,
    ) -> Machine<CountingPlatform> {
        let mut cfg = MachineConfig::new(cpus, arch, scheme);
        cfg.options.kernel = kernel;
        Machine::new(CountingPlatform::new(), cfg).unwrap()
    }

    fn end(m: &Machine<CountingPlatform>) -> MachineStats {
        for c in 0..m.ncpus {
            m.quiesce_cpu(c);
        }
        m.finish()
    }

    fn ledger(l: &LedgerCounts) -> (u64, u64, u64, u64) {
        (l.uaf, l.double_free, l.leaked, l.frees)
    }

    /// CPU 1 ran a task of A and now runs `on_1` (lazy on A); A's last task
    /// exits on CPU 0, which goes idle: `__mmdrop` queues `call_rcu`.
    fn exit_while_lazy(scheme: SchemeKind, on_1: Next) -> (Machine<CountingPlatform>, MmRef) {
        let m = machine_with(2, Arch::Arm64, scheme, KernelOptions::default());
        let a = m.mm_alloc(0).unwrap();
        m.mmget(0, a);
        m.switch_to(1, Next::User(a));
        m.switch_to(1, on_1);
        m.mmput(1, a); // CPU 1's task exited elsewhere; CPU 1 still lazy on A
        m.switch_to(0, Next::User(a));
        m.exit_mm(0);
        m.switch_to(0, Next::Kernel);
        (m, a)
    }

    /// Item 11. Non-preemptible RCU (Linux 6.12 kernel/rcu/tree.c
    /// rcu_sched_clock_irq: a QS only `if (user || rcu_is_cpu_rrupt_from_idle())`;
    /// kernel/rcu/tree_plugin.h rcu_note_context_switch: every context
    /// switch): a *running kernel thread* is not quiescent. Before issue 9 the
    /// runtime could not tell it from idle and freed A at once under it.
    /// Now `rcu` waits for CPU 1's kernel thread through its ticks, and
    /// frees A at its first context switch, kthread -> kthread, which keeps
    /// the lazy borrow: the use-after-free stays, reached through the
    /// context switch instead of idle. `rcu-lazy-aware` is clean both ways.
    #[test]
    fn rcu_waits_for_a_running_kthread_until_its_context_switch() {
        // Idle: an extended QS, freed at CPU 0's next switch.
        let (m, _) = exit_while_lazy(SchemeKind::Rcu, Next::Kernel);
        assert_eq!(m.stats().ledger.frees, 1, "idle is quiescent");
        assert!(m.stats().ledger.uaf >= 1, "freed under idle's MMU");

        // A kernel thread: watched by RCU.
        let (m, _) = exit_while_lazy(SchemeKind::Rcu, Next::Kthread);
        for _ in 0..3 {
            m.interrupt_point(1); // rcu_sched_clock_irq(0), not from idle
            m.interrupt_point(0);
        }
        assert_eq!(
            ledger(&m.stats().ledger),
            (0, 0, 0, 0),
            "a running kernel thread is not quiescent: no free yet"
        );
        assert_eq!(m.stats().cpu.frees_deferred, 1);
        m.switch_to(1, Next::Kthread); // rcu_note_context_switch: a QS
        m.interrupt_point(0); // RCU_SOFTIRQ on CPU 0: the callback
        let l = m.stats().ledger;
        assert_eq!(l.frees, 1, "freed after the kthread's context switch");
        assert!(l.uaf >= 1, "... which kept the lazy borrow: {l:?}");

        for on_1 in [Next::Kernel, Next::Kthread] {
            let (m, _) = exit_while_lazy(SchemeKind::RcuLazyAware, on_1);
            m.switch_to(1, Next::Kthread);
            m.interrupt_point(0);
            let f = end(&m);
            assert_eq!(ledger(&f.ledger), (0, 0, 0, 1), "rcu-lazy-aware {on_1:?}");
        }
    }

    /// Item 11: user mode is a QS at the scheduling-clock interrupt
    /// (kernel/rcu/tree.c rcu_sched_clock_irq(user = 1) -> rcu_qs()): a CPU
    /// running a user task of another mm ends the grace period at its tick,
    /// with no context switch; the same CPU in a kernel thread does not.
    #[test]
    fn rcu_user_mode_tick_is_a_quiescent_state() {
        for (on_1, freed) in [(Next::Kthread, 0), (Next::Kernel, 1)] {
            let m = machine_with(2, Arch::Arm64, SchemeKind::Rcu, KernelOptions::default());
            let a = m.mm_alloc(0).unwrap();
            let b = m.mm_alloc(1).unwrap();
            m.switch_to(1, Next::User(b));
            m.switch_to(0, Next::User(a));
            m.exit_mm(0); // A: __mmdrop -> call_rcu, CPU 1 in user mode (B)
            m.switch_to(0, Next::Kernel);
            assert_eq!(m.stats().ledger.frees, 0);
            m.interrupt_point(1); // tick from user mode: a QS
            m.interrupt_point(0);
            assert_eq!(m.stats().ledger.frees, 1, "user-mode tick");
            // Second half: CPU 1 leaves B's task for `on_1`; a kernel
            // thread at its tick is not a QS, idle is an extended one.
            m.switch_to(1, on_1);
            let c = m.mm_alloc(0).unwrap();
            m.switch_to(0, Next::User(c));
            m.exit_mm(0);
            m.switch_to(0, Next::Kernel);
            m.interrupt_point(1);
            m.interrupt_point(0);
            // C never ran on CPU 1: freed iff CPU 1 is idle (EQS).
            assert_eq!(m.stats().ledger.frees, 1 + freed, "{on_1:?}");
        }
    }

    /// kernel/fork.c mmput_async / mmput_async_fn: the last `users`
    /// reference is dropped by a kernel thread (kthread_use_mm with
    /// mmget_not_zero, then mmput_async: binder, the bpf task iterator);
    /// `__mmput` runs later on a kworker: on the same CPU once it borrowed
    /// another mm (a user task of B ran meanwhile), or, when that CPU went
    /// offline first, on CPU 0 (kernel/workqueue.c unbind_workers). Every
    /// safe scheme on every profile: no use-after-free, no leak, one free;
    /// the teardown is counted on the kworker's CPU.
    #[test]
    fn mmput_async_tears_down_on_a_kworker() {
        for arch in Arch::ALL {
            for scheme in SchemeKind::ALL
                .into_iter()
                .filter(|k| k.known_unsafe().is_none())
            {
                for offline in [false, true] {
                    let m = machine_with(3, arch, scheme, KernelOptions::default());
                    let a = m.mm_alloc(0).unwrap();
                    let b = m.mm_alloc(2).unwrap();
                    m.mmget(0, a);
                    m.switch_to(1, Next::User(a));
                    m.switch_to(1, Next::Kernel); // CPU 1 lazy on A
                    m.mmput(1, a);
                    // CPU 2: a kernel thread adopts A with a users reference.
                    m.switch_to(2, Next::Kthread);
                    m.mmget(2, a);
                    m.kthread_use_mm(2, a);
                    m.kthread_unuse_mm(2); // lazy on A
                    m.switch_to(0, Next::User(a));
                    m.exit_mm(0); // users 2 -> 1: no teardown
                    m.switch_to(0, Next::Kernel);
                    m.mmput_async(2, a); // users 1 -> 0: queued on CPU 2
                    let st = m.stats().cpu;
                    assert_eq!(
                        (st.async_mmputs, st.teardowns, m.pending_async_mmputs()),
                        (1, 0, 1),
                        "{scheme} {arch}"
                    );
                    // CPU 2 runs a user task of B, then its kworker.
                    m.switch_to(2, Next::User(b));
                    m.switch_to(2, Next::Kthread);
                    let worker = if offline {
                        m.switch_to(2, Next::Kernel);
                        m.cpu_offline(2);
                        m.switch_to(0, Next::Kthread);
                        0
                    } else {
                        2
                    };
                    assert_eq!(m.run_async_mmput(worker), 1, "{scheme} {arch}");
                    assert_eq!(m.cpu_stats(worker).async_teardowns, 1);
                    assert_eq!(m.stats().cpu.teardowns, 1);
                    if offline {
                        m.cpu_online(2);
                    } else {
                        m.switch_to(2, Next::User(b));
                        m.exit_mm(2);
                    }
                    m.switch_to(worker, Next::Kernel);
                    if offline {
                        m.switch_to(2, Next::User(b));
                        m.exit_mm(2);
                        m.switch_to(2, Next::Kernel);
                    }
                    let f = end(&m);
                    assert_eq!(
                        ledger(&f.ledger),
                        (0, 0, 0, 2),
                        "{scheme} {arch} offline={offline}: {:?}",
                        m.ledger.violations()
                    );
                }
            }
        }
    }

    fn workload(
        scheme: SchemeKind,
        arch: Arch,
        kind: WorkloadKind,
        kernel: KernelOptions,
    ) -> (CpuStats, LedgerCounts) {
        let m = machine_with(8, arch, scheme, kernel);
        let mut s = Sched::new(&m, 1);
        workloads::run(&mut s, kind, 200).unwrap();
        s.quiesce();
        let f = m.finish();
        (f.cpu, f.ledger)
    }

    /// kernel/fork.c mmput_async in the `kthread-mix` workload (workers drop
    /// an adopted mm with mmput_async half the time; their kworker turn runs
    /// the pool's works), 8 CPUs, seed 1, 200 rounds: exact counts, and
    /// every safe scheme clean on every profile.
    #[test]
    fn kthread_mix_runs_mmput_async_on_kworkers() {
        for arch in Arch::ALL {
            for scheme in SchemeKind::ALL
                .into_iter()
                .filter(|k| k.known_unsafe().is_none())
            {
                let (st, l) = workload(
                    scheme,
                    arch,
                    WorkloadKind::KthreadMix,
                    KernelOptions::default(),
                );
                assert_eq!(
                    (l.uaf, l.double_free, l.leaked),
                    (0, 0, 0),
                    "{scheme} {arch}"
                );
                assert_eq!(st.async_mmputs, st.async_teardowns, "{scheme} {arch}");
                assert!(st.async_teardowns > 0, "{scheme} {arch}: no async teardown");
            }
        }
        let (st, _) = workload(
            SchemeKind::Lightweight,
            Arch::Arm64,
            WorkloadKind::KthreadMix,
            KernelOptions::default(),
        );
        assert_eq!((st.async_mmputs, st.teardowns), (ASYNC_MMPUTS, TEARDOWNS));
    }

    /// Pinned by kthread_mix_runs_mmput_async_on_kworkers (lightweight,
    /// arm64, 8 CPUs, seed 1, 200 rounds).
    const ASYNC_MMPUTS: u64 = 3;
    const TEARDOWNS: u64 = 10;

    /// PREEMPT_RT (option `preempt-rt`): include/linux/sched/mm.h
    /// mmdrop_sched, called by kernel/sched/core.c finish_task_switch through
    /// mmdrop_lazy_tlb_sched, queues the final `__mmdrop` with
    /// `call_rcu(&mm->delayed_drop, __mmdrop_delayed)`. Refcount, arm64: A's
    /// last lazy reference is dropped in CPU 0's finish_task_switch while
    /// CPU 1 runs a user task of B: not freed until CPU 1's user-mode tick
    /// (a QS) and CPU 0's next RCU_SOFTIRQ; without the option, freed at
    /// once.
    #[test]
    fn mmdrop_sched_delays_the_final_drop_through_call_rcu() {
        for rt in [false, true] {
            let k = KernelOptions {
                preempt_rt: rt,
                ..KernelOptions::default()
            };
            let m = machine_with(2, Arch::Arm64, SchemeKind::Refcount, k);
            let a = m.mm_alloc(0).unwrap();
            let b = m.mm_alloc(1).unwrap();
            m.switch_to(1, Next::User(b));
            m.switch_to(0, Next::User(a));
            m.exit_mm(0); // CPU 0 lazy on A: its count is the lazy reference
            m.switch_to(0, Next::User(b)); // finish_task_switch: the last drop
            let st = m.stats();
            assert_eq!(st.cpu.rcu_delayed_drops, u64::from(rt));
            assert_eq!(st.ledger.frees, u64::from(!rt), "rt={rt}");
            m.interrupt_point(0); // CPU 1 still in its first reading
            assert_eq!(m.stats().ledger.frees, u64::from(!rt), "rt={rt}");
            m.interrupt_point(1); // user-mode tick: CPU 1's QS
            m.interrupt_point(0); // the callback: __mmdrop_delayed
            assert_eq!(m.stats().ledger.frees, 1, "rt={rt}");
            m.exit_mm(0);
            m.switch_to(0, Next::Kernel);
            m.switch_to(1, Next::Kernel);
            let f = end(&m);
            assert_eq!(ledger(&f.ledger), (0, 0, 0, 2), "rt={rt}");
        }
    }

    /// PREEMPT_RT's counts on `fork-exec-exit` (8 CPUs, seed 1, 200 rounds,
    /// arm64): every scheme stays clean; under refcount (and mockup, which
    /// keeps it) the final drops in finish_task_switch go through call_rcu;
    /// the slot schemes' lazy drops are not `mmdrop_sched` (a handed unit
    /// dropped there is).
    #[test]
    fn preempt_rt_counts() {
        let rt = KernelOptions::parse("preempt-rt").unwrap();
        for scheme in SchemeKind::ALL {
            let (base, _) = workload(
                scheme,
                Arch::Arm64,
                WorkloadKind::ForkExecExit,
                KernelOptions::default(),
            );
            let (st, l) = workload(scheme, Arch::Arm64, WorkloadKind::ForkExecExit, rt);
            if scheme.known_unsafe().is_none() {
                assert_eq!((l.uaf, l.double_free, l.leaked), (0, 0, 0), "{scheme}");
            }
            assert_eq!(base.rcu_delayed_drops, 0);
            eprintln!(
                "{scheme}: rcu_delayed_drops {} of {} teardowns, frees_deferred {} -> {}",
                st.rcu_delayed_drops, st.teardowns, base.frees_deferred, st.frees_deferred
            );
            // refcount and mockup: their lazy reference; lightweight: the
            // unit a teardown handed over, dropped at the unlazy in
            // finish_task_switch; v2 and hazard-handoff drop theirs outside
            // it (mailbox / drop_mm), the others hold no count.
            let want = match scheme {
                SchemeKind::Refcount | SchemeKind::Mockup => RT_REFCOUNT_DELAYED,
                SchemeKind::Lightweight => RT_LIGHTWEIGHT_DELAYED,
                _ => 0,
            };
            assert_eq!(st.rcu_delayed_drops, want, "{scheme}");
            assert_eq!(st.frees_deferred, base.frees_deferred + want, "{scheme}");
        }
    }

    /// Pinned by preempt_rt_counts.
    const RT_REFCOUNT_DELAYED: u64 = 119;

    /// Pinned by preempt_rt_counts: lightweight's teardown takes the
    /// exiting task's own borrow first (the kernel patch's self take,
    /// issue 11), so only units handed to other CPUs reach
    /// finish_task_switch's drop (119 before the self take).
    const RT_LIGHTWEIGHT_DELAYED: u64 = 23;

    /// `lightweight` with its `kthread_lazy_entry` hook replaced by
    /// nothing (the users re-check forgotten).
    struct NoUsersCheck(lazymm::schemes::lightweight::Lightweight);

    impl<P: lazymm::Platform> lazymm::schemes::Scheme<P> for NoUsersCheck {
        fn kind(&self) -> SchemeKind {
            SchemeKind::Lightweight
        }
        fn base(&self) -> Option<&dyn lazymm::schemes::Scheme<P>> {
            Some(&self.0)
        }
        fn kthread_lazy_entry(
            &self,
            _m: &Machine<P>,
            _me: &mut lazymm::runtime::CpuLocal,
            _mm: MmRef,
        ) {
            // Deliberately nothing: the re-check of `users` is missing.
        }
    }

    /// Item 3's fix, now a scheme hook (`Scheme::kthread_lazy_entry`, issue 9
    /// "wrong depth"): kernel/kthread.c kthread_use_mm needs only an mmgrab
    /// (KVM's kvm->mm), so a kernel thread on CPU 1 adopts A after A's last
    /// task exited on CPU 0 (users 0, the fix-up already ran and handed CPU 0
    /// its own unit), then kthread_unuse_mm publishes A in CPU 1's slot. The
    /// hand-off schemes' hook re-reads `users` and leaves lazy mode: clean.
    /// A wrapper that does not forward the hook frees A under CPU 1 when CPU
    /// 0 drops its unit. The other schemes need no hook (their lazy borrow
    /// is counted, shot down or waited for): clean too.
    #[test]
    fn kthread_lazy_entry_is_a_scheme_hook() {
        let run = |m: &Machine<CountingPlatform>| {
            let a = m.mm_alloc(0).unwrap();
            let b = m.mm_alloc(0).unwrap();
            m.switch_to(1, Next::Kthread);
            m.mmgrab(1, a); // kvm->mm
            m.switch_to(0, Next::User(a));
            m.exit_mm(0); // users 0: __mmput, the fix-up
            m.switch_to(0, Next::Kernel);
            m.kthread_use_mm(1, a); // users 0, only the grab
            m.kthread_unuse_mm(1); // lazy on A: kthread_lazy_entry
            m.mmdrop(1, a); // the VM goes away
            m.switch_to(0, Next::User(b)); // CPU 0 drops its unit
            m.interrupt_point(1);
            m.exit_mm(0);
            m.switch_to(0, Next::Kernel);
            end(m)
        };
        for arch in Arch::ALL {
            for scheme in SchemeKind::ALL
                .into_iter()
                .filter(|k| k.known_unsafe().is_none())
            {
                let f = run(&machine_with(2, arch, scheme, KernelOptions::default()));
                assert_eq!(ledger(&f.ledger), (0, 0, 0, 2), "{scheme} {arch}");
            }
            let m = Machine::with_scheme(
                CountingPlatform::new(),
                MachineConfig::new(2, arch, SchemeKind::Lightweight),
                Box::new(NoUsersCheck(lazymm::schemes::lightweight::Lightweight {
                    opts: lazymm::SchemeOptions::default(),
                })),
            )
            .unwrap();
            let f = run(&m);
            assert!(
                f.ledger.uaf >= 1,
                "{arch}: the hook is what saves it: {f:?}"
            );
        }
    }
}

/// `lru-gen` (CONFIG_LRU_GEN_WALKS_MMU, on in Debian's 6.12 amd64
/// configuration): context_switch() (kernel/sched/core.c) calls
/// `lru_gen_use_mm(next->mm)` after switch_mm_irqs_off() on every switch to
/// a task with an mm, and exec_mmap() (fs/exec.c) on exec: one plain store
/// to `mm->lru_gen.bitmap` (include/linux/mm_types.h), a line of the mm
/// every CPU running the process writes, on x86 and arm64
/// (`ARCH_HAS_HW_PTE_YOUNG`); nothing on powerpc.
mod lru_gen {
    use super::*;
    use lazymm::mm::MmRef;

    /// (stores, transfers of the lru_gen line) for: CPUs 0 and 1 run
    /// threads of one mm, each goes idle and comes back once, then CPU 0
    /// execs a new mm.
    fn run_once(arch: Arch, kernel: &str) -> (u64, u64) {
        let mut cfg = MachineConfig::new(2, arch, SchemeKind::Lightweight);
        cfg.options.kernel = KernelOptions::parse(kernel).unwrap();
        let m = Machine::new(CountingPlatform::new(), cfg).unwrap();
        let mm: MmRef = m.mm_alloc(0).unwrap();
        m.mmget(0, mm);
        m.switch_to(0, Next::User(mm));
        m.switch_to(1, Next::User(mm));
        m.switch_to(0, Next::Kernel);
        m.switch_to(0, Next::User(mm));
        m.switch_to(1, Next::Kernel);
        m.switch_to(1, Next::User(mm));
        let new = m.mm_alloc(0).unwrap();
        m.exec(0, new);
        let c = m.p.counts();
        let lru = lazymm_sim::counting::KIND_NAMES
            .iter()
            .position(|k| *k == "mm.lru_gen")
            .unwrap();
        (c.stores, c.transfers_by_kind[lru])
    }

    #[test]
    fn one_store_per_switch_to_a_user_task_and_per_exec() {
        for arch in [Arch::X86, Arch::X86LazyCpumask, Arch::Arm64] {
            let (off, _) = run_once(arch, "");
            let (on, transfers) = run_once(arch, "lru-gen");
            // 4 switches to a user task + 1 exec.
            assert_eq!(on - off, 5, "{arch}");
            // CPU 0 first (the line is nowhere), then 1, 0, 1 take it from
            // each other; the exec's store is to the new mm's line.
            assert_eq!(transfers, 3, "{arch}");
        }
        for arch in [Arch::PowerpcRadix, Arch::PowerpcHash] {
            assert_eq!(run_once(arch, ""), run_once(arch, "lru-gen"), "{arch}");
        }
    }
}
