//! The two-pass resolving reader.
//!
//! Pass 1 streams the file once and learns, for every TID seen as the
//! current task (line prefix `TGID/TID`, or `TGID/-1` on a switch, where the
//! task is `prev_pid`), the TGID(s) it had, as segments of lines (a TID that
//! is reused by another process gets a second segment). In heuristic mode it
//! also collects TIDs whose name looks like a kernel thread.
//!
//! Pass 2 streams the file again and emits [`TraceEvent`]s, resolving every
//! TID to its exec-aware mm at that instant, and repairing per-CPU gaps.
//! Memory is proportional to the number of distinct tasks and processes, not
//! to the trace length.

use crate::event::*;
use crate::input::{LineSource, TraceInput};
use crate::kthreads::{looks_like_kthread, read_sidecar, sidecar_path_for};
use crate::line::{parse_header, parse_line, switch_prev_pid, PrevState, RawEvent, RawLine};
use crate::TraceError;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

/// Where the kernel-thread set comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KthreadSource {
    /// `NAME.kthreads.txt` next to the trace ([`sidecar_path_for`]) if it
    /// exists, else the name heuristic with a [`WarningKind::NoSidecar`]
    /// warning.
    #[default]
    Auto,
    /// This sidecar file; an error if it cannot be read.
    Sidecar(PathBuf),
    /// The name heuristic ([`looks_like_kthread`] on every comm of a TID).
    Heuristic,
    /// Only TID 0 and children of `kthreadd`.
    IdleOnly,
}

/// Options of [`TraceReader`] and [`for_each_event`].
///
/// Bad-input policy:
/// * Always errors (`file:line: cause`): I/O errors, a truncated or corrupt
///   gzip stream, a CPU number above [`ParseOptions::max_cpu`], an
///   unreadable explicit sidecar.
/// * Errors in strict mode, counted warnings (line skipped) otherwise:
///   unparsable lines, lines longer than 64 KiB, `sched:*` lines with
///   missing or malformed fields, unknown events.
/// * Always counted warnings: blank lines (skipped), timestamps earlier than
///   the previous line's (the event is kept, in file order), missing TGID
///   prefixes, a missing sidecar in [`KthreadSource::Auto`] mode.
///
/// Nothing is ever dropped silently: every skipped line is counted in
/// [`TraceSummary::warnings`], and the first
/// [`ParseOptions::max_warning_samples`] are kept verbatim as
/// `file:line: cause`.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Kernel-thread identification.
    pub kthreads: KthreadSource,
    /// Turn skippable input problems into errors.
    pub strict: bool,
    /// Highest accepted CPU number (default 4095).
    pub max_cpu: u32,
    /// How many warning messages to keep in the summary (default 20).
    pub max_warning_samples: usize,
    /// Accept a trace with more skipped (unreadable) lines than events.
    /// Without it such a trace is an error: it is most likely not a
    /// scheduler trace at all. A trace without any `sched_switch` is an
    /// error either way.
    pub lenient: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            kthreads: KthreadSource::Auto,
            strict: false,
            max_cpu: 4095,
            max_warning_samples: 20,
            lenient: false,
        }
    }
}

/// A tiny multiplicative hasher for integer keys (FxHash).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(i as u32 as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub(crate) type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// Lines `[start, end]` during which a TID belonged to `tgid`.
#[derive(Debug, Clone, Copy)]
struct Seg {
    start: u64,
    end: u64,
    tgid: i32,
}

/// Everything known about one TID.
#[derive(Debug, Default)]
struct TidEntry {
    /// TGID segments learned in pass 1, in line order.
    segs: Vec<Seg>,
    /// First segment usable for the current incarnation (advanced at fork).
    cursor: u32,
    /// Kernel thread (sidecar, heuristic or `kthreadd` child).
    kthread: bool,
}

struct TgidEntry {
    generation: u32,
    key: MmKey,
    /// The group died (exit with `group_dead=true`); the next switch-in of
    /// this TGID starts a new generation.
    dead: bool,
}

/// Result of pass 1.
struct Learned {
    tids: FxMap<i32, TidEntry>,
    any_tgid: bool,
    multi: u64,
}

fn learn_one(tids: &mut FxMap<i32, TidEntry>, multi: &mut u64, line: u64, tid: i32, tgid: i32) {
    if tid <= 0 || tgid < 0 {
        return;
    }
    let e = tids.entry(tid).or_default();
    match e.segs.last_mut() {
        Some(s) if s.tgid == tgid => s.end = line,
        last => {
            if last.is_some() {
                *multi += 1;
            }
            e.segs.push(Seg {
                start: line,
                end: line,
                tgid,
            });
        }
    }
}

fn learn(
    input: &TraceInput,
    heuristic: bool,
    base_kthreads: &BTreeSet<i32>,
) -> Result<Learned, TraceError> {
    let mut src = LineSource::open(input)?;
    let mut tids: FxMap<i32, TidEntry> = FxMap::default();
    for &t in base_kthreads {
        tids.entry(t).or_default().kthread = true;
    }
    let mut any_tgid = false;
    let mut multi = 0;
    while src.next_line()? {
        let line = src.line;
        if !heuristic {
            // Fast path: only the prefix matters.
            let Ok(h) = parse_header(&src.buf) else {
                continue;
            };
            if let Some(tgid) = h.tgid {
                any_tgid = true;
                let tid = if h.tid == -1 && h.name == b"sched:sched_switch" {
                    switch_prev_pid(h.fields).unwrap_or(-1)
                } else {
                    h.tid
                };
                learn_one(&mut tids, &mut multi, line, tid, tgid);
            }
            continue;
        }
        let Ok(l) = parse_line(&src.buf) else {
            continue;
        };
        if let Some(tgid) = l.tgid {
            any_tgid = true;
            let tid = match (l.tid, &l.event) {
                (-1, RawEvent::Switch { prev_pid, .. }) => *prev_pid,
                (t, _) => t,
            };
            learn_one(&mut tids, &mut multi, line, tid, tgid);
        }
        let mut mark = |tid: i32, comm: &[u8]| {
            if tid > 0 && looks_like_kthread(comm) {
                tids.entry(tid).or_default().kthread = true;
            }
        };
        if l.tid > 0 {
            mark(l.tid, l.comm);
        }
        match l.event {
            RawEvent::Switch {
                prev_comm,
                prev_pid,
                next_comm,
                next_pid,
                ..
            } => {
                mark(prev_pid, prev_comm);
                mark(next_pid, next_comm);
            }
            RawEvent::Fork {
                child_comm,
                child_pid,
                ..
            } => mark(child_pid, child_comm),
            _ => {}
        }
    }
    Ok(Learned {
        tids,
        any_tgid,
        multi,
    })
}

/// Which role a resolution is for (anomaly counting).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `prev` of a switch.
    Prev,
    /// `next` of a switch: a dead TGID starts a new generation here.
    Next,
    /// The child of a fork: a dead TGID (reused by a new process) starts a
    /// new generation here.
    ForkChild,
    /// Any other subject.
    Other,
}

/// Streaming reader of a trace: an iterator of resolved [`TraceEvent`]s.
///
/// ```no_run
/// use lazymm_trace::{ParseOptions, TraceReader};
/// let mut r = TraceReader::open("traces/build.perf.txt.gz", &ParseOptions::default())?;
/// while let Some(ev) = r.next_event()? {
///     println!("{ev:?}");
/// }
/// let summary = r.finish();
/// # Ok::<(), lazymm_trace::TraceError>(())
/// ```
pub struct TraceReader {
    path: PathBuf,
    src: LineSource,
    opts: ParseOptions,
    tids: FxMap<i32, TidEntry>,
    tgids: FxMap<i32, TgidEntry>,
    mm_index: FxMap<(i32, u32), MmKey>,
    per_thread: bool,
    last_next: Vec<Option<i32>>,
    cpus: Vec<bool>,
    pending: Option<TraceEvent>,
    last_time: Option<u64>,
    fallback: FxSet<i32>,
    summary: TraceSummary,
    done: bool,
}

impl TraceReader {
    /// Opens a trace file (plain or gzip) and runs pass 1.
    pub fn open(path: impl AsRef<Path>, opts: &ParseOptions) -> Result<Self, TraceError> {
        Self::new(TraceInput::Path(path.as_ref().to_path_buf()), opts)
    }

    /// Reads a trace from any [`TraceInput`] (a file or bytes in memory).
    pub fn new(input: TraceInput, opts: &ParseOptions) -> Result<Self, TraceError> {
        let path = input.name().to_path_buf();
        let mut summary = TraceSummary::new(path.clone());
        let (base, heuristic, origin, no_sidecar) = match &opts.kthreads {
            KthreadSource::Sidecar(p) => (
                read_sidecar(p)?,
                false,
                KthreadOrigin::Sidecar(p.clone()),
                false,
            ),
            KthreadSource::Auto => {
                let p = sidecar_path_for(&path);
                if p.is_file() {
                    (read_sidecar(&p)?, false, KthreadOrigin::Sidecar(p), false)
                } else {
                    (BTreeSet::new(), true, KthreadOrigin::Heuristic, true)
                }
            }
            KthreadSource::Heuristic => (BTreeSet::new(), true, KthreadOrigin::Heuristic, false),
            KthreadSource::IdleOnly => (BTreeSet::new(), false, KthreadOrigin::IdleOnly, false),
        };
        let learned = learn(&input, heuristic, &base)?;
        summary.kthreads = origin;
        summary.kthread_tids = learned.tids.values().filter(|e| e.kthread).count() as u64;
        summary.anomalies.tid_with_multiple_tgids = learned.multi;
        summary.per_thread_mm = !learned.any_tgid;
        let src = LineSource::open(&input)?;
        let mut r = TraceReader {
            path,
            src,
            opts: opts.clone(),
            tids: learned.tids,
            tgids: FxMap::default(),
            mm_index: FxMap::default(),
            per_thread: !learned.any_tgid,
            last_next: Vec::new(),
            cpus: Vec::new(),
            pending: None,
            last_time: None,
            fallback: FxSet::default(),
            summary,
            done: false,
        };
        if no_sidecar {
            let msg = format!(
                "no kernel-thread sidecar `{}`: kernel threads guessed from names",
                sidecar_path_for(&r.path).display()
            );
            r.warn(WarningKind::NoSidecar, 0, &msg);
        }
        Ok(r)
    }

    /// The path of the trace.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mm table so far, indexed by [`MmKey`].
    pub fn mms(&self) -> &[MmInfo] {
        &self.summary.mms
    }

    /// What `key` stands for.
    pub fn mm_info(&self, key: MmKey) -> Option<MmInfo> {
        self.summary.mms.get(key.index()).copied()
    }

    /// The summary so far (complete once [`TraceReader::next_event`] has
    /// returned `Ok(None)`).
    pub fn summary(&self) -> &TraceSummary {
        &self.summary
    }

    /// Finishes and returns the summary.
    pub fn finish(mut self) -> TraceSummary {
        self.finalize();
        self.summary
    }

    fn finalize(&mut self) {
        self.summary.cpus_seen = self
            .cpus
            .iter()
            .enumerate()
            .filter(|(_, &s)| s)
            .map(|(i, _)| i as u32)
            .collect();
        if self.per_thread {
            // No line carried a TGID (or no event line was read at all).
            self.summary.tgids_available = false;
        }
        let mut f: Vec<i32> = self.fallback.iter().copied().collect();
        f.sort_unstable();
        self.summary.anomalies.tgid_fallback_tids = f;
    }

    /// At the end of the trace: refuses a file that is not a scheduler
    /// trace (nothing to replay, or mostly unreadable lines).
    fn check_content(&self) -> Result<(), TraceError> {
        let s = &self.summary;
        let e = &s.events;
        let events = e.sched_switch
            + e.sched_process_fork
            + e.sched_process_exit
            + e.sched_process_exec
            + e.sched_process_free
            + e.sched_migrate_task
            + e.sched_wakeup_new
            + e.lazy_tlb_exit_mm;
        let skipped: u64 = [
            WarningKind::UnparsedLine,
            WarningKind::MalformedFields,
            WarningKind::BlankLine,
            WarningKind::LineTooLong,
        ]
        .iter()
        .filter_map(|k| s.warnings.get(k))
        .sum();
        let fail = |cause: String| {
            Err(TraceError::Content {
                path: self.path.clone(),
                cause,
            })
        };
        if s.lines == 0 {
            return fail("empty trace: no line to read".into());
        }
        if e.sched_switch == 0 {
            return fail(format!(
                "no sched_switch event could be read in {} lines ({skipped} unreadable): \
                 not a `perf script` scheduler trace (see traces/FORMAT.md)",
                s.lines
            ));
        }
        if skipped > events && !self.opts.lenient {
            return fail(format!(
                "{skipped} of {} lines are unreadable, more than the {events} events read \
                 (first: {}); --lenient replays it anyway",
                s.lines,
                s.warning_samples
                    .iter()
                    .find(|w| !w.contains("kernel-thread sidecar"))
                    .map(String::as_str)
                    .unwrap_or("?")
            ));
        }
        Ok(())
    }

    fn warn(&mut self, kind: WarningKind, line: u64, cause: &str) {
        *self.summary.warnings.entry(kind).or_insert(0) += 1;
        if self.summary.warning_samples.len() < self.opts.max_warning_samples {
            self.summary.warning_samples.push(format!(
                "{}:{}: {}",
                self.path.display(),
                line,
                cause
            ));
        }
    }

    /// A skippable problem: an error in strict mode, else a counted warning.
    fn skippable(&mut self, kind: WarningKind, line: u64, cause: String) -> Result<(), TraceError> {
        if self.opts.strict {
            Err(TraceError::input(&self.path, line, cause))
        } else {
            self.warn(kind, line, &cause);
            Ok(())
        }
    }

    fn intern(&mut self, tgid: i32, role: Role) -> MmKey {
        if let Some(e) = self.tgids.get(&tgid) {
            if !(e.dead && matches!(role, Role::Next | Role::ForkChild)) {
                return e.key;
            }
            return self.bump(tgid);
        }
        let key = self.intern_gen(tgid, 0);
        self.tgids.insert(
            tgid,
            TgidEntry {
                generation: 0,
                key,
                dead: false,
            },
        );
        key
    }

    fn intern_gen(&mut self, tgid: i32, generation: u32) -> MmKey {
        let mms = &mut self.summary.mms;
        *self.mm_index.entry((tgid, generation)).or_insert_with(|| {
            let k = MmKey(mms.len() as u32);
            mms.push(MmInfo { tgid, generation });
            k
        })
    }

    /// Bumps the generation of `tgid` (exec, group-dead exit).
    fn bump(&mut self, tgid: i32) -> MmKey {
        let g = self.tgids.get(&tgid).map_or(0, |e| e.generation) + 1;
        let key = self.intern_gen(tgid, g);
        self.tgids.insert(
            tgid,
            TgidEntry {
                generation: g,
                key,
                dead: false,
            },
        );
        key
    }

    /// The TGID of `tid` at `line`, or `None` when never seen as current.
    fn tgid_of(&self, tid: i32, line: u64) -> Option<i32> {
        if self.per_thread {
            return Some(tid);
        }
        let e = self.tids.get(&tid)?;
        let segs = e.segs.get(e.cursor as usize..)?;
        let first = segs.first()?;
        if segs.len() == 1 {
            return Some(first.tgid);
        }
        Some(
            segs.iter()
                .take_while(|s| s.start <= line)
                .last()
                .unwrap_or(first)
                .tgid,
        )
    }

    /// Resolves `tid` to a [`TaskRef`] at `line`.
    fn resolve(&mut self, tid: i32, line: u64, role: Role) -> TaskRef {
        if tid <= 0 {
            return TaskRef { tid, mm: None };
        }
        if let Some(e) = self.tids.get(&tid) {
            if e.kthread {
                return TaskRef { tid, mm: None };
            }
        }
        let tgid = match self.tgid_of(tid, line) {
            Some(t) => t,
            None => {
                self.fallback.insert(tid);
                match role {
                    Role::Prev => self.summary.anomalies.prev_tgid_fallback_switches += 1,
                    Role::Next => self.summary.anomalies.next_tgid_fallback_switches += 1,
                    Role::ForkChild | Role::Other => {}
                }
                tid
            }
        };
        TaskRef {
            tid,
            mm: Some(self.intern(tgid, role)),
        }
    }

    fn note_cpu(&mut self, cpu: u32) {
        let c = cpu as usize;
        if self.cpus.len() <= c {
            self.cpus.resize(c + 1, false);
            self.last_next.resize(c + 1, None);
        }
        self.cpus[c] = true;
    }

    /// The next resolved event, `Ok(None)` at the end of the trace.
    pub fn next_event(&mut self) -> Result<Option<TraceEvent>, TraceError> {
        if let Some(ev) = self.pending.take() {
            return Ok(Some(ev));
        }
        if self.done {
            return Ok(None);
        }
        loop {
            if !self.src.next_line()? {
                self.done = true;
                self.finalize();
                self.check_content()?;
                return Ok(None);
            }
            let line = self.src.line;
            self.summary.lines = line;
            if self.src.too_long {
                self.skippable(
                    WarningKind::LineTooLong,
                    line,
                    "line longer than 64 KiB".into(),
                )?;
                continue;
            }
            if self.src.buf.iter().all(|b| b.is_ascii_whitespace()) {
                self.warn(WarningKind::BlankLine, line, "blank line");
                continue;
            }
            // Parse into an owned-free form: copy the few fields we need so the
            // line buffer borrow ends here.
            let buf = std::mem::take(&mut self.src.buf);
            let res = match parse_line(&buf) {
                Ok(l) => self.handle(line, &l),
                Err(e) => {
                    let kind = if e.in_fields {
                        WarningKind::MalformedFields
                    } else {
                        WarningKind::UnparsedLine
                    };
                    self.skippable(kind, line, format!("{e}: `{}`", excerpt(&buf)))
                        .map(|()| None)
                }
            };
            self.src.buf = buf;
            match res {
                Ok(Some(ev)) => return Ok(Some(ev)),
                Ok(None) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn handle(&mut self, line: u64, l: &RawLine<'_>) -> Result<Option<TraceEvent>, TraceError> {
        let cpu = l.cpu;
        if cpu > self.opts.max_cpu {
            return Err(TraceError::input(
                &self.path,
                line,
                format!("CPU {cpu} is above the maximum {}", self.opts.max_cpu),
            ));
        }
        if let RawEvent::Unknown { name } = l.event {
            self.summary.events.unknown += 1;
            let msg = format!("unknown event `{}` skipped", String::from_utf8_lossy(name));
            self.skippable(WarningKind::UnknownEvent, line, msg)?;
            return Ok(None);
        }
        let time_us = l.time_us;
        if let Some(prev) = self.last_time {
            if time_us < prev {
                let msg =
                    format!("timestamp {time_us} us is earlier than the previous line's {prev} us");
                self.warn(WarningKind::TimeOutOfOrder, line, &msg);
            }
        }
        self.last_time = Some(time_us);
        if self.summary.first_time_us.is_none() {
            self.summary.first_time_us = Some(time_us);
        }
        self.summary.last_time_us = Some(
            self.summary
                .last_time_us
                .map_or(time_us, |t| t.max(time_us)),
        );
        if l.tgid.is_none() {
            self.summary.tgids_available = false;
            self.warn(WarningKind::NoTgidPrefix, line, "no `pid/` TGID prefix");
        }
        if l.tid == -1 {
            self.summary.anomalies.prefix_tid_unresolved += 1;
        }
        self.note_cpu(cpu);
        let c = cpu as usize;
        let ev = match l.event {
            RawEvent::Switch {
                prev_pid,
                prev_state,
                next_pid,
                ..
            } => {
                self.summary.events.sched_switch += 1;
                if l.tid != -1 && l.tid != prev_pid {
                    self.summary.anomalies.switch_prefix_tid_ne_prev_pid += 1;
                }
                if let Some(last) = self.last_next[c] {
                    if last != prev_pid {
                        *self.summary.gaps_per_cpu.entry(cpu).or_insert(0) += 1;
                        if last == 0 {
                            self.summary.gaps_after_idle += 1;
                        }
                        self.summary.events.inferred_switch += 1;
                        let prev = self.resolve(last, line, Role::Prev);
                        let next = self.resolve(prev_pid, line, Role::Next);
                        self.pending = Some(TraceEvent::Switch {
                            cpu,
                            line,
                            time_us,
                            prev,
                            next,
                            prev_state: PrevState::Unknown,
                            inferred: true,
                        });
                    }
                }
                self.last_next[c] = Some(next_pid);
                let prev = self.resolve(prev_pid, line, Role::Prev);
                let next = self.resolve(next_pid, line, Role::Next);
                let ev = TraceEvent::Switch {
                    cpu,
                    line,
                    time_us,
                    prev,
                    next,
                    prev_state,
                    inferred: false,
                };
                // Emit the inferred switch first.
                if let Some(inf) = self.pending.take() {
                    self.pending = Some(ev);
                    return Ok(Some(inf));
                }
                ev
            }
            RawEvent::Fork { pid, child_pid, .. } => {
                self.summary.events.sched_process_fork += 1;
                let parent = self.resolve(pid, line, Role::Other);
                {
                    let e = self.tids.entry(child_pid).or_default();
                    // A new incarnation of this TID: skip TGID segments of an
                    // earlier task that ended before the fork.
                    let skip = e.segs.iter().take_while(|s| s.end < line).count();
                    e.cursor = skip as u32;
                    if pid == 2 {
                        e.kthread = true;
                    }
                }
                if pid == 2 {
                    self.summary.anomalies.kthreadd_children += 1;
                }
                let child = self.resolve(child_pid, line, Role::ForkChild);
                let new_mm = match (parent.mm, child.mm) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(p), Some(c)) => self.mm_tgid(p) != self.mm_tgid(c),
                };
                TraceEvent::Fork {
                    cpu,
                    line,
                    time_us,
                    parent,
                    child,
                    new_mm,
                }
            }
            RawEvent::Exec { pid, old_pid } => {
                self.summary.events.sched_process_exec += 1;
                if pid != old_pid {
                    self.summary.anomalies.exec_tid_changed += 1;
                    // The running task is renamed: not a gap.
                    if self.last_next[c] == Some(old_pid) {
                        self.last_next[c] = Some(pid);
                    }
                }
                let old = self.resolve(pid, line, Role::Other);
                let tgid = match self.tgid_of(pid, line) {
                    Some(t) => t,
                    None => l.tgid.filter(|&t| t > 0).unwrap_or(pid),
                };
                if let Some(e) = self.tids.get_mut(&pid) {
                    // exec from a kernel thread: it becomes a user task.
                    e.kthread = false;
                }
                let new_mm = self.bump(tgid);
                TraceEvent::Exec {
                    cpu,
                    line,
                    time_us,
                    tid: pid,
                    old_tid: old_pid,
                    old_mm: old.mm,
                    new_mm,
                }
            }
            RawEvent::Exit { pid, group_dead } => {
                self.summary.events.sched_process_exit += 1;
                let task = self.resolve(pid, line, Role::Other);
                let group_dead = match group_dead {
                    Some(g) => g,
                    None => {
                        self.warn(
                            WarningKind::ExitWithoutGroupDead,
                            line,
                            "exit without `group_dead=`: assumed from tid == tgid",
                        );
                        task.mm.is_some_and(|m| self.mm_tgid(m) == pid)
                    }
                };
                if let Some(mm) = task.mm {
                    if group_dead || self.per_thread {
                        let tgid = self.mm_tgid(mm);
                        if let Some(e) = self.tgids.get_mut(&tgid) {
                            e.dead = true;
                        }
                    }
                }
                TraceEvent::Exit {
                    cpu,
                    line,
                    time_us,
                    task,
                    group_dead,
                }
            }
            RawEvent::Free { pid } => {
                self.summary.events.sched_process_free += 1;
                TraceEvent::Free {
                    cpu,
                    line,
                    time_us,
                    tid: pid,
                }
            }
            RawEvent::Migrate {
                pid,
                orig_cpu,
                dest_cpu,
            } => {
                self.summary.events.sched_migrate_task += 1;
                for x in [orig_cpu, dest_cpu] {
                    if x > self.opts.max_cpu {
                        return Err(TraceError::input(
                            &self.path,
                            line,
                            format!("CPU {x} is above the maximum {}", self.opts.max_cpu),
                        ));
                    }
                }
                let task = self.resolve(pid, line, Role::Other);
                TraceEvent::Migrate {
                    cpu,
                    line,
                    time_us,
                    task,
                    orig_cpu,
                    dest_cpu,
                }
            }
            RawEvent::WakeupNew { pid, target_cpu } => {
                self.summary.events.sched_wakeup_new += 1;
                if target_cpu > self.opts.max_cpu {
                    return Err(TraceError::input(
                        &self.path,
                        line,
                        format!(
                            "CPU {target_cpu} is above the maximum {}",
                            self.opts.max_cpu
                        ),
                    ));
                }
                let task = self.resolve(pid, line, Role::Other);
                TraceEvent::WakeupNew {
                    cpu,
                    line,
                    time_us,
                    task,
                    target_cpu,
                }
            }
            RawEvent::ExitMm => {
                self.summary.events.lazy_tlb_exit_mm += 1;
                let task = self.resolve(l.tid, line, Role::Other);
                TraceEvent::ExitMm {
                    cpu,
                    line,
                    time_us,
                    task,
                }
            }
            RawEvent::Unknown { .. } => return Ok(None),
        };
        Ok(Some(ev))
    }

    fn mm_tgid(&self, k: MmKey) -> i32 {
        self.summary.mms.get(k.index()).map_or(-1, |m| m.tgid)
    }
}

/// The first 120 bytes of a line for a message: printable ASCII as is,
/// every other byte as `\xNN`, so that a binary file is never echoed raw
/// to a terminal.
fn excerpt(buf: &[u8]) -> String {
    let mut s = String::new();
    for &b in &buf[..buf.len().min(120)] {
        if b == b' ' || b.is_ascii_graphic() {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if buf.len() > 120 {
        s.push_str("...");
    }
    s
}

impl Iterator for TraceReader {
    type Item = Result<TraceEvent, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_event() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole trace, calling `f` for every resolved event in order, and
/// returns the summary. The callback sees [`MmKey`]s in order of first
/// appearance; their meaning is in [`TraceSummary::mms`].
pub fn for_each_event<F>(
    path: impl AsRef<Path>,
    opts: &ParseOptions,
    f: F,
) -> Result<TraceSummary, TraceError>
where
    F: FnMut(&TraceEvent),
{
    for_each_event_in(TraceInput::Path(path.as_ref().to_path_buf()), opts, f)
}

/// [`for_each_event`] over any [`TraceInput`].
pub fn for_each_event_in<F>(
    input: TraceInput,
    opts: &ParseOptions,
    mut f: F,
) -> Result<TraceSummary, TraceError>
where
    F: FnMut(&TraceEvent),
{
    let mut r = TraceReader::new(input, opts)?;
    while let Some(ev) = r.next_event()? {
        f(&ev);
    }
    Ok(r.finish())
}
