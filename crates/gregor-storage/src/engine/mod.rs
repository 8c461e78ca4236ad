//! The key-value engines behind the store: one ordered keyspace with atomic
//! multi-key writes, ordered scans and a durable flush. The log logic lives
//! above this trait, so swapping sled for another engine touches only here.

use bytes::Bytes;

use crate::error::Result;

pub(crate) mod sled_engine;

/// Puts and deletes applied all together or not at all.
#[derive(Default, Debug)]
pub(crate) struct WriteBatch {
    pub(crate) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((key, Some(value)));
    }
    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.ops.push((key, None));
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }
}

/// Called for each entry of a scan; return `Ok(false)` to stop.
pub(crate) type Visitor<'a> = dyn FnMut(&[u8], Bytes) -> Result<bool> + 'a;

/// An ordered key-value engine. Object safe (see `_assert_object_safe`).
pub(crate) trait Engine: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Applies every op of `batch` atomically.
    fn write(&self, batch: WriteBatch) -> Result<()>;
    /// Visits the entries with `from <= key < to` in key order (descending
    /// when `reverse`), until the visitor returns false. The visitor must not
    /// call back into the engine.
    fn scan(&self, from: &[u8], to: &[u8], reverse: bool, visit: &mut Visitor<'_>) -> Result<()>;
    /// Makes every write applied so far durable.
    fn flush_durable(&self) -> Result<()>;
    /// False for the memory engine: `sync` has nothing to wait for.
    fn is_persistent(&self) -> bool;
}

fn _assert_object_safe(_: &dyn Engine) {}

/// Helpers built on [`Engine::scan`].
pub(crate) trait EngineExt: Engine {
    /// First entry in `[from, to)` (last if `reverse`).
    fn first(&self, from: &[u8], to: &[u8], reverse: bool) -> Result<Option<(Vec<u8>, Bytes)>> {
        let mut out = None;
        self.scan(from, to, reverse, &mut |k, v| {
            out = Some((k.to_vec(), v));
            Ok(false)
        })?;
        Ok(out)
    }
    /// Deletes every key in `[from, to)`, `chunk` keys per atomic write so
    /// that other writers are not stalled for long, checking `stop` before
    /// each write. Returns how many keys went, or `None` if `stop` said so
    /// first.
    fn delete_range(
        &self,
        from: &[u8],
        to: &[u8],
        chunk: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<usize>> {
        let mut n = 0;
        loop {
            if stop() {
                return Ok(None);
            }
            let keys = self.keys(from, to, chunk)?;
            if keys.is_empty() {
                return Ok(Some(n));
            }
            n += keys.len();
            let mut wb = WriteBatch::default();
            for k in keys {
                wb.delete(k);
            }
            self.write(wb)?;
        }
    }
    /// Up to `limit` keys in `[from, to)`, ascending.
    fn keys(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(from, to, false, &mut |k, _| {
            out.push(k.to_vec());
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }
}

impl<E: Engine + ?Sized> EngineExt for E {}
