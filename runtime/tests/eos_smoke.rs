//! The shortest exactly-once run on a real broker: 5000 records through the sum topology, every
//! committed output checked, and the commit metric exported.

use std::time::Duration;

use runtime::KafkaStreams;
use streams::examples::sum_topology;
use streams::StreamsMetrics;
use testkit::sums::{assert_exact, input, produce};
use testkit::{unique, Kafka, Reader};

#[test]
fn exactly_once_sum_end_to_end() {
    let kafka = Kafka::shared();
    let (i, o, app) = (unique("in"), unique("out"), unique("smoke"));
    kafka.create_topics(&[(&i, 4), (&o, 4)]);
    let records = input(5000, 0);
    produce(kafka, &i, &records);
    let dir = tempfile::tempdir().unwrap();
    let config = testkit::streams_config(kafka.bootstrap(), &app, dir.path());
    let mut streams = KafkaStreams::new(sum_topology(&i, &o).unwrap(), config, StreamsMetrics::default()).unwrap();
    streams.start().unwrap();
    let mut reader = Reader::new(kafka.bootstrap(), &o);
    reader.wait_for(records.len(), Duration::from_secs(120));
    assert_eq!(streams.state(), runtime::State::Running, "{:?}", streams.error());
    assert_exact(reader.read_to_end(Duration::from_secs(30)), &records);
    let metrics = streams.metrics().render();
    assert!(metrics.contains("finstream_commits_total"), "{metrics}");
    streams.close().unwrap();
    assert!(kafka.pending_transactions(&o).is_empty());
}
