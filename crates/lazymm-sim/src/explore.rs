//! Randomized schedule exploration at the granularity of single atomic
//! accesses, over the production schemes and the real [`Machine`].
//!
//! The single-threaded [`Sched`](crate::Sched) executor interleaves whole
//! kernel operations, so it cannot expose a race *inside* an operation (a
//! teardown scan interleaved with an unlazy). This explorer can:
//!
//! * every CPU is a stackful coroutine (on the explorer's own thread)
//!   running a seeded random script of kernel operations (switches, exits,
//!   exec, `kthread_use_mm`, hotplug, `munmap`, `mprotect`, idle entry,
//!   interrupt points) on a shared task
//!   pool, as [`crate::threads`] does with OS threads;
//! * the platform ([`ExplorePlatform`]) makes every access to an algorithm
//!   word (slots, `count`, `users`, `mm_cpumask`, IPI mailboxes) a
//!   scheduling point: exactly one CPU runs at a time and a seeded PRNG
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
//! A schedule is a pure function of `(config, seed)`: [`Explorer::run_seed`]
//! replays it exactly, with a trace of the interleaving.
//! [`Explorer::explore`] runs seeds `first..first+count` and stops at the
//! first failure, reporting the seed; [`explore_parallel`] splits schemes
//! and seed ranges over threads (one explorer per thread; a seed's outcome
//! does not depend on which thread ran it). `docs/explorer.md` has the
//! throughput and the long run.
//!
//! What it cannot see: every access is sequentially consistent (one thread
//! at a time on real atomics), so, like loom and unlike the litmus checker,
//! it never reorders; weakened orderings are invisible to it. It catches
//! interleaving bugs: the refuted `UnlazyPlain::ReadUsers`, a skipped
//! fix-up, `rcu`'s idle-is-quiescent use-after-free.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};

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
        // tlb_gen and x86's per-CPU TLB state are not scheduling points:
        // they decide TLB freshness, not the mm's lifetime (the stale-TLB
        // check of the ledger still runs).
        // lru_gen's "this mm ran" word: page reclaim's hint, not the mm's
        // lifetime either.
        LineKind::MmContext
        | LineKind::CpuTlbState
        | LineKind::MmLruGen
        | LineKind::Bookkeeping => None,
    }
}

const KINDS: [LineKind; 9] = [
    LineKind::MmCount,
    LineKind::MmUsers,
    LineKind::MmContext,
    LineKind::MmCpumask,
    LineKind::CpuSlot,
    LineKind::CpuIpi,
    LineKind::Bookkeeping,
    LineKind::CpuTlbState,
    LineKind::MmLruGen,
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
    finished: [bool; MAX_EXPLORE_CPUS],
    /// Waiting at the end-of-script barrier (still serving IPIs).
    idle: [bool; MAX_EXPLORE_CPUS],
    steps: u64,
    trace: Option<Vec<Event>>,
    /// The trace stops at the first ledger violation (so a replay shows the
    /// interleaving that caused it, not the end of the run).
    frozen: bool,
}

/// The most CPUs a schedule can have.
const MAX_EXPLORE_CPUS: usize = 16;

/// The suspend handle of one CPU's coroutine.
type CpuYielder = Yielder<(), ()>;

/// Passes the right to run between the CPU coroutines of one schedule.
///
/// Every CPU is a stackful coroutine on the explorer's own thread; handing
/// the baton to CPU `next` sets `turn` and suspends the running coroutine,
/// and the driver loop in [`Explorer::run_seed`] resumes `turn`. A handoff
/// is a user-space stack switch (tens of nanoseconds), where the first
/// version's one OS thread per CPU paid a futex wake and a context switch
/// (microseconds, 85% of the time in a profile). The decisions, and so
/// the schedules, are the same: one PRNG draws them in the same order.
struct Baton {
    n: usize,
    /// Who runs next (set by the running CPU before it suspends).
    turn: Cell<usize>,
    /// The CPU whose coroutine is running (`None`: the driver itself, e.g.
    /// while building the machine or at the final `finish`).
    current: Cell<Option<usize>>,
    state: RefCell<BatonState>,
    faults: Faults,
    /// `before-ipi` or `after-ipi` is enabled (mailbox polls are points).
    ipi_points: bool,
    /// Probability (per 1024) of a switch at an ordinary point.
    p_switch: u64,
    step_limit: u64,
    aborted: Cell<bool>,
    done: Cell<bool>,
    /// Each CPU coroutine's yielder, set when it starts.
    yielders: [Cell<*const CpuYielder>; MAX_EXPLORE_CPUS],
    /// The schedule's job, for the trace's violation probe.
    job: OnceCell<Weak<Job>>,
}

const NOBODY: usize = usize::MAX;

impl Baton {
    fn lock(&self) -> std::cell::RefMut<'_, BatonState> {
        self.state.borrow_mut()
    }

    /// Hands the baton from `me` to `next` and waits for it to come back.
    fn hand_over(&self, me: usize, next: usize) {
        if next == me {
            return;
        }
        self.turn.set(next);
        let y = self.yielders[me].get();
        debug_assert!(!y.is_null());
        // SAFETY: `yielders[me]` was set by CPU `me`'s coroutine body to its
        // own `&Yielder` when it started, and `hand_over(me, ..)` is only
        // called from inside that body (`me` is `current`, checked by the
        // callers), so the yielder is alive and belongs to the running
        // coroutine.
        unsafe { (*y).suspend(()) };
        if self.aborted.get() {
            std::panic::panic_any(Aborted);
        }
    }

    /// Ends the schedule early: every CPU unwinds when next resumed.
    fn abort(&self) {
        self.aborted.set(true);
    }

    /// A scheduling point of CPU `me`: `bias` is the switch probability
    /// per 1024 (`1024`: always switch if anyone else can run).
    #[inline]
    fn point(&self, me: usize, bias: u64, what: impl FnOnce() -> String) {
        self.point_from(me, bias, false, what)
    }

    /// A scheduling point; an `idle` CPU (waiting at the barrier) hands
    /// over to a busy one when there is one (three times in four), so that
    /// the stragglers run instead of the waiters passing the baton around.
    fn point_from(&self, me: usize, bias: u64, idle: bool, what: impl FnOnce() -> String) {
        if self.aborted.get() {
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
                // The candidates, in CPU order (the draw below indexes
                // them, so the order is part of the schedule).
                let mut cand = [0usize; MAX_EXPLORE_CPUS];
                let mut k = 0;
                if idle && !st.rng.chance(1, 4) {
                    for c in 0..self.n {
                        if c != me && !st.finished[c] && !st.idle[c] {
                            cand[k] = c;
                            k += 1;
                        }
                    }
                }
                if k == 0 {
                    for c in 0..self.n {
                        if c != me && !st.finished[c] {
                            cand[k] = c;
                            k += 1;
                        }
                    }
                }
                if k == 0 {
                    me
                } else {
                    cand[st.rng.below(k as u64) as usize]
                }
            }
        };
        self.hand_over(me, next);
    }

    /// CPU `me` has finished its script: pass the baton for good.
    fn finish(&self, me: usize) {
        let mut st = self.lock();
        st.finished[me] = true;
        let mut others = [0usize; MAX_EXPLORE_CPUS];
        let mut k = 0;
        for c in 0..self.n {
            if !st.finished[c] {
                others[k] = c;
                k += 1;
            }
        }
        if k == 0 {
            self.done.set(true);
        } else if !self.aborted.get() {
            self.turn.set(others[st.rng.below(k as u64) as usize]);
        }
        // Aborted: every CPU unwinds in turn, nothing to hand over.
    }
}

/// The panic payload of an aborted schedule (step limit).
struct Aborted;

thread_local! {
    /// Set while a CPU coroutine runs: its panics are the explorer's
    /// results (reported with the seed), not noise for stderr.
    static IN_CPU: Cell<bool> = const { Cell::new(false) };
}

/// Keeps the CPU coroutines' panics off stderr (they are caught and
/// reported as the schedule's failure).
fn quiet_cpu_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CPU.with(|q| q.get()) {
                default(info)
            }
        }));
    });
}

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
    baton: Rc<Baton>,
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
        if a.kind == LineKind::CpuIpi && !b.ipi_points {
            return f();
        }
        let Some(me) = b.current.get() else {
            return f();
        };
        debug_assert_eq!(me, cpu, "a CPU's access made by another CPU's coroutine");
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
        if let Some(me) = self.baton.current.get() {
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
    /// Scheduling points after which a schedule is a livelock.
    pub step_limit: u64,
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
            step_limit: 200_000,
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
/// `kthread_use_mm`, hotplug, `munmap` / `mprotect` flushes and idle
/// entry).
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
                    } else if m.pending_async_mmputs() > 0 && rng.chance(1, 2) {
                        // A kworker runs the pool's mmput_async_fn works.
                        m.switch_to(c, Next::Kthread);
                        let n = m.run_async_mmput(c);
                        m.p.note(c, || format!("kworker: {n} mmput_async_fn"));
                        m.switch_to(c, Next::Kernel);
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
                    m.switch_to(c, Next::Kthread);
                    push(&j.pool, Task { mm: t.mm });
                    m.kthread_use_mm(c, t.mm);
                    irq(&mut rng);
                    m.kthread_unuse_mm(c);
                    // kernel/fork.c mmput_async (binder, the bpf task
                    // iterator): a last reference's __mmput runs later, on
                    // this CPU's kworker, or another CPU's if this one goes
                    // offline first.
                    m.mmput_async(c, t.mm);
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
                8 => {
                    // munmap: a flush that freed page tables (reaches lazy
                    // CPUs; radix may trim the mask), issue 9
                    m.p.note(c, || format!("munmap in mm{}", t.mm.idx));
                    m.munmap(c);
                    cur = Some(t);
                }
                9 => {
                    // mprotect: a flush x86 skips on lazy CPUs
                    m.p.note(c, || format!("mprotect in mm{}", t.mm.idx));
                    m.mprotect(c);
                    cur = Some(t);
                }
                _ => {
                    // block: to idle (lazy), the task back to the pool;
                    // the idle task may enter a deep idle state (leave_mm
                    // with the deep-idle option, else nothing)
                    m.p.note(c, || format!("task of mm{} blocks (lazy)", t.mm.idx));
                    m.switch_to(c, Next::Kernel);
                    push(&j.pool, t);
                    m.cpuidle_enter(c);
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
    // The kworker drains this CPU's mmput_async works.
    if m.pending_async_mmputs() > 0 {
        m.switch_to(c, Next::Kthread);
        m.run_async_mmput(c);
        m.switch_to(c, Next::Kernel);
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
// The driver
// ----------------------------------------------------------------------

/// Bytes of stack per CPU coroutine (mapped lazily; reused across
/// schedules).
const CPU_STACK_BYTES: usize = 1 << 20;

/// The body of CPU `c`'s coroutine: its script, its panics caught and
/// recorded, then the baton passed on for good.
fn cpu_main(y: &CpuYielder, baton: &Baton, job: &Job, c: usize) {
    baton.yielders[c].set(y as *const CpuYielder);
    let r = if baton.aborted.get() {
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
        // Every other CPU unwinds when next resumed: the schedule is over.
        baton.abort();
    }
    baton.finish(c);
    baton.yielders[c].set(std::ptr::null());
}

/// An explorer: runs schedules of one configuration on the calling thread
/// (the CPU coroutines' stacks are reused across schedules). It is not
/// `Sync`; run several (one per thread) to use several cores, as
/// [`explore_parallel`] does.
pub struct Explorer {
    cfg: ExploreConfig,
    stacks: RefCell<Vec<DefaultStack>>,
}

impl Explorer {
    /// A new explorer for `cfg`.
    pub fn new(cfg: ExploreConfig) -> Self {
        assert!(
            cfg.min_cpus >= 1 && cfg.min_cpus <= cfg.max_cpus && cfg.max_cpus <= MAX_EXPLORE_CPUS
        );
        quiet_cpu_panics();
        Explorer {
            cfg,
            stacks: RefCell::new(Vec::new()),
        }
    }

    fn stack(&self) -> DefaultStack {
        self.stacks
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| DefaultStack::new(CPU_STACK_BYTES).expect("a coroutine stack"))
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
        let baton = Rc::new(Baton {
            n: cpus,
            turn: Cell::new(NOBODY),
            current: Cell::new(None),
            state: RefCell::new(BatonState {
                rng: Rng::new(seed ^ 0xa076_1d64_78bd_642f),
                finished: [false; MAX_EXPLORE_CPUS],
                idle: [false; MAX_EXPLORE_CPUS],
                steps: 0,
                trace: (trace > 0).then(Vec::new),
                frozen: false,
            }),
            faults,
            ipi_points: faults.has("before-ipi") || faults.has("after-ipi"),
            p_switch: cfg.p_switch,
            step_limit: cfg.step_limit,
            aborted: Cell::new(false),
            done: Cell::new(false),
            yielders: std::array::from_fn(|_| Cell::new(std::ptr::null())),
            job: OnceCell::new(),
        });
        let p = ExplorePlatform {
            baton: baton.clone(),
        };
        let mut mc = MachineConfig::new(cpus, arch, cfg.scheme);
        mc.options = cfg.options;
        mc.max_mms = 4 * cfg.procs + 4 * cpus * cfg.steps_per_cpu as usize + 16;
        let scheme = (cfg.make)(cfg.scheme, &cfg.options);
        let m = Machine::with_scheme(p, mc, scheme).expect("machine");
        let job = Rc::new(Job {
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
        let _ = baton.job.set(Rc::downgrade(&job));
        let mut coros: Vec<Coroutine<(), (), (), DefaultStack>> = (0..cpus)
            .map(|c| {
                let (b, j) = (baton.clone(), job.clone());
                Coroutine::with_stack(self.stack(), move |y: &CpuYielder, ()| {
                    cpu_main(y, &b, &j, c)
                })
            })
            .collect();
        let first = baton.lock().rng.below(cpus as u64) as usize;
        baton.turn.set(first);
        IN_CPU.with(|q| q.set(true));
        while !baton.done.get() {
            // Aborted: resume every unfinished CPU in turn so it unwinds.
            let next = if baton.aborted.get() {
                match coros.iter().position(|co| !co.done()) {
                    Some(c) => c,
                    None => break,
                }
            } else {
                baton.turn.get()
            };
            baton.current.set(Some(next));
            // A CPU's panics are caught inside its coroutine; one escaping
            // here is a bug of the explorer itself.
            let _ = coros[next].resume(());
            baton.current.set(None);
        }
        IN_CPU.with(|q| q.set(false));
        {
            let mut stacks = self.stacks.borrow_mut();
            for co in coros {
                stacks.push(co.into_stack());
            }
        }
        let (steps, tr) = {
            let mut st = baton.lock();
            (st.steps, st.trace.take().unwrap_or_default())
        };
        let panics = job.panics.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let aborted = baton.aborted.get();
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

/// Runs seeds `first..first + count` of every configuration in `cfgs`,
/// split into chunks of `chunk` seeds shared out over `threads` threads
/// (one [`Explorer`] per thread), so every core stays busy until the last
/// chunk. Returns one report per configuration, in `cfgs` order; `seconds`
/// there is thread-seconds (the sum over its chunks), so
/// [`ExploreReport::rate`] is schedules per second per thread.
///
/// Each schedule is a pure function of `(config, seed)`, so the outcome of
/// a seed does not depend on the thread that ran it. After a failure, the
/// configuration's chunks that start past the failing seed are skipped
/// and the lowest failing seed found is reported (a chunk already running
/// stops at its own first failure).
///
/// `progress` is called after every chunk with the configuration's index
/// and that chunk's report.
pub fn explore_parallel(
    cfgs: &[ExploreConfig],
    first: u64,
    count: u64,
    threads: usize,
    chunk: u64,
    progress: &(dyn Fn(usize, &ExploreReport) + Sync),
) -> Vec<ExploreReport> {
    let chunk = chunk.max(1);
    let chunks_per = count.div_ceil(chunk);
    let items: Vec<(usize, u64, u64)> = (0..cfgs.len())
        .flat_map(|i| {
            (0..chunks_per).map(move |k| {
                let start = first + k * chunk;
                (i, start, chunk.min(first + count - start))
            })
        })
        .collect();
    let next = AtomicUsize::new(0);
    let totals: Mutex<Vec<ExploreReport>> = Mutex::new(
        cfgs.iter()
            .map(|_| ExploreReport {
                schedules: 0,
                steps: 0,
                seconds: 0.0,
                failure: None,
            })
            .collect(),
    );
    let lock = || totals.lock().unwrap_or_else(|e| e.into_inner());
    thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut ex: Option<(usize, Explorer)> = None;
                while let Some(&(i, start, n)) = items.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let failed_before = lock()[i].failure.as_ref().is_some_and(|f| f.seed < start);
                    if failed_before {
                        continue;
                    }
                    if !matches!(&ex, Some((j, _)) if *j == i) {
                        ex = Some((i, Explorer::new(cfgs[i])));
                    }
                    let r = ex
                        .as_ref()
                        .map(|(_, e)| e.explore(start, n))
                        .expect("explorer");
                    progress(i, &r);
                    let mut t = lock();
                    let t = &mut t[i];
                    t.schedules += r.schedules;
                    t.steps += r.steps;
                    t.seconds += r.seconds;
                    if let Some(f) = r.failure {
                        if !matches!(&t.failure, Some(g) if g.seed <= f.seed) {
                            t.failure = Some(f);
                        }
                    }
                }
            });
        }
    });
    totals.into_inner().unwrap_or_else(|e| e.into_inner())
}
