//! loom's blind spot, documented by the exact example of the issue.
//!
//! loom runs each thread's operations in program order and an RMW always
//! reads the newest value in that order. The seed's hand-off is a relaxed
//! `count` increment followed by a relaxed cmpxchg handing the reference to
//! the lazy CPU, which then decrements `count`. C11 and Arm let the lazy
//! CPU's decrement come first in `count`'s modification order (nothing
//! orders the increment before the cmpxchg): `count` reaches 0, the mm is
//! freed, and the exiting CPU's increment and its own `mmdrop` run on freed
//! memory. loom cannot produce that execution, so it passes the model in
//! every interleaving. The LKMM litmus checker (`lazymm-litmus`) must, and
//! does, find it: `Sometimes` for the relaxed hand-off, `Never` with a
//! Release cmpxchg.
//!
//! Consequence for the project: a weakening that loom does not reject is
//! not evidence that the ordering is unnecessary (see
//! docs/verification.md).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

use lazymm_litmus::{check, check_file, parse, Options, Status, Verdict};
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU64;

const MM: u64 = 2;

/// The hand-off alone: F (the exiting CPU, in `__mmput`, holding the users'
/// `count` unit) grabs and hands over; L (lazy on mm) unlazies. Each
/// `mmdrop` that reaches 0 frees (a write of the payload, which loom checks
/// against every use for a happens-before edge); exactly one free must
/// happen.
// loom runs every model thread on one OS thread and checks the cell itself.
#[allow(clippy::arc_with_non_send_sync)]
fn handoff_model(handoff: core::sync::atomic::Ordering) {
    let count = Arc::new(AtomicU64::new(1));
    let slot = Arc::new(AtomicU64::new(MM));
    let pgd = Arc::new(UnsafeCell::new(0u64));
    let frees = Arc::new(AtomicUsize::new(0)); // std: bookkeeping, invisible to loom

    let mmdrop = |count: &AtomicU64, pgd: &UnsafeCell<u64>, frees: &AtomicUsize| {
        if count.fetch_sub(1, AcqRel) == 1 {
            // SAFETY: loom checks the access; the cell outlives the model.
            pgd.with_mut(|p| unsafe { *p = 0xdead });
            frees.fetch_add(1, SeqCst);
        }
    };

    let l = {
        let (count, slot, pgd, frees) = (count.clone(), slot.clone(), pgd.clone(), frees.clone());
        loom::thread::spawn(move || {
            // L still walks the mm's page tables while lazy.
            // SAFETY: loom checks the access.
            pgd.with(|p| unsafe { core::ptr::read_volatile(p) });
            // lazy_mm_drop(): atomic_long_xchg (fully ordered).
            if slot.swap(0, AcqRel) == MM | 1 {
                mmdrop(&count, &pgd, &frees);
            }
        })
    };

    // F: arch_fixup_lazy_mm_refs() for L's slot, as posted.
    // mmgrab(mm): a relaxed atomic_inc().
    count.fetch_add(1, Relaxed);
    // SAFETY: loom checks the access (F still uses the mm in __mmput).
    pgd.with(|p| unsafe { core::ptr::read_volatile(p) });
    // The failure ordering is Acquire as in `lightweight` (site
    // `lw-handoff-fail`, which loom does see): only the success ordering,
    // the seed's question, varies.
    if slot.compare_exchange(MM, MM | 1, handoff, Acquire).is_err() {
        mmdrop(&count, &pgd, &frees);
    }
    // __mmput's own final mmdrop(mm).
    mmdrop(&count, &pgd, &frees);

    l.join().unwrap();
    assert_eq!(frees.load(SeqCst), 1, "freed {} times", frees.load(SeqCst));
}

/// loom passes the relaxed hand-off in every interleaving (the blind spot):
/// it never lets L's decrement precede F's increment.
#[test]
fn loom_passes_the_relaxed_handoff() {
    let mut b = lazymm_verify::builder();
    b.preemption_bound = None; // exhaustive: the model is tiny
    b.check(|| handoff_model(Relaxed));
}

/// And the Release hand-off, which is correct.
#[test]
fn loom_passes_the_release_handoff() {
    let mut b = lazymm_verify::builder();
    b.preemption_bound = None;
    b.check(|| handoff_model(Release));
}

/// The same example as an LKMM litmus test (inline, so this test documents
/// it whatever happens to the files in `litmus/`).
fn litmus(cmpxchg: &str) -> String {
    format!(
        "C blind-spot-{cmpxchg}\n{{\n\tcount = 1;\n\tslot = 2;\n}}\n\n\
         P0(int *count, int *slot)\n{{\n\tint r0;\n\n\tatomic_inc(count);\n\t\
         r0 = {cmpxchg}(slot, 2, 3);\n}}\n\n\
         P1(int *count, int *slot)\n{{\n\tint r1;\n\tint r2 = 0;\n\n\t\
         r1 = xchg(slot, 0);\n\tif (r1 == 3)\n\t\tr2 = atomic_dec_and_test(count);\n}}\n\n\
         exists (0:r0=2 /\\ 1:r1=3 /\\ 1:r2=1)\n"
    )
}

/// The litmus checker rejects what loom passes: with `cmpxchg_relaxed` L's
/// `atomic_dec_and_test` can bring `count` to zero (the early free) ...
#[test]
fn litmus_finds_the_early_free_loom_cannot_see() {
    let t = parse(&litmus("cmpxchg_relaxed")).expect("parses");
    let o = check(&t, &Options::default()).expect("checks");
    assert_eq!(o.verdict, Verdict::Sometimes, "{o:?}");
}

/// ... and with `cmpxchg_release` (the `lw-handoff` site as shipped) it
/// cannot.
#[test]
fn litmus_release_handoff_forbids_the_early_free() {
    let t = parse(&litmus("cmpxchg_release")).expect("parses");
    let o = check(&t, &Options::default()).expect("checks");
    assert_eq!(o.verdict, Verdict::Never, "{o:?}");
}

/// The project's litmus files for the same shape agree (the `lw-handoff`
/// site names them).
#[test]
fn litmus_files_for_the_handoff_agree() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../litmus");
    for (file, want) in [
        ("v1-handoff+cmpxchg-relaxed.litmus", Verdict::Sometimes),
        ("v1-handoff+cmpxchg-release.litmus", Verdict::Never),
        ("v1-handoff+cmpxchg.litmus", Verdict::Never),
        (
            "v1-handoff+mb__after_atomic+cmpxchg-relaxed.litmus",
            Verdict::Never,
        ),
    ] {
        let r = check_file(&dir.join(file), &Options::default());
        assert_eq!(r.status, Status::Ok, "{file}: {:?}", r.message);
        assert_eq!(r.outcome.expect("outcome").verdict, want, "{file}");
    }
}
