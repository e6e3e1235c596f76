//! `shootdown`: Nick Piggin's "shoot lazies" (`CONFIG_MMU_LAZY_TLB_SHOOTDOWN`,
//! Linux >= 6.4, selected by powerpc Book3S64; kernel-history 3.2).
//!
//! Lazy users are not counted at all. The CPU doing the final `mmdrop`
//! (`__mmdrop` -> `cleanup_lazy_tlbs`) IPIs every CPU that may still use the
//! mm lazily, itself included, and waits; each target that finds
//! `active_mm == mm` switches itself to `init_mm` (`do_shoot_lazy_tlb`).
//! Only then is the mm freed.
//!
//! # State machine
//!
//! Per-CPU slot: none. The only per-CPU state is the CPU's private
//! `active_mm` / loaded mm, and its bit in `mm_cpumask`.
//!
//! ```text
//!   CPU c, with respect to mm:
//!     user      c runs a task of mm (pinned by that task's `users`)
//!     lazy      c runs idle / a kernel thread with active_mm == mm
//!               (pinned by nothing: only by the shoot-down to come)
//!     away      active_mm != mm
//!
//!   owner  user -> lazy      user->kernel, exit_mm, kthread_unuse_mm:
//!                            mmgrab_lazy_tlb() is nothing (a full fence here,
//!                            see below)
//!   owner  lazy -> away      kernel->user, exec from a kthread,
//!                            kthread_use_mm, hotplug, the exit flush's
//!                            unlazy: mmdrop_lazy_tlb() is smp_mb() only
//!   __mmdrop (count == 0)    lazy -> away on every target, by its own IPI
//!                            handler, before the free
//! ```
//!
//! `mm->count`: `1` for all users together, plus other grabs
//! (`kthread_use_mm`). Lazy transitions never touch it. It reaches 0 at the
//! end of `__mmput` (or at the `mmdrop` of the last other grab), and the CPU
//! doing that is the one that shoots.
//!
//! # Which CPUs are shot
//!
//! The kernel's contract: "at the time of the final mmdrop, mm_cpumask(mm)
//! contains at least all possible CPUs in which the mm is lazy". The profiles
//! that set the mask on every switch (x86, x86-lazy-cpumask, powerpc radix,
//! powerpc hash) keep every lazy CPU in it (hotplug clears a CPU only after
//! it left its lazy mm: the fixed hotplug race of kernel-history 3.4), so the
//! targets are the online CPUs of the mask. arm64 never tracks the mask: the
//! targets are then every online CPU (Andy's "DoS" concern: one IPI per
//! online CPU per final mmdrop). That default is **lazymm's extension**: in
//! 6.12 only powerpc selects `MMU_LAZY_TLB_SHOOTDOWN`, and no "all online
//! CPUs" fallback exists for an architecture without a mask (issue 9, item
//! 10). On x86 under 6.12's `switch_mm_irqs_off` order and `flush_tlb_func`
//! the mask no longer covers every CPU whose MMU or `active_mm` still uses
//! the mm, so x86 also shoots every online CPU (issue 9, items 1 and 4;
//! x86 does not select shoot-lazies in 6.12: this too is lazymm's).
//! x86-lazy-cpumask (post-6.12) too: a `munmap` flush or deep idle's
//! `leave_mm` moves a lazy CPU's MMU off the mm with its bit kept, and the
//! next flush clears the bit while `active_mm` still names the mm
//! (issue 9's omitted flush paths, `Machine::lazy_cpus`).
//! The calling CPU's own handler is a direct call, not an IPI (kernel/smp.c).
//!
//! **Known-unsafe under 6.12's CPU hotplug** (issue 9, item 2): from
//! `__cpu_disable` until `idle_task_exit` the dying CPU is offline, so
//! `on_each_cpu_mask` skips it while its MMU and `idle->active_mm` still use
//! the mm (explorer seed 5, powerpc-hash; loom `offline_races_teardown`).
//! The scheme cannot fix it; the later `sched_force_init_mm` form (option
//! `force-init-mm`) does.
//!
//! On powerpc radix the exit flush (`exit_flush_lazy_tlbs`) piggy-backs the
//! shoot-down and clears the mask (the runtime's exit flush keys off this
//! scheme), so `__mmdrop` usually has nobody left to shoot; on hash the mask
//! only grows, so `__mmdrop` IPIs every CPU the mm ever ran on (PeterZ's
//! adversarial case).
//!
//! # Orderings
//!
//! A CPU's mask bit is set (SeqCst in `switch_mm_irqs_off`) before it can
//! run a task of the mm, and `count` reaches 0 only after every user's
//! AcqRel `mmput`, so the shooter's mask read sees every lazy CPU's bit; it
//! is an acquire (site `sd-mask-load`) because a bit cleared by a CPU that
//! switched away lets the shooter skip it; the IPI's request/acknowledge
//! (the runtime's release/acquire mailbox, `smp_call_function_many(...,
//! wait=1)`) orders each target's last use before the free. The two full
//! fences on the lazy transitions are the `smp_mb()` that 6.12 keeps for
//! membarrier (`mmdrop_lazy_tlb()` with `!MMU_LAZY_TLB_REFCOUNT`, and the
//! `smp_mb__after_mmgrab()` of `switch_mm_cid()`): membarrier is not
//! modelled, so no lifetime test can fail when they are removed; they are
//! kept so that the per-switch cost is the kernel's.

use core::sync::atomic::Ordering;

use crate::arch::LazyCpus;
use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{CpuLocal, Ipi, Machine};
use crate::schemes::{OrderingSite, Scheme, SchemeKind, SchemeOptions};

/// See the module documentation.
#[derive(Debug)]
pub struct Shootdown {
    /// Options (only `weaken` applies).
    pub opts: SchemeOptions,
}

/// The orderings `shootdown` keeps.
pub const SITES: &[OrderingSite] = &[
    OrderingSite {
        name: "sd-mask-load",
        strong: "Acquire",
        why: "cleanup_lazy_tlbs reads mm_cpumask: a bit cleared by a CPU switching away (Release) means \
              that CPU's use of the mm is over before the free that skips it (the release/acquire \
              unpublish shape; the kernel's IPI-free skip relies on switch_mm's barriers)",
        decided_by: "litmus/relacq-drop+once.litmus (the same unpublish shape: Sometimes without the \
                     acquire/release pair); loom's scenarios reach the free through the exit flush's \
                     IPI or a reference chain that synchronizes first",
    },
    OrderingSite {
        name: "sd-grab-fence",
        strong: "SeqCst fence",
        why: "mmgrab_lazy_tlb() is empty under SHOOTDOWN, but switch_mm_cid() relies on the full barrier \
              of the mmgrab it replaced (smp_mb__after_mmgrab): membarrier / mm_cid ordering, not the \
              mm's lifetime",
        decided_by: "litmus/publish-scan+mmput-chain.litmus (Never: a lazy transition needs no barrier for \
                     the mm's lifetime); membarrier is not modelled, so loom passes without it",
    },
    OrderingSite {
        name: "sd-drop-fence",
        strong: "SeqCst fence",
        why: "mmdrop_lazy_tlb() = smp_mb() under SHOOTDOWN: membarrier needs a full barrier after storing \
              rq->curr and before returning to user space (kernel-history 8.6), not the mm's lifetime",
        decided_by: "litmus/publish-scan+mmput-chain.litmus (Never: a lazy transition needs no barrier for \
                     the mm's lifetime); membarrier is not modelled, so loom passes without it",
    },
];

impl<P: Platform> Scheme<P> for Shootdown {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Shootdown
    }

    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        if self.opts.fence_kept("sd-grab-fence") {
            m.p.fence(me.id, Ordering::SeqCst);
        }
    }

    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, _mm: MmRef) {
        if self.opts.fence_kept("sd-drop-fence") {
            m.p.fence(me.id, Ordering::SeqCst);
        }
    }

    fn drop_init_mm(&self, m: &Machine<P>, me: &mut CpuLocal) {
        // MMU_LAZY_TLB_SHOOTDOWN: mmdrop_lazy_tlb(&init_mm) is its
        // smp_mb(), as for any mm.
        Scheme::<P>::drop_lazy(self, m, me, MmRef::INIT);
    }

    fn before_free(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // cleanup_lazy_tlbs(): on_each_cpu_mask(mm_cpumask(mm),
        // do_shoot_lazy_tlb, mm, 1), the local CPU included.
        match m.lazy_cpus() {
            LazyCpus::Cpumask => {
                let mask = &m.mms.get(mm.idx).cpumask;
                for (w, word) in mask.iter().enumerate() {
                    // Ordering: Acquire (site sd-mask-load). Every bit of a
                    // CPU that can hold mm lazily was set (SeqCst) before
                    // that CPU ran a task of mm, which happens-before our
                    // count reaching 0, so no lazy CPU is missed; but a bit
                    // *cleared* by a CPU switching away (x86: Release in
                    // switch_mm_irqs_off) lets us skip that CPU, so its use
                    // of mm must happen-before our free: acquire.
                    let mut bits = m.p.load(
                        me.id,
                        word,
                        self.opts.ord("sd-mask-load", Ordering::Acquire),
                    );
                    while bits != 0 {
                        let cpu = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        // smp_call_function_many() skips offline CPUs (they
                        // left their lazy mm before going offline).
                        if cpu == me.id || m.is_online(cpu) {
                            m.send_ipi(me, cpu, Ipi::Scheme(mm));
                        }
                    }
                }
            }
            LazyCpus::AllOnline => {
                // The mask is not tracked (arm64): the documented default,
                // every online CPU.
                for cpu in 0..m.ncpus {
                    if cpu == me.id || m.is_online(cpu) {
                        m.send_ipi(me, cpu, Ipi::Scheme(mm));
                    }
                }
            }
        }
    }

    fn ipi(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // do_shoot_lazy_tlb(): if (current->active_mm == mm) {
        // WARN_ON_ONCE(current->mm); active_mm = &init_mm; switch_mm(); }
        // No lazy reference exists, so none is dropped.
        if me.active == mm {
            debug_assert!(
                me.curr.is_none(),
                "shoot-down of a CPU running a task of mm"
            );
            m.switch_to_init_mm(me);
        }
    }

    fn ordering_sites(&self) -> &'static [OrderingSite] {
        SITES
    }
}
