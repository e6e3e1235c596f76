//! `lazymm validate`'s real-thread comparison: its structure, never its
//! outcome (timing is never asserted). Every repetition is re-calibrated,
//! carries its own model and measured ratio, and is kept only when both
//! bench threads ran; the verdict is "busy" when none was kept.

use std::path::Path;
use std::process::Command;

#[test]
fn real_thread_comparison_is_per_repetition() {
    let o = Command::new(env!("CARGO_BIN_EXE_lazymm"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(["validate", "--quick", "--json"])
        .output()
        .expect("run lazymm");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let real = v["this_machine"].as_array().expect("this_machine");
    assert_eq!(real.len(), 4, "two shapes x two ratios");
    for r in real {
        let reps = r["per_rep"].as_array().expect("per_rep");
        assert_eq!(reps.len(), 3, "--quick: 3 repetitions");
        assert_eq!(r["reps"], 3);
        let kept = reps.iter().filter(|p| p["kept"] == true).count();
        assert_eq!(r["reps_kept"].as_u64(), Some(kept as u64));
        for p in reps {
            let h = p["handoff_ns"].as_f64().expect("handoff per repetition");
            assert!(h > 0.0);
            let u = p["utilization"].as_f64().expect("utilization");
            assert_eq!(p["kept"] == true, u >= 0.85, "kept iff utilization >= 85%");
            assert!(p["model"].as_f64().expect("model") > 0.0);
        }
        let within = reps
            .iter()
            .filter(|p| {
                p["kept"] == true
                    && (p["model"].as_f64().unwrap() / p["measured"].as_f64().unwrap() - 1.0).abs()
                        <= 0.25
            })
            .count();
        assert_eq!(r["reps_within"].as_u64(), Some(within as u64));
        assert_eq!(
            r["within_25_pct"].as_bool(),
            Some(kept > 0 && within == kept),
            "yes only when every kept repetition is within 25%"
        );
        let verdict = r["verdict"].as_str().expect("verdict");
        match kept {
            0 => assert_eq!(verdict, "busy"),
            _ => assert!(
                (verdict == "yes") == r["within_25_pct"].as_bool().expect("bool")
                    && (verdict == "yes" || verdict == "NO"),
                "{verdict}"
            ),
        }
    }
    // The preset the last repetition used says where its latency came from.
    let src = v["this_machine_spec"]["latency_ns"]["socket"]["source"]
        .as_str()
        .expect("source");
    assert!(src.contains("solved from calibrate.rs handoff"), "{src}");
}
