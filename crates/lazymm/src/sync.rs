//! Two tiny interior-mutability cells on `core` atomics.
//!
//! They are deliberately *not* built on the [`Platform`](crate::Platform):
//! they protect the workbench's own bookkeeping (a CPU's private state, the
//! mm arena's free list), never the algorithm under test, so they must add no
//! counted access and no happens-before edge that loom could mistake for the
//! scheme's own synchronisation.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// A cell owned by one CPU at a time.
///
/// Each CPU's private state lives in one of these. Only that CPU's driver
/// (its OS thread, its loom thread, or the single-threaded executor acting
/// for it or delivering an IPI to it) ever borrows it, so a borrow never
/// waits: a second simultaneous borrow is a bug in the driver and panics.
pub struct OwnerCell<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is only through `borrow()`, which hands out at
// most one `OwnerGuard` at a time (the `busy` flag's acquire-CAS / release
// store pair), so `&OwnerCell<T>` shared across threads never yields
// aliasing `&mut T`. `T: Send` because the value may be used from whichever
// thread holds the guard.
unsafe impl<T: Send> Sync for OwnerCell<T> {}

impl<T> OwnerCell<T> {
    /// A new cell.
    pub const fn new(value: T) -> Self {
        Self {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Exclusive access. Panics if the cell is already borrowed.
    #[inline]
    #[track_caller]
    pub fn borrow(&self) -> OwnerGuard<'_, T> {
        // Ordering: Acquire pairs with the Release store in OwnerGuard::drop,
        // so the previous holder's writes to `value` are visible to us.
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            panic!("lazymm: a CPU's private state was borrowed twice (driver bug)");
        }
        OwnerGuard { cell: self }
    }

    /// Mutable access through a unique reference (no flag needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

/// The guard returned by [`OwnerCell::borrow`].
pub struct OwnerGuard<'a, T> {
    cell: &'a OwnerCell<T>,
}

impl<T> Deref for OwnerGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `busy` is held by us (set by
        // the successful CAS in `borrow`), so no other reference to `value`
        // exists.
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for OwnerGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only live
        // reference derived from the guard.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for OwnerGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Ordering: Release pairs with the Acquire CAS in `borrow`.
        self.cell.busy.store(false, Ordering::Release);
    }
}

/// A minimal spin lock for rarely contended bookkeeping (the mm arena's free
/// list, the ledger's violation log).
///
/// Critical sections never contain a loom operation, so under loom the lock
/// is never observed held by a preempted thread.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through `lock()`, which grants exclusive
// access (acquire CAS / release store on `locked`).
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// A new lock.
    pub const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` with exclusive access.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // Ordering: Acquire pairs with the Release store below, handing the
        // protected value from one holder to the next.
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        // SAFETY: we hold the lock, so this is the only reference.
        let r = f(unsafe { &mut *self.value.get() });
        self.locked.store(false, Ordering::Release);
        r
    }
}

/// Aligns and pads `T` to 128 bytes (two 64-byte lines: adjacent-line
/// prefetchers pull pairs), so per-CPU words of different CPUs, and the
/// counters of one mm, never share a cache line on real hardware. The
/// counting backend models lines explicitly and is unaffected.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for CachePadded<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
