//! What a processor can do while it runs: forward, read and write its stores, schedule
//! punctuations, and learn where the current record came from.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::metrics::TaskMetrics;
use crate::partitioner::PartitionPlan;
use crate::processor::{ErasedProcessor, ProcessError, PunctuationType};
use crate::record::{header, OutRecord, Record, RecordMeta};
use crate::serde::Serde;
use crate::store::{CachedStore, KeyValueStore, KvBackend, StoreError};
use crate::time::Clocks;
use crate::topology::{resolve_internal, BuiltTopology};
use crate::window::WindowStore;

/// Identifies a task: one sub-topology on one partition (Kafka Streams' `0_3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub subtopology: usize,
    pub partition: i32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// Global stores shared read-only by every task of an instance.
pub type GlobalStores = HashMap<String, Arc<dyn KvBackend>>;

#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub node: usize,
    pub interval: i64,
    pub kind: PunctuationType,
    pub next: i64,
}

/// Everything a task owns except its processors, so a processor can be taken out of its slot
/// and given mutable access to the rest while it runs.
pub(crate) struct TaskCore {
    pub topology: Arc<BuiltTopology>,
    pub id: TaskId,
    pub stores: HashMap<String, CachedStore>,
    pub globals: Arc<GlobalStores>,
    pub out: Vec<OutRecord>,
    /// The input record being processed; `None` inside punctuations.
    pub meta: Option<RecordMeta>,
    pub stream_time: i64,
    /// Partition times per input and the watermark (see [`crate::time`]).
    pub clocks: Clocks,
    /// Each sub-topology's partitioner, once the runtime (or driver) has decided them.
    pub partitioning: Option<Arc<PartitionPlan>>,
    pub wall_clock: i64,
    pub schedules: Vec<Schedule>,
    pub metrics: TaskMetrics,
    /// Outputs emitted for the current input record or punctuation, for output ids.
    pub out_seq: u32,
    /// Identifies the current punctuation (node, time) when `meta` is None.
    pub punctuation: Option<(usize, i64)>,
    /// Outputs at the front of `out` already counted on `finstream_records_produced_total`.
    pub counted_out: usize,
    /// The node whose `process` first returned the data error now travelling up the graph.
    pub failing: Option<usize>,
    /// Data errors of the current record, each from its own branch of the graph (whose
    /// writes and outputs were rolled back), with the node that rejected it.
    pub rejections: Vec<(usize, ProcessError)>,
}

/// What a record's branch can be rolled back to: outputs, and each store's undo mark (in the
/// stores' iteration order, which does not change while the task lives).
pub(crate) struct Savepoint {
    out: usize,
    stores: Vec<usize>,
}

impl TaskCore {
    /// A deterministic id for the next output: the input record (or punctuation) that caused
    /// it plus a sequence number. Replaying the same input yields the same ids, which is what
    /// lets a recovering task recognise outputs an earlier attempt already wrote.
    pub(crate) fn output_id(&mut self) -> String {
        let seq = self.out_seq;
        self.out_seq += 1;
        match (&self.meta, self.punctuation) {
            (Some(m), _) => format!("{}/{}/{}/{seq}", m.topic, m.partition, m.offset),
            (None, Some((node, ts))) => format!("p/{}/{node}/{ts}/{seq}", self.id),
            (None, None) => format!("i/{}/{seq}", self.id),
        }
    }

    /// The one way a record leaves the task: queued for the open transaction and counted on
    /// `finstream_records_produced_total` as it is emitted, so a reader of the metrics never
    /// sees an input counted as processed while what it caused is not yet counted.
    pub(crate) fn push_out(&mut self, out: OutRecord) {
        self.out.push(out);
    }

    /// Counts the outputs emitted since the last count on `finstream_records_produced_total`:
    /// once the record that caused them can no longer be rolled back, so the counter never
    /// counts a record that is not sent.
    pub(crate) fn count_outputs(&mut self) {
        for out in &self.out[self.counted_out.min(self.out.len())..] {
            self.metrics.produced(&out.topic);
        }
        self.counted_out = self.out.len();
    }

    pub(crate) fn savepoint(&self) -> Savepoint {
        Savepoint { out: self.out.len(), stores: self.stores.values().map(CachedStore::mark).collect() }
    }

    /// Undoes the store writes and outputs made since `sp`.
    pub(crate) fn rollback(&mut self, sp: &Savepoint) {
        self.out.truncate(sp.out.max(self.counted_out));
        for (store, mark) in self.stores.values_mut().zip(&sp.stores) {
            store.rollback_to(*mark);
        }
    }

    /// The current record is done: its writes no longer need undoing.
    pub(crate) fn release_savepoints(&mut self) {
        for store in self.stores.values_mut() {
            store.release();
        }
    }

    /// Runs `branch` (one child of a fan-out) all-or-nothing: a data error rolls back what it
    /// wrote and emitted and is kept in `rejections` (the record is dead-lettered once per
    /// rejecting processor) instead of failing its siblings; other errors pass through.
    pub(crate) fn isolated(
        &mut self,
        child: usize,
        branch: impl FnOnce(&mut Self) -> Result<(), ProcessError>,
    ) -> Result<(), ProcessError> {
        let sp = self.savepoint();
        match branch(self) {
            Ok(()) => Ok(()),
            Err(e @ ProcessError::Data { .. }) => {
                self.rollback(&sp);
                let node = self.failing.take().unwrap_or(child);
                self.rejections.push((node, e));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Handed to `Processor::process`, `init` and `punctuate`.
pub struct ProcessorContext<'a> {
    pub(crate) core: &'a mut TaskCore,
    pub(crate) processors: &'a mut Vec<Option<Box<dyn ErasedProcessor>>>,
    pub(crate) node: usize,
}

impl<'a> ProcessorContext<'a> {
    pub fn application_id(&self) -> &str {
        &self.core.topology.application_id
    }
    pub fn task_id(&self) -> TaskId {
        self.core.id
    }
    pub fn partition(&self) -> i32 {
        self.core.id.partition
    }
    pub fn node_name(&self) -> &str {
        &self.core.topology.nodes[self.node].name
    }
    /// Source topic, partition and offset of the record being processed (None in punctuations).
    pub fn record_meta(&self) -> Option<&RecordMeta> {
        self.core.meta.as_ref()
    }
    /// The largest event time this task has processed, over all its inputs (Kafka Streams'
    /// stream time; drives stream-time punctuation).
    pub fn stream_time(&self) -> i64 {
        self.core.stream_time
    }
    /// The smallest partition time over this task's inputs that have carried a record:
    /// every input has reached it, so it is the safe horizon for retention and for closing
    /// windows (see [`crate::time`]); `i64::MIN` before the first record.
    pub fn watermark(&self) -> i64 {
        self.core.clocks.watermark
    }
    /// Partition time of the current record's input: the largest event time processed from
    /// that input partition, this record included. `None` in punctuations.
    pub fn input_time(&self) -> Option<i64> {
        self.core.clocks.current.and_then(|i| self.core.clocks.input_time(i))
    }
    pub fn wall_clock_time(&self) -> i64 {
        self.core.wall_clock
    }

    /// Calls `punctuate` on this processor every `interval_ms` of the given clock.
    pub fn schedule(&mut self, interval_ms: i64, kind: PunctuationType) {
        let base = match kind {
            PunctuationType::StreamTime => self.core.stream_time.max(0),
            PunctuationType::WallClockTime => self.core.wall_clock,
        };
        self.core.schedules.push(Schedule {
            node: self.node,
            interval: interval_ms.max(1),
            kind,
            next: base + interval_ms.max(1),
        });
    }

    /// Counts a processor-specific event (`finstream_processor_events_total{processor,event}`),
    /// e.g. duplicates ignored, so processors need no metrics plumbing of their own.
    pub fn count_event(&self, event: &str) {
        self.core.metrics.event(self.node_name(), event);
    }

    /// Counts one record that arrived after its window's grace period on
    /// `finstream_late_records_total{processor}`, the metric `WindowedAggregate` counts on, for
    /// processors that keep their own window bookkeeping (e.g. windows at local midnights).
    pub fn count_late(&self) {
        self.core.metrics.all.late_records.with_label_values(&[self.node_name()]).inc();
    }

    /// Names of this processor's children in the order they were added: the names
    /// [`ProcessorContext::forward_to`] takes.
    pub fn child_names(&self) -> Vec<String> {
        let topo = &self.core.topology;
        topo.children[self.node].iter().map(|&c| topo.nodes[c].name.clone()).collect()
    }

    /// Sends `record` to every child of this processor.
    ///
    /// Each record is all-or-nothing per branch. With one child, the child's data error is
    /// returned to the caller (which usually returns it too). With several, each child runs on
    /// its own: one that rejects the record (a data error) has its store writes and outputs
    /// rolled back and the record is dead-lettered naming it (`finstream.error.processor`),
    /// while its siblings apply the record whatever order they were added in; `forward` then
    /// returns `Ok`. Errors that are not the data's (store, retriable, internal) stop the record.
    /// A source gives its children the same treatment.
    pub fn forward<K, V>(&mut self, record: Record<K, V>) -> Result<(), ProcessError>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let topo = self.core.topology.clone();
        let children = &topo.children[self.node];
        self.core.metrics.forwarded(self.node);
        match children.len() {
            0 => Ok(()),
            // One child: its error is the caller's (all-or-nothing up to the nearest fan-out).
            1 => self.dispatch(children[0], Box::new(record)),
            // Several: each child's outcome is its own, whatever the order they were added in.
            n => {
                for &c in &children[..n - 1] {
                    self.dispatch_isolated(c, Box::new(record.clone()))?;
                }
                self.dispatch_isolated(children[n - 1], Box::new(record))
            }
        }
    }

    /// [`ProcessorContext::dispatch`] as one all-or-nothing branch ([`TaskCore::isolated`]).
    pub(crate) fn dispatch_isolated(&mut self, child: usize, record: Box<dyn Any + Send>) -> Result<(), ProcessError> {
        let processors = &mut *self.processors;
        self.core.isolated(child, |core| ProcessorContext { core, processors, node: child }.dispatch(child, record))
    }

    /// Sends `record` to the named child only (Kafka Streams' `To.child`).
    pub fn forward_to<K, V>(&mut self, child: &str, record: Record<K, V>) -> Result<(), ProcessError>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        let topo = self.core.topology.clone();
        let idx = topo.children[self.node]
            .iter()
            .copied()
            .find(|&c| topo.nodes[c].name == child)
            .ok_or_else(|| ProcessError::Internal(format!("{} has no child named {child}", self.node_name())))?;
        self.core.metrics.forwarded(self.node);
        self.dispatch(idx, Box::new(record))
    }

    pub(crate) fn dispatch(&mut self, child: usize, record: Box<dyn Any + Send>) -> Result<(), ProcessError> {
        let mut p = self.processors[child]
            .take()
            .ok_or_else(|| ProcessError::Internal("topology cycle or missing processor".into()))?;
        // Whoever failed before this call was handled already; only an error from this call's
        // own branch names its processor.
        self.core.failing = None;
        let result = {
            let mut ctx = ProcessorContext { core: &mut *self.core, processors: &mut *self.processors, node: child };
            p.process_any(record, &mut ctx)
        };
        self.core.metrics.processed(child);
        self.processors[child] = Some(p);
        if matches!(result, Err(ProcessError::Data { .. })) && self.core.failing.is_none() {
            self.core.failing = Some(child);
        }
        result
    }

    /// Writes a serialized record out of the task, adding lineage headers that name the input
    /// record which caused it (kept as they are when the input already carried lineage).
    pub(crate) fn emit(&mut self, mut out: OutRecord) {
        if out.headers.get(header::SOURCE_TOPIC).is_none() {
            if let Some(meta) = &self.core.meta {
                out.headers.set(header::SOURCE_TOPIC, meta.topic.as_bytes());
                out.headers.set(header::SOURCE_PARTITION, meta.partition.to_string());
                out.headers.set(header::SOURCE_OFFSET, meta.offset.to_string());
            }
        }
        let id = self.core.output_id();
        out.headers.set(header::OUTPUT_ID, id);
        self.core.push_out(out);
    }

    /// The partition of `key` in one of the application's own repartition topics, under the
    /// partitioner of the sub-topology that reads it. `None` for user topics (murmur2 at send,
    /// as downstream Java consumers expect) and while no plan is set.
    pub(crate) fn internal_partition(&self, topic: &str, key: &[u8]) -> Option<i32> {
        let plan = self.core.partitioning.as_ref()?;
        let topology = &self.core.topology;
        if !topology.is_internal_topic(topic) {
            return None;
        }
        plan.partition_for(topology.subtopology_of_topic(topic)?, key)
    }

    pub(crate) fn resolve_topic(&self, topic: &str) -> String {
        resolve_internal(topic, &self.core.topology.application_id)
    }

    fn connected_store(&mut self, name: &str) -> Result<(&mut CachedStore, &crate::topology::StoreSpec), StoreError> {
        if !self.core.topology.node_stores[self.node].iter().any(|s| s == name) {
            return Err(StoreError::NotConnected(name.to_string()));
        }
        let spec = self.core.topology.stores.get(name).ok_or_else(|| StoreError::NotConnected(name.to_string()))?;
        let store = self.core.stores.get_mut(name).ok_or_else(|| StoreError::NotConnected(name.to_string()))?;
        Ok((store, spec))
    }

    /// A typed view of a key-value store connected to this processor.
    pub fn kv_store<K: 'static, V: 'static>(&mut self, name: &str) -> Result<KeyValueStore<'_, K, V>, StoreError> {
        let (store, spec) = self.connected_store(name)?;
        let (key_serde, value_serde) = typed_serdes::<K, V>(spec)?;
        Ok(KeyValueStore { store, key_serde, value_serde })
    }

    /// A typed view of a window store (a key-value store whose keys carry window starts).
    pub fn window_store<K: 'static, V: 'static>(&mut self, name: &str) -> Result<WindowStore<'_, K, V>, StoreError> {
        let (store, spec) = self.connected_store(name)?;
        let (key_serde, value_serde) = typed_serdes::<K, V>(spec)?;
        Ok(WindowStore { store, key_serde, value_serde })
    }

    /// Reads a global store (filled from all partitions of its topic before processing began).
    pub fn global_get<K: 'static, V: 'static>(&self, name: &str, key: &K) -> Result<Option<V>, StoreError> {
        let backend = self.core.globals.get(name).ok_or_else(|| StoreError::NotConnected(name.to_string()))?;
        let spec = self.core.topology.store_spec(name).ok_or_else(|| StoreError::NotConnected(name.to_string()))?;
        let (ks, vs) = typed_serdes::<K, V>(spec)?;
        let k = ks.serialize(name, key).map_err(|source| StoreError::Serde { store: name.into(), source })?;
        match backend.get(&k)? {
            Some(v) => {
                vs.deserialize(name, &v).map(Some).map_err(|source| StoreError::Serde { store: name.into(), source })
            }
            None => Ok(None),
        }
    }
}

pub(crate) fn typed_serdes<K: 'static, V: 'static>(
    spec: &crate::topology::StoreSpec,
) -> Result<(&dyn Serde<K>, &dyn Serde<V>), StoreError> {
    let wrong = || StoreError::WrongType {
        store: spec.name.clone(),
        asked: std::any::type_name::<(K, V)>(),
        actual: if spec.type_names.0.is_empty() { "?" } else { spec.type_names.1 },
    };
    let k = spec.key_serde.downcast_ref::<Arc<dyn Serde<K>>>().ok_or_else(wrong)?;
    let v = spec.value_serde.downcast_ref::<Arc<dyn Serde<V>>>().ok_or_else(wrong)?;
    Ok((k.as_ref(), v.as_ref()))
}
