//! Forming a commit group: the frames published since the last group, up to
//! `group_bytes_max` and the active segment's room, atomic batches kept whole (step 1).

use crate::format::{self, Kind};
use crate::shared::Shared;

use super::frame::GroupFrame;
use super::roll::ask_next;
use super::state::CommitterState;

/// Collects published frames into `st.frames`.
pub(super) fn collect(s: &Shared, st: &mut CommitterState) {
    st.frames.clear();
    collect_more(s, st);
}

pub(super) fn collect_more(s: &Shared, st: &mut CommitterState) {
    let mut pos = st
        .frames
        .last()
        .map_or(st.next_pos, |f| f.pos + f.total as u64);
    let mut bytes: usize = st
        .frames
        .iter()
        .filter(|f| f.kind.is_on_disk())
        .map(|f| f.total)
        .sum();
    // A group ends at the active segment's end, so segments fill up whatever the grouping:
    // what does not fit goes into the next group, which rolls. Only a group whose first
    // entry does not fit rolls, and may then fill the whole new segment (as sized for the
    // rate; a first entry larger than that grows it, and then goes alone).
    let seg_room = (st.segment_bytes.saturating_sub(st.offset) as usize)
        .saturating_sub(format::SEGMENT_RESERVED_BYTES);
    let mut next_payload: Option<usize> = None;
    let mut rolling = bytes > seg_room;
    let mut in_batch = false;
    while let Some(p) = s.ring.peek(pos) {
        let disk = p.kind.is_on_disk();
        if disk && !in_batch {
            // An atomic batch is one entry: measured whole (its frames are all published
            // once its first one is).
            let entry = if p.kind == Kind::First {
                batch_bytes(s, pos)
            } else {
                p.total
            };
            if bytes == 0 {
                rolling = entry > seg_room;
            } else {
                let room = if rolling {
                    match next_payload {
                        Some(p) => p,
                        None => {
                            let p = format::segment_record_room(ask_next(s, st) as usize);
                            next_payload = Some(p);
                            p
                        }
                    }
                } else {
                    seg_room
                };
                if bytes + entry > s.limits.group_bytes_max.min(room) {
                    break;
                }
            }
        }
        st.frames.push(GroupFrame {
            pos,
            kind: p.kind,
            len: p.len,
            total: p.total,
            sync: p.sync,
            crc: p.crc,
            pid: if p.kind == Kind::Pad {
                u64::MAX
            } else {
                s.ring.read_u64(pos + 8)
            },
        });
        if disk {
            bytes += p.total;
        }
        in_batch = matches!(p.kind, Kind::First | Kind::Middle);
        pos += p.total as u64;
    }
    debug_assert!(!in_batch, "batches are published whole");
}

/// Framed bytes of the atomic batch whose FIRST frame is at `pos`.
fn batch_bytes(s: &Shared, mut pos: u64) -> usize {
    let mut total = 0;
    while let Some(p) = s.ring.peek(pos) {
        if p.kind != Kind::Pad {
            total += p.total;
            if p.kind == Kind::Last {
                break;
            }
        }
        pos += p.total as u64;
    }
    total
}

pub(super) fn group_disk_bytes(st: &CommitterState) -> u64 {
    st.frames
        .iter()
        .filter(|f| f.kind.is_on_disk())
        .map(|f| f.total as u64)
        .sum()
}
