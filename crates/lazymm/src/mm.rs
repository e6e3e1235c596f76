//! The `mm` object and the arena that recycles its addresses.
//!
//! An [`Mm`] has the kernel's two counters: `users` (address-space users;
//! reaching 0 runs `__mmput`: teardown, the scheme's fix-up, the final drop)
//! and `count` (references to the object; all users together hold one;
//! reaching 0 runs `__mmdrop`: the scheme's cleanup, then the free). Its
//! `mm_cpumask` has one bit per CPU, in 64-bit words grouped eight to a cache
//! line (512 CPUs a line, as a 4096-bit mask spans eight lines).
//!
//! Objects live in a fixed arena and are never deallocated while a machine
//! exists: a "free" is recorded by the [`Ledger`](crate::ledger::Ledger) and
//! the slot goes back on a LIFO free list, so the next `mm_alloc` reuses the
//! same address (the ABA hazard of the real kernel is kept, on purpose). A
//! buggy scheme that touches a freed mm therefore touches recycled memory
//! that is still valid Rust memory: the bug is *reported*, never undefined
//! behaviour.

use alloc::vec::Vec;

use core::sync::atomic::Ordering;

use crate::platform::{CpuId, LineKind, Platform};
use crate::sync::{CachePadded, SpinLock};

/// A reference to an mm as a CPU or task holds it: the arena index (the
/// "address", what a per-CPU slot word stores) plus the generation the holder
/// believes it refers to (a fat pointer used only by the ledger to detect
/// use-after-free; the algorithms never compare generations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MmRef {
    /// Arena index; 0 is `init_mm`.
    pub idx: u32,
    /// Allocation generation (unique per allocation, never reused).
    pub gen: u32,
}

impl MmRef {
    /// `init_mm`: the kernel's own address space, never freed.
    pub const INIT: MmRef = MmRef { idx: 0, gen: 0 };

    /// Is this `init_mm`?
    #[inline]
    pub fn is_init(self) -> bool {
        self.idx == 0
    }

    /// The word a slot stores for this mm: the "address", with bit 0 free
    /// for the seed's `mm | 1` tag. Never 0 (0 is `NULL`).
    #[inline]
    pub fn word(self) -> u64 {
        (u64::from(self.idx) + 1) << 1
    }

    /// The arena index encoded in a slot word (tag bit ignored); `None` for
    /// `NULL`.
    #[inline]
    pub fn idx_of_word(w: u64) -> Option<u32> {
        let a = w >> 1;
        if a == 0 {
            None
        } else {
            Some((a - 1) as u32)
        }
    }
}

/// One mm object. Fields are on separate cache lines as in Linux 6.12
/// (`mm_count` has a line of its own).
pub struct Mm<P: Platform> {
    /// `mm_users`.
    pub users: CachePadded<P::Atomic>,
    /// `mm_count`.
    pub count: CachePadded<P::Atomic>,
    /// `mm->context.tlb_gen`: bumped by every flush of this mm.
    pub tlb_gen: CachePadded<P::Atomic>,
    /// `mm->lru_gen.bitmap`, only with the kernel option `lru-gen`
    /// ([`crate::schemes::KernelOptions::lru_gen`]; no line otherwise).
    pub lru_gen: Option<CachePadded<P::Atomic>>,
    /// `mm_cpumask`, 64 CPUs a word.
    pub cpumask: Vec<P::Atomic>,
    /// The page tables (what a loaded MMU walks; released at free).
    pub pgd: P::Payload,
}

impl<P: Platform> Mm<P> {
    fn new(p: &P, ncpus: usize, lru_gen: bool) -> Self {
        let users = p.atomic(0, p.line(LineKind::MmUsers));
        let count = p.atomic(0, p.line(LineKind::MmCount));
        let tlb_gen = p.atomic(0, p.line(LineKind::MmContext));
        let lru_gen = lru_gen.then(|| CachePadded(p.atomic(0, p.line(LineKind::MmLruGen))));
        let words = ncpus.div_ceil(64);
        let mut cpumask = Vec::with_capacity(words);
        let mut line = p.line(LineKind::MmCpumask);
        for w in 0..words {
            if w > 0 && w % 8 == 0 {
                line = p.line(LineKind::MmCpumask);
            }
            cpumask.push(p.atomic(0, line));
        }
        Mm {
            users: CachePadded(users),
            count: CachePadded(count),
            tlb_gen: CachePadded(tlb_gen),
            lru_gen,
            cpumask,
            pgd: p.payload(),
        }
    }
}

/// Why an allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaFull {
    /// The arena's capacity.
    pub capacity: usize,
}

impl core::fmt::Display for ArenaFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "mm arena full ({} live or pinned mms); raise --max-mms",
            self.capacity
        )
    }
}

/// The arena of mm objects. Index 0 is `init_mm`.
pub struct MmTable<P: Platform> {
    slots: Vec<Mm<P>>,
    /// The allocator's lock, a platform word so that loom sees the
    /// happens-before edge from a free to the next allocation of the same
    /// address (the slab allocator gives the kernel that edge).
    lock: P::Atomic,
    free: SpinLock<Vec<u32>>,
}

impl<P: Platform> MmTable<P> {
    /// An arena for `capacity` user mms (plus `init_mm`) on `ncpus` CPUs;
    /// `lru_gen`: each mm gets its `lru_gen.bitmap` line.
    pub fn new(p: &P, ncpus: usize, capacity: usize, lru_gen: bool) -> Self {
        let mut slots = Vec::with_capacity(capacity + 1);
        for _ in 0..=capacity {
            slots.push(Mm::new(p, ncpus, lru_gen));
        }
        // init_mm: users 2, count 1 (mm/init-mm.c); never dropped.
        p.reinit(&slots[0].users, 2);
        p.reinit(&slots[0].count, 1);
        // LIFO: the most recently freed address is the next one handed out.
        let free = (1..=capacity as u32).rev().collect();
        let lock = p.atomic(0, p.line(LineKind::Bookkeeping));
        MmTable {
            slots,
            lock,
            free: SpinLock::new(free),
        }
    }

    /// The object at `idx` (whatever generation currently lives there).
    #[inline]
    pub fn get(&self, idx: u32) -> &Mm<P> {
        &self.slots[idx as usize]
    }

    fn locked<R>(&self, p: &P, cpu: CpuId, f: impl FnOnce(&mut Vec<u32>) -> R) -> R {
        // Ordering: Acquire pairs with the Release unlock below: the previous
        // holder's free (and its poisoning of the page tables) happens-before
        // our allocation of the same address.
        while p
            .compare_exchange(cpu, &self.lock, 0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            p.spin();
        }
        let r = self.free.with(f);
        p.store(cpu, &self.lock, 0, Ordering::Release);
        r
    }

    /// Takes a free address.
    pub fn take(&self, p: &P, cpu: CpuId) -> Result<u32, ArenaFull> {
        let cap = self.slots.len() - 1;
        self.locked(p, cpu, |f| f.pop())
            .ok_or(ArenaFull { capacity: cap })
    }

    /// Returns an address to the free list.
    pub fn give_back(&self, p: &P, cpu: CpuId, idx: u32) {
        self.locked(p, cpu, |f| f.push(idx))
    }

    /// Capacity for user mms.
    pub fn capacity(&self) -> usize {
        self.slots.len() - 1
    }
}
