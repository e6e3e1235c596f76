//! Randomized schedule exploration at the granularity of single atomic
//! accesses, over the production schemes and the real [`Machine`].
//!
//! The single-threaded [`Sched`](crate::Sched) executor interleaves whole
//! kernel operations, so it cannot expose a race *inside* an operation (a
//! teardown scan interleaved with an unlazy). This explorer can:
//!
//! * every CPU is an OS thread running a seeded random script of kernel
//!   operations (switches, exits, exec, `kthread_use_mm`, hotplug, interrupt
//!   points) on a shared task pool, as [`crate::threads`] does;
//! * the platform ([`ExplorePlatform`]) makes every access to an algorithm
//!   word (slots, `count`, `users`, `mm_cpumask`, IPI mailboxes) a
//!   scheduling point: exactly one thread runs at a time and a seeded PRNG
//!   decides, at each point, whether the baton passes and to whom; a spin
//!   (waiting for an IPI) always passes it;
//! * fault injection at named points: each schedule enables a few of
//!   [`FAULT_POINTS`] ("before-slot", "after-count", ...), where the running
//!   CPU is very likely to be preempted (a delay right before or after that
//!   access), and, with `ipi-every-point`, CPUs take an interrupt (serve
//!   their IPI mailbox, walk their loaded page tables) between every two
//!   operations;
//! * the ledger is the oracle (use-after-free, double free, leak after the
//!   final quiesce); a driver panic (a double borrow) or a livelock (step
//!   limit) is a failure too.
//!
//! A schedule is a pure function of `(config, seed)`: [`run_seed`] replays
//! it exactly, with a trace of the interleaving. [`explore`] runs seeds
//! `first..first+count` and stops at the first failure, reporting the seed.
//!
//! What it cannot see: every access is sequentially consistent (one thread
//! at a time on real atomics), so, like loom and unlike the litmus checker,
//! it never reorders; weakened orderings are invisible to it. It catches
//! interleaving bugs: the refuted `UnlazyPlain::ReadUsers`, a skipped
//! fix-up, `rcu`'s idle-is-quiescent use-after-free.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::Instant;

use lazymm::platform::{CpuId, Line, LineKind, Platform};
use lazymm::schemes::{self, Scheme, SchemeKind, SchemeOptions};
use lazymm::{Arch, Machine, MachineConfig, MmRef, Next, Violation};

use crate::sched::Rng;

// Ordering: the explorer's own bookkeeping (the baton, the barrier counters,
// the abort flag) uses SeqCst and is never part of the algorithm under test;
// the algorithm's accesses keep the orderings the scheme asked for, and since
// exactly one thread runs at a time every execution is sequentially
// consistent anyway (which is why weakened orderings are invisible here:
// tests/loom_*.rs and the litmus checker decide those).

// ----------------------------------------------------------------------
// Fault points
// ----------------------------------------------------------------------

/// The named fault-injection points: a delay (a very likely preemption)
/// before or after each access to a word of that kind, and IPIs taken at
/// every interrupt point.
pub const FAULT_POINTS: [&str; 11] = [
    "before-slot",
    "after-slot",
    "before-count",
    "after-count",
    "before-users",
    "after-users",
    "before-cpumask",
    "after-cpumask",
    "before-ipi",
    "after-ipi",
    "ipi-every-point",
];

fn kind_index(k: LineKind) -> Option<usize> {
    match k {
        LineKind::CpuSlot => Some(0),
        LineKind::MmCount => Some(1),
        LineKind::MmUsers => Some(2),
        LineKind::MmCpumask => Some(3),
        LineKind::CpuIpi => Some(4),
        LineKind::MmContext | LineKind::Bookkeeping => None,
    }
}

const KINDS: [LineKind; 7] = [
    LineKind::MmCount,
    LineKind::MmUsers,
    LineKind::MmContext,
    LineKind::MmCpumask,
    LineKind::CpuSlot,
    LineKind::CpuIpi,
    LineKind::Bookkeeping,
];

/// The fault points a schedule enables (bit i = `FAULT_POINTS[i]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults(pub u32);

impl Faults {
    /// Is `name` enabled?
    pub fn has(self, name: &str) -> bool {
        FAULT_POINTS
            .iter()
            .position(|p| *p == name)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }
    fn delay(self, kind: LineKind, after: bool) -> bool {
        kind_index(kind).is_some_and(|k| self.0 & (1 << (2 * k + usize::from(after))) != 0)
    }
    /// The enabled points, by name.
    pub fn names(self) -> Vec<&'static str> {
        FAULT_POINTS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, p)| *p)
            .collect()
    }
}

// ----------------------------------------------------------------------
// The baton
// ----------------------------------------------------------------------

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// One traced access (replay only).
#[derive(Clone, Debug)]
pub struct Event {
    /// The CPU.
    pub cpu: CpuId,
    /// What happened.
    pub what: String,
}

struct BatonState {
    rng: Rng,
    finished: Vec<bool>,
    /// Waiting at the end-of-script barrier (still serving IPIs).
    idle: Vec<bool>,
    running: usize,
    steps: u64,
    trace: Option<Vec<Event>>,
    /// The trace stops at the first ledger violation (so a replay shows the
    /// interleaving that caused it, not the end of the run).
    frozen: bool,
}

/// Passes the right to run between the CPU threads of one schedule.
struct Baton {
    n: usize,
    turn: AtomicUsize,
    threads: Vec<Thread>,
    main: Thread,
    state: Mutex<BatonState>,
    faults: Faults,
    /// Probability (per 1024) of a switch at an ordinary point.
    p_switch: u64,
    step_limit: u64,
    aborted: AtomicBool,
    done: AtomicBool,
    /// The schedule's job, for the trace's violation probe.
    job: std::sync::OnceLock<std::sync::Weak<Job>>,
}

const NOBODY: usize = usize::MAX;

impl Baton {
    fn lock(&self) -> std::sync::MutexGuard<'_, BatonState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the baton from `me` to `next` and waits for it to come back.
    fn hand_over(&self, me: usize, next: usize) {
        if next == me {
            return;
        }
        self.turn.store(next, Ordering::SeqCst);
        self.threads[next].unpark();
        self.wait_turn(me);
        if self.aborted.load(Ordering::SeqCst) {
            std::panic::panic_any(Aborted);
        }
    }

    /// Parks until it is `me`'s turn or the schedule is aborted.
    fn wait_turn(&self, me: usize) {
        while self.turn.load(Ordering::SeqCst) != me && !self.aborted.load(Ordering::SeqCst) {
            thread::park();
        }
    }

    /// Ends the schedule early: every thread wakes and unwinds.
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        for t in &self.threads {
            t.unpark();
        }
    }

    /// A scheduling point of thread `me`: `bias` is the switch probability
    /// per 1024 (`1024`: always switch if anyone else can run).
    fn point(&self, me: usize, bias: u64, what: impl FnOnce() -> String) {
        self.point_from(me, bias, false, what)
    }

    /// A scheduling point; an `idle` thread (waiting at the barrier) hands
    /// over to a busy one when there is one (three times in four), so that
    /// the stragglers run instead of the waiters passing the baton around.
    fn point_from(&self, me: usize, bias: u64, idle: bool, what: impl FnOnce() -> String) {
        if self.aborted.load(Ordering::SeqCst) {
            std::panic::panic_any(Aborted);
        }
        let next = {
            let mut st = self.lock();
            if st.trace.is_some() && !st.frozen {
                let bad = self.job.get().and_then(|j| j.upgrade()).is_some_and(|j| {
                    let c = j.m.ledger.counts();
                    c.uaf + c.double_free > 0
                });
                if bad {
                    st.frozen = true;
                } else if let Some(t) = st.trace.as_mut() {
                    let w = what();
                    if !w.is_empty() {
                        t.push(Event { cpu: me, what: w });
                    }
                }
            }
            st.steps += 1;
            if st.steps > self.step_limit {
                drop(st);
                self.abort();
                std::panic::panic_any(Aborted);
            }
            st.idle[me] = idle;
            if st.rng.below(1024) >= bias {
                me
            } else {
                let busy: Vec<usize> = if idle && !st.rng.chance(1, 4) {
                    (0..self.n)
                        .filter(|&c| c != me && !st.finished[c] && !st.idle[c])
                        .collect()
                } else {
                    Vec::new()
                };
                let others: Vec<usize> = if busy.is_empty() {
                    (0..self.n)
                        .filter(|&c| c != me && !st.finished[c])
                        .collect()
                } else {
                    busy
                };
                if others.is_empty() {
                    me
                } else {
                    others[st.rng.below(others.len() as u64) as usize]
                }
            }
        };
        if next != me {
            self.lock().running = next;
            self.hand_over(me, next);
        }
    }

    /// Thread `me` has finished its script: pass the baton for good.
    fn finish(&self, me: usize) {
        let next = {
            let mut st = self.lock();
            st.finished[me] = true;
            let others: Vec<usize> = (0..self.n).filter(|&c| !st.finished[c]).collect();
            if others.is_empty() {
                NOBODY
            } else if self.aborted.load(Ordering::SeqCst) {
                // Everyone is awake and unwinding: nothing to hand over.
                return;
            } else {
                let n = others[st.rng.below(others.len() as u64) as usize];
                st.running = n;
                n
            }
        };
        if next == NOBODY {
            self.done.store(true, Ordering::SeqCst);
            self.main.unpark();
        } else {
            self.turn.store(next, Ordering::SeqCst);
            self.threads[next].unpark();
        }
    }
}

/// The panic payload of an aborted schedule (step limit).
struct Aborted;

// ----------------------------------------------------------------------
// The platform
// ----------------------------------------------------------------------

/// An atomic word that knows its kind (for the fault points).
pub struct EAtomic {
    a: AtomicU64,
    kind: LineKind,
}

/// Real atomics, one thread at a time, a scheduling point around every
/// access to an algorithm word. See the module documentation.
pub struct ExplorePlatform {
    baton: Arc<Baton>,
}

impl ExplorePlatform {
    #[inline]
    fn around<R>(&self, cpu: CpuId, a: &EAtomic, op: &'static str, f: impl FnOnce() -> R) -> R
    where
        R: core::fmt::Debug,
    {
        if kind_index(a.kind).is_none() {
            return f();
        }
        let b = &self.baton;
        // Mailbox polls are points only when an IPI fault is enabled: an
        // interrupt point polls every sender's mailbox, and those loads
        // would otherwise dominate the schedule.
        if a.kind == LineKind::CpuIpi && !(b.faults.has("before-ipi") || b.faults.has("after-ipi"))
        {
            return f();
        }
        let me = CURRENT.with(|c| c.get());
        let Some(me) = me else { return f() };
        debug_assert_eq!(me, cpu, "a CPU's access made by another CPU's thread");
        let before = if b.faults.delay(a.kind, false) {
            900
        } else {
            b.p_switch
        };
        b.point(me, before, || format!("{op} {:?} ...", a.kind));
        let r = f();
        let after = if b.faults.delay(a.kind, true) {
            900
        } else {
            b.p_switch / 2
        };
        b.point(me, after, || format!("  ... {op} {:?} -> {r:?}", a.kind));
        r
    }
}

impl ExplorePlatform {
    /// A wait at the end-of-script barrier: let a busy CPU run.
    fn idle_spin(&self, cpu: CpuId) {
        self.baton.point_from(cpu, 1024, true, String::new);
    }

    /// Records a kernel operation in the replay trace (not a scheduling
    /// point).
    pub fn note(&self, cpu: CpuId, what: impl FnOnce() -> String) {
        let mut st = self.baton.lock();
        if !st.frozen {
            if let Some(t) = st.trace.as_mut() {
                t.push(Event {
                    cpu,
                    what: format!("== {}", what()),
                });
            }
        }
    }
}

impl Platform for ExplorePlatform {
    type Atomic = EAtomic;
    const IMMEDIATE_IPI: bool = false;

    fn line(&self, kind: LineKind) -> Line {
        Line(KINDS.iter().position(|k| *k == kind).unwrap_or(6) as u32)
    }
    fn atomic(&self, value: u64, line: Line) -> EAtomic {
        EAtomic {
            a: AtomicU64::new(value),
            kind: KINDS[line.0 as usize],
        }
    }
    fn reinit(&self, a: &EAtomic, value: u64) {
        a.a.store(value, Ordering::SeqCst)
    }
    fn load(&self, cpu: CpuId, a: &EAtomic, o: Ordering) -> u64 {
        self.around(cpu, a, "load", || a.a.load(o))
    }
    fn store(&self, cpu: CpuId, a: &EAtomic, v: u64, o: Ordering) {
        self.around(cpu, a, "store", || a.a.store(v, o))
    }
    fn swap(&self, cpu: CpuId, a: &EAtomic, v: u64, o: Ordering) -> u64 {
        self.around(cpu, a, "xchg", || a.a.swap(v, o))
    }
    fn compare_exchange(
        &self,
        cpu: CpuId,
        a: &EAtomic,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.around(cpu, a, "cmpxchg", || {
            a.a.compare_exchange(current, new, success, failure)
        })
    }
    fn fetch_add(&self, cpu: CpuId, a: &EAtomic, v: u64, o: Ordering) -> u64 {
        self.around(cpu, a, "fetch_add", || a.a.fetch_add(v, o))
    }
    fn fetch_sub(&self, cpu: CpuId, a: &EAtomic, v: u64, o: Ordering) -> u64 {
        self.around(cpu, a, "fetch_sub", || a.a.fetch_sub(v, o))
    }
    fn fetch_or(&self, cpu: CpuId, a: &EAtomic, v: u64, o: Ordering) -> u64 {
        self.around(cpu, a, "fetch_or", || a.a.fetch_or(v, o))
    }
    fn fetch_and(&self, cpu: CpuId, a: &EAtomic, v: u64, o: Ordering) -> u64 {
        self.around(cpu, a, "fetch_and", || a.a.fetch_and(v, o))
    }
    fn fence(&self, _cpu: CpuId, o: Ordering) {
        std::sync::atomic::fence(o)
    }
    fn spin(&self) {
        // A wait loop: always let someone else run.
        if let Some(me) = CURRENT.with(|c| c.get()) {
            self.baton.point(me, 1024, String::new);
        } else {
            thread::yield_now();
        }
    }
    type Payload = ();
    fn payload(&self) {}
    fn payload_read(&self, _cpu: CpuId, _x: &()) {}
    fn payload_write(&self, _cpu: CpuId, _x: &()) {}
}

// ----------------------------------------------------------------------
// Configuration, scripts, results
// ----------------------------------------------------------------------

/// Builds the scheme a schedule runs (tests pass deliberately broken ones).
pub type MakeScheme = fn(SchemeKind, &SchemeOptions) -> Box<dyn Scheme<ExplorePlatform>>;

/// The production scheme.
pub fn production(kind: SchemeKind, opts: &SchemeOptions) -> Box<dyn Scheme<ExplorePlatform>> {
    schemes::build::<ExplorePlatform>(kind, opts).expect("scheme builds")
}

/// The profiles explored by default: all five. (x86 was left out while
/// the runtime updated `active_mm` after `switch_mm_irqs_off`, a window this
/// explorer found; the runtime now changes it first, as the kernel changes
/// `current`; `tests/explore.rs::x86_active_mm_window` is the regression
/// test.)
pub const DEFAULT_ARCHES: [Arch; 5] = [
    Arch::X86,
    Arch::X86LazyCpumask,
    Arch::Arm64,
    Arch::PowerpcRadix,
    Arch::PowerpcHash,
];

/// What to explore.
#[derive(Clone, Copy)]
pub struct ExploreConfig {
    /// Scheme.
    pub scheme: SchemeKind,
    /// Options (variants; `weaken` is accepted but invisible to an SC
    /// explorer).
    pub options: SchemeOptions,
    /// Profiles: each schedule picks one.
    pub arches: &'static [Arch],
    /// CPUs: each schedule picks a count in this range.
    pub min_cpus: usize,
    /// Upper bound of the CPU count (at most 16).
    pub max_cpus: usize,
    /// Operations per CPU script.
    pub steps_per_cpu: u32,
    /// Processes per schedule.
    pub procs: usize,
    /// Switch probability per 1024 at an ordinary point.
    pub p_switch: u64,
    /// How the scheme is built.
    pub make: MakeScheme,
}

impl ExploreConfig {
    /// The default exploration of `scheme`: 4-16 CPUs, every profile of
    /// [`DEFAULT_ARCHES`].
    pub fn new(scheme: SchemeKind) -> Self {
        ExploreConfig {
            scheme,
            options: SchemeOptions::default(),
            arches: &DEFAULT_ARCHES,
            min_cpus: 4,
            max_cpus: 16,
            steps_per_cpu: 12,
            procs: 6,
            p_switch: 96,
            make: production,
        }
    }
}

/// The outcome of one schedule.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// CPUs.
    pub cpus: usize,
    /// Profile.
    pub arch: Arch,
    /// Fault points enabled.
    pub faults: Faults,
    /// `None` if clean; otherwise what went wrong.
    pub failure: Option<String>,
    /// Ledger violations (the first few).
    pub violations: Vec<Violation>,
    /// Scheduling points passed.
    pub steps: u64,
    /// The interleaving (replay only): the last events before the end.
    pub trace: Vec<Event>,
}

impl SeedOutcome {
    /// Clean?
    pub fn clean(&self) -> bool {
        self.failure.is_none()
    }
}

impl core::fmt::Display for SeedOutcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "seed {} ({} CPUs, {}, faults {:?}, {} steps): {}",
            self.seed,
            self.cpus,
            self.arch,
            self.faults.names(),
            self.steps,
            self.failure.as_deref().unwrap_or("clean")
        )
    }
}

struct Task {
    mm: MmRef,
}

struct Job {
    m: Machine<ExplorePlatform>,
    pool: Mutex<Vec<Task>>,
    spawned: AtomicUsize,
    quiesced: AtomicUsize,
    cfg: ExploreConfig,
    seed: u64,
    cpus: usize,
    ipi_every_point: bool,
    panics: Mutex<Vec<String>>,
}

fn pop(pool: &Mutex<Vec<Task>>) -> Option<Task> {
    pool.lock().unwrap_or_else(|e| e.into_inner()).pop()
}

fn push(pool: &Mutex<Vec<Task>>, t: Task) {
    pool.lock().unwrap_or_else(|e| e.into_inner()).push(t)
}

/// The script of CPU `c` (the `threads` driver's loop, plus exec,
/// `kthread_use_mm`, hotplug).
fn script(j: &Job, c: usize) {
    let m = &j.m;
    let mut rng = Rng::new(j.seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ (c as u64 + 1));
    let irq = |rng: &mut Rng| {
        if j.ipi_every_point || rng.chance(1, 4) {
            m.interrupt_point(c);
        }
    };
    let mut cur: Option<Task> = None;
    let mut offline = false;
    for _ in 0..j.cfg.steps_per_cpu {
        irq(&mut rng);
        if offline {
            if rng.chance(1, 2) {
                m.cpu_online(c);
                offline = false;
            }
            continue;
        }
        match cur.take() {
            None => match pop(&j.pool) {
                Some(t) => {
                    m.p.note(c, || format!("switch to a task of mm{}", t.mm.idx));
                    m.switch_to(c, Next::User(t.mm));
                    cur = Some(t);
                }
                None => {
                    if j.spawned.fetch_add(1, Ordering::SeqCst) < j.cfg.procs {
                        let Ok(mm) = m.mm_alloc(c) else { continue };
                        m.p.note(c, || format!("fork: new mm{} (3 tasks)", mm.idx));
                        for _ in 1..3 {
                            m.mmget(c, mm);
                            push(&j.pool, Task { mm });
                        }
                        m.switch_to(c, Next::User(mm));
                        cur = Some(Task { mm });
                    } else if rng.chance(1, 8) && c != 0 {
                        m.p.note(c, || "cpu offline".into());
                        m.cpu_offline(c);
                        offline = true;
                    }
                }
            },
            Some(t) => match rng.below(16) {
                0 | 1 => {
                    // exit
                    m.p.note(c, || format!("task of mm{} exits", t.mm.idx));
                    m.exit_mm(c);
                    m.switch_to(c, Next::Kernel);
                }
                2 => {
                    // exec into a fresh mm
                    match m.mm_alloc(c) {
                        Ok(new) => {
                            m.p.note(c, || format!("exec: mm{} -> mm{}", t.mm.idx, new.idx));
                            m.exec(c, new);
                            cur = Some(Task { mm: new });
                        }
                        Err(_) => cur = Some(t),
                    }
                }
                3 => {
                    // a kernel thread borrows the mm (kthread_use_mm) while
                    // the task sleeps: it holds a users reference (mmget
                    // by the task, as mmget_not_zero would succeed)
                    m.p.note(c, || format!("kthread_use_mm(mm{})", t.mm.idx));
                    m.mmget(c, t.mm);
                    m.switch_to(c, Next::Kernel);
                    push(&j.pool, Task { mm: t.mm });
                    m.kthread_use_mm(c, t.mm);
                    irq(&mut rng);
                    m.kthread_unuse_mm(c);
                    m.mmput(c, t.mm);
                }
                4..=6 => {
                    // user -> user
                    match pop(&j.pool) {
                        Some(o) => {
                            m.p.note(c, || format!("switch mm{} -> mm{}", t.mm.idx, o.mm.idx));
                            m.switch_to(c, Next::User(o.mm));
                            push(&j.pool, t);
                            cur = Some(o);
                        }
                        None => cur = Some(t),
                    }
                }
                7 => {
                    // back to the same mm after a short sleep
                    m.p.note(c, || format!("mm{} task sleeps, wakes here", t.mm.idx));
                    m.switch_to(c, Next::Kernel);
                    irq(&mut rng);
                    m.switch_to(c, Next::User(t.mm));
                    cur = Some(t);
                }
                _ => {
                    // block: to idle (lazy), the task back to the pool
                    m.p.note(c, || format!("task of mm{} blocks (lazy)", t.mm.idx));
                    m.switch_to(c, Next::Kernel);
                    push(&j.pool, t);
                }
            },
        }
    }
    if offline {
        m.cpu_online(c);
    }
    // Drain: every task this CPU can get exits here.
    if cur.take().is_some() {
        m.exit_mm(c);
        m.switch_to(c, Next::Kernel);
    }
    while let Some(t) = pop(&j.pool) {
        m.p.note(c, || {
            format!("drain: task of mm{} runs and exits", t.mm.idx)
        });
        m.switch_to(c, Next::User(t.mm));
        m.exit_mm(c);
        m.switch_to(c, Next::Kernel);
        m.interrupt_point(c);
    }
    // Everyone's tasks are gone before anyone quiesces (a teardown may
    // still hand a reference to this CPU).
    j.quiesced.fetch_add(1, Ordering::SeqCst);
    while j.quiesced.load(Ordering::SeqCst) < j.cpus {
        m.interrupt_point(c);
        m.p.idle_spin(c);
    }
    m.p.note(c, || "quiesce".into());
    m.quiesce_cpu(c);
    j.quiesced.fetch_add(1, Ordering::SeqCst);
    while j.quiesced.load(Ordering::SeqCst) < 2 * j.cpus {
        m.interrupt_point(c);
        m.p.idle_spin(c);
    }
}

// ----------------------------------------------------------------------
// The worker pool and the driver
// ----------------------------------------------------------------------

type Work = Arc<(Arc<Baton>, Arc<Job>)>;

struct Pool {
    slots: Vec<Arc<Mutex<Option<Work>>>>,
    handles: Vec<thread::JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
}

/// Panics of the CPU threads are the explorer's results (reported with the
/// seed), not noise: keep them off stderr.
fn quiet_worker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = thread::current()
                .name()
                .is_some_and(|n| n.starts_with("explore-cpu"));
            if !quiet {
                default(info)
            }
        }));
    });
}

impl Pool {
    fn new(n: usize) -> Self {
        quiet_worker_panics();
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut slots = Vec::new();
        let mut handles = Vec::new();
        for c in 0..n {
            let slot: Arc<Mutex<Option<Work>>> = Arc::new(Mutex::new(None));
            let (s, sd) = (slot.clone(), shutdown.clone());
            handles.push(
                thread::Builder::new()
                    .name(format!("explore-cpu{c}"))
                    .spawn(move || worker(c, s, sd))
                    .expect("spawn"),
            );
            slots.push(slot);
        }
        Pool {
            slots,
            handles,
            shutdown,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for h in &self.handles {
            h.thread().unpark();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(c: usize, slot: Arc<Mutex<Option<Work>>>, shutdown: Arc<AtomicBool>) {
    CURRENT.with(|x| x.set(Some(c)));
    loop {
        let work = loop {
            if shutdown.load(Ordering::SeqCst) {
                return;
            }
            let w = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            match w {
                Some(w) => break w,
                None => thread::park(),
            }
        };
        let (baton, job) = (&work.0, &work.1);
        baton.wait_turn(c);
        let r = if baton.aborted.load(Ordering::SeqCst) {
            Ok(())
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| script(job, c)))
        };
        if let Err(p) = r {
            if p.downcast_ref::<Aborted>().is_none() {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                job.panics
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("cpu{c}: {msg}"));
            }
            // Wake everyone: the schedule is over.
            baton.abort();
        }
        baton.finish(c);
    }
}

/// An explorer: a pool of CPU threads reused across schedules.
pub struct Explorer {
    cfg: ExploreConfig,
    pool: Pool,
}

impl Explorer {
    /// A new explorer for `cfg`.
    pub fn new(cfg: ExploreConfig) -> Self {
        assert!(cfg.min_cpus >= 1 && cfg.min_cpus <= cfg.max_cpus && cfg.max_cpus <= 16);
        Explorer {
            cfg,
            pool: Pool::new(cfg.max_cpus),
        }
    }

    /// Runs (or replays) the schedule of `seed`; with `trace`, records the
    /// interleaving (the last `trace` events are kept).
    pub fn run_seed(&self, seed: u64, trace: usize) -> SeedOutcome {
        let cfg = self.cfg;
        let mut rng = Rng::new(seed);
        let cpus = cfg.min_cpus + rng.below((cfg.max_cpus - cfg.min_cpus + 1) as u64) as usize;
        let arch = cfg.arches[rng.below(cfg.arches.len() as u64) as usize];
        // Two or three fault points per schedule (none in one of eight).
        let mut faults = 0u32;
        if !rng.chance(1, 8) {
            for _ in 0..2 + rng.below(2) {
                faults |= 1 << rng.below(FAULT_POINTS.len() as u64);
            }
        }
        let faults = Faults(faults);
        let baton = Arc::new(Baton {
            n: cpus,
            turn: AtomicUsize::new(NOBODY),
            threads: self.pool.handles[..cpus]
                .iter()
                .map(|h| h.thread().clone())
                .collect(),
            main: thread::current(),
            state: Mutex::new(BatonState {
                rng: Rng::new(seed ^ 0xa076_1d64_78bd_642f),
                finished: vec![false; cpus],
                idle: vec![false; cpus],
                running: NOBODY,
                steps: 0,
                trace: (trace > 0).then(Vec::new),
                frozen: false,
            }),
            faults,
            p_switch: cfg.p_switch,
            step_limit: 200_000,
            aborted: AtomicBool::new(false),
            done: AtomicBool::new(false),
            job: std::sync::OnceLock::new(),
        });
        let p = ExplorePlatform {
            baton: baton.clone(),
        };
        let mut mc = MachineConfig::new(cpus, arch, cfg.scheme);
        mc.options = cfg.options;
        mc.max_mms = 4 * cfg.procs + 4 * cpus * cfg.steps_per_cpu as usize + 16;
        let scheme = (cfg.make)(cfg.scheme, &cfg.options);
        let m = Machine::with_scheme(p, mc, scheme).expect("machine");
        let job = Arc::new(Job {
            m,
            pool: Mutex::new(Vec::new()),
            spawned: AtomicUsize::new(0),
            quiesced: AtomicUsize::new(0),
            cfg,
            seed,
            cpus,
            ipi_every_point: faults.has("ipi-every-point"),
            panics: Mutex::new(Vec::new()),
        });
        let _ = baton.job.set(Arc::downgrade(&job));
        let work: Work = Arc::new((baton.clone(), job.clone()));
        for c in 0..cpus {
            *self.pool.slots[c].lock().unwrap_or_else(|e| e.into_inner()) = Some(work.clone());
            self.pool.handles[c].thread().unpark();
        }
        let first = baton.lock().rng.below(cpus as u64) as usize;
        baton.lock().running = first;
        baton.turn.store(first, Ordering::SeqCst);
        baton.threads[first].unpark();
        while !baton.done.load(Ordering::SeqCst) {
            thread::park();
        }
        let (steps, tr) = {
            let mut st = baton.lock();
            (st.steps, st.trace.take().unwrap_or_default())
        };
        let panics = job.panics.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let aborted = baton.aborted.load(Ordering::SeqCst);
        let mut failure = None;
        let mut violations = Vec::new();
        if !panics.is_empty() {
            failure = Some(format!("driver panic: {}", panics.join("; ")));
        } else if aborted {
            failure = Some(format!("livelock: step limit {} reached", baton.step_limit));
        } else {
            let st = job.m.finish();
            let c = st.ledger;
            if c.uaf + c.double_free + c.leaked != 0 {
                violations = job.m.ledger.violations();
                failure = Some(format!(
                    "{} use-after-free, {} double free, {} leaked: {:?}",
                    c.uaf, c.double_free, c.leaked, violations
                ));
            }
        }
        let keep = tr.len().saturating_sub(trace);
        SeedOutcome {
            seed,
            cpus,
            arch,
            faults,
            failure,
            violations,
            steps,
            trace: tr[keep..].to_vec(),
        }
    }

    /// Runs seeds `first..first + count`; stops at the first failure and
    /// returns it (replay it with [`Explorer::run_seed`]).
    pub fn explore(&self, first: u64, count: u64) -> ExploreReport {
        let start = Instant::now();
        let mut steps = 0;
        for seed in first..first + count {
            let o = self.run_seed(seed, 0);
            steps += o.steps;
            if !o.clean() {
                return ExploreReport {
                    schedules: seed - first + 1,
                    steps,
                    seconds: start.elapsed().as_secs_f64(),
                    failure: Some(o),
                };
            }
        }
        ExploreReport {
            schedules: count,
            steps,
            seconds: start.elapsed().as_secs_f64(),
            failure: None,
        }
    }
}

/// What [`Explorer::explore`] did.
#[derive(Clone, Debug)]
pub struct ExploreReport {
    /// Schedules run.
    pub schedules: u64,
    /// Scheduling points passed in total.
    pub steps: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The first failing schedule, if any.
    pub failure: Option<SeedOutcome>,
}

impl ExploreReport {
    /// Schedules per second.
    pub fn rate(&self) -> f64 {
        self.schedules as f64 / self.seconds.max(1e-9)
    }
}

/// Formats a replayed trace.
pub fn format_trace(t: &[Event]) -> String {
    t.iter()
        .map(|e| format!("  cpu{}: {}\n", e.cpu, e.what))
        .collect()
}
