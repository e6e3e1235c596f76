//! Mailbox words shared by `lightweight-v2` and `hazard-handoff`.
//!
//! A second per-CPU slot (`mm_to_mmdrop` / `drop_mm`) holds one unit of some
//! mm's `count` that a *remote* teardown handed to the CPU. Whoever takes the
//! word out (the owner draining it, or another teardown stealing it) must
//! drop that unit, so it must know which allocation the word names. A kernel
//! pointer is only an address; here the word carries, above the address,
//! the allocation's generation as a *ghost* field written by the teardown
//! that knew it:
//!
//! ```text
//!   bits 63..32  generation (ghost: read only by the ledger's checks)
//!   bits 31..0   MmRef::word(), the kernel pointer (0 = NULL)
//! ```
//!
//! Every comparison the algorithms make is on the address half ([`addr`]),
//! as in the kernel. A compare-exchange compares whole words, so
//! [`cas_addr`] retries when only the ghost half differs: it succeeds
//! exactly when a kernel `cmpxchg` on the address would (the extra attempt
//! is counted; it can only happen after the address was freed and reused
//! between the load and the CAS, the ABA of kernel-history 8.4).

use core::sync::atomic::Ordering;

use crate::mm::MmRef;
use crate::platform::{CpuId, Platform};

/// The mailbox word for `mm`.
#[inline]
pub(crate) fn fat(mm: MmRef) -> u64 {
    (u64::from(mm.gen) << 32) | mm.word()
}

/// The kernel pointer (address) part of a mailbox word.
#[inline]
pub(crate) fn addr(w: u64) -> u64 {
    w & 0xffff_ffff
}

/// The mm a non-NULL mailbox word names, as the teardown that wrote it knew
/// it.
#[inline]
pub(crate) fn unfat(w: u64) -> MmRef {
    let idx = MmRef::idx_of_word(addr(w)).unwrap_or(0);
    MmRef {
        idx,
        gen: (w >> 32) as u32,
    }
}

/// `cmpxchg(a, expected, new)` comparing addresses only (see the module
/// documentation). `expected` is a whole word the caller read (or 0).
/// Returns the whole word replaced, or the whole word found.
#[inline]
pub(crate) fn cas_addr<P: Platform>(
    p: &P,
    cpu: CpuId,
    a: &P::Atomic,
    expected: u64,
    new: u64,
    success: Ordering,
    failure: Ordering,
) -> Result<u64, u64> {
    let mut cur = expected;
    loop {
        match p.compare_exchange(cpu, a, cur, new, success, failure) {
            Ok(w) => return Ok(w),
            Err(w) if addr(w) == addr(expected) && w != cur => cur = w,
            Err(w) => return Err(w),
        }
    }
}
