//! `refcount`: classic `active_mm` reference counting (Linux <= 6.3, and
//! 6.12 with `CONFIG_MMU_LAZY_TLB_REFCOUNT=y`).
//!
//! # State machine
//!
//! Per-CPU slot: none. The lazily borrowed mm is named by the CPU's private
//! `active_mm` and pinned by one unit of `mm->count`.
//!
//! `mm->count` of a user mm:
//!
//! ```text
//!   1 (all users together) + L (CPUs lazily borrowing it) + G (other grabs)
//!
//!   user -> kernel      count += 1   (mmgrab_lazy_tlb, in context_switch)
//!   kernel -> kernel    unchanged    (the reference moves with active_mm)
//!   kernel -> user      count -= 1   (mmdrop in finish_task_switch, via
//!                                     rq->prev_mm, after the MMU switched)
//!   exit_mm             count += 1   (the exiting CPU becomes lazy)
//!   __mmput             count -= 1   (the users' unit)
//!   count reaches 0     __mmdrop frees: no CPU can still borrow it, since
//!                       each borrower holds a unit.
//! ```
//!
//! Who moves what: only the CPU that borrows adds and removes its own unit;
//! the last `mmput` removes the users' unit. Every increment and decrement
//! is an RMW on the mm's one shared `count` line: that is the cost the other
//! schemes remove.

use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{CpuLocal, Machine};
use crate::schemes::{Scheme, SchemeKind};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Refcount;

impl<P: Platform> Scheme<P> for Refcount {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Refcount
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        m.mmgrab(me.id, mm);
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // mmdrop_lazy_tlb_sched: outside the runqueue lock, interrupts on.
        m.mmdrop_local(me, mm);
    }

    fn drop_init_mm(&self, m: &Machine<P>, me: &mut CpuLocal) {
        // finish_task_switch: mmdrop_lazy_tlb_sched(&init_mm) is a real
        // mmdrop under MMU_LAZY_TLB_REFCOUNT.
        m.mmdrop_init_mm_count(me);
    }

    fn flush_unlazy_behind_back(&self) -> bool {
        true
    }
}
