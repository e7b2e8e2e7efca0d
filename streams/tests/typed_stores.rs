//! Typed store handles used from the Processor API (`ctx.store(&DEF)`, `ctx.global(&DEF)`,
//! `Topology::add_store`), read by the driver (`driver.store(&DEF)`), and the streams-side types
//! of the generic query endpoint (`QuerySpec`, `BuiltTopology::queryable_stores`, `run_query`).

mod common;

use std::sync::Arc;

use common::{config, golden, rec, Input};
use serde::{Deserialize, Serialize};
use serde_json::json;
use streams::store::query::{query_page, run_query, Caller, Layout, Owner, QueryError, QuerySpec, Routing, Selector};
use streams::store::typed::{KvStoreDef, WindowStoreDef};
use streams::store::{KvBackend, MemoryBackend};
use streams::topology::BuiltTopology;
use streams::{
    I64Serde, JsonSerde, ProcessError, Processor, ProcessorContext, Record, StoreError, StoreSpec, StringSerde,
    Topology, TopologyTestDriver,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Balance {
    user_id: String,
    cents: i64,
}

fn owner_of(b: &Balance) -> Option<&str> {
    Some(&b.user_id)
}

/// account → balance, readable by the balance's owner.
const BALANCES: KvStoreDef<String, Balance> = KvStoreDef::new("balances", &StringSerde, &JsonSerde::new())
    .queryable(QuerySpec::string_keys().owned_by(Owner::Value(owner_of)));
/// (account, hour) → cents moved in that hour; admin only.
const HOURLY: WindowStoreDef<String, i64> =
    WindowStoreDef::new("hourly", &StringSerde, &I64Serde).queryable(QuerySpec::string_keys());
/// currency → cents per unit (global).
const RATES: KvStoreDef<String, i64> = KvStoreDef::new("rates", &StringSerde, &I64Serde);

/// `user|account` keys, routed by the account (the record key) and owned by the user.
fn account_route(text: &str) -> Option<Vec<u8>> {
    text.split_once('|').map(|(_, acc)| acc.as_bytes().to_vec()).filter(|a| !a.is_empty())
}
const BY_USER: KvStoreDef<String, i64> = KvStoreDef::new("by-user", &StringSerde, &I64Serde).queryable(
    QuerySpec::string_keys().owned_by(Owner::Key(|k| k.split('|').next())).routed_by(Routing::Derived(account_route)),
);

const HOUR: i64 = 3_600_000;

/// value: "user:currency:amount"
struct Apply;

impl Processor<String, String> for Apply {
    fn process(&mut self, r: Record<String, String>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let parts: Vec<&str> = r.value.split(':').collect();
        let [user, currency, amount] = parts[..] else {
            return Err(ProcessError::data("bad_payment", r.value.clone()));
        };
        let amount: i64 = amount.parse().map_err(|_| ProcessError::data("bad_amount", amount.to_string()))?;
        let rate = ctx.global(&RATES).get(&currency.to_string())?.unwrap_or(1);
        let cents = amount * rate;
        let mut balances = ctx.store(&BALANCES)?;
        let mut b = balances.get(&r.key)?.unwrap_or(Balance { user_id: user.to_string(), cents: 0 });
        b.cents += cents;
        balances.put(&r.key, &b)?;
        let hour = r.timestamp - r.timestamp.rem_euclid(HOUR);
        let mut hourly = ctx.store(&HOURLY)?;
        let moved = hourly.get(&r.key, hour)?.unwrap_or(0) + cents;
        hourly.put(&r.key, hour, &moved)?;
        let mut by_user = ctx.store(&BY_USER)?;
        by_user.put(&format!("{user}|{}", r.key), &b.cents)?;
        ctx.forward(r.with_value(b.cents))
    }
}

fn topology() -> Arc<BuiltTopology> {
    let mut t = Topology::new();
    t.add_source::<String, String>("payments", &["payments"], StringSerde, StringSerde)
        .unwrap()
        .add_processor("apply", || Apply, &["payments"])
        .unwrap()
        .add_store(&BALANCES, &["apply"])
        .unwrap()
        .add_store(&HOURLY, &["apply"])
        .unwrap()
        .add_store(&BY_USER, &["apply"])
        .unwrap()
        .add_global_table(&RATES, "rates")
        .unwrap()
        .add_sink::<String, i64>("out", "balances-out", StringSerde, I64Serde, &["apply"])
        .unwrap();
    t.build("typed").unwrap()
}

fn inputs() -> Vec<Input> {
    let s = &StringSerde;
    let mut v = vec![rec("rates", &"EUR".to_string(), &110i64, 0, s, &I64Serde)];
    for i in 0..90i64 {
        let (acc, user) = (format!("acc-{}", i % 7), format!("user-{}", i % 7 % 3));
        let currency = if i % 4 == 0 { "EUR" } else { "USD" };
        v.push(rec("payments", &acc, &format!("{user}:{currency}:{}", i * 5 - 100), i * 20 * 60_000, s, s));
    }
    v
}

#[test]
fn processors_use_handles_and_the_driver_reads_them() {
    let observe = |d: &TopologyTestDriver| (d.store(&BALANCES), d.store(&HOURLY), d.store(&BY_USER));
    let (balances, hourly, by_user) = golden(&topology, config(), &inputs(), &[10, 40, 41, 80], &observe);
    let mut expected = std::collections::BTreeMap::<String, Balance>::new();
    for i in 0..90i64 {
        let rate = if i % 4 == 0 { 110 } else { 1 };
        let b = expected
            .entry(format!("acc-{}", i % 7))
            .or_insert(Balance { user_id: format!("user-{}", i % 7 % 3), cents: 0 });
        b.cents += (i * 5 - 100) * rate;
    }
    assert_eq!(balances, expected.clone().into_iter().collect::<Vec<_>>());
    assert_eq!(hourly.iter().map(|(_, _, c)| c).sum::<i64>(), expected.values().map(|b| b.cents).sum::<i64>());
    assert!(hourly.iter().all(|(_, start, _)| start % HOUR == 0));
    assert_eq!(by_user.len(), 7);
}

#[test]
fn a_handle_not_connected_or_declared_with_other_types_is_an_error_not_a_panic() {
    struct Probe;
    impl Processor<String, String> for Probe {
        fn process(&mut self, r: Record<String, String>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
            let not_connected = matches!(ctx.store(&HOURLY), Err(StoreError::NotConnected(_)));
            let wrong = matches!(ctx.store(&BALANCES), Err(StoreError::WrongType { .. }));
            ctx.forward(r.with_value(format!("{not_connected}/{wrong}")))
        }
    }
    let mut t = Topology::new();
    t.add_source::<String, String>("in", &["in"], StringSerde, StringSerde)
        .unwrap()
        .add_processor("probe", || Probe, &["in"])
        .unwrap()
        // "balances" declared by hand with other value types than the handle's.
        .add_state_store(StoreSpec::key_value::<String, String>("balances", StringSerde, StringSerde), &["probe"])
        .unwrap()
        .add_sink::<String, String>("out", "out", StringSerde, StringSerde, &["probe"])
        .unwrap();
    let mut d = TopologyTestDriver::new(t.build("probe").unwrap(), config()).unwrap();
    d.pipe("in", &"k".to_string(), &"v".to_string(), 1, &StringSerde, &StringSerde).unwrap();
    let out = d.read_output::<String, String>("out", &StringSerde, &StringSerde);
    assert_eq!(out[0].value, "true/true");
}

/// The topology after every input has run through it: what the query tests read.
fn ran() -> (Arc<BuiltTopology>, TopologyTestDriver) {
    let topo = topology();
    let mut driver = TopologyTestDriver::new(topo.clone(), config()).unwrap();
    for i in inputs() {
        driver.append_raw(&i.topic, Some(i.key), i.value, i.ts);
    }
    driver.run().unwrap();
    (topo, driver)
}

/// The committed bytes of one store, all partitions merged (the driver's inspection).
fn committed(d: &TopologyTestDriver, store: &str) -> MemoryBackend {
    let b = MemoryBackend::default();
    let entries: Vec<_> = d.store_raw(store).into_iter().map(|(k, v)| (k, Some(v))).collect();
    b.apply(&entries, None).unwrap();
    b
}

#[test]
fn queryable_stores_answer_lookups_and_scans_under_the_owner_rule() {
    let (topo, driver) = ran();
    let stores = topo.queryable_stores();
    let mut names: Vec<&str> = stores.iter().map(|s| s.name()).collect();
    names.sort();
    assert_eq!(names, ["balances", "by-user", "hourly", "rates"]);
    let store = |n: &str| stores.iter().find(|s| s.name() == n).unwrap().clone();

    // Point lookups on balances: admin, the owner, another user.
    let balances = store("balances");
    let bytes = committed(&driver, "balances");
    let acc1 = driver.store_get(&BALANCES, &"acc-1".to_string()).unwrap();
    let got = run_query(balances.as_ref(), &bytes, Caller::Admin, Selector::Key("acc-1"), 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key, json!("acc-1"));
    assert_eq!(got[0].value, json!({"user_id": acc1.user_id, "cents": acc1.cents}));
    let mine = run_query(balances.as_ref(), &bytes, Caller::User(&acc1.user_id), Selector::Key("acc-1"), 10).unwrap();
    assert_eq!(mine, got);
    let theirs = run_query(balances.as_ref(), &bytes, Caller::User("user-9"), Selector::Key("acc-1"), 10);
    assert!(matches!(theirs, Err(QueryError::NotFound)), "another user's entry reads as absent");
    assert!(matches!(
        run_query(balances.as_ref(), &bytes, Caller::Admin, Selector::Key("nope"), 1),
        Err(QueryError::NotFound)
    ));
    assert_eq!(
        balances.routing_key(Selector::Key("acc-1")).unwrap(),
        Some(BALANCES.encode_key(&"acc-1".into()).unwrap())
    );
    // A user's scan must route to one partition; an admin's may scan (here: all, limit 3).
    assert!(matches!(
        run_query(balances.as_ref(), &bytes, Caller::User("user-1"), Selector::Prefix("acc-"), 10),
        Err(QueryError::Unroutable(_))
    ));
    let page = run_query(balances.as_ref(), &bytes, Caller::Admin, Selector::Prefix("acc-"), 3).unwrap();
    assert_eq!(
        page.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        [json!("acc-0"), json!("acc-1"), json!("acc-2")]
    );
    assert!(matches!(
        run_query(balances.as_ref(), &bytes, Caller::Admin, Selector::Prefix(""), 0),
        Err(QueryError::BadLimit { .. })
    ));

    // Composite keys owned by their user part and routed by their account part.
    let by_user = store("by-user");
    let bytes = committed(&driver, "by-user");
    assert_eq!(by_user.routing_key(Selector::Prefix("user-1|acc-4")).unwrap(), Some(b"acc-4".to_vec()));
    assert_eq!(by_user.routing_key(Selector::Prefix("user-1|")).unwrap(), None);
    let own =
        run_query(by_user.as_ref(), &bytes, Caller::User("user-1"), Selector::Prefix("user-1|acc-4"), 10).unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].owner.as_deref(), Some("user-1"));
    let other =
        run_query(by_user.as_ref(), &bytes, Caller::User("user-2"), Selector::Prefix("user-1|acc-4"), 10).unwrap();
    assert!(other.is_empty(), "a scan skips entries of other owners");

    // Window stores render the window start; admin only.
    let hourly = store("hourly");
    assert_eq!(hourly.layout(), Layout::Window);
    let bytes = committed(&driver, "hourly");
    let windows = run_query(hourly.as_ref(), &bytes, Caller::Admin, Selector::Key("acc-3"), 1000).unwrap();
    let expected: Vec<(i64, i64)> =
        driver.store(&HOURLY).into_iter().filter(|(k, _, _)| k == "acc-3").map(|(_, s, v)| (s, v)).collect();
    assert_eq!(windows.iter().map(|e| (e.start.unwrap(), e.value.as_i64().unwrap())).collect::<Vec<_>>(), expected);
    assert!(matches!(
        run_query(hourly.as_ref(), &bytes, Caller::User("user-0"), Selector::Key("acc-3"), 10),
        Err(QueryError::Forbidden(_))
    ));

    // A store without a QuerySpec (here the global rates) still answers administrators, raw.
    let rates = store("rates");
    let raw = MemoryBackend::default();
    raw.apply(&[(b"EUR".to_vec(), Some(110i64.to_be_bytes().to_vec()))], None).unwrap();
    let got = run_query(rates.as_ref(), &raw, Caller::Admin, Selector::Key("EUR"), 1).unwrap();
    assert_eq!((got[0].key.clone(), got[0].value.clone()), (json!("EUR"), json!("000000000000006e")));
    assert!(matches!(
        run_query(rates.as_ref(), &raw, Caller::User("u"), Selector::Key("EUR"), 1),
        Err(QueryError::Forbidden(_))
    ));
}

#[test]
fn pages_resume_after_a_stored_key_and_layouts_refuse_what_they_cannot_select() {
    let (topo, driver) = ran();
    let stores = topo.queryable_stores();
    let store = |n: &str| stores.iter().find(|s| s.name() == n).unwrap().clone();

    // Pages of 3 after the last stored key of the previous page read every key once, in order.
    let balances = store("balances");
    let bytes = committed(&driver, "balances");
    let all = Selector::Range { from: None, to: None };
    let (mut seen, mut after) = (Vec::new(), None::<Vec<u8>>);
    loop {
        let page = query_page(balances.as_ref(), &bytes, Caller::Admin, all, after.as_deref(), 3).unwrap();
        seen.extend(page.iter().map(|(_, e)| e.key.clone()));
        match page.last() {
            Some((k, _)) if page.len() == 3 => after = Some(k.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| json!(format!("acc-{i}"))).collect::<Vec<_>>());
    // A cursor past the selector's upper bound is an empty page, not a wider one.
    let bounded = Selector::Range { from: Some("acc-1"), to: Some("acc-3") };
    let page = query_page(balances.as_ref(), &bytes, Caller::Admin, bounded, Some(b"acc-5"), 10).unwrap();
    assert!(page.is_empty());
    let page = query_page(balances.as_ref(), &bytes, Caller::Admin, bounded, Some(b"acc-1"), 10).unwrap();
    assert_eq!(page.iter().map(|(_, e)| e.key.clone()).collect::<Vec<_>>(), [json!("acc-2")]);
    // A point lookup's empty page is not an error; run_query makes it a NotFound.
    assert!(query_page(balances.as_ref(), &bytes, Caller::User("user-9"), Selector::Key("acc-1"), None, 1)
        .unwrap()
        .is_empty());

    // Window stores answer key lookups and full scans; a prefix of a length-prefixed key is
    // not one of its bytes, so prefix and bounded scans are refused rather than answered wrong.
    let hourly = store("hourly");
    let bytes = committed(&driver, "hourly");
    assert!(!run_query(hourly.as_ref(), &bytes, Caller::Admin, all, 1000).unwrap().is_empty());
    assert!(matches!(
        run_query(hourly.as_ref(), &bytes, Caller::Admin, Selector::Prefix("acc-"), 10),
        Err(QueryError::Unsupported(_))
    ));

    // Global stores answer where a request arrives, without routing.
    let rates = store("rates");
    assert!(rates.everywhere());
    assert_eq!(rates.routing_key(Selector::Key("EUR")).unwrap(), None);
    assert!(!balances.everywhere());
}
