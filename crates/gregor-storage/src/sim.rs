//! A simulated disk: the filesystem and the key-value engine of a store,
//! in memory, with a model of what a power loss keeps.
//!
//! It backs `--ephemeral` stores (then nothing is tracked) and the
//! crash-image tests: [`SimDisk::crash_image`] returns the disk as it could
//! be found after the power failed at this instant:
//! - a file keeps what its last `sync_data` covered, plus an in-order prefix
//!   of the writes made since, the last of which may be torn;
//! - a file or directory created (or removed) since its parent directory was
//!   last synced may or may not exist;
//! - the key-value store keeps every write before its last durable flush
//!   plus an in-order prefix of the later ones (sled's log gives that).
//!
//! A SIGKILL keeps the page cache, so only such images catch a missing sync.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::engine::{Engine, Visitor, WriteBatch};
use crate::fs::{FileHandle, Fs};

/// Root directory of a simulated disk.
pub const ROOT: &str = "/sim";

#[derive(Clone, Debug)]
enum FileOp {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct SimFile {
    id: u64,
    data: Vec<u8>,
    /// Content as of the last sync (tracking only).
    durable: Vec<u8>,
    /// Writes since the last sync (tracking only).
    pending: Vec<FileOp>,
}

#[derive(Clone, Debug, Default)]
struct DiskState {
    files: BTreeMap<PathBuf, SimFile>,
    dirs: BTreeSet<PathBuf>,
    /// Per directory, the entries a crash keeps for sure (tracking only):
    /// its children as of its last sync.
    durable_names: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// Removed files whose removal is not durable yet (tracking only).
    graveyard: BTreeMap<PathBuf, SimFile>,
    kv: BTreeMap<Vec<u8>, Bytes>,
    kv_durable: BTreeMap<Vec<u8>, Bytes>,
    kv_pending: Vec<Vec<(Vec<u8>, Option<Bytes>)>>,
    next_id: u64,
    /// Counters for tests: how many syncs each kind.
    file_syncs: u64,
}

/// The simulated disk. Share it as `Arc<SimDisk>`.
#[derive(Debug)]
pub struct SimDisk {
    state: Mutex<DiskState>,
    track: bool,
}

/// A deterministic xorshift generator, so a failing crash point can be replayed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in `0..=n`.
    pub fn upto(&mut self, n: u64) -> u64 {
        if n == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (n + 1)
        }
    }
    /// A coin flip.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

fn apply(data: &mut Vec<u8>, op: &FileOp) {
    match op {
        FileOp::Write(pos, bytes) => {
            let pos = usize::try_from(*pos).unwrap_or(usize::MAX);
            let end = pos.saturating_add(bytes.len());
            if data.len() < end {
                data.resize(end, 0);
            }
            data[pos..end].copy_from_slice(bytes);
        }
        FileOp::SetLen(n) => data.resize(usize::try_from(*n).unwrap_or(usize::MAX), 0),
    }
}

impl SimDisk {
    /// An empty disk. `track` records what is durable (crash tests); without
    /// it the disk is a plain in-memory store (`--ephemeral`).
    pub fn new(track: bool) -> Arc<SimDisk> {
        let mut st = DiskState::default();
        st.dirs.insert(PathBuf::from(ROOT));
        Arc::new(SimDisk {
            state: Mutex::new(st),
            track,
        })
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of file syncs so far (tests check that acks wait for one).
    pub fn file_syncs(&self) -> u64 {
        self.lock().file_syncs
    }

    /// The disk as a power failure at this instant could leave it (see the
    /// module docs); `seed` picks which of the possible images.
    pub fn crash_image(&self, seed: u64) -> Arc<SimDisk> {
        let st = self.lock();
        let mut rng = Rng::new(seed);
        let mut img = DiskState {
            next_id: st.next_id,
            ..DiskState::default()
        };
        img.dirs.insert(PathBuf::from(ROOT));
        let durable_name = |p: &Path| {
            p.parent()
                .and_then(|d| st.durable_names.get(d))
                .is_some_and(|names| names.contains(p))
        };
        // Directories, parents first (BTreeSet order): a directory whose
        // creation was not synced may be missing, and its files with it.
        for d in &st.dirs {
            if d.as_os_str() == ROOT {
                continue;
            }
            let parent_kept = d.parent().is_some_and(|p| img.dirs.contains(p));
            if parent_kept && (durable_name(d) || rng.coin()) {
                img.dirs.insert(d.clone());
            }
        }
        let dirs = img.dirs.clone();
        let mut files: BTreeMap<PathBuf, SimFile> = BTreeMap::new();
        let mut keep_file = |p: &PathBuf, f: &SimFile, removed: bool, rng: &mut Rng| {
            if !p.parent().is_some_and(|d| dirs.contains(d)) {
                return;
            }
            let kept = if removed {
                // Removed but the removal not synced: may come back.
                durable_name(p) && rng.coin()
            } else {
                durable_name(p) || rng.coin()
            };
            if !kept {
                return;
            }
            let mut data = f.durable.clone();
            let n = rng.upto(f.pending.len() as u64);
            let n = usize::try_from(n).unwrap_or(0);
            for (i, op) in f.pending.iter().take(n).enumerate() {
                match op {
                    FileOp::Write(pos, bytes) if i + 1 == n && rng.coin() => {
                        // Tear the last write that made it.
                        let cut = usize::try_from(rng.upto(bytes.len() as u64)).unwrap_or(0);
                        apply(&mut data, &FileOp::Write(*pos, bytes[..cut].to_vec()));
                    }
                    op => apply(&mut data, op),
                }
            }
            files.insert(
                p.clone(),
                SimFile {
                    id: f.id,
                    durable: data.clone(),
                    data,
                    pending: Vec::new(),
                },
            );
        };
        for (p, f) in &st.files {
            keep_file(p, f, false, &mut rng);
        }
        for (p, f) in &st.graveyard {
            if !st.files.contains_key(p) {
                keep_file(p, f, true, &mut rng);
            }
        }
        img.files = files;
        // Everything kept is now the durable state of the new disk.
        for p in img.files.keys().chain(img.dirs.iter()) {
            if let Some(d) = p.parent() {
                img.durable_names
                    .entry(d.to_path_buf())
                    .or_default()
                    .insert(p.clone());
            }
        }
        let mut kv = st.kv_durable.clone();
        let n = usize::try_from(rng.upto(st.kv_pending.len() as u64)).unwrap_or(0);
        for batch in st.kv_pending.iter().take(n) {
            for (k, v) in batch {
                match v {
                    Some(v) => kv.insert(k.clone(), v.clone()),
                    None => kv.remove(k),
                };
            }
        }
        img.kv_durable = kv.clone();
        img.kv = kv;
        Arc::new(SimDisk {
            state: Mutex::new(img),
            track: self.track,
        })
    }

    /// Bytes of a file as they are now (tests).
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        self.lock().files.get(path).map(|f| f.data.clone())
    }

    /// Overwrites bytes of a file and makes them durable (tests: damage).
    pub fn damage(&self, path: &Path, pos: u64, bytes: &[u8]) {
        let mut st = self.lock();
        if let Some(f) = st.files.get_mut(path) {
            apply(&mut f.data, &FileOp::Write(pos, bytes.to_vec()));
            f.durable = f.data.clone();
            f.pending.clear();
        }
    }

    /// Every file path, sorted (tests).
    pub fn files(&self) -> Vec<PathBuf> {
        self.lock().files.keys().cloned().collect()
    }
}

/// The filesystem view of a [`SimDisk`].
#[derive(Debug, Clone)]
pub(crate) struct SimFs(pub(crate) Arc<SimDisk>);

#[derive(Debug)]
struct SimHandle {
    disk: Arc<SimDisk>,
    path: PathBuf,
    id: u64,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "simulated file was removed")
}

impl SimHandle {
    fn with<T>(&self, f: impl FnOnce(&mut SimFile, bool) -> T) -> io::Result<T> {
        let mut st = self.disk.lock();
        let track = self.disk.track;
        match st.files.get_mut(&self.path) {
            Some(file) if file.id == self.id => Ok(f(file, track)),
            _ => Err(gone()),
        }
    }
}

impl FileHandle for SimHandle {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.with(|f, _| {
            let pos = usize::try_from(pos).unwrap_or(usize::MAX);
            let avail = f.data.get(pos..).unwrap_or(&[]);
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        })
    }

    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        self.with(|f, track| {
            let mut at = pos;
            for b in bufs {
                let op = FileOp::Write(at, b.to_vec());
                apply(&mut f.data, &op);
                if track {
                    f.pending.push(op);
                }
                at += b.len() as u64;
            }
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.disk.lock();
        st.file_syncs += 1;
        match st.files.get_mut(&self.path) {
            Some(f) if f.id == self.id => {
                if self.disk.track {
                    f.durable = f.data.clone();
                    f.pending.clear();
                }
                Ok(())
            }
            _ => Err(gone()),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|f, track| {
            let op = FileOp::SetLen(len);
            apply(&mut f.data, &op);
            if track {
                f.pending.push(op);
            }
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|f, _| f.data.len() as u64)
    }
}

fn no_dir(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such directory: {}", p.display()),
    )
}

impl Fs for SimFs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn FileHandle>> {
        let mut st = self.0.lock();
        let id = match st.files.get(path) {
            Some(f) => f.id,
            None if create => {
                let parent = path.parent().ok_or_else(|| no_dir(path))?;
                if !st.dirs.contains(parent) {
                    return Err(no_dir(parent));
                }
                st.next_id += 1;
                let id = st.next_id;
                st.files.insert(
                    path.to_path_buf(),
                    SimFile {
                        id,
                        ..SimFile::default()
                    },
                );
                id
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no such file: {}", path.display()),
                ))
            }
        };
        Ok(Arc::new(SimHandle {
            disk: Arc::clone(&self.0),
            path: path.to_path_buf(),
            id,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.0.lock();
        for a in path.ancestors() {
            if a.as_os_str().is_empty() {
                continue;
            }
            st.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.0.lock();
        if !st.dirs.contains(path) {
            return Err(no_dir(path));
        }
        if self.0.track {
            let children: BTreeSet<PathBuf> = st
                .files
                .keys()
                .chain(st.dirs.iter())
                .filter(|p| p.parent() == Some(path))
                .cloned()
                .collect();
            st.graveyard.retain(|p, _| p.parent() != Some(path));
            st.durable_names.insert(path.to_path_buf(), children);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.0.lock();
        let f = st.files.remove(path).ok_or_else(gone)?;
        if self.0.track {
            st.graveyard.insert(path.to_path_buf(), f);
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.0.lock();
        let f = st.files.remove(from).ok_or_else(gone)?;
        if let Some(old) = st.files.insert(to.to_path_buf(), f) {
            if self.0.track {
                st.graveyard.insert(to.to_path_buf(), old);
            }
        }
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.0.lock();
        let files: Vec<PathBuf> = st
            .files
            .keys()
            .filter(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in files {
            if let Some(f) = st.files.remove(&p) {
                if self.0.track {
                    st.graveyard.insert(p, f);
                }
            }
        }
        st.dirs.retain(|d| !d.starts_with(path));
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = self.0.lock();
        Ok(st
            .files
            .keys()
            .chain(st.dirs.iter())
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.0.lock();
        st.files.contains_key(path) || st.dirs.contains(path)
    }
}

/// The key-value view of a [`SimDisk`].
#[derive(Debug, Clone)]
pub(crate) struct SimKv(pub(crate) Arc<SimDisk>);

impl Engine for SimKv {
    fn get(&self, key: &[u8]) -> crate::Result<Option<Bytes>> {
        Ok(self.0.lock().kv.get(key).cloned())
    }

    fn write(&self, batch: WriteBatch) -> crate::Result<()> {
        let mut st = self.0.lock();
        let mut record = Vec::new();
        for (k, v) in batch.ops {
            let v = v.map(Bytes::from);
            match &v {
                Some(v) => st.kv.insert(k.clone(), v.clone()),
                None => st.kv.remove(&k),
            };
            if self.0.track {
                record.push((k, v));
            }
        }
        if self.0.track {
            st.kv_pending.push(record);
        }
        Ok(())
    }

    fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> crate::Result<()> {
        if from >= to {
            return Ok(());
        }
        // The visitor never calls back into the engine (the trait's rule),
        // so it may run under the lock.
        let st = self.0.lock();
        let range = st
            .kv
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
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

    fn flush_durable(&self) -> crate::Result<()> {
        if self.0.track {
            let mut st = self.0.lock();
            let pending = std::mem::take(&mut st.kv_pending);
            for batch in pending {
                for (k, v) in batch {
                    match v {
                        Some(v) => st.kv_durable.insert(k, v),
                        None => st.kv_durable.remove(&k),
                    };
                }
            }
        }
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        self.0.track
    }
}
