//! The binding's own background threads. Reads and truncations run on a bounded pool of
//! long-lived reader threads per process (not on libuv's shared pool, which also serves
//! fs, dns and crypto); opens and closes, which may wait on recovery or on joining an
//! engine's threads, each get a short-lived thread.
//!
//! # The reader pool
//!
//! One queue (FIFO) served by up to [`READER_THREADS_MAX`] threads. The pool starts with
//! one thread and grows (never shrinks) to the largest `readerThreads` any database opened
//! in this process asked for ([`ensure_reader_threads`]): threads are a process resource,
//! shared by every database and log handle, like the queue's bound.
//!
//! The reader queue is bounded by [`READER_QUEUE_JOBS_MAX`]: a read takes a [`ReadSlot`]
//! (on the JS thread, before it creates its promise) or is refused with
//! `ERR_URINGDB_BUSY`; the slot is given back when a reader thread takes the job.
//!
//! # Order
//!
//! Jobs of the pool run in any order and concurrently. A handle whose reads must run one
//! at a time in call order (an iterator's batches, a log cursor's reads) submits them
//! through its [`Strand`]: a strand has at most one job in the pool at once (its runner),
//! which runs the strand's oldest job and, if more wait, puts the runner back at the end
//! of the pool's queue (so one busy handle does not hold a thread while others wait).
//!
//! The queue holds at most one entry per slotted job plus one runner per strand with
//! waiting jobs (itself at most the slotted jobs) plus the rare unslotted fallback of
//! [`spawn_named`]: bounded by the slots.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

use crate::errors::{Failure, Res};
use crate::limits::{READER_QUEUE_JOBS_MAX, READER_THREADS_MAX};

type Job = Box<dyn FnOnce() + Send>;

/// Read jobs holding a slot (queued, not yet taken by a reader thread).
static QUEUED_JOBS: AtomicUsize = AtomicUsize::new(0);
/// The most `QUEUED_JOBS` has been (for stats and tests).
static PEAK_JOBS: AtomicUsize = AtomicUsize::new(0);

/// What a reader thread takes from the queue.
enum Entry {
    /// A job, and whether it holds a slot (given back as it leaves the queue).
    Job(bool, Job),
    /// A strand's runner: runs that strand's oldest job.
    Strand(Arc<StrandQueue>),
}

/// The pool: its queue, the signal that the queue is not empty, and its threads.
struct Pool {
    queue: Mutex<VecDeque<Entry>>,
    ready: Condvar,
    /// Threads started (only grows, under `grow`).
    threads: AtomicUsize,
    grow: Mutex<()>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    let p = POOL.get_or_init(|| Pool {
        queue: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        threads: AtomicUsize::new(0),
        grow: Mutex::new(()),
    });
    if p.threads.load(Ordering::Acquire) == 0 {
        grow_to(p, 1);
    }
    p
}

/// Starts threads until the pool has `n` (at most [`READER_THREADS_MAX`]). The first
/// thread must start (a pool without threads would leave every read pending forever); a
/// later one that cannot is reported and the pool stays smaller.
fn grow_to(p: &'static Pool, n: usize) {
    let n = n.clamp(1, READER_THREADS_MAX);
    let _g = p.grow.lock().unwrap_or_else(PoisonError::into_inner);
    while p.threads.load(Ordering::Acquire) < n {
        let i = p.threads.load(Ordering::Acquire);
        let spawned = std::thread::Builder::new()
            .name(format!("uringdb-read-{i}"))
            .spawn(move || serve(p));
        match spawned {
            Ok(_) => p.threads.store(i + 1, Ordering::Release),
            Err(e) if i == 0 => panic!("spawning the uringdb reader thread: {e}"),
            Err(e) => {
                eprintln!("uringdb: could not start reader thread {i} ({e}); {i} serve reads");
                break;
            }
        }
    }
}

/// Grows the reader pool to `n` threads (at most [`READER_THREADS_MAX`]); a smaller `n`
/// than the pool has changes nothing.
pub(crate) fn ensure_reader_threads(n: usize) {
    let p = pool();
    if p.threads.load(Ordering::Acquire) < n.min(READER_THREADS_MAX) {
        grow_to(p, n);
    }
}

/// Threads in the reader pool now.
#[cfg(test)]
pub(crate) fn reader_threads() -> usize {
    pool().threads.load(Ordering::Acquire)
}

/// A reader thread: takes entries in queue order, forever (the pool lives as long as the
/// process).
fn serve(p: &'static Pool) {
    loop {
        let entry = {
            let mut q = p.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                match q.pop_front() {
                    Some(e) => break e,
                    None => q = p.ready.wait(q).unwrap_or_else(PoisonError::into_inner),
                }
            }
        };
        match entry {
            Entry::Job(slotted, job) => run(slotted, job),
            Entry::Strand(s) => s.run_one(),
        }
    }
}

/// Runs one job that just left the queue.
fn run(slotted: bool, job: Job) {
    // The slot is the job's place in the queue: given back as it leaves the queue, before
    // the job settles its promise (so a caller that starts its next read on that
    // settlement finds the place free).
    if slotted {
        QUEUED_JOBS.fetch_sub(1, Ordering::AcqRel);
    }
    // A panicking job must not take its reader thread down with it; the job's promise is
    // rejected by its own guard.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
}

fn push(entry: Entry) {
    let p = pool();
    p.queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push_back(entry);
    p.ready.notify_one();
}

fn send(slotted: bool, job: Job) {
    push(Entry::Job(slotted, job));
}

/// A handle's reads in call order, one at a time (see the module docs).
#[derive(Clone, Default)]
pub(crate) struct Strand(Arc<StrandQueue>);

#[derive(Default)]
struct StrandQueue {
    /// Jobs waiting (each holds a slot), and whether the runner is in the pool's queue or
    /// running (then it, not the submitter, schedules what follows).
    state: Mutex<(VecDeque<Job>, bool)>,
}

impl StrandQueue {
    /// The runner's turn: the oldest job runs; if more wait, the runner goes back to the end
    /// of the pool's queue, else the strand goes idle.
    fn run_one(self: Arc<Self>) {
        let job = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.0.pop_front()
        };
        if let Some(job) = job {
            run(true, job);
        }
        let again = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.1 = !st.0.is_empty();
            st.1
        };
        if again {
            push(Entry::Strand(self));
        }
    }
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
    /// Runs `job` on a reader thread; the slot is given back when the job starts.
    pub(crate) fn submit(mut self, job: impl FnOnce() + Send + 'static) {
        self.used = true;
        send(true, Box::new(job));
    }

    /// Runs `job` on a reader thread after every job submitted earlier to `strand` has
    /// run, and never beside one of them; the slot is given back when the job starts.
    pub(crate) fn submit_in(mut self, strand: &Strand, job: impl FnOnce() + Send + 'static) {
        self.used = true;
        let schedule = {
            let mut st = strand
                .0
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            st.0.push_back(Box::new(job));
            !std::mem::replace(&mut st.1, true)
        };
        if schedule {
            push(Entry::Strand(strand.0.clone()));
        }
    }
}

impl Drop for ReadSlot {
    fn drop(&mut self) {
        if !self.used {
            QUEUED_JOBS.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// (jobs queued now, the most there have been) for the reader pool.
pub(crate) fn reader_queue_jobs() -> (usize, usize) {
    (
        QUEUED_JOBS.load(Ordering::Acquire),
        PEAK_JOBS.load(Ordering::Relaxed),
    )
}

/// Runs `job` on a new named thread; if no thread can be spawned, on a reader thread
/// (later, but never lost: a lost job would leave its promise pending forever — so this
/// fallback, rare and one per open or close, takes no slot and is never refused).
pub(crate) fn spawn_named(name: &str, job: impl FnOnce() + Send + 'static) {
    let slot = Arc::new(Mutex::new(Some(Box::new(job) as Job)));
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
        eprintln!("uringdb: could not spawn a {name} thread ({e}); running it on a reader thread");
        let job = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            send(false, job);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::channel;
    use std::sync::Barrier;
    use std::time::Duration;

    use super::*;

    /// The tests share the process-wide pool and slot count: one at a time (nextest runs
    /// each in a process of its own; `cargo test` runs them on threads of one).
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `readerThreads` is a pool, not a name: four jobs that each wait for the other three
    /// (a barrier of four) all finish, which they cannot on fewer than four threads.
    #[test]
    fn reader_pool_runs_jobs_concurrently_on_the_threads_asked_for() {
        let _s = serial();
        ensure_reader_threads(4);
        assert!(reader_threads() >= 4, "pool of {}", reader_threads());
        ensure_reader_threads(2);
        assert!(reader_threads() >= 4, "the pool never shrinks");
        let barrier = Arc::new(Barrier::new(4));
        let (tx, rx) = channel();
        for i in 0..4 {
            let (b, tx) = (barrier.clone(), tx.clone());
            read_slot().expect("a slot").submit(move || {
                b.wait();
                tx.send(i).expect("the test is waiting");
            });
        }
        let mut done: Vec<i32> = (0..4)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(20))
                    .expect("four jobs meeting at a barrier need four reader threads")
            })
            .collect();
        done.sort_unstable();
        assert_eq!(done, [0, 1, 2, 3]);
    }

    /// An iterator's batches (a strand's jobs) run in call order and never two at once,
    /// however many reader threads there are and whatever else is queued beside them.
    #[test]
    fn strand_jobs_run_one_at_a_time_in_submission_order_on_a_pool() {
        let _s = serial();
        ensure_reader_threads(4);
        const JOBS: usize = 300;
        let strand = Strand::default();
        let running = Arc::new(AtomicBool::new(false));
        let order = Arc::new(Mutex::new(Vec::with_capacity(JOBS)));
        let (tx, rx) = channel();
        for i in 0..JOBS {
            // Unrelated jobs between the strand's, so idle threads are there to take a
            // strand job early if the strand let them.
            read_slot()
                .expect("a slot")
                .submit(|| std::thread::sleep(Duration::from_micros(50)));
            let (running, order, tx) = (running.clone(), order.clone(), tx.clone());
            read_slot().expect("a slot").submit_in(&strand, move || {
                let overlapped = running.swap(true, Ordering::AcqRel);
                std::thread::sleep(Duration::from_micros(100));
                order.lock().expect("not poisoned").push(i);
                running.store(false, Ordering::Release);
                tx.send(overlapped).expect("the test is waiting");
            });
        }
        for _ in 0..JOBS {
            let overlapped = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("every strand job runs");
            assert!(!overlapped, "two jobs of one strand ran at once");
        }
        let order = order.lock().expect("not poisoned").clone();
        assert_eq!(
            order,
            (0..JOBS).collect::<Vec<_>>(),
            "strand jobs reordered"
        );
        // Every slot comes back once the unrelated jobs have run too.
        for _ in 0..200 {
            if reader_queue_jobs().0 == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(reader_queue_jobs().0, 0, "every slot given back");
    }

    /// The reader queue's bound is a promise of the README (`ERR_URINGDB_BUSY`, retryable):
    /// past `READER_QUEUE_JOBS_MAX` queued reads a new one is refused with that code, and a
    /// place given back (a read that never ran, or one the reader thread took) is usable
    /// again.
    #[test]
    fn reader_queue_refuses_past_its_bound_with_a_retryable_busy_error() {
        let _s = serial();
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
