//! Test input and output: a producer like an outside client's, and a `read_committed` reader
//! that reads to the high watermark.
//!
//! "The end" of a topic is the high watermark each partition has when reading starts, never "no
//! record came for a while": a `read_committed` consumer stops at the last stable offset while
//! a transaction is open, so the reader waits until every transaction open at that moment has
//! committed or aborted, and then has seen every record committed before it started.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// A producer of test input: idempotent with `acks=all` (Java's defaults: a retry never
/// duplicates an input record, which would look like an engine bug), partitioning keys like
/// Java's producer (murmur2), so the engine's tasks see keys where Kafka Streams would.
pub fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

/// Queues one record, waiting for room in the queue.
pub fn produce(p: &BaseProducer, topic: &str, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, timestamp: i64) {
    let (key, value) = (key.as_ref(), value.as_ref());
    loop {
        match p.send(BaseRecord::to(topic).key(key).payload(value).timestamp(timestamp)) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("producing to {topic}: {e}"),
        }
    }
}

/// Produces `(key, value, timestamp)` records and waits until every one is acknowledged.
pub fn produce_all<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    p: &BaseProducer,
    topic: &str,
    records: impl IntoIterator<Item = (K, V, i64)>,
) {
    for (k, v, ts) in records {
        produce(p, topic, k, v, ts);
    }
    p.flush(Duration::from_secs(60)).unwrap_or_else(|e| panic!("delivering to {topic}: {e}"));
}

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Consumed {
    /// The key as UTF-8 (test keys are strings).
    pub fn key_str(&self) -> &str {
        std::str::from_utf8(&self.key).expect("UTF-8 key")
    }

    /// The first header named `name`, as UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| std::str::from_utf8(v).expect("UTF-8 header"))
    }
}

fn consumed(m: &rdkafka::message::BorrowedMessage<'_>) -> Consumed {
    Consumed {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().unwrap_or_default().to_vec(),
        value: m.payload().unwrap_or_default().to_vec(),
        timestamp: m.timestamp().to_millis().unwrap_or(-1),
        headers: m
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
            .unwrap_or_default(),
    }
}

/// Reads every partition of a topic from the beginning with `read_committed`, as an outside
/// consumer of a derived topic would, keeping what it read.
pub struct Reader {
    topic: String,
    partitions: i32,
    consumer: BaseConsumer,
    /// Offset lookups of a `read_uncommitted` client answer the high watermark.
    ends: BaseConsumer,
    records: Vec<Consumed>,
}

impl Reader {
    /// A reader of `topic`, which must exist (or appear within 30 s).
    pub fn new(bootstrap: &str, topic: &str) -> Reader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", crate::unique("reader"))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let ends: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("consumer");
        let deadline = Instant::now() + METADATA_TIMEOUT;
        let partitions = loop {
            let md = ends.fetch_metadata(Some(topic), METADATA_TIMEOUT).expect("metadata");
            match md.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => break t.partitions().len() as i32,
                _ => {}
            }
            assert!(Instant::now() < deadline, "topic {topic} does not exist");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        Reader { topic: topic.into(), partitions, consumer, ends, records: Vec::new() }
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Reads everything committed up to the high watermark each partition has now, waiting for
    /// the transactions open there to resolve; panics after `timeout`. Returns all records read
    /// so far, in per-partition offset order.
    pub fn read_to_end(&mut self, timeout: Duration) -> &[Consumed] {
        let mut targets = BTreeMap::new();
        for p in 0..self.partitions {
            let (low, high) = self
                .ends
                .fetch_watermarks(&self.topic, p, METADATA_TIMEOUT)
                .unwrap_or_else(|e| panic!("high watermark of {}[{p}]: {e}", self.topic));
            if high > low {
                targets.insert(p, high);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let positions = self.positions();
            targets.retain(|p, high| positions.get(p).is_none_or(|pos| pos < high));
            if targets.is_empty() {
                return &self.records;
            }
            assert!(
                Instant::now() < deadline,
                "reading {} to its end: after {timeout:?} partitions at {positions:?}, high watermarks {targets:?}",
                self.topic
            );
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => self.records.push(consumed(&m)),
                Some(Err(e)) => panic!("reading {}: {e}", self.topic),
                None => {}
            }
        }
    }

    /// Reads to the end until at least `n` records were read (the application may still be
    /// producing them), then to the end once more, so that records committed beyond `n` (a
    /// duplicate, say) by then are read too. Panics after `timeout` with the count reached.
    pub fn wait_for(&mut self, n: usize, timeout: Duration) -> &[Consumed] {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
            if self.read_to_end(left).len() >= n {
                return self.read_to_end(left);
            }
            if Instant::now() >= deadline {
                let highs: Vec<i64> = (0..self.partitions)
                    .map(|p| self.ends.fetch_watermarks(&self.topic, p, METADATA_TIMEOUT).map_or(-1, |w| w.1))
                    .collect();
                panic!(
                    "{}: {} of {n} records after {timeout:?}; positions {:?}, high watermarks {highs:?}",
                    self.topic,
                    self.records.len(),
                    self.positions()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every record read so far.
    pub fn records(&self) -> &[Consumed] {
        &self.records
    }

    pub fn into_records(self) -> Vec<Consumed> {
        self.records
    }

    /// The consumer's next offset per partition; it passes transaction markers.
    fn positions(&self) -> BTreeMap<i32, i64> {
        self.consumer
            .position()
            .expect("positions")
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }
}

/// Every record of `topic` committed up to its high watermark now (see [`Reader::read_to_end`]).
pub fn read_committed(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    let mut r = Reader::new(bootstrap, topic);
    r.read_to_end(Duration::from_secs(60));
    r.into_records()
}

/// Every record of `topic` once at least `n` are committed (see [`Reader::wait_for`]).
pub fn read_committed_at_least(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> Vec<Consumed> {
    let mut r = Reader::new(bootstrap, topic);
    r.wait_for(n, timeout);
    r.into_records()
}
