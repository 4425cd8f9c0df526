//! One frame of a commit group as the committer collected it from the ring (what the
//! later stages need without reading the ring's headers again).

use crate::format::Kind;

#[derive(Clone, Copy, Debug)]
pub(super) struct GroupFrame {
    pub(super) pos: u64,
    pub(super) kind: Kind,
    pub(super) len: usize,
    pub(super) total: usize,
    pub(super) sync: bool,
    /// The producer's partial checksum (word0 and payload).
    pub(super) crc: u32,
    /// The producer that appended it, read from the sequence slot when collected (the
    /// slot is overwritten with the sequence number before the write, so failures must not
    /// read it back).
    pub(super) pid: u64,
}
