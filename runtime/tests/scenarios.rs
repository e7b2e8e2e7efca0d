//! On a real broker: a rebalance moves state between two instances, a lost state directory is
//! rebuilt from its changelog, and a repartitioned aggregation joins a global table.

use std::collections::BTreeMap;
use std::time::Duration;

use runtime::KafkaStreams;
use streams::examples::{regroup_topology, sum_topology, Sum};
use streams::StreamsMetrics;
use testkit::sums::{assert_exact, expected, input, produce};
use testkit::{unique, wait_until, Kafka, Reader};

fn start(kafka: &Kafka, topology: streams::Topology, app: &str, dir: &std::path::Path) -> KafkaStreams {
    let config = testkit::streams_config(kafka.bootstrap(), app, dir);
    let mut s = KafkaStreams::new(topology, config, StreamsMetrics::default()).unwrap();
    s.start().unwrap();
    s
}

fn decode_store(entries: Vec<(Vec<u8>, Vec<u8>)>) -> BTreeMap<String, Sum> {
    entries.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), serde_json::from_slice(&v).unwrap())).collect()
}

fn total_count(app: &KafkaStreams, store: &str) -> i64 {
    decode_store(app.scan_local(store, None).unwrap()).values().map(|s| s.count).sum()
}

#[test]
fn rebalance_moves_state_and_results_stay_exact() {
    let kafka = Kafka::shared();
    let (i, o, app) = (unique("in"), unique("out"), unique("rebalance"));
    kafka.create_topics(&[(&i, 4), (&o, 4)]);
    let records = input(20_000, 0);
    let (first, second) = records.split_at(10_000);
    produce(kafka, &i, first);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(kafka, sum_topology(&i, &o).unwrap(), &app, d1.path());
    let b = start(kafka, sum_topology(&i, &o).unwrap(), &app, d2.path());
    // Both instances own some partitions once the group has settled.
    assert!(
        wait_until(Duration::from_secs(60), || !a.local_partitions("sums").is_empty()
            && !b.local_partitions("sums").is_empty()
            && total_count(&a, "sums") + total_count(&b, "sums") == 10_000),
        "work was not shared: a={:?} b={:?}",
        a.local_partitions("sums"),
        b.local_partitions("sums")
    );
    // One instance leaves; the survivor takes over its partitions and restores their state.
    b.close().unwrap();
    produce(kafka, &i, second);
    assert!(
        wait_until(Duration::from_secs(90), || a.local_partitions("sums").len() == 4
            && total_count(&a, "sums") == 20_000),
        "survivor did not take over: {:?}, count {}",
        a.local_partitions("sums"),
        total_count(&a, "sums")
    );
    assert_eq!(decode_store(a.scan_local("sums", None).unwrap()), expected(&records));
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    assert_exact(reader.wait_for(records.len(), Duration::from_secs(60)), &records);
    a.close().unwrap();
}

#[test]
fn lost_state_directory_is_rebuilt_from_changelog() {
    let kafka = Kafka::shared();
    let (i, o, id) = (unique("in"), unique("out"), unique("restore"));
    kafka.create_topics(&[(&i, 4), (&o, 4)]);
    let records = input(8_000, 0);
    produce(kafka, &i, &records);
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let app = start(kafka, sum_topology(&i, &o).unwrap(), &id, dir.path());
        assert!(wait_until(Duration::from_secs(60), || total_count(&app, "sums") == 8_000));
        let before = app.scan_local("sums", None).unwrap();
        app.close().unwrap();
        before
    };
    std::fs::remove_dir_all(dir.path().join(&id)).unwrap();
    let metrics = StreamsMetrics::default();
    let config = testkit::streams_config(kafka.bootstrap(), &id, dir.path());
    let mut app = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config, metrics.clone()).unwrap();
    app.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || app.is_ready() && app.local_partitions("sums").len() == 4));
    assert_eq!(app.scan_local("sums", None).unwrap(), before, "rebuilt stores equal the stores before");
    assert_eq!(decode_store(before), expected(&records));
    let restored: u64 = metrics.restored_records.with_label_values(&["sums"]).get();
    assert!(restored > 0, "state came from the changelog");
    app.close().unwrap();
}

#[test]
fn repartition_and_global_table() {
    let kafka = Kafka::shared();
    let (i, factors, o, id) = (unique("in"), unique("factors"), unique("out"), unique("regroup"));
    kafka.create_topics(&[(&i, 4), (&factors, 2), (&o, 4)]);
    let p = testkit::producer(kafka.bootstrap());
    testkit::produce_all(&p, &factors, [("b", 10i64.to_be_bytes(), 0), ("c", 3i64.to_be_bytes(), 0)]);
    // Keys `<group>-<n>`: the topology regroups by the part before the dash.
    let records: Vec<(String, i64, i64)> = (0..6_000)
        .map(|i| {
            (
                format!("{}-{}", ["a", "b", "c", "d"][i % 4], (i * 7) % 101),
                (i % 13) as i64,
                1_700_000_000_000 + i as i64,
            )
        })
        .collect();
    produce(kafka, &i, &records);
    let dir = tempfile::tempdir().unwrap();
    let app = start(kafka, regroup_topology(&i, &factors, &o).unwrap(), &id, dir.path());
    assert_eq!(app.topology().subtopologies.len(), 2);
    let mut expected = BTreeMap::<String, Sum>::new();
    for (k, v, _) in &records {
        let g = k.split('-').next().unwrap().to_string();
        let f = match g.as_str() {
            "b" => 10,
            "c" => 3,
            _ => 1,
        };
        let s = expected.entry(g).or_default();
        s.count += 1;
        s.total += v * f;
    }
    assert!(
        wait_until(Duration::from_secs(60), || decode_store(app.scan_local("group-sums", None).unwrap()) == expected),
        "group sums: {:?}",
        decode_store(app.scan_local("group-sums", None).unwrap())
    );
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    let out = reader.wait_for(records.len(), Duration::from_secs(60));
    assert_eq!(out.len(), records.len());
    let last: BTreeMap<String, Sum> =
        testkit::sums::sequences(out).into_iter().map(|(k, seq)| (k, *seq.last().unwrap())).collect();
    assert_eq!(last, expected);
    app.close().unwrap();
}
