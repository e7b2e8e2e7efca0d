//! Stateless DSL operators (filter, filter_not, map, map_values, flat_map, flat_map_values,
//! select_key, peek, split, merge, to, repartition, process), each checked against a plain
//! recomputation and, all together, run straight and with every kind of crash.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{config, decoded, golden, raw_sorted, rec, run, sorted_debug, Input};
use serde::{Deserialize, Serialize};
use streams::dsl::{Consumed, DslError, Produced, Repartitioned, StreamsBuilder};
use streams::murmur2::partition_for_key;
use streams::topology::BuiltTopology;
use streams::{I64Serde, JsonSerde, ProcessError, Processor, ProcessorContext, Record, StringSerde, TopologyError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    user: String,
    amount: i64,
    kind: String,
}

const KINDS: [&str; 4] = ["DEPOSIT", "PAYMENT", "FEE", "REFUND"];
const OUTPUTS: [&str; 8] =
    ["big-amounts", "small-by-user", "copies", "by-kind", "initials", "deposits-and-fees", "others", "tagged"];

fn payments(n: usize) -> Vec<(String, Payment, i64)> {
    (0..n)
        .map(|i| {
            let p = Payment { user: format!("u{}", i % 7), amount: (i as i64 * 37) % 250, kind: KINDS[i % 4].into() };
            (format!("acc-{}", i % 13), p, i as i64 * 10)
        })
        .collect()
}

fn inputs(n: usize) -> Vec<Input> {
    payments(n).iter().map(|(k, p, ts)| rec("payments", k, p, *ts, &StringSerde, &JsonSerde::new())).collect()
}

/// A Processor-API node inside the DSL: tags each record with the partition that processed it.
struct TagPartition;

impl Processor<String, Payment> for TagPartition {
    fn process(&mut self, r: Record<String, Payment>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let tag = format!("{}@{}", r.value.amount, ctx.partition());
        ctx.forward(r.with_value(tag))
    }
}

struct TagPartitionStr;

impl Processor<String, String> for TagPartitionStr {
    fn process(&mut self, r: Record<String, String>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        ctx.forward(r)
    }
}

fn topology(peeked: Arc<AtomicUsize>) -> Arc<BuiltTopology> {
    let b = StreamsBuilder::new();
    let s = b.stream("payments", Consumed::with(StringSerde, JsonSerde::<Payment>::new()));
    let strings = || Produced::with(StringSerde, StringSerde);
    let longs = || Produced::with(StringSerde, I64Serde);
    let s = s.peek(move |_, _| {
        peeked.fetch_add(1, Ordering::Relaxed);
    });
    s.filter(|_, p| p.amount >= 100).named("big-payments").map_values(|p| p.amount).to("big-amounts", longs());
    s.filter_not(|_, p| p.amount >= 100)
        .map(|k, p| (p.user.clone(), format!("{k}:{}", p.amount)))
        .to("small-by-user", strings());
    s.flat_map_values(|p| vec![p.amount; (p.amount % 3) as usize]).to("copies", longs());
    s.select_key(|_, p| p.kind.clone()).map_values(|p| p.amount).to("by-kind", longs());
    s.flat_map(|k, p| p.user.chars().take(2).map(|c| (c.to_string(), k.clone())).collect::<Vec<_>>())
        .to("initials", strings());
    let route = s.split("route");
    let deposits = route.branch("deposit", |_, p| p.kind == "DEPOSIT");
    let fees = route.branch("fee", |_, p| p.kind == "FEE" || p.kind == "DEPOSIT");
    let other = route.default_branch("other");
    deposits.merge(&fees).map_values(|p| p.amount).to("deposits-and-fees", longs());
    other.map_values(|p| p.kind).to("others", strings());
    s.select_key(|_, p| p.user.clone())
        .repartition(Repartitioned::with("by-user", StringSerde, JsonSerde::<Payment>::new()))
        .process::<String, String, _, _>("tag-partition", || TagPartition, &[])
        .to("tagged", strings());
    b.build().unwrap().build("app").unwrap()
}

type Observed = BTreeMap<&'static str, Vec<common::RawRec>>;

fn observe(d: &streams::TopologyTestDriver) -> Observed {
    OUTPUTS.iter().map(|t| (*t, raw_sorted(d, t))).collect()
}

#[test]
fn every_stateless_operator_matches_a_plain_recomputation() {
    let n = 300;
    let peeked = Arc::new(AtomicUsize::new(0));
    let p = peeked.clone();
    let (_, _) = run(&move || topology(p.clone()), config(), &inputs(n), &|d| {
        let input = payments(n);
        let (s, l) = (&StringSerde, &I64Serde);
        let expect = |mut v: Vec<(String, i64, i64)>| sorted_debug(std::mem::take(&mut v));
        let big: Vec<_> =
            input.iter().filter(|(_, p, _)| p.amount >= 100).map(|(k, p, t)| (k.clone(), p.amount, *t)).collect();
        assert_eq!(decoded(d, "big-amounts", s, l), expect(big));
        let small: Vec<_> = input
            .iter()
            .filter(|(_, p, _)| p.amount < 100)
            .map(|(k, p, t)| (p.user.clone(), format!("{k}:{}", p.amount), *t))
            .collect();
        assert_eq!(decoded(d, "small-by-user", s, s), sorted_debug(small));
        let copies: Vec<_> = input
            .iter()
            .flat_map(|(k, p, t)| std::iter::repeat_n((k.clone(), p.amount, *t), (p.amount % 3) as usize))
            .collect();
        assert_eq!(decoded(d, "copies", s, l), expect(copies));
        let by_kind: Vec<_> = input.iter().map(|(_, p, t)| (p.kind.clone(), p.amount, *t)).collect();
        assert_eq!(decoded(d, "by-kind", s, l), expect(by_kind));
        let initials: Vec<_> = input
            .iter()
            .flat_map(|(k, p, t)| p.user.chars().take(2).map(move |c| (c.to_string(), k.clone(), *t)))
            .collect();
        assert_eq!(decoded(d, "initials", s, s), sorted_debug(initials));
        // DEPOSIT matches the first branch only; FEE the second; the rest the default branch.
        let df: Vec<_> = input
            .iter()
            .filter(|(_, p, _)| p.kind == "DEPOSIT" || p.kind == "FEE")
            .map(|(k, p, t)| (k.clone(), p.amount, *t))
            .collect();
        assert_eq!(decoded(d, "deposits-and-fees", s, l), expect(df));
        let others: Vec<_> = input
            .iter()
            .filter(|(_, p, _)| p.kind != "DEPOSIT" && p.kind != "FEE")
            .map(|(k, p, t)| (k.clone(), p.kind.clone(), *t))
            .collect();
        assert_eq!(decoded(d, "others", s, s), sorted_debug(others));
        // After the repartition each user is processed by the partition murmur2 puts its key in.
        let tagged: Vec<_> = input
            .iter()
            .map(|(_, p, t)| (p.user.clone(), format!("{}@{}", p.amount, partition_for_key(p.user.as_bytes(), 3)), *t))
            .collect();
        assert_eq!(decoded(d, "tagged", s, s), sorted_debug(tagged));
    });
    assert_eq!(peeked.load(Ordering::Relaxed), n, "peek saw every record once");
}

#[test]
fn stateless_operators_are_identical_with_and_without_crashes() {
    let p = Arc::new(AtomicUsize::new(0));
    let straight = golden(&move || topology(p.clone()), config(), &inputs(300), &[40, 150, 151, 480], &observe);
    assert_eq!(straight["big-amounts"].len() + straight["small-by-user"].len(), 300);
}

#[test]
fn describe_shows_generated_and_explicit_names_branches_and_the_repartition() {
    let topo = topology(Arc::default());
    let text = topo.describe();
    assert!(
        text.starts_with("Topologies:\n   Sub-topology: 0\n    Source: KSTREAM-SOURCE-0000000000 (topics: [payments])"),
        "{text}"
    );
    assert!(text.contains("    Processor: big-payments (stores: [])"), "{text}");
    assert!(
        text.contains("    Processor: route (stores: [])\n      --> route-deposit, route-fee, route-other"),
        "{text}"
    );
    assert!(text.contains("    Sink: by-user-sink (topic: app-by-user-repartition)"), "{text}");
    assert!(
        text.contains(
            "   Sub-topology: 1\n    Source: by-user (topics: [app-by-user-repartition])\n      --> tag-partition"
        ),
        "{text}"
    );
    assert!(text.contains("  Repartition topics: [app-by-user-repartition]"), "{text}");
    assert_eq!(topo.subtopologies.len(), 2);
}

#[test]
fn duplicate_names_and_streams_of_another_builder_fail_the_build() {
    let b = StreamsBuilder::new();
    let s = b.stream("in", Consumed::with(StringSerde, StringSerde));
    s.split("x");
    s.split("x");
    assert_eq!(b.build().err(), Some(DslError::Topology(TopologyError::Duplicate("x".into()))));

    // One handle materialized twice would share state between two aggregations.
    const C: streams::KvStoreDef<String, i64> = streams::KvStoreDef::new("c", &StringSerde, &I64Serde);
    let b = StreamsBuilder::new();
    let g = b.stream("in", Consumed::with(StringSerde, StringSerde)).group_by_key(streams::dsl::Grouped::with(
        "g",
        StringSerde,
        StringSerde,
    ));
    g.count(&C);
    g.count(&C);
    assert_eq!(b.build().err(), Some(DslError::Topology(TopologyError::Duplicate("c".into()))));

    let b = StreamsBuilder::new();
    b.stream("in", Consumed::with(StringSerde, StringSerde)).process::<String, String, _, _>(
        "p",
        || TagPartitionStr,
        &["nope"],
    );
    assert!(
        matches!(b.build(), Err(DslError::UnknownStore { store, processor }) if store == "nope" && processor == "p")
    );

    let (a, b2) = (StreamsBuilder::new(), StreamsBuilder::new());
    let s1 = a.stream("in", Consumed::with(StringSerde, StringSerde));
    let s2 = b2.stream("in2", Consumed::with(StringSerde, StringSerde));
    s1.merge(&s2);
    assert!(matches!(a.build(), Err(DslError::OtherBuilder(_))));
}
