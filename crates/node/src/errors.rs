//! The one place where engine errors become JavaScript errors.
//!
//! An engine error becomes a [`NativeError`]: a typed object (its TypeScript interface is
//! generated into `binding.d.ts`) with a stable `code`, the message, and the details that
//! apply (`field`, `file`/`offset`, `errno`, `cause`, ...). Completion callbacks receive it
//! as a plain object; a throw or a rejection is a JavaScript `Error` named
//! [`NATIVE_ERROR_NAME`] carrying the same properties. The façade's `toUringdbError`
//! (src/errors.ts) turns either into a `UringdbError`. Codes are stable API.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use uringdb_logsink::SinkError;
use uringdb_lsm::db::DbError;
use uringdb_lsm::manifest::ManifestError;
use uringdb_lsm::table::TableError;
use uringdb_wal::WalError;

/// The `name` of every `Error` the binding throws or rejects with, so that the façade can
/// tell them from argument errors raised by napi itself.
pub const NATIVE_ERROR_NAME: &str = "UringdbNativeError";

/// An engine error as JavaScript receives it.
#[napi(object, object_from_js = false)]
#[derive(Clone, Debug, Default)]
pub struct NativeError {
    /// Stable code: `ERR_URINGDB_*`, or an OS error name such as `ENOSPC`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// `ERR_URINGDB_INVALID_OPTION`: the option's name as the user spells it.
    pub field: Option<String>,
    /// `ERR_URINGDB_CORRUPTION`: the damaged file.
    pub file: Option<String>,
    /// `ERR_URINGDB_CORRUPTION`: the byte offset of the damage in `file`.
    pub offset: Option<f64>,
    /// OS errors: the errno.
    pub errno: Option<i32>,
    /// `ERR_URINGDB_RECORD_TOO_LARGE`: the record's size.
    pub bytes: Option<f64>,
    /// `ERR_URINGDB_RECORD_TOO_LARGE`: the largest accepted.
    pub limit: Option<f64>,
    /// `ERR_URINGDB_TRUNCATED`: the sequence number asked for.
    pub requested: Option<f64>,
    /// `ERR_URINGDB_TRUNCATED`: the first sequence number still readable.
    pub first: Option<f64>,
    /// `ERR_URINGDB_CONFLICT`, `ERR_URINGDB_TXN_EXISTS`, `ERR_URINGDB_TXN_NOT_FOUND`: the
    /// txid (for a conflict, the prepared transaction holding the key).
    pub txid: Option<String>,
    /// `ERR_URINGDB_CONFLICT`: the key (bytes).
    pub key: Option<Vec<u8>>,
    /// `ERR_URINGDB_CONFLICT`: `'prepared-lock'` (a prepared transaction holds the key) or
    /// `'read-set'` (an optimistic transaction read the key and it was written since).
    pub conflict: Option<String>,
    /// A background flush or compaction failure (its cause is in `cause`).
    pub background: Option<bool>,
    /// A packed write that failed part-way: how many of its entries were accepted before
    /// the failing one.
    pub accepted: Option<u32>,
    /// The error this one wraps (a latched failure's first error, a background job's).
    #[napi(ts_type = "NativeError")]
    pub cause: Option<Cause>,
}

/// The boxed cause of a [`NativeError`] (a struct cannot hold itself unboxed).
#[derive(Clone, Debug)]
pub struct Cause(pub Box<NativeError>);

impl ToNapiValue for Cause {
    // SAFETY: (of the unsafe fn's contract) the caller passes a valid `env` of the current
    // JS thread, which is all `NativeError::to_napi_value` requires; this only unboxes.
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        // SAFETY: forwarded with the same `env`, under the contract above.
        unsafe { NativeError::to_napi_value(env, *val.0) }
    }
}

/// An error on its way to JavaScript (boxed: `Result`s stay small).
#[derive(Debug)]
pub(crate) struct Failure(pub Box<NativeError>);

/// What the binding's functions return inside [`guard`].
pub(crate) type Res<T> = std::result::Result<T, Failure>;

impl Failure {
    /// An error with a code and a message and no details.
    pub(crate) fn coded(code: &str, message: impl Into<String>) -> Failure {
        Failure(Box::new(plain(code, &message.into())))
    }

    /// `ERR_URINGDB_INVALID_ARGUMENT`.
    pub(crate) fn invalid_argument(message: impl Into<String>) -> Failure {
        Failure::coded("ERR_URINGDB_INVALID_ARGUMENT", message)
    }

    /// The same error, noting how many entries of a packed write were accepted first.
    pub(crate) fn with_accepted(mut self, accepted: usize) -> Failure {
        self.0.accepted = Some(accepted as u32);
        self
    }

    /// The typed object (for a completion callback).
    pub(crate) fn into_inner(self) -> NativeError {
        *self.0
    }

    /// A JavaScript `Error` carrying the typed fields, to throw or reject with. If building
    /// it fails (no memory), a plain error with the code and message.
    pub(crate) fn into_js(self, env: &Env) -> napi::Error {
        let plain = napi::Error::new(Status::GenericFailure, self.0.message.clone());
        let build = || -> napi::Result<napi::Error> {
            let mut error = env.create_error(napi::Error::new(
                Status::GenericFailure,
                self.0.message.clone(),
            ))?;
            // SAFETY: `env` is this JS thread's environment (this runs on it, inside a
            // binding call or a settle callback); the value is created and used here.
            let fields = unsafe {
                Object::from_raw(env.raw(), NativeError::to_napi_value(env.raw(), *self.0)?)
            };
            let names = fields.get_property_names()?;
            for i in 0..names.get_array_length()? {
                let name: String = names.get_element(i)?;
                let value: Unknown = fields.get_named_property(&name)?;
                error.set_named_property(&name, value)?;
            }
            error.set_named_property("name", NATIVE_ERROR_NAME)?;
            Ok(napi::Error::from(error.to_unknown()))
        };
        build().unwrap_or(plain)
    }
}

impl From<napi::Error> for Failure {
    /// A failure of napi itself inside the binding (creating a promise, a callback).
    fn from(e: napi::Error) -> Failure {
        Failure::coded(
            "ERR_URINGDB_INTERNAL",
            format!("{}: {}", e.status, e.reason),
        )
    }
}

impl From<&WalError> for Failure {
    fn from(e: &WalError) -> Failure {
        Failure(Box::new(from_wal(e)))
    }
}

impl From<&DbError> for Failure {
    fn from(e: &DbError) -> Failure {
        Failure(Box::new(from_db(e)))
    }
}

impl From<&SinkError> for Failure {
    fn from(e: &SinkError) -> Failure {
        Failure(Box::new(from_sink(e)))
    }
}

/// The errno's symbolic name, for the error `code`.
pub(crate) fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc_errno::EPERM => "EPERM",
        libc_errno::ENOENT => "ENOENT",
        libc_errno::EIO => "EIO",
        libc_errno::EBADF => "EBADF",
        libc_errno::EACCES => "EACCES",
        libc_errno::EEXIST => "EEXIST",
        libc_errno::ENOTDIR => "ENOTDIR",
        libc_errno::EISDIR => "EISDIR",
        libc_errno::EINVAL => "EINVAL",
        libc_errno::EMFILE => "EMFILE",
        libc_errno::EFBIG => "EFBIG",
        libc_errno::ENOSPC => "ENOSPC",
        libc_errno::EROFS => "EROFS",
        libc_errno::EDQUOT => "EDQUOT",
        libc_errno::ENOMEM => "ENOMEM",
        libc_errno::ELOOP => "ELOOP",
        _ => return None,
    })
}

/// Linux errno values (the same on x86_64 and aarch64).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EMFILE: i32 = 24;
    pub const EFBIG: i32 = 27;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const EDQUOT: i32 = 122;
    /// A symbolic link where the engine refuses to follow one (`O_NOFOLLOW`).
    pub const ELOOP: i32 = 40;
}

/// An OS error's code and errno.
fn os_error(message: String, source: &std::io::Error) -> NativeError {
    let errno = source.raw_os_error();
    NativeError {
        code: errno
            .and_then(errno_name)
            .unwrap_or("ERR_URINGDB_IO")
            .to_string(),
        message,
        errno,
        ..NativeError::default()
    }
}

fn plain(code: &str, message: &str) -> NativeError {
    NativeError {
        code: code.to_string(),
        message: message.to_string(),
        ..NativeError::default()
    }
}

fn corruption(message: String, file: &std::path::Path, offset: u64) -> NativeError {
    NativeError {
        code: "ERR_URINGDB_CORRUPTION".into(),
        message,
        file: Some(file.to_string_lossy().into_owned()),
        offset: Some(offset as f64),
        ..NativeError::default()
    }
}

fn invalid_option(message: String, field: &str) -> NativeError {
    NativeError {
        code: "ERR_URINGDB_INVALID_OPTION".into(),
        message,
        field: Some(field.to_string()),
        ..NativeError::default()
    }
}

/// A log error as JavaScript receives it.
pub(crate) fn from_wal(e: &WalError) -> NativeError {
    let message = e.to_string();
    let coded = |code: &str| plain(code, &message);
    match e {
        WalError::Io { source, .. } => os_error(message, source),
        WalError::Corruption { file, offset, .. } => corruption(message, file, *offset),
        WalError::Failed(inner) => NativeError {
            cause: Some(Cause(Box::new(from_wal(inner)))),
            ..coded("ERR_URINGDB_FAILED")
        },
        WalError::Closed => coded("ERR_URINGDB_CLOSED"),
        WalError::Locked(_) => coded("ERR_URINGDB_LOCKED"),
        WalError::TooLarge { bytes, limit } | WalError::BatchTooLarge { bytes, limit } => {
            NativeError {
                bytes: Some(*bytes as f64),
                limit: Some(*limit as f64),
                ..coded("ERR_URINGDB_RECORD_TOO_LARGE")
            }
        }
        WalError::InvalidOption { field, .. } => invalid_option(message, field),
        WalError::Truncated { requested, first } => NativeError {
            requested: Some(*requested as f64),
            first: Some(*first as f64),
            ..coded("ERR_URINGDB_TRUNCATED")
        },
        WalError::BackendUnavailable(_) => coded("ERR_URINGDB_IO_URING_UNAVAILABLE"),
        _ => coded("ERR_URINGDB_INTERNAL"),
    }
}

/// A key-value database error as JavaScript receives it.
pub(crate) fn from_db(e: &DbError) -> NativeError {
    let message = e.to_string();
    let coded = |code: &str| plain(code, &message);
    match e {
        DbError::Wal(w) => from_wal(w),
        DbError::Table(TableError::Corruption { file, offset, .. })
        | DbError::Manifest(ManifestError::Corruption { file, offset, .. })
        | DbError::Corruption { file, offset, .. } => corruption(message, file, *offset),
        DbError::Table(TableError::Io { source, .. })
        | DbError::Manifest(ManifestError::Io { source, .. })
        | DbError::Io { source, .. } => os_error(message, source),
        DbError::Table(TableError::InvalidOption { field, .. })
        | DbError::InvalidOption { field, .. } => invalid_option(message, field),
        DbError::InvalidArgument(_) => coded("ERR_URINGDB_INVALID_ARGUMENT"),
        DbError::Closed => coded("ERR_URINGDB_CLOSED"),
        DbError::Conflict { txid, key } => NativeError {
            txid: Some(txid.clone()),
            key: Some(key.clone()),
            conflict: Some("prepared-lock".into()),
            ..coded("ERR_URINGDB_CONFLICT")
        },
        DbError::ReadConflict { key } => NativeError {
            key: Some(key.clone()),
            conflict: Some("read-set".into()),
            ..coded("ERR_URINGDB_CONFLICT")
        },
        DbError::TxnExists(txid) => NativeError {
            txid: Some(txid.clone()),
            ..coded("ERR_URINGDB_TXN_EXISTS")
        },
        DbError::TxnNotFound(txid) => NativeError {
            txid: Some(txid.clone()),
            ..coded("ERR_URINGDB_TXN_NOT_FOUND")
        },
        DbError::Background(inner) => {
            // The cause's code (ENOSPC stays ENOSPC), marked as a background failure.
            let cause = from_db(inner);
            NativeError {
                code: cause.code.clone(),
                errno: inner.raw_os_error(),
                background: Some(true),
                cause: Some(Cause(Box::new(cause))),
                ..coded("")
            }
        }
        _ => coded("ERR_URINGDB_INTERNAL"),
    }
}

/// A log sink error as JavaScript receives it.
pub(crate) fn from_sink(e: &SinkError) -> NativeError {
    let message = e.to_string();
    let coded = |code: &str| plain(code, &message);
    match e {
        SinkError::Io { source, .. } => os_error(message, source),
        SinkError::Corruption { file, offset, .. } => corruption(message, file, *offset),
        SinkError::InvalidOption { field, .. } => invalid_option(message, field),
        SinkError::Failed(inner) => NativeError {
            errno: inner.errno(),
            cause: Some(Cause(Box::new(from_sink(inner)))),
            ..coded("ERR_URINGDB_FAILED")
        },
        SinkError::Closed => coded("ERR_URINGDB_CLOSED"),
        SinkError::Locked(_) => coded("ERR_URINGDB_LOCKED"),
        SinkError::LineTooLong { bytes, max } => NativeError {
            bytes: Some(*bytes as f64),
            limit: Some(*max as f64),
            ..coded("ERR_URINGDB_RECORD_TOO_LARGE")
        },
        SinkError::Panicked(_) => coded("ERR_URINGDB_PANIC"),
        _ => coded("ERR_URINGDB_INTERNAL"),
    }
}

/// Message of a caught panic payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The error a caught panic becomes.
pub(crate) fn panic_failure(p: &(dyn std::any::Any + Send)) -> Failure {
    Failure::coded(
        "ERR_URINGDB_PANIC",
        format!(
            "internal error (a Rust panic was caught): {}",
            panic_message(p)
        ),
    )
}

/// Runs `f`, turning its [`Failure`] into a thrown JavaScript error, and a Rust panic into
/// a thrown `ERR_URINGDB_PANIC` instead of unwinding into Node (which would abort the
/// process).
pub(crate) fn guard<T>(env: &Env, f: impl FnOnce() -> Res<T>) -> napi::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into_js(env)),
        Err(p) => Err(panic_failure(&*p).into_js(env)),
    }
}

/// `r` as a deferred's resolver returns it, on the JS thread: its value, or its error built
/// as a typed JS `Error`. For the hot read paths, whose resolver is then one unboxed closure
/// (see [`settle`] for the rarer ones).
pub(crate) fn outcome<V>(env: &Env, r: Res<V>) -> napi::Result<V> {
    r.map_err(|e| e.into_js(env))
}

/// Settles a promise from another thread: resolves with what `make` builds on the JS
/// thread, or rejects with the typed error.
pub(crate) type Settle<T> = Box<dyn FnOnce(Env) -> napi::Result<T> + Send>;

/// Resolves `deferred` with `make`'s value, or rejects it with `r`'s error (built as a
/// typed `Error` on the JS thread).
pub(crate) fn settle<T: ToNapiValue + 'static>(
    deferred: napi::JsDeferred<T, Settle<T>>,
    r: std::result::Result<Settle<T>, Failure>,
) {
    match r {
        Ok(make) => deferred.resolve(make),
        Err(e) => deferred.resolve(Box::new(move |env| Err(e.into_js(&env)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_details() {
        let e = WalError::Corruption {
            file: "/x/000000000001.wal".into(),
            offset: 40,
            reason: "bad".into(),
        };
        let j = from_wal(&e);
        assert_eq!(j.code, "ERR_URINGDB_CORRUPTION");
        assert_eq!(j.offset, Some(40.0));
        assert_eq!(j.file.as_deref(), Some("/x/000000000001.wal"));
        let io = WalError::Io {
            context: "writing".into(),
            source: std::sync::Arc::new(std::io::Error::from_raw_os_error(28)),
        };
        assert_eq!(from_wal(&io).code, "ENOSPC");
        assert_eq!(from_wal(&io).errno, Some(28));
        let failed = WalError::Failed(std::sync::Arc::new(io));
        let f = from_wal(&failed);
        assert_eq!(f.code, "ERR_URINGDB_FAILED");
        assert_eq!(f.cause.as_ref().map(|c| c.0.code.as_str()), Some("ENOSPC"));
    }

    #[test]
    fn a_background_failure_keeps_its_cause_code_and_errno() {
        let io = DbError::Io {
            context: "flushing".into(),
            source: std::sync::Arc::new(std::io::Error::from_raw_os_error(28)),
        };
        let b = from_db(&DbError::Background(std::sync::Arc::new(io)));
        assert_eq!(b.code, "ENOSPC");
        assert_eq!(b.errno, Some(28));
        assert_eq!(b.background, Some(true));
        assert_eq!(b.cause.as_ref().map(|c| c.0.code.as_str()), Some("ENOSPC"));
        let opt = from_db(&DbError::InvalidOption {
            field: "blockBytes",
            message: "x".into(),
        });
        assert_eq!(
            (opt.code.as_str(), opt.field.as_deref()),
            ("ERR_URINGDB_INVALID_OPTION", Some("blockBytes"))
        );
    }

    #[test]
    fn guard_catches_panics() {
        let r = std::panic::catch_unwind(|| -> Res<()> { panic!("boom") });
        let f = panic_failure(&*r.unwrap_err());
        assert_eq!(f.0.code, "ERR_URINGDB_PANIC");
        assert!(f.0.message.contains("boom"), "{}", f.0.message);
    }
}
