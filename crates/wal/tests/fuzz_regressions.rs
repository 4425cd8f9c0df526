//! Regressions found by the fuzz harness (`crates/fuzz`), one test per bug, named after it.
//! The failing inputs themselves are kept in `crates/fuzz/regressions/<target>/` and
//! replayed by `cargo test -p uringdb-fuzz`.
mod common;
use common::*;
use uringdb_wal::format::{segment_file_name, HeaderError, SegmentHeader};
use uringdb_wal::{BackendChoice, Wal, WalError, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        backend: BackendChoice::Portable,
        ..small_options()
    }
}

/// A header with flags set (bytes 12..16) and a checksum over them: a format this code
/// does not know. Found by `wal_segment_header` (re-encoding an accepted header gave other
/// bytes: the flags were silently dropped).
fn header_with_flags(flags: u32) -> [u8; 40] {
    let mut h = SegmentHeader {
        number: 1,
        first_seq: 1,
    }
    .encode();
    h[12..16].copy_from_slice(&flags.to_le_bytes());
    let crc = crc32c::crc32c(&h[..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

#[test]
fn segment_header_with_unknown_flags_is_rejected() {
    let h = header_with_flags(0x9d0a_6f00);
    assert_eq!(
        SegmentHeader::decode(&h),
        Err(HeaderError::UnknownFlags(0x9d0a_6f00))
    );
    // Through recovery: corruption naming the segment and the flags' offset.
    let dir = TempDir::new("fuzz-flags");
    let mut seg = h.to_vec();
    seg.resize(1 << 20, 0);
    std::fs::write(dir.path().join(segment_file_name(1)), &seg).unwrap();
    match Wal::open(dir.path(), &opts()) {
        Err(WalError::Corruption { file, offset, .. }) => {
            assert_eq!(file, dir.path().join(segment_file_name(1)));
            assert_eq!(offset, 12);
        }
        other => panic!("expected corruption at offset 12, got {other:?}"),
    }
}

/// A segment whose (intact) header says its first record is number 0. Sequence numbers
/// start at 1 (an empty log's last sequence number is 0), so this is corruption; recovery
/// computed "last = first - 1" and overflowed. Found by `wal_recovery`: the 40-byte header
/// alone, kept as `crates/fuzz/regressions/wal_recovery/first-seq-zero.bin`.
#[test]
fn segment_with_first_seq_zero_is_corruption_not_a_panic() {
    let h = SegmentHeader {
        number: 1,
        first_seq: 0,
    }
    .encode();
    let dir = TempDir::new("fuzz-seq0");
    std::fs::write(dir.path().join(segment_file_name(1)), h).unwrap();
    match Wal::open(dir.path(), &opts()) {
        Err(WalError::Corruption { file, offset, .. }) => {
            assert_eq!(file, dir.path().join(segment_file_name(1)));
            assert_eq!(offset, 24);
        }
        other => panic!("expected corruption at offset 24, got {other:?}"),
    }
}

/// A segment whose header and one frame both say sequence number u64::MAX: recovery
/// counted "next expected = seq + 1" and overflowed (and a log that did recover there
/// could never append). Sequence numbers are bounded by `limits::SEQ_MAX` (2^63 - 1), so
/// this is corruption at the header's first_seq. Crafted from reading recovery's
/// arithmetic, confirmed with the harness (kept as
/// `crates/fuzz/regressions/wal_scan/first-seq-u64-max.bin`).
#[test]
fn segment_with_first_seq_at_u64_max_is_corruption_not_a_panic() {
    let mut seg = SegmentHeader {
        number: 1,
        first_seq: u64::MAX,
    }
    .encode_as(2, 0)
    .to_vec();
    uringdb_wal::format::encode_frame(
        &mut seg,
        uringdb_wal::format::Kind::Full,
        u64::MAX,
        b"\xb1",
        false,
    );
    seg.resize(4096, 0);
    let dir = TempDir::new("fuzz-seqmax");
    std::fs::write(dir.path().join(segment_file_name(1)), &seg).unwrap();
    match Wal::open(dir.path(), &opts()) {
        Err(WalError::Corruption { file, offset, .. }) => {
            assert_eq!(file, dir.path().join(segment_file_name(1)));
            assert_eq!(offset, 24);
        }
        other => panic!("expected corruption at offset 24, got {other:?}"),
    }
}

/// A Vfs that counts the bytes read through it and fails reads past a budget, so that a
/// recovery doing far too much work fails fast (an I/O error) instead of running for hours.
mod read_budget {
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use uringdb_uring::{BackendKind, File, LockGuard, OpenMode, Vfs, WriteTiming};

    #[derive(Debug)]
    pub struct BudgetVfs {
        pub inner: Arc<dyn Vfs>,
        pub read_bytes: Arc<AtomicU64>,
        pub budget_bytes: u64,
    }

    #[derive(Debug)]
    struct BudgetFile {
        inner: Arc<dyn File>,
        read_bytes: Arc<AtomicU64>,
        budget_bytes: u64,
    }

    impl Vfs for BudgetVfs {
        fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
            Ok(Arc::new(BudgetFile {
                inner: self.inner.open(path, mode)?,
                read_bytes: self.read_bytes.clone(),
                budget_bytes: self.budget_bytes,
            }))
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            self.inner.remove_file(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.inner.rename(from, to)
        }
        fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
            self.inner.list_dir(dir)
        }
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            self.inner.create_dir_all(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.inner.sync_dir(dir)
        }
        fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
            self.inner.lock(path)
        }
        fn kind(&self) -> BackendKind {
            self.inner.kind()
        }
    }

    impl File for BudgetFile {
        fn write_at(&self, offset: u64, bufs: &[&[u8]], durable: bool) -> io::Result<WriteTiming> {
            self.inner.write_at(offset, bufs, durable)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.inner.sync_data()
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            let before = self
                .read_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            if before + buf.len() as u64 > self.budget_bytes {
                return Err(io::Error::other("read budget exceeded"));
            }
            self.inner.read_at(offset, buf)
        }
        fn allocate(&self, len: u64) -> io::Result<()> {
            self.inner.allocate(len)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
    }
}

/// A crash tore the last record, a large one, in a big segment. Looking for a valid
/// frame after the tear, recovery tried every 8-aligned word of the torn payload whose
/// bits parse as a frame header, and read and checksummed as many bytes as each one's
/// length field claimed. On random payload bytes (compressed or encrypted values) about a
/// quarter of the words parse and claim megabytes each: the checksum work grows with the
/// square of the segment (hours for an 8 MiB record in a 64 MiB segment). On a payload
/// whose words each claim a frame ending a little further on (bytes anyone who can store
/// a value can write), every candidate is also a fresh multi-MiB read: that variant is
/// pinned here, because reads can be counted and CPU time cannot. A frame after the
/// damage must carry a sequence number the gap could hold; random or crafted payload words
/// almost never do, so the search is linear. Found by reading `find_valid_frame` while
/// writing the fuzz targets (the 1 MiB fuzz segments keep the cost below the watchdog).
#[test]
fn recovery_of_a_torn_record_reads_the_segment_a_bounded_number_of_times() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use uringdb_wal::format::{encode_frame, word0, Kind, FRAME_HEADER_BYTES};
    let segment_bytes: u64 = 16 << 20;
    // A version 2 segment (unsalted frames): the search's cost does not depend on it.
    let mut seg = SegmentHeader {
        number: 1,
        first_seq: 1,
    }
    .encode_as(2, 0)
    .to_vec();
    for seq in 1..=3u64 {
        encode_frame(&mut seg, Kind::Full, seq, b"\xb1small", true);
    }
    // Record 4 claims 4 MiB; only its first 2 MiB reached the disk. Payload word j (at
    // p_j) reads as a FULL frame header ending at p_0 + 4 MiB + 16 j: each ends past the
    // one before.
    let torn_at = seg.len();
    let payload_at = torn_at + FRAME_HEADER_BYTES;
    let mut payload = Vec::with_capacity(4 << 20);
    for j in 0..(2 << 20) / 8 {
        let len = (4 << 20) + 8 * j - FRAME_HEADER_BYTES;
        payload.extend_from_slice(&word0(Kind::Full, len, false).to_le_bytes());
        payload.extend_from_slice(&[0; 4]);
    }
    payload.resize(4 << 20, 0x5a);
    encode_frame(&mut seg, Kind::Full, 4, &payload, true);
    seg.truncate(payload_at + (2 << 20));
    seg.resize(segment_bytes as usize, 0);
    let dir = TempDir::new("fuzz-torn");
    std::fs::write(dir.path().join(segment_file_name(1)), &seg).unwrap();

    let read_bytes = Arc::new(AtomicU64::new(0));
    let (inner, _) = uringdb_uring::open_vfs(BackendChoice::Portable).unwrap();
    let vfs = Arc::new(read_budget::BudgetVfs {
        inner,
        read_bytes: read_bytes.clone(),
        // A linear recovery reads the segment a few times (scan, search, tail cut).
        budget_bytes: 8 * segment_bytes,
    });
    let opts = WalOptions {
        segment_bytes,
        ..opts()
    };
    let opened = Wal::open_on(dir.path(), &opts, vfs);
    let read = read_bytes.load(Ordering::Relaxed);
    match opened {
        Ok((wal, report)) => {
            assert_eq!(report.last_seq, 3, "the torn record is cut, the rest kept");
            drop(wal);
        }
        Err(e) => panic!(
            "recovery failed after reading {read} bytes of a {segment_bytes}-byte segment: {e}"
        ),
    }
}
