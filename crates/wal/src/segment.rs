//! Segment files: the list of live segments, their sparse seq→offset indexes, the
//! preparer thread that zero-fills (or recycles) the next segment ahead of use, and the policy that sizes
//! each segment by the write rate ([`next_segment_bytes`]).
//!
//! Why zero-fill instead of only fallocate: on ext4 (and most filesystems) fallocate
//! creates *unwritten* extents; the first write to one converts it, which is a metadata
//! change that fdatasync must then journal. Writing zeros once, ahead of time and off the
//! commit path, makes every later group commit a pure data flush. A prepared segment is
//! named `N.wal.prep` until the committer writes its header and first group durably and
//! renames it to `N.wal` (then syncs the directory); recovery deletes `.prep` files, whose
//! records were never acknowledged.
//!
//! # Recycling
//!
//! Zero-filling costs a second write of every segment's bytes (and CPU). A file the log
//! has written once is already allocated *and* written, so an overwrite of it is a pure
//! data flush too: when truncation frees segments, up to `recycle_segments` of the largest
//! are kept in a pool (`M.wal.free`), and the preparer takes the largest pool file for
//! the next segment instead of zero-filling a new one. The protocol, and why each step is
//! crash-safe:
//!
//! 1. Truncation renames `M.wal` to `M.wal.free` (or deletes it when the pool is full),
//!    then syncs the directory, and only then offers the file to the preparer. A crash
//!    before the sync may bring `M.wal` back: a live segment again, untouched (truncation
//!    undone, as when a delete is lost).
//! 2. The preparer renames `M.wal.free` to `N.wal.prep` and syncs the directory *before*
//!    anything is written to it. So a `.free` file after a crash never holds bytes of a
//!    new life, and a `.prep` one is deleted by recovery (never pooled: it may hold frames
//!    salted with N, and the next segment N will be made again).
//! 3. The committer writes the header (RECYCLED flag) and first group with one durable
//!    write, renames `N.wal.prep` to `N.wal` and syncs the directory, as for a new file.
//!
//! Old bytes stay in the file after the new frames; format version 3 makes them harmless
//! (`crate::format`, "Recycled segments"). A recycled file keeps its size, which may be
//! larger than the size the write rate asks for (never smaller: one is grown, the growth
//! zero-filled): the pool keeps the largest freed files, the disk they take is already
//! paid for, and a larger segment only means fewer rolls. A clean close puts a recycled
//! file prepared but unused back into the pool. The pool costs disk while the log is idle:
//! up to `recycle_segments` times `segmentBytes`.
//!
//! # Sizes
//!
//! Segments differ in size; each one's size is its file's length (recovery reads it from
//! the file, never from the options). A new log starts with a [`SEGMENT_BYTES_FIRST`]
//! segment, so an idle or small log costs little disk and opens quickly. The committer
//! sizes the next segment by the rate the active one is filling at, measured from its
//! activation ([`next_segment_bytes`]): projected to fill in under
//! [`SEGMENT_FILL_FAST_MS`], the next one is twice as large (four times if even that would
//! fill that fast; up to `segmentBytes`, the largest) and is asked for as soon as the
//! active one starts, so that the preparer keeps
//! ahead of a heavy stream; otherwise the next one is asked for when the active one is half
//! full, at the same size, or at half the size (down to the first size) if the active one
//! is projected to take longer than [`SEGMENT_FILL_SLOW_MS`]. A group (or one record) larger
//! than the prepared segment grows it before use ([`extend`]), also zero-filled and synced.
//! A clean close removes a prepared segment that was never used.

use crate::error::WalError;
use crate::format::{free_file_name, prepared_file_name};
#[cfg(doc)]
use crate::limits::SEGMENT_BYTES_FIRST;
use crate::limits::{IO_CHUNK_BYTES, SEGMENT_FILL_FAST_MS, SEGMENT_FILL_SLOW_MS};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use uringdb_uring::{File, OpenMode, Vfs};

/// A live segment.
#[derive(Debug)]
pub(crate) struct Segment {
    pub number: u64,
    pub first_seq: u64,
    pub path: PathBuf,
    pub file: Arc<dyn File>,
    /// The checksum salt of its frames ([`crate::format::segment_salt`]).
    pub salt: u32,
    /// Sparse index: ascending (seq, offset of that frame). Appended by the committer for
    /// the active segment and lazily by readers seeking in older ones.
    pub index: Mutex<Vec<(u64, u64)>>,
}

impl Segment {
    pub fn new(
        number: u64,
        first_seq: u64,
        path: PathBuf,
        file: Arc<dyn File>,
        salt: u32,
    ) -> Segment {
        Segment {
            number,
            first_seq,
            path,
            file,
            salt,
            index: Mutex::new(vec![(
                first_seq,
                crate::format::SEGMENT_HEADER_BYTES as u64,
            )]),
        }
    }

    /// Best known starting point for finding `seq`: the index point at or below it.
    pub fn seek_hint(&self, seq: u64) -> (u64, u64) {
        let idx = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let i = idx.partition_point(|&(s, _)| s <= seq);
        idx[i.saturating_sub(1)]
    }

    /// Records an index point if it is beyond the last one by the interval.
    pub fn note_index(&self, seq: u64, offset: u64) {
        let mut idx = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let (last_seq, last_off) = *idx.last().expect("index starts non-empty");
        if seq > last_seq && offset >= last_off + crate::limits::INDEX_INTERVAL_BYTES {
            idx.push((seq, offset));
        }
    }
}

/// Creates `path` and writes `len` bytes of zeros into it, durably.
pub(crate) fn zero_fill(vfs: &dyn Vfs, path: &Path, len: u64) -> Result<Arc<dyn File>, WalError> {
    let ctx = || format!("preparing segment {}", path.display());
    let file = vfs
        .open(path, OpenMode::CreateReadWrite)
        .map_err(|e| WalError::io(ctx(), e))?;
    fill_zeros(&*file, 0, len).map_err(|e| WalError::io(ctx(), e))?;
    Ok(file)
}

/// Grows the prepared (not yet renamed) segment `file` at `path` from `from` to `to` bytes,
/// zero-filled and synced like [`zero_fill`]: for a group larger than the segment the
/// rate called for.
pub(crate) fn extend(file: &dyn File, path: &Path, from: u64, to: u64) -> Result<(), WalError> {
    fill_zeros(file, from, to).map_err(|e| {
        WalError::io(
            format!("growing segment {} to {to} bytes", path.display()),
            e,
        )
    })
}

/// Allocates `len` bytes for `file` and writes zeros over `[from, len)`, durably.
fn fill_zeros(file: &dyn File, from: u64, len: u64) -> std::io::Result<()> {
    file.allocate(len)?;
    let zeros = vec![0u8; IO_CHUNK_BYTES.min(len.saturating_sub(from) as usize)];
    let mut off = from;
    while off < len {
        let n = (len - off).min(IO_CHUNK_BYTES as u64) as usize;
        file.write_at(off, &[&zeros[..n]], false)?;
        off += n as u64;
    }
    file.sync_data()?;
    // Measured on this project's CI kernel (ext4): without this, the fill stays cached as
    // 1 MiB folios and every later small durable write to the segment wrote back a whole
    // MiB (write_bytes per 136-byte put: 1,048,576 before, ~4 KiB after). Only a hint.
    let _ = file.drop_cache();
    Ok(())
}

/// Takes pool file `M.wal.free` (`len` bytes) for a new segment at `path` (`N.wal.prep`):
/// renames it and syncs the directory *before* anything is written to it, so that after a
/// crash the file is either still `M.wal.free` with only bytes of segment M's life and
/// earlier ones (never frames salted with a number not yet live), or a `.prep` that
/// recovery deletes. Its old bytes stay: only the header and the frames written from now
/// on are new, and nothing in the file is synced here (the pages are allocated and
/// written already: fdatasync of later appends flushes data only). A file smaller than
/// `bytes` is grown to it, zero-filled. Returns the file and its size (at least `bytes`).
fn recycle(
    vfs: &dyn Vfs,
    dir: &Path,
    m: u64,
    len: u64,
    path: &Path,
    bytes: u64,
) -> Result<(Arc<dyn File>, u64), WalError> {
    let free = dir.join(free_file_name(m));
    let ctx = || format!("recycling {} as {}", free.display(), path.display());
    vfs.rename(&free, path)
        .map_err(|e| WalError::io(ctx(), e))?;
    vfs.sync_dir(dir).map_err(|e| WalError::io(ctx(), e))?;
    let file = vfs
        .open(path, OpenMode::ReadWrite)
        .map_err(|e| WalError::io(ctx(), e))?;
    if len < bytes {
        fill_zeros(&*file, len, bytes).map_err(|e| WalError::io(ctx(), e))?;
    }
    Ok((file, len.max(bytes)))
}

/// The size of the segment after the active one, from the rate the active one is filling
/// at: `filled` bytes of its `active_bytes` were written in `elapsed_ns`. Projected to fill
/// in under [`SEGMENT_FILL_FAST_MS`]: twice `active_bytes` (four times if even that would
/// fill that fast, so that a heavy stream on a new log reaches full-size segments in few
/// rolls); over [`SEGMENT_FILL_SLOW_MS`] (or nothing written yet): half; otherwise the
/// same. Always within `[min, max]` and a
/// multiple of 8. Pure (the committer passes its clock's readings), so tests drive it with
/// any clock.
pub(crate) fn next_segment_bytes(
    active_bytes: u64,
    filled: u64,
    elapsed_ns: u64,
    min: u64,
    max: u64,
) -> u64 {
    let projected_ns = if filled == 0 {
        u128::MAX
    } else {
        u128::from(elapsed_ns) * u128::from(active_bytes) / u128::from(filled)
    };
    let fast_ns = u128::from(SEGMENT_FILL_FAST_MS) * 1_000_000;
    let next = if projected_ns.saturating_mul(4) < fast_ns {
        active_bytes.saturating_mul(4)
    } else if projected_ns < fast_ns {
        active_bytes.saturating_mul(2)
    } else if projected_ns > u128::from(SEGMENT_FILL_SLOW_MS) * 1_000_000 {
        active_bytes / 2
    } else {
        active_bytes
    };
    (next & !7).clamp(min, max)
}

/// Whether a segment projected from `filled` bytes in `elapsed_ns` to fill its
/// `active_bytes` in under [`SEGMENT_FILL_FAST_MS`] (writes are heavy: the next segment is
/// prepared as soon as this one is active).
pub(crate) fn fills_fast(active_bytes: u64, filled: u64, elapsed_ns: u64) -> bool {
    filled > 0
        && u128::from(elapsed_ns) * u128::from(active_bytes)
            < u128::from(SEGMENT_FILL_FAST_MS) * 1_000_000 * u128::from(filled)
}

/// A `N.wal.prep` ready for use.
pub(crate) struct Prepared {
    pub number: u64,
    /// Its size (a recycled file's may exceed the size asked for).
    pub len: u64,
    pub file: Arc<dyn File>,
    /// `Some(M)`: a recycled file whose last life was segment M (its bytes are not zeros);
    /// `None`: zero-filled.
    pub recycled_from: Option<u64>,
}

/// State shared between the committer and the preparer thread.
#[derive(Default)]
pub(crate) struct PrepState {
    /// A prepared `N.wal.prep` ready for use.
    pub ready: Option<Prepared>,
    /// Recycled files in the pool (`M.wal.free`, durably renamed): (M, size).
    pub pool: Vec<(u64, u64)>,
    /// Pool places promised to a truncation whose renames are not yet durable.
    pub pool_reserved: usize,
    /// The segment number the preparer should prepare next, and its size, if asked.
    pub wanted: Option<(u64, u64)>,
    /// The segment number being zero-filled right now. Never asked for again while in
    /// progress: a second preparation would reopen the same `.prep` path and could zero
    /// a file the committer has already taken and written to.
    pub preparing: Option<u64>,
    /// Preparation failed (e.g. ENOSPC); taken by the committer, which fails the group
    /// that needed the segment and asks again later.
    pub error: Option<WalError>,
    pub stop: bool,
}

pub(crate) struct Preparer {
    pub state: Mutex<PrepState>,
    pub cv: Condvar,
    /// Most files kept in the pool (`recycle_segments`).
    pub pool_max: usize,
}

impl Preparer {
    /// A preparer whose pool starts with the files recovery found.
    pub fn new(pool_max: usize, pool: Vec<(u64, u64)>) -> Preparer {
        Preparer {
            state: Mutex::new(PrepState {
                pool,
                ..PrepState::default()
            }),
            cv: Condvar::new(),
            pool_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrepState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for segment `number` to be prepared in the background, `bytes` long.
    pub fn request(&self, number: u64, bytes: u64) {
        let mut st = self.lock();
        if st.ready.as_ref().map(|r| r.number) != Some(number) && st.preparing != Some(number) {
            st.wanted = Some((number, bytes));
            self.cv.notify_all();
        }
    }

    /// Committer: takes prepared segment `number` (asking for it, `bytes` long, if it was
    /// not asked for), waiting for the preparer if it is still zero-filling; an error if
    /// preparation failed.
    pub fn take(&self, number: u64, bytes: u64) -> Result<Prepared, WalError> {
        let mut st = self.lock();
        loop {
            if let Some(p) = st.ready.take() {
                if p.number == number {
                    return Ok(p);
                }
            }
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            if st.wanted.map(|w| w.0) != Some(number) && st.preparing != Some(number) {
                st.wanted = Some((number, bytes));
                self.cv.notify_all();
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }

    /// After the preparer thread stopped (a clean close): removes a prepared segment that
    /// was never used (the next open would only delete it), so that a closed log keeps no
    /// more than its segments on disk.
    ///
    /// A recycled one goes back to the pool under its old name instead (its header was not
    /// rewritten: the committer writes it at the roll). Either name is safe after a crash
    /// part-way: recovery deletes `.prep` files and keeps `.free` ones.
    pub fn discard_ready(&self, vfs: &dyn Vfs, dir: &Path) {
        if let Some(p) = self.lock().ready.take() {
            drop(p.file);
            let prep = dir.join(prepared_file_name(p.number));
            match p.recycled_from {
                Some(m) if vfs.rename(&prep, &dir.join(free_file_name(m))).is_ok() => {}
                _ => {
                    let _ = vfs.remove_file(&prep);
                }
            }
        }
    }

    /// Truncation: how many of `freed` files (segment number, size) the pool takes (the
    /// largest first, up to its room), reserving their places. The caller renames those to
    /// `M.wal.free`, deletes the rest, syncs the directory and then calls [`Preparer::add`]
    /// (or [`Preparer::unreserve`] if that failed).
    pub fn reserve(&self, freed: &mut [(u64, u64)]) -> usize {
        let mut st = self.lock();
        let room = self
            .pool_max
            .saturating_sub(st.pool.len() + st.pool_reserved);
        let n = room.min(freed.len());
        freed.sort_unstable_by_key(|f| std::cmp::Reverse(f.1));
        st.pool_reserved += n;
        n
    }

    /// Truncation: the reserved files are durably renamed into the pool.
    pub fn add(&self, files: &[(u64, u64)]) {
        let mut st = self.lock();
        st.pool_reserved -= files.len();
        st.pool.extend_from_slice(files);
        self.cv.notify_all();
    }

    /// Truncation: the renames failed; gives the `n` reserved places back.
    pub fn unreserve(&self, n: usize) {
        self.lock().pool_reserved -= n;
    }

    /// The files in the pool now.
    pub fn pool_len(&self) -> usize {
        self.lock().pool.len()
    }

    /// The preparer thread's loop.
    pub fn run(&self, vfs: Arc<dyn Vfs>, dir: PathBuf) {
        loop {
            let (number, bytes, from) = {
                let mut st = self.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    if let Some((n, bytes)) = st.wanted.take() {
                        st.preparing = Some(n);
                        // The largest pool file: the sizes asked for grow with the write
                        // rate, and a heavy stream soon asks for the largest again.
                        let largest = (0..st.pool.len()).max_by_key(|&i| st.pool[i].1);
                        break (n, bytes, largest.map(|i| st.pool.swap_remove(i)));
                    }
                    st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let path = dir.join(prepared_file_name(number));
            let result = match from {
                Some((m, len)) => {
                    recycle(&*vfs, &dir, m, len, &path, bytes).map(|(f, len)| Prepared {
                        number,
                        len,
                        file: f,
                        recycled_from: Some(m),
                    })
                }
                None => zero_fill(&*vfs, &path, bytes).map(|f| Prepared {
                    number,
                    len: bytes,
                    file: f,
                    recycled_from: None,
                }),
            };
            let mut st = self.lock();
            st.preparing = None;
            match result {
                Ok(p) => st.ready = Some(p),
                Err(e) => {
                    // Leave no half-prepared file behind (it would only waste space).
                    let _ = vfs.remove_file(&path);
                    st.error = Some(e);
                }
            }
            self.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 256 << 10;
    const MAX: u64 = 64 << 20;
    const MS: u64 = 1_000_000;

    #[test]
    fn next_size_doubles_when_fast_halves_when_slow_within_bounds() {
        // Half of a 1 MiB segment in 150 ms: projected 300 ms, fast (a 4 MiB one would
        // take 1.2 s: twice).
        assert_eq!(
            next_segment_bytes(1 << 20, 512 << 10, 150 * MS, MIN, MAX),
            2 << 20
        );
        // Projected 200 ms: even four times as large fills in under a second.
        assert_eq!(
            next_segment_bytes(1 << 20, 512 << 10, 100 * MS, MIN, MAX),
            4 << 20
        );
        // Projected 2 s: between the bounds, same size.
        assert_eq!(
            next_segment_bytes(1 << 20, 512 << 10, 1000 * MS, MIN, MAX),
            1 << 20
        );
        // Projected 20 s: slow, half.
        assert_eq!(
            next_segment_bytes(1 << 20, 512 << 10, 10_000 * MS, MIN, MAX),
            512 << 10
        );
        // Nothing written (a roll forced by one big entry right away counts its bytes).
        assert_eq!(next_segment_bytes(1 << 20, 0, 0, MIN, MAX), 512 << 10);
        // Clamped: never above the largest, never below the first size.
        assert_eq!(next_segment_bytes(MAX, MAX / 2, MS, MIN, MAX), MAX);
        assert_eq!(next_segment_bytes(MIN, 1, 60_000 * MS, MIN, MAX), MIN);
        // A largest size that is not a power of two (a multiple of 8) is reached exactly.
        assert_eq!(
            next_segment_bytes(2 << 20, 1 << 20, 0, MIN, 3 << 20),
            3 << 20
        );
        // A segment larger than the largest (an old database's, or a smaller option now).
        assert_eq!(
            next_segment_bytes(64 << 20, 1, 60_000 * MS, MIN, 1 << 20),
            1 << 20
        );
    }

    #[test]
    fn fills_fast_is_the_projection_against_the_fast_bound() {
        assert!(fills_fast(1 << 20, 1 << 20, 999 * MS));
        assert!(!fills_fast(1 << 20, 1 << 20, 1000 * MS));
        // The old segment's rate projected onto a bigger new one.
        assert!(!fills_fast(4 << 20, 1 << 20, 300 * MS));
        assert!(!fills_fast(1 << 20, 0, 0));
    }

    /// Grows under a heavy stream and shrinks back when it eases, driven by bytes and a
    /// clock that the test sets (the committer's sequence of decisions, without I/O).
    #[test]
    fn sizes_follow_the_rate_up_and_down() {
        let mut size = MIN;
        let mut sizes = vec![size];
        // 100 MB/s: a byte every 10 ns.
        for _ in 0..10 {
            size = next_segment_bytes(size, size, size * 10, MIN, MAX);
            sizes.push(size);
        }
        assert_eq!(
            sizes,
            [
                256 << 10,
                1 << 20,
                4 << 20,
                16 << 20,
                64 << 20,
                64 << 20,
                64 << 20,
                64 << 20,
                64 << 20,
                64 << 20,
                64 << 20
            ]
        );
        // 20 MB/s: four times while even that fills in under a second, then twice (16 MiB
        // take 0.84 s), then steady (32 MiB take 1.7 s).
        let mut moderate = vec![MIN];
        let mut m = MIN;
        for _ in 0..5 {
            m = next_segment_bytes(m, m, m * 50, MIN, MAX);
            moderate.push(m);
        }
        assert_eq!(
            moderate,
            [256 << 10, 1 << 20, 4 << 20, 16 << 20, 32 << 20, 32 << 20]
        );
        // 1 MB/s (measured at half full): 64 MiB take 67 s, so halve until a segment takes
        // between 1 and 10 s (8 MiB: 8.4 s).
        let mut down = Vec::new();
        for _ in 0..5 {
            size = next_segment_bytes(size, size / 2, size / 2 * 1000, MIN, MAX);
            down.push(size);
        }
        assert_eq!(down, [32 << 20, 16 << 20, 8 << 20, 8 << 20, 8 << 20]);
        // 1 kB/s: down to the first size, and no further.
        let mut idle = Vec::new();
        for _ in 0..7 {
            size = next_segment_bytes(size, size / 2, size / 2 * 1_000_000, MIN, MAX);
            idle.push(size);
        }
        assert_eq!(
            idle,
            [
                4 << 20,
                2 << 20,
                1 << 20,
                512 << 10,
                256 << 10,
                256 << 10,
                256 << 10
            ]
        );
    }
}
