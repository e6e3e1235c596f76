//! `hazard-ipi`: Mathieu Desnoyers' hazard pointers for the lazy
//! `active_mm` ("[RFC PATCH v2 4/4] sched+mm: Use hazard pointers to track
//! lazy active mm existence", Oct 2024; kernel-history 4.1).
//!
//! Shoot-lazies with an exact per-CPU filter: each CPU publishes the one mm
//! it borrows lazily in a hazard slot; the final `__mmdrop` scans every
//! online CPU's slot and IPIs only the CPUs whose slot holds the mm, then
//! waits until the slot no longer does. No `mm_cpumask` dependency.
//!
//! # State machine
//!
//! Per-CPU hazard slot (`hp_domain_sched_lazy_mm`, one slot per CPU):
//!
//! ```text
//!   NULL   this CPU borrows no mm lazily
//!   mm     this CPU borrows mm lazily: mm must not be freed under it
//!
//!   owner     NULL -> mm   grab_lazy (user->kernel, exit_mm,
//!                          kthread_unuse_mm): smp_mb(); WRITE_ONCE(slot, mm)
//!                          (hp_allocate; existence guaranteed by the task's
//!                          `users` reference, so no re-validation)
//!   owner     mm -> NULL   drop_lazy (finish_task_switch after the MMU
//!                          switched away; exec from a kthread;
//!                          kthread_use_mm; hotplug): smp_mb();
//!                          WRITE_ONCE(slot, NULL)
//!   IPI (run by the owner, requested by __mmdrop of mm)
//!             mm -> NULL   do_shoot_lazy_tlb: active_mm = init_mm,
//!                          switch_mm, then the slot is cleared
//!   __mmdrop  reads only   hp_scan: smp_mb(); for each online CPU:
//!                          load_acquire(slot) == mm ? IPI (wait=1); then
//!                          spin while load_acquire(slot) == mm
//! ```
//!
//! `mm->count`: `1` for all users together, plus other grabs. Lazy
//! transitions never touch it.
//!
//! Cost: a full fence and a store on the CPU's own slot per lazy
//! transition; per final `__mmdrop`, one load per online CPU (all of them,
//! every profile) plus one IPI per CPU that really holds the mm. On x86 the
//! exit flush already unlazied every lazy CPU (and cleared its slot), so
//! the scan finds nobody.
//!
//! The waiting CPU keeps serving its own IPI mailbox (the runtime's
//! `send_ipi` does, and so does the wait loop here), so two CPUs shooting
//! at each other cannot deadlock.

use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{CpuLocal, Ipi, Machine};
use crate::schemes::{OrderingSite, Scheme, SchemeKind, SchemeOptions};

/// See the module documentation.
#[derive(Debug)]
pub struct HazardIpi {
    /// Options (only `weaken` applies).
    pub opts: SchemeOptions,
}

/// The orderings `hazard-ipi` relies on.
pub const SITES: &[OrderingSite] = &[
    OrderingSite {
        name: "hi-publish-fence",
        strong: "SeqCst fence",
        why: "smp_mb() before publishing: the membarrier full barrier mmgrab used to give; the mm's \
              existence is guaranteed by the task's users reference (kernel-history 8.1), so the \
              lifetime does not depend on it",
        decided_by: "litmus/publish-scan+mmput-chain.litmus (Never: the publish needs no barrier of its \
                     own, the task's users reference orders it); loom passes with it removed; membarrier \
                     is not modelled",
    },
    OrderingSite {
        name: "hi-clear-fence",
        strong: "SeqCst fence",
        why: "smp_mb() before WRITE_ONCE(slot, NULL): this CPU's uses of the mm (page-table walks) \
              happen-before a scan that reads NULL and frees (the fence acts as the release; the scan's \
              load is the acquire)",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown; the \
                     exiting CPU lazy on its own mm (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "hi-scan-fence",
        strong: "SeqCst fence",
        why: "hp_scan's smp_mb() (\"Store A before Load B\"): count reaching 0 is ordered before the \
              slot loads; for this user (publish only under a users reference) the AcqRel count \
              decrement already gives it",
        decided_by: "litmus/publish-scan+sb+mb.litmus (Never: atomic_dec_and_test is the full barrier \
                     the scan needs; hp_scan's own smp_mb serves the generic hazard-pointer user, \
                     hp-publish-scan+atomic-dec.litmus); loom passes with it removed",
    },
    OrderingSite {
        name: "hi-scan-load",
        strong: "Acquire",
        why: "a scan that reads NULL (or another mm), or that stops waiting, must see the owner's uses \
              of the mm before it frees (pairs with hi-clear-fence)",
        decided_by: "loom: unlazy to init_mm racing the teardown; unlazy racing the teardown hand-off; \
                     re-lazy of a new mm reusing the address (ABA) (lazymm-verify scenarios)",
    },
];

impl HazardIpi {
    fn clear<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        // smp_mb() (site hi-clear-fence): our uses of the mm happen-before
        // a scan that reads the NULL below (fence-to-acquire-load
        // synchronization with hi-scan-load).
        if self.opts.fence_kept("hi-clear-fence") {
            m.p.fence(me.id, Ordering::SeqCst);
        }
        // Ordering: Relaxed (WRITE_ONCE), ordered by the fence above.
        m.p.store(me.id, &m.percpu[me.id].slot, 0, Ordering::Relaxed);
        me.scheme_private[0] = 0;
    }
}

impl<P: Platform> Scheme<P> for HazardIpi {
    fn kind(&self) -> SchemeKind {
        SchemeKind::HazardIpi
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // smp_mb() (site hi-publish-fence): membarrier's barrier.
        if self.opts.fence_kept("hi-publish-fence") {
            m.p.fence(me.id, Ordering::SeqCst);
        }
        // Ordering: Relaxed (hp_allocate's WRITE_ONCE). The CPU publishes
        // while switching away from a task holding `users`; __mmdrop can
        // only run after that reference is put (AcqRel), so its scan
        // happens-after this store (kernel-history 8.1).
        m.p.store(me.id, &m.percpu[me.id].slot, mm.word(), Ordering::Relaxed);
        me.scheme_private[0] = mm.word();
        me.slot_shadow = mm;
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        self.clear(m, me);
    }

    fn before_free(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        let w = mm.word();
        // hp_scan(): smp_mb() (site hi-scan-fence), then every CPU.
        if self.opts.fence_kept("hi-scan-fence") {
            m.p.fence(me.id, Ordering::SeqCst);
        }
        let acq = self.opts.ord("hi-scan-load", Ordering::Acquire);
        // Under Linux 6.12's hotplug an offline CPU keeps its hazard
        // pointer until finish_cpu's mmdrop_lazy_tlb clears it (kernel/cpu.c):
        // it cannot be IPIed (on_each_cpu_mask skips it), so the scan waits
        // for that instead (found by loom: scenarios::offline_races_teardown).
        let offline_wait = m.opts.kernel.hotplug == crate::schemes::HotplugModel::Linux612;
        for cpu in 0..m.ncpus {
            if cpu != me.id && !m.is_online(cpu) {
                if offline_wait {
                    me.stats.scan_steps += 1;
                    let slot = &m.percpu[cpu].slot;
                    // Ordering: Acquire (site hi-scan-load), as below.
                    while m.p.load(me.id, slot, acq) == w {
                        m.drain_ipis(me);
                        m.p.spin();
                    }
                }
                continue;
            }
            me.stats.scan_steps += 1;
            let slot = &m.percpu[cpu].slot;
            // Ordering: Acquire (site hi-scan-load) pairs with the owner's
            // hi-clear-fence: reading NULL means its uses are over.
            if m.p.load(me.id, slot, acq) == w {
                // retire_lazy_mm_hp(): smp_call_function_single(cpu,
                // do_shoot_lazy_tlb, mm, 1) (the debug re-check IPI of the
                // RFC is not modelled).
                m.send_ipi(me, cpu, Ipi::Scheme(mm));
                // Busy-wait until the slot no longer holds mm, serving our
                // own mailbox meanwhile. Ordering: Acquire, as above.
                while m.p.load(me.id, slot, acq) == w {
                    m.drain_ipis(me);
                    m.p.spin();
                }
            }
        }
    }

    fn ipi(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // do_shoot_lazy_tlb() + WRITE_ONCE(slot, NULL).
        if me.active == mm && me.curr.is_none() {
            // Switches MMU and active_mm to init_mm and releases the borrow
            // (drop_lazy above: fence + clear).
            m.unlazy_to_init(me);
        }
        if me.scheme_private[0] == mm.word() {
            self.clear(m, me);
        }
    }

    fn ordering_sites(&self) -> &'static [OrderingSite] {
        SITES
    }
}
