//! The atomics backend ("platform") every scheme is written against.
//!
//! A scheme never names `core::sync::atomic` directly: it calls the
//! [`Platform`] with the accessing CPU, so that one implementation runs on
//!
//! * [`StdPlatform`]: real `AtomicU64`s, OS threads as CPUs (bench, stress);
//! * `LoomPlatform` (feature `loom`): loom's model-checked atomics;
//! * the counting platform of `lazymm-sim`: a deterministic single-threaded
//!   executor that records every access with its CPU and cache line.
//!
//! The CPU argument and the [`Line`] given at construction are free for the
//! std and loom backends (they compile away) and are the whole point of the
//! counting backend.

use core::sync::atomic::Ordering;

/// Index of a CPU (0-based, < 4096).
pub type CpuId = usize;

/// What a cache line holds, for the counting backend's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// `mm->count` (`mm_count`): its own cache line, as in Linux 6.12.
    MmCount,
    /// `mm->users` (`mm_users`).
    MmUsers,
    /// `mm->context` (the TLB generation a switch compares against).
    MmContext,
    /// One 64-byte chunk (512 CPUs) of an `mm_cpumask`.
    MmCpumask,
    /// A per-CPU scheme slot (lazy_mm, drop_mm, mailbox, hazard pointer).
    CpuSlot,
    /// A per-CPU IPI mailbox (threads/loom backends only).
    CpuIpi,
    /// Per-CPU TLB state that other CPUs read (x86 only): Linux 6.12
    /// `cpu_tlbstate.loaded_mm` and `cpu_tlbstate_shared.is_lazy`, written
    /// by their CPU on every switch and read by a flusher's
    /// `should_flush_tlb` (arch/x86/mm/tlb.c), and KVM's
    /// `steal_time.preempted` (arch/x86/kernel/kvm.c kvm_flush_tlb_multi).
    CpuTlbState,
    /// `mm->lru_gen.bitmap` (multi-gen LRU's "this mm ran" word), written
    /// on every switch to a task with that mm when the kernel option
    /// `lru-gen` is on (include/linux/mm_types.h lru_gen_use_mm); its own
    /// line, far from `mm_count` in `struct mm_struct`.
    MmLruGen,
    /// The workbench's own bookkeeping (the mm arena's allocator lock): never
    /// counted as algorithm traffic by the counting backend.
    Bookkeeping,
}

/// A cache line identity handed out by [`Platform::line`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Line(pub u32);

/// The atomics backend. See the module documentation.
///
/// All values are `u64`. Pointers to mms are encoded by the runtime (see
/// [`crate::mm::MmRef::word`]) so that a low tag bit is available, exactly as
/// the seed's `mm | 1`.
pub trait Platform: 'static {
    /// The atomic word.
    type Atomic: 'static;
    /// `true` when an IPI is delivered by running the handler immediately on
    /// the target's state (single-threaded executors); `false` when it is
    /// posted to a mailbox that the target drains at its interrupt points
    /// while the sender waits (threads, loom).
    const IMMEDIATE_IPI: bool;

    /// A new cache line of the given kind.
    fn line(&self, kind: LineKind) -> Line;
    /// A new atomic word living on `line`.
    fn atomic(&self, value: u64, line: Line) -> Self::Atomic;
    /// Reset a word's value without counting an access (object re-use in the
    /// arena: a fresh `mm_init`, which in the kernel is a plain memset before
    /// the object is published).
    fn reinit(&self, a: &Self::Atomic, value: u64);

    /// Atomic load by `cpu`.
    fn load(&self, cpu: CpuId, a: &Self::Atomic, o: Ordering) -> u64;
    /// Atomic store by `cpu`.
    fn store(&self, cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering);
    /// Atomic exchange by `cpu`.
    fn swap(&self, cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64;
    /// Strong compare-exchange by `cpu`.
    fn compare_exchange(
        &self,
        cpu: CpuId,
        a: &Self::Atomic,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    /// Wrapping add by `cpu`; returns the previous value.
    fn fetch_add(&self, cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64;
    /// Wrapping subtract by `cpu`; returns the previous value.
    fn fetch_sub(&self, cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64;
    /// Bitwise or by `cpu`; returns the previous value.
    fn fetch_or(&self, cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64;
    /// Bitwise and by `cpu`; returns the previous value.
    fn fetch_and(&self, cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64;
    /// A memory fence executed by `cpu`.
    fn fence(&self, cpu: CpuId, o: Ordering);
    /// Called in every wait loop (a spin hint on threads, a yield in loom).
    fn spin(&self);

    /// The CPU enters (`true`) or leaves (`false`) teardown work
    /// (`__mmput`, `__mmdrop`), so a counting backend can attribute costs to
    /// the switch path or the exit path. Nests.
    #[inline]
    fn teardown_phase(&self, _cpu: CpuId, _entering: bool) {}

    /// The memory an mm's page tables stand for. loom checks every read
    /// against the write made at free time for a happens-before edge, so a
    /// use-after-free that the interleaving hides is still reported as a data
    /// race. Other backends use `()`.
    type Payload: 'static;
    /// A new payload.
    fn payload(&self) -> Self::Payload;
    /// A CPU reads the mm's page tables (walks, switches to them).
    fn payload_read(&self, cpu: CpuId, x: &Self::Payload);
    /// The mm is freed (the page-table root is released).
    fn payload_write(&self, cpu: CpuId, x: &Self::Payload);
}

/// Real atomics: `core::sync::atomic::AtomicU64`, OS threads as CPUs.
#[derive(Debug, Default)]
pub struct StdPlatform;

impl Platform for StdPlatform {
    type Atomic = core::sync::atomic::AtomicU64;
    const IMMEDIATE_IPI: bool = false;

    #[inline]
    fn line(&self, _kind: LineKind) -> Line {
        Line(0)
    }
    #[inline]
    fn atomic(&self, value: u64, _line: Line) -> Self::Atomic {
        core::sync::atomic::AtomicU64::new(value)
    }
    #[inline]
    fn reinit(&self, a: &Self::Atomic, value: u64) {
        // Ordering: Relaxed. Re-initialisation happens before the object is
        // published to any other CPU; the publishing operation (the release
        // in the mm table's allocation lock) orders it.
        a.store(value, Ordering::Relaxed)
    }
    #[inline]
    fn load(&self, _cpu: CpuId, a: &Self::Atomic, o: Ordering) -> u64 {
        a.load(o)
    }
    #[inline]
    fn store(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) {
        a.store(v, o)
    }
    #[inline]
    fn swap(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.swap(v, o)
    }
    #[inline]
    fn compare_exchange(
        &self,
        _cpu: CpuId,
        a: &Self::Atomic,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        a.compare_exchange(current, new, success, failure)
    }
    #[inline]
    fn fetch_add(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_add(v, o)
    }
    #[inline]
    fn fetch_sub(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_sub(v, o)
    }
    #[inline]
    fn fetch_or(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_or(v, o)
    }
    #[inline]
    fn fetch_and(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_and(v, o)
    }
    #[inline]
    fn fence(&self, _cpu: CpuId, o: Ordering) {
        core::sync::atomic::fence(o)
    }
    type Payload = ();
    #[inline]
    fn payload(&self) {}
    #[inline]
    fn payload_read(&self, _cpu: CpuId, _x: &()) {}
    #[inline]
    fn payload_write(&self, _cpu: CpuId, _x: &()) {}
    #[inline]
    fn spin(&self) {
        #[cfg(feature = "std")]
        std::thread::yield_now();
        #[cfg(not(feature = "std"))]
        core::hint::spin_loop();
    }
}

/// loom's model-checked atomics (feature `loom`).
#[cfg(feature = "loom")]
#[derive(Debug, Default)]
pub struct LoomPlatform;

#[cfg(feature = "loom")]
impl Platform for LoomPlatform {
    type Atomic = loom::sync::atomic::AtomicU64;
    const IMMEDIATE_IPI: bool = false;

    fn line(&self, _kind: LineKind) -> Line {
        Line(0)
    }
    fn atomic(&self, value: u64, _line: Line) -> Self::Atomic {
        loom::sync::atomic::AtomicU64::new(value)
    }
    fn reinit(&self, a: &Self::Atomic, value: u64) {
        // Ordering: Relaxed; see StdPlatform::reinit.
        a.store(value, Ordering::Relaxed)
    }
    fn load(&self, _cpu: CpuId, a: &Self::Atomic, o: Ordering) -> u64 {
        a.load(o)
    }
    fn store(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) {
        a.store(v, o)
    }
    fn swap(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.swap(v, o)
    }
    fn compare_exchange(
        &self,
        _cpu: CpuId,
        a: &Self::Atomic,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        a.compare_exchange(current, new, success, failure)
    }
    fn fetch_add(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_add(v, o)
    }
    fn fetch_sub(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_sub(v, o)
    }
    fn fetch_or(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_or(v, o)
    }
    fn fetch_and(&self, _cpu: CpuId, a: &Self::Atomic, v: u64, o: Ordering) -> u64 {
        a.fetch_and(v, o)
    }
    fn fence(&self, _cpu: CpuId, o: Ordering) {
        loom::sync::atomic::fence(o)
    }
    fn spin(&self) {
        loom::thread::yield_now()
    }
    type Payload = loom::cell::UnsafeCell<u64>;
    fn payload(&self) -> Self::Payload {
        loom::cell::UnsafeCell::new(0)
    }
    fn payload_read(&self, _cpu: CpuId, x: &Self::Payload) {
        // SAFETY: loom's UnsafeCell checks this access for a race with the
        // write in payload_write; the pointer is only read.
        x.with(|p| unsafe { core::ptr::read_volatile(p) });
    }
    fn payload_write(&self, _cpu: CpuId, x: &Self::Payload) {
        // SAFETY: loom checks this write for a race with every read; the
        // cell is owned by the mm arena, which outlives the machine's use.
        x.with_mut(|p| unsafe { core::ptr::write_volatile(p, 0xdead) });
    }
}
