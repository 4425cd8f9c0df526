//! The table-file cache. Every table is read through a file descriptor, and a database with
//! thousands of tables used to hold thousands open: under `ulimit -n 256` it stopped and could
//! not even be reopened (issue 8). Now at most `capacity` table files are open at once; beyond
//! that the least recently used one is closed, and reopened on its next read — after checking
//! that it is still the same file (its length and its footer bytes), since it was closed.
//!
//! On the real backends a table's file is mapped into memory when it is opened
//! ([`VfsFile::open`], see `table/mapping.rs`); a mapped table reads from its mapping and
//! keeps no descriptor here at all, so this cache only holds the files of a backend that
//! offers no descriptor (the fault backend of the tests) or of a file too short to map.
//!
//! Concurrency: one mutex over the map and the recency order; files are opened and verified
//! outside it (two threads may open the same file at once: the first insert wins, the other
//! descriptor is closed). A read holds its own `Arc` of the file while it runs, so closing an
//! evicted file waits for reads already in progress on it: the descriptors open can exceed
//! `capacity` by the reads in flight at the moment, never more.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use uringdb_uring::{File, OpenMode, Vfs};

use crate::table::{Mapping, ReadAt, FOOTER_BYTES};

/// At most `capacity` table files open, least recently used closed first.
pub(crate) struct TableFiles {
    vfs: Arc<dyn Vfs>,
    capacity: usize,
    state: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    /// Table number -> (open file, its last-use tick).
    files: HashMap<u64, (Arc<dyn File>, u64)>,
    /// Last-use tick -> table number: the first entry is the least recently used.
    order: BTreeMap<u64, u64>,
    tick: u64,
}

impl TableFiles {
    pub fn new(vfs: Arc<dyn Vfs>, capacity: usize) -> Arc<TableFiles> {
        assert!(capacity > 0, "the table-file cache needs room for one file");
        Arc::new(TableFiles {
            vfs,
            capacity,
            state: Mutex::new(Lru::default()),
        })
    }

    /// The I/O layer the files are opened through.
    pub fn vfs(&self) -> &Arc<dyn Vfs> {
        &self.vfs
    }

    /// Files open now (at most the capacity).
    pub fn open_count(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .len()
    }

    /// The open file of table `number`, marked most recently used.
    fn lookup(&self, number: u64) -> Option<Arc<dyn File>> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.tick += 1;
        let tick = s.tick;
        let (file, last) = s.files.get_mut(&number)?;
        let old = std::mem::replace(last, tick);
        let file = file.clone();
        s.order.remove(&old);
        s.order.insert(tick, number);
        Some(file)
    }

    /// Caches `file` for table `number` (or returns the one another thread cached first),
    /// closing the least recently used files beyond the capacity.
    fn insert(&self, number: u64, file: Arc<dyn File>) -> Arc<dyn File> {
        let mut evicted = Vec::new();
        let file = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.tick += 1;
            let tick = s.tick;
            if let Some((existing, last)) = s.files.get_mut(&number) {
                let old = std::mem::replace(last, tick);
                let existing = existing.clone();
                s.order.remove(&old);
                s.order.insert(tick, number);
                existing
            } else {
                s.files.insert(number, (file.clone(), tick));
                s.order.insert(tick, number);
                while s.files.len() > self.capacity {
                    let Some((_, victim)) = s.order.pop_first() else {
                        break;
                    };
                    if let Some((f, _)) = s.files.remove(&victim) {
                        evicted.push(f);
                    }
                }
                file
            }
        };
        // Closed here, outside the lock (or when the last read using them ends).
        drop(evicted);
        file
    }

    /// Closes table `number`'s file if it is open (the table is gone).
    pub fn forget(&self, number: u64) {
        let f = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let f = s.files.remove(&number);
            if let Some((_, tick)) = &f {
                let tick = *tick;
                s.order.remove(&tick);
            }
            f
        };
        drop(f);
    }
}

/// One table's file, read through the engine's I/O layer and opened on demand through the
/// [`TableFiles`] cache.
pub(crate) struct VfsFile {
    number: u64,
    path: PathBuf,
    file_bytes: u64,
    files: Arc<TableFiles>,
    /// The last [`FOOTER_BYTES`] of the file as first opened: a reopened file must match.
    footer: OnceLock<[u8; FOOTER_BYTES]>,
    /// The file mapped into memory, when its backend offers a descriptor
    /// ([`uringdb_uring::File::raw_fd`]; not the fault backend): then every read is served
    /// from the mapping and the file holds no descriptor in the cache.
    map: Option<Mapping>,
}

impl std::fmt::Debug for VfsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfsFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VfsFile {
    /// Opens table `number` at `path`, whose manifest size is `file_bytes`: mapped into
    /// memory where the backend allows it (and the file is as long as the manifest says),
    /// else into the cache of open files. Errors are the open's own (`NotFound` for a
    /// missing file).
    pub fn open(
        files: &Arc<TableFiles>,
        number: u64,
        path: PathBuf,
        file_bytes: u64,
    ) -> io::Result<VfsFile> {
        VfsFile::open_with(files, number, path, file_bytes, true)
    }

    /// [`VfsFile::open`], mapping the file only if `map` (tests compare both readers).
    pub fn open_with(
        files: &Arc<TableFiles>,
        number: u64,
        path: PathBuf,
        file_bytes: u64,
        map: bool,
    ) -> io::Result<VfsFile> {
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut f = VfsFile {
            number,
            path,
            file_bytes,
            files: files.clone(),
            footer: OnceLock::new(),
            map: None,
        };
        let file = f.file()?;
        // Only Unix maps table files; elsewhere every block is read through the file.
        #[cfg(not(unix))]
        let _ = (map, file);
        #[cfg(unix)]
        if let Some(fd) = file.raw_fd().filter(|_| map) {
            // A file too short to map is read through the descriptor, whose reads report
            // where it ends (as corruption of the table).
            if let Ok(m) = Mapping::map(fd, file_bytes) {
                f.map = Some(m);
                drop(file);
                files.forget(number);
            }
        }
        Ok(f)
    }

    fn file(&self) -> io::Result<Arc<dyn File>> {
        if let Some(f) = self.files.lookup(self.number) {
            return Ok(f);
        }
        let f = self.files.vfs.open(&self.path, OpenMode::ReadOnly)?;
        self.verify(&*f)?;
        Ok(self.files.insert(self.number, f))
    }

    /// The first open records the footer bytes (where the manifest's size puts them; a file
    /// too short is the table reader's to report, as corruption). A reopen checks that the
    /// file is still that table: the manifest's length and the same footer bytes. A mismatch
    /// is `InvalidData`, which the table reader reports as corruption of this file.
    fn verify(&self, f: &dyn File) -> io::Result<()> {
        let invalid = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("table file {} {what}", self.path.display()),
            )
        };
        let Some(at) = self.file_bytes.checked_sub(FOOTER_BYTES as u64) else {
            return Ok(()); // too short for a footer: the table's open reports it
        };
        let first = self.footer.get().is_none();
        if !first {
            let len = f.len()?;
            if len != self.file_bytes {
                return Err(invalid(format!(
                    "is {len} bytes since it was reopened, the manifest says {}",
                    self.file_bytes
                )));
            }
        }
        let mut tail = [0u8; FOOTER_BYTES];
        let mut done = 0;
        while done < tail.len() {
            match f.read_at(at + done as u64, &mut tail[done..]) {
                Ok(0) if first => return Ok(()), // short: the table's open reports it
                Ok(0) => return Err(invalid(format!("ends inside its footer at {at}"))),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if *self.footer.get_or_init(|| tail) != tail {
            return Err(invalid(format!(
                "changed since it was opened (its footer at {at} differs): it was replaced"
            )));
        }
        Ok(())
    }
}

impl ReadAt for VfsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match &self.map {
            Some(m) => m.read_at(offset, buf),
            None => self.file()?.read_at(offset, buf),
        }
    }

    fn mapped(&self) -> Option<&[u8]> {
        self.map.as_ref().map(Mapping::bytes)
    }
}

impl Drop for VfsFile {
    fn drop(&mut self) {
        self.files.forget(self.number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(label: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "uringdb-table-files-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn write(path: &std::path::Path, byte: u8, len: usize) {
        std::fs::write(path, vec![byte; len]).unwrap();
    }

    #[test]
    fn at_most_capacity_open_least_recently_used_closed_first_reopened_on_demand() {
        let dir = temp("lru");
        let vfs = uringdb_uring::open_vfs(uringdb_uring::BackendChoice::Portable)
            .unwrap()
            .0;
        let files = TableFiles::new(vfs, 3);
        let tables: Vec<VfsFile> = (0..8u64)
            .map(|n| {
                let p = dir.join(format!("{n}.sst"));
                write(&p, n as u8, 100);
                let t = VfsFile::open_with(&files, n, p, 100, false).unwrap();
                assert!(files.open_count() <= 3);
                t
            })
            .collect();
        assert_eq!(files.open_count(), 3);
        // Every table still reads (reopened as needed), and the cap holds throughout.
        for round in 0..3 {
            for (n, t) in tables.iter().enumerate() {
                let mut b = [0u8; 10];
                assert_eq!(t.read_at(round * 10, &mut b).unwrap(), 10);
                assert_eq!(b, [n as u8; 10]);
                assert!(files.open_count() <= 3);
            }
        }
        // The most recently used stay: 5, 6, 7 are open; reading 7 opens nothing new.
        {
            let s = files.state.lock().unwrap();
            let mut open: Vec<u64> = s.files.keys().copied().collect();
            open.sort_unstable();
            assert_eq!(open, [5, 6, 7]);
        }
        drop(tables);
        assert_eq!(files.open_count(), 0, "dropped tables close their files");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_replaced_while_closed_is_refused_on_reopen() {
        let dir = temp("replaced");
        let vfs = uringdb_uring::open_vfs(uringdb_uring::BackendChoice::Portable)
            .unwrap()
            .0;
        let files = TableFiles::new(vfs, 1);
        let (p0, p1) = (dir.join("0.sst"), dir.join("1.sst"));
        write(&p0, 1, 200);
        write(&p1, 2, 200);
        let t0 = VfsFile::open_with(&files, 0, p0.clone(), 200, false).unwrap();
        let _t1 = VfsFile::open_with(&files, 1, p1, 200, false).unwrap(); // closes 0
        write(&p0, 9, 200); // same length, other bytes
        let e = t0.read_at(0, &mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("0.sst"), "names the file: {e}");
        write(&p0, 1, 150); // other length
        let e = t0.read_at(0, &mut [0u8; 4]).unwrap_err();
        assert!(e.to_string().contains("is 150 bytes"), "{e}");
        write(&p0, 1, 200); // the original again: reads work
        let mut b = [0u8; 4];
        assert_eq!(t0.read_at(0, &mut b).unwrap(), 4);
        assert_eq!(b, [1; 4]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
