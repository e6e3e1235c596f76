//! Detects the optional test inputs so that the tests depending on them are
//! `#[ignore]`d with a reason when they are absent (never silently passed):
//! - `cfg(lkmm_data)`: the published litmus tests, `$LAZYMM_SHARED/lkmm`
//!   or `<workspace>/../shared/lkmm`;
//! - `cfg(herd7)`: the `herd7-lkmm` wrapper of `shared/tools/herd7/build.sh`,
//!   `$HERD7_LKMM` or `$HOME/.cache/herd7/bin/herd7-lkmm`.
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(lkmm_data)");
    println!("cargo:rustc-check-cfg=cfg(herd7)");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LAZYMM_SHARED");
    println!("cargo:rerun-if-env-changed=HERD7_LKMM");
    println!("cargo:rerun-if-env-changed=HOME");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let data = match std::env::var_os("LAZYMM_SHARED") {
        Some(s) => PathBuf::from(s).join("lkmm"),
        None => manifest.join("../../../shared/lkmm"),
    };
    // a missing file makes cargo rerun this script on every build, so the
    // cfg appears as soon as the data (or herd7) does
    let readme = data.join("README.md");
    println!("cargo:rerun-if-changed={}", readme.display());
    if readme.is_file() {
        println!("cargo:rustc-cfg=lkmm_data");
    }
    let herd = match std::env::var_os("HERD7_LKMM") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/herd7/bin/herd7-lkmm"))
        }
    };
    if let Some(h) = herd {
        println!("cargo:rerun-if-changed={}", h.display());
        if h.is_file() {
            println!("cargo:rustc-cfg=herd7");
        }
    }
}
