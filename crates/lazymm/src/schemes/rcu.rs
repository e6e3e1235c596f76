//! `rcu` and `rcu-lazy-aware`: free the mm after a grace period instead of
//! tracking lazy users (Matthew Wilcox's suggestion in the seed thread,
//! kernel-history 5).
//!
//! Lazy transitions touch no shared line. `__mmdrop` does not free: it
//! queues the mm (`call_rcu`), and the mm is freed once every CPU has
//! passed a quiescent state (QS) since. The two variants differ only in
//! what counts as quiescent:
//!
//! * **`rcu`** is Linux's non-preemptible RCU (Linux 6.12
//!   kernel/rcu/tree_plugin.h `rcu_note_context_switch`, kernel/rcu/tree.c
//!   `rcu_sched_clock_irq`, `rcu_is_cpu_rrupt_from_idle`): every context
//!   switch is a QS; the idle task is in an extended quiescent state, so it
//!   is not waited for at all; user mode is a QS at the scheduling-clock
//!   tick; a *running kernel thread* is not quiescent until it
//!   context-switches (issue 9, item 11: the runtime now tells idle,
//!   [`crate::runtime::Next::Kernel`], from a kernel thread,
//!   [`crate::runtime::Next::Kthread`]; before, a kernel thread counted as
//!   idle and the model freed too early). But idle is exactly where lazy
//!   borrowing happens: a CPU idling with the mm still loaded is
//!   "quiescent", the grace period ends, the mm is freed under its MMU. Rik
//!   van Riel's objection ("RCU does not wait for idle tasks to context
//!   switch"), Andy's "RCU read locks can't be held when idle". A kernel
//!   thread lazily borrowing the mm does the same at its next context
//!   switch to another kernel thread, which keeps the borrow. **Known
//!   unsafe**; the ledger reports the use-after-free (tests in
//!   `crates/lazymm-sim/tests/schemes.rs`, `kernel_model.rs`
//!   `teardown_paths`).
//! * **`rcu-lazy-aware`**: lazily borrowing an mm is *not* quiescent. A CPU
//!   that does not borrow any mm lazily is quiescent; a CPU that does passes
//!   a QS when it stops borrowing (an mm switch: Nick Piggin's "RCU-like
//!   quiescing sequence based on mm switching"). A context switch that keeps
//!   the lazy borrow (kernel -> kernel) is deliberately not a QS. Safe; the
//!   cost is deferred frees and pinned mms, visible in `lazymm compare`
//!   (`frees_deferred`, `peak_pinned`). This quiescent-state rule is
//!   lazymm's design, not the kernel's RCU: idle, kernel threads and ticks
//!   play no part in it.
//!
//! # State machine
//!
//! Per-CPU quiescent-state word (slot), written only by its owner:
//!
//! ```text
//!   seq << 1 | flag
//!   rcu:             flag = 1 "RCU is watching": the CPU runs a user task
//!                    or a kernel thread; 0: the idle task (extended QS)
//!     owner: every finish_task_switch: seq += 1, flag = !idle
//!            a tick (interrupt point) in user mode: seq += 1, flag = 1
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
//!   CPU q, at each finish_task_switch and tick (and at the end of the run,
//!     Machine::finish: an rcu_barrier()): free the queued mms whose every
//!     CPU has passed a QS.
//! ```
//!
//! Why the deferral is faithful: RCU's `synchronize_rcu()` would *wait* in
//! `__mmdrop` until the grace period ends; in the single-threaded simulator
//! the other CPUs cannot progress while one waits, so the wait is modelled
//! as `call_rcu` (queue now, free at the queuing CPU once the grace period
//! ended), the form the kernel itself uses on RT (`mmdrop_sched` ->
//! `call_rcu`; the runtime models that too, with this file's engine:
//! [`KernelRcu`], option `preempt-rt`). The same code runs on threads and
//! loom. The free then runs
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

/// What a callback does once its grace period is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// `__mmdrop_free` (the `rcu` schemes: `call_rcu(&mm->rcu, ...)`).
    Free,
    /// `__mmdrop_delayed` -> `__mmdrop` (PREEMPT_RT `mmdrop_sched`).
    Mmdrop,
}

struct Callback {
    mm: MmRef,
    action: Action,
    snap: Vec<u64>,
    /// CPUs below this one are known to have passed a QS (monotone).
    next: usize,
}

/// Whose per-CPU quiescent-state words an engine reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QsWords {
    /// The scheme's slot (`CpuShared::slot`) and `CpuLocal::scheme_private[0]`:
    /// the `rcu` schemes.
    SchemeSlot,
    /// The runtime's own RCU words (`CpuShared::rcu`, `CpuLocal::rcu_qs`):
    /// PREEMPT_RT's `mmdrop_sched` ([`crate::schemes::KernelOptions::preempt_rt`]).
    Kernel,
}

/// A grace-period engine: per-CPU quiescent-state words, `call_rcu`
/// callbacks with their snapshots, and the rule of what is quiescent. One
/// implementation, used by the `rcu` schemes and by the runtime for
/// PREEMPT_RT's `mmdrop_sched`.
///
/// Linux's rule (`lazy_aware == false`), non-preemptible RCU (Linux 6.12,
/// kernel/rcu/tree_plugin.h `rcu_note_context_switch` (!PREEMPT_RCU),
/// kernel/rcu/tree.c `rcu_sched_clock_irq`, `rcu_is_cpu_rrupt_from_idle`):
/// * a context switch is a QS, whatever runs before and after
///   ([`GraceEngine::context_switch`]): word `seq + 1`;
/// * the idle task is in an extended QS (RCU is not watching; grace periods
///   do not wait for it): word flag 0;
/// * user mode is a QS at the scheduling-clock interrupt
///   (`rcu_sched_clock_irq(user)`; the model's interrupt point on a CPU
///   running a user task, [`GraceEngine::tick`]); so is idle
///   (`rcu_is_cpu_rrupt_from_idle`, already flag 0);
/// * a *running kernel thread* is not: RCU watches it (flag 1) until it
///   context-switches (its `cond_resched()` reports a QS only when RCU is
///   in urgent need, `rcu_all_qs`, not modelled). Until issue 9 the model
///   took a kernel thread for idle, and so freed early.
struct GraceEngine {
    opts: SchemeOptions,
    lazy_aware: bool,
    words: QsWords,
    cbs: SpinLock<Vec<Vec<Callback>>>,
}

impl GraceEngine {
    fn new(opts: SchemeOptions, lazy_aware: bool, words: QsWords) -> Self {
        GraceEngine {
            opts,
            lazy_aware,
            words,
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

    fn own_word<'c>(&self, me: &'c mut CpuLocal) -> &'c mut u64 {
        match self.words {
            QsWords::SchemeSlot => &mut me.scheme_private[0],
            QsWords::Kernel => &mut me.rcu_qs,
        }
    }

    fn word<'m, P: Platform>(&self, m: &'m Machine<P>, c: CpuId) -> &'m P::Atomic {
        match self.words {
            QsWords::SchemeSlot => &m.percpu[c].slot,
            QsWords::Kernel => m.rcu_word(c),
        }
    }

    /// The owner moves its word to the next sequence with `flag`.
    fn report<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal, flag: u64) {
        let own = self.own_word(me);
        let w = (((*own >> 1) + 1) << 1) | flag;
        *own = w;
        // Ordering: Release (sites rcu-qs-store / rla-grab-store /
        // rla-drop-store) pairs with the Acquire loads of snapshots and
        // grace-period checks: this CPU's earlier uses happen-before a free
        // the check allows.
        m.p.store(
            me.id,
            self.word(m, me.id),
            w,
            self.opts.ord(self.store_site(flag), Ordering::Release),
        );
    }

    /// Linux's rule at a context switch (`rcu_note_context_switch` ->
    /// `rcu_qs`), then the callbacks whose grace period ended (RCU_SOFTIRQ
    /// on this CPU). The flag says whether RCU watches what now runs: not
    /// the idle task.
    fn context_switch<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        if !self.lazy_aware {
            let watching = u64::from(!me.idle);
            self.report(m, me, watching);
        }
        self.process(m, me);
    }

    /// Linux's rule at the scheduling-clock interrupt
    /// (`rcu_sched_clock_irq(user)`): a QS from user mode (a user task at
    /// an interrupt point is taken to be in user mode); from idle the word
    /// already says extended QS; a kernel thread, or a task in the kernel
    /// (past `exit_mm`, inside `kthread_use_mm`), passes none.
    fn tick<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        if !self.lazy_aware && me.curr.is_some() && me.curr_users {
            self.report(m, me, 1);
        }
        self.process(m, me);
    }

    /// rcu-lazy-aware under Linux 6.12's hotplug: a CPU is offline before
    /// `finish_cpu` releases its lazy borrow (kernel/cpu.c), so "offline"
    /// is not quiescent for this variant until its word says the borrow is
    /// gone (found by loom: scenarios::offline_races_teardown).
    fn offline_may_borrow<P: Platform>(&self, m: &Machine<P>) -> bool {
        self.lazy_aware && m.opts.kernel.hotplug == crate::schemes::HotplugModel::Linux612
    }

    fn word_of<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal, c: CpuId) -> u64 {
        if c == me.id {
            return *self.own_word(me);
        }
        // Ordering: Acquire (site rcu-gp-load / rla-gp-load).
        m.p.load(
            me.id,
            self.word(m, c),
            self.opts.ord(self.load_site(), Ordering::Acquire),
        )
    }

    /// Has CPU `c` passed a QS since `snap`?
    fn passed<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal, c: CpuId, snap: u64) -> bool {
        snap == OFFLINE
            || snap & 1 == 0
            || (c != me.id && !m.is_online(c) && !self.offline_may_borrow(m))
            || self.word_of(m, me, c) != snap
    }

    /// Runs the queued callbacks of `me`'s list whose grace period ended.
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
                match cb.action {
                    Action::Free => m.free_mm(me, cb.mm),
                    Action::Mmdrop => m.mmdrop_final_now(me, cb.mm),
                }
            } else {
                left.push(cb);
            }
        }
        if !left.is_empty() {
            self.cbs.with(|l| {
                // Entries queued meanwhile by this CPU (a callback above can
                // queue: __mmdrop under the rcu scheme): older first.
                let v = &mut l[me.id];
                left.append(v);
                *v = left;
            });
        }
    }

    /// `call_rcu`: the grace period starts now. Returns `false` when every
    /// CPU is quiescent already (the caller runs the callback at once).
    fn call_rcu<P: Platform>(
        &self,
        m: &Machine<P>,
        me: &mut CpuLocal,
        mm: MmRef,
        action: Action,
    ) -> bool {
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
            l[me.id].push(Callback {
                mm,
                action,
                snap,
                next: 0,
            });
        });
        true
    }

    /// `rcu_barrier()` once every CPU is quiesced.
    fn barrier<P: Platform>(&self, m: &Machine<P>) {
        let n = self.cbs.with(|l| l.len());
        for c in 0..n.min(m.ncpus) {
            let mut me = m.local(c);
            self.process(m, &mut me);
        }
    }
}

/// The runtime's RCU for PREEMPT_RT's `mmdrop_sched`
/// ([`crate::schemes::KernelOptions::preempt_rt`]): Linux's quiescent
/// states on the runtime's own per-CPU words.
pub struct KernelRcu(GraceEngine);

impl core::fmt::Debug for KernelRcu {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KernelRcu").finish_non_exhaustive()
    }
}

impl KernelRcu {
    /// A new engine (orderings as `opts` says).
    pub fn new(opts: SchemeOptions) -> Self {
        KernelRcu(GraceEngine::new(opts, false, QsWords::Kernel))
    }

    /// `rcu_note_context_switch` and the callbacks due (finish_task_switch).
    pub fn context_switch<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        self.0.context_switch(m, me)
    }

    /// `rcu_sched_clock_irq` and the callbacks due (an interrupt point).
    pub fn tick<P: Platform>(&self, m: &Machine<P>, me: &mut CpuLocal) {
        self.0.tick(m, me)
    }

    /// `call_rcu(&mm->delayed_drop, __mmdrop_delayed)`: `false` if the grace
    /// period is already over (run `__mmdrop` now).
    pub fn call_rcu_mmdrop<P: Platform>(
        &self,
        m: &Machine<P>,
        me: &mut CpuLocal,
        mm: MmRef,
    ) -> bool {
        self.0.call_rcu(m, me, mm, Action::Mmdrop)
    }

    /// `rcu_barrier()` at the end of a run.
    pub fn barrier<P: Platform>(&self, m: &Machine<P>) {
        self.0.barrier(m)
    }
}

/// See the module documentation.
pub struct Rcu {
    /// Options (only `weaken` applies).
    pub opts: SchemeOptions,
    /// `rcu-lazy-aware` (lazy borrowing is not quiescent) rather than `rcu`.
    pub lazy_aware: bool,
    /// The grace periods, on the scheme's slots. Its per-CPU callback lists
    /// are workbench bookkeeping on `core` atomics (no platform access
    /// inside, see `sync.rs`): a list is touched only by its CPU, and by
    /// `Machine::finish` once no CPU runs.
    gp: GraceEngine,
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
            gp: GraceEngine::new(opts, lazy_aware, QsWords::SchemeSlot),
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
            self.gp.report(m, me, 1);
        }
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        if self.lazy_aware && me.scheme_private[0] & 1 == 1 {
            self.gp.report(m, me, 0);
        }
        // Nothing here is a full barrier; membarrier needs one of
        // mmdrop_lazy_tlb() (include/linux/sched/mm.h): issue 9, item 9.
        m.membarrier_mb(me);
    }

    fn finish_switch(&self, m: &Machine<P>, me: &mut CpuLocal) {
        self.gp.context_switch(m, me);
    }

    fn tick(&self, m: &Machine<P>, me: &mut CpuLocal) {
        self.gp.tick(m, me);
    }

    fn free_later(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) -> bool {
        // call_rcu(&mm->rcu, __mmdrop_free): the grace period starts now.
        self.gp.call_rcu(m, me, mm, Action::Free)
    }

    fn quiesced(&self, m: &Machine<P>) {
        // rcu_barrier() at the end of the run: every CPU is quiesced.
        self.gp.barrier(m);
    }

    fn ordering_sites(&self) -> &'static [OrderingSite] {
        if self.lazy_aware {
            SITES_LAZY_AWARE
        } else {
            SITES_RCU
        }
    }
}
