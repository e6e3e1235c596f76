//! Verification harness for lazymm: loom models of every scheme, mutation
//! evidence, and the scenarios of docs/design.md section 7.
//!
//! * [`VLoom`]: the loom backend ([`lazymm::LoomPlatform`]) with a trace of
//!   every access on the side, so that a failing model prints the interleaving
//!   that broke it (the trimmed counterexample of docs/verification.md). The
//!   scheme code run is the production code: `lazymm::schemes::build`.
//! * [`Scenario`]: 2-3 CPUs (one loom thread each, CPU 0 on the model's main
//!   thread), 1-2 mms, a sequential setup and one script per CPU. The ledger
//!   is the assertion: after every CPU has quiesced, no use-after-free,
//!   double free or leak, in every explored interleaving. loom adds its own
//!   check: a free not ordered after a CPU's last use of the page tables is a
//!   data race on the mm's payload cell.
//! * [`builder`]: `loom::model::Builder` with the project's bounds: the
//!   preemption bound is 2 unless `LOOM_MAX_PREEMPTIONS` says otherwise
//!   (`LAZYMM_LOOM_EXHAUSTIVE=1`: no bound), so plain `cargo test --release`
//!   stays inside the CI budget.
//!
//! See `docs/verification.md` for what each test decides.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::sync::Arc;

use core::sync::atomic::Ordering;

use lazymm::platform::{CpuId, Line, LineKind, LoomPlatform, Platform};
use lazymm::schemes::{self, SchemeKind, SchemeOptions};
use lazymm::{Arch, Machine, MachineConfig, MmRef};

pub mod fixes;
pub mod scenarios;

// ----------------------------------------------------------------------
// The traced loom platform
// ----------------------------------------------------------------------

/// One access recorded by [`VLoom`].
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// The accessing CPU.
    pub cpu: CpuId,
    /// What it did.
    pub op: &'static str,
    /// The word's cache line kind.
    pub kind: LineKind,
    /// The object: the mm's arena index for mm fields (0 = `init_mm`), the
    /// CPU for per-CPU words.
    pub obj: u32,
    /// For per-CPU slots: 0 for `slot`, 1 for `slot2`.
    pub sub: u8,
    /// The value read (or the previous value of an RMW).
    pub old: u64,
    /// The value written (or `u64::MAX` for a load).
    pub new: u64,
    /// The ordering used.
    pub ord: Ordering,
}

thread_local! {
    static TRACE: RefCell<Vec<Access>> = const { RefCell::new(Vec::new()) };
    static TRACING: Cell<bool> = const { Cell::new(true) };
    static EXECUTIONS: Cell<u64> = const { Cell::new(0) };
    static IRQS_OFF_FREES: Cell<u64> = const { Cell::new(0) };
}

fn record(a: Access) {
    if TRACING.with(|t| t.get()) {
        TRACE.with(|t| t.borrow_mut().push(a));
    }
}

/// The trace of the current (or last) loom execution on this OS thread
/// (loom runs every model thread on the thread that called `check`).
pub fn last_trace() -> Vec<Access> {
    TRACE.with(|t| t.borrow().clone())
}

/// Formats a trace, keeping only the algorithm's words (slots, counters,
/// cpumask, IPI mailboxes): the trimmed interleaving.
pub fn format_trace(t: &[Access]) -> String {
    let mut s = String::new();
    for a in t {
        if matches!(a.kind, LineKind::Bookkeeping | LineKind::MmContext) {
            continue;
        }
        let o = a.obj;
        let what = match a.kind {
            LineKind::MmCount => format!("mm{o}.count"),
            LineKind::MmUsers => format!("mm{o}.users"),
            LineKind::MmCpumask => format!("mm{o}.cpumask"),
            LineKind::CpuSlot if a.sub == 1 => format!("slot2[cpu{o}]"),
            LineKind::CpuSlot => format!("slot[cpu{o}]"),
            LineKind::CpuIpi => format!("ipi-mailbox[cpu{o}]"),
            LineKind::CpuTlbState => format!("tlbstate[cpu{o}]"),
            LineKind::MmContext => format!("mm{o}.tlb_gen"),
            LineKind::MmLruGen => format!("mm{o}.lru_gen"),
            LineKind::Bookkeeping => "bookkeeping".into(),
        };
        let _ = match a.op {
            "load" => writeln!(
                s,
                "  cpu{}: load {what} -> {:#x} ({:?})",
                a.cpu, a.old, a.ord
            ),
            "store" => writeln!(
                s,
                "  cpu{}: store {what} = {:#x} ({:?})",
                a.cpu, a.new, a.ord
            ),
            "fence" => writeln!(s, "  cpu{}: fence ({:?})", a.cpu, a.ord),
            "free" => writeln!(s, "  cpu{}: __mmdrop FREES mm{o}", a.cpu),
            "use" => writeln!(s, "  cpu{}: uses mm{o}'s page tables", a.cpu),
            _ => writeln!(
                s,
                "  cpu{}: {} {what} {:#x} -> {:#x} ({:?})",
                a.cpu, a.op, a.old, a.new, a.ord
            ),
        };
    }
    s
}

/// A loom atomic word that knows its cache-line kind (for the trace).
pub struct VAtomic {
    a: loom::sync::atomic::AtomicU64,
    kind: LineKind,
    obj: u32,
    sub: u8,
}

/// The mm payload cell (loom's `UnsafeCell`, shared between loom threads).
pub struct VPayload(<LoomPlatform as Platform>::Payload, u32);

// SAFETY: loom runs every model thread on one OS thread and checks each
// access to the inner cell for causality itself (that is the point: an
// unordered read/write pair is reported as a data race).
unsafe impl Sync for VPayload {}
// SAFETY: as above; the cell holds a plain u64.
unsafe impl Send for VPayload {}

/// [`LoomPlatform`] with an access trace. Every operation is delegated to
/// `LoomPlatform` unchanged.
#[derive(Debug, Default)]
pub struct VLoom {
    inner: LoomPlatform,
    lines: std::sync::Mutex<Registry>,
}

/// Which object each cache line belongs to, from the order in which the
/// runtime creates them (`Mm::new`: users, count, tlb_gen, cpumask; then
/// per CPU: slot, slot2, ipi).
#[derive(Debug, Default)]
struct Registry {
    lines: Vec<(LineKind, u32, u8)>,
    mms: u32,
    slots: u32,
    ipis: u32,
    tlbstates: u32,
    payloads: u32,
}

impl VLoom {
    /// A new platform.
    pub fn new() -> Self {
        Self::default()
    }
}

fn line_of(r: &std::sync::Mutex<Registry>, l: Line) -> (LineKind, u32, u8) {
    r.lock()
        .map(|k| k.lines.get(l.0 as usize).copied())
        .ok()
        .flatten()
        .unwrap_or((LineKind::Bookkeeping, 0, 0))
}

impl Platform for VLoom {
    type Atomic = VAtomic;
    const IMMEDIATE_IPI: bool = false;

    fn line(&self, kind: LineKind) -> Line {
        let mut r = self.lines.lock().expect("lines");
        let (obj, sub) = match kind {
            LineKind::MmUsers => {
                r.mms += 1;
                (r.mms - 1, 0)
            }
            LineKind::MmCount | LineKind::MmContext | LineKind::MmCpumask | LineKind::MmLruGen => {
                (r.mms.saturating_sub(1), 0)
            }
            LineKind::CpuSlot => {
                r.slots += 1;
                ((r.slots - 1) / 2, ((r.slots - 1) % 2) as u8)
            }
            LineKind::CpuIpi => {
                r.ipis += 1;
                (r.ipis - 1, 0)
            }
            LineKind::CpuTlbState => {
                r.tlbstates += 1;
                ((r.tlbstates - 1) / 3, ((r.tlbstates - 1) % 3) as u8)
            }
            LineKind::Bookkeeping => (0, 0),
        };
        r.lines.push((kind, obj, sub));
        Line((r.lines.len() - 1) as u32)
    }
    fn atomic(&self, value: u64, line: Line) -> VAtomic {
        let (kind, obj, sub) = line_of(&self.lines, line);
        VAtomic {
            a: self.inner.atomic(value, line),
            kind,
            obj,
            sub,
        }
    }
    fn reinit(&self, a: &VAtomic, value: u64) {
        self.inner.reinit(&a.a, value)
    }
    fn load(&self, cpu: CpuId, a: &VAtomic, o: Ordering) -> u64 {
        let v = self.inner.load(cpu, &a.a, o);
        record(Access {
            cpu,
            op: "load",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old: v,
            new: u64::MAX,
            ord: o,
        });
        v
    }
    fn store(&self, cpu: CpuId, a: &VAtomic, v: u64, o: Ordering) {
        self.inner.store(cpu, &a.a, v, o);
        record(Access {
            cpu,
            op: "store",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old: 0,
            new: v,
            ord: o,
        });
    }
    fn swap(&self, cpu: CpuId, a: &VAtomic, v: u64, o: Ordering) -> u64 {
        let old = self.inner.swap(cpu, &a.a, v, o);
        record(Access {
            cpu,
            op: "xchg",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old,
            new: v,
            ord: o,
        });
        old
    }
    fn compare_exchange(
        &self,
        cpu: CpuId,
        a: &VAtomic,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        let r = self
            .inner
            .compare_exchange(cpu, &a.a, current, new, success, failure);
        record(Access {
            cpu,
            op: if r.is_ok() {
                "cmpxchg(ok)"
            } else {
                "cmpxchg(failed)"
            },
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old: r.unwrap_or_else(|v| v),
            new: if r.is_ok() {
                new
            } else {
                r.unwrap_or_else(|v| v)
            },
            ord: if r.is_ok() { success } else { failure },
        });
        r
    }
    fn fetch_add(&self, cpu: CpuId, a: &VAtomic, v: u64, o: Ordering) -> u64 {
        let old = self.inner.fetch_add(cpu, &a.a, v, o);
        record(Access {
            cpu,
            op: "fetch_add",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old,
            new: old.wrapping_add(v),
            ord: o,
        });
        old
    }
    fn fetch_sub(&self, cpu: CpuId, a: &VAtomic, v: u64, o: Ordering) -> u64 {
        let old = self.inner.fetch_sub(cpu, &a.a, v, o);
        record(Access {
            cpu,
            op: "fetch_sub",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old,
            new: old.wrapping_sub(v),
            ord: o,
        });
        old
    }
    fn fetch_or(&self, cpu: CpuId, a: &VAtomic, v: u64, o: Ordering) -> u64 {
        let old = self.inner.fetch_or(cpu, &a.a, v, o);
        record(Access {
            cpu,
            op: "fetch_or",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old,
            new: old | v,
            ord: o,
        });
        old
    }
    fn fetch_and(&self, cpu: CpuId, a: &VAtomic, v: u64, o: Ordering) -> u64 {
        let old = self.inner.fetch_and(cpu, &a.a, v, o);
        record(Access {
            cpu,
            op: "fetch_and",
            kind: a.kind,
            obj: a.obj,
            sub: a.sub,
            old,
            new: old & v,
            ord: o,
        });
        old
    }
    fn fence(&self, cpu: CpuId, o: Ordering) {
        self.inner.fence(cpu, o);
        record(Access {
            cpu,
            op: "fence",
            kind: LineKind::CpuSlot,
            obj: cpu as u32,
            sub: 0,
            old: 0,
            new: 0,
            ord: o,
        });
    }
    fn spin(&self) {
        self.inner.spin()
    }
    fn teardown_phase(&self, cpu: CpuId, entering: bool) {
        self.inner.teardown_phase(cpu, entering)
    }
    type Payload = VPayload;
    fn payload(&self) -> VPayload {
        let mut r = self.lines.lock().expect("lines");
        r.payloads += 1;
        VPayload(self.inner.payload(), r.payloads - 1)
    }
    fn payload_read(&self, cpu: CpuId, x: &VPayload) {
        record(Access {
            cpu,
            op: "use",
            kind: LineKind::MmCount,
            obj: x.1,
            sub: 0,
            old: 0,
            new: 0,
            ord: Ordering::Relaxed,
        });
        self.inner.payload_read(cpu, &x.0)
    }
    fn payload_write(&self, cpu: CpuId, x: &VPayload) {
        record(Access {
            cpu,
            op: "free",
            kind: LineKind::MmCount,
            obj: x.1,
            sub: 0,
            old: 0,
            new: 0,
            ord: Ordering::Relaxed,
        });
        self.inner.payload_write(cpu, &x.0)
    }
}

// ----------------------------------------------------------------------
// Scenarios and the model runner
// ----------------------------------------------------------------------

/// The machine every loom model runs.
pub type M = Machine<VLoom>;

/// One loom scenario: a sequential setup (run on the model's main thread
/// before any CPU thread exists, so it happens-before everything) and one
/// script per CPU. Each script must leave its CPU running a kernel thread or
/// idle with every task it ran exited; the runner then quiesces the CPU.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// Name (docs/design.md section 7 wording).
    pub name: &'static str,
    /// CPUs = loom threads (CPU 0 is the model's main thread).
    pub cpus: usize,
    /// Profile.
    pub arch: Arch,
    /// Builds the initial state; returns the mms the scripts use.
    pub setup: fn(&M) -> Vec<MmRef>,
    /// The script of CPU `cpu`.
    pub run: fn(&M, CpuId, &[MmRef]),
}

impl core::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({} CPUs, {})", self.name, self.cpus, self.arch)
    }
}

/// `loom::model::Builder` with the project's bounds (see the module doc).
pub fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LAZYMM_LOOM_EXHAUSTIVE").is_some() {
        b.preemption_bound = None;
    } else if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(2);
    }
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        b.max_branches = 20_000;
    }
    b
}

/// Does this scheme/profile send IPIs that a CPU must serve while it waits
/// for the others (the mailbox backends)?
pub fn needs_ipi_service(kind: SchemeKind, arch: Arch) -> bool {
    let scheme_ipis = matches!(kind.name(), "shootdown" | "hazard-ipi");
    scheme_ipis
        || matches!(
            arch.exit_flush(kind == SchemeKind::Shootdown),
            lazymm::arch::ExitFlush::IpiMask { .. }
        )
}

/// The body of one loom execution of `s` under `kind`/`opts`.
fn execution(s: Scenario, kind: SchemeKind, opts: SchemeOptions, make: MakeScheme) {
    EXECUTIONS.with(|e| e.set(e.get() + 1));
    TRACE.with(|t| t.borrow_mut().clear());
    let mut cfg = MachineConfig::new(s.cpus, s.arch, kind);
    // Every scheme is checked on a kernel without CONFIG_SCHED_MM_CID
    // (issue 9, item 8): switch_mm_cid()'s smp_mb() on every kernel <->
    // user switch (kernel/sched/sched.h) is not the scheme's and would hide
    // its own orderings (e.g. lw-publish, lw-unlazy-store, whose weakenings
    // the extra fences mask); a scheme must be correct without it. Fewer
    // fences only allow more executions, so a clean verdict here holds with
    // them too.
    let mut opts = opts;
    opts.kernel.no_mm_cid = true;
    cfg.options = opts;
    cfg.max_mms = 4;
    let scheme = make(kind, &opts);
    let m = Arc::new(Machine::with_scheme(VLoom::new(), cfg, scheme).expect("machine"));
    let mms = Arc::new((s.setup)(&m));
    let serve = needs_ipi_service(kind, s.arch);
    let done = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
    // With IPIs to serve, two barriers: every script ends before any CPU
    // quiesces (a teardown may still hand a reference to a CPU that finished
    // its script: it must find it at its quiesce, as it would at its next
    // switch), and every CPU keeps serving IPIs until all have quiesced.
    // Ordering: Relaxed throughout: the barrier only bounds the loops, it
    // must add no happens-before edge to the model.
    let barrier =
        move |m: &M, cpu: CpuId, done: &loom::sync::atomic::AtomicUsize, target: usize| {
            done.fetch_add(1, Ordering::Relaxed);
            while done.load(Ordering::Relaxed) < target {
                if serve {
                    m.interrupt_point(cpu);
                }
                loom::thread::yield_now();
            }
        };
    let cpu_body =
        move |m: &M, cpu: CpuId, mms: &[MmRef], done: &loom::sync::atomic::AtomicUsize| {
            (s.run)(m, cpu, mms);
            // The end-of-script unlazy races the other CPUs' teardowns.
            m.quiesce_cpu(cpu);
            if serve {
                barrier(m, cpu, done, s.cpus);
                m.quiesce_cpu(cpu);
                barrier(m, cpu, done, 2 * s.cpus);
            }
        };
    let mut handles = Vec::new();
    for cpu in 1..s.cpus {
        let (m, mms, done) = (m.clone(), mms.clone(), done.clone());
        handles.push(loom::thread::spawn(move || cpu_body(&m, cpu, &mms, &done)));
    }
    cpu_body(&m, 0, &mms, &done);
    for h in handles {
        h.join().expect("cpu thread");
    }
    if !serve {
        // No IPIs to serve: quiesce every CPU from here, after the joins (a
        // teardown may have handed a reference to a CPU that had finished
        // its script; it finds it now, as it would at its next switch).
        for cpu in 0..s.cpus {
            m.quiesce_cpu(cpu);
        }
    }
    let st = m.finish();
    let c = st.ledger;
    IRQS_OFF_FREES.with(|x| x.set(x.get().max(c.frees_irqs_off)));
    if c.uaf + c.double_free + c.leaked != 0 {
        panic!(
            "ledger: {} use-after-free, {} double free, {} leaked: {:?}\ninterleaving:\n{}",
            c.uaf,
            c.double_free,
            c.leaked,
            m.ledger.violations(),
            format_trace(&last_trace())
        );
    }
}

/// What a loom check found.
#[derive(Debug)]
pub struct Verdict {
    /// `None`: every explored interleaving was clean. `Some(msg)`: the
    /// first failure (ledger violation or loom-reported race), with the
    /// interleaving.
    pub failure: Option<String>,
    /// Executions explored (up to and including the failing one).
    pub executions: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The most frees done with interrupts off in one execution.
    pub max_frees_irqs_off: u64,
}

impl Verdict {
    /// Clean?
    pub fn clean(&self) -> bool {
        self.failure.is_none()
    }
}

/// Checks `s` under `kind`/`opts` with [`builder`], panicking on failure
/// (the loom way).
pub fn check(s: Scenario, kind: SchemeKind, opts: SchemeOptions) {
    check_with(s, kind, opts, production)
}

/// Builds the scheme a model runs.
pub type MakeScheme = fn(SchemeKind, &SchemeOptions) -> Box<dyn schemes::Scheme<VLoom>>;

/// The production scheme: `lazymm::schemes::build`.
pub fn production(kind: SchemeKind, opts: &SchemeOptions) -> Box<dyn schemes::Scheme<VLoom>> {
    schemes::build::<VLoom>(kind, opts).expect("scheme builds")
}

/// [`check`] with a scheme built by `make` (tests use it to run a
/// deliberately changed scheme next to the production one).
pub fn check_with(s: Scenario, kind: SchemeKind, opts: SchemeOptions, make: MakeScheme) {
    builder().check(move || execution(s, kind, opts, make));
}

const VERDICT_THREAD: &str = "lazymm-verify-verdict";

/// The panics of a [`verdict`] thread are its result, not noise: keep them
/// off stderr (every other thread's panics are printed as usual).
fn quiet_verdict_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(VERDICT_THREAD) {
                default(info)
            }
        }));
    });
}

/// Checks `s` under `kind`/`opts` in a fresh OS thread (so loom's
/// thread-local state starts clean) and reports instead of panicking.
pub fn verdict(s: Scenario, kind: SchemeKind, opts: SchemeOptions) -> Verdict {
    verdict_with(s, kind, opts, production)
}

/// [`verdict`] with a scheme built by `make`.
pub fn verdict_with(
    s: Scenario,
    kind: SchemeKind,
    opts: SchemeOptions,
    make: MakeScheme,
) -> Verdict {
    quiet_verdict_panics();
    let start = std::time::Instant::now();
    let r = std::thread::Builder::new()
        .name(VERDICT_THREAD.into())
        .spawn(move || {
            TRACING.with(|t| t.set(true));
            EXECUTIONS.with(|e| e.set(0));
            IRQS_OFF_FREES.with(|e| e.set(0));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check_with(s, kind, opts, make)
            }));
            let n = EXECUTIONS.with(|e| e.get());
            let msg = r.err().map(|p| {
                let text = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                if text.contains("interleaving:") {
                    text
                } else {
                    // A loom-detected race: append the trace up to the panic.
                    format!("{text}\ninterleaving:\n{}", format_trace(&last_trace()))
                }
            });
            (msg, n, IRQS_OFF_FREES.with(|e| e.get()))
        })
        .expect("spawn")
        .join()
        .expect("verdict thread");
    Verdict {
        failure: r.0,
        executions: r.1,
        seconds: start.elapsed().as_secs_f64(),
        max_frees_irqs_off: r.2,
    }
}

/// Every scenario of [`scenarios::for_scheme`] on every profile of
/// [`scenarios::ARCHES`].
pub fn suite(kind: SchemeKind) -> Vec<Scenario> {
    scenarios::ARCHES
        .into_iter()
        .flat_map(|a| scenarios::for_scheme(kind, a))
        .collect()
}

/// The first scenario of `list` that fails under `kind`/`opts`, with its
/// verdict.
pub fn first_failure(
    list: &[Scenario],
    kind: SchemeKind,
    opts: SchemeOptions,
    make: MakeScheme,
) -> Option<(Scenario, Verdict)> {
    list.iter().find_map(|&s| {
        let v = verdict_with(s, kind, opts, make);
        (!v.clean()).then_some((s, v))
    })
}

/// The ordering sites of `kind` (built on the loom backend, as the brief
/// asks: the sites come from the scheme's own `ordering_sites()`).
pub fn ordering_sites(kind: SchemeKind) -> &'static [lazymm::schemes::OrderingSite] {
    let s = schemes::build::<LoomPlatform>(kind, &SchemeOptions::default()).expect("builds");
    s.ordering_sites()
}

/// Options with exactly one site weakened.
pub fn weakened(site: &'static str) -> SchemeOptions {
    SchemeOptions {
        weaken: Some(site),
        ..SchemeOptions::default()
    }
}
