//! The log sink's target (`uringdb-logsink`): a whole segment file through the reader (with
//! and without filters), the store summary, then recovery (opening a sink on it) and the
//! reader again, with the checksum re-sealing its mutations need.

use std::fs;

use uringdb_logsink::format::{self as lf, BlockHeader};
use uringdb_logsink::{BackendChoice, LogReader, LogSink, ReadFilter, SinkOptions, SyncMode};

use super::env::Env;
use super::limits::STEPS_MAX;
use super::target::Target;

/// The log sink targets, in `--list` order.
pub(super) fn targets() -> Vec<Target> {
    vec![Target {
        name: "logsink_segment",
        about: "a log sink segment file: LogReader (all, by time, by level), summarize, \
                LogSink::open (recovery: torn tail cut or corruption), read again",
        max_len: 256 << 10,
        declared: declared_raw,
        expansion: 1,
        // The sink's 64 KiB ring, its block buffer, zstd's contexts.
        fixed_bytes: 4 << 20,
        seeds: |_| seeds(),
        run: run_segment,
        fixup: Some(|b| reseal(b)),
    }]
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../logsink/tests/fixtures/v1");
    let whole = fs::read(dir.join(lf::segment_name(0))).expect("the logsink v1 fixture");
    // The whole fixture, and a copy cut inside its last block (a torn tail).
    let torn = whole[..whole.len() - 5].to_vec();
    vec![whole, torn]
}

/// Offsets of what decodes as a block header (8-aligned, after the segment header).
fn headers(input: &[u8]) -> impl Iterator<Item = (usize, BlockHeader)> + '_ {
    (lf::SEGMENT_HEADER_BYTES..input.len().saturating_sub(lf::BLOCK_HEADER_BYTES - 1))
        .step_by(8)
        .filter_map(|at| {
            BlockHeader::decode(&input[at..at + lf::BLOCK_HEADER_BYTES])
                .ok()
                .map(|h| (at, h))
        })
}

/// The largest raw length a block header in the input declares: the reader's
/// decompression buffer.
fn declared_raw(input: &[u8]) -> u64 {
    headers(input)
        .map(|(_, h)| u64::from(h.raw_len))
        .max()
        .unwrap_or(0)
}

/// Re-seals the segment header and every block header (and the payload CRC of each
/// block whose payload lies inside the input).
fn reseal(b: &mut [u8]) {
    if b.len() >= lf::SEGMENT_HEADER_BYTES {
        let h = lf::encode_segment_header(0);
        b[..24].copy_from_slice(&h[..24]);
        b[24..28].copy_from_slice(&h[24..28]);
    }
    let mut at = lf::SEGMENT_HEADER_BYTES;
    while at + lf::BLOCK_HEADER_BYTES <= b.len() {
        if b[at..at + 4] == lf::BLOCK_MAGIC.to_le_bytes() {
            let raw = &b[at..at + lf::BLOCK_HEADER_BYTES];
            let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().expect("4 bytes"));
            let stored_len = u32_at(12) as usize;
            let start = at + lf::BLOCK_HEADER_BYTES;
            let mut header = b[at..start].to_vec();
            if start + stored_len <= b.len() {
                header[72..76]
                    .copy_from_slice(&crc32c::crc32c(&b[start..start + stored_len]).to_le_bytes());
            }
            let crc = crc32c::crc32c(&header[..76]);
            header[76..80].copy_from_slice(&crc.to_le_bytes());
            b[at..start].copy_from_slice(&header);
        }
        at += 8;
    }
}

fn read_all(env: &Env, dir: &std::path::Path, filter: ReadFilter) -> Result<usize, String> {
    let mut r = LogReader::open(env.vfs.clone(), dir, filter).map_err(|e| e.to_string())?;
    let mut lines = 0;
    for _ in 0..STEPS_MAX {
        let (_, n) = r.next_lines(1 << 16).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(lines);
        }
        lines += n as usize;
    }
    Err("the reader did not end".into())
}

fn run_segment(env: &Env, input: &[u8]) -> bool {
    let dir = env.fresh_dir("logsink");
    if fs::write(dir.join(lf::segment_name(0)), input).is_err() {
        return false;
    }
    let before = read_all(env, &dir, ReadFilter::default());
    super::target::assert_no_runaway(&before);
    let _ = read_all(
        env,
        &dir,
        ReadFilter {
            since: Some(1_733_600_001_000),
            min_level: Some(40),
            ..ReadFilter::default()
        },
    );
    let _ = uringdb_logsink::summarize(env.vfs.clone(), &dir);
    let options = SinkOptions {
        backend: BackendChoice::Portable,
        sync: SyncMode::None,
        ring_bytes: 64 << 10,
        block_raw_bytes: 4 << 10,
        ..SinkOptions::default()
    };
    let opened = match LogSink::open_with_vfs(env.vfs.clone(), &dir, options) {
        Ok((sink, report)) => {
            let _ = sink.close();
            Some(report)
        }
        Err(_) => None,
    };
    if opened.is_some() {
        // Recovery checks checksums, not decompression: a crafted block whose checksum
        // holds but whose payload does not decompress is left for the reader, which must
        // name it as corruption (never fail otherwise).
        let after = read_all(env, &dir, ReadFilter::default());
        if let Err(e) = &after {
            assert!(
                e.starts_with("corruption in "),
                "a recovered store fails to read: {e}"
            );
        }
    }
    before.is_ok()
}
