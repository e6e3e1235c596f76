//! The cost of one "borrow + release" of a shared object, on 1 and 2 threads
//! (2 threads: both borrow the *same* object at once, one per core).
//!
//! `cargo bench -p lazymm-bench --bench peers`. Wall-clock, never asserted.
//! What each benchmark measures (one iteration):
//!
//! | bench | one iteration |
//! |---|---|
//! | `arc_clone_drop` | `Arc::clone` + read + drop: two RMWs on the shared count (the refcount baseline) |
//! | `refcount_bare` | `fetch_add(Relaxed)` + `fetch_sub(AcqRel)` on one shared padded word: `refcount`'s lazy grab/drop on `mm_count`, no runtime |
//! | `arc_swap_load` | `ArcSwap::load` + read + guard drop (arc-swap's debt slot) |
//! | `hazarc_load` | `hazarc::AtomicArc::load` + read + guard drop |
//! | `epoch_pin_load` | `crossbeam_epoch::pin` + `Atomic::load` + read + unpin |
//! | `haphazard_protect` | `AtomicPtr::safe_load` through a per-thread `HazardPointer` + read + `reset_protection` |
//! | `seize_protect` | `Collector::enter` + `Guard::protect` + read + guard drop |
//! | `lazy_slot_xchg` | lazymm `lightweight`'s slot operations alone, on a per-thread padded slot: publish (Relaxed store of the mm word) + unlazy by `swap(0, AcqRel)` with the hand-off check |
//! | `lazy_slot_plain` | the same with the same-mm plain unlazy (`store(0, Release)`, `UnlazyPlain::SameMm`, the default) |
//! | `lazy_slot_xchg_adjacent` | `lazy_slot_xchg` with the two threads' slots on *one* cache line (unpadded per-CPU words) |
//! | `machine_lightweight` | the real runtime: `Machine<StdPlatform>` with `lightweight`, `switch_to(Kernel)` + `switch_to(User(mm))` (an idle round trip on the same mm: lazy enter + lazy reuse), ledger included |
//! | `machine_refcount` | the same machine with `refcount` (so `machine_lightweight / machine_refcount` isolates the scheme inside the runtime) |
//! | `machine_*_far` (synchronized pass only) | the same on CPUs 4 and 20 instead of 2 and 3: no per-CPU array of the runtime (`CpuShared`, the ledger's `loaded`/`active`, `OwnerCell<CpuLocal>`) puts the two CPUs on one cache line |
//!
//! The borrow is of one object that nobody replaces during the bench (the
//! read-mostly case every one of these is built for).

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::sync::atomic::{compiler_fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::LocalKey;

use divan::Bencher;
use lazymm::{Arch, Machine, MachineConfig, MmRef, Next, SchemeKind, StdPlatform};
use lazymm_bench::Padded;

const THREADS: &[usize] = &[1, 2];

fn main() {
    // Initialise every shared object (and this thread's per-thread state)
    // before timing, so that no sample pays for a first use.
    LazyLock::force(&ARC);
    LazyLock::force(&SWAP);
    LazyLock::force(&HAZARC);
    LazyLock::force(&EPOCH);
    LazyLock::force(&HAZ_PTR);
    LazyLock::force(&SEIZE);
    LazyLock::force(&SEIZE_PTR);
    RIG_LW.cpu(&CPU_LW);
    RIG_RC.cpu(&CPU_RC);
    divan::main();
    if std::env::args().any(|a| a == "--bench") {
        synchronized_pass();
    }
}

static NEXT_CORE: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

/// Pins each bench thread to its own core on its first iteration (divan's
/// pool threads persist across benchmarks). Costs one thread-local load per
/// iteration afterwards.
#[inline(always)]
fn pin_once() {
    PINNED.with(|p| {
        if !p.get() {
            lazymm_bench::switches::pin_to_core(NEXT_CORE.fetch_add(1, Ordering::Relaxed));
            p.set(true);
        }
    });
}

static ARC: LazyLock<Arc<u64>> = LazyLock::new(|| Arc::new(42));

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn arc_clone_drop(b: Bencher) {
    b.bench(|| {
        pin_once();
        let a = Arc::clone(&ARC);
        black_box(*a);
    });
}

static COUNT: Padded<AtomicU64> = Padded(AtomicU64::new(1));

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn refcount_bare(b: Bencher) {
    b.bench(|| {
        pin_once();
        // The orderings of refcount's mmgrab / mmdrop.
        COUNT.0.fetch_add(1, Ordering::Relaxed);
        black_box(COUNT.0.fetch_sub(1, Ordering::AcqRel));
    });
}

static SWAP: LazyLock<arc_swap::ArcSwap<u64>> =
    LazyLock::new(|| arc_swap::ArcSwap::from_pointee(42));

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn arc_swap_load(b: Bencher) {
    b.bench(|| {
        pin_once();
        let g = SWAP.load();
        black_box(**g);
    });
}

static HAZARC: LazyLock<hazarc::AtomicArc<u64>> =
    LazyLock::new(|| hazarc::AtomicArc::new(Arc::new(42)));

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn hazarc_load(b: Bencher) {
    b.bench(|| {
        pin_once();
        let g = HAZARC.load();
        black_box(**g);
    });
}

static EPOCH: LazyLock<crossbeam_epoch::Atomic<u64>> =
    LazyLock::new(|| crossbeam_epoch::Atomic::new(42));

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn epoch_pin_load(b: Bencher) {
    b.bench(|| {
        pin_once();
        let g = crossbeam_epoch::pin();
        let p = EPOCH.load(Ordering::Acquire, &g);
        // SAFETY: the object is never retired; the guard pins it anyway.
        black_box(unsafe { *p.deref() });
    });
}

static HAZ_PTR: LazyLock<haphazard::AtomicPtr<u64>> =
    LazyLock::new(|| haphazard::AtomicPtr::from(Box::new(42)));

thread_local! {
    static HAZ: RefCell<haphazard::HazardPointer<'static>> =
        RefCell::new(haphazard::HazardPointer::new());
}

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn haphazard_protect(b: Bencher) {
    b.bench(|| {
        pin_once();
        HAZ.with(|h| {
            let mut h = h.borrow_mut();
            black_box(HAZ_PTR.safe_load(&mut h).copied());
            h.reset_protection();
        })
    });
}

static SEIZE: LazyLock<seize::Collector> = LazyLock::new(seize::Collector::new);
static SEIZE_PTR: LazyLock<AtomicPtr<u64>> =
    LazyLock::new(|| AtomicPtr::new(Box::into_raw(Box::new(42))));

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn seize_protect(b: Bencher) {
    use seize::Guard;
    b.bench(|| {
        pin_once();
        let g = SEIZE.enter();
        let p = g.protect(&SEIZE_PTR, Ordering::Acquire);
        // SAFETY: the object is leaked, never retired.
        black_box(unsafe { *p });
    });
}

/// The word `lightweight` stores for an mm (`MmRef::word`).
const MM_WORD: u64 = 4;

thread_local! {
    static SLOT: Padded<AtomicU64> = const { Padded(AtomicU64::new(0)) };
}

#[inline(always)]
fn lazy_slot_xchg_on(slot: &AtomicU64) {
    // grab_lazy: the owner publishes (Relaxed store, as lightweight.rs).
    slot.store(black_box(MM_WORD), Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    // drop_lazy: exchange (AcqRel, site lw-unlazy-xchg); bit 0 set would
    // mean a teardown handed us a reference to drop.
    let old = slot.swap(0, Ordering::AcqRel);
    if old & 1 == 1 {
        panic!("no teardown runs in this bench");
    }
}

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn lazy_slot_xchg(b: Bencher) {
    b.bench(|| {
        pin_once();
        SLOT.with(|s| lazy_slot_xchg_on(black_box(&s.0)))
    });
}

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn lazy_slot_plain(b: Bencher) {
    b.bench(|| {
        pin_once();
        SLOT.with(|s| {
            let s = black_box(s);
            s.0.store(black_box(MM_WORD), Ordering::Relaxed);
            // The switch runs between publish and unlazy: keep the compiler
            // from merging the two stores.
            compiler_fence(Ordering::SeqCst);
            // Same-mm unlazy: plain Release store (site lw-unlazy-store).
            s.0.store(0, Ordering::Release);
        })
    });
}

/// Two per-CPU slots on one cache line, as unpadded per-CPU words are.
static ADJACENT: Padded<[AtomicU64; 2]> = Padded([AtomicU64::new(0), AtomicU64::new(0)]);
static NEXT_ADJ: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static ADJ_IDX: usize = NEXT_ADJ.fetch_add(1, Ordering::Relaxed) % 2;
}

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn lazy_slot_xchg_adjacent(b: Bencher) {
    b.bench(|| {
        pin_once();
        ADJ_IDX.with(|&i| lazy_slot_xchg_on(black_box(&ADJACENT.0[i])))
    });
}

/// A machine whose CPUs are handed to bench threads on first use.
struct Rig {
    m: Machine<StdPlatform>,
    mm: MmRef,
    next: AtomicUsize,
}

const RIG_CPUS: usize = 32;

impl Rig {
    fn new(scheme: SchemeKind) -> Rig {
        let mut cfg = MachineConfig::new(RIG_CPUS, Arch::X86, scheme);
        cfg.max_mms = 4;
        let m = Machine::new(StdPlatform, cfg).expect("machine");
        // One process that never exits (its users reference is never put).
        let mm = m.mm_alloc(0).expect("mm");
        Rig {
            m,
            mm,
            next: AtomicUsize::new(0),
        }
    }

    /// This thread's CPU (taken on first use, then lazy on `mm`).
    fn cpu(&self, key: &'static LocalKey<Cell<Option<usize>>>) -> usize {
        key.with(|c| match c.get() {
            Some(cpu) => cpu,
            None => {
                let cpu = self.next.fetch_add(1, Ordering::Relaxed);
                assert!(cpu < RIG_CPUS, "more bench threads than rig CPUs");
                self.m.switch_to(cpu, Next::User(self.mm));
                self.m.switch_to(cpu, Next::Kernel);
                c.set(Some(cpu));
                cpu
            }
        })
    }

    #[inline(always)]
    fn round_trip(&self, cpu: usize) {
        // idle -> user (same mm, lazily held: lazy reuse), user -> idle
        // (lazy enter).
        self.m.switch_to(cpu, Next::User(self.mm));
        self.m.switch_to(cpu, Next::Kernel);
    }
}

static RIG_LW: LazyLock<Rig> = LazyLock::new(|| Rig::new(SchemeKind::Lightweight));
static RIG_RC: LazyLock<Rig> = LazyLock::new(|| Rig::new(SchemeKind::Refcount));
thread_local! {
    static CPU_LW: Cell<Option<usize>> = const { Cell::new(None) };
    static CPU_RC: Cell<Option<usize>> = const { Cell::new(None) };
}

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn machine_lightweight(b: Bencher) {
    b.bench(|| {
        pin_once();
        let cpu = RIG_LW.cpu(&CPU_LW);
        RIG_LW.round_trip(cpu);
    });
}

#[divan::bench(threads = THREADS, sample_count = 60, sample_size = 100_000)]
fn machine_refcount(b: Bencher) {
    b.bench(|| {
        pin_once();
        let cpu = RIG_RC.cpu(&CPU_RC);
        RIG_RC.round_trip(cpu);
    });
}

/// The synchronized pass: the same operations, timed by
/// `lazymm_bench::calibrate::sampled` (threads pinned one per core, released
/// together for each sample, two-thread samples kept only if the threads
/// really ran at the same time), with ratios to `arc_clone_drop`. On a
/// machine that other jobs share, divan's `t=2` rows above can show no
/// contention at all (the two threads' samples rarely overlap); these can.
fn synchronized_pass() {
    use lazymm_bench::calibrate::{sampled, Figure};
    const N: u64 = 20_000;
    const SAMPLES: usize = 100;
    // Rig CPUs 2 and 3 for the two threads (divan's threads used 0 and 1);
    // CPUs 4 and 20 for the "far" variant (16 apart: no per-CPU array of the
    // runtime puts them on one cache line).
    for cpu in [2, 3, 4, 20] {
        for rig in [&*RIG_LW, &*RIG_RC] {
            rig.m.switch_to(cpu, Next::User(rig.mm));
            rig.m.switch_to(cpu, Next::Kernel);
        }
    }
    macro_rules! op {
        ($name:expr, |$t:ident| $body:expr) => {
            op!($name, N, |$t| $body)
        };
        ($name:expr, $n:expr, |$t:ident| $body:expr) => {
            (
                $name,
                [1usize, 2].map(|threads| {
                    sampled(threads, SAMPLES, |$t| {
                        for _ in 0..$n {
                            $body;
                        }
                        $n
                    })
                }),
            )
        };
    }
    let rows: Vec<(&str, [Figure; 2])> = vec![
        op!("arc_clone_drop", |_t| black_box(*Arc::clone(&ARC))),
        op!("refcount_bare", |_t| {
            COUNT.0.fetch_add(1, Ordering::Relaxed);
            black_box(COUNT.0.fetch_sub(1, Ordering::AcqRel))
        }),
        op!("arc_swap_load", |_t| black_box(**SWAP.load())),
        op!("hazarc_load", |_t| black_box(**HAZARC.load())),
        op!("epoch_pin_load", |_t| {
            let g = crossbeam_epoch::pin();
            // SAFETY: never retired.
            black_box(unsafe { *EPOCH.load(Ordering::Acquire, &g).deref() })
        }),
        op!("haphazard_protect", |_t| HAZ.with(|h| {
            let mut h = h.borrow_mut();
            black_box(HAZ_PTR.safe_load(&mut h).copied());
            h.reset_protection();
        })),
        op!("seize_protect", |_t| {
            use seize::Guard;
            let g = SEIZE.enter();
            // SAFETY: leaked, never retired.
            black_box(unsafe { *g.protect(&SEIZE_PTR, Ordering::Acquire) })
        }),
        op!("lazy_slot_xchg", |_t| SLOT
            .with(|s| lazy_slot_xchg_on(black_box(&s.0)))),
        op!("lazy_slot_plain", N * 10, |_t| SLOT.with(|s| {
            let s = black_box(s);
            s.0.store(black_box(MM_WORD), Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
            s.0.store(0, Ordering::Release);
        })),
        op!("lazy_slot_xchg_adjacent", |t| lazy_slot_xchg_on(black_box(
            &ADJACENT.0[t % 2]
        ))),
        op!("machine_lightweight", N / 10, |t| RIG_LW.round_trip(2 + t)),
        op!("machine_refcount", N / 10, |t| RIG_RC.round_trip(2 + t)),
        op!("machine_lightweight_far", N / 10, |t| RIG_LW
            .round_trip(4 + 16 * t)),
        op!("machine_refcount_far", N / 10, |t| RIG_RC
            .round_trip(4 + 16 * t)),
    ];
    let base = rows[0].1;
    println!();
    println!(
        "synchronized pass (lazymm_bench::calibrate::sampled: {SAMPLES} samples of {N} ops ({} for machine_*, {} for lazy_slot_plain), \
         pinned, 2-thread samples kept only if the threads overlapped >= 90%; 1t: 10th percentile ns/op (a 1-thread sample can only be slowed down by other jobs), \
         2t: median ns/op of kept samples)",
        N / 10,
        N * 10
    );
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "bench", "1t ns/op", "2t ns/op", "1t /Arc", "2t /Arc", "2t kept"
    );
    for (name, f) in &rows {
        println!(
            "{:<26} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>4}/{:<3}",
            name,
            f[0].p10_ns,
            f[1].ns,
            f[0].p10_ns / base[0].p10_ns,
            f[1].ns / base[1].ns,
            f[1].samples,
            f[1].taken
        );
    }
}
