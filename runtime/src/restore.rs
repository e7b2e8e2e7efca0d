//! Reading logs to their end: task stores from their changelogs, global stores, the registry's
//! `_schemas` topic.
//!
//! "The end" is the high watermark measured when reading starts, not the last stable offset: a
//! `read_committed` consumer stops at the LSO while a transaction is open, so a reader that took
//! the LSO for the end would miss what a zombie that already sent its offsets still commits
//! (KAFKA-10167). Reading to the high watermark waits for every pending transaction to commit or
//! abort (at most `transaction.timeout.ms`), and the consumer's position passes the control
//! markers, so "position ≥ high watermark" means everything committed before reading started
//! has been seen. Broker errors while looking up offsets are retried and then reported: an
//! error never reads as an empty partition.
//!
//! Task restore is incremental ([`ChangelogReader`]): the stream thread reads a bounded slice per
//! loop iteration and keeps polling its group consumer in between, so a large store does not
//! cost the group membership (`max.poll.interval.ms`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};
use streams::store::{Entry, KvBackend};
use streams::{StreamsMetrics, Task, TaskId};

use crate::config::StreamsConfig;
use crate::kafka::{client_config_for, Role};
use crate::RuntimeError;

const META_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one offset lookup may take: a lookup sent to a leader that died waits this long.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts of an offset lookup before its error is reported.
const LOOKUP_ATTEMPTS: u32 = 6;
/// Lookups (each after a metadata refresh) that must all answer "unknown topic" before a topic
/// counts as absent.
const UNKNOWN_CONFIRMATIONS: u32 = 2;
/// Records applied to a store in one batch while restoring.
const RESTORE_BATCH: usize = 10_000;

/// Context of the consumers that read partitions to their end: reaching the end is what they
/// wait for, so librdkafka's end-of-partition events are logged at trace, real errors stay loud.
pub(crate) struct ToEndContext;

impl ClientContext for ToEndContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(error, KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF));
        if eof {
            tracing::trace!(%reason, "end of partition");
        } else {
            tracing::error!(%error, %reason, "librdkafka error");
        }
    }
}

impl ConsumerContext for ToEndContext {}

/// A consumer that reads assigned partitions with `read_committed`.
pub(crate) type ToEndConsumer = BaseConsumer<ToEndContext>;

pub(crate) fn restore_consumer(config: &StreamsConfig, purpose: &str) -> Result<ToEndConsumer, RuntimeError> {
    let mut c = client_config_for(config, Role::Consumer);
    c.set("group.id", format!("{}-{purpose}", config.application_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    Ok(c.create_with_context(ToEndContext)?)
}

/// A client that sees high watermarks (offset lookups of a `read_committed` consumer answer
/// with the last stable offset instead).
pub(crate) fn end_offsets_client(config: &StreamsConfig) -> Result<ToEndConsumer, RuntimeError> {
    let mut c = client_config_for(config, Role::Consumer);
    c.set("group.id", format!("{}-ends", config.application_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted");
    Ok(c.create_with_context(ToEndContext)?)
}

/// (low, high) watermarks of a partition, retried on errors; `None` when the topic does not
/// exist (an answer, not an error).
///
/// librdkafka sends the lookup to the leader in its metadata cache, which is refreshed only
/// every few minutes unless a fetch or produce to that partition fails: after a leader died, a
/// client that does not read the partition yet keeps asking the dead node. So a failed lookup
/// refreshes the topic's metadata before the next attempt. "Unknown topic" is believed only
/// when it is still the answer after a refresh: a node that just restarted, or a leader being
/// elected, answers it for a moment about topics that exist.
pub(crate) fn watermarks<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Result<Option<(i64, i64)>, RuntimeError> {
    let mut attempt = 0;
    loop {
        let e = match client.fetch_watermarks(topic, partition, LOOKUP_TIMEOUT) {
            Ok(w) => return Ok(Some(w)),
            Err(e) => e,
        };
        let unknown = matches!(
            e,
            KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition
            )
        );
        if unknown && attempt >= UNKNOWN_CONFIRMATIONS {
            return Ok(None);
        }
        if attempt + 1 >= LOOKUP_ATTEMPTS {
            return Err(RuntimeError::Restore(format!(
                "looking up the end of {topic}[{partition}] failed {LOOKUP_ATTEMPTS} times: {e}"
            )));
        }
        attempt += 1;
        if !unknown {
            tracing::warn!(%topic, partition, error = %e, attempt, "offset lookup failed; retrying");
        }
        std::thread::sleep(Duration::from_millis(100 << attempt.min(4)));
        if let Err(e) = client.fetch_metadata(Some(topic), LOOKUP_TIMEOUT) {
            tracing::debug!(%topic, error = %e, "metadata refresh failed");
        }
    }
}

/// The consumer's position on each assigned partition.
fn positions(consumer: &ToEndConsumer) -> Result<HashMap<(String, i32), i64>, RuntimeError> {
    Ok(consumer
        .position()?
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// How long reading may make no progress before it is reported (a transaction left open is
/// aborted by its coordinator within `transaction.timeout.ms`).
fn stall_limit(config: &StreamsConfig) -> Duration {
    Duration::from_millis(config.transaction_timeout_ms() * 2) + Duration::from_secs(30)
}

/// Reads `partitions` (topic, partition, from) up to the high watermark each had when reading
/// started, handing every committed record to `on_message`. Blocks; for start-up loads.
pub(crate) fn consume_to_end(
    config: &StreamsConfig,
    consumer: &ToEndConsumer,
    partitions: &[(String, i32, i64)],
    mut on_message: impl FnMut(&BorrowedMessage<'_>) -> Result<(), RuntimeError>,
) -> Result<(), RuntimeError> {
    let ends = end_offsets_client(config)?;
    let mut targets: HashMap<(String, i32), i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, from) in partitions {
        let Some((low, high)) = watermarks(&ends, topic, *partition)? else { continue };
        let from = (*from).max(low);
        if high > from {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(from))?;
            targets.insert((topic.clone(), *partition), high);
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let limit = stall_limit(config);
    let mut last_progress = Instant::now();
    while !targets.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                on_message(&m)?;
                last_progress = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            // librdkafka retries by itself (a leader moving, a broker restarting); the stall
            // limit below turns a lasting failure into an error.
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error while reading to the end"),
        }
        let pos = positions(consumer)?;
        targets.retain(|tp, target| pos.get(tp).is_none_or(|p| p < target));
        if last_progress.elapsed() > limit {
            return Err(RuntimeError::Restore(format!(
                "no progress reading {:?} to their ends for {} s",
                targets.keys().collect::<Vec<_>>(),
                limit.as_secs()
            )));
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// One changelog partition being restored.
struct Restoring {
    task: TaskId,
    store: String,
    /// High watermark when the restore began.
    target: i64,
    /// Entries read and not yet applied.
    batch: Vec<Entry>,
    /// Offset after the last record read.
    next: i64,
    remaining_reported: i64,
}

/// Restores the stores of one stream thread's new tasks, a bounded slice at a time.
pub(crate) struct ChangelogReader {
    consumer: ToEndConsumer,
    ends: ToEndConsumer,
    restoring: HashMap<(String, i32), Restoring>,
    metrics: StreamsMetrics,
    last_report: Instant,
}

impl ChangelogReader {
    pub fn new(config: &StreamsConfig, metrics: StreamsMetrics) -> Result<Self, RuntimeError> {
        Ok(ChangelogReader {
            consumer: restore_consumer(config, "restore")?,
            ends: end_offsets_client(config)?,
            restoring: HashMap::new(),
            metrics,
            last_report: Instant::now(),
        })
    }

    /// Plans the restore of `task`'s logged stores. Returns false when there is nothing to read
    /// (the task can start at once).
    pub fn register(&mut self, task: &mut Task) -> Result<bool, RuntimeError> {
        let partition = task.id().partition;
        let mut tpl = TopicPartitionList::new();
        for (store, topic, from) in task.restore_plan()? {
            let Some((low, high)) = watermarks(&self.ends, &topic, partition)? else {
                return Err(RuntimeError::Restore(format!("changelog {topic} does not exist")));
            };
            let from = if from > high {
                // The changelog is behind the local store: it was deleted and recreated (or
                // truncated). The local store holds committed data only, so it is kept and
                // written to the changelog again at the next commit.
                tracing::warn!(task = %task.id(), %store, checkpoint = from, high, "changelog behind the local store; re-seeding it from local state");
                task.reseed_changelog(&store)?;
                continue;
            } else if from < low {
                // Records between the checkpoint and the log start are gone: the local store
                // cannot be brought forward exactly, so it is rebuilt from what the log holds.
                tracing::warn!(task = %task.id(), %store, checkpoint = from, low, "changelog starts after the checkpoint; rebuilding the store");
                task.wipe_store(&store)?;
                low
            } else {
                from
            };
            if from >= high {
                continue;
            }
            self.metrics.restore_remaining.with_label_values(&[&store]).add(high - from);
            tpl.add_partition_offset(&topic, partition, Offset::Offset(from))?;
            self.restoring.insert(
                (topic, partition),
                Restoring {
                    task: task.id(),
                    store,
                    target: high,
                    batch: Vec::new(),
                    next: from,
                    remaining_reported: high - from,
                },
            );
        }
        if tpl.count() == 0 {
            return Ok(false);
        }
        self.consumer.incremental_assign(&tpl)?;
        Ok(true)
    }

    pub fn is_restoring(&self, id: TaskId) -> bool {
        self.restoring.values().any(|r| r.task == id)
    }

    /// Stops restoring `id` (its partitions were revoked).
    pub fn remove(&mut self, id: TaskId) -> Result<(), RuntimeError> {
        let mut tpl = TopicPartitionList::new();
        self.restoring.retain(|(t, p), r| {
            if r.task == id {
                let _ = tpl.add_partition(t, *p);
                self.metrics.restore_remaining.with_label_values(&[&r.store]).sub(r.remaining_reported);
                false
            } else {
                true
            }
        });
        if tpl.count() > 0 {
            self.consumer.incremental_unassign(&tpl)?;
        }
        Ok(())
    }

    /// Reads for up to `budget`, applying what it read to `tasks`. Returns the tasks whose
    /// stores have all reached their targets.
    pub fn poll(&mut self, tasks: &mut BTreeMap<TaskId, Task>, budget: Duration) -> Result<Vec<TaskId>, RuntimeError> {
        if self.restoring.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = Instant::now() + budget;
        loop {
            match self.consumer.poll(Duration::from_millis(10)) {
                Some(Ok(m)) => {
                    if let Some(r) = self.restoring.get_mut(&(m.topic().to_string(), m.partition())) {
                        if let Some(key) = m.key() {
                            r.batch.push((key.to_vec(), m.payload().map(|v| v.to_vec())));
                        }
                        r.next = m.offset() + 1;
                        if r.batch.len() >= RESTORE_BATCH {
                            apply(r, tasks, &self.metrics)?;
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "restore consumer error");
                    break;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        self.finish(tasks)
    }

    /// Applies what was read, retires partitions that reached their targets and reports tasks
    /// with nothing left.
    fn finish(&mut self, tasks: &mut BTreeMap<TaskId, Task>) -> Result<Vec<TaskId>, RuntimeError> {
        let pos = positions(&self.consumer)?;
        let mut done = TopicPartitionList::new();
        for ((topic, p), r) in self.restoring.iter_mut() {
            if let Some(&position) = pos.get(&(topic.clone(), *p)) {
                r.next = r.next.max(position);
            }
            apply(r, tasks, &self.metrics)?;
            if r.next >= r.target {
                done.add_partition(topic, *p);
            }
        }
        if self.last_report.elapsed() >= Duration::from_secs(5) {
            for ((topic, p), r) in &self.restoring {
                tracing::info!(task = %r.task, store = %r.store, %topic, partition = p, remaining = r.target - r.next, "restoring");
            }
            self.last_report = Instant::now();
        }
        if done.count() == 0 {
            return Ok(Vec::new());
        }
        self.consumer.incremental_unassign(&done)?;
        let mut finished_tasks: Vec<TaskId> = Vec::new();
        for e in done.elements() {
            if let Some(r) = self.restoring.remove(&(e.topic().to_string(), e.partition())) {
                finished_tasks.push(r.task);
            }
        }
        finished_tasks.sort();
        finished_tasks.dedup();
        finished_tasks.retain(|id| !self.is_restoring(*id));
        Ok(finished_tasks)
    }
}

/// Writes a partition's read entries to its task's store with the changelog position reached.
fn apply(r: &mut Restoring, tasks: &mut BTreeMap<TaskId, Task>, metrics: &StreamsMetrics) -> Result<(), RuntimeError> {
    let Some(task) = tasks.get_mut(&r.task) else { return Ok(()) };
    let entries = std::mem::take(&mut r.batch);
    task.restore(&r.store, &entries, r.next)?;
    let remaining = (r.target - r.next).max(0);
    metrics.restore_remaining.with_label_values(&[&r.store]).sub(r.remaining_reported - remaining);
    r.remaining_reported = remaining;
    Ok(())
}

/// Fills a global store from all partitions of its topic, then keeps it current until
/// `shutdown` (in a thread of its own). Returns once the initial load is complete.
pub fn start_global(
    config: &StreamsConfig,
    topic: &str,
    backend: Arc<dyn KvBackend>,
    shutdown: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, RuntimeError> {
    let consumer = restore_consumer(config, "global")?;
    let metadata = consumer.fetch_metadata(Some(topic), META_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let plan: Vec<(String, i32, i64)> = partitions.iter().map(|p| (topic.to_string(), *p, 0)).collect();
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    consume_to_end(config, &consumer, &plan, |m| {
        if let Some(k) = m.key() {
            backend.apply(&[(k.to_vec(), m.payload().map(|v| v.to_vec()))], None)?;
        }
        next_offsets.insert(m.partition(), m.offset() + 1);
        Ok(())
    })?;
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let next = next_offsets.get(p).map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, *p, next)?;
    }
    consumer.assign(&tpl)?;
    let topic = topic.to_string();
    Ok(std::thread::Builder::new().name(format!("global-{topic}")).spawn(move || {
        while !shutdown.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if let Some(k) = m.key() {
                        if let Err(e) = backend.apply(&[(k.to_vec(), m.payload().map(|v| v.to_vec()))], None) {
                            tracing::error!(%topic, error = %e, "global store update failed");
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => tracing::warn!(%topic, error = %e, "global consumer error"),
            }
        }
    })?)
}
