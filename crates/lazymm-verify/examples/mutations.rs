//! Prints, for every ordering site of every implemented scheme, what the
//! loom suite says when that one site is weakened (the table of
//! docs/verification.md): `cargo run --release -p lazymm-verify --example mutations`.
use lazymm::{SchemeKind, SchemeOptions, UnlazyPlain};
use lazymm_verify::{first_failure, ordering_sites, production, suite, verdict, weakened};

fn main() {
    let verbose = std::env::var_os("VERBOSE").is_some();
    for kind in SchemeKind::ALL {
        if lazymm::schemes::build::<lazymm::LoomPlatform>(kind, &SchemeOptions::default()).is_err()
        {
            continue;
        }
        let base: Vec<_> = suite(kind)
            .into_iter()
            .filter(|&s| verdict(s, kind, SchemeOptions::default()).clean())
            .collect();
        println!("{kind}: {} clean baseline scenarios", base.len());
        for site in ordering_sites(kind) {
            match first_failure(&base, kind, weakened(site.name), production) {
                Some((s, v)) => {
                    println!(
                        "  {:18} {:13} CAUGHT by {s:?} after {} executions",
                        site.name, site.strong, v.executions
                    );
                    if verbose {
                        println!("{}", v.failure.unwrap_or_default());
                    }
                }
                None => println!(
                    "  {:18} {:13} loom passes [decided_by: {}]",
                    site.name, site.strong, site.decided_by
                ),
            }
        }
    }
    let kind = SchemeKind::Lightweight;
    for up in [
        UnlazyPlain::Off,
        UnlazyPlain::SameMm,
        UnlazyPlain::ReadUsers,
    ] {
        let opts = SchemeOptions {
            unlazy_plain: up,
            ..SchemeOptions::default()
        };
        let base: Vec<_> = suite(kind)
            .into_iter()
            .filter(|&s| verdict(s, kind, SchemeOptions::default()).clean())
            .collect();
        match first_failure(&base, kind, opts, production) {
            Some((s, v)) => println!("{up:?}: FAILS in {s:?}\n{}", v.failure.unwrap_or_default()),
            None => println!("{up:?}: clean in {} scenarios", base.len()),
        }
    }
}
