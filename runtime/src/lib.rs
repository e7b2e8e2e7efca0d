//! Runs a finstream `Topology` against Kafka: `KafkaStreams` owns the stream threads, the
//! global stores and the local RocksDB state of one instance.

pub mod config;
pub mod failpoint;
pub mod hosts;
pub mod interactive;
mod kafka;
pub mod partitioning;
mod restore;
pub mod schema_store;
mod thread;
pub mod topics;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use rdkafka::error::KafkaError;
use state::{RocksConfig, RocksProvider};
use streams::store::{prefix_end, KvBackend, KvPairs, MemoryBackend, StoreError};
use streams::{BuiltTopology, CycleError, GlobalStores, StreamsMetrics, TaskError, TaskId, Topology, TopologyError};

pub use config::{ConfigError, ProcessingGuarantee, StreamsConfig};
pub use hosts::{hosts_topic, HostInfo};
pub use interactive::{StateHandle, TaskAssignment, TaskStatus};
pub use kafka::client_config;
pub use schema_store::KafkaSchemaStore;
pub use thread::KafkaLogError;

/// Errors of the runtime, tagged by cause so callers know whether a restart can help.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cycle(#[from] CycleError<KafkaLogError>),
    #[error("restore failed: {0}")]
    Restore(String),
    #[error("internal topics: {0}")]
    Topics(String),
    #[error("assignment: {0}")]
    Assignment(String),
    #[error("{0}")]
    Panic(TaskId, String),
    #[error("{0}")]
    Broker(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("stream thread {0} stopped: {1}")]
    Thread(usize, String),
}

/// Lifecycle of an instance, as Kafka Streams' `KafkaStreams.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    /// Running, possibly restoring some tasks.
    Running,
    /// A stream thread died; `KafkaStreams::error` says why.
    Error,
    NotRunning,
}

/// Committed backends of local tasks by (store, partition, sub-topology).
pub(crate) type LocalStores = HashMap<(String, i32, usize), Arc<dyn KvBackend>>;

/// What the threads of one instance share.
pub(crate) struct Instance {
    pub topology: Arc<BuiltTopology>,
    pub config: StreamsConfig,
    pub provider: Arc<RocksProvider>,
    pub globals: Arc<GlobalStores>,
    pub metrics: StreamsMetrics,
    /// Committed backends of local tasks: (store, partition, sub-topology) → backend.
    pub local_stores: RwLock<LocalStores>,
    pub shutdown: Arc<AtomicBool>,
    /// Stable across restarts with the same state directory, so the transactional ids of a
    /// restarted instance fence its previous incarnation (as Kafka Streams' process id does).
    pub process_id: String,
    pub error: Mutex<Option<String>>,
    /// What each stream thread holds (interactive queries and the hosts topic read this).
    pub assignments: RwLock<BTreeMap<usize, interactive::ThreadAssignment>>,
    /// Bumped on every change of `assignments`.
    pub assignment_generation: AtomicU64,
    /// Partition count (= task count) per sub-topology, known after `start`.
    pub partitions: RwLock<HashMap<usize, i32>>,
    /// Each sub-topology's partitioner and partition count, decided at `start`.
    pub plan: RwLock<Option<Arc<streams::PartitionPlan>>>,
    pub started: AtomicBool,
    /// The group's instances and their query URLs, from the hosts topic.
    pub hosts: hosts::HostDirectory,
}

impl Instance {
    /// Records a thread's assignment (`None`: it holds nothing now).
    pub(crate) fn set_assignment(&self, thread: usize, a: Option<interactive::ThreadAssignment>) {
        let mut all = self.assignments.write().expect("poisoned");
        match a {
            Some(a) => all.insert(thread, a),
            None => all.remove(&thread),
        };
        self.assignment_generation.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct KafkaStreams {
    instance: Arc<Instance>,
    threads: Vec<JoinHandle<()>>,
    global_threads: Vec<JoinHandle<()>>,
    state: State,
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig, metrics: StreamsMetrics) -> Result<Self, RuntimeError> {
        config.validate()?;
        let topology = topology.build(&config.application_id)?;
        let dir = config.app_state_dir();
        std::fs::create_dir_all(&dir)?;
        let process_id = load_process_id(&dir)?;
        let provider = RocksProvider::new(
            dir.clone(),
            RocksConfig {
                block_cache_bytes: config.rocksdb_block_cache_bytes,
                write_buffer_bytes: config.rocksdb_write_buffer_bytes,
            },
        )?;
        let globals: GlobalStores = topology
            .globals
            .iter()
            .map(|g| (g.store.name.clone(), Arc::new(MemoryBackend::default()) as Arc<dyn KvBackend>))
            .collect();
        let instance = Instance {
            topology,
            config,
            provider: Arc::new(provider),
            globals: Arc::new(globals),
            metrics,
            local_stores: RwLock::new(HashMap::new()),
            shutdown: Arc::new(AtomicBool::new(false)),
            process_id,
            error: Mutex::new(None),
            assignments: RwLock::new(BTreeMap::new()),
            assignment_generation: AtomicU64::new(0),
            partitions: RwLock::new(HashMap::new()),
            plan: RwLock::new(None),
            started: AtomicBool::new(false),
            hosts: hosts::HostDirectory::default(),
        };
        Ok(KafkaStreams {
            instance: Arc::new(instance),
            threads: Vec::new(),
            global_threads: Vec::new(),
            state: State::Created,
        })
    }

    pub fn topology(&self) -> &Arc<BuiltTopology> {
        &self.instance.topology
    }

    pub fn metrics(&self) -> &StreamsMetrics {
        &self.instance.metrics
    }

    /// Creates internal topics where the broker allows it, fills global stores, then starts
    /// `num_stream_threads` stream threads. Returns once processing has begun.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        let inst = &self.instance;
        topics::check_broker(&inst.config)?;
        let counts = topics::partition_counts(&inst.config)?;
        topics::check_sources(&inst.topology, &counts)?;
        let plan = partitioning::plan(&inst.config, &inst.topology, &counts)?;
        *inst.plan.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(plan));
        topics::ensure_internal_topics(&inst.config, &inst.topology)?;
        let counts = topics::partition_counts(&inst.config)?;
        let per_sub: HashMap<usize, i32> = inst
            .topology
            .subtopologies
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.source_topics.iter().filter_map(|t| counts.get(t).copied()).max().map(|n| (i, n)))
            .collect();
        *inst.partitions.write().expect("poisoned") = per_sub;
        if inst.config.application_server.is_some() {
            self.global_threads.extend(hosts::start(inst)?);
        }
        for g in &inst.topology.globals {
            let backend = inst.globals[&g.store.name].clone();
            self.global_threads.push(restore::start_global(&inst.config, &g.topic, backend, inst.shutdown.clone())?);
        }
        for idx in 0..inst.config.num_stream_threads.max(1) {
            let instance = inst.clone();
            let handle = std::thread::Builder::new().name(format!("stream-thread-{idx}")).spawn(move || {
                if let Err(e) = thread::run(instance.clone(), idx) {
                    tracing::error!(thread = idx, error = %e, "stream thread stopped");
                    *instance.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                }
            })?;
            self.threads.push(handle);
        }
        self.state = State::Running;
        inst.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub fn state(&self) -> State {
        if self.instance.error.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return State::Error;
        }
        self.state
    }

    pub fn error(&self) -> Option<String> {
        self.instance.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Running, every thread assigned, every assigned task restored, no rebalance in progress.
    pub fn is_ready(&self) -> bool {
        self.state() == State::Running && self.state_handle().is_ready()
    }

    /// Commits and closes every task, then stops the threads.
    pub fn close(mut self) -> Result<(), RuntimeError> {
        self.shutdown_threads();
        match self.instance.error.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(e) => Err(RuntimeError::Thread(0, e)),
            None => Ok(()),
        }
    }

    fn shutdown_threads(&mut self) {
        self.instance.shutdown.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..).chain(self.global_threads.drain(..)) {
            let _ = t.join();
        }
        self.state = State::NotRunning;
    }

    /// A read handle for query servers; it outlives neither the state nor `close`.
    pub fn state_handle(&self) -> StateHandle {
        StateHandle { instance: self.instance.clone() }
    }

    /// Committed value of `key` in a local store, if this instance owns the key's partition.
    /// `key` is the record key the store's sub-topology is partitioned by.
    pub fn get_local(&self, store: &str, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, RuntimeError> {
        let Some(p) = self.state_handle().partition_for(store, key) else { return Ok(None) };
        let local = self.instance.local_stores.read().expect("poisoned");
        match local.iter().find(|((s, part, _), _)| s == store && *part == p) {
            Some((_, b)) => Ok(Some(b.get(key)?)),
            None => Ok(None),
        }
    }

    /// Committed entries of a store across all local tasks, sorted by key.
    pub fn scan_local(&self, store: &str, prefix: Option<&[u8]>) -> Result<KvPairs, RuntimeError> {
        let local = self.instance.local_stores.read().expect("poisoned");
        let end = prefix.and_then(prefix_end);
        let mut out = Vec::new();
        for ((s, _, _), b) in local.iter() {
            if s == store {
                for item in b.range(prefix, end.as_deref())? {
                    out.push(item?);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Partitions of a store held locally.
    pub fn local_partitions(&self, store: &str) -> Vec<i32> {
        let local = self.instance.local_stores.read().expect("poisoned");
        let mut p: Vec<i32> = local.keys().filter(|(s, _, _)| s == store).map(|(_, p, _)| *p).collect();
        p.sort();
        p
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        self.shutdown_threads();
    }
}

fn load_process_id(dir: &std::path::Path) -> Result<String, RuntimeError> {
    let path = dir.join("process-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &id)?;
    Ok(id)
}
