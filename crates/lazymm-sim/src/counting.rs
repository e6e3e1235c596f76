//! The counting backend: a single-threaded platform that records every
//! atomic access with the accessing CPU and the cache line it touches.
//!
//! Classification (per access, exact and deterministic):
//!
//! * a **load** is *remote* when another CPU wrote the line since this CPU
//!   last read or wrote it (the line must travel to us), *local* otherwise;
//! * a **store or RMW** is a **coherence transfer** when the line was last
//!   written by another CPU (ownership moves to us); an RMW is **shared**
//!   (`shared_rmw`) when any other CPU wrote *or read* the line since our last
//!   write (the line is not exclusively ours), *local* otherwise;
//! * a `SeqCst` fence is a **full fence**; weaker fences are free on the
//!   modelled machines and counted apart.
//!
//! Lines of kind [`LineKind::Bookkeeping`] (the workbench's own allocator)
//! are not counted.

use core::cell::{Cell, RefCell};
use core::sync::atomic::Ordering;

use lazymm::{CpuId, Line, LineKind, Platform};
use serde::Serialize;

const NONE: u32 = u32::MAX;
const KINDS: usize = 9;

fn kind_index(k: LineKind) -> usize {
    match k {
        LineKind::MmCount => 0,
        LineKind::MmUsers => 1,
        LineKind::MmContext => 2,
        LineKind::MmCpumask => 3,
        LineKind::CpuSlot => 4,
        LineKind::CpuIpi => 5,
        LineKind::Bookkeeping => 6,
        LineKind::CpuTlbState => 7,
        LineKind::MmLruGen => 8,
    }
}

/// Names of the line kinds, in [`AccessCounts::rmw_by_kind`] order.
pub const KIND_NAMES: [&str; KINDS] = [
    "mm.count",
    "mm.users",
    "mm.context",
    "mm.cpumask",
    "cpu.slot",
    "cpu.ipi",
    "bookkeeping",
    "cpu.tlbstate",
    "mm.lru_gen",
];

/// Counts of atomic accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccessCounts {
    /// Loads.
    pub loads: u64,
    /// Loads that had to fetch a line another CPU wrote.
    pub remote_loads: u64,
    /// Stores.
    pub stores: u64,
    /// Read-modify-writes (including failed compare-exchanges).
    pub rmws: u64,
    /// RMWs on a line exclusively ours.
    pub local_rmw: u64,
    /// RMWs on a line another CPU also used since our last write.
    pub shared_rmw: u64,
    /// Stores and RMWs to a line another CPU wrote last.
    pub coherence_transfers: u64,
    /// Full (`SeqCst`) fences.
    pub fences: u64,
    /// Acquire/release fences.
    pub light_fences: u64,
    /// RMWs per line kind (see [`KIND_NAMES`]).
    pub rmw_by_kind: [u64; KINDS],
    /// Coherence transfers per line kind.
    pub transfers_by_kind: [u64; KINDS],
}

impl AccessCounts {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &AccessCounts) -> AccessCounts {
        let mut d = AccessCounts {
            loads: self.loads - earlier.loads,
            remote_loads: self.remote_loads - earlier.remote_loads,
            stores: self.stores - earlier.stores,
            rmws: self.rmws - earlier.rmws,
            local_rmw: self.local_rmw - earlier.local_rmw,
            shared_rmw: self.shared_rmw - earlier.shared_rmw,
            coherence_transfers: self.coherence_transfers - earlier.coherence_transfers,
            fences: self.fences - earlier.fences,
            light_fences: self.light_fences - earlier.light_fences,
            ..Default::default()
        };
        for i in 0..KINDS {
            d.rmw_by_kind[i] = self.rmw_by_kind[i] - earlier.rmw_by_kind[i];
            d.transfers_by_kind[i] = self.transfers_by_kind[i] - earlier.transfers_by_kind[i];
        }
        d
    }

    /// RMWs on mm `count` lines.
    pub fn count_rmws(&self) -> u64 {
        self.rmw_by_kind[0]
    }
}

struct LineState {
    kind: u8,
    last_writer: u32,
    /// CPUs that read the line since its last write (other than the writer).
    readers: Vec<u64>,
    nreaders: u32,
}

impl LineState {
    fn has_reader(&self, cpu: u32) -> bool {
        let w = (cpu / 64) as usize;
        w < self.readers.len() && self.readers[w] & (1 << (cpu % 64)) != 0
    }
    fn add_reader(&mut self, cpu: u32) {
        let w = (cpu / 64) as usize;
        if self.readers.len() <= w {
            self.readers.resize(w + 1, 0);
        }
        if self.readers[w] & (1 << (cpu % 64)) == 0 {
            self.readers[w] |= 1 << (cpu % 64);
            self.nreaders += 1;
        }
    }
    fn clear_readers(&mut self) {
        if self.nreaders != 0 {
            self.readers.iter_mut().for_each(|w| *w = 0);
            self.nreaders = 0;
        }
    }
}

/// The counting platform. Single-threaded (`!Sync`).
#[derive(Default)]
pub struct CountingPlatform {
    lines: RefCell<Vec<LineState>>,
    counts: Cell<AccessCounts>,
    teardown: Cell<AccessCounts>,
    depth: Cell<u32>,
    /// The timing model, in timing mode (`crate::timing`): sees every
    /// counted access.
    pub(crate) timing: Option<RefCell<crate::timing::model::Model>>,
}

/// An atomic word of the counting platform.
#[derive(Debug)]
pub struct CAtomic {
    v: Cell<u64>,
    line: u32,
}

impl CAtomic {
    /// The value, read without counting an access (for a driver that
    /// reports what a run did, never for scheme code).
    pub fn peek(&self) -> u64 {
        self.v.get()
    }
}

impl CountingPlatform {
    /// A new platform.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts so far (all paths).
    pub fn counts(&self) -> AccessCounts {
        self.counts.get()
    }

    /// Counts of accesses made inside teardown work (`__mmput`,
    /// `__mmdrop`); the rest is the switch path.
    pub fn teardown_counts(&self) -> AccessCounts {
        self.teardown.get()
    }

    #[inline]
    fn with(&self, f: impl Fn(&mut AccessCounts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
        if self.depth.get() > 0 {
            let mut t = self.teardown.get();
            f(&mut t);
            self.teardown.set(t);
        }
    }

    #[inline]
    fn on_load(&self, cpu: CpuId, a: &CAtomic) {
        let mut lines = self.lines.borrow_mut();
        let l = &mut lines[a.line as usize];
        if l.kind as usize == 6 {
            return;
        }
        let cpu = cpu as u32;
        let remote = l.last_writer != NONE && l.last_writer != cpu && !l.has_reader(cpu);
        if l.last_writer != cpu {
            l.add_reader(cpu);
        }
        drop(lines);
        self.time(cpu as usize, a.line, crate::timing::model::Access::Load);
        self.with(|c| {
            c.loads += 1;
            if remote {
                c.remote_loads += 1;
            }
        });
    }

    #[inline]
    fn on_write(&self, cpu: CpuId, a: &CAtomic, rmw: bool) {
        let mut lines = self.lines.borrow_mut();
        let l = &mut lines[a.line as usize];
        let kind = l.kind as usize;
        if kind == 6 {
            return;
        }
        let cpu = cpu as u32;
        let transfer = l.last_writer != NONE && l.last_writer != cpu;
        let others_read = l.nreaders > u32::from(l.has_reader(cpu));
        let shared = transfer || others_read;
        l.last_writer = cpu;
        l.clear_readers();
        drop(lines);
        self.time(
            cpu as usize,
            a.line,
            crate::timing::model::Access::write(rmw),
        );
        self.with(|c| {
            if rmw {
                c.rmws += 1;
                c.rmw_by_kind[kind] += 1;
                if shared {
                    c.shared_rmw += 1;
                } else {
                    c.local_rmw += 1;
                }
            } else {
                c.stores += 1;
            }
            if transfer {
                c.coherence_transfers += 1;
                c.transfers_by_kind[kind] += 1;
            }
        });
    }
}

impl Platform for CountingPlatform {
    type Atomic = CAtomic;
    const IMMEDIATE_IPI: bool = true;
    type Payload = ();

    fn line(&self, kind: LineKind) -> Line {
        let mut lines = self.lines.borrow_mut();
        lines.push(LineState {
            kind: kind_index(kind) as u8,
            last_writer: NONE,
            readers: Vec::new(),
            nreaders: 0,
        });
        if let Some(t) = &self.timing {
            t.borrow_mut().add_line(kind_index(kind) as u8);
        }
        Line((lines.len() - 1) as u32)
    }
    fn atomic(&self, value: u64, line: Line) -> CAtomic {
        CAtomic {
            v: Cell::new(value),
            line: line.0,
        }
    }
    fn reinit(&self, a: &CAtomic, value: u64) {
        a.v.set(value)
    }
    #[inline]
    fn load(&self, cpu: CpuId, a: &CAtomic, _o: Ordering) -> u64 {
        self.on_load(cpu, a);
        a.v.get()
    }
    #[inline]
    fn store(&self, cpu: CpuId, a: &CAtomic, v: u64, _o: Ordering) {
        self.on_write(cpu, a, false);
        a.v.set(v)
    }
    #[inline]
    fn swap(&self, cpu: CpuId, a: &CAtomic, v: u64, _o: Ordering) -> u64 {
        self.on_write(cpu, a, true);
        a.v.replace(v)
    }
    #[inline]
    fn compare_exchange(
        &self,
        cpu: CpuId,
        a: &CAtomic,
        current: u64,
        new: u64,
        _s: Ordering,
        _f: Ordering,
    ) -> Result<u64, u64> {
        // A failed compare-exchange still takes the line exclusive (x86
        // `lock cmpxchg`, LL/SC reservation): counted as an RMW either way.
        self.on_write(cpu, a, true);
        let old = a.v.get();
        if old == current {
            a.v.set(new);
            Ok(old)
        } else {
            Err(old)
        }
    }
    #[inline]
    fn fetch_add(&self, cpu: CpuId, a: &CAtomic, v: u64, _o: Ordering) -> u64 {
        self.on_write(cpu, a, true);
        let old = a.v.get();
        a.v.set(old.wrapping_add(v));
        old
    }
    #[inline]
    fn fetch_sub(&self, cpu: CpuId, a: &CAtomic, v: u64, _o: Ordering) -> u64 {
        self.on_write(cpu, a, true);
        let old = a.v.get();
        a.v.set(old.wrapping_sub(v));
        old
    }
    #[inline]
    fn fetch_or(&self, cpu: CpuId, a: &CAtomic, v: u64, _o: Ordering) -> u64 {
        self.on_write(cpu, a, true);
        let old = a.v.get();
        a.v.set(old | v);
        old
    }
    #[inline]
    fn fetch_and(&self, cpu: CpuId, a: &CAtomic, v: u64, _o: Ordering) -> u64 {
        self.on_write(cpu, a, true);
        let old = a.v.get();
        a.v.set(old & v);
        old
    }
    #[inline]
    fn fence(&self, cpu: CpuId, o: Ordering) {
        if o == Ordering::SeqCst {
            self.time(cpu, 0, crate::timing::model::Access::Fence);
        }
        self.with(|c| {
            if o == Ordering::SeqCst {
                c.fences += 1
            } else {
                c.light_fences += 1
            }
        });
    }
    fn spin(&self) {}
    fn teardown_phase(&self, _cpu: CpuId, entering: bool) {
        let d = self.depth.get();
        self.depth
            .set(if entering { d + 1 } else { d.saturating_sub(1) });
    }
    fn payload(&self) {}
    fn payload_read(&self, _cpu: CpuId, _x: &()) {}
    fn payload_write(&self, _cpu: CpuId, _x: &()) {}
}
