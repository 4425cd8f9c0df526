//! The one place where engine errors become JavaScript errors.
//!
//! Errors cross the boundary as `Error`s whose message is a small JSON object
//! (`{"code", "message", ...details}`); the façade's `toUringdbError` (index.ts) turns it
//! into a `UringdbError` with those properties. Codes are stable API.

use uringdb_lsm::db::DbError;
use uringdb_lsm::manifest::ManifestError;
use uringdb_lsm::table::TableError;
use uringdb_wal::WalError;

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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

/// The stable code of an engine error.
pub(crate) fn code_of(e: &WalError) -> String {
    match e {
        WalError::Io { source, .. } => source
            .raw_os_error()
            .and_then(errno_name)
            .unwrap_or("ERR_URINGDB_IO")
            .to_string(),
        WalError::Corruption { .. } => "ERR_URINGDB_CORRUPTION".into(),
        WalError::Failed(_) => "ERR_URINGDB_FAILED".into(),
        WalError::Closed => "ERR_URINGDB_CLOSED".into(),
        WalError::Locked(_) => "ERR_URINGDB_LOCKED".into(),
        WalError::TooLarge { .. } | WalError::BatchTooLarge { .. } => {
            "ERR_URINGDB_RECORD_TOO_LARGE".into()
        }
        WalError::InvalidOption { .. } => "ERR_URINGDB_INVALID_OPTION".into(),
        WalError::Truncated { .. } => "ERR_URINGDB_TRUNCATED".into(),
        WalError::BackendUnavailable(_) => "ERR_URINGDB_IO_URING_UNAVAILABLE".into(),
        _ => "ERR_URINGDB_INTERNAL".into(),
    }
}

/// The JSON form of a key-value database error (the log's errors keep their own form).
pub(crate) fn db_to_json(e: &DbError) -> String {
    let with = |code: &str, extra: String| {
        format!(
            "{{\"code\":{},\"message\":{}{extra}}}",
            json_str(code),
            json_str(&e.to_string())
        )
    };
    let errno_code = |src: &std::io::Error| {
        src.raw_os_error()
            .and_then(errno_name)
            .unwrap_or("ERR_URINGDB_IO")
            .to_string()
    };
    let errno_extra = |src: &std::io::Error| {
        src.raw_os_error()
            .map_or(String::new(), |n| format!(",\"errno\":{n}"))
    };
    let corruption = |file: &std::path::Path, offset: u64| {
        with(
            "ERR_URINGDB_CORRUPTION",
            format!(
                ",\"file\":{},\"offset\":{offset}",
                json_str(&file.to_string_lossy())
            ),
        )
    };
    match e {
        DbError::Wal(w) => to_json(w),
        DbError::Table(TableError::Corruption { file, offset, .. }) => corruption(file, *offset),
        DbError::Table(TableError::Io { source, .. }) => {
            with(&errno_code(source), errno_extra(source))
        }
        DbError::Table(TableError::InvalidOption { field, .. }) => with(
            "ERR_URINGDB_INVALID_OPTION",
            format!(",\"field\":{}", json_str(field)),
        ),
        DbError::Manifest(ManifestError::Corruption { file, offset, .. }) => {
            corruption(file, *offset)
        }
        DbError::Manifest(ManifestError::Io { source, .. }) => {
            with(&errno_code(source), errno_extra(source))
        }
        DbError::Corruption { file, offset, .. } => corruption(file, *offset),
        DbError::Io { source, .. } => with(&errno_code(source), errno_extra(source)),
        DbError::InvalidArgument(_) => with("ERR_URINGDB_INVALID_ARGUMENT", String::new()),
        DbError::InvalidOption { field, .. } => with(
            "ERR_URINGDB_INVALID_OPTION",
            format!(",\"field\":{}", json_str(field)),
        ),
        DbError::Closed => with("ERR_URINGDB_CLOSED", String::new()),
        DbError::Background(inner) => {
            // The cause's code (ENOSPC stays ENOSPC), marked as a background failure.
            let cause = db_to_json(inner);
            let code = match &**inner {
                DbError::Wal(w) => code_of(w),
                _ => cause
                    .split("\"code\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("ERR_URINGDB_FAILED")
                    .to_string(),
            };
            let errno = inner
                .raw_os_error()
                .map_or(String::new(), |n| format!(",\"errno\":{n}"));
            with(
                &code,
                format!(",\"background\":true{errno},\"cause\":{cause}"),
            )
        }
        _ => with("ERR_URINGDB_INTERNAL", String::new()),
    }
}

/// The JSON form of an engine error.
pub(crate) fn to_json(e: &WalError) -> String {
    let mut j = format!(
        "{{\"code\":{},\"message\":{}",
        json_str(&code_of(e)),
        json_str(&e.to_string())
    );
    match e {
        WalError::Corruption { file, offset, .. } => {
            j.push_str(&format!(
                ",\"file\":{},\"offset\":{offset}",
                json_str(&file.to_string_lossy())
            ));
        }
        WalError::InvalidOption { field, .. } => {
            j.push_str(&format!(",\"field\":{}", json_str(field)));
        }
        WalError::Failed(inner) => {
            j.push_str(&format!(",\"cause\":{}", to_json(inner)));
        }
        WalError::Io { source, .. } => {
            if let Some(n) = source.raw_os_error() {
                j.push_str(&format!(",\"errno\":{n}"));
            }
        }
        WalError::TooLarge { bytes, limit } | WalError::BatchTooLarge { bytes, limit } => {
            j.push_str(&format!(",\"bytes\":{bytes},\"limit\":{limit}"));
        }
        WalError::Truncated { requested, first } => {
            j.push_str(&format!(",\"requested\":{requested},\"first\":{first}"));
        }
        _ => {}
    }
    j.push('}');
    j
}

/// A binding-level error with a code (argument checks, panics).
pub(crate) fn coded(code: &str, message: &str) -> napi::Error {
    napi::Error::from_reason(format!(
        "{{\"code\":{},\"message\":{}}}",
        json_str(code),
        json_str(message)
    ))
}

/// An engine error as a JavaScript-bound error.
pub(crate) fn wal(e: &WalError) -> napi::Error {
    napi::Error::from_reason(to_json(e))
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

/// Runs `f`, turning a Rust panic into a rejected/thrown `ERR_URINGDB_PANIC` instead of
/// unwinding into Node (which would abort the process).
pub(crate) fn guard<T>(f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(coded(
            "ERR_URINGDB_PANIC",
            &format!(
                "internal error (a Rust panic was caught): {}",
                panic_message(&*p)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn codes_and_details() {
        let e = WalError::Corruption {
            file: "/x/000000000001.wal".into(),
            offset: 40,
            reason: "bad".into(),
        };
        let j = to_json(&e);
        assert!(j.contains("\"code\":\"ERR_URINGDB_CORRUPTION\""), "{j}");
        assert!(j.contains("\"offset\":40"), "{j}");
        let io = WalError::Io {
            context: "writing".into(),
            source: std::sync::Arc::new(std::io::Error::from_raw_os_error(28)),
        };
        assert_eq!(code_of(&io), "ENOSPC");
        let failed = WalError::Failed(std::sync::Arc::new(io));
        assert!(to_json(&failed).contains("\"cause\":{\"code\":\"ENOSPC\""));
    }

    #[test]
    fn guard_catches_panics() {
        let r: napi::Result<()> = guard(|| panic!("boom"));
        let msg = r.unwrap_err().reason;
        assert!(
            msg.contains("ERR_URINGDB_PANIC") && msg.contains("boom"),
            "{msg}"
        );
    }
}
