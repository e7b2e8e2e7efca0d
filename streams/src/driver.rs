//! An in-memory test driver in the spirit of Kafka Streams' TopologyTestDriver, but with
//! partitions, transactions and crashes.
//!
//! Topics are in-memory logs with several partitions. All tasks run as one stream thread whose
//! commits are atomic, like an exactly-once transaction: outputs, changelog records and input
//! offsets become visible together. A crash drops every uncommitted thing, recreates the tasks,
//! restores their stores from the committed changelog (from scratch if the state is wiped) and
//! replays input from the committed offsets, so a scenario run straight and with crashes must
//! produce identical committed outputs and stores.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::context::{GlobalStores, TaskId};
use crate::metrics::StreamsMetrics;
use crate::murmur2::partition_for_key;
use crate::record::{Headers, OutRecord, RawRecord, Record};
use crate::serde::Serde;
use crate::store::{BackendProvider, KvBackend, MemoryBackend, StoreError};
use crate::task::{Task, TaskConfig, TaskError};
use crate::topology::BuiltTopology;

/// How the driver commits and where it crashes.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Partitions of every topic (inputs, repartition topics, changelogs, outputs).
    pub partitions: i32,
    /// Commit after this many processed records (and whenever input runs dry).
    pub commit_every: usize,
    /// Crash after these many processed records in total, in increasing order.
    pub crashes: Vec<(usize, Crash)>,
    pub task: TaskConfig,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig { partitions: 4, commit_every: 100, crashes: Vec::new(), task: TaskConfig::default() }
    }
}

/// Kinds of simulated failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The process dies between records: uncommitted work is lost, local state survives.
    Process,
    /// The process dies after the transaction committed but before the local state batch was
    /// written: the store must catch up from its changelog tail.
    AfterTransactionCommit,
    /// The process dies and the state directory is lost: stores rebuild from changelogs.
    WipeState,
}

#[derive(Debug, Clone)]
struct LogRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    headers: Headers,
    /// Global append order, so reads across partitions are deterministic.
    seq: u64,
}

/// Backends survive simulated crashes (they are "on disk") unless state is wiped.
#[derive(Default)]
struct DriverProvider {
    backends: Mutex<HashMap<(String, String), Arc<MemoryBackend>>>,
}

impl BackendProvider for DriverProvider {
    fn open(&self, task: &str, store: &str) -> Result<Arc<dyn KvBackend>, StoreError> {
        let mut map = self.backends.lock().expect("poisoned");
        let b = map.entry((task.to_string(), store.to_string())).or_default().clone();
        Ok(b)
    }
}

pub struct TopologyTestDriver {
    topology: Arc<BuiltTopology>,
    config: DriverConfig,
    logs: HashMap<(String, i32), Vec<LogRecord>>,
    committed_offsets: HashMap<(String, i32), i64>,
    fetch_positions: HashMap<(String, i32), i64>,
    tasks: BTreeMap<TaskId, Task>,
    provider: DriverProvider,
    globals: Arc<GlobalStores>,
    metrics: StreamsMetrics,
    uncommitted: Vec<OutRecord>,
    processed_total: usize,
    since_commit: usize,
    next_crash: usize,
    seq: u64,
    wall_clock: i64,
    /// Number of crashes performed so far (tests assert the crashes really happened).
    pub crashes_done: usize,
    /// Times uncommitted work was abandoned and redone after a retriable error.
    pub retries_done: usize,
}

/// Consecutive retriable failures after which `run` gives up and returns the error.
const MAX_CONSECUTIVE_RETRIES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TopologyTestDriver {
    pub fn new(topology: Arc<BuiltTopology>, config: DriverConfig) -> Result<Self, DriverError> {
        let globals: GlobalStores = topology
            .globals
            .iter()
            .map(|g| (g.store.name.clone(), Arc::new(MemoryBackend::default()) as Arc<dyn KvBackend>))
            .collect();
        let mut d = TopologyTestDriver {
            topology,
            config,
            logs: HashMap::new(),
            committed_offsets: HashMap::new(),
            fetch_positions: HashMap::new(),
            tasks: BTreeMap::new(),
            provider: DriverProvider::default(),
            globals: Arc::new(globals),
            metrics: StreamsMetrics::default(),
            uncommitted: Vec::new(),
            processed_total: 0,
            since_commit: 0,
            next_crash: 0,
            seq: 0,
            wall_clock: 0,
            crashes_done: 0,
            retries_done: 0,
        };
        d.start_tasks()?;
        Ok(d)
    }

    pub fn metrics(&self) -> &StreamsMetrics {
        &self.metrics
    }

    fn start_tasks(&mut self) -> Result<(), DriverError> {
        self.tasks.clear();
        self.fetch_positions.clear();
        for sub in &self.topology.subtopologies {
            if sub.source_topics.is_empty() {
                continue;
            }
            for p in 0..self.config.partitions {
                let id = TaskId { subtopology: sub.id, partition: p };
                let mut task = Task::new(
                    self.topology.clone(),
                    id,
                    &self.provider,
                    self.globals.clone(),
                    self.metrics.clone(),
                    self.config.task.clone(),
                )?;
                for (store, topic, from) in task.restore_plan()? {
                    let log = self.logs.get(&(topic.clone(), p)).map(|l| l.as_slice()).unwrap_or(&[]);
                    let from = from.clamp(0, log.len() as i64);
                    let entries: Vec<_> = log[from as usize..]
                        .iter()
                        .filter_map(|r| r.key.clone().map(|k| (k, r.value.clone())))
                        .collect();
                    task.restore(&store, &entries, log.len() as i64)?;
                }
                task.initialize(self.wall_clock)?;
                for t in &sub.source_topics {
                    let committed = self.committed_offsets.get(&(t.clone(), p)).copied().unwrap_or(0);
                    self.fetch_positions.insert((t.clone(), p), committed);
                }
                self.tasks.insert(id, task);
            }
        }
        Ok(())
    }

    fn append(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
    ) -> i64 {
        let p = partition.unwrap_or_else(|| match &key {
            Some(k) => partition_for_key(k, self.config.partitions),
            None => 0,
        });
        self.seq += 1;
        if let Some(g) = self.topology.globals.iter().find(|g| g.topic == topic) {
            let backend = &self.globals[&g.store.name];
            if let Some(k) = &key {
                backend.apply(&[(k.clone(), value.clone())], None).expect("memory backend never fails");
            }
        }
        let log = self.logs.entry((topic.to_string(), p)).or_default();
        log.push(LogRecord { key, value, timestamp, headers, seq: self.seq });
        log.len() as i64
    }

    /// Appends a raw record to a topic (partitioned by murmur2 of the key) and processes
    /// everything that becomes available.
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<(), DriverError> {
        self.append(topic, None, key, value, timestamp, Headers::new());
        self.run()
    }

    /// Serializes and pipes one record.
    pub fn pipe<K: 'static, V: 'static>(
        &mut self,
        topic: &str,
        key: &K,
        value: &V,
        timestamp: i64,
        ks: &dyn Serde<K>,
        vs: &dyn Serde<V>,
    ) -> Result<(), DriverError> {
        let k = ks.serialize(topic, key).expect("test input key serializes");
        let v = vs.serialize(topic, value).expect("test input value serializes");
        self.pipe_raw(topic, Some(k), Some(v), timestamp)
    }

    /// Appends without processing (to build up input, then `run`).
    pub fn append_raw(&mut self, topic: &str, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) {
        self.append(topic, None, key, value, timestamp, Headers::new());
    }

    /// Processes until no task has work, committing every `commit_every` records and at the end.
    pub fn run(&mut self) -> Result<(), DriverError> {
        let mut consecutive_retries = 0;
        'rounds: loop {
            let mut progressed = false;
            let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
            for id in ids {
                self.fetch(id);
                loop {
                    let task = self.tasks.get_mut(&id).expect("task exists");
                    match task.process_next(self.wall_clock) {
                        Ok(true) => consecutive_retries = 0,
                        Ok(false) => break,
                        // As the runtime does: drop the uncommitted work and redo it from the last
                        // commit (the runtime also backs off; the driver's clock is virtual).
                        Err(e) if e.is_retriable() && consecutive_retries < MAX_CONSECUTIVE_RETRIES => {
                            let reason = e.retriable_reason().unwrap_or_default();
                            self.metrics.retries.with_label_values(&[reason]).inc();
                            consecutive_retries += 1;
                            self.retries_done += 1;
                            self.restart_from_commit()?;
                            continue 'rounds;
                        }
                        Err(e) => return Err(e.into()),
                    }
                    self.uncommitted.extend(task.take_output());
                    progressed = true;
                    self.processed_total += 1;
                    self.since_commit += 1;
                    if self.crash_due() {
                        break;
                    }
                    if self.since_commit >= self.config.commit_every {
                        self.commit(false)?;
                    }
                }
            }
            if !progressed {
                if self.since_commit > 0 || !self.uncommitted.is_empty() {
                    self.commit(false)?;
                    continue;
                }
                return Ok(());
            }
        }
    }

    fn crash_due(&mut self) -> bool {
        let Some(&(at, kind)) = self.config.crashes.get(self.next_crash) else { return false };
        if self.processed_total < at {
            return false;
        }
        self.next_crash += 1;
        self.crash(kind).expect("restart after simulated crash");
        true
    }

    /// Simulates a crash of the whole instance and restarts it.
    pub fn crash(&mut self, kind: Crash) -> Result<(), DriverError> {
        match kind {
            Crash::Process => {}
            Crash::AfterTransactionCommit => self.commit(true)?,
            Crash::WipeState => self.provider.backends.lock().expect("poisoned").clear(),
        }
        self.crashes_done += 1;
        self.restart_from_commit()
    }

    /// Forgets uncommitted output and recreates the tasks from committed state and offsets.
    fn restart_from_commit(&mut self) -> Result<(), DriverError> {
        self.uncommitted.clear();
        self.since_commit = 0;
        self.start_tasks()
    }

    fn fetch(&mut self, id: TaskId) {
        let task = self.tasks.get_mut(&id).expect("task exists");
        let topics: Vec<String> = task.input_topics().cloned().collect();
        for t in topics {
            let key = (t.clone(), id.partition);
            let pos = self.fetch_positions.get(&key).copied().unwrap_or(0);
            let Some(log) = self.logs.get(&key) else { continue };
            let new: Vec<RawRecord> = log[pos as usize..]
                .iter()
                .enumerate()
                .map(|(i, r)| RawRecord {
                    topic: t.clone(),
                    partition: id.partition,
                    offset: pos + i as i64,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                })
                .collect();
            self.fetch_positions.insert(key, log.len() as i64);
            task.add_records(new);
        }
    }

    /// Commits all tasks atomically. With `skip_state_apply` the local state batch is not
    /// written (a crash right after the transaction committed).
    pub fn commit(&mut self, skip_state_apply: bool) -> Result<(), DriverError> {
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        let mut per_task_changelog: Vec<(TaskId, HashMap<String, i64>)> = Vec::new();
        for id in ids {
            let plan = self.tasks.get_mut(&id).expect("task exists").prepare_commit();
            let mut next = HashMap::new();
            for rec in plan.changelog {
                let n = self.append(&rec.topic, rec.partition, rec.key, rec.value, rec.timestamp, rec.headers);
                next.insert(rec.topic, n);
            }
            for (t, p, o) in plan.offsets {
                self.committed_offsets.insert((t, p), o);
            }
            per_task_changelog.push((id, next));
        }
        for out in std::mem::take(&mut self.uncommitted) {
            self.append(&out.topic, out.partition, out.key, out.value, out.timestamp, out.headers);
        }
        if !skip_state_apply {
            for (id, next) in per_task_changelog {
                self.tasks.get_mut(&id).expect("task exists").commit_succeeded(&next)?;
            }
        }
        self.since_commit = 0;
        Ok(())
    }

    /// Moves the wall clock and fires due wall-clock punctuations.
    pub fn advance_wall_clock(&mut self, ms: i64) -> Result<(), DriverError> {
        self.wall_clock += ms;
        for task in self.tasks.values_mut() {
            task.punctuate_wall_clock(self.wall_clock)?;
            self.uncommitted.extend(task.take_output());
        }
        self.run()
    }

    /// Committed records of a topic, in append order across partitions.
    pub fn read_raw(&self, topic: &str) -> Vec<OutRecord> {
        let mut all: Vec<(u64, OutRecord)> = self
            .logs
            .iter()
            .filter(|((t, _), _)| t == topic)
            .flat_map(|((t, p), log)| {
                log.iter().map(move |r| {
                    (
                        r.seq,
                        OutRecord {
                            topic: t.clone(),
                            partition: Some(*p),
                            key: r.key.clone(),
                            value: r.value.clone(),
                            timestamp: r.timestamp,
                            headers: r.headers.clone(),
                        },
                    )
                })
            })
            .collect();
        all.sort_by_key(|(s, _)| *s);
        all.into_iter().map(|(_, r)| r).collect()
    }

    /// Committed records of an output topic, decoded.
    pub fn read_output<K: 'static, V: 'static>(
        &self,
        topic: &str,
        ks: &dyn Serde<K>,
        vs: &dyn Serde<V>,
    ) -> Vec<Record<K, V>> {
        self.read_raw(topic)
            .into_iter()
            .map(|r| {
                let mut rec = Record::new(
                    ks.deserialize(topic, r.key.as_deref().unwrap_or_default()).expect("output key decodes"),
                    vs.deserialize(topic, r.value.as_deref().unwrap_or_default()).expect("output value decodes"),
                    r.timestamp,
                );
                rec.headers = r.headers;
                rec
            })
            .collect()
    }

    /// Committed contents of a store across all tasks, sorted by key bytes.
    pub fn store_raw(&self, store: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = Vec::new();
        for task in self.tasks.values() {
            if let Some(b) = task.store_backend(store) {
                for item in b.range(None, None).expect("memory backend never fails") {
                    all.push(item.expect("memory backend never fails"));
                }
            }
        }
        all.sort();
        all
    }

    /// Committed contents of a key-value store across all tasks.
    pub fn store_all<K, V>(&self, store: &str) -> Vec<(K, V)>
    where
        K: 'static,
        V: 'static,
    {
        let spec = self.topology.store_spec(store).expect("store declared");
        let (ks, vs) = crate::context::typed_serdes::<K, V>(spec).expect("store types match");
        self.store_raw(store)
            .into_iter()
            .map(|(k, v)| {
                (ks.deserialize(store, &k).expect("key decodes"), vs.deserialize(store, &v).expect("value decodes"))
            })
            .collect()
    }
}
