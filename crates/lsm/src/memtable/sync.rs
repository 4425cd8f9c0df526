//! The synchronisation primitives of the memtable, swapped for loom's model-checked versions
//! under `--cfg loom` so that the code that ships is the code that is model-checked.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicPtr, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicPtr, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};

/// Locks `mutex`, ignoring poisoning. Every critical section in the memtable leaves its state
/// consistent before anything in it can panic (allocation bookkeeping is updated after the
/// fallible part), so a panic elsewhere while the lock was held does not invalidate it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
