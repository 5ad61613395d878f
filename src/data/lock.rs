//! One writer per output folder: a lock file `.lock` holding the writer's process id, taken with
//! an exclusive create, so that a second run into the same folder is refused (naming the
//! holder) instead of mixing its files with the first's. A lock left by a killed run (its
//! process no longer exists) is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The lock of an output folder, released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

impl FolderLock {
    /// Takes the lock of `dir` (created if missing) for a run of `what` (e.g. `training`);
    /// an error naming the holding process if another live process holds it.
    pub fn acquire(dir: &Path, what: &str) -> Result<Self> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(".lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id()).map_err(io(&path))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match holder {
                        Some(pid) if alive(pid) => {
                            return Err(Error::Invalid(format!(
                                "{} is in use by another {what} (process {pid}; lock file {}): \
                                 wait for it to finish or choose another folder",
                                dir.display(),
                                path.display()
                            )))
                        }
                        // left by a run that no longer exists (or unreadable): take it over
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Err(Error::Invalid(format!(
            "could not take the lock {} (another run keeps taking it)",
            path.display()
        )))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists: `/proc/<pid>` on Linux; elsewhere a lock is taken to be held
/// (remove its file to release it by hand).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}
