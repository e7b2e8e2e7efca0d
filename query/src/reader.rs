//! How the query service sees state: a small trait over "the committed stores of this instance
//! and where the other partitions live", so handlers run the same against a running
//! `KafkaStreams` and against stores filled by a test or a benchmark.

use std::collections::HashMap;
use std::sync::Arc;

use runtime::{KafkaStreams, StateHandle, TaskStatus};
use streams::partitioner::Partitioner;
use streams::store::{KvBackend, KvPairs, MemoryBackend, StoreError};
use streams::BuiltTopology;

use crate::error::ApiError;

/// Where a key's partition can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Here: `partition` is active on this instance.
    Local(i32),
    /// Assigned here but restoring, or moving between instances: try again shortly.
    Unavailable(String),
    /// Another instance of the group, at this base URL.
    Remote(String),
}

/// Committed state of one instance. Keys are the stores' serialized keys; the routing key is
/// the record key the store's sub-topology is partitioned by.
pub trait StateReader: Send + Sync + 'static {
    /// Which instance owns the partition of `routing_key` in `store`'s sub-topology.
    fn owner(&self, store: &str, routing_key: &[u8]) -> Owner;
    /// Committed value of `key` in `store`'s local task `partition`.
    fn get(&self, store: &str, partition: i32, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError>;
    /// Committed entries with `from <= key < to` in `store`'s local task `partition`, key order.
    fn range(&self, store: &str, partition: i32, from: &[u8], to: Option<&[u8]>) -> Result<KvPairs, ApiError>;
    /// Value of `key` in a global store (every instance holds all of it).
    fn global_get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError>;
    /// Every assigned task restored and running.
    fn ready(&self) -> bool;
    /// The topology whose stores the generic `/v1/stores` endpoint serves (`None`: no store is
    /// served generically).
    fn topology(&self) -> Option<Arc<BuiltTopology>>;
    /// Partitions (= tasks) of `store`'s sub-topology, once known.
    fn partitions(&self, store: &str) -> Option<i32>;
    /// Where `partition` of `store` can be read: what [`StateReader::owner`] answers for the
    /// keys of that partition, for scans that ask every partition.
    fn partition_owner(&self, store: &str, partition: i32) -> Owner;
    /// The committed state of `store`'s local task `partition`, read lazily (a scan with a
    /// limit stops early instead of copying a range); `Unavailable` when it is not active here.
    fn committed(&self, store: &str, partition: i32) -> Result<Arc<dyn KvBackend>, ApiError>;
    /// The contents of a global store (`None`: no such global store).
    fn global_committed(&self, store: &str) -> Option<Arc<dyn KvBackend>>;
}

fn not_local(store: &str, partition: i32) -> ApiError {
    ApiError::Unavailable(format!("partition {partition} of {store} is moving; retry shortly"))
}

impl StateReader for StateHandle {
    fn owner(&self, store: &str, routing_key: &[u8]) -> Owner {
        match self.partition_for(store, routing_key) {
            Some(partition) => self.partition_owner(store, partition),
            None => Owner::Unavailable(format!("store {store} is not available yet")),
        }
    }

    fn partition_owner(&self, store: &str, partition: i32) -> Owner {
        match self.task_status(store, partition) {
            TaskStatus::Active => return Owner::Local(partition),
            TaskStatus::Restoring => {
                return Owner::Unavailable(format!("partition {partition} of {store} is restoring; retry shortly"))
            }
            TaskStatus::NotAssigned => {}
        }
        match self.host_for(store, partition) {
            Some((host, false)) if host.process_id != self.process_id() => Owner::Remote(host.url),
            _ => Owner::Unavailable(format!("partition {partition} of {store} is moving; retry shortly")),
        }
    }

    fn topology(&self) -> Option<Arc<BuiltTopology>> {
        Some(StateHandle::topology(self).clone())
    }

    fn partitions(&self, store: &str) -> Option<i32> {
        self.partitions_of_store(store)
    }

    fn committed(&self, store: &str, partition: i32) -> Result<Arc<dyn KvBackend>, ApiError> {
        self.committed_store(store, partition).ok_or_else(|| not_local(store, partition))
    }

    fn global_committed(&self, store: &str) -> Option<Arc<dyn KvBackend>> {
        self.global_store(store)
    }

    fn get(&self, store: &str, partition: i32, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        StateHandle::get(self, store, partition, key)?.ok_or_else(|| not_local(store, partition))
    }

    fn range(&self, store: &str, partition: i32, from: &[u8], to: Option<&[u8]>) -> Result<KvPairs, ApiError> {
        StateHandle::range(self, store, partition, Some(from), to)?.ok_or_else(|| not_local(store, partition))
    }

    fn global_get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(StateHandle::global_get(self, store, key)?)
    }

    fn ready(&self) -> bool {
        self.is_ready()
    }
}

/// `KafkaStreams` reads through its [`StateHandle`].
impl StateReader for KafkaStreams {
    fn owner(&self, store: &str, routing_key: &[u8]) -> Owner {
        self.state_handle().owner(store, routing_key)
    }
    fn get(&self, store: &str, partition: i32, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        StateReader::get(&self.state_handle(), store, partition, key)
    }
    fn range(&self, store: &str, partition: i32, from: &[u8], to: Option<&[u8]>) -> Result<KvPairs, ApiError> {
        StateReader::range(&self.state_handle(), store, partition, from, to)
    }
    fn global_get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        StateReader::global_get(&self.state_handle(), store, key)
    }
    fn ready(&self) -> bool {
        self.state_handle().is_ready()
    }
    fn topology(&self) -> Option<Arc<BuiltTopology>> {
        Some(KafkaStreams::topology(self).clone())
    }
    fn partitions(&self, store: &str) -> Option<i32> {
        self.state_handle().partitions_of_store(store)
    }
    fn partition_owner(&self, store: &str, partition: i32) -> Owner {
        self.state_handle().partition_owner(store, partition)
    }
    fn committed(&self, store: &str, partition: i32) -> Result<Arc<dyn KvBackend>, ApiError> {
        StateReader::committed(&self.state_handle(), store, partition)
    }
    fn global_committed(&self, store: &str) -> Option<Arc<dyn KvBackend>> {
        self.state_handle().global_store(store)
    }
}

/// Stores held directly (in memory or RocksDB), every partition local: for handler tests, the
/// benchmark, and tools that open state offline. Keys route with the application's partitioner
/// (murmur2 unless [`LocalStores::with_partitioner`] says otherwise), as the engine places them.
pub struct LocalStores {
    partitions: i32,
    partitioner: Partitioner,
    /// Stores whose sub-topology has another partitioner than `partitioner`.
    store_partitioners: HashMap<String, Partitioner>,
    stores: HashMap<String, Vec<Arc<dyn KvBackend>>>,
    globals: HashMap<String, Arc<dyn KvBackend>>,
    /// Partitions answering "restoring" (to exercise 503s).
    pub restoring: Vec<i32>,
    /// Whose stores the generic endpoint serves.
    topology: Option<Arc<BuiltTopology>>,
}

impl LocalStores {
    pub fn new(partitions: i32) -> Self {
        LocalStores {
            partitions: partitions.max(1),
            partitioner: Partitioner::Murmur2,
            store_partitioners: HashMap::new(),
            stores: HashMap::new(),
            globals: HashMap::new(),
            restoring: Vec::new(),
            topology: None,
        }
    }

    /// Serves `topology`'s stores on the generic `/v1/stores` endpoint.
    pub fn with_topology(mut self, topology: Arc<BuiltTopology>) -> Self {
        self.topology = Some(topology);
        self
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Routes keys with `partitioner` (the sub-topologies' decided partitioner, e.g. CRC32 for
    /// topics written by librdkafka-based producers).
    pub fn with_partitioner(mut self, partitioner: Partitioner) -> Self {
        self.partitioner = partitioner;
        self
    }

    /// Routes keys of `store` with `partitioner` (its sub-topology's, when sub-topologies differ).
    pub fn with_store_partitioner(mut self, store: &str, partitioner: Partitioner) -> Self {
        self.store_partitioners.insert(store.to_string(), partitioner);
        self
    }

    /// The partition that owns `routing_key` in `store`.
    pub fn partition_of(&self, store: &str, routing_key: &[u8]) -> i32 {
        let partitioner = self.store_partitioners.get(store).copied().unwrap_or(self.partitioner);
        crate::routing::partition_of(partitioner, routing_key, self.partitions)
    }

    /// Uses `backends` (one per partition) for `store`.
    pub fn with_store(mut self, store: &str, backends: Vec<Arc<dyn KvBackend>>) -> Self {
        assert_eq!(backends.len(), self.partitions as usize, "one backend per partition");
        self.stores.insert(store.to_string(), backends);
        self
    }

    fn store(&mut self, store: &str) -> &Vec<Arc<dyn KvBackend>> {
        let n = self.partitions as usize;
        self.stores
            .entry(store.to_string())
            .or_insert_with(|| (0..n).map(|_| Arc::new(MemoryBackend::default()) as Arc<dyn KvBackend>).collect())
    }

    /// Writes `key → value` into the partition of `routing_key`.
    pub fn put(&mut self, store: &str, routing_key: &[u8], key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let p = self.partition_of(store, routing_key) as usize;
        self.store(store)[p].apply(&[(key.to_vec(), Some(value.to_vec()))], None)
    }

    pub fn put_global(&mut self, store: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.globals
            .entry(store.to_string())
            .or_insert_with(|| Arc::new(MemoryBackend::default()))
            .apply(&[(key.to_vec(), Some(value.to_vec()))], None)
    }

    fn backend(&self, store: &str, partition: i32) -> Option<&Arc<dyn KvBackend>> {
        self.stores.get(store).and_then(|b| b.get(partition as usize))
    }
}

impl StateReader for LocalStores {
    fn owner(&self, store: &str, routing_key: &[u8]) -> Owner {
        self.partition_owner(store, self.partition_of(store, routing_key))
    }
    fn partition_owner(&self, store: &str, partition: i32) -> Owner {
        if self.restoring.contains(&partition) {
            Owner::Unavailable(format!("partition {partition} of {store} is restoring; retry shortly"))
        } else {
            Owner::Local(partition)
        }
    }
    fn topology(&self) -> Option<Arc<BuiltTopology>> {
        self.topology.clone()
    }
    fn partitions(&self, _store: &str) -> Option<i32> {
        Some(self.partitions)
    }
    fn committed(&self, store: &str, partition: i32) -> Result<Arc<dyn KvBackend>, ApiError> {
        match self.backend(store, partition) {
            Some(b) => Ok(b.clone()),
            // Nothing written to it yet: an empty store.
            None => Ok(Arc::new(MemoryBackend::default())),
        }
    }
    fn global_committed(&self, store: &str) -> Option<Arc<dyn KvBackend>> {
        let global = self.topology.as_ref().is_some_and(|t| t.globals.iter().any(|g| g.store.name == store));
        match self.globals.get(store) {
            Some(b) => Some(b.clone()),
            None if global => Some(Arc::new(MemoryBackend::default())),
            None => None,
        }
    }
    fn get(&self, store: &str, partition: i32, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        match self.backend(store, partition) {
            Some(b) => Ok(b.get(key)?),
            None => Ok(None),
        }
    }
    fn range(&self, store: &str, partition: i32, from: &[u8], to: Option<&[u8]>) -> Result<KvPairs, ApiError> {
        let Some(b) = self.backend(store, partition) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for item in b.range(Some(from), to)? {
            out.push(item?);
        }
        Ok(out)
    }
    fn global_get(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        match self.globals.get(store) {
            Some(b) => Ok(b.get(key)?),
            None => Ok(None),
        }
    }
    fn ready(&self) -> bool {
        self.restoring.is_empty()
    }
}
