//! The kit itself on a real broker: the reader's notion of "the end" (high watermark, waiting for
//! open transactions, never showing aborted records), topic administration, a private 3-node
//! cluster losing and regaining a partition leader, and child processes taking signals.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use testkit::process::{child_role, Child};
use testkit::{unique, wait_until, Kafka, Reader, Signal};

fn txn_producer(kafka: &Kafka) -> BaseProducer {
    let p: BaseProducer = kafka.client_config().set("transactional.id", unique("txn")).create().unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p
}

fn send(p: &BaseProducer, topic: &str, partition: i32, value: &str) {
    p.send(BaseRecord::to(topic).partition(partition).key("k").payload(value)).unwrap();
}

fn values(records: &[testkit::Consumed]) -> Vec<(i32, String)> {
    records.iter().map(|r| (r.partition, String::from_utf8(r.value.clone()).unwrap())).collect()
}

#[test]
fn reader_waits_for_open_transactions_and_never_shows_aborted_records() {
    let kafka = Kafka::shared();
    let topic = unique("reader");
    kafka.create_topics(&[(&topic, 2)]);
    let p = txn_producer(kafka);
    p.begin_transaction().unwrap();
    send(&p, &topic, 0, "committed-0");
    send(&p, &topic, 1, "committed-1");
    p.commit_transaction(Duration::from_secs(10)).unwrap();
    p.begin_transaction().unwrap();
    send(&p, &topic, 1, "aborted");
    p.flush(Duration::from_secs(10)).unwrap();
    p.abort_transaction(Duration::from_secs(10)).unwrap();
    // Ends with an aborted transaction: the reader still reaches the end.
    let mut got = values(&testkit::read_committed(kafka.bootstrap(), &topic));
    got.sort();
    assert_eq!(got, [(0, "committed-0".into()), (1, "committed-1".into())]);

    // An open transaction: its records are below the high watermark the reader targets, so the
    // reader waits for the commit instead of stopping at the last stable offset.
    p.begin_transaction().unwrap();
    send(&p, &topic, 0, "late");
    p.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(kafka.pending_transactions(&topic), [0]);
    let committer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        p.commit_transaction(Duration::from_secs(10)).unwrap();
    });
    let started = Instant::now();
    let read = testkit::read_committed(kafka.bootstrap(), &topic);
    assert!(started.elapsed() >= Duration::from_millis(1000), "the reader did not wait for the open transaction");
    let mut got = values(&read);
    got.sort();
    assert_eq!(got, [(0, "committed-0".into()), (0, "late".into()), (1, "committed-1".into())]);
    committer.join().unwrap();
    assert!(kafka.pending_transactions(&topic).is_empty());
}

#[test]
fn wait_for_reads_records_produced_after_it_started() {
    let kafka = Kafka::shared();
    let topic = unique("wait-for");
    kafka.create_topics(&[(&topic, 3)]);
    let mut reader = Reader::new(kafka.bootstrap(), &topic);
    assert!(reader.read_to_end(Duration::from_secs(10)).is_empty());
    let bootstrap = kafka.bootstrap().to_string();
    let t = topic.clone();
    let writer = std::thread::spawn(move || {
        let p = testkit::producer(&bootstrap);
        for i in 0..30 {
            testkit::produce_all(&p, &t, [(format!("k{i}"), format!("v{i}"), 1_000 + i)]);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let read = reader.wait_for(30, Duration::from_secs(30));
    assert_eq!(read.len(), 30);
    let mut keys: Vec<&str> = read.iter().map(|r| r.key_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 30);
    writer.join().unwrap();
}

#[test]
fn topics_are_created_with_their_partitions_and_deleted() {
    let kafka = Kafka::shared();
    let (plain, compacted) = (unique("plain"), unique("table"));
    kafka.create_topics(&[(&plain, 3)]);
    kafka.create_compacted(&[(&compacted, 2)]);
    kafka.create_topics(&[(&plain, 3)]); // again: fine
    assert_eq!(kafka.partitions(&plain), Some(3));
    assert_eq!(kafka.partitions(&compacted), Some(2));
    assert!(kafka.leader_of(&plain, 2).is_some());
    assert_eq!(kafka.leader_of(&plain, 3), None);
    kafka.delete_topics(&[&plain, &compacted]);
    assert_eq!(kafka.partitions(&plain), None);
}

/// A private 3-node cluster: the leader of a replicated partition is killed, another node takes
/// over, acknowledged writes survive, and the killed node comes back with its log dirs.
#[test]
fn three_node_cluster_survives_a_killed_leader() {
    let cluster = Kafka::cluster(3);
    assert_eq!(cluster.nodes(), 3);
    let topic = unique("replicated");
    cluster.create_topics(&[(&topic, 1)]);
    let p = testkit::producer(cluster.bootstrap());
    testkit::produce_all(&p, &topic, [("a", "before", 1)]);
    let leader = cluster.leader_of(&topic, 0).expect("a leader");
    cluster.kill_node(leader as usize, Signal::Kill);
    assert!(
        wait_until(Duration::from_secs(30), || cluster.leader_of(&topic, 0).is_some_and(|l| l != leader)),
        "no new leader after node {leader} was killed"
    );
    // Two in-sync replicas remain: acks=all writes still succeed.
    testkit::produce_all(&p, &topic, [("a", "after", 2)]);
    cluster.restart_node(leader as usize);
    let read = testkit::read_committed(cluster.bootstrap(), &topic);
    assert_eq!(values(&read), [(0, "before".into()), (0, "after".into())]);
}

#[test]
fn child() {
    if child_role() != Some("child") {
        return;
    }
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn child_process_is_paused_resumed_and_killed() {
    let kafka = Kafka::shared();
    let mut c = Child::spawn("child", kafka, &[]);
    c.signal(Signal::Stop);
    c.signal(Signal::Cont);
    assert!(c.try_wait().is_none(), "the child runs until killed");
    c.kill();
    assert_eq!(c.try_wait().and_then(|s| s.signal()), Some(Signal::Kill.raw()));
}
