//! `streams::partitioner` against a real librdkafka producer: for each of librdkafka's keyed
//! partitioners, the partition the client chose (from its delivery reports) must be the one
//! finstream computes, on the test broker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use streams::partitioner::Partitioner;
use testkit::{unique, Kafka};

/// A record's key and the partition it was delivered to.
type Placed = (Vec<u8>, i32);

/// Collects every delivered record's placement.
#[derive(Clone, Default)]
struct Deliveries(Arc<Mutex<Vec<Placed>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let m = result.as_ref().expect("delivered");
        self.0.lock().unwrap().push((m.key().unwrap_or_default().to_vec(), m.partition()));
    }
}

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..400).map(|i| format!("account-{i}").into_bytes()).collect();
    keys.extend((0..100).map(|i| format!("{:x}-{}", i * 7919, "é€".repeat(i % 5)).into_bytes()));
    keys.extend([b"a".to_vec(), b"kafka".to_vec(), vec![0xff, 0x00, 0x80], vec![0u8; 33]]);
    keys
}

/// What librdkafka's `partitioner` chose for each key on a topic with `partitions` partitions.
fn librdkafka_partitions(setting: &str, partitions: i32) -> Vec<Placed> {
    let kafka = Kafka::shared();
    let topic = unique(&format!("keys-{setting}-{partitions}"));
    kafka.create_topics(&[(&topic, partitions)]);
    let ctx = Deliveries::default();
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("partitioner", setting)
        .set("linger.ms", "1")
        .create_with_context(ctx.clone())
        .expect("producer");
    let keys = keys();
    for k in &keys {
        loop {
            match producer.send(BaseRecord::<Vec<u8>, [u8]>::to(&topic).key(k).payload(b"v")) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("produce failed: {e}"),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctx.0.lock().unwrap().len() < keys.len() && Instant::now() < deadline {
        producer.poll(Duration::from_millis(20));
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    let got = ctx.0.lock().unwrap().clone();
    assert_eq!(got.len(), keys.len(), "every record delivered");
    got
}

#[test]
fn finstream_places_keys_where_librdkafka_does() {
    let cases = [
        ("consistent_random", Partitioner::Crc32),
        ("consistent", Partitioner::Crc32),
        ("murmur2_random", Partitioner::Murmur2),
        ("murmur2", Partitioner::Murmur2),
        ("fnv1a_random", Partitioner::Fnv1a),
        ("fnv1a", Partitioner::Fnv1a),
    ];
    for partitions in [3, 8, 13] {
        for (setting, ours) in cases {
            assert_eq!(Partitioner::parse(setting), Some(ours));
            let mut wrong = Vec::new();
            let delivered = librdkafka_partitions(setting, partitions);
            for (key, partition) in &delivered {
                if ours.partition(key, partitions) != *partition {
                    wrong.push((String::from_utf8_lossy(key).into_owned(), *partition));
                }
            }
            assert!(wrong.is_empty(), "{setting} over {partitions} partitions: {} keys differ: {wrong:?}", wrong.len());
            // And the other hashes do not: the comparison can tell them apart.
            for other in Partitioner::ALL.into_iter().filter(|p| *p != ours) {
                let same = delivered.iter().filter(|(k, p)| other.partition(k, partitions) == *p).count();
                assert!(same < delivered.len() * 2 / 3, "{setting}: {other} agrees on {same} keys");
            }
        }
    }
}
