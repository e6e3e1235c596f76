//! Validation against published litmus tests (`shared/lkmm`, see
//! `docs/litmus.md`).  Every supported test must yield its annotated
//! verdict, except the disagreements listed (with their reasons) in
//! `tests/known-disagreements.txt`; the counts are asserted exactly so that a
//! regression fails.
//!
//! Data: `$LAZYMM_SHARED/lkmm` if set, else `<workspace>/../shared/lkmm`.
//! When absent at build time (`build.rs`, `cfg(lkmm_data)`) these tests are
//! `#[ignore]`d with that reason; when absent at run time they fail.
//!
//! CI runs `kernel/`, `luc/`, `manual/` (minus a few tests that take seconds
//! each) and a deterministic subset of `auto/`.  The full runs are
//! `#[ignore]`d: `cargo test --release -p lazymm-litmus -- --ignored`.

use lazymm_litmus::{check_files, collect_files, FileReport, Options, Status};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn data_dir() -> Option<PathBuf> {
    let d = match std::env::var_os("LAZYMM_SHARED") {
        Some(s) => PathBuf::from(s).join("lkmm"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/lkmm"),
    };
    assert!(
        d.is_dir(),
        "litmus test data not found at {} (set LAZYMM_SHARED)",
        d.display()
    );
    Some(d)
}

fn known_disagreements() -> BTreeSet<String> {
    include_str!("known-disagreements.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Tests that take seconds each (enumeration of 10^5..10^6 executions);
/// excluded from the CI run, included in the `#[ignore]`d full run.
const HEAVY: &[&str] = &[
    "paulmckrcu/manual/absperf/C-SB+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u.litmus",
    "paulmckrcu/manual/absperf/C-SB+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u-C.litmus",
    "paulmckrcu/manual/absperf/C-SB+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u-CE.litmus",
    "paulmckrcu/manual/absperf/C-SB+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u-X.litmus",
    "paulmckrcu/manual/absperf/C-SB+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u+l-o-o-u-XE.litmus",
    "paulmckrcu/manual/kernel/C-ManfredSpraul-L1G2xchg.litmus",
    "paulmckrcu/manual/kernel/C-ManfredSpraul-L1G2lock.litmus",
    "paulmckrcu/manual/kernel/C-seqlock.litmus",
];

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    files: usize,
    supported: usize,
    with_result: usize,
    agreeing: usize,
    disagreeing: usize,
    unsupported: usize,
    errors: usize,
    timeouts: usize,
}

fn rel(root: &Path, f: &Path) -> String {
    f.strip_prefix(root)
        .unwrap_or(f)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Check the files of `folder` accepted by `keep`; return counts and the
/// list of disagreeing files (relative to the data root).
fn run(
    root: &Path,
    folder: &str,
    keep: &dyn Fn(usize, &str) -> bool,
    timeout: f64,
) -> (Counts, BTreeSet<String>, Vec<FileReport>) {
    let all = collect_files(&[root.join(folder)]).expect("readable test folder");
    let files: Vec<PathBuf> = all
        .into_iter()
        .enumerate()
        .filter(|(i, f)| keep(*i, &rel(root, f)))
        .map(|(_, f)| f)
        .collect();
    let opts = Options {
        timeout: Some(Duration::from_secs_f64(timeout)),
    };
    let reports = check_files(&files, &opts, 2);
    let mut c = Counts {
        files: reports.len(),
        ..Default::default()
    };
    let mut dis = BTreeSet::new();
    for r in &reports {
        match r.status {
            Status::Ok => c.supported += 1,
            Status::Unsupported => c.unsupported += 1,
            Status::Error => c.errors += 1,
            Status::Timeout => c.timeouts += 1,
        }
        match r.agrees {
            Some(true) => {
                c.with_result += 1;
                c.agreeing += 1;
            }
            Some(false) => {
                c.with_result += 1;
                c.disagreeing += 1;
                dis.insert(rel(root, &r.file));
            }
            None => {}
        }
    }
    eprintln!("{folder}: {c:?}");
    for r in &reports {
        if matches!(r.status, Status::Error | Status::Timeout) {
            eprintln!(
                "  {}: {}",
                rel(root, &r.file),
                r.message.as_deref().unwrap_or("")
            );
        }
    }
    (c, dis, reports)
}

fn expect(
    root: &Path,
    folder: &str,
    keep: &dyn Fn(usize, &str) -> bool,
    timeout: f64,
    want: Counts,
) {
    let (c, dis, reports) = run(root, folder, keep, timeout);
    let checked: BTreeSet<String> = reports.iter().map(|r| rel(root, &r.file)).collect();
    let known: BTreeSet<String> = known_disagreements()
        .into_iter()
        .filter(|k| checked.contains(k))
        .collect();
    let new: Vec<_> = dis.difference(&known).collect();
    let fixed: Vec<_> = known.difference(&dis).collect();
    assert!(new.is_empty(), "{folder}: new disagreements: {new:#?}");
    assert!(
        fixed.is_empty(),
        "{folder}: listed disagreements now agree (update the list): {fixed:#?}"
    );
    assert_eq!(c, want, "{folder}: counts changed");
}

#[test]
#[cfg_attr(
    not(lkmm_data),
    ignore = "shared/lkmm not found (../shared/lkmm or $LAZYMM_SHARED/lkmm)"
)]
fn kernel_suite() {
    let Some(root) = data_dir() else { return };
    expect(
        &root,
        "kernel",
        &|_, _| true,
        60.0,
        Counts {
            files: 35,
            supported: 35,
            with_result: 35,
            agreeing: 35,
            disagreeing: 0,
            unsupported: 0,
            errors: 0,
            timeouts: 0,
        },
    );
}

#[test]
#[cfg_attr(
    not(lkmm_data),
    ignore = "shared/lkmm not found (../shared/lkmm or $LAZYMM_SHARED/lkmm)"
)]
fn luc_suite() {
    let Some(root) = data_dir() else { return };
    expect(
        &root,
        "paulmckrcu/luc",
        &|_, _| true,
        60.0,
        Counts {
            files: 1880,
            supported: 1876,
            with_result: 1856,
            agreeing: 1856,
            disagreeing: 0,
            unsupported: 4,
            errors: 0,
            timeouts: 0,
        },
    );
}

#[test]
#[cfg_attr(
    not(lkmm_data),
    ignore = "shared/lkmm not found (../shared/lkmm or $LAZYMM_SHARED/lkmm)"
)]
fn manual_suite_without_heavy() {
    let Some(root) = data_dir() else { return };
    expect(
        &root,
        "paulmckrcu/manual",
        &|_, f| !HEAVY.contains(&f),
        60.0,
        Counts {
            files: 915,
            supported: 898,
            with_result: 185,
            agreeing: 162,
            disagreeing: 23,
            unsupported: 17,
            errors: 0,
            timeouts: 0,
        },
    );
}

/// Number of threads of an auto/ test: one per `+`-separated component of
/// its name (`C-RW-G+RW-R+RW-R.litmus` has 3).
fn auto_threads(f: &str) -> usize {
    f.rsplit('/').next().unwrap_or(f).matches('+').count() + 1
}

/// Deterministic subset of auto/: the tests with at most 6 threads (1866 of
/// 2768; the larger ones have up to 2^19 executions each).
#[test]
#[cfg_attr(
    not(lkmm_data),
    ignore = "shared/lkmm not found (../shared/lkmm or $LAZYMM_SHARED/lkmm)"
)]
fn auto_suite_subset() {
    let Some(root) = data_dir() else { return };
    expect(
        &root,
        "paulmckrcu/auto",
        &|_, f| auto_threads(f) <= 6,
        60.0,
        Counts {
            files: 1866,
            supported: 1866,
            with_result: 1769,
            agreeing: 1717,
            disagreeing: 52,
            unsupported: 0,
            errors: 0,
            timeouts: 0,
        },
    );
}

#[test]
#[ignore = "full manual/ run (a few tests take seconds each); run with --release -- --ignored"]
fn manual_suite_full() {
    let Some(root) = data_dir() else { return };
    let (c, dis, _) = run(&root, "paulmckrcu/manual", &|_, _| true, 120.0);
    let known = known_disagreements();
    let new: Vec<_> = dis.difference(&known).collect();
    assert!(new.is_empty(), "new disagreements: {new:#?}");
    // Timeouts depend on the machine: reported above, not asserted.
    eprintln!("{} timeouts (see docs/litmus.md)", c.timeouts);
}

#[test]
#[ignore = "full auto/ run (minutes); run with --release -- --ignored"]
fn auto_suite_full() {
    let Some(root) = data_dir() else { return };
    let (c, dis, _) = run(&root, "paulmckrcu/auto", &|_, _| true, 120.0);
    let known = known_disagreements();
    let new: Vec<_> = dis.difference(&known).collect();
    assert!(new.is_empty(), "new disagreements: {new:#?}");
    // Timeouts depend on the machine: reported above, not asserted.
    eprintln!("{} timeouts (see docs/litmus.md)", c.timeouts);
}

/// The scheme tests in the repository's `litmus/` carry the verdicts the
/// checker gives; they must keep agreeing.
#[test]
fn scheme_tests_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../litmus");
    let files = collect_files(&[dir]).expect("litmus/ folder");
    assert!(files.len() >= 20, "expected the scheme litmus tests");
    let reports = check_files(&files, &Options::default(), 2);
    for r in &reports {
        assert_eq!(
            r.status,
            Status::Ok,
            "{}: {:?}",
            r.file.display(),
            r.message
        );
        assert_eq!(
            r.agrees,
            Some(true),
            "{}: verdict changed",
            r.file.display()
        );
    }
}
