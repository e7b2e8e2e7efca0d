//! A backfill on the driver: every input complete before `run`, fetched in slices, several
//! partitions, a repartitioned input behind a direct one. Shows the task waiting for data the
//! broker holds (KIP-695) and for an input that has none yet (max.task.idle.ms), and the
//! watermark holding at the slowest input while stream time runs with the fastest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use streams::murmur2::partition_for_key;
use streams::{
    DriverConfig, I64Serde, JsonSerde, ProcessError, Processor, ProcessorContext, Record, StringSerde, TaskConfig,
    Topology, TopologyTestDriver,
};

/// What a task saw when it processed one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    topic: String,
    time: i64,
    input_time: i64,
    stream_time: i64,
    watermark: i64,
}

struct Observe;

impl Processor<String, i64> for Observe {
    fn process(&mut self, r: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let seen = Seen {
            topic: ctx.record_meta().map(|m| m.topic.clone()).unwrap_or_default(),
            time: r.timestamp,
            input_time: ctx.input_time().unwrap_or(i64::MIN),
            stream_time: ctx.stream_time(),
            watermark: ctx.watermark(),
        };
        ctx.forward(Record::new(ctx.partition().to_string(), seen, r.timestamp))
    }
}

/// Re-keys a payment (key user, value merchant number) by merchant.
struct ByMerchant;

impl Processor<String, i64> for ByMerchant {
    fn process(&mut self, r: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        ctx.forward(Record::new(format!("m{}", r.value), r.value, r.timestamp))
    }
}

fn config(idle: i64, fetch: usize, partitions: i32, commit_every: usize) -> DriverConfig {
    DriverConfig {
        partitions,
        commit_every,
        fetch_max_records: fetch,
        task: TaskConfig { max_task_idle_ms: idle, ..TaskConfig::default() },
        ..Default::default()
    }
}

/// What each task processed, in order, per partition.
fn observed(d: &TopologyTestDriver) -> BTreeMap<String, Vec<Seen>> {
    let mut by_task: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for r in d.read_output::<String, Seen>("observed", &StringSerde, &JsonSerde::default()) {
        by_task.entry(r.key).or_default().push(r.value);
    }
    by_task
}

/// The largest amount of event time a record arrived behind the task's stream time.
fn max_behind(seen: &BTreeMap<String, Vec<Seen>>) -> i64 {
    seen.values().flat_map(|v| v.iter().map(|s| s.stream_time - s.time)).max().unwrap_or(0)
}

/// Two direct inputs of one task, fetched five records at a time: `fast` has a record every
/// millisecond, `slow` every ten, so a fetch slice of `slow` spans ten times the event time of
/// one of `fast`.
fn two_direct_inputs(idle: i64) -> Vec<Seen> {
    let mut t = Topology::new();
    t.add_source::<String, i64>("fast", &["fast"], StringSerde, I64Serde)
        .unwrap()
        .add_source::<String, i64>("slow", &["slow"], StringSerde, I64Serde)
        .unwrap()
        .add_processor("observe", || Observe, &["fast", "slow"])
        .unwrap()
        .add_sink::<String, Seen>("out", "observed", StringSerde, JsonSerde::default(), &["observe"])
        .unwrap();
    let mut d = TopologyTestDriver::new(t.build("b").unwrap(), config(idle, 5, 1, 1000)).unwrap();
    for ms in 0..200i64 {
        d.append_raw("fast", Some(b"k".to_vec()), Some(ms.to_be_bytes().to_vec()), ms);
        if ms % 10 == 0 {
            d.append_raw("slow", Some(b"k".to_vec()), Some(ms.to_be_bytes().to_vec()), ms);
        }
    }
    d.run().unwrap();
    observed(&d).remove("0").unwrap_or_default()
}

#[test]
fn a_task_waits_for_records_the_broker_holds() {
    let waiting = two_direct_inputs(0);
    let never = two_direct_inputs(-1);
    assert_eq!(waiting.len(), 220);
    assert_eq!(never.len(), 220);
    let times: Vec<i64> = waiting.iter().map(|s| s.time).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "KIP-695: with data on the broker for an empty input, the task waits for the fetch");
    assert_eq!(max_behind(&[(String::new(), waiting)].into()), 0);
    // Never waiting (max.task.idle.ms = -1), `slow`'s slices run ahead whenever `fast`'s
    // queue is empty, and `fast`'s records arrive behind stream time.
    assert!(max_behind(&[(String::new(), never)].into()) >= 30);
}

/// Payments (user-keyed) re-keyed by merchant through a repartition topic and merged with the
/// direct `merchant-events` topic, both spanning the same event time, all written before start.
fn backfill(idle: i64) -> (TopologyTestDriver, BTreeMap<String, Vec<Seen>>) {
    let mut t = Topology::new();
    t.add_source::<String, i64>("payments", &["payments"], StringSerde, I64Serde)
        .unwrap()
        .add_processor("by-merchant", || ByMerchant, &["payments"])
        .unwrap()
        .add_repartition::<String, i64>("payments-by-merchant", StringSerde, I64Serde, &["by-merchant"])
        .unwrap()
        .add_source::<String, i64>("merchant-events", &["merchant-events"], StringSerde, I64Serde)
        .unwrap()
        .add_processor("observe", || Observe, &["payments-by-merchant", "merchant-events"])
        .unwrap()
        .add_sink::<String, Seen>("out", "observed", StringSerde, JsonSerde::default(), &["observe"])
        .unwrap();
    let topo = t.build("shop").unwrap();
    assert_eq!(topo.subtopologies.len(), 2);
    let mut d = TopologyTestDriver::new(topo, config(idle, 20, 2, 50)).unwrap();
    // Users alternate between the two payment partitions, so both upstream tasks go through
    // event time at the same pace and the repartition topic is close to time order: what is
    // left to see is the merge with the direct input.
    let users: Vec<String> = {
        let on = |p: i32| (0..).map(|i| format!("u{i}")).filter(move |u| partition_for_key(u.as_bytes(), 2) == p);
        on(0).take(4).zip(on(1).take(4)).flat_map(|(a, b)| [a, b]).collect()
    };
    for i in 0..600i64 {
        let at = i * 1000;
        let user = &users[i as usize % users.len()];
        d.append_raw("payments", Some(user.clone().into_bytes()), Some((i % 7).to_be_bytes().to_vec()), at);
        let merchant = format!("m{}", i % 7);
        d.append_raw("merchant-events", Some(merchant.into_bytes()), Some(i.to_be_bytes().to_vec()), at + 500);
    }
    d.run().unwrap();
    let seen = observed(&d);
    (d, seen)
}

#[test]
fn backfill_watermark_holds_at_the_repartitioned_input() {
    let (_, seen) = backfill(-1);
    assert_eq!(seen.values().map(Vec::len).sum::<usize>(), 1200, "every record processed once");
    let mut largest_gap = 0;
    for records in seen.values() {
        let mut partition_time: BTreeMap<&str, i64> = BTreeMap::new();
        for s in records {
            let t = partition_time.entry(&s.topic).or_insert(i64::MIN);
            *t = (*t).max(s.time);
            assert_eq!(s.input_time, *t, "partition time: the largest event time of the record's input");
            assert_eq!(s.stream_time, *partition_time.values().max().unwrap(), "stream time: the largest");
            assert_eq!(s.watermark, *partition_time.values().min().unwrap(), "watermark: the smallest");
            largest_gap = largest_gap.max(s.stream_time - s.watermark);
        }
    }
    // Without waiting, the direct input runs far ahead of the repartitioned one: stream time
    // with it, the watermark with the repartitioned input.
    assert!(largest_gap >= 60_000, "largest stream time - watermark: {largest_gap} ms");
    assert!(max_behind(&seen) >= 60_000, "repartitioned records arrive far behind stream time");
}

/// The largest distance between a task's fastest and slowest input when it processed a record.
fn max_gap(seen: &BTreeMap<String, Vec<Seen>>) -> i64 {
    seen.values().flat_map(|v| v.iter().map(|s| s.stream_time - s.watermark)).max().unwrap_or(0)
}

#[test]
fn backfill_with_idle_time_processes_close_to_event_time() {
    let (_, never) = backfill(-1);
    let (_, kip695) = backfill(0);
    let (_, waiting) = backfill(10_000);
    assert_eq!(waiting.values().map(Vec::len).sum::<usize>(), 1200, "every record processed once");
    // KIP-695 alone waits only for records already on the broker: the repartitioned payments
    // are not there until the upstream task commits, so the direct input still runs ahead.
    assert!(max_gap(&kip695) * 2 > max_gap(&never), "{} vs {}", max_gap(&kip695), max_gap(&never));
    // Waiting up to max.task.idle.ms for the empty repartitioned input (the driver lets the
    // idle time pass only when nothing else can progress) keeps the inputs within a commit's
    // worth of event time of each other.
    let (gap_waiting, gap_never) = (max_gap(&waiting), max_gap(&never));
    assert!(gap_waiting * 4 <= gap_never, "inputs apart: waiting {gap_waiting} ms vs never {gap_never} ms");
    let (behind_waiting, behind_never) = (max_behind(&waiting), max_behind(&never));
    assert!(behind_waiting * 2 <= behind_never, "waiting {behind_waiting} ms vs never {behind_never} ms behind");
}
