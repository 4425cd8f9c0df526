//! What the committer carries from one group to the next, and the frames of the group in
//! hand.

use std::sync::Arc;

use crate::segment::Segment;

use super::frame::GroupFrame;
use super::pipeline::Pipeline;

pub(crate) struct CommitterState {
    /// Ring position of the next frame to collect (everything before it is written, or
    /// handed to the pipeline).
    pub(super) next_pos: u64,
    pub(super) segment: Arc<Segment>,
    /// Size of the active segment (its file's length).
    pub(super) segment_bytes: u64,
    /// When the active segment became active (the segment clock), and its write offset
    /// then: its fill rate is measured from there (see `crate::segment`).
    pub(super) activated_ns: u64,
    pub(super) activated_offset: u64,
    /// The size the next segment was asked for at, once asked for.
    pub(super) next_bytes: Option<u64>,
    /// Next write offset in the active segment.
    pub(super) offset: u64,
    /// Last sequence number assigned (and written).
    pub(super) written_seq: u64,
    /// Bytes written but not yet covered by fdatasync.
    pub(super) unsynced_bytes: u64,
    pub(super) frames: Vec<GroupFrame>,
    /// The committer parked since the last group (so the next group may wait
    /// `commit_delay` for company).
    pub(super) idle: bool,
    /// Groups written since open (a clean close then leaves a MARK behind them).
    pub(super) groups_written: u64,
    /// Written groups waiting for their fdatasync and completion, and the sync threads.
    pub(super) pipeline: Arc<Pipeline>,
}

impl CommitterState {
    pub fn new(
        segment: Arc<Segment>,
        segment_bytes: u64,
        offset: u64,
        last_seq: u64,
        now_ns: u64,
        syncs_in_flight: usize,
    ) -> CommitterState {
        CommitterState {
            next_pos: 0,
            segment,
            segment_bytes,
            activated_ns: now_ns,
            activated_offset: offset,
            next_bytes: None,
            offset,
            written_seq: last_seq,
            unsynced_bytes: 0,
            frames: Vec::new(),
            idle: true,
            groups_written: 0,
            pipeline: Arc::new(Pipeline::new(syncs_in_flight)),
        }
    }
}
