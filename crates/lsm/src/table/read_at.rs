//! Positional reads: the [`ReadAt`] source a table reads from, and reading a stored block
//! from it exactly, verified against its trailer.

use std::fs::File;
use std::io;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
#[cfg(windows)]
use std::os::windows::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::error::TableError;
use super::index::BlockHandle;
use super::trailer;

/// Positional reads: the only thing a table needs from its storage. The real I/O layer
/// (io_uring or the portable backend) implements it later; files and byte slices do now.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at end of file).
    /// Short reads are allowed; the table retries until the buffer is full.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// The whole source as bytes in memory, if it is mapped (a table file mapped read-only,
    /// see [`super::Mapping`]): the table then borrows uncompressed blocks where they lie
    /// instead of reading them. `None` (the default): every block is read with `read_at`.
    fn mapped(&self) -> Option<&[u8]> {
        None
    }
}

impl ReadAt for File {
    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        FileExt::seek_read(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(src) = self.get(start..) else {
            return Ok(0);
        };
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }

    fn mapped(&self) -> Option<&[u8]> {
        (**self).mapped()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Arc<T> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }

    fn mapped(&self) -> Option<&[u8]> {
        (**self).mapped()
    }
}

/// Reads, verifies and decodes the block at `h` (whose size the caller has bounded with
/// `BlockHandle::fits_before`, so the allocation is bounded by BLOCK_BYTES_MAX).
pub(super) fn read_block<R: ReadAt + ?Sized>(
    src: &R,
    file: &Path,
    h: BlockHandle,
    what: &str,
) -> Result<Vec<u8>, TableError> {
    let mut stored = vec![0u8; h.stored_bytes() as usize];
    read_exact_at(src, h.offset, &mut stored, file)?;
    trailer::decode_owned(stored).map_err(|reason| TableError::Corruption {
        file: file.to_path_buf(),
        offset: h.offset,
        reason: format!("{what} block: {reason}"),
    })
}

/// Fills `buf` from `offset`; the file ending early is corruption at `offset` (the start
/// of the structure being read), and so is an `InvalidData` error from the source; any
/// other OS error is an I/O error.
pub(super) fn read_exact_at<R: ReadAt + ?Sized>(
    src: &R,
    offset: u64,
    buf: &mut [u8],
    file: &Path,
) -> Result<(), TableError> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => {
                return Err(TableError::Corruption {
                    file: file.to_path_buf(),
                    offset,
                    reason: format!(
                        "file ends at byte {} inside a {}-byte read",
                        offset + done as u64,
                        buf.len()
                    ),
                })
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The source says the file is not the table it was (the database's table-file
            // cache found it replaced or resized when reopening it): corruption of this file.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(TableError::Corruption {
                    file: file.to_path_buf(),
                    offset,
                    reason: e.to_string(),
                })
            }
            Err(e) => {
                return Err(TableError::io(
                    format!(
                        "{}: reading {} bytes at {offset}",
                        file.display(),
                        buf.len()
                    ),
                    e,
                ))
            }
        }
    }
    Ok(())
}
