//! The resolved event stream and the run summary.

use crate::line::PrevState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Dense index of an exec-aware mm identity `(TGID, generation)`.
///
/// Keys are allocated in order of first appearance in the event stream,
/// starting at 0, so a consumer can grow a table as keys appear; the full
/// table is [`TraceSummary::mms`] (and [`crate::TraceReader::mms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MmKey(pub u32);

impl MmKey {
    /// The key as a table index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What an [`MmKey`] stands for.
///
/// `generation` starts at 0 for a TGID and goes up by one at every exec of
/// a task of that TGID and at every exit with `group_dead=true` (so a TGID
/// reused after its group died is a new process with a new mm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MmInfo {
    /// Thread group id (process id) owning the mm.
    pub tgid: i32,
    /// Exec-aware generation of that TGID.
    pub generation: u32,
}

/// A task as seen by one event.
///
/// `mm` is the task's exec-aware mm identity at that instant; `None` for the
/// idle task (TID 0) and kernel threads.
///
/// Generations follow the oracle's model exactly: an exec moves the TGID to
/// a new generation at the exec event. A `group_dead=true` exit marks the
/// TGID dead; the next time a task of that TGID is *switched in* (as `next`
/// of a switch, inferred or not), that TGID starts a new generation. So an
/// exiting task that is preempted after its exit and switched in again (or
/// whose switch-in is only inferred after the exit) comes back with a new
/// [`MmKey`] that was never forked or exec'd, and its final `X`/`Z`
/// switch-out carries that key. A TGID reused by a new process after its
/// group died gets its new generation at the fork (the child's `TaskRef` in
/// [`TraceEvent::Fork`] already has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskRef {
    /// Thread id (`0` is the idle task).
    pub tid: i32,
    /// The task's mm, `None` for idle and kernel threads.
    pub mm: Option<MmKey>,
}

impl TaskRef {
    /// `true` for a task with its own mm (a user task).
    pub fn is_user(&self) -> bool {
        self.mm.is_some()
    }
}

/// One resolved event, in trace order. `line` is the 1-based line of the
/// source text (an inferred switch carries the line of the switch that
/// revealed it); `time_us` is microseconds since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceEvent {
    /// A context switch on `cpu` from `prev` to `next`.
    ///
    /// `inferred == true` marks a switch that was not in the trace but is
    /// implied by a break in the per-CPU prev/next chain (quirk 1 of
    /// `traces/FORMAT.md`): it is emitted just before the switch whose
    /// `prev` differs from the previous switch's `next`, and goes from that
    /// previous `next` to this `prev`. Its `prev_state` is
    /// [`PrevState::Unknown`].
    Switch {
        /// CPU of the switch.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// Task switched out.
        prev: TaskRef,
        /// Task switched in.
        next: TaskRef,
        /// `prev_state=` of the switched-out task.
        prev_state: PrevState,
        /// Gap repair (not in the trace).
        inferred: bool,
    },
    /// `parent` created `child` (`sched_process_fork`).
    ///
    /// `new_mm` is `true` when the child is a new process with its own mm
    /// (its TGID differs from the parent's), `false` for a new thread that
    /// shares the parent's mm, and `false` for a kernel thread (child of
    /// `kthreadd`, `child.mm == None`). A `vfork`/`CLONE_VM` child cannot be
    /// told from a fork and gets its own mm.
    Fork {
        /// CPU of the event.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// The parent.
        parent: TaskRef,
        /// The child, with the mm it will run with.
        child: TaskRef,
        /// Child got its own mm (new process) vs joined the parent's.
        new_mm: bool,
    },
    /// Task `tid` exec'd: it leaves `old_mm` (`None` when it was a kernel
    /// thread) and gets the new mm `new_mm` (its TGID's next generation).
    ///
    /// Replay contract: exec loads `new_mm` on `cpu` (the kernel's
    /// `exec_mmap`/`activate_mm`), so from here the mm held by `cpu` (the
    /// lazily held mm after the task switches to a kernel thread) is
    /// `new_mm`. The oracle counts depend on this: with a gap in the switch
    /// chain (quirk 1), the exec is the first sign of the task on that CPU.
    Exec {
        /// CPU of the event.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// TID after exec.
        tid: i32,
        /// `old_pid=` (differs from `tid` only when a non-leader thread exec'd).
        old_tid: i32,
        /// The mm given up.
        old_mm: Option<MmKey>,
        /// The new mm.
        new_mm: MmKey,
    },
    /// `task` exited (`sched_process_exit`); `group_dead` when it was the
    /// last thread of its group (the mm loses its last user). Its final
    /// switch-out follows later with `prev_state` `X` or `Z`.
    Exit {
        /// CPU of the event.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// The exiting task with its mm before the exit.
        task: TaskRef,
        /// Last live thread of its group.
        group_dead: bool,
    },
    /// `task` gave up its mm in `exit_mm` (`lazy_tlb:lazy_tlb_exit_mm`, an
    /// event of the kernel patch in `kernel/patches/`; the line's own task).
    /// It keeps running without an mm, borrowing that one lazily; its
    /// `mmput` (and the teardown, if it was the last user) runs later, after
    /// `exit_mmap`, which may sleep, and before its `sched_process_exit`.
    ExitMm {
        /// CPU of the event.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// The exiting task with the mm it gives up.
        task: TaskRef,
    },
    /// `task` was moved from `orig_cpu` to `dest_cpu` (`sched_migrate_task`).
    Migrate {
        /// CPU the event fired on.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// The migrated task.
        task: TaskRef,
        /// Source CPU.
        orig_cpu: u32,
        /// Destination CPU.
        dest_cpu: u32,
    },
    /// A new task was woken for the first time (`sched_wakeup_new`).
    WakeupNew {
        /// CPU the event fired on.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// The new task.
        task: TaskRef,
        /// CPU it will run on.
        target_cpu: u32,
    },
    /// The task struct of `tid` was freed (`sched_process_free`, after an
    /// RCU grace period; frees due after the capture are missing).
    Free {
        /// CPU the event fired on.
        cpu: u32,
        /// Source line.
        line: u64,
        /// Timestamp.
        time_us: u64,
        /// The freed task.
        tid: i32,
    },
}

impl TraceEvent {
    /// The CPU the event fired on.
    pub fn cpu(&self) -> u32 {
        match *self {
            TraceEvent::Switch { cpu, .. }
            | TraceEvent::Fork { cpu, .. }
            | TraceEvent::Exec { cpu, .. }
            | TraceEvent::Exit { cpu, .. }
            | TraceEvent::ExitMm { cpu, .. }
            | TraceEvent::Migrate { cpu, .. }
            | TraceEvent::WakeupNew { cpu, .. }
            | TraceEvent::Free { cpu, .. } => cpu,
        }
    }

    /// The 1-based source line.
    pub fn line(&self) -> u64 {
        match *self {
            TraceEvent::Switch { line, .. }
            | TraceEvent::Fork { line, .. }
            | TraceEvent::Exec { line, .. }
            | TraceEvent::Exit { line, .. }
            | TraceEvent::ExitMm { line, .. }
            | TraceEvent::Migrate { line, .. }
            | TraceEvent::WakeupNew { line, .. }
            | TraceEvent::Free { line, .. } => line,
        }
    }

    /// The timestamp in microseconds.
    pub fn time_us(&self) -> u64 {
        match *self {
            TraceEvent::Switch { time_us, .. }
            | TraceEvent::Fork { time_us, .. }
            | TraceEvent::Exec { time_us, .. }
            | TraceEvent::Exit { time_us, .. }
            | TraceEvent::ExitMm { time_us, .. }
            | TraceEvent::Migrate { time_us, .. }
            | TraceEvent::WakeupNew { time_us, .. }
            | TraceEvent::Free { time_us, .. } => time_us,
        }
    }
}

/// Counted kinds of recoverable input problems (see [`crate::ParseOptions`]
/// for which of them are errors in strict mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A line that is not `perf script` event output (skipped).
    UnparsedLine,
    /// A `sched:*` line with missing or malformed fields (skipped).
    MalformedFields,
    /// An event other than the seven `sched:*` events used (skipped).
    UnknownEvent,
    /// An empty line (skipped).
    BlankLine,
    /// A line longer than 64 KiB (skipped).
    LineTooLong,
    /// A timestamp earlier than the previous line's (kept, in file order).
    TimeOutOfOrder,
    /// A line without the `pid/` TGID prefix (each thread is its own mm).
    NoTgidPrefix,
    /// No kernel-thread sidecar: the name heuristic was used.
    NoSidecar,
    /// `sched_process_exit` without `group_dead=` (older kernel): assumed
    /// true for a leader (tid == tgid) and false otherwise.
    ExitWithoutGroupDead,
}

/// Irregularities of the trace itself that the resolution had to work
/// around (not input errors).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomalies {
    /// Distinct TIDs used as a user task whose TGID was never learned
    /// (never seen as the current task): TGID = TID assumed.
    pub tgid_fallback_tids: Vec<i32>,
    /// Switches (including inferred ones) whose `next` needed that fallback.
    pub next_tgid_fallback_switches: u64,
    /// Switches (including inferred ones) whose `prev` needed that fallback.
    pub prev_tgid_fallback_switches: u64,
    /// TIDs seen with more than one TGID (TID reuse).
    pub tid_with_multiple_tgids: u64,
    /// Lines whose prefix TID is `-1` (quirk 3).
    pub prefix_tid_unresolved: u64,
    /// Switches whose resolved prefix TID differs from `prev_pid`.
    pub switch_prefix_tid_ne_prev_pid: u64,
    /// Execs with `old_pid != pid`.
    pub exec_tid_changed: u64,
    /// Forks by `kthreadd` (TID 2): children taken as kernel threads.
    pub kthreadd_children: u64,
}

/// Number of events per type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    /// `sched_switch` lines.
    pub sched_switch: u64,
    /// Inferred switches (gap repair), not included in `sched_switch`.
    pub inferred_switch: u64,
    /// `sched_process_fork`.
    pub sched_process_fork: u64,
    /// `sched_process_exit`.
    pub sched_process_exit: u64,
    /// `sched_process_exec`.
    pub sched_process_exec: u64,
    /// `sched_process_free`.
    pub sched_process_free: u64,
    /// `sched_migrate_task`.
    pub sched_migrate_task: u64,
    /// `sched_wakeup_new`.
    pub sched_wakeup_new: u64,
    /// `lazy_tlb_exit_mm` (the kernel patch's event; absent elsewhere).
    #[serde(default)]
    pub lazy_tlb_exit_mm: u64,
    /// Other events (skipped, also counted as [`WarningKind::UnknownEvent`]).
    pub unknown: u64,
}

/// Where the kernel-thread set came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KthreadOrigin {
    /// A sidecar file.
    Sidecar(PathBuf),
    /// The name heuristic ([`crate::kthreads::looks_like_kthread`]).
    Heuristic,
    /// Only TID 0 and children of `kthreadd`.
    IdleOnly,
}

/// Everything counted while reading a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// The trace file.
    pub path: PathBuf,
    /// Lines read (all of them, including skipped ones).
    pub lines: u64,
    /// Events by type.
    pub events: EventCounts,
    /// Gaps repaired (inferred switches) per CPU.
    pub gaps_per_cpu: BTreeMap<u32, u64>,
    /// Gaps whose previous switch went to the idle task.
    pub gaps_after_idle: u64,
    /// Trace irregularities worked around.
    pub anomalies: Anomalies,
    /// Recoverable input problems by kind.
    pub warnings: BTreeMap<WarningKind, u64>,
    /// The first few warnings as `file:line: cause`.
    pub warning_samples: Vec<String>,
    /// Every line carried a `pid/` TGID prefix. When `false`, lines without
    /// one could not teach TGIDs; with no TGID at all each thread is its own
    /// mm ([`TraceSummary::per_thread_mm`]).
    pub tgids_available: bool,
    /// No line carried a TGID: every thread was treated as its own process.
    pub per_thread_mm: bool,
    /// Where kernel threads came from.
    pub kthreads: KthreadOrigin,
    /// Number of TIDs in the kernel-thread set at the start.
    pub kthread_tids: u64,
    /// CPUs that appear (as the event CPU).
    pub cpus_seen: Vec<u32>,
    /// Timestamp of the first event, microseconds.
    pub first_time_us: Option<u64>,
    /// Timestamp of the last event, microseconds.
    pub last_time_us: Option<u64>,
    /// The mm table indexed by [`MmKey`].
    pub mms: Vec<MmInfo>,
}

impl TraceSummary {
    /// CPUs a machine replaying the trace needs: the highest CPU id seen,
    /// plus one (1 for a trace with no event).
    pub fn machine_cpus(&self) -> usize {
        self.cpus_seen
            .iter()
            .copied()
            .max()
            .map_or(1, |c| c as usize + 1)
    }

    pub(crate) fn new(path: PathBuf) -> Self {
        TraceSummary {
            path,
            lines: 0,
            events: EventCounts::default(),
            gaps_per_cpu: BTreeMap::new(),
            gaps_after_idle: 0,
            anomalies: Anomalies::default(),
            warnings: BTreeMap::new(),
            warning_samples: Vec::new(),
            tgids_available: true,
            per_thread_mm: false,
            kthreads: KthreadOrigin::IdleOnly,
            kthread_tids: 0,
            cpus_seen: Vec::new(),
            first_time_us: None,
            last_time_us: None,
            mms: Vec::new(),
        }
    }

    /// Total gaps repaired.
    pub fn gaps_repaired(&self) -> u64 {
        self.gaps_per_cpu.values().sum()
    }

    /// Total warnings.
    pub fn warning_count(&self) -> u64 {
        self.warnings.values().sum()
    }
}
