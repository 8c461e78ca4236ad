//! The store: topics, partition logs, producer ids, group offsets, the
//! writer thread and the durability barrier.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use bytes::Bytes;
use gregor_protocol::records::BatchHeader;
use serde::{Deserialize, Serialize};

use crate::durability::{lock, Checkpoint, Committer, Shared};
use crate::engine::sled_engine::SledEngine;
use crate::engine::{Engine, EngineExt, WriteBatch};
use crate::error::{Result, StorageError};
use crate::fs::{Fs, RealFs};
use crate::keys::{self, ABORTED, CHECKPOINT, DELETED, OFFSETS, PRODUCER};
use crate::lock::DataDirLock;
use crate::partition::{AbortedTxn, CheckpointRec, PartitionLog, DELETE_CHUNK};
use crate::producer::ProducerState;
use crate::sim::{SimDisk, SimFs, SimKv, ROOT};
use crate::writer::Writer;
use crate::{AppendOptions, AppendOutcome, CommittedOffset, StoreOptions, TopicMeta};

/// Producer ids reserved per durable counter write (Kafka's
/// `ProducerIdManager` block size): one flush per 1000 InitProducerId calls,
/// and ids stay unique across crashes because a block is durable before use.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Counter of log ids (named "pid" in format 1, kept for compatibility).
const LOG_ID_COUNTER: &str = "pid";
const PRODUCER_ID_COUNTER: &str = "producer_id_limit";

/// Topic metadata as persisted (JSON under `M t name`).
#[derive(Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) partitions: i32,
    pub(crate) configs: BTreeMap<String, String>,
    /// Store-wide log ids, one per partition index.
    #[serde(alias = "pids")]
    pub(crate) logs: Vec<u32>,
}

struct TopicEntry {
    meta: TopicMeta,
    parts: Vec<Arc<PartitionLog>>,
}

struct MetaState {
    next_lid: u32,
    next_producer_id: i64,
    producer_id_limit: i64,
}

/// Gregor's storage. `Send + Sync`; share it as `Arc<Store>`.
///
/// Dropping the `Store` writes what is queued, stops its background
/// threads after a last checkpoint, and marks the data dir cleanly closed
/// (the next open then reads no segment file).
pub struct Store {
    shared: Arc<Shared>,
    topics: RwLock<BTreeMap<String, TopicEntry>>,
    /// Serialises topic creation/deletion and the id counters.
    meta: Mutex<MetaState>,
    writer: Option<Writer>,
    committer: Option<Arc<Committer>>,
    janitor: Option<Janitor>,
    /// Last field, so it is released after the engine has closed.
    dir_lock: Option<DataDirLock>,
}

/// The directory of a partition: the topic name (cut so the whole name
/// fits a 255-byte file name), the partition, and the topic id, so that a
/// recreated topic never meets the old one's files.
pub(crate) fn partition_dir(root: &Path, topic: &str, id: &uuid::Uuid, partition: i32) -> PathBuf {
    let mut cut = topic.len().min(200);
    while !topic.is_char_boundary(cut) {
        cut -= 1;
    }
    root.join(format!("{}-{}-{}", &topic[..cut], partition, id.simple()))
}

fn read_counter(shared: &Shared, name: &str) -> Result<i64> {
    match shared.engine.get(&keys::counter_key(name))? {
        None => Ok(0),
        Some(v) => {
            let a: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                StorageError::Corrupt(format!("counter {name} of {} bytes", v.len()))
            })?;
            Ok(i64::from_be_bytes(a))
        }
    }
}

fn encode_offset(o: &CommittedOffset) -> Vec<u8> {
    let meta = o.metadata.as_deref();
    let mut v = Vec::with_capacity(21 + meta.map_or(0, str::len));
    v.extend_from_slice(&o.offset.to_be_bytes());
    v.extend_from_slice(&o.leader_epoch.to_be_bytes());
    v.extend_from_slice(&o.commit_timestamp.to_be_bytes());
    match meta {
        None => v.push(0),
        Some(m) => {
            v.push(1);
            v.extend_from_slice(m.as_bytes());
        }
    }
    v
}

fn decode_offset(key: &[u8], v: &[u8]) -> Result<CommittedOffset> {
    let bad = || StorageError::Corrupt(format!("committed offset of {} bytes", v.len()));
    let (_, topic, partition) = keys::parse_offset_commit_key(key).ok_or_else(bad)?;
    if v.len() < 21 {
        return Err(bad());
    }
    let i64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&v[at..at + 8]);
        i64::from_be_bytes(a)
    };
    let metadata = match v[20] {
        0 => None,
        1 => Some(String::from_utf8(v[21..].to_vec()).map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    Ok(CommittedOffset {
        topic,
        partition,
        offset: i64_at(0),
        leader_epoch: i32::from_be_bytes([v[8], v[9], v[10], v[11]]),
        metadata,
        commit_timestamp: i64_at(12),
    })
}

impl Store {
    /// Opens (or creates) a persistent store in `dir`: sled for indexes and
    /// metadata, segment files for the batches. A store of format 1 (batches
    /// in sled) is migrated first. After an unclean stop every partition
    /// re-reads what lies after its recovery point.
    pub fn open_sled(dir: &Path, opts: StoreOptions) -> Result<Arc<Store>> {
        // Before sled's own lock, so a second broker is told who holds the dir.
        let dir_lock = DataDirLock::acquire(dir)?;
        let engine = SledEngine::open(dir, opts.cache_capacity_bytes, opts.flush_interval_ms)?;
        let mut store =
            Store::open_engine(Box::new(engine), Arc::new(RealFs), dir.to_path_buf(), &opts)?;
        Arc::get_mut(&mut store)
            .expect("a store just opened has no other handle")
            .dir_lock = Some(dir_lock);
        Ok(store)
    }

    /// Opens a store on a simulated disk that records what is durable
    /// ([`SimDisk::new`]`(true)`): crash-image tests open one, write, take
    /// [`SimDisk::crash_image`]s and open stores on those.
    pub fn open_sim(disk: &Arc<SimDisk>, opts: StoreOptions) -> Result<Arc<Store>> {
        Store::open_engine(
            Box::new(SimKv(Arc::clone(disk))),
            Arc::new(SimFs(Arc::clone(disk))),
            PathBuf::from(ROOT),
            &opts,
        )
    }

    /// Loads a persistent engine and starts the background threads.
    fn open_engine(
        engine: Box<dyn Engine>,
        fs: Arc<dyn Fs>,
        root: PathBuf,
        opts: &StoreOptions,
    ) -> Result<Arc<Store>> {
        let shared = Arc::new(Shared::new(
            engine,
            fs,
            root,
            opts.max_open_files,
            opts.index_interval_bytes,
        ));
        let mut store = Store::load(Arc::clone(&shared))?;
        let committer = Arc::new(Committer::start(
            Arc::clone(&shared),
            opts.flush_interval_ms,
        )?);
        store.writer = Some(Writer::start(
            Some(Arc::clone(&committer)),
            Arc::clone(&shared),
        )?);
        store.committer = Some(committer);
        let janitor = Janitor::start(shared)?;
        janitor.kick(); // resume purges interrupted by a restart
        store.janitor = Some(janitor);
        Ok(Arc::new(store))
    }

    /// An in-memory store (`--ephemeral`, tests): nothing survives the
    /// process and `sync` resolves at once.
    pub fn open_memory(opts: StoreOptions) -> Arc<Store> {
        let disk = SimDisk::new(false);
        let shared = Arc::new(Shared::new(
            Box::new(SimKv(Arc::clone(&disk))),
            Arc::new(SimFs(disk)),
            PathBuf::from(ROOT),
            opts.max_open_files,
            opts.index_interval_bytes,
        ));
        Arc::new(Store {
            shared,
            topics: RwLock::new(BTreeMap::new()),
            meta: Mutex::new(MetaState {
                next_lid: 0,
                next_producer_id: 0,
                producer_id_limit: 0,
            }),
            writer: None,
            committer: None,
            janitor: None,
            dir_lock: None,
        })
    }

    fn load(shared: Arc<Shared>) -> Result<Store> {
        let engine = &*shared.engine;
        match engine.get(&keys::format_key())? {
            None => {
                let mut wb = WriteBatch::default();
                wb.put(keys::format_key(), keys::FORMAT_VERSION.to_vec());
                engine.write(wb)?;
                shared.mark_dirty();
            }
            Some(v) if v.as_ref() == keys::FORMAT_VERSION => {}
            Some(v) if v.as_ref() == keys::FORMAT_V1 => crate::migrate::from_v1(&shared)?,
            Some(v) => {
                return Err(StorageError::Corrupt(format!(
                    "unsupported storage format version {:?}",
                    String::from_utf8_lossy(&v)
                )))
            }
        }
        let clean = engine.get(&keys::clean_key())?.is_some();
        if clean {
            // From here on a crash must trigger recovery again: the marker
            // goes, durably, before anything else is written.
            let mut wb = WriteBatch::default();
            wb.delete(keys::clean_key());
            engine.write(wb)?;
            shared.mark_dirty();
            shared.flush_durable(Checkpoint::None)?;
        }
        let next_lid = u32::try_from(read_counter(&shared, LOG_ID_COUNTER)?)
            .map_err(|_| StorageError::Corrupt("log id counter out of range".into()))?;
        let producer_id_limit = read_counter(&shared, PRODUCER_ID_COUNTER)?;

        let mut records = Vec::new();
        let (from, to) = keys::prefix_range(&keys::topic_prefix());
        engine.scan(&from, &to, false, &mut |_, v| {
            let r: TopicRecord = serde_json::from_slice(&v)
                .map_err(|e| StorageError::Corrupt(format!("topic metadata: {e}")))?;
            records.push(r);
            Ok(true)
        })?;
        // One scan each for every partition's checkpoint and producers:
        // opening costs a few bytes per partition, whatever the data kept.
        let mut ckpts: HashMap<u32, CheckpointRec> = HashMap::new();
        let (from, to) = keys::prefix_range(&[CHECKPOINT]);
        engine.scan(&from, &to, false, &mut |k, v| {
            let lid =
                keys::lid_of(k).ok_or_else(|| StorageError::Corrupt("checkpoint key".into()))?;
            ckpts.insert(lid, CheckpointRec::decode(&v)?);
            Ok(true)
        })?;
        let mut producers: HashMap<u32, HashMap<i64, ProducerState>> = HashMap::new();
        let (from, to) = keys::prefix_range(&[PRODUCER]);
        engine.scan(&from, &to, false, &mut |k, v| {
            let (Some(lid), Some(id)) = (keys::lid_of(k), keys::offset_of(k)) else {
                return Err(StorageError::Corrupt("producer key".into()));
            };
            producers
                .entry(lid)
                .or_default()
                .insert(id, ProducerState::decode(&v)?);
            Ok(true)
        })?;
        let mut aborted: HashMap<u32, Vec<AbortedTxn>> = HashMap::new();
        let (from, to) = keys::prefix_range(&[ABORTED]);
        engine.scan(&from, &to, false, &mut |k, v| {
            let (Some(lid), Some(last)) = (keys::lid_of(k), keys::offset_of(k)) else {
                return Err(StorageError::Corrupt("aborted transaction key".into()));
            };
            aborted
                .entry(lid)
                .or_default()
                .push(AbortedTxn::decode(last, &v)?);
            Ok(true)
        })?;
        let mut topics = BTreeMap::new();
        for r in records {
            let id = uuid::Uuid::parse_str(&r.id)
                .map_err(|e| StorageError::Corrupt(format!("topic {} id: {e}", r.name)))?;
            if r.logs.len() != usize::try_from(r.partitions).unwrap_or(usize::MAX) {
                return Err(StorageError::Corrupt(format!(
                    "topic {} partition ids",
                    r.name
                )));
            }
            let mut parts = Vec::with_capacity(r.logs.len());
            for (i, lid) in r.logs.iter().enumerate() {
                let index = i32::try_from(i).map_err(|_| {
                    StorageError::Corrupt(format!("topic {} has too many partitions", r.name))
                })?;
                parts.push(PartitionLog::load(
                    Arc::clone(&shared),
                    &r.name,
                    index,
                    *lid,
                    partition_dir(&shared.root, &r.name, &id, index),
                    ckpts.remove(lid),
                    producers.remove(lid).unwrap_or_default(),
                    aborted.remove(lid).unwrap_or_default(),
                    clean,
                )?);
            }
            let meta = TopicMeta {
                name: r.name.clone(),
                id,
                partitions: r.partitions,
                configs: r.configs,
            };
            topics.insert(r.name, TopicEntry { meta, parts });
        }
        Ok(Store {
            shared,
            topics: RwLock::new(topics),
            meta: Mutex::new(MetaState {
                next_lid,
                // Ids below the last durable limit may have been handed out.
                next_producer_id: producer_id_limit,
                producer_id_limit,
            }),
            writer: None,
            committer: None,
            janitor: None,
            dir_lock: None,
        })
    }

    fn topics_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, TopicEntry>> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn topics_write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, TopicEntry>> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a topic with `partitions` empty partitions. `TopicExists` if
    /// the name is taken, `InvalidPartitions` below 1. Durable at the next
    /// [`Store::sync`].
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta> {
        self.shared.check_writable()?;
        if partitions < 1 {
            return Err(StorageError::InvalidPartitions(partitions));
        }
        let mut meta = lock(&self.meta);
        if self.topics_read().contains_key(name) {
            return Err(StorageError::TopicExists);
        }
        let first = meta.next_lid;
        let next = u32::try_from(partitions)
            .ok()
            .and_then(|n| first.checked_add(n))
            .ok_or_else(|| StorageError::Engine("partition ids exhausted".into()))?;
        let id = uuid::Uuid::new_v4();
        let record = TopicRecord {
            name: name.to_owned(),
            id: id.to_string(),
            partitions,
            configs,
            logs: (first..next).collect(),
        };
        let json = serde_json::to_vec(&record).map_err(|e| StorageError::Engine(e.to_string()))?;
        let mut wb = WriteBatch::default();
        wb.put(keys::topic_key(name), json);
        wb.put(
            keys::counter_key(LOG_ID_COUNTER),
            i64::from(next).to_be_bytes().to_vec(),
        );
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        meta.next_lid = next;

        let topic_meta = TopicMeta {
            name: record.name,
            id,
            partitions,
            configs: record.configs,
        };
        let parts = record
            .logs
            .iter()
            .enumerate()
            .map(|(i, lid)| {
                // i < partitions, an i32.
                let index = i32::try_from(i).unwrap_or(i32::MAX);
                PartitionLog::create(
                    Arc::clone(&self.shared),
                    name,
                    index,
                    *lid,
                    partition_dir(&self.shared.root, name, &id, index),
                )
            })
            .collect();
        self.topics_write().insert(
            name.to_owned(),
            TopicEntry {
                meta: topic_meta.clone(),
                parts,
            },
        );
        Ok(topic_meta)
    }

    fn write_topic_record(
        &self,
        meta: &TopicMeta,
        logs: &[u32],
        next_lid: Option<u32>,
    ) -> Result<()> {
        let record = TopicRecord {
            name: meta.name.clone(),
            id: meta.id.to_string(),
            partitions: meta.partitions,
            configs: meta.configs.clone(),
            logs: logs.to_vec(),
        };
        let json = serde_json::to_vec(&record).map_err(|e| StorageError::Engine(e.to_string()))?;
        let mut wb = WriteBatch::default();
        wb.put(keys::topic_key(&meta.name), json);
        if let Some(next) = next_lid {
            wb.put(
                keys::counter_key(LOG_ID_COUNTER),
                i64::from(next).to_be_bytes().to_vec(),
            );
        }
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        Ok(())
    }

    /// Replaces a topic's config overrides (IncrementalAlterConfigs,
    /// AlterConfigs). Durable at the next [`Store::sync`]; every reader of
    /// [`Store::topic`] sees them at once.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta> {
        self.shared.check_writable()?;
        let _meta = lock(&self.meta);
        let mut topics = self.topics_write();
        let entry = topics.get_mut(name).ok_or(StorageError::UnknownTopic)?;
        let mut next = entry.meta.clone();
        next.configs = configs;
        let logs: Vec<u32> = entry.parts.iter().map(|p| p.lid()).collect();
        self.write_topic_record(&next, &logs, None)?;
        entry.meta = next.clone();
        Ok(next)
    }

    /// Raises a topic's partition count (CreatePartitions): new, empty
    /// partitions with fresh log ids. `InvalidPartitions` unless `count` is
    /// larger than the current count. Durable at the next [`Store::sync`].
    pub fn add_partitions(&self, name: &str, count: i32) -> Result<TopicMeta> {
        self.shared.check_writable()?;
        let mut meta = lock(&self.meta);
        let mut topics = self.topics_write();
        let entry = topics.get_mut(name).ok_or(StorageError::UnknownTopic)?;
        if count <= entry.meta.partitions {
            return Err(StorageError::InvalidPartitions(count));
        }
        let add = u32::try_from(count - entry.meta.partitions).unwrap_or(0);
        let first = meta.next_lid;
        let next_lid = first
            .checked_add(add)
            .ok_or_else(|| StorageError::Engine("partition ids exhausted".into()))?;
        let mut next = entry.meta.clone();
        next.partitions = count;
        let mut logs: Vec<u32> = entry.parts.iter().map(|p| p.lid()).collect();
        logs.extend(first..next_lid);
        self.write_topic_record(&next, &logs, Some(next_lid))?;
        meta.next_lid = next_lid;
        for (i, lid) in (first..next_lid).enumerate() {
            let index = entry.meta.partitions + i32::try_from(i).unwrap_or(i32::MAX);
            entry.parts.push(PartitionLog::create(
                Arc::clone(&self.shared),
                name,
                index,
                lid,
                partition_dir(&self.shared.root, name, &next.id, index),
            ));
        }
        entry.meta = next.clone();
        Ok(next)
    }

    /// A small named value of the broker's own (cluster id, dynamic broker
    /// configs), under `M x <name>`.
    pub fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .shared
            .engine
            .get(&keys::meta_value_key(name))?
            .map(|v| v.to_vec()))
    }

    /// Writes (or with `None` removes) a named value; durable at the next
    /// [`Store::sync`].
    pub fn set_meta_value(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        self.shared.check_writable()?;
        let mut wb = WriteBatch::default();
        match value {
            Some(v) => wb.put(keys::meta_value_key(name), v.to_vec()),
            None => wb.delete(keys::meta_value_key(name)),
        }
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        Ok(())
    }

    /// Deletes a topic (`UnknownTopic` if there is none). The name is free
    /// at once and a recreated topic starts empty at offset 0 in new
    /// directories; the old data is purged in the background. Durable at
    /// the next [`Store::sync`].
    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta> {
        self.shared.check_writable()?;
        let _meta = lock(&self.meta);
        let doomed: Vec<(u32, PathBuf)> = match self.topics_read().get(name) {
            None => return Err(StorageError::UnknownTopic),
            Some(t) => t
                .parts
                .iter()
                .map(|p| (p.lid(), p.dir().to_path_buf()))
                .collect(),
        };
        let mut wb = WriteBatch::default();
        wb.delete(keys::topic_key(name));
        for (lid, dir) in &doomed {
            let rel = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            wb.put(keys::deleted_key(*lid), rel.into_bytes());
        }
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        let Some(entry) = self.topics_write().remove(name) else {
            return Err(StorageError::UnknownTopic);
        };
        for p in &entry.parts {
            p.mark_deleted();
        }
        match &self.janitor {
            Some(j) => j.kick(),
            None => {
                // Memory: purging is quick, do it now.
                if let Err(e) = purge_deleted(&self.shared, &AtomicBool::new(false)) {
                    tracing::warn!(error = %e, "purging a deleted topic failed");
                }
            }
        }
        Ok(entry.meta)
    }

    /// Runs the purge of deleted topics' data now, on this thread (tests,
    /// tools). Normally the background janitor does it.
    pub fn purge_deleted_topics(&self) -> Result<()> {
        purge_deleted(&self.shared, &AtomicBool::new(false))
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.topics_read().get(name).map(|t| t.meta.clone())
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<TopicMeta> {
        self.topics_read()
            .values()
            .find(|t| t.meta.id == id)
            .map(|t| t.meta.clone())
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<TopicMeta> {
        self.topics_read()
            .values()
            .map(|t| t.meta.clone())
            .collect()
    }

    /// One partition's log.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        let topics = self.topics_read();
        let t = topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.parts.get(i))
            .cloned()
    }

    /// Appends a batch whose header the caller parsed, on the writer thread
    /// (memory stores: right here, there is no I/O). See
    /// [`PartitionLog::append_parsed`]. The write is queued before this
    /// returns (appends keep the caller's order); the future resolves once
    /// written, or with `durable` (acks=all) once the group commit made it
    /// durable (`Poisoned` if it failed). Otherwise durable once
    /// [`Store::sync`] resolves.
    pub fn append(
        &self,
        log: &Arc<PartitionLog>,
        batch: Bytes,
        header: BatchHeader,
        opts: AppendOptions,
        durable: bool,
    ) -> impl Future<Output = Result<AppendOutcome>> + Send + 'static {
        let pending = match &self.writer {
            Some(w) => Err(w.submit(Arc::clone(log), batch, header, opts, durable)),
            None => Ok(log.append_parsed(&batch, header, opts)),
        };
        async move {
            match pending {
                Ok(done) => done,
                Err(rx) => rx
                    .await
                    .unwrap_or_else(|_| Err(StorageError::Engine("writer thread stopped".into()))),
            }
        }
    }

    /// A new producer id for InitProducerId, unique across restarts: ids are
    /// reserved in durable blocks of 1000, so at most one flush per block.
    pub fn next_producer_id(&self) -> Result<i64> {
        self.shared.check_writable()?;
        let mut meta = lock(&self.meta);
        if meta.next_producer_id >= meta.producer_id_limit {
            let limit = meta.next_producer_id + PRODUCER_ID_BLOCK;
            let mut wb = WriteBatch::default();
            wb.put(
                keys::counter_key(PRODUCER_ID_COUNTER),
                limit.to_be_bytes().to_vec(),
            );
            self.shared.engine.write(wb)?;
            self.shared.mark_dirty();
            if self.shared.engine.is_persistent() {
                self.shared.flush_durable(Checkpoint::None)?;
            }
            meta.producer_id_limit = limit;
        }
        let id = meta.next_producer_id;
        meta.next_producer_id += 1;
        Ok(id)
    }

    /// Resolves once every write made before the call is durable (group
    /// commit: one cycle of directory and segment syncs, plus a sled flush
    /// when sled was written, answers every waiter registered before it
    /// started). Memory store: resolves at once. `Poisoned` after a failed
    /// sync.
    pub fn sync(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let pending = match self.shared.check_writable() {
            Err(e) => Err(e),
            Ok(()) => Ok(self.committer.as_ref().map(|c| c.register())),
        };
        async move {
            match pending? {
                None => Ok(()),
                Some(rx) => rx.await.unwrap_or_else(|_| {
                    Err(StorageError::Engine("group-commit thread stopped".into()))
                }),
            }
        }
    }

    /// Makes the next durable flush fail as a failed fsync would, which
    /// poisons the store: for tests (and fault injection) of what every
    /// acknowledgement does when the disk refuses a write. A memory store
    /// never flushes, so only a persistent one is affected.
    pub fn inject_flush_failure(&self) {
        self.shared.inject_flush_failure();
    }

    /// Sets the observer of group-commit cycles (once; later calls are
    /// ignored).
    pub fn set_sync_observer(&self, observer: crate::durability::SyncObserver) {
        let _ = self.shared.observer.set(observer);
    }

    /// Blocking durable flush and checkpoint of everything written so far.
    pub fn flush_now(&self) -> Result<()> {
        self.shared.flush_durable(Checkpoint::All)
    }

    /// True once a flush has failed (see [`StorageError::Poisoned`]).
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// False for memory stores: nothing they do touches a disk, so callers
    /// need not move their calls off an async worker.
    pub fn is_persistent(&self) -> bool {
        self.shared.engine.is_persistent()
    }

    /// Segment files currently open (tests of the descriptor cap).
    pub fn open_files(&self) -> usize {
        self.shared.files.open_count()
    }

    /// Stores a group's offsets in one atomic write (durable at the next
    /// [`Store::sync`]). Later commits of a partition replace earlier ones.
    pub fn commit_offsets(&self, group: &str, offsets: &[CommittedOffset]) -> Result<()> {
        self.shared.check_writable()?;
        if offsets.is_empty() {
            return Ok(());
        }
        let mut wb = WriteBatch::default();
        for o in offsets {
            wb.put(
                keys::offset_commit_key(group, &o.topic, o.partition),
                encode_offset(o),
            );
        }
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        Ok(())
    }

    /// A group's committed offsets, sorted by topic then partition.
    pub fn committed_offsets(&self, group: &str) -> Result<Vec<CommittedOffset>> {
        let (from, to) = keys::prefix_range(&keys::group_prefix(group));
        let mut out = Vec::new();
        self.shared.engine.scan(&from, &to, false, &mut |k, v| {
            out.push(decode_offset(k, &v)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes a group's committed offsets: all of them (`None`) or the
    /// listed partitions, in one atomic write.
    pub fn delete_committed_offsets(
        &self,
        group: &str,
        which: Option<&[(String, i32)]>,
    ) -> Result<()> {
        self.shared.check_writable()?;
        let mut wb = WriteBatch::default();
        match which {
            Some(list) => {
                for (topic, partition) in list {
                    wb.delete(keys::offset_commit_key(group, topic, *partition));
                }
            }
            None => {
                let (from, to) = keys::prefix_range(&keys::group_prefix(group));
                self.shared.engine.scan(&from, &to, false, &mut |k, _| {
                    wb.delete(k.to_vec());
                    Ok(true)
                })?;
            }
        }
        if wb.is_empty() {
            return Ok(());
        }
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        Ok(())
    }

    /// Writes one transactional id's coordinator state (`None` deletes it)
    /// and, in the same atomic write, group offsets the transaction's
    /// commit makes visible. Durable at the next [`Store::sync`].
    pub fn write_txn(
        &self,
        id: &str,
        state: Option<&[u8]>,
        offsets: &[(String, Vec<CommittedOffset>)],
    ) -> Result<()> {
        self.shared.check_writable()?;
        let mut wb = WriteBatch::default();
        match state {
            Some(v) => wb.put(keys::txn_key(id), v.to_vec()),
            None => wb.delete(keys::txn_key(id)),
        }
        for (group, list) in offsets {
            for o in list {
                wb.put(
                    keys::offset_commit_key(group, &o.topic, o.partition),
                    encode_offset(o),
                );
            }
        }
        self.shared.engine.write(wb)?;
        self.shared.mark_dirty();
        Ok(())
    }

    /// Every transactional id's stored state, in id order.
    pub fn txns(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let (from, to) = keys::prefix_range(&[keys::TXN]);
        let mut out = Vec::new();
        self.shared.engine.scan(&from, &to, false, &mut |k, v| {
            out.push((String::from_utf8_lossy(&k[1..]).into_owned(), v.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Every group with at least one committed offset, sorted.
    pub fn groups_with_offsets(&self) -> Result<Vec<String>> {
        let (mut from, to) = keys::prefix_range(&[OFFSETS]);
        let mut groups = Vec::new();
        // One seek per group: jump past each group's keys.
        while let Some((k, _)) = self.shared.engine.first(&from, &to, false)? {
            let (group, _, _) = keys::parse_offset_commit_key(&k)
                .ok_or_else(|| StorageError::Corrupt("committed offset key".into()))?;
            match keys::prefix_end(&keys::group_prefix(&group)) {
                Some(next) => from = next,
                None => {
                    groups.push(group);
                    break;
                }
            }
            groups.push(group);
        }
        Ok(groups)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(w) = &self.writer {
            w.shutdown();
        }
        if let Some(j) = &self.janitor {
            j.shutdown();
        }
        if let Some(c) = &self.committer {
            c.shutdown();
            let damaged = self
                .topics_read()
                .values()
                .any(|t| t.parts.iter().any(|p| p.quarantine_reason().is_some()));
            // A clean close lets the next open skip recovery, so it is only
            // claimed when every partition is checkpointed up to its end
            // (and never over a quarantined one, which must be looked at
            // again).
            if !damaged && !self.shared.is_poisoned() {
                let r = self.shared.flush_durable(Checkpoint::All).and_then(|()| {
                    let mut wb = WriteBatch::default();
                    wb.put(keys::clean_key(), Vec::new());
                    self.shared.engine.write(wb)?;
                    self.shared.mark_dirty();
                    self.shared.flush_durable(Checkpoint::None)
                });
                if let Err(e) = r {
                    tracing::warn!(error = %e, "closing the store cleanly failed; the next start recovers");
                }
            }
        }
        self.shared.close();
    }
}

/// Deletes the data of every partition queued under `D` (its directory,
/// then its keys, chunk by chunk); returns early (leaving the rest queued)
/// when `stop` is set.
fn purge_deleted(shared: &Shared, stop: &AtomicBool) -> Result<()> {
    let engine = &*shared.engine;
    let (from, to) = keys::prefix_range(&[DELETED]);
    let mut queued = Vec::new();
    engine.scan(&from, &to, false, &mut |k, v| {
        queued.push((k.to_vec(), v));
        Ok(true)
    })?;
    for (key, dir) in queued {
        let Some(lid) = keys::lid_of(&key) else {
            continue;
        };
        let name = String::from_utf8_lossy(&dir).into_owned();
        if !name.is_empty() && !name.contains('/') && name != ".." {
            let dir = shared.root.join(name);
            shared.files.forget_under(&dir);
            shared.fs.remove_dir_all(&dir)?;
            shared.fs.sync_dir(&shared.root)?;
        }
        for tag in keys::PARTITION_TAGS {
            let (pfrom, pto) = keys::prefix_range(&keys::partition_prefix(tag, lid));
            let stopped = || stop.load(Ordering::Acquire);
            if engine
                .delete_range(&pfrom, &pto, DELETE_CHUNK, &stopped)?
                .is_none()
            {
                return Ok(());
            }
        }
        let mut wb = WriteBatch::default();
        wb.delete(key);
        engine.write(wb)?;
        shared.mark_dirty();
    }
    Ok(())
}

#[derive(Default)]
struct JanitorState {
    kicked: bool,
    shutdown: bool,
}

struct JanitorCtl {
    state: Mutex<JanitorState>,
    cv: Condvar,
    stop: AtomicBool,
}

/// Background purge of deleted topics (deleting many keys can take
/// seconds, which must not block a DeleteTopics request).
struct Janitor {
    ctl: Arc<JanitorCtl>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Janitor {
    fn start(shared: Arc<Shared>) -> Result<Janitor> {
        let ctl = Arc::new(JanitorCtl {
            state: Mutex::new(JanitorState::default()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let c = Arc::clone(&ctl);
        let thread = std::thread::Builder::new()
            .name("gregor-purge".into())
            .spawn(move || loop {
                let mut st = lock(&c.state);
                while !st.kicked && !st.shutdown {
                    st = c.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.shutdown {
                    return;
                }
                st.kicked = false;
                drop(st);
                if shared.is_poisoned() {
                    continue;
                }
                if let Err(e) = purge_deleted(&shared, &c.stop) {
                    tracing::warn!(error = %e, "purging deleted topics failed; will retry on the next delete or restart");
                }
            })?;
        Ok(Janitor {
            ctl,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn kick(&self) {
        lock(&self.ctl.state).kicked = true;
        self.ctl.cv.notify_one();
    }

    fn shutdown(&self) {
        self.ctl.stop.store(true, Ordering::Release);
        lock(&self.ctl.state).shutdown = true;
        self.ctl.cv.notify_one();
        if let Some(t) = lock(&self.thread).take() {
            if t.join().is_err() {
                tracing::error!("purge thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Visitor;
    use crate::AppendOptions;
    use bytes::Bytes;

    /// A persistent engine whose flush fails on demand.
    struct FlakyEngine {
        inner: SimKv,
        fail: Arc<AtomicBool>,
    }

    impl Engine for FlakyEngine {
        fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
            self.inner.get(key)
        }
        fn write(&self, batch: WriteBatch) -> Result<()> {
            self.inner.write(batch)
        }
        fn scan(
            &self,
            from: &[u8],
            to: &[u8],
            reverse: bool,
            visit: &mut Visitor<'_>,
        ) -> Result<()> {
            self.inner.scan(from, to, reverse, visit)
        }
        fn flush_durable(&self) -> Result<()> {
            if self.fail.load(Ordering::Acquire) {
                Err(std::io::Error::other("injected EIO").into())
            } else {
                Ok(())
            }
        }
        fn is_persistent(&self) -> bool {
            true
        }
    }

    /// A minimal valid batch header of one record (CRC is not checked by append).
    fn one_record_batch() -> Vec<u8> {
        let mut b = vec![0u8; gregor_protocol::records::BATCH_HEADER_LEN];
        b[8..12].copy_from_slice(&49i32.to_be_bytes()); // batch length
        b[16] = 2; // magic
        b[43..51].copy_from_slice(&(-1i64).to_be_bytes()); // producer id
        b[53..57].copy_from_slice(&(-1i32).to_be_bytes()); // base sequence
        b[57..61].copy_from_slice(&1i32.to_be_bytes()); // records count
        b
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_failed_flush_poisons_the_store() {
        let disk = SimDisk::new(true);
        let engine = FlakyEngine {
            inner: SimKv(Arc::clone(&disk)),
            fail: Arc::new(AtomicBool::new(false)),
        };
        let fail = Arc::clone(&engine.fail);
        let opts = StoreOptions {
            flush_interval_ms: 0,
            ..StoreOptions::default()
        };
        let store = Store::open_engine(
            Box::new(engine),
            Arc::new(SimFs(disk)),
            PathBuf::from(ROOT),
            &opts,
        )
        .expect("open");
        store.create_topic("t", 1, BTreeMap::new()).expect("create");
        let p = store.partition("t", 0).expect("partition");
        let o = AppendOptions::default();
        p.append(one_record_batch(), o).expect("append");
        block_on(store.sync()).expect("healthy sync");

        fail.store(true, Ordering::Release);
        p.append(one_record_batch(), o)
            .expect("append before the failing flush");
        // Appends alone sync segment files; a sled write makes the cycle
        // flush the engine too, which fails.
        store
            .create_topic("dirty", 1, BTreeMap::new())
            .expect("create before the failing flush");
        assert!(matches!(
            block_on(store.sync()),
            Err(StorageError::Poisoned)
        ));
        assert!(store.is_poisoned());
        // Even once the disk "recovers", nothing is accepted any more.
        fail.store(false, Ordering::Release);
        assert!(matches!(
            p.append(one_record_batch(), o),
            Err(StorageError::Poisoned)
        ));
        assert!(matches!(
            block_on(store.sync()),
            Err(StorageError::Poisoned)
        ));
        assert!(matches!(store.flush_now(), Err(StorageError::Poisoned)));
        assert!(matches!(
            store.commit_offsets(
                "g",
                &[CommittedOffset {
                    topic: "t".into(),
                    partition: 0,
                    offset: 1,
                    leader_epoch: -1,
                    metadata: None,
                    commit_timestamp: 0
                }]
            ),
            Err(StorageError::Poisoned)
        ));
        assert!(matches!(
            store.create_topic("u", 1, BTreeMap::new()),
            Err(StorageError::Poisoned)
        ));
        // Reads still work: the data in the engine is readable, just not durable.
        assert_eq!(p.read(0, usize::MAX).expect("read").batches.len(), 2);
    }
}
