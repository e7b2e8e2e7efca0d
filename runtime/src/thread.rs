//! A stream thread: one consumer, one (transactional) producer, and the tasks assigned to it.
//!
//! The consume-transform-produce cycle follows rust-rdkafka's transactions recipe: records are
//! produced inside an open transaction as they are processed; at each commit the changelog
//! records of dirty keys are produced, the consumed offsets are added with
//! `send_offsets_to_transaction`, and the transaction commits. Only then are the write caches
//! applied to RocksDB (with the changelog offsets reached). Errors are handled by what
//! librdkafka says they are: retriable → retry, abortable → abort and rewind, fatal (fenced)
//! → stop the thread.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use streams::{Task, TaskConfig, TaskId};

use crate::interactive::ThreadAssignment;
use crate::kafka::{client_config, send, to_raw, DeliveryTracker};
use crate::marker::{self, tp_key, Marker};
use crate::restore::restore_task;
use crate::{Instance, RuntimeError};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before redoing work after a retriable failure; doubles up to the maximum while the
/// failure persists, so an outage costs little CPU and recovery is quick.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);

pub(crate) struct ThreadState {
    instance: Arc<Instance>,
    thread_idx: usize,
    tasks: BTreeMap<TaskId, Task>,
    producer: BaseProducer<DeliveryTracker>,
    /// Partitions assigned by the last rebalance whose tasks are not created yet.
    pending_assignment: Option<Vec<(String, i32)>>,
    /// Records processed since the last commit.
    uncommitted: usize,
    /// A commit failure inside a rebalance callback, surfaced by the main loop.
    error: Option<RuntimeError>,
    /// Exactly-once: each task's marker as of its last commit (or its recovery).
    markers: HashMap<TaskId, Marker>,
    /// Exactly-once: output ids an unfinished attempt already wrote, per task; regenerated
    /// records with these ids are not written again.
    written: HashMap<TaskId, HashSet<String>>,
    /// Partition counts of output topics (None: topic not there yet).
    partition_counts: HashMap<String, Option<i32>>,
}

/// Delivery-report tag of a task's records.
fn sender(id: TaskId) -> usize {
    (id.subtopology << 20) | id.partition as usize
}
const MARKER_SENDER: usize = usize::MAX;

/// The consumer context: rebalance callbacks run inside `poll` on the stream thread itself, so
/// they can commit and close tasks before the partitions move.
pub(crate) struct ThreadContext {
    state: Arc<Mutex<Option<ThreadState>>>,
}

impl ClientContext for ThreadContext {}

impl ConsumerContext for ThreadContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut guard = self.state.lock().expect("poisoned");
            let Some(state) = guard.as_mut() else { return };
            tracing::info!(
                thread = state.thread_idx,
                partitions = tpl.count(),
                "partitions revoked: committing and closing tasks"
            );
            if let Err(e) = state.commit(consumer) {
                tracing::warn!(error = %e, "commit on revocation failed; uncommitted work is aborted");
                if let Err(e) = state.abort() {
                    state.error = Some(e);
                }
            }
            state.close_all_tasks();
            state.instance.set_assignment(state.thread_idx, None);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut guard = self.state.lock().expect("poisoned");
                if let Some(state) = guard.as_mut() {
                    let parts: Vec<(String, i32)> =
                        tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                    let topo = &state.instance.topology;
                    let tasks = parts
                        .iter()
                        .filter_map(|(t, p)| {
                            topo.subtopology_of_topic(t).map(|s| TaskId { subtopology: s, partition: *p })
                        })
                        .collect();
                    state.instance.set_assignment(state.thread_idx, Some(ThreadAssignment { tasks, restoring: true }));
                    state.pending_assignment = Some(parts);
                    state.instance.restoring.fetch_add(1, Ordering::SeqCst);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

impl ThreadState {
    /// Partition count of an output topic, looked up once: a topic missing now (a dead-letter
    /// topic before its first record) stays unpartitioned here until tasks are recreated,
    /// rather than costing a metadata request per record.
    fn partitions(&mut self, consumer: &BaseConsumer<ThreadContext>, topic: &str) -> Option<i32> {
        if let Some(n) = self.partition_counts.get(topic) {
            return *n;
        }
        let n = marker::partitions_of(consumer, topic);
        self.partition_counts.insert(topic.to_string(), n);
        n
    }

    /// Sends what tasks produced. Partitions are chosen here with the Java client's murmur2,
    /// so the partition is known before sending (recovery compares outputs per partition).
    fn send_outputs(&mut self, consumer: &BaseConsumer<ThreadContext>) -> Result<(), RuntimeError> {
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            let outputs = self.tasks.get_mut(&id).expect("task exists").take_output();
            for mut out in outputs {
                if out.partition.is_none() && out.key.is_some() {
                    if let (Some(n), Some(k)) = (self.partitions(consumer, &out.topic), &out.key) {
                        out.partition = Some(streams::murmur2::partition_for_key(k, n));
                    }
                }
                if let Some(written) = self.written.get_mut(&id) {
                    let out_id = out.headers.get_str(streams::record::header::OUTPUT_ID).unwrap_or_default();
                    let skip = written.remove(out_id);
                    // Once every earlier output was seen again, stop checking ids.
                    if written.is_empty() {
                        self.written.remove(&id);
                    }
                    if skip {
                        continue;
                    }
                }
                send(&self.producer, &out, sender(id))?;
                self.instance.metrics.records_produced.with_label_values(&[&out.topic]).inc();
            }
        }
        Ok(())
    }

    /// Commits all tasks of this thread (one transaction under exactly-once).
    fn commit(&mut self, consumer: &BaseConsumer<ThreadContext>) -> Result<(), RuntimeError> {
        if self.uncommitted == 0 && self.tasks.values().all(|t| !t.has_output()) {
            return Ok(());
        }
        let started = Instant::now();
        let eos = self.instance.config.exactly_once();
        self.send_outputs(consumer)?;
        let mut offsets = TopicPartitionList::new();
        let mut positions: Vec<(TaskId, Vec<(String, i64)>)> = Vec::new();
        for (id, task) in self.tasks.iter_mut() {
            let plan = task.prepare_commit();
            for rec in &plan.changelog {
                send(&self.producer, rec, sender(*id))?;
            }
            for (t, p, o) in &plan.offsets {
                offsets.add_partition_offset(t, *p, Offset::Offset(*o))?;
            }
            positions.push((*id, plan.offsets.into_iter().map(|(t, _, o)| (t, o)).collect()));
        }
        self.producer.flush(TXN_TIMEOUT)?;
        if let Some(failure) = self.producer.context().take_failure() {
            return Err(RuntimeError::Commit(failure));
        }
        let delivered = self.producer.context().take();
        if eos {
            self.write_markers(consumer, positions, &delivered)?;
            if offsets.count() > 0 {
                let cgm = consumer
                    .group_metadata()
                    .ok_or_else(|| RuntimeError::Commit("no consumer group metadata".into()))?;
                retry(|| self.producer.send_offsets_to_transaction(&offsets, &cgm, TXN_TIMEOUT))?;
            }
            retry(|| self.producer.commit_transaction(TXN_TIMEOUT))?;
        }
        for (id, task) in self.tasks.iter_mut() {
            let next: HashMap<String, i64> = delivered
                .iter()
                .filter(|((s, _, p), _)| *s == sender(*id) && *p == id.partition)
                .map(|((_, t, _), o)| (t.clone(), *o))
                .collect();
            task.commit_succeeded(&next)?;
        }
        if !eos && offsets.count() > 0 {
            consumer.commit(&offsets, CommitMode::Sync)?;
        }
        if eos {
            self.producer.begin_transaction()?;
        }
        self.uncommitted = 0;
        self.instance.metrics.commits.inc();
        self.instance.metrics.commit_latency.observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Writes each task's commit marker (see `marker.rs`) once its records are acknowledged.
    fn write_markers(
        &mut self,
        consumer: &BaseConsumer<ThreadContext>,
        positions: Vec<(TaskId, Vec<(String, i64)>)>,
        delivered: &HashMap<(usize, String, i32), i64>,
    ) -> Result<(), RuntimeError> {
        let topo = self.instance.topology.clone();
        let topic = marker::commit_topic(&self.instance.config.application_id);
        let n = self.partitions(consumer, &topic).unwrap_or(1);
        let changelogs: HashMap<String, String> = topo.changelog_topics().into_iter().map(|(s, t)| (t, s)).collect();
        for (id, pos) in positions {
            let m = self.markers.entry(id).or_default();
            m.positions.extend(pos);
            for ((s, t, p), next) in delivered {
                if *s != sender(id) {
                    continue;
                }
                match changelogs.get(t) {
                    Some(store) if *p == id.partition => {
                        m.changelog_ends.insert(store.clone(), *next);
                    }
                    Some(_) => {}
                    None => {
                        let e = m.output_ends.entry(tp_key(t, *p)).or_insert(0);
                        *e = (*e).max(*next);
                    }
                }
            }
            let mut pending: Vec<String> =
                self.written.get(&id).map(|w| w.iter().cloned().collect()).unwrap_or_default();
            pending.sort();
            m.pending_ids = pending;
            let value = serde_json::to_vec(&*m).map_err(|e| RuntimeError::Commit(e.to_string()))?;
            let rec = streams::OutRecord {
                topic: topic.clone(),
                partition: Some(id.partition % n),
                key: Some(marker::task_key(&topo, id).into_bytes()),
                value: Some(value),
                timestamp: now_ms(),
                headers: Default::default(),
            };
            send(&self.producer, &rec, MARKER_SENDER)?;
        }
        self.producer.flush(TXN_TIMEOUT)?;
        self.producer.context().take();
        if let Some(failure) = self.producer.context().take_failure() {
            return Err(RuntimeError::Commit(failure));
        }
        Ok(())
    }

    /// Aborts the open transaction and drops every task's uncommitted work; tasks are recreated
    /// from committed state and input rewinds to the committed offsets.
    fn abort(&mut self) -> Result<(), RuntimeError> {
        self.instance.metrics.aborts.inc();
        for task in self.tasks.values_mut() {
            task.abort();
        }
        self.producer.context().take();
        if self.instance.config.exactly_once() {
            self.producer.abort_transaction(TXN_TIMEOUT)?;
            self.producer.begin_transaction()?;
        }
        self.uncommitted = 0;
        Ok(())
    }

    fn close_all_tasks(&mut self) {
        let mut local = self.instance.local_stores.write().expect("poisoned");
        self.markers.clear();
        self.written.clear();
        self.partition_counts.clear();
        for (id, mut task) in std::mem::take(&mut self.tasks) {
            task.close();
            local.retain(|(_, p, sub), _| !(*p == id.partition && *sub == id.subtopology));
        }
    }

    /// Creates, restores and initializes tasks for newly assigned partitions.
    fn create_tasks(&mut self, assignment: Vec<(String, i32)>) -> Result<(), RuntimeError> {
        let topo = self.instance.topology.clone();
        let mut ids: Vec<TaskId> = assignment
            .iter()
            .filter_map(|(t, p)| topo.subtopology_of_topic(t).map(|s| TaskId { subtopology: s, partition: *p }))
            .collect();
        ids.sort();
        ids.dedup();
        let task_config = TaskConfig {
            errors: self.instance.config.error_handling,
            max_task_idle_ms: self.instance.config.max_task_idle_ms,
        };
        for id in ids {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let mut task = Task::new(
                topo.clone(),
                id,
                self.instance.provider.as_ref(),
                self.instance.globals.clone(),
                self.instance.metrics.clone(),
                task_config.clone(),
            )?;
            let config = &self.instance.config;
            let eos = config.exactly_once();
            let marker = if eos { marker::read_latest(config, &topo, id)? } else { None };
            let bounds = marker.as_ref().map(|m| m.changelog_ends.clone()).unwrap_or_default();
            let orphans = restore_task(config, &mut task, &self.instance.metrics, eos.then_some(&bounds))?;
            for (store, keys) in orphans {
                task.rewrite_keys(&store, keys)?;
                self.uncommitted += 1;
            }
            task.initialize(now_ms())?;
            if eos {
                let written = marker::scan_outputs(config, &topo, id, marker.as_ref())?;
                let mut m = marker.unwrap_or_default();
                task.set_positions(m.positions.clone());
                for (k, end) in written.ends {
                    let e = m.output_ends.entry(k).or_insert(0);
                    *e = (*e).max(end);
                }
                let mut pending: HashSet<String> = m.pending_ids.iter().cloned().collect();
                pending.extend(written.ids);
                if !pending.is_empty() {
                    tracing::info!(task = %id, outputs = pending.len(), "outputs of an unfinished attempt found; they will not be written again");
                    self.uncommitted += 1;
                    self.written.insert(id, pending);
                }
                self.markers.insert(id, m);
            }
            let mut local = self.instance.local_stores.write().expect("poisoned");
            for store in &topo.subtopologies[id.subtopology].stores {
                if let Some(b) = task.store_backend(store) {
                    local.insert((store.clone(), id.partition, id.subtopology), b);
                }
            }
            drop(local);
            self.tasks.insert(id, task);
        }
        Ok(())
    }
}

fn retry<T>(mut op: impl FnMut() -> Result<T, KafkaError>) -> Result<T, KafkaError> {
    let mut attempts = 0;
    loop {
        match op() {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && attempts < 5 => {
                attempts += 1;
                tracing::debug!(error = %e, attempts, "retrying transactional call");
            }
            other => return other,
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Whether an error means "abort the transaction and carry on" rather than "stop".
fn is_abortable(e: &RuntimeError) -> bool {
    match e {
        RuntimeError::Kafka(KafkaError::Transaction(t)) => t.txn_requires_abort() && !t.is_fatal(),
        RuntimeError::Commit(_) => true,
        _ => false,
    }
}

/// Runs one stream thread until the instance shuts down or a fatal error occurs.
pub(crate) fn run(instance: Arc<Instance>, thread_idx: usize) -> Result<(), RuntimeError> {
    let config = &instance.config;
    let mut pc = client_config(config);
    pc.set("partitioner", "murmur2_random").set("enable.idempotence", "true").set("linger.ms", "5");
    if config.exactly_once() {
        pc.set("transactional.id", format!("{}-{}-{}", config.application_id, instance.process_id, thread_idx));
    }
    for (k, v) in &config.kafka {
        pc.set(k, v);
    }
    let producer: BaseProducer<DeliveryTracker> = pc.create_with_context(DeliveryTracker::default())?;
    if config.exactly_once() {
        // Fences any earlier incarnation with the same transactional id and aborts what it left open.
        producer.init_transactions(TXN_TIMEOUT)?;
        producer.begin_transaction()?;
    }
    let shared = Arc::new(Mutex::new(Some(ThreadState {
        instance: instance.clone(),
        thread_idx,
        tasks: BTreeMap::new(),
        producer,
        pending_assignment: None,
        uncommitted: 0,
        error: None,
        markers: HashMap::new(),
        written: HashMap::new(),
        partition_counts: HashMap::new(),
    })));
    let mut cc = client_config(config);
    cc.set("group.id", &config.application_id)
        .set("client.id", format!("{}-{}-{}", config.application_id, instance.process_id, thread_idx))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "range");
    for (k, v) in &config.kafka {
        cc.set(k, v);
    }
    let consumer: BaseConsumer<ThreadContext> = cc.create_with_context(ThreadContext { state: shared.clone() })?;
    let topics = instance.topology.source_topics();
    consumer.subscribe(&topics.iter().map(|s| s.as_str()).collect::<Vec<_>>())?;
    let commit_interval = Duration::from_millis(config.commit_interval_ms());
    let mut last_commit = Instant::now();
    let mut retry_backoff = Duration::ZERO;
    let mut last_lag = Instant::now();
    let result = loop {
        if instance.shutdown.load(Ordering::Relaxed) {
            break Ok(());
        }
        // Poll: the first call may block briefly and run rebalance callbacks; then drain.
        let mut polled = Vec::new();
        let idle = shared
            .lock()
            .expect("poisoned")
            .as_ref()
            .map(|s| s.tasks.values().all(|t| t.buffered() == 0))
            .unwrap_or(true);
        let first = consumer.poll(if idle { Duration::from_millis(50) } else { Duration::ZERO });
        let mut next = first;
        while let Some(m) = next {
            match m {
                Ok(m) => polled.push(to_raw(&m)),
                Err(e) => tracing::warn!(error = %e, "consumer error"),
            }
            if polled.len() >= 2000 {
                break;
            }
            next = consumer.poll(Duration::ZERO);
        }
        let mut guard = shared.lock().expect("poisoned");
        let state = guard.as_mut().expect("state present while running");
        if let Some(e) = state.error.take() {
            break Err(e);
        }
        if let Some(assignment) = state.pending_assignment.take() {
            let r = state.create_tasks(assignment);
            instance.restoring.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = r {
                break Err(e);
            }
            let tasks = state.tasks.keys().copied().collect();
            instance.set_assignment(thread_idx, Some(ThreadAssignment { tasks, restoring: false }));
        }
        for raw in polled {
            let id = instance
                .topology
                .subtopology_of_topic(&raw.topic)
                .map(|s| TaskId { subtopology: s, partition: raw.partition });
            if let Some(task) = id.and_then(|id| state.tasks.get_mut(&id)) {
                // Records before the task's position were processed and committed already
                // (the consumer may start earlier than a commit marker says).
                if task.positions().get(&raw.topic).is_some_and(|p| raw.offset < *p) {
                    continue;
                }
                task.add_records([raw]);
            }
        }
        // Process round-robin, a bounded batch per task, then send what it produced.
        let now = now_ms();
        let step: Result<(), RuntimeError> = (|| {
            for task in state.tasks.values_mut() {
                for _ in 0..500 {
                    if !task.process_next(now)? {
                        break;
                    }
                    state.uncommitted += 1;
                }
                task.punctuate_wall_clock(now)?;
            }
            state.send_outputs(&consumer)
        })();
        if let Err(e) = step {
            let RuntimeError::Task(te) = &e else { break Err(e) };
            let Some(reason) = te.retriable_reason() else { break Err(e) };
            // Not the records' fault (e.g. the schema registry is down): redo from the last commit
            // after a pause instead of dead-lettering good records or stopping the thread.
            instance.metrics.retries.with_label_values(&[reason]).inc();
            retry_backoff = (retry_backoff * 2).clamp(RETRY_BACKOFF_MIN, RETRY_BACKOFF_MAX);
            tracing::warn!(error = %te, backoff_ms = retry_backoff.as_millis() as u64, "retriable failure; rewinding to the last commit");
            std::thread::sleep(retry_backoff);
            if let Err(e) = state.abort().and_then(|_| rewind(state, &consumer)) {
                break Err(e);
            }
            continue;
        }
        if last_commit.elapsed() >= commit_interval {
            match state.commit(&consumer) {
                Ok(()) => retry_backoff = Duration::ZERO,
                Err(e) => {
                    if !is_abortable(&e) {
                        break Err(e);
                    }
                    tracing::warn!(error = %e, "commit failed; aborting and rewinding to the last commit");
                    if let Err(e) = state.abort().and_then(|_| rewind(state, &consumer)) {
                        break Err(e);
                    }
                }
            }
            last_commit = Instant::now();
        }
        if last_lag.elapsed() >= Duration::from_secs(5) {
            record_lag(&instance, &consumer);
            last_lag = Instant::now();
        }
    };
    // Clean shutdown: commit and close (a crash skips this, which is what EOS is for).
    let mut guard = shared.lock().expect("poisoned");
    if let Some(state) = guard.as_mut() {
        if result.is_ok() {
            if let Err(e) = state.commit(&consumer) {
                tracing::warn!(error = %e, "final commit failed");
                let _ = state.abort();
            }
        }
        state.close_all_tasks();
    }
    instance.set_assignment(thread_idx, None);
    *guard = None;
    drop(guard);
    consumer.unsubscribe();
    result
}

/// After an abort: recreate tasks from committed state and seek input to committed offsets.
fn rewind(state: &mut ThreadState, consumer: &BaseConsumer<ThreadContext>) -> Result<(), RuntimeError> {
    let assignment = consumer.assignment()?;
    let committed = consumer.committed_offsets(assignment.clone(), Duration::from_secs(10))?;
    state.close_all_tasks();
    let mut seek = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        seek.add_partition_offset(e.topic(), e.partition(), offset)?;
    }
    consumer.seek_partitions(seek, Duration::from_secs(10))?;
    state.create_tasks(assignment.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect())
}

fn record_lag(instance: &Instance, consumer: &BaseConsumer<ThreadContext>) {
    let Ok(positions) = consumer.position() else { return };
    for e in positions.elements() {
        if let (Offset::Offset(pos), Ok((_, high))) =
            (e.offset(), consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(1)))
        {
            instance
                .metrics
                .consumer_lag
                .with_label_values(&[e.topic(), &e.partition().to_string()])
                .set((high - pos).max(0));
        }
    }
}
