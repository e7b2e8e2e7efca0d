//! The few places that touch librdkafka types: client configs, record conversion, delivery
//! reports, produce.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use rdkafka::{ClientContext, Message};
use streams::{Headers, OutRecord, RawRecord, TaskId};

use crate::config::StreamsConfig;

/// Base client config: bootstrap servers plus the verbatim `kafka` table (validated by
/// [`StreamsConfig::validate`] not to override what the engine's guarantees rest on).
pub fn client_config(config: &StreamsConfig) -> ClientConfig {
    client_config_for(config, Role::Any)
}

/// Which kind of librdkafka client a config is for: each gets the `kafka` settings that apply to
/// it, so a consumer setting in the shared table does not make every producer warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Producer,
    Consumer,
    Any,
}

/// librdkafka properties that only consumers read (`C` in its CONFIGURATION.md).
const CONSUMER_ONLY: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "group.protocol",
    "group.remote.assignor",
    "group.instance.id",
    "partition.assignment.strategy",
    "auto.offset.reset",
    "auto.commit.interval.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "fetch.error.backoff.ms",
    "max.partition.fetch.bytes",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "check.crcs",
    "coordinator.query.interval.ms",
];

/// librdkafka properties that only producers read (`P`).
const PRODUCER_ONLY: &[&str] = &[
    "linger.ms",
    "queue.buffering.max.ms",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "batch.num.messages",
    "batch.size",
    "compression.type",
    "compression.codec",
    "compression.level",
    "acks",
    "request.required.acks",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "message.send.max.retries",
    "retry.backoff.ms",
    "partitioner",
    "sticky.partitioning.linger.ms",
];

pub(crate) fn client_config_for(config: &StreamsConfig, role: Role) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers);
    for (k, v) in &config.kafka {
        let skip = match role {
            Role::Producer => CONSUMER_ONLY.contains(&k.as_str()),
            Role::Consumer => PRODUCER_ONLY.contains(&k.as_str()),
            Role::Any => false,
        };
        if !skip {
            c.set(k, v);
        }
    }
    c
}

/// The delivery-report tag of a task's records: its sub-topology and partition in one word.
pub(crate) fn sender(id: TaskId) -> usize {
    (id.subtopology << 20) | id.partition as usize
}

fn task_of(sender: usize) -> TaskId {
    TaskId { subtopology: sender >> 20, partition: (sender & 0xF_FFFF) as i32 }
}

/// A record librdkafka could not deliver.
#[derive(Debug, Clone)]
pub struct DeliveryFailure {
    pub topic: String,
    pub code: Option<RDKafkaErrorCode>,
    pub message: String,
}

impl DeliveryFailure {
    /// Failures no retry can fix: the record or the topic is wrong, not the moment.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.code,
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::InvalidTopic
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::InvalidRequiredAcks
            )
        )
    }
}

/// Records the next offset after each delivered record per (task, topic, partition), so a
/// commit knows how far each changelog partition got without asking the broker, and the first
/// failed delivery since the last check.
#[derive(Default)]
pub struct DeliveryTracker {
    delivered: Mutex<streams::cycle::Delivered>,
    failed: Mutex<Option<DeliveryFailure>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sender: usize) {
        match result {
            Ok(m) => {
                let mut d = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
                let e = d.entry((task_of(sender), m.topic().to_string(), m.partition())).or_insert(0);
                *e = (*e).max(m.offset() + 1);
            }
            Err((e, m)) => {
                let mut f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
                if f.is_none() {
                    *f = Some(DeliveryFailure {
                        topic: m.topic().to_string(),
                        code: e.rdkafka_error_code(),
                        message: e.to_string(),
                    });
                }
            }
        }
    }
}

impl DeliveryTracker {
    pub(crate) fn take(&self) -> streams::cycle::Delivered {
        std::mem::take(&mut *self.delivered.lock().unwrap_or_else(|e| e.into_inner()))
    }
    pub(crate) fn take_failure(&self) -> Option<DeliveryFailure> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The low and high watermarks librdkafka last saw in fetch responses for a partition (no
/// request: cheap enough for every loop iteration). `None` before the first fetch.
pub(crate) fn cached_watermarks<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the borrow; the topic is NUL-terminated; librdkafka
    // only writes the two out-parameters.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            client.native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some((low, high))
}

pub fn to_raw(m: &BorrowedMessage<'_>) -> RawRecord {
    let mut headers = Headers::new();
    if let Some(h) = m.headers() {
        for hdr in h.iter() {
            headers.0.push((hdr.key.to_string(), hdr.value.map(|v| v.to_vec()).unwrap_or_default()));
        }
    }
    RawRecord {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(|k| k.to_vec()),
        value: m.payload().map(|v| v.to_vec()),
        timestamp: m.timestamp().to_millis().unwrap_or(0),
        headers,
    }
}

/// Sends one record, waiting for queue space rather than failing when the local queue is full.
/// `sender` comes back in the delivery report (which task sent it).
pub fn send<C: ProducerContext<DeliveryOpaque = usize>>(
    producer: &BaseProducer<C>,
    out: &OutRecord,
    sender: usize,
) -> Result<(), KafkaError> {
    let mut headers = OwnedHeaders::new_with_capacity(out.headers.0.len());
    for (k, v) in &out.headers.0 {
        headers = headers.insert(Header { key: k, value: Some(v.as_slice()) });
    }
    loop {
        let mut rec: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&out.topic, sender).timestamp(out.timestamp).headers(headers.clone());
        if let Some(k) = &out.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &out.value {
            rec = rec.payload(v.as_slice());
        }
        if let Some(p) = out.partition {
            rec = rec.partition(p);
        }
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}
