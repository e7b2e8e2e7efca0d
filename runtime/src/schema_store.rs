//! The embedded schema registry's persistence in a compacted Kafka topic (`_schemas` by default),
//! as Confluent's registry keeps it, so a restarted registry hands out the same ids.
//!
//! One embedded registry per topic: ids are assigned in process, so two writers on one topic
//! could assign the same id twice. Deployments with several instances point all of them at one
//! registry (Confluent's, or one finstream's) instead.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;
use schemas::registry::{SchemaStore, StoreRecord};

use crate::config::StreamsConfig;
use crate::kafka::{client_config_for, DeliveryTracker, Role};
use crate::restore::{consume_to_end, restore_consumer};
use crate::{topics, RuntimeError};

/// How long a registration may wait for the broker to acknowledge its record.
const APPEND_TIMEOUT: Duration = Duration::from_secs(15);

pub struct KafkaSchemaStore {
    config: StreamsConfig,
    topic: String,
    /// Appends are serialized: the registry's ids follow the topic's order.
    producer: Mutex<BaseProducer<DeliveryTracker>>,
}

impl KafkaSchemaStore {
    /// Connects to the cluster in `config` (its bootstrap servers and `kafka` table) and creates
    /// `topic` compacted with one partition where the broker allows it.
    pub fn open(config: &StreamsConfig, topic: &str) -> Result<Self, RuntimeError> {
        topics::create_compacted(config, topic, 1)?;
        let mut pc: ClientConfig = client_config_for(config, Role::Producer);
        pc.set("enable.idempotence", "true").set("acks", "all");
        let producer = pc.create_with_context(DeliveryTracker::default())?;
        Ok(KafkaSchemaStore { config: config.clone(), topic: topic.to_string(), producer: Mutex::new(producer) })
    }
}

impl SchemaStore for KafkaSchemaStore {
    fn append(&self, record: &StoreRecord) -> Result<(), String> {
        let producer = self.producer.lock().map_err(|_| "schema store producer poisoned".to_string())?;
        let key = record.key();
        let value = record.to_json();
        producer
            .send(BaseRecord::with_opaque_to(&self.topic, 0).key(&key).payload(&value).partition(0))
            .map_err(|(e, _)| format!("writing to {}: {e}", self.topic))?;
        producer.flush(APPEND_TIMEOUT).map_err(|e| format!("writing to {}: {e}", self.topic))?;
        match producer.context().take_failure() {
            Some(failure) => Err(failure.message),
            None => Ok(()),
        }
    }

    fn load(&self) -> Result<Vec<StoreRecord>, String> {
        let consumer = restore_consumer(&self.config, "schemas").map_err(|e| e.to_string())?;
        let mut records = Vec::new();
        let mut bad = None;
        consume_to_end(&self.config, &consumer, &[(self.topic.clone(), 0, 0)], |m| {
            match m.payload().map(std::str::from_utf8) {
                Some(Ok(json)) => match StoreRecord::from_json(json) {
                    Ok(r) => records.push(r),
                    Err(e) => bad = Some(format!("{} offset {}: {e}", self.topic, m.offset())),
                },
                // Confluent writes tombstones and NOOP keys; neither changes the replay.
                None => {}
                Some(Err(_)) => bad = Some(format!("{} offset {}: value is not UTF-8", self.topic, m.offset())),
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        match bad {
            // A record we cannot read would silently renumber schemas: refuse to start instead.
            Some(b) => Err(b),
            None => Ok(records),
        }
    }
}
