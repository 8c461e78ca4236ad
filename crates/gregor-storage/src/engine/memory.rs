//! The in-memory engine: a `BTreeMap` under a lock. For `--ephemeral` and
//! fast tests; nothing survives the process.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use bytes::Bytes;

use super::{Engine, Visitor, WriteBatch};
use crate::error::Result;

/// Ordered map from key to value; values are `Bytes`, so reads never copy.
#[derive(Default)]
pub(crate) struct MemoryEngine {
    map: RwLock<BTreeMap<Vec<u8>, Bytes>>,
}

impl Engine for MemoryEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (each op is a single insert/remove), so recover from poisoning.
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(key).cloned())
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        for (k, v) in batch.ops {
            match v {
                Some(v) => {
                    map.insert(k, Bytes::from(v));
                }
                None => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn scan(&self, from: &[u8], to: &[u8], reverse: bool, visit: &mut Visitor<'_>) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let range = map.range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
        if reverse {
            for (k, v) in range.rev() {
                if !visit(k, v.clone())? {
                    break;
                }
            }
        } else {
            for (k, v) in range {
                if !visit(k, v.clone())? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn flush_durable(&self) -> Result<()> {
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }
}
