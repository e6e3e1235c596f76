//! This machine's cost of the operations the cost model prices: an atomic RMW
//! on a line the CPU owns, an RMW on a line two cores fight over, a one-way
//! cache-line hand-off, and a full fence. Printed next to the simulator's
//! x86 table (`lazymm_sim::cost::CostTable`) so a reader can see how the model
//! compares with this machine. Measured, never asserted.

use std::hint::black_box;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use lazymm::Arch;
use lazymm_sim::cost::CostTable;
use serde::Serialize;

use crate::Padded;

/// What [`calibrate`] measured (nanoseconds per operation, per thread).
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// Threads used for the two-thread figures.
    pub threads: usize,
    /// `fetch_add(SeqCst)` on a line only this thread touches, one thread.
    pub local_rmw_ns: f64,
    /// The same with every thread hammering its own padded counter at once.
    pub local_rmw_parallel_ns: f64,
    /// `fetch_add(SeqCst)` with every thread hammering one counter: each RMW
    /// mostly has to pull the line from the other core first.
    pub shared_rmw_ns: f64,
    /// One-way hand-off of a line between two threads that take turns (the
    /// token ping-pong): one line transfer plus the waiter noticing it.
    pub handoff_ns: f64,
    /// `fence(SeqCst)` after a store, one thread, minus the store alone.
    pub fence_ns: f64,
    /// The timestamp counter's rate (x86_64: `rdtsc` ticks per ns, close to
    /// the nominal core clock), to turn ns into approximate cycles; `None`
    /// elsewhere.
    pub tsc_ghz: Option<f64>,
    /// `shared_rmw_ns / local_rmw_ns`: the measured counterpart of the
    /// model's `transfer / local_rmw`.
    pub measured_shared_over_local: f64,
    /// `handoff_ns / local_rmw_ns`.
    pub measured_handoff_over_local: f64,
    /// `fence_ns / local_rmw_ns`.
    pub measured_fence_over_local: f64,
    /// The simulator's x86 table.
    pub model: CostTable,
    /// `model.transfer / model.local_rmw`.
    pub model_transfer_over_local: f64,
    /// `model.fence / model.local_rmw`.
    pub model_fence_over_local: f64,
}

fn per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops.max(1) as f64
}

/// Runs `f(thread_index, stop)` on `threads` threads for about `dur`; `f`
/// returns how many operations it did. Returns ns per operation per thread
/// (wall time / mean operations per thread).
fn timed_parallel<F>(threads: usize, dur: Duration, f: F) -> f64
where
    F: Fn(usize, &AtomicBool) -> u64 + Sync,
{
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let (ops, elapsed) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (f, stop, barrier) = (&f, &stop, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    f(t, stop)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(dur);
        // Ordering: Relaxed; only a flag, the join orders the results.
        stop.store(true, Ordering::Relaxed);
        let ops: u64 = hs.into_iter().map(|h| h.join().expect("thread")).sum();
        (ops, start.elapsed())
    });
    per_op(elapsed, ops / threads as u64)
}

const CHUNK: u64 = 1024;

fn rmw_loop(a: &AtomicU64, stop: &AtomicBool) -> u64 {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..CHUNK {
            a.fetch_add(1, Ordering::SeqCst);
        }
        n += CHUNK;
    }
    n
}

fn handoff(threads: usize, dur: Duration) -> f64 {
    let token = Padded(AtomicU64::new(0));
    let n = threads as u64;
    timed_parallel(threads, dur, |t, stop| {
        let mut mine = 0;
        'outer: loop {
            let mut spins = 0;
            loop {
                // Ordering: Acquire/Release make it a real hand-off, as a
                // wake-up is.
                let v = token.0.load(Ordering::Acquire);
                if v % n == t as u64 {
                    token.0.store(v + 1, Ordering::Release);
                    mine += 1;
                    break;
                }
                if stop.load(Ordering::Relaxed) {
                    break 'outer;
                }
                crate::switches::spin_wait(&mut spins);
            }
        }
        mine
    }) / n as f64
}

fn fence_ns(dur: Duration) -> f64 {
    let a = Padded(AtomicU64::new(0));
    let stores = timed_parallel(1, dur / 2, |_, stop| {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for i in 0..CHUNK {
                a.0.store(black_box(i), Ordering::Relaxed);
            }
            n += CHUNK;
        }
        n
    });
    let fenced = timed_parallel(1, dur / 2, |_, stop| {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for i in 0..CHUNK {
                a.0.store(black_box(i), Ordering::Relaxed);
                fence(Ordering::SeqCst);
            }
            n += CHUNK;
        }
        n
    });
    (fenced - stores).max(0.0)
}

#[cfg(target_arch = "x86_64")]
fn tsc_ghz() -> Option<f64> {
    // SAFETY: rdtsc has no preconditions on x86_64.
    let t0 = unsafe { core::arch::x86_64::_rdtsc() };
    let s = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    // SAFETY: as above.
    let t1 = unsafe { core::arch::x86_64::_rdtsc() };
    let ns = s.elapsed().as_nanos() as f64;
    Some((t1.wrapping_sub(t0)) as f64 / ns)
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_ghz() -> Option<f64> {
    None
}

/// Measures this machine with `threads` threads (2 on this machine: one per
/// core), spending about `dur` on each figure.
pub fn calibrate(threads: usize, dur: Duration) -> Calibration {
    let threads = threads.max(2);
    let local = Padded(AtomicU64::new(0));
    let local_rmw_ns = timed_parallel(1, dur, |_, stop| rmw_loop(&local.0, stop));
    let own: Vec<Padded<AtomicU64>> = (0..threads).map(|_| Padded(AtomicU64::new(0))).collect();
    let local_rmw_parallel_ns = timed_parallel(threads, dur, |t, stop| rmw_loop(&own[t].0, stop));
    let shared = Padded(AtomicU64::new(0));
    let shared_rmw_ns = timed_parallel(threads, dur, |_, stop| rmw_loop(&shared.0, stop));
    let handoff_ns = handoff(threads, dur);
    let fence_ns = fence_ns(dur);
    let model = CostTable::for_arch(Arch::X86);
    Calibration {
        threads,
        local_rmw_ns,
        local_rmw_parallel_ns,
        shared_rmw_ns,
        handoff_ns,
        fence_ns,
        tsc_ghz: tsc_ghz(),
        measured_shared_over_local: shared_rmw_ns / local_rmw_ns,
        measured_handoff_over_local: handoff_ns / local_rmw_ns,
        measured_fence_over_local: fence_ns / local_rmw_ns,
        model,
        model_transfer_over_local: model.transfer / model.local_rmw,
        model_fence_over_local: model.fence / model.local_rmw,
    }
}
