//! The ledger: the correctness oracle shared by every backend.
//!
//! For each arena slot it records which generation lives there and in which
//! state (`Free`, `Live`, `TornDown`). It learns what CPUs *actually touch*:
//!
//! * every dereference of an mm by the runtime or a scheme goes through
//!   [`Ledger::touch`]: touching a generation that is no longer the live one,
//!   or a freed slot, is a **use-after-free**;
//! * each CPU publishes its MMU root (`loaded_mm`) and its `active_mm`; a
//!   free while any CPU still has the mm loaded or active is a
//!   **use-after-free** too (the page-table walker may use the root at any
//!   moment; `active_mm` is dereferenced by generic code);
//! * freeing a slot that is not live, or a stale generation, is a **double
//!   free**;
//! * after [`Machine::finish`](crate::runtime::Machine::finish), any slot not
//!   free is a **leak**;
//! * on x86, a CPU running an mm's user code with a TLB generation older
//!   than a flush of that mm that has returned (`flush_tlb_mm_range`) can
//!   still reach the page the flush was for (unmapped, freed): a
//!   **use-after-free** too ("stale TLB"), see [`Ledger::tlb_user`].
//!
//! The ledger uses `core` atomics with `SeqCst`, never the platform's: it is
//! the observer, not part of the algorithm, so it must add no counted access
//! and no happens-before edge visible to loom. (On real threads its fences
//! are real; the stress tests accept that they may hide a weak-memory bug,
//! which is why ordering questions are decided by loom and `lazymm litmus`.)

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

use crate::mm::MmRef;
use crate::platform::CpuId;
use crate::sync::{CachePadded, SpinLock};

const FREE: u64 = 0;
const LIVE: u64 = 1;
const TORN_DOWN: u64 = 2;
const NONE: u64 = u64::MAX;

#[inline]
fn pack(m: MmRef) -> u64 {
    (u64::from(m.idx) << 32) | u64::from(m.gen)
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// An access to, or a free under, a CPU that still uses the mm.
    UseAfterFree,
    /// A second free of one allocation.
    DoubleFree,
    /// Not freed once the machine was quiesced.
    Leak,
}

/// One recorded violation (the first few of a run are kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Kind.
    pub kind: ViolationKind,
    /// The CPU that touched or freed (or `usize::MAX` for a leak).
    pub cpu: CpuId,
    /// The mm as the CPU believed it to be.
    pub mm: MmRef,
    /// Where: the kernel path or pointer involved.
    pub site: &'static str,
}

/// The counts a run reports. All three must be zero for a correct scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerCounts {
    /// Uses after free.
    pub uaf: u64,
    /// Double frees.
    pub double_free: u64,
    /// mms never freed after quiesce.
    pub leaked: u64,
    /// mms allocated.
    pub allocs: u64,
    /// mms freed.
    pub frees: u64,
    /// Frees that ran with interrupts off (inside the switch or an IPI).
    pub frees_irqs_off: u64,
}

/// See the module documentation.
pub struct Ledger {
    slots: Vec<AtomicU64>,
    next_gen: AtomicU32,
    /// Per CPU: the published `loaded_mm` and `active_mm`, one padded pair
    /// per CPU (written by its owner on every switch).
    /// The third word: the mm whose lower page tables `free_pgtables`
    /// freed while this CPU's MMU still used it and the page-table-freeing
    /// flush did not reach it (0: none); cleared when the MMU moves.
    roots: Vec<CachePadded<[AtomicU64; 3]>>,
    /// Per CPU: the mm whose user code it runs (packed, `NONE` if lazy or
    /// kernel) and the TLB generation it caught up with; a flag set while
    /// a paravirt flush is queued for it (KVM_VCPU_FLUSH_TLB).
    tlb: Vec<CachePadded<[AtomicU64; 3]>>,
    /// Per arena slot: `gen << 32 | tlb_gen` of the newest flush of that
    /// allocation that returned (`fetch_max`: a newer allocation has a
    /// larger generation).
    flushed: Vec<AtomicU64>,
    uaf: AtomicU64,
    double_free: AtomicU64,
    leaked: AtomicU64,
    allocs: AtomicU64,
    frees: AtomicU64,
    frees_irqs_off: AtomicU64,
    log: SpinLock<Vec<Violation>>,
}

const LOG_MAX: usize = 16;

impl Ledger {
    /// A ledger for `capacity` user mms and `ncpus` CPUs.
    pub fn new(capacity: usize, ncpus: usize) -> Self {
        let slots = (0..=capacity)
            .map(|_| AtomicU64::new(FREE))
            .collect::<Vec<_>>();
        let flushed = (0..=capacity).map(|_| AtomicU64::new(0)).collect();
        let tlb = (0..ncpus)
            .map(|_| CachePadded([AtomicU64::new(NONE), AtomicU64::new(0), AtomicU64::new(0)]))
            .collect();
        // init_mm: generation 0, live forever.
        slots[0].store(LIVE, SeqCst);
        Ledger {
            slots,
            next_gen: AtomicU32::new(1),
            roots: (0..ncpus)
                .map(|_| {
                    CachePadded([
                        AtomicU64::new(pack(MmRef::INIT)),
                        AtomicU64::new(pack(MmRef::INIT)),
                        AtomicU64::new(NONE),
                    ])
                })
                .collect(),
            tlb,
            flushed,
            uaf: AtomicU64::new(0),
            double_free: AtomicU64::new(0),
            leaked: AtomicU64::new(0),
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            frees_irqs_off: AtomicU64::new(0),
            log: SpinLock::new(Vec::new()),
        }
    }

    fn record(&self, v: Violation) {
        match v.kind {
            ViolationKind::UseAfterFree => self.uaf.fetch_add(1, SeqCst),
            ViolationKind::DoubleFree => self.double_free.fetch_add(1, SeqCst),
            ViolationKind::Leak => self.leaked.fetch_add(1, SeqCst),
        };
        self.log.with(|l| {
            if l.len() < LOG_MAX {
                l.push(v)
            }
        });
    }

    /// A new allocation at `idx`; returns its reference.
    pub fn alloc(&self, idx: u32) -> MmRef {
        let gen = self.next_gen.fetch_add(1, SeqCst);
        self.slots[idx as usize].store((u64::from(gen) << 2) | LIVE, SeqCst);
        self.allocs.fetch_add(1, SeqCst);
        MmRef { idx, gen }
    }

    #[inline]
    fn state_of(&self, m: MmRef) -> Option<u64> {
        let s = self.slots[m.idx as usize].load(SeqCst);
        if (s >> 2) as u32 == m.gen && s & 3 != FREE {
            Some(s & 3)
        } else {
            None
        }
    }

    /// `cpu` dereferences `m` at `site`. Returns `false` (and records a
    /// use-after-free) if `m` is not the live allocation at its address.
    #[inline]
    pub fn touch(&self, cpu: CpuId, m: MmRef, site: &'static str) -> bool {
        if m.is_init() || self.state_of(m).is_some() {
            return true;
        }
        self.record(Violation {
            kind: ViolationKind::UseAfterFree,
            cpu,
            mm: m,
            site,
        });
        false
    }

    /// Records `users` reaching 0 (`__mmput` started).
    pub fn torn_down(&self, cpu: CpuId, m: MmRef) {
        if self.slots[m.idx as usize]
            .compare_exchange(
                (u64::from(m.gen) << 2) | LIVE,
                (u64::from(m.gen) << 2) | TORN_DOWN,
                SeqCst,
                SeqCst,
            )
            .is_err()
        {
            self.record(Violation {
                kind: ViolationKind::UseAfterFree,
                cpu,
                mm: m,
                site: "__mmput",
            });
        }
    }

    /// Records the free of `m` by `cpu`. Returns `true` if it was a valid
    /// first free (the caller may recycle the address).
    pub fn free(&self, cpu: CpuId, m: MmRef, irqs_off: bool) -> bool {
        let slot = &self.slots[m.idx as usize];
        let cur = slot.load(SeqCst);
        if (cur >> 2) as u32 != m.gen || cur & 3 == FREE {
            self.record(Violation {
                kind: ViolationKind::DoubleFree,
                cpu,
                mm: m,
                site: "__mmdrop",
            });
            return false;
        }
        if slot
            .compare_exchange(cur, (u64::from(m.gen) << 2) | FREE, SeqCst, SeqCst)
            .is_err()
        {
            self.record(Violation {
                kind: ViolationKind::DoubleFree,
                cpu,
                mm: m,
                site: "__mmdrop (race)",
            });
            return false;
        }
        self.frees.fetch_add(1, SeqCst);
        if irqs_off {
            self.frees_irqs_off.fetch_add(1, SeqCst);
        }
        let p = pack(m);
        for (c, r) in self.roots.iter().enumerate() {
            let [l, a, _] = &r.0;
            if l.load(SeqCst) == p {
                self.record(Violation {
                    kind: ViolationKind::UseAfterFree,
                    cpu: c,
                    mm: m,
                    site: "freed while loaded in an MMU",
                });
            } else if a.load(SeqCst) == p {
                self.record(Violation {
                    kind: ViolationKind::UseAfterFree,
                    cpu: c,
                    mm: m,
                    site: "freed while a CPU's active_mm",
                });
            }
        }
        true
    }

    /// `cpu` loaded `m` in its MMU (and so may walk its page tables).
    #[inline]
    pub fn set_loaded(&self, cpu: CpuId, m: MmRef) {
        self.roots[cpu].0[0].store(pack(m), SeqCst);
        self.roots[cpu].0[2].store(NONE, SeqCst);
    }

    /// `free_pgtables` (mm/memory.c, from mm/mmap.c exit_mmap, at `__mmput`,
    /// long before `__mmdrop`) freed `m`'s lower page tables after a flush
    /// that did not reach `cpu`: if `cpu`'s MMU still uses `m`, its
    /// paging-structure caches may still point at the freed tables, and its
    /// next speculative walk ([`Ledger::walk`]) is a use-after-free of page
    /// tables although the `mm_struct` lives.
    pub fn pgtables_freed_unreached(&self, cpu: CpuId, m: MmRef) {
        let r = &self.roots[cpu].0;
        if r[0].load(SeqCst) == pack(m) {
            r[2].store(pack(m), SeqCst);
        }
    }

    /// `cpu`'s MMU may walk `m` (its loaded mm) now: a use-after-free if
    /// `m` was freed, or if its lower page tables were freed under this CPU
    /// (see [`Ledger::pgtables_freed_unreached`]).
    pub fn walk(&self, cpu: CpuId, m: MmRef, site: &'static str) -> bool {
        if !m.is_init() && self.roots[cpu].0[2].load(SeqCst) == pack(m) {
            self.record(Violation {
                kind: ViolationKind::UseAfterFree,
                cpu,
                mm: m,
                site: "MMU walk of page tables freed by free_pgtables",
            });
            return false;
        }
        self.touch(cpu, m, site)
    }

    /// `cpu`'s `active_mm` is now `m`.
    #[inline]
    pub fn set_active(&self, cpu: CpuId, m: MmRef) {
        self.roots[cpu].0[1].store(pack(m), SeqCst);
    }

    /// `cpu` now runs `m`'s user code (`None`: lazy, kernel, or idle) with
    /// its TLB caught up to generation `gen`. A use-after-free if a flush of
    /// `m` to a newer generation has already returned: the CPU's TLB may
    /// still map the page that flush unmapped (x86's lazy return must
    /// catch up through `tlb_gen`, switch_mm_irqs_off).
    pub fn tlb_user(&self, cpu: CpuId, m: Option<MmRef>, gen: u64) {
        let t = &self.tlb[cpu].0;
        let old = t[0].swap(NONE, SeqCst);
        let Some(m) = m else { return };
        // Still the same mm: what the CPU knew (a host flush included,
        // tlb_refreshed) stays known.
        let gen = if old == pack(m) {
            gen.max(t[1].load(SeqCst))
        } else {
            gen
        };
        t[1].store(gen, SeqCst);
        t[0].store(pack(m), SeqCst);
        let f = self.flushed[m.idx as usize].load(SeqCst);
        if (f >> 32) as u32 == m.gen && gen < f & 0xffff_ffff {
            self.record(Violation {
                kind: ViolationKind::UseAfterFree,
                cpu,
                mm: m,
                site: "stale TLB: user code runs behind a flush that returned",
            });
        }
    }

    /// A flush of `m` by `cpu` to TLB generation `gen` returned
    /// (`flush_tlb_mm_range`, x86): every other CPU running `m`'s user
    /// code must have caught up, unless a paravirt flush is queued for it
    /// (the host flushes it before it runs again).
    pub fn flush_done(&self, cpu: CpuId, m: MmRef, gen: u64) {
        self.flushed[m.idx as usize]
            .fetch_max((u64::from(m.gen) << 32) | (gen & 0xffff_ffff), SeqCst);
        let p = pack(m);
        for (c, t) in self.tlb.iter().enumerate() {
            let t = &t.0;
            if c == cpu || t[0].load(SeqCst) != p || t[2].load(SeqCst) != 0 {
                continue;
            }
            let g = t[1].load(SeqCst);
            // Re-read: the CPU may have republished meanwhile (threads).
            if g < gen && t[0].load(SeqCst) == p {
                self.record(Violation {
                    kind: ViolationKind::UseAfterFree,
                    cpu: c,
                    mm: m,
                    site: "stale TLB: flush returned while a CPU runs the mm behind it",
                });
            }
        }
    }

    /// A paravirt flush was queued for `cpu` (a preempted vCPU).
    pub fn tlb_flush_queued(&self, cpu: CpuId) {
        self.tlb[cpu].0[2].store(1, SeqCst);
    }

    /// The host flushed `cpu`'s whole TLB before running it again: it is
    /// up to date with every flush that returned.
    pub fn tlb_refreshed(&self, cpu: CpuId) {
        let t = &self.tlb[cpu].0;
        let m = t[0].load(SeqCst);
        if m != NONE {
            let f = self.flushed[(m >> 32) as usize].load(SeqCst);
            if (f >> 32) == m & 0xffff_ffff {
                t[1].fetch_max(f & 0xffff_ffff, SeqCst);
            }
        }
        t[2].store(0, SeqCst);
    }

    /// A CPU that left the machine (offline) publishes nothing.
    pub fn clear_cpu(&self, cpu: CpuId) {
        self.roots[cpu].0[0].store(NONE, SeqCst);
        self.roots[cpu].0[1].store(NONE, SeqCst);
        self.roots[cpu].0[2].store(NONE, SeqCst);
    }

    /// After quiesce: every slot not free is a leak. Returns how many.
    pub fn check_leaks(&self) -> u64 {
        let mut n = 0;
        for (i, s) in self.slots.iter().enumerate().skip(1) {
            let v = s.load(SeqCst);
            if v & 3 != FREE {
                n += 1;
                self.record(Violation {
                    kind: ViolationKind::Leak,
                    cpu: usize::MAX,
                    mm: MmRef {
                        idx: i as u32,
                        gen: (v >> 2) as u32,
                    },
                    site: if v & 3 == LIVE {
                        "never torn down"
                    } else {
                        "torn down, never freed"
                    },
                });
            }
        }
        n
    }

    /// Current counts.
    pub fn counts(&self) -> LedgerCounts {
        LedgerCounts {
            uaf: self.uaf.load(SeqCst),
            double_free: self.double_free.load(SeqCst),
            leaked: self.leaked.load(SeqCst),
            allocs: self.allocs.load(SeqCst),
            frees: self.frees.load(SeqCst),
            frees_irqs_off: self.frees_irqs_off.load(SeqCst),
        }
    }

    /// The first violations recorded (at most 16).
    pub fn violations(&self) -> Vec<Violation> {
        self.log.with(|l| l.clone())
    }

    /// Does slot `idx` hold an allocation (live or torn down)?
    pub fn is_slot_allocated(&self, idx: u32) -> bool {
        self.slots[idx as usize].load(SeqCst) & 3 != FREE
    }

    /// Is `m` the live (not yet freed) allocation at its address?
    pub fn is_allocated(&self, m: MmRef) -> bool {
        m.is_init() || self.state_of(m).is_some()
    }
}
