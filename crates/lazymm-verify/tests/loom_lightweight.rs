//! `lightweight` under loom: the tests its `SITES` table names, its
//! variants (`UnlazyPlain`, batched grab, deferred free), and the
//! counterexamples of docs/verification.md.
//!
//! Every weakened build is the production scheme with
//! `SchemeOptions::weaken` naming one site (that one ordering becomes
//! Relaxed); nothing is copied.

use lazymm::{Arch, SchemeKind, SchemeOptions, UnlazyPlain};
use lazymm_verify::{
    first_failure, production, scenarios, suite, verdict, weakened, Scenario, Verdict,
};

const LW: SchemeKind = SchemeKind::Lightweight;

/// The scenarios whose production verdict is clean today (the suite minus
/// the ones that hit the reported publication / cpumask bugs): a mutation
/// is "caught" when one of them fails.
fn baseline() -> Vec<Scenario> {
    suite(LW)
        .into_iter()
        .filter(|&s| verdict(s, LW, SchemeOptions::default()).clean())
        .collect()
}

fn caught(opts: SchemeOptions) -> (Scenario, Verdict) {
    let base = baseline();
    assert!(base.len() >= 8, "baseline too small: {base:?}");
    first_failure(&base, LW, opts, production)
        .unwrap_or_else(|| panic!("{opts:?}: no scenario fails ({} tried)", base.len()))
}

fn passes(opts: SchemeOptions) {
    let base = baseline();
    assert!(base.len() >= 8);
    if let Some((s, v)) = first_failure(&base, LW, opts, production) {
        panic!("{opts:?} fails {s:?}:\n{}", v.failure.unwrap_or_default());
    }
}

/// Site `lw-unlazy-xchg` (AcqRel -> Relaxed): the teardown's failed
/// hand-off reads the owner's NULL without a Release to synchronize with,
/// and frees while the owner's last page-table use is unordered.
#[test]
fn weakened_unlazy_xchg_is_caught() {
    let (s, v) = caught(weakened("lw-unlazy-xchg"));
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("Causality violation"), "{s:?}: {f}");
}

/// Site `lw-scan-load` (Acquire -> Relaxed): the scan reads NULL and skips
/// the CPU, the final mmdrop frees, unordered after the owner's last use.
#[test]
fn weakened_scan_load_is_caught() {
    let (s, v) = caught(weakened("lw-scan-load"));
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("Causality violation"), "{s:?}: {f}");
}

/// Site `lw-handoff-fail` (Acquire -> Relaxed): the hand-off cmpxchg fails
/// on the owner's NULL and the teardown frees without synchronizing.
#[test]
fn weakened_handoff_fail_is_caught() {
    let (s, v) = caught(weakened("lw-handoff-fail"));
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("Causality violation"), "{s:?}: {f}");
}

/// Site `lw-handoff` (Release -> Relaxed): loom's blind spot. Every
/// scenario passes although C11 and Arm allow the early free; the litmus
/// checker decides it (tests/loom_blind_spot.rs). This test documents that
/// loom's pass is *not* evidence.
#[test]
fn weakened_handoff_passes_loom_blind_spot() {
    passes(weakened("lw-handoff"));
}

/// Site `lw-unlazy-store` (Release -> Relaxed): caught. The plain unlazy
/// (same mm) is sound as an *unlazy*, but like the publication (`lw-publish`)
/// it is a newer word in the slot: a teardown of the mm this CPU borrowed
/// before (the ABA scenario: the old mm's address reused) that reads it must
/// synchronize with this CPU's last use of the old mm, and a Relaxed store
/// does not continue the release sequence of the earlier exchange. (The LKMM
/// version, litmus/unlazy-plain+held-reference.litmus, is `Never` with a
/// WRITE_ONCE: the kernel's fully ordered xchg makes it enough there.)
#[test]
fn weakened_unlazy_store_is_caught() {
    let (s, v) = caught(weakened("lw-unlazy-store"));
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("Causality violation"), "{s:?}: {f}");
}

/// Site `lw-publish` (Release -> Relaxed): caught (was the Relaxed
/// publication bug this suite found).
#[test]
fn weakened_publish_is_caught() {
    let (s, v) = caught(weakened("lw-publish"));
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("Causality violation"), "{s:?}: {f}");
}

/// Question 4: the non-atomic unlazy when returning to the same mm
/// (`SameMm`, the default) is sound; the always-atomic one too.
#[test]
fn unlazy_plain_same_mm_and_off_are_clean() {
    for up in [UnlazyPlain::SameMm, UnlazyPlain::Off] {
        passes(SchemeOptions {
            unlazy_plain: up,
            ..SchemeOptions::default()
        });
    }
}

/// Question 4: the seed's literal idea (`ReadUsers`: a plain store whenever
/// a load of `users` reads > 0) is refuted: the teardown starts between the
/// load and the store, its hand-off `mm|1` is overwritten by the plain
/// NULL, and the mm leaks.
#[test]
fn unlazy_plain_read_users_is_refuted_by_a_leak() {
    let (s, v) = caught(SchemeOptions {
        unlazy_plain: UnlazyPlain::ReadUsers,
        ..SchemeOptions::default()
    });
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("leaked"), "{s:?}: {f}");
    assert!(f.contains("torn down, never freed"), "{f}");
}

/// The batched grab (the seed's XXX) and the per-hit grab are both clean.
#[test]
fn batched_and_single_grab_are_clean() {
    for batched_grab in [true, false] {
        passes(SchemeOptions {
            batched_grab,
            ..SchemeOptions::default()
        });
    }
}

/// Question 5: freeing with interrupts off is *safe* (the ledger is clean
/// with `defer_free: false`, and loom finds interleavings where the free
/// happens in the IPI/unlazy with interrupts off), and the deferred drop
/// removes every such free.
#[test]
fn frees_with_irqs_off_are_safe_and_deferral_removes_them() {
    let mut seen_irqs_off = 0;
    for arch in [Arch::Arm64, Arch::PowerpcHash, Arch::X86] {
        for s in [
            scenarios::exit_while_lazy(arch),
            scenarios::unlazy_to_init_races_teardown(arch),
            scenarios::exiting_cpu_lazy_on_own_mm(arch),
            scenarios::kthread_use_mm_during_exit(arch),
        ] {
            let immediate = verdict(
                s,
                LW,
                SchemeOptions {
                    defer_free: false,
                    ..SchemeOptions::default()
                },
            );
            assert!(immediate.clean(), "{s:?}: {:?}", immediate.failure);
            seen_irqs_off += immediate.max_frees_irqs_off;
            let deferred = verdict(s, LW, SchemeOptions::default());
            assert!(deferred.clean(), "{s:?}: {:?}", deferred.failure);
            assert_eq!(deferred.max_frees_irqs_off, 0, "{s:?}");
        }
    }
    assert!(
        seen_irqs_off > 0,
        "no interleaving freed with IRQs off: the question is not exercised"
    );
}

/// Issue 9, item 3 (the seed's "non-atomic unlazy", re-answered):
/// kernel/kthread.c kthread_use_mm requires only an `mmgrab` of the mm
/// (KVM's Xen code calls it with `users` possibly 0). The pre-issue-9 rule
/// (`SameMmAnyTask`: plain store whenever `current->mm` is the same mm) is
/// refuted: the teardown hands the lazy CPU `mm|1`, then
/// `kthread_use_mm(mm)` on that CPU plain-stores 0 over it and the unit
/// leaks. The production `SameMm` (a *user task* of the mm only) is clean
/// in the same scenario.
#[test]
fn same_mm_any_task_unlazy_leaks_under_kthread_use_mm_grab_only() {
    for arch in [Arch::Arm64, Arch::PowerpcHash] {
        let s = scenarios::kthread_use_mm_grab_only(arch);
        let v = verdict(
            s,
            LW,
            SchemeOptions {
                unlazy_plain: UnlazyPlain::SameMmAnyTask,
                ..SchemeOptions::default()
            },
        );
        let f = v.failure.unwrap_or_default();
        assert!(f.contains("torn down, never freed"), "{arch}: {f}");
        let ok = verdict(s, LW, SchemeOptions::default());
        assert!(ok.clean(), "{arch}: {:?}", ok.failure);
    }
}

/// Issue 9, item 3, the second half: a kernel thread that adopted an mm
/// with only an `mmgrab` leaves it lazily at `kthread_unuse_mm` after the
/// teardown's fix-up has run: nothing hands it a unit, and its own
/// `mmdrop` frees the mm under its MMU. lazymm's fix
/// (`Machine::kthread_lazy_users_check` + the teardown fence,
/// `lw-teardown-fence`): removing the teardown half is caught.
#[test]
fn kthread_publish_without_users_needs_the_teardown_fence() {
    let s = scenarios::kthread_use_mm_grab_only(Arch::Arm64);
    let v = verdict(s, LW, weakened("lw-teardown-fence"));
    let f = v.failure.unwrap_or_default();
    assert!(f.contains("use-after-free"), "{f}");
}
