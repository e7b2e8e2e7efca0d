//! Issue 4 end to end: the generator's e2e preset (≥ 200 users, ≥ 20k transactions with
//! duplicates, late events, transfers, foreign currencies, budgets and goals) through the finance
//! topology, compared with the independent reference model to the last minor unit.
//!
//! - `driver_agrees_with_reference`: the in-memory test driver (fast; pins the rules);
//! - `kafka_exactly_once_agrees_with_reference`: the real thing: Avro in the Confluent wire
//!   format through the registry, Apache Kafka (a private broker: the topology uses the default
//!   topic names), two stream threads, exactly-once; then the committed stores and what a `read_committed` consumer sees
//!   on the derived topics.

mod money;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use finstream::{app, registry};
use money::{Actual, Input, Raw};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use streams::StreamsMetrics;
use testkit::Kafka;

const SEED: u64 = 20_261_122;
const APP: &str = "finance";

fn check_size(input: &Input) {
    assert!(input.transactions() >= 20_000, "{} transactions", input.transactions());
    assert!(input.users() >= 200, "{} users", input.users());
    // The comparison covers something of every kind.
    let e = &input.expected;
    eprintln!(
        "expected: {} accounts, {} budget periods, {} alerts, {} goals, {} notifications, {} spending windows, \
         {} cash-flow months, duplicates {:?}",
        e.accounts.len(),
        e.budgets.len(),
        e.alert_ids().len(),
        e.goals.len(),
        e.notifications.len(),
        e.spending_daily.len(),
        e.cash_flow.len(),
        e.duplicates
    );
    assert!(e.alert_ids().len() > 100 && e.goals.len() > 100 && e.spending_daily.len() > 1000);
    assert!(e.duplicates.balances > 100 && !e.cash_flow.is_empty());
}

fn assert_agrees(actual: &Actual, input: &Input) {
    let diffs = money::differences(actual, input);
    assert!(diffs.is_empty(), "{} differences from the reference:\n{}", diffs.len(), diffs.join("\n"));
}

#[test]
fn driver_agrees_with_reference() {
    let t0 = Instant::now();
    let input = money::input(SEED);
    check_size(&input);
    eprintln!("generated and computed the reference in {:?}", t0.elapsed());
    let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
    let d = money::drive(&registry, &input);
    eprintln!("driver done at {:?}", t0.elapsed());
    let actual = Actual::read(&registry, APP, Some(d.metrics()), |s| d.store_raw(s), |t| money::raw(d.read_raw(t)));
    assert_agrees(&actual, &input);
}

/// Counts of what the test produced and what the instance processed, from its metrics.
struct Progress<'a> {
    metrics: &'a StreamsMetrics,
    produced: HashMap<&'static str, u64>,
    repartitions: Vec<(String, String)>,
}

impl Progress<'_> {
    fn processed(&self, node: &str) -> u64 {
        self.metrics.records_processed.with_label_values(&[node]).get()
    }

    /// Every produced input record and every record written to a repartition topic has been
    /// processed by its task.
    fn caught_up(&self) -> bool {
        let inputs = [
            ("accounts", "accounts-source"),
            ("transactions", "transactions-source"),
            ("budgets", "budgets-source"),
            ("financial-goals", "goals-source"),
        ];
        inputs.iter().all(|(t, node)| self.processed(node) >= self.produced.get(t).copied().unwrap_or(0))
            && self.repartitions.iter().all(|(node, topic)| {
                self.processed(node) >= self.metrics.records_produced.with_label_values(&[topic]).get()
            })
    }

    /// Waits until caught up (seen twice, so outputs being sent are counted).
    fn wait(&self, app: &runtime::KafkaStreams, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut streak = 0;
        while streak < 2 {
            assert!(app.error().is_none(), "stream thread failed: {:?}", app.error());
            assert!(Instant::now() < deadline, "pipeline did not catch up within {timeout:?}");
            streak = if self.caught_up() { streak + 1 } else { 0 };
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until no commit happened for `quiet`: every processed record is committed.
    fn wait_committed(&self, quiet: Duration, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (mut last, mut since) = (self.metrics.commits.get(), Instant::now());
        while since.elapsed() < quiet {
            assert!(Instant::now() < deadline, "commits did not settle");
            std::thread::sleep(Duration::from_millis(20));
            let now = self.metrics.commits.get();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
    }
}

/// Every record of `topic` a `read_committed` consumer sees.
fn read_topic(bootstrap: &str, topic: &str) -> Vec<Raw> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("money-e2e-reader-{topic}"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = md.topics()[0].partitions().len();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let (mut out, mut eof) = (Vec::new(), std::collections::HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while eof.len() < partitions {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

#[test]
fn kafka_exactly_once_agrees_with_reference() {
    let t0 = Instant::now();
    let input = money::input(SEED);
    check_size(&input);

    let kafka = Kafka::cluster(1);
    let bootstrap = kafka.bootstrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut config = money::kafka::app_config(&bootstrap, APP, &dir.path().join("state"));
    config.streams.commit_interval_ms = Some(50);
    let registry = registry::start(&config.schema_registry, &config.streams).unwrap();
    let metrics = StreamsMetrics::default();
    let mut app = app::finance_streams(&config, registry.client.clone(), metrics.clone()).unwrap();
    runtime::topics::create_planned(&config.streams, &runtime::topics::plan(&config.streams, app.topology()), 4)
        .unwrap();
    app.start().unwrap();

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "2")
        .create()
        .unwrap();
    let mut progress = Progress {
        metrics: &metrics,
        produced: HashMap::new(),
        repartitions: ["transfer-credits", "transactions-by-user", "transfers-in-by-user"]
            .iter()
            .map(|r| (r.to_string(), format!("{APP}-{r}-repartition")))
            .collect(),
    };
    let batches = input.batches();
    for (i, batch) in batches.iter().enumerate() {
        if i % 50 == 0 {
            eprintln!("batch {i}/{} at {:?}", batches.len(), t0.elapsed());
        }
        for ev in batch {
            let value = money::encode(&registry.client, ev);
            let record = BaseRecord::to(ev.topic()).key(ev.key()).payload(&value).timestamp(ev.timestamp().0);
            let mut record = record;
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((
                        rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        r,
                    )) => {
                        producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                    Err((e, _)) => panic!("producing: {e}"),
                }
            }
            *progress.produced.entry(ev.topic()).or_default() += 1;
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        progress.wait(&app, Duration::from_secs(120));
    }
    progress.wait_committed(Duration::from_millis(500), Duration::from_secs(60));
    eprintln!("{} batches processed in {:?}", batches.len(), t0.elapsed());

    let actual = Actual::read(
        &registry.client,
        APP,
        Some(&metrics),
        |s| app.scan_local(s, None).unwrap(),
        |t| read_topic(&bootstrap, t),
    );
    assert_agrees(&actual, &input);
    assert_eq!(metrics.aborts.get(), 0, "no transaction aborted in a healthy run");
    app.close().unwrap();
    eprintln!("done in {:?}", t0.elapsed());
}
