//! The cache-line patterns behind `lazymm validate`'s real-thread shapes, on
//! bare atomics (no runtime): two threads pass a token by RMW (as
//! `calibrate.rs`'s hand-off), and the turn holder also touches a second
//! line `y`, the stand-in for `mm_count` under refcount:
//!
//! * `handoff`: the token alone;
//! * `+rmw-before`: an RMW on `y` before passing the token (the other
//!   thread RMW'd it on its turn: a steal of a line modified elsewhere, on
//!   the critical path, as refcount's `mmdrop` on the switch to the user
//!   task);
//! * `+rmw-after`: an RMW on `y` after passing (off the critical path);
//! * `+load-before`: a load of `y` before passing;
//! * `+both`: before and after, refcount's ping-pong pattern (drop on the
//!   way to the user task, grab on the way back to idle).
//!
//! ns per hand-off, 3 rounds. Run on an idle machine:
//! `cargo run --release -p lazymm-bench --example line_patterns`.
//! Measured, never asserted; `docs/timing.md` records what it showed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use lazymm_bench::switches::{pin_to_core, spin_wait};
use lazymm_bench::Padded;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Handoff,
    RmwBefore,
    RmwAfter,
    LoadBefore,
    Both,
}

fn run(mode: Mode) -> f64 {
    let token = Padded(AtomicU64::new(0));
    let y = Padded(AtomicU64::new(0));
    const TURNS: u64 = 200_000;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (token, y) = (&token, &y);
            s.spawn(move || {
                pin_to_core(t as usize);
                let (mut mine, mut spins) = (0, 0);
                while mine < TURNS {
                    // Ordering: Acquire pairs with the other thread's AcqRel
                    // pass below: a real hand-off.
                    if token.0.load(Ordering::Acquire) % 2 != t {
                        spin_wait(&mut spins);
                        continue;
                    }
                    if matches!(mode, Mode::RmwBefore | Mode::Both) {
                        y.0.fetch_add(1, Ordering::SeqCst);
                    }
                    if mode == Mode::LoadBefore {
                        // Ordering: Acquire, as a load of a published word.
                        y.0.load(Ordering::Acquire);
                    }
                    // Ordering: AcqRel pairs with the other thread's Acquire
                    // load above.
                    token.0.fetch_add(1, Ordering::AcqRel);
                    if matches!(mode, Mode::RmwAfter | Mode::Both) {
                        y.0.fetch_add(1, Ordering::SeqCst);
                    }
                    mine += 1;
                    spins = 0;
                }
            });
        }
    });
    t0.elapsed().as_nanos() as f64 / (2 * TURNS) as f64
}

fn main() {
    for _ in 0..3 {
        println!(
            "handoff {:6.1}  +rmw-before {:6.1}  +rmw-after {:6.1}  +load-before {:6.1}  +both {:6.1}  (ns per hand-off)",
            run(Mode::Handoff),
            run(Mode::RmwBefore),
            run(Mode::RmwAfter),
            run(Mode::LoadBefore),
            run(Mode::Both)
        );
    }
}
