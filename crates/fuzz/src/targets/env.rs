//! The scratch environment of the targets that go through files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uringdb_uring::{BackendChoice, Vfs};

/// What targets that go through files need: a scratch directory (on tmpfs when there is
/// one) and an I/O layer.
pub struct Env {
    root: PathBuf,
    /// The portable I/O backend (decoding does not depend on the backend).
    pub vfs: Arc<dyn Vfs>,
}

impl Env {
    /// A scratch root for this process and `label`; removed on drop.
    pub fn new(label: &str) -> std::io::Result<Env> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("uringdb-fuzz-{}-{label}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root)?;
        let (vfs, _) = uringdb_uring::open_vfs(BackendChoice::Portable)?;
        Ok(Env { root, vfs })
    }

    /// An empty directory `name` under the root (emptied if it exists).
    pub fn fresh_dir(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::create_dir_all(&dir);
        dir
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
