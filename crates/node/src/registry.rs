//! One engine per directory per process, for either product. The main thread and
//! worker_threads that open the same directory share it (so the commit queue really has
//! several producers); it closes when the last *handle* closes — counted explicitly, not
//! by `Arc` references, because cursors, iterators and in-flight reads also hold the
//! engine and are freed only when the garbage collector gets to them; they must not keep
//! the directory locked. The registry lock is held across open and close, so a directory
//! is never opened twice at once (its LOCK file would refuse the second).
//!
//! Handles of one directory must agree on the engine's options: each product names them in
//! an identity struct (derived `PartialEq`, see [`identity!`]); a handle whose identity
//! differs is refused with an error naming the first differing option.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Declares an identity struct: the options every handle of one directory must share,
/// each with the name the user writes. Equality is the derived `PartialEq`;
/// `first_difference` names the first field that differs.
macro_rules! identity {
    ($(#[$meta:meta])* $name:ident { $($field:ident: $ty:ty => $js:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub(crate) struct $name {
            $(pub(crate) $field: $ty),*
        }

        impl $name {
            /// The user's name of the first option that differs, if any does.
            pub(crate) fn first_difference(&self, other: &Self) -> Option<&'static str> {
                $(if self.$field != other.$field {
                    return Some($js);
                })*
                None
            }
        }
    };
}
pub(crate) use identity;

/// An engine kind the registry can share: how to open and close it, and what identifies
/// its options.
pub(crate) trait Product: Sized + Send + Sync + 'static {
    /// The engine's options.
    type Options;
    /// The options every handle must agree on.
    type Identity: Clone + Send + Sync;
    /// The engine's error.
    type Error;

    /// The identity of `options`.
    fn identity(options: &Self::Options) -> Self::Identity;
    /// The first differing option of two identities, by the user's name.
    fn first_difference(a: &Self::Identity, b: &Self::Identity) -> Option<&'static str>;
    /// Opens the engine in `dir` (already created and canonical).
    fn open(dir: &Path, options: Self::Options) -> Result<Self, Self::Error>;
    /// Closes it (drain, join, unlock).
    fn close(&self) -> Result<(), Self::Error>;
    /// The error for a directory that could not be created or resolved.
    fn dir_error(context: String, e: std::io::Error) -> Self::Error;
    /// The error for a handle whose options differ from the open engine's.
    fn mismatch(field: &'static str, message: String) -> Self::Error;
}

/// A shared engine and its handle count.
pub(crate) struct Shared<P: Product> {
    /// The engine.
    pub(crate) engine: P,
    identity: P::Identity,
    key: PathBuf,
    /// Open handles (guarded by the registry lock).
    handles: AtomicUsize,
}

impl<P: Product> std::ops::Deref for Shared<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.engine
    }
}

/// The open engines of one product, by canonical directory.
pub(crate) struct Registry<P: Product> {
    open: Mutex<BTreeMap<PathBuf, Weak<Shared<P>>>>,
}

impl<P: Product> Registry<P> {
    /// An empty registry (for a `static`).
    pub(crate) const fn new() -> Self {
        Registry {
            open: Mutex::new(BTreeMap::new()),
        }
    }

    /// Opens the engine for `dir`, or joins the open one. Returns whether it was opened now.
    pub(crate) fn acquire(
        &self,
        dir: &Path,
        options: P::Options,
    ) -> Result<(Arc<Shared<P>>, bool), P::Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| P::dir_error(format!("creating {}", dir.display()), e))?;
        let key = std::fs::canonicalize(dir)
            .map_err(|e| P::dir_error(format!("resolving {}", dir.display()), e))?;
        let identity = P::identity(&options);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = open.get(&key).and_then(Weak::upgrade) {
            if let Some(field) = P::first_difference(&shared.identity, &identity) {
                return Err(P::mismatch(
                    field,
                    format!(
                        "{} is already open in this process with a different {field}; every handle of one directory must use the same engine options",
                        dir.display()
                    ),
                ));
            }
            shared.handles.fetch_add(1, Ordering::Relaxed);
            return Ok((shared, false));
        }
        let engine = P::open(&key, options)?;
        let shared = Arc::new(Shared {
            engine,
            identity,
            key: key.clone(),
            handles: AtomicUsize::new(1),
        });
        open.insert(key, Arc::downgrade(&shared));
        Ok((shared, true))
    }

    /// Drops a handle; closes the engine if it was the last handle.
    pub(crate) fn release(&self, shared: Arc<Shared<P>>) -> Result<(), P::Error> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if shared.handles.fetch_sub(1, Ordering::Relaxed) == 1 {
            open.remove(&shared.key);
            shared.engine.close()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    identity!(
        /// Test identity.
        Two {
            a: u32 => "alpha",
            b: String => "beta",
        }
    );

    #[test]
    fn first_difference_names_the_first_differing_field_in_declaration_order() {
        let x = Two {
            a: 1,
            b: "x".into(),
        };
        assert_eq!(x.first_difference(&x.clone()), None);
        let y = Two {
            a: 2,
            b: "y".into(),
        };
        assert_eq!(x.first_difference(&y), Some("alpha"));
        let z = Two {
            a: 1,
            b: "z".into(),
        };
        assert_eq!(x.first_difference(&z), Some("beta"));
        assert_ne!(x, z);
    }
}
