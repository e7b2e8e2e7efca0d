//! (b) rebalance, (c) restore from changelog after losing the state directory, and
//! (d) repartition + global table, all against the mock cluster.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use runtime::KafkaStreams;
use streams::examples::{regroup_topology, sum_topology, Sum};
use streams::StreamsMetrics;

fn decode_store(entries: Vec<(Vec<u8>, Vec<u8>)>) -> BTreeMap<String, Sum> {
    entries.into_iter().map(|(k, v)| (String::from_utf8(k).unwrap(), serde_json::from_slice(&v).unwrap())).collect()
}

fn total_count(app: &KafkaStreams, store: &str) -> i64 {
    decode_store(app.scan_local(store, None).unwrap()).values().map(|s| s.count).sum()
}

#[test]
fn rebalance_moves_state_and_results_stay_exact() {
    let mock = mock_cluster(&[("in", 4), ("out", 4), ("rb-sums-changelog", 4), ("rb-commits", 4)]);
    let bs = mock.bootstrap_servers();
    let records = input(20_000);
    let p = producer(&bs);
    let (first, second) = records.split_at(10_000);
    produce_all(&p, "in", first);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a =
        KafkaStreams::new(sum_topology("in", "out").unwrap(), config(&bs, "rb", d1.path()), StreamsMetrics::default())
            .unwrap();
    let mut b =
        KafkaStreams::new(sum_topology("in", "out").unwrap(), config(&bs, "rb", d2.path()), StreamsMetrics::default())
            .unwrap();
    a.start().unwrap();
    b.start().unwrap();
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
    produce_all(&p, "in", second);
    assert!(
        wait_until(Duration::from_secs(90), || a.local_partitions("sums").len() == 4
            && total_count(&a, "sums") == 20_000),
        "survivor did not take over: {:?}, count {}",
        a.local_partitions("sums"),
        total_count(&a, "sums")
    );
    assert_eq!(decode_store(a.scan_local("sums", None).unwrap()), expected_sums(&records));
    let out = read_committed(&bs, "out", 4, records.len(), Duration::from_secs(30));
    let (last, seqs) = last_per_key(&out);
    assert_eq!(out.len(), records.len());
    assert_eq!(last, expected_sums(&records));
    for (k, s) in seqs {
        assert_eq!(s, (1..=s.len() as i64).collect::<Vec<_>>(), "key {k}");
    }
    a.close().unwrap();
}

#[test]
fn lost_state_directory_is_rebuilt_from_changelog() {
    let mock = mock_cluster(&[("in", 4), ("out", 4), ("rs-sums-changelog", 4), ("rs-commits", 4)]);
    let bs = mock.bootstrap_servers();
    let records = input(8_000);
    let p = producer(&bs);
    produce_all(&p, "in", &records);
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let mut app = KafkaStreams::new(
            sum_topology("in", "out").unwrap(),
            config(&bs, "rs", dir.path()),
            StreamsMetrics::default(),
        )
        .unwrap();
        app.start().unwrap();
        assert!(wait_until(Duration::from_secs(60), || total_count(&app, "sums") == 8_000));
        let before = app.scan_local("sums", None).unwrap();
        app.close().unwrap();
        before
    };
    std::fs::remove_dir_all(dir.path().join("rs")).unwrap();
    let metrics = StreamsMetrics::default();
    let mut app =
        KafkaStreams::new(sum_topology("in", "out").unwrap(), config(&bs, "rs", dir.path()), metrics.clone()).unwrap();
    app.start().unwrap();
    assert!(wait_until(Duration::from_secs(60), || app.is_ready() && app.local_partitions("sums").len() == 4));
    assert_eq!(app.scan_local("sums", None).unwrap(), before, "rebuilt stores equal the stores before");
    assert_eq!(decode_store(before), expected_sums(&records));
    let restored: u64 = metrics.restored_records.with_label_values(&["sums"]).get();
    assert!(restored > 0, "state came from the changelog");
    app.close().unwrap();
}

#[test]
fn repartition_and_global_table() {
    let mock = mock_cluster(&[
        ("in", 4),
        ("factors", 2),
        ("out", 4),
        ("rg-by-group-repartition", 4),
        ("rg-group-sums-changelog", 4),
    ]);
    let bs = mock.bootstrap_servers();
    let p = producer(&bs);
    produce(&p, "factors", "b", &10i64.to_be_bytes(), 0);
    produce(&p, "factors", "c", &3i64.to_be_bytes(), 0);
    let records = input(6_000);
    produce_all(&p, "in", &records);
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(
        regroup_topology("in", "factors", "out").unwrap(),
        config(&bs, "rg", dir.path()),
        StreamsMetrics::default(),
    )
    .unwrap();
    assert_eq!(app.topology().subtopologies.len(), 2);
    app.start().unwrap();
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
    let out = read_committed(&bs, "out", 4, records.len(), Duration::from_secs(30));
    assert_eq!(out.len(), records.len());
    assert_eq!(last_per_key(&out).0, expected);
    app.close().unwrap();
}
