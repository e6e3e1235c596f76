//! `hazard-handoff`: the two-slot design of PeterZ's June 2021 repost of
//! Andy's `sched/lazymm` branch and of Andy's January 2022 series, 16/23
//! "sched: Use lightweight hazard pointers to grab lazy mms"
//! (kernel-history 2.3, 2.4, 8.4, 8.5). The 2022 code is followed.
//!
//! Each runqueue has a hazard pointer `lazy_mm` (the mm it may be using
//! lazily) and a mailbox `drop_mm` (one `count` unit a teardown handed it).
//! The exit side (`mm_unlazy_mm_count`, from `__mmput` after `exit_mmap`)
//! converts every lazy use into a `count` unit placed in `drop_mm`; the
//! owner drops it once it stops using that mm.
//!
//! # State machine
//!
//! Per-CPU `lazy_mm` (slot):
//!
//! ```text
//!   NULL   no lazy borrow
//!   mm     this CPU may be using mm lazily
//!
//!   owner  NULL -> mm   grab_lazy (user->kernel, exit_mm, kthread_unuse_mm):
//!                       WRITE_ONCE in the kernel, Release here (site
//!                       hh-grab-store, see Orderings)
//!   owner  mm -> NULL   drop_lazy, after the MMU switched away:
//!                       smp_store_release
//!   teardown            reads only (load_acquire)
//! ```
//!
//! Per-CPU `drop_mm` (slot2, a mailbox word, see `mailbox.rs`):
//!
//! ```text
//!   NULL   nothing to drop
//!   X      this runqueue owns one unit of X->count; X may be == lazy_mm
//!          (the CPU still uses it: kept) or stale (X != lazy_mm: dropped
//!          at the owner's next finish_task_switch or unlazy to init_mm)
//!
//!   owner     X -> NULL  mmdrop_lazy: only if X != lazy_mm;
//!                        try_cmpxchg loop (remote CPUs may replace X),
//!                        then mmdrop(X) (deferred when interrupts are off);
//!                        a unit deposited after the owner's last switch
//!                        waits for the next one (at the end of a run:
//!                        `Machine::finish`, the `quiesced` hook)
//!   teardown  NULL -> mm      hand over one unit (try_cmpxchg)
//!   teardown  X -> mm         steal: only after re-loading lazy_mm == mm
//!                             *after* loading drop_mm == X (the rule of
//!                             kernel-history 8.4); then mmdrop(X) on the
//!                             owner's behalf
//!   teardown  (lazy_mm != mm on the re-load): the CPU stopped using mm;
//!                             our unit is dropped, drop_mm untouched
//! ```
//!
//! `mm->count`: `1` for all users together; one unit per `drop_mm` holding
//! mm; the teardown's batch while it scans (`count += ncpus` on the first
//! CPU found lazy, the unused ones subtracted at the end: at most two
//! atomics on `count` per teardown besides the per-CPU ones); other grabs.
//!
//! Single consumer (kernel-history 8.5): only the owner moves `drop_mm` to
//! NULL; remote teardowns only replace it, so the owner's loop retries on a
//! failed compare-exchange.
//!
//! Invariant the exit side relies on: `users == 0` implies no CPU can newly
//! publish mm (kernel-history 8.1). A mailbox word names an mm whose
//! `users` is 0, so a CPU whose `lazy_mm` is now something else is done
//! with it for good.
//!
//! # Orderings
//!
//! Every site is listed in [`SITES`]. One deviates from the kernel text:
//! the publish store. The steal concludes "the CPU is done with X" from
//! reading `lazy_mm == mm`, a value the owner stored *after* its release
//! store that ended its use of X. The Linux memory model orders the two
//! stores (same location: `overwrite & int` is in `to-w`), but C11/Rust
//! release sequences no longer include later plain stores of the same
//! thread, so the publish must itself be Release for the reader's acquire
//! to see the uses of X. (A `str` becomes an `stlr` on arm64; free on x86.)

use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::{CpuId, Platform};
use crate::runtime::{CpuLocal, Machine};
use crate::schemes::mailbox::{addr, cas_addr, fat, unfat};
use crate::schemes::{OrderingSite, Scheme, SchemeKind, SchemeOptions};

/// See the module documentation.
#[derive(Debug)]
pub struct HazardHandoff {
    /// Options (`weaken`, `defer_free`).
    pub opts: SchemeOptions,
}

/// The orderings `hazard-handoff` relies on.
pub const SITES: &[OrderingSite] = &[
    OrderingSite {
        name: "hh-grab-store",
        strong: "Release",
        why: "a teardown that reads this publish of mm and steals the unit of the mm X the CPU borrowed \
              before must see the CPU's uses of X (C11 has no same-thread release sequence; LKMM orders \
              it by coherence, so the kernel's WRITE_ONCE suffices there)",
        decided_by: "loom: unlazy racing the teardown hand-off; re-lazy of a new mm reusing the address (ABA) \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "hh-unlazy-release",
        strong: "Release",
        why: "smp_store_release(&rq->lazy_mm, NULL): the CPU's uses of the mm happen-before a teardown \
              that reads NULL and frees",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "hh-scan-load",
        strong: "Acquire",
        why: "smp_load_acquire(&rq->lazy_mm) in mm_unlazy_mm_count: reading NULL means the owner's uses \
              are over (pairs with hh-unlazy-release)",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "hh-drop-load",
        strong: "Acquire",
        why: "smp_load_acquire(&rq->drop_mm): orders the re-load of lazy_mm after it (the 8.4 rule) and \
              sees the increment behind a unit another teardown deposited",
        decided_by: "loom: unlazy racing the teardown hand-off; ABA (use-after-free; lazymm-verify \
                     scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "hh-reload",
        strong: "Acquire",
        why: "smp_load_acquire(&rq->lazy_mm) after drop_mm: reading anything but mm means the CPU's uses \
              of mm are over before we drop our unit; reading mm (published with hh-grab-store) means \
              its uses of the stale drop_mm are over before we steal it",
        decided_by: "litmus/relacq-drop+once.litmus (the unpublish shape: Sometimes without acquire); \
                     no loom scenario has a stale drop_mm yet (two teardowns and a CPU that re-lazies \
                     between them)",
    },
    OrderingSite {
        name: "hh-handoff",
        strong: "Release",
        why: "try_cmpxchg(&rq->drop_mm, NULL, mm): our count increment is visible before the owner can \
              see mm and drop the unit (PeterZ: the xchg must be at least RELEASE)",
        decided_by: "loom, with site hh-teardown-fence also removed: unlazy racing the teardown \
                     hand-off; ABA (use-after-free; lazymm-verify scenarios, arm64/hash). With the \
                     issue-9 teardown fence in place (a C11 release fence before the scan) loom no \
                     longer sees it; the count increment after that fence still needs the Release \
                     (loom's RMW blind spot, litmus/v1-handoff+cmpxchg-relaxed.litmus: Sometimes)",
    },
    OrderingSite {
        name: "hh-teardown-fence",
        strong: "SeqCst fence",
        why: "store-buffering against a kernel thread that publishes lazy_mm at kthread_unuse_mm while \
              users may be 0 (kthread_use_mm needs only an mmgrab): either the scan reads its lazy_mm or it \
              reads users == 0 and leaves lazy mode (the kernel's fully ordered mm_users decrement)",
        decided_by: "loom: lazymm-verify scenarios::kthread_use_mm_grab_only (arm64/hash)",
    },
    OrderingSite {
        name: "hh-steal",
        strong: "AcqRel",
        why: "cmpxchg(&rq->drop_mm, old, mm): Release as hh-handoff; Acquire so the unit we steal and \
              drop was incremented before our decrement",
        decided_by: "litmus/relacq-drop+mp-init.litmus (Never: release on the deposit suffices); no loom \
                     scenario reaches the steal yet",
    },
    OrderingSite {
        name: "hh-drain-cas",
        strong: "Acquire",
        why: "mmdrop_lazy's try_cmpxchg_relaxed(drop_mm, X, NULL) precedes mmdrop(X), whose fully ordered \
              atomic_dec_and_test supplies the ordering in the kernel; a C11 AcqRel RMW on count does \
              not order the earlier relaxed CAS, so the CAS itself acquires: the teardown's increment \
              happens-before our decrement",
        decided_by: "litmus/v2-mailbox+xchg.litmus (Never under LKMM with the take relaxed: mmdrop's full \
                     barrier orders it); in C11 the Acquire stands in for that barrier; loom cannot see \
                     the difference (blind spot)",
    },
];

impl HazardHandoff {
    /// `mmdrop_lazy(rq)`: drop `drop_mm` unless it is the mm still in use.
    fn mmdrop_lazy<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        let dm = &m.percpu[me.id].slot2;
        // Ordering: Relaxed (READ_ONCE): a stale NULL only postpones the
        // drop to the next switch; the CAS below acquires.
        let mut old = m.p.load(me.id, dm, Ordering::Relaxed);
        loop {
            // "if (likely(!old_mm || old_mm == rq->lazy_mm)) return;"
            // (our own lazy_mm, from the private copy of our last store).
            if old == 0 || addr(old) == me.scheme_private[0] {
                return;
            }
            // Ordering: Acquire on success (site hh-drain-cas) pairs with the
            // teardown's Release hand-off / AcqRel steal. Relaxed on
            // failure: we only retry.
            match cas_addr(
                &m.p,
                me.id,
                dm,
                old,
                0,
                self.opts.ord("hh-drain-cas", Ordering::Acquire),
                Ordering::Relaxed,
            ) {
                Ok(w) => {
                    let x = unfat(w);
                    m.mmdrop_deferrable(me, x);
                    return;
                }
                Err(now) => old = now,
            }
        }
    }

    /// `__try_mm_drop_rq_ref(rq, mm)`: hand our unit of `mm` to `cpu`, or
    /// drop it if `cpu` stopped using `mm`. `false`: retry.
    fn try_drop_rq_ref<P: Platform>(
        &self,
        m: &Machine<P>,
        me: &mut CpuLocal,
        cpu: CpuId,
        mm: MmRef,
    ) -> bool {
        let dm = &m.percpu[cpu].slot2;
        let lz = &m.percpu[cpu].slot;
        // Ordering: Acquire (site hh-drop-load): the re-load below stays
        // after it, and a unit another teardown deposited is visible with
        // its increment.
        let old =
            m.p.load(me.id, dm, self.opts.ord("hh-drop-load", Ordering::Acquire));
        debug_assert!(addr(old) != mm.word(), "drop_mm already holds mm");
        if old == 0 {
            // Hand over. Ordering: Release (site hh-handoff) pairs with the
            // owner's Acquire drain: our increment is visible first.
            // Relaxed on failure: nothing was handed, the caller retries
            // from the Acquire load above.
            let ok = cas_addr(
                &m.p,
                me.id,
                dm,
                0,
                fat(mm),
                self.opts.ord("hh-handoff", Ordering::Release),
                Ordering::Relaxed,
            )
            .is_ok();
            if ok {
                me.stats.handoffs += 1;
            }
            return ok;
        }
        // "it is critical that we load rq->lazy_mm again after loading
        // drop_mm": old's users are known to be 0 only from the drop_mm
        // load on, so only a lazy_mm value read after it proves the CPU is
        // not lazy on old (the scan's earlier read of mm may predate the
        // CPU leaving mm, running a task of old and going lazy on it, after
        // which old's teardown deposited old: kernel-history 8.4).
        // Ordering: Acquire (site hh-reload).
        if m.p
            .load(me.id, lz, self.opts.ord("hh-reload", Ordering::Acquire))
            != mm.word()
        {
            // The CPU stopped using mm: our unit is not needed.
            m.mmdrop_local(me, mm);
            return true;
        }
        // The CPU uses mm, not old: old is stale; replace it with our unit
        // and drop it on the CPU's behalf. Ordering: AcqRel (site hh-steal);
        // Relaxed on failure: nothing changed hands, the caller retries.
        match cas_addr(
            &m.p,
            me.id,
            dm,
            old,
            fat(mm),
            self.opts.ord("hh-steal", Ordering::AcqRel),
            Ordering::Relaxed,
        ) {
            Ok(w) => {
                me.stats.handoffs += 1;
                m.mmdrop_local(me, unfat(w));
                true
            }
            Err(_) => false,
        }
    }
}

impl<P: Platform> Scheme<P> for HazardHandoff {
    fn kind(&self) -> SchemeKind {
        SchemeKind::HazardHandoff
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // WRITE_ONCE(rq->lazy_mm, next->active_mm). "No explicit barrier
        // needed: we still hold an explicit (mm_users) reference" -- true
        // for the publish-vs-scan race (kernel-history 8.1); Release (site
        // hh-grab-store) for the steal, see the module documentation.
        m.p.store(
            me.id,
            &m.percpu[me.id].slot,
            mm.word(),
            self.opts.ord("hh-grab-store", Ordering::Release),
        );
        me.scheme_private[0] = mm.word();
        me.slot_shadow = mm;
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        // smp_store_release(&rq->lazy_mm, NULL) (site hh-unlazy-release),
        // after the MMU switched away.
        m.p.store(
            me.id,
            &m.percpu[me.id].slot,
            0,
            self.opts.ord("hh-unlazy-release", Ordering::Release),
        );
        // A release store is not the full barrier membarrier needs of
        // mmdrop_lazy_tlb() (include/linux/sched/mm.h): issue 9, item 9.
        m.membarrier_mb(me);
        me.scheme_private[0] = 0;
        // unlazy_mm_irqs_off() calls mmdrop_lazy(); finish_task_switch
        // calls it right after this hook (finish_switch), so only the
        // unlazy to init_mm (no current->mm) drains here.
        if me.curr.is_none() {
            self.mmdrop_lazy(m, me);
        }
    }

    fn finish_switch(&self, m: &Machine<P>, me: &mut CpuLocal) {
        self.mmdrop_lazy(m, me);
    }

    fn mm_teardown(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // mm_unlazy_mm_count(mm).
        // The SB pair with Machine::kthread_lazy_users_check (issue 9),
        // site hh-teardown-fence.
        if self.opts.fence_kept("hh-teardown-fence") {
            m.users_zero_fence(me);
        }
        let w = mm.word();
        let mut drop_count: u64 = 0;
        let acq = self.opts.ord("hh-scan-load", Ordering::Acquire);
        m.for_each_lazy_cpu(me, mm, |me, cpu| {
            // Ordering: Acquire (site hh-scan-load) pairs with the owner's
            // hh-unlazy-release.
            if m.p.load(me.id, &m.percpu[cpu].slot, acq) != w {
                return;
            }
            if drop_count == 0 {
                // "atomic_add(drop_count, &mm->mm_count)" on the first hit.
                drop_count = m.lazy_cpu_bound();
                m.mmgrab_n(me.id, mm, drop_count);
            }
            drop_count -= 1;
            while !self.try_drop_rq_ref(m, me, cpu, mm) {
                m.p.spin();
            }
        });
        // atomic_sub(drop_count, &mm->mm_count): cannot reach 0, __mmput
        // still holds the users' unit.
        m.mmdrop_n(me, mm, drop_count);
    }

    fn quiesced(&self, m: &Machine<P>) {
        // A teardown that read a CPU's lazy_mm just before that CPU's last
        // unlazy of the run can deposit a unit after the CPU's last
        // finish_task_switch (the exchange into the mailbox does not fail
        // the way lightweight's compare-exchange on the slot does). In the
        // kernel the CPU's next switch drops it; at the end of a run, this
        // is that switch.
        for c in 0..m.ncpus {
            let mut me = m.local(c);
            self.mmdrop_lazy(m, &mut me);
        }
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
