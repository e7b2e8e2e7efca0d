//! State stores: a committed backend (RocksDB in production, a BTreeMap in the test driver)
//! under a per-task write cache.
//!
//! Writes go to the cache only. At commit the engine drains the cache into changelog records
//! (one per dirty key, so hot keys cost one changelog record per commit, not one per update) and,
//! once the Kafka transaction has committed, applies the same entries to the backend in one
//! atomic batch together with the changelog offset reached. The backend therefore only ever
//! holds committed state, which is what interactive queries read, and an aborted or crashed
//! transaction leaves nothing behind.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

use crate::serde::{Serde, SerdeError};

pub mod query;
pub mod typed;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store backend failed: {0}")]
    Backend(String),
    #[error("store {store}: {source}")]
    Serde {
        store: String,
        #[source]
        source: SerdeError,
    },
    #[error("store {0} is not declared in the topology or not connected to this processor")]
    NotConnected(String),
    #[error("store {store} holds {actual}, asked for {asked}")]
    WrongType { store: String, asked: &'static str, actual: &'static str },
}

/// One stored entry: `None` marks a deletion (a tombstone in the changelog).
pub type Entry = (Vec<u8>, Option<Vec<u8>>);
/// Key-value pairs in key order.
pub type KvPairs = Vec<(Vec<u8>, Vec<u8>)>;
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// Committed, durable key-value bytes for one store of one task.
///
/// Methods take `&self` because interactive queries read the backend from other threads while
/// the owning task writes committed batches to it.
pub trait KvBackend: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Entries with `from <= key < to` in key order (`None` = unbounded).
    fn range<'a>(&'a self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KvIter<'a>, StoreError>;
    /// Applies `entries` and records `changelog_offset` (the next changelog offset to restore
    /// from) atomically: after a crash either both are there or neither.
    fn apply(&self, entries: &[Entry], changelog_offset: Option<i64>) -> Result<(), StoreError>;
    /// The changelog offset recorded by the last `apply`, if any.
    fn checkpoint(&self) -> Result<Option<i64>, StoreError>;
    /// Drops all data and the checkpoint (used when a checkpoint cannot be trusted).
    fn wipe(&self) -> Result<(), StoreError>;
}

/// Opens backends for tasks: one per (task, store).
pub trait BackendProvider: Send + Sync {
    fn open(&self, task: &str, store: &str) -> Result<Arc<dyn KvBackend>, StoreError>;
}

/// Data and changelog checkpoint.
type MemoryState = (BTreeMap<Vec<u8>, Vec<u8>>, Option<i64>);

/// In-memory backend for the test driver and for stores declared without persistence.
#[derive(Default)]
pub struct MemoryBackend {
    inner: RwLock<MemoryState>,
}

impl KvBackend for MemoryBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.read().expect("poisoned").0.get(key).cloned())
    }
    fn range<'a>(&'a self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KvIter<'a>, StoreError> {
        let guard = self.inner.read().expect("poisoned");
        let lo = from.map_or(Bound::Unbounded, |f| Bound::Included(f.to_vec()));
        let hi = to.map_or(Bound::Unbounded, |t| Bound::Excluded(t.to_vec()));
        let items: Vec<_> = guard.0.range((lo, hi)).map(|(k, v)| Ok((k.clone(), v.clone()))).collect();
        Ok(Box::new(items.into_iter()))
    }
    fn apply(&self, entries: &[Entry], changelog_offset: Option<i64>) -> Result<(), StoreError> {
        let mut guard = self.inner.write().expect("poisoned");
        for (k, v) in entries {
            match v {
                Some(v) => guard.0.insert(k.clone(), v.clone()),
                None => guard.0.remove(k),
            };
        }
        if changelog_offset.is_some() {
            guard.1 = changelog_offset;
        }
        Ok(())
    }
    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.inner.read().expect("poisoned").1)
    }
    fn wipe(&self) -> Result<(), StoreError> {
        *self.inner.write().expect("poisoned") = Default::default();
        Ok(())
    }
}

/// Provides fresh in-memory backends (the driver keeps them per task across simulated crashes
/// unless told to wipe them).
#[derive(Default)]
pub struct MemoryProvider;

impl BackendProvider for MemoryProvider {
    fn open(&self, _task: &str, _store: &str) -> Result<Arc<dyn KvBackend>, StoreError> {
        Ok(Arc::new(MemoryBackend::default()))
    }
}

/// A task's view of one store: the committed backend plus this transaction's dirty entries.
///
/// Every write also records what the dirty map held for the key before, so the writes a
/// processor made for one record can be undone when it rejects the record
/// ([`CachedStore::rollback_to`]): a dead-lettered record leaves no trace in state.
pub struct CachedStore {
    pub name: String,
    pub backend: Arc<dyn KvBackend>,
    dirty: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// (key, its dirty entry before the write) in write order, since the last release.
    undo: Vec<UndoEntry>,
    /// Whether changes go to a changelog topic.
    pub logged: bool,
    pub hits: u64,
    pub misses: u64,
}

/// A key and what the dirty map held for it before a write (`None`: nothing, read through).
type UndoEntry = (Vec<u8>, Option<Option<Vec<u8>>>);

impl CachedStore {
    pub fn new(name: impl Into<String>, backend: Arc<dyn KvBackend>, logged: bool) -> Self {
        CachedStore { name: name.into(), backend, dirty: BTreeMap::new(), undo: Vec::new(), logged, hits: 0, misses: 0 }
    }

    /// How many writes can be undone: a savepoint to [`CachedStore::rollback_to`].
    pub fn mark(&self) -> usize {
        self.undo.len()
    }

    /// Undoes the writes made since `mark`, newest first.
    pub fn rollback_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let Some((key, before)) = self.undo.pop() else { break };
            match before {
                Some(v) => {
                    self.dirty.insert(key, v);
                }
                None => {
                    self.dirty.remove(&key);
                }
            }
        }
    }

    /// Forgets how to undo the writes so far (the record they belong to is done).
    pub fn release(&mut self) {
        self.undo.clear();
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let before = self.dirty.insert(key.clone(), value);
        self.undo.push((key, before));
    }

    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.dirty.get(key) {
            self.hits += 1;
            return Ok(v.clone());
        }
        self.misses += 1;
        self.backend.get(key)
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.write(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.write(key, None);
    }

    /// Merged view of committed and dirty entries in `[from, to)`, in key order.
    pub fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KvPairs, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for item in self.backend.range(from, to)? {
            let (k, v) = item?;
            merged.insert(k, Some(v));
        }
        let lo = from.map_or(Bound::Unbounded, |f| Bound::Included(f.to_vec()));
        let hi = to.map_or(Bound::Unbounded, |t| Bound::Excluded(t.to_vec()));
        for (k, v) in self.dirty.range((lo, hi)) {
            merged.insert(k.clone(), v.clone());
        }
        Ok(merged.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }

    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// Takes this transaction's entries (for the changelog and the post-commit batch).
    pub fn take_dirty(&mut self) -> Vec<Entry> {
        self.undo.clear();
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// Forgets uncommitted writes (transaction aborted or task crashed).
    pub fn discard(&mut self) {
        self.undo.clear();
        self.dirty.clear();
    }
}

/// Typed access to a key-value store, handed out by `ProcessorContext::kv_store`.
pub struct KeyValueStore<'a, K, V> {
    pub(crate) store: &'a mut CachedStore,
    pub(crate) key_serde: &'a dyn Serde<K>,
    pub(crate) value_serde: &'a dyn Serde<V>,
}

impl<K: 'static, V: 'static> KeyValueStore<'_, K, V> {
    fn err(&self, source: SerdeError) -> StoreError {
        StoreError::Serde { store: self.store.name.clone(), source }
    }
    fn enc_key(&self, key: &K) -> Result<Vec<u8>, StoreError> {
        self.key_serde.serialize(&self.store.name, key).map_err(|e| self.err(e))
    }

    pub fn get(&mut self, key: &K) -> Result<Option<V>, StoreError> {
        let k = self.enc_key(key)?;
        match self.store.get(&k)? {
            Some(bytes) => self.value_serde.deserialize(&self.store.name, &bytes).map(Some).map_err(|e| self.err(e)),
            None => Ok(None),
        }
    }

    pub fn put(&mut self, key: &K, value: &V) -> Result<(), StoreError> {
        let k = self.enc_key(key)?;
        let v = self.value_serde.serialize(&self.store.name, value).map_err(|e| self.err(e))?;
        self.store.put(k, v);
        Ok(())
    }

    pub fn delete(&mut self, key: &K) -> Result<(), StoreError> {
        let k = self.enc_key(key)?;
        self.store.delete(k);
        Ok(())
    }

    /// All entries whose serialized key starts with the serialized `prefix` key, in byte order.
    /// Meant for composite string keys such as `user|category|period`.
    pub fn prefix_scan(&mut self, prefix: &K) -> Result<Vec<(K, V)>, StoreError> {
        let p = self.enc_key(prefix)?;
        let end = prefix_end(&p);
        self.decode_all(self.store.range(Some(&p), end.as_deref())?)
    }

    /// Entries whose serialized keys lie in `[from, to)` (for serdes that preserve order).
    pub fn range_bytes(&mut self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Vec<(K, V)>, StoreError> {
        self.decode_all(self.store.range(from, to)?)
    }

    pub fn all(&mut self) -> Result<Vec<(K, V)>, StoreError> {
        self.decode_all(self.store.range(None, None)?)
    }

    fn decode_all(&self, raw: KvPairs) -> Result<Vec<(K, V)>, StoreError> {
        raw.into_iter()
            .map(|(k, v)| {
                let key = self.key_serde.deserialize(&self.store.name, &k).map_err(|e| self.err(e))?;
                let value = self.value_serde.deserialize(&self.store.name, &v).map_err(|e| self.err(e))?;
                Ok((key, value))
            })
            .collect()
    }
}

/// The smallest byte string greater than every string starting with `prefix` (None: no bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
