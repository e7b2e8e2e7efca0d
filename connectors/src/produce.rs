//! Producing contract events to Kafka the way any Confluent client would: values in the Confluent
//! Avro wire format under the TopicNameStrategy, keys as UTF-8 strings, the record timestamp set to
//! the event time, partitions chosen by Java's murmur2 so that finstream's co-partitioned inputs
//! line up with what a Java producer would have written.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use schemas::registry::SchemaRegistry;
use schemas::{AccountEvent, AvroSerde, BudgetEvent, ExchangeRate, GoalEvent, TransactionEvent, UserProfile};
use streams::serde::Serde;

use crate::event::Event;
use crate::ConnectorError;

/// Where and how to produce: the cluster (and any librdkafka settings, e.g. SASL/SSL) and the
/// schema registry the values' schemas are registered in.
#[derive(Debug, Clone, Default)]
pub struct KafkaTarget {
    pub bootstrap_servers: String,
    /// librdkafka settings passed verbatim (`security.protocol`, `sasl.*`, `ssl.*`, …).
    pub kafka: BTreeMap<String, String>,
}

impl KafkaTarget {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaTarget { bootstrap_servers: bootstrap_servers.into(), kafka: BTreeMap::new() }
    }

    /// The producer configuration: idempotent (no duplicates or reordering from retries, which
    /// would otherwise look like the generator's deliberate duplicates), Java-compatible
    /// partitioning, a little batching. User settings come last so they can override any of it.
    fn producer_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "20")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "200000");
        for (k, v) in &self.kafka {
            c.set(k, v);
        }
        c
    }
}

/// Counts deliveries and remembers the first failure; librdkafka calls it from `poll`.
#[derive(Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("poisoned");
                if first.is_none() {
                    *first = Some(format!("delivery to {} failed: {e}", rdkafka::Message::topic(m)));
                }
            }
        }
    }
}

/// Serializers for the six input records, sharing one registry (and its id cache).
struct Serdes {
    rate: AvroSerde<ExchangeRate>,
    profile: AvroSerde<UserProfile>,
    account: AvroSerde<AccountEvent>,
    budget: AvroSerde<BudgetEvent>,
    goal: AvroSerde<GoalEvent>,
    transaction: AvroSerde<TransactionEvent>,
}

impl Serdes {
    fn new(registry: Arc<dyn SchemaRegistry>) -> Self {
        Serdes {
            rate: AvroSerde::new(registry.clone()),
            profile: AvroSerde::new(registry.clone()),
            account: AvroSerde::new(registry.clone()),
            budget: AvroSerde::new(registry.clone()),
            goal: AvroSerde::new(registry.clone()),
            transaction: AvroSerde::new(registry),
        }
    }

    fn serialize(&self, topic: &str, event: &Event) -> Result<Vec<u8>, ConnectorError> {
        let r = match event {
            Event::Rate(e) => self.rate.serialize(topic, e),
            Event::Profile(e) => self.profile.serialize(topic, e),
            Event::Account(e) => self.account.serialize(topic, e),
            Event::Budget(e) => self.budget.serialize(topic, e),
            Event::Goal(e) => self.goal.serialize(topic, e),
            Event::Transaction(e) => self.transaction.serialize(topic, e),
        };
        r.map_err(|e| ConnectorError::Serialize { topic: topic.to_string(), reason: e.reason, message: e.message })
    }
}

/// An idempotent `BaseProducer` that writes [`Event`]s. Sending never blocks on the network: it
/// only waits for room in librdkafka's queue; [`EventProducer::flush`] waits for delivery.
pub struct EventProducer {
    producer: BaseProducer<DeliveryCounter>,
    serdes: Serdes,
    /// Contract topic → the topic actually written (when `[finance.topics]` renames inputs).
    renamed: BTreeMap<&'static str, String>,
    sent: u64,
}

impl EventProducer {
    pub fn new(target: &KafkaTarget, registry: Arc<dyn SchemaRegistry>) -> Result<Self, ConnectorError> {
        let producer = target.producer_config().create_with_context(DeliveryCounter::default())?;
        Ok(EventProducer { producer, serdes: Serdes::new(registry), renamed: BTreeMap::new(), sent: 0 })
    }

    /// Writes events of the contract's `topic` to `to` instead.
    pub fn rename_topic(&mut self, topic: &'static str, to: impl Into<String>) {
        let to = to.into();
        if to != topic {
            self.renamed.insert(topic, to);
        }
    }

    /// Serializes `event` and queues it for its topic with its key and event-time timestamp.
    pub fn send(&mut self, event: &Event) -> Result<(), ConnectorError> {
        let topic = event.topic();
        let topic = self.renamed.get(topic).cloned().unwrap_or_else(|| topic.to_string());
        let payload = self.serdes.serialize(&topic, event)?;
        self.send_raw(&topic, event.key(), &payload, event.timestamp().0)
    }

    /// Queues an already serialized value (e.g. an imported record).
    pub fn send_raw(&mut self, topic: &str, key: &str, payload: &[u8], timestamp: i64) -> Result<(), ConnectorError> {
        loop {
            let record = BaseRecord::to(topic).key(key).payload(payload).timestamp(timestamp);
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(ConnectorError::Kafka(e)),
            }
        }
        self.sent += 1;
        // Serves delivery reports without waiting, so the counters stay current.
        self.producer.poll(Duration::ZERO);
        self.check()
    }

    /// The serializer of transactions, for callers that validate and serialize themselves.
    pub fn transaction_serde(&self) -> &AvroSerde<TransactionEvent> {
        &self.serdes.transaction
    }

    /// Serves delivery reports for up to `timeout` (returns early when one arrives).
    pub fn poll(&self, timeout: Duration) {
        self.producer.poll(timeout);
    }

    /// Records queued so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Records the cluster acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.producer.context().delivered.load(Ordering::Relaxed)
    }

    fn check(&self) -> Result<(), ConnectorError> {
        match self.producer.context().first_error.lock().expect("poisoned").clone() {
            Some(e) => Err(ConnectorError::Delivery(e)),
            None => Ok(()),
        }
    }

    /// Waits until everything queued is delivered (or `timeout`), failing if anything was not.
    pub fn flush(&mut self, timeout: Duration) -> Result<u64, ConnectorError> {
        self.producer.flush(timeout)?;
        self.check()?;
        let delivered = self.delivered();
        if delivered != self.sent {
            return Err(ConnectorError::Delivery(format!("{} of {} records delivered", delivered, self.sent)));
        }
        Ok(delivered)
    }
}
