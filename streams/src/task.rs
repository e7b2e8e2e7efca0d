//! A task: one sub-topology on one partition, with its stores, input queues and commit cycle.
//! The Kafka runtime and the in-memory test driver both drive this same type, so what the
//! driver proves about processors holds in production.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::context::{GlobalStores, ProcessorContext, TaskCore, TaskId};
use crate::metrics::{StreamsMetrics, TaskMetrics};
use crate::processor::{ErasedProcessor, ProcessError, PunctuationType};
use crate::record::{header, OutRecord, RawRecord, RecordMeta};
use crate::store::{BackendProvider, CachedStore, Entry, StoreError};
use crate::topology::{BuiltTopology, NodeKind};

/// What happens to a record that cannot be decoded or that a processor rejects as bad data
/// (Kafka Streams' deserialization/processing exception handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorHandling {
    /// Stop the task: nothing is skipped silently.
    Fail,
    /// Log, count and skip the record.
    LogAndContinue,
    /// Write the raw record to `<topic>-dlq` with the reason in headers, count it, continue.
    #[default]
    DeadLetter,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task {task}: {source}")]
    Process {
        task: TaskId,
        #[source]
        source: ProcessError,
    },
    #[error("task {task}: store: {source}")]
    Store {
        task: TaskId,
        #[source]
        source: StoreError,
    },
}

/// Where bad records of `topic` go: `<topic>-dlq`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}-dlq")
}

impl TaskError {
    /// The failure is the environment's and passes (see [`ProcessError::Retriable`]): abandon the
    /// uncommitted work and process it again after a pause.
    pub fn is_retriable(&self) -> bool {
        self.retriable_reason().is_some()
    }

    /// The reason class of a retriable failure, for the `finstream_retries_total` label.
    pub fn retriable_reason(&self) -> Option<&str> {
        match self {
            TaskError::Process { source: ProcessError::Retriable { reason, .. }, .. } => Some(reason),
            _ => None,
        }
    }
}

/// What a commit must write before the transaction commits.
#[derive(Debug, Default)]
pub struct CommitPlan {
    /// One record per dirty key of each logged store, for the task's changelog partitions.
    pub changelog: Vec<OutRecord>,
    /// Next offsets to consume, per input topic of this task's partition.
    pub offsets: Vec<(String, i32, i64)>,
}

/// Task settings shared by all tasks of an instance.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub errors: ErrorHandling,
    /// How long a task with some empty input partitions waits before processing the others
    /// out of timestamp order (`max.task.idle.ms`).
    pub max_task_idle_ms: i64,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig { errors: ErrorHandling::DeadLetter, max_task_idle_ms: 0 }
    }
}

pub struct Task {
    core: TaskCore,
    processors: Vec<Option<Box<dyn ErasedProcessor>>>,
    queues: BTreeMap<String, VecDeque<RawRecord>>,
    /// Next offset to commit per input topic.
    positions: BTreeMap<String, i64>,
    source_of_topic: HashMap<String, usize>,
    pending: Vec<(String, Vec<Entry>)>,
    initialized: bool,
    idle_since: Option<i64>,
    config: TaskConfig,
}

impl Task {
    pub fn new(
        topology: Arc<BuiltTopology>,
        id: TaskId,
        provider: &dyn BackendProvider,
        globals: Arc<GlobalStores>,
        metrics: StreamsMetrics,
        config: TaskConfig,
    ) -> Result<Task, StoreError> {
        let sub = &topology.subtopologies[id.subtopology];
        let mut stores = HashMap::new();
        for name in &sub.stores {
            let spec = &topology.stores[name];
            let backend = provider.open(&id.to_string(), name)?;
            stores.insert(name.clone(), CachedStore::new(name.clone(), backend, spec.logged));
        }
        let mut source_of_topic = HashMap::new();
        let mut queues = BTreeMap::new();
        for &i in &sub.nodes {
            if let NodeKind::Source { topics, .. } = &topology.nodes[i].kind {
                for t in topics {
                    source_of_topic.insert(t.clone(), i);
                    queues.insert(t.clone(), VecDeque::new());
                }
            }
        }
        let names: Vec<String> = topology.nodes.iter().map(|n| n.name.clone()).collect();
        let core = TaskCore {
            topology: topology.clone(),
            id,
            stores,
            globals,
            out: Vec::new(),
            meta: None,
            stream_time: i64::MIN,
            wall_clock: 0,
            schedules: Vec::new(),
            metrics: TaskMetrics::new(metrics, &names),
            out_seq: 0,
            punctuation: None,
        };
        let processors = (0..topology.nodes.len()).map(|_| None).collect();
        Ok(Task {
            core,
            processors,
            queues,
            positions: BTreeMap::new(),
            source_of_topic,
            pending: Vec::new(),
            initialized: false,
            idle_since: None,
            config,
        })
    }

    pub fn id(&self) -> TaskId {
        self.core.id
    }

    /// Input topics of this task (each at this task's partition).
    pub fn input_topics(&self) -> impl Iterator<Item = &String> {
        self.queues.keys()
    }

    /// (store, changelog topic, offset to restore from) for each logged store.
    pub fn restore_plan(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let mut plan = Vec::new();
        for (name, store) in &self.core.stores {
            if store.logged {
                let from = store.backend.checkpoint()?.unwrap_or(0);
                plan.push((name.clone(), self.core.topology.changelog_topic(name), from));
            }
        }
        plan.sort();
        Ok(plan)
    }

    /// Applies changelog records read during restore, recording `next_offset` as checkpoint.
    pub fn restore(&mut self, store: &str, entries: &[Entry], next_offset: i64) -> Result<(), StoreError> {
        let s = self.core.stores.get(store).ok_or_else(|| StoreError::NotConnected(store.to_string()))?;
        s.backend.apply(entries, Some(next_offset))?;
        self.core.metrics.all.restored_records.with_label_values(&[store]).inc_by(entries.len() as u64);
        Ok(())
    }

    /// Writes every committed entry of `store` to its changelog again at the next commit: the
    /// changelog was lost (deleted and recreated) while the local store, which holds committed
    /// data only, survived.
    pub fn reseed_changelog(&mut self, store: &str) -> Result<(), StoreError> {
        let s = self.core.stores.get_mut(store).ok_or_else(|| StoreError::NotConnected(store.to_string()))?;
        let entries: Vec<(Vec<u8>, Vec<u8>)> = s.backend.range(None, None)?.collect::<Result<_, _>>()?;
        for (k, v) in entries {
            s.put(k, v);
        }
        Ok(())
    }

    /// Drops one store's data and checkpoint (its changelog no longer reaches back to it).
    pub fn wipe_store(&mut self, store: &str) -> Result<(), StoreError> {
        let s = self.core.stores.get(store).ok_or_else(|| StoreError::NotConnected(store.to_string()))?;
        s.backend.wipe()
    }

    /// Wipes every store of the task (a checkpoint that cannot be trusted).
    pub fn wipe_stores(&mut self) -> Result<(), StoreError> {
        for s in self.core.stores.values() {
            s.backend.wipe()?;
        }
        Ok(())
    }

    /// Creates the processors and calls `init`. Call after restoring.
    pub fn initialize(&mut self, wall_clock: i64) -> Result<(), TaskError> {
        self.core.wall_clock = wall_clock;
        let topo = self.core.topology.clone();
        let sub = &topo.subtopologies[self.core.id.subtopology];
        for &i in &sub.nodes {
            if let NodeKind::Processor { supplier } = &topo.nodes[i].kind {
                self.processors[i] = Some(supplier());
            }
        }
        for &i in &sub.nodes {
            if let Some(mut p) = self.processors[i].take() {
                let r =
                    p.init(&mut ProcessorContext { core: &mut self.core, processors: &mut self.processors, node: i });
                self.processors[i] = Some(p);
                r.map_err(|source| TaskError::Process { task: self.core.id, source })?;
            }
        }
        self.initialized = true;
        Ok(())
    }

    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    pub fn add_records(&mut self, records: impl IntoIterator<Item = RawRecord>) {
        for r in records {
            if let Some(q) = self.queues.get_mut(&r.topic) {
                q.push_back(r);
            }
        }
    }

    /// Records waiting in the queue of one input topic.
    pub fn queued(&self, topic: &str) -> usize {
        self.queues.get(topic).map_or(0, |q| q.len())
    }

    pub fn buffered(&self) -> usize {
        self.queues.values().map(|q| q.len()).sum()
    }

    /// Processes the next record in timestamp order across this task's input partitions.
    /// Returns false when nothing could be processed now.
    pub fn process_next(&mut self, now_ms: i64) -> Result<bool, TaskError> {
        if !self.initialized {
            return Ok(false);
        }
        let all_ready = self.queues.values().all(|q| !q.is_empty());
        if !all_ready {
            if self.queues.values().all(|q| q.is_empty()) {
                self.idle_since = None;
                return Ok(false);
            }
            let since = *self.idle_since.get_or_insert(now_ms);
            if now_ms - since < self.config.max_task_idle_ms {
                return Ok(false);
            }
        } else {
            self.idle_since = None;
        }
        let topic = self
            .queues
            .iter()
            .filter_map(|(t, q)| q.front().map(|r| (r.timestamp, t)))
            .min()
            .map(|(_, t)| t.clone())
            .expect("a non-empty queue exists");
        let raw = self.queues.get_mut(&topic).and_then(|q| q.pop_front()).expect("queue has a head");
        self.process_raw(raw)?;
        Ok(true)
    }

    fn process_raw(&mut self, raw: RawRecord) -> Result<(), TaskError> {
        let started = Instant::now();
        self.positions.insert(raw.topic.clone(), raw.offset + 1);
        self.core.stream_time = self.core.stream_time.max(raw.timestamp);
        self.core.meta = Some(RecordMeta { topic: raw.topic.clone(), partition: raw.partition, offset: raw.offset });
        self.core.out_seq = 0;
        let topo = self.core.topology.clone();
        let src = self.source_of_topic[&raw.topic];
        let NodeKind::Source { decoder, .. } = &topo.nodes[src].kind else {
            unreachable!("source_of_topic maps to source nodes")
        };
        self.core.metrics.processed(src);
        let mut result = Ok(());
        for &child in &topo.children[src] {
            let record = match decoder(&raw) {
                Ok(r) => r,
                Err(e) => {
                    result = Err(ProcessError::from(e));
                    break;
                }
            };
            self.core.metrics.forwarded(src);
            let mut ctx = ProcessorContext { core: &mut self.core, processors: &mut self.processors, node: src };
            if let Err(e) = ctx.dispatch(child, record) {
                result = Err(e);
                break;
            }
        }
        match result {
            Ok(()) => {}
            Err(e @ ProcessError::Data { .. }) => self.handle_bad_record(&raw, e)?,
            Err(source) => return Err(TaskError::Process { task: self.core.id, source }),
        }
        self.core.meta = None;
        self.core.metrics.all.process_latency.observe(started.elapsed().as_secs_f64());
        self.punctuate_stream_time()
    }

    fn handle_bad_record(&mut self, raw: &RawRecord, error: ProcessError) -> Result<(), TaskError> {
        let reason = error.class().to_string();
        let metrics = &self.core.metrics.all;
        match self.config.errors {
            ErrorHandling::Fail => return Err(TaskError::Process { task: self.core.id, source: error }),
            ErrorHandling::LogAndContinue => {
                tracing::warn!(task = %self.core.id, topic = %raw.topic, partition = raw.partition, offset = raw.offset, %reason, "skipping bad record");
                metrics.dead_letters.with_label_values(&[&raw.topic, &reason]).inc();
            }
            ErrorHandling::DeadLetter => {
                let dlq = dead_letter_topic(&raw.topic);
                metrics.dead_letters.with_label_values(&[&raw.topic, &reason]).inc();
                let mut headers = raw.headers.clone();
                headers.set(header::ERROR_CLASS, reason.as_bytes());
                headers.set(header::ERROR_MESSAGE, error.to_string());
                headers.set(header::SOURCE_TOPIC, raw.topic.as_bytes());
                headers.set(header::SOURCE_PARTITION, raw.partition.to_string());
                headers.set(header::SOURCE_OFFSET, raw.offset.to_string());
                headers.set(header::OUTPUT_ID, self.core.output_id());
                self.core.out.push(OutRecord {
                    topic: dlq,
                    partition: None,
                    key: raw.key.clone(),
                    value: raw.value.clone(),
                    timestamp: raw.timestamp,
                    headers,
                });
            }
        }
        Ok(())
    }

    fn run_due(&mut self, kind: PunctuationType, now: i64) -> Result<(), TaskError> {
        for i in 0..self.core.schedules.len() {
            let s = self.core.schedules[i].clone();
            if s.kind != kind || now < s.next {
                continue;
            }
            // Fire once for the latest due point (Kafka Streams skips missed intervals too).
            let missed = (now - s.next) / s.interval;
            self.core.schedules[i].next = s.next + (missed + 1) * s.interval;
            if let Some(mut p) = self.processors[s.node].take() {
                self.core.punctuation = Some((s.node, now));
                self.core.out_seq = 0;
                let r = p.punctuate(
                    kind,
                    now,
                    &mut ProcessorContext { core: &mut self.core, processors: &mut self.processors, node: s.node },
                );
                self.processors[s.node] = Some(p);
                self.core.punctuation = None;
                r.map_err(|source| TaskError::Process { task: self.core.id, source })?;
            }
        }
        Ok(())
    }

    fn punctuate_stream_time(&mut self) -> Result<(), TaskError> {
        let now = self.core.stream_time;
        self.run_due(PunctuationType::StreamTime, now)
    }

    /// Fires due wall-clock punctuations.
    pub fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<(), TaskError> {
        self.core.wall_clock = now_ms;
        if !self.initialized {
            return Ok(());
        }
        self.run_due(PunctuationType::WallClockTime, now_ms)
    }

    /// Records produced since the last call (to be sent within the open transaction).
    pub fn take_output(&mut self) -> Vec<OutRecord> {
        std::mem::take(&mut self.core.out)
    }

    pub fn has_output(&self) -> bool {
        !self.core.out.is_empty()
    }

    /// Whether the task holds work a commit must make durable: outputs not sent yet or store
    /// writes (e.g. from a punctuation that emitted nothing).
    pub fn has_uncommitted(&self) -> bool {
        self.has_output() || self.core.stores.values().any(|s| s.dirty_len() > 0)
    }

    /// Drains the write caches into changelog records and collects input positions. The drained
    /// entries wait in `pending` until `commit_succeeded` (or are dropped by `abort`).
    pub fn prepare_commit(&mut self) -> CommitPlan {
        let mut plan = CommitPlan::default();
        let topo = self.core.topology.clone();
        let mut names: Vec<&String> = self.core.stores.keys().collect();
        names.sort();
        let names: Vec<String> = names.into_iter().cloned().collect();
        for name in names {
            let store = self.core.stores.get_mut(&name).expect("store exists");
            let metrics = &self.core.metrics.all;
            metrics.cache_hits.with_label_values(&[&name]).inc_by(std::mem::take(&mut store.hits));
            metrics.cache_misses.with_label_values(&[&name]).inc_by(std::mem::take(&mut store.misses));
            let entries = store.take_dirty();
            if entries.is_empty() {
                continue;
            }
            if store.logged {
                let topic = topo.changelog_topic(&name);
                for (k, v) in &entries {
                    plan.changelog.push(OutRecord {
                        topic: topic.clone(),
                        partition: Some(self.core.id.partition),
                        key: Some(k.clone()),
                        value: v.clone(),
                        timestamp: self.core.stream_time.max(0),
                        headers: Default::default(),
                    });
                }
            }
            self.pending.push((name, entries));
        }
        plan.offsets = self.positions.iter().map(|(t, o)| (t.clone(), self.core.id.partition, *o)).collect();
        plan
    }

    /// The transaction committed: apply the pending entries to the backends, each store in one
    /// atomic batch with its changelog position (`changelog_next` per changelog topic).
    pub fn commit_succeeded(&mut self, changelog_next: &HashMap<String, i64>) -> Result<(), TaskError> {
        let topo = self.core.topology.clone();
        for (name, entries) in std::mem::take(&mut self.pending) {
            let store = &self.core.stores[&name];
            let checkpoint =
                if store.logged { changelog_next.get(&topo.changelog_topic(&name)).copied() } else { None };
            store
                .backend
                .apply(&entries, checkpoint)
                .map_err(|source| TaskError::Store { task: self.core.id, source })?;
        }
        Ok(())
    }

    /// Next offsets to consume, per input topic: what a restarted task resumes from.
    pub fn positions(&self) -> &BTreeMap<String, i64> {
        &self.positions
    }

    /// Drops everything not committed: dirty caches, pending batches, buffered input, output.
    pub fn abort(&mut self) {
        for s in self.core.stores.values_mut() {
            s.discard();
        }
        self.pending.clear();
        self.core.out.clear();
        for q in self.queues.values_mut() {
            q.clear();
        }
    }

    /// Clean close (revocation, shutdown): calls `close` on every processor.
    pub fn close(&mut self) {
        for p in self.processors.iter_mut().flatten() {
            p.close();
        }
        self.initialized = false;
    }

    /// The committed backend of a store, for interactive queries.
    pub fn store_backend(&self, name: &str) -> Option<Arc<dyn crate::store::KvBackend>> {
        self.core.stores.get(name).map(|s| s.backend.clone())
    }

    pub fn stream_time(&self) -> i64 {
        self.core.stream_time
    }
}
