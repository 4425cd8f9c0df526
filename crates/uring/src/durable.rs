//! The durability point of a file's data, per platform: what every backend's `sync_data`
//! and the directory sync come down to.

use std::io;
#[cfg(target_vendor = "apple")]
use std::os::fd::AsRawFd;

/// The durability point of a file's data: `fdatasync(2)` on Linux (and other Unixes).
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn sync_file_data(file: &std::fs::File) -> io::Result<()> {
    file.sync_data()
}

/// The durability point of a file's data on macOS: `fcntl(F_FULLFSYNC)`. A plain `fsync` or
/// `fdatasync` there hands the data to the drive but does not make the drive flush its own
/// write cache, so a power cut can still lose (or reorder) it; `F_FULLFSYNC` asks the drive
/// to flush. File systems that do not support it (some network and FUSE file systems) answer
/// `ENOTSUP`/`EINVAL`: then `fsync`, the best they offer.
#[cfg(target_vendor = "apple")]
pub(crate) fn sync_file_data(file: &std::fs::File) -> io::Result<()> {
    loop {
        // SAFETY: plain fcntl on a descriptor that stays open while `file` is borrowed; no
        // memory is passed.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_FULLFSYNC) } != -1 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOTSUP) | Some(libc::EINVAL) => return file.sync_all(),
            _ => return Err(err),
        }
    }
}
