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
    .encode()
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
