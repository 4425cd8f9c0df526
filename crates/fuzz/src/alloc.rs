//! The counting global allocator: while a fuzz input runs, it remembers the largest single
//! allocation (or reallocation) made on the fuzzing thread, so the runner can fail an
//! input whose decoding asked for more memory than the input justifies (see the crate
//! documentation for the bound).
//!
//! Why the largest single allocation and not the total: a decoder that trusts a length
//! field shows up as one big allocation (`vec![0; len]`, `Vec::with_capacity(len)`), and
//! the largest allocation is independent of how the allocator reuses memory, so the check
//! is deterministic. Why only the fuzzing thread: the targets that start a log also start
//! its committer and preparer threads, whose buffers are fixed sizes, not decoded ones.
//!
//! The allocator never refuses memory: refusing would abort the process inside the
//! allocator (`handle_alloc_error`), where nothing can name the input. It records and
//! delegates to the system allocator; the runner checks after the input returns. The
//! decoders' own limits (128 MiB blocks, 1 GiB manifests) keep a bad allocation survivable
//! long enough to be reported.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, with the largest-allocation record of [`measure`].
pub struct Counting;

thread_local! {
    // Const-initialised `Cell`s of plain integers: no lazy initialisation and no
    // destructor, so touching them from inside the allocator cannot allocate or recurse.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: during thread teardown the slots may be gone; nothing is armed then.
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every method delegates to `System` with the caller's arguments unchanged, so
// `System`'s guarantees (a block of at least `layout.size()` bytes aligned to
// `layout.align()`, or null) are ours; `note` only reads and writes thread-local integers
// and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size), passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator (that is, `System`) returned,
        // with the layout it was allocated with.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller passes a block `System` returned, its layout, and a valid new
        // size, as `realloc`'s contract requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` with the record armed on this thread; returns its result and the largest
/// single allocation it made on this thread (0 if none).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, LARGEST.with(Cell::get))
}
