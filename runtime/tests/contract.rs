//! The event contract wired through a real topology on a real broker: every dead-letter
//! class reaches `<topic>-dlq` with its reason while valid records pass, a schema registry outage
//! is retried instead of dead-lettered, and the embedded registry's `_schemas` topic keeps ids
//! across a restart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runtime::{KafkaSchemaStore, KafkaStreams};
use rust_decimal::Decimal;
use schemas::registry::{CompatibilityLevel, EmbeddedRegistry, RegisteredSchema, RegistryError, SchemaRegistry};
use schemas::{
    reason, wire, AvroRecord, AvroSerde, Category, Channel, TimestampMillis, TransactionEvent, TransactionKind,
    TransactionStatus,
};
use serde_json::Value as J;
use streams::record::header;
use streams::serde::Serde;
use streams::{ProcessError, Processor, ProcessorContext, Record, StreamsMetrics, StringSerde, Topology};
use testkit::{produce, producer, unique, Kafka, Reader};

struct Pass;

impl Processor<String, TransactionEvent> for Pass {
    fn process(
        &mut self,
        record: Record<String, TransactionEvent>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        ctx.forward(record)
    }
}

/// `<input>` → decode + validate → `<input>-valid` (the bad go to `<input>-dlq`).
fn topology(registry: Arc<dyn SchemaRegistry>, input: &str) -> Topology {
    let serde = Arc::new(AvroSerde::<TransactionEvent>::new(registry));
    let mut t = Topology::new();
    t.add_source::<String, TransactionEvent>("in", &[input], StringSerde, serde.clone())
        .unwrap()
        .add_processor("pass", || Pass, &["in"])
        .unwrap()
        .add_sink::<String, TransactionEvent>("out", &format!("{input}-valid"), StringSerde, serde, &["pass"])
        .unwrap();
    t
}

fn tx(i: usize) -> TransactionEvent {
    TransactionEvent {
        transaction_id: format!("tx-{i}"),
        account_id: format!("acc-{}", i % 7),
        user_id: format!("user-{}", i % 7),
        kind: TransactionKind::Payment,
        amount: Decimal::new(1234 + i as i64, 2),
        currency: "EUR".into(),
        status: TransactionStatus::Completed,
        category: Category::Groceries,
        counterparty_account_id: None,
        merchant: None,
        goal_id: None,
        channel: Channel::Card,
        location: None,
        occurred_at: TimestampMillis(1_790_000_000_000 + i as i64),
    }
}

/// Registers a variant of the TransactionEvent schema, edited by `edit`, and returns its id.
fn variant(reg: &EmbeddedRegistry, edit: impl FnOnce(&mut Vec<J>)) -> u32 {
    let mut v: J = serde_json::from_str(TransactionEvent::contract().json).unwrap();
    edit(v["fields"].as_array_mut().unwrap());
    reg.register("transactions-value", &v.to_string()).unwrap()
}

/// A record as read back: key, value bytes and headers.
type ReadRecord = (String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// Reads `topic` with read_committed until `expected` records arrived (to its end when 0).
fn read_all(kafka: &Kafka, topic: &str, expected: usize, wait: Duration) -> Vec<ReadRecord> {
    let mut reader = Reader::new(kafka.bootstrap(), topic);
    if expected == 0 {
        reader.read_to_end(wait);
    } else {
        reader.wait_for(expected, wait);
    }
    reader
        .into_records()
        .into_iter()
        .map(|c| (String::from_utf8_lossy(&c.key).into_owned(), c.value, c.headers))
        .collect()
}

fn header_of<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> &'a str {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| std::str::from_utf8(v).unwrap()).unwrap_or("")
}

#[test]
fn every_bad_class_is_dead_lettered_and_valid_records_pass() {
    let kafka = Kafka::shared();
    let (input, app_id) = (unique("transactions"), unique("dlq-app"));
    kafka.create_topics(&[(&input, 1), (&format!("{input}-valid"), 1)]);
    let reg = Arc::new(EmbeddedRegistry::in_memory());
    let writer = AvroSerde::<TransactionEvent>::new(reg.clone());
    reg.set_level(None, CompatibilityLevel::None).unwrap();
    let amount_as_string =
        variant(&reg, |f| f.iter_mut().filter(|f| f["name"] == "amount").for_each(|f| f["type"] = "string".into()));
    let without_currency = variant(&reg, |f| f.retain(|f| f["name"] != "currency"));
    let good_id = writer.writer_id("transactions").unwrap();
    let good = |i| writer.serialize("transactions", &tx(i)).unwrap();

    let bad: Vec<(&str, Vec<u8>)> = vec![
        (reason::BAD_MAGIC_BYTE, b"not avro at all".to_vec()),
        (reason::BAD_MAGIC_BYTE, {
            let mut b = good(100);
            b[0] = 1;
            b
        }),
        (reason::UNKNOWN_SCHEMA_ID, wire::frame(9999, &good(101)[5..])),
        (reason::AVRO_DECODE, wire::frame(good_id, &[0xff; 7])),
        (reason::SCHEMA_RESOLUTION, wire::frame(amount_as_string, &[0])),
        (reason::MISSING_FIELD, wire::frame(without_currency, &[0])),
        (reason::NEGATIVE_AMOUNT, {
            let t = TransactionEvent { amount: Decimal::new(-500, 2), ..tx(102) };
            writer.serialize("transactions", &t).unwrap()
        }),
        (
            reason::UNKNOWN_CURRENCY,
            writer.serialize("transactions", &TransactionEvent { currency: "XYZ".into(), ..tx(103) }).unwrap(),
        ),
        (reason::TRANSFER_WITHOUT_COUNTERPARTY, {
            let t = TransactionEvent { kind: TransactionKind::Transfer, ..tx(104) };
            writer.serialize("transactions", &t).unwrap()
        }),
    ];
    // Valid records before, between and after the bad ones.
    let p = producer(kafka.bootstrap());
    let mut valid = 0;
    for (i, (_, bytes)) in bad.iter().enumerate() {
        for j in 0..3 {
            produce(&p, &input, "acc", good(i * 3 + j), 1_790_000_000_000);
            valid += 1;
        }
        produce(&p, &input, "acc", bytes, 1_790_000_000_000);
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(10)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &app_id, dir.path());
    let mut app = KafkaStreams::new(topology(reg.clone(), &input), config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    let out = read_all(kafka, &format!("{input}-valid"), valid, Duration::from_secs(60));
    let dlq = read_all(kafka, &format!("{input}-dlq"), bad.len(), Duration::from_secs(60));
    assert_eq!(app.state(), runtime::State::Running, "{:?}", app.error());

    // Every valid record passed, decoded intact.
    let reader = AvroSerde::<TransactionEvent>::new(reg.clone());
    let passed: Vec<TransactionEvent> =
        out.iter().map(|(_, v, _)| reader.deserialize(&format!("{input}-valid"), v).unwrap()).collect();
    assert_eq!(passed, (0..valid).map(tx).collect::<Vec<_>>());
    // Every bad record is in the dead-letter topic, unchanged, with its reason and origin.
    assert_eq!(dlq.len(), bad.len());
    for (i, ((expected_reason, bytes), (key, value, headers))) in bad.iter().zip(&dlq).enumerate() {
        assert_eq!(header_of(headers, header::ERROR_CLASS), *expected_reason, "bad record {i}");
        assert!(!header_of(headers, header::ERROR_MESSAGE).is_empty());
        assert_eq!(header_of(headers, header::SOURCE_TOPIC), input);
        assert_eq!(header_of(headers, header::SOURCE_PARTITION), "0");
        assert_eq!(header_of(headers, header::SOURCE_OFFSET), (i * 4 + 3).to_string());
        assert_eq!((key.as_str(), value), ("acc", bytes));
    }
    let metrics = app.metrics().render();
    for (r, _) in &bad {
        let n = bad.iter().filter(|(x, _)| x == r).count();
        let line = format!("finstream_dead_letters_total{{reason=\"{r}\",topic=\"{input}\"}} {n}");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    app.close().unwrap();
}

/// A registry that is unreachable for its first `failures` id lookups.
struct Flaky {
    inner: Arc<EmbeddedRegistry>,
    failures: AtomicUsize,
}

impl SchemaRegistry for Flaky {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        self.inner.register(subject, schema)
    }
    fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(RegistryError::Transport("connection refused".into()));
        }
        self.inner.schema_by_id(id)
    }
    fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.inner.latest(subject)
    }
}

#[test]
fn registry_outage_is_retried_not_dead_lettered() {
    let kafka = Kafka::shared();
    let (input, app_id) = (unique("transactions"), unique("retry-app"));
    kafka.create_topics(&[(&input, 1), (&format!("{input}-valid"), 1)]);
    let reg = Arc::new(EmbeddedRegistry::in_memory());
    let writer = AvroSerde::<TransactionEvent>::new(reg.clone());
    let p = producer(kafka.bootstrap());
    for i in 0..50 {
        produce(&p, &input, "acc", writer.serialize("transactions", &tx(i)).unwrap(), 1_790_000_000_000);
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(10)).unwrap();
    let flaky = Arc::new(Flaky { inner: reg.clone(), failures: AtomicUsize::new(3) });
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &app_id, dir.path());
    let mut app = KafkaStreams::new(topology(flaky.clone(), &input), config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();
    let out = read_all(kafka, &format!("{input}-valid"), 50, Duration::from_secs(60));
    assert_eq!(app.state(), runtime::State::Running, "{:?}", app.error());
    assert_eq!(out.len(), 50);
    assert_eq!(flaky.failures.load(Ordering::SeqCst), 0, "the outage happened");
    let metrics = app.metrics().render();
    // Records are decoded as they are queued, so the three failed lookups may hit three records
    // of one fetch and cost one rewind, or come one per fetch and cost three.
    let retries: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("finstream_retries_total{reason=\"registry_unavailable\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((1..=3).contains(&retries), "{retries} retries:\n{metrics}");
    assert!(!metrics.contains("finstream_dead_letters_total{"), "nothing dead-lettered:\n{metrics}");
    app.close().unwrap();
    assert!(read_all(kafka, &format!("{input}-dlq"), 0, Duration::from_secs(10)).is_empty());
}

#[test]
fn schemas_topic_keeps_ids_versions_and_config_across_restart() {
    let kafka = Kafka::shared();
    let schemas_topic = unique("_schemas");
    let dir = tempfile::tempdir().unwrap();
    let cfg = testkit::streams_config(kafka.bootstrap(), &unique("registry"), dir.path());
    let store = Arc::new(KafkaSchemaStore::open(&cfg, &schemas_topic).unwrap());
    let first = EmbeddedRegistry::open(store).unwrap();
    let tx_id = first.register("transactions-value", TransactionEvent::contract().json).unwrap();
    let bal_id = first.register("account-balances-value", schemas::BalanceUpdated::contract().json).unwrap();
    first.set_level(Some("transactions-value"), CompatibilityLevel::Full).unwrap();
    drop(first);

    let reopened = EmbeddedRegistry::open(Arc::new(KafkaSchemaStore::open(&cfg, &schemas_topic).unwrap())).unwrap();
    assert_eq!(reopened.register("transactions-value", TransactionEvent::contract().json).unwrap(), tx_id);
    assert_eq!(reopened.schema_by_id(bal_id).unwrap(), schemas::BalanceUpdated::contract().json);
    assert_eq!(reopened.subject_level("transactions-value"), Some(CompatibilityLevel::Full));
    let next = reopened.register("budget-alerts-value", schemas::BudgetAlert::contract().json).unwrap();
    assert!(next > tx_id.max(bal_id), "new ids continue after the restored ones");
}
