//! # lazymm-sim
//!
//! The deterministic side of lazymm: the counting backend (every atomic
//! access with its CPU and cache line), the scheduler model that calls the
//! runtime at the kernel's points, synthetic workloads, the cost model, and
//! one-call runs that produce a [`run::RunReport`].
#![warn(missing_docs)]

pub mod cost;
pub mod counting;
pub mod explore;
pub mod replay;
pub mod run;
pub mod sched;
pub mod threads;
pub mod timing;
pub mod workloads;

pub use counting::{AccessCounts, CountingPlatform};
pub use run::{run, RunConfig, RunReport};
pub use sched::Sched;
pub use workloads::WorkloadKind;
