//! Candidate fixes for the scheme bugs the loom suite found, as wrappers
//! around the production scheme (they change exactly one access and
//! delegate everything else), so a test can show that the fix makes the
//! failing model pass. The scheme files belong to their authors; these are
//! evidence for them, not replacements.

use core::sync::atomic::Ordering;

use lazymm::mm::MmRef;
use lazymm::runtime::{CpuLocal, Machine};
use lazymm::schemes::lightweight::Lightweight;
use lazymm::schemes::{Scheme, SchemeKind, SchemeOptions};
use lazymm::Platform;

/// `lightweight` with its lazy publication (`grab_lazy`'s slot store)
/// made `Release` instead of `Relaxed`.
///
/// Why: a teardown that reads this CPU's slot and finds a *newer*
/// publication (another mm) skips the CPU (scan-load) or fails its hand-off
/// (cmpxchg), and then frees. It must be ordered after this CPU's last use
/// of the old mm, which precedes the owner's unlazy `xchg` (Release). In the
/// C11/Rust model a Relaxed store after that `xchg` does not continue its
/// release sequence, so reading it synchronizes with nothing: the free
/// races with the owner's last use (loom: `Causality violation`). In LKMM
/// the `xchg` is fully ordered and the store is ordered after it, so the
/// kernel code is fine; the Rust port needs the Release (free on x86, an
/// `stlr` on arm64).
pub struct ReleasePublish(pub Lightweight);

impl ReleasePublish {
    /// Builds it (for `lazymm_verify::MakeScheme`).
    pub fn boxed<P: Platform>(_k: SchemeKind, opts: &SchemeOptions) -> Box<dyn Scheme<P>> {
        Box::new(ReleasePublish(Lightweight { opts: *opts }))
    }
}

impl<P: Platform> Scheme<P> for ReleasePublish {
    fn kind(&self) -> SchemeKind {
        SchemeKind::Lightweight
    }
    fn base(&self) -> Option<&dyn Scheme<P>> {
        Some(&self.0)
    }
    fn grab_lazy(&self, m: &Machine<P>, me: &mut CpuLocal, mm: MmRef) {
        // The one change: Release (see the type's documentation).
        m.p.store(me.id, &m.percpu[me.id].slot, mm.word(), Ordering::Release);
        me.slot_shadow = mm;
    }
}
