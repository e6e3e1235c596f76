//! Issue 3, part 2: evidence that each check can fail. For every ordering
//! site of every implemented scheme (`ordering_sites()`, new schemes picked
//! up as they land), the production scheme with exactly that site weakened
//! (`SchemeOptions::weaken`) is run through the loom suite, and the result
//! must be the expected one:
//!
//! * `Loom`: some scenario whose production verdict is clean fails;
//! * `BlindSpot(relaxed, fixed)`: loom passes every scenario (it cannot
//!   see the reordering), and the litmus checker decides: the relaxed
//!   pattern's file is `Sometimes`, the fixed one's `Never`;
//! * `NotNeeded(file)`: loom passes and the litmus file shows the weaker
//!   ordering is already `Never` (the site is stronger than necessary).
//!
//! A site of a scheme not in [`expected`] is classified from its own
//! `decided_by` text: "loom: ..." expects `Loom`, anything else expects loom
//! to pass and the first `litmus/*.litmus` it names to check as annotated.

use std::path::PathBuf;

use lazymm::{SchemeKind, SchemeOptions};
use lazymm_litmus::{check_file, Options, Status, Verdict as LVerdict};
use lazymm_verify::{first_failure, ordering_sites, production, suite, verdict, weakened};

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Some clean-baseline scenario fails.
    Loom,
    /// loom passes; the litmus pair decides (relaxed `Sometimes`, fixed
    /// `Never`).
    BlindSpot(&'static str, &'static str),
    /// loom passes and the litmus file (the weakened shape) is `Never`.
    #[allow(dead_code)] // no site is in this class today (lw-unlazy-store was, until b5e1012)
    NotNeeded(&'static str),
    /// loom passes; decided by the written argument in
    /// docs/verification.md (the text says which).
    Argument(&'static str),
    /// loom passes although the site's author expected a loom test: no
    /// scenario of the suite reaches the race yet (reported).
    #[allow(dead_code)] // every site is reached by some scenario today
    Gap(&'static str),
    /// The scheme is unsafe whatever the orderings: nothing to weaken.
    UnsafeScheme,
    /// Loom passes; decided by the site's own litmus file (as annotated).
    Litmus(&'static str),
}

const V1_RELAXED: &str = "v1-handoff+cmpxchg-relaxed.litmus";
const V1_RELEASE: &str = "v1-handoff+cmpxchg-release.litmus";

fn expected(kind: SchemeKind, site: &lazymm::schemes::OrderingSite) -> Expect {
    if kind.known_unsafe().is_some() && kind.name() == "rcu" {
        return Expect::UnsafeScheme;
    }
    match site.name {
        "lw-publish" | "lw-unlazy-xchg" | "lw-unlazy-store" | "lw-scan-load" | "lw-handoff-fail" => {
            Expect::Loom
        }
        "lw-handoff" | "hh-steal" => Expect::BlindSpot(V1_RELAXED, V1_RELEASE),
        "v2-grab-store" | "v2-unlazy-release" | "v2-scan-load" | "v2-handoff-xchg" => Expect::Loom,
        "hh-grab-store" | "hh-unlazy-release" | "hh-scan-load" | "hh-drop-load" => Expect::Loom,
        // Issue 9: the teardown's SB fence (hh-teardown-fence, a C11 release
        // fence) now precedes the hand-off and hides its weakening from
        // loom; the count increment after the fence is loom's RMW blind
        // spot, decided by litmus as lw-handoff is.
        "hh-handoff" => Expect::BlindSpot(V1_RELAXED, V1_RELEASE),
        "hh-teardown-fence" | "lw-teardown-fence" => Expect::Loom,
        "v2-drain-cas" | "hh-drain-cas" => Expect::Argument(
            "consumer side of the hand-off: LKMM orders the consumer's decrement after its read by \
             the control dependency (litmus v1-handoff+cmpxchg+xchg-relaxed.litmus: Never); C11 has \
             no such rule, so the Rust code keeps the Acquire. loom cannot see either (program order).",
        ),
        // Caught by the 3-CPU stale-mailbox scenario (kernel-history 8.4).
        "v2-revalidate-load" | "hh-reload" => Expect::Loom,
        "sd-grab-fence" | "sd-drop-fence" | "hi-publish-fence" => Expect::Argument(
            "membarrier's full barrier on the switch path, not an mm-lifetime ordering; membarrier \
             is not modelled",
        ),
        "hi-scan-fence" => Expect::Argument(
            "the generic hazard-pointer SB fence; for the lazy-mm user the scan starts after users \
             reached 0 (AcqRel), which orders every publication (kernel-history 8.1)",
        ),
        "hi-clear-fence" | "hi-scan-load" => Expect::Loom,
        "rla-grab-store" | "rla-drop-store" | "rla-gp-load" => Expect::Loom,
        _ if site.decided_by.trim_start().starts_with("loom") => Expect::Loom,
        _ => {
            let file = site
                .decided_by
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(')
                .find(|w| w.ends_with(".litmus"))
                .map(|w| w.trim_start_matches("litmus/"))
                .unwrap_or("");
            Expect::Litmus(file)
        }
    }
}

fn litmus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../litmus")
}

fn litmus_verdict(file: &str) -> (LVerdict, Option<String>) {
    let r = check_file(&litmus_dir().join(file), &Options::default());
    assert_eq!(r.status, Status::Ok, "{file}: {:?}", r.message);
    let o = r.outcome.expect("outcome");
    (o.verdict, r.expected.map(|e| e.verdict))
}

fn check_sites(kind: SchemeKind) {
    if lazymm::schemes::build::<lazymm::LoomPlatform>(kind, &SchemeOptions::default()).is_err() {
        return;
    }
    let mut table = Vec::new();
    let mut bad = Vec::new();
    let base: Vec<_> = suite(kind)
        .into_iter()
        .filter(|&s| verdict(s, kind, SchemeOptions::default()).clean())
        .collect();
    for site in ordering_sites(kind) {
        let e = expected(kind, site);
        if let Expect::UnsafeScheme = e {
            table.push(format!(
                "{kind:14} {:18} unsafe scheme: nothing to weaken",
                site.name
            ));
            continue;
        }
        let got = first_failure(&base, kind, weakened(site.name), production);
        let line = match (&e, &got) {
            (Expect::Loom, Some((s, v))) => {
                format!("caught by loom in {s:?} ({} executions)", v.executions)
            }
            (Expect::Loom, None) => {
                bad.push(format!(
                    "{kind}/{}: expected loom to fail, it passes",
                    site.name
                ));
                continue;
            }
            (_, Some((s, v))) => {
                bad.push(format!(
                    "{kind}/{}: expected loom to pass ({e:?}), it fails {s:?}: {:?}",
                    site.name, v.failure
                ));
                continue;
            }
            (Expect::BlindSpot(relaxed, fixed), None) => {
                let (r, _) = litmus_verdict(relaxed);
                let (f, _) = litmus_verdict(fixed);
                if r != LVerdict::Sometimes || f != LVerdict::Never {
                    bad.push(format!(
                        "{kind}/{}: litmus {relaxed} {r}, {fixed} {f}",
                        site.name
                    ));
                }
                format!("loom passes (blind spot); litmus {relaxed}: {r}, {fixed}: {f}")
            }
            (Expect::NotNeeded(file), None) => {
                let (v, _) = litmus_verdict(file);
                if v != LVerdict::Never {
                    bad.push(format!("{kind}/{}: litmus {file} {v}", site.name));
                }
                format!("loom passes; litmus {file}: {v} (stronger than needed)")
            }
            (Expect::Argument(why), None) => format!("loom passes; argument: {why}"),
            (Expect::Gap(what), None) => format!("loom passes; GAP, no scenario yet: {what}"),
            (Expect::Litmus(file), None) => {
                if file.is_empty() || !litmus_dir().join(file).exists() {
                    bad.push(format!(
                        "{kind}/{}: loom passes and decided_by names no existing litmus file ({})",
                        site.name, site.decided_by
                    ));
                    continue;
                }
                let (v, annotated) = litmus_verdict(file);
                if annotated.as_deref() != Some(&format!("{v}")) {
                    bad.push(format!(
                        "{kind}/{}: litmus {file} {v} vs {annotated:?}",
                        site.name
                    ));
                }
                format!("loom passes (blind spot); litmus {file}: {v}")
            }
            (Expect::UnsafeScheme, None) => unreachable!(),
        };
        table.push(format!(
            "{kind:14} {:18} {:13} {line}",
            site.name, site.strong
        ));
    }
    eprintln!("{}", table.join("\n"));
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn refcount_and_mockup_sites() {
    check_sites(SchemeKind::Refcount);
    check_sites(SchemeKind::Mockup);
}

#[test]
fn lightweight_sites() {
    check_sites(SchemeKind::Lightweight);
}

/// Every other scheme of the catalogue, as it lands.
#[test]
fn every_other_scheme_sites() {
    for kind in SchemeKind::ALL {
        if !matches!(
            kind,
            SchemeKind::Refcount | SchemeKind::Mockup | SchemeKind::Lightweight
        ) {
            check_sites(kind);
        }
    }
}

/// Issue 9, item 9: include/linux/sched/mm.h requires mmdrop_lazy_tlb() to
/// give a full barrier (kernel/sched/core.c finish_task_switch: membarrier
/// needs one after storing rq->curr and before user space when a kernel
/// thread switches to a user task). Without it (lightweight's plain unlazy,
/// v2/hazard-handoff's release stores, on arm64/powerpc where switch_mm to
/// the lazily held mm gives none) membarrier can miss the thread:
/// `Sometimes`; with it, `Never`. So membarrier does not stay correct
/// without the barrier (docs/verification.md, issue 9).
#[test]
fn membarrier_needs_the_full_barrier_of_mmdrop_lazy_tlb() {
    let (v, _) = litmus_verdict("membarrier-lazy-unlazy+no-mb.litmus");
    assert_eq!(v, LVerdict::Sometimes);
    let (v, _) = litmus_verdict("membarrier-lazy-unlazy+mb.litmus");
    assert_eq!(v, LVerdict::Never);
}
