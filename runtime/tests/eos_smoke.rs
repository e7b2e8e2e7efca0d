mod common;

use std::time::Duration;

use common::*;
use runtime::KafkaStreams;
use streams::examples::sum_topology;
use streams::StreamsMetrics;

#[test]
fn exactly_once_sum_end_to_end() {
    let mock = mock_cluster(&[("in", 4), ("out", 4), ("app-sums-changelog", 4), ("app-commits", 4)]);
    let bs = mock.bootstrap_servers();
    let records = input(5000);
    let p = producer(&bs);
    produce_all(&p, "in", &records);
    let dir = tempfile::tempdir().unwrap();
    let mut app = KafkaStreams::new(
        sum_topology("in", "out").unwrap(),
        config(&bs, "app", dir.path()),
        StreamsMetrics::default(),
    )
    .unwrap();
    app.start().unwrap();
    let out = read_committed(&bs, "out", 4, records.len(), Duration::from_secs(60));
    assert_eq!(app.state(), runtime::State::Running, "{:?}", app.error());
    let (last, seqs) = last_per_key(&out);
    assert_eq!(out.len(), records.len());
    assert_eq!(last, expected_sums(&records));
    for (k, s) in seqs {
        assert_eq!(s, (1..=s.len() as i64).collect::<Vec<_>>(), "key {k}: counts 1..n with no gap or repeat");
    }
    let metrics = app.metrics().render();
    assert!(metrics.contains("finstream_commits_total"), "{metrics}");
    app.close().unwrap();
}
