//! The state of optimistic transactions (see `occ` for how the database uses it): the
//! attempts in flight, the keys written since their snapshots, and the applied records whose
//! snapshots stay pinned until a flush. Knows nothing of `Inner`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::DbError;

/// Prune [`Occ::recent`] when it holds more than this many keys (and twice as many as
/// after the last prune), so that overlapping transactions never let it grow without end.
const RECENT_PRUNE_KEYS_MIN: usize = 4096;

/// The state of optimistic transactions (under `Inner::occ`).
#[derive(Default)]
pub(super) struct Occ {
    pub(super) next_id: u64,
    /// Attempts in flight: id → their snapshot (held until [`Db::end_optimistic`]).
    pub(super) regs: HashMap<u64, u64>,
    /// Key → sequence number of the last applied record that wrote it, for every record
    /// applied above `since` (while tracking).
    pub(super) recent: BTreeMap<Vec<u8>, u64>,
    /// Replay only: keys of transaction records at or below the flushed sequence number
    /// (whether they were applied is in the tables; see the module docs).
    pub(super) uncertain: BTreeMap<Vec<u8>, u64>,
    /// `recent` holds every write above this sequence number.
    pub(super) since: u64,
    /// Size of `recent` after the last prune.
    pub(super) pruned_len: usize,
    /// During replay: the flushed sequence number.
    pub(super) replay: Option<u64>,
    /// A table read that failed while replay decided a transaction (open fails with it).
    pub(super) replay_error: Option<DbError>,
    /// Live decisions not yet collected: record seq → the conflicting key.
    pub(super) aborts: HashMap<u64, Vec<u8>>,
    /// Transaction records applied above the flushed sequence number: (seq, snapshot), in
    /// log order. Each pins its snapshot and keeps the log from snapshot + 1.
    pub(super) applied: VecDeque<(u64, u64)>,
}

impl Occ {
    pub(super) fn note(&mut self, seq: u64, key: &[u8]) {
        match self.recent.get_mut(key) {
            Some(s) => *s = seq,
            None => {
                self.recent.insert(key.to_vec(), seq);
            }
        }
    }

    pub(super) fn prune(&mut self) {
        if self.recent.len() < RECENT_PRUNE_KEYS_MIN.max(2 * self.pruned_len) {
            return;
        }
        let Some(min) = self.regs.values().copied().min() else {
            return;
        };
        self.recent.retain(|_, s| *s > min);
        self.since = self.since.max(min);
        self.pruned_len = self.recent.len();
    }
}
