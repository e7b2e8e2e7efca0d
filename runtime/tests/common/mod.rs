//! Shared helpers for tests against librdkafka's mock cluster (real Kafka protocol over TCP).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use runtime::StreamsConfig;

pub type Mock = MockCluster<'static, DefaultProducerContext>;

pub fn mock_cluster(topics: &[(&str, i32)]) -> Mock {
    let mock = MockCluster::new(1).expect("mock cluster starts");
    for (t, p) in topics {
        mock.create_topic(t, *p, 1).expect("topic created");
    }
    mock
}

/// Engine config for tests: short timeouts so restarts and rebalances are quick.
pub fn config(bootstrap: &str, app: &str, state_dir: &std::path::Path) -> StreamsConfig {
    let mut c = StreamsConfig {
        application_id: app.into(),
        bootstrap_servers: bootstrap.into(),
        state_dir: state_dir.to_path_buf(),
        ..Default::default()
    };
    for (k, v) in [
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        ("transaction.timeout.ms", "10000"),
        ("max.poll.interval.ms", "60000"),
    ] {
        c.kafka.insert(k.into(), v.into());
    }
    c
}

pub fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer")
}

pub fn produce(p: &BaseProducer, topic: &str, key: &str, value: &[u8], ts: i64) {
    loop {
        match p.send(BaseRecord::to(topic).key(key).payload(value).timestamp(ts)) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("produce failed: {e}"),
        }
    }
}

/// Produces `(key, i64 value, timestamp)` records and waits until all are delivered.
pub fn produce_all(p: &BaseProducer, topic: &str, records: &[(String, i64, i64)]) {
    for (k, v, ts) in records {
        produce(p, topic, k, &v.to_be_bytes(), *ts);
    }
    p.flush(Duration::from_secs(30)).expect("input delivered");
}

/// Reads a topic with read_committed from the beginning until `expected` records arrived (or
/// nothing new came for `quiet`), returning (key, value) in per-partition order.
pub fn read_committed(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<(i32, String, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push((
                m.partition(),
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    // Give a duplicate (the thing we check for) a chance to show up.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            out.push((
                m.partition(),
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    out
}

/// Deterministic input: key `<group>-<n>`, value, timestamp.
pub fn input(n: usize) -> Vec<(String, i64, i64)> {
    (0..n)
        .map(|i| {
            (
                format!("{}-{}", ["a", "b", "c", "d"][i % 4], (i * 7) % 101),
                (i % 13) as i64,
                1_700_000_000_000 + i as i64,
            )
        })
        .collect()
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Expected final sums per key from a plain loop.
pub fn expected_sums(records: &[(String, i64, i64)]) -> BTreeMap<String, streams::examples::Sum> {
    let mut m = BTreeMap::<String, streams::examples::Sum>::new();
    for (k, v, _) in records {
        let s = m.entry(k.clone()).or_default();
        s.count += 1;
        s.total += v;
    }
    m
}

/// Last output per key, and the full per-key sequence of counts (to detect duplicates/loss).
pub fn last_per_key(
    out: &[(i32, String, Vec<u8>)],
) -> (BTreeMap<String, streams::examples::Sum>, BTreeMap<String, Vec<i64>>) {
    let mut last = BTreeMap::new();
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (_, k, v) in out {
        let s: streams::examples::Sum = serde_json::from_slice(v).unwrap();
        seqs.entry(k.clone()).or_default().push(s.count);
        last.insert(k.clone(), s);
    }
    (last, seqs)
}
