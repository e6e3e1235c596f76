//! Command-line pieces for the `lazymm` binary (wired by `lazymm-cli`).

use crate::capture::{capture, CaptureOptions};
use std::ffi::OsString;
use std::path::PathBuf;

/// Arguments of `lazymm capture -o NAME -- CMD...`.
#[derive(Debug, Clone, clap::Args)]
pub struct CaptureArgs {
    /// Output name: writes NAME.perf.txt.gz, NAME.kthreads.txt and NAME.data.
    #[arg(short = 'o', long = "out", value_name = "NAME")]
    pub out: PathBuf,
    /// Per-CPU perf ring buffer (`perf record -m`).
    #[arg(long, default_value = "16M")]
    pub mmap: String,
    /// Delete NAME.data after converting it.
    #[arg(long)]
    pub no_keep_data: bool,
    /// Record only CMD and its children (`perf record` without `-a`). By
    /// default the capture is system-wide: every process running on the
    /// machine meanwhile is in the trace.
    #[arg(long)]
    pub command_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The command to record (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

/// Runs `lazymm capture`; returns the process exit code (0 on success, 1
/// if events were lost). A failed command is an error (exit 2).
pub fn run_capture(args: &CaptureArgs) -> anyhow::Result<i32> {
    let opts = CaptureOptions {
        mmap: args.mmap.clone(),
        keep_data: !args.no_keep_data,
        system_wide: !args.command_only,
        ..CaptureOptions::default()
    };
    if opts.system_wide {
        eprintln!(
            "lazymm: system-wide capture (perf record -a): every process on this machine is in the \
             trace, not only the command (--command-only records just the command and its children)"
        );
    } else {
        eprintln!(
            "lazymm: capturing only the command and its children: switches between other tasks are \
             not recorded and the replay infers them as gaps"
        );
    }
    let report = capture(&args.out, &args.cmd, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("perf: {}", report.perf_version);
        println!("trace:   {}", report.trace.display());
        println!(
            "sidecar: {} ({} kernel threads)",
            report.sidecar.display(),
            report.kthreads_union
        );
        if let Some(s) = &report.summary {
            let e = &s.events;
            println!(
                "events: {} switches (+{} inferred), {} forks, {} execs, {} thread exits, {} frees, {} migrations, {} wakeup_new; CPUs {}",
                e.sched_switch,
                e.inferred_switch,
                e.sched_process_fork,
                e.sched_process_exec,
                e.sched_process_exit,
                e.sched_process_free,
                e.sched_migrate_task,
                e.sched_wakeup_new,
                s.cpus_seen
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            println!(
                "          (thread exits: sched_process_exit, one per task; `replay` counts mm_exits, \
                 address spaces torn down, exec included)"
            );
            if s.warning_count() > 0 {
                let w: Vec<String> = s
                    .warnings
                    .iter()
                    .map(|(k, n)| {
                        let name = serde_json::to_string(k).unwrap_or_default();
                        format!("{} {n}", name.trim_matches('"'))
                    })
                    .collect();
                println!("warnings: {}", w.join(", "));
            }
        }
    }
    if !report.lost.is_empty() {
        eprintln!("perf lost events: {}", report.lost.join(" | "));
        eprintln!("the trace is incomplete: record again with a larger --mmap");
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CaptureArgs,
    }

    #[test]
    fn parses_capture_args() {
        let t = T::try_parse_from(["lazymm", "-o", "out/x", "--", "sh", "-c", "true -x"]).unwrap();
        assert_eq!(t.a.out, PathBuf::from("out/x"));
        assert_eq!(
            t.a.cmd,
            vec![OsString::from("sh"), "-c".into(), "true -x".into()]
        );
        assert_eq!(t.a.mmap, "16M");
        assert!(
            T::try_parse_from(["lazymm", "-o", "x"]).is_err(),
            "CMD is required"
        );
    }
}
