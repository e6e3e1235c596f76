//! Symmetric threads (identical, or identical up to a renaming of the
//! locations, e.g. a rotation) are enumerated once per orbit of
//! combinations of paths (see `Symmetry` in `check.rs`); the answer must be
//! that of the full enumeration.  A `filter` turns the reduction off, so each test is
//! checked twice: as written, and with a filter that always holds.

use lazymm_litmus::{check_source, Options, Status};
use std::path::Path;

/// (verdict, data race, states, positive, negative, candidates)
fn run(src: &str) -> (String, bool, Vec<String>, u64, u64, u64) {
    let rep = check_source(Path::new("t.litmus"), src, &Options::default());
    assert_eq!(rep.status, Status::Ok, "{:?}", rep.message);
    let o = rep.outcome.expect("outcome");
    (
        o.verdict.to_string(),
        o.data_race,
        o.states,
        o.positive,
        o.negative,
        o.candidates,
    )
}

fn same_with_and_without_symmetry(src: &str, tautology: &str) {
    let reduced = run(src);
    let full_src = src.replace("exists", &format!("filter ({tautology})\nexists"));
    let full = run(&full_src);
    assert_eq!(
        (&reduced.0, reduced.1, &reduced.2, reduced.3, reduced.4),
        (&full.0, full.1, &full.2, full.3, full.4)
    );
    assert!(
        reduced.5 < full.5,
        "identical threads were not reduced: {} candidates, {} without",
        reduced.5,
        full.5
    );
}

/// Three identical threads taking a lock emulated by `xchg_acquire` /
/// `smp_store_release` and incrementing a plain counter (racy when the
/// emulated lock is not taken), plus a distinct observer.
#[test]
fn identical_lock_threads() {
    let t = |i: usize| {
        format!(
            "P{i}(int *sl, int *c)\n{{\n\tint r1; int r2;\n\tr1 = xchg_acquire(sl, 1);\n\
             \tr2 = *c;\n\t*c = r2 + 1;\n\tsmp_store_release(sl, 0);\n}}\n"
        )
    };
    let src = format!(
        "C sym-lock\n{{}}\n{}{}{}P3(int *c)\n{{\n\tint r3;\n\tr3 = READ_ONCE(*c);\n}}\n\
         locations [c]\nexists (0:r1=0 /\\ 1:r1=0 /\\ 2:r2=1)\n",
        t(0),
        t(1),
        t(2)
    );
    same_with_and_without_symmetry(&src, "0:r1=0 \\/ ~(0:r1=0)");
}

/// Two classes of identical threads (two writers, two readers; store
/// buffering through a fence in the readers), registers in the condition
/// of both classes.
#[test]
fn two_classes() {
    let w = |i: usize| {
        format!("P{i}(int *x, int *y)\n{{\n\tWRITE_ONCE(*x, 1);\n\tWRITE_ONCE(*y, 1);\n}}\n")
    };
    let r = |i: usize| {
        format!(
            "P{i}(int *x, int *y)\n{{\n\tint r1; int r2;\n\tr1 = READ_ONCE(*y);\n\tsmp_rmb();\n\
             \tr2 = READ_ONCE(*x);\n}}\n"
        )
    };
    let src = format!(
        "C sym-two\n{{}}\n{}{}{}{}locations [x; y]\nexists (2:r1=1 /\\ 2:r2=0 \\/ 3:r1=1 /\\ 3:r2=1)\n",
        w(0),
        w(1),
        r(2),
        r(3)
    );
    same_with_and_without_symmetry(&src, "2:r1=0 \\/ ~(2:r1=0)");
}

/// A ring of three threads identical up to the rotation x0 -> x1 -> x2 of
/// the locations (store buffering under an emulated lock, as the
/// `absperf/` tests), with the locations observed.
#[test]
fn rotation_of_threads_and_locations() {
    let t = |i: usize| {
        let (a, b) = (i, (i + 1) % 3);
        format!(
            "P{i}(int *sl, int *x{a}, int *x{b})\n{{\n\tint r1; int r2;\n\
             \tr2 = xchg_acquire(sl, 1);\n\tWRITE_ONCE(*x{a}, 1);\n\tr1 = READ_ONCE(*x{b});\n\
             \tWRITE_ONCE(*x{a}, 2);\n\tsmp_store_release(sl, 0);\n}}\n"
        )
    };
    let src = format!(
        "C sym-ring\n{{}}\n{}{}{}locations [x0; x1; sl]\n\
         exists (0:r1=0 /\\ 1:r1=2 /\\ 0:r2=0 /\\ x2=1)\n",
        t(0),
        t(1),
        t(2)
    );
    same_with_and_without_symmetry(&src, "0:r1=0 \\/ ~(0:r1=0)");
}
