//! The per-CPU lazy-mm runtime: the kernel's switch points, in one place,
//! calling the scheme at exactly the points Linux does.
//!
//! | kernel path | here |
//! |---|---|
//! | `context_switch` + `finish_task_switch` | [`Machine::switch_to`] |
//! | `enter_lazy_tlb` / `switch_mm_irqs_off` (x86 shape, early returns kept) | private `enter_lazy_tlb`, `switch_mm_irqs_off` |
//! | `exit_mm` (the exiting CPU becomes lazy on its own mm) | [`Machine::exit_mm`] |
//! | `mmput` / `__mmput` (teardown, exit flush, fix-up, final drop) | [`Machine::mmput`] |
//! | `mmgrab` / `mmdrop` / `__mmdrop` | [`Machine::mmgrab`], [`Machine::mmdrop`] |
//! | `exec_mmap` (also from a kernel thread) | [`Machine::exec`] |
//! | `kthread_use_mm` / `kthread_unuse_mm` | [`Machine::kthread_use_mm`], [`Machine::kthread_unuse_mm`] |
//! | CPU offline / online (`sched_force_init_mm`) | [`Machine::cpu_offline`], [`Machine::cpu_online`] |
//! | IPI handling at interrupt points | [`Machine::interrupt_point`] |
//! | `flush_tlb_mm_range` (`munmap`, `mprotect`), cpuidle `leave_mm`, KVM's paravirt flush, powerpc radix `flush_type_needed` | [`Machine::munmap`], [`Machine::flush_tlb_mm_range`], [`Machine::cpuidle_enter`], [`Machine::vcpu_preempt`] (module `flush`) |
//! | IPI handling at interrupt points, the scheduling-clock tick | [`Machine::interrupt_point`] |
//! | `mmput_async` / `mmput_async_fn` on a kworker | [`Machine::mmput_async`], [`Machine::run_async_mmput`] |
//! | PREEMPT_RT `mmdrop_sched` (`call_rcu`) | private `mmdrop_final`, [`crate::schemes::rcu::KernelRcu`] |
//!
//! Each CPU's private state is a [`CpuLocal`] that only that CPU's driver
//! touches; shared state (mms, per-CPU scheme slots, IPI mailboxes) is made
//! of platform atomics.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::arch::{Arch, ExitFlush, LazyCpus};
use crate::ledger::{Ledger, LedgerCounts};
use crate::mm::{ArenaFull, MmRef, MmTable};
use crate::platform::{CpuId, LineKind, Platform};
use crate::schemes::rcu::KernelRcu;
use crate::schemes::{
    self, HotplugModel, Scheme, SchemeKind, SchemeOptions, X86FlushLazy, X86Scan, X86SwitchOrder,
};
use crate::sync::{CachePadded, OwnerCell, OwnerGuard, SpinLock};

mod teardown;

mod flush;
pub use flush::{LOADED_MM_SWITCHING, RADIX_TRIM_TIMER};

/// The largest machine.
pub const MAX_CPUS: usize = 4096;

/// The classification identity of a runtime mm (see [`Machine::switch_as`]).
#[inline]
pub fn class_id(m: MmRef) -> u64 {
    (u64::from(m.idx) << 32) | u64::from(m.gen)
}

/// Per-CPU counters (plain integers, owned by the CPU; summed by
/// [`Machine::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// user -> user, same mm.
    pub user_to_user_same_mm: u64,
    /// user -> user, different mm.
    pub user_to_user_diff_mm: u64,
    /// user -> kernel (enter lazy).
    pub user_to_kernel: u64,
    /// kernel -> kernel (stay lazy).
    pub kernel_to_kernel: u64,
    /// kernel -> user whose mm is the lazily held one (no MMU switch).
    pub kernel_to_user_lazy_reuse: u64,
    /// kernel -> user of another mm.
    pub kernel_to_user_diff_mm: u64,
    /// kernel -> user with no user task seen before on this CPU.
    pub kernel_to_user_lazy_unknown: u64,
    /// Times the scheme was told this CPU starts borrowing an mm lazily
    /// (user -> kernel, `exit_mm`, `kthread_unuse_mm`).
    pub lazy_enters: u64,
    /// Scheme IPIs sent (shoot-down, hazard+IPI).
    pub ipis: u64,
    /// Scheme IPIs handled.
    pub ipis_handled: u64,
    /// Exit-flush IPIs sent (the ones the architecture sends anyway).
    pub flush_ipis: u64,
    /// Exit-flush IPIs handled.
    pub flush_ipis_handled: u64,
    /// CPUs examined by teardown scans.
    pub scan_steps: u64,
    /// References handed to another CPU's slot by a fix-up.
    pub handoffs: u64,
    /// Teardowns that ended their calling task's own lazy borrow of the
    /// dying mm before the scan (`lightweight`, as the kernel patch's
    /// `lazy_tlb_handoff()`: kernel `teardown_self_takes`).
    pub self_takes: u64,
    /// mm drops deferred out of interrupts-off context.
    pub frees_deferred: u64,
    /// `__mmput` runs (address spaces torn down).
    pub teardowns: u64,
    /// `flush_tlb_mm_range` calls outside `exit_mmap` (`munmap`,
    /// `mprotect`): see [`Machine::flush_tlb_mm_range`].
    pub tlb_flushes: u64,
    /// IPIs those flushes sent (remote CPUs only; `exit_mmap`'s are
    /// [`CpuStats::flush_ipis`]).
    pub tlb_flush_ipis: u64,
    /// CPUs in the mask a flush did not IPI because they were lazy (x86
    /// `should_flush_tlb`, flushes that free no page tables).
    pub lazy_flush_skips: u64,
    /// Flushes of preempted vCPUs queued as `KVM_VCPU_FLUSH_TLB` instead of
    /// an IPI (arch/x86/kernel/kvm.c kvm_flush_tlb_multi).
    pub pv_flush_queued: u64,
    /// Deep-idle entries that switched the MMU to `init_mm` (cpuidle
    /// `leave_mm`).
    pub idle_leave_mm: u64,
    /// powerpc radix `exit_flush_lazy_tlbs` calls from `flush_type_needed`
    /// (`mm_users <= 1`, or the trim clock).
    pub radix_trims: u64,
    /// `mmput_async` calls that dropped the last `users` reference and
    /// queued `__mmput` to a kworker (counted on the queuing CPU).
    pub async_mmputs: u64,
    /// `__mmput` runs on a kworker (`mmput_async_fn`, counted on the CPU
    /// that ran it; also in `teardowns`).
    pub async_teardowns: u64,
    /// PREEMPT_RT: `mmdrop_sched` drops that reached 0 and queued
    /// `__mmdrop_delayed` with `call_rcu` (option `preempt-rt`).
    pub rcu_delayed_drops: u64,
}

impl CpuStats {
    /// Total context switches.
    pub fn switches(&self) -> u64 {
        self.user_to_user_same_mm
            + self.user_to_user_diff_mm
            + self.user_to_kernel
            + self.kernel_to_kernel
            + self.kernel_to_user_lazy_reuse
            + self.kernel_to_user_diff_mm
            + self.kernel_to_user_lazy_unknown
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &CpuStats) {
        self.user_to_user_same_mm += o.user_to_user_same_mm;
        self.user_to_user_diff_mm += o.user_to_user_diff_mm;
        self.user_to_kernel += o.user_to_kernel;
        self.kernel_to_kernel += o.kernel_to_kernel;
        self.kernel_to_user_lazy_reuse += o.kernel_to_user_lazy_reuse;
        self.kernel_to_user_diff_mm += o.kernel_to_user_diff_mm;
        self.kernel_to_user_lazy_unknown += o.kernel_to_user_lazy_unknown;
        self.lazy_enters += o.lazy_enters;
        self.ipis += o.ipis;
        self.ipis_handled += o.ipis_handled;
        self.flush_ipis += o.flush_ipis;
        self.flush_ipis_handled += o.flush_ipis_handled;
        self.scan_steps += o.scan_steps;
        self.handoffs += o.handoffs;
        self.self_takes += o.self_takes;
        self.frees_deferred += o.frees_deferred;
        self.teardowns += o.teardowns;
        self.tlb_flushes += o.tlb_flushes;
        self.tlb_flush_ipis += o.tlb_flush_ipis;
        self.lazy_flush_skips += o.lazy_flush_skips;
        self.pv_flush_queued += o.pv_flush_queued;
        self.idle_leave_mm += o.idle_leave_mm;
        self.radix_trims += o.radix_trims;
        self.async_mmputs += o.async_mmputs;
        self.async_teardowns += o.async_teardowns;
        self.rcu_delayed_drops += o.rcu_delayed_drops;
    }
}

/// One CPU's private state. Only its own driver touches it (and, in the
/// single-threaded executor, an IPI delivered to it).
#[derive(Debug)]
pub struct CpuLocal {
    /// This CPU.
    pub id: CpuId,
    /// `current->mm`: `None` for a kernel thread, idle, or a task past
    /// `exit_mm`.
    pub curr: Option<MmRef>,
    /// Does `current` hold a `users` reference on `current->mm`? True for a
    /// user task; false for a kernel thread inside `kthread_use_mm`, whose
    /// caller need hold only an `mmgrab` (kernel/kthread.c kthread_use_mm:
    /// `users` may be 0, e.g. KVM's Xen code).
    pub curr_users: bool,
    /// `current` is the idle task (`is_idle_task(current)`), not a kernel
    /// thread: for RCU, idle is an extended quiescent state and a running
    /// kernel thread is not (kernel/rcu/tree.c `rcu_sched_clock_irq`,
    /// `rcu_is_cpu_rrupt_from_idle`). Set by [`Next::Kernel`] (idle) and
    /// cleared by [`Next::Kthread`], a user task, `kthread_use_mm`.
    pub idle: bool,
    /// `current->active_mm`: the mm this CPU uses (own or borrowed).
    pub active: MmRef,
    /// What the MMU has loaded (`cpu_tlbstate.loaded_mm`).
    pub loaded: MmRef,
    /// The TLB generation of `loaded` this CPU has caught up with.
    pub loaded_tlb_gen: u64,
    /// `cpu_tlbstate_shared.is_lazy`.
    pub is_lazy: bool,
    /// `rq->prev_mm`: the lazily borrowed mm to release in
    /// `finish_task_switch`.
    pub prev_mm: Option<MmRef>,
    /// Interrupts are off (inside the switch or an IPI handler).
    pub irqs_off: bool,
    /// Drops deferred out of interrupts-off context, done at the next
    /// `finish_task_switch` or interrupt point.
    pub deferred: Vec<MmRef>,
    /// For switch classification only: the driver's identity of the
    /// current task's address space if it is a user task (kept across
    /// `exit_mm`, as the trace oracle classifies by task, not by
    /// `current->mm`). See [`Machine::switch_as`].
    pub class_curr: Option<u64>,
    /// For switch classification only: the identity of the last user task's
    /// address space on this CPU (the lazily held mm in the oracle's model).
    pub class_last_user: Option<u64>,
    /// Online?
    pub online: bool,
    /// Counters.
    pub stats: CpuStats,
    /// Private words a scheme may use (never shared).
    pub scheme_private: [u64; 2],
    /// The mm this CPU last stored in its own slot. A slot word holds only
    /// the address (as in the kernel); this shadow gives the ledger the
    /// generation the CPU believes it borrowed.
    pub slot_shadow: MmRef,
    /// The lazy drop now running is one on which membarrier relies for its
    /// full barrier (set by the runtime around `Scheme::drop_lazy`; a scheme
    /// whose drop is not a full barrier calls [`Machine::membarrier_mb`]).
    pub membarrier_mb_needed: bool,
    /// powerpc radix's per-CPU `mm_cpumask_trim_clock`
    /// (arch/powerpc/mm/book3s64/radix_tlb.c tick_and_test_trim_clock).
    pub trim_clock: u32,
    /// The last word this CPU wrote to its runtime RCU word
    /// ([`CpuShared::rcu`], PREEMPT_RT only).
    pub rcu_qs: u64,
    /// `finish_task_switch`'s lazy drop is running (`mmdrop_lazy_tlb_sched`):
    /// under PREEMPT_RT a final drop there goes through `call_rcu`.
    pub in_sched_drop: bool,
}

impl CpuLocal {
    /// The mm named by a word read from this CPU's own slot, as this CPU
    /// believes it to be (for the ledger).
    pub fn slot_ref(&self, word: u64) -> MmRef {
        match MmRef::idx_of_word(word) {
            Some(idx) if idx == self.slot_shadow.idx => self.slot_shadow,
            // A word this CPU never stored: a generation nobody has, so any
            // dereference is reported.
            Some(idx) => MmRef { idx, gen: u32::MAX },
            None => MmRef::INIT,
        }
    }
}

impl CpuLocal {
    fn new(id: CpuId) -> Self {
        CpuLocal {
            id,
            curr: None,
            curr_users: false,
            idle: true,
            active: MmRef::INIT,
            loaded: MmRef::INIT,
            loaded_tlb_gen: 0,
            is_lazy: false,
            prev_mm: None,
            irqs_off: false,
            deferred: Vec::new(),
            class_curr: None,
            class_last_user: None,
            online: true,
            stats: CpuStats::default(),
            scheme_private: [0; 2],
            slot_shadow: MmRef::INIT,
            membarrier_mb_needed: false,
            trim_clock: 0,
            rcu_qs: 0,
            in_sched_drop: false,
        }
    }
}

/// Per-CPU shared words: the scheme's slots (each on its own cache line) and,
/// for mailbox backends, the IPI mailboxes.
pub struct CpuShared<P: Platform> {
    /// The scheme's first slot (`lazy_mm`, hazard pointer).
    pub slot: CachePadded<P::Atomic>,
    /// The scheme's second slot (`mm_to_mmdrop` / `drop_mm`).
    pub slot2: CachePadded<P::Atomic>,
    /// IPI mailboxes, one per sender (mailbox backends only; empty for
    /// immediate delivery).
    pub ipi: Vec<P::Atomic>,
    /// x86 `cpu_tlbstate.loaded_mm` as other CPUs read it
    /// (`should_flush_tlb`): the loaded mm's word, or
    /// [`LOADED_MM_SWITCHING`] inside `switch_mm_irqs_off`.
    pub tlb_loaded: CachePadded<P::Atomic>,
    /// x86 `cpu_tlbstate_shared.is_lazy` (1: lazy).
    pub tlb_lazy: CachePadded<P::Atomic>,
    /// KVM's `steal_time.preempted` of this vCPU (`KVM_VCPU_PREEMPTED`,
    /// `KVM_VCPU_FLUSH_TLB`), written by the host and by flushers.
    pub steal_preempted: CachePadded<P::Atomic>,
    /// The runtime's RCU quiescent-state word (PREEMPT_RT's `mmdrop_sched`
    /// only; `None` otherwise, so other runs allocate no line for it).
    pub rcu: Option<CachePadded<P::Atomic>>,
}

/// What an IPI asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipi {
    /// A TLB flush of `mm` by the architecture (x86 `flush_tlb_func`,
    /// powerpc `exit_lazy_flush_tlb`): the exit flush, and `munmap` /
    /// `mprotect` flushes ([`Machine::flush_tlb_mm_range`]); the handler
    /// is the same, the sender chooses the targets.
    ExitFlush(MmRef),
    /// The scheme's own request about `mm` (shoot lazies, hazard retire).
    Scheme(MmRef),
}

impl Ipi {
    fn encode(self) -> u64 {
        let (k, m) = match self {
            Ipi::ExitFlush(m) => (1u64, m),
            Ipi::Scheme(m) => (2u64, m),
        };
        (u64::from(m.gen) << 32) | (u64::from(m.idx) << 2) | k
    }
    fn decode(w: u64) -> Ipi {
        let m = MmRef {
            idx: ((w & 0xffff_ffff) >> 2) as u32,
            gen: (w >> 32) as u32,
        };
        if w & 3 == 1 {
            Ipi::ExitFlush(m)
        } else {
            Ipi::Scheme(m)
        }
    }
}

/// Where the next task comes from in [`Machine::switch_to`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The idle task (`next->mm == NULL`, `is_idle_task`). For the lazy-mm
    /// paths the same as [`Next::Kthread`]; for RCU idle is an extended
    /// quiescent state.
    Kernel,
    /// A kernel thread without an adopted mm (`next->mm == NULL`, not
    /// idle): lazy like idle, but under non-preemptible RCU a *running*
    /// kernel thread is not quiescent (kernel/rcu/tree.c
    /// `rcu_sched_clock_irq` -> kernel/rcu/tree_plugin.h
    /// `rcu_flavor_sched_clock_irq`: only user mode and idle are, with
    /// `PREEMPT_COUNT=n`). A driver that runs kernel threads (kworkers,
    /// `kthread_use_mm` callers) says so with this variant.
    Kthread,
    /// A user task of this mm. The caller (the task) holds a `users`
    /// reference on it.
    User(MmRef),
    /// A kernel thread inside `kthread_use_mm(mm)` (`tsk->mm` set): switched
    /// to like a user task, but it may hold only an `mmgrab` (`users` may be
    /// 0), so nothing may assume a `users` reference for it.
    Adopted(MmRef),
}

/// A machine configuration.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// CPUs (1..=4096).
    pub cpus: usize,
    /// Architecture profile.
    pub arch: Arch,
    /// Scheme.
    pub scheme: SchemeKind,
    /// Scheme options (variants, weakened orderings for mutation tests).
    pub options: SchemeOptions,
    /// Arena capacity: user mms alive (or pinned) at once.
    pub max_mms: usize,
}

impl MachineConfig {
    /// A configuration with default options and an arena of
    /// `max(256, 4 * cpus)` mms.
    pub fn new(cpus: usize, arch: Arch, scheme: SchemeKind) -> Self {
        MachineConfig {
            cpus,
            arch,
            scheme,
            options: SchemeOptions::default(),
            max_mms: (4 * cpus).max(256),
        }
    }
}

/// An impossible configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub alloc::string::String);

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole machine: platform, mms, per-CPU state, ledger, and the scheme.
pub struct Machine<P: Platform> {
    /// The atomics backend.
    pub p: P,
    /// The architecture profile.
    pub arch: Arch,
    /// Number of CPUs.
    pub ncpus: usize,
    /// The mm arena.
    pub mms: MmTable<P>,
    /// The correctness oracle.
    pub ledger: Ledger,
    /// Per-CPU shared words.
    pub percpu: Vec<CpuShared<P>>,
    /// Scheme options.
    pub opts: SchemeOptions,
    online: Vec<AtomicBool>,
    locals: Vec<CachePadded<OwnerCell<CpuLocal>>>,
    pinned: AtomicU64,
    pinned_peak: AtomicU64,
    /// `init_mm.mm_count`: one word on its own line, shared by every CPU
    /// (finish_task_switch's `mmdrop_lazy_tlb_sched(&init_mm)` under
    /// refcount). Never reaches 0.
    init_mm_count: P::Atomic,
    /// The runtime's RCU (PREEMPT_RT's `mmdrop_sched`), `None` otherwise.
    kernel_rcu: Option<KernelRcu>,
    /// Per-CPU pending `mmput_async` works (`schedule_work` on `system_wq`
    /// queues to the calling CPU's pool, kernel/workqueue.c `__queue_work`):
    /// workbench bookkeeping on `core` atomics (no platform access).
    async_work: SpinLock<Vec<Vec<MmRef>>>,
    scheme: Box<dyn Scheme<P>>,
}

/// Totals of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineStats {
    /// Per-CPU counters summed.
    pub cpu: CpuStats,
    /// The ledger's counts.
    pub ledger: LedgerCounts,
    /// Most torn-down-but-not-freed mms at any moment.
    pub peak_pinned: u64,
}

impl<P: Platform> Machine<P> {
    /// Builds a machine. Fails on an impossible configuration.
    pub fn new(p: P, cfg: MachineConfig) -> Result<Self, ConfigError> {
        let scheme = schemes::build::<P>(cfg.scheme, &cfg.options)?;
        Self::with_scheme(p, cfg, scheme)
    }

    /// Builds a machine around a scheme implementation supplied by the
    /// caller (tests use it to run deliberately broken schemes; `cfg.scheme`
    /// is then only a label).
    pub fn with_scheme(
        p: P,
        cfg: MachineConfig,
        scheme: Box<dyn Scheme<P>>,
    ) -> Result<Self, ConfigError> {
        if cfg.cpus == 0 || cfg.cpus > MAX_CPUS {
            return Err(ConfigError(alloc::format!(
                "CPU count {} out of range: must be 1..={MAX_CPUS}",
                cfg.cpus
            )));
        }
        if cfg.max_mms == 0 || cfg.max_mms > (1 << 24) {
            return Err(ConfigError(alloc::format!(
                "max_mms {} out of range: 1..=16777216",
                cfg.max_mms
            )));
        }
        let lru_gen = cfg.options.kernel.lru_gen && cfg.arch.has_hw_pte_young();
        let mms = MmTable::new(&p, cfg.cpus, cfg.max_mms, lru_gen);
        let init_line = p.line(LineKind::MmCount);
        let init_mm_count = p.atomic(1 << 40, init_line);
        let ledger = Ledger::new(cfg.max_mms, cfg.cpus);
        let mut percpu = Vec::with_capacity(cfg.cpus);
        for _ in 0..cfg.cpus {
            let l1 = p.line(LineKind::CpuSlot);
            let slot = p.atomic(0, l1);
            let l2 = p.line(LineKind::CpuSlot);
            let slot2 = p.atomic(0, l2);
            let mut ipi = Vec::new();
            if !P::IMMEDIATE_IPI {
                let l = p.line(LineKind::CpuIpi);
                for _ in 0..cfg.cpus {
                    ipi.push(p.atomic(0, l));
                }
            }
            // Three lines of their own, in this order (lazymm-verify's trace
            // registry relies on it): loaded_mm, is_lazy, steal_time.
            let tlb_loaded = p.atomic(MmRef::INIT.word(), p.line(LineKind::CpuTlbState));
            let tlb_lazy = p.atomic(0, p.line(LineKind::CpuTlbState));
            let steal_preempted = p.atomic(0, p.line(LineKind::CpuTlbState));
            let rcu = cfg.options.kernel.preempt_rt.then(|| {
                let l = p.line(LineKind::CpuSlot);
                CachePadded(p.atomic(0, l))
            });
            percpu.push(CpuShared {
                slot: CachePadded(slot),
                slot2: CachePadded(slot2),
                ipi,
                tlb_loaded: CachePadded(tlb_loaded),
                tlb_lazy: CachePadded(tlb_lazy),
                steal_preempted: CachePadded(steal_preempted),
                rcu,
            });
        }
        Ok(Machine {
            arch: cfg.arch,
            ncpus: cfg.cpus,
            mms,
            ledger,
            percpu,
            opts: cfg.options,
            online: (0..cfg.cpus).map(|_| AtomicBool::new(true)).collect(),
            locals: (0..cfg.cpus)
                .map(|c| CachePadded(OwnerCell::new(CpuLocal::new(c))))
                .collect(),
            pinned: AtomicU64::new(0),
            pinned_peak: AtomicU64::new(0),
            init_mm_count,
            kernel_rcu: cfg
                .options
                .kernel
                .preempt_rt
                .then(|| KernelRcu::new(cfg.options)),
            async_work: SpinLock::new((0..cfg.cpus).map(|_| Vec::new()).collect()),
            scheme,
            p,
        })
    }

    /// The scheme running on this machine.
    pub fn scheme_kind(&self) -> SchemeKind {
        self.scheme.kind()
    }

    /// Borrows CPU `cpu`'s private state (driver use; see [`OwnerCell`]).
    pub fn local(&self, cpu: CpuId) -> OwnerGuard<'_, CpuLocal> {
        self.locals[cpu].borrow()
    }

    /// Is `cpu` online? (Bookkeeping, not a counted access.)
    pub fn is_online(&self, cpu: CpuId) -> bool {
        self.online[cpu].load(Ordering::SeqCst)
    }

    // ------------------------------------------------------------------
    // mm lifetime
    // ------------------------------------------------------------------

    /// `cpu` dereferences `mm` at `site`: checked by the ledger and, under
    /// loom, as a read of the mm's page-table memory. Returns `false` on a
    /// use-after-free.
    #[inline]
    pub fn deref(&self, cpu: CpuId, mm: MmRef, site: &'static str) -> bool {
        if mm.is_init() {
            return true;
        }
        let ok = self.ledger.touch(cpu, mm, site);
        self.p.payload_read(cpu, &self.mms.get(mm.idx).pgd);
        ok
    }

    /// `mm_alloc` + `mm_init`: a new mm with `users == 1`, `count == 1`.
    pub fn mm_alloc(&self, cpu: CpuId) -> Result<MmRef, ArenaFull> {
        let idx = self.mms.take(&self.p, cpu)?;
        let mm = self.mms.get(idx);
        self.p.reinit(&mm.users, 1);
        self.p.reinit(&mm.count, 1);
        self.p.reinit(&mm.tlb_gen, 0);
        for w in &mm.cpumask {
            self.p.reinit(w, 0);
        }
        Ok(self.ledger.alloc(idx))
    }

    /// `mmget`: one more address-space user (a new thread). The caller
    /// holds a `users` reference already.
    pub fn mmget(&self, cpu: CpuId, mm: MmRef) {
        self.deref(cpu, mm, "mmget");
        // Ordering: Relaxed, as the kernel's atomic_inc(): the caller's own
        // reference keeps `users` above zero, so no decision depends on this
        // increment being ordered (the decrement to zero in mmput is AcqRel).
        self.p
            .fetch_add(cpu, &self.mms.get(mm.idx).users, 1, Ordering::Relaxed);
    }

    /// `mmgrab`: one more reference to the object.
    pub fn mmgrab(&self, cpu: CpuId, mm: MmRef) {
        self.mmgrab_n(cpu, mm, 1)
    }

    /// `atomic_add(n, &mm->mm_count)` (the batched grab).
    pub fn mmgrab_n(&self, cpu: CpuId, mm: MmRef, n: u64) {
        self.deref(cpu, mm, "mmgrab");
        // Ordering: Relaxed, as the kernel's atomic_inc(). Every caller holds
        // a reference already; where a grab is handed to another CPU, the
        // hand-off operation itself must be Release (see lightweight.rs,
        // site `handoff`) so that this increment is visible before the
        // matching decrement can happen.
        self.p
            .fetch_add(cpu, &self.mms.get(mm.idx).count, n, Ordering::Relaxed);
    }

    /// `mmput` on CPU `cpu`.
    pub fn mmput(&self, cpu: CpuId, mm: MmRef) {
        let mut me = self.local(cpu);
        self.mmput_local(&mut me, mm);
    }

    /// `mmput` with the CPU's state borrowed.
    pub fn mmput_local(&self, me: &mut CpuLocal, mm: MmRef) {
        self.deref(me.id, mm, "mmput");
        // Ordering: AcqRel, as atomic_dec_and_test() (fully ordered): every
        // user's prior accesses happen-before the teardown that follows the
        // decrement to zero (Release by each user, Acquire by the last).
        if self
            .p
            .fetch_sub(me.id, &self.mms.get(mm.idx).users, 1, Ordering::AcqRel)
            == 1
        {
            self.mmput_final(me, mm);
        }
    }

    /// `__mmput`: teardown, exit flush, the scheme's fix-up, the final drop.
    fn mmput_final(&self, me: &mut CpuLocal, mm: MmRef) {
        self.p.teardown_phase(me.id, true);
        self.ledger.torn_down(me.id, mm);
        me.stats.teardowns += 1;
        let now = self.pinned.fetch_add(1, Ordering::SeqCst) + 1;
        self.pinned_peak.fetch_max(now, Ordering::SeqCst);
        self.exit_mmap_flush(me, mm);
        self.scheme.mm_teardown(self, me, mm);
        self.mmdrop_local(me, mm);
        self.p.teardown_phase(me.id, false);
    }

    /// `mmdrop` on CPU `cpu`.
    pub fn mmdrop(&self, cpu: CpuId, mm: MmRef) {
        let mut me = self.local(cpu);
        self.mmdrop_local(&mut me, mm);
    }

    /// `mmdrop` with the CPU's state borrowed.
    pub fn mmdrop_local(&self, me: &mut CpuLocal, mm: MmRef) {
        self.mmdrop_n(me, mm, 1)
    }

    /// `atomic_sub_and_test(n, &mm->mm_count)`.
    pub fn mmdrop_n(&self, me: &mut CpuLocal, mm: MmRef, n: u64) {
        if n == 0 {
            return;
        }
        if !self.deref(me.id, mm, "mmdrop") {
            return;
        }
        // Ordering: AcqRel, as atomic_dec_and_test() (fully ordered): all
        // holders' accesses happen-before the free.
        let old = self
            .p
            .fetch_sub(me.id, &self.mms.get(mm.idx).count, n, Ordering::AcqRel);
        if old == n {
            self.mmdrop_final(me, mm);
        }
    }

    /// A drop that must not free with interrupts off: deferred to the next
    /// `finish_task_switch` / interrupt exit when called from such context
    /// and the scheme defers (DESIGN: the free moved out of IRQs-off
    /// context).
    pub fn mmdrop_deferrable(&self, me: &mut CpuLocal, mm: MmRef) {
        if me.irqs_off && self.scheme.defers_free() {
            me.stats.frees_deferred += 1;
            me.deferred.push(mm);
        } else {
            self.mmdrop_local(me, mm);
        }
    }

    /// `__mmdrop`: the scheme's cleanup, then the free (unless the scheme
    /// defers it, `call_rcu`-style: see [`Scheme::free_later`]).
    fn mmdrop_final(&self, me: &mut CpuLocal, mm: MmRef) {
        if me.in_sched_drop {
            if let Some(rcu) = &self.kernel_rcu {
                // PREEMPT_RT include/linux/sched/mm.h mmdrop_sched():
                // call_rcu(&mm->delayed_drop, __mmdrop_delayed); the
                // callback runs __mmdrop after a grace period.
                me.stats.rcu_delayed_drops += 1;
                me.in_sched_drop = false;
                let later = rcu.call_rcu_mmdrop(self, me, mm);
                me.in_sched_drop = true;
                if later {
                    return;
                }
            }
        }
        self.mmdrop_final_now(me, mm);
    }

    /// `__mmdrop` itself (also PREEMPT_RT's `__mmdrop_delayed` callback).
    pub(crate) fn mmdrop_final_now(&self, me: &mut CpuLocal, mm: MmRef) {
        self.p.teardown_phase(me.id, true);
        self.scheme.before_free(self, me, mm);
        if !self.scheme.free_later(self, me, mm) {
            self.free_mm(me, mm);
        }
        self.p.teardown_phase(me.id, false);
    }

    /// The free itself (`mm_free_pgd`, `free_mm`): called by `__mmdrop`, or
    /// later by a scheme that deferred the free ([`Scheme::free_later`]);
    /// the mm stays counted as pinned until then.
    pub fn free_mm(&self, me: &mut CpuLocal, mm: MmRef) {
        self.p.teardown_phase(me.id, true);
        self.p.payload_write(me.id, &self.mms.get(mm.idx).pgd);
        if self.ledger.free(me.id, mm, me.irqs_off) {
            self.pinned.fetch_sub(1, Ordering::SeqCst);
            self.mms.give_back(&self.p, me.id, mm.idx);
        }
        self.p.teardown_phase(me.id, false);
    }

    // ------------------------------------------------------------------
    // context switch
    // ------------------------------------------------------------------

    /// `context_switch()` to `next`, then `finish_task_switch()`.
    pub fn switch_to(&self, cpu: CpuId, next: Next) {
        let mut me = self.local(cpu);
        self.switch_local(&mut me, next);
    }

    /// [`Machine::switch_to`] with the CPU's state borrowed.
    pub fn switch_local(&self, me: &mut CpuLocal, next: Next) {
        let class = match next {
            Next::User(m) | Next::Adopted(m) => Some(class_id(m)),
            Next::Kernel | Next::Kthread => None,
        };
        self.switch_local_as(me, next, class);
    }

    /// `context_switch()` to `next`, classified as a switch to a task whose
    /// address space the driver identifies as `class` (`None`: a kernel
    /// thread). Trace replay uses it where the trace's view of a task (e.g.
    /// a dying user task, whose `mm` is already gone) differs from the
    /// runtime's `next`.
    pub fn switch_as(&self, cpu: CpuId, next: Next, class: Option<u64>) {
        let mut me = self.local(cpu);
        self.switch_local_as(&mut me, next, class);
    }

    fn switch_local_as(&self, me: &mut CpuLocal, next: Next, class: Option<u64>) {
        self.classify(me, class);
        me.irqs_off = true;
        me.idle = next == Next::Kernel;
        match next {
            Next::Kernel | Next::Kthread => {
                let active = me.active;
                self.enter_lazy_tlb(me, active);
                if me.curr.take().is_some() {
                    // user -> kernel: lazy + mmgrab_lazy_tlb(active)
                    self.grab_lazy(me, active);
                    // A kernel thread blocking inside kthread_use_mm.
                    self.kthread_lazy_entry(me, active);
                    // switch_mm_cid(): smp_mb__after_mmgrab().
                    self.switch_mm_cid_mb(me, !self.arch.is_x86());
                }
                // kernel -> kernel: the lazy reference is transferred.
            }
            Next::User(nm) | Next::Adopted(nm) => {
                let prev_active = me.active;
                let was_kernel = me.curr.is_none();
                // `current` (and so current->active_mm) changes before
                // switch_mm_irqs_off, as in __schedule(): once the MMU
                // switch lets a teardown skip this CPU (x86 clears its
                // mm_cpumask bit), nothing here names the old mm any more
                // except rq->prev_mm, which the scheme still pins.
                me.active = nm;
                self.ledger.set_active(me.id, nm);
                self.switch_mm_irqs_off(me, nm);
                self.lru_gen_use_mm(me, nm);
                if was_kernel {
                    // kernel -> user: "will mmdrop() in finish_task_switch()"
                    me.prev_mm = Some(prev_active);
                }
                // switch_mm_cid(): smp_mb() from a kernel thread;
                // smp_mb__after_switch_mm() between two mms (x86: none).
                let cid_mb = was_kernel || (me.curr != Some(nm) && !self.arch.is_x86());
                self.switch_mm_cid_mb(me, cid_mb);
                me.curr = Some(nm);
                me.curr_users = matches!(next, Next::User(_));
                self.ledger_tlb_user(me, Some(nm));
            }
        }
        me.irqs_off = false;
        self.finish_task_switch(me);
    }

    /// `lru_gen_use_mm()` (include/linux/mm_types.h, under
    /// `CONFIG_LRU_GEN_WALKS_MMU`): `WRITE_ONCE(mm->lru_gen.bitmap, -1)`,
    /// called by context_switch() right after switch_mm_irqs_off() on every
    /// switch to a task with an mm, and by exec_mmap(). Only with the
    /// kernel option `lru-gen` on an architecture with
    /// `ARCH_HAS_HW_PTE_YOUNG`.
    fn lru_gen_use_mm(&self, me: &mut CpuLocal, mm: MmRef) {
        if mm.is_init() {
            return;
        }
        if let Some(w) = &self.mms.get(mm.idx).lru_gen {
            // A write to the mm_struct: the ledger checks it is alive (the
            // task being switched to holds a `users` reference).
            self.ledger.touch(me.id, mm, "lru_gen_use_mm");
            // Ordering: Relaxed, a WRITE_ONCE: page reclaim's hint, read
            // racily by the mm walk; it orders nothing.
            self.p.store(me.id, w, u64::MAX, Ordering::Relaxed);
        }
    }

    fn classify(&self, me: &mut CpuLocal, next: Option<u64>) {
        let s = &mut me.stats;
        match (me.class_curr, next) {
            (Some(p), Some(n)) => {
                if p == n {
                    s.user_to_user_same_mm += 1
                } else {
                    s.user_to_user_diff_mm += 1
                }
            }
            (Some(_), None) => s.user_to_kernel += 1,
            (None, None) => s.kernel_to_kernel += 1,
            (None, Some(n)) => match me.class_last_user {
                None => s.kernel_to_user_lazy_unknown += 1,
                Some(l) if l == n => s.kernel_to_user_lazy_reuse += 1,
                Some(_) => s.kernel_to_user_diff_mm += 1,
            },
        }
        me.class_curr = next;
        if next.is_some() {
            me.class_last_user = next;
        }
    }

    /// Classification only: this CPU now holds the address space `class`
    /// (an exec the trace shows on a CPU whose switch-in it does not show).
    pub fn note_held_class(&self, cpu: CpuId, class: u64) {
        self.local(cpu).class_last_user = Some(class);
    }

    /// The barrier of kernel/sched/sched.h `switch_mm_cid()` (called by
    /// `context_switch` for every scheme, `CONFIG_SCHED_MM_CID`), when
    /// `needed` for this transition on this architecture.
    fn switch_mm_cid_mb(&self, me: &mut CpuLocal, needed: bool) {
        if needed && !self.opts.kernel.no_mm_cid {
            self.p.fence(me.id, Ordering::SeqCst);
        }
    }

    /// The full barrier include/linux/sched/mm.h requires of
    /// `mmdrop_lazy_tlb()` for membarrier, issued by a scheme whose lazy
    /// drop is not one (a plain or release store) when the drop now running
    /// is one membarrier relies on ([`CpuLocal::membarrier_mb_needed`]):
    /// kernel -> user in `finish_task_switch` on powerpc without
    /// `switch_mm_cid` (x86's lazy return does `smp_mb()` or writes CR3,
    /// arm64's `__switch_to` does `dsb(ish)`), and `kthread_use_mm` on
    /// arm64 and powerpc (no context switch there).
    /// litmus/membarrier-lazy-unlazy+{no-mb,mb}.litmus: Sometimes without,
    /// Never with.
    pub fn membarrier_mb(&self, me: &mut CpuLocal) {
        if core::mem::take(&mut me.membarrier_mb_needed) {
            self.p.fence(me.id, Ordering::SeqCst);
        }
    }

    fn finish_task_switch(&self, me: &mut CpuLocal) {
        if let Some(mm) = me.prev_mm.take() {
            // kernel -> user: membarrier's barrier after rq->curr is this
            // drop's on powerpc (arch/powerpc/include/asm/membarrier.h:
            // "implied by mmdrop()") unless switch_mm_cid gave one.
            me.membarrier_mb_needed = self.opts.kernel.no_mm_cid
                && matches!(self.arch, Arch::PowerpcHash | Arch::PowerpcRadix);
            // mmdrop_lazy_tlb_sched(): mmdrop_sched() under PREEMPT_RT.
            me.in_sched_drop = true;
            self.drop_lazy(me, mm);
            me.in_sched_drop = false;
            me.membarrier_mb_needed = false;
        }
        self.scheme.finish_switch(self, me);
        if let Some(rcu) = &self.kernel_rcu {
            rcu.context_switch(self, me);
        }
        self.run_deferred(me);
    }

    fn run_deferred(&self, me: &mut CpuLocal) {
        while let Some(mm) = me.deferred.pop() {
            self.mmdrop_local(me, mm);
        }
    }

    /// A kernel thread that adopted `mm` with `kthread_use_mm` leaves it
    /// lazily (at `kthread_unuse_mm`, or by blocking): its caller may hold
    /// only an `mmgrab`, so `users` may be 0 and the hand-off schemes'
    /// teardown fix-up may have run and missed this CPU (their invariant
    /// "users == 0: nobody publishes" holds only for user tasks). lazymm's
    /// fix (issue 9, item 3): after the publish, a full fence and a read of
    /// `users`; if 0, the CPU leaves lazy mode at once (MMU and `active_mm`
    /// to `init_mm`, the borrow released, any hand-off picked up). The
    /// teardown's side of this store-buffering pair is the fence at the
    /// start of the fix-up (the kernel's fully ordered `mm_users`
    /// decrement). Cost: a fence and a load per such lazy entry; the user
    /// task switch path is unchanged.
    ///
    /// Called by the schemes that need it from their
    /// [`Scheme::kthread_lazy_entry`] hook (`lightweight`, `lightweight-v2`,
    /// `hazard-handoff`).
    pub fn kthread_lazy_users_check(&self, me: &mut CpuLocal, mm: MmRef) {
        // Ordering: SeqCst fence pairs with the teardown's fence after
        // users reached 0 (SB): either its scan reads our publish or we
        // read users == 0.
        self.p.fence(me.id, Ordering::SeqCst);
        if !self.deref(me.id, mm, "kthread lazy entry (read users)") {
            return;
        }
        // Ordering: Relaxed after the SeqCst fence.
        if self
            .p
            .load(me.id, &self.mms.get(mm.idx).users, Ordering::Relaxed)
            == 0
        {
            let saved = me.irqs_off;
            me.irqs_off = true;
            self.unlazy_to_init(me);
            me.irqs_off = saved;
        }
    }

    /// A kernel thread starts borrowing the mm it adopted: the scheme's
    /// [`Scheme::kthread_lazy_entry`] (not for a user task or `init_mm`).
    fn kthread_lazy_entry(&self, me: &mut CpuLocal, mm: MmRef) {
        if me.curr_users || mm.is_init() {
            return;
        }
        self.scheme.kthread_lazy_entry(self, me, mm);
    }

    /// The teardown's half of [`Machine::kthread_lazy_users_check`]: a full
    /// fence after `users` reached 0, before the fix-up scans (the kernel's
    /// fully ordered `atomic_dec_and_test`; a C11 AcqRel RMW is not one).
    pub fn users_zero_fence(&self, me: &mut CpuLocal) {
        self.p.fence(me.id, Ordering::SeqCst);
    }

    /// `mmgrab_lazy_tlb`: the CPU starts borrowing `mm` lazily.
    fn grab_lazy(&self, me: &mut CpuLocal, mm: MmRef) {
        if mm.is_init() {
            return;
        }
        me.stats.lazy_enters += 1;
        self.scheme.grab_lazy(self, me, mm);
    }

    /// `mmdrop_lazy_tlb`: the CPU stopped borrowing `mm`.
    ///
    /// For `init_mm` (kernel/sched/core.c finish_task_switch when the kernel
    /// thread ran on `init_mm`: after boot, a shoot-down, a hotplug; also
    /// exec and `kthread_use_mm` from such a thread) the scheme's
    /// [`Scheme::drop_init_mm`]: under refcount an RMW on
    /// `init_mm.mm_count`, a line every CPU shares (`mmdrop_sched`); under
    /// shoot-down `smp_mb()`; lazymm's slot schemes hold no borrow of
    /// `init_mm` (their slot is NULL): only membarrier's barrier where
    /// needed.
    fn drop_lazy(&self, me: &mut CpuLocal, mm: MmRef) {
        if mm.is_init() {
            self.scheme.drop_init_mm(self, me);
            return;
        }
        self.scheme.drop_lazy(self, me, mm);
    }

    /// `mmdrop(&init_mm)` under `MMU_LAZY_TLB_REFCOUNT`: an RMW on
    /// `init_mm`'s count, a line every CPU shares ([`Scheme::drop_init_mm`]
    /// of refcount and the mockup).
    pub(crate) fn mmdrop_init_mm_count(&self, me: &mut CpuLocal) {
        // Ordering: AcqRel, as atomic_dec_and_test() (fully ordered);
        // init_mm is never freed (its count starts at 2^40, no path reaches
        // 0).
        self.p
            .fetch_sub(me.id, &self.init_mm_count, 1, Ordering::AcqRel);
    }

    /// x86 `enter_lazy_tlb`.
    fn enter_lazy_tlb(&self, me: &mut CpuLocal, mm: MmRef) {
        if me.loaded.is_init() || me.is_lazy {
            return;
        }
        me.is_lazy = true;
        self.publish_is_lazy(me, true);
        self.ledger_tlb_user(me, None);
        self.scheme.lazy_tlb_entered(self, me, mm);
    }

    /// The architecture's `switch_mm_irqs_off(prev, next)` (x86's shape:
    /// the same-mm path returns early unless the CPU was lazy and the mm was
    /// flushed meanwhile; the scheme's tail hook runs only when the end is
    /// reached, as the seed's `lazy_mm_drop()` did).
    fn switch_mm_irqs_off(&self, me: &mut CpuLocal, next: MmRef) {
        let cpu = me.id;
        let prev = me.loaded;
        let was_lazy = me.is_lazy;
        me.is_lazy = false;
        if was_lazy {
            // x86 6.12: this_cpu_write(cpu_tlbstate_shared.is_lazy, false).
            self.publish_is_lazy(me, false);
        }
        if prev == next {
            if !self.arch.is_x86() {
                // arm64 (arch/arm64/include/asm/mmu_context.h switch_mm:
                // `if (prev != next) __switch_mm(next)`) and powerpc
                // (arch/powerpc/mm/mmu_context.c switch_mm_irqs_off:
                // "Nothing else to do if we aren't actually switching")
                // return with no tlb_gen read: their flushes are broadcast
                // or reach lazy CPUs through the mask.
                return;
            }
            if !prev.is_init() {
                // x86 6.12: WARN_ON_ONCE(!cpumask_test_cpu(cpu,
                // mm_cpumask(next))) reads the mask on every same-mm
                // switch.
                self.deref(cpu, next, "switch_mm (cpumask test)");
                let nm = self.mms.get(next.idx);
                // Ordering: Relaxed: a debug check, as the kernel's test_bit.
                self.p.load(cpu, &nm.cpumask[cpu / 64], Ordering::Relaxed);
            }
            if !was_lazy {
                return;
            }
            self.deref(cpu, next, "switch_mm (tlb_gen)");
            // x86 6.12: smp_mb() before reading tlb_gen ("synchronizes
            // with the tlb_gen increment in the TLB shootdown code"): the
            // store-buffering pair with should_flush_tlb's read of is_lazy
            // after inc_mm_tlb_gen (loom: lazymm-verify tests/loom_flush.rs,
            // removable as site `rt-lazy-return-mb` for that test only).
            if self.opts.fence_kept("rt-lazy-return-mb") {
                self.p.fence(cpu, Ordering::SeqCst);
            }
            // Ordering: Acquire pairs with the flusher's AcqRel increment in
            // exit_mmap_flush: if we see the new generation we see the
            // page-table changes it covers.
            let g = self
                .p
                .load(cpu, &self.mms.get(next.idx).tlb_gen, Ordering::Acquire);
            if g == me.loaded_tlb_gen {
                return; // the early return that skips the tail
            }
            me.loaded_tlb_gen = g;
        } else {
            // x86 6.12: loaded_mm = LOADED_MM_SWITCHING ("CR3 is about to
            // change"), before the mask bits move. From here on (interrupts
            // off) the CPU runs no user code of prev: a flush of prev that
            // skips it (its bit is cleared below) leaves nothing stale.
            self.publish_loaded_mm(me, None);
            self.ledger_tlb_user(me, None);
            let kernel_order =
                self.arch == Arch::X86 && self.opts.kernel.x86_switch == X86SwitchOrder::Linux612;
            if kernel_order {
                // Linux 6.12 arch/x86/mm/tlb.c switch_mm_irqs_off(): "Stop
                // remote flushes for the previous mm" *before* the CR3
                // write: from here until `loaded` changes below, a mask
                // scan skips this CPU although its MMU still uses prev.
                self.clear_prev_cpumask_bit(me, prev, Ordering::SeqCst);
            }
            if !next.is_init() {
                self.deref(cpu, next, "switch_mm");
                let nm = self.mms.get(next.idx);
                if self.arch.sets_cpumask() {
                    let (w, b) = (cpu / 64, 1u64 << (cpu % 64));
                    // Ordering: SeqCst (x86 `lock bts` / powerpc's smp_mb after
                    // setting the bit): the bit must be visible before we use the
                    // new page tables, against a flusher that reads the mask
                    // after changing them (the SB shape of kernel-history 8.9).
                    if self.p.load(cpu, &nm.cpumask[w], Ordering::Relaxed) & b == 0 {
                        self.p.fetch_or(cpu, &nm.cpumask[w], b, Ordering::SeqCst);
                    } else if self.arch == Arch::X86 {
                        // x86 6.12 sets the bit unconditionally
                        // (cpumask_set_cpu, a locked RMW: a full barrier).
                        self.p.fetch_or(cpu, &nm.cpumask[w], b, Ordering::SeqCst);
                    } else if !matches!(self.arch, Arch::PowerpcRadix | Arch::PowerpcHash) {
                        self.p.fence(cpu, Ordering::SeqCst);
                    }
                    // powerpc (arch/powerpc/mm/mmu_context.c switch_mm_irqs_off):
                    // smp_mb() only when it newly sets the bit.
                }
                // Ordering: Acquire, pairs with the flusher's increment.
                me.loaded_tlb_gen = self.p.load(cpu, &nm.tlb_gen, Ordering::Acquire);
            }
            me.loaded = next;
            self.ledger.set_loaded(cpu, next);
            // x86 6.12: "Make sure we write CR3 before loaded_mm".
            self.publish_loaded_mm(me, Some(next));
            if !kernel_order {
                // Ordering: Release: our use of prev's page tables is done
                // before a flusher can see our bit clear and skip us.
                self.clear_prev_cpumask_bit(me, prev, Ordering::Release);
            }
        }
        self.scheme.switch_mm_tail(self, me, was_lazy);
    }

    /// x86's `cpumask_clear_cpu(cpu, mm_cpumask(prev))` in
    /// `switch_mm_irqs_off` (profiles that clear on switch).
    fn clear_prev_cpumask_bit(&self, me: &mut CpuLocal, prev: MmRef, ord: Ordering) {
        if prev.is_init() || !self.arch.clears_on_switch() {
            return;
        }
        self.deref(me.id, prev, "switch_mm (clear cpumask)");
        let pm = self.mms.get(prev.idx);
        self.p
            .fetch_and(me.id, &pm.cpumask[me.id / 64], !(1u64 << (me.id % 64)), ord);
    }

    /// Switches this CPU to `init_mm` properly (`active_mm` included) and
    /// releases the lazy borrow: Andy's `unlazy_mm_irqs_off()`, shoot-lazies'
    /// `do_shoot_lazy_tlb`, hotplug's `sched_force_init_mm`.
    pub fn unlazy_to_init(&self, me: &mut CpuLocal) {
        let old = me.active;
        self.switch_to_init_mm(me);
        if let Some(p) = me.prev_mm.take() {
            self.drop_lazy(me, p);
        }
        if !old.is_init() {
            self.drop_lazy(me, old);
        }
    }

    /// The switch half of [`Machine::unlazy_to_init`]: MMU and `active_mm`
    /// to `init_mm`, with no lazy borrow released (shoot-lazies'
    /// `do_shoot_lazy_tlb`, whose scheme holds no lazy reference).
    pub fn switch_to_init_mm(&self, me: &mut CpuLocal) {
        debug_assert!(
            me.curr.is_none(),
            "only a CPU without current->mm can be unlazied"
        );
        // active_mm first, then the MMU (see switch_local_as).
        me.active = MmRef::INIT;
        self.ledger.set_active(me.id, MmRef::INIT);
        if me.loaded != MmRef::INIT {
            self.switch_mm_irqs_off(me, MmRef::INIT);
        }
        me.is_lazy = false;
    }

    // ------------------------------------------------------------------
    // the other paths that change current->mm
    // ------------------------------------------------------------------

    /// `exit_mm`: the current user task gives up its mm; the CPU becomes a
    /// lazy user of it, then `mmput`.
    pub fn exit_mm(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        let Some(mm) = self.exit_mm_lazy_local(&mut me) else {
            return;
        };
        self.mmput_local(&mut me, mm);
        self.run_deferred(&mut me);
    }

    /// The first half of `exit_mm` (kernel/exit.c): the current user task
    /// gives up its mm and the CPU borrows it lazily, but its `users`
    /// reference is not put yet. Returns that mm; the caller puts it with
    /// [`Machine::mmput`] on the CPU that then runs the task. Trace replay
    /// uses it when the trace shows where `exit_mm` ran (the lazy_tlb
    /// events of the kernel patch): `__mmput` and its teardown come later,
    /// after `exit_mmap`, which may sleep.
    pub fn exit_mm_lazy(&self, cpu: CpuId) -> Option<MmRef> {
        let mut me = self.local(cpu);
        self.exit_mm_lazy_local(&mut me)
    }

    fn exit_mm_lazy_local(&self, me: &mut CpuLocal) -> Option<MmRef> {
        let mm = me.curr?;
        me.irqs_off = true;
        self.grab_lazy(me, mm);
        me.curr = None;
        self.enter_lazy_tlb(me, mm);
        me.irqs_off = false;
        Some(mm)
    }

    /// `exec_mmap`: the current task (user, or a kernel thread becoming a
    /// user process) switches to `new`, which the caller allocated (its
    /// `users` reference moves to the task). The old mm is put.
    pub fn exec(&self, cpu: CpuId, new: MmRef) {
        self.exec_as(cpu, new, class_id(new))
    }

    /// [`Machine::exec`], classified as the driver's address space `class`.
    pub fn exec_as(&self, cpu: CpuId, new: MmRef, class: u64) {
        let mut me = self.local(cpu);
        let old_user = me.curr;
        let old_active = me.active;
        me.irqs_off = true;
        me.active = new;
        self.ledger.set_active(cpu, new);
        self.switch_mm_irqs_off(&mut me, new);
        // exec_mmap() (fs/exec.c): lru_gen_use_mm(mm) after activate_mm.
        self.lru_gen_use_mm(&mut me, new);
        me.curr = Some(new);
        me.curr_users = true;
        self.ledger_tlb_user(&mut me, Some(new));
        me.idle = false;
        me.class_curr = Some(class);
        me.class_last_user = Some(class);
        me.irqs_off = false;
        match old_user {
            Some(old) => self.mmput_local(&mut me, old),
            // exec from a kernel thread: mmdrop_lazy_tlb(active_mm)
            None => self.drop_lazy(&mut me, old_active),
        }
        self.run_deferred(&mut me);
    }

    /// `kthread_use_mm` (kernel/kthread.c): the current kernel thread adopts
    /// `mm`. The caller holds a reference to the object: an `mmgrab` is
    /// enough (`users` may be 0 and the mm torn down already, as with KVM's
    /// Xen code), or a `users` reference from `mmget_not_zero`. Either way
    /// the kernel thread is not counted as a user (`curr_users` false).
    pub fn kthread_use_mm(&self, cpu: CpuId, mm: MmRef) {
        let mut me = self.local(cpu);
        debug_assert!(me.curr.is_none());
        // The caller is a kernel thread, never the idle task.
        me.idle = false;
        self.mmgrab(cpu, mm);
        let old_active = me.active;
        me.irqs_off = true;
        me.active = mm;
        self.ledger.set_active(cpu, mm);
        self.switch_mm_irqs_off(&mut me, mm);
        me.curr = Some(mm);
        me.curr_users = false;
        self.ledger_tlb_user(&mut me, Some(mm));
        me.irqs_off = false;
        // "we must still mmgrab(mm) and mmdrop_lazy_tlb(active_mm), because
        // these references are not equivalent"
        if let Some(p) = me.prev_mm.take() {
            self.drop_lazy(&mut me, p);
        }
        // kernel/kthread.c kthread_use_mm: "A full memory barrier for
        // membarrier {PRIVATE,GLOBAL}_EXPEDITED is implicitly provided by
        // mmdrop_lazy_tlb()": no context switch here (no switch_mm_cid, no
        // arm64 __switch_to dsb); x86's switch_mm_irqs_off gives one (CR3
        // write, or smp_mb() on a lazy return).
        me.membarrier_mb_needed = !self.arch.is_x86();
        self.drop_lazy(&mut me, old_active);
        me.membarrier_mb_needed = false;
        self.run_deferred(&mut me);
    }

    /// `kthread_unuse_mm`: the kernel thread stops using its adopted mm and
    /// becomes a lazy user of it.
    pub fn kthread_unuse_mm(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        let Some(mm) = me.curr.take() else { return };
        me.irqs_off = true;
        self.grab_lazy(&mut me, mm);
        self.enter_lazy_tlb(&mut me, mm);
        self.kthread_lazy_entry(&mut me, mm);
        me.irqs_off = false;
        self.mmdrop_local(&mut me, mm);
        self.run_deferred(&mut me);
    }

    /// CPU offline, from the dying CPU's idle task, as the configured
    /// kernel does it ([`HotplugModel`]).
    ///
    /// Linux 6.12: `__cpu_disable` marks the CPU offline (from then on
    /// `on_each_cpu_mask` skips it); powerpc's `cleanup_cpu_mmu_context`
    /// runs `clear_tasks_mm_cpumask` (kernel/cpu.c), clearing the bit only in
    /// mms still attached to a task; `idle_task_exit` (kernel/sched/core.c)
    /// switches only the MMU to `init_mm`, leaving `active_mm`; then
    /// `finish_cpu` (kernel/cpu.c), on the control CPU once the dying CPU
    /// reported dead, sets `idle->active_mm = &init_mm` and does
    /// `mmdrop_lazy_tlb(mm)`. That last step runs here, after the dying
    /// CPU's part (the control CPU waits for it), with the dying CPU's
    /// state.
    ///
    /// [`HotplugModel::ForceInitMm`]: the dying CPU switches to `init_mm`
    /// properly and releases its borrow before it goes offline.
    pub fn cpu_offline(&self, cpu: CpuId) {
        self.cpu_disable(cpu);
        self.cpu_dead(cpu);
    }

    /// The first half of [`Machine::cpu_offline`]: `takedown_cpu`'s
    /// `__cpu_disable` (and powerpc's `clear_tasks_mm_cpumask`), after which
    /// 6.12's dying CPU goes on running (the stopper returns, the CPU
    /// schedules to its idle task, IRQs enabled: [`Machine::interrupt_point`]
    /// may run) with its MMU on the last mm until [`Machine::cpu_dead`]
    /// (`idle_task_exit`). With [`HotplugModel::ForceInitMm`] the CPU leaves
    /// lazy mode here, before going offline.
    pub fn cpu_disable(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        debug_assert!(me.curr.is_none(), "offline from the idle task");
        let linux612 = self.opts.kernel.hotplug == HotplugModel::Linux612;
        if linux612 {
            // __cpu_disable(): set_cpu_online(cpu, false).
            me.online = false;
            self.online[cpu].store(false, Ordering::SeqCst);
        } else {
            me.irqs_off = true;
            self.unlazy_to_init(&mut me);
            me.irqs_off = false;
            self.run_deferred(&mut me);
        }
        if self.arch.hotplug_clears() {
            // clear_tasks_mm_cpumask(): every mm still attached to a task.
            for idx in 1..=self.mms.capacity() as u32 {
                if !self.ledger.is_slot_allocated(idx) {
                    continue;
                }
                let mm = self.mms.get(idx);
                // find_lock_task_mm(): only mms that still have a task
                // (users > 0). Ordering: Relaxed: the kernel reads under
                // task_lock; which mms are cleared decides nothing here
                // beyond which CPUs a later scan visits (see
                // for_each_lazy_cpu).
                if linux612 && self.p.load(cpu, &mm.users, Ordering::Relaxed) == 0 {
                    continue;
                }
                let w = &mm.cpumask[cpu / 64];
                // Ordering: Relaxed: with ForceInitMm this CPU uses no user
                // mm any more; under 6.12 a scan also visits offline CPUs.
                self.p
                    .fetch_and(cpu, w, !(1u64 << (cpu % 64)), Ordering::Relaxed);
            }
        }
    }

    /// The second half of [`Machine::cpu_offline`]: `idle_task_exit` on the
    /// dying CPU, then `finish_cpu` on the control CPU (6.12), or, with
    /// [`HotplugModel::ForceInitMm`], the CPU goes offline.
    pub fn cpu_dead(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        let linux612 = self.opts.kernel.hotplug == HotplugModel::Linux612;
        if linux612 {
            // The dying CPU's MMU may walk its loaded mm until here.
            let l = me.loaded;
            self.ledger
                .walk(cpu, l, "dying CPU's MMU before idle_task_exit");
            // idle_task_exit(): switch_mm(mm, &init_mm), active_mm kept.
            me.irqs_off = true;
            if me.loaded != MmRef::INIT {
                self.switch_mm_irqs_off(&mut me, MmRef::INIT);
            }
            me.is_lazy = false;
            me.irqs_off = false;
        }
        // Serve IPIs already posted to us before leaving.
        self.drain_ipis(&mut me);
        if linux612 {
            // finish_cpu() on the control CPU: idle->active_mm = &init_mm;
            // mmdrop_lazy_tlb(mm).
            let old = me.active;
            me.active = MmRef::INIT;
            self.ledger.set_active(cpu, MmRef::INIT);
            if let Some(p) = me.prev_mm.take() {
                self.drop_lazy(&mut me, p);
            }
            self.drop_lazy(&mut me, old);
            self.scheme.finish_switch(self, &mut me);
            self.run_deferred(&mut me);
        } else {
            me.online = false;
            self.online[cpu].store(false, Ordering::SeqCst);
        }
        self.ledger.clear_cpu(cpu);
    }

    /// CPU online: comes up in its idle task on `init_mm`.
    pub fn cpu_online(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        me.online = true;
        me.idle = true;
        me.class_last_user = None;
        self.ledger.set_loaded(cpu, MmRef::INIT);
        self.ledger.set_active(cpu, MmRef::INIT);
        self.online[cpu].store(true, Ordering::SeqCst);
    }

    /// Brings the CPU to `init_mm` with no lazy state (end of a run, before
    /// the leak check). The CPU must be running a kernel thread or idle.
    /// Runs this CPU's pending `mmput_async` works first (a kworker: the
    /// end of a run flushes the workqueues).
    pub fn quiesce_cpu(&self, cpu: CpuId) {
        self.run_async_mmput(cpu);
        let mut me = self.local(cpu);
        self.drain_ipis(&mut me);
        me.irqs_off = true;
        self.unlazy_to_init(&mut me);
        me.irqs_off = false;
        // The CPU ends in its idle task, on init_mm: for RCU an extended
        // quiescent state from here on.
        me.idle = true;
        self.scheme.finish_switch(self, &mut me);
        if let Some(rcu) = &self.kernel_rcu {
            rcu.context_switch(self, &mut me);
        }
        self.run_deferred(&mut me);
    }

    /// After every CPU is quiesced: counts leaks and returns the totals.
    pub fn finish(&self) -> MachineStats {
        // The scheme's end-of-run work (an `rcu_barrier()`: deferred frees
        // whose grace period ended while their CPU was no longer switching).
        if let Some(rcu) = &self.kernel_rcu {
            // rcu_barrier(): PREEMPT_RT's delayed __mmdrop first (it may
            // hand a free to the scheme's own grace period).
            rcu.barrier(self);
        }
        self.scheme.quiesced(self);
        self.ledger.check_leaks();
        self.stats()
    }

    /// Totals so far.
    pub fn stats(&self) -> MachineStats {
        let mut cpu = CpuStats::default();
        for l in &self.locals {
            cpu.add(&l.borrow().stats);
        }
        MachineStats {
            cpu,
            ledger: self.ledger.counts(),
            peak_pinned: self.pinned_peak.load(Ordering::SeqCst),
        }
    }

    /// Per-CPU counters.
    pub fn cpu_stats(&self, cpu: CpuId) -> CpuStats {
        self.locals[cpu].borrow().stats
    }

    // ------------------------------------------------------------------
    // exit flush and IPIs
    // ------------------------------------------------------------------

    /// The exit flush this machine does (profile, scheme, kernel options).
    pub fn exit_flush(&self) -> ExitFlush {
        match self.arch {
            // Linux 6.12 arch/powerpc/mm/book3s64/radix_tlb.c
            // flush_type_needed(): "In the fullmm case there's no point doing
            // the exit_flush_lazy_tlbs": exit_mmap's flush is a tlbie
            // broadcast. The IPI variant is kept as an option (lazymm's
            // model before issue 9; the kernel runs exit_flush_lazy_tlbs
            // only for non-fullmm flushes of a single-user mm).
            Arch::PowerpcRadix
                if self.opts.kernel.radix_exit_lazy_ipi
                    && self.scheme.kind() == SchemeKind::Shootdown =>
            {
                ExitFlush::IpiMask { clear_stale: true }
            }
            Arch::PowerpcRadix => ExitFlush::Broadcast,
            a => a.exit_flush(self.scheme.kind() == SchemeKind::Shootdown),
        }
    }

    /// Which CPUs a teardown scan must visit (`for_each_possible_lazymm_cpu`)
    /// on this machine: the profile's choice, except on x86 under Linux
    /// 6.12's `switch_mm_irqs_off` order or `flush_tlb_func` (issue 9), where
    /// the mask no longer covers every CPU that can still use the mm; and on
    /// x86-lazy-cpumask under 6.12's `flush_tlb_func`: a flush that freed
    /// page tables (`munmap`) or deep idle's `leave_mm` moves a lazy CPU's
    /// MMU off the mm with its bit and `active_mm` kept, and the next flush
    /// clears the bit ("another mm loaded") while `active_mm` still names
    /// the mm (`flush_paths::lazy_cpumask_mask_scan_misses_a_cpu_after_munmap`).
    pub fn lazy_cpus(&self) -> LazyCpus {
        let k = self.opts.kernel;
        let all_online = k.x86_scan == X86Scan::Auto
            && match self.arch {
                Arch::X86 => {
                    k.x86_switch == X86SwitchOrder::Linux612
                        || k.x86_flush == X86FlushLazy::Linux612
                }
                Arch::X86LazyCpumask => k.x86_flush == X86FlushLazy::Linux612,
                _ => false,
            };
        if all_online {
            LazyCpus::AllOnline
        } else {
            self.arch.lazy_cpus()
        }
    }

    /// The page-table-freeing flush of `exit_mmap` (`tlb_finish_mmu` with
    /// `fullmm` and `freed_tables`).
    fn exit_mmap_flush(&self, me: &mut CpuLocal, mm: MmRef) {
        let m = self.mms.get(mm.idx);
        // Ordering: AcqRel: a flush publishes the page-table change (Release)
        // to CPUs that Acquire-load tlb_gen when they switch.
        let gen = self.p.fetch_add(me.id, &m.tlb_gen, 1, Ordering::AcqRel) + 1;
        if let ExitFlush::IpiMask { .. } = self.exit_flush() {
            // powerpc radix exit_flush_lazy_tlbs() is
            // smp_call_function_many(), which excludes the calling CPU
            // (kernel/smp.c smp_call_function_many_cond, SCF_RUN_LOCAL
            // unset): the caller stays lazy with its bit set until
            // cleanup_lazy_tlbs. x86's on_each_cpu_mask() runs the local
            // CPU's flush_tlb_func as a direct call.
            let run_local = self.arch != Arch::PowerpcRadix;
            // Ordering: SeqCst against switch_mm_irqs_off's SeqCst bit set:
            // either we see the CPU's bit or it sees the new tlb_gen.
            self.p.fence(me.id, Ordering::SeqCst);
            self.flush_tlb_multi(me, mm, true, run_local, false);
            if self.arch.is_x86() {
                self.ledger_flush_done(me, mm, gen);
            }
        }
        self.free_pgtables(me, mm);
    }

    /// mm/mmap.c exit_mmap: `free_pgtables` cleared the upper entries and
    /// `tlb_finish_mmu` frees the lower page tables after the flush above,
    /// at `__mmput`, long before `__mmdrop` frees the pgd and the
    /// `mm_struct`. On arm64 and powerpc the flush is a broadcast
    /// (`tlbi ... is` / `tlbie`, which also invalidates the walk caches) and
    /// reaches every CPU, offline ones too (they are still in the coherence
    /// domain): a later walk finds the cleared entries. On x86 the flush is
    /// an IPI, and `on_each_cpu_mask` (kernel/smp.c
    /// smp_call_function_many_cond: `cpumask_and(..., cpu_online_mask)`)
    /// skips an offline CPU: under 6.12's hotplug, a dying CPU between
    /// `__cpu_disable` and `idle_task_exit` keeps CR3 (and its
    /// paging-structure caches) on the mm, and its next speculative walk is
    /// a use-after-free of page tables although the `mm_struct` lives (the
    /// ledger's [`crate::ledger::Ledger::walk`]). Only offline CPUs are
    /// marked: an online CPU that the mask scan skipped is inside
    /// `switch_mm_irqs_off` with interrupts off (x86 6.12's clear-before-CR3
    /// window), which the model does not let walk.
    fn free_pgtables(&self, me: &mut CpuLocal, mm: MmRef) {
        if !self.arch.is_x86() {
            return;
        }
        for cpu in 0..self.ncpus {
            if cpu != me.id && !self.is_online(cpu) {
                self.ledger.pgtables_freed_unreached(cpu, mm);
            }
        }
    }

    /// x86 `flush_tlb_func` / powerpc `exit_lazy_flush_tlb` for an exit flush.
    fn flush_handler(&self, me: &mut CpuLocal, mm: MmRef) {
        let clear_stale = matches!(self.exit_flush(), ExitFlush::IpiMask { clear_stale: true });
        if self.arch == Arch::PowerpcRadix {
            // arch/powerpc/mm/book3s64/radix_tlb.c exit_lazy_flush_tlb():
            // a kernel thread with active_mm == mm switches to init_mm
            // properly (mmdrop_lazy_tlb(mm)); then the bit is cleared.
            if me.curr != Some(mm) {
                if me.active == mm {
                    self.unlazy_to_init(me);
                }
                self.clear_own_bit(me, mm);
            }
            return;
        }
        // x86 (arch/x86/mm/tlb.c flush_tlb_func): with the lazy cpumask
        // (post-6.12, 209954cbc7d0) a CPU whose loaded mm is another one
        // clears its bit and returns; the test is made on entry.
        if clear_stale && me.loaded != mm {
            self.clear_own_bit(me, mm);
            return;
        }
        if me.loaded == mm && me.curr.is_some() {
            // flush_tlb_func on a CPU running mm: the flush, and
            // cpu_tlbstate.ctxs[asid].tlb_gen = mm->context.tlb_gen.
            self.flush_tlb_catch_up(me, mm);
        } else if me.loaded == mm && me.curr.is_none() {
            if self.opts.kernel.x86_flush == X86FlushLazy::Linux612
                || self.scheme.flush_unlazy_behind_back()
            {
                // Linux 6.12: switch_mm_irqs_off(NULL, &init_mm, NULL):
                // the MMU leaves mm; active_mm and the lazy reference stay.
                self.switch_mm_irqs_off(me, MmRef::INIT);
            } else {
                // Andy's 2022 unlazy_mm_irqs_off(): active_mm and the
                // scheme's borrow follow the MMU.
                self.unlazy_to_init(me);
            }
        }
    }

    fn clear_own_bit(&self, me: &mut CpuLocal, mm: MmRef) {
        let m = self.mms.get(mm.idx);
        // Ordering: Relaxed: this CPU no longer uses mm (it never loaded
        // it, or switched away just before).
        self.p.fetch_and(
            me.id,
            &m.cpumask[me.id / 64],
            !(1u64 << (me.id % 64)),
            Ordering::Relaxed,
        );
    }

    /// Sends `ipi` from `me` to `target` and waits for it to be handled
    /// (`smp_call_function_single(..., wait=1)`).
    pub fn send_ipi(&self, me: &mut CpuLocal, target: CpuId, ipi: Ipi) {
        // on_each_cpu_mask() runs the calling CPU's function as a direct
        // call (kernel/smp.c smp_call_function_many_cond, SCF_RUN_LOCAL):
        // only remote targets count as IPIs.
        if matches!(ipi, Ipi::Scheme(_)) && target != me.id {
            me.stats.ipis += 1;
        }
        if target == me.id {
            // The direct call: the handler runs, no IPI is handled.
            self.handle_ipi(me, ipi, false);
        } else if P::IMMEDIATE_IPI {
            let mut t = self.locals[target].borrow();
            self.handle_ipi(&mut t, ipi, true);
            // The target's deferred drops run at its next interrupt exit.
            self.run_deferred(&mut t);
        } else {
            let slot = &self.percpu[target].ipi[me.id];
            // Ordering: Release pairs with the target's Acquire load in
            // drain_ipis: our prior writes are visible to the handler.
            self.p.store(me.id, slot, ipi.encode(), Ordering::Release);
            // Ordering: Acquire pairs with the target's Release store of 0:
            // the handler's effects are visible to us once we see it done.
            while self.p.load(me.id, slot, Ordering::Acquire) != 0 {
                self.drain_ipis(me);
                self.p.spin();
            }
        }
    }

    fn handle_ipi(&self, t: &mut CpuLocal, ipi: Ipi, remote: bool) {
        let saved = t.irqs_off;
        t.irqs_off = true;
        match ipi {
            Ipi::ExitFlush(mm) => {
                t.stats.flush_ipis_handled += u64::from(remote);
                self.flush_handler(t, mm);
            }
            Ipi::Scheme(mm) => {
                t.stats.ipis_handled += u64::from(remote);
                self.scheme.ipi(self, t, mm);
            }
        }
        t.irqs_off = saved;
    }

    /// Handles IPIs posted to this CPU (mailbox backends).
    pub fn drain_ipis(&self, me: &mut CpuLocal) {
        if P::IMMEDIATE_IPI {
            return;
        }
        for from in 0..self.ncpus {
            let slot = &self.percpu[me.id].ipi[from];
            // Ordering: Acquire pairs with the sender's Release store.
            let w = self.p.load(me.id, slot, Ordering::Acquire);
            if w != 0 {
                self.handle_ipi(me, Ipi::decode(w), true);
                // Ordering: Release pairs with the sender's Acquire wait.
                self.p.store(me.id, slot, 0, Ordering::Release);
            }
        }
    }

    /// An interrupt point of CPU `cpu` (between switches, in the idle loop):
    /// handles pending IPIs and deferred drops. Also the MMU's chance to
    /// walk the loaded page tables (checked by the ledger).
    pub fn interrupt_point(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        self.drain_ipis(&mut me);
        // The scheduling-clock tick: rcu_sched_clock_irq().
        self.scheme.tick(self, &mut me);
        if let Some(rcu) = &self.kernel_rcu {
            rcu.tick(self, &mut me);
        }
        self.run_deferred(&mut me);
        let l = me.loaded;
        // The ledger also reports a walk of page tables that free_pgtables
        // freed under this CPU (see exit_mmap_flush).
        if self.ledger.walk(cpu, l, "MMU walk of loaded_mm") && !l.is_init() {
            self.p.payload_read(cpu, &self.mms.get(l.idx).pgd);
        }
    }

    /// The CPUs a teardown scan must visit for `mm`, visited in order by
    /// `f`. Each visit counts one scan step.
    pub fn for_each_lazy_cpu(
        &self,
        me: &mut CpuLocal,
        mm: MmRef,
        mut f: impl FnMut(&mut CpuLocal, CpuId),
    ) {
        // Under 6.12's hotplug a CPU is offline (and, on powerpc, out of the
        // masks of mms that still have a task) before finish_cpu releases its
        // lazy borrow: the scan visits offline CPUs too, each once (its slot
        // is NULL again after finish_cpu). Found by loom and the explorer,
        // see docs/verification.md ("hotplug").
        let offline_too = self.opts.kernel.hotplug == HotplugModel::Linux612;
        match self.lazy_cpus() {
            LazyCpus::Cpumask => {
                let m = self.mms.get(mm.idx);
                for w in 0..m.cpumask.len() {
                    // Ordering: Acquire pairs with the Release bit clear in
                    // switch_mm_irqs_off (x86): a CPU skipped because its bit
                    // is clear has finished its last use of mm before we go
                    // on to free it. (A bit is set before a CPU can hold mm
                    // lazily: SeqCst in switch_mm_irqs_off.) Found by loom:
                    // lazymm-verify loom_schemes.rs fixed_lightweight_exit_while_lazy_x86;
                    // on x86 (TSO) the kernel's plain read is enough.
                    let mut bits = self.p.load(me.id, &m.cpumask[w], Ordering::Acquire);
                    if offline_too {
                        for b in 0..64 {
                            let cpu = w * 64 + b;
                            if cpu < self.ncpus && cpu != me.id && !self.is_online(cpu) {
                                bits |= 1 << b;
                            }
                        }
                    }
                    while bits != 0 {
                        let cpu = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        me.stats.scan_steps += 1;
                        f(me, cpu);
                    }
                }
            }
            LazyCpus::AllOnline => {
                for cpu in 0..self.ncpus {
                    if offline_too || self.is_online(cpu) {
                        me.stats.scan_steps += 1;
                        f(me, cpu);
                    }
                }
            }
        }
    }

    /// How many CPUs [`Machine::for_each_lazy_cpu`] may visit at most (for
    /// the batched grab).
    pub fn lazy_cpu_bound(&self) -> u64 {
        self.ncpus as u64
    }
}
