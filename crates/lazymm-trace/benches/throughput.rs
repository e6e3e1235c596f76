//! Throughput of parsing + resolution, single thread, no extra bench crate.
//!
//! `cargo bench -p lazymm-trace --bench throughput`
//!
//! Reports, for each shared trace: the stateless line parser alone, the
//! full two-pass reader on decompressed text in memory (parse + TGID
//! learning + resolution + gap repair), and end to end from the `.gz` file.

use lazymm_trace::line::parse_line;
use lazymm_trace::{ParseOptions, TraceInput, TraceReader};
use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn best_of<F: FnMut() -> u64>(min_time: Duration, mut f: F) -> (u64, Duration) {
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut n = 0;
    while start.elapsed() < min_time || best == Duration::MAX {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed());
    }
    (n, best)
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces");
    let min_time = Duration::from_millis(
        std::env::var("LAZYMM_BENCH_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1500),
    );
    println!(
        "{:<18} {:>10} {:>10} {:>14} {:>14} {:>10}",
        "trace", "lines", "events", "what", "events/s", "MB/s"
    );
    for name in ["sched-pipe", "hackbench-thread", "hackbench-proc", "build"] {
        let gz = dir.join(format!("{name}.perf.txt.gz"));
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).expect("trace"))
            .read_to_end(&mut text)
            .expect("gunzip");
        let mb = text.len() as f64 / 1e6;
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();

        let (n, t) = best_of(min_time, || {
            let mut ok = 0u64;
            for l in &lines {
                if black_box(parse_line(l)).is_ok() {
                    ok += 1;
                }
            }
            ok
        });
        println!(
            "{:<18} {:>10} {:>10} {:>14} {:>14.0} {:>10.0}",
            name,
            lines.len(),
            n,
            "parse_line",
            n as f64 / t.as_secs_f64(),
            mb / t.as_secs_f64()
        );

        let data: Arc<[u8]> = Arc::from(text.as_slice());
        let opts = ParseOptions {
            kthreads: lazymm_trace::KthreadSource::Sidecar(
                dir.join(format!("{name}.kthreads.txt")),
            ),
            ..ParseOptions::default()
        };
        let (n, t) = best_of(min_time, || {
            let inp = TraceInput::Bytes {
                name: PathBuf::from(name),
                data: data.clone(),
            };
            let mut r = TraceReader::new(inp, &opts).expect("open");
            let mut n = 0u64;
            while let Some(e) = r.next_event().expect("event") {
                black_box(&e);
                n += 1;
            }
            n
        });
        println!(
            "{:<18} {:>10} {:>10} {:>14} {:>14.0} {:>10.0}",
            name,
            lines.len(),
            n,
            "reader(text)",
            n as f64 / t.as_secs_f64(),
            mb / t.as_secs_f64()
        );

        let (n, t) = best_of(min_time, || {
            let mut r = TraceReader::open(&gz, &ParseOptions::default()).expect("open");
            let mut n = 0u64;
            while let Some(e) = r.next_event().expect("event") {
                black_box(&e);
                n += 1;
            }
            n
        });
        println!(
            "{:<18} {:>10} {:>10} {:>14} {:>14.0} {:>10.0}",
            name,
            lines.len(),
            n,
            "reader(gz)",
            n as f64 / t.as_secs_f64(),
            mb / t.as_secs_f64()
        );
    }
}
