//! `finstream reset` against librdkafka's mock cluster: the finance topology runs on generated
//! traffic (at-least-once, so its consumer group commits offsets the ordinary way), stops, and is
//! reset. The mock implements neither DeleteTopics nor DeleteGroups; the test pins down exactly
//! how it refuses them, and that the offsets are rewound to the beginning instead.

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
use runtime::ProcessingGuarantee;
use streams::StreamsMetrics;

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
    let mock = app::embedded_cluster().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = AppConfig::default();
    config.streams.application_id = "reset-test".into();
    config.streams.bootstrap_servers = mock.bootstrap_servers();
    config.streams.state_dir = dir.path().join("state");
    config.streams.processing_guarantee = ProcessingGuarantee::AtLeastOnce;
    config.streams.commit_interval_ms = Some(200);
    config.schema_registry.listen = "127.0.0.1:0".into();
    mock.create_topic(&config.schema_registry.topic, 1, 1).unwrap();
    let registry = registry::start(&config.schema_registry, &config.streams).unwrap();
    let mut streams = app::finance_streams(&config, registry.client.clone(), StreamsMetrics::default()).unwrap();
    let plan = runtime::topics::plan(&config.streams, streams.topology());
    app::create_topics(&mock, &plan, PARTITIONS).unwrap();
    let internal = reset::internal_topics(&config.streams.application_id, streams.topology());
    streams.start().unwrap();

    let mut producer =
        EventProducer::new(&KafkaTarget::new(mock.bootstrap_servers()), registry.client.clone()).unwrap();
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
    // Wait until the group committed every transaction (at-least-once commits the plain way).
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
    // librdkafka's mock cluster has no DeleteTopics and no DeleteGroups handler.
    println!("mock answers: topics {:?}, offsets {:?}", report.topics_failed, report.offsets);
    assert!(report.topics_deleted.is_empty(), "{:?}", report.topics_deleted);
    let failed: BTreeSet<String> = report.topics_failed.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(failed, expected);
    // The mock never answers DeleteTopics: the request times out.
    for (t, e) in &report.topics_failed {
        assert!(e.contains("OperationTimedOut"), "{t}: {e}");
    }
    match &report.offsets {
        OffsetsOutcome::RewoundToEarliest { partitions, delete_groups_error } => {
            assert!(*partitions >= PARTITIONS as usize, "{partitions}");
            // librdkafka refuses DeleteGroups itself: the mock does not advertise the API.
            assert!(delete_groups_error.contains("UnsupportedFeature"), "{delete_groups_error}");
        }
        other => panic!("expected the offsets rewound, got {other:?}"),
    }
    for topic in ["transactions", "budgets"] {
        for o in committed(&config, topic) {
            assert!(matches!(o, Offset::Offset(0) | Offset::Invalid), "{topic}: {o:?} after reset");
        }
    }
    assert!(committed(&config, "transactions").contains(&Offset::Offset(0)));
}
