//! The input side of a task: queueing fetched records (decoded once, with their event time, or
//! found misplaced), choosing the next one, and running it through the sub-topology.

use std::time::Instant;

use super::{dead_letter_topic, ErrorHandling, Task, TaskError};
use crate::context::ProcessorContext;
use crate::input::{Item, Queued};
use crate::partitioner::is_placed_key;
use crate::processor::ProcessError;
use crate::record::{header, OutRecord, RawRecord, RecordMeta};
use crate::source::Decoded;
use crate::topology::NodeKind;

/// After the first misplaced record of an input, a warning every this many.
const MISPLACED_WARN_EVERY: u64 = 10_000;

impl Task {
    /// Queues fetched records of this task's input partitions. Each is decoded here, once (its
    /// event time is needed to choose the next record), or found to belong to another task.
    pub fn add_records(&mut self, records: impl IntoIterator<Item = RawRecord>) {
        for raw in records {
            let Some(i) = self.inputs.index(&raw.topic) else { continue };
            let queued = self.classify(i, raw);
            self.inputs.push(i, queued);
        }
    }

    pub fn buffered(&self) -> usize {
        self.inputs.buffered()
    }

    /// Records waiting in the queue of one input topic (the runtime pauses full partitions).
    pub fn queued(&self, topic: &str) -> usize {
        self.inputs.index(topic).map_or(0, |i| self.inputs.queued(i))
    }

    fn classify(&self, i: usize, raw: RawRecord) -> Queued {
        let input = &self.inputs.inputs[i];
        if input.placed && is_placed_key(raw.key.as_deref()) {
            let owner = self.core.partitioning.as_ref().and_then(|plan| plan.subtopology(self.core.id.subtopology));
            if let Some(owner) = owner {
                let partition = owner.partition(raw.key.as_deref().unwrap_or_default());
                if partition != self.core.id.partition {
                    return Queued { time: raw.timestamp, item: Item::Misplaced { partition }, raw };
                }
            }
        }
        let NodeKind::Source { decoder, .. } = &self.core.topology.nodes[input.source].kind else {
            unreachable!("inputs are read by source nodes")
        };
        let topic = match (&input.placement, raw.headers.get_str(header::PLACEMENT_ORIGIN)) {
            (Some(placement), Some(origin)) if *placement == raw.topic => origin,
            _ => raw.topic.as_str(),
        };
        match decoder(&raw, topic) {
            Ok(Decoded { record, time, fell_back }) => {
                if fell_back {
                    input.fallbacks.inc();
                }
                Queued { raw, time, item: Item::Ready(record) }
            }
            Err(e) => {
                let item = if e.retriable { Item::Retry(e.into()) } else { Item::Bad(e.into()) };
                Queued { time: raw.timestamp, item, raw }
            }
        }
    }

    /// Processes the next record in event-time order across this task's input partitions.
    /// Returns false when nothing can be processed now: no input, or waiting for an input
    /// partition (see [`crate::input`] for when a task waits).
    pub fn process_next(&mut self, now_ms: i64) -> Result<bool, TaskError> {
        if !self.initialized {
            return Ok(false);
        }
        let Some(i) = self.inputs.next(now_ms) else { return Ok(false) };
        let queued = self.inputs.pop(i).expect("the chosen input has a head");
        self.process_queued(i, queued)?;
        Ok(true)
    }

    fn process_queued(&mut self, i: usize, Queued { raw, time, item }: Queued) -> Result<(), TaskError> {
        let item = match item {
            Item::Retry(source) => return Err(TaskError::Process { task: self.core.id, source }),
            other => other,
        };
        let started = Instant::now();
        match self.positions.get_mut(&raw.topic) {
            Some(p) => *p = raw.offset + 1,
            None => {
                self.positions.insert(raw.topic.clone(), raw.offset + 1);
            }
        }
        self.core.meta = Some(RecordMeta { topic: raw.topic.clone(), partition: raw.partition, offset: raw.offset });
        self.core.out_seq = 0;
        let src = self.inputs.inputs[i].source;
        match item {
            Item::Ready(record) => {
                self.core.clocks.observe(i, time);
                self.core.stream_time = self.core.stream_time.max(time);
                let result = self.dispatch_source(src, record);
                self.core.count_outputs();
                // Counted once its children ran: whoever sees it counted also sees what it emitted.
                self.core.metrics.processed(src);
                self.core.clocks.current = None;
                if let Err(source) = result {
                    self.core.release_savepoints();
                    return Err(TaskError::Process { task: self.core.id, source });
                }
                for (node, e) in std::mem::take(&mut self.core.rejections) {
                    let processor = self.core.topology.nodes[node].name.clone();
                    self.handle_bad_record(&raw, e, &processor)?;
                }
            }
            Item::Bad(e) => {
                self.core.metrics.processed(src);
                let source = self.core.topology.nodes[src].name.clone();
                self.handle_bad_record(&raw, e, &source)?;
            }
            Item::Misplaced { partition } => self.re_place(i, &raw, partition),
            Item::Retry(_) => unreachable!("handled above"),
        }
        self.core.release_savepoints();
        self.core.count_outputs();
        self.core.meta = None;
        self.core.metrics.all.process_latency.observe(started.elapsed().as_secs_f64());
        self.punctuate_stream_time()
    }

    /// Hands a decoded record to every child of its source (a clone to all but the last), each
    /// all-or-nothing on its own: a child that rejects the record leaves no writes or outputs
    /// and is dead-lettered by name, and its siblings apply the record whatever their order.
    fn dispatch_source(&mut self, src: usize, record: Box<dyn std::any::Any + Send>) -> Result<(), ProcessError> {
        let topo = self.core.topology.clone();
        let NodeKind::Source { cloner, .. } = &topo.nodes[src].kind else {
            unreachable!("inputs are read by source nodes")
        };
        let children = &topo.children[src];
        let mut record = Some(record);
        for (n, &child) in children.iter().enumerate() {
            let r = if n + 1 == children.len() {
                record.take().expect("the last child takes the record")
            } else {
                cloner(record.as_deref().expect("the record is kept until the last child"))
            };
            self.core.metrics.forwarded(src);
            let mut ctx = ProcessorContext { core: &mut self.core, processors: &mut self.processors, node: src };
            ctx.dispatch_isolated(child, r)?;
        }
        Ok(())
    }

    /// Sends a record whose key belongs to another task of this sub-topology to that task,
    /// through the source's placement topic, unchanged (bytes, Kafka timestamp, headers), with
    /// lineage naming where it was found.
    fn re_place(&mut self, i: usize, raw: &RawRecord, partition: i32) {
        let input = &self.inputs.inputs[i];
        let placement = input.placement.clone().expect("a placed input has a placement topic");
        input.misplaced.inc();
        let count = input.misplaced.get();
        if count == 1 || count.is_multiple_of(MISPLACED_WARN_EVERY) {
            let partitioner = self
                .core
                .partitioning
                .as_ref()
                .and_then(|p| p.subtopology(self.core.id.subtopology))
                .map(|s| s.partitioner)
                .unwrap_or(crate::partitioner::Partitioner::Murmur2);
            tracing::warn!(
                task = %self.core.id,
                topic = %raw.topic,
                partition = raw.partition,
                offset = raw.offset,
                belongs_to = partition,
                %partitioner,
                misplaced_so_far = count,
                "a record's key belongs to another partition under the topic's partitioner {partitioner}: a producer \
                 uses another partitioner. finstream re-places such records through {placement} \
                 (finstream_misplaced_records_total), which costs a second write and read. Fix: configure every \
                 producer of {} with {}",
                raw.topic,
                partitioner.producer_setting()
            );
        }
        let mut headers = raw.headers.clone();
        if headers.get(header::SOURCE_TOPIC).is_none() {
            headers.set(header::SOURCE_TOPIC, raw.topic.as_bytes());
            headers.set(header::SOURCE_PARTITION, raw.partition.to_string());
            headers.set(header::SOURCE_OFFSET, raw.offset.to_string());
        }
        headers.set(header::PLACEMENT_ORIGIN, raw.topic.as_bytes());
        headers.set(header::OUTPUT_ID, self.core.output_id());
        self.core.push_out(OutRecord {
            topic: placement,
            partition: Some(partition),
            key: raw.key.clone(),
            value: raw.value.clone(),
            timestamp: raw.timestamp,
            headers,
        });
    }

    /// Handles a record `processor` rejected (a source that could not decode it, or the
    /// processor whose data error it is) as configured: fail, skip, or dead-letter it with the
    /// reason and the processor in its headers.
    pub(super) fn handle_bad_record(
        &mut self,
        raw: &RawRecord,
        error: ProcessError,
        processor: &str,
    ) -> Result<(), TaskError> {
        let reason = error.class().to_string();
        let metrics = &self.core.metrics.all;
        // A record re-placed from a user topic is dead-lettered where that topic's are.
        let origin = match raw.headers.get_str(header::PLACEMENT_ORIGIN) {
            Some(o) if self.core.topology.placement_topics.contains(&raw.topic) => o.to_string(),
            _ => raw.topic.clone(),
        };
        match self.config.errors {
            ErrorHandling::Fail => return Err(TaskError::Process { task: self.core.id, source: error }),
            ErrorHandling::LogAndContinue => {
                tracing::warn!(task = %self.core.id, topic = %raw.topic, partition = raw.partition, offset = raw.offset, %reason, processor, "skipping bad record");
                metrics.dead_letters.with_label_values(&[&origin, &reason]).inc();
            }
            ErrorHandling::DeadLetter => {
                let dlq = dead_letter_topic(&origin);
                metrics.dead_letters.with_label_values(&[&origin, &reason]).inc();
                let mut headers = raw.headers.clone();
                headers.set(header::ERROR_CLASS, reason.as_bytes());
                headers.set(header::ERROR_MESSAGE, error.to_string());
                headers.set(header::ERROR_PROCESSOR, processor.as_bytes());
                if origin == raw.topic {
                    headers.set(header::SOURCE_TOPIC, raw.topic.as_bytes());
                    headers.set(header::SOURCE_PARTITION, raw.partition.to_string());
                    headers.set(header::SOURCE_OFFSET, raw.offset.to_string());
                } // else the lineage names the record where it was first read
                headers.set(header::OUTPUT_ID, self.core.output_id());
                self.core.push_out(OutRecord {
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
}
