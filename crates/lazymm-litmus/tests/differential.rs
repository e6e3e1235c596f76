//! lazymm against herd7 itself (issue 13 item 5): the repository's own
//! `litmus/` and the kernel's `tools/memory-model/litmus-tests` (`kernel/`
//! of shared/lkmm) must get the same verdict, data-race flag and state set
//! from both checkers.  Needs the `herd7-lkmm` wrapper of
//! `shared/tools/herd7/build.sh` (`$HERD7_LKMM`, default
//! `$HOME/.cache/herd7/bin/herd7-lkmm`): without it (at build time, see
//! `build.rs`) the tests are `#[ignore]`d with that reason, and if it
//! disappears before they run they fail.  The whole corpora are compared
//! by `cargo run --release -p lazymm-litmus --example differential -- DIR`.

use lazymm_litmus::collect_files;
use lazymm_litmus::herd::{
    diff_summary, differential, herd_path, Diff, DiffOptions, DiffRow, HerdStatus,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn opts() -> DiffOptions {
    DiffOptions {
        herd: herd_path().expect("herd7-lkmm was found at build time but is gone (set HERD7_LKMM)"),
        timeout: Duration::from_secs(30),
        jobs: 2,
        cache: None,
    }
}

fn assert_agree(files: &[PathBuf]) {
    assert_no(files, &|r| r.diff != Diff::Agree);
}

/// Run both checkers on `files`; fail on every file whose comparison is `bad`.
fn assert_no(files: &[PathBuf], bad: &dyn Fn(&DiffRow) -> bool) {
    let rows = differential(files, &opts());
    let s = diff_summary(&rows);
    eprintln!("{s:?}");
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| bad(r))
        .map(|r| r.describe())
        .collect();
    assert!(
        bad.is_empty(),
        "lazymm and herd7 differ:\n{}",
        bad.join("\n")
    );
}

#[test]
#[cfg_attr(
    not(herd7),
    ignore = "herd7-lkmm not built (shared/tools/herd7/build.sh, or set HERD7_LKMM)"
)]
fn scheme_tests_agree_with_herd7() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../litmus");
    let files = collect_files(&[dir]).expect("litmus/ folder");
    assert!(files.len() >= 20, "expected the scheme litmus tests");
    assert_agree(&files);
}

#[test]
#[cfg_attr(
    not(all(herd7, lkmm_data)),
    ignore = "herd7-lkmm not built or shared/lkmm absent"
)]
fn kernel_tests_agree_with_herd7() {
    let files = collect_files(&[lkmm_root().join("kernel")]).expect("shared/lkmm/kernel");
    assert_eq!(files.len(), 35);
    assert_agree(&files);
}

fn lkmm_root() -> PathBuf {
    match std::env::var_os("LAZYMM_SHARED") {
        Some(s) => PathBuf::from(s).join("lkmm"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/lkmm"),
    }
}

/// Out-of-thin-air tests (issue 13 item 1): self-justified values as
/// herd7's symbols, states included.
#[test]
#[cfg_attr(
    not(all(herd7, lkmm_data)),
    ignore = "herd7-lkmm not built or shared/lkmm absent"
)]
fn oota_tests_agree_with_herd7() {
    let m = lkmm_root().join("paulmckrcu/manual");
    let mut files: Vec<PathBuf> = (1..=7)
        .map(|i| m.join(format!("oota/C-JO-OOTA-{i}.litmus")))
        .collect();
    files.push(m.join("plain/C-OOTA.litmus"));
    files.push(m.join("kernel/crypto-control-data.litmus"));
    // two independent cycles in one execution (two symbols)
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    files.extend(collect_files(&[data]).expect("tests/data"));
    assert_agree(&files);
}

/// A sample of `manual/` and `auto/`: every 100th file (by path) among the
/// C tests herd7 accepts quickly (not the `HEAVY` ones of `validation.rs`,
/// at most 5 threads in `auto/`): 25 files, about 4 s of herd7 CPU time.
/// `LAZYMM_DIFFERENTIAL=N` takes every Nth file instead (1 = all of them;
/// herd7 may then take hours on `auto/`): a herd7 time-out is skipped,
/// anything else must agree.
#[test]
#[cfg_attr(
    not(all(herd7, lkmm_data)),
    ignore = "herd7-lkmm not built or shared/lkmm absent"
)]
fn sample_of_manual_and_auto_agrees_with_herd7() {
    let step: usize = std::env::var("LAZYMM_DIFFERENTIAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(1);
    let root = lkmm_root().join("paulmckrcu");
    let small = |f: &PathBuf| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let s = f.to_string_lossy();
        let c_test = std::fs::read_to_string(f).is_ok_and(|t| t.trim_start().starts_with("C "));
        c_test
            && (step == 1
                || (!(s.contains("/absperf/")
                    || name.contains("ManfredSpraul")
                    || name.contains("seqlock"))
                    && (!s.contains("/auto/") || name.matches('+').count() < 5)))
    };
    let mut files = Vec::new();
    for dir in ["manual", "auto"] {
        let all = collect_files(&[root.join(dir)]).expect("shared/lkmm corpus");
        files.extend(all.into_iter().filter(small).step_by(step));
    }
    assert!(step > 1 || files.len() > 3000);
    // a herd7 time-out (or refusal) is skipped; anything else must agree,
    // and lazymm must not time out where herd7 finishes
    assert_no(&files, &|r| {
        r.diff.is_disagreement()
            || r.diff == Diff::LazymmError
            || (r.diff == Diff::LazymmTimeout && r.herd.status != HerdStatus::Timeout)
    });
}
