//! The generic `/v1/stores` endpoint over a test topology (`common::ledger`) the service has no
//! handler for: listing, point lookups, prefix / range scans merged across partitions in key
//! order with cursors, windowed and global stores, raw stores, 503 while a partition restores,
//! and the stores in `/openapi.json`.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use common::ledger::{self, HOURLY, PAYMENTS, T0, TOTALS};
use common::{error, get};
use query::{AppState, Authenticator, LocalStores};
use schemas::registry::EmbeddedRegistry;
use serde_json::{json, Value as J};
use streams::StreamsMetrics;

const USERS: usize = 6;
const PER_USER: usize = 4;
const PARTITIONS: i32 = 4;

fn app(stores: LocalStores) -> Router {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    query::app(AppState::new(Arc::new(stores), registry, Authenticator::disabled(), StreamsMetrics::default()))
}

fn keys(body: &J) -> Vec<J> {
    body["entries"].as_array().unwrap().iter().map(|e| e["key"].clone()).collect()
}

#[tokio::test]
async fn lists_every_store_of_the_topology_with_layout_and_access() {
    let (_, stores) = ledger::local(USERS, PER_USER, PARTITIONS);
    let app = app(stores);
    let r = get(&app, "/v1/stores", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let listed: Vec<(String, String, String, bool)> = r.body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |f: &str| s[f].as_str().unwrap().to_string();
            (text("name"), text("layout"), text("access"), s["everywhere"].as_bool().unwrap())
        })
        .collect();
    let row = |n: &str, l: &str, a: &str, e| (n.to_string(), l.to_string(), a.to_string(), e);
    assert_eq!(
        listed,
        [
            row("ledger-audit", "key_value", "admin_only", false),
            row("ledger-hourly", "window", "per_owner", false),
            row("ledger-limits", "key_value", "per_owner", true),
            row("ledger-payments", "key_value", "per_owner", false),
            row("ledger-totals", "key_value", "per_owner", false),
        ]
    );
}

#[tokio::test]
async fn point_lookups_answer_from_the_owning_partition_rendered_by_the_spec() {
    let (d, stores) = ledger::local(USERS, PER_USER, PARTITIONS);
    let expected = d.store_get(&TOTALS, &"u-2".to_string()).unwrap();
    let app = app(stores);
    let r = get(&app, "/v1/stores/ledger-totals/keys/u-2", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["store"], "ledger-totals");
    assert_eq!(r.body["entries"][0]["key"], "u-2");
    assert_eq!(r.body["entries"][0]["value"], json!({"user_id": "u-2", "cents": expected.cents, "payments": 4}));
    assert!(r.body.get("next").is_none(), "a lookup of one key has no next page: {:?}", r.body);

    // Composite keys are percent-encoded in the path.
    let r = get(&app, "/v1/stores/ledger-payments/keys/u-3%7Cp-3-1", None).await;
    assert_eq!((r.status, r.body["entries"][0]["value"].clone()), (StatusCode::OK, json!(401)), "{:?}", r.body);

    let m = error(&get(&app, "/v1/stores/ledger-totals/keys/u-99", None).await, StatusCode::NOT_FOUND, "not_found");
    assert!(m.contains("ledger-totals"), "{m}");
    let m = error(&get(&app, "/v1/stores/nope/keys/u-1", None).await, StatusCode::NOT_FOUND, "not_found");
    assert!(m.contains("nope"), "{m}");
    error(&get(&app, "/v1/stores/nope", None).await, StatusCode::NOT_FOUND, "not_found");

    // A store without a spec (raw, admin only) is found by asking every partition: its key
    // (a payment id) is not the record key (the user) it was partitioned by.
    let r = get(&app, "/v1/stores/ledger-audit/keys/p-4-2", None).await;
    assert_eq!((r.status, r.body["entries"][0]["value"].clone()), (StatusCode::OK, json!("u-4:502")), "{:?}", r.body);
    error(&get(&app, "/v1/stores/ledger-audit/keys/p-9-9", None).await, StatusCode::NOT_FOUND, "not_found");

    // Windowed: every window of the key, with its start; global: answered here.
    let r = get(&app, "/v1/stores/ledger-hourly/keys/u-1", None).await;
    let windows: Vec<(i64, i64)> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["start"].as_i64().unwrap(), e["value"].as_i64().unwrap()))
        .collect();
    let expected: Vec<(i64, i64)> =
        d.store(&HOURLY).into_iter().filter(|(k, _, _)| k == "u-1").map(|(_, s, v)| (s, v)).collect();
    assert_eq!(windows, expected);
    assert_eq!(windows.first(), Some(&(T0, 200)));
    let r = get(&app, "/v1/stores/ledger-limits/keys/u-5", None).await;
    assert_eq!((r.status, r.body["entries"][0]["value"].clone()), (StatusCode::OK, json!(6000)), "{:?}", r.body);
}

#[tokio::test]
async fn scans_merge_every_partition_in_key_order_and_page_with_cursors() {
    let (d, stores) = ledger::local(USERS, PER_USER, PARTITIONS);
    let all: Vec<J> = d.store(&PAYMENTS).into_iter().map(|(k, _)| json!(k)).collect();
    assert_eq!(all.len(), USERS * PER_USER);
    let held: Vec<i32> = (0..PARTITIONS).filter(|p| !d.store_raw_in(PAYMENTS.name(), *p).is_empty()).collect();
    assert!(held.len() > 1, "the users spread over partitions: {held:?}");
    let app = app(stores);

    // Pages of 5 over the whole store: every key once, in key order.
    let (mut seen, mut uri) = (Vec::new(), "/v1/stores/ledger-payments?limit=5".to_string());
    loop {
        let r = get(&app, &uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        seen.extend(keys(&r.body));
        match r.body["next"].as_str() {
            Some(next) => uri = format!("/v1/stores/ledger-payments?limit=5&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, all);

    // Prefix and range, default limit.
    let r = get(&app, "/v1/stores/ledger-payments?prefix=u-2%7C", None).await;
    assert_eq!(keys(&r.body), (0..PER_USER).map(|j| json!(format!("u-2|p-2-{j}"))).collect::<Vec<_>>());
    let r = get(&app, "/v1/stores/ledger-totals?from=u-1&to=u-4", None).await;
    assert_eq!(keys(&r.body), [json!("u-1"), json!("u-2"), json!("u-3")]);
    let r = get(&app, "/v1/stores/ledger-totals?from=u-4", None).await;
    assert_eq!(keys(&r.body), [json!("u-4"), json!("u-5")]);
    // One partition, as instances ask each other: only what it holds, no 404 for absence.
    let r = get(&app, &format!("/v1/stores/ledger-payments?partitions={}", held[0]), None).await;
    let expected = d.store_raw_in(PAYMENTS.name(), held[0]).len();
    assert_eq!(r.body["entries"].as_array().unwrap().len(), expected, "{:?}", r.body);
    let r = get(&app, "/v1/stores/ledger-totals/keys/u-99?partitions=0,1", None).await;
    assert_eq!((r.status, r.body["entries"].clone()), (StatusCode::OK, json!([])));

    // Window stores scan whole or by key, never by prefix.
    let r = get(&app, "/v1/stores/ledger-hourly?limit=1000", None).await;
    assert_eq!(r.body["entries"].as_array().unwrap().len(), d.store(&HOURLY).len());
    let m =
        error(&get(&app, "/v1/stores/ledger-hourly?prefix=u-1", None).await, StatusCode::BAD_REQUEST, "bad_request");
    assert!(m.contains("windowed"), "{m}");
}

#[tokio::test]
async fn bad_parameters_are_400s_that_say_what_was_wrong() {
    let (_, stores) = ledger::local(2, 1, PARTITIONS);
    let app = app(stores);
    for (uri, needle) in [
        ("/v1/stores/ledger-totals?limit=0", "limit"),
        ("/v1/stores/ledger-totals?limit=1001", "limit"),
        ("/v1/stores/ledger-totals/keys/u-1?limit=x", "limit"),
        ("/v1/stores/ledger-totals?prefix=u&from=u-1", "prefix"),
        ("/v1/stores/ledger-totals?after=zz", "after"),
        ("/v1/stores/ledger-totals?partitions=7", "partitions"),
        ("/v1/stores/ledger-totals?partitions=a", "partitions"),
        ("/v1/stores/ledger-totals?colour=red", "colour"),
    ] {
        let m = error(&get(&app, uri, None).await, StatusCode::BAD_REQUEST, "bad_request");
        assert!(m.contains(needle), "{uri}: {m}");
    }
    let long = "k".repeat(2000);
    error(
        &get(&app, &format!("/v1/stores/ledger-totals/keys/{long}"), None).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
}

#[tokio::test]
async fn a_restoring_partition_answers_503_with_retry_after() {
    let (_, mut stores) = ledger::local(USERS, PER_USER, PARTITIONS);
    let p = stores.partition_of(TOTALS.name(), b"u-1");
    stores.restoring.push(p);
    let app = app(stores);
    for uri in ["/v1/stores/ledger-totals/keys/u-1", "/v1/stores/ledger-totals", "/v1/stores/ledger-audit/keys/p-1-0"] {
        let r = get(&app, uri, None).await;
        error(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        assert_eq!(r.headers.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"), "{uri}");
    }
}

#[tokio::test]
async fn openapi_describes_the_routes_and_names_the_stores() {
    let (_, stores) = ledger::local(1, 1, 1);
    let app = app(stores);
    let doc = get(&app, "/openapi.json", None).await.body;
    for path in ["/v1/stores", "/v1/stores/{store}", "/v1/stores/{store}/keys/{key}"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documented");
    }
    let store_param = doc["paths"]["/v1/stores/{store}/keys/{key}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "store")
        .unwrap()
        .clone();
    let names = store_param["schema"]["enum"].as_array().unwrap();
    assert!(names.contains(&json!("ledger-totals")) && names.contains(&json!("ledger-audit")), "{store_param}");
    assert!(store_param["description"].as_str().unwrap().contains("administrators only"), "{store_param}");
    assert!(doc["components"]["schemas"]["StoreEntries"].is_object());
}
