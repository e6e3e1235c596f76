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
use lazymm_litmus::herd::{diff_summary, differential, herd_path, Diff, DiffOptions};
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
    let rows = differential(files, &opts());
    let s = diff_summary(&rows);
    eprintln!("{s:?}");
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.diff != Diff::Agree)
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
    let root = match std::env::var_os("LAZYMM_SHARED") {
        Some(s) => PathBuf::from(s).join("lkmm"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/lkmm"),
    };
    let files = collect_files(&[root.join("kernel")]).expect("shared/lkmm/kernel");
    assert_eq!(files.len(), 35);
    assert_agree(&files);
}
