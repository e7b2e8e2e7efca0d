//! Restoring task stores from their changelog partitions, and keeping global stores filled.
//!
//! Restore reads with `read_committed` from the store's checkpoint (the changelog offset written
//! atomically with the last committed batch) to the end of the partition, so after a clean stop
//! or a crash only the tail is replayed; a lost state directory replays everything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, Offset, TopicPartitionList};
use streams::store::{Entry, KvBackend};
use streams::{StreamsMetrics, Task};

use crate::config::StreamsConfig;
use crate::kafka::client_config;
use crate::RuntimeError;

const META_TIMEOUT: Duration = Duration::from_secs(10);

fn restore_consumer(config: &StreamsConfig, purpose: &str) -> Result<BaseConsumer, RuntimeError> {
    let mut c = client_config(config);
    c.set("group.id", format!("{}-{purpose}", config.application_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest");
    Ok(c.create()?)
}

/// Reads `partitions` (topic, partition, from) to their current end, handing batches of
/// (topic, partition, entries, next offset) to `apply`.
fn read_to_end(
    consumer: &BaseConsumer,
    partitions: &[(String, i32, i64)],
    mut apply: impl FnMut(&str, i32, &[Entry], i64) -> Result<(), RuntimeError>,
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
    let mut batches: HashMap<(String, i32), (Vec<Entry>, i64)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while remaining > 0 {
        if Instant::now() > deadline {
            return Err(RuntimeError::Restore("restore did not reach the end of its changelog in 300 s".into()));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(m)) => {
                let b = batches.entry((m.topic().to_string(), m.partition())).or_default();
                if let Some(k) = m.key() {
                    b.0.push((k.to_vec(), m.payload().map(|v| v.to_vec())));
                }
                b.1 = m.offset() + 1;
                if b.0.len() >= 10_000 {
                    let (entries, next) = (std::mem::take(&mut b.0), b.1);
                    apply(m.topic(), m.partition(), &entries, next)?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                remaining -= 1;
                tracing::debug!(partition = p, "restore reached end of partition");
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => remaining -= 1,
            Some(Err(e)) => return Err(e.into()),
        }
    }
    for ((topic, partition), (entries, next)) in batches {
        if next > 0 {
            apply(&topic, partition, &entries, next)?;
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// Brings every logged store of `task` up to the end of its changelog partition.
pub fn restore_task(config: &StreamsConfig, task: &mut Task, metrics: &StreamsMetrics) -> Result<(), RuntimeError> {
    let plan = task.restore_plan()?;
    if plan.is_empty() {
        return Ok(());
    }
    let consumer = restore_consumer(config, "restore")?;
    let partition = task.id().partition;
    let mut store_of_topic = HashMap::new();
    let mut partitions = Vec::new();
    for (store, topic, from) in plan {
        // A checkpoint past the end means the changelog was recreated: start over.
        if let Ok((_, high)) = consumer.fetch_watermarks(&topic, partition, META_TIMEOUT) {
            if from > high {
                tracing::warn!(task = %task.id(), %store, "checkpoint beyond changelog end; wiping store");
                task.wipe_stores()?;
                return restore_task(config, task, metrics);
            }
            metrics.restore_remaining.with_label_values(&[&store]).add((high - from).max(0));
        }
        store_of_topic.insert(topic.clone(), store);
        partitions.push((topic, partition, from));
    }
    let started = Instant::now();
    read_to_end(&consumer, &partitions, |topic, _p, entries, next| {
        let store = &store_of_topic[topic];
        task.restore(store, entries, next)?;
        metrics.restore_remaining.with_label_values(&[store]).sub(entries.len() as i64);
        Ok(())
    })?;
    for store in store_of_topic.values() {
        metrics.restore_remaining.with_label_values(&[store]).set(0);
    }
    tracing::info!(task = %task.id(), elapsed_ms = started.elapsed().as_millis() as u64, "task restored");
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
    read_to_end(&consumer, &plan, |_, p, entries, next| {
        backend.apply(entries, None)?;
        next_offsets.insert(p, next);
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
