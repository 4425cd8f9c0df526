//! What the writer does at open: walk every segment, cut the newest segment's torn tail,
//! report corruption by file and offset (rules in [`crate::format`]), and find where
//! appending resumes.

use std::path::Path;
use std::sync::Arc;

use uringdb_uring::{File, OpenMode, Vfs};

use crate::error::SinkError;
use crate::format::{encode_segment_header, segment_name, SEGMENT_HEADER_BYTES};
use crate::segment::{durable_witness, list_segments, open_segment, walk, WalkEnd};

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments found.
    pub segments: u64,
    /// Blocks found valid.
    pub blocks: u64,
    /// Lines in them (the next line's sequence number).
    pub lines: u64,
    /// Bytes cut from the newest segment's tail (0: none).
    pub cut_bytes: u64,
    /// The offset the tail was cut at, if it was.
    pub cut_at: Option<u64>,
}

/// Where appending continues.
pub(crate) struct Resume {
    pub file: Arc<dyn File>,
    pub index: u64,
    pub offset: u64,
    pub next_seq: u64,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> SinkError {
    SinkError::io(format!("{what} {}", path.display()), e)
}

/// Creates segment `index` with its header, durably, and makes its name durable.
pub(crate) fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    index: u64,
) -> Result<Arc<dyn File>, SinkError> {
    let path = dir.join(segment_name(index));
    let file = vfs
        .open(&path, OpenMode::CreateReadWrite)
        .map_err(|e| io_err(&path, "creating", e))?;
    file.set_len(0)
        .map_err(|e| io_err(&path, "truncating", e))?;
    file.write_at(0, &[&encode_segment_header(index)], true)
        .map_err(|e| io_err(&path, "writing the header of", e))?;
    vfs.sync_dir(dir)
        .map_err(|e| io_err(dir, "syncing the directory", e))?;
    Ok(file)
}

/// Recovers the store in `dir` for writing.
pub(crate) fn recover(vfs: &dyn Vfs, dir: &Path) -> Result<(Resume, RecoveryReport), SinkError> {
    let segs = list_segments(vfs, dir)?;
    let mut report = RecoveryReport {
        segments: segs.len() as u64,
        ..RecoveryReport::default()
    };
    let Some(&(newest, ref newest_path)) = segs.last() else {
        let file = create_segment(vfs, dir, 0)?;
        report.segments = 1;
        let resume = Resume {
            file,
            index: 0,
            offset: SEGMENT_HEADER_BYTES as u64,
            next_seq: 0,
        };
        return Ok((resume, report));
    };
    let mut next_seq: Option<u64> = None;
    for (index, path) in &segs[..segs.len() - 1] {
        let (file, len) = open_segment(vfs, path, *index, OpenMode::ReadOnly)?;
        let (blocks, end, _) =
            walk(&*file, 0, len, false, next_seq).map_err(|e| io_err(path, "reading", e))?;
        if let WalkEnd::Invalid { offset, why } = end {
            return Err(SinkError::Corruption {
                file: path.clone(),
                offset,
                message: why,
            });
        }
        report.blocks += blocks.len() as u64;
        if let Some(b) = blocks.last() {
            next_seq = Some(b.header.first_seq + u64::from(b.header.line_count));
        }
    }
    // The newest segment: a header that never made it (a crash right after creation)
    // is a fresh segment.
    let raw = vfs
        .open(newest_path, OpenMode::ReadWrite)
        .map_err(|e| io_err(newest_path, "opening", e))?;
    let raw_len = raw
        .len()
        .map_err(|e| io_err(newest_path, "reading the length of", e))?;
    if raw_len <= SEGMENT_HEADER_BYTES as u64
        && open_segment(vfs, newest_path, newest, OpenMode::ReadOnly).is_err()
    {
        drop(raw);
        let file = create_segment(vfs, dir, newest)?;
        report.lines = next_seq.unwrap_or(0);
        let resume = Resume {
            file,
            index: newest,
            offset: SEGMENT_HEADER_BYTES as u64,
            next_seq: report.lines,
        };
        return Ok((resume, report));
    }
    let (file, len) = open_segment(vfs, newest_path, newest, OpenMode::ReadWrite)?;
    let (blocks, end, valid_end) =
        walk(&*file, 0, len, true, next_seq).map_err(|e| io_err(newest_path, "reading", e))?;
    if let WalkEnd::Invalid { offset, why } = end {
        let witness =
            durable_witness(&*file, offset, len).map_err(|e| io_err(newest_path, "reading", e))?;
        if witness.is_some_and(|d| d > offset) {
            return Err(SinkError::Corruption {
                file: newest_path.clone(),
                offset,
                message: format!("{why} (in data a later block says was synced)"),
            });
        }
        file.set_len(offset)
            .map_err(|e| io_err(newest_path, "cutting the torn tail of", e))?;
        report.cut_bytes = len - offset;
        report.cut_at = Some(offset);
    }
    // What survived is on disk now (it was read back); make the cut durable too.
    file.sync_data()
        .map_err(|e| io_err(newest_path, "syncing", e))?;
    report.blocks += blocks.len() as u64;
    if let Some(b) = blocks.last() {
        next_seq = Some(b.header.first_seq + u64::from(b.header.line_count));
    }
    report.lines = next_seq.unwrap_or(0);
    let resume = Resume {
        file,
        index: newest,
        offset: valid_end,
        next_seq: report.lines,
    };
    Ok((resume, report))
}
