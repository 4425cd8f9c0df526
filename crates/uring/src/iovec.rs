//! The gathered-write cursor shared by both real backends, and the pure rule that decides
//! what to do after the kernel reports how much of a gathered write it wrote.
//!
//! A caller's write is a list of buffers. The kernel takes at most [`IOV_MAX`] iovecs per call
//! and may write fewer bytes than asked (a short write: `RLIMIT_FSIZE`, a nearly full disk, a
//! signal). [`IoCursor`] remembers how far the write got and produces the iovecs of the next
//! submission; [`classify_batch`] turns the kernel's results into the next step. Keeping both
//! pure lets the short-write logic be tested without a kernel that misbehaves on cue.

use std::io;

/// At most this many iovecs per `pwritev` / `IORING_OP_WRITEV` (Linux `UIO_MAXIOV`).
pub(crate) const IOV_MAX: usize = 1024;

/// At most this many bytes per submission: stays below Linux's `MAX_RW_COUNT` (2 GiB minus a
/// page) so the kernel's result always fits the `i32` of a completion.
pub(crate) const BATCH_BYTES_MAX: usize = 1 << 30;

/// Position inside a list of buffers being written.
#[derive(Debug)]
pub(crate) struct IoCursor<'a> {
    bufs: &'a [&'a [u8]],
    /// Index of the first buffer not completely written.
    index: usize,
    /// Bytes of `bufs[index]` already written.
    within: usize,
    /// Total bytes written so far.
    done: u64,
}

impl<'a> IoCursor<'a> {
    pub(crate) fn new(bufs: &'a [&'a [u8]]) -> Self {
        let mut cursor = IoCursor {
            bufs,
            index: 0,
            within: 0,
            done: 0,
        };
        cursor.skip_empty();
        cursor
    }

    /// Bytes written so far (the offset of the next batch relative to the write's start).
    pub(crate) fn done(&self) -> u64 {
        self.done
    }

    /// True once every byte has been written.
    pub(crate) fn is_finished(&self) -> bool {
        self.index >= self.bufs.len()
    }

    /// Fills `out` with the iovecs of the next batch (at most `iovs_max` (<= [`IOV_MAX`])
    /// entries and [`BATCH_BYTES_MAX`] bytes, never empty buffers) and returns its byte count
    /// and whether it reaches the end of the write.
    ///
    /// The iovecs point into the caller's buffers: they are valid for as long as the borrow
    /// `'a` of those buffers, which outlives the write call using them.
    pub(crate) fn next_batch(&self, out: &mut Vec<libc::iovec>, iovs_max: usize) -> (usize, bool) {
        debug_assert!((1..=IOV_MAX).contains(&iovs_max));
        let iovs_max = iovs_max.clamp(1, IOV_MAX);
        out.clear();
        let mut bytes = 0usize;
        let mut index = self.index;
        let mut within = self.within;
        while index < self.bufs.len() && out.len() < iovs_max && bytes < BATCH_BYTES_MAX {
            let rest = &self.bufs[index][within..];
            let take = rest.len().min(BATCH_BYTES_MAX - bytes);
            if take > 0 {
                out.push(libc::iovec {
                    iov_base: rest.as_ptr() as *mut libc::c_void,
                    iov_len: take,
                });
                bytes += take;
            }
            if take == rest.len() {
                index += 1;
                within = 0;
            } else {
                within += take;
            }
        }
        // Empty buffers after the batch do not make it "not last".
        while index < self.bufs.len() && self.bufs[index].len() == within {
            index += 1;
            within = 0;
        }
        (bytes, index >= self.bufs.len())
    }

    /// Records that the kernel wrote `written` more bytes.
    ///
    /// Panics if `written` exceeds what remains: that would be a kernel or logic bug, and the
    /// write position would be meaningless.
    pub(crate) fn advance(&mut self, mut written: usize) {
        self.done += written as u64;
        while written > 0 {
            assert!(
                self.index < self.bufs.len(),
                "advanced past the end of the buffers"
            );
            let rest = self.bufs[self.index].len() - self.within;
            if written < rest {
                self.within += written;
                written = 0;
            } else {
                written -= rest;
                self.index += 1;
                self.within = 0;
            }
        }
        self.skip_empty();
    }

    fn skip_empty(&mut self) {
        while self.index < self.bufs.len() && self.bufs[self.index].len() == self.within {
            self.index += 1;
            self.within = 0;
        }
    }
}

/// What to do after one batch (a write, optionally linked to an fdatasync) completed.
/// (Used by the io_uring backend, so only on Linux; its tests run everywhere.)
#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum BatchOutcome {
    /// The whole batch was written (and, if one was linked, the fdatasync succeeded).
    Complete,
    /// The kernel wrote only `written` bytes (> 0); a linked fdatasync was cancelled. Submit
    /// the remainder (again linked to an fdatasync if durable).
    Short {
        /// Bytes written by this batch.
        written: usize,
    },
    /// The write or the fdatasync failed; the errno is preserved.
    Failed(io::Error),
}

/// Decides the next step from the kernel's results for one batch of `batch_bytes` bytes.
///
/// `write_res` is the write's result (bytes written, or `-errno`), `sync_res` the linked
/// fdatasync's result when one was linked (`0`, or `-errno`; `-ECANCELED` when the kernel
/// severed the link because the write failed or was short).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn classify_batch(
    batch_bytes: usize,
    write_res: i32,
    sync_res: Option<i32>,
) -> BatchOutcome {
    if write_res < 0 {
        return BatchOutcome::Failed(io::Error::from_raw_os_error(-write_res));
    }
    let written = write_res as usize;
    if written > batch_bytes {
        return BatchOutcome::Failed(io::Error::other(format!(
            "the kernel reported writing {written} bytes of a {batch_bytes}-byte batch"
        )));
    }
    if written == 0 && batch_bytes > 0 {
        return BatchOutcome::Failed(io::Error::new(
            io::ErrorKind::WriteZero,
            "the kernel wrote 0 bytes of a non-empty write",
        ));
    }
    if written < batch_bytes {
        // The link was severed, so the fdatasync is expected to be cancelled. If it ran and
        // failed anyway, that failure is real and must be reported.
        return match sync_res {
            Some(res) if res < 0 && res != -libc::ECANCELED => {
                BatchOutcome::Failed(io::Error::from_raw_os_error(-res))
            }
            _ => BatchOutcome::Short { written },
        };
    }
    match sync_res {
        Some(res) if res < 0 => BatchOutcome::Failed(io::Error::from_raw_os_error(-res)),
        _ => BatchOutcome::Complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(cursor: &IoCursor<'_>) -> (Vec<Vec<u8>>, usize, bool) {
        let mut iovs = Vec::new();
        let (bytes, last) = cursor.next_batch(&mut iovs, IOV_MAX);
        let slices = iovs
            .iter()
            .map(|iov| {
                // SAFETY: the iovecs were just produced from `cursor`'s buffers, which are
                // borrowed for the whole test, and describe in-bounds ranges of them.
                unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) }
                    .to_vec()
            })
            .collect();
        (slices, bytes, last)
    }

    #[test]
    fn cursor_walks_buffers_and_short_writes() {
        let a = [1u8, 2, 3];
        let b: [u8; 0] = [];
        let c = [4u8, 5];
        let bufs: [&[u8]; 3] = [&a, &b, &c];
        let mut cursor = IoCursor::new(&bufs);
        let (slices, bytes, last) = collect(&cursor);
        assert_eq!(slices, vec![vec![1, 2, 3], vec![4, 5]]);
        assert_eq!((bytes, last), (5, true));

        cursor.advance(2); // short write inside the first buffer
        assert_eq!(cursor.done(), 2);
        let (slices, bytes, _) = collect(&cursor);
        assert_eq!(slices, vec![vec![3], vec![4, 5]]);
        assert_eq!(bytes, 3);

        cursor.advance(2); // crosses the empty buffer
        let (slices, bytes, last) = collect(&cursor);
        assert_eq!(slices, vec![vec![5]]);
        assert_eq!((bytes, last), (1, true));
        cursor.advance(1);
        assert!(cursor.is_finished());
        assert_eq!(cursor.done(), 5);
    }

    #[test]
    fn cursor_caps_iovecs_per_batch() {
        let one = [7u8];
        let bufs: Vec<&[u8]> = vec![&one; IOV_MAX + 5];
        let mut cursor = IoCursor::new(&bufs);
        let mut iovs = Vec::new();
        let (bytes, last) = cursor.next_batch(&mut iovs, IOV_MAX);
        assert_eq!((iovs.len(), bytes, last), (IOV_MAX, IOV_MAX, false));
        cursor.advance(bytes);
        let (bytes, last) = cursor.next_batch(&mut iovs, IOV_MAX);
        assert_eq!((iovs.len(), bytes, last), (5, 5, true));
    }

    #[test]
    fn cursor_of_nothing_is_finished() {
        let empty: [&[u8]; 2] = [&[], &[]];
        assert!(IoCursor::new(&empty).is_finished());
        assert!(IoCursor::new(&[]).is_finished());
    }

    #[test]
    fn classify_complete_short_and_failed() {
        assert!(matches!(
            classify_batch(10, 10, None),
            BatchOutcome::Complete
        ));
        assert!(matches!(
            classify_batch(10, 10, Some(0)),
            BatchOutcome::Complete
        ));
        // Short write: the linked fsync was cancelled; continue with the remainder.
        assert!(matches!(
            classify_batch(10, 4, Some(-libc::ECANCELED)),
            BatchOutcome::Short { written: 4 }
        ));
        assert!(matches!(
            classify_batch(10, 4, None),
            BatchOutcome::Short { written: 4 }
        ));
        // The write failed: its errno wins over the cancelled fsync.
        match classify_batch(10, -libc::ENOSPC, Some(-libc::ECANCELED)) {
            BatchOutcome::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("{other:?}"),
        }
        // The write completed, the fsync failed: EIO is reported, never success.
        match classify_batch(10, 10, Some(-libc::EIO)) {
            BatchOutcome::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO)),
            other => panic!("{other:?}"),
        }
        // A complete write whose fsync was cancelled is not durable: an error.
        match classify_batch(10, 10, Some(-libc::ECANCELED)) {
            BatchOutcome::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::ECANCELED)),
            other => panic!("{other:?}"),
        }
        // A short write whose fsync nevertheless ran and failed reports the fsync error.
        match classify_batch(10, 3, Some(-libc::EIO)) {
            BatchOutcome::Failed(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO)),
            other => panic!("{other:?}"),
        }
        match classify_batch(10, 0, None) {
            BatchOutcome::Failed(e) => assert_eq!(e.kind(), io::ErrorKind::WriteZero),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_batch(10, 11, None),
            BatchOutcome::Failed(_)
        ));
    }
}
