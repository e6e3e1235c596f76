//! The stale-mailbox race of kernel-history 8.4, made deterministic: a
//! wrapper platform runs other CPUs' steps *inside* a teardown, between its
//! scan of a CPU's `lazy_mm` and its deposit into that CPU's mailbox.
//!
//! F (CPU 0) tears down B and reads CPU 1's `lazy_mm == B`. Before F's
//! `mmgrab` + `xchg`, CPU 1 leaves B, runs a task of X and goes lazy on X;
//! X's last user exits on CPU 2, whose teardown deposits a unit of X in CPU
//! 1's mailbox (CPU 1 still borrows X, so it keeps it); CPU 2 then moves on.
//! F's `xchg` now displaces X. v2 as posted concludes "the remote cpu is
//! definitely done with old" and drops X: X is freed under CPU 1. The 2022
//! rule (re-load `lazy_mm` once the stale unit is in hand) gives it back.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering;

use lazymm::schemes::lightweight_v2::LightweightV2;
use lazymm::schemes::{Scheme, SchemeOptions};
use lazymm::{
    Arch, CpuId, LedgerCounts, Line, LineKind, Machine, MachineConfig, Next, Platform, SchemeKind,
    ViolationKind,
};
use lazymm_sim::counting::CAtomic;
use lazymm_sim::CountingPlatform;

type Hook = Box<dyn FnOnce()>;

/// The counting platform, plus one hook run right after a given CPU's
/// first load of another given CPU's `lazy_mm` slot once armed.
#[derive(Default)]
struct Hooked {
    inner: CountingPlatform,
    /// Per line: the (CPU, slot number) of a per-CPU slot line. The runtime
    /// creates each CPU's two slot lines in CPU order.
    slots: RefCell<Vec<Option<(CpuId, u8)>>>,
    nslots: Cell<usize>,
    /// (loading CPU, slot owner).
    armed: Cell<Option<(CpuId, CpuId)>>,
    hook: RefCell<Option<Hook>>,
}

struct HAtomic {
    a: CAtomic,
    slot: Option<(CpuId, u8)>,
}

impl Hooked {
    fn arm(&self, by: CpuId, owner: CpuId, f: Hook) {
        self.armed.set(Some((by, owner)));
        *self.hook.borrow_mut() = Some(f);
    }
}

impl Platform for Hooked {
    type Atomic = HAtomic;
    const IMMEDIATE_IPI: bool = true;
    type Payload = ();

    fn line(&self, kind: LineKind) -> Line {
        let l = self.inner.line(kind);
        let mut k = self.slots.borrow_mut();
        assert_eq!(l.0 as usize, k.len(), "lines are numbered in order");
        if kind == LineKind::CpuSlot {
            let n = self.nslots.get();
            self.nslots.set(n + 1);
            k.push(Some((n / 2, (n % 2) as u8)));
        } else {
            k.push(None);
        }
        l
    }
    fn atomic(&self, value: u64, line: Line) -> HAtomic {
        HAtomic {
            a: self.inner.atomic(value, line),
            slot: self.slots.borrow()[line.0 as usize],
        }
    }
    fn reinit(&self, a: &HAtomic, value: u64) {
        self.inner.reinit(&a.a, value)
    }
    fn load(&self, cpu: CpuId, a: &HAtomic, o: Ordering) -> u64 {
        let v = self.inner.load(cpu, &a.a, o);
        if let (Some((by, owner)), Some((c, 0))) = (self.armed.get(), a.slot) {
            if by == cpu && owner == c {
                self.armed.set(None);
                let f = self.hook.borrow_mut().take();
                if let Some(f) = f {
                    f();
                }
            }
        }
        v
    }
    fn store(&self, cpu: CpuId, a: &HAtomic, v: u64, o: Ordering) {
        self.inner.store(cpu, &a.a, v, o)
    }
    fn swap(&self, cpu: CpuId, a: &HAtomic, v: u64, o: Ordering) -> u64 {
        self.inner.swap(cpu, &a.a, v, o)
    }
    fn compare_exchange(
        &self,
        cpu: CpuId,
        a: &HAtomic,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        self.inner
            .compare_exchange(cpu, &a.a, current, new, success, failure)
    }
    fn fetch_add(&self, cpu: CpuId, a: &HAtomic, v: u64, o: Ordering) -> u64 {
        self.inner.fetch_add(cpu, &a.a, v, o)
    }
    fn fetch_sub(&self, cpu: CpuId, a: &HAtomic, v: u64, o: Ordering) -> u64 {
        self.inner.fetch_sub(cpu, &a.a, v, o)
    }
    fn fetch_or(&self, cpu: CpuId, a: &HAtomic, v: u64, o: Ordering) -> u64 {
        self.inner.fetch_or(cpu, &a.a, v, o)
    }
    fn fetch_and(&self, cpu: CpuId, a: &HAtomic, v: u64, o: Ordering) -> u64 {
        self.inner.fetch_and(cpu, &a.a, v, o)
    }
    fn fence(&self, cpu: CpuId, o: Ordering) {
        self.inner.fence(cpu, o)
    }
    fn spin(&self) {}
    fn teardown_phase(&self, cpu: CpuId, entering: bool) {
        self.inner.teardown_phase(cpu, entering)
    }
    fn payload(&self) {}
    fn payload_read(&self, _cpu: CpuId, _x: &()) {}
    fn payload_write(&self, _cpu: CpuId, _x: &()) {}
}

/// Runs the race under `scheme` (arm64: the scan visits every CPU, no exit
/// flush unlazies anyone). Returns the ledger after quiesce, the
/// violations, and whether X was still allocated right after F's teardown.
fn race(scheme: Box<dyn Scheme<Hooked>>) -> (LedgerCounts, Vec<lazymm::Violation>, bool) {
    let cfg = MachineConfig::new(4, Arch::Arm64, SchemeKind::LightweightV2);
    let m = Machine::with_scheme(Hooked::default(), cfg, scheme).unwrap();
    // B: two threads; one blocks on CPU 1 (CPU 1 lazy on B), then exits
    // elsewhere; the other runs on CPU 0 and will exit last.
    let b = m.mm_alloc(0).unwrap();
    m.mmget(0, b);
    m.switch_to(1, Next::User(b));
    m.switch_to(1, Next::Kernel);
    m.mmput(1, b);
    m.switch_to(0, Next::User(b));
    // X: two threads, one runs on CPU 2, the other will run on CPU 1.
    let x = m.mm_alloc(2).unwrap();
    m.mmget(2, x);
    m.switch_to(2, Next::User(x));
    // Y: a process CPU 2 moves on to.
    let y = m.mm_alloc(2).unwrap();
    let mp: *const Machine<Hooked> = &m;
    // Fires right after F's scan read CPU 1's lazy_mm (== B).
    m.p.arm(
        0,
        1,
        Box::new(move || {
            // SAFETY: `m` outlives this closure (it runs during
            // `m.exit_mm(0)` below, while `m` is borrowed shared), and every
            // Machine method used takes `&self`.
            let m = unsafe { &*mp };
            m.switch_to(1, Next::User(x)); // CPU 1 leaves B
            m.switch_to(1, Next::Kernel); // and goes lazy on X
            m.mmput(1, x); // that thread exits elsewhere
            m.exit_mm(2); // X's last user: deposits X in CPU 1's mailbox
            m.switch_to(2, Next::User(y)); // CPU 2 moves on (drops its own unit)
        }),
    );
    m.exit_mm(0); // F: B's teardown, interleaved with the hook
    let x_alive = m.ledger.is_allocated(x);
    m.interrupt_point(1); // CPU 1's MMU walks X
    let v = m.ledger.violations();
    m.switch_to(0, Next::Kernel);
    m.exit_mm(2);
    m.switch_to(2, Next::Kernel);
    for c in 0..4 {
        m.quiesce_cpu(c);
    }
    (m.finish().ledger, v, x_alive)
}

fn v2(literal_v2: bool) -> Box<dyn Scheme<Hooked>> {
    Box::new(LightweightV2 {
        opts: SchemeOptions::default(),
        literal_v2,
    })
}

/// (`literal_v2` also restores v2's unconditional drain, but CPU 1 does not
/// switch between the deposit of X and F's steal, so only the steal acts.)
#[test]
fn v2_as_posted_steals_a_unit_the_cpu_still_needs() {
    let (l, v, x_alive) = race(v2(true));
    assert!(!x_alive, "X freed by the steal");
    assert!(
        v.iter().any(|v| v.kind == ViolationKind::UseAfterFree
            && v.cpu == 1
            && v.site == "freed while loaded in an MMU"),
        "{v:?}"
    );
    assert!(l.uaf >= 2, "{l:?}");
}

#[test]
fn the_2022_rule_gives_the_unit_back() {
    let (l, v, x_alive) = race(v2(false));
    assert!(x_alive, "X kept for CPU 1");
    assert!(v.is_empty(), "{v:?}");
    assert_eq!((l.uaf, l.double_free, l.leaked), (0, 0, 0), "{l:?}");
    assert_eq!(l.frees, 3);
}

#[test]
fn hazard_handoff_reloads_lazy_mm_after_drop_mm() {
    let s = lazymm::schemes::build::<Hooked>(SchemeKind::HazardHandoff, &SchemeOptions::default())
        .unwrap();
    let (l, v, x_alive) = race(s);
    assert!(x_alive);
    assert!(v.is_empty(), "{v:?}");
    assert_eq!((l.uaf, l.double_free, l.leaked), (0, 0, 0), "{l:?}");
    assert_eq!(l.frees, 3);
}

/// The legitimate steal: X's teardown (CPU 2) reads CPU 1's `lazy_mm == X`,
/// then CPU 1 leaves X and goes lazy on B, then X's unit lands in CPU 1's
/// mailbox: stale. B's teardown (CPU 0) finds CPU 1 lazy on B with X in the
/// mailbox, re-loads `lazy_mm` (== B), replaces X by B and drops X on CPU
/// 1's behalf: X is freed there, cleanly. Returns (X freed by B's
/// teardown, ledger).
fn legit_steal(scheme: Box<dyn Scheme<Hooked>>) -> (bool, LedgerCounts) {
    let cfg = MachineConfig::new(4, Arch::Arm64, SchemeKind::HazardHandoff);
    let m = Machine::with_scheme(Hooked::default(), cfg, scheme).unwrap();
    let x = m.mm_alloc(2).unwrap();
    m.mmget(2, x);
    m.switch_to(1, Next::User(x));
    m.switch_to(1, Next::Kernel); // CPU 1 lazy on X
    m.mmput(1, x);
    m.switch_to(2, Next::User(x)); // X's last thread
    let b = m.mm_alloc(0).unwrap();
    m.mmget(0, b);
    m.switch_to(0, Next::User(b));
    let y = m.mm_alloc(2).unwrap();
    let mp: *const Machine<Hooked> = &m;
    // Fires right after X's teardown (CPU 2) read CPU 1's lazy_mm (== X).
    m.p.arm(
        2,
        1,
        Box::new(move || {
            // SAFETY: as in `race`.
            let m = unsafe { &*mp };
            m.switch_to(1, Next::User(b)); // CPU 1 leaves X
            m.switch_to(1, Next::Kernel); // lazy on B
            m.mmput(1, b);
        }),
    );
    m.exit_mm(2); // X's teardown: the unit for CPU 1 arrives stale
    m.switch_to(2, Next::User(y)); // CPU 2 drops its own unit of X
    assert!(
        m.ledger.is_allocated(x),
        "X still pinned by CPU 1's stale unit"
    );
    m.exit_mm(0); // B's teardown steals X from CPU 1's mailbox
    let stolen = !m.ledger.is_allocated(x);
    m.switch_to(0, Next::Kernel);
    m.exit_mm(2);
    m.switch_to(2, Next::Kernel);
    for c in 0..4 {
        m.quiesce_cpu(c);
    }
    (stolen, m.finish().ledger)
}

#[test]
fn a_stale_unit_is_stolen_and_dropped_on_the_cpus_behalf() {
    for (name, s) in [
        ("lightweight-v2", v2(false)),
        (
            "hazard-handoff",
            lazymm::schemes::build::<Hooked>(SchemeKind::HazardHandoff, &SchemeOptions::default())
                .unwrap(),
        ),
    ] {
        let (stolen, l) = legit_steal(s);
        assert!(stolen, "{name}: X freed by B's teardown");
        assert_eq!((l.uaf, l.double_free, l.leaked), (0, 0, 0), "{name}: {l:?}");
        assert_eq!(l.frees, 3, "{name}");
    }
}
