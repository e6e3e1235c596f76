//! # lazymm
//!
//! Lazy TLB `mm` reference counting: how a CPU running a kernel thread (or
//! idle) keeps borrowing the last user address space without shared-line
//! atomics on the context-switch path, and how the `mm` is still freed
//! exactly once, never while a CPU can touch it.
//!
//! * [`platform`]: the atomics backend every scheme is written against.
//! * [`runtime`]: the kernel's switch points, calling the scheme.
//! * [`schemes`]: one file per scheme, each opening with its state machine.
//! * [`ledger`]: the use-after-free / double-free / leak oracle.
//! * [`arch`]: `mm_cpumask` and exit-flush behaviour per architecture.
//!
//! The crate is `no_std` + `alloc` (the `std` feature, on by default, only
//! adds a thread yield in wait loops; `loom` adds the loom backend).
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

extern crate alloc;

pub mod arch;
pub mod ledger;
pub mod mm;
pub mod platform;
pub mod runtime;
pub mod schemes;
pub mod sync;

pub use arch::Arch;
pub use ledger::{LedgerCounts, Violation, ViolationKind};
pub use mm::MmRef;
pub use platform::{CpuId, Line, LineKind, Platform, StdPlatform};
pub use runtime::{CpuStats, Machine, MachineConfig, MachineStats, Next};
pub use schemes::{SchemeKind, SchemeOptions, UnlazyPlain};

#[cfg(feature = "loom")]
pub use platform::LoomPlatform;
