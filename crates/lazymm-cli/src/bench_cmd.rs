//! `lazymm bench`: every scheme on real OS threads (one per CPU of a
//! `Machine<StdPlatform>`), as ratios to `refcount` measured in the same run,
//! plus this machine's calibration against the cost model. Wall-clock
//! figures: printed, never asserted.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use lazymm::{Arch, SchemeKind};
use lazymm_bench::calibrate::Figure;
use lazymm_bench::{calibrate, run_bench, BenchConfig, BenchReport, Calibration, Length, Workload};

/// Options of `lazymm bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// OS threads, one per simulated CPU (default: 2).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Length of one measurement in seconds (default 0.3; 0.04 with --quick).
    #[arg(long, conflicts_with = "iterations")]
    pub seconds: Option<f64>,
    /// Length of one measurement in idle round trips per CPU (ping-pong,
    /// free-run) or loop steps per CPU (mixed), instead of --seconds.
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Repetitions; the schemes are interleaved within each (default 5; 3
    /// with --quick).
    #[arg(long)]
    pub reps: Option<usize>,
    /// Schemes, comma-separated (default: all; refcount is always run as the
    /// baseline).
    #[arg(long, value_delimiter = ',')]
    pub schemes: Vec<String>,
    /// Workloads, comma-separated: ping-pong, free-run, mixed (default: all).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// Architecture profile of the machine model.
    #[arg(long, default_value = "x86")]
    pub arch: String,
    /// Bench thread c drives machine CPU c * N (ping-pong, free-run). 1:
    /// neighbouring CPUs, whose per-CPU runtime words share cache lines on
    /// real threads; 16: no per-CPU array puts two driven CPUs on one line.
    #[arg(long, default_value_t = 1)]
    pub cpu_stride: usize,
    /// Do not pin each CPU's thread to a core.
    #[arg(long)]
    pub no_pin: bool,
    /// Skip the calibration.
    #[arg(long)]
    pub no_calibration: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// A short run (about 2 s).
    #[arg(long)]
    pub quick: bool,
}

fn config(a: &BenchArgs) -> anyhow::Result<BenchConfig> {
    if a.threads == 0 || a.threads > 4096 {
        bail!("--threads {} out of range: must be 1..=4096", a.threads);
    }
    let mut cfg = if a.quick {
        BenchConfig::quick(a.threads)
    } else {
        BenchConfig::new(a.threads)
    };
    if !a.schemes.is_empty() {
        cfg.schemes = a
            .schemes
            .iter()
            .map(|s| {
                SchemeKind::parse(s).with_context(|| {
                    let valid: Vec<_> = SchemeKind::ALL.iter().map(|k| k.name()).collect();
                    format!("unknown scheme {s:?}; valid: {}", valid.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    if !a.workloads.is_empty() {
        cfg.workloads = a
            .workloads
            .iter()
            .map(|s| {
                Workload::parse(s).with_context(|| {
                    let valid: Vec<_> = Workload::ALL.iter().map(|k| k.name()).collect();
                    format!("unknown workload {s:?}; valid: {}", valid.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    cfg.pin = !a.no_pin;
    if a.cpu_stride == 0 || (a.threads - 1) * a.cpu_stride >= 4096 {
        bail!(
            "--cpu-stride {} out of range: must be >= 1 with (threads - 1) * stride < 4096",
            a.cpu_stride
        );
    }
    cfg.cpu_stride = a.cpu_stride;
    cfg.arch = Arch::parse(&a.arch).with_context(|| {
        let valid: Vec<_> = Arch::ALL.iter().map(|k| k.name()).collect();
        format!("unknown arch {:?}; valid: {}", a.arch, valid.join(", "))
    })?;
    if let Some(s) = a.seconds {
        if !(s > 0.0 && s <= 3600.0) {
            bail!("--seconds {s} out of range: must be in (0, 3600]");
        }
        cfg.length = Length::Time(Duration::from_secs_f64(s));
    }
    if let Some(n) = a.iterations {
        if n == 0 {
            bail!("--iterations must be at least 1");
        }
        cfg.length = Length::Iterations(n);
    }
    if let Some(r) = a.reps {
        if r == 0 || r > 1000 {
            bail!("--reps {r} out of range: must be 1..=1000");
        }
        cfg.reps = r;
    }
    Ok(cfg)
}

/// Runs `lazymm bench`. Exit code 0 when every ledger is clean (known-unsafe
/// schemes excepted), 1 otherwise; bad options are an error (exit 2).
pub fn bench(a: &BenchArgs) -> anyhow::Result<u8> {
    let cfg = config(a)?;
    let est = match cfg.length {
        Length::Time(d) => d.as_secs_f64() * cfg.total_runs() as f64,
        Length::Iterations(_) => f64::INFINITY,
    };
    let pb = if est > 2.0 && !a.json {
        let pb = ProgressBar::new(cfg.total_runs() as u64);
        pb.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let report = run_bench(&cfg, &mut |done, _total, label| {
        pb.set_position(done as u64);
        pb.set_message(label.to_string());
    })
    .map_err(anyhow::Error::msg)?;
    pb.finish_and_clear();
    let cal = if a.no_calibration {
        None
    } else {
        let samples = if a.quick { 20 } else { 200 };
        Some(calibrate(a.threads.max(2), samples))
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({ "bench": report, "calibration": cal });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        print_report(&mut out, &report)?;
        if let Some(c) = &cal {
            print_calibration(&mut out, c)?;
        }
    }
    Ok(u8::from(report.has_failure()))
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn print_report(out: &mut impl Write, r: &BenchReport) -> std::io::Result<()> {
    let len = match (r.seconds, r.iterations) {
        (Some(s), _) => format!("{s} s"),
        (_, Some(n)) => format!("{n} iterations/CPU"),
        _ => String::new(),
    };
    writeln!(
        out,
        "real OS threads: {} threads ({} cores available, {}, machine CPUs {} apart), arch {}, {} reps x {} per scheme, interleaved",
        r.threads,
        r.available_parallelism,
        if r.pinned { "pinned" } else { "not pinned" },
        r.cpu_stride,
        r.arch,
        r.reps,
        len
    )?;
    let load = |l: &Option<[f64; 3]>| match l {
        Some([a, b, c]) => format!("{a:.2} {b:.2} {c:.2}"),
        None => "n/a".into(),
    };
    writeln!(
        out,
        "load average at start: {}; at end: {} (other work on the machine skews absolute rates; ratios are per rep)",
        load(&r.loadavg[0]),
        load(&r.loadavg[1])
    )?;
    let mut last = None;
    for row in &r.rows {
        if last != Some(row.workload) {
            last = Some(row.workload);
            writeln!(out)?;
            writeln!(out, "workload {}", row.workload)?;
            writeln!(
                out,
                "  {:<15} {:>10} {:>5} {:>4} {:>10} {:>10}  {:>5} {:>5} {:>5} {:>11}  {:>3} {:>3} {:>4} {:>5}  ledger",
                "scheme",
                "switches/s",
                "range",
                "util",
                "sw/CPU-s",
                "peak sw/s",
                "ratio",
                "ratio",
                "ratio",
                "cpu-ratio",
                "uaf",
                "df",
                "leak",
                "exits"
            )?;
            writeln!(
                out,
                "  {:<15} {:>10} {:>5} {:>4} {:>10} {:>10}  {:>5} {:>5} {:>5} {:>11}",
                "", "(wall)", "", "", "", "", "wall", "cpu", "peak", "min-max"
            )?;
        }
        let s = &row.switches_per_s;
        let range = if s.range_pct() < 1000.0 {
            format!("{:.0}%", s.range_pct())
        } else {
            ">999%".to_string()
        };
        let q = &row.cpu_ratio_to_refcount;
        let peak = row
            .peak_switches_per_s
            .map_or("-".to_string(), |p| si(p.median));
        let peak_ratio = row
            .peak_ratio_to_refcount
            .map_or("-".to_string(), |p| format!("{:.2}", p.median));
        writeln!(
            out,
            "  {:<15} {:>10} {:>5} {:>3.0}% {:>10} {:>10}  {:>5.2} {:>5.2} {:>5} {:>11}  {:>3} {:>3} {:>4} {:>5}  {}",
            row.scheme,
            si(s.median),
            range,
            100.0 * row.utilization.median,
            si(row.switches_per_cpu_s.median),
            peak,
            row.ratio_to_refcount.median,
            q.median,
            peak_ratio,
            format!("{:.2}-{:.2}", q.min, q.max),
            row.ledger.uaf,
            row.ledger.double_free,
            row.ledger.leaked,
            row.teardowns,
            row.verdict
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "medians over reps. switches/s: wall clock; range: (max-min)/median; util: CPU time of the bench threads / (threads x wall);\n\
         sw/CPU-s: switches per CPU-second per thread (what the rate would be had the threads never been descheduled);\n\
         peak sw/s (ping-pong): p90 of the rate over windows of 64 turns (the undisturbed stretches);\n\
         ratio: to refcount in the same rep, by wall rate, by CPU rate and by peak rate (min-max: of the CPU ratio)"
    )?;
    for k in &r.known_unsafe {
        writeln!(out, "KNOWN-UNSAFE {}: {}", k.scheme, k.reason)?;
    }
    for k in &r.skipped {
        writeln!(out, "skipped {}: {}", k.scheme, k.reason)?;
    }
    Ok(())
}

fn print_calibration(out: &mut impl Write, c: &Calibration) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "calibration (this machine, {} threads; median ns/op of short synchronized samples, p10 in brackets)",
        c.threads
    )?;
    let cyc = |ns: f64| match c.tsc_ghz {
        Some(g) => format!("~{:.0} cycles", ns * g),
        None => String::new(),
    };
    let line = |out: &mut dyn Write, name: &str, f: &Figure| {
        writeln!(
            out,
            "  {:<40} {:>8.2} ns [{:>7.2}]  {:<14} {}/{} samples",
            name,
            f.ns,
            f.p10_ns,
            cyc(f.ns),
            f.samples,
            f.taken
        )
    };
    line(out, "local RMW (1 thread)", &c.local_rmw)?;
    line(
        out,
        &format!("local RMW ({} threads, own lines)", c.threads),
        &c.local_rmw_parallel,
    )?;
    line(
        out,
        &format!("shared-line RMW ({} threads)", c.threads),
        &c.shared_rmw,
    )?;
    line(out, "line hand-off by RMW (token, one way)", &c.handoff)?;
    line(out, "steal of a line: added to a hand-off", &c.steal)?;
    line(out, "work + RMW, alone on its line", &c.contended_solo)?;
    line(out, "work + RMW, 2 threads on one line", &c.contended)?;
    line(
        out,
        "ping-pong turn, switches on own machines",
        &c.woken_switch,
    )?;
    line(out, "line transfer (store ping-pong, 1 way)", &c.transfer)?;
    line(out, "full fence", &c.fence)?;
    writeln!(
        out,
        "  hand-off / local RMW: measured {:.1}x; model transfer / local_rmw: {:.1}x ({} / {} cycles, x86 table)",
        c.measured_handoff_over_local,
        c.model_transfer_over_local,
        c.model.transfer,
        c.model.local_rmw
    )?;
    writeln!(
        out,
        "    (the hand-off is an RMW on a line the other core wrote last: the model's transfer; \
         store ping-pong / local: {:.1}x)",
        c.measured_transfer_over_local
    )?;
    writeln!(
        out,
        "  shared / local RMW:   measured {:.1}x (every RMW fights for the line, not all of them move it)",
        c.measured_shared_over_local
    )?;
    writeln!(
        out,
        "  fence / local RMW:    measured {:.2}x; model fence / local_rmw: {:.2}x ({} / {} cycles)",
        c.measured_fence_over_local, c.model_fence_over_local, c.model.fence, c.model.local_rmw
    )?;
    if let Some(g) = c.tsc_ghz {
        writeln!(out, "  (cycles from the TSC rate, {g:.2} GHz)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: BenchArgs,
    }

    fn args(v: &[&str]) -> BenchArgs {
        let mut all = vec!["bench"];
        all.extend_from_slice(v);
        Cli::parse_from(all).a
    }

    #[test]
    fn quick_bench_completes_with_clean_ledgers() {
        let a = args(&[
            "--quick",
            "--seconds",
            "0.02",
            "--reps",
            "2",
            "--no-calibration",
        ]);
        assert_eq!(bench(&a).expect("bench"), 0);
        let cfg = config(&a).expect("config");
        let r = run_bench(&cfg, &mut |_, _, _| {}).expect("run");
        let mut buf = Vec::new();
        print_report(&mut buf, &r).expect("print");
        let text = String::from_utf8(buf).expect("utf8");
        for w in Workload::ALL {
            assert!(text.contains(&format!("workload {w}")), "{text}");
        }
        assert!(text.contains("refcount"));
        assert!(!r.has_failure());
    }

    #[test]
    fn json_output_has_rows_and_calibration() {
        let c = calibrate(2, 3);
        let cfg = config(&args(&[
            "--iterations",
            "200",
            "--reps",
            "1",
            "--workloads",
            "ping-pong",
        ]))
        .expect("config");
        let r = run_bench(&cfg, &mut |_, _, _| {}).expect("run");
        let v = serde_json::json!({ "bench": r, "calibration": c });
        let rows = v["bench"]["rows"].as_array().expect("rows");
        assert!(!rows.is_empty());
        assert!(rows[0]["ratio_to_refcount"]["median"].is_number());
        assert!(v["calibration"]["model_transfer_over_local"].is_number());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(config(&args(&["--schemes", "nope"])).is_err());
        assert!(config(&args(&["--workloads", "nope"])).is_err());
        assert!(config(&args(&["--arch", "vax"])).is_err());
        assert!(config(&args(&["--threads", "0"])).is_err());
        assert!(config(&args(&["--seconds", "0"])).is_err());
        assert!(config(&args(&["--cpu-stride", "0"])).is_err());
    }
}
