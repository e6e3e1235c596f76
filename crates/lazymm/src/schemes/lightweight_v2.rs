//! `lightweight-v2`: Andy Lutomirski's v2, "\[RFC v2 2/2\] \[MOCKUP\] sched/mm:
//! Lightweight lazy mm refcounting" (3 Dec 2020, kernel-history 2.2), with
//! the 2022 rules (kernel-history 2.4, 8.4) where v2 was wrong.
//!
//! Generic code, per runqueue: a hazard pointer `lazy_mm` written with plain
//! stores (no atomic on the unlazy path, Andy's answer to PeterZ's "an xchg
//! on every unlazy") and a mailbox `mm_to_mmdrop` that the owner drains on
//! every `finish_task_switch`. The exit side (`mm_fixup_lazy_refs`, from
//! `__mmput`) grabs one unit per lazy CPU and `xchg`s the mm into its
//! mailbox, dropping any stale mm it displaced ("we just stole an mm
//! reference from the target CPU").
//!
//! # What is v2 and what is 2022 here
//!
//! Kept from v2: the plain-store fast path, the unconditional per-switch
//! mailbox check, the hand-off by `xchg`, one `mmgrab` per lazy CPU (v2's
//! XXX about batching is not done: `hazard-handoff` does it), the steal.
//!
//! Where v2 was wrong, the 2022 rule is used:
//!
//! 1. **Drain while still lazy.** v2's `drop_extra_mm_refs()` drops the
//!    mailbox unconditionally; when the teardown handed it the very mm the
//!    CPU is still borrowing (the normal case), a kernel->kernel switch
//!    drops the unit that keeps it alive, and once `__mmput`'s own drop ran
//!    the mm is freed under the lazy CPU: a use-after-free. The 2022
//!    `mmdrop_lazy()` rule is used: keep the mailbox while it equals
//!    `lazy_mm`. The literal v2 is kept behind `literal_v2` and the test
//!    `lightweight_v2_literal_drain_frees_under_a_lazy_cpu`
//!    (`crates/lazymm-sim/tests/schemes.rs`) shows the use-after-free.
//! 2. **The steal.** v2 trusts the scan's earlier read of `lazy_mm` ("we
//!    observed this after bringing mm_users down to 0"), but the stale mm
//!    may have been deposited *after* that read, while the CPU went lazy on
//!    it (kernel-history 8.4: the CPU leaves mm, runs a task of X, goes lazy
//!    on X; X's teardown deposits X; our xchg then steals X although the CPU
//!    borrows it). 2022's rule: re-load `lazy_mm` after the stale mm is in
//!    hand; if the CPU borrows it, put it back and examine what that
//!    displaces in turn. The race needs other CPUs to act between two
//!    accesses of one teardown: `crates/lazymm-sim/tests/steal_race.rs` runs
//!    them there (a hooked platform) and shows v2's steal (`literal_v2`)
//!    freeing X under the lazy CPU, and the 2022 rule giving it back.
//! 3. **Orderings.** v2's `WRITE_ONCE(rq->lazy_mm, NULL)` / `READ_ONCE`
//!    scan are correct on TSO only: the release/acquire pair of 2021/2022
//!    is used, and the publish is Release too (see `hazard_handoff.rs`,
//!    site `v2-grab-store`).
//!
//! # State machine
//!
//! Per-CPU `lazy_mm` (slot):
//!
//! ```text
//!   NULL  no lazy borrow;  mm  this CPU may be using mm lazily
//!   owner  NULL -> mm   grab_lazy (user->kernel, exit_mm, kthread_unuse_mm)
//!   owner  mm -> NULL   drop_lazy, after the MMU switched away (release)
//!   teardown            reads only
//! ```
//!
//! Per-CPU `mm_to_mmdrop` (slot2, a mailbox word, see `mailbox.rs`):
//!
//! ```text
//!   NULL  nothing;  X  this runqueue owns one unit of X->count
//!   owner     X -> NULL   finish_task_switch / unlazy to init_mm, only if
//!                         X != lazy_mm (2022 rule): cmpxchg, then mmdrop(X)
//!                         (deferred when interrupts are off); a unit can
//!                         arrive after the owner's last switch (the
//!                         teardown read lazy_mm just before the unlazy):
//!                         it waits for the next switch, which at the end of
//!                         a run is `Machine::finish` (the `quiesced` hook)
//!   teardown  * -> mm     xchg after mmgrab(mm); what it displaced (Y):
//!                         re-load lazy_mm: != Y -> mmdrop(Y) (stolen);
//!                         == Y -> xchg Y back in, examine what that
//!                         displaced the same way
//! ```
//!
//! `mm->count`: `1` for all users together; one unit per mailbox holding
//! mm; one unit in a teardown's hand during its steal loop; other grabs.
//! Lazy transitions never touch it.

use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{CpuLocal, Machine};
use crate::schemes::mailbox::{addr, cas_addr, fat, unfat};
use crate::schemes::{OrderingSite, Scheme, SchemeKind, SchemeOptions};

/// See the module documentation.
#[derive(Debug)]
pub struct LightweightV2 {
    /// Options (`weaken`, `defer_free`).
    pub opts: SchemeOptions,
    /// v2 exactly as posted where it differs from the 2022 rules: the
    /// unconditional drain and the unchecked steal. Known unsafe; tests only.
    pub literal_v2: bool,
}

/// The orderings `lightweight-v2` relies on.
pub const SITES: &[OrderingSite] = &[
    OrderingSite {
        name: "v2-grab-store",
        strong: "Release",
        why: "a teardown that reads this publish and concludes the CPU is done with the stale mm it \
              displaced from the mailbox must see the CPU's uses of that mm (v2: WRITE_ONCE; C11 needs \
              Release, see hazard_handoff.rs)",
        decided_by: "loom: unlazy racing the teardown hand-off; re-lazy of a new mm reusing the address (ABA) \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "v2-unlazy-release",
        strong: "Release",
        why: "the CPU's uses of the mm happen-before a teardown that reads NULL and frees (v2: \
              WRITE_ONCE, TSO only)",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "v2-scan-load",
        strong: "Acquire",
        why: "reading NULL in the teardown scan means the owner's uses are over (pairs with \
              v2-unlazy-release; v2: READ_ONCE)",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "v2-handoff-xchg",
        strong: "AcqRel",
        why: "Release: our mmgrab is visible before the owner can drain the unit (v2's 'could this be \
              relaxed?': no); Acquire: a displaced unit's increment happens-before we drop it",
        decided_by: "loom: unlazy racing the teardown hand-off (use-after-free); ABA (lazymm-verify \
                     scenarios, arm64/hash); litmus/v2-mailbox+xchg-relaxed.litmus for the Release half",
    },
    OrderingSite {
        name: "v2-revalidate-load",
        strong: "Acquire",
        why: "2022 rule: lazy_mm re-loaded after the stale unit is in hand; reading another value means \
              the CPU's uses of the stale mm are over before we drop it",
        decided_by: "litmus/relacq-drop+once.litmus (the unpublish shape: Sometimes without acquire); \
                     no loom scenario has a stale mailbox yet (two teardowns and a CPU that re-lazies \
                     between them)",
    },
    OrderingSite {
        name: "v2-drain-cas",
        strong: "Acquire",
        why: "the owner's take of the mailbox: the teardown's increment happens-before our decrement \
              (v2: xchg_relaxed, relying on mmdrop's full barrier, which a C11 AcqRel RMW on count \
              does not give)",
        decided_by: "litmus/v2-mailbox+xchg.litmus (Never under LKMM with the take relaxed: mmdrop's full \
                     barrier orders it); in C11 the Acquire stands in for that barrier; loom cannot see \
                     the difference (blind spot)",
    },
];

impl LightweightV2 {
    /// `drop_extra_mm_refs(rq)`, with the 2022 keep rule.
    fn drain<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        let mb = &m.percpu[me.id].slot2;
        // Ordering: Relaxed ("if (likely(!atomic_long_read(...)))"): a stale
        // NULL only postpones the drop; the take below acquires.
        let mut cur = m.p.load(me.id, mb, Ordering::Relaxed);
        let acq = self.opts.ord("v2-drain-cas", Ordering::Acquire);
        if self.literal_v2 {
            if cur != 0 {
                // v2 as posted: atomic_long_xchg_relaxed(&rq->mm_to_mmdrop, 0)
                // and mmdrop, even if we still borrow that mm.
                let old = m.p.swap(me.id, mb, 0, acq);
                if old != 0 {
                    m.mmdrop_deferrable(me, unfat(old));
                }
            }
            return;
        }
        loop {
            // 2022: keep the unit while it is the mm we still borrow.
            if cur == 0 || addr(cur) == me.scheme_private[0] {
                return;
            }
            // Ordering: Acquire on success (site v2-drain-cas) pairs with
            // the teardown's AcqRel xchg; Relaxed on failure (we only
            // re-examine the value found). A teardown may replace the word
            // concurrently, so a compare-exchange, not v2's xchg.
            match cas_addr(&m.p, me.id, mb, cur, 0, acq, Ordering::Relaxed) {
                Ok(w) => {
                    m.mmdrop_deferrable(me, unfat(w));
                    return;
                }
                Err(now) => cur = now,
            }
        }
    }
}

impl<P: Platform> Scheme<P> for LightweightV2 {
    fn kind(&self) -> SchemeKind {
        SchemeKind::LightweightV2
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // WARN_ON_ONCE(rq->lazy_mm); WRITE_ONCE(rq->lazy_mm, mm).
        // "barrier here? this needs to be visible to any remote CPU that
        // starts executing __mmput(). That can't happen until either we call
        // mmput() or until prev migrates elsewhere": right (kernel-history
        // 8.1). Release (site v2-grab-store) for the steal, see the module
        // documentation.
        debug_assert_eq!(me.scheme_private[0], 0, "lazy_mm already set");
        m.p.store(
            me.id,
            &m.percpu[me.id].slot,
            mm.word(),
            self.opts.ord("v2-grab-store", Ordering::Release),
        );
        me.scheme_private[0] = mm.word();
        me.slot_shadow = mm;
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        // "We are unlazying. Any remote CPU that observes our store to
        // lazy_mm is permitted to free the mm": Release (site
        // v2-unlazy-release), after the MMU switched away.
        m.p.store(
            me.id,
            &m.percpu[me.id].slot,
            0,
            self.opts.ord("v2-unlazy-release", Ordering::Release),
        );
        // A release store is not the full barrier membarrier needs of
        // mmdrop_lazy_tlb() (include/linux/sched/mm.h): issue 9, item 9.
        m.membarrier_mb(me);
        me.scheme_private[0] = 0;
        // finish_task_switch drains right after this (finish_switch); an
        // unlazy to init_mm (IPI, hotplug: no current->mm) drains here.
        if me.curr.is_none() {
            self.drain(m, me);
        }
    }

    fn finish_switch(&self, m: &Machine<P>, me: &mut CpuLocal) {
        // "Do this unconditionally": every finish_task_switch.
        self.drain(m, me);
    }

    fn mm_teardown(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // mm_fixup_lazy_refs(mm); for_each_cpu(mm_cpumask) is v2's "XXX:
        // this is wrong on arm64": the profile's iterator is used.
        // The SB pair with Machine::kthread_lazy_users_check (issue 9).
        m.users_zero_fence(me);
        let w = mm.word();
        let scan = self.opts.ord("v2-scan-load", Ordering::Acquire);
        let xchg = self.opts.ord("v2-handoff-xchg", Ordering::AcqRel);
        let reval = self.opts.ord("v2-revalidate-load", Ordering::Acquire);
        m.for_each_lazy_cpu(me, mm, |me, cpu| {
            let lz = &m.percpu[cpu].slot;
            let mb = &m.percpu[cpu].slot2;
            // Ordering: Acquire (site v2-scan-load).
            if m.p.load(me.id, lz, scan) != w {
                return;
            }
            m.mmgrab(me.id, mm);
            // Ordering: AcqRel (site v2-handoff-xchg).
            let mut held = m.p.swap(me.id, mb, fat(mm), xchg);
            me.stats.handoffs += 1;
            debug_assert!(addr(held) != w, "mailbox already held mm");
            // "At this point, mm can be mmdrop()ed at any time."
            while held != 0 {
                if self.literal_v2 {
                    // v2: "the remote cpu is definitely done with old".
                    m.mmdrop_local(me, unfat(held));
                    break;
                }
                // 2022 rule: re-load lazy_mm now that the stale unit is in
                // hand. Ordering: Acquire (site v2-revalidate-load).
                if m.p.load(me.id, lz, reval) != addr(held) {
                    // The CPU is done with it for good (its users are 0).
                    m.mmdrop_local(me, unfat(held));
                    break;
                }
                // The CPU borrows it: put it back; whatever that displaces
                // (our mm, which the CPU then no longer borrows, or a third
                // teardown's unit) is examined in turn. Ordering: AcqRel, as
                // the hand-off.
                held = m.p.swap(me.id, mb, held, xchg);
            }
        });
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
            self.drain(m, &mut me);
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
