//! Restoring task stores from their changelog partitions, and keeping global stores filled.
//!
//! Restore reads with `read_committed` from the store's checkpoint (the changelog offset written
//! atomically with the last committed batch) to the end of the partition, so after a clean stop
//! or a crash only the tail is replayed; a lost state directory replays everything.

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
use streams::{StreamsMetrics, Task};

use crate::config::StreamsConfig;
use crate::kafka::client_config;
use crate::RuntimeError;

const META_TIMEOUT: Duration = Duration::from_secs(10);

/// Context of the consumers that read partitions to their end. They ask for
/// `enable.partition.eof`, and librdkafka then also reports every end reached as an error event,
/// which rdkafka's default context logs at ERROR: reaching the end is what these readers wait
/// for, so it is logged at trace and only real errors stay loud.
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

/// A consumer that reads partitions to their end.
pub(crate) type ToEndConsumer = BaseConsumer<ToEndContext>;

pub(crate) fn restore_consumer(config: &StreamsConfig, purpose: &str) -> Result<ToEndConsumer, RuntimeError> {
    let mut c = client_config(config);
    c.set("group.id", format!("{}-{purpose}", config.application_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    Ok(c.create_with_context(ToEndContext)?)
}

/// Reads `partitions` (topic, partition, from) up to their current end, handing every record
/// to `on_message`.
pub(crate) fn consume_to_end(
    consumer: &ToEndConsumer,
    partitions: &[(String, i32, i64)],
    mut on_message: impl FnMut(&BorrowedMessage<'_>) -> Result<(), RuntimeError>,
) -> Result<(), RuntimeError> {
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0;
    for (topic, partition, from) in partitions {
        let (low, high) = match consumer.fetch_watermarks(topic, *partition, META_TIMEOUT) {
            Ok(w) => w,
            Err(KafkaError::MetadataFetch(_)) | Err(KafkaError::OffsetFetch(_)) => (0, 0),
            Err(e) => return Err(e.into()),
        };
        if high <= (*from).max(low) {
            continue;
        }
        tpl.add_partition_offset(topic, *partition, Offset::Offset((*from).max(low)))?;
        remaining += 1;
    }
    if remaining == 0 {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while remaining > 0 {
        if Instant::now() > deadline {
            return Err(RuntimeError::Restore("did not reach the end of the partitions in 300 s".into()));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => on_message(&m)?,
            Some(Err(KafkaError::PartitionEOF(_))) => remaining -= 1,
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => remaining -= 1,
            Some(Err(e)) => return Err(e.into()),
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// Brings every logged store of `task` up to the end of its changelog partition, or, with
/// `bounds` (from a commit marker), up to each store's bound only. Returns, per store, the keys
/// of records found past the bound: writes of an attempt that never committed.
pub fn restore_task(
    config: &StreamsConfig,
    task: &mut Task,
    metrics: &StreamsMetrics,
    bounds: Option<&BTreeMap<String, i64>>,
) -> Result<BTreeMap<String, Vec<Vec<u8>>>, RuntimeError> {
    let mut orphans: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let plan = task.restore_plan()?;
    if plan.is_empty() {
        return Ok(orphans);
    }
    let consumer = restore_consumer(config, "restore")?;
    let partition = task.id().partition;
    let mut store_of_topic = HashMap::new();
    let mut partitions = Vec::new();
    for (store, topic, from) in plan {
        let bound = bounds.map(|b| b.get(&store).copied().unwrap_or(0));
        // A checkpoint past the end (or past the committed bound) cannot be trusted: start over.
        let high = consumer.fetch_watermarks(&topic, partition, META_TIMEOUT).map(|(_, h)| h).unwrap_or(0);
        if from > high || bound.is_some_and(|b| from > b) {
            tracing::warn!(task = %task.id(), %store, from, high, ?bound, "checkpoint beyond committed changelog; wiping stores");
            task.wipe_stores()?;
            return restore_task(config, task, metrics, bounds);
        }
        metrics.restore_remaining.with_label_values(&[&store]).add((bound.unwrap_or(high) - from).max(0));
        store_of_topic.insert(topic.clone(), (store, bound.unwrap_or(i64::MAX)));
        partitions.push((topic, partition, from));
    }
    let started = Instant::now();
    let mut batches: HashMap<String, (Vec<Entry>, i64)> = HashMap::new();
    consume_to_end(&consumer, &partitions, |m| {
        let (store, bound) = &store_of_topic[m.topic()];
        let Some(key) = m.key() else { return Ok(()) };
        if m.offset() >= *bound {
            orphans.entry(store.clone()).or_default().push(key.to_vec());
            return Ok(());
        }
        let b = batches.entry(store.clone()).or_default();
        b.0.push((key.to_vec(), m.payload().map(|v| v.to_vec())));
        b.1 = m.offset() + 1;
        if b.0.len() >= 10_000 {
            let (entries, next) = (std::mem::take(&mut b.0), b.1);
            task.restore(store, &entries, next)?;
            metrics.restore_remaining.with_label_values(&[store]).sub(entries.len() as i64);
        }
        Ok(())
    })?;
    for (store, (entries, next)) in batches {
        task.restore(&store, &entries, next)?;
    }
    for (store, _) in store_of_topic.values() {
        metrics.restore_remaining.with_label_values(&[store]).set(0);
    }
    tracing::info!(task = %task.id(), elapsed_ms = started.elapsed().as_millis() as u64, orphan_keys = orphans.values().map(Vec::len).sum::<usize>(), "task restored");
    Ok(orphans)
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
    consume_to_end(&consumer, &plan, |m| {
        if let Some(k) = m.key() {
            backend.apply(&[(k.to_vec(), m.payload().map(|v| v.to_vec()))], None)?;
        }
        next_offsets.insert(m.partition(), m.offset() + 1);
        Ok(())
    })?;
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(next_offsets.get(p).copied().unwrap_or(0)))?;
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
