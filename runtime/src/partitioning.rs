//! Which hash placed the keys of each user source topic, decided once per application and kept.
//!
//! Producers do not agree on a partitioner (Java clients murmur2, librdkafka-based ones CRC32,
//! sarama FNV-1a), and finstream places keys itself (repartitions into a sub-topology, query
//! routing) where its producers' records are. At start, before any task exists, each user source
//! topic without a decision is sampled from its beginning (the input already in the topics) and
//! a decision made (`streams::partitioner`); decisions are appended to `<app>-partitioners` and
//! read back, and the first decision per topic wins, so instances racing at their first start
//! and every later restart agree. A decision never changes afterwards: that would move keys
//! between tasks and split their state (`finstream reset` removes it with the rest).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use streams::partitioner::first_decisions;
use streams::{BuiltTopology, PartitionPlan, Partitioner, PartitionerDecision, PartitionerDetector};

use crate::kafka::{client_config, client_config_for, Role};
use crate::restore::{consume_to_end, restore_consumer, watermarks};
use crate::topics::block_on;
use crate::{RuntimeError, StreamsConfig};

/// Records read per partition to decide a topic's partitioner: enough evidence, bounded time.
const SAMPLE_PER_PARTITION: i64 = 2_000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The decisions topic of an application.
pub fn partitioners_topic(application_id: &str) -> String {
    format!("{application_id}-partitioners")
}

/// Decides (or reads back) every user source topic's partitioner and resolves each
/// sub-topology's partitioning; refuses co-partitioned topics that disagree.
pub(crate) fn plan(
    config: &StreamsConfig,
    topology: &BuiltTopology,
    counts: &BTreeMap<String, i32>,
) -> Result<PartitionPlan, RuntimeError> {
    let topic = partitioners_topic(&config.application_id);
    ensure_log_topic(config, &topic)?;
    let mut decisions = read_decisions(config, &topic)?;
    let missing: Vec<String> =
        topology.user_source_topics().into_iter().map(|(t, _)| t).filter(|t| !decisions.contains_key(t)).collect();
    if !missing.is_empty() {
        let producer: BaseProducer =
            client_config_for(config, Role::Producer).set("enable.idempotence", "true").create()?;
        for t in &missing {
            let configured = match config.partitioners.get(t) {
                Some(name) => Some(Partitioner::parse(name).ok_or_else(|| {
                    RuntimeError::Topics(format!("partitioners.{t} = {name:?} is not a known partitioner"))
                })?),
                None => None,
            };
            let n = counts.get(t).copied().unwrap_or(1);
            let decision = PartitionerDecision::decide(t, &sample(config, t, n)?, configured);
            tracing::info!(topic = %t, partitioner = %decision.partitioner, basis = ?decision.basis, "partitioner decided");
            let value = decision.to_json();
            producer
                .send(BaseRecord::<str, [u8]>::to(&topic).key(t.as_str()).payload(&value).partition(0))
                .map_err(|(e, _)| RuntimeError::Kafka(e))?;
        }
        producer.flush(TIMEOUT)?;
        decisions = read_decisions(config, &topic)?;
    }
    for d in decisions.values() {
        if let Some(w) = d.warning() {
            tracing::warn!(topic = %d.topic, "{w}");
        }
    }
    PartitionPlan::new(topology, &decisions, counts).map_err(|e| RuntimeError::Topics(e.to_string()))
}

/// Reads the first records of every partition of `topic` and counts which partitioner placed them.
fn sample(config: &StreamsConfig, topic: &str, partitions: i32) -> Result<PartitionerDetector, RuntimeError> {
    let mut detector = PartitionerDetector::new(partitions);
    let consumer = restore_consumer(config, "partitioners")?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        let Some((low, high)) = watermarks(&consumer, topic, p)? else { continue };
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Offset(low))?;
            ends.insert(p, (low + SAMPLE_PER_PARTITION).min(high));
        }
    }
    if ends.is_empty() {
        return Ok(detector);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ends.is_empty() && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if ends.get(&m.partition()).is_some_and(|end| m.offset() < *end) {
                    detector.observe(m.key(), m.partition());
                }
                if ends.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end) {
                    ends.remove(&m.partition());
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, "sampling consumer"),
            None => {
                // Ends counted in offsets include transaction markers and aborted records that
                // never arrive: stop at a partition's end position.
                for e in consumer.position()?.elements() {
                    if let (Offset::Offset(pos), Some(end)) = (e.offset(), ends.get(&e.partition())) {
                        if pos >= *end {
                            ends.remove(&e.partition());
                        }
                    }
                }
            }
        }
    }
    Ok(detector)
}

fn read_decisions(config: &StreamsConfig, topic: &str) -> Result<BTreeMap<String, PartitionerDecision>, RuntimeError> {
    let consumer = restore_consumer(config, "partitioners")?;
    let mut values: Vec<Vec<u8>> = Vec::new();
    consume_to_end(config, &consumer, &[(topic.to_string(), 0, 0)], |m| {
        if let Some(v) = m.payload() {
            values.push(v.to_vec());
        }
        Ok(())
    })?;
    Ok(first_decisions(values.iter().map(|v| v.as_slice())))
}

/// One partition, every record kept (first writer wins needs the first, which compaction drops).
fn ensure_log_topic(config: &StreamsConfig, topic: &str) -> Result<(), RuntimeError> {
    if crate::topics::partition_counts(config)?.contains_key(topic) {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(config).create()?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT));
    let result = block_on(admin.create_topics([&new], &opts));
    match result {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => {}
            Some(Err((t, code))) => return Err(RuntimeError::Topics(format!("could not create {t}: {code}"))),
        },
        // The embedded demo's mock cluster has no CreateTopics: it creates the topic up front.
        Err(KafkaError::AdminOp(code)) => {
            return Err(RuntimeError::Topics(format!("could not create {topic}: {code}")))
        }
        Err(e) => return Err(e.into()),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !crate::topics::partition_counts(config)?.contains_key(topic) {
        if Instant::now() > deadline {
            return Err(RuntimeError::Topics(format!("created topic {topic} did not appear within 30 s")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
