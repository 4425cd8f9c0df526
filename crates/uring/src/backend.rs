//! The one switch (STYLE habit 3): picks the I/O backend, and says why when io_uring is not
//! used. This is the only place that knows io_uring may be missing; callers get an
//! `Arc<dyn Vfs>` and contain no `cfg` and no "is io_uring available" checks.
//!
//! `Auto` probes io_uring by feature, never by kernel version: `io_uring_setup` must succeed
//! and `IORING_REGISTER_PROBE` must report `WRITEV` and `FSYNC`. Anything else falls back to
//! the portable backend with the likely cause in [`ProbeReport::fallback_reason`].

use std::io;
use std::sync::Arc;

use crate::portable::PortableVfs;
use crate::vfs::{BackendKind, Vfs};

#[cfg(target_os = "linux")]
#[path = "uring.rs"]
mod uring;

/// The I/O backend the caller asked for (the JS option `ioBackend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// io_uring when the kernel allows it, otherwise portable (with the reason reported).
    Auto,
    /// io_uring or an error saying why it cannot be used.
    IoUring,
    /// The portable backend; io_uring is never probed.
    Portable,
}

/// What [`open_vfs`] chose, and why.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// The backend in use.
    pub backend: BackendKind,
    /// Why io_uring is not used, when it is not (the likely cause named: seccomp,
    /// `kernel.io_uring_disabled`, an old kernel, or the caller's choice).
    pub fallback_reason: Option<String>,
    /// Kernel features probed, as stable strings (`"IORING_FEAT_NODROP"`, `"op:WRITEV"`, ...).
    /// Empty for the portable backend.
    pub features: Vec<String>,
}

/// Opens the backend `choice` asks for.
///
/// - `Auto`: io_uring if the probe succeeds, else portable with `fallback_reason` set.
/// - `IoUring`: io_uring, or an `io::Error` (errno kept when there is one) whose message says
///   why it is unavailable, in the same words as `fallback_reason`.
/// - `Portable`: portable; never probes.
pub fn open_vfs(choice: BackendChoice) -> io::Result<(Arc<dyn Vfs>, ProbeReport)> {
    let portable = |reason: String| -> (Arc<dyn Vfs>, ProbeReport) {
        let report = ProbeReport {
            backend: BackendKind::Portable,
            fallback_reason: Some(reason),
            features: Vec::new(),
        };
        (Arc::new(PortableVfs::new()), report)
    };
    match choice {
        BackendChoice::Portable => Ok(portable("requested ioBackend 'portable'".to_string())),
        BackendChoice::Auto => Ok(match probe_io_uring() {
            Ok(found) => found,
            Err(refusal) => portable(refusal.reason),
        }),
        BackendChoice::IoUring => probe_io_uring().map_err(|refusal| {
            let kind = match refusal.errno {
                Some(errno) => io::Error::from_raw_os_error(errno).kind(),
                None => io::ErrorKind::Unsupported,
            };
            io::Error::new(
                kind,
                format!("ioBackend 'io_uring' unavailable: {}", refusal.reason),
            )
        }),
    }
}

/// Why io_uring was refused.
#[derive(Debug)]
struct Refusal {
    errno: Option<i32>,
    reason: String,
}

#[cfg(target_os = "linux")]
fn probe_io_uring() -> Result<(Arc<dyn Vfs>, ProbeReport), Refusal> {
    match uring::probe() {
        Ok((vfs, features)) => {
            let report = ProbeReport {
                backend: BackendKind::IoUring,
                fallback_reason: None,
                features,
            };
            Ok((Arc::new(vfs), report))
        }
        Err(uring::ProbeError::Setup(e)) => Err(Refusal {
            errno: e.raw_os_error(),
            reason: explain_setup_error(&e, read_io_uring_disabled()),
        }),
        Err(uring::ProbeError::Register(e)) => Err(Refusal {
            errno: e.raw_os_error(),
            reason: format!(
                "io_uring_register(IORING_REGISTER_PROBE) failed with {}: kernel too old to \
                 report its io_uring opcodes (probing needs 5.6 or later)",
                errno_words(&e)
            ),
        }),
        Err(uring::ProbeError::MissingOps(ops)) => Err(Refusal {
            errno: None,
            reason: format!(
                "the kernel's io_uring lacks required opcodes: {} (kernel too old)",
                ops.join(", ")
            ),
        }),
    }
}

#[cfg(not(target_os = "linux"))]
fn probe_io_uring() -> Result<(Arc<dyn Vfs>, ProbeReport), Refusal> {
    Err(Refusal {
        errno: None,
        reason: "io_uring is Linux-only; this platform uses the portable backend".to_string(),
    })
}

/// `kernel.io_uring_disabled` (Linux 6.6+), when the file exists and parses.
#[cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "only Linux has the sysctl")
)]
fn read_io_uring_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// "EPERM (Operation not permitted)" for an OS error; the error's text otherwise.
#[cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "only Linux probes io_uring")
)]
fn errno_words(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EACCES) => "EACCES",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(errno) => return format!("errno {errno} ({})", strip_os_error_suffix(e, errno)),
        None => return e.to_string(),
    };
    let errno = e.raw_os_error().unwrap_or(0);
    format!("{name} ({})", strip_os_error_suffix(e, errno))
}

/// `io::Error`'s Display appends " (os error N)"; keep just the description.
#[cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "only Linux probes io_uring")
)]
fn strip_os_error_suffix(e: &io::Error, errno: i32) -> String {
    let text = e.to_string();
    let suffix = format!(" (os error {errno})");
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Names the likely cause of an `io_uring_setup` failure. `disabled` is the value of
/// `kernel.io_uring_disabled`, if the sysctl exists.
#[cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "only Linux probes io_uring")
)]
fn explain_setup_error(e: &io::Error, disabled: Option<u32>) -> String {
    let head = format!("io_uring_setup failed with {}", errno_words(e));
    let cause = match (e.raw_os_error(), disabled) {
        (Some(libc::EPERM), Some(2)) => {
            "kernel.io_uring_disabled=2: io_uring is disabled for every process".to_string()
        }
        (Some(libc::EPERM), Some(1)) => "kernel.io_uring_disabled=1: io_uring is limited to \
             privileged processes and members of kernel.io_uring_group, and this process is \
             neither"
            .to_string(),
        (Some(libc::EPERM), _) => "refused by a seccomp filter (containers: the default \
             Docker/containerd/Kubernetes profiles block io_uring) or a security module; \
             kernel.io_uring_disabled does not forbid it"
            .to_string(),
        (Some(libc::ENOSYS), _) => "kernel without io_uring (older than 5.1, or built without \
             CONFIG_IO_URING) or syscall filtered (seccomp, gVisor)"
            .to_string(),
        (Some(libc::EACCES), _) => {
            "denied by a security module (SELinux/AppArmor policy on io_uring)".to_string()
        }
        (Some(libc::ENOMEM), _) => "could not allocate the ring (on kernels before 5.12 ring \
             memory counts against RLIMIT_MEMLOCK; raise it or use ioBackend 'portable')"
            .to_string(),
        (Some(libc::EMFILE) | Some(libc::ENFILE), _) => {
            "out of file descriptors for the ring".to_string()
        }
        _ => "unexpected failure".to_string(),
    };
    format!("{head}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn explains_eperm_by_sysctl() {
        let seccomp = explain_setup_error(&os(libc::EPERM), Some(0));
        assert!(
            seccomp.starts_with("io_uring_setup failed with EPERM (Operation not permitted): "),
            "{seccomp}"
        );
        assert!(seccomp.contains("seccomp"), "{seccomp}");
        assert!(explain_setup_error(&os(libc::EPERM), None).contains("seccomp"));
        let off = explain_setup_error(&os(libc::EPERM), Some(2));
        assert!(off.contains("kernel.io_uring_disabled=2"), "{off}");
        let group = explain_setup_error(&os(libc::EPERM), Some(1));
        assert!(group.contains("kernel.io_uring_disabled=1"), "{group}");
    }

    #[test]
    fn explains_other_errnos() {
        let old = explain_setup_error(&os(libc::ENOSYS), None);
        assert!(old.contains("ENOSYS") && old.contains("5.1"), "{old}");
        assert!(explain_setup_error(&os(libc::EACCES), None).contains("EACCES"));
        assert!(explain_setup_error(&os(libc::ENOMEM), None).contains("RLIMIT_MEMLOCK"));
        assert!(explain_setup_error(&os(libc::EIO), None).contains("unexpected"));
    }

    #[test]
    fn portable_never_probes_and_says_so() {
        let (vfs, report) = open_vfs(BackendChoice::Portable).unwrap();
        assert_eq!(vfs.kind(), BackendKind::Portable);
        assert_eq!(report.backend, BackendKind::Portable);
        assert_eq!(
            report.fallback_reason.as_deref(),
            Some("requested ioBackend 'portable'")
        );
        assert!(report.features.is_empty());
    }

    #[test]
    fn kind_names_are_stable() {
        assert_eq!(BackendKind::IoUring.as_str(), "io_uring");
        assert_eq!(BackendKind::Portable.as_str(), "portable");
    }
}
