//! A bounded bump arena: the memory every memtable entry lives in.
//!
//! Memory is taken from the system allocator in chunks of `chunk_bytes` (1 MiB by default)
//! and handed out by bumping an offset inside the current chunk. Nothing is freed until the
//! whole arena is dropped, which is what lets the skiplist hand out plain references to its
//! nodes: a node's address is stable for the arena's lifetime.
//!
//! # Bounds
//!
//! The arena never holds more than `capacity_bytes` of chunks. An allocation that does not
//! fit is refused with [`ArenaFull`]: the memtable turns that into back-pressure (the caller
//! rotates to a fresh memtable), never into growth. An allocation larger than a quarter of a
//! chunk gets a dedicated chunk of its own size, so that one large value neither wastes the
//! tail of the current chunk nor fails because chunks are smaller than it.
//!
//! # Threading
//!
//! Allocation takes a small mutex rather than bumping an atomic pointer. Why: the only
//! allocator is the memtable's single writer (the applier thread applying commit groups in
//! sequence order), so the lock is never contended and costs about what a compare-and-swap
//! bump would, while chunk switching, dedicated chunks and capacity accounting stay plain
//! sequential code. Readers never take the lock: the usage counters are atomics, read
//! without synchronisation for reporting and flush triggering (approximate by design).

use std::alloc::Layout;
use std::fmt;
use std::ptr::NonNull;

use super::sync::{lock, AtomicUsize, Mutex, Ordering};

/// Default size of one chunk: 1 MiB.
pub const ARENA_CHUNK_BYTES_DEFAULT: usize = 1 << 20;
/// The largest alignment an allocation may ask for; chunks are aligned to it.
pub(crate) const ARENA_ALIGN_BYTES_MAX: usize = 16;
/// Allocations above `chunk_bytes / ARENA_DEDICATED_FRACTION` get a chunk of their own.
const ARENA_DEDICATED_FRACTION: usize = 4;

/// An allocation the arena refused: it would exceed the arena's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaFull {
    /// Bytes asked for.
    pub requested_bytes: usize,
    /// Bytes of chunks the arena holds already.
    pub reserved_bytes: usize,
    /// The arena's capacity.
    pub capacity_bytes: usize,
}

impl fmt::Display for ArenaFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memtable arena full: {} bytes requested, {} of {} bytes reserved",
            self.requested_bytes, self.reserved_bytes, self.capacity_bytes
        )
    }
}

impl std::error::Error for ArenaFull {}

/// One block of memory from the system allocator, owned by the arena.
struct Chunk {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a chunk owns its allocation exclusively, like a `Box<[u8]>`; moving that ownership
// to another thread is sound. (Pointers into it are handed out by `Arena::alloc`, whose
// callers own the synchronisation of what they store there.)
unsafe impl Send for Chunk {}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `std::alloc::alloc(self.layout)` in `Chunk::new` and
        // is freed exactly once, here. Everything allocated from it is gone with the arena.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl Chunk {
    /// `None` if the system allocator refuses (reported as [`ArenaFull`] by the caller).
    fn new(bytes: usize) -> Option<Chunk> {
        debug_assert!(bytes > 0);
        let layout = Layout::from_size_align(bytes, ARENA_ALIGN_BYTES_MAX).ok()?;
        // SAFETY: `layout` has a non-zero size (asserted by every caller: chunk sizes and
        // allocation sizes are at least one byte).
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        Some(Chunk { ptr, layout })
    }
}

/// Allocation state, guarded by the arena's mutex.
struct State {
    chunks: Vec<Chunk>,
    /// Index in `chunks` of the chunk being bumped, if any.
    current: Option<usize>,
    /// Next free offset in the current chunk.
    offset: usize,
}

/// A bump arena of fixed-size chunks bounded by a capacity (see the module documentation).
pub struct Arena {
    state: Mutex<State>,
    chunk_bytes: usize,
    capacity_bytes: usize,
    /// Bytes of chunks taken from the system allocator (the arena's memory footprint).
    reserved_bytes: AtomicUsize,
    /// Bytes handed out, alignment padding included.
    used_bytes: AtomicUsize,
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("chunk_bytes", &self.chunk_bytes)
            .field("capacity_bytes", &self.capacity_bytes)
            .field("reserved_bytes", &self.reserved_bytes())
            .field("used_bytes", &self.used_bytes())
            .finish()
    }
}

impl Arena {
    /// An empty arena (no memory is taken until the first allocation). `chunk_bytes` must be
    /// a positive multiple of [`ARENA_ALIGN_BYTES_MAX`].
    pub fn new(chunk_bytes: usize, capacity_bytes: usize) -> Arena {
        assert!(
            chunk_bytes > 0 && chunk_bytes.is_multiple_of(ARENA_ALIGN_BYTES_MAX),
            "chunk_bytes must be a positive multiple of {ARENA_ALIGN_BYTES_MAX}: {chunk_bytes}"
        );
        Arena {
            state: Mutex::new(State {
                chunks: Vec::new(),
                current: None,
                offset: 0,
            }),
            chunk_bytes,
            capacity_bytes,
            reserved_bytes: AtomicUsize::new(0),
            used_bytes: AtomicUsize::new(0),
        }
    }

    /// Allocates `size_bytes` (> 0) aligned to `align_bytes` (a power of two, at most
    /// [`ARENA_ALIGN_BYTES_MAX`]). The memory is uninitialised, exclusively the caller's, and
    /// valid until the arena is dropped; it is never reused.
    pub fn alloc(&self, size_bytes: usize, align_bytes: usize) -> Result<NonNull<u8>, ArenaFull> {
        assert!(size_bytes > 0, "zero-sized arena allocation");
        assert!(
            align_bytes.is_power_of_two() && align_bytes <= ARENA_ALIGN_BYTES_MAX,
            "unsupported arena alignment {align_bytes}"
        );
        let mut state = lock(&self.state);
        if let Some(index) = state.current {
            let chunk = &state.chunks[index];
            let start = state.offset.next_multiple_of(align_bytes);
            if start <= chunk.layout.size() && size_bytes <= chunk.layout.size() - start {
                // SAFETY: `start + size_bytes <= chunk size` (checked just above), so the
                // offset stays inside the chunk's allocation.
                let ptr = unsafe { chunk.ptr.add(start) };
                let padding = start - state.offset;
                state.offset = start + size_bytes;
                self.used_bytes
                    .fetch_add(padding + size_bytes, Ordering::Relaxed);
                return Ok(ptr);
            }
        }
        let full = ArenaFull {
            requested_bytes: size_bytes,
            reserved_bytes: self.reserved_bytes.load(Ordering::Relaxed),
            capacity_bytes: self.capacity_bytes,
        };
        let remaining = self.capacity_bytes.saturating_sub(full.reserved_bytes);
        // Chunk sizes are multiples of the maximum alignment, so every chunk starts aligned.
        let needed = size_bytes
            .checked_next_multiple_of(ARENA_ALIGN_BYTES_MAX)
            .ok_or(full)?;
        let dedicated = size_bytes > self.chunk_bytes / ARENA_DEDICATED_FRACTION;
        let chunk_size = if dedicated {
            needed
        } else {
            // The last chunk may be smaller than `chunk_bytes`, so that the whole capacity is
            // usable; it only has to hold this allocation.
            self.chunk_bytes
                .min(remaining / ARENA_ALIGN_BYTES_MAX * ARENA_ALIGN_BYTES_MAX)
        };
        if chunk_size < needed || chunk_size > remaining {
            return Err(full);
        }
        let chunk = Chunk::new(chunk_size).ok_or(full)?;
        let ptr = chunk.ptr;
        state.chunks.push(chunk);
        if !dedicated {
            // The tail of the previous chunk is abandoned (at most a quarter of a chunk could
            // have been used by the request, so the waste is bounded by that fraction).
            state.current = Some(state.chunks.len() - 1);
            state.offset = size_bytes;
        }
        self.reserved_bytes.fetch_add(chunk_size, Ordering::Relaxed);
        let used = if dedicated { chunk_size } else { size_bytes };
        self.used_bytes.fetch_add(used, Ordering::Relaxed);
        Ok(ptr)
    }

    /// Bytes handed out so far, alignment padding included: the arena's logical size.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Relaxed)
    }

    /// Bytes of chunks taken from the system allocator: the arena's memory footprint.
    pub fn reserved_bytes(&self) -> usize {
        self.reserved_bytes.load(Ordering::Relaxed)
    }

    /// The most the arena will ever reserve.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_and_disjoint() {
        let arena = Arena::new(4096, 1 << 20);
        let mut spans = Vec::new();
        for i in 1..500usize {
            let align = 1 << (i % 5);
            let size = i % 61 + 1;
            let p = arena.alloc(size, align).expect("capacity is ample");
            assert_eq!(p.as_ptr() as usize % align, 0);
            // SAFETY: the allocation is `size` bytes and exclusively ours.
            unsafe { p.as_ptr().write_bytes(i as u8, size) };
            spans.push((p.as_ptr() as usize, size, i as u8));
        }
        for &(addr, size, fill) in &spans {
            // SAFETY: each span is a live allocation of `size` bytes, written above.
            let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, size) };
            assert!(bytes.iter().all(|&b| b == fill), "allocations overlap");
        }
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "allocations overlap");
        }
        assert!(arena.used_bytes() <= arena.reserved_bytes());
    }

    #[test]
    fn full_is_an_error_and_never_growth() {
        let arena = Arena::new(1024, 4096);
        let mut n = 0;
        while arena.alloc(100, 8).is_ok() {
            n += 1;
            assert!(n < 100, "arena never filled");
        }
        // Four chunks of 1024 bytes, nine 100-byte allocations each (104 bytes apart once
        // aligned; the tails are waste).
        assert_eq!(n, 36);
        assert_eq!(arena.reserved_bytes(), 4096);
        let err = arena.alloc(100, 8).expect_err("still full");
        assert_eq!(err.requested_bytes, 100);
        assert_eq!(err.capacity_bytes, 4096);
        assert_eq!(err.reserved_bytes, 4096);
        assert_eq!(arena.reserved_bytes(), 4096);
    }

    #[test]
    fn the_last_chunk_shrinks_to_fit_the_capacity() {
        let arena = Arena::new(1024, 1024 + 512);
        arena.alloc(1000, 8).expect("first chunk");
        arena.alloc(200, 8).expect("a 512-byte last chunk holds it");
        assert_eq!(arena.reserved_bytes(), 1024 + 512);
        assert!(arena.alloc(400, 8).is_err());
    }

    #[test]
    fn large_allocations_get_dedicated_chunks() {
        let arena = Arena::new(1024, 1 << 20);
        let small = arena.alloc(16, 8).expect("small");
        let big = arena
            .alloc(10_000, 8)
            .expect("dedicated chunk larger than a chunk");
        assert_eq!(
            arena.reserved_bytes(),
            1024 + 10_000usize.next_multiple_of(16)
        );
        // The current chunk is still being bumped after the dedicated one.
        let next = arena.alloc(16, 8).expect("small");
        assert_eq!(next.as_ptr() as usize, small.as_ptr() as usize + 16);
        assert_ne!(big, next);
        // Larger than the capacity: refused, not grown.
        assert!(arena.alloc(2 << 20, 8).is_err());
    }

    #[test]
    fn concurrent_allocations_are_disjoint() {
        let arena = std::sync::Arc::new(Arena::new(4096, 64 << 20));
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let arena = arena.clone();
                std::thread::spawn(move || {
                    let mut spans = Vec::new();
                    for i in 0..2000usize {
                        let size = i % 37 + 1;
                        let p = arena.alloc(size, 8).expect("capacity is ample");
                        // SAFETY: the allocation is `size` bytes and exclusively ours.
                        unsafe { p.as_ptr().write_bytes(t, size) };
                        spans.push((p.as_ptr() as usize, size));
                    }
                    for &(addr, size) in &spans {
                        // SAFETY: a live allocation of `size` bytes this thread wrote.
                        let s = unsafe { std::slice::from_raw_parts(addr as *const u8, size) };
                        assert!(s.iter().all(|&b| b == t));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("allocating thread");
        }
    }
}
