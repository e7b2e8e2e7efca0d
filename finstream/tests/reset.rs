//! `finstream reset` on Apache Kafka (a private broker: the finance topology uses the default
//! topic names): the finance topology runs on generated traffic, stops, and is reset; its state
//! directory, internal topics and consumer group are gone afterwards while the input topics stay.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use connectors::{EventProducer, GenerateOptions, GeneratorConfig, KafkaTarget};
use finstream::config::AppConfig;
use finstream::reset::{self, OffsetsOutcome};
use finstream::{app, registry};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use streams::StreamsMetrics;
use testkit::Kafka;

const PARTITIONS: i32 = 2;

fn committed(config: &AppConfig, topic: &str) -> Vec<Offset> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.streams.bootstrap_servers)
        .set("group.id", &config.streams.application_id)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let c = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    c.elements().iter().map(|e| e.offset()).collect()
}

#[test]
fn reset_deletes_state_and_rewinds_offsets_and_reports_what_the_broker_refused() {
    let kafka = Kafka::cluster(1);
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig {
        streams: testkit::streams_config(kafka.bootstrap(), "reset-test", &dir.path().join("state")),
        ..Default::default()
    };
    config.streams.commit_interval_ms = Some(200);
    config.schema_registry.listen = "127.0.0.1:0".into();
    let registry = registry::start(&config.schema_registry, &config.streams).unwrap();
    let mut streams = app::finance_streams(&config, registry.client.clone(), StreamsMetrics::default()).unwrap();
    let plan = runtime::topics::plan(&config.streams, streams.topology());
    runtime::topics::create_planned(&config.streams, &plan, PARTITIONS).unwrap();
    let internal = reset::internal_topics(&config.streams.application_id, streams.topology());
    streams.start().unwrap();

    let mut producer =
        EventProducer::new(&KafkaTarget::new(kafka.bootstrap().to_string()), registry.client.clone()).unwrap();
    let opts = GenerateOptions {
        generator: GeneratorConfig { users: 5, days: 3, ..GeneratorConfig::default() },
        rate: None,
        count: None,
        endless: false,
        labels_path: None,
        progress: false,
    };
    let summary = connectors::generate(&opts, &mut producer, &AtomicBool::new(false)).unwrap();
    let transactions = summary.by_topic["transactions"] as i64;
    // Wait until the group committed every transaction (in its transactions).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let sum: i64 = committed(&config, "transactions").iter().map(|o| o.to_raw().unwrap_or(0).max(0)).sum();
        if sum >= transactions {
            break;
        }
        assert!(Instant::now() < deadline, "only {sum} of {transactions} transactions committed");
        assert!(streams.error().is_none(), "{:?}", streams.error());
        std::thread::sleep(Duration::from_millis(200));
    }
    streams.close().unwrap();

    let rp = reset::plan(&config).unwrap();
    let expected: BTreeSet<String> = plan.iter().map(|t| t.name.clone()).filter(|t| internal.contains(t)).collect();
    assert!(!expected.is_empty());
    assert_eq!(rp.internal_topics.iter().cloned().collect::<BTreeSet<_>>(), expected, "the existing internal topics");
    assert!(rp.internal_topics.iter().all(|t| t.starts_with("reset-test-")), "{:?}", rp.internal_topics);
    for input in ["transactions", "budgets", "financial-goals"] {
        assert!(rp.input_topics.contains(&input.to_string()), "{:?}", rp.input_topics);
    }
    assert!(!rp.input_topics.iter().any(|t| internal.contains(t)));
    assert_eq!(rp.group, "reset-test");
    assert!(rp.state_dir.exists(), "planning deletes nothing");

    let report = reset::execute(&config, &rp).unwrap();
    assert!(report.state_deleted);
    assert!(!rp.state_dir.exists());
    assert!(report.topics_failed.is_empty(), "{:?}", report.topics_failed);
    assert_eq!(report.topics_deleted.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(report.offsets, OffsetsOutcome::GroupDeleted);
    assert!(
        testkit::wait_until(Duration::from_secs(30), || {
            let left = kafka.topics();
            expected.iter().all(|t| !left.contains_key(t))
        }),
        "the internal topics are gone: {:?}",
        kafka.topics().keys().filter(|t| expected.contains(*t)).collect::<Vec<_>>()
    );
    for input in ["transactions", "budgets", "financial-goals"] {
        assert!(kafka.topics().contains_key(input), "input {input} kept");
    }
    for topic in ["transactions", "budgets"] {
        for o in committed(&config, topic) {
            assert_eq!(o, Offset::Invalid, "{topic}: no committed offset after the reset");
        }
    }
}
