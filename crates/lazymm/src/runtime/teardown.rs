//! Teardown paths off the exiting task's CPU (issue 9, omitted paths):
//! `mmput_async`, whose `__mmput` runs later on a kworker (kernel/fork.c
//! `mmput_async`, `mmput_async_fn`), and the runtime's RCU words for
//! PREEMPT_RT's `mmdrop_sched` (include/linux/sched/mm.h).

use core::sync::atomic::Ordering;

use alloc::vec::Vec;

use super::Machine;
use crate::mm::MmRef;
use crate::platform::{CpuId, Platform};

impl<P: Platform> Machine<P> {
    /// `mmput_async` on CPU `cpu` (kernel/fork.c): drops a `users`
    /// reference; the last one does not tear the mm down here but queues
    /// `mmput_async_fn` with `schedule_work` (callers that cannot sleep:
    /// binder, the bpf task iterator, vmscan's mm walk, SGX). `system_wq` is
    /// per-CPU and `__queue_work` (kernel/workqueue.c) picks the calling CPU
    /// for `WORK_CPU_UNBOUND`: the work waits on this CPU's pool until a
    /// kworker runs it ([`Machine::run_async_mmput`]). Until then `users`
    /// is 0 and the mm is not torn down: the CPUs still lazy on it stay
    /// so, and `__mmput` later runs on a CPU that is not the one whose
    /// task dropped the reference, whatever that kworker borrowed.
    pub fn mmput_async(&self, cpu: CpuId, mm: MmRef) {
        let mut me = self.local(cpu);
        self.deref(cpu, mm, "mmput_async");
        // Ordering: AcqRel, as atomic_dec_and_test() in mmput_async (fully
        // ordered): every user's accesses happen-before the teardown the
        // kworker runs (the work queueing orders it after this decrement).
        if self
            .p
            .fetch_sub(cpu, &self.mms.get(mm.idx).users, 1, Ordering::AcqRel)
            == 1
        {
            me.stats.async_mmputs += 1;
            self.async_work.with(|q| q[cpu].push(mm));
        }
    }

    /// `mmput_async` works waiting for a kworker, on every CPU.
    pub fn pending_async_mmputs(&self) -> usize {
        self.async_work.with(|q| q.iter().map(Vec::len).sum())
    }

    /// A kworker on `cpu` runs the `mmput_async_fn` works of this CPU's
    /// pool, and those of offline CPUs (kernel/workqueue.c
    /// `unbind_workers`: a dead CPU's per-CPU pool runs unbound). Each is
    /// `__mmput`: `exit_mmap` (its flush), the scheme's fix-up, the final
    /// drop, run on `cpu` with whatever `active_mm` the kworker borrowed
    /// (idle's, a user task's it switched away from, or the dying mm itself).
    /// The CPU must be running a kernel thread (the driver switched to
    /// [`super::Next::Kthread`]); it is marked as such. Returns the works run.
    pub fn run_async_mmput(&self, cpu: CpuId) -> usize {
        let works = self.async_work.with(|q| {
            let mut w = core::mem::take(&mut q[cpu]);
            for (c, other) in q.iter_mut().enumerate() {
                if c != cpu && !self.is_online(c) {
                    w.append(other);
                }
            }
            w
        });
        if works.is_empty() {
            return 0;
        }
        let mut me = self.local(cpu);
        debug_assert!(me.curr.is_none(), "a kworker is a kernel thread");
        me.idle = false;
        for &mm in &works {
            me.stats.async_teardowns += 1;
            self.mmput_final(&mut me, mm);
            self.run_deferred(&mut me);
        }
        works.len()
    }

    /// CPU `c`'s runtime RCU word (PREEMPT_RT's `mmdrop_sched` engine,
    /// [`crate::schemes::rcu::KernelRcu`]).
    pub(crate) fn rcu_word(&self, c: CpuId) -> &P::Atomic {
        // The engine exists only when `KernelOptions::preempt_rt` allocated
        // these words (Machine::with_scheme): an internal invariant.
        &self.percpu[c]
            .rcu
            .as_ref()
            .expect("runtime RCU words exist under preempt-rt")
            .0
    }
}
