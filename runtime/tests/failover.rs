//! Exactly-once across broker failover and operator switches, on a real broker: on a 3-node
//! cluster (replication factor 3, min.insync.replicas 2) the leaders of the changelog, output and
//! `__transaction_state` partitions are killed during processing and during a restore; the
//! application switches from at-least-once to exactly-once and loses a changelog topic; the
//! KIP-848 `consumer` rebalance protocol splits the work between two instances; repartition
//! topics are purged and changelogs are compacted.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use runtime::{KafkaStreams, ProcessingGuarantee};
use streams::examples::{regroup_topology, sum_topology, Sum};
use streams::StreamsMetrics;
use testkit::sums::{assert_exact, expected, input, produce};
use testkit::{unique, wait_until, Kafka, Reader, Signal};

const PARTITIONS: i32 = 4;

fn store(app: &KafkaStreams, name: &str) -> BTreeMap<String, Sum> {
    app.scan_local(name, None)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), serde_json::from_slice(&v).unwrap()))
        .collect()
}

fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn start(kafka: &Kafka, app: &str, dir: &std::path::Path, i: &str, o: &str) -> KafkaStreams {
    logs();
    let config = testkit::streams_config(kafka.bootstrap(), app, dir);
    let mut s = KafkaStreams::new(sum_topology(i, o).unwrap(), config, StreamsMetrics::default()).unwrap();
    s.start().unwrap();
    s
}

/// Kills the node leading `topic`[0] (waiting until a new leader is elected), restarts it later.
fn kill_leader(kafka: &Kafka, topic: &str) -> usize {
    let leader = kafka.leader_of(topic, 0).expect("a leader") as usize;
    kafka.kill_node(leader, Signal::Kill);
    assert!(
        wait_until(Duration::from_secs(30), || kafka.leader_of(topic, 0).is_some_and(|l| l as usize != leader)),
        "{topic}[0] got a new leader"
    );
    leader
}

#[test]
fn leaders_killed_during_processing_and_restore_lose_and_double_nothing() {
    let kafka = Kafka::cluster(3);
    let (i, o, app) = (unique("in"), unique("out"), unique("failover"));
    kafka.create_topics(&[(&i, PARTITIONS), (&o, PARTITIONS)]);
    let first = input(15_000, 0);
    produce(&kafka, &i, &first);
    let dir = tempfile::tempdir().unwrap();
    let streams = start(&kafka, &app, dir.path(), &i, &o);
    // Progress is read from the committed store (a reader of the output would meet the dead
    // broker too).
    let applied = |s: &KafkaStreams| store(s, "sums").values().map(|v| v.count as usize).sum::<usize>();
    assert!(wait_until(Duration::from_secs(120), || applied(&streams) >= 3_000), "processing started");
    // During processing: the leader of the changelog, then of the transaction log.
    let changelog = format!("{app}-sums-changelog");
    let down = kill_leader(&kafka, &changelog);
    assert!(wait_until(Duration::from_secs(120), || applied(&streams) >= 6_000), "progress with a node down");
    kafka.restart_node(down);
    let down = kill_leader(&kafka, "__transaction_state");
    assert!(
        wait_until(Duration::from_secs(180), || applied(&streams) >= first.len()),
        "progress with the transaction coordinator moved"
    );
    kafka.restart_node(down);
    assert!(streams.error().is_none(), "{:?}", streams.error());
    streams.close().unwrap();
    // During restore: the state directory is gone, so the store is read back from its changelog
    // while that changelog's leader dies.
    drop(dir);
    let dir = tempfile::tempdir().unwrap();
    let second = input(5_000, 15_000);
    produce(&kafka, &i, &second);
    let streams = start(&kafka, &app, dir.path(), &i, &o);
    std::thread::sleep(Duration::from_millis(300));
    let down = kill_leader(&kafka, &changelog);
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert!(wait_until(Duration::from_secs(180), || store(&streams, "sums") == expected(&all)), "store exact");
    kafka.restart_node(down);
    assert!(
        wait_until(Duration::from_secs(60), || kafka.pending_transactions(&o).is_empty()),
        "transactions left open on {o}: partitions {:?}",
        kafka.pending_transactions(&o)
    );
    // Nothing is pending any more: the end is the end.
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    assert_exact(reader.read_to_end(Duration::from_secs(60)), &all);
    streams.close().unwrap();
    assert!(kafka.pending_transactions(&o).is_empty());
}

#[test]
fn at_least_once_then_exactly_once_then_a_lost_changelog_keep_every_key() {
    let kafka = Kafka::shared();
    let (i, o, app) = (unique("in"), unique("out"), unique("switch"));
    kafka.create_topics(&[(&i, PARTITIONS), (&o, PARTITIONS)]);
    let dir = tempfile::tempdir().unwrap();
    let run = |records: &[(String, i64, i64)], guarantee: ProcessingGuarantee, all: &[(String, i64, i64)]| {
        produce(kafka, &i, records);
        let mut config = testkit::streams_config(kafka.bootstrap(), &app, dir.path());
        config.processing_guarantee = guarantee;
        config.commit_interval_ms = Some(100);
        let mut s = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config, StreamsMetrics::default()).unwrap();
        s.start().unwrap();
        assert!(
            wait_until(Duration::from_secs(120), || store(&s, "sums") == expected(all)),
            "{guarantee:?}: store reaches the expected sums"
        );
        s.close().unwrap();
    };
    let a = input(4_000, 0);
    run(&a, ProcessingGuarantee::AtLeastOnce, &a);
    let b = input(4_000, 4_000);
    let ab: Vec<_> = a.iter().chain(&b).cloned().collect();
    run(&b, ProcessingGuarantee::ExactlyOnceV2, &ab);
    // The changelog is deleted (an operator's mistake): the local store keeps every key and
    // writes them to the recreated changelog.
    kafka.delete_topics(&[&format!("{app}-sums-changelog")]);
    let c = input(4_000, 8_000);
    let abc: Vec<_> = ab.iter().chain(&c).cloned().collect();
    run(&c, ProcessingGuarantee::ExactlyOnceV2, &abc);
    // And that changelog alone restores the store.
    let fresh = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &app, fresh.path());
    let mut s = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config, StreamsMetrics::default()).unwrap();
    s.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || s.is_ready()), "restored");
    assert_eq!(store(&s, "sums"), expected(&abc), "restored from the re-seeded changelog");
    s.close().unwrap();
    let out = testkit::read_committed(kafka.bootstrap(), &o);
    let mut last: BTreeMap<String, Sum> = BTreeMap::new();
    for c in &out {
        last.insert(c.key_str().to_string(), serde_json::from_slice(&c.value).unwrap());
    }
    assert_eq!(last, expected(&abc), "the last output of every key is its final sum");
}

#[test]
fn the_consumer_rebalance_protocol_splits_work_and_stays_exact() {
    let kafka = Kafka::shared();
    let (i, o, app) = (unique("in"), unique("out"), unique("kip848"));
    kafka.create_topics(&[(&i, PARTITIONS), (&o, PARTITIONS)]);
    let records = input(10_000, 0);
    produce(kafka, &i, &records);
    let config = |dir: &std::path::Path| {
        let mut c = testkit::streams_config(kafka.bootstrap(), &app, dir);
        // The consumer protocol takes its timeouts from the broker.
        c.kafka.retain(|k, _| k == "max.poll.interval.ms");
        c.kafka.insert("group.protocol".into(), "consumer".into());
        c
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config(da.path()), StreamsMetrics::default()).unwrap();
    let mut b = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config(db.path()), StreamsMetrics::default()).unwrap();
    a.start().unwrap();
    b.start().unwrap();
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(records.len(), Duration::from_secs(120));
    assert!(
        wait_until(Duration::from_secs(60), || !a.local_partitions("sums").is_empty()
            && !b.local_partitions("sums").is_empty()),
        "both instances got tasks: {:?} {:?}",
        a.local_partitions("sums"),
        b.local_partitions("sums")
    );
    assert!(a.error().is_none() && b.error().is_none(), "{:?} {:?}", a.error(), b.error());
    std::thread::sleep(Duration::from_secs(2));
    assert_exact(reader.read_to_end(Duration::from_secs(30)), &records);
    a.close().unwrap();
    b.close().unwrap();
}

#[test]
fn repartition_topics_are_purged_and_changelogs_compacted() {
    let kafka = Kafka::shared();
    let (i, f, o, app) = (unique("in"), unique("factors"), unique("out"), unique("purge"));
    kafka.create_topics(&[(&i, PARTITIONS), (&o, PARTITIONS)]);
    kafka.create_compacted(&[(&f, 1)]);
    let records = input(5_000, 0);
    produce(kafka, &i, &records);
    let dir = tempfile::tempdir().unwrap();
    let mut config = testkit::streams_config(kafka.bootstrap(), &app, dir.path());
    config.repartition_purge_interval_ms = 200;
    let mut s = KafkaStreams::new(regroup_topology(&i, &f, &o).unwrap(), config, StreamsMetrics::default()).unwrap();
    s.start().unwrap();
    let repartition = format!("{app}-by-group-repartition");
    assert!(
        wait_until(Duration::from_secs(90), || (0..PARTITIONS).any(|p| kafka.watermarks(&repartition, p).0 > 0)),
        "records of {repartition} before the committed offsets are deleted"
    );
    s.close().unwrap();
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create().unwrap();
    let changelog = format!("{app}-group-sums-changelog");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let configs =
        rt.block_on(admin.describe_configs([&ResourceSpecifier::Topic(&changelog)], &AdminOptions::new())).unwrap();
    let resource = configs.into_iter().next().unwrap().unwrap();
    let policy = resource.get("cleanup.policy").and_then(|e| e.value.clone());
    assert_eq!(policy.as_deref(), Some("compact"), "{changelog} is compacted");
}
