//! The binding of optimistic transactions (`db.transaction`): an attempt's snapshot and id,
//! and its outcome. The transaction's record goes through `writePacked` like any batch; the
//! engine decides it at apply (see `uringdb_lsm::db::occ`), and `endOptimistic` tells the
//! façade what it decided once the write resolved. No engine logic here.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use uringdb_lsm::db::SnapshotPin;

use crate::db::NativeDb;
use crate::errors::{guard, Failure};
use crate::read::NativeSnapshot;

/// One attempt of an optimistic transaction: its id and its snapshot.
#[napi]
pub struct NativeAttempt {
    id: u64,
    pin: Option<Arc<SnapshotPin>>,
}

#[napi]
impl NativeAttempt {
    /// The attempt's id (for `endOptimistic`).
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.id as f64
    }

    /// A handle on the attempt's snapshot, for its reads (released if this was).
    #[napi]
    pub fn snapshot(&self) -> NativeSnapshot {
        NativeSnapshot {
            pin: self.pin.clone(),
        }
    }

    /// Drops this handle's hold on the snapshot (idempotent; the engine holds its own
    /// until `endOptimistic`).
    #[napi]
    pub fn release(&mut self) {
        self.pin = None;
    }
}

#[napi]
impl NativeDb {
    /// Starts an attempt: takes its snapshot, from which the engine tracks writes.
    #[napi]
    pub fn begin_optimistic(&self, env: Env) -> napi::Result<NativeAttempt> {
        guard(&env, || {
            let a = self.engine()?.db.begin_optimistic();
            Ok(NativeAttempt {
                id: a.id,
                pin: Some(a.snapshot),
            })
        })
    }

    /// Ends the attempt `id`; `seq` is its record's sequence number if its write resolved.
    /// Returns the key whose write since the snapshot refused the record (then nothing of it
    /// was applied), or null.
    #[napi]
    pub fn end_optimistic(
        &self,
        env: Env,
        id: f64,
        seq: Option<f64>,
    ) -> napi::Result<Option<Buffer>> {
        guard(&env, || {
            if !(id >= 1.0 && id.fract() == 0.0) {
                return Err(Failure::invalid_argument(
                    "endOptimistic: id must come from beginOptimistic",
                ));
            }
            let engine = self.engine()?;
            let key = engine.db.end_optimistic(id as u64, seq.map(|s| s as u64));
            Ok(key.map(Buffer::from))
        })
    }
}
