//! The schemes: one implementation each, behind one trait.
//!
//! The runtime ([`crate::runtime`]) calls a scheme at the kernel's points;
//! every hook has a do-nothing default so each scheme states only what it
//! changes. Hooks receive the machine and the calling CPU's private state.

use core::sync::atomic::Ordering;

use alloc::boxed::Box;

use crate::mm::MmRef;
use crate::platform::Platform;
use crate::runtime::{ConfigError, CpuLocal, Machine};

pub mod hazard_handoff;
pub mod hazard_ipi;
pub mod lightweight;
pub mod lightweight_v2;
mod mailbox;
pub mod mockup;
pub mod rcu;
pub mod refcount;
pub mod shootdown;

/// Every scheme of the catalogue (docs/design.md section 2) that is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemeKind {
    /// Classic `active_mm` refcounting (Linux <= 6.3).
    Refcount,
    /// The seed exactly as posted (refcount kept, slot added).
    Mockup,
    /// The seed finished.
    Lightweight,
    /// Andy's v2: plain-store slot plus an `mm_to_mmdrop` mailbox.
    LightweightV2,
    /// PeterZ 2021 / Andy 2022: `lazy_mm` + `drop_mm`, batched grab.
    HazardHandoff,
    /// Nick Piggin's shoot lazies (Linux >= 6.4, powerpc).
    Shootdown,
    /// Mathieu Desnoyers' hazard pointers + targeted IPIs (2024 RFC).
    HazardIpi,
    /// RCU-freeing of the mm, quiescent states as Linux's non-preemptible
    /// RCU counts them (idle, user-mode ticks, context switches: unsafe).
    Rcu,
    /// RCU-freeing with "lazily borrowing an mm" not quiescent.
    RcuLazyAware,
}

impl SchemeKind {
    /// Every implemented scheme, in catalogue order.
    pub const ALL: [SchemeKind; 9] = [
        SchemeKind::Refcount,
        SchemeKind::Mockup,
        SchemeKind::Lightweight,
        SchemeKind::LightweightV2,
        SchemeKind::HazardHandoff,
        SchemeKind::Shootdown,
        SchemeKind::HazardIpi,
        SchemeKind::Rcu,
        SchemeKind::RcuLazyAware,
    ];

    /// The scheme's id on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SchemeKind::Refcount => "refcount",
            SchemeKind::Mockup => "mockup",
            SchemeKind::Lightweight => "lightweight",
            SchemeKind::LightweightV2 => "lightweight-v2",
            SchemeKind::HazardHandoff => "hazard-handoff",
            SchemeKind::Shootdown => "shootdown",
            SchemeKind::HazardIpi => "hazard-ipi",
            SchemeKind::Rcu => "rcu",
            SchemeKind::RcuLazyAware => "rcu-lazy-aware",
        }
    }

    /// Parses a scheme id.
    pub fn parse(s: &str) -> Option<SchemeKind> {
        SchemeKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// `Some(reason)` when the scheme is known to be unsafe or leaky, so that
    /// a non-zero ledger is its expected result rather than a failure.
    pub fn known_unsafe(self) -> Option<&'static str> {
        match self {
            SchemeKind::Mockup => Some(
                "as posted: the x86 same-mm early return in switch_mm_irqs_off skips lazy_mm_drop(), \
                 so a handed-over reference can be overwritten (leak)",
            ),
            SchemeKind::Rcu => Some(
                "idle is an RCU extended quiescent state and every context switch a quiescent state \
                 (kernel -> kernel included, which keeps the lazy borrow), so a grace period ends while \
                 a lazy CPU still has the mm loaded (Rik van Riel, Dec 2020): use-after-free (under 6.12's \
                 flush_tlb_func on every profile)",
            ),
            _ => None,
        }
    }

    /// [`SchemeKind::known_unsafe`], plus what is unsafe only under a given
    /// kernel model and only when CPUs go offline (`hotplug`: the run
    /// offlines CPUs).
    pub fn known_unsafe_with(self, kernel: &KernelOptions, hotplug: bool) -> Option<&'static str> {
        if let Some(r) = self.known_unsafe() {
            return Some(r);
        }
        match self {
            SchemeKind::Shootdown if hotplug && kernel.hotplug == HotplugModel::Linux612 => Some(
                "Linux 6.12 hotplug: from __cpu_disable until idle_task_exit the dying CPU is offline, so \
                 cleanup_lazy_tlbs' on_each_cpu_mask skips it while its MMU and idle->active_mm still use \
                 the mm (loom: lazymm-verify scenarios::offline_races_teardown; fixed by the later \
                 sched_force_init_mm form, option force-init-mm)",
            ),
            _ => None,
        }
    }
}

impl core::fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// How `lightweight` clears its slot when the CPU leaves lazy mode (the
/// seed's "could be replaced with non-atomic code if mm_users > 0").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnlazyPlain {
    /// Always the atomic exchange (the seed as posted).
    #[default]
    Off,
    /// A plain store when a *user task* of the same mm now runs: it holds a
    /// `users` reference, so no teardown of that mm can be in progress and
    /// the slot cannot hold a hand-off. (A kernel thread in
    /// `kthread_use_mm` proves nothing: it may hold only an `mmgrab`.)
    SameMm,
    /// The rule before issue 9: a plain store whenever `current->mm` is the
    /// same mm, kernel threads in `kthread_use_mm` included. Refuted: the
    /// teardown hands the CPU `mm|1`, then `kthread_use_mm(mm)` (users 0,
    /// only an `mmgrab`) plain-stores 0 and the unit leaks (loom:
    /// scenarios::kthread_use_mm_grab_only). Kept with its counterexample.
    SameMmAnyTask,
    /// A plain store whenever a load of `users` reads > 0 (the seed's
    /// literal idea). Refuted: the teardown can start between the load and
    /// the store, and the hand-off is overwritten (leak). Kept as a variant
    /// with its counterexample (see docs/verification.md).
    ReadUsers,
}

impl KernelOptions {
    /// Every pre-issue-9 choice at once: lazymm's model before it was made
    /// faithful to 6.12 (for the verdict-change table).
    pub const PRE_ISSUE_9: KernelOptions = KernelOptions {
        x86_switch: X86SwitchOrder::ClearAfterCr3,
        x86_flush: X86FlushLazy::Unlazy2022,
        x86_scan: X86Scan::Auto,
        hotplug: HotplugModel::ForceInitMm,
        radix_exit_lazy_ipi: true,
        no_mm_cid: false,
        deep_idle: false,
        kvm_pv_flush: false,
        preempt_rt: false,
        lru_gen: false,
    };

    /// Parses a comma-separated list of non-default choices:
    /// `clear-after-cr3`, `unlazy2022`, `mask-scan`, `force-init-mm`,
    /// `radix-exit-ipi`, `no-mm-cid`, `deep-idle`, `kvm-pv-flush`,
    /// `preempt-rt`, `lru-gen`, or `pre-issue-9` (the first five); empty
    /// for 6.12.
    pub fn parse(s: &str) -> Result<KernelOptions, alloc::string::String> {
        let mut k = KernelOptions::default();
        for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "clear-after-cr3" => k.x86_switch = X86SwitchOrder::ClearAfterCr3,
                "unlazy2022" => k.x86_flush = X86FlushLazy::Unlazy2022,
                "mask-scan" => k.x86_scan = X86Scan::Mask,
                "force-init-mm" => k.hotplug = HotplugModel::ForceInitMm,
                "radix-exit-ipi" => k.radix_exit_lazy_ipi = true,
                "no-mm-cid" => k.no_mm_cid = true,
                "deep-idle" => k.deep_idle = true,
                "kvm-pv-flush" => k.kvm_pv_flush = true,
                "preempt-rt" => k.preempt_rt = true,
                "lru-gen" => k.lru_gen = true,
                "pre-issue-9" => k = KernelOptions::PRE_ISSUE_9,
                _ => {
                    return Err(alloc::format!(
                        "unknown kernel option `{w}` (valid: clear-after-cr3, unlazy2022, \
                         mask-scan, force-init-mm, radix-exit-ipi, no-mm-cid, deep-idle, \
                         kvm-pv-flush, preempt-rt, lru-gen, pre-issue-9)"
                    ))
                }
            }
        }
        Ok(k)
    }
}

/// Scheme options: variants and, for mutation tests, one weakened ordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeOptions {
    /// The ordering site to weaken to `Relaxed` (or the fence to remove);
    /// `None` for the real code. Each scheme lists its sites.
    pub weaken: Option<&'static str>,
    /// `lightweight`: add a batch to `count` on the first hit of the
    /// fix-up, subtract the unused ones at the end (the seed's XXX).
    pub batched_grab: bool,
    /// `lightweight`: the non-atomic unlazy.
    pub unlazy_plain: UnlazyPlain,
    /// Defer frees out of interrupts-off context (to `finish_task_switch`).
    pub defer_free: bool,
    /// Which kernel the runtime's paths model (issue 9): every choice
    /// defaults to Linux 6.12.
    pub kernel: KernelOptions,
}

/// x86 `switch_mm_irqs_off`: where the previous mm's `mm_cpumask` bit is
/// cleared relative to the CR3 write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum X86SwitchOrder {
    /// Linux 6.12 (`arch/x86/mm/tlb.c`, `switch_mm_irqs_off`): clear prev's
    /// bit, set next's bit, read `tlb_gen`, write CR3. Between the clear and
    /// the CR3 write a mask scan skips a CPU whose MMU still uses prev.
    #[default]
    Linux612,
    /// lazymm's order before issue 9 (a patch to the kernel, not any
    /// kernel): set next's bit, write CR3, then clear prev's bit.
    ClearAfterCr3,
}

/// x86 exit flush IPI handler (`flush_tlb_func` on a lazy CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum X86FlushLazy {
    /// Linux 6.12 (`arch/x86/mm/tlb.c`, `flush_tlb_func`):
    /// `switch_mm_irqs_off(NULL, &init_mm, NULL)`: the MMU leaves the mm,
    /// `active_mm` and the scheme's lazy borrow stay.
    #[default]
    Linux612,
    /// Andy Lutomirski's January 2022 series (`unlazy_mm_irqs_off`):
    /// `active_mm` and the lazy borrow follow the MMU to `init_mm`.
    Unlazy2022,
}

/// Which CPUs a teardown scan visits on the `x86` and `x86-lazy-cpumask`
/// profiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum X86Scan {
    /// lazymm's fix (issue 9): every online CPU, unless the profile's mask
    /// provably covers every CPU that can still use the mm (x86: only with
    /// [`X86SwitchOrder::ClearAfterCr3`] and [`X86FlushLazy::Unlazy2022`];
    /// x86-lazy-cpumask: only with [`X86FlushLazy::Unlazy2022`], since a
    /// `munmap` flush or deep idle followed by another flush clears the bit
    /// of a CPU whose `active_mm` is still the mm).
    #[default]
    Auto,
    /// The seed's scan of `mm_cpumask` whatever the order: unsafe under
    /// 6.12's order and flush (kept for its counterexamples).
    Mask,
}

/// CPU hotplug.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HotplugModel {
    /// Linux 6.12 (`kernel/cpu.c` `takedown_cpu`/`clear_tasks_mm_cpumask`,
    /// `kernel/sched/core.c` `idle_task_exit`, `kernel/cpu.c` `finish_cpu`):
    /// the dying CPU switches its MMU to `init_mm` and keeps `active_mm`;
    /// masks are cleared only in mms still attached to a task (powerpc);
    /// the control CPU later does `mmdrop_lazy_tlb(idle->active_mm)`.
    #[default]
    Linux612,
    /// The newer `sched_force_init_mm` form: the dying CPU switches to
    /// `init_mm` properly (`active_mm` included) and releases its borrow
    /// itself before going offline.
    ForceInitMm,
}

/// The kernel the runtime models (issue 9): each field says which kernel
/// or patch its non-default value models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOptions {
    /// x86 `switch_mm_irqs_off` order.
    pub x86_switch: X86SwitchOrder,
    /// x86 `flush_tlb_func` on a lazy CPU.
    pub x86_flush: X86FlushLazy,
    /// The teardown scan on x86.
    pub x86_scan: X86Scan,
    /// CPU hotplug.
    pub hotplug: HotplugModel,
    /// powerpc radix under shoot-down: the exit flush IPIs the mask
    /// (`exit_flush_lazy_tlbs`, which 6.12 runs only for non-fullmm flushes
    /// of a single-user mm; lazymm's exit-time model before issue 9).
    /// Default off: 6.12's fullmm exit flush is a `tlbie` broadcast.
    pub radix_exit_lazy_ipi: bool,
    /// A kernel built without `CONFIG_SCHED_MM_CID` (it needs `CONFIG_RSEQ`,
    /// default y): no `switch_mm_cid` (kernel/sched/sched.h) and so none of
    /// its barriers: `smp_mb__after_mmgrab()` on user -> kernel (a no-op on
    /// x86, `smp_mb()` on arm64 and powerpc), `smp_mb()` on kernel -> user
    /// (every architecture), `smp_mb__after_switch_mm()` on user -> user of
    /// another mm (a no-op on x86, `smp_mb()` elsewhere). Without them, the
    /// full barrier membarrier needs on a kernel -> user switch on powerpc
    /// comes only from `mmdrop_lazy_tlb()` (include/linux/sched/mm.h), so a
    /// scheme whose lazy drop is not a full barrier must add one there
    /// ([`crate::runtime::Machine::membarrier_mb`]). Default off (6.12's
    /// default configuration).
    pub no_mm_cid: bool,
    /// x86 deep idle (drivers/cpuidle/cpuidle.c cpuidle_enter_state: a
    /// state flagged `CPUIDLE_FLAG_TLB_FLUSHED`, e.g. C3/C6 in
    /// drivers/idle/intel_idle.c's nehalem/snb/byt tables, calls
    /// arch/x86/mm/tlb.c `leave_mm()`): every idle entry of
    /// [`crate::runtime::Machine::cpuidle_enter`] picks such a state, so an
    /// idle lazy CPU switches its MMU to `init_mm` (6.12: `active_mm` and the
    /// lazy borrow stay), leaves the mask (x86) and gets no flush IPI.
    /// Default off: which state the governor picks is a machine's choice.
    pub deep_idle: bool,
    /// A KVM guest with `KVM_FEATURE_PV_TLB_FLUSH` (arch/x86/kernel/kvm.c
    /// kvm_flush_tlb_multi): a flush skips every preempted vCPU
    /// (`steal_time.preempted & KVM_VCPU_PREEMPTED`), setting
    /// `KVM_VCPU_FLUSH_TLB` instead; the host flushes its TLB when it runs
    /// it again (arch/x86/kvm/x86.c record_steal_time). Such a vCPU stays
    /// lazy with its MMU on the mm. x86 profiles only. Default off (bare
    /// metal).
    pub kvm_pv_flush: bool,
    /// A `CONFIG_PREEMPT_RT` kernel: `finish_task_switch`'s lazy drop is
    /// `mmdrop_lazy_tlb_sched()` -> `mmdrop_sched()`
    /// (include/linux/sched/mm.h), whose final `__mmdrop` is not run in the
    /// scheduler but queued with `call_rcu(&mm->delayed_drop,
    /// __mmdrop_delayed)` (on RT, `__mmdrop` takes sleeping locks). The
    /// runtime models the grace period with the same engine as the `rcu`
    /// scheme ([`crate::schemes::rcu::KernelRcu`], Linux's
    /// non-preemptible quiescent states) and counts the delayed drops
    /// (`CpuStats::rcu_delayed_drops`). Only a drop that reaches 0 inside
    /// `finish_task_switch` is delayed (`refcount`, `mockup`: their lazy
    /// drop; the hand-off schemes: a handed unit dropped there). Default
    /// off (6.12's default, non-RT configuration).
    pub preempt_rt: bool,
    /// The multi-gen LRU with its mm walk (`CONFIG_LRU_GEN=y`, which
    /// selects `CONFIG_LRU_GEN_WALKS_MMU` on architectures with
    /// `ARCH_HAS_HW_PTE_YOUNG`: x86 and arm64): `context_switch()`
    /// (kernel/sched/core.c) calls `lru_gen_use_mm(next->mm)` on every
    /// switch to a task with an mm, and `exec_mmap()` (fs/exec.c) on exec:
    /// a plain `WRITE_ONCE(mm->lru_gen.bitmap, -1)`
    /// (include/linux/mm_types.h), a store to one line of the mm that
    /// every CPU running the process writes, whatever the lazy scheme.
    /// Debian's 6.12 amd64 configuration has it
    /// (`/usr/src/linux-config-6.12/config.amd64_none_amd64.xz`:
    /// `CONFIG_LRU_GEN=y`, `CONFIG_LRU_GEN_ENABLED=y`,
    /// `CONFIG_LRU_GEN_WALKS_MMU=y`). No effect on powerpc. Default off: the
    /// model's default is the kernel without it, so that counts isolate
    /// the lazy schemes; machine presets turn it on where their kernel had
    /// it.
    pub lru_gen: bool,
}

impl Default for SchemeOptions {
    fn default() -> Self {
        SchemeOptions {
            weaken: None,
            batched_grab: true,
            unlazy_plain: UnlazyPlain::SameMm,
            defer_free: true,
            kernel: KernelOptions::default(),
        }
    }
}

impl SchemeOptions {
    /// The ordering to use at `site`: `strong`, or `Relaxed` when this site
    /// is the one being weakened.
    #[inline]
    pub fn ord(&self, site: &'static str, strong: Ordering) -> Ordering {
        if self.weaken == Some(site) {
            Ordering::Relaxed
        } else {
            strong
        }
    }

    /// The failure ordering of a compare-exchange at `site`.
    #[inline]
    pub fn ord_fail(&self, site: &'static str, strong: Ordering) -> Ordering {
        self.ord(site, strong)
    }

    /// Whether the fence at `site` is kept.
    #[inline]
    pub fn fence_kept(&self, site: &'static str) -> bool {
        self.weaken != Some(site)
    }
}

/// An ordering site a scheme relies on: what can be weakened, and which test
/// shows it is needed.
#[derive(Clone, Copy, Debug)]
pub struct OrderingSite {
    /// The site's name (the value of [`SchemeOptions::weaken`]).
    pub name: &'static str,
    /// The ordering the real code uses.
    pub strong: &'static str,
    /// Why it is needed.
    pub why: &'static str,
    /// The test that fails when it is weakened.
    pub decided_by: &'static str,
}

/// The hooks a scheme implements. See [`crate::runtime`] for where each is
/// called.
pub trait Scheme<P: Platform>: Send + Sync {
    /// Which scheme this is.
    fn kind(&self) -> SchemeKind;

    /// A variant's base scheme: the scheme every hook this one does not
    /// override forwards to (the tests' deliberately broken schemes, loom's
    /// candidate fixes: `lightweight` with one hook replaced). `None` for
    /// the schemes themselves, whose unimplemented hooks do nothing. Every
    /// provided hook below forwards to it, so a hook added to this trait is
    /// forwarded in this one place, never in each variant.
    fn base(&self) -> Option<&dyn Scheme<P>> {
        None
    }

    /// `mmgrab_lazy_tlb`: this CPU starts borrowing `mm` lazily (user ->
    /// kernel switch, `exit_mm`, `kthread_unuse_mm`). Interrupts are off.
    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.grab_lazy(m, me, mm)
        }
    }

    /// `mmdrop_lazy_tlb`: this CPU stopped borrowing `mm` (its MMU no
    /// longer uses it). Called from `finish_task_switch` (interrupts on) or
    /// from an unlazy in an IPI or hotplug (`me.irqs_off` tells).
    fn drop_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.drop_lazy(m, me, mm)
        }
    }

    /// The architecture's `enter_lazy_tlb` set `is_lazy` (the seed's hook).
    fn lazy_tlb_entered(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.lazy_tlb_entered(m, me, mm)
        }
    }

    /// The end of `switch_mm_irqs_off` was reached (not an early return).
    fn switch_mm_tail(&self, m: &Machine<P>, me: &mut CpuLocal, was_lazy: bool) {
        if let Some(b) = self.base() {
            b.switch_mm_tail(m, me, was_lazy)
        }
    }

    /// Every `finish_task_switch`.
    fn finish_switch(&self, m: &Machine<P>, me: &mut CpuLocal) {
        if let Some(b) = self.base() {
            b.finish_switch(m, me)
        }
    }

    /// `__mmput`, after `exit_mmap` (and its flush), before the final
    /// `mmdrop`: the fix-up. `users` is 0.
    fn mm_teardown(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.mm_teardown(m, me, mm)
        }
    }

    /// `__mmdrop`, before the free: `count` is 0.
    fn before_free(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.before_free(m, me, mm)
        }
    }

    /// `__mmdrop`, after [`Scheme::before_free`]: `true` if the scheme takes
    /// the free over (`call_rcu`): it must then call [`Machine::free_mm`]
    /// itself, later (the mm stays pinned until then).
    fn free_later(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) -> bool {
        self.base().is_some_and(|b| b.free_later(m, me, mm))
    }

    /// Every CPU has been quiesced and no CPU runs any more
    /// ([`Machine::finish`], before the leak check): last chance to run work
    /// the scheme deferred (an `rcu_barrier()`).
    fn quiesced(&self, m: &Machine<P>) {
        if let Some(b) = self.base() {
            b.quiesced(m)
        }
    }

    /// The scheme's IPI handler on the target CPU.
    fn ipi(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.ipi(m, me, mm)
        }
    }

    /// A kernel thread that adopted `mm` with `kthread_use_mm` starts
    /// borrowing it lazily (`kthread_unuse_mm`, or blocking inside the
    /// adoption). Its caller may hold only an `mmgrab` (kernel/kthread.c
    /// kthread_use_mm: `users` may be 0), so a scheme whose teardown relies
    /// on "users == 0: nobody publishes" must re-check here
    /// ([`Machine::kthread_lazy_users_check`]). Not called for user tasks
    /// or `init_mm`. Interrupts are off.
    fn kthread_lazy_entry(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        if let Some(b) = self.base() {
            b.kthread_lazy_entry(m, me, mm)
        }
    }

    /// finish_task_switch()'s drop of `init_mm` when a CPU leaves it for a
    /// user task (`mmdrop_lazy_tlb_sched(&init_mm)`, kernel/sched/core.c):
    /// what that does depends on the kernel's lazy-TLB mode, i.e. on the
    /// scheme. Default: no count on `init_mm`, only the full barrier
    /// `mmdrop_lazy_tlb()` must give membarrier (include/linux/sched/mm.h).
    fn drop_init_mm(&self, m: &Machine<P>, me: &mut CpuLocal) {
        match self.base() {
            Some(b) => b.drop_init_mm(m, me),
            None => m.membarrier_mb(me),
        }
    }

    /// The scheduling-clock interrupt at an interrupt point
    /// ([`Machine::interrupt_point`]): kernel/time/timer.c
    /// `update_process_times` -> kernel/rcu/tree.c `rcu_sched_clock_irq`.
    fn tick(&self, m: &Machine<P>, me: &mut CpuLocal) {
        if let Some(b) = self.base() {
            b.tick(m, me)
        }
    }

    /// Does the x86 exit flush unlazy "behind the scheduler's back" (MMU to
    /// `init_mm`, `active_mm` and the lazy reference left alone)? True for
    /// the schemes taken from kernels that did so.
    fn flush_unlazy_behind_back(&self) -> bool {
        self.base().is_some_and(|b| b.flush_unlazy_behind_back())
    }

    /// Are drops requested with interrupts off deferred?
    fn defers_free(&self) -> bool {
        self.base().is_some_and(|b| b.defers_free())
    }

    /// The orderings this scheme relies on.
    fn ordering_sites(&self) -> &'static [OrderingSite] {
        self.base().map_or(&[], |b| b.ordering_sites())
    }
}

/// Builds the implementation of `kind`.
pub fn build<P: Platform>(
    kind: SchemeKind,
    opts: &SchemeOptions,
) -> Result<Box<dyn Scheme<P>>, ConfigError> {
    Ok(match kind {
        SchemeKind::Refcount => Box::new(refcount::Refcount),
        SchemeKind::Mockup => Box::new(mockup::Mockup { opts: *opts }),
        SchemeKind::Lightweight => Box::new(lightweight::Lightweight { opts: *opts }),
        SchemeKind::LightweightV2 => Box::new(lightweight_v2::LightweightV2 {
            opts: *opts,
            literal_v2: false,
        }),
        SchemeKind::HazardHandoff => Box::new(hazard_handoff::HazardHandoff { opts: *opts }),
        SchemeKind::Shootdown => Box::new(shootdown::Shootdown { opts: *opts }),
        SchemeKind::HazardIpi => Box::new(hazard_ipi::HazardIpi { opts: *opts }),
        SchemeKind::Rcu => Box::new(rcu::Rcu::new(*opts, false)),
        SchemeKind::RcuLazyAware => Box::new(rcu::Rcu::new(*opts, true)),
    })
}
