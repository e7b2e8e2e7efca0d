//! A task: one sub-topology on one partition, with its stores, input queues and commit cycle.
//! The Kafka runtime and the in-memory test driver both drive this same type, so what the
//! driver proves about processors holds in production.

mod process;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::context::{GlobalStores, ProcessorContext, TaskCore, TaskId};
use crate::input::{InputPartition, PartitionGroup};
use crate::metrics::{StreamsMetrics, TaskMetrics};
use crate::partitioner::PartitionPlan;
use crate::processor::{ErasedProcessor, ProcessError, PunctuationType};
use crate::record::OutRecord;
use crate::store::{BackendProvider, CachedStore, Entry, StoreError};
use crate::time::{Clocks, TaskClocks};
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
    /// How long a task with an empty input partition waits for data before processing its
    /// other inputs out of event-time order (`max.task.idle.ms`, KIP-695 semantics: with 0 it
    /// still waits for records the broker holds but the consumer has not fetched; -1 never
    /// waits). See [`crate::input`].
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
    /// Input partitions with their queues of decoded records (see [`crate::input`]).
    inputs: PartitionGroup,
    /// Next offset to commit per input topic.
    positions: BTreeMap<String, i64>,
    pending: Vec<(String, Vec<Entry>)>,
    initialized: bool,
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
        let mut inputs = Vec::new();
        for &i in &sub.nodes {
            if let NodeKind::Source { topics, placement, .. } = &topology.nodes[i].kind {
                for t in topics {
                    let misplaced = metrics.misplaced_records.with_label_values(&[t]);
                    let fallbacks = metrics.event_time_fallbacks.with_label_values(&[t]);
                    inputs.push(InputPartition::new(t.clone(), i, placement.clone(), misplaced, fallbacks));
                }
            }
        }
        let inputs = PartitionGroup::new(inputs, config.max_task_idle_ms);
        let names: Vec<String> = topology.nodes.iter().map(|n| n.name.clone()).collect();
        let core = TaskCore {
            topology: topology.clone(),
            id,
            stores,
            globals,
            out: Vec::new(),
            meta: None,
            stream_time: i64::MIN,
            clocks: Clocks::new(inputs.inputs.len()),
            partitioning: None,
            wall_clock: 0,
            schedules: Vec::new(),
            metrics: TaskMetrics::new(metrics, &names),
            out_seq: 0,
            punctuation: None,
            counted_out: 0,
            failing: None,
            rejections: Vec::new(),
        };
        let processors = (0..topology.nodes.len()).map(|_| None).collect();
        Ok(Task {
            core,
            processors,
            inputs,
            positions: BTreeMap::new(),
            pending: Vec::new(),
            initialized: false,
            config,
        })
    }

    pub fn id(&self) -> TaskId {
        self.core.id
    }

    /// Input topics of this task (each at this task's partition).
    pub fn input_topics(&self) -> impl Iterator<Item = &String> {
        self.inputs.inputs.iter().map(|x| &x.topic)
    }

    /// Gives the task each sub-topology's partitioner, for its repartition sinks and, for
    /// key-placed sources, the check that each record is on its key's partition. Set it before
    /// adding records; without it sinks leave partitioning to murmur2 and nothing is checked.
    pub fn set_partitioning(&mut self, plan: Arc<PartitionPlan>) {
        self.core.partitioning = Some(plan);
    }

    /// The end of input `topic`'s partition as the consumer last saw it: the last stable
    /// offset under read_committed (the high watermark otherwise). With the fetch position it
    /// tells whether the broker holds records not fetched yet, which the task waits for rather
    /// than running ahead on its other inputs (KIP-695).
    pub fn set_end_offset(&mut self, topic: &str, end: i64) {
        if let Some(i) = self.inputs.index(topic) {
            self.inputs.set_end_offset(i, end);
        }
    }

    /// The consumer's fetch position on input `topic` (past control records and aborted data,
    /// which never reach the task). Records added through [`Task::add_records`] advance it too.
    pub fn set_fetch_position(&mut self, topic: &str, position: i64) {
        if let Some(i) = self.inputs.index(topic) {
            self.inputs.set_fetch_position(i, position);
        }
    }

    /// Records of `topic` the broker holds beyond what was fetched, as far as the task knows.
    pub fn unfetched(&self, topic: &str) -> i64 {
        self.inputs.index(topic).map_or(0, |i| self.inputs.unfetched(i))
    }

    /// The smallest partition time over the inputs that have carried a record.
    pub fn watermark(&self) -> i64 {
        self.core.clocks.watermark
    }

    /// Partition times per input, to persist with a commit and give back with
    /// [`Task::restore_clocks`] when the task is recreated.
    pub fn clocks(&self) -> TaskClocks {
        let inputs = self
            .inputs
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, x)| self.core.clocks.input_time(i).map(|t| (x.topic.clone(), t)))
            .collect();
        TaskClocks { inputs }
    }

    /// Resumes with persisted partition times (stream time and watermark follow from them).
    /// Call it before [`Task::initialize`], so stream-time punctuations are scheduled from the
    /// restored stream time.
    pub fn restore_clocks(&mut self, clocks: &TaskClocks) {
        for (topic, t) in &clocks.inputs {
            if let Some(i) = self.inputs.index(topic) {
                self.core.clocks.restore(i, *t);
                self.core.stream_time = self.core.stream_time.max(*t);
            }
        }
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
        self.core.count_outputs();
        self.core.counted_out = 0;
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
        self.core.counted_out = 0;
        self.inputs.clear();
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
