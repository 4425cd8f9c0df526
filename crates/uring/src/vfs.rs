//! The file-system seam: [`Vfs`] (namespace operations) and [`File`] (positional I/O on one
//! open file).
//!
//! Every layer above this crate does its I/O through these two traits, never through
//! `std::fs` directly, so that a test can hand it a [`crate::FaultVfs`] that loses unsynced
//! bytes and injects errors (STYLE habit 4).
//!
//! # Contracts
//!
//! - **Threading.** A `Vfs` is shared by threads through `Arc<dyn Vfs>`. A `File` is shared
//!   through `Arc<dyn File>`: [`File::write_at`], [`File::sync_data`], [`File::allocate`] and
//!   [`File::set_len`] are called by one thread at a time (the WAL's committer or its segment
//!   preparer); [`File::read_at`] and [`File::len`] may run on any number of threads
//!   concurrently with them.
//! - **Ownership.** Buffers are borrowed for the duration of a call and never retained: when a
//!   call returns, the implementation (and the kernel) no longer reads or writes them.
//! - **Failure.** Errors are `io::Error` with the operating-system errno preserved
//!   (`raw_os_error()`), so `ENOSPC` stays `ENOSPC` and `EIO` stays `EIO`. A failed
//!   [`File::write_at`] or [`File::sync_data`] says nothing about which bytes reached the disk;
//!   callers must treat the file as failed and never retry an fsync and pretend it worked.

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How [`Vfs::open`] opens a file.
///
/// No mode follows a symbolic link at the last path component (`O_NOFOLLOW`; `lock` neither):
/// opening one fails with `ELOOP` (`EEXIST` for `CreateNew`) and its target is not touched.
/// The engine never creates links among its files, so a link there was planted, and following
/// it would write, truncate or create a file outside the database (issue 8). Links in the
/// directory path itself are followed as usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file if it is missing; open it read + write.
    CreateReadWrite,
    /// The file must not exist (`O_EXCL`); create it and open it read + write.
    CreateNew,
    /// The file must exist; open it read + write.
    ReadWrite,
    /// The file must exist; open it read only.
    ReadOnly,
}

/// The I/O backend actually in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// Durable writes are one io_uring submission: WRITEV linked to FDATASYNC.
    IoUring,
    /// `pwritev` + `fdatasync` on the calling thread.
    Portable,
}

impl BackendKind {
    /// `"io_uring"` or `"portable"`, as reported by `stats()`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendKind::IoUring => "io_uring",
            BackendKind::Portable => "portable",
        }
    }
}

/// Directory and namespace operations of one I/O backend.
///
/// Shared by threads via `Arc<dyn Vfs>`. Files opened from a `Vfs` may outlive it.
pub trait Vfs: Send + Sync + Debug + 'static {
    /// Opens `path` as described by `mode`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>>;

    /// Removes the file at `path` (not durable until [`Vfs::sync_dir`] on its directory).
    ///
    /// The directory operations below default to the operating system's (`std::fs`), shared
    /// by both backends: io_uring only changes how file data is written and synced. A
    /// wrapper such as [`crate::FaultVfs`] overrides them to forward and keep its books.
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Atomically renames `from` to `to`, replacing `to` if it exists (not durable until
    /// [`Vfs::sync_dir`] on the directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// File names (not paths) in the directory `dir`, unsorted. A name that is not valid
    /// UTF-8 is an `InvalidData` error.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            match name.into_string() {
                Ok(name) => names.push(name),
                Err(name) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("file name {name:?} in {} is not UTF-8", dir.display()),
                    ))
                }
            }
        }
        Ok(names)
    }

    /// Creates `dir` and all its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    /// fsyncs the directory itself, which makes creations, renames and removals of its
    /// entries durable (`F_FULLFSYNC` on macOS, as for data).
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        return crate::durable::sync_file_data(&std::fs::File::open(dir)?);
        // Windows cannot flush a directory through a plain handle; NTFS journals directory
        // entries itself. Compiled, not verified: no Windows machine checks it.
        #[cfg(windows)]
        {
            let _ = dir;
            Ok(())
        }
    }

    /// Takes an exclusive advisory lock (`flock(LOCK_EX | LOCK_NB)`) on `path`, creating the
    /// file if it is missing. The lock is held until the returned guard drops. If another open
    /// file description (typically another process) holds it, returns an error of kind
    /// [`io::ErrorKind::WouldBlock`] at once instead of waiting.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>>;

    /// The backend actually doing the I/O.
    fn kind(&self) -> BackendKind;
}

/// Holds a lock taken by [`Vfs::lock`]; dropping it releases the lock.
pub trait LockGuard: Send + Sync + Debug {}

/// How long the two halves of a [`File::write_at`] took, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteTiming {
    /// From the call (submission) until the data was written (on io_uring: until the last
    /// write completion was observed).
    pub write_ns: u64,
    /// From the end of the write until the fdatasync completed; 0 when the write was not
    /// durable.
    pub sync_ns: u64,
}

/// An open file: positional I/O only (there is no cursor).
///
/// See the module documentation for the threading contract.
#[allow(
    clippy::len_without_is_empty,
    reason = "a file's length is an I/O call that can fail; emptiness is not a useful question"
)]
pub trait File: Send + Sync + Debug {
    /// Writes all of `bufs`, gathered in order, at `offset`.
    ///
    /// If `durable`, the written bytes are covered by an fdatasync before this returns `Ok`.
    /// Never reports success for a partially written buffer: a short write is continued until
    /// complete or until it fails. Errors keep their errno.
    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming>;

    /// fdatasync: makes every byte written so far durable.
    fn sync_data(&self) -> io::Result<()>;

    /// Reads at `offset` into `buf` and returns how many bytes were read; fewer than
    /// `buf.len()` only at end of file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Makes sure `[0, len)` is allocated on disk (fallocate mode 0, falling back to writing
    /// zeros past the end of file when the file system does not support it). Never shrinks.
    fn allocate(&self, len: u64) -> io::Result<()>;

    /// Truncates or extends the file to exactly `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Another handle on this file with its own open file description, for fdatasyncs
    /// issued concurrently with other fdatasyncs of the file (the WAL's sync threads). Each
    /// description learns of a writeback error on its own (Linux reports such an error once
    /// per open file description), so an error is never consumed by one fdatasync while
    /// another, covering the lost pages, reports success. The default is `Unsupported`;
    /// callers then sync through this handle.
    fn sync_handle(&self) -> io::Result<Arc<dyn File>> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// The open file descriptor, so that a file the engine never writes again (a table)
    /// can be mapped into memory and read without a system call per block. `None` (the
    /// default) for a backend whose reads are not simply the file's bytes (the fault
    /// backend keeps unsynced writes in memory and injects errors): callers then read
    /// through [`File::read_at`]. The descriptor stays owned by this file.
    #[cfg(unix)]
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Drops the file's clean pages from the page cache (`posix_fadvise(DONTNEED)`). A
    /// hint, for a file just filled and synced: some kernels keep such a fill as large
    /// (1 MiB) page-cache folios, and a later small write followed by fdatasync then writes
    /// back the whole folio. The default does nothing.
    fn drop_cache(&self) -> io::Result<()> {
        Ok(())
    }
}

/// `posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)` (see [`File::drop_cache`]). macOS has no
/// `posix_fadvise`: there the hint is skipped.
#[cfg(not(target_os = "linux"))]
pub(crate) fn fadvise_dontneed(_file: &std::fs::File) -> io::Result<()> {
    Ok(())
}

/// `posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)` (see [`File::drop_cache`]).
#[cfg(target_os = "linux")]
pub(crate) fn fadvise_dontneed(file: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `file` is an open file descriptor for the duration of the call; the advice
    // only affects the page cache, never memory of this process.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}
