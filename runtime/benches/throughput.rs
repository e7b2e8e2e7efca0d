//! Engine throughput, printed against baselines measured in the same run.
//!
//! 1. Engine only: the in-memory test driver running a decode-free counting topology on one
//!    thread (records/s), against a plain HashMap loop over the same records.
//! 2. End to end on Apache Kafka (testkit's broker, or `FINSTREAM_TEST_BOOTSTRAP`): the sum
//!    topology under exactly-once, against a hand-written transactional consume→produce
//!    passthrough (BaseConsumer + BaseProducer, same commit interval) over the same input topic.
//!
//! Run: `cargo bench --profile dev -p runtime --bench throughput` (BENCH_RECORDS=n to change the
//! size); without `--profile dev` it builds everything in release mode first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use runtime::{KafkaStreams, StreamsConfig};
use streams::examples::sum_topology;
use streams::{
    BytesSerde, DriverConfig, ProcessError, Processor, ProcessorContext, Record, StoreSpec, Topology,
    TopologyTestDriver,
};

struct Count;

impl Processor<Vec<u8>, Vec<u8>> for Count {
    fn process(
        &mut self,
        record: Record<Vec<u8>, Vec<u8>>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let mut store = ctx.kv_store::<Vec<u8>, i64>("counts")?;
        let n = store.get(&record.key)?.unwrap_or(0) + 1;
        store.put(&record.key, &n)?;
        Ok(())
    }
}

fn engine_only(n: usize) {
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{}", i % 1000).into_bytes()).collect();
    let started = Instant::now();
    let mut counts: HashMap<&[u8], i64> = HashMap::new();
    for k in &keys {
        *counts.entry(k.as_slice()).or_default() += 1;
    }
    let baseline = started.elapsed();
    assert_eq!(counts.values().sum::<i64>() as usize, n);

    let mut t = Topology::new();
    t.add_source::<Vec<u8>, Vec<u8>>("in", &["in"], BytesSerde, BytesSerde)
        .unwrap()
        .add_processor("count", || Count, &["in"])
        .unwrap()
        .add_state_store(StoreSpec::key_value::<Vec<u8>, i64>("counts", BytesSerde, streams::I64Serde), &["count"])
        .unwrap();
    let mut d = TopologyTestDriver::new(
        t.build("bench").unwrap(),
        DriverConfig { partitions: 1, commit_every: 10_000, ..Default::default() },
    )
    .unwrap();
    for (i, k) in keys.iter().enumerate() {
        d.append_raw("in", Some(k.clone()), Some(Vec::new()), i as i64);
    }
    let started = Instant::now();
    d.run().unwrap();
    let engine = started.elapsed();
    let rate = n as f64 / engine.as_secs_f64();
    println!(
        "engine-only (driver, 1 thread, counting, write cache + commit every 10k): {n} records in {:.3}s = {:.0} records/s; plain HashMap loop {:.0} records/s; ratio engine/hashmap = {:.3}",
        engine.as_secs_f64(),
        rate,
        n as f64 / baseline.as_secs_f64(),
        baseline.as_secs_f64() / engine.as_secs_f64()
    );
}

fn fill(bs: &str, topic: &str, n: usize) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    for i in 0..n {
        let key = format!("k{}", i % 1000);
        let value = ((i % 13) as i64).to_be_bytes();
        loop {
            match p.send(BaseRecord::to(topic).key(&key).payload(&value[..]).timestamp(i as i64)) {
                Ok(()) => break,
                Err(_) => p.poll(Duration::from_millis(5)),
            }
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

/// Transactional passthrough: consume, produce the same record, commit offsets in the
/// transaction every 100 ms, until `n` records are committed.
fn passthrough(bs: &str, input: &str, output: &str, n: usize) -> Duration {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", testkit::unique("passthrough"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("transactional.id", testkit::unique("passthrough-txn"))
        .set("linger.ms", "5")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    consumer.subscribe(&[input]).unwrap();
    let started = Instant::now();
    producer.begin_transaction().unwrap();
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    let mut done = 0usize;
    let mut last_commit = Instant::now();
    let commit = |offsets: &HashMap<i32, i64>| {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in offsets {
            tpl.add_partition_offset(input, *p, Offset::Offset(*o)).unwrap();
        }
        producer
            .send_offsets_to_transaction(&tpl, &consumer.group_metadata().unwrap(), Duration::from_secs(30))
            .unwrap();
        producer.commit_transaction(Duration::from_secs(30)).unwrap();
        producer.begin_transaction().unwrap();
    };
    while done < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(10)) {
            let rec = BaseRecord::to(output).key(m.key().unwrap_or_default()).payload(m.payload().unwrap_or_default());
            let mut rec = rec;
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        producer.poll(Duration::from_millis(5));
                        rec = r;
                    }
                }
            }
            offsets.insert(m.partition(), m.offset() + 1);
            done += 1;
        }
        if last_commit.elapsed() >= Duration::from_millis(100) {
            commit(&offsets);
            last_commit = Instant::now();
        }
    }
    commit(&offsets);
    started.elapsed()
}

fn end_to_end(n: usize) {
    let kafka = testkit::Kafka::shared();
    let (input, output, copy) = (testkit::unique("in"), testkit::unique("out"), testkit::unique("passthrough-out"));
    kafka.create_topics(&[(&input, 4), (&output, 4), (&copy, 4)]);
    let bs = kafka.bootstrap().to_string();
    fill(&bs, &input, n);
    let baseline = passthrough(&bs, &input, &copy, n);

    let dir = tempfile::tempdir().unwrap();
    let config = StreamsConfig {
        application_id: testkit::unique("bench"),
        bootstrap_servers: bs.clone(),
        state_dir: dir.path().into(),
        ..Default::default()
    };
    let mut app = KafkaStreams::new(sum_topology(&input, &output).unwrap(), config, Default::default()).unwrap();
    let started = Instant::now();
    app.start().unwrap();
    loop {
        let committed: i64 = app
            .scan_local("sums", None)
            .unwrap()
            .iter()
            .map(|(_, v)| serde_json::from_slice::<streams::examples::Sum>(v).unwrap().count)
            .sum();
        if committed as usize >= n {
            break;
        }
        assert!(app.error().is_none(), "{:?}", app.error());
        std::thread::sleep(Duration::from_millis(20));
    }
    let engine = started.elapsed();
    app.close().unwrap();
    println!(
        "end-to-end (Apache Kafka, exactly_once_v2, sum topology with RocksDB + changelog): {n} records in {:.2}s = {:.0} records/s; transactional passthrough baseline {:.2}s = {:.0} records/s; ratio engine/baseline throughput = {:.2}",
        engine.as_secs_f64(),
        n as f64 / engine.as_secs_f64(),
        baseline.as_secs_f64(),
        n as f64 / baseline.as_secs_f64(),
        baseline.as_secs_f64() / engine.as_secs_f64()
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_RECORDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    engine_only(n.max(100_000) * 2);
    end_to_end(n);
}
