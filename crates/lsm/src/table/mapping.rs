//! A table file mapped into memory, read-only: the [`ReadAt`] source under which a table
//! reads its uncompressed data blocks where they lie — no system call, no copy, no block
//! cache lookup per read — the way lmdb reads its whole file. The page cache is then the
//! cache of those blocks, shared with every other reader of the file.
//!
//! # Why the mapping stays valid
//!
//! Touching a page of a mapping beyond its file's end raises SIGBUS, so a mapped file
//! must not shrink while the mapping lives. A table file is written once (by a flush or a
//! compaction), fdatasynced and only then installed; after that the engine never writes,
//! truncates or renames onto it. When no version references it any more it is unlinked,
//! which leaves the mapping (it holds the inode) valid until the last reader drops it.
//! [`Mapping::map`] refuses a file shorter than the length asked for, so the mapping never
//! covers bytes past the file's end at the time it is made. Another process truncating a
//! table file of an open database breaks the database's ownership (its LOCK file) and is
//! outside this contract, as it is for lmdb's data file.
//!
//! Every block read from a mapping is still verified against its checksum on every read
//! (the check costs a fraction of a microsecond for a 4 KiB block): a mapping changes how
//! the bytes are reached, never what is trusted.

use std::io;
#[cfg(unix)]
use std::os::fd::RawFd;
use std::ptr::NonNull;

use super::read_at::ReadAt;

/// The first `len` bytes of a file, mapped read-only and shared (see the module docs).
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only memory that nothing writes while it lives (see the
// module docs): sharing `&[u8]` views of it across threads is as safe as sharing a
// `&[u8]` of an immutable heap buffer, and unmapping it from any thread is fine.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`: every access is a read of memory no one writes.
unsafe impl Sync for Mapping {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len).finish()
    }
}

impl Mapping {
    /// Maps the first `len` bytes of the open file `fd` read-only. The descriptor may be
    /// closed afterwards (the mapping holds the file). A file shorter than `len` is refused
    /// (`InvalidData`): its mapping would fault past the end.
    #[cfg(unix)]
    pub fn map(fd: RawFd, len: u64) -> io::Result<Mapping> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        // SAFETY: `fstat` writes into the zeroed `stat` we own; `fd` is only read.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: see above; a bad descriptor is an error return, not undefined behaviour.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if (st.st_size as u64) < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "file is {} bytes, shorter than the {len} to map",
                    st.st_size
                ),
            ));
        }
        if len == 0 {
            // mmap refuses an empty length; an empty mapping needs no memory.
            return Ok(Mapping {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only shared mapping at an address the kernel picks: it
        // aliases no Rust object. The file is at least `len` bytes long (checked above).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points at `len` readable bytes (a live mapping, or a dangling
        // pointer with `len == 0`) that nothing writes while `self` lives (module docs);
        // the slice borrows `self`, so it cannot outlive the mapping.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

// Only Unix maps table files (elsewhere no `Mapping` is ever made: tables are read through
// their files).
#[cfg(unix)]
impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the mapping made in `map`; no slice of it outlives
            // `self` (they borrow it). A failure could only mean a bad range: ignored.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            }
        }
    }
}

impl ReadAt for Mapping {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.bytes().read_at(offset, buf)
    }

    fn mapped(&self) -> Option<&[u8]> {
        Some(self.bytes())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::table::{Comparator, Compression, Table, TableBuilder, TableOptions};

    fn temp_file(label: &str, bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let p = std::env::temp_dir().join(format!(
            "uringdb-mapping-{label}-{}.sst",
            std::process::id()
        ));
        std::fs::write(&p, bytes).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        (p, f)
    }

    /// A table read from its mapping returns exactly what the same file read with `pread`
    /// returns: every get (present and absent keys) and a full scan both ways, for
    /// uncompressed blocks (borrowed from the mapping) and compressed ones (decoded).
    #[test]
    fn a_mapped_table_reads_like_the_file_read_with_pread() {
        for compression in [Compression::None, Compression::Lz4] {
            let mut bytes = Vec::new();
            let mut b = TableBuilder::new(
                &mut bytes,
                TableOptions {
                    block_bytes: 512,
                    compression,
                    ..Default::default()
                },
            )
            .unwrap();
            for i in 0..3000u32 {
                let v = format!("value-{i}-").repeat(1 + (i % 7) as usize);
                b.add(format!("k{i:06}").as_bytes(), v.as_bytes()).unwrap();
            }
            b.finish().unwrap();
            let (path, file) = temp_file(&format!("{compression:?}"), &bytes);
            let len = bytes.len() as u64;
            let map = Mapping::map(file.as_raw_fd(), len).unwrap();
            drop(file); // the mapping holds the file
            assert_eq!(map.bytes(), &bytes[..]);
            let read = Table::open(
                std::fs::File::open(&path).unwrap(),
                len,
                "t.sst",
                Comparator::Bytewise,
            )
            .unwrap();
            let mapped = Table::open(&map, len, "t.sst", Comparator::Bytewise).unwrap();
            for i in 0..3100u32 {
                for k in [format!("k{i:06}"), format!("k{i:06}x")] {
                    assert_eq!(
                        read.get(k.as_bytes()).unwrap(),
                        mapped.get(k.as_bytes()).unwrap(),
                        "{compression:?} {k}"
                    );
                }
            }
            let (mut a, mut b) = (read.iter(), mapped.iter());
            a.seek_to_first().unwrap();
            b.seek_to_first().unwrap();
            let mut n = 0;
            while a.valid() {
                assert!(b.valid());
                assert_eq!((a.key(), a.value()), (b.key(), b.value()));
                a.next().unwrap();
                b.next().unwrap();
                n += 1;
            }
            assert!(!b.valid());
            assert_eq!(n, 3000);
            a.seek_to_last().unwrap();
            b.seek_to_last().unwrap();
            while a.valid() {
                assert_eq!((a.key(), a.value()), (b.key(), b.value()));
                a.prev().unwrap();
                b.prev().unwrap();
            }
            assert!(!b.valid());
            let _ = std::fs::remove_file(&path);
        }
    }

    #[test]
    fn a_file_shorter_than_the_mapping_is_refused() {
        let (path, file) = temp_file("short", &[7u8; 100]);
        let e = Mapping::map(file.as_raw_fd(), 101).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let m = Mapping::map(file.as_raw_fd(), 100).unwrap();
        assert_eq!(m.bytes(), &[7u8; 100][..]);
        let empty = Mapping::map(file.as_raw_fd(), 0).unwrap();
        assert!(empty.bytes().is_empty());
        let _ = std::fs::remove_file(&path);
    }
}
