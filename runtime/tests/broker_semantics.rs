//! Characterization of the test broker (librdkafka's mock cluster) against the three things
//! Kafka exactly-once relies on. On Apache Kafka all three hold. The mock in librdkafka 2.12
//! implements the transactional *protocol* (InitProducerId, AddPartitions, EndTxn succeed) but
//! not its *semantics*: Fetch always answers `LastStableOffset = HighWatermark` with no aborted
//! transactions, and TxnOffsetCommit parses the offsets and drops them. These tests pin that
//! down, so (1) nobody mistakes a green EOS test on the mock for proof, and (2) the day a
//! librdkafka upgrade fixes the mock, these fail and the crash test can move onto it.
//! Run them against a real broker with FINSTREAM_TEST_BOOTSTRAP=host:port to see them hold.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The broker under test: FINSTREAM_TEST_BOOTSTRAP (a real Kafka, topics pre-created) or a mock.
fn broker(topics: &[(&str, i32)]) -> (Option<Mock>, String, bool) {
    match std::env::var("FINSTREAM_TEST_BOOTSTRAP") {
        Ok(bs) => (None, bs, true),
        Err(_) => {
            let mock = mock_cluster(topics);
            let bs = mock.bootstrap_servers();
            (Some(mock), bs, false)
        }
    }
}

fn txn_producer(bs: &str, id: &str) -> BaseProducer {
    let p: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bs).set("transactional.id", id).create().unwrap();
    p.init_transactions(Duration::from_secs(10)).unwrap();
    p
}

#[test]
fn aborted_transaction_visibility_to_read_committed() {
    let (_mock, bs, real) = broker(&[("t", 1)]);
    let p = txn_producer(&bs, "x");
    p.begin_transaction().unwrap();
    for i in 0..10 {
        p.send(BaseRecord::to("t").key("k").payload(&format!("aborted-{i}"))).unwrap();
    }
    p.flush(Duration::from_secs(5)).unwrap();
    p.abort_transaction(Duration::from_secs(5)).unwrap();
    p.begin_transaction().unwrap();
    commit_one_and_check_visibility(&p, &bs, real);
}

#[test]
fn fenced_transaction_visibility_to_read_committed() {
    let (_mock, bs, real) = broker(&[("t", 1)]);
    let old = txn_producer(&bs, "y");
    old.begin_transaction().unwrap();
    for i in 0..10 {
        old.send(BaseRecord::to("t").key("k").payload(&format!("zombie-{i}"))).unwrap();
    }
    old.flush(Duration::from_secs(5)).unwrap();
    std::mem::forget(old); // like a SIGKILLed process: no abort, no close
    let new = txn_producer(&bs, "y");
    new.begin_transaction().unwrap();
    commit_one_and_check_visibility(&new, &bs, real);
}

/// Commits one record in the open transaction of `p`, then checks what read_committed sees
/// after the 10 uncommitted records written before it.
fn commit_one_and_check_visibility(p: &BaseProducer, bs: &str, real: bool) {
    p.send(BaseRecord::to("t").key("k").payload("committed")).unwrap();
    p.commit_transaction(Duration::from_secs(5)).unwrap();
    let out = read_committed(bs, "t", 1, 1, Duration::from_secs(5));
    let values: Vec<String> = out.iter().map(|(_, _, v)| String::from_utf8(v.clone()).unwrap()).collect();
    if real {
        assert_eq!(values, vec!["committed".to_string()]);
    } else {
        assert_eq!(values.len(), 11, "the mock shows uncommitted records to read_committed readers: {values:?}");
    }
}

#[test]
fn transactional_offset_commit_reaches_the_group() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let (_mock, bs, real) = broker(&[("t", 1)]);
    let p = producer(&bs);
    for i in 0..5 {
        produce(&p, "t", "k", format!("{i}").as_bytes(), 0);
    }
    p.flush(Duration::from_secs(5)).unwrap();
    let group = |id: &str| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", id)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    };
    let c = group("g");
    c.subscribe(&["t"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.assignment().unwrap().count() == 0 && std::time::Instant::now() < deadline {
        c.poll(Duration::from_millis(100));
    }
    let txp = txn_producer(&bs, "z");
    txp.begin_transaction().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 0, Offset::Offset(3)).unwrap();
    txp.send_offsets_to_transaction(&tpl, &c.group_metadata().unwrap(), Duration::from_secs(5)).unwrap();
    txp.commit_transaction(Duration::from_secs(5)).unwrap();
    let mut q = TopicPartitionList::new();
    q.add_partition("t", 0);
    let committed = group("g").committed_offsets(q, Duration::from_secs(5)).unwrap();
    let expected = if real { Offset::Offset(3) } else { Offset::Invalid };
    assert_eq!(committed.elements()[0].offset(), expected, "the mock drops TxnOffsetCommit");
}
