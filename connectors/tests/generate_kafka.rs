//! `finstream generate` end to end: the generator's events produced to Apache Kafka (a private
//! broker per test: the generator writes the fixed input topic names) with schemas registered over
//! HTTP, then read back, decoded and compared with what the
//! generator made, record for record and partition for partition.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use connectors::{
    generate, topics, Event, EventProducer, FraudLabel, GenerateOptions, Generator, GeneratorConfig, KafkaTarget,
};
use schemas::registry::{subject_for, HttpRegistry, SchemaRegistry};
use schemas::{wire, AccountEvent, AvroSerde, BudgetEvent, ExchangeRate, GoalEvent, TransactionEvent, UserProfile};
use streams::murmur2::partition_for_key;
use streams::serde::Serde;
use testkit::{read_committed_at_least, registry, Kafka, Registry};

const PARTITIONS: i32 = 3;
const INPUTS: [&str; 6] =
    [topics::RATES, topics::PROFILES, topics::ACCOUNTS, topics::BUDGETS, topics::GOALS, topics::TRANSACTIONS];

fn cluster() -> Kafka {
    let kafka = Kafka::cluster(1);
    kafka.create_topics(&INPUTS.map(|t| (t, PARTITIONS)));
    kafka
}

fn decode(reg: &Arc<dyn SchemaRegistry>, topic: &str, bytes: &[u8]) -> Event {
    match topic {
        topics::RATES => Event::Rate(AvroSerde::<ExchangeRate>::new(reg.clone()).deserialize(topic, bytes).unwrap()),
        topics::PROFILES => {
            Event::Profile(AvroSerde::<UserProfile>::new(reg.clone()).deserialize(topic, bytes).unwrap())
        }
        topics::ACCOUNTS => {
            Event::Account(AvroSerde::<AccountEvent>::new(reg.clone()).deserialize(topic, bytes).unwrap())
        }
        topics::BUDGETS => Event::Budget(AvroSerde::<BudgetEvent>::new(reg.clone()).deserialize(topic, bytes).unwrap()),
        topics::GOALS => Event::Goal(AvroSerde::<GoalEvent>::new(reg.clone()).deserialize(topic, bytes).unwrap()),
        _ => Event::Transaction(AvroSerde::<TransactionEvent>::new(reg.clone()).deserialize(topic, bytes).unwrap()),
    }
}

/// Every input topic as (partition → [(key, timestamp, event)] in offset order).
type Arrived = BTreeMap<&'static str, BTreeMap<i32, Vec<(String, i64, Event)>>>;

fn read_back(kafka: &Kafka, reg: &Registry, expected: &BTreeMap<&str, usize>) -> Arrived {
    let client: Arc<dyn SchemaRegistry> = reg.registry.clone();
    let mut arrived = Arrived::new();
    for topic in INPUTS {
        let want = expected.get(topic).copied().unwrap_or(0);
        let records = read_committed_at_least(kafka.bootstrap(), topic, want, Duration::from_secs(60));
        let id = reg.registry.lookup(&subject_for(topic), contract_json(topic)).expect("schema registered").id;
        let parts = arrived.entry(topic).or_default();
        for r in records {
            let (schema_id, _) = wire::split(&r.value).expect("Confluent wire format");
            assert_eq!(schema_id, id, "{topic} written with the contract schema's id");
            let key = r.key_str().to_string();
            parts.entry(r.partition).or_default().push((key, r.timestamp, decode(&client, topic, &r.value)));
        }
    }
    arrived
}

fn contract_json(topic: &str) -> &'static str {
    use schemas::AvroRecord;
    match topic {
        topics::RATES => ExchangeRate::contract().json,
        topics::PROFILES => UserProfile::contract().json,
        topics::ACCOUNTS => AccountEvent::contract().json,
        topics::BUDGETS => BudgetEvent::contract().json,
        topics::GOALS => GoalEvent::contract().json,
        _ => TransactionEvent::contract().json,
    }
}

/// Where the events should be: Java's partitioner on the key, in generation order per partition.
fn expected_layout(events: &[Event]) -> Arrived {
    let mut out = Arrived::new();
    for e in events {
        let p = partition_for_key(e.key().as_bytes(), PARTITIONS);
        out.entry(e.topic()).or_default().entry(p).or_default().push((e.key().to_string(), e.timestamp().0, e.clone()));
    }
    out
}

fn counts(events: &[Event]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    for e in events {
        *c.entry(e.topic()).or_default() += 1;
    }
    c
}

#[test]
fn whole_data_set_arrives_decodable_in_order_with_labels_aside() {
    let kafka = cluster();
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let labels_path = dir.path().join("labels.jsonl");
    let cfg = GeneratorConfig { seed: 7, users: 40, days: 20, fraud: true, ..GeneratorConfig::default() };
    let (events, labels) = Generator::generate_all(cfg.clone());
    assert!(!labels.is_empty(), "the data set has fraud scenarios");

    let registry: Arc<dyn SchemaRegistry> = Arc::new(HttpRegistry::new(&reg.url));
    let mut producer = EventProducer::new(&KafkaTarget::new(kafka.bootstrap().to_string()), registry).unwrap();
    let opts = GenerateOptions {
        generator: cfg,
        rate: None,
        count: None,
        endless: false,
        labels_path: Some(labels_path.clone()),
        progress: false,
    };
    let summary = generate(&opts, &mut producer, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.events as usize, events.len());
    assert_eq!(summary.rounds, 1);
    assert_eq!(producer.delivered() as usize, events.len());
    let by_topic: BTreeMap<&str, usize> = summary.by_topic.iter().map(|(t, n)| (*t, *n as usize)).collect();
    assert_eq!(by_topic, counts(&events));

    let arrived = read_back(&kafka, &reg, &counts(&events));
    let expected = expected_layout(&events);
    for topic in INPUTS {
        let got = arrived.get(topic).cloned().unwrap_or_default();
        let want = expected.get(topic).cloned().unwrap_or_default();
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{topic}: partitions used");
        for (p, w) in &want {
            let g = &got[p];
            assert_eq!(g.len(), w.len(), "{topic}[{p}]: record count");
            for (i, (gr, wr)) in g.iter().zip(w).enumerate() {
                assert_eq!(gr, wr, "{topic}[{p}] record {i}: key, event-time timestamp and value");
            }
        }
    }

    let text = std::fs::read_to_string(&labels_path).unwrap();
    let mut written: Vec<FraudLabel> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut want = labels;
    written.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
    want.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
    assert_eq!(written, want, "one label line per fraudulent transaction");
    assert_eq!(summary.labels as usize, want.len());
}

#[test]
fn count_and_rate_limit_continue_past_the_data_set_into_fresh_rounds() {
    let kafka = cluster();
    let reg = registry();
    let cfg = GeneratorConfig { seed: 11, users: 2, days: 2, ..GeneratorConfig::default() };
    let (round0, _) = Generator::generate_all(cfg.clone());
    let count = round0.len() as u64 + 40;
    let rate = 400.0;
    let registry: Arc<dyn SchemaRegistry> = Arc::new(HttpRegistry::new(&reg.url));
    let mut producer = EventProducer::new(&KafkaTarget::new(kafka.bootstrap().to_string()), registry).unwrap();
    let opts = GenerateOptions {
        generator: cfg.clone(),
        rate: Some(rate),
        count: Some(count),
        endless: false,
        labels_path: None,
        progress: false,
    };
    let summary = generate(&opts, &mut producer, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.events, count);
    assert_eq!(summary.rounds, 2);
    // A lower bound only: the pacer must not send event n before n / rate seconds.
    let floor = Duration::from_secs_f64((count - 1) as f64 / rate);
    assert!(summary.elapsed >= floor, "{:?} < {floor:?}: not rate limited", summary.elapsed);

    let mut source = connectors::EventSource::new(cfg);
    let events: Vec<Event> = (0..count).map(|_| source.next(true).unwrap().0).collect();
    let arrived = read_back(&kafka, &reg, &counts(&events));
    assert_eq!(arrived, expected_layout(&events));
    let fresh = events[round0.len()..].iter().filter_map(Event::user_id).filter(|u| u.starts_with("r1-")).count();
    assert!(fresh > 0, "the second round has its own users");
}

#[test]
fn stop_flag_ends_an_endless_run_with_everything_sent_delivered() {
    let kafka = cluster();
    let reg = registry();
    let registry: Arc<dyn SchemaRegistry> = Arc::new(HttpRegistry::new(&reg.url));
    let mut producer = EventProducer::new(&KafkaTarget::new(kafka.bootstrap().to_string()), registry).unwrap();
    let opts = GenerateOptions {
        generator: GeneratorConfig { users: 5, days: 3, ..GeneratorConfig::default() },
        rate: Some(2000.0),
        count: None,
        endless: true,
        labels_path: None,
        progress: false,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        s.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let summary = generate(&opts, &mut producer, &stop).unwrap();
    stopper.join().unwrap();
    assert!(summary.events > 0);
    for (topic, n) in &summary.by_topic {
        let got = read_committed_at_least(kafka.bootstrap(), topic, *n as usize, Duration::from_secs(60));
        assert_eq!(got.len() as u64, *n, "{topic}: every event sent before the stop was delivered, once");
    }
}
