//! The portable backend: `pwritev` + `fdatasync` on the calling thread. Works on every Unix
//! (and is what `auto` falls back to when io_uring is refused).
//!
//! The opens, reads and locks here ([`open_std`], [`read_full_at`], [`allocate_std`],
//! [`lock_std`], ...) are also used by the io_uring backend, which only replaces the durable
//! write path; the directory operations both backends share are the [`Vfs`] defaults.
//!
//! # Contracts
//!
//! - `write_at` blocks the calling thread until every byte is written (short writes are
//!   continued, `EINTR` is retried) and, if durable, until `fdatasync` returned.
//! - Errors keep their errno. After an error nothing is retried: the caller decides.

use std::fs::OpenOptions;
use std::io;
#[cfg(unix)]
use std::os::fd::AsRawFd;
#[cfg(unix)]
use std::os::unix::fs::{FileExt, OpenOptionsExt};
#[cfg(windows)]
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::durable::sync_file_data;
#[cfg(unix)]
use crate::iovec::{IoCursor, IOV_MAX};
use crate::vfs::{File, LockGuard, OpenMode, Vfs, WriteTiming};
use crate::BackendKind;

/// The portable [`Vfs`].
#[derive(Debug, Default)]
pub(crate) struct PortableVfs;

impl PortableVfs {
    pub(crate) fn new() -> Self {
        PortableVfs
    }
}

impl Vfs for PortableVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let file = open_std(path, mode)?;
        Ok(Arc::new(PortableFile {
            file,
            path: path.to_path_buf(),
        }))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        lock_std(path)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Portable
    }
}

/// A file of the portable backend.
pub(crate) struct PortableFile {
    file: std::fs::File,
    /// For `Debug` output only.
    path: PathBuf,
}

impl std::fmt::Debug for PortableFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortableFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl File for PortableFile {
    #[cfg(unix)]
    fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn sync_handle(&self) -> io::Result<Arc<dyn File>> {
        reopen_std(&self.file, &self.path)
    }

    fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
        let start = Instant::now();
        pwritev_all(&self.file, offset, bufs)?;
        let written = Instant::now();
        let write_ns = nanos_between(start, written);
        if !durable {
            return Ok(WriteTiming {
                write_ns,
                sync_ns: 0,
            });
        }
        sync_file_data(&self.file)?;
        Ok(WriteTiming {
            write_ns,
            sync_ns: nanos_between(written, Instant::now()),
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        sync_file_data(&self.file)
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

/// Nanoseconds from `from` to `to`, saturating.
pub(crate) fn nanos_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

/// Rejects offsets that do not fit `off_t` once the write's length is added.
pub(crate) fn check_write_range(offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
    match offset.checked_add(total) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("write of {total} bytes at offset {offset} overflows the file offset range"),
        )),
    }
}

/// Writes all of `bufs` at `offset` with `pwritev`, continuing short writes and retrying
/// `EINTR`.
#[cfg(unix)]
pub(crate) fn pwritev_all(file: &std::fs::File, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    check_write_range(offset, bufs)?;
    let fd = file.as_raw_fd();
    let mut cursor = IoCursor::new(bufs);
    let mut iovs = Vec::new();
    while !cursor.is_finished() {
        let (bytes, _) = cursor.next_batch(&mut iovs, IOV_MAX);
        // Cannot overflow: checked by `check_write_range` above.
        let at = (offset + cursor.done()) as libc::off_t;
        // SAFETY: `iovs` holds `iovs.len()` (<= IOV_MAX) valid iovecs pointing into `bufs`,
        // which are borrowed for this whole call; pwritev only reads them and is done with
        // them when it returns. `fd` is open for as long as `file` is borrowed.
        let res = unsafe { libc::pwritev(fd, iovs.as_ptr(), iovs.len() as libc::c_int, at) };
        if res < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let written = res as usize;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote 0 bytes of a non-empty write",
            ));
        }
        debug_assert!(written <= bytes, "pwritev wrote more than asked");
        cursor.advance(written.min(bytes));
    }
    Ok(())
}

/// A new open file description of `file` (through `/proc/self/fd`, so it follows the file
/// across renames), as a portable handle (see [`File::sync_handle`]). Linux only.
pub(crate) fn reopen_std(file: &std::fs::File, path: &Path) -> io::Result<Arc<dyn File>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let proc = format!("/proc/self/fd/{}", file.as_raw_fd());
        let reopened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(proc)?;
        Ok(Arc::new(PortableFile {
            file: reopened,
            path: path.to_path_buf(),
        }))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, path);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Open flags that refuse to follow a symbolic link at the last component: `O_NOFOLLOW`, or on
/// Windows `FILE_FLAG_OPEN_REPARSE_POINT` (the link itself is opened, never its target).
#[cfg(unix)]
const NOFOLLOW: i32 = libc::O_NOFOLLOW;
#[cfg(windows)]
const NOFOLLOW: u32 = 0x0020_0000;

/// Opens `path` with std, mapping [`OpenMode`] to open flags. Every mode adds `O_NOFOLLOW`
/// (see [`OpenMode`]): a symbolic link planted under one of the engine's file names must not
/// make it write, truncate or create a file outside the database.
pub(crate) fn open_std(path: &Path, mode: OpenMode) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    match mode {
        OpenMode::CreateReadWrite => options.read(true).write(true).create(true),
        OpenMode::CreateNew => options.read(true).write(true).create_new(true),
        OpenMode::ReadWrite => options.read(true).write(true),
        OpenMode::ReadOnly => options.read(true),
    };
    options.custom_flags(NOFOLLOW);
    options.open(path)
}

/// `pread` until `buf` is full or end of file, retrying `EINTR`.
pub(crate) fn read_full_at(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        #[cfg(unix)]
        let r = file.read_at(&mut buf[done..], offset + done as u64);
        #[cfg(windows)]
        let r = file.seek_read(&mut buf[done..], offset + done as u64);
        match r {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes all of `bufs` at `offset`, one positional `WriteFile` per buffer (Windows has no
/// gathered positional write), continuing short writes.
#[cfg(windows)]
pub(crate) fn pwritev_all(file: &std::fs::File, offset: u64, bufs: &[&[u8]]) -> io::Result<()> {
    check_write_range(offset, bufs)?;
    let mut at = offset;
    for buf in bufs {
        let mut done = 0;
        while done < buf.len() {
            match file.seek_write(&buf[done..], at) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "WriteFile wrote 0 bytes of a non-empty write",
                    ))
                }
                Ok(n) => {
                    done += n;
                    at += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Makes sure `[0, len)` is allocated; never shrinks.
pub(crate) fn allocate_std(file: &std::fs::File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let off_len = libc::off_t::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("allocate length {len} too large"),
        )
    })?;
    match fallocate(file, off_len) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => allocate_by_writing(file, len),
        Err(e) => Err(e),
    }
}

#[cfg(target_os = "linux")]
fn fallocate(file: &std::fs::File, len: libc::off_t) -> io::Result<()> {
    loop {
        // SAFETY: plain syscall on a file descriptor that is open while `file` is borrowed; no
        // memory is passed.
        let res = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if res == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Platforms without `fallocate(2)` take the writing fallback.
#[cfg(not(target_os = "linux"))]
fn fallocate(_file: &std::fs::File, _len: libc::off_t) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
}

/// The fallback of [`allocate_std`]: writes zeros from the end of file up to `len`. (Holes
/// before the end of file stay holes.)
fn allocate_by_writing(file: &std::fs::File, len: u64) -> io::Result<()> {
    const CHUNK_BYTES: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK_BYTES];
    let mut at = file.metadata()?.len();
    while at < len {
        let n = usize::try_from(len - at)
            .unwrap_or(CHUNK_BYTES)
            .min(CHUNK_BYTES);
        pwritev_all(file, at, &[&zeros[..n]])?;
        at += n as u64;
    }
    Ok(())
}

/// Holds an `flock` until dropped (closing the descriptor releases the lock; on Windows, the
/// exclusive open).
struct FlockGuard {
    /// Held, never read: closing it releases the lock.
    _file: std::fs::File,
    /// For `Debug` output only.
    path: PathBuf,
}

impl std::fmt::Debug for FlockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlockGuard")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LockGuard for FlockGuard {}

/// `flock(LOCK_EX | LOCK_NB)` on `path`, created if missing.
#[cfg(unix)]
pub(crate) fn lock_std(path: &Path) -> io::Result<Box<dyn LockGuard>> {
    // O_NOFOLLOW: a planted LOCK symlink must not create or open a file elsewhere.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(NOFOLLOW)
        .open(path)?;
    loop {
        // SAFETY: plain syscall on a descriptor that is open while `file` lives; no memory is
        // passed.
        let res = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if res == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is locked by another process (flock: {err})",
                    path.display()
                ),
            ));
        }
        return Err(err);
    }
    Ok(Box::new(FlockGuard {
        _file: file,
        path: path.to_path_buf(),
    }))
}

/// On Windows: `path` opened with no sharing (`share_mode(0)`), created if missing, so that
/// no other handle (another process, or this one) can open it while the guard lives; a
/// sharing violation is the `WouldBlock` of an `flock` held elsewhere. Compiled, not run:
/// no Windows machine checks it.
#[cfg(windows)]
pub(crate) fn lock_std(path: &Path) -> io::Result<Box<dyn LockGuard>> {
    const ERROR_SHARING_VIOLATION: i32 = 32;
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .share_mode(0)
        .custom_flags(NOFOLLOW)
        .open(path)
    {
        Ok(file) => Ok(Box::new(FlockGuard {
            _file: file,
            path: path.to_path_buf(),
        })),
        Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{} is locked by another process ({e})", path.display()),
        )),
        Err(e) => Err(e),
    }
}
