//! The sled 0.34.7 engine: one tree (the default one), prefixed keys.
//!
//! sled's `flush()` writes its log with `pwrite` + `sync_file_range`, which
//! is not an fsync. So a durable flush is `flush()` followed by an
//! `fdatasync` of sled's log file (`db`). Only indexes and small records
//! live in sled now, far below the size at which sled moves a value to a
//! separate (never synced) blob file. No `syncfs`: acks must not pay for
//! other processes' dirty pages.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

use super::{Engine, Visitor, WriteBatch};
use crate::error::Result;

/// sled's segment size for new databases: its default. sled keeps several
/// I/O buffers of this size, and with batches in segment files its values
/// are all small (format 1 used 8 MiB to keep batches inline).
const SEGMENT_SIZE: usize = 512 << 10;

/// A sled database plus an open handle on its log file for `fdatasync`.
pub(crate) struct SledEngine {
    db: sled::Db,
    log: File,
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
            .use_compression(false)
            // Fixed when the database is created.
            .segment_size(existing_segment_size(dir).unwrap_or(SEGMENT_SIZE))
            .mode(sled::Mode::HighThroughput);
        if flush_interval_ms > 0 {
            // Our own flusher runs flush + fdatasync on that interval,
            // which is strictly stronger; sled's would only duplicate it.
            config = config.flush_every_ms(None);
        }
        let db = open_retrying(&config)?;
        let log = File::open(dir.join("db"))?;
        // sled created its files just now, maybe: make their names durable.
        File::open(dir)?.sync_all()?;
        Ok(SledEngine { db, log })
    }
}

/// Opens sled, retrying for a moment while its own file lock is taken.
/// The caller holds the data dir lock (`gregor.lock`), so that lock can
/// only be held by a `sled::Db` of this process that was just dropped and
/// whose background threads have not let go of it yet.
fn open_retrying(config: &sled::Config) -> Result<sled::Db> {
    let mut tries = 0;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if tries < 100 && e.to_string().contains("could not acquire lock") =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return Ok(other?),
        }
    }
}

/// The segment size an existing database was created with: sled refuses
/// to open it with any other. Read from the `segment_size: N` line of
/// sled's `conf` file; `None` for a new database.
fn existing_segment_size(dir: &Path) -> Option<usize> {
    let conf = std::fs::read(dir.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("segment_size: "))
        .and_then(|v| v.trim().parse().ok())
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
        self.log.sync_data()?;
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database created with sled's default 512 KiB segments (earlier
    /// Gregor versions) still opens, with its own segment size.
    #[test]
    fn opens_databases_created_with_another_segment_size() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        {
            let db = sled::Config::new()
                .path(&dir)
                .segment_size(512 * 1024)
                .open();
            assert!(db.is_ok());
            let db = db.ok();
            assert!(db
                .as_ref()
                .map(|d| d.insert(b"k", b"v").is_ok())
                .unwrap_or(false));
            assert!(db.map(|d| d.flush().is_ok()).unwrap_or(false));
        }
        assert_eq!(existing_segment_size(&dir), Some(512 * 1024));
        let e = SledEngine::open(&dir, 1 << 20, 1000);
        assert!(e.is_ok(), "{:?}", e.err().map(|e| e.to_string()));
        let fresh = tempfile::tempdir().map_err(|e| e.to_string());
        let fresh = fresh
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        assert!(SledEngine::open(&fresh, 1 << 20, 1000).is_ok());
        assert_eq!(existing_segment_size(&fresh), Some(SEGMENT_SIZE));
    }
}
