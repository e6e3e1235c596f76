//! Parser for one line of `perf script` output (no state, no allocation).
//!
//! Accepted shapes (see `traces/FORMAT.md`):
//!
//! ```text
//! <comm> <pid>/<tid> [<cpu>] <secs>.<frac>: <subsys>:<event>: <fields>   (-F comm,pid,tid,cpu,time,event,trace)
//! <comm> <tid> [<cpu>] <secs>.<frac>: <subsys>:<event>: <fields>         (perf's default field set)
//! ```
//!
//! The header is located like the reference regex
//! `^\s*(.*?)\s+(-?\d+)/(-?\d+)\s+\[(\d+)\]\s+(\d+\.\d+):\s+sched:(\w+):\s(.*)$`:
//! the first `[` that is preceded by a numeric `pid/tid` (or `tid`) token and
//! followed by a well-formed `cpu`, time and event name wins, so a comm that
//! contains spaces or brackets is handled.

use memchr::{memchr, memchr_iter, memrchr};

/// State of the previous task at a `sched_switch` (`prev_state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PrevState {
    /// `R`: still runnable (preempted or yielded).
    Runnable,
    /// `R+`: runnable, preempted (kernel preemption marker).
    Preempted,
    /// `S`: interruptible sleep.
    Sleeping,
    /// `D`: uninterruptible sleep.
    DiskSleep,
    /// `T`: stopped.
    Stopped,
    /// `t`: traced.
    Traced,
    /// `X`: dead; the final switch of an exiting task.
    Dead,
    /// `Z`: zombie; the final switch of an exiting task.
    Zombie,
    /// `P`: parked.
    Parked,
    /// `I`: idle (kernel threads in `TASK_IDLE`).
    Idle,
    /// Anything else, and inferred switches (quirk 1), whose state is unknown.
    Unknown,
}

impl PrevState {
    /// Parses the `prev_state=` value (`R`, `R+`, `S`, `D|K`, ...); only the
    /// first state letter and a `+` suffix are significant.
    pub fn parse(v: &[u8]) -> PrevState {
        match v {
            [b'R', b'+', ..] => PrevState::Preempted,
            [b'R', ..] => PrevState::Runnable,
            [b'S', ..] => PrevState::Sleeping,
            [b'D', ..] => PrevState::DiskSleep,
            [b'T', ..] => PrevState::Stopped,
            [b't', ..] => PrevState::Traced,
            [b'X', ..] => PrevState::Dead,
            [b'Z', ..] => PrevState::Zombie,
            [b'P', ..] => PrevState::Parked,
            [b'I', ..] => PrevState::Idle,
            _ => PrevState::Unknown,
        }
    }

    /// `true` for `X` and `Z`: the final switch of an exiting task.
    pub fn is_exit(self) -> bool {
        matches!(self, PrevState::Dead | PrevState::Zombie)
    }
}

/// The fields of a recognised `sched:*` event, as raw TIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEvent<'a> {
    /// `sched:sched_switch`.
    Switch {
        /// `prev_comm=`.
        prev_comm: &'a [u8],
        /// `prev_pid=` (a TID).
        prev_pid: i32,
        /// `prev_state=`.
        prev_state: PrevState,
        /// `next_comm=`.
        next_comm: &'a [u8],
        /// `next_pid=` (a TID).
        next_pid: i32,
    },
    /// `sched:sched_process_fork`.
    Fork {
        /// `pid=` of the parent.
        pid: i32,
        /// `child_comm=`.
        child_comm: &'a [u8],
        /// `child_pid=`.
        child_pid: i32,
    },
    /// `sched:sched_process_exit`.
    Exit {
        /// `pid=` of the exiting task.
        pid: i32,
        /// `group_dead=` (absent on kernels before 6.16: `None`).
        group_dead: Option<bool>,
    },
    /// `sched:sched_process_exec`.
    Exec {
        /// `pid=` after exec.
        pid: i32,
        /// `old_pid=` before exec.
        old_pid: i32,
    },
    /// `sched:sched_process_free`.
    Free {
        /// `pid=` of the freed task.
        pid: i32,
    },
    /// `sched:sched_migrate_task`.
    Migrate {
        /// `pid=` of the migrated task.
        pid: i32,
        /// `orig_cpu=`.
        orig_cpu: u32,
        /// `dest_cpu=`.
        dest_cpu: u32,
    },
    /// `sched:sched_wakeup_new`.
    WakeupNew {
        /// `pid=` of the new task.
        pid: i32,
        /// `target_cpu=`.
        target_cpu: u32,
    },
    /// `lazy_tlb:lazy_tlb_exit_mm` (the kernel patch of `kernel/patches/`):
    /// the line's task gave up its mm in `exit_mm` and now borrows it
    /// lazily. No fields are used (`mm=` is a hashed pointer).
    ExitMm,
    /// Any other event name (`subsys:event`), fields not parsed.
    Unknown {
        /// The full event name, e.g. `sched:sched_wakeup`.
        name: &'a [u8],
    },
}

/// One parsed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// The prefix comm (trimmed; may contain spaces).
    pub comm: &'a [u8],
    /// The prefix TGID (`pid` before the slash): `None` for perf's default
    /// field set (no `pid/` prefix); `Some(-1)` when perf could not resolve it.
    pub tgid: Option<i32>,
    /// The prefix TID of the current task (`-1` when unresolved, quirk 3).
    pub tid: i32,
    /// CPU number.
    pub cpu: u32,
    /// Timestamp in microseconds (digits beyond the 6th are truncated).
    pub time_us: u64,
    /// The event and its fields.
    pub event: RawEvent<'a>,
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// What is wrong.
    pub message: String,
    /// The header was fine but the fields of a recognised `sched:*` event
    /// were missing or malformed.
    pub in_fields: bool,
}

impl LineError {
    fn new(message: impl Into<String>) -> Self {
        LineError {
            message: message.into(),
            in_fields: false,
        }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, LineError> {
    Err(LineError::new(msg))
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[inline]
fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    let (&first, rest) = n.split_first()?;
    let mut from = 0;
    while from < h.len() {
        let i = from + memchr(first, &h[from..])?;
        if h[i + 1..].starts_with(rest) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

#[inline]
fn rfind(h: &[u8], n: &[u8]) -> Option<usize> {
    let (&first, rest) = n.split_first()?;
    let mut end = h.len();
    while end > 0 {
        let i = memrchr(first, &h[..end])?;
        if h[i + 1..].starts_with(rest) {
            return Some(i);
        }
        end = i;
    }
    None
}

/// Parses an optionally negative decimal `i32`; the whole slice must be digits.
#[inline]
pub(crate) fn parse_i32(s: &[u8]) -> Option<i32> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

#[inline]
fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// The value after the last ` key=` (key given with its leading space and
/// trailing `=`), up to the next space.
#[inline]
fn field<'a>(fields: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = rfind(fields, key)? + key.len();
    let rest = &fields[at..];
    let end = memchr(b' ', rest).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn num_field(fields: &[u8], key: &'static str) -> Result<i32, LineError> {
    let kb = key.as_bytes();
    match field(fields, kb) {
        Some(v) => parse_i32(v).map_or_else(
            || {
                err(format!(
                    "bad value `{}` for `{}`",
                    String::from_utf8_lossy(v),
                    key.trim()
                ))
            },
            Ok,
        ),
        None => err(format!("missing field `{}`", key.trim())),
    }
}

fn cpu_field(fields: &[u8], key: &'static str) -> Result<u32, LineError> {
    match field(fields, key.as_bytes()) {
        Some(v) => parse_u32(v).map_or_else(
            || {
                err(format!(
                    "bad value `{}` for `{}`",
                    String::from_utf8_lossy(v),
                    key.trim()
                ))
            },
            Ok,
        ),
        None => err(format!("missing field `{}`", key.trim())),
    }
}

/// Parses `secs.frac` into microseconds.
fn parse_time(s: &[u8]) -> Option<u64> {
    let dot = memchr(b'.', s)?;
    let (int, frac) = (&s[..dot], &s[dot + 1..]);
    if int.is_empty() || frac.is_empty() || int.len() > 12 {
        return None;
    }
    let mut secs: u64 = 0;
    for &c in int {
        if !c.is_ascii_digit() {
            return None;
        }
        secs = secs * 10 + u64::from(c - b'0');
    }
    let mut us: u64 = 0;
    for (i, &c) in frac.iter().enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        if i < 6 {
            us = us * 10 + u64::from(c - b'0');
        }
    }
    for _ in frac.len()..6 {
        us *= 10;
    }
    secs.checked_mul(1_000_000)?.checked_add(us)
}

/// Tries to parse the header starting at the `[` at byte `lb`.
/// Returns (comm, tgid, tid, cpu, time_us, event name, fields).
#[allow(clippy::type_complexity)]
fn try_header(
    line: &[u8],
    lb: usize,
) -> Result<(&[u8], Option<i32>, i32, u32, u64, &[u8], &[u8]), LineError> {
    // Token before `[`: `pid/tid` or `tid`, preceded and followed by blanks.
    let mut q = lb;
    while q > 0 && is_ws(line[q - 1]) {
        q -= 1;
    }
    if q == lb {
        return err("no blank before `[cpu]`");
    }
    let mut ts = q;
    while ts > 0 && !is_ws(line[ts - 1]) {
        ts -= 1;
    }
    let tok = &line[ts..q];
    let (tgid, tid) = match memchr(b'/', tok) {
        Some(s) => match (parse_i32(&tok[..s]), parse_i32(&tok[s + 1..])) {
            (Some(p), Some(t)) => (Some(p), t),
            _ => return err("bad `pid/tid` before `[cpu]`"),
        },
        None => match parse_i32(tok) {
            Some(t) => (None, t),
            None => return err("bad `tid` before `[cpu]`"),
        },
    };
    let comm = line[..ts].trim_ascii();
    // `[cpu]`
    let rest = &line[lb + 1..];
    let rb = memchr(b']', rest).ok_or_else(|| LineError::new("unterminated `[cpu]`"))?;
    let cpu = parse_u32(&rest[..rb]).ok_or_else(|| LineError::new("bad cpu number"))?;
    let mut rest = &rest[rb + 1..];
    // time
    let n = rest.iter().take_while(|&&b| is_ws(b)).count();
    if n == 0 {
        return err("no blank after `[cpu]`");
    }
    rest = &rest[n..];
    let colon = memchr(b':', rest).ok_or_else(|| LineError::new("missing `time:`"))?;
    let time_us = parse_time(&rest[..colon]).ok_or_else(|| LineError::new("bad timestamp"))?;
    rest = &rest[colon + 1..];
    // event name `subsys:event:`
    let n = rest.iter().take_while(|&&b| is_ws(b)).count();
    rest = &rest[n..];
    let c1 = memchr(b':', rest).ok_or_else(|| LineError::new("missing event name"))?;
    let c2 = memchr(b':', &rest[c1 + 1..])
        .map(|i| i + c1 + 1)
        .ok_or_else(|| LineError::new("missing event name"))?;
    let name = &rest[..c2];
    let word =
        |s: &[u8]| !s.is_empty() && s.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if !word(&name[..c1]) || !word(&name[c1 + 1..]) {
        return err("bad event name");
    }
    let mut fields = &rest[c2 + 1..];
    if let Some((&b' ', f)) = fields.split_first() {
        fields = f;
    }
    Ok((comm, tgid, tid, cpu, time_us, name, fields))
}

/// The common prefix of a line: everything but the event's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The prefix comm (trimmed).
    pub comm: &'a [u8],
    /// The prefix TGID, `None` without a `pid/` prefix.
    pub tgid: Option<i32>,
    /// The prefix TID (`-1` when unresolved).
    pub tid: i32,
    /// CPU number.
    pub cpu: u32,
    /// Timestamp in microseconds.
    pub time_us: u64,
    /// Event name, e.g. `sched:sched_switch`.
    pub name: &'a [u8],
    /// The event's fields (unparsed).
    pub fields: &'a [u8],
}

/// Parses only the header of a line (cheaper than [`parse_line`]).
pub fn parse_header(line: &[u8]) -> Result<Header<'_>, LineError> {
    let mut line = line;
    while let Some((&last, init)) = line.split_last() {
        if last == b'\n' || last == b'\r' {
            line = init;
        } else {
            break;
        }
    }
    let mut first_err = None;
    for lb in memchr_iter(b'[', line) {
        match try_header(line, lb) {
            Ok((comm, tgid, tid, cpu, time_us, name, fields)) => {
                return Ok(Header {
                    comm,
                    tgid,
                    tid,
                    cpu,
                    time_us,
                    name,
                    fields,
                })
            }
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| LineError::new("no `[cpu]` field")))
}

/// `prev_pid=` of a `sched_switch`'s fields.
pub fn switch_prev_pid(fields: &[u8]) -> Option<i32> {
    match parse_switch(fields) {
        Ok(RawEvent::Switch { prev_pid, .. }) => Some(prev_pid),
        _ => None,
    }
}

/// Parses one line (without or with its trailing newline).
///
/// Never panics, whatever the input. Unknown event names parse as
/// [`RawEvent::Unknown`]; a recognised `sched:*` event with missing or
/// malformed fields is an error.
pub fn parse_line(line: &[u8]) -> Result<RawLine<'_>, LineError> {
    let Header {
        comm,
        tgid,
        tid,
        cpu,
        time_us,
        name,
        fields,
    } = parse_header(line)?;
    let event = parse_fields(name, fields, cpu).map_err(|mut e| {
        e.in_fields = true;
        e
    })?;
    Ok(RawLine {
        comm,
        tgid,
        tid,
        cpu,
        time_us,
        event,
    })
}

/// Parses the fields of event `name`.
fn parse_fields<'a>(name: &'a [u8], fields: &'a [u8], cpu: u32) -> Result<RawEvent<'a>, LineError> {
    if name == b"lazy_tlb:lazy_tlb_exit_mm" {
        return Ok(RawEvent::ExitMm);
    }
    Ok(match name.strip_prefix(b"sched:") {
        Some(b"sched_switch") => parse_switch(fields)?,
        Some(b"sched_process_fork") => {
            let pid = num_field(fields, " pid=")?;
            let child_pid = num_field(fields, " child_pid=")?;
            let child_comm = match (find(fields, b"child_comm="), rfind(fields, b" child_pid=")) {
                (Some(a), Some(b)) if a + 11 <= b => &fields[a + 11..b],
                _ => b"",
            };
            RawEvent::Fork {
                pid,
                child_comm,
                child_pid,
            }
        }
        Some(b"sched_process_exit") => {
            let pid = num_field(fields, " pid=")?;
            let group_dead = match field(fields, b" group_dead=") {
                None => None,
                Some(b"true") | Some(b"1") => Some(true),
                Some(b"false") | Some(b"0") => Some(false),
                Some(v) => {
                    return err(format!(
                        "bad value `{}` for `group_dead`",
                        String::from_utf8_lossy(v)
                    ))
                }
            };
            RawEvent::Exit { pid, group_dead }
        }
        Some(b"sched_process_exec") => RawEvent::Exec {
            pid: num_field(fields, " pid=")?,
            old_pid: num_field(fields, " old_pid=")?,
        },
        Some(b"sched_process_free") => RawEvent::Free {
            pid: num_field(fields, " pid=")?,
        },
        Some(b"sched_migrate_task") => RawEvent::Migrate {
            pid: num_field(fields, " pid=")?,
            orig_cpu: cpu_field(fields, " orig_cpu=")?,
            dest_cpu: cpu_field(fields, " dest_cpu=")?,
        },
        Some(b"sched_wakeup_new") => RawEvent::WakeupNew {
            pid: num_field(fields, " pid=")?,
            // `target_cpu` is absent on some old kernels: use the event's CPU.
            target_cpu: match field(fields, b" target_cpu=") {
                Some(v) => parse_u32(v).ok_or_else(|| LineError::new("bad `target_cpu`"))?,
                None => cpu,
            },
        },
        _ => RawEvent::Unknown { name },
    })
}

fn parse_switch(fields: &[u8]) -> Result<RawEvent<'_>, LineError> {
    // Split at the arrow that follows `prev_state=`.
    let ps = find(fields, b" prev_state=").ok_or_else(|| LineError::new("missing `prev_state`"))?;
    let arrow = find(&fields[ps..], b" ==> ")
        .map(|a| a + ps)
        .ok_or_else(|| LineError::new("missing ` ==> `"))?;
    let left = &fields[..arrow];
    let right = &fields[arrow + 4..]; // keeps the leading blank of ` next_comm=`
    let prev_pid = num_field(left, " prev_pid=")?;
    let prev_state = PrevState::parse(field(left, b" prev_state=").unwrap_or(b""));
    let next_pid = num_field(right, " next_pid=")?;
    let prev_comm = match (find(left, b"prev_comm="), rfind(left, b" prev_pid=")) {
        (Some(a), Some(b)) if a + 10 <= b => &left[a + 10..b],
        _ => b"",
    };
    let next_comm = match (find(right, b"next_comm="), rfind(right, b" next_pid=")) {
        (Some(a), Some(b)) if a + 10 <= b => &right[a + 10..b],
        _ => b"",
    };
    Ok(RawEvent::Switch {
        prev_comm,
        prev_pid,
        prev_state,
        next_comm,
        next_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_readme_examples() {
        let l = parse_line(b"             :-1  6483/-1    [000]   243.805152:       sched:sched_switch: prev_comm=sched-messaging prev_pid=6511 prev_prio=120 prev_state=X ==> next_comm=sched-messaging next_pid=6644 next_prio=120\n").unwrap();
        assert_eq!(l.comm, b":-1");
        assert_eq!(
            (l.tgid, l.tid, l.cpu, l.time_us),
            (Some(6483), -1, 0, 243_805_152)
        );
        assert_eq!(
            l.event,
            RawEvent::Switch {
                prev_comm: b"sched-messaging",
                prev_pid: 6511,
                prev_state: PrevState::Dead,
                next_comm: b"sched-messaging",
                next_pid: 6644
            }
        );
        let l = parse_line(b" sched-messaging  6483/6483  [000]   243.787269:   sched:sched_wakeup_new: comm=sched-messaging pid=6485 prio=120 target_cpu=001").unwrap();
        assert_eq!(
            l.event,
            RawEvent::WakeupNew {
                pid: 6485,
                target_cpu: 1
            }
        );
        let l = parse_line(b" sched-messaging  6483/6511  [000]   243.805098: sched:sched_process_exit: comm=sched-messaging pid=6511 prio=120 group_dead=false").unwrap();
        assert_eq!(
            l.event,
            RawEvent::Exit {
                pid: 6511,
                group_dead: Some(false)
            }
        );
    }

    #[test]
    fn kernel_patch_exit_mm_event() {
        // kernel/tracefs2perf.py output of the patch's lazy_tlb_exit_mm
        // (kernel/patches/0001): the task is the line's own.
        let l = parse_line(
            b"             sed 54/54 [000] 0.006616: lazy_tlb:lazy_tlb_exit_mm: mm=(____ptrval____)",
        )
        .unwrap();
        assert_eq!((l.tgid, l.tid, l.cpu), (Some(54), 54, 0));
        assert_eq!(l.event, RawEvent::ExitMm);
        // Other lazy_tlb events are not trace events of the replay.
        let l = parse_line(b"sed 54/54 [000] 0.1: lazy_tlb:lazy_tlb_teardown: mm=x").unwrap();
        assert!(matches!(l.event, RawEvent::Unknown { .. }));
    }

    #[test]
    fn comm_with_spaces_and_brackets() {
        let l = parse_line(
            b"  a [b] 1/2 c  77/78  [001]   1.5: sched:sched_process_free: comm=x y pid=9 prio=120",
        )
        .unwrap();
        assert_eq!(l.comm, b"a [b] 1/2 c");
        assert_eq!(
            (l.tgid, l.tid, l.cpu, l.time_us),
            (Some(77), 78, 1, 1_500_000)
        );
        assert_eq!(l.event, RawEvent::Free { pid: 9 });
    }

    #[test]
    fn default_field_set() {
        let l = parse_line(b"            perf  6737 [000]   245.804985:       sched:sched_switch: prev_comm=perf prev_pid=6737 prev_prio=120 prev_state=D ==> next_comm=migration/0 next_pid=18 next_prio=0").unwrap();
        assert_eq!((l.tgid, l.tid), (None, 6737));
        assert!(matches!(
            l.event,
            RawEvent::Switch {
                next_pid: 18,
                next_comm: b"migration/0",
                ..
            }
        ));
    }

    #[test]
    fn nanoseconds_truncate() {
        let l =
            parse_line(b"x 1/1 [000] 2.123456789: sched:sched_process_free: comm=x pid=9 prio=1")
                .unwrap();
        assert_eq!(l.time_us, 2_123_456);
    }

    #[test]
    fn errors() {
        assert!(parse_line(b"").is_err());
        assert!(parse_line(b"garbage").is_err());
        assert!(
            parse_line(b"x 1/1 [000] 2.1: sched:sched_switch: prev_comm=x prev_pid=1").is_err()
        );
        let l = parse_line(b"x 1/1 [000] 2.1: irq:irq_handler_entry: irq=5").unwrap();
        assert_eq!(
            l.event,
            RawEvent::Unknown {
                name: b"irq:irq_handler_entry"
            }
        );
    }
}
