//! The driver's input side: producers with a chosen partitioner, fetching in slices, and the
//! start-up decision of each sub-topology's partitioner.
//!
//! Producers differ in where they put a key (see [`crate::partitioner`]); the `_with` methods
//! append as a producer with that partitioner would, so a test can feed a topic the way
//! Python's confluent-kafka (CRC32) or a Go service on sarama (FNV-1a) does, or mix them.
//! Before the first [`TopologyTestDriver::run`] the driver decides every user source topic's
//! partitioner from what was appended so far, exactly as the runtime does from a topic's
//! existing records at start, and keeps the decision across crashes (the runtime persists it).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::log::{OutRecordParts, Visibility};
use super::{DriverError, TopologyTestDriver};
use crate::context::TaskId;
use crate::partitioner::{is_placed_key, PartitionPlan, Partitioner, PartitionerDecision, PartitionerDetector};
use crate::record::{Headers, RawRecord};
use crate::serde::Serde;

impl TopologyTestDriver {
    /// Appends one committed record to `partition` of `topic`; returns the offset after it.
    fn append_at(
        &mut self,
        topic: &str,
        partition: i32,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> i64 {
        if let Some(g) = self.topology.globals.iter().find(|g| g.topic == topic) {
            let backend = &self.globals[&g.store.name];
            if let Some(k) = &key {
                backend.apply(&[(k.clone(), value.clone())], None).expect("memory backend never fails");
            }
        }
        let record = OutRecordParts { key, value, timestamp, headers: Headers::new() };
        self.log.append(topic, partition, record, Visibility::Committed) + 1
    }

    /// Where a producer with `partitioner` sends `key` (null and empty keys: partition 0, as
    /// a sticky or random partitioner might).
    fn producer_partition(&self, partitioner: Partitioner, key: Option<&[u8]>) -> i32 {
        match key {
            Some(k) if is_placed_key(Some(k)) => partitioner.partition(k, self.config.partitions),
            _ => 0,
        }
    }

    /// Appends without processing, as the Java client would (murmur2 of the key).
    pub fn append_raw(&mut self, topic: &str, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) {
        self.append_raw_with(Partitioner::Murmur2, topic, key, value, timestamp);
    }

    /// Appends without processing, as a producer with `partitioner` would.
    pub fn append_raw_with(
        &mut self,
        partitioner: Partitioner,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) {
        let p = self.producer_partition(partitioner, key.as_deref());
        self.append_at(topic, p, key, value, timestamp);
    }

    /// Appends to an explicit partition (a producer that chooses partitions itself, or
    /// round-robin), without processing.
    pub fn append_raw_to(
        &mut self,
        topic: &str,
        partition: i32,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) {
        self.append_at(topic, partition, key, value, timestamp);
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
        self.append_raw(topic, key, value, timestamp);
        self.run()
    }

    /// Serializes and pipes one record (murmur2 partitioning).
    pub fn pipe<K: 'static, V: 'static>(
        &mut self,
        topic: &str,
        key: &K,
        value: &V,
        timestamp: i64,
        ks: &dyn Serde<K>,
        vs: &dyn Serde<V>,
    ) -> Result<(), DriverError> {
        self.pipe_with(Partitioner::Murmur2, topic, key, value, timestamp, ks, vs)
    }

    /// Serializes and pipes one record as a producer with `partitioner` would.
    #[allow(clippy::too_many_arguments)]
    pub fn pipe_with<K: 'static, V: 'static>(
        &mut self,
        partitioner: Partitioner,
        topic: &str,
        key: &K,
        value: &V,
        timestamp: i64,
        ks: &dyn Serde<K>,
        vs: &dyn Serde<V>,
    ) -> Result<(), DriverError> {
        let k = ks.serialize(topic, key).expect("test input key serializes");
        let v = vs.serialize(topic, value).expect("test input value serializes");
        self.append_raw_with(partitioner, topic, Some(k), Some(v), timestamp);
        self.run()
    }

    /// Decides each user source topic's partitioner once, from the records appended so far
    /// (or the configuration), and gives the resulting plan to every task. A refusal (topics
    /// that must agree and do not) is returned by every `run` until the driver is recreated.
    pub(super) fn decide_partitioners(&mut self) -> Result<(), DriverError> {
        if self.plan.is_some() {
            return Ok(());
        }
        if self.decisions.is_empty() {
            let n = self.config.partitions;
            for (topic, _) in self.topology.user_source_topics() {
                let mut detector = PartitionerDetector::new(n);
                for p in 0..n {
                    let (records, _) = self.log.read_committed(&topic, p, 0);
                    for (_, r) in records {
                        detector.observe(r.key.as_deref(), p);
                    }
                }
                let configured = self.config.partitioners.get(&topic).copied();
                let decision = PartitionerDecision::decide(&topic, &detector, configured);
                if let Some(w) = decision.warning() {
                    tracing::warn!(topic = %topic, "{w}");
                }
                self.decisions.insert(topic, decision);
            }
        }
        let counts: BTreeMap<String, i32> =
            self.topology.source_topics().into_iter().map(|t| (t, self.config.partitions)).collect();
        let plan = Arc::new(PartitionPlan::new(&self.topology, &self.decisions, &counts)?);
        for task in self.tasks.iter_mut() {
            task.set_partitioning(plan.clone());
        }
        self.plan = Some(plan);
        Ok(())
    }

    /// The partitioner decided for each user source topic (after the first `run`).
    pub fn partitioner_decisions(&self) -> &BTreeMap<String, PartitionerDecision> {
        &self.decisions
    }

    /// The partitioning every task and the query side use (after the first `run`).
    pub fn partition_plan(&self) -> Option<&PartitionPlan> {
        self.plan.as_deref()
    }

    /// Fetches what the log holds for a task's input partitions, at most `fetch_max_records`
    /// per partition, and tells the task how far each partition's committed data reaches.
    pub(super) fn fetch(&mut self, id: TaskId) {
        let task = self.tasks.get_mut(id).expect("task exists");
        let topics: Vec<String> = task.input_topics().cloned().collect();
        for t in topics {
            let key = (t.clone(), id.partition);
            let pos = self.fetch_positions.get(&key).copied().unwrap_or(0);
            let (records, next) = self.log.read_committed_max(&t, id.partition, pos, self.config.fetch_max_records);
            let new: Vec<RawRecord> = records
                .into_iter()
                .map(|(offset, r)| RawRecord {
                    topic: t.clone(),
                    partition: id.partition,
                    offset,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    timestamp: r.timestamp,
                    headers: r.headers.clone(),
                })
                .collect();
            let end = self.log.stable_end(&t, id.partition);
            self.fetch_positions.insert(key, next);
            task.add_records(new);
            task.set_fetch_position(&t, next);
            task.set_end_offset(&t, end);
        }
    }
}
