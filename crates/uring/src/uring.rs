//! The io_uring backend (Linux only; compiled in by `backend.rs`, the one switch).
//!
//! Only the durable write path goes through the ring: [`File::write_at`] with `durable`
//! submits
//! `IORING_OP_WRITEV` linked (`IOSQE_IO_LINK`) to `IORING_OP_FSYNC` with `DATASYNC`, in one
//! `io_uring_enter`, and waits for both completions. (An fsync merely queued after a write is
//! not ordered after it; the link is what makes the fsync cover the write.) Reads, namespace
//! operations, `allocate` and `set_len` use plain syscalls shared with the portable backend.
//!
//! # Ownership and threading
//!
//! One ring per [`UringVfs`], shared by all its files behind a mutex. A call holds the mutex
//! from the moment it pushes its submission queue entries until it has reaped every one of
//! their completions, so:
//!
//! - the kernel is done with the caller's buffers and iovecs before the call returns (the
//!   buffers are borrowed for the call, so they are alive for as long as the kernel may touch
//!   them — the argument behind every `unsafe` block below);
//! - completions never leak into a later call (each call tags its entries with fresh
//!   `user_data` tokens and checks them; anything else found in the completion queue is a
//!   stale entry and is dropped);
//! - calls on different files of one `Vfs` are serialized, including across an fdatasync. This
//!   is a deliberate simplicity trade-off: the WAL has one committer, and one ring per `Vfs`
//!   keeps the number of rings (and locked memory) bounded.
//!
//! # Failure
//!
//! - A failed write or fdatasync is returned with its errno (`ENOSPC`, `EIO`, ...).
//! - A short write severs the link, so the kernel completes the fdatasync with `-ECANCELED`;
//!   the remainder is submitted again (linked to a new fdatasync) until complete or failed.
//! - `io_uring_enter` failing with `EINTR`, `EAGAIN` or `EBUSY` is retried. If it fails in any
//!   other way before the kernel consumed our entries, the ring is marked broken (those
//!   entries stay in the submission queue and must never be submitted after our buffers are
//!   gone), and this and every later call on that ring fail. If it fails after the kernel
//!   consumed some of our entries, the kernel may still be writing from the caller's buffers:
//!   returning would let them be freed under it, so the process aborts with a message. With
//!   the flags we use, that case needs a kernel bug (`EBADF`/`EFAULT`/`EINVAL` on a ring that
//!   just worked).

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use io_uring::{opcode, squeue, types, IoUring, Probe};

use crate::iovec::{classify_batch, BatchOutcome, IoCursor, IOV_MAX};
use crate::portable::{
    allocate_std, check_write_range, lock_std, nanos_between, open_std, pwritev_all, read_full_at,
    reopen_std,
};
use crate::vfs::{File, LockGuard, OpenMode, Vfs, WriteTiming};
use crate::BackendKind;

/// Submission queue entries per ring. A call has at most [`CHAIN_MAX`] entries in flight and
/// holds the ring's mutex while they are, so a small ring is enough.
const RING_ENTRIES: u32 = 16;

/// Most entries one call submits at once: a write and its linked fdatasync.
const CHAIN_MAX: usize = 2;

/// Why io_uring cannot be used; `backend.rs` turns it into words.
#[derive(Debug)]
pub(crate) enum ProbeError {
    /// `io_uring_setup` failed.
    Setup(io::Error),
    /// `io_uring_register(IORING_REGISTER_PROBE)` failed (kernels before 5.6 lack it).
    Register(io::Error),
    /// The ring works but lacks opcodes we need.
    MissingOps(Vec<&'static str>),
}

/// Creates a ring and checks, by feature, that it can do what we need: `WRITEV` (or `WRITE`)
/// and `FSYNC`.
/// Returns the backend and the features probed, as stable strings.
pub(crate) fn probe() -> Result<(UringVfs, Vec<String>), ProbeError> {
    let ring: IoUring = IoUring::builder()
        .build(RING_ENTRIES)
        .map_err(ProbeError::Setup)?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(ProbeError::Register)?;

    let params = ring.params();
    let mut features = Vec::new();
    let flags = [
        ("IORING_FEAT_SINGLE_MMAP", params.is_feature_single_mmap()),
        ("IORING_FEAT_NODROP", params.is_feature_nodrop()),
        (
            "IORING_FEAT_SUBMIT_STABLE",
            params.is_feature_submit_stable(),
        ),
        ("IORING_FEAT_RW_CUR_POS", params.is_feature_rw_cur_pos()),
        ("IORING_FEAT_FAST_POLL", params.is_feature_fast_poll()),
        ("IORING_FEAT_EXT_ARG", params.is_feature_ext_arg()),
        (
            "IORING_FEAT_NATIVE_WORKERS",
            params.is_feature_native_workers(),
        ),
    ];
    features.extend(
        flags
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.to_string()),
    );
    let ops = [
        ("op:WRITEV", opcode::Writev::CODE),
        ("op:WRITE", opcode::Write::CODE),
        ("op:FSYNC", opcode::Fsync::CODE),
        ("op:FALLOCATE", opcode::Fallocate::CODE),
        ("op:READV", opcode::Readv::CODE),
        ("op:READ", opcode::Read::CODE),
    ];
    features.extend(
        ops.iter()
            .filter(|(_, code)| probe.is_supported(*code))
            .map(|(name, _)| name.to_string()),
    );

    let write_op = if probe.is_supported(opcode::Writev::CODE) {
        WriteOp::Writev
    } else if probe.is_supported(opcode::Write::CODE) {
        WriteOp::Write
    } else {
        let mut missing = vec!["WRITEV (or WRITE)"];
        if !probe.is_supported(opcode::Fsync::CODE) {
            missing.push("FSYNC");
        }
        return Err(ProbeError::MissingOps(missing));
    };
    if !probe.is_supported(opcode::Fsync::CODE) {
        return Err(ProbeError::MissingOps(vec!["FSYNC"]));
    }
    Ok((UringVfs::new(ring, write_op), features))
}

/// The opcode that carries writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOp {
    /// `IORING_OP_WRITEV`: a whole gathered batch (up to IOV_MAX buffers) per submission.
    Writev,
    /// `IORING_OP_WRITE`, for a kernel that reports WRITE but not WRITEV: one buffer per
    /// submission (the same loop as a short write, so the same code path).
    Write,
}

impl WriteOp {
    fn iovs_max(self) -> usize {
        match self {
            WriteOp::Writev => IOV_MAX,
            WriteOp::Write => 1,
        }
    }
}

/// The ring shared by a [`UringVfs`] and its files.
struct Ring {
    state: Mutex<RingState>,
}

struct RingState {
    ring: IoUring,
    /// Next `user_data` token; every submitted entry gets a fresh one.
    next_token: u64,
    /// Set when the ring can no longer be used safely (see the module docs).
    broken: Option<String>,
}

/// One reaped completion: the kernel's result and when we saw it.
#[derive(Clone, Copy, Debug)]
struct Completion {
    res: i32,
    seen: Instant,
}

impl Ring {
    fn lock(&self) -> io::Result<MutexGuard<'_, RingState>> {
        self.state
            .lock()
            .map_err(|_| io::Error::other("io_uring ring mutex poisoned by a panic"))
    }

    /// Submits `entries` (at most [`CHAIN_MAX`], linked as the caller built them) with fresh
    /// `user_data` tokens and waits until every one has completed. Returns the completions in
    /// the order of `entries` (slots past `entries.len()` hold a dummy `-ECANCELED`).
    ///
    /// Returns `Err` only when none of the entries reached the kernel, or (for errors found
    /// before submitting) when nothing was pushed.
    ///
    /// # Safety
    ///
    /// Every buffer and iovec array that `entries` point to must stay valid (and the buffers
    /// unmodified) until this function returns. Borrowing them for the duration of the call
    /// is enough, since this function does not return while the kernel may still use them.
    unsafe fn submit_and_reap(
        &self,
        entries: &mut [squeue::Entry],
    ) -> io::Result<[Completion; CHAIN_MAX]> {
        assert!(!entries.is_empty() && entries.len() <= CHAIN_MAX);
        let mut guard = self.lock()?;
        let state = &mut *guard;
        if let Some(reason) = &state.broken {
            return Err(io::Error::other(format!(
                "io_uring ring is unusable: {reason}"
            )));
        }
        // Completions of earlier calls were all reaped by those calls; drop anything left
        // over so that it can never be mistaken for ours (tokens are fresh anyway).
        let stale = state.ring.completion().count();
        debug_assert_eq!(stale, 0, "stale io_uring completions found");

        let base = state.next_token;
        state.next_token += entries.len() as u64;
        for (i, entry) in entries.iter_mut().enumerate() {
            *entry = entry.clone().user_data(base + i as u64);
        }
        let tagged: &[squeue::Entry] = entries;
        {
            let mut sq = state.ring.submission();
            // SAFETY: the entries point only to memory the caller keeps valid until we return
            // (this function's contract), and we do not return before every pushed entry has
            // completed or the ring is marked broken with the entries never to be submitted.
            // push_multiple pushes all or nothing.
            if unsafe { sq.push_multiple(tagged) }.is_err() {
                return Err(io::Error::other(
                    "io_uring submission queue full (entries left over by a broken call)",
                ));
            }
        }

        let submitted_at = Instant::now();
        let mut done: [Option<Completion>; CHAIN_MAX] = [None, None];
        let mut remaining = tagged.len();
        while remaining > 0 {
            match state.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EBUSY)
                    ) =>
                {
                    // Retry after reaping what is there (EAGAIN/EBUSY can mean the completion
                    // queue needs room).
                    std::thread::yield_now();
                }
                Err(e) => {
                    let unsubmitted = state.ring.submission().len();
                    if unsubmitted == tagged.len() {
                        // Nothing of ours reached the kernel. Our entries stay in the
                        // submission queue (they cannot be taken back): never enter this ring
                        // again, or the kernel would read buffers that are gone by then.
                        state.broken = Some(format!("io_uring_enter failed: {e}"));
                        return Err(e);
                    }
                    // The kernel may be using the caller's buffers: returning would be a
                    // use-after-free. See the module docs.
                    eprintln!(
                        "uringdb: io_uring_enter failed with in-flight I/O ({e}); aborting to \
                         keep the kernel from writing freed memory"
                    );
                    std::process::abort();
                }
            }
            for cqe in state.ring.completion() {
                let token = cqe.user_data();
                if token >= base && token < base + tagged.len() as u64 {
                    let slot = &mut done[(token - base) as usize];
                    if slot.is_none() {
                        *slot = Some(Completion {
                            res: cqe.result(),
                            seen: Instant::now(),
                        });
                        remaining -= 1;
                    }
                }
                // Anything else is not ours (there is nothing else in flight): dropped. No
                // assertion here: panicking with our entries in flight would free the
                // caller's buffers under the kernel.
            }
        }
        let fallback = Completion {
            res: -libc::ECANCELED,
            seen: submitted_at,
        };
        Ok([done[0].unwrap_or(fallback), done[1].unwrap_or(fallback)])
    }
}

/// The io_uring [`Vfs`].
pub(crate) struct UringVfs {
    ring: Arc<Ring>,
    write_op: WriteOp,
}

impl UringVfs {
    fn new(ring: IoUring, write_op: WriteOp) -> Self {
        UringVfs {
            ring: Arc::new(Ring {
                state: Mutex::new(RingState {
                    ring,
                    next_token: 1,
                    broken: None,
                }),
            }),
            write_op,
        }
    }
}

impl std::fmt::Debug for UringVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringVfs")
            .field("ring_entries", &RING_ENTRIES)
            .field("write_op", &self.write_op)
            .finish_non_exhaustive()
    }
}

impl Vfs for UringVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let file = open_std(path, mode)?;
        Ok(Arc::new(UringFile {
            file,
            ring: Arc::clone(&self.ring),
            write_op: self.write_op,
            path: path.to_path_buf(),
        }))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        lock_std(path)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::IoUring
    }
}

/// A file of the io_uring backend.
struct UringFile {
    file: std::fs::File,
    ring: Arc<Ring>,
    write_op: WriteOp,
    /// For `Debug` output only.
    path: PathBuf,
}

impl std::fmt::Debug for UringFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringFile")
            .field("path", &self.path)
            .field("fd", &self.file.as_raw_fd())
            .finish_non_exhaustive()
    }
}

impl UringFile {
    fn fdatasync_entry(&self) -> squeue::Entry {
        opcode::Fsync::new(types::Fd(self.file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
    }
}

impl File for UringFile {
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
        check_write_range(offset, bufs)?;
        let start = Instant::now();
        let mut cursor = IoCursor::new(bufs);
        if cursor.is_finished() {
            // Nothing to write; a durable empty write is a plain fdatasync.
            if durable {
                self.sync_data()?;
            }
            return Ok(WriteTiming {
                write_ns: 0,
                sync_ns: if durable {
                    nanos_between(start, Instant::now())
                } else {
                    0
                },
            });
        }
        if !durable {
            // Not the durable path: a plain pwritev, so background writes (the WAL's
            // segment zero-fill, sync: false groups) never hold the ring that commit
            // groups wait for.
            pwritev_all(&self.file, offset, bufs)?;
            return Ok(WriteTiming {
                write_ns: nanos_between(start, Instant::now()),
                sync_ns: 0,
            });
        }
        let fd = types::Fd(self.file.as_raw_fd());
        let mut iovs: Vec<libc::iovec> = Vec::new();
        let mut timing = WriteTiming::default();
        while !cursor.is_finished() {
            let (bytes, last) = cursor.next_batch(&mut iovs, self.write_op.iovs_max());
            let link = durable && last;
            let at = offset + cursor.done();
            let write = match self.write_op {
                // `iovs.len()` <= IOV_MAX, so it fits u32.
                WriteOp::Writev => opcode::Writev::new(fd, iovs.as_ptr(), iovs.len() as u32)
                    .offset(at)
                    .build(),
                // One iovec of at most BATCH_BYTES_MAX (< u32::MAX) bytes.
                WriteOp::Write => {
                    opcode::Write::new(fd, iovs[0].iov_base as *const u8, bytes as u32)
                        .offset(at)
                        .build()
                }
            };
            let mut chain = if link {
                [write.flags(squeue::Flags::IO_LINK), self.fdatasync_entry()]
            } else {
                [write, self.fdatasync_entry()]
            };
            let entries = &mut chain[..if link { 2 } else { 1 }];
            // SAFETY: the entries point to `iovs` and into `bufs`, both borrowed (and not
            // modified) until after `submit_and_reap` returns, which it does only once the
            // kernel has completed every entry or never received any; the file descriptor
            // they name belongs to `self.file`, open while `self` is borrowed.
            let done = unsafe { self.ring.submit_and_reap(entries) }?;
            let written = done[0];
            let synced = if link { Some(done[1]) } else { None };
            match classify_batch(bytes, written.res, synced.map(|c| c.res)) {
                BatchOutcome::Complete => {
                    cursor.advance(bytes);
                    timing.write_ns = nanos_between(start, written.seen);
                    if let Some(synced) = synced {
                        timing.sync_ns = nanos_between(written.seen, synced.seen);
                    }
                }
                BatchOutcome::Short { written } => cursor.advance(written),
                BatchOutcome::Failed(e) => return Err(e),
            }
        }
        Ok(timing)
    }

    fn sync_handle(&self) -> io::Result<Arc<dyn File>> {
        // A standalone fdatasync is a plain syscall here too (see `sync_data`).
        reopen_std(&self.file, &self.path)
    }

    fn sync_data(&self) -> io::Result<()> {
        // A standalone fdatasync has no write to link to: a plain syscall, which also keeps
        // a long flush (a freshly zero-filled segment) off the ring commit groups share.
        self.file.sync_data()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        read_full_at(&self.file, offset, buf)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        allocate_std(&self.file, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn drop_cache(&self) -> io::Result<()> {
        crate::vfs::fadvise_dontneed(&self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("uringdb-uring-unit-{}-{name}", std::process::id()))
    }

    fn ring() -> IoUring {
        IoUring::builder()
            .build(RING_ENTRIES)
            .expect("io_uring available for unit tests")
    }

    /// The WRITE fallback (one buffer per submission) produces the same file as WRITEV.
    #[test]
    fn both_write_ops_write_gathered_buffers() {
        let chunks: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i % 5)]).collect();
        let bufs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let expected = chunks.concat();
        for op in [WriteOp::Writev, WriteOp::Write] {
            let vfs = UringVfs::new(ring(), op);
            let path = temp_path(&format!("{op:?}"));
            let file = vfs.open(&path, OpenMode::CreateReadWrite).unwrap();
            file.write_at(3, &bufs, true).unwrap();
            file.write_at(0, &bufs[..3], false).unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert_eq!(on_disk.len(), 3 + expected.len(), "{op:?}");
            assert_eq!(&on_disk[3..], &expected[..], "{op:?}");
        }
    }

    /// Errors from the kernel keep their errno and leave no completion behind: the next
    /// call on the same ring works and sees only its own completions.
    #[test]
    fn errors_leave_the_ring_clean() {
        let vfs = UringVfs::new(ring(), WriteOp::Writev);
        let path = temp_path("ebadf");
        std::fs::write(&path, b"x").unwrap();
        let ro = vfs.open(&path, OpenMode::ReadOnly).unwrap();
        let rw = vfs.open(&path, OpenMode::ReadWrite).unwrap();
        for _ in 0..3 {
            // The write fails with EBADF; its linked fsync is cancelled and reaped too.
            let err = ro.write_at(0, &[b"abc"], true).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
            rw.write_at(0, &[b"ok"], true).unwrap();
        }
        let state = vfs.ring.lock().unwrap();
        assert!(state.broken.is_none());
        drop(state);
        std::fs::remove_file(&path).unwrap();
    }
}
