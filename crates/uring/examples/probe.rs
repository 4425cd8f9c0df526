//! `probe`: prints, as one JSON line, what this kernel's io_uring offers and which backend
//! uringdb picks on it. Run by the kernel matrix (`scripts/kernels/`) in each guest kernel.
//!
//! ```text
//! {"kernel":"6.1.0-50-cloud-amd64","ioUringDisabled":null,
//!  "auto":{"backend":"io_uring","fallbackReason":null,"features":["IORING_FEAT_NODROP",...]},
//!  "ioUring":{"ok":true,"error":null},
//!  "extra":{"setup":"ok","features":["IORING_FEAT_LINKED_FILE",...],"missing":[...]}}
//! ```
//!
//! - `auto` is exactly what the engine reports at open (`stats().ioBackend` and
//!   `stats().ioFeatures` in JavaScript): `open_vfs(BackendChoice::Auto)`.
//! - `ioUring` is an explicit `ioBackend: 'io_uring'` request: it must fail, with the same
//!   reason, exactly when `auto` falls back.
//! - `extra` is informational only: newer io_uring features and opcodes the engine does not
//!   use (today), probed directly, so that the matrix shows how kernels differ. `missing`
//!   lists the ones this kernel lacks.
//!
//! `ioUringDisabled` is `/proc/sys/kernel/io_uring_disabled` (Linux 6.6+), `null` where the
//! sysctl does not exist. Exits 0 whenever it could print (a fallback is a result, not an
//! error), 1 when the portable backend itself cannot be opened.

use std::fmt::Write as _;

use uringdb_uring::{open_vfs, BackendChoice};

fn main() {
    let mut out = String::from("{");
    let kernel = read_trimmed("/proc/sys/kernel/osrelease");
    let _ = write!(out, "\"kernel\":{}", json_opt(kernel.as_deref()));
    let disabled = read_trimmed("/proc/sys/kernel/io_uring_disabled");
    let _ = write!(
        out,
        ",\"ioUringDisabled\":{}",
        disabled.as_deref().unwrap_or("null")
    );

    match open_vfs(BackendChoice::Auto) {
        Ok((_vfs, report)) => {
            let _ = write!(
                out,
                ",\"auto\":{{\"backend\":{},\"fallbackReason\":{},\"features\":{}}}",
                json_str(report.backend.as_str()),
                json_opt(report.fallback_reason.as_deref()),
                json_list(report.features.iter().map(String::as_str)),
            );
        }
        Err(e) => {
            // Auto never fails for io_uring reasons; only the portable backend failing
            // would get here.
            eprintln!("probe: open_vfs(Auto) failed: {e}");
            std::process::exit(1);
        }
    }
    match open_vfs(BackendChoice::IoUring) {
        Ok(_) => out.push_str(",\"ioUring\":{\"ok\":true,\"error\":null}"),
        Err(e) => {
            let _ = write!(
                out,
                ",\"ioUring\":{{\"ok\":false,\"error\":{}}}",
                json_str(&e.to_string())
            );
        }
    }
    let _ = write!(out, ",\"extra\":{}", extra::probe());
    out.push('}');
    println!("{out}");
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), json_str)
}

fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let parts: Vec<String> = items.map(json_str).collect();
    format!("[{}]", parts.join(","))
}

#[cfg(target_os = "linux")]
mod extra {
    use io_uring::{opcode, IoUring, Probe};

    /// Newer features and opcodes, with the kernel that introduced each (for the reader of
    /// the table; the probe itself goes by feature, never by version).
    pub(super) fn probe() -> String {
        let ring: IoUring = match IoUring::builder().build(4) {
            Ok(ring) => ring,
            Err(e) => {
                return format!(
                    "{{\"setup\":{},\"features\":[],\"missing\":[]}}",
                    super::json_str(&format!("io_uring_setup: {e}"))
                )
            }
        };
        let mut probe = Probe::new();
        if let Err(e) = ring.submitter().register_probe(&mut probe) {
            return format!(
                "{{\"setup\":{},\"features\":[],\"missing\":[]}}",
                super::json_str(&format!("IORING_REGISTER_PROBE: {e}"))
            );
        }
        let p = ring.params();
        let checks: [(&str, bool); 13] = [
            ("FEAT_EXT_ARG(5.11)", p.is_feature_ext_arg()),
            ("FEAT_NATIVE_WORKERS(5.12)", p.is_feature_native_workers()),
            ("FEAT_RSRC_TAGS(5.13)", p.is_feature_resource_tagging()),
            ("FEAT_CQE_SKIP(5.17)", p.is_feature_skip_cqe_on_success()),
            ("FEAT_LINKED_FILE(5.17)", p.is_feature_linked_file()),
            ("FEAT_RECVSEND_BUNDLE(6.10)", p.is_feature_recvsend_bundle()),
            ("FEAT_MIN_TIMEOUT(6.12)", p.is_feature_min_timeout()),
            ("FEAT_NO_IOWAIT(6.15)", p.is_feature_no_iowait()),
            ("op:SEND_ZC(6.0)", probe.is_supported(opcode::SendZc::CODE)),
            (
                "op:FUTEX_WAIT(6.7)",
                probe.is_supported(opcode::FutexWait::CODE),
            ),
            ("op:WAITID(6.7)", probe.is_supported(opcode::WaitId::CODE)),
            (
                "op:FTRUNCATE(6.9)",
                probe.is_supported(opcode::Ftruncate::CODE),
            ),
            ("op:BIND(6.11)", probe.is_supported(opcode::Bind::CODE)),
        ];
        let have = checks.iter().filter(|(_, on)| *on).map(|(n, _)| *n);
        let missing = checks.iter().filter(|(_, on)| !*on).map(|(n, _)| *n);
        format!(
            "{{\"setup\":\"ok\",\"features\":{},\"missing\":{}}}",
            super::json_list(have),
            super::json_list(missing)
        )
    }
}

#[cfg(not(target_os = "linux"))]
mod extra {
    pub(super) fn probe() -> String {
        "{\"setup\":\"io_uring is Linux-only\",\"features\":[],\"missing\":[]}".to_string()
    }
}
