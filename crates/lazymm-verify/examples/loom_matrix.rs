//! Every scheme x scenario x profile of the loom suite under one kernel
//! model, one line per failing (or every, with ALL=1) verdict:
//! `LAZYMM_KERNEL=pre-issue-9 cargo run --release -p lazymm-verify --example loom_matrix [SCHEME...]`
//! (LAZYMM_KERNEL: see `lazymm::schemes::KernelOptions::parse`; empty: 6.12).
use lazymm::schemes::KernelOptions;
use lazymm::{SchemeKind, SchemeOptions};
use lazymm_verify::{scenarios, verdict};

fn main() {
    let k = std::env::var("LAZYMM_KERNEL").unwrap_or_default();
    let kernel = match KernelOptions::parse(&k) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("LAZYMM_KERNEL: {e}");
            std::process::exit(2);
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kinds: Vec<SchemeKind> = if args.is_empty() {
        SchemeKind::ALL.to_vec()
    } else {
        args.iter()
            .map(|a| SchemeKind::parse(a).unwrap_or_else(|| panic!("unknown scheme {a}")))
            .collect()
    };
    let all = std::env::var_os("ALL").is_some();
    for kind in kinds {
        for arch in scenarios::ARCHES {
            for s in scenarios::for_scheme(kind, arch) {
                let opts = SchemeOptions {
                    kernel,
                    ..SchemeOptions::default()
                };
                let v = verdict(s, kind, opts);
                let what = match &v.failure {
                    None => "clean".to_string(),
                    Some(f) => {
                        let first = f.lines().next().unwrap_or("");
                        format!("FAIL {first}")
                    }
                };
                if all || v.failure.is_some() {
                    println!("{kind}\t{arch}\t{}\t{what}", s.name);
                }
                if let (Some(f), Some(_)) = (&v.failure, std::env::var_os("TRACE")) {
                    println!("{f}");
                }
            }
        }
    }
}
