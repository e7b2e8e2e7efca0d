//! The few places that touch librdkafka types: client configs, record conversion, produce.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use rdkafka::{ClientContext, Message};
use streams::{Headers, OutRecord, RawRecord};

use crate::config::StreamsConfig;

/// Base client config: bootstrap servers plus the verbatim `kafka` table.
pub fn client_config(config: &StreamsConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.bootstrap_servers);
    for (k, v) in &config.kafka {
        c.set(k, v);
    }
    c
}

/// Records the next offset after each delivered record per (topic, partition), so a commit
/// knows how far each changelog partition got without asking the broker.
#[derive(Default)]
pub struct DeliveryTracker {
    /// (sender code, topic, partition) → next offset after the last delivered record.
    delivered: Mutex<HashMap<(usize, String, i32), i64>>,
    failed: Mutex<Option<String>>,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, sender: usize) {
        match result {
            Ok(m) => {
                let mut d = self.delivered.lock().expect("poisoned");
                let e = d.entry((sender, m.topic().to_string(), m.partition())).or_insert(0);
                *e = (*e).max(m.offset() + 1);
            }
            Err((e, m)) => {
                *self.failed.lock().expect("poisoned") = Some(format!("delivery to {} failed: {e}", m.topic()));
            }
        }
    }
}

impl DeliveryTracker {
    pub fn take(&self) -> HashMap<(usize, String, i32), i64> {
        std::mem::take(&mut *self.delivered.lock().expect("poisoned"))
    }
    pub fn take_failure(&self) -> Option<String> {
        self.failed.lock().expect("poisoned").take()
    }
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
