//! The money end-to-end comparison (`money_e2e.rs`) with producers that are not finstream's
//! own: Python's confluent-kafka at its defaults (librdkafka's CRC32 partitioner, no
//! timestamps: the Kafka timestamp is the send time), and a mix of it with a Java service
//! (murmur2) on the same topics. Every balance, budget period, alert, goal, notification,
//! spending window and cash-flow month must equal the reference recomputation.

mod money;

use std::sync::Arc;

use money::{Actual, Raw};
use processors::finance_topology;
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use streams::partitioner::{DecisionBasis, Partitioner};
use streams::{DriverConfig, TopologyTestDriver};

const SEED: u64 = 20_261_122;
const APP: &str = "finance";
/// When the Python service sends: long after the events happened.
const SEND_TIME: i64 = 1_893_456_000_000; // 2030-01-01

/// Feeds the generated input in its live-like slices, each record through `producer(i)`'s
/// partitioner with the send time as Kafka timestamp; the application first starts after the
/// first slice of user data is in the topics. Returns the driver.
fn run(producer: impl Fn(usize) -> Partitioner) -> (TopologyTestDriver, money::Input, Arc<dyn SchemaRegistry>) {
    let input = money::input(SEED);
    let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
    let topology = finance_topology(&money::finance_config(), registry.clone()).unwrap().build(APP).unwrap();
    let mut d = TopologyTestDriver::new(topology, DriverConfig { partitions: 4, ..Default::default() }).unwrap();
    let mut i = 0;
    for (n, batch) in input.batches().into_iter().enumerate() {
        for ev in batch {
            let value = money::encode(&registry, ev);
            let key = Some(ev.key().as_bytes().to_vec());
            d.append_raw_with(producer(i), ev.topic(), key, Some(value), SEND_TIME + i as i64);
            i += 1;
        }
        if n > 0 {
            d.run().unwrap();
        }
    }
    (d, input, registry)
}

fn assert_agrees(d: &TopologyTestDriver, input: &money::Input, registry: &Arc<dyn SchemaRegistry>) {
    let raw = |recs: Vec<streams::OutRecord>| -> Vec<Raw> {
        recs.into_iter().map(|r| (r.key.unwrap_or_default(), r.value.unwrap_or_default())).collect()
    };
    let actual = Actual::read(registry, APP, Some(d.metrics()), |s| d.store_raw(s), |t| raw(d.read_raw(t)));
    let diffs = money::differences(&actual, input);
    assert!(diffs.is_empty(), "{} differences from the reference:\n{}", diffs.len(), diffs.join("\n"));
}

fn misplaced(d: &TopologyTestDriver, topic: &str) -> u64 {
    d.metrics().misplaced_records.with_label_values(&[topic]).get()
}

fn report(d: &TopologyTestDriver) {
    for (topic, dec) in d.partitioner_decisions() {
        let e = &dec.evidence;
        eprintln!(
            "{topic}: {} ({:?}; {} keyed, {} discriminating, {} unexplained); misplaced {}",
            dec.partitioner,
            dec.basis,
            e.keyed,
            e.discriminating(),
            e.unexplained,
            misplaced(d, topic)
        );
    }
}

#[test]
fn python_producer_at_defaults_agrees_with_reference() {
    let (d, input, registry) = run(|_| Partitioner::Crc32);
    report(&d);
    let decisions = d.partitioner_decisions();
    assert_eq!(decisions["transactions"].partitioner, Partitioner::Crc32);
    assert_eq!(decisions["transactions"].basis, DecisionBasis::Detected);
    assert_eq!(misplaced(&d, "transactions"), 0);
    assert_agrees(&d, &input, &registry);
}

#[test]
fn python_and_java_producers_on_the_same_topics_agree_with_reference() {
    let (d, input, registry) = run(|i| if i.is_multiple_of(4) { Partitioner::Murmur2 } else { Partitioner::Crc32 });
    report(&d);
    let tx = &d.partitioner_decisions()["transactions"];
    assert_eq!((tx.partitioner, tx.basis), (Partitioner::Crc32, DecisionBasis::Mixed));
    assert!(misplaced(&d, "transactions") > 1000, "{}", misplaced(&d, "transactions"));
    assert_agrees(&d, &input, &registry);
}
