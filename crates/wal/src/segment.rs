//! Segment files: the list of live segments, their sparse seq→offset indexes, and the
//! preparer thread that zero-fills the next segment ahead of use.
//!
//! Why zero-fill instead of only fallocate: on ext4 (and most filesystems) fallocate
//! creates *unwritten* extents; the first write to one converts it, which is a metadata
//! change that fdatasync must then journal. Writing zeros once, ahead of time and off the
//! commit path, makes every later group commit a pure data flush. A prepared segment is
//! named `N.wal.prep` until the committer writes its header and first group durably and
//! renames it to `N.wal` (then syncs the directory); recovery deletes `.prep` files, whose
//! records were never acknowledged.

use crate::error::WalError;
use crate::format::prepared_file_name;
use crate::limits::IO_CHUNK_BYTES;
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
    /// Sparse index: ascending (seq, offset of that frame). Appended by the committer for
    /// the active segment and lazily by readers seeking in older ones.
    pub index: Mutex<Vec<(u64, u64)>>,
}

impl Segment {
    pub fn new(number: u64, first_seq: u64, path: PathBuf, file: Arc<dyn File>) -> Segment {
        Segment {
            number,
            first_seq,
            path,
            file,
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
    file.allocate(len).map_err(|e| WalError::io(ctx(), e))?;
    let zeros = vec![0u8; IO_CHUNK_BYTES];
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(IO_CHUNK_BYTES as u64) as usize;
        file.write_at(off, &[&zeros[..n]], false)
            .map_err(|e| WalError::io(ctx(), e))?;
        off += n as u64;
    }
    file.sync_data().map_err(|e| WalError::io(ctx(), e))?;
    // Measured on this project's CI kernel (ext4): without this, the fill stays cached as
    // 1 MiB folios and every later small durable write to the segment wrote back a whole
    // MiB (write_bytes per 136-byte put: 1,048,576 before, ~4 KiB after). Only a hint.
    let _ = file.drop_cache();
    Ok(file)
}

/// State shared between the committer and the preparer thread.
#[derive(Default)]
pub(crate) struct PrepState {
    /// A zero-filled `N.wal.prep` ready for use.
    pub ready: Option<(u64, Arc<dyn File>)>,
    /// The segment number the preparer should prepare next, if asked.
    pub wanted: Option<u64>,
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
}

impl Preparer {
    pub fn new() -> Preparer {
        Preparer {
            state: Mutex::new(PrepState::default()),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrepState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for segment `number` to be prepared in the background.
    pub fn request(&self, number: u64) {
        let mut st = self.lock();
        if st.ready.as_ref().map(|r| r.0) != Some(number) && st.preparing != Some(number) {
            st.wanted = Some(number);
            self.cv.notify_all();
        }
    }

    /// Committer: takes prepared segment `number`, waiting for the preparer if it is
    /// still zero-filling; an error if preparation failed.
    pub fn take(&self, number: u64) -> Result<Arc<dyn File>, WalError> {
        let mut st = self.lock();
        loop {
            if let Some((n, f)) = st.ready.take() {
                if n == number {
                    return Ok(f);
                }
            }
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            if st.wanted != Some(number) && st.preparing != Some(number) {
                st.wanted = Some(number);
                self.cv.notify_all();
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }

    /// The preparer thread's loop.
    pub fn run(&self, vfs: Arc<dyn Vfs>, dir: PathBuf, segment_bytes: u64) {
        loop {
            let number = {
                let mut st = self.lock();
                loop {
                    if st.stop {
                        return;
                    }
                    if let Some(n) = st.wanted.take() {
                        st.preparing = Some(n);
                        break n;
                    }
                    st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let path = dir.join(prepared_file_name(number));
            let result = zero_fill(&*vfs, &path, segment_bytes);
            let mut st = self.lock();
            st.preparing = None;
            match result {
                Ok(f) => st.ready = Some((number, f)),
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
