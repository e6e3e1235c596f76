//! Real OS threads as CPUs ([`StdPlatform`]): the stress test and the
//! benchmark driver. The same scheme code as everywhere else; IPIs are
//! mailboxes served at interrupt points while the sender waits.
//!
//! Tasks live in a shared pool behind a mutex: a CPU that blocks a task
//! pushes it after its switch away completes, and a CPU that runs it pops it
//! first (the mutex gives the happens-before that the kernel's `on_cpu`
//! release/acquire gives a migrating task).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lazymm::schemes::SchemeOptions;
use lazymm::{Arch, Machine, MachineConfig, MachineStats, MmRef, Next, SchemeKind, StdPlatform};

use crate::sched::Rng;

/// A real-threads run.
#[derive(Clone, Debug)]
pub struct ThreadsConfig {
    /// Scheme.
    pub scheme: SchemeKind,
    /// Profile.
    pub arch: Arch,
    /// OS threads (= CPUs).
    pub cpus: usize,
    /// Loop iterations per CPU (each is one context switch, or a spawn).
    pub steps_per_cpu: u64,
    /// Threads per process.
    pub threads_per_proc: usize,
    /// Processes to create in total.
    pub procs: usize,
    /// One step in `exit_one_in` exits the running task.
    pub exit_one_in: u64,
    /// One step in `user_switch_one_in` switches user -> user directly.
    pub user_switch_one_in: u64,
    /// One step in `flush_one_in` (0: never) flushes the running task's mm
    /// instead: `munmap` or `mprotect`, one each in two.
    pub flush_one_in: u64,
    /// Seed.
    pub seed: u64,
    /// Scheme options.
    pub options: SchemeOptions,
}

impl ThreadsConfig {
    /// A short stress configuration.
    pub fn stress(scheme: SchemeKind, arch: Arch, cpus: usize, steps_per_cpu: u64) -> Self {
        ThreadsConfig {
            scheme,
            arch,
            cpus,
            steps_per_cpu,
            threads_per_proc: 3,
            procs: 64,
            exit_one_in: 500,
            user_switch_one_in: 8,
            flush_one_in: 0,
            seed: 1,
            options: SchemeOptions::default(),
        }
    }
}

/// What a real-threads run did.
#[derive(Clone, Debug)]
pub struct ThreadsReport {
    /// Totals (ledger included).
    pub stats: MachineStats,
    /// Wall-clock time of the switching phase.
    pub elapsed: Duration,
    /// Processes created.
    pub procs: u64,
}

struct Task {
    mm: MmRef,
}

/// Runs `cfg` on real threads.
pub fn run_threads(cfg: &ThreadsConfig) -> Result<ThreadsReport, String> {
    let mut mc = MachineConfig::new(cfg.cpus, cfg.arch, cfg.scheme);
    mc.options = cfg.options;
    mc.max_mms = cfg.procs + 16;
    let m = Machine::new(StdPlatform, mc).map_err(|e| e.0)?;
    let pool: Mutex<Vec<Task>> = Mutex::new(Vec::new());
    let spawned = AtomicU64::new(0);
    let quiesced = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|sc| {
        for c in 0..cfg.cpus {
            let (m, pool, spawned, quiesced) = (&m, &pool, &spawned, &quiesced);
            sc.spawn(move || {
                let mut rng = Rng::new(cfg.seed.wrapping_mul(31).wrapping_add(c as u64));
                let mut cur: Option<Task> = None;
                for _ in 0..cfg.steps_per_cpu {
                    m.interrupt_point(c);
                    match cur.take() {
                        None => {
                            let t = pool.lock().expect("pool").pop();
                            match t {
                                Some(t) => {
                                    m.switch_to(c, Next::User(t.mm));
                                    cur = Some(t);
                                }
                                None => {
                                    if spawned.fetch_add(1, Ordering::Relaxed) < cfg.procs as u64 {
                                        let Ok(mm) = m.mm_alloc(c) else { continue };
                                        let mut p = pool.lock().expect("pool");
                                        for _ in 1..cfg.threads_per_proc {
                                            m.mmget(c, mm);
                                            p.push(Task { mm });
                                        }
                                        drop(p);
                                        m.switch_to(c, Next::User(mm));
                                        cur = Some(Task { mm });
                                    }
                                }
                            }
                        }
                        Some(t) => {
                            if cfg.flush_one_in > 0 && rng.chance(1, cfg.flush_one_in) {
                                if rng.chance(1, 2) {
                                    m.munmap(c);
                                } else {
                                    m.mprotect(c);
                                }
                                cur = Some(t);
                            } else if rng.chance(1, cfg.exit_one_in) {
                                m.exit_mm(c);
                                m.switch_to(c, Next::Kernel);
                            } else if rng.chance(1, cfg.user_switch_one_in) {
                                let other = pool.lock().expect("pool").pop();
                                match other {
                                    Some(o) => {
                                        m.switch_to(c, Next::User(o.mm));
                                        pool.lock().expect("pool").push(t);
                                        cur = Some(o);
                                    }
                                    None => cur = Some(t),
                                }
                            } else {
                                // block: to idle (lazy), the task back to the pool
                                m.switch_to(c, Next::Kernel);
                                pool.lock().expect("pool").push(t);
                            }
                        }
                    }
                }
                // Drain: every task this CPU can get exits here.
                if cur.take().is_some() {
                    m.exit_mm(c);
                    m.switch_to(c, Next::Kernel);
                }
                loop {
                    let t = pool.lock().expect("pool").pop();
                    let Some(t) = t else { break };
                    m.switch_to(c, Next::User(t.mm));
                    m.exit_mm(c);
                    m.switch_to(c, Next::Kernel);
                    m.interrupt_point(c);
                }
                m.quiesce_cpu(c);
                quiesced.fetch_add(1, Ordering::SeqCst);
                // Keep serving IPIs until every CPU is done.
                while quiesced.load(Ordering::SeqCst) < cfg.cpus {
                    m.interrupt_point(c);
                    std::thread::yield_now();
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let stats = m.finish();
    Ok(ThreadsReport {
        stats,
        elapsed,
        procs: spawned.load(Ordering::SeqCst).min(cfg.procs as u64),
    })
}
