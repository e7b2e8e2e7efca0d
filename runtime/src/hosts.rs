//! Which instance of the group holds which task, and at what query URL: Kafka Streams' host
//! metadata (`application.server`), exchanged through a topic instead of the group protocol.
//!
//! Java Kafka Streams puts each member's `application.server` and the full assignment into the
//! assignor's user data. librdkafka offers no custom assignor user data, so each instance with
//! an `application_server` publishes its own entry to the compacted topic
//! `<application.id>-query-hosts` (key: process id; value: JSON [`HostInfo`]) whenever its
//! assignment changes and as a heartbeat, and every instance reads that topic from the
//! beginning. A clean shutdown writes a tombstone; a crashed instance's entry expires after
//! [`HOST_TTL_MS`] without a heartbeat, and while both exist the later assignment wins.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::interactive::TaskAssignment;
use crate::kafka::{client_config_for, Role};
use crate::restore::restore_consumer;
use crate::thread::now_ms;
use crate::{Instance, RuntimeError};

/// How often an instance republishes its entry when nothing changed.
pub const HEARTBEAT_MS: i64 = 1_000;
/// An entry without a heartbeat for this long belongs to a dead instance.
pub const HOST_TTL_MS: i64 = 10_000;
/// How quickly a changed assignment is published.
const CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The hosts topic of an application.
pub fn hosts_topic(application_id: &str) -> String {
    format!("{application_id}-query-hosts")
}

/// One instance's entry in the hosts topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub process_id: String,
    /// Its `application_server`: base URL of its query API.
    pub url: String,
    pub tasks: Vec<TaskAssignment>,
    /// Wall-clock millis of the instance's last assignment change (orders conflicting claims).
    pub assigned_at_ms: i64,
    /// Wall-clock millis of this publication.
    pub heartbeat_ms: i64,
}

/// The entries read from the hosts topic.
#[derive(Default)]
pub(crate) struct HostDirectory {
    entries: RwLock<HashMap<String, HostInfo>>,
}

impl HostDirectory {
    /// Entries refreshed within [`HOST_TTL_MS`].
    pub fn live(&self) -> BTreeMap<String, HostInfo> {
        let cutoff = now_ms() - HOST_TTL_MS;
        self.entries
            .read()
            .expect("poisoned")
            .iter()
            .filter(|(_, h)| h.heartbeat_ms >= cutoff)
            .map(|(k, h)| (k.clone(), h.clone()))
            .collect()
    }

    fn apply(&self, key: &[u8], value: Option<&[u8]>) {
        let key = String::from_utf8_lossy(key).into_owned();
        let mut entries = self.entries.write().expect("poisoned");
        match value.map(serde_json::from_slice::<HostInfo>) {
            Some(Ok(h)) => {
                // Reading back an instance's own older publication must not undo a newer one.
                if entries.get(&key).is_none_or(|old| old.heartbeat_ms <= h.heartbeat_ms) {
                    entries.insert(key, h);
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "undecodable hosts entry ignored"),
            None => {
                entries.remove(&key);
            }
        }
    }
}

/// Starts the publisher and the reader of the hosts topic (with an `application_server` only).
pub(crate) fn start(instance: &Arc<Instance>) -> Result<Vec<JoinHandle<()>>, RuntimeError> {
    let topic = hosts_topic(&instance.config.application_id);
    let mut handles = Vec::new();
    let consumer = restore_consumer(&instance.config, "hosts")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let inst = instance.clone();
    handles.push(std::thread::Builder::new().name("query-hosts-reader".into()).spawn(move || read(inst, consumer))?);
    if let Some(url) = instance.config.application_server.clone() {
        let mut config = client_config_for(&instance.config, Role::Producer);
        // The verbatim `kafka` table may hold consumer-only settings; they only cause warnings.
        config.set("linger.ms", "0");
        let producer: BaseProducer = config.create()?;
        let inst = instance.clone();
        handles.push(
            std::thread::Builder::new()
                .name("query-hosts-publisher".into())
                .spawn(move || publish(inst, producer, topic, url))?,
        );
    }
    Ok(handles)
}

fn read(instance: Arc<Instance>, consumer: crate::restore::ToEndConsumer) {
    while !instance.shutdown.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if let Some(k) = m.key() {
                    instance.hosts.apply(k, m.payload());
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => tracing::warn!(error = %e, "hosts topic consumer error"),
        }
    }
}

fn send(producer: &BaseProducer, topic: &str, key: &str, value: Option<&[u8]>) {
    let mut rec = BaseRecord::<str, [u8]>::to(topic).key(key).partition(0);
    if let Some(v) = value {
        rec = rec.payload(v);
    }
    if let Err((e, _)) = producer.send(rec) {
        tracing::warn!(error = %e, "publishing to the hosts topic failed");
    }
    producer.poll(Duration::ZERO);
}

fn publish(instance: Arc<Instance>, producer: BaseProducer, topic: String, url: String) {
    let handle = crate::interactive::StateHandle { instance: instance.clone() };
    let key = instance.process_id.clone();
    let mut last_generation = u64::MAX;
    let mut assigned_at_ms = now_ms();
    let mut last_sent: Option<Instant> = None;
    while !instance.shutdown.load(Ordering::Relaxed) {
        let (generation, tasks) = handle.assignment();
        let changed = generation != last_generation;
        let due = last_sent.is_none_or(|t| t.elapsed() >= Duration::from_millis(HEARTBEAT_MS as u64));
        if changed || due {
            if changed {
                assigned_at_ms = now_ms();
                last_generation = generation;
            }
            let info =
                HostInfo { process_id: key.clone(), url: url.clone(), tasks, assigned_at_ms, heartbeat_ms: now_ms() };
            let bytes = serde_json::to_vec(&info).expect("host info serializes");
            // Known here at once; the other instances learn it from the topic.
            instance.hosts.apply(key.as_bytes(), Some(&bytes));
            send(&producer, &topic, &key, Some(&bytes));
            last_sent = Some(Instant::now());
        }
        std::thread::sleep(CHECK_INTERVAL);
    }
    instance.hosts.apply(key.as_bytes(), None);
    send(&producer, &topic, &key, None);
    if let Err(e) = producer.flush(Duration::from_secs(5)) {
        tracing::warn!(error = %e, "hosts tombstone not delivered");
    }
}
