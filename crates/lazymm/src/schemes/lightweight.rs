//! `lightweight`: the seed finished.
//!
//! The seed's per-CPU slot, with everything its author listed as wrong or
//! missing done: no `count` traffic on lazy transitions (the `active_mm`
//! refcount is gone); the fix-up is generic code in `__mmput` after
//! `exit_mmap`, iterating the profile's `for_each_possible_lazymm_cpu`
//! (`mm_cpumask` where the mask covers lazy CPUs, all online CPUs otherwise:
//! the default the seed's m68k build lacked); the hand-off orderings are the
//! ones the verification proved necessary; the batched grab; the drop moved
//! out of the interrupts-off switch path into `finish_task_switch` (and
//! deferred when an unlazy happens in an IPI); the non-atomic unlazy where it
//! is sound.
//!
//! # State machine
//!
//! Per-CPU slot (`lazy_mm`):
//!
//! ```text
//!   NULL   this CPU borrows no mm lazily (any mm it uses is pinned by a
//!          real reference: its task's `users`)
//!   mm     this CPU borrows mm lazily; mm must not be freed under it
//!   mm|1   as `mm`, and a teardown has handed this CPU one unit of
//!          mm->count, which it must drop when it stops borrowing
//!
//!   owner  NULL -> mm       grab_lazy (user->kernel, exit_mm,
//!                           kthread_unuse_mm): plain store
//!   owner  mm|mm|1 -> NULL  drop_lazy (finish_task_switch after the MMU
//!                           switched away; unlazy in an IPI; exec from a
//!                           kthread; kthread_use_mm; hotplug): exchange,
//!                           and mmdrop if bit 0 was set (deferred when
//!                           interrupts are off). A plain store when a
//!                           *user task* of the same mm now runs (SameMm:
//!                           it holds `users`, so no teardown of mm can have
//!                           handed anything over; a kernel thread in
//!                           `kthread_use_mm` may hold only an `mmgrab`:
//!                           exchange, issue 9 item 3).
//!   teardown  mm -> NULL    mm_teardown, on its own CPU first, when the
//!                           calling task has no mm and borrows the dying
//!                           one (after exit_mm): to init_mm, exchange (the
//!                           kernel patch's self take, `self_takes`)
//!   teardown  mm -> mm|1    mm_teardown (users == 0): after one count unit
//!                           is reserved for this CPU; on failure (the
//!                           owner got there first) the unit is returned.
//! ```
//!
//! `mm->count`: `1` for all users together, plus one unit per hand-off not
//! yet dropped, plus other grabs (`kthread_use_mm`). Lazy transitions never
//! touch it. Only the teardown CPU adds (once, a batch of `ncpus` with the
//! batched grab, returning what it did not hand out); only slot owners and
//! the teardown's final `mmdrop` subtract.
//!
//! Invariant the fix-up relies on: `users == 0` implies no CPU can newly
//! publish `mm` and *stay* lazy on it (a user task publishes while switching
//! away from a task of `mm`, which holds a `users` reference; see
//! kernel-history 8.1). A kernel thread that adopted `mm` with only an
//! `mmgrab` (`kthread_use_mm`, kernel/kthread.c) can publish after
//! `users` reached 0: the runtime's `kthread_lazy_users_check` re-reads
//! `users` after a full fence and leaves lazy mode at once if it is 0; the
//! fence at the start of the fix-up (site `lw-teardown-fence`) is the other
//! half of that store-buffering pair (issue 9, item 3).
//!
//! On x86 under Linux 6.12 the scan visits every online CPU, not the mask
//! (`Machine::lazy_cpus`): 6.12's `switch_mm_irqs_off` clears a CPU's bit
//! before its CR3 write, and `flush_tlb_func` leaves a lazy CPU's borrow
//! while its bit goes (issue 9, items 1 and 4). Under 6.12's hotplug the
//! scan also visits offline CPUs (their borrow ends in `finish_cpu`).

use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{CpuLocal, Machine};
use crate::schemes::{OrderingSite, Scheme, SchemeKind, SchemeOptions, UnlazyPlain};

/// See the module documentation.
#[derive(Debug)]
pub struct Lightweight {
    /// Options.
    pub opts: SchemeOptions,
}

/// The orderings `lightweight` relies on.
pub const SITES: &[OrderingSite] = &[
    OrderingSite {
        name: "lw-publish",
        strong: "Release",
        why: "a teardown of the previously borrowed mm that reads this newer slot word must see this \
              CPU's last use of that mm (C11: a Relaxed store ends the unlazy xchg's release sequence)",
        decided_by: "loom: lazymm-verify tests/loom_schemes.rs::fixed_lightweight_unlazy_racing_handoff_arm64, \
                     fixed_lightweight_aba_arm64 (fail with Relaxed)",
    },
    OrderingSite {
        name: "lw-unlazy-xchg",
        strong: "AcqRel",
        why: "Release: this CPU's last use of mm happens-before a teardown that reads NULL and frees; \
              Acquire: the teardown's count increment happens-before our decrement of a handed-over unit",
        decided_by: "loom: lazymm-verify tests/loom_lightweight.rs::weakened_unlazy_xchg_is_caught (Release half); \
                     litmus/v1-handoff+cmpxchg+xchg-relaxed.litmus (Acquire half, loom's blind spot)",
    },
    OrderingSite {
        name: "lw-unlazy-store",
        strong: "Release",
        why: "the plain unlazy (same mm) is a newer slot word: a teardown of the previously borrowed mm \
              that reads it must see this CPU's last use of that mm (as lw-publish)",
        decided_by: "loom: lazymm-verify tests/loom_lightweight.rs::weakened_unlazy_store_is_caught (ABA: a \
                     teardown of the previously borrowed mm reads this word); LKMM needs no barrier \
                     (litmus/unlazy-plain+held-reference.litmus, Never)",
    },
    OrderingSite {
        name: "lw-scan-load",
        strong: "Acquire",
        why: "a teardown that reads NULL (the owner stopped borrowing) must see the owner's uses before freeing",
        decided_by: "loom: lazymm-verify tests/loom_lightweight.rs::weakened_scan_load_is_caught",
    },
    OrderingSite {
        name: "lw-handoff",
        strong: "Release",
        why: "the count unit reserved for the owner is visible before the owner can see mm|1 and drop it \
              (the seed's 'is relaxed okay here?': no, except on x86)",
        decided_by: "litmus/v1-handoff+cmpxchg-relaxed.litmus (Sometimes) vs v1-handoff+cmpxchg-release.litmus \
                     (Never); loom cannot see it (lazymm-verify tests/loom_blind_spot.rs)",
    },
    OrderingSite {
        name: "lw-teardown-fence",
        strong: "SeqCst fence",
        why: "store-buffering against a kernel thread that publishes at kthread_unuse_mm while users may \
              be 0 (kthread_use_mm needs only an mmgrab): either the scan reads its slot or it reads \
              users == 0 and leaves lazy mode (the kernel's fully ordered mm_users decrement)",
        decided_by: "loom: lazymm-verify tests/loom_schemes.rs::kthread_use_mm_grab_only_* \
                     (scenarios::kthread_use_mm_grab_only fails without it)",
    },
    OrderingSite {
        name: "lw-handoff-fail",
        strong: "Acquire",
        why: "a failed hand-off read NULL from the owner's Release exchange: the owner's uses happen-before \
              the teardown's final drop",
        decided_by: "loom: lazymm-verify tests/loom_lightweight.rs::weakened_handoff_fail_is_caught",
    },
];

impl Lightweight {
    /// Ends this CPU's lazy borrow of `mm` (its own slot). Returns the
    /// word the exchange took, or `None` for the plain unlazy.
    fn release_slot<P: Platform>(
        &self,
        m: &Machine<P>,
        me: &mut CpuLocal,
        mm: MmRef,
    ) -> Option<u64> {
        let slot = &m.percpu[me.id].slot;
        let plain = match self.opts.unlazy_plain {
            UnlazyPlain::Off => false,
            // Only a *user task* of mm proves users > 0: a kernel thread in
            // kthread_use_mm may hold just an mmgrab (issue 9, item 3: a
            // teardown handed this CPU mm|1, then kthread_use_mm(mm) on the
            // same mm would plain-store 0 over the unit: a leak).
            UnlazyPlain::SameMm => me.curr == Some(mm) && me.curr_users,
            UnlazyPlain::SameMmAnyTask => me.curr == Some(mm),
            UnlazyPlain::ReadUsers => {
                // Ordering: Relaxed; the variant is refuted whatever the
                // ordering (the teardown can start right after this load).
                m.deref(me.id, mm, "lw unlazy (read users)")
                    && m.p.load(me.id, &m.mms.get(mm.idx).users, Ordering::Relaxed) > 0
            }
        };
        if plain {
            // Ordering: Release (site lw-unlazy-store) pairs with a
            // teardown's Acquire scan-load / failed hand-off that reads this
            // word: as lw-publish, a newer word must release again in C11.
            m.p.store(
                me.id,
                slot,
                0,
                self.opts.ord("lw-unlazy-store", Ordering::Release),
            );
            // A store is not the full barrier membarrier needs of
            // mmdrop_lazy_tlb() (include/linux/sched/mm.h; the xchg below
            // is one): issue 9, item 9.
            m.membarrier_mb(me);
            return None;
        }
        // Ordering: AcqRel (site lw-unlazy-xchg). Release pairs with the
        // teardown's Acquire scan-load / failed hand-off; Acquire pairs with
        // the teardown's Release hand-off.
        let old = m.p.swap(
            me.id,
            slot,
            0,
            self.opts.ord("lw-unlazy-xchg", Ordering::AcqRel),
        );
        if old & 1 == 1 {
            let handed = me.slot_ref(old);
            m.mmdrop_deferrable(me, handed);
        }
        Some(old)
    }
}

impl<P: Platform> Scheme<P> for Lightweight {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Lightweight
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // Ordering: Release (site lw-publish), pairing with the teardown's
        // Acquire scan-load and Acquire failed hand-off. Publication itself
        // needs no barrier (the CPU publishes while switching away from a
        // task that holds `users`, and the teardown starts only after that
        // reference is put with an AcqRel decrement). But a teardown of the
        // mm this CPU borrowed *before* may read this newer word and skip
        // the CPU or fail its hand-off; it must then see this CPU's last use
        // of the old mm. The AcqRel unlazy exchange before us released it,
        // but in C11 a later Relaxed store does not continue that release
        // sequence, so this store must release again (found by loom:
        // lazymm-verify loom_schemes.rs fixed_lightweight_*; in LKMM the
        // kernel's fully ordered xchg makes WRITE_ONCE enough).
        m.p.store(
            me.id,
            &m.percpu[me.id].slot,
            mm.word(),
            self.opts.ord("lw-publish", Ordering::Release),
        );
        me.slot_shadow = mm;
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        self.release_slot(m, me, mm);
    }

    fn mm_teardown(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        let w = mm.word();
        // Ordering: SeqCst fence (site lw-teardown-fence), the other half of
        // the store-buffering pair with Machine::kthread_lazy_users_check:
        // either the scan below reads a kernel thread's publish, or that
        // thread reads users == 0 and leaves lazy mode itself. In the kernel
        // the fully ordered atomic_dec_and_test(&mm->mm_users) just before
        // is this barrier (free); C11's AcqRel RMW is not (found by loom:
        // lazymm-verify scenarios::kthread_use_mm_grab_only).
        if self.opts.fence_kept("lw-teardown-fence") {
            m.users_zero_fence(me);
        }
        // The calling task's own borrow first, as the kernel patch does
        // (kernel/patches/0001, kernel/fork.c lazy_tlb_handoff(), like
        // shoot-down's do_shoot_lazy_tlb() for the calling CPU): after
        // exit_mm the exiting task borrows its own dying mm (no mm of its
        // own, active_mm == mm). It moves to init_mm and takes its own word
        // instead of handing a reference to itself, so the common exit frees
        // the mm at once and active_mm never names a freed mm (__mmdrop's
        // WARN). The test is the kernel's, on the task that runs the
        // teardown: a task that slept and came back borrowing another mm, or
        // an exec (current->mm is the new mm), takes nothing here.
        if me.curr.is_none() && me.active == mm {
            m.switch_to_init_mm(me);
            if self.release_slot(m, me, mm).is_some_and(|old| old != 0) {
                me.stats.self_takes += 1;
            }
        }
        let batched = self.opts.batched_grab;
        let mut reserved: u64 = 0;
        m.for_each_lazy_cpu(me, mm, |me, cpu| {
            let slot = &m.percpu[cpu].slot;
            // Ordering: Acquire (site lw-scan-load) pairs with the owner's
            // Release unlazy: reading NULL means its uses are over.
            if m.p.load(
                me.id,
                slot,
                self.opts.ord("lw-scan-load", Ordering::Acquire),
            ) != w
            {
                return;
            }
            if batched {
                if reserved == 0 {
                    // "add a bunch to mm_count at the beginning": at most
                    // one unit per CPU the scan can still visit.
                    reserved = m.lazy_cpu_bound();
                    m.mmgrab_n(me.id, mm, reserved);
                }
                reserved -= 1;
            } else {
                m.mmgrab(me.id, mm);
            }
            // Ordering: Release on success (site lw-handoff) pairs with the
            // owner's Acquire exchange: our count increment is visible before
            // the owner can drop the unit. Acquire on failure (site
            // lw-handoff-fail) pairs with the owner's Release exchange.
            let r = m.p.compare_exchange(
                me.id,
                slot,
                w,
                w | 1,
                self.opts.ord("lw-handoff", Ordering::Release),
                self.opts.ord_fail("lw-handoff-fail", Ordering::Acquire),
            );
            match r {
                Ok(_) => me.stats.handoffs += 1,
                Err(_) if batched => reserved += 1,
                Err(_) => m.mmdrop_local(me, mm),
            }
        });
        // Return the unused units; cannot reach 0 (the users' unit is still
        // held by us, dropped by __mmput right after).
        m.mmdrop_n(me, mm, reserved);
    }

    fn kthread_lazy_entry(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // The fix-up's invariant "users == 0: nobody publishes" holds for
        // user tasks only; a kernel thread in kthread_use_mm may hold just
        // an mmgrab (kernel/kthread.c): fence + users re-read, the SB pair
        // of the teardown fence (issue 9, item 3).
        m.kthread_lazy_users_check(me, mm);
    }

    fn defers_free(&self) -> bool {
        self.opts.defer_free
    }

    fn ordering_sites(&self) -> &'static [OrderingSite] {
        SITES
    }
}
