//! The TLB-flush paths of Linux 6.12.117 that the model first omitted
//! (issue 9, "Kernel paths the model omits", flush side), one
//! implementation for every backend:
//!
//! | kernel path | here |
//! |---|---|
//! | arch/x86/mm/tlb.c `flush_tlb_mm_range` → `native_flush_tlb_multi` (`on_each_cpu_mask` when `info->freed_tables`, else `on_each_cpu_cond_mask(should_flush_tlb, ...)`) | [`Machine::flush_tlb_mm_range`], `flush_tlb_multi`, `should_flush_tlb` |
//! | `munmap`: mm/mmap.c `do_vmi_align_munmap` → `unmap_region` (zap + `free_pgtables`) → `tlb_finish_mmu` (a flush with `freed_tables`) | [`Machine::munmap`] |
//! | `mprotect`-style flushes (mm/mprotect.c `change_protection` → `flush_tlb_range`, no page table freed) | [`Machine::mprotect`] |
//! | x86 `switch_mm_irqs_off`'s catch-up: `smp_mb()` + `tlb_gen` read on a lazy return to the same mm | `Machine::switch_mm_irqs_off` (runtime.rs), [`CpuShared::tlb_lazy`], [`CpuShared::tlb_loaded`] |
//! | drivers/cpuidle/cpuidle.c `cpuidle_enter_state` → arch/x86/mm/tlb.c `leave_mm` for `CPUIDLE_FLAG_TLB_FLUSHED` states (drivers/idle/intel_idle.c) | [`Machine::cpuidle_enter`] (option `deep-idle`) |
//! | arch/x86/kernel/kvm.c `kvm_flush_tlb_multi`; arch/x86/kvm/x86.c `record_steal_time` | [`Machine::vcpu_preempt`], [`Machine::vcpu_resume`] (option `kvm-pv-flush`) |
//! | arch/powerpc/mm/book3s64/radix_tlb.c `flush_type_needed` (`mm_users <= 1` → `exit_flush_lazy_tlbs`; `tick_and_test_trim_clock`) | `radix_flush_type_needed` |
//!
//! The safety argument of the `tlb_gen` protocol is checked by the ledger
//! ([`crate::ledger::Ledger::tlb_user`], [`crate::ledger::Ledger::flush_done`]):
//! once `flush_tlb_mm_range` returns, no CPU may run the mm's user code
//! (non-lazy) with a TLB generation older than the flush's, and a CPU that
//! was lazy must catch up before it does: otherwise the page just unmapped
//! (and freed) is still reachable through a stale TLB entry (reported as a
//! use-after-free, "stale TLB").

use core::sync::atomic::Ordering;

use super::{CpuLocal, Ipi, Machine};
use crate::arch::Arch;
use crate::mm::MmRef;
use crate::platform::{CpuId, Platform};

/// `LOADED_MM_SWITCHING` (arch/x86/include/asm/tlbflush.h): the value of
/// `cpu_tlbstate.loaded_mm` while `switch_mm_irqs_off` changes CR3 (never an
/// mm's word, which is even).
pub const LOADED_MM_SWITCHING: u64 = 1;

/// `KVM_VCPU_PREEMPTED` (arch/x86/include/uapi/asm/kvm_para.h).
const KVM_VCPU_PREEMPTED: u64 = 1 << 0;
/// `KVM_VCPU_FLUSH_TLB`.
const KVM_VCPU_FLUSH_TLB: u64 = 1 << 1;

/// `tlb_mm_cpumask_trim_timer` (arch/powerpc/mm/book3s64/radix_tlb.c): every
/// this many non-fullmm flushes of a multi-user mm, a CPU trims the mask.
pub const RADIX_TRIM_TIMER: u32 = 1073;

impl<P: Platform> Machine<P> {
    /// `munmap` by the current task of `cpu` (a user task, or a kernel
    /// thread inside `kthread_use_mm`): the range is zapped and its page
    /// tables freed (mm/mmap.c `unmap_region`: `free_pgtables`), then
    /// `tlb_finish_mmu` flushes with `freed_tables` set. On x86 the flush
    /// IPIs every CPU of the mask, lazy ones included (6.12 `flush_tlb_func`
    /// moves a lazy CPU's MMU to `init_mm`, `active_mm` and the lazy borrow
    /// stay); a CPU the flush did not reach (offline, between `__cpu_disable`
    /// and `idle_task_exit`) walks freed page tables at its next walk, as at
    /// exit. Nothing if the CPU runs no mm.
    pub fn munmap(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        let Some(mm) = me.curr else { return };
        self.flush_tlb_mm_range_local(&mut me, mm, true);
        self.free_pgtables(&mut me, mm);
        self.run_deferred(&mut me);
    }

    /// A flush that frees no page table (mm/mprotect.c `change_protection`,
    /// page reclaim): on x86 `should_flush_tlb` skips lazy CPUs, which catch
    /// up through `tlb_gen` when they switch back. Nothing if the CPU runs
    /// no mm.
    pub fn mprotect(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        let Some(mm) = me.curr else { return };
        self.flush_tlb_mm_range_local(&mut me, mm, false);
        self.run_deferred(&mut me);
    }

    /// `flush_tlb_mm_range(mm, ..., freed_tables)` from CPU `cpu`, whose
    /// current task uses `mm` (arch/x86/mm/tlb.c; powerpc radix
    /// `radix__flush_tlb_range` → `flush_type_needed`; arm64 and powerpc
    /// hash: a broadcast invalidation, no IPI and no state change).
    pub fn flush_tlb_mm_range(&self, cpu: CpuId, freed_tables: bool) {
        let mut me = self.local(cpu);
        let Some(mm) = me.curr else { return };
        self.flush_tlb_mm_range_local(&mut me, mm, freed_tables);
        self.run_deferred(&mut me);
    }

    /// The body of arch/x86/mm/tlb.c `flush_tlb_mm_range()` (and its
    /// arm64/powerpc counterparts, per profile) on the calling CPU's state.
    fn flush_tlb_mm_range_local(&self, me: &mut CpuLocal, mm: MmRef, freed_tables: bool) {
        me.stats.tlb_flushes += 1;
        if !self.deref(me.id, mm, "flush_tlb_mm_range") {
            return;
        }
        match self.arch {
            Arch::X86 | Arch::X86LazyCpumask => {
                let m = self.mms.get(mm.idx);
                // inc_mm_tlb_gen(): atomic64_inc_return, "also a barrier
                // that synchronizes with switch_mm()". Ordering: AcqRel RMW
                // plus the SeqCst fence below (the locked RMW's full
                // barrier): the store-buffering pair with
                // switch_mm_irqs_off's `is_lazy = false; smp_mb(); read
                // tlb_gen` (either we read is_lazy false and IPI the CPU,
                // or it reads our generation and flushes itself).
                // (Removable as site `rt-flush-mb` for the loom test
                // lazymm-verify tests/loom_flush.rs only.)
                let gen = self.p.fetch_add(me.id, &m.tlb_gen, 1, Ordering::AcqRel) + 1;
                if self.opts.fence_kept("rt-flush-mb") {
                    self.p.fence(me.id, Ordering::SeqCst);
                }
                self.flush_tlb_multi(me, mm, freed_tables, true, true);
                self.ledger_flush_done(me, mm, gen);
            }
            Arch::PowerpcRadix => self.radix_flush_type_needed(me, mm),
            // arm64 __flush_tlb_range (tlbi ... is) and powerpc hash
            // (tlbie): broadcast in hardware; no IPI, no CPU changes state.
            Arch::Arm64 | Arch::PowerpcHash => {}
        }
    }

    /// x86 `flush_tlb_multi(mm_cpumask(mm), info)` (and, for the exit
    /// flush, the same loop): the CPUs of the mask, the local one as a
    /// direct call when `run_local`, remote offline ones skipped
    /// (kernel/smp.c `smp_call_function_many_cond`); with `kvm-pv-flush`,
    /// preempted vCPUs first (`kvm_flush_tlb_multi`); without
    /// `freed_tables`, `should_flush_tlb` decides per CPU. `tlb_flush`
    /// attributes the IPIs to [`crate::runtime::CpuStats::tlb_flush_ipis`]
    /// rather than the exit flush's `flush_ipis`.
    pub(super) fn flush_tlb_multi(
        &self,
        me: &mut CpuLocal,
        mm: MmRef,
        freed_tables: bool,
        run_local: bool,
        tlb_flush: bool,
    ) {
        let m = self.mms.get(mm.idx);
        let x86 = self.arch.is_x86();
        for w in 0..m.cpumask.len() {
            // Ordering: Acquire pairs with the Release bit clear in
            // switch_mm_irqs_off: a CPU we skip has finished with mm.
            let mut bits = self.p.load(me.id, &m.cpumask[w], Ordering::Acquire);
            while bits != 0 {
                let cpu = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if cpu == me.id {
                    if run_local {
                        self.flush_handler(me, mm);
                    }
                    continue;
                }
                if !self.is_online(cpu) {
                    continue;
                }
                if x86 && self.opts.kernel.kvm_pv_flush && self.kvm_queue_flush(me, cpu) {
                    continue;
                }
                if x86 && !freed_tables && !self.should_flush_tlb(me, cpu, mm) {
                    continue;
                }
                if tlb_flush {
                    me.stats.tlb_flush_ipis += 1;
                } else {
                    me.stats.flush_ipis += 1;
                }
                self.send_ipi(me, cpu, Ipi::ExitFlush(mm));
            }
        }
    }

    /// arch/x86/mm/tlb.c `should_flush_tlb(cpu, info)`, for a flush that
    /// frees no page tables: "Lazy TLB will get flushed at the next context
    /// switch". The once-a-second `trim_cpumask` (`should_trim_cpumask`) is
    /// not modelled (it only matters to the post-6.12 lazy mask).
    fn should_flush_tlb(&self, me: &mut CpuLocal, cpu: CpuId, mm: MmRef) -> bool {
        let shared = &self.percpu[cpu];
        // Ordering: Relaxed loads of another CPU's per-CPU words (the
        // kernel's plain per_cpu() reads) with smp_rmb() between them (an
        // Acquire fence: free on x86), pairing with the order of the
        // writes in switch_mm_irqs_off (is_lazy cleared before loaded_mm
        // moves): "is_lazy is at least as new as loaded_mm".
        let loaded = self.p.load(me.id, &shared.tlb_loaded, Ordering::Relaxed);
        self.p.fence(me.id, Ordering::Acquire);
        if self.p.load(me.id, &shared.tlb_lazy, Ordering::Relaxed) != 0 {
            me.stats.lazy_flush_skips += 1;
            return false;
        }
        // "While switching, the remote CPU could have state from either the
        // prev or next mm. Assume the worst and flush."
        loaded == LOADED_MM_SWITCHING || loaded == mm.word()
    }

    /// arch/x86/kernel/kvm.c `kvm_flush_tlb_multi`'s test of one vCPU: if preempted, set
    /// `KVM_VCPU_FLUSH_TLB` (the host flushes it before it runs again) and
    /// send no IPI. Returns `true` if the flush was queued.
    fn kvm_queue_flush(&self, me: &mut CpuLocal, cpu: CpuId) -> bool {
        let w = &self.percpu[cpu].steal_preempted;
        // Ordering: Relaxed, READ_ONCE(src->preempted): a peek; the
        // cmpxchg below re-checks the value it read and is the access that
        // pairs with the host's xchg in vcpu_resume.
        let state = self.p.load(me.id, w, Ordering::Relaxed);
        if state & KVM_VCPU_PREEMPTED == 0 {
            return false;
        }
        // Ordering: SeqCst, try_cmpxchg (fully ordered): against the
        // host's xchg at resume, either the host sees the flag and flushes,
        // or we see the vCPU running and IPI it.
        let queued = self
            .p
            .compare_exchange(
                me.id,
                w,
                state,
                state | KVM_VCPU_FLUSH_TLB,
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok();
        if queued {
            me.stats.pv_flush_queued += 1;
            self.ledger.tlb_flush_queued(cpu);
        }
        queued
    }

    /// The host preempts vCPU `cpu` (arch/x86/kvm/x86.c
    /// `kvm_steal_time_set_preempted`: `preempted = KVM_VCPU_PREEMPTED`).
    /// The vCPU runs nothing until [`Machine::vcpu_resume`]. Only meaningful
    /// with the `kvm-pv-flush` option (otherwise no flusher reads it).
    pub fn vcpu_preempt(&self, cpu: CpuId) {
        // Ordering: Release, the host's store of the flag. Its reader is
        // kvm_queue_flush's Relaxed peek, which decides nothing alone: the
        // decision is its SeqCst cmpxchg against this word, and that RMW
        // reads this store or a later value (coherence), so no other
        // access needs ordering against it.
        self.p.store(
            cpu,
            &self.percpu[cpu].steal_preempted,
            KVM_VCPU_PREEMPTED,
            Ordering::Release,
        );
    }

    /// The host runs vCPU `cpu` again (arch/x86/kvm/x86.c `record_steal_time`:
    /// `xchg(&st->preempted, 0)`, then `kvm_vcpu_flush_tlb_guest` if
    /// `KVM_VCPU_FLUSH_TLB` was set: the whole guest TLB, paging-structure
    /// caches included, so the vCPU's next walk starts from its CR3 again).
    /// The guest's own `tlb_gen` is not told: it stays behind, and the
    /// next flush or switch catches up (a redundant flush).
    pub fn vcpu_resume(&self, cpu: CpuId) {
        let mut me = self.local(cpu);
        // Ordering: SeqCst, the host's xchg (fully ordered), pairing with
        // kvm_queue_flush's cmpxchg.
        let st = self
            .p
            .swap(cpu, &self.percpu[cpu].steal_preempted, 0, Ordering::SeqCst);
        if st & KVM_VCPU_FLUSH_TLB != 0 {
            self.ledger.tlb_refreshed(cpu);
        }
        self.drain_ipis(&mut me);
        self.run_deferred(&mut me);
    }

    /// The idle task of `cpu` enters an idle state (drivers/cpuidle/cpuidle.c
    /// `cpuidle_enter_state`). With `deep-idle` on x86, the state is one
    /// flagged `CPUIDLE_FLAG_TLB_FLUSHED` (drivers/idle/intel_idle.c: C3/C6
    /// of the nehalem, snb, byt, ... tables), so `leave_mm()`
    /// (arch/x86/mm/tlb.c): if the loaded mm is not `init_mm`,
    /// `switch_mm(NULL, &init_mm, NULL)`: the MMU leaves the mm (x86 clears
    /// the CPU's bit, so later flushes of the mm skip it), `active_mm` and
    /// the lazy borrow stay. Otherwise nothing (no access).
    pub fn cpuidle_enter(&self, cpu: CpuId) {
        if !self.opts.kernel.deep_idle || !self.arch.is_x86() {
            return;
        }
        let mut me = self.local(cpu);
        if me.curr.is_some() || !me.online || me.loaded.is_init() {
            return;
        }
        self.drain_ipis(&mut me);
        me.irqs_off = true;
        me.stats.idle_leave_mm += 1;
        self.switch_mm_irqs_off(&mut me, MmRef::INIT);
        me.irqs_off = false;
        self.run_deferred(&mut me);
    }

    /// arch/powerpc/mm/book3s64/radix_tlb.c `flush_type_needed(mm, false)`
    /// from a task of `mm` (the `munmap` / `mprotect` flushes; the fullmm
    /// exit flush is a `tlbie` broadcast, see `Machine::exit_flush`).
    /// `active_cpus` is the number of bits of the mask (the kernel keeps it
    /// in `mm->context.active_cpus`, incremented with each bit set). When
    /// the mm has one user (`mm_users <= 1`) or the CPU's trim clock expires,
    /// `exit_flush_lazy_tlbs` IPIs the mask but the caller
    /// (`smp_call_function_many`): each target's `exit_lazy_flush_tlb`
    /// switches a lazy CPU properly to `init_mm` (`mmdrop_lazy_tlb`) and
    /// clears its bit. Otherwise a local `tlbiel` or a `tlbie` broadcast.
    fn radix_flush_type_needed(&self, me: &mut CpuLocal, mm: MmRef) {
        let m = self.mms.get(mm.idx);
        // radix__flush_tlb_range: smp_mb() "Order loads of mm_cpumask (in
        // flush_type_needed) vs previous stores to clear ptes".
        self.p.fence(me.id, Ordering::SeqCst);
        let mut active = 0u32;
        let mut mine = false;
        for w in 0..m.cpumask.len() {
            // Ordering: Relaxed after the fence (atomic_read).
            let bits = self.p.load(me.id, &m.cpumask[w], Ordering::Relaxed);
            active += bits.count_ones();
            if w == me.id / 64 && bits & (1 << (me.id % 64)) != 0 {
                mine = true;
            }
        }
        if active == 0 || (active == 1 && mine) {
            // FLUSH_TYPE_NONE / FLUSH_TYPE_LOCAL (current->mm == mm: the
            // trim of a foreign flush is not taken).
            return;
        }
        // Ordering: Relaxed, atomic_read(&mm->mm_users): a heuristic.
        let single = self.p.load(me.id, &m.users, Ordering::Relaxed) <= 1;
        let trim = single || {
            me.trim_clock += 1;
            if me.trim_clock == RADIX_TRIM_TIMER {
                me.trim_clock = 0;
                true
            } else {
                false
            }
        };
        if !trim {
            return; // FLUSH_TYPE_GLOBAL: tlbie
        }
        me.stats.radix_trims += 1;
        for w in 0..m.cpumask.len() {
            // Ordering: Relaxed after the fence above.
            let mut bits = self.p.load(me.id, &m.cpumask[w], Ordering::Relaxed);
            while bits != 0 {
                let cpu = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if cpu != me.id && self.is_online(cpu) {
                    me.stats.tlb_flush_ipis += 1;
                    self.send_ipi(me, cpu, Ipi::ExitFlush(mm));
                }
            }
        }
    }

    /// arch/x86/mm/tlb.c flush_tlb_func's full flush on a CPU running `mm`: catch up with
    /// `mm->context.tlb_gen` (x86; on other profiles the broadcast covers
    /// it and nothing is read).
    pub(super) fn flush_tlb_catch_up(&self, me: &mut CpuLocal, mm: MmRef) {
        if !self.arch.is_x86() || !self.deref(me.id, mm, "flush_tlb_func (tlb_gen)") {
            return;
        }
        // Ordering: Acquire pairs with the flusher's increment.
        let g = self
            .p
            .load(me.id, &self.mms.get(mm.idx).tlb_gen, Ordering::Acquire);
        if g > me.loaded_tlb_gen {
            me.loaded_tlb_gen = g;
        }
        self.ledger_tlb_user(me, Some(mm));
    }

    /// x86: `this_cpu_write(cpu_tlbstate_shared.is_lazy, lazy)`.
    pub(super) fn publish_is_lazy(&self, me: &mut CpuLocal, lazy: bool) {
        if self.arch.is_x86() {
            // Ordering: Relaxed, a plain per-CPU write; the reader's
            // smp_rmb and the switch's smp_mb() before its tlb_gen read
            // give the order that matters (see should_flush_tlb).
            self.p.store(
                me.id,
                &self.percpu[me.id].tlb_lazy,
                u64::from(lazy),
                Ordering::Relaxed,
            );
        }
    }

    /// x86: `this_cpu_write(cpu_tlbstate.loaded_mm, mm)` (`None`:
    /// `LOADED_MM_SWITCHING`).
    pub(super) fn publish_loaded_mm(&self, me: &mut CpuLocal, mm: Option<MmRef>) {
        if self.arch.is_x86() {
            let w = mm.map_or(LOADED_MM_SWITCHING, MmRef::word);
            // Ordering: Release: after the CR3 write and the is_lazy store
            // (x86 TSO keeps store order), read by should_flush_tlb.
            self.p
                .store(me.id, &self.percpu[me.id].tlb_loaded, w, Ordering::Release);
        }
    }

    /// Tells the ledger what TLB generation of which mm this CPU's user
    /// code now runs with (`None`: no user code, lazy or kernel). x86 only:
    /// elsewhere flushes are broadcast and there is no generation.
    pub(super) fn ledger_tlb_user(&self, me: &mut CpuLocal, mm: Option<MmRef>) {
        if self.arch.is_x86() {
            self.ledger
                .tlb_user(me.id, mm.filter(|m| !m.is_init()), me.loaded_tlb_gen);
        }
    }

    /// A flush of `mm` to generation `gen` returned: the ledger checks that
    /// no CPU runs `mm`'s user code with an older TLB.
    pub(super) fn ledger_flush_done(&self, me: &mut CpuLocal, mm: MmRef, gen: u64) {
        self.ledger.flush_done(me.id, mm, gen);
    }
}
