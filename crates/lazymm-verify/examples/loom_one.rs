//! Runs one loom scenario and prints the verdict with its interleaving:
//! `cargo run --release -p lazymm-verify --example loom_one -- SCHEME ARCH INDEX [WEAKEN]`.
use lazymm::{Arch, SchemeKind, SchemeOptions};
use lazymm_verify::{scenarios, verdict};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let kind = SchemeKind::parse(&a[1]).expect("scheme");
    let arch = Arch::parse(&a[2]).expect("arch");
    let s = scenarios::all(arch)[a[3].parse::<usize>().expect("index")];
    let mut opts = SchemeOptions::default();
    if let Some(w) = a.get(4) {
        opts.weaken = Some(Box::leak(w.clone().into_boxed_str()));
    }
    let v = if std::env::var_os("FIX").is_some() {
        lazymm_verify::verdict_with(s, kind, opts, lazymm_verify::fixes::ReleasePublish::boxed)
    } else {
        verdict(s, kind, opts)
    };
    println!("{s:?}: {} executions, {:.2}s", v.executions, v.seconds);
    match v.failure {
        Some(f) => println!("FAILED:\n{f}"),
        None => println!("clean"),
    }
}
