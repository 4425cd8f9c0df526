//! The binding's own background threads. Reads and truncations run on one long-lived
//! reader thread per process (not on libuv's shared pool, which also serves fs, dns and
//! crypto); opens and closes, which may wait on recovery or on joining an engine's
//! threads, each get a short-lived thread.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

fn queue() -> &'static Mutex<Sender<Job>> {
    static Q: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    Q.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("uringdb-read".into())
            .spawn(move || {
                for job in rx {
                    // A panicking job must not take the reader thread down with it; the
                    // job's promise is rejected by its own guard.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("spawning the uringdb reader thread");
        Mutex::new(tx)
    })
}

/// Runs `job` on the reader thread.
pub(crate) fn submit(job: impl FnOnce() + Send + 'static) {
    let q = queue().lock().unwrap_or_else(|e| e.into_inner());
    // The receiver lives as long as the process: sending cannot fail.
    let _ = q.send(Box::new(job));
}

/// Runs `job` on a new named thread; if no thread can be spawned, on the reader thread
/// (later, but never lost: a lost job would leave its promise pending forever).
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
            submit(job);
        }
    }
}
