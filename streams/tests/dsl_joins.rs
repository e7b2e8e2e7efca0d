//! Joins: stream–stream windowed (inner with asymmetric windows, left, outer), stream–table
//! (inner, left), stream–global-table (inner, left) and table–table (inner, left, outer). The
//! reference replays each task's input the way a task reads it (the earliest head record
//! across its partitions first) and applies the join rules with plain collections.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use common::{config, decoded, golden, raw_sorted, rec, tombstone, Input};
use streams::dsl::{Consumed, DslError, JoinWindows, Produced, StreamJoined, StreamsBuilder};
use streams::murmur2::partition_for_key;
use streams::store::typed::KvStoreDef;
use streams::topology::BuiltTopology;
use streams::{I64Serde, StringSerde, TopologyTestDriver};

const USERS: KvStoreDef<String, String> = KvStoreDef::new("users", &StringSerde, &StringSerde);
const LIMITS: KvStoreDef<String, i64> = KvStoreDef::new("limits", &StringSerde, &I64Serde);
const COUNTRIES: KvStoreDef<String, String> = KvStoreDef::new("countries", &StringSerde, &StringSerde);
const USER_LIMITS: KvStoreDef<String, String> = KvStoreDef::new("user-limits", &StringSerde, &StringSerde);
const USER_LIMITS_LEFT: KvStoreDef<String, String> = KvStoreDef::new("user-limits-left", &StringSerde, &StringSerde);
const USER_LIMITS_OUTER: KvStoreDef<String, String> = KvStoreDef::new("user-limits-outer", &StringSerde, &StringSerde);

const PARTITIONS: i32 = 3;
/// Inner join: clicks from 30 ms before to 60 ms after the order; left and outer: ±40 ms.
const INNER: (i64, i64) = (30, 60);
const SYM: i64 = 40;
const GRACE: i64 = 20;
const STREAM_OUTPUTS: [&str; 7] =
    ["inner-joined", "left-joined", "outer-joined", "enriched", "enriched-left", "with-country", "with-country-left"];

fn or_dash<T: ToString>(v: Option<&T>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

fn country_code(user: &str) -> String {
    format!("C{}", &user[1..])
}

fn topology() -> Arc<BuiltTopology> {
    let b = StreamsBuilder::new();
    let strings = || Produced::with(StringSerde, StringSerde);
    let orders = b.stream("orders", Consumed::with(StringSerde, I64Serde));
    let clicks = b.stream("clicks", Consumed::with(StringSerde, StringSerde));
    let joined = |name: &str| StreamJoined::with(name, StringSerde, I64Serde, StringSerde);
    orders
        .join(
            &clicks,
            |a: &i64, p: &String| format!("{a}@{p}"),
            JoinWindows::of(0).before(INNER.0).after(INNER.1).grace(GRACE),
            joined("order-clicks"),
        )
        .to("inner-joined", strings());
    orders
        .left_join(
            &clicks,
            |a: &i64, p: Option<&String>| format!("{a}@{}", or_dash(p)),
            JoinWindows::of(SYM).grace(GRACE),
            joined("order-clicks-left"),
        )
        .to("left-joined", strings());
    orders
        .outer_join(
            &clicks,
            |a: Option<&i64>, p: Option<&String>| format!("{}@{}", or_dash(a), or_dash(p)),
            JoinWindows::of(SYM).grace(GRACE),
            joined("order-clicks-outer"),
        )
        .to("outer-joined", strings());

    let users = b.table("users", Consumed::with(StringSerde, StringSerde), &USERS);
    let limits = b.table("limits", Consumed::with(StringSerde, I64Serde), &LIMITS);
    orders.join_table(&users, |a, name| format!("{a} by {name}")).to("enriched", strings());
    orders.left_join_table(&users, |a, name| format!("{a} by {}", or_dash(name))).to("enriched-left", strings());

    let countries = b.global_table("countries", &COUNTRIES);
    orders.join_global(&countries, |u, _| country_code(u), |a, c| format!("{a} in {c}")).to("with-country", strings());
    orders
        .left_join_global(&countries, |u, _| country_code(u), |a, c| format!("{a} in {}", or_dash(c)))
        .to("with-country-left", strings());

    users.join(&limits, |n, l| format!("{n}:{l}"), &USER_LIMITS);
    users.left_join(&limits, |n, l| format!("{n}:{}", or_dash(l)), &USER_LIMITS_LEFT);
    users.outer_join(&limits, |n, l| format!("{}:{}", or_dash(n), or_dash(l)), &USER_LIMITS_OUTER);
    b.build().unwrap().build("join").unwrap()
}

fn inputs() -> Vec<Input> {
    let (s, l) = (&StringSerde, &I64Serde);
    let mut v = Vec::new();
    for c in [1, 2, 4] {
        v.push(rec("countries", &format!("C{c}"), &format!("country-{c}"), 0, s, s));
    }
    for i in 0..60 {
        let user = format!("u{}", i % 6);
        if i % 9 == 4 {
            v.push(tombstone("users", &user, 1000 + i * 25, s));
        } else {
            v.push(rec("users", &user, &format!("name-{i}"), 1000 + i * 25, s, s));
        }
        if i % 4 == 0 && (i / 4) % 8 != 1 {
            v.push(rec("limits", &format!("u{}", (i / 4) % 8), &(i * 10), 1000 + i * 25, s, l));
        }
    }
    for i in 0..200i64 {
        let user = format!("u{}", i % 5);
        v.push(rec("orders", &user, &(i * 3 % 97), 1000 + i * 11 - (i % 6) * 35, s, l));
        let user = format!("u{}", (i * 7) % 6);
        v.push(rec("clicks", &user, &format!("p{i}"), 1000 + i * 11 - (i % 4) * 45 + 7, s, s));
    }
    v
}

/// Each partition's records in the order its task processes them: the head with the smallest
/// (timestamp, topic) first, each topic's records in offset order.
fn task_order<'a>(inputs: &'a [Input], topics: &[&str]) -> BTreeMap<i32, Vec<&'a Input>> {
    let mut out = BTreeMap::new();
    for p in 0..PARTITIONS {
        let mut queues: BTreeMap<&str, VecDeque<&Input>> = BTreeMap::new();
        for i in inputs.iter().filter(|i| topics.contains(&i.topic.as_str())) {
            if partition_for_key(&i.key, PARTITIONS) == p {
                queues.entry(i.topic.as_str()).or_default().push_back(i);
            }
        }
        let mut order = Vec::new();
        while let Some(t) = queues.iter().filter_map(|(t, q)| q.front().map(|r| (r.ts, *t))).min().map(|(_, t)| t) {
            order.push(queues.get_mut(t).unwrap().pop_front().unwrap());
        }
        out.insert(p, order);
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}
fn long(b: &[u8]) -> i64 {
    i64::from_be_bytes(b.try_into().unwrap())
}

/// A stream–stream join recomputed: records accepted unless `ts + span + grace` is behind the
/// clock; every accepted pair within the window joins once (timestamp: the later one); an
/// accepted record without a partner is emitted alone (left/outer) once no partner is possible.
fn stream_join(
    inputs: &[Input],
    before: i64,
    after: i64,
    left_alone: bool,
    right_alone: bool,
    f: impl Fn(Option<i64>, Option<&str>) -> String,
) -> Vec<(String, String, i64)> {
    let span = before + after;
    let mut out = Vec::new();
    for (_, recs) in task_order(inputs, &["users", "limits", "orders", "clicks"]) {
        let mut clock = i64::MIN;
        let (mut lefts, mut rights) = (Vec::new(), Vec::new());
        for r in recs.into_iter().filter(|r| r.topic == "orders" || r.topic == "clicks") {
            clock = clock.max(r.ts);
            if r.ts + span + GRACE < clock {
                continue;
            }
            let v = r.value.as_deref().unwrap();
            if r.topic == "orders" {
                lefts.push((text(&r.key), r.ts, long(v)))
            } else {
                rights.push((text(&r.key), r.ts, text(v)))
            }
        }
        let mut matched_r = vec![false; rights.len()];
        for (k, lts, a) in &lefts {
            let mut any = false;
            for (j, (rk, rts, p)) in rights.iter().enumerate() {
                if rk == k && *rts >= lts - before && *rts <= lts + after {
                    out.push((k.clone(), f(Some(*a), Some(p)), (*lts).max(*rts)));
                    any = true;
                    matched_r[j] = true;
                }
            }
            if !any && left_alone && lts + after + span + GRACE < clock {
                out.push((k.clone(), f(Some(*a), None), *lts));
            }
        }
        for (j, (k, rts, p)) in rights.iter().enumerate() {
            if !matched_r[j] && right_alone && rts + before + span + GRACE < clock {
                out.push((k.clone(), f(None, Some(p)), *rts));
            }
        }
    }
    common::sorted_debug(out)
}

#[test]
fn stream_stream_joins_match_a_recomputation() {
    let input = inputs();
    let (_, _) = common::run(&topology, config(), &input, &|d: &TopologyTestDriver| {
        let s = &StringSerde;
        let inner =
            stream_join(&input, INNER.0, INNER.1, false, false, |a, p| format!("{}@{}", a.unwrap(), p.unwrap()));
        assert!(inner.len() > 50, "{}", inner.len());
        assert_eq!(decoded(d, "inner-joined", s, s), inner);
        let left = stream_join(&input, SYM, SYM, true, false, |a, p| format!("{}@{}", a.unwrap(), or_dash(p.as_ref())));
        assert!(left.iter().any(|(_, v, _)| v.ends_with("@-")), "some orders never matched");
        assert_eq!(decoded(d, "left-joined", s, s), left);
        let outer = stream_join(&input, SYM, SYM, true, true, |a, p| {
            format!("{}@{}", or_dash(a.as_ref()), or_dash(p.as_ref()))
        });
        assert!(outer.iter().any(|(_, v, _)| v.starts_with("-@")), "some clicks never matched");
        assert_eq!(decoded(d, "outer-joined", s, s), outer);
        assert!(d.metrics().late_records.with_label_values(&["order-clicks-this"]).get() > 0, "some records were late");
    });
}

#[test]
fn table_and_global_table_joins_match_a_recomputation() {
    let input = inputs();
    let (_, _) = common::run(&topology, config(), &input, &|d: &TopologyTestDriver| {
        let s = &StringSerde;
        let (mut enriched, mut enriched_left, mut with_country, mut with_country_left) =
            (vec![], vec![], vec![], vec![]);
        let countries: BTreeMap<String, String> = input
            .iter()
            .filter(|i| i.topic == "countries")
            .map(|i| (text(&i.key), text(i.value.as_ref().unwrap())))
            .collect();
        let (mut users, mut limits) = (BTreeMap::new(), BTreeMap::new());
        for (_, recs) in task_order(&input, &["users", "limits", "orders", "clicks"]) {
            for r in recs {
                let k = text(&r.key);
                match (r.topic.as_str(), &r.value) {
                    ("users", Some(v)) => drop(users.insert(k, text(v))),
                    ("users", None) => drop(users.remove(&k)),
                    ("limits", Some(v)) => drop(limits.insert(k, long(v))),
                    ("orders", Some(v)) => {
                        let a = long(v);
                        if let Some(n) = users.get(&k) {
                            enriched.push((k.clone(), format!("{a} by {n}"), r.ts));
                        }
                        enriched_left.push((k.clone(), format!("{a} by {}", or_dash(users.get(&k))), r.ts));
                        let c = countries.get(&country_code(&k));
                        if let Some(c) = c {
                            with_country.push((k.clone(), format!("{a} in {c}"), r.ts));
                        }
                        with_country_left.push((k.clone(), format!("{a} in {}", or_dash(c)), r.ts));
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(decoded(d, "enriched", s, s), common::sorted_debug(enriched));
        assert_eq!(decoded(d, "enriched-left", s, s), common::sorted_debug(enriched_left));
        assert_eq!(decoded(d, "with-country", s, s), common::sorted_debug(with_country));
        assert_eq!(decoded(d, "with-country-left", s, s), common::sorted_debug(with_country_left));
        // Table–table joins hold the join of the final tables.
        let keys: std::collections::BTreeSet<&String> = users.keys().chain(limits.keys()).collect();
        let (mut inner, mut left, mut outer) = (vec![], vec![], vec![]);
        for k in keys {
            let (n, l) = (users.get(k), limits.get(k));
            if let (Some(n), Some(l)) = (n, l) {
                inner.push((k.clone(), format!("{n}:{l}")));
            }
            if let Some(n) = n {
                left.push((k.clone(), format!("{n}:{}", or_dash(l))));
            }
            outer.push((k.clone(), format!("{}:{}", or_dash(n), or_dash(l))));
        }
        assert!(inner.len() < left.len() && left.len() < outer.len(), "{inner:?} {left:?} {outer:?}");
        assert_eq!(d.store(&USER_LIMITS), inner);
        assert_eq!(d.store(&USER_LIMITS_LEFT), left);
        assert_eq!(d.store(&USER_LIMITS_OUTER), outer);
    });
}

#[test]
fn joins_are_identical_with_and_without_crashes() {
    let observe = |d: &TopologyTestDriver| {
        (
            STREAM_OUTPUTS.map(|t| raw_sorted(d, t)),
            d.store(&USER_LIMITS),
            d.store(&USER_LIMITS_LEFT),
            d.store(&USER_LIMITS_OUTER),
            d.store(&USERS),
        )
    };
    golden(&topology, config(), &inputs(), &[30, 200, 201, 470], &observe);
}

#[test]
fn joining_a_stream_whose_key_changed_asks_for_a_repartition() {
    let b = StreamsBuilder::new();
    let table = b.table("t", Consumed::with(StringSerde, StringSerde), &USERS);
    let s = b.stream("s", Consumed::with(StringSerde, StringSerde)).select_key(|_, v| v.clone());
    s.join_table(&table, |a, b| format!("{a}{b}"));
    assert!(matches!(b.build(), Err(DslError::NeedsRepartition { .. })));
}
