//! Trace replay: a perf scheduler trace (see `traces/FORMAT.md`) drives the
//! same runtime, through the same scheme code, as the synthetic workloads.
//!
//! Every task of the trace holds one `users` reference on the runtime mm of
//! its exec-aware identity `(TGID, generation)` from its fork (or first
//! sighting) to its exit; a fork of a new process or an exec allocates a new
//! mm; an exit runs `exit_mm` on the CPU that runs it; the final switch-out
//! of a dying task is a switch from a task without an mm. A trace from the
//! kernel patch of `kernel/patches/` also shows where `exit_mm` ran
//! (`lazy_tlb:lazy_tlb_exit_mm`): the task then gives up its mm there and
//! runs without one until its `sched_process_exit`, where its reference is
//! put (the kernel's `mmput` after `exit_mmap`, which may sleep in between).
//! Switches are
//! classified by the trace's identities (as the reference oracle does), so
//! the transition counts can be compared exactly with `*.oracle.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lazymm::schemes::SchemeOptions;
use lazymm::{Arch, Machine, MachineConfig, MmRef, Next, SchemeKind};
use lazymm_trace::{MmKey, ParseOptions, TraceError, TraceEvent, TraceReader, TraceSummary};
use serde::Serialize;

use crate::counting::CountingPlatform;
use crate::run::{report, RunReport, Transitions};

/// What to replay with.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Scheme.
    pub scheme: SchemeKind,
    /// Profile.
    pub arch: Arch,
    /// Scheme options.
    pub options: SchemeOptions,
}

/// Irregularities the replay worked around (counted, never silent).
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ReplayAnomalies {
    /// An exec on a CPU whose switch-in of the task the trace does not show
    /// (the missing switch-outs of quirk 1): the new mm is held by the CPU
    /// for classification, and the task's references are moved.
    pub exec_without_switch_in: u64,
    /// An exit of a task the runtime does not see running on that CPU: its
    /// reference is put without the CPU becoming lazy on it.
    pub exit_without_switch_in: u64,
    /// A task switched in with an identity it was never given by a fork or
    /// exec (a dying task preempted after a group-dead exit): switched to as
    /// a task without an mm, classified as the trace says.
    pub switch_in_dead: u64,
    /// A task found running on another CPU when its reference had to go:
    /// that CPU was switched to idle first.
    pub forced_idle: u64,
    /// A task identity changed without exec (reference moved).
    pub identity_changes: u64,
    /// An `exit_mm` event of a task the runtime does not see running with
    /// its mm on that CPU: ignored (its exit then does the whole `exit_mm`).
    #[serde(default)]
    pub exit_mm_not_running: u64,
    /// An exit after `exit_mm` on a CPU the runtime does not see running the
    /// task: the reference is put on that CPU all the same.
    #[serde(default)]
    pub exit_put_not_running: u64,
}

/// One teardown (`__mmput` reaching the scheme's fix-up) in a replay, with
/// the trace event that caused it: for an exit-by-exit check against the
/// kernel's `lazy_tlb:lazy_tlb_teardown` events (`kernel/compare_teardowns.py`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TeardownRecord {
    /// Source line of the event (0: the end-of-trace clean-up).
    pub line: u64,
    /// The task whose event put the last reference (the exiting or
    /// exec'ing task; 0 at the end of the trace).
    pub tid: i32,
    /// CPU that ran the teardown.
    pub cpu: u32,
    /// The kind of event: `exit`, `exec`, `switch`, `fork` or `end`.
    pub event: &'static str,
    /// The teardown ended its calling task's own lazy borrow first (0 or 1).
    pub self_takes: u64,
    /// References it handed to lazy CPUs.
    pub handoffs: u64,
    /// The CPUs handed a reference (`lightweight` only: the slots whose
    /// word gained the hand-off bit during the event; empty for the other
    /// schemes).
    pub handoff_cpus: Vec<u32>,
}

/// One trace through one scheme.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// The trace file.
    pub trace: String,
    /// The runtime's metrics (ledger included).
    pub run: RunReport,
    /// Transitions of the trace, total (same keys as the oracle's
    /// `exec_aware.total`).
    pub transitions: Transitions,
    /// Per CPU.
    pub per_cpu: BTreeMap<u32, Transitions>,
    /// The parser's summary (events, gaps repaired, warnings).
    pub summary: TraceSummary,
    /// Replay work-arounds.
    pub anomalies: ReplayAnomalies,
    /// Events replayed.
    pub events: u64,
    /// Every teardown, in order (not serialized with the report: written by
    /// `lazymm replay --teardowns FILE`).
    #[serde(skip)]
    pub teardowns: Vec<TeardownRecord>,
}

#[derive(Default, Clone, Copy)]
struct TaskSt {
    held: Option<MmKey>,
    exited: bool,
    /// `exit_mm` ran (its event): `held` is still to be put, at the exit.
    mm_given_up: bool,
}

struct Replayer<'m> {
    m: &'m Machine<CountingPlatform>,
    obj: Vec<Option<MmRef>>,
    holders: Vec<u32>,
    tasks: HashMap<i32, TaskSt>,
    curr: Vec<i32>,
    /// The key the runtime runs as current user mm on each CPU.
    running: Vec<Option<MmKey>>,
    /// Per CPU: the counters after the CPU was primed with the task its
    /// first switch switches away from (the state before the trace began).
    baseline: Vec<Option<Transitions>>,
    an: ReplayAnomalies,
}

impl Replayer<'_> {
    fn grow(&mut self, k: MmKey) {
        if self.obj.len() <= k.index() {
            self.obj.resize(k.index() + 1, None);
            self.holders.resize(k.index() + 1, 0);
        }
    }

    /// `tid` takes a `users` reference on `k`'s mm (allocating it if it has
    /// none yet).
    fn take_ref(&mut self, cpu: usize, k: MmKey) -> Result<(), String> {
        self.grow(k);
        match self.obj[k.index()] {
            Some(o) => self.m.mmget(cpu, o),
            None => {
                let o = self.m.mm_alloc(cpu).map_err(|e| e.to_string())?;
                self.obj[k.index()] = Some(o);
            }
        }
        self.holders[k.index()] += 1;
        Ok(())
    }

    /// Bookkeeping of a reference the runtime already put.
    fn forget_ref(&mut self, k: MmKey) {
        self.holders[k.index()] -= 1;
        if self.holders[k.index()] == 0 {
            self.obj[k.index()] = None;
        }
    }

    /// `tid` puts its reference on `k` (on `cpu`).
    fn put_ref(&mut self, cpu: usize, tid: i32, k: MmKey) {
        // Never tear down an mm under a CPU that runs it as current.
        for c in 0..self.curr.len() {
            if self.curr[c] == tid && self.running[c] == Some(k) {
                self.an.forced_idle += 1;
                self.m.switch_as(c, Next::Kernel, None);
                self.running[c] = None;
                self.curr[c] = 0;
            }
        }
        if let Some(o) = self.obj[k.index()] {
            self.m.mmput(cpu, o);
        }
        self.forget_ref(k);
    }

    fn ensure_holds(&mut self, cpu: usize, tid: i32, k: MmKey) -> Result<(), String> {
        let st = self.tasks.get(&tid).copied().unwrap_or_default();
        if st.held == Some(k) {
            return Ok(());
        }
        self.take_ref(cpu, k)?;
        if let Some(old) = st.held {
            self.an.identity_changes += 1;
            self.put_ref(cpu, tid, old);
        }
        self.tasks.insert(
            tid,
            TaskSt {
                held: Some(k),
                ..TaskSt::default()
            },
        );
        Ok(())
    }

    fn event(&mut self, ev: &TraceEvent) -> Result<(), String> {
        match *ev {
            TraceEvent::Switch {
                cpu,
                prev,
                next,
                prev_state,
                ..
            } => {
                let cpu = cpu as usize;
                if self.baseline[cpu].is_none() {
                    // Before the trace: the CPU runs `prev`.
                    if let Some(k) = prev.mm {
                        self.ensure_holds(cpu, prev.tid, k)?;
                        if let Some(o) = self.obj[k.index()] {
                            self.m.switch_as(cpu, Next::User(o), Some(u64::from(k.0)));
                            self.running[cpu] = Some(k);
                        }
                    }
                    self.curr[cpu] = prev.tid;
                    self.baseline[cpu] = Some(Transitions::of(&self.m.cpu_stats(cpu)));
                }
                let class = next.mm.map(|k| u64::from(k.0));
                let target = match next.mm {
                    Some(k) => {
                        let st = self.tasks.get(&next.tid).copied().unwrap_or_default();
                        if st.exited {
                            self.an.switch_in_dead += 1;
                            None
                        } else if st.mm_given_up {
                            // Past exit_mm: runs without an mm.
                            None
                        } else {
                            self.ensure_holds(cpu, next.tid, k)?;
                            Some(k)
                        }
                    }
                    None => None,
                };
                let nx = match target.and_then(|k| self.obj[k.index()]) {
                    Some(o) => Next::User(o),
                    // pid 0 is the idle task (swapper); any other task
                    // without an mm runs in the kernel (a kernel thread, a
                    // task past exit_mm): not idle, for RCU.
                    None if next.tid == 0 => Next::Kernel,
                    None => Next::Kthread,
                };
                self.m.switch_as(cpu, nx, class);
                self.running[cpu] = if matches!(nx, Next::User(_)) {
                    target
                } else {
                    None
                };
                self.curr[cpu] = next.tid;
                if prev_state.is_exit() && prev.tid != 0 {
                    if let Some(st) = self.tasks.remove(&prev.tid) {
                        if let Some(k) = st.held {
                            self.put_ref(cpu, prev.tid, k);
                        }
                    }
                }
                self.m.interrupt_point(cpu);
            }
            TraceEvent::Fork { cpu, child, .. } => {
                if let Some(k) = child.mm {
                    // A reused TID: the old task's reference goes first.
                    if let Some(st) = self.tasks.remove(&child.tid) {
                        if let Some(old) = st.held {
                            self.put_ref(cpu as usize, child.tid, old);
                        }
                    }
                    self.take_ref(cpu as usize, k)?;
                    self.tasks.insert(
                        child.tid,
                        TaskSt {
                            held: Some(k),
                            ..TaskSt::default()
                        },
                    );
                }
            }
            TraceEvent::Exec {
                cpu, tid, new_mm, ..
            } => {
                let cpu = cpu as usize;
                let st = self.tasks.get(&tid).copied().unwrap_or_default();
                self.grow(new_mm);
                let o = self.m.mm_alloc(cpu).map_err(|e| e.to_string())?;
                if let Some(prev) = self.obj[new_mm.index()] {
                    // Should not happen: a fresh generation. Keep both counted.
                    self.m.mmput(cpu, prev);
                    self.an.identity_changes += 1;
                }
                self.obj[new_mm.index()] = Some(o);
                self.holders[new_mm.index()] = 1;
                if self.curr[cpu] == tid && self.running[cpu] == st.held {
                    // The runtime's current task execs: exec_mmap puts the old.
                    self.m.exec_as(cpu, o, u64::from(new_mm.0));
                    if let Some(old) = st.held {
                        self.forget_ref(old);
                    }
                    self.running[cpu] = Some(new_mm);
                } else {
                    self.an.exec_without_switch_in += 1;
                    if let Some(old) = st.held {
                        self.put_ref(cpu, tid, old);
                    }
                    self.m.note_held_class(cpu, u64::from(new_mm.0));
                }
                self.tasks.insert(
                    tid,
                    TaskSt {
                        held: Some(new_mm),
                        ..TaskSt::default()
                    },
                );
            }
            TraceEvent::Exit { cpu, task, .. } => {
                let cpu = cpu as usize;
                let mut st = self.tasks.get(&task.tid).copied().unwrap_or_default();
                if let Some(k) = st.held.take() {
                    if st.mm_given_up {
                        // exit_mm ran at its own event; this is its mmput.
                        if self.curr[cpu] != task.tid {
                            self.an.exit_put_not_running += 1;
                        }
                        self.put_ref(cpu, task.tid, k);
                    } else if self.curr[cpu] == task.tid && self.running[cpu] == Some(k) {
                        self.m.exit_mm(cpu);
                        self.running[cpu] = None;
                        self.forget_ref(k);
                    } else {
                        self.an.exit_without_switch_in += 1;
                        self.put_ref(cpu, task.tid, k);
                    }
                }
                st.exited = true;
                self.tasks.insert(task.tid, st);
            }
            TraceEvent::ExitMm { cpu, task, .. } => {
                let cpu = cpu as usize;
                let mut st = self.tasks.get(&task.tid).copied().unwrap_or_default();
                match st.held {
                    Some(k)
                        if !st.mm_given_up
                            && self.curr[cpu] == task.tid
                            && self.running[cpu] == Some(k) =>
                    {
                        self.m.exit_mm_lazy(cpu);
                        self.running[cpu] = None;
                        st.mm_given_up = true;
                        self.tasks.insert(task.tid, st);
                    }
                    _ => self.an.exit_mm_not_running += 1,
                }
            }
            TraceEvent::Migrate { .. } | TraceEvent::WakeupNew { .. } | TraceEvent::Free { .. } => {
            }
        }
        Ok(())
    }
}

/// An error of a replay: the trace's (with `file:line`) or the machine's.
#[derive(Debug)]
pub enum ReplayError {
    /// The trace could not be read.
    Trace(TraceError),
    /// The runtime could not run it (e.g. the mm arena was too small).
    Machine(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Trace(e) => write!(f, "{e}"),
            ReplayError::Machine(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

impl From<TraceError> for ReplayError {
    fn from(e: TraceError) -> Self {
        ReplayError::Trace(e)
    }
}

/// `trace:NAME` for `.../NAME.perf.txt.gz`: the workload column of a replay.
pub fn trace_name(path: &Path) -> String {
    let f = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let stem = f
        .strip_suffix(".perf.txt.gz")
        .or_else(|| f.strip_suffix(".perf.txt"))
        .or_else(|| f.strip_suffix(".gz"))
        .unwrap_or(&f);
    format!("trace:{stem}")
}

/// Reads a trace once (no replay): its summary, with the CPUs it uses.
pub fn scan(path: &Path, opts: &ParseOptions) -> Result<TraceSummary, TraceError> {
    let mut r = TraceReader::open(path, opts)?;
    while r.next_event()?.is_some() {}
    Ok(r.finish())
}

/// Replays `path` (whose [`scan`] is `summary`) through `cfg`.
pub fn replay(
    path: &Path,
    opts: &ParseOptions,
    summary: &TraceSummary,
    cfg: &ReplayConfig,
) -> Result<ReplayReport, ReplayError> {
    replay_on(
        path,
        opts,
        summary,
        cfg,
        CountingPlatform::new(),
        &mut |_, _| {},
    )
}

/// Where a replay is, for [`replay_on`]'s hook.
#[derive(Clone, Copy, Debug)]
pub enum ReplayPhase<'e> {
    /// Before the runtime sees this trace event.
    Before(&'e TraceEvent),
    /// After it.
    After(&'e TraceEvent),
    /// The trace is over (before the end-of-trace clean-up).
    End,
}

/// [`replay`] on the platform `p` (a timed one: [`crate::timing::trace`]),
/// calling `hook` around every trace event.
pub fn replay_on(
    path: &Path,
    opts: &ParseOptions,
    summary: &TraceSummary,
    cfg: &ReplayConfig,
    p: CountingPlatform,
    hook: &mut dyn FnMut(&Machine<CountingPlatform>, ReplayPhase<'_>),
) -> Result<ReplayReport, ReplayError> {
    let cpus = summary.machine_cpus();
    let mut mc = MachineConfig::new(cpus, cfg.arch, cfg.scheme);
    mc.options = cfg.options;
    mc.max_mms = (summary.mms.len() + 64).max(256);
    let m = Machine::new(p, mc).map_err(|e| ReplayError::Machine(e.0))?;
    let mut rp = Replayer {
        m: &m,
        obj: Vec::new(),
        holders: Vec::new(),
        tasks: HashMap::new(),
        curr: vec![0; cpus],
        running: vec![None; cpus],
        baseline: vec![None; cpus],
        an: ReplayAnomalies::default(),
    };
    let mut r = TraceReader::open(path, opts)?;
    let mut events = 0u64;
    let mut teardowns = Vec::new();
    // lightweight: the slots holding a handed reference (`mm|1`), to name
    // the CPUs each teardown handed one to.
    let slot_lw = cfg.scheme == SchemeKind::Lightweight;
    let handed = |m: &Machine<CountingPlatform>| -> Vec<bool> {
        if slot_lw {
            m.percpu.iter().map(|p| p.slot.peek() & 1 == 1).collect()
        } else {
            Vec::new()
        }
    };
    let new_handed = |old: &[bool], new: &[bool]| -> Vec<u32> {
        (0..new.len())
            .filter(|&c| new[c] && !old[c])
            .map(|c| c as u32)
            .collect()
    };
    let mut slots = handed(&m);
    while let Some(ev) = r.next_event()? {
        events += 1;
        // Every teardown an event causes runs on the event's CPU.
        let cpu = ev.cpu() as usize;
        let before = m.cpu_stats(cpu);
        hook(&m, ReplayPhase::Before(&ev));
        rp.event(&ev)
            .map_err(|e| ReplayError::Machine(format!("{}:{}: {e}", path.display(), ev.line())))?;
        hook(&m, ReplayPhase::After(&ev));
        let after = m.cpu_stats(cpu);
        let now = handed(&m);
        if after.teardowns > before.teardowns {
            let (tid, event) = match ev {
                TraceEvent::Exit { task, .. } | TraceEvent::ExitMm { task, .. } => {
                    (task.tid, "exit")
                }
                TraceEvent::Exec { tid, .. } => (tid, "exec"),
                TraceEvent::Switch { prev, .. } => (prev.tid, "switch"),
                TraceEvent::Fork { child, .. } => (child.tid, "fork"),
                TraceEvent::Migrate { task, .. } | TraceEvent::WakeupNew { task, .. } => {
                    (task.tid, "other")
                }
                TraceEvent::Free { tid, .. } => (tid, "other"),
            };
            teardowns.push(TeardownRecord {
                line: ev.line(),
                tid,
                cpu: cpu as u32,
                event,
                self_takes: after.self_takes - before.self_takes,
                handoffs: after.handoffs - before.handoffs,
                handoff_cpus: new_handed(&slots, &now),
            });
        }
        slots = now;
    }
    hook(&m, ReplayPhase::End);
    let summary = r.finish();
    // The trace's transitions, before the end-of-trace clean-up switches.
    let mut per_cpu = BTreeMap::new();
    let mut transitions = Transitions::default();
    for c in 0..cpus {
        let base = rp.baseline[c].unwrap_or_default();
        let t = Transitions::of(&m.cpu_stats(c)).since(&base);
        if summary.cpus_seen.contains(&(c as u32)) {
            per_cpu.insert(c as u32, t);
        }
        transitions.add(&t);
    }
    // Lazy enters of the trace itself (the priming switches enter none; the
    // end-of-trace switches to idle below would add one per CPU still
    // running a user task).
    let lazy_enters: u64 = (0..cpus).map(|c| m.cpu_stats(c).lazy_enters).sum();
    // End of trace: every CPU to idle, every task's reference put, quiesce.
    for c in 0..cpus {
        if rp.running[c].is_some() || rp.curr[c] != 0 {
            m.switch_as(c, Next::Kernel, None);
            rp.running[c] = None;
            rp.curr[c] = 0;
        }
    }
    let mut held: Vec<(i32, MmKey)> = rp
        .tasks
        .iter()
        .filter_map(|(t, s)| s.held.map(|k| (*t, k)))
        .collect();
    held.sort();
    for (tid, k) in held {
        let before = m.cpu_stats(0);
        let slots = handed(&m);
        rp.put_ref(0, tid, k);
        let after = m.cpu_stats(0);
        if after.teardowns > before.teardowns {
            teardowns.push(TeardownRecord {
                line: 0,
                tid,
                cpu: 0,
                event: "end",
                self_takes: after.self_takes - before.self_takes,
                handoffs: after.handoffs - before.handoffs,
                handoff_cpus: new_handed(&slots, &handed(&m)),
            });
        }
    }
    for c in 0..cpus {
        m.quiesce_cpu(c);
    }
    let an = rp.an.clone();
    let name = trace_name(path);
    let mut run = report(&m, cfg.scheme, &name, 0);
    // The run's switch and lazy-enter figures are the trace's (without the
    // priming and end-of-trace switches).
    run.transitions = transitions;
    run.switches = transitions.switches;
    run.lazy_enters = lazy_enters;
    run.lazy_enters_per_exit = crate::run::ratio(lazy_enters as f64, run.exits);
    Ok(ReplayReport {
        trace: path.display().to_string(),
        run,
        transitions,
        per_cpu,
        summary,
        anomalies: an,
        events,
        teardowns,
    })
}
