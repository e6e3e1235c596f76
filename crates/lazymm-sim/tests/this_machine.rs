//! The `this-machine` preset's latency solve (`timing::this_machine`): the
//! model's own run of the calibration's hand-off pattern, and the latency at
//! which it matches a measured hand-off. Deterministic: exact model figures.

use lazymm::SchemeKind;
use lazymm_sim::timing::spec::MachineSpec;
use lazymm_sim::timing::this_machine::{
    contended_ns, handoff_ns, handoff_steal_ns, hold_for_contended, latency_for_handoff,
    steal_for_handoff, switch_for_runtime, switches_per_s, wakeup_for_pingpong, Shape,
};

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

/// A steal (a store or RMW to a line the other CPU holds modified, no copy
/// here) is priced at `coherence.steal` times the distance's latency; the
/// hand-off's two halves (a load miss, an upgrade of a shared line) are
/// not, so the latency solve is independent of the steal factor.
#[test]
fn steal_factor_prices_steals_only() {
    let mut s = with_latency(100.0);
    let h1 = handoff_ns(&s, 1000);
    let add1 = handoff_steal_ns(&s, 1000) - h1;
    s.coherence.steal.value = 3.0;
    let h3 = handoff_ns(&s, 1000);
    let add3 = handoff_steal_ns(&s, 1000) - h3;
    assert!(
        (h1 - h3).abs() < 1e-9,
        "hand-off moved with the steal factor: {h1} -> {h3}"
    );
    // Factor 1: the steal is one transfer plus the RMW itself.
    let rmw = s.cost_ns.rmw_local.value;
    assert!(
        (add1 - (100.0 + rmw)).abs() < 0.01,
        "steal adds {add1} ns at factor 1"
    );
    assert!(
        (add3 - (300.0 + rmw)).abs() < 0.01,
        "steal adds {add3} ns at factor 3"
    );
}

/// The steal solve inverts the model exactly, in both of the guest's
/// placements (docs/this-machine.md: a steal adds ~20-35 ns to a ~30 ns
/// hand-off in one, ~230-270 ns to a ~165 ns one in the other).
#[test]
fn solved_steal_reproduces_the_measured_addition() {
    let base = MachineSpec::load("this-machine").expect("shipped preset");
    for (handoff, added) in [(30.0, 25.0), (165.0, 250.0)] {
        let l = latency_for_handoff(&base, handoff).expect("solvable");
        let mut s = with_latency(l);
        let f = steal_for_handoff(&s, added).expect("solvable");
        s.coherence.steal.value = f;
        let got = handoff_steal_ns(&s, 1000) - handoff_ns(&s, 1000);
        // The model keeps the factor in thousandths.
        assert!(
            (got - added).abs() < 0.1,
            "factor {f}: adds {got} ns, measured {added} ns"
        );
    }
}

/// `switch` is the runtime's warm per-switch time less what the model
/// charges lightweight's own accesses: the model's one-CPU free-run with
/// the solved `switch` takes the measured time per switch.
#[test]
fn solved_switch_reproduces_the_runtime_switch() {
    let mut s = MachineSpec::load("this-machine").expect("shipped preset");
    let measured = 17.0;
    let sw = switch_for_runtime(&s, measured).expect("solvable");
    assert!(sw > 0.0 && sw < measured, "switch {sw} ns of {measured} ns");
    s.cost_ns.switch.value = sw;
    let per =
        1e9 / switches_per_s(&s, SchemeKind::Lightweight, Shape::FreeRun, 1, 2000).expect("clean");
    assert!(
        (per - measured).abs() < 0.01,
        "model {per} ns per switch, measured {measured} ns"
    );
}

/// `wakeup` is what a real ping-pong turn on private machines costs beyond
/// the model's lightweight turn: with it, the model's turn is the measured
/// one; a measured turn the model already exceeds gives 0.
#[test]
fn solved_wakeup_reproduces_the_woken_switch() {
    let mut s = MachineSpec::load("this-machine").expect("shipped preset");
    let turn = |s: &MachineSpec| {
        2e9 / switches_per_s(s, SchemeKind::Lightweight, Shape::PingPong, 2, 2000).expect("clean")
    };
    let bare = turn(&s);
    let measured = bare + 50.0;
    let w = wakeup_for_pingpong(&s, measured).expect("solvable");
    s.cost_ns.wakeup.value = w;
    assert!(
        (turn(&s) - measured).abs() < 0.01,
        "turn {} ns, measured {measured} ns",
        turn(&s)
    );
    assert_eq!(wakeup_for_pingpong(&s, bare / 2.0).expect("solvable"), 0.0);
}

/// The hold solve: a longer hold lets each CPU run more RMWs per visit of
/// the line, so contention adds less; the solved hold is the least (in
/// thousandths) at which the model adds no more than measured, in both of
/// the guest's placements (docs/this-machine.md: ~14-19 ns added to a 7 ns
/// operation with a ~13 ns latency, where the model's additions are steps;
/// ~17 ns with a ~80 ns latency and a steal factor ~2.8, where they are
/// nearly continuous).
#[test]
fn solved_hold_is_the_least_that_adds_no_more_than_measured() {
    let base = MachineSpec::load("this-machine").expect("shipped preset");
    let work = 7.2 - base.cost_ns.rmw_local.value;
    for (handoff, steal, added) in [(30.0, 1.4, 15.0), (165.0, 2.8, 17.0)] {
        let l = latency_for_handoff(&base, handoff).expect("solvable");
        let mut s = with_latency(l);
        s.coherence.steal.value = steal;
        let at = |h: f64| {
            let mut t = s.clone();
            t.coherence.hold.value = h;
            contended_ns(&t, work, 4000) - 7.2
        };
        assert!(
            at(0.2) > at(2.0),
            "a longer hold must batch more: {} vs {}",
            at(0.2),
            at(2.0)
        );
        let h = hold_for_contended(&s, work, added);
        assert!(h > 0.0 && h < 8.0, "hold {h} at the end of the range");
        assert!(
            at(h) <= added,
            "hold {h}: adds {} ns, measured {added} ns",
            at(h)
        );
        assert!(
            at(h - 0.001) > added,
            "hold {h} is not the least: {} at {}",
            at(h - 0.001),
            h - 0.001
        );
    }
    // Where the model is nearly continuous the solve is close.
    let l = latency_for_handoff(&base, 165.0).expect("solvable");
    let mut s = with_latency(l);
    s.coherence.steal.value = 2.8;
    let h = hold_for_contended(&s, work, 17.0);
    s.coherence.hold.value = h;
    let got = contended_ns(&s, work, 4000) - 7.2;
    assert!(
        (got - 17.0).abs() < 1.0,
        "hold {h}: adds {got} ns, measured 17 ns"
    );
}
