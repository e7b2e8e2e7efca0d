//! Event time defined once at the source: the extracted time is the record's timestamp from the
//! source on (sinks, repartition topics, windows, stream time); records without a usable time
//! are dead-lettered or fall back to the Kafka timestamp as declared; each record is decoded
//! once however many children its source has.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use streams::record::header;
use streams::time::reason;
use streams::window::{OpenWindowSerde, UnitSerde};
use streams::{
    DriverConfig, EmitStrategy, EventTime, I64Serde, JsonSerde, ProcessError, Processor, ProcessorContext, Record,
    Serde, SerdeError, SourceOptions, StoreSpec, StringSerde, TimeWindows, Topology, TopologyTestDriver, Windowed,
    WindowedAggregate,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    amount: i64,
    /// When the money moved; the producer sends later (Kafka timestamp = send time).
    at: Option<i64>,
}

/// Forwards the amount, and stream time as seen while processing the record.
struct Amount;

impl Processor<String, Payment> for Amount {
    fn process(&mut self, r: Record<String, Payment>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let stream_time = ctx.stream_time();
        assert_eq!(stream_time, ctx.watermark(), "one input: the two clocks agree");
        let amount = r.value.amount;
        let mut out = Record::new(r.key, amount, r.timestamp);
        out.headers.set("stream-time", stream_time.to_string());
        ctx.forward(out)
    }
}

fn payments_topology(time: EventTime<String, Payment>) -> Topology {
    let mut t = Topology::new();
    t.add_source_with(
        "payments",
        &["payments"],
        StringSerde,
        JsonSerde::<Payment>::default(),
        SourceOptions::new().event_time(time),
    )
    .unwrap()
    .add_processor("amount", || Amount, &["payments"])
    .unwrap()
    .add_sink::<String, i64>("out", "amounts", StringSerde, I64Serde, &["amount"])
    .unwrap()
    .add_repartition::<String, i64>("again", StringSerde, I64Serde, &["amount"])
    .unwrap()
    .add_processor(
        "window-sum",
        || WindowedAggregate {
            store: "win".to_string(),
            windows: TimeWindows::tumbling(100, 0),
            emit: EmitStrategy::OnWindowClose,
            late_child: None,
            initializer: || 0i64,
            aggregator: |_k: &String, v: &i64, acc: i64| acc + v,
            _t: PhantomData,
        },
        &["again"],
    )
    .unwrap()
    .add_state_store(StoreSpec::key_value::<String, i64>("win", StringSerde, I64Serde), &["window-sum"])
    .unwrap()
    .add_state_store(
        StoreSpec::key_value::<(i64, Windowed<String>), ()>(
            "win-open",
            OpenWindowSerde::<String>::default(),
            UnitSerde,
        ),
        &["window-sum"],
    )
    .unwrap()
    .add_sink::<Windowed<String>, i64>("totals", "totals", JsonSerde::default(), I64Serde, &["window-sum"])
    .unwrap();
    t
}

fn pay(d: &mut TopologyTestDriver, amount: i64, at: Option<i64>, kafka_ts: i64) {
    let p = Payment { amount, at };
    d.pipe("payments", &"acct".to_string(), &p, kafka_ts, &StringSerde, &JsonSerde::default()).unwrap();
}

fn driver(time: EventTime<String, Payment>) -> TopologyTestDriver {
    let topo = payments_topology(time).build("et").unwrap();
    TopologyTestDriver::new(topo, DriverConfig { partitions: 2, commit_every: 3, ..Default::default() }).unwrap()
}

fn occurred(_: &String, p: &Payment) -> Option<i64> {
    p.at
}

#[test]
fn extracted_time_is_the_records_timestamp_from_the_source_on() {
    let mut d = driver(EventTime::extract(occurred));
    // Sent a day after they happened, out of send order.
    let day = 86_400_000;
    for (amount, at) in [(1, 10), (2, 50), (3, 120), (4, 90), (5, 260)] {
        pay(&mut d, amount, Some(at), day + 1000 - at);
    }
    let out = d.read_output::<String, i64>("amounts", &StringSerde, &I64Serde);
    let times: Vec<i64> = out.iter().map(|r| r.timestamp).collect();
    assert_eq!(times, vec![10, 50, 120, 90, 260], "sinks write the event time as the Kafka timestamp");
    let stream: Vec<&str> = out.iter().map(|r| r.headers.get_str("stream-time").unwrap()).collect();
    assert_eq!(stream, vec!["10", "50", "120", "120", "260"], "stream time is event time");
    let repartitioned: Vec<i64> = d.read_raw("et-again-repartition").iter().map(|r| r.timestamp).collect();
    assert_eq!(repartitioned, vec![10, 50, 120, 90, 260], "internal topics carry event time: no extractor needed");
    // Windows by event time: [0,100) closed when 120 arrived, so 90 was late (not counted);
    // [100,200) closed at 260; [200,300) is still open.
    let totals: Vec<(i64, i64)> = d
        .read_output::<Windowed<String>, i64>("totals", &JsonSerde::default(), &I64Serde)
        .into_iter()
        .map(|r| (r.key.start, r.value))
        .collect();
    assert_eq!(totals, vec![(0, 3), (100, 3)]);
    assert_eq!(d.metrics().late_records.with_label_values(&["window-sum"]).get(), 1);
}

#[test]
fn a_required_time_that_is_missing_or_invalid_is_dead_lettered() {
    let mut d = driver(EventTime::extract(occurred));
    pay(&mut d, 1, None, 5_000);
    pay(&mut d, 2, Some(-3), 5_000);
    pay(&mut d, 3, Some(70), 5_000);
    let dlq = d.read_raw("payments-dlq");
    let reasons: Vec<&str> = dlq.iter().map(|r| r.headers.get_str(header::ERROR_CLASS).unwrap()).collect();
    assert_eq!(reasons, vec![reason::MISSING_EVENT_TIME, reason::INVALID_EVENT_TIME]);
    assert_eq!(dlq[0].timestamp, 5_000, "the dead letter keeps the record's Kafka timestamp");
    let out = d.read_output::<String, i64>("amounts", &StringSerde, &I64Serde);
    assert_eq!(out.iter().map(|r| (r.value, r.timestamp)).collect::<Vec<_>>(), vec![(3, 70)]);
    assert_eq!(
        out[0].headers.get_str("stream-time"),
        Some("70"),
        "records without a usable time do not move the clock"
    );
}

#[test]
fn a_lenient_source_falls_back_to_the_kafka_timestamp_and_counts_it() {
    let mut d = driver(EventTime::extract(occurred).or_kafka_timestamp());
    pay(&mut d, 1, None, 5_000);
    pay(&mut d, 2, Some(70), 6_000);
    pay(&mut d, 3, Some(-1), -1);
    let out = d.read_output::<String, i64>("amounts", &StringSerde, &I64Serde);
    assert_eq!(out.iter().map(|r| (r.value, r.timestamp)).collect::<Vec<_>>(), vec![(1, 5_000), (2, 70)]);
    assert_eq!(d.metrics().event_time_fallbacks.with_label_values(&["payments"]).get(), 1);
    let dlq = d.read_raw("payments-dlq");
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].headers.get_str(header::ERROR_CLASS), Some(reason::INVALID_TIMESTAMP));
}

#[test]
fn the_kafka_timestamp_rule_refuses_negative_timestamps() {
    let mut d = driver(EventTime::kafka_timestamp());
    pay(&mut d, 1, Some(10), -1);
    pay(&mut d, 2, Some(10), 400);
    let out = d.read_output::<String, i64>("amounts", &StringSerde, &I64Serde);
    assert_eq!(out.iter().map(|r| (r.value, r.timestamp)).collect::<Vec<_>>(), vec![(2, 400)]);
    assert_eq!(d.read_raw("payments-dlq").len(), 1);
}

/// Counts how often values are decoded.
#[derive(Clone)]
struct Counting(Arc<AtomicUsize>);

impl Serde<i64> for Counting {
    fn serialize(&self, topic: &str, v: &i64) -> Result<Vec<u8>, SerdeError> {
        I64Serde.serialize(topic, v)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<i64, SerdeError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        I64Serde.deserialize(topic, bytes)
    }
}

struct Tag(&'static str);

impl Processor<String, i64> for Tag {
    fn process(&mut self, r: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        ctx.forward(Record::new(self.0.to_string(), r.value, r.timestamp))
    }
}

#[test]
fn each_record_is_decoded_once_for_all_children() {
    let decoded = Arc::new(AtomicUsize::new(0));
    let mut t = Topology::new();
    t.add_source::<String, i64>("in", &["in"], StringSerde, Counting(decoded.clone())).unwrap();
    for tag in ["a", "b", "c", "d"] {
        t.add_processor(tag, move || Tag(tag), &["in"]).unwrap();
    }
    t.add_sink::<String, i64>("out", "out", StringSerde, I64Serde, &["a", "b", "c", "d"]).unwrap();
    let mut d = TopologyTestDriver::new(t.build("once").unwrap(), DriverConfig::default()).unwrap();
    for i in 0..50i64 {
        d.append_raw("in", Some(format!("k{i}").into_bytes()), Some(i.to_be_bytes().to_vec()), i);
    }
    d.run().unwrap();
    assert_eq!(decoded.load(Ordering::SeqCst), 50, "one decode per record, not one per child");
    let out = d.read_output::<String, i64>("out", &StringSerde, &I64Serde);
    assert_eq!(out.len(), 200, "every child got every record");
    let sum: i64 = out.iter().filter(|r| r.key == "c").map(|r| r.value).sum();
    assert_eq!(sum, (0..50).sum::<i64>());
}
