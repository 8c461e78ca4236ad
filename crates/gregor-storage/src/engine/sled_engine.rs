//! The sled 0.34.7 engine: one tree (the default one), prefixed keys.
//!
//! sled's `flush()` writes its log with `pwrite` + `sync_file_range`, which
//! is not an fsync, and never syncs its `blobs/*` files (values larger than
//! about a quarter segment). So a durable flush is `flush()` followed by
//! `syncfs(2)` on the data directory, which covers every file sled wrote.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use bytes::Bytes;

use super::{Engine, Visitor, WriteBatch};
use crate::error::Result;

/// A sled database plus an open handle on its directory for `syncfs`.
pub(crate) struct SledEngine {
    db: sled::Db,
    dir: File,
}

impl SledEngine {
    /// Opens (or creates) the database in `dir`.
    pub(crate) fn open(
        dir: &Path,
        cache_capacity_bytes: u64,
        flush_interval_ms: u64,
    ) -> Result<SledEngine> {
        std::fs::create_dir_all(dir)?;
        let mut config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            // Kafka batches arrive already compressed.
            .use_compression(false);
        if flush_interval_ms > 0 {
            // Our own flusher runs flush + syncfs on that interval, which
            // is strictly stronger; sled's would only duplicate the work.
            config = config.flush_every_ms(None);
        }
        let db = config.open()?;
        let dir = File::open(dir)?;
        Ok(SledEngine { db, dir })
    }
}

/// `syncfs(2)`: flushes every dirty page of the filesystem holding `file`.
#[allow(unsafe_code)]
fn syncfs(file: &File) -> std::io::Result<()> {
    // SAFETY: syncfs takes a plain file descriptor and touches no memory of
    // ours; `file` owns the descriptor and keeps it open for the whole call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Engine for SledEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.db.get(key)?.map(Bytes::from_owner))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn scan(&self, from: &[u8], to: &[u8], reverse: bool, visit: &mut Visitor<'_>) -> Result<()> {
        if from >= to {
            // sled panics on an inverted range.
            return Ok(());
        }
        let range = self.db.range(from..to);
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in iter {
            let (k, v) = item?;
            // IVec is an Arc'd buffer: Bytes::from_owner keeps it alive
            // without copying the batch.
            if !visit(&k, Bytes::from_owner(v))? {
                break;
            }
        }
        Ok(())
    }

    fn flush_durable(&self) -> Result<()> {
        self.db.flush()?;
        syncfs(&self.dir)?;
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        true
    }
}
