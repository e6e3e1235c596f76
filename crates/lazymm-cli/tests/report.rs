//! `lazymm compare --report DIR`: the report folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lazymm::{Arch, SchemeKind};
use lazymm_cli::compare::{bundled_traces, run_all, run_jobs, trace_jobs, Job};
use lazymm_cli::report;
use lazymm_sim::{RunConfig, RunReport, WorkloadKind};
use report::timed::{run_machines, MachineTime, TimedPlan};
use report::{sweep_configs, write_report, ReportInput};

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!(
        "lazymm-report-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn cfg(
    scheme: SchemeKind,
    arch: Arch,
    workload: WorkloadKind,
    cpus: usize,
    rounds: u64,
) -> RunConfig {
    RunConfig {
        scheme,
        arch,
        cpus,
        workload,
        seed: 1,
        rounds,
        options: Default::default(),
    }
}

/// A small set: two profiles, every scheme, a short sweep, exit-storm, and a
/// fake trace (a renamed fork-exec-exit run) so the trace paths are covered.
fn small_set() -> (Vec<RunReport>, Vec<RunReport>) {
    let mut runs = Vec::new();
    let mut sweep = Vec::new();
    for arch in [Arch::X86, Arch::Arm64] {
        for scheme in SchemeKind::ALL {
            for cpus in [2, 4, 8] {
                for w in [
                    WorkloadKind::CtxswitchThreads,
                    WorkloadKind::CtxswitchProcesses,
                ] {
                    sweep.push(lazymm_sim::run(&cfg(scheme, arch, w, cpus, 40)).expect("run"));
                }
                sweep.push(
                    lazymm_sim::run(&cfg(scheme, arch, WorkloadKind::ExitStorm, cpus, 32))
                        .expect("run"),
                );
            }
            runs.push(
                lazymm_sim::run(&cfg(scheme, arch, WorkloadKind::CtxswitchThreads, 8, 30))
                    .expect("run"),
            );
            let mut t = lazymm_sim::run(&cfg(scheme, arch, WorkloadKind::ForkExecExit, 4, 30))
                .expect("run");
            t.workload = "trace:fake".into();
            runs.push(t);
        }
    }
    (runs, sweep)
}

/// Simulated time on two small presets: this machine (2 CPUs, x86; its
/// runtime-level switch figure is never extrapolated) and the Altra (160
/// CPUs, arm64; swept to 8, plus its own size).
fn small_machines(sweep_to: Option<usize>) -> Vec<MachineTime> {
    let specs = report::timed::load_machines(&["this-machine".into(), "altra-q80-2s".into()])
        .expect("presets load");
    run_machines(
        &specs,
        &SchemeKind::ALL,
        TimedPlan {
            sweep_to,
            at: None,
            walk: true,
        },
        2,
        true,
    )
    .expect("timed runs")
}

fn svgs_of(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    v.sort();
    v
}

#[test]
fn report_folder_is_complete() {
    let (runs, sweep) = small_set();
    let machines = small_machines(Some(8));
    let dir = temp_dir("small");
    let input = ReportInput {
        runs: &runs,
        sweep: &sweep,
        machines: &machines,
        command: "lazymm compare --report /tmp/x --cpus 8".into(),
    };
    let written = write_report(&dir, &input).expect("write_report");
    let index = dir.join("index.html");
    assert!(index.is_file(), "index.html missing");
    assert!(written.contains(&index));
    let html = std::fs::read_to_string(&index).expect("read index");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    // Self-contained: no external scripts or style sheets.
    assert!(!html.contains("<script"));
    assert!(!html.contains("<link"));
    for ext in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(!html.contains(ext), "external resource: {ext}");
    }
    assert!(
        html.contains("lazymm compare --report /tmp/x --cpus 8"),
        "command shown"
    );

    let svgs = svgs_of(&dir);
    // Per profile (exact counts): scaling, exit cost, traces.
    for arch in ["x86", "arm64"] {
        for kind in ["scaling", "exit-cost", "exit-scaling", "traces"] {
            let f = format!("{kind}-{arch}.svg");
            assert!(svgs.contains(&f), "{f} missing: {svgs:?}");
        }
    }
    // Per machine (simulated time): scaling, exit, break-even.
    for m in ["this-machine", "altra-q80-2s"] {
        for kind in ["time-scaling", "time-exit", "break-even"] {
            let f = format!("{kind}-{m}.svg");
            assert!(svgs.contains(&f), "{f} missing: {svgs:?}");
        }
    }
    // No cost-model cycles anywhere: time or exact counts.
    for gone in ["cycles/", "est. cycles", "cycles per", "cycles / "] {
        assert!(
            !html.contains(gone),
            "the constant cost model's cycles are gone: {gone}"
        );
    }
    // this-machine (a runtime-level switch figure) stays at its 2 CPUs;
    // the Altra is swept to 8 and at its own 160.
    let tm = &machines[0];
    assert_eq!(tm.scaling.iter().map(|p| p.cpus).max(), Some(2));
    assert!(!tm.scaling.iter().any(|p| p.extrapolated));
    let alt: Vec<usize> = machines[1]
        .scaling
        .iter()
        .filter(|p| p.scheme == "refcount")
        .map(|p| p.cpus_used)
        .collect();
    assert_eq!(alt, [2, 4, 8, 160]);
    // No SMT on either: the pairs sit on neighbouring CPUs, said so.
    assert!(machines[1].scaling.iter().all(|p| p.placement == "spread"));
    assert!(
        html.contains("switches/s (preset size)"),
        "decision table in time"
    );
    assert!(html.contains("walk: IPIs/s per CPU"), "exit walk table");
    for s in &svgs {
        assert!(
            written.iter().any(|w| w.ends_with(s)),
            "{s} written but not returned"
        );
        assert!(
            html.contains(&format!("href=\"{s}\"")),
            "index.html does not reference {s}"
        );
        let body = std::fs::read_to_string(dir.join(s)).expect("read svg");
        assert!(
            body.trim_start().starts_with("<svg"),
            "{s} does not start with <svg"
        );
        assert!(
            body.trim_end().ends_with("</svg>"),
            "{s} does not end with </svg>"
        );
        assert!(
            body.contains("<text"),
            "{s} has no text (axis labels, legend)"
        );
        // Balanced-ish XML: as many opening as closing text elements.
        assert_eq!(
            body.matches("<text").count(),
            body.matches("</text>").count(),
            "{s}: unbalanced <text>"
        );
    }
    for w in &written {
        assert!(w.is_file(), "{} returned but missing", w.display());
    }

    // The break-even section lists every scheme present.
    let be = &html[html.find("id=\"break-even\"").expect("break-even section")..];
    let be = &be[..be.find("id=\"traces\"").expect("traces section")];
    for s in SchemeKind::ALL {
        assert!(
            be.contains(&format!("<td>{}</td>", s.name())),
            "break-even table lacks {}",
            s.name()
        );
    }
    assert!(
        be.contains("L* = (e_j − e_i) / (a_i − a_j)"),
        "formula stated"
    );
    assert!(be.contains("this-machine (N = 2 CPUs)"), "CPU count stated");
    assert!(
        be.contains("altra-q80-2s (N = 160 CPUs)"),
        "CPU count stated"
    );
    // The fake trace is marked on the break-even chart of an x86 machine.
    let bx = std::fs::read_to_string(dir.join("break-even-this-machine.svg")).expect("svg");
    assert!(
        bx.contains("fake (L="),
        "trace marker on the break-even chart"
    );

    // Ledger: the known-unsafe schemes' reasons, or the all-clean line.
    let bad: Vec<&RunReport> = runs.iter().chain(&sweep).filter(|r| !r.clean()).collect();
    if bad.is_empty() {
        assert!(html.contains("All clean"));
    } else {
        for r in bad {
            let why = r.known_unsafe.as_deref().unwrap_or("UNEXPECTED");
            assert!(
                html.contains(&*html_escape(why)),
                "ledger reason for {}",
                r.scheme
            );
        }
    }
    // Machine parameters with their sources, in the page and data.json.
    assert!(html.contains("cost_ns.ipi_handler"));
    assert!(
        html.contains("AnandTech"),
        "Altra latencies cite their source"
    );
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).expect("data.json"))
            .expect("json");
    let m = &data["machines"][1];
    assert_eq!(m["spec"]["name"], "altra-q80-2s");
    assert!(m["spec"]["latency_ns"]["socket"]["source"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(m["scaling"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(data.get("cost_model").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[test]
fn all_clean_line_and_no_sweep() {
    // Only clean runs, no sweep: the report still renders, from compare's
    // runs alone, and says "all clean".
    let runs: Vec<RunReport> = [SchemeKind::Refcount, SchemeKind::Lightweight]
        .into_iter()
        .flat_map(|s| {
            [2, 8].into_iter().flat_map(move |c| {
                [WorkloadKind::CtxswitchThreads, WorkloadKind::ExitStorm]
                    .into_iter()
                    .map(move |w| lazymm_sim::run(&cfg(s, Arch::X86, w, c, 40)).expect("run"))
            })
        })
        .collect();
    assert!(runs.iter().all(|r| r.clean()));
    let dir = temp_dir("clean");
    let machines = small_machines(None);
    let input = ReportInput {
        runs: &runs,
        sweep: &[],
        machines: &machines[..1],
        command: "lazymm compare".into(),
    };
    let written = write_report(&dir, &input).expect("write_report");
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index");
    assert!(html.contains("All clean"));
    assert!(written
        .iter()
        .any(|p| p.ends_with("break-even-this-machine.svg")));
    assert!(html.contains("this-machine (N = 2 CPUs)"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sweep_covers_every_scheme_profile_and_4096_cpus() {
    let cfgs = sweep_configs(7, &SchemeKind::ALL, &Arch::ALL, 4096, None);
    for s in SchemeKind::ALL {
        for a in Arch::ALL {
            let of = |w: WorkloadKind| {
                cfgs.iter()
                    .filter(|c| c.scheme == s && c.arch == a && c.workload == w)
                    .map(|c| c.cpus)
                    .collect::<Vec<_>>()
            };
            let t = of(WorkloadKind::CtxswitchThreads);
            assert_eq!(t.first(), Some(&2));
            assert_eq!(t.last(), Some(&4096));
            assert_eq!(t.len(), 12);
            assert_eq!(of(WorkloadKind::CtxswitchProcesses).len(), 12);
            assert!(of(WorkloadKind::ExitStorm).contains(&64));
        }
    }
    assert!(cfgs.iter().all(|c| c.seed == 7));
    // Each context-switch run makes ~50k+ switches (about 0.69 per CPU per
    // round) and every CPU a few hundred; the largest runs stay small.
    for c in &cfgs {
        if c.workload == WorkloadKind::CtxswitchThreads {
            let est = c.rounds as f64 * c.cpus as f64 * 0.69;
            assert!(est >= 50_000.0, "{} CPUs: {} rounds", c.cpus, c.rounds);
            assert!(c.rounds >= 256, "{} CPUs: {} rounds", c.cpus, c.rounds);
            assert!(est <= 2_000_000.0, "{} CPUs: {} rounds", c.cpus, c.rounds);
        }
    }
}

/// The real thing: the sweep plus a default-sized compare (with the bundled
/// traces), written to `$LAZYMM_REPORT_DIR` (or a temp dir); prints timings.
/// `cargo test --release -p lazymm-cli --test report -- --ignored --nocapture`
#[test]
#[ignore]
fn full_report() {
    let seed = 1;
    let t0 = Instant::now();
    let cfgs = sweep_configs(seed, &SchemeKind::ALL, &Arch::ALL, 4096, None);
    let n = cfgs.len();
    let sweep = run_all(cfgs, None, false).expect("sweep");
    let sweep_s = t0.elapsed().as_secs_f64();
    let mut cmp = Vec::new();
    for w in WorkloadKind::ALL {
        for a in Arch::ALL {
            for c in [2, 8, 64] {
                for s in SchemeKind::ALL {
                    cmp.push(cfg(s, a, w, c, 1500));
                }
            }
        }
    }
    let mut jobs: Vec<Job> = cmp.into_iter().map(Job::Synthetic).collect();
    jobs.extend(
        trace_jobs(
            &bundled_traces().expect("traces"),
            &SchemeKind::ALL,
            &Arch::ALL,
        )
        .expect("traces"),
    );
    let runs = run_jobs(jobs, None, false).expect("runs");
    let dir = std::env::var_os("LAZYMM_REPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp_dir("full"));
    let t2 = Instant::now();
    let specs = report::timed::load_machines(&[]).expect("presets");
    let machines = run_machines(
        &specs,
        &SchemeKind::ALL,
        TimedPlan {
            sweep_to: Some(4096),
            at: None,
            walk: true,
        },
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        false,
    )
    .expect("timed");
    println!(
        "simulated time: {} machines in {:.2} s",
        machines.len(),
        t2.elapsed().as_secs_f64()
    );
    let t1 = Instant::now();
    let written = write_report(
        &dir,
        &ReportInput {
            runs: &runs,
            sweep: &sweep,
            machines: &machines,
            command: "lazymm compare --report DIR".into(),
        },
    )
    .expect("write_report");
    println!(
        "sweep: {n} runs in {sweep_s:.2} s; report: {} files in {:.2} s -> {}",
        written.len(),
        t1.elapsed().as_secs_f64(),
        dir.display()
    );
}
