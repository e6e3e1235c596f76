//! Fuzz-style property tests: random, garbled and truncated lines never
//! panic the line parser or the reader, and no line is ever dropped
//! silently (every line is an event or a counted warning). Runs in a few
//! seconds.

use lazymm_trace::line::{parse_line, RawEvent};
use lazymm_trace::{KthreadSource, ParseOptions, TraceInput, TraceReader, WarningKind};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

const SAMPLES: &[&str] = &[
    "            perf  6482/6482  [000]   243.778499:       sched:sched_switch: prev_comm=perf prev_pid=6482 prev_prio=120 prev_state=D ==> next_comm=migration/0 next_pid=18 next_prio=0",
    "             :-1  6483/-1    [000]   243.805152:       sched:sched_switch: prev_comm=sched-messaging prev_pid=6511 prev_prio=120 prev_state=X ==> next_comm=sched-messaging next_pid=6644 next_prio=120",
    " sched-messaging  6483/6483  [000]   243.787263: sched:sched_process_fork: comm=sched-messaging pid=6483 child_comm=sched-messaging child_pid=6485",
    " sched-messaging  6483/6511  [000]   243.805098: sched:sched_process_exit: comm=sched-messaging pid=6511 prio=120 group_dead=false",
    "            make  4508/4508  [001]   487.512290: sched:sched_process_exec: filename=/usr/bin/make pid=4508 old_pid=4508",
    "         swapper     0/0     [000]   243.823168: sched:sched_process_free: comm=sched-messaging pid=6511 prio=120",
    "     migration/0    18/18    [000]   243.778505: sched:sched_migrate_task: comm=perf pid=6482 prio=120 orig_cpu=0 dest_cpu=1",
    " sched-messaging  6483/6483  [000]   243.787269:   sched:sched_wakeup_new: comm=sched-messaging pid=6485 prio=120 target_cpu=000",
    "            perf  6737 [000]   245.804985:       sched:sched_switch: prev_comm=perf prev_pid=6737 prev_prio=120 prev_state=D ==> next_comm=migration/0 next_pid=18 next_prio=0",
];

/// A sample line, mutated: truncated, bytes replaced, bytes inserted.
fn garbled() -> impl Strategy<Value = Vec<u8>> {
    (
        0..SAMPLES.len(),
        any::<usize>(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(i, cut, repl, ins, truncate)| {
            let mut v = SAMPLES[i].as_bytes().to_vec();
            for (at, b) in repl {
                let n = v.len();
                if n > 0 {
                    v[at % n] = b;
                }
            }
            for (at, b) in ins {
                let n = v.len();
                v.insert(at % (n + 1), b);
            }
            if truncate {
                let n = v.len();
                v.truncate(cut % (n + 1));
            }
            v
        })
}

/// Random bytes biased towards the characters that matter to the parser.
fn noisy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            any::<u8>(),
            Just(b' '),
            Just(b'['),
            Just(b']'),
            Just(b'/'),
            Just(b':'),
            Just(b'.'),
            Just(b'='),
            Just(b'-'),
            (b'0'..=b'9'),
        ],
        0..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn line_parser_never_panics(line in prop_oneof![garbled(), noisy()]) {
        if let Ok(l) = parse_line(&line) {
            // Whatever parses has a sane event.
            if let RawEvent::Unknown { name } = l.event {
                prop_assert!(name.contains(&b':'));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reader_never_panics_nor_drops_lines(
        lines in proptest::collection::vec(prop_oneof![3 => garbled(), 1 => noisy()], 0..40),
    ) {
        let mut text = Vec::new();
        for l in &lines {
            // A line is one line: newlines inside random bytes split it.
            text.extend(l.iter().map(|&b| if b == b'\n' { b' ' } else { b }));
            text.push(b'\n');
        }
        let inp = TraceInput::Bytes { name: PathBuf::from("fuzz.txt"), data: Arc::from(text) };
        let opts = ParseOptions { kthreads: KthreadSource::IdleOnly, lenient: true, ..ParseOptions::default() };
        let Ok(mut r) = TraceReader::new(inp, &opts) else { return Ok(()) };
        let mut n = 0u64;
        loop {
            match r.next_event() {
                Ok(Some(_)) => n += 1,
                Ok(None) => break,
                // A file without any switch is refused at its end, every
                // line read and counted (checked below).
                Err(e) if e.to_string().contains("no sched_switch event")
                    || e.to_string().contains("empty trace") => break,
                // Otherwise only the CPU limit can fail a lenient read of
                // in-memory text.
                Err(e) => { prop_assert!(e.to_string().contains("above the maximum"), "{}", e); return Ok(()); }
            }
        }
        let s = r.finish();
        let e = &s.events;
        let recognised = e.sched_switch + e.sched_process_fork + e.sched_process_exit + e.sched_process_exec
            + e.sched_process_free + e.sched_migrate_task + e.sched_wakeup_new;
        prop_assert_eq!(n, recognised + e.inferred_switch);
        let w = |k| s.warnings.get(&k).copied().unwrap_or(0);
        let skipped = w(WarningKind::UnparsedLine) + w(WarningKind::MalformedFields) + w(WarningKind::UnknownEvent)
            + w(WarningKind::BlankLine) + w(WarningKind::LineTooLong);
        prop_assert_eq!(s.lines, lines.len() as u64);
        prop_assert_eq!(recognised + skipped, s.lines, "{:?}", s.warning_samples);
    }
}
