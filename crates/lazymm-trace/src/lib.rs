//! # lazymm-trace
//!
//! Parsing and capturing real Linux scheduler traces for the lazy-TLB mm
//! workbench.
//!
//! * [`TraceReader`] / [`for_each_event`]: a streaming, two-pass reader of
//!   `perf script` text (plain or gzip, detected by magic) that turns
//!   `sched:*` events into a resolved stream of [`TraceEvent`]s: every task
//!   carries its exec-aware mm identity ([`MmKey`] for `(TGID, generation)`)
//!   at that instant, kernel threads and idle carry none, and per-CPU gaps of
//!   the switch chain are repaired with inferred switches. The format, its
//!   quirks and the model are described in `traces/FORMAT.md`.
//! * [`capture()`]: records a new trace of a command with `perf`, with the
//!   kernel-thread sidecar; [`cli`] has the `lazymm capture` arguments.
//! * [`line::parse_line`]: the stateless line parser.
//!
//! The mm model (matches the `exec_aware` block of the oracle files):
//! * TGID of a TID: learned from any line where the task is current (a
//!   whole-trace lookup, so a task switched in before its first own line is
//!   resolved by look-ahead); never current: TGID = TID (counted in
//!   [`Anomalies`]). Without any `pid/` prefix each thread is its own mm.
//! * Generation of a TGID: +1 at every exec of one of its tasks (at the exec
//!   event) and after every exit with `group_dead=true` (at the next
//!   switch-in of that TGID; see [`TaskRef`]).
//! * The per-CPU lazily held mm (what a replay classifies kernel->user
//!   switches against) is the mm of the last user task switched in or out
//!   on that CPU, and an exec on the CPU loads the new mm (see
//!   [`TraceEvent::Exec`]). `tests/oracle.rs` has a reference classifier
//!   that reproduces the `exec_aware` (and classic) blocks of every
//!   `traces/*.oracle.json` exactly.
//! * Kernel threads: TID 0, the sidecar TIDs (or the name heuristic), and
//!   children of `kthreadd` (TID 2).
//!
//! Quick start:
//!
//! ```no_run
//! use lazymm_trace::{for_each_event, ParseOptions, TraceEvent};
//! let mut switches = 0;
//! let summary = for_each_event("traces/sched-pipe.perf.txt.gz", &ParseOptions::default(), |ev| {
//!     if let TraceEvent::Switch { prev, next, .. } = ev {
//!         switches += 1;
//!         let _ = (prev.mm, next.mm); // Option<MmKey>: None = idle / kernel thread
//!     }
//! })?;
//! println!("{switches} switches, {} gaps repaired, mm table {:?}", summary.gaps_repaired(), summary.mms.len());
//! # Ok::<(), lazymm_trace::TraceError>(())
//! ```
//!
//! Bad input never panics: see [`ParseOptions`] for which problems are
//! errors (`file:line: cause`) and which are counted warnings.
//!
//! Throughput (one core, release, `cargo bench -p lazymm-trace --bench
//! throughput`): about 4-5 M resolved events/s from decompressed text and
//! 2.6-4 M events/s end to end from the `.gz` files (both passes included).
//! Memory grows with the number of distinct tasks and mms, not with the
//! trace length.

#![warn(missing_docs)]

mod capture;
pub mod cli;
mod error;
mod event;
mod input;
pub mod kthreads;
pub mod line;
mod reader;

pub use capture::{
    capture, find_in_path, preflight as preflight_check, CaptureOptions, CaptureReport,
    SCRIPT_FIELDS, TRACE_EVENTS,
};
pub use error::TraceError;
pub use event::{
    Anomalies, EventCounts, KthreadOrigin, MmInfo, MmKey, TaskRef, TraceEvent, TraceSummary,
    WarningKind,
};
pub use input::TraceInput;
pub use line::PrevState;
pub use reader::{for_each_event, for_each_event_in, KthreadSource, ParseOptions, TraceReader};
