//! `mockup`: the seed exactly as posted ("\[MOCKUP\] x86/mm: Lightweight lazy
//! mm refcounting", Andy Lutomirski, 3 Dec 2020).
//!
//! # State machine
//!
//! Per-CPU slot `cpu_tlbstate.lazy_mm` (the seed's own comment):
//!
//! ```text
//!   NULL     any mm referenced by this CPU is kept alive by a real reference
//!   mm       an mm that must not be freed out from under this CPU
//!   mm|1     some other CPU has mmgrab()'d it on our behalf; we must
//!            mmdrop() it when we're done with it
//!
//!   owner, enter_lazy_tlb (is_lazy false -> true):   * -> mm   (plain store;
//!          WARN_ON_ONCE(slot != NULL) and overwrite)
//!   owner, end of switch_mm_irqs_off if was_lazy:     * -> NULL (xchg; if the
//!          old value had bit 0, mmdrop)   -- skipped by the early returns
//!   teardown (__mmput, users == 0), for each CPU in mm_cpumask whose slot
//!          reads mm: mmgrab; cmpxchg_relaxed(mm -> mm|1); if it failed,
//!          mmdrop.
//! ```
//!
//! `mm->count`: exactly as [`refcount`](super::refcount) (the posted patch
//! did not remove the `active_mm` refcounting), plus one unit per hand-off.
//!
//! What the posted code gets wrong, and the ledger shows: the x86 same-mm
//! early return (`if (!was_lazy) return;` and the `tlb_gen` match) skips
//! `lazy_mm_drop()`, so the most common unlazy leaves the slot set; the next
//! `enter_lazy_tlb` overwrites it, and a handed-over `mm|1` reference leaks.
//! It also drops from the flush IPI (interrupts off).

use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{CpuLocal, Machine};
use crate::schemes::{Scheme, SchemeKind, SchemeOptions};

/// See the module documentation.
#[derive(Debug)]
pub struct Mockup {
    /// Options (only `weaken` applies).
    pub opts: SchemeOptions,
}

impl<P: Platform> Scheme<P> for Mockup {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Mockup
    }

    // The refcount the patch left in place.
    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        m.mmgrab(me.id, mm);
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        m.mmdrop_local(me, mm);
    }

    fn drop_init_mm(&self, m: &Machine<P>, me: &mut CpuLocal) {
        // The refcount the patch left in place: init_mm's too.
        m.mmdrop_init_mm_count(me);
    }

    fn lazy_tlb_entered(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // lazy_mm_grab(): WARN_ON_ONCE(read != 0); atomic_long_set(mm).
        // Ordering: Relaxed (atomic_long_set is a plain store); see the seed.
        m.p.store(me.id, &m.percpu[me.id].slot, mm.word(), Ordering::Relaxed);
        me.slot_shadow = mm;
    }

    fn switch_mm_tail(&self, m: &Machine<P>, me: &mut CpuLocal, was_lazy: bool) {
        if !was_lazy {
            return;
        }
        // lazy_mm_drop(): atomic_long_xchg (fully ordered).
        let prev = m.p.swap(
            me.id,
            &m.percpu[me.id].slot,
            0,
            self.opts.ord("mockup-unlazy-xchg", Ordering::AcqRel),
        );
        if prev & 1 == 1 {
            // The seed drops right here, interrupts off.
            let mm = me.slot_ref(prev);
            m.mmdrop_local(me, mm);
        }
    }

    fn mm_teardown(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // arch_fixup_lazy_mm_refs(): for_each_cpu(cpu, mm_cpumask(mm)).
        let w = mm.word();
        m.for_each_lazy_cpu(me, mm, |me, cpu| {
            let slot = &m.percpu[cpu].slot;
            // "Hmm, is this check actually useful?"
            if m.p.load(me.id, slot, Ordering::Relaxed) != w {
                return;
            }
            m.mmgrab(me.id, mm);
            // "XXX: is relaxed okay here?" -- as posted.
            let ok =
                m.p.compare_exchange(me.id, slot, w, w | 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok();
            if ok {
                me.stats.handoffs += 1;
            } else {
                m.mmdrop_local(me, mm);
            }
        });
    }

    fn flush_unlazy_behind_back(&self) -> bool {
        true
    }
}
