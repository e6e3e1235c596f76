//! Context switches on real OS threads: one `lazymm::Machine<StdPlatform>`
//! per run (the same scheme code as the simulator), one OS thread per CPU.
//!
//! Workloads:
//!
//! * [`Workload::PingPong`]: will-it-scale `context_switch1_threads`. The
//!   CPUs run threads of *one* process and hand a token round a ring through
//!   an atomic (two CPUs: ping-pong). A CPU whose turn it is wakes its task
//!   (idle -> user, the lazily held mm is reused), passes the token on and
//!   blocks (user -> idle: lazy again). Every switch goes through idle, and
//!   consecutive lazy transitions on the shared mm come from different CPUs,
//!   so `refcount` pays a line transfer on `mm_count` for each.
//! * [`Workload::FreeRun`]: the same round trip with no token: every CPU
//!   switches user -> idle -> user as fast as it can, all on one mm. The
//!   most contended shape for `refcount`.
//! * [`Workload::Mixed`]: `lazymm_sim::threads::run_threads` with its stress
//!   configuration: tasks migrate through a mutex-protected pool, switch
//!   user -> user, and exit (teardown fix-ups, exit-flush IPIs). Noisier (the
//!   pool's mutex), but exercises every path under a clean ledger.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use lazymm::{Arch, LedgerCounts, Machine, MachineConfig, Next, SchemeKind, StdPlatform};
use lazymm_sim::threads::{run_threads, ThreadsConfig};
use serde::Serialize;

use crate::Padded;

/// CPU time consumed so far by the calling thread (`thread = true`) or the
/// whole process, in seconds (Linux `clock_gettime`; 0 where unavailable).
pub fn cpu_time(thread: bool) -> f64 {
    let clock = if thread {
        libc::CLOCK_THREAD_CPUTIME_ID
    } else {
        libc::CLOCK_PROCESS_CPUTIME_ID
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids are
    // constants the kernel knows.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Turns of CPU 0 per timed window in the ping-pong.
pub const WINDOW: u64 = 16;

/// Pins the calling thread to core `cpu % cores` (Linux; best effort).
/// Returns whether it worked.
pub fn pin_to_core(cpu: usize) -> bool {
    // Online CPUs of the system, not `available_parallelism` (which reads
    // the calling thread's affinity mask: 1 in a thread spawned by a pinned
    // one).
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
    // inside it; sched_setaffinity(0, ..) applies to the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cores, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

fn peak(w: &mut [f64]) -> Option<f64> {
    if w.len() < 10 {
        return None;
    }
    w.sort_by(f64::total_cmp);
    Some(w[(w.len() - 1) * 9 / 10])
}

/// One turn of a wait loop: spin a while, then yield, so that a partner
/// thread descheduled on a busy machine gets the core back quickly. No
/// `pause` (`spin_loop`): under KVM, pause-loop exiting turns a tight pause
/// loop into VM exits (measured here: ~1 us per hand-off instead of ~0.1).
#[inline]
pub fn spin_wait(spins: &mut u32) {
    *spins += 1;
    if *spins >= 20_000 {
        *spins = 0;
        std::thread::yield_now();
    }
}

/// A real-thread workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Token ring (ping-pong on two CPUs), every switch through idle.
    PingPong,
    /// Every CPU does user -> idle -> user round trips on one mm, no token.
    FreeRun,
    /// `run_threads`' stress mix: migrations, user -> user, exits.
    Mixed,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 3] = [Workload::PingPong, Workload::FreeRun, Workload::Mixed];

    /// The workload's id on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::PingPong => "ping-pong",
            Workload::FreeRun => "free-run",
            Workload::Mixed => "mixed",
        }
    }

    /// Parses a workload id.
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How long one measurement lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// Wall-clock time of the timed phase.
    Time(Duration),
    /// Idle round trips per CPU (ping-pong, free-run) or loop steps per CPU
    /// (mixed).
    Iterations(u64),
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct SwitchRun {
    /// Scheme.
    pub scheme: SchemeKind,
    /// Workload.
    pub workload: Workload,
    /// CPUs (OS threads).
    pub threads: usize,
    /// Context switches in the timed phase (all CPUs).
    pub switches: u64,
    /// The timed phase.
    pub elapsed: Duration,
    /// CPU time the benchmark threads consumed in the timed phase, summed
    /// (seconds). On a busy machine it is less than `threads * elapsed`:
    /// the threads were descheduled part of the time.
    pub cpu_seconds: f64,
    /// Ping-pong only: the 90th percentile of the switch rate over short
    /// windows (WINDOW turns of thread 0): the rate of the least disturbed
    /// stretches, since a descheduled partner can only slow a window down.
    pub peak_rate: Option<f64>,
    /// The machine's ledger after quiesce (set-up and exits included).
    pub ledger: LedgerCounts,
    /// Address spaces torn down.
    pub teardowns: u64,
    /// Scheme IPIs and exit-flush IPIs sent.
    pub ipis: u64,
}

impl SwitchRun {
    /// Switches per second of wall-clock time.
    pub fn rate(&self) -> f64 {
        self.switches as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Switches per second of CPU time per thread: the rate the run would
    /// have had if its threads had run all the time (the figure to compare
    /// on a machine that other jobs share).
    pub fn cpu_rate(&self) -> f64 {
        if self.cpu_seconds <= 0.0 {
            return self.rate();
        }
        self.switches as f64 * self.threads as f64 / self.cpu_seconds
    }

    /// `cpu_seconds / (threads * elapsed)`: how much of the timed phase the
    /// threads actually ran.
    pub fn utilization(&self) -> f64 {
        self.cpu_seconds / (self.threads as f64 * self.elapsed.as_secs_f64().max(1e-9))
    }
}

/// How the threads map to cores and to the machine's CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOpts {
    /// Pin bench thread `c` to core `c % cores` (ping-pong and free-run;
    /// `run_threads` does not pin).
    pub pin: bool,
    /// Bench thread `c` drives machine CPU `c * stride` (ping-pong and
    /// free-run; the machine gets `(threads - 1) * stride + 1` CPUs, the
    /// others stay idle on `init_mm`). 1: adjacent CPUs, as the runtime's
    /// per-CPU arrays put them (neighbours share cache lines on
    /// `StdPlatform`); 16: no per-CPU array puts two driven CPUs on one
    /// line (8-byte entries), which shows the schemes without the
    /// runtime's false sharing.
    pub stride: usize,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            pin: true,
            stride: 1,
        }
    }
}

/// Runs one measurement. Errors on an impossible configuration or a scheme
/// that is not implemented yet.
pub fn run(
    scheme: SchemeKind,
    arch: Arch,
    threads: usize,
    workload: Workload,
    len: Length,
    opts: RunOpts,
) -> Result<SwitchRun, String> {
    match workload {
        Workload::Mixed => run_mixed(scheme, arch, threads, len),
        Workload::PingPong | Workload::FreeRun => {
            run_loop(scheme, arch, threads, workload, len, opts)
        }
    }
}

fn run_mixed(
    scheme: SchemeKind,
    arch: Arch,
    threads: usize,
    len: Length,
) -> Result<SwitchRun, String> {
    let steps = match len {
        Length::Iterations(n) => n,
        // About 1.5 M steps/s per CPU on this machine; the report gives the
        // real elapsed time anyway.
        Length::Time(d) => ((d.as_secs_f64() * 1.5e6) as u64).max(1000),
    };
    let mut cfg = ThreadsConfig::stress(scheme, arch, threads, steps);
    cfg.procs = (steps / 200).clamp(16, 4096) as usize;
    let cpu0 = cpu_time(false);
    let r = run_threads(&cfg)?;
    let cpu_seconds = cpu_time(false) - cpu0;
    Ok(SwitchRun {
        scheme,
        workload: Workload::Mixed,
        threads,
        switches: r.stats.cpu.switches(),
        elapsed: r.elapsed,
        cpu_seconds,
        peak_rate: None,
        ledger: r.stats.ledger,
        teardowns: r.stats.cpu.teardowns,
        ipis: r.stats.cpu.ipis + r.stats.cpu.flush_ipis,
    })
}

fn run_loop(
    scheme: SchemeKind,
    arch: Arch,
    threads: usize,
    workload: Workload,
    len: Length,
    opts: RunOpts,
) -> Result<SwitchRun, String> {
    if threads == 0 {
        return Err("threads must be at least 1".into());
    }
    let stride = opts.stride.max(1);
    let ncpus = (threads - 1) * stride + 1;
    let mut mc = MachineConfig::new(ncpus, arch, scheme);
    mc.max_mms = 16;
    let m = Machine::new(StdPlatform, mc).map_err(|e| e.0)?;
    // CPUs between the strided ones have no thread to serve IPIs: take them
    // offline (a scheme that IPIs every online CPU, e.g. shoot-down on x86
    // since issue 9, would otherwise wait for them forever).
    for c in (0..ncpus).filter(|c| c % stride != 0) {
        m.cpu_offline(c);
    }
    // One process, one thread per CPU: `users` = threads.
    let mm = m.mm_alloc(0).map_err(|e| e.to_string())?;
    for _ in 1..threads {
        m.mmget(0, mm);
    }
    let token = Padded(AtomicU64::new(0));
    let stop = Padded(AtomicBool::new(false));
    let quiesced = Padded(AtomicUsize::new(0));
    let barrier = Barrier::new(threads + 1);
    let n = threads as u64;
    let limit = match len {
        Length::Iterations(i) => i,
        Length::Time(_) => u64::MAX,
    };
    let (trips, elapsed, cpu_seconds, mut windows) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|c| {
                let (m, token, stop, quiesced, barrier) = (&m, &token, &stop, &quiesced, &barrier);
                s.spawn(move || {
                    if opts.pin {
                        pin_to_core(c);
                    }
                    let cpu = c * stride;
                    // The task starts running, then blocks: lazy on mm.
                    m.switch_to(cpu, Next::User(mm));
                    m.switch_to(cpu, Next::Kernel);
                    barrier.wait();
                    let cpu0 = cpu_time(true);
                    let mut trips = 0u64;
                    // Thread 0 of a ping-pong times windows of WINDOW
                    // turns (the ring moves in lockstep, so each window is
                    // WINDOW * threads round trips of the whole machine).
                    let mut marks: Vec<Instant> = Vec::new();
                    let timing = workload == Workload::PingPong && c == 0;
                    if timing {
                        marks.reserve(1 << 16);
                        marks.push(Instant::now());
                    }
                    'outer: while trips < limit {
                        if workload == Workload::PingPong {
                            let mut spins = 0u32;
                            loop {
                                // Ordering: Acquire pairs with the Release
                                // store of the flag: a thread that stopped
                                // after passing us the token has its pass
                                // visible to the token load below.
                                let stopping = stop.0.load(Ordering::Acquire);
                                // Ordering: Acquire pairs with the previous
                                // holder's Release: a wake-up.
                                if token.0.load(Ordering::Acquire) % n == c as u64 {
                                    break;
                                }
                                if stopping {
                                    break 'outer;
                                }
                                spin_wait(&mut spins);
                            }
                        } else if stop.0.load(Ordering::Relaxed) {
                            break;
                        }
                        // wake: idle -> user (same mm, lazily held)
                        m.switch_to(cpu, Next::User(mm));
                        if workload == Workload::PingPong {
                            // Ordering: Release: the wake-up of the next CPU.
                            token.0.fetch_add(1, Ordering::Release);
                        }
                        // block: user -> idle (lazy)
                        m.switch_to(cpu, Next::Kernel);
                        trips += 1;
                        if timing && trips % WINDOW == 0 && marks.len() < (1 << 20) {
                            marks.push(Instant::now());
                        }
                    }
                    if workload == Workload::PingPong {
                        // With an iteration limit, the others may still
                        // wait for the token: release them (they check the
                        // token before the flag, so each finishes its own
                        // count first).
                        // Ordering: Release: our last token pass happens
                        // before a waiter sees the flag.
                        stop.0.store(true, Ordering::Release);
                    }
                    let done = Instant::now();
                    let cpu_used = cpu_time(true) - cpu0;
                    // Exit: the task comes back and exits on this CPU.
                    m.switch_to(cpu, Next::User(mm));
                    m.exit_mm(cpu);
                    m.switch_to(cpu, Next::Kernel);
                    m.quiesce_cpu(cpu);
                    quiesced.0.fetch_add(1, Ordering::SeqCst);
                    // Keep serving IPIs (exit flush, scheme IPIs) until
                    // every CPU is done.
                    while quiesced.0.load(Ordering::SeqCst) < threads {
                        m.interrupt_point(cpu);
                        std::thread::yield_now();
                    }
                    (trips, done, cpu_used, marks)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        if let Length::Time(d) = len {
            std::thread::sleep(d);
            stop.0.store(true, Ordering::Relaxed);
        }
        let mut trips = 0;
        let mut end = start;
        let mut cpu = 0.0;
        let mut windows = Vec::new();
        for h in hs {
            let (t, done, c, marks) = h.join().expect("bench thread");
            trips += t;
            end = end.max(done);
            cpu += c;
            for w in marks.windows(2) {
                let d = (w[1] - w[0]).as_secs_f64().max(1e-9);
                windows.push((2 * WINDOW * threads as u64) as f64 / d);
            }
        }
        (trips, end - start, cpu, windows)
    });
    let stats = m.finish();
    Ok(SwitchRun {
        scheme,
        workload,
        threads,
        switches: 2 * trips,
        elapsed,
        cpu_seconds,
        peak_rate: peak(&mut windows),
        ledger: stats.ledger,
        teardowns: stats.cpu.teardowns,
        ipis: stats.cpu.ipis + stats.cpu.flush_ipis,
    })
}
