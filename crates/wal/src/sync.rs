//! Atomics used by the lock-free parts, swapped for loom's model-checked versions under
//! `--cfg loom` so that the same code is model-checked and shipped.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};
