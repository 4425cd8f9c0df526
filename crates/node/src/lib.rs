//! The Node.js binding of uringdb (napi-rs). The only crate that knows about JavaScript:
//! it adapts the engines' completion sinks to promises, shares one engine per directory
//! among the main thread and worker_threads ([`registry`]), and turns errors into typed
//! objects with stable codes ([`errors`]). It contains no engine logic.
//!
//! One file per product ([`log`], [`logsink`], [`db`] with [`read`], [`stream`] and [`txn`]), plus what both use: the
//! completion machinery ([`completion`]), options ([`options`]), statistics, recovery and
//! events ([`stats`]), and the binding's threads ([`worker`]). Every crossing is typed:
//! the generated `binding.d.ts` is the contract the façade compiles against; no JSON
//! text crosses.
#![deny(clippy::undocumented_unsafe_blocks)]

mod completion;
pub mod db;
pub mod errors;
mod limits;
pub mod log;
pub mod logsink;
pub mod options;
pub mod read;
mod registry;
pub mod stats;
pub mod stream;
pub mod txn;
mod worker;

use napi_derive::napi;

/// Test-only: panics inside the boundary guard, to prove a panic becomes an error.
#[napi(js_name = "__testPanic")]
pub fn test_panic(env: napi::Env) -> napi::Result<()> {
    errors::guard(&env, || panic!("test panic requested"))
}
