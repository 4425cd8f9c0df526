//! The binding's own background threads. Reads and truncations run on one long-lived
//! reader thread per process (not on libuv's shared pool, which also serves fs, dns and
//! crypto); opens and closes, which may wait on recovery or on joining an engine's
//! threads, each get a short-lived thread.
//!
//! The reader queue is bounded by [`READER_QUEUE_JOBS_MAX`]: a read takes a [`ReadSlot`]
//! (on the JS thread, before it creates its promise) or is refused with
//! `ERR_URINGDB_BUSY`; the slot is given back when the reader thread takes the job.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::errors::{Failure, Res};
use crate::limits::READER_QUEUE_JOBS_MAX;

type Job = Box<dyn FnOnce() + Send>;

/// Read jobs holding a slot (queued, not yet taken by the reader thread).
static QUEUED_JOBS: AtomicUsize = AtomicUsize::new(0);
/// The most `QUEUED_JOBS` has been (for stats and tests).
static PEAK_JOBS: AtomicUsize = AtomicUsize::new(0);

fn queue() -> &'static Mutex<Sender<(bool, Job)>> {
    static Q: OnceLock<Mutex<Sender<(bool, Job)>>> = OnceLock::new();
    Q.get_or_init(|| {
        let (tx, rx) = channel::<(bool, Job)>();
        std::thread::Builder::new()
            .name("uringdb-read".into())
            .spawn(move || {
                for (slotted, job) in rx {
                    // The slot is the job's place in the queue: given back as it leaves
                    // the queue, before the job settles its promise (so a caller that
                    // starts its next read on that settlement finds the place free).
                    if slotted {
                        QUEUED_JOBS.fetch_sub(1, Ordering::AcqRel);
                    }
                    // A panicking job must not take the reader thread down with it; the
                    // job's promise is rejected by its own guard.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("spawning the uringdb reader thread");
        Mutex::new(tx)
    })
}

fn send(slotted: bool, job: Job) {
    let q = queue().lock().unwrap_or_else(|e| e.into_inner());
    // The receiver lives as long as the process: sending cannot fail.
    let _ = q.send((slotted, job));
}

/// A place in the reader queue, taken before a read creates its promise.
pub(crate) struct ReadSlot {
    used: bool,
}

/// Takes a place in the reader queue, or refuses with the retryable `ERR_URINGDB_BUSY`
/// when [`READER_QUEUE_JOBS_MAX`] jobs are queued.
pub(crate) fn read_slot() -> Res<ReadSlot> {
    let taken = QUEUED_JOBS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        (n < READER_QUEUE_JOBS_MAX).then_some(n + 1)
    });
    match taken {
        Ok(n) => {
            PEAK_JOBS.fetch_max(n + 1, Ordering::Relaxed);
            Ok(ReadSlot { used: false })
        }
        Err(n) => Err(Failure::coded(
            "ERR_URINGDB_BUSY",
            format!(
                "the reader queue is full ({n} jobs; READER_QUEUE_JOBS_MAX is {READER_QUEUE_JOBS_MAX}): retry once earlier reads have completed"
            ),
        )),
    }
}

impl ReadSlot {
    /// Runs `job` on the reader thread; the slot is given back when the job starts.
    pub(crate) fn submit(mut self, job: impl FnOnce() + Send + 'static) {
        self.used = true;
        send(true, Box::new(job));
    }
}

impl Drop for ReadSlot {
    fn drop(&mut self) {
        if !self.used {
            QUEUED_JOBS.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// (jobs queued now, the most there have been) for the reader thread.
pub(crate) fn reader_queue_jobs() -> (usize, usize) {
    (
        QUEUED_JOBS.load(Ordering::Acquire),
        PEAK_JOBS.load(Ordering::Relaxed),
    )
}

/// Runs `job` on a new named thread; if no thread can be spawned, on the reader thread
/// (later, but never lost: a lost job would leave its promise pending forever — so this
/// fallback, rare and one per open or close, takes no slot and is never refused).
pub(crate) fn spawn_named(name: &str, job: impl FnOnce() + Send + 'static) {
    let slot = std::sync::Arc::new(Mutex::new(Some(Box::new(job) as Job)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let job = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(job) = job {
                job();
            }
        });
    if let Err(e) = spawned {
        eprintln!(
            "uringdb: could not spawn a {name} thread ({e}); running it on the reader thread"
        );
        let job = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            send(false, job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader queue's bound is a promise of the README (`ERR_URINGDB_BUSY`, retryable):
    /// past `READER_QUEUE_JOBS_MAX` queued reads a new one is refused with that code, and a
    /// place given back (a read that never ran, or one the reader thread took) is usable
    /// again.
    #[test]
    fn reader_queue_refuses_past_its_bound_with_a_retryable_busy_error() {
        let mut held: Vec<ReadSlot> = (0..READER_QUEUE_JOBS_MAX)
            .map(|i| read_slot().unwrap_or_else(|e| panic!("slot {i}: {}", e.0.message)))
            .collect();
        assert_eq!(reader_queue_jobs().0, READER_QUEUE_JOBS_MAX);
        let refused = read_slot().err().expect("a slot past the bound");
        assert_eq!(refused.0.code, "ERR_URINGDB_BUSY", "{}", refused.0.message);
        held.pop();
        let again = read_slot().expect("a slot given back is usable again");
        held.push(again);
        drop(held);
        assert_eq!(reader_queue_jobs().0, 0, "every slot given back");
    }
}
