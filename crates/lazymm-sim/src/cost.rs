//! The constant cost model: estimated cycles from exact counts, per
//! architecture profile. No report, verdict or `RunReport` field reads it
//! any more (issue 10: time comes from the timing mode, [`crate::timing`]);
//! `lazymm-bench`'s calibration prints it beside its measurements.
//!
//! The figures are round numbers of the right order for each machine class
//! (a locked RMW on an owned line, a cache-line transfer averaged over
//! same- and cross-socket, a full fence, an IPI sent and handled); they are
//! stated in the report so a reader can substitute their own. `lazymm bench`
//! measures this machine's ratio of a shared-line RMW to a local one.

use lazymm::Arch;
use serde::Serialize;

use crate::counting::AccessCounts;

/// Cycle costs for one profile.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CostTable {
    /// A plain load or store that hits.
    pub access: f64,
    /// An atomic RMW on a line this CPU owns.
    pub local_rmw: f64,
    /// A cache-line transfer (RMW or store to a line another CPU wrote).
    pub transfer: f64,
    /// A load that fetches a line another CPU wrote.
    pub remote_load: f64,
    /// A full fence.
    pub fence: f64,
    /// Sending an IPI and waiting for it (sender side).
    pub ipi_send: f64,
    /// Taking an IPI (target side: entry, handler, exit).
    pub ipi_handle: f64,
}

impl CostTable {
    /// The table for `arch`.
    pub fn for_arch(arch: Arch) -> CostTable {
        match arch {
            Arch::X86 | Arch::X86LazyCpumask => CostTable {
                access: 1.0,
                local_rmw: 20.0,
                transfer: 200.0,
                remote_load: 150.0,
                fence: 35.0,
                ipi_send: 2000.0,
                ipi_handle: 1500.0,
            },
            Arch::Arm64 => CostTable {
                access: 1.0,
                local_rmw: 15.0,
                transfer: 180.0,
                remote_load: 130.0,
                fence: 50.0,
                ipi_send: 2500.0,
                ipi_handle: 2000.0,
            },
            Arch::PowerpcRadix | Arch::PowerpcHash => CostTable {
                access: 1.0,
                local_rmw: 30.0,
                transfer: 400.0,
                remote_load: 350.0,
                fence: 100.0,
                ipi_send: 4000.0,
                ipi_handle: 3000.0,
            },
        }
    }

    /// Estimated cycles of `a` plus `ipis` IPIs.
    pub fn cycles(&self, a: &AccessCounts, ipis: u64) -> f64 {
        let plain = (a.loads - a.remote_loads + a.stores) as f64 * self.access;
        plain
            + a.remote_loads as f64 * self.remote_load
            + a.rmws as f64 * self.local_rmw
            + a.coherence_transfers as f64 * self.transfer
            + a.fences as f64 * self.fence
            + ipis as f64 * (self.ipi_send + self.ipi_handle)
    }
}
