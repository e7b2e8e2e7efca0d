//! Each record is all-or-nothing per processor: a processor that rejects a record (a data error
//! after it already wrote its store and forwarded) leaves no write and no output behind, the
//! record is dead-lettered naming that processor, and its siblings apply the record whatever
//! order they were added in. Run straight and with every kind of crash, against a plain loop.

use std::collections::BTreeMap;

use streams::examples::Sum;
use streams::record::header;
use streams::{
    Crash, DriverConfig, I64Serde, JsonSerde, ProcessError, Processor, ProcessorContext, Record, StoreSpec,
    StringSerde, Topology, TopologyTestDriver,
};

/// Adds the value to its key's sum, forwards the sum, and only then rejects values that are
/// multiples of `divisor` (so a rejection has a write and an output to undo).
struct Picky {
    store: &'static str,
    divisor: i64,
}

impl Processor<String, i64> for Picky {
    fn process(&mut self, record: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let mut store = ctx.kv_store::<String, Sum>(self.store)?;
        let mut sum = store.get(&record.key)?.unwrap_or_default();
        sum.count += 1;
        sum.total += record.value;
        store.put(&record.key, &sum)?;
        ctx.forward(record.clone().with_value(sum))?;
        if record.value % self.divisor == 0 {
            return Err(ProcessError::data(format!("multiple_of_{}", self.divisor), format!("{}", record.value)));
        }
        Ok(())
    }
}

/// Forwards to every child (so the fan-out happens inside a processor, not at the source).
struct Relay;

impl Processor<String, i64> for Relay {
    fn process(&mut self, record: Record<String, i64>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        ctx.forward(record)
    }
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    ThreesFirst,
    FivesFirst,
    BehindARelay,
}

fn topology(shape: Shape) -> Topology {
    let mut t = Topology::new();
    t.add_source::<String, i64>("input", &["in"], StringSerde, I64Serde).unwrap();
    let parent = match shape {
        Shape::BehindARelay => {
            t.add_processor("relay", || Relay, &["input"]).unwrap();
            "relay"
        }
        _ => "input",
    };
    let threes = |t: &mut Topology| {
        t.add_processor("threes", || Picky { store: "threes-sums", divisor: 3 }, &[parent]).unwrap();
    };
    let fives = |t: &mut Topology| {
        t.add_processor("fives", || Picky { store: "fives-sums", divisor: 5 }, &[parent]).unwrap();
    };
    match shape {
        Shape::FivesFirst => {
            fives(&mut t);
            threes(&mut t);
        }
        _ => {
            threes(&mut t);
            fives(&mut t);
        }
    }
    for name in ["threes", "fives"] {
        let store: &'static str = if name == "threes" { "threes-sums" } else { "fives-sums" };
        let out: &'static str = if name == "threes" { "threes-out" } else { "fives-out" };
        t.add_state_store(
            StoreSpec::key_value::<String, Sum>(store, StringSerde, JsonSerde::<Sum>::default()),
            &[name],
        )
        .unwrap()
        .add_sink::<String, Sum>(out, out, StringSerde, JsonSerde::<Sum>::default(), &[name])
        .unwrap();
    }
    t
}

fn input() -> Vec<(String, i64, i64)> {
    (0..600).map(|i| (format!("k{}", i % 7), (i % 31) as i64 + 1, i as i64 * 10)).collect()
}

/// The plain recomputation: per key, the sum of the values a processor with `divisor` accepts.
fn expected(divisor: i64) -> Vec<(String, Sum)> {
    let mut out = BTreeMap::<String, Sum>::new();
    for (k, v, _) in input().into_iter().filter(|(_, v, _)| v % divisor != 0) {
        let s = out.entry(k).or_default();
        s.count += 1;
        s.total += v;
    }
    out.into_iter().collect()
}

struct Run {
    threes: Vec<(String, Sum)>,
    fives: Vec<(String, Sum)>,
    threes_out: usize,
    fives_out: usize,
    /// (input timestamp, rejecting processor, reason) of each dead letter, sorted.
    dead: Vec<(i64, String, String)>,
    produced_threes: u64,
    crashes: usize,
}

fn run(shape: Shape, crashes: Vec<(usize, Crash)>) -> Run {
    let topo = topology(shape).build("app").unwrap();
    let mut d =
        TopologyTestDriver::new(topo, DriverConfig { commit_every: 23, crashes, ..Default::default() }).unwrap();
    for (k, v, ts) in input() {
        d.append_raw("in", Some(k.into_bytes()), Some(v.to_be_bytes().to_vec()), ts);
    }
    d.run().unwrap();
    let text = |r: &streams::record::OutRecord, h: &str| r.headers.get_str(h).unwrap_or_default().to_string();
    let mut dead: Vec<_> = d
        .read_raw("in-dlq")
        .iter()
        .map(|r| (r.timestamp, text(r, header::ERROR_PROCESSOR), text(r, header::ERROR_CLASS)))
        .collect();
    dead.sort();
    Run {
        threes: d.store_all::<String, Sum>("threes-sums"),
        fives: d.store_all::<String, Sum>("fives-sums"),
        threes_out: d.read_raw("threes-out").len(),
        fives_out: d.read_raw("fives-out").len(),
        dead,
        produced_threes: d.metrics().records_produced.with_label_values(&["threes-out"]).get(),
        crashes: d.crashes_done,
    }
}

#[test]
fn a_rejecting_processor_leaves_nothing_and_its_siblings_apply_the_record() {
    let accepted = |divisor: i64| input().iter().filter(|(_, v, _)| v % divisor != 0).count();
    let mut want_dead: Vec<(i64, String, String)> = Vec::new();
    for (_, v, ts) in input() {
        for (name, divisor) in [("threes", 3), ("fives", 5)] {
            if v % divisor == 0 {
                want_dead.push((ts, name.into(), format!("multiple_of_{divisor}")));
            }
        }
    }
    want_dead.sort();
    assert!(want_dead
        .iter()
        .any(|(o, p, _)| p == "threes" && want_dead.iter().any(|(o2, p2, _)| o2 == o && p2 == "fives")));

    for shape in [Shape::ThreesFirst, Shape::FivesFirst, Shape::BehindARelay] {
        let straight = run(shape, Vec::new());
        assert_eq!(straight.threes, expected(3), "{shape:?}: a rejected record's write is undone");
        assert_eq!(straight.fives, expected(5), "{shape:?}: the sibling applies what the other rejects");
        assert_eq!(straight.threes_out, accepted(3), "{shape:?}: a rejected record's output is undone");
        assert_eq!(straight.fives_out, accepted(5), "{shape:?}");
        assert_eq!(straight.produced_threes, accepted(3) as u64, "{shape:?}: undone outputs are not counted");
        assert_eq!(straight.dead, want_dead, "{shape:?}: one dead letter per rejecting processor, named");
        for kind in Crash::ALL {
            let crashed = run(shape, vec![(31, kind), (250, kind), (251, kind), (590, kind)]);
            assert_eq!(crashed.crashes, 4, "{shape:?} {kind:?}");
            assert_eq!(
                (&crashed.threes, &crashed.fives, crashed.threes_out, crashed.fives_out, &crashed.dead),
                (&straight.threes, &straight.fives, straight.threes_out, straight.fives_out, &straight.dead),
                "{shape:?} {kind:?}"
            );
        }
    }
}

/// A source that cannot decode a record names itself as the rejecting processor.
#[test]
fn an_undecodable_record_names_its_source() {
    let mut d =
        TopologyTestDriver::new(topology(Shape::ThreesFirst).build("app").unwrap(), DriverConfig::default()).unwrap();
    d.pipe_raw("in", Some(b"k".to_vec()), Some(vec![1, 2, 3]), 1).unwrap();
    let dead = d.read_raw("in-dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers.get_str(header::ERROR_PROCESSOR), Some("input"));
}
