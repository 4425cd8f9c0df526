//! One engine per directory per process. The main thread and worker_threads that open
//! the same directory share it (so the commit queue really has several producers); it
//! closes when the last *handle* closes — counted explicitly, not by `Arc` references,
//! because cursors and in-flight reads also hold the engine and are freed only when the
//! garbage collector gets to them; they must not keep the directory locked. The registry lock is held across open and close,
//! so a directory is never opened twice at once (its LOCK file would refuse the second).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use uringdb_wal::{RecoveryReport, Wal, WalError, WalOptions};

/// A shared open log.
pub(crate) struct Engine {
    pub wal: Wal,
    pub recovery: RecoveryReport,
    options: WalOptions,
    key: PathBuf,
    /// Open handles (guarded by the registry lock).
    handles: std::sync::atomic::AtomicUsize,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Engine>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Weak<Engine>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The first engine-level option that differs, by its JS name.
fn differing_option(a: &WalOptions, b: &WalOptions) -> Option<&'static str> {
    if a.backend != b.backend {
        return Some("ioBackend");
    }
    if a.segment_bytes != b.segment_bytes {
        return Some("segmentBytes");
    }
    if a.ring_bytes != b.ring_bytes {
        return Some("ringBytes");
    }
    if a.max_record_bytes != b.max_record_bytes {
        return Some("maxRecordBytes");
    }
    if a.commit_delay_us != b.commit_delay_us {
        return Some("commitDelayUs");
    }
    if a.recovery != b.recovery {
        return Some("recovery");
    }
    None
}

/// Opens the engine for `dir`, or joins the open one. Returns whether it was opened now.
pub(crate) fn acquire(dir: &Path, options: &WalOptions) -> Result<(Arc<Engine>, bool), WalError> {
    std::fs::create_dir_all(dir).map_err(|e| WalError::Io {
        context: format!("creating {}", dir.display()),
        source: Arc::new(e),
    })?;
    let key = std::fs::canonicalize(dir).map_err(|e| WalError::Io {
        context: format!("resolving {}", dir.display()),
        source: Arc::new(e),
    })?;
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(engine) = reg.get(&key).and_then(Weak::upgrade) {
        if let Some(field) = differing_option(&engine.options, options) {
            return Err(WalError::InvalidOption {
                field,
                message: format!(
                    "{} is already open in this process with a different {field}; every handle of one directory must use the same engine options",
                    dir.display()
                ),
            });
        }
        engine
            .handles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Ok((engine, false));
    }
    let (wal, recovery) = Wal::open(&key, options)?;
    let engine = Arc::new(Engine {
        wal,
        recovery,
        options: options.clone(),
        key: key.clone(),
        handles: std::sync::atomic::AtomicUsize::new(1),
    });
    reg.insert(key, Arc::downgrade(&engine));
    Ok((engine, true))
}

/// Drops a handle; closes the engine (drain, join, unlock) if it was the last handle.
pub(crate) fn release(engine: Arc<Engine>) -> Result<(), WalError> {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if engine
        .handles
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed)
        == 1
    {
        reg.remove(&engine.key);
        match engine.wal.close() {
            // A latched write/fsync failure was already delivered to every append it
            // affected (and to every append after it); closing itself succeeded, so
            // `close()` in JavaScript resolves rather than rethrowing it from a `finally`.
            Err(WalError::Failed(_)) => Ok(()),
            other => other,
        }
    } else {
        Ok(())
    }
}
