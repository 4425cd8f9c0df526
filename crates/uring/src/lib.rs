//! uringdb's file-I/O layer.
//!
//! Everything above this crate does file I/O through two traits, [`Vfs`] (namespace
//! operations) and [`File`] (positional reads and gathered, optionally durable writes), and
//! gets its `Vfs` from the one switch, [`open_vfs`]:
//!
//! - the **io_uring** backend (Linux): a durable write is one submission of `WRITEV` linked to
//!   `FDATASYNC`, short writes continued, errnos preserved;
//! - the **portable** backend: `pwritev` + `fdatasync` on the calling thread, used when the
//!   caller asks for it or when io_uring is refused (the [`ProbeReport`] says why);
//! - [`FaultVfs`], the test backend: wraps either, loses every byte not covered by a completed
//!   fdatasync on a simulated crash, and injects write, sync and allocation errors.
//!
//! ```
//! use uringdb_uring::{open_vfs, BackendChoice, OpenMode};
//!
//! let (vfs, report) = open_vfs(BackendChoice::Auto)?;
//! println!("backend {} ({:?})", report.backend.as_str(), report.fallback_reason);
//! let dir = std::env::temp_dir().join(format!("uringdb-doc-{}", std::process::id()));
//! vfs.create_dir_all(&dir)?;
//! let file = vfs.open(&dir.join("log"), OpenMode::CreateReadWrite)?;
//! file.write_at(0, &[b"hello ", b"world"], true)?; // durable when it returns
//! let mut buf = [0u8; 11];
//! assert_eq!(file.read_at(0, &mut buf)?, 11);
//! assert_eq!(&buf, b"hello world");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

mod backend;
mod durable;
mod fault;
#[cfg(unix)]
mod iovec;
mod portable;
mod vfs;

pub use backend::{open_vfs, BackendChoice, ProbeReport};
pub use fault::{FaultConfig, FaultVfs, FAULT_PAGE_BYTES};
pub use vfs::{BackendKind, File, LockGuard, OpenMode, Vfs, WriteTiming};
