//! A forward-reading window over a file, shared by recovery and readers: frames are
//! parsed from an in-memory chunk, refilled from the file as needed.

use crate::limits::IO_CHUNK_BYTES;
use std::sync::Arc;
use uringdb_uring::File;

pub(crate) struct Window {
    pub file: Arc<dyn File>,
    buf: Vec<u8>,
    buf_off: u64,
}

impl Window {
    pub fn new(file: Arc<dyn File>) -> Window {
        Window {
            file,
            buf: Vec::new(),
            buf_off: 0,
        }
    }

    /// Drops the cached chunk (the file may have grown since it was read).
    pub fn invalidate(&mut self) {
        self.buf.clear();
    }

    /// The bytes `[off, off + n)`, shorter only at end of file.
    ///
    /// Allocates at most what the file holds from `off` (or one chunk): `n` often comes
    /// from a frame's length field, which damage can set to 128 MiB in a small file.
    pub fn get(&mut self, off: u64, n: usize) -> std::io::Result<&[u8]> {
        let cached = off >= self.buf_off && off + n as u64 <= self.buf_off + self.buf.len() as u64;
        if !cached {
            let left = self.file.len()?.saturating_sub(off);
            let want = n
                .min(usize::try_from(left).unwrap_or(usize::MAX))
                .max(IO_CHUNK_BYTES / 4);
            self.buf.resize(want, 0);
            let mut got = 0;
            while got < want {
                let r = self.file.read_at(off + got as u64, &mut self.buf[got..])?;
                if r == 0 {
                    break;
                }
                got += r;
            }
            self.buf.truncate(got);
            self.buf_off = off;
        }
        let start = (off - self.buf_off) as usize;
        let end = (start + n).min(self.buf.len());
        Ok(&self.buf[start.min(end)..end])
    }
}
