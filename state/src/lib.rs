//! RocksDB state for finstream tasks.
//!
//! One RocksDB instance per (task, store) under `state.dir/<application.id>/<task>/<store>`, all
//! sharing one block cache and one write-buffer budget, so memory is bounded for the whole
//! process however many tasks an instance owns (unbounded per-store RocksDB memory is the
//! classic Kafka Streams OOM). Each store keeps the changelog offset it has reached in a
//! separate column family written in the same `WriteBatch` as the data, so the two can never
//! disagree after a crash and restore only replays the changelog tail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteBufferManager,
    DB,
};
use streams::store::{BackendProvider, Entry, KvBackend, KvIter, StoreError};

const META_CF: &str = "finstream-meta";
const CHECKPOINT_KEY: &[u8] = b"changelog-offset";

/// Process-wide RocksDB memory limits.
#[derive(Debug, Clone, Copy)]
pub struct RocksConfig {
    /// Shared LRU block cache for all stores (bytes).
    pub block_cache_bytes: usize,
    /// Total memtable budget for all stores (bytes), charged against the block cache.
    pub write_buffer_bytes: usize,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig { block_cache_bytes: default_block_cache_bytes(), write_buffer_bytes: default_write_buffer_bytes() }
    }
}

pub const fn default_block_cache_bytes() -> usize {
    64 << 20
}
pub const fn default_write_buffer_bytes() -> usize {
    32 << 20
}

fn err(e: rocksdb::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Opens RocksDB backends below one directory with shared memory limits.
pub struct RocksProvider {
    root: PathBuf,
    cache: Cache,
    write_buffers: WriteBufferManager,
}

impl RocksProvider {
    pub fn new(root: impl Into<PathBuf>, config: RocksConfig) -> Result<Self, StoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| StoreError::Backend(format!("{}: {e}", root.display())))?;
        let cache = Cache::new_lru_cache(config.block_cache_bytes);
        let write_buffers =
            WriteBufferManager::new_write_buffer_manager_with_cache(config.write_buffer_bytes, false, cache.clone());
        Ok(RocksProvider { root, cache, write_buffers })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn options(&self) -> Options {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_write_buffer_manager(&self.write_buffers);
        opts.set_max_open_files(256);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let mut block = BlockBasedOptions::default();
        block.set_block_cache(&self.cache);
        block.set_cache_index_and_filter_blocks(true);
        block.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&block);
        opts
    }

    /// Opens (creating if needed) the store at `path`.
    pub fn open_path(&self, path: &Path) -> Result<RocksBackend, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
        let opts = self.options();
        let cfs = vec![
            ColumnFamilyDescriptor::new(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, self.options()),
            ColumnFamilyDescriptor::new(META_CF, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(err)?;
        Ok(RocksBackend { db })
    }
}

impl BackendProvider for RocksProvider {
    fn open(&self, task: &str, store: &str) -> Result<Arc<dyn KvBackend>, StoreError> {
        Ok(Arc::new(self.open_path(&self.root.join(task).join(store))?))
    }
}

/// One store's committed data in RocksDB.
pub struct RocksBackend {
    db: DB,
}

impl RocksBackend {
    fn meta(&self) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(META_CF).ok_or_else(|| StoreError::Backend("meta column family missing".into()))
    }
}

impl KvBackend for RocksBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(err)
    }

    fn range<'a>(&'a self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<KvIter<'a>, StoreError> {
        let mode = match from {
            Some(f) => IteratorMode::From(f, Direction::Forward),
            None => IteratorMode::Start,
        };
        let to = to.map(|t| t.to_vec());
        let iter =
            self.db.iterator(mode).map(|item| item.map(|(k, v)| (k.into_vec(), v.into_vec())).map_err(err)).take_while(
                move |item| match (item, &to) {
                    (Ok((k, _)), Some(t)) => k.as_slice() < t.as_slice(),
                    _ => true,
                },
            );
        Ok(Box::new(iter))
    }

    fn apply(&self, entries: &[Entry], changelog_offset: Option<i64>) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        if let Some(offset) = changelog_offset {
            batch.put_cf(self.meta()?, CHECKPOINT_KEY, offset.to_be_bytes());
        }
        self.db.write(batch).map_err(err)
    }

    fn checkpoint(&self) -> Result<Option<i64>, StoreError> {
        match self.db.get_cf(self.meta()?, CHECKPOINT_KEY).map_err(err)? {
            Some(v) => {
                let arr: [u8; 8] =
                    v.as_slice().try_into().map_err(|_| StoreError::Backend("corrupt checkpoint".into()))?;
                Ok(Some(i64::from_be_bytes(arr)))
            }
            None => Ok(None),
        }
    }

    fn wipe(&self) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(err)?;
            batch.delete(k);
        }
        batch.delete_cf(self.meta()?, CHECKPOINT_KEY);
        self.db.write(batch).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_checkpoint_survive_reopen_and_ranges_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let provider = RocksProvider::new(dir.path(), RocksConfig::default()).unwrap();
        {
            let b = provider.open("0_1", "sums").unwrap();
            assert_eq!(b.checkpoint().unwrap(), None);
            b.apply(
                &[
                    (b"a".to_vec(), Some(b"1".to_vec())),
                    (b"b".to_vec(), Some(b"2".to_vec())),
                    (b"c".to_vec(), Some(b"3".to_vec())),
                ],
                Some(42),
            )
            .unwrap();
            b.apply(&[(b"b".to_vec(), None)], None).unwrap();
        }
        let b = provider.open("0_1", "sums").unwrap();
        assert_eq!(b.checkpoint().unwrap(), Some(42));
        assert_eq!(b.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(b.get(b"b").unwrap(), None);
        let r: Vec<_> = b.range(Some(b"a"), Some(b"c")).unwrap().map(|i| i.unwrap().0).collect();
        assert_eq!(r, vec![b"a".to_vec()]);
        b.wipe().unwrap();
        assert_eq!(b.checkpoint().unwrap(), None);
        assert_eq!(b.range(None, None).unwrap().count(), 0);
    }

    #[test]
    fn driver_semantics_hold_on_rocksdb() {
        // The same task code on RocksDB: committed state is visible only after commit_succeeded.
        use streams::examples::sum_topology;
        use streams::{RawRecord, StreamsMetrics, Task, TaskConfig, TaskId};
        let dir = tempfile::tempdir().unwrap();
        let provider = RocksProvider::new(dir.path(), RocksConfig::default()).unwrap();
        let topo = sum_topology("in", "out").unwrap().build("app").unwrap();
        let id = TaskId { subtopology: 0, partition: 0 };
        let mut task =
            Task::new(topo, id, &provider, Default::default(), StreamsMetrics::default(), TaskConfig::default())
                .unwrap();
        task.initialize(0).unwrap();
        task.add_records((0..3).map(|i| RawRecord {
            topic: "in".into(),
            partition: 0,
            offset: i,
            key: Some(b"k".to_vec()),
            value: Some(5i64.to_be_bytes().to_vec()),
            timestamp: i,
            headers: Default::default(),
        }));
        while task.process_next(0).unwrap() {}
        let backend = task.store_backend("sums").unwrap();
        assert_eq!(backend.get(b"k").unwrap(), None, "nothing committed yet");
        let plan = task.prepare_commit();
        assert_eq!(plan.changelog.len(), 1, "three updates of one key: one changelog record");
        assert_eq!(plan.offsets, vec![("in".to_string(), 0, 3)]);
        task.commit_succeeded(&[("app-sums-changelog".to_string(), 7)].into_iter().collect()).unwrap();
        assert_eq!(backend.get(b"k").unwrap(), Some(br#"{"count":3,"total":15}"#.to_vec()));
        assert_eq!(backend.checkpoint().unwrap(), Some(7));
    }
}
