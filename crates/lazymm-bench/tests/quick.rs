//! Runs the real-thread bench briefly: every scheme completes with a clean
//! ledger (or its declared known-unsafe verdict) and the report has one row
//! per scheme and workload. Timing is never asserted.

use std::time::Duration;

use lazymm::SchemeKind;
use lazymm_bench::{calibrate, run_bench, BenchConfig, Length, Workload};

#[test]
fn quick_bench_has_clean_ledgers_and_a_row_per_scheme() {
    let mut cfg = BenchConfig::quick(2);
    cfg.length = Length::Time(Duration::from_millis(20));
    cfg.reps = 2;
    let mut calls = 0;
    let r = run_bench(&cfg, &mut |done, total, _| {
        calls += 1;
        assert!(done <= total);
    })
    .expect("bench runs");
    assert_eq!(calls, cfg.total_runs());
    assert!(!r.has_failure(), "dirty ledger: {r:#?}");
    let ran = cfg.scheme_list().len() - r.skipped.len();
    assert_eq!(r.rows.len(), ran * Workload::ALL.len());
    for row in &r.rows {
        assert_eq!(row.rates.len(), cfg.reps);
        assert!(row.switches_per_s.median > 0.0);
        assert!(row.ratio_to_refcount.median > 0.0);
        if SchemeKind::parse(&row.scheme)
            .and_then(SchemeKind::known_unsafe)
            .is_none()
        {
            assert_eq!(row.verdict, "ok", "{row:?}");
        }
        if row.scheme == "refcount" {
            assert_eq!(row.ratio_to_refcount.median, 1.0);
        }
    }
}

#[test]
fn iteration_bounded_runs_count_exactly() {
    for (w, stride) in [
        (Workload::PingPong, 1),
        (Workload::FreeRun, 1),
        (Workload::PingPong, 16),
        (Workload::FreeRun, 16),
    ] {
        for s in SchemeKind::ALL {
            let Ok(r) = lazymm_bench::switches::run(
                s,
                lazymm::Arch::X86,
                2,
                w,
                Length::Iterations(500),
                lazymm_bench::RunOpts { pin: true, stride },
            ) else {
                continue;
            };
            assert_eq!(r.switches, 2 * 2 * 500, "{s} {w} stride {stride}");
            assert_eq!(r.teardowns, 1);
            if s.known_unsafe().is_none() {
                assert!(r.ledger.uaf == 0 && r.ledger.double_free == 0 && r.ledger.leaked == 0);
            }
        }
    }
}

#[test]
fn calibration_produces_positive_figures() {
    let c = calibrate(2, 5);
    assert!(c.local_rmw.ns > 0.0 && c.handoff.ns > 0.0);
    assert_eq!(c.local_rmw.samples, 5);
    assert_eq!(
        c.model_transfer_over_local,
        c.model.transfer / c.model.local_rmw
    );
}
