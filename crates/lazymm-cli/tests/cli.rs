//! What a person sees: the `lazymm` binary run as a user would, with good
//! and bad input. Every error is exit 2, `file[:line]: cause` once on
//! stderr, nothing on stdout and no file left behind.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lazymm"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run lazymm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lazymm-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Exit 2, nothing on stdout, exactly `expected` on stderr.
fn assert_error(o: &Output, expected: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "stdout must be empty on error");
    assert_eq!(text(&o.stderr), expected);
}

const SMALL: &[&str] = &[
    "compare",
    "--machine",
    "xeon-8480-2s",
    "--no-traces",
    "--rounds",
    "60",
    "--cpus",
    "2,4",
    "--arch",
    "x86,arm64",
    "--workloads",
    "ctxswitch-threads,exit-storm",
];

#[test]
fn a_missing_file_is_said_once() {
    let o = run(&["replay", "/nonexistent.perf.txt"]);
    assert_error(
        &o,
        "lazymm: error: /nonexistent.perf.txt: No such file or directory (os error 2)\n",
    );
    let o = run(&["replay", "traces/build.perf.txt.gz", "--kthreads", "/nope"]);
    assert_error(
        &o,
        "lazymm: error: /nope: No such file or directory (os error 2)\n",
    );
}

#[test]
fn random_bytes_and_empty_traces_are_refused() {
    let d = temp("bad-traces");
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let rnd = d.join("random.perf.txt");
    std::fs::write(&rnd, &noise).expect("write");
    let o = run(&["replay", rnd.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stdout), "");
    let e = text(&o.stderr);
    assert!(
        e.starts_with(&format!(
            "lazymm: error: {}: no sched_switch event could be read in ",
            rnd.display()
        )),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    // Binary bytes are never echoed raw.
    assert!(e.chars().all(|c| c == '\n' || !c.is_control()), "{e:?}");

    let empty = d.join("empty.perf.txt");
    std::fs::write(&empty, b"").expect("write");
    assert_error(
        &run(&["replay", empty.to_str().expect("utf8")]),
        &format!(
            "lazymm: error: {}: empty trace: no line to read\n",
            empty.display()
        ),
    );
    // `compare --traces DIR` refuses it too, instead of a row of zeros.
    let o = run(&[
        "compare",
        "--traces",
        d.to_str().expect("utf8"),
        "--rounds",
        "10",
        "--cpus",
        "2",
        "--workloads",
        "exit-storm",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stdout), "");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn mostly_junk_traces_need_lenient() {
    let d = temp("junk");
    // Two switches, then three lines of junk.
    let sw = |cpu: u32, t: u64, prev: i32, state: &str, next: i32| {
        format!(
            "            task   100/100   [{cpu:03}]      1.{t:06}:       sched:sched_switch: prev_comm=task prev_pid={prev} prev_prio=120 prev_state={state} ==> next_comm=task next_pid={next} next_prio=120\n"
        )
    };
    let body = sw(0, 10, 100, "S", 0) + &sw(0, 20, 0, "R", 100) + "junk\njunk\njunk\n";
    let p = d.join("junk.perf.txt");
    std::fs::write(&p, body).expect("write");
    let ps = p.to_str().expect("utf8");
    let o = run(&["replay", ps, "--schemes", "refcount"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stdout), "");
    assert!(
        text(&o.stderr).starts_with(&format!(
            "lazymm: error: {ps}: 3 of 5 lines are unreadable, more than the 2 events read"
        )),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["replay", ps, "--schemes", "refcount", "--lenient"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("3 warnings") || out.contains("4 warnings"),
        "{out}"
    );
    // The TGID line tells the truth, no Debug formatting.
    assert!(out.contains("TGIDs: on every line"), "{out}");
    assert!(
        !out.contains("Sidecar(") && !out.contains("Heuristic"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_options_are_refused_plainly() {
    let o = run(&["compare", "--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("invalid value '0' for '--jobs <JOBS>'"));
    let o = run(&["compare", "--seed", "-1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("`-1` is not a seed: a seed is a whole number from 0 to"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout), "");
}

#[test]
fn duplicate_values_are_deduplicated() {
    let o = run(&[
        "compare",
        "--no-traces",
        "--rounds",
        "20",
        "--cpus",
        "2,2",
        "--arch",
        "x86,x86",
        "--schemes",
        "refcount,refcount,lightweight",
        "--workloads",
        "exit-storm,exit-storm",
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    // Header + refcount + lightweight.
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn the_default_view_is_a_verdict() {
    let o = run(SMALL);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.lines().count() < 30, "{out}");
    // The verdict lines fit a wide terminal (the prose notes wrap).
    assert!(
        out.lines()
            .filter(|l| l.starts_with("  "))
            .all(|l| l.chars().count() <= 140),
        "{out}"
    );
    for arch in ["x86  (ledger: ", "arm64  (ledger: "] {
        assert!(out.contains(arch), "{out}");
    }
    assert!(
        out.contains("ctxswitch-threads") && out.contains(" fewest "),
        "{out}"
    );
    // Per machine, in simulated time: the pick, its ratio and PeterZ's
    // break-even in lazy round trips per process lifetime.
    assert!(out.contains("xeon-8480-2s  (x86, 224 CPUs"), "{out}");
    assert!(out.contains("switches/s         pick "), "{out}");
    assert!(out.contains("× refcount"), "{out}");
    assert!(
        out.contains("cheaper than refcount from L = ")
            || out.contains("no eligible scheme beats its process lifetime"),
        "{out}"
    );
    assert!(!out.contains("cycles"), "{out}");
    // Never "the cheapest" from one workload.
    assert!(!out.to_lowercase().contains("cheapest"), "{out}");
    // Piped: no progress bar, no stray control characters.
    assert!(!text(&o.stderr).contains('\u{1b}'));
}

#[test]
fn table_formats_carry_every_column() {
    let mut args = SMALL.to_vec();
    args.extend(["--format", "csv"]);
    let o = run(&args);
    let out = text(&o.stdout);
    let head: Vec<&str> = out.lines().next().expect("header").split(',').collect();
    assert_eq!(head.len(), 24);
    assert_eq!(
        head[13..16],
        ["mm_exits", "async_mmputs", "rcu_delayed_drops"]
    );
    // 9 schemes x 2 workloads x 2 profiles x 2 CPU counts.
    assert_eq!(out.lines().count(), 1 + 72);
    // Per-exit figures are blank for ctxswitch rows.
    let exit_col = head
        .iter()
        .position(|h| *h == "transfers/exit")
        .expect("col");
    for l in out.lines().skip(1) {
        let cells: Vec<&str> = l.split(',').collect();
        if cells[1] == "ctxswitch-threads" {
            assert_eq!(cells[exit_col], "", "{l}");
        } else {
            assert_ne!(cells[exit_col], "", "{l}");
        }
    }
    let mut args = SMALL.to_vec();
    args.extend(["--format", "markdown"]);
    let md = text(&run(&args).stdout);
    assert!(md.starts_with("| scheme | workload |"));
    assert_eq!(md.lines().count(), 2 + 72);
    let mut args = SMALL.to_vec();
    args.push("--table");
    let t = text(&run(&args).stdout);
    assert!(t.starts_with("scheme "), "{t}");
    let mut args = SMALL.to_vec();
    args.push("--json");
    let j: serde_json::Value = serde_json::from_slice(&run(&args).stdout).expect("json");
    assert_eq!(j["runs"].as_array().map(Vec::len), Some(72));
}

#[test]
fn broken_pipe_exits_quietly() {
    for args in [
        &[
            "replay",
            "traces/build.perf.txt.gz",
            "traces/sched-pipe.perf.txt.gz",
        ][..],
        &[
            "compare",
            "--no-traces",
            "--rounds",
            "20",
            "--cpus",
            "2",
            "--table",
        ][..],
    ] {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut out = child.stdout.take().expect("stdout");
        let mut first = [0u8; 16];
        out.read_exact(&mut first).expect("some output");
        drop(out);
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("stderr");
        let st = child.wait().expect("wait");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        // Killed by SIGPIPE as a Unix tool is, or done before it noticed.
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert!(
                st.signal() == Some(13) || st.code() == Some(0),
                "{args:?}: {st}"
            );
        }
    }
}

#[test]
fn an_unwritable_report_folder_is_refused_before_any_work() {
    let d = temp("report-unwritable");
    let file = d.join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let target = file.join("report");
    let o = run(&["compare", "--report", target.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stdout), "");
    let e = text(&o.stderr);
    assert!(
        e.starts_with(&format!(
            "lazymm: error: {}: cannot create the report folder: ",
            target.display()
        )),
        "{e}"
    );
    // No run was started: no progress line precedes the error.
    assert_eq!(e.lines().count(), 1, "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sim_sweep_prints_schemes_by_cpu_counts() {
    let o = run(&[
        "sim",
        "--sweep",
        "--cpus",
        "16",
        "--schemes",
        "refcount,lightweight",
        "--rounds",
        "50",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ctxswitch-threads on x86: cache-line transfers per switch"));
    let head: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(head, ["scheme", "2", "4", "8", "16", "ledger"]);
    assert!(lines[2].starts_with("refcount "));
    assert!(lines[3].starts_with("lightweight "));
    assert_eq!(lines.len(), 4, "{out}");
}

/// kthread-mix's kernel workers drop adopted mms with `mmput_async`: the
/// count is in `sim`'s JSON and table (3 on 8 CPUs, seed 1, 200 rounds, as
/// `crates/lazymm-sim/tests/exact_counts.rs` pins); `rcu_delayed_drops` is
/// 0 without the `preempt-rt` kernel option (the CLI runs Linux 6.12).
#[test]
fn sim_reports_mmput_async_and_rcu_delayed_drops() {
    let args = [
        "sim",
        "--cpus",
        "8",
        "--workload",
        "kthread-mix",
        "--rounds",
        "200",
        "--schemes",
        "refcount,lightweight",
        "--arch",
        "arm64",
    ];
    let o = run(&[&args[..], &["--json"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for r in j["runs"].as_array().expect("runs") {
        assert_eq!(r["async_mmputs"].as_u64(), Some(3), "{r}");
        assert_eq!(r["rcu_delayed_drops"].as_u64(), Some(0), "{r}");
    }
    let o = run(&[&args[..], &["--format", "csv"]].concat());
    let out = text(&o.stdout);
    let head: Vec<&str> = out.lines().next().expect("header").split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).expect(n);
    let (a, d) = (col("async_mmputs"), col("rcu_delayed_drops"));
    assert_eq!(out.lines().count(), 3, "{out}");
    for l in out.lines().skip(1) {
        let cells: Vec<&str> = l.split(',').collect();
        assert_eq!((cells[a], cells[d]), ("3", "0"), "{l}");
    }
}

/// `sim` and the report's sweep use one rule for the rounds, so the same
/// configuration gives the same figures (the report's 4096-CPU point is
/// what `sim --cpus 4096` prints).
#[test]
fn sim_default_rounds_match_the_report_sweep() {
    let o = run(&[
        "sim",
        "--cpus",
        "128",
        "--schemes",
        "lightweight",
        "--arch",
        "arm64",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let sim_run = &j["runs"][0];
    let cfg = lazymm_sim::RunConfig {
        scheme: lazymm::SchemeKind::parse("lightweight").expect("scheme"),
        arch: lazymm::Arch::parse("arm64").expect("arch"),
        cpus: 128,
        workload: lazymm_sim::WorkloadKind::CtxswitchThreads,
        seed: 1,
        // The report's rule: max(512, 90000 / cpus).
        rounds: 703,
        options: Default::default(),
    };
    let r = lazymm_sim::run(&cfg).expect("run");
    assert_eq!(sim_run["switches"].as_u64(), Some(r.switches));
    // Equal up to serde_json's float parsing (without its
    // `float_roundtrip` feature a parsed f64 may be one ulp off).
    let got = sim_run["transfers_per_switch"]
        .as_f64()
        .expect("transfers_per_switch");
    assert!(
        (got - r.transfers_per_switch).abs() <= 1e-12 * r.transfers_per_switch.abs(),
        "{got} vs {}",
        r.transfers_per_switch
    );
}

#[test]
fn a_filtered_report_sweeps_only_what_was_selected() {
    let d = temp("report-filtered");
    let o = run(&[
        "compare",
        "--no-traces",
        "--schemes",
        "refcount,lightweight",
        "--arch",
        "x86",
        "--cpus",
        "2,8",
        "--rounds",
        "40",
        "--machine",
        "this-machine",
        "--report",
        d.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("data.json")).expect("data.json"))
            .expect("json");
    let sweep = j["sweep"].as_array().expect("sweep");
    // 2 schemes x 1 profile x (2 ctxswitch workloads x {2,4,8} + exit-storm {2,4,8}).
    assert_eq!(sweep.len(), 2 * 9);
    for r in sweep {
        assert!(["refcount", "lightweight"].contains(&r["scheme"].as_str().unwrap_or("")));
        assert_eq!(r["arch"], "x86");
        assert!(r["cpus"].as_u64().unwrap_or(0) <= 8);
    }
    // The machine simulated in time, with its parameters and sources
    // (this machine: its own 2 CPUs only, its switch figure is the
    // runtime's, never extrapolated).
    let m = &j["machines"][0];
    assert_eq!(m["spec"]["name"], "this-machine");
    assert!(m["spec"]["cost_ns"]["switch"]["source"].is_string());
    let scaling = m["scaling"].as_array().expect("scaling");
    // 2 schemes x {2} CPUs.
    assert_eq!(scaling.len(), 2);
    assert!(j.get("cost_model").is_none());
    let html = std::fs::read_to_string(d.join("index.html")).expect("html");
    for s in ["mockup", "shootdown", "rcu-lazy-aware"] {
        assert!(
            !html.contains(&format!(">{s}<")),
            "{s} in a filtered report"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sim_machine_prints_simulated_time() {
    let o = run(&[
        "sim",
        "--machine",
        "xeon-8480-2s",
        "--schemes",
        "refcount,lightweight",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("xeon-8480-2s (x86, 224 CPUs)"), "{out}");
    let refcount = out
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("refcount"))
        .expect("refcount row");
    assert!(refcount.starts_with("224 "), "{out}");
    assert!(refcount.contains("1.00×"), "{out}");
    let o = run(&["sim", "--machine", "exit-storm-machine"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no such preset or file"));
    assert!(o.stdout.is_empty());
    // The round-based workloads run their rounds in simulated time.
    let o = run(&[
        "sim",
        "--machine",
        "xeon-8480-2s",
        "--workload",
        "hotplug",
        "--schemes",
        "refcount,shootdown",
        "--rounds",
        "20",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("hotplug in simulated time"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" refcount ") && l.contains("1.00×")),
        "{out}"
    );
    let o = run(&[
        "sim",
        "--machine",
        "xeon-8480-2s",
        "--workload",
        "hotplug",
        "--sweep",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("run hotplug at one --cpus"));
}

/// Issue 12 item 7: a litmus file that cannot be parsed is an error on
/// stderr (exit 2, nothing on stdout), its binary bytes escaped and the
/// excerpt bounded, never echoed raw.
#[test]
fn litmus_errors_go_to_stderr_escaped() {
    let d = temp("litmus-bin");
    let f = d.join("rnd.litmus");
    let bytes: Vec<u8> = (0..600u32).map(|i| (i * 151 + 7) as u8).collect();
    std::fs::write(&f, &bytes).unwrap();
    let o = run(&["litmus", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "stderr: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "", "stdout must be empty on error");
    let err = text(&o.stderr);
    assert!(err.contains("rnd.litmus:1: "), "{err}");
    assert!(
        o.stderr
            .iter()
            .all(|&b| b == b'\n' || (0x20..0x7f).contains(&b)),
        "raw bytes on stderr: {err}"
    );
    assert!(err.len() < 600, "excerpt not bounded: {} bytes", err.len());
}

/// `replay --teardowns`: one JSON line per teardown, for the exit-by-exit
/// check against the kernel (docs/kernel.md); an unwritable path is said
/// before any work, and a failing replay leaves no file behind.
#[test]
fn replay_writes_its_teardowns() {
    let d = temp("teardowns");
    let out = d.join("td.jsonl");
    let o = run(&[
        "replay",
        "kernel/results/debug-trace-exit.perf.txt.gz",
        "--kthreads",
        "kernel/results/debug-trace-exit.kthreads.txt",
        "--schemes",
        "lightweight",
        "--format",
        "json",
        "--teardowns",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("teardowns written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    // 537 teardowns in the trace and the end-of-trace one (kernel_trace.rs).
    assert_eq!(lines.len(), 538);
    let sum = |k: &str| lines.iter().map(|t| t[k].as_u64().expect(k)).sum::<u64>();
    assert_eq!((sum("self_takes"), sum("handoffs")), (268, 12));
    let o = run(&[
        "replay",
        "traces/build.perf.txt.gz",
        "--teardowns",
        "/nonexistent-dir/td.jsonl",
    ]);
    assert_error(
        &o,
        "lazymm: error: /nonexistent-dir/td.jsonl: No such file or directory (os error 2)\n",
    );
    let o = run(&[
        "replay",
        "/nonexistent.perf.txt",
        "--teardowns",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!out.exists(), "a failed replay leaves no teardown file");
    let _ = std::fs::remove_dir_all(&d);
}
