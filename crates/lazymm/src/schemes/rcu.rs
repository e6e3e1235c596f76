//! `rcu` and `rcu-lazy-aware`: free the mm after a grace period instead of
//! tracking lazy users (Matthew Wilcox's suggestion in the seed thread,
//! kernel-history 5).
//!
//! Lazy transitions touch no shared line. `__mmdrop` does not free: it
//! queues the mm (`call_rcu`), and the mm is freed once every CPU has
//! passed a quiescent state (QS) since. The two variants differ only in
//! what counts as quiescent:
//!
//! * **`rcu`** is Linux's RCU: a context switch is a QS, and a CPU in idle
//!   (here: running the idle task or a kernel thread, i.e. any CPU without
//!   `current->mm`) is in an extended quiescent state, so it is not waited
//!   for at all. But that is exactly where lazy borrowing happens: a CPU
//!   idling with the mm still loaded is "quiescent", the grace period ends,
//!   the mm is freed under its MMU. Rik van Riel's objection ("RCU does not
//!   wait for idle tasks to context switch"), Andy's "RCU read locks can't be
//!   held when idle". **Known unsafe**; the ledger reports the
//!   use-after-free (tests in `crates/lazymm-sim/tests/schemes.rs`). It is
//!   safe only where the exit flush unlazies every lazy CPU before the
//!   free (x86's page-table-freeing IPIs), which is not RCU's doing.
//! * **`rcu-lazy-aware`**: lazily borrowing an mm is *not* quiescent. A CPU
//!   that does not borrow any mm lazily is quiescent; a CPU that does passes
//!   a QS when it stops borrowing (an mm switch: Nick Piggin's "RCU-like
//!   quiescing sequence based on mm switching"). A context switch that keeps
//!   the lazy borrow (kernel -> kernel) is deliberately not a QS. Safe; the
//!   cost is deferred frees and pinned mms, visible in `lazymm compare`
//!   (`frees_deferred`, `peak_pinned`).
//!
//! # State machine
//!
//! Per-CPU quiescent-state word (slot), written only by its owner:
//!
//! ```text
//!   seq << 1 | flag
//!   rcu:             flag = 1 "RCU is watching": the CPU runs a task with
//!                    its own mm; 0: idle / kernel thread (extended QS)
//!     owner: every finish_task_switch: seq += 1, flag = current->mm != NULL
//!   rcu-lazy-aware:  flag = 1: the CPU borrows an mm lazily; 0: it does not
//!     owner: grab_lazy: seq += 1, flag = 1;  drop_lazy: seq += 1, flag = 0
//! ```
//!
//! Callbacks (per CPU, as Linux's per-CPU callback lists; workbench
//! bookkeeping, not shared with other CPUs while they run):
//!
//! ```text
//!   __mmdrop on CPU q (count == 0): snapshot s[c] = word of every online
//!     CPU c (offline CPUs are quiescent); rcu: s[q] |= 1 (the CPU calling
//!     call_rcu is not idle); if every c is already quiescent -> free now,
//!     else queue (mm, s) on q's list.
//!   c has passed a QS since s[c]:  c offline, or flag(s[c]) == 0, or
//!     word(c) != s[c] now.
//!   CPU q, at each finish_task_switch (and at the end of the run,
//!     Machine::finish: an rcu_barrier()): free the queued mms whose every
//!     CPU has passed a QS.
//! ```
//!
//! Why the deferral is faithful: RCU's `synchronize_rcu()` would *wait* in
//! `__mmdrop` until the grace period ends; in the single-threaded simulator
//! the other CPUs cannot progress while one waits, so the wait is modelled
//! as `call_rcu` (queue now, free at the queuing CPU once the grace period
//! ended), the form the kernel itself uses on RT (`mmdrop_sched` ->
//! `call_rcu`). The same code runs on threads and loom. The free then runs
//! from `finish_task_switch`, i.e. as a softirq-like callback on the CPU
//! that queued it (note: x86 cannot really `__mmdrop` from softirq,
//! kernel-history 8.7).
//!
//! `mm->count`: `1` for all users together, plus other grabs; lazy
//! transitions never touch it. Between `count == 0` and the free, the mm is
//! torn down and pinned (counted in `peak_pinned`).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::{CpuId, Platform};
use crate::runtime::{CpuLocal, Machine};
use crate::schemes::{OrderingSite, Scheme, SchemeKind, SchemeOptions};
use crate::sync::SpinLock;

/// Snapshot of an offline CPU (quiescent).
const OFFLINE: u64 = u64::MAX;

struct Callback {
    mm: MmRef,
    snap: Vec<u64>,
    /// CPUs below this one are known to have passed a QS (monotone).
    next: usize,
}

/// See the module documentation.
pub struct Rcu {
    /// Options (only `weaken` applies).
    pub opts: SchemeOptions,
    /// `rcu-lazy-aware` (lazy borrowing is not quiescent) rather than `rcu`.
    pub lazy_aware: bool,
    /// Per-CPU callback lists. Workbench bookkeeping on `core` atomics (no
    /// platform access inside, see `sync.rs`): a list is touched only by its
    /// CPU, and by `Machine::finish` once no CPU runs.
    cbs: SpinLock<Vec<Vec<Callback>>>,
}

impl core::fmt::Debug for Rcu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rcu")
            .field("lazy_aware", &self.lazy_aware)
            .finish_non_exhaustive()
    }
}

/// The orderings `rcu` keeps (it is unsafe whatever they are).
pub const SITES_RCU: &[OrderingSite] = &[
    OrderingSite {
        name: "rcu-qs-store",
        strong: "Release",
        why: "the QS report after a context switch: the CPU's earlier uses happen-before a grace-period \
              check that reads it",
        decided_by: "litmus/rcu-idle-eqs.litmus (Sometimes whatever the orderings: the scheme is known unsafe)",
    },
    OrderingSite {
        name: "rcu-gp-load",
        strong: "Acquire",
        why: "snapshot and grace-period check of a CPU's QS word (pairs with rcu-qs-store)",
        decided_by: "litmus/rcu-idle-eqs.litmus (Sometimes whatever the orderings: the scheme is known unsafe)",
    },
];

/// The orderings `rcu-lazy-aware` relies on.
pub const SITES_LAZY_AWARE: &[OrderingSite] = &[
    OrderingSite {
        name: "rla-grab-store",
        strong: "Release",
        why: "a grace-period check that reads this (later) word and concludes the CPU passed a QS must \
              also see the uses that preceded the earlier drop (C11 release sequences do not extend \
              through plain stores)",
        decided_by: "loom: unlazy racing the teardown hand-off; re-lazy of a new mm reusing the address (ABA) \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "rla-drop-store",
        strong: "Release",
        why: "the end of a lazy borrow: the CPU's uses of the mm happen-before the free that a check \
              reading this word allows",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown \
                     (lazymm-verify scenarios, arm64/hash)",
    },
    OrderingSite {
        name: "rla-gp-load",
        strong: "Acquire",
        why: "snapshot and grace-period check (pairs with rla-drop-store / rla-grab-store)",
        decided_by: "loom: exit while another CPU is lazy; unlazy to init_mm racing the teardown \
                     (lazymm-verify scenarios, arm64/hash)",
    },
];

impl Rcu {
    /// A new instance (`lazy_aware` selects `rcu-lazy-aware`).
    pub fn new(opts: SchemeOptions, lazy_aware: bool) -> Self {
        Rcu {
            opts,
            lazy_aware,
            cbs: SpinLock::new(Vec::new()),
        }
    }

    fn store_site(&self, flag: u64) -> &'static str {
        match (self.lazy_aware, flag) {
            (false, _) => "rcu-qs-store",
            (true, 1) => "rla-grab-store",
            (true, _) => "rla-drop-store",
        }
    }

    fn load_site(&self) -> &'static str {
        if self.lazy_aware {
            "rla-gp-load"
        } else {
            "rcu-gp-load"
        }
    }

    /// The owner moves its word to the next sequence with `flag`.
    fn report<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal, flag: u64) {
        let w = (((me.scheme_private[0] >> 1) + 1) << 1) | flag;
        me.scheme_private[0] = w;
        // Ordering: Release (sites rcu-qs-store / rla-grab-store /
        // rla-drop-store) pairs with the Acquire loads of snapshots and
        // grace-period checks: this CPU's earlier uses happen-before a free
        // the check allows.
        m.p.store(
            me.id,
            &m.percpu[me.id].slot,
            w,
            self.opts.ord(self.store_site(flag), Ordering::Release),
        );
    }

    /// rcu-lazy-aware under Linux 6.12's hotplug: a CPU is offline before
    /// `finish_cpu` releases its lazy borrow (kernel/cpu.c), so "offline"
    /// is not quiescent for this variant until its word says the borrow is
    /// gone (found by loom: scenarios::offline_races_teardown).
    fn offline_may_borrow<P: Platform>(&self, m: &Machine<P>) -> bool {
        self.lazy_aware && m.opts.kernel.hotplug == crate::schemes::HotplugModel::Linux612
    }

    fn word_of<P: Platform>(&self, m: &Machine<P>, me: &CpuLocal, c: CpuId) -> u64 {
        if c == me.id {
            return me.scheme_private[0];
        }
        // Ordering: Acquire (site rcu-gp-load / rla-gp-load).
        m.p.load(
            me.id,
            &m.percpu[c].slot,
            self.opts.ord(self.load_site(), Ordering::Acquire),
        )
    }

    /// Has CPU `c` passed a QS since `snap`?
    fn passed<P: Platform>(&self, m: &Machine<P>, me: &CpuLocal, c: CpuId, snap: u64) -> bool {
        snap == OFFLINE
            || snap & 1 == 0
            || (c != me.id && !m.is_online(c) && !self.offline_may_borrow(m))
            || self.word_of(m, me, c) != snap
    }

    /// Frees the queued mms of `me`'s list whose grace period ended.
    fn process<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        let mine = self.cbs.with(|l| match l.get_mut(me.id) {
            Some(v) if !v.is_empty() => core::mem::take(v),
            _ => Vec::new(),
        });
        if mine.is_empty() {
            return;
        }
        let mut left = Vec::new();
        for mut cb in mine {
            while cb.next < cb.snap.len() && self.passed(m, me, cb.next, cb.snap[cb.next]) {
                cb.next += 1;
            }
            if cb.next == cb.snap.len() {
                m.free_mm(me, cb.mm);
            } else {
                left.push(cb);
            }
        }
        if !left.is_empty() {
            self.cbs.with(|l| {
                // Entries queued meanwhile by this CPU (a free above cannot
                // queue, but keep the order anyway): older first.
                let v = &mut l[me.id];
                left.append(v);
                *v = left;
            });
        }
    }
}

impl<P: Platform> Scheme<P> for Rcu {
    fn kind(&self) -> SchemeKind {
        if self.lazy_aware {
            SchemeKind::RcuLazyAware
        } else {
            SchemeKind::Rcu
        }
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        if self.lazy_aware {
            self.report(m, me, 1);
        }
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        if self.lazy_aware && me.scheme_private[0] & 1 == 1 {
            self.report(m, me, 0);
        }
        // Nothing here is a full barrier; membarrier needs one of
        // mmdrop_lazy_tlb() (include/linux/sched/mm.h): issue 9, item 9.
        m.membarrier_mb(me);
    }

    fn finish_switch(&self, m: &Machine<P>, me: &mut CpuLocal) {
        if !self.lazy_aware {
            // rcu_note_context_switch(); the flag: idle / kernel thread is
            // an extended quiescent state.
            let watching = u64::from(me.curr.is_some());
            self.report(m, me, watching);
        }
        self.process(m, me);
    }

    fn free_later(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) -> bool {
        // call_rcu(&mm->rcu, __mmdrop_free): the grace period starts now.
        let mut snap = Vec::with_capacity(m.ncpus);
        let mut all = true;
        for c in 0..m.ncpus {
            let s = if c != me.id && !m.is_online(c) && !self.offline_may_borrow(m) {
                OFFLINE
            } else {
                me.stats.scan_steps += 1;
                let mut s = self.word_of(m, me, c);
                if c == me.id && !self.lazy_aware {
                    // The CPU running call_rcu is not idle.
                    s |= 1;
                }
                s
            };
            all &= s == OFFLINE || s & 1 == 0;
            snap.push(s);
        }
        if all {
            // Every CPU is quiescent already (rcu-lazy-aware: nobody
            // borrows any mm lazily): the grace period is over.
            return false;
        }
        me.stats.frees_deferred += 1;
        self.cbs.with(|l| {
            if l.len() <= me.id {
                l.resize_with(me.id + 1, Vec::new);
            }
            l[me.id].push(Callback { mm, snap, next: 0 });
        });
        true
    }

    fn quiesced(&self, m: &Machine<P>) {
        // rcu_barrier() at the end of the run: every CPU is quiesced.
        let n = self.cbs.with(|l| l.len());
        for c in 0..n.min(m.ncpus) {
            let mut me = m.local(c);
            self.process(m, &mut me);
        }
    }

    fn ordering_sites(&self) -> &'static [OrderingSite] {
        if self.lazy_aware {
            SITES_LAZY_AWARE
        } else {
            SITES_RCU
        }
    }
}
