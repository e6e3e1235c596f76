//! The `this-machine` preset's latency solve (`timing::this_machine`): the
//! model's own run of the calibration's hand-off pattern, and the latency at
//! which it matches a measured hand-off. Deterministic: exact model figures.

use lazymm::SchemeKind;
use lazymm_sim::timing::spec::MachineSpec;
use lazymm_sim::timing::this_machine::{handoff_ns, latency_for_handoff, switches_per_s, Shape};

fn with_latency(l: f64) -> MachineSpec {
    let mut s = MachineSpec::load("this-machine").expect("shipped preset");
    s.latency_ns.socket.value = l;
    s.latency_ns.node.value = l;
    s.latency_ns.remote.value = l;
    s
}

/// The hand-off pattern (load miss + upgrade) costs the model two
/// transfers plus the local RMW and the load hit: the reason the preset's
/// latency is not the measured hand-off itself.
#[test]
fn handoff_is_two_transfers_plus_local_work() {
    let s = with_latency(100.0);
    let h = handoff_ns(&s, 1000);
    let local = s.cost_ns.rmw_local.value + s.cost_ns.load_hit.value;
    assert!(
        (h - (200.0 + local)).abs() < 0.01,
        "hand-off {h} ns at 100 ns latency, local work {local} ns"
    );
}

/// The solve inverts the model exactly, in both of the guest's regimes
/// (~30 ns and ~165 ns hand-offs, docs/timing.md).
#[test]
fn solved_latency_reproduces_the_measured_handoff() {
    let base = MachineSpec::load("this-machine").expect("shipped preset");
    for measured in [30.0, 165.0] {
        let l = latency_for_handoff(&base, measured).expect("solvable");
        let h = handoff_ns(&with_latency(l), 1000);
        assert!(
            (h - measured).abs() < 0.01,
            "latency {l} ns gives a {h} ns hand-off, measured {measured} ns"
        );
        assert!(
            l < measured / 2.0,
            "latency {l} ns for a {measured} ns hand-off"
        );
    }
}

/// lightweight touches no shared line on the idle round trip: its
/// ping-pong turn costs the token hand-off and the switch before the pass
/// (the switch back to idle after the pass overlaps the next turn, up to
/// the other CPU's own), whatever the latency; refcount adds the
/// `mm_count` steal.
#[test]
fn ping_pong_lightweight_is_the_token_alone() {
    let s = with_latency(80.0);
    let turn = |scheme| {
        2.0 * 1e9 / switches_per_s(&s, scheme, Shape::PingPong, 2, 2000).expect("clean run")
    };
    let h = handoff_ns(&s, 1000);
    let sw = s.cost_ns.switch.value;
    let lw = turn(SchemeKind::Lightweight);
    assert!(
        lw >= h + sw && lw <= h + 2.0 * sw,
        "lightweight turn {lw} ns, hand-off {h} ns, switch {sw} ns"
    );
    let rc = turn(SchemeKind::Refcount);
    assert!(
        rc >= lw + 80.0,
        "refcount turn {rc} ns vs lightweight {lw} ns: no mm_count steal"
    );
}

/// The committed preset's latency is the solve of its committed hand-off
/// (40.65 ns, `machines/this-machine.toml`'s source), not the hand-off.
#[test]
fn committed_preset_latency_is_solved_from_its_handoff() {
    let s = MachineSpec::load("this-machine").expect("shipped preset");
    let l = latency_for_handoff(&s, 40.65).expect("solvable");
    assert!(
        (s.latency_ns.socket.value - l).abs() < 0.001,
        "preset {} ns, solved {l} ns",
        s.latency_ns.socket.value
    );
}
