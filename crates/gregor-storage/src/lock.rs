//! One gregor process per data dir: an exclusive lock on `<dir>/gregor.lock`
//! holding the owner's pid, so that a second broker is told who has the dir
//! instead of getting sled's own lock error.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// Name of the lock file inside the data dir.
pub(crate) const LOCK_FILE: &str = "gregor.lock";

/// The data dir is locked by another process (or another open store in this
/// one). Returned inside [`StorageError::Io`] (kind `ResourceBusy`); its
/// Display is the one line to show the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirInUse {
    /// The data dir as given to [`crate::Store::open_sled`].
    pub dir: PathBuf,
    /// The holder's pid as it wrote it into the lock file; `None` if the file
    /// held none yet (the holder is between locking and writing it).
    pub pid: Option<u32>,
}

impl fmt::Display for DataDirInUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "data dir {} is in use by another gregor process",
            self.dir.display()
        )?;
        match self.pid {
            Some(pid) => write!(f, " (pid {pid})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for DataDirInUse {}

/// Held for the store's lifetime. The OS drops the lock when the file is
/// closed, so a crashed broker never leaves the dir locked.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Locks `dir` (created if missing) or fails with [`DataDirInUse`].
    pub(crate) fn acquire(dir: &Path) -> Result<DataDirLock> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOCK_FILE);
        // Not truncated on open: until we hold the lock the pid in it is
        // the holder's, and it is what the message reports.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                let in_use = DataDirInUse {
                    dir: dir.to_path_buf(),
                    pid,
                };
                return Err(StorageError::Io(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    in_use,
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StorageError::Io(io::Error::new(
                    e.kind(),
                    format!("locking {}: {e}", path.display()),
                )))
            }
        }
        file.set_len(0)?;
        // No fsync: the pid only matters while this process is alive.
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        Ok(DataDirLock { _file: file })
    }
}
