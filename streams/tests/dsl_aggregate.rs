//! Grouping and aggregation (count, reduce, aggregate, try_aggregate), automatic repartitioning,
//! table sources with tombstones and `KTable::to_stream`: against plain recomputations, and
//! straight vs. every kind of crash.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{config, decoded, golden, raw_sorted, rec, tombstone, Input};
use serde::{Deserialize, Serialize};
use streams::dsl::{Consumed, Grouped, Produced, StreamsBuilder};
use streams::record::header;
use streams::store::typed::KvStoreDef;
use streams::topology::BuiltTopology;
use streams::{I64Serde, JsonSerde, ProcessError, StringSerde, TopologyTestDriver};

const WORD_COUNTS: KvStoreDef<String, i64> = KvStoreDef::new("word-counts", &StringSerde, &I64Serde);
const ACCOUNT_SUMS: KvStoreDef<String, i64> = KvStoreDef::new("account-sums", &StringSerde, &I64Serde);
const USER_STATS: KvStoreDef<String, Stats> = KvStoreDef::new("user-stats", &StringSerde, &JsonSerde::new());
const BALANCES: KvStoreDef<String, i64> = KvStoreDef::new("checked-balances", &StringSerde, &I64Serde);
const PROFILES: KvStoreDef<String, String> = KvStoreDef::new("profiles", &StringSerde, &StringSerde);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Stats {
    count: i64,
    total: i64,
    max: i64,
}

fn lines(n: usize) -> Vec<(String, String)> {
    let words = ["apple", "Banana", "cherry", "apple", "date", "BANANA", "elder"];
    (0..n)
        .map(|i| {
            let line: Vec<&str> = (0..(i % 5 + 1)).map(|j| words[(i * 3 + j) % words.len()]).collect();
            (format!("line-{}", i % 11), line.join(" "))
        })
        .collect()
}

/// (account, user, amount)
fn amounts(n: usize) -> Vec<(String, String, i64)> {
    (0..n).map(|i| (format!("acc-{}", i % 9), format!("user-{}", i % 4), (i as i64 * 53) % 120 - 20)).collect()
}

fn inputs(n: usize) -> Vec<Input> {
    let mut v: Vec<Input> = lines(n)
        .iter()
        .enumerate()
        .map(|(i, (k, l))| rec("lines", k, l, i as i64, &StringSerde, &StringSerde))
        .collect();
    for (i, (acc, user, amount)) in amounts(n).iter().enumerate() {
        v.push(rec("amounts", acc, &format!("{user}:{amount}"), i as i64, &StringSerde, &StringSerde));
    }
    v
}

fn parse(v: &str) -> (String, i64) {
    let (u, a) = v.split_once(':').unwrap();
    (u.to_string(), a.parse().unwrap())
}

fn topology() -> Arc<BuiltTopology> {
    let b = StreamsBuilder::new();
    // count after a key change: repartitioned through "words".
    b.stream("lines", Consumed::with(StringSerde, StringSerde))
        .flat_map(|_, line: String| line.split(' ').map(|w| (w.to_lowercase(), ())).collect::<Vec<_>>())
        .group_by_key(Grouped::with("words", StringSerde, JsonSerde::<()>::new()))
        .count(&WORD_COUNTS)
        .to_stream()
        .to("word-counts", Produced::with(StringSerde, I64Serde));
    let amounts = b.stream("amounts", Consumed::with(StringSerde, StringSerde)).map_values(|v| parse(&v));
    // reduce by the unchanged key: no repartition.
    amounts
        .map_values(|(_, a)| a)
        .group_by_key(Grouped::with("unused", StringSerde, I64Serde))
        .reduce(|a, b| a + b, &ACCOUNT_SUMS)
        .to_stream()
        .to("account-sums", Produced::with(StringSerde, I64Serde));
    // aggregate by a new key: repartitioned through "by-user".
    amounts
        .group_by(|_, (user, _)| user.clone(), Grouped::with("by-user", StringSerde, JsonSerde::<(String, i64)>::new()))
        .aggregate(
            Stats::default,
            |_, (_, a), s| Stats { count: s.count + 1, total: s.total + a, max: s.max.max(*a) },
            &USER_STATS,
        );
    // try_aggregate: a balance that may not go negative rejects the record.
    amounts.map_values(|(_, a)| a).group_by_key(Grouped::with("unused-2", StringSerde, I64Serde)).try_aggregate(
        || 0i64,
        |k, a, bal| match bal + a {
            next if next < 0 => Err(ProcessError::data("insufficient_funds", format!("{k} would go to {next}"))),
            next => Ok(next),
        },
        &BALANCES,
    );
    // A table from a topic, with deletions.
    b.table("profiles", Consumed::with(StringSerde, StringSerde), &PROFILES)
        .to_stream()
        .to("profile-updates", Produced::with(StringSerde, StringSerde));
    b.build().unwrap().build("agg").unwrap()
}

#[test]
fn groupings_repartition_only_when_the_key_changed() {
    let t = topology();
    assert_eq!(t.repartition_topics, vec!["agg-words-repartition".to_string(), "agg-by-user-repartition".to_string()]);
    let text = t.describe();
    assert!(text.contains("Processor: word-counts (stores: [word-counts])"), "{text}");
    assert!(text.contains("Processor: checked-balances (stores: [checked-balances])"), "{text}");
    assert!(!text.contains("unused"), "{text}");
}

#[test]
fn aggregations_match_a_plain_recomputation() {
    let n = 200;
    let (_, _) = common::run(&topology, config(), &inputs(n), &|d: &TopologyTestDriver| {
        let mut counts = BTreeMap::<String, i64>::new();
        for (_, l) in lines(n) {
            for w in l.split(' ') {
                *counts.entry(w.to_lowercase()).or_default() += 1;
            }
        }
        assert_eq!(d.store(&WORD_COUNTS), counts.clone().into_iter().collect::<Vec<_>>());
        // Each word's outputs are its running counts 1..=n.
        let expected: Vec<(String, i64)> =
            counts.iter().flat_map(|(w, &c)| (1..=c).map(move |i| (w.clone(), i))).collect();
        let mut got: Vec<(String, i64)> =
            decoded(d, "word-counts", &StringSerde, &I64Serde).into_iter().map(|(k, v, _)| (k, v)).collect();
        got.sort();
        assert_eq!(got, expected);

        let mut sums = BTreeMap::<String, i64>::new();
        let mut stats = BTreeMap::<String, Stats>::new();
        let mut balances = BTreeMap::<String, i64>::new();
        let mut rejected = 0;
        for (acc, user, a) in amounts(n) {
            *sums.entry(acc.clone()).or_default() += a;
            let s = stats.entry(user).or_default();
            *s = Stats { count: s.count + 1, total: s.total + a, max: s.max.max(a) };
            let b = balances.entry(acc).or_default();
            if *b + a < 0 {
                rejected += 1;
            } else {
                *b += a;
            }
        }
        assert_eq!(d.store(&ACCOUNT_SUMS), sums.into_iter().collect::<Vec<_>>());
        assert_eq!(d.store(&USER_STATS), stats.into_iter().collect::<Vec<_>>());
        assert_eq!(d.store(&BALANCES), balances.into_iter().collect::<Vec<_>>());
        let dlq = d.read_raw("amounts-dlq");
        assert!(rejected > 0);
        assert_eq!(dlq.len(), rejected, "each rejected record is dead-lettered once");
        assert!(dlq.iter().all(|r| r.headers.get_str(header::ERROR_CLASS) == Some("insufficient_funds")));
        assert_eq!(d.store_get(&ACCOUNT_SUMS, &"acc-0".to_string()), d.store(&ACCOUNT_SUMS).first().map(|(_, v)| *v));
    });
}

#[test]
fn aggregations_are_identical_with_and_without_crashes() {
    let observe = |d: &TopologyTestDriver| {
        (
            d.store(&WORD_COUNTS),
            d.store(&ACCOUNT_SUMS),
            d.store(&USER_STATS),
            d.store(&BALANCES),
            // A repartitioned count's n-th result carries the timestamp of whichever record came
            // n-th, which depends on how the upstream tasks interleaved; the counts do not.
            raw_sorted(d, "word-counts").into_iter().map(|(k, v, _)| (k, v)).collect::<Vec<_>>(),
            raw_sorted(d, "account-sums"),
            raw_sorted(d, "amounts-dlq"),
        )
    };
    golden(&topology, config(), &inputs(200), &[30, 200, 201, 650], &observe);
}

#[test]
fn a_table_keeps_the_latest_value_and_forgets_deleted_keys() {
    let s = &StringSerde;
    let mut input = vec![
        rec("profiles", &"alice".to_string(), &"Berlin".to_string(), 1, s, s),
        rec("profiles", &"bob".to_string(), &"Lima".to_string(), 2, s, s),
        rec("profiles", &"alice".to_string(), &"Paris".to_string(), 3, s, s),
        tombstone("profiles", &"bob".to_string(), 4, s),
        tombstone("profiles", &"carol".to_string(), 5, s), // deleting an absent key changes nothing
        rec("profiles", &"dave".to_string(), &"Oslo".to_string(), 6, s, s),
    ];
    for i in 0..40 {
        input.push(rec("profiles", &format!("user-{}", i % 6), &format!("city-{i}"), 10 + i, s, s));
        if i % 5 == 0 {
            input.push(tombstone("profiles", &format!("user-{}", i % 6), 10 + i, s));
        }
    }
    let observe = |d: &TopologyTestDriver| (d.store(&PROFILES), raw_sorted(d, "profile-updates"));
    let (store, updates) = golden(&topology, config(), &input, &[5, 20, 21, 40], &observe);
    let mut expected = BTreeMap::new();
    for i in &input {
        let k = String::from_utf8(i.key.clone()).unwrap();
        match &i.value {
            Some(v) => expected.insert(k, String::from_utf8(v.clone()).unwrap()),
            None => expected.remove(&k),
        };
    }
    assert_eq!(store, expected.into_iter().collect::<Vec<_>>());
    assert_eq!(
        updates.len(),
        input.iter().filter(|i| i.value.is_some()).count(),
        "to_stream forwards updates, not deletes"
    );
}
