//! Generated litmus tests checked against herd7 (issue 13 item 6): small
//! random tests (2-4 threads, 1-3 locations; marked reads and writes,
//! acquire/release, fences, RMWs, data/control dependencies, spinlocks,
//! RCU) must get the same verdict, data-race flag and state set from lazymm
//! and herd7.  Deterministic: test `i` is generated from seed `i`.
//!
//! CI runs 40 tests of 2-3 threads when herd7-lkmm is built
//! (`build.rs`, `cfg(herd7)`); otherwise the test is `#[ignore]`d with the
//! reason.  Long run, 2-4 threads: `LAZYMM_GENERATED=2000 cargo test
//! --release -p lazymm-litmus --test generated -- --nocapture`.  A failing test is written to the
//! temporary directory and named in the message.

use lazymm_litmus::herd::{diff_summary, differential, herd_path, Diff, DiffOptions};
use std::fmt::Write as _;
use std::time::Duration;

/// xorshift64*: a small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const LOCS: [&str; 3] = ["x", "y", "z"];

/// One generated test (C source).
fn generate(seed: u64, max_threads: usize) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let nthreads = 2 + rng.below(max_threads - 1);
    let nlocs = 1 + rng.below(3);
    let locked = rng.below(4) == 0;
    let rcu = !locked && rng.below(4) == 0;
    let mut src = format!("C gen{seed}\n\n{{}}\n\n");
    let mut regs: Vec<(usize, String)> = Vec::new();
    for t in 0..nthreads {
        let params: Vec<String> = LOCS[..nlocs]
            .iter()
            .map(|l| format!("int *{l}"))
            .chain(locked.then(|| "spinlock_t *s".to_string()))
            .collect();
        let _ = writeln!(src, "P{t}({})\n{{", params.join(", "));
        let mut body = String::new();
        let mut mine: Vec<String> = Vec::new();
        let n = 1 + rng.below(3);
        let crit = locked && rng.below(2) == 0;
        if crit {
            body.push_str("\tspin_lock(s);\n");
        }
        let reader = rcu && rng.below(2) == 0;
        if reader {
            body.push_str("\trcu_read_lock();\n");
        }
        for _ in 0..n {
            let l = LOCS[rng.below(nlocs)];
            let v = 1 + rng.below(2);
            let r = format!("r{}", mine.len());
            let last = mine.last().cloned();
            match rng.below(12) {
                0 | 1 => {
                    let _ = writeln!(body, "\tWRITE_ONCE(*{l}, {v});");
                }
                2 | 3 => {
                    let _ = writeln!(body, "\t{r} = READ_ONCE(*{l});");
                    mine.push(r);
                }
                4 => {
                    let _ = writeln!(body, "\tsmp_store_release({l}, {v});");
                }
                5 => {
                    let _ = writeln!(body, "\t{r} = smp_load_acquire({l});");
                    mine.push(r);
                }
                6 => {
                    let f = ["smp_mb()", "smp_wmb()", "smp_rmb()"][rng.below(3)];
                    let _ = writeln!(body, "\t{f};");
                }
                7 => {
                    let op = ["xchg", "xchg_relaxed", "xchg_acquire", "xchg_release"][rng.below(4)];
                    let _ = writeln!(body, "\t{r} = {op}({l}, {v});");
                    mine.push(r);
                }
                8 => {
                    let op = ["cmpxchg", "cmpxchg_relaxed"][rng.below(2)];
                    let _ = writeln!(body, "\t{r} = {op}({l}, 0, {v});");
                    mine.push(r);
                }
                9 => match last {
                    // data dependency
                    Some(p) => {
                        let _ = writeln!(body, "\tWRITE_ONCE(*{l}, {p});");
                    }
                    None => {
                        let _ = writeln!(body, "\t{r} = READ_ONCE(*{l});");
                        mine.push(r);
                    }
                },
                10 => match last {
                    // control dependency
                    Some(p) => {
                        let _ = writeln!(body, "\tif ({p})\n\t\tWRITE_ONCE(*{l}, {v});");
                    }
                    None => {
                        let _ = writeln!(body, "\tWRITE_ONCE(*{l}, {v});");
                    }
                },
                _ => {
                    if rcu && !reader {
                        body.push_str("\tsynchronize_rcu();\n");
                    } else {
                        let _ = writeln!(body, "\t*{l} = {v};");
                    }
                }
            }
        }
        if reader {
            body.push_str("\trcu_read_unlock();\n");
        }
        if crit {
            body.push_str("\tspin_unlock(s);\n");
        }
        for r in &mine {
            let _ = writeln!(src, "\tint {r};");
        }
        src.push_str(&body);
        src.push_str("}\n\n");
        regs.extend(mine.into_iter().map(|r| (t, r)));
    }
    let mut conj: Vec<String> = regs
        .iter()
        .map(|(t, r)| format!("{t}:{r}={}", rng.below(3)))
        .collect();
    if conj.is_empty() {
        conj.push(format!("{}={}", LOCS[0], rng.below(3)));
    }
    let _ = writeln!(src, "exists ({})", conj.join(" /\\ "));
    src
}

#[test]
#[cfg_attr(
    not(herd7),
    ignore = "herd7-lkmm not built (shared/tools/herd7/build.sh, or set HERD7_LKMM)"
)]
fn generated_tests_agree_with_herd7() {
    let long: Option<u64> = std::env::var("LAZYMM_GENERATED")
        .ok()
        .and_then(|s| s.parse().ok());
    // the brief CI run keeps to 2-3 threads (4-thread tests with RMWs take
    // herd7 seconds each)
    let (n, max_threads) = match long {
        Some(n) => (n, 4),
        None => (40, 3),
    };
    let dir = std::env::temp_dir().join(format!("lazymm-generated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let files: Vec<_> = (0..n)
        .map(|i| {
            let f = dir.join(format!("gen{i}.litmus"));
            std::fs::write(&f, generate(i, max_threads)).expect("write a generated test");
            f
        })
        .collect();
    let opts = DiffOptions {
        herd: herd_path().expect("herd7-lkmm was found at build time but is gone"),
        timeout: Duration::from_secs(30),
        jobs: 2,
        cache: None,
    };
    let rows = differential(&files, &opts);
    eprintln!("{:?}", diff_summary(&rows));
    for r in &rows {
        eprintln!(
            "{}: herd7 {:.2}s lazymm {:.3}s",
            r.file.display(),
            r.herd.cpu_seconds,
            r.lazymm_cpu_seconds
        );
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !matches!(r.diff, Diff::Agree | Diff::HerdTimeout))
        .map(|r| r.describe())
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {n} differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
