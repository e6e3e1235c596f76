//! Issue 9's omitted flush paths under loom: x86's `should_flush_tlb`
//! (arch/x86/mm/tlb.c) skips a lazy CPU, which is safe only because of the
//! store-buffering pair between the flusher (`inc_mm_tlb_gen`, a full
//! barrier, then the read of the target's `cpu_tlbstate_shared.is_lazy`)
//! and the lazy CPU returning to the mm (`switch_mm_irqs_off`: `is_lazy =
//! false`, `smp_mb()`, then the `tlb_gen` read). The scenario
//! `flush_races_lazy_return` is clean with both barriers; without either,
//! loom finds the flusher reading `is_lazy` stale and the returning CPU
//! reading the old `tlb_gen`: the ledger's stale-TLB rule (a use of the
//! page the flush unmapped) fails. The explorer cannot show this (it is
//! sequentially consistent).

use lazymm::{Arch, SchemeKind, SchemeOptions};
use lazymm_verify::{scenarios, verdict};

fn run(weaken: Option<&'static str>) -> Option<String> {
    let opts = SchemeOptions {
        weaken,
        ..SchemeOptions::default()
    };
    verdict(
        scenarios::flush_races_lazy_return(Arch::X86),
        SchemeKind::Refcount,
        opts,
    )
    .failure
}

#[test]
fn the_tlb_gen_catch_up_needs_both_barriers() {
    assert_eq!(run(None), None, "production: clean");
    for site in ["rt-lazy-return-mb", "rt-flush-mb"] {
        let f = run(Some(site)).unwrap_or_else(|| panic!("{site} removed: loom found nothing"));
        assert!(f.contains("stale TLB"), "{site} removed: {f}");
    }
}
