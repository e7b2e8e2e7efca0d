//! On Apache Kafka (a private broker): two `KafkaStreams` instances of a test topology
//! (`common::ledger`, not a finance one) share one application.id, each with a JWT query
//! server on loopback. Nothing in the query service was written for the ledger's stores, yet
//! the generic `/v1/stores` endpoint answers every key from both instances (the non-owner
//! forwards to the owner), merges an administrator's scan across both, and refuses a user
//! token for another user's keys, on the forwarded path too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::ledger::{self, Total, LIMITS_TOPIC, PAYMENTS_TOPIC};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use query::{AppState, Role};
use runtime::{KafkaStreams, StreamsConfig};
use schemas::registry::EmbeddedRegistry;
use serde_json::{json, Value as J};
use streams::{I64Serde, JsonSerde, Serde, StreamsMetrics, StringSerde};
use testkit::Kafka;

const APP: &str = "query-generic";
const PARTITIONS: i32 = 4;
const USERS: usize = 16;
const PER_USER: usize = 3;

fn config(bootstrap: &str, state: &std::path::Path, server: String) -> StreamsConfig {
    let mut c = testkit::streams_config(bootstrap, APP, state);
    c.application_server = Some(server);
    c
}

struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn serve(rt: &tokio::runtime::Runtime, listener: tokio::net::TcpListener, app: &KafkaStreams) -> Server {
    let registry = Arc::new(EmbeddedRegistry::in_memory());
    let state = AppState::new(Arc::new(app.state_handle()), registry, ledger::jwt(), app.metrics().clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(query::serve(listener, query::app(state), async move { drop(rx.await) }));
    Server { stop: Some(tx) }
}

struct Reply {
    status: u16,
    served_by: Option<String>,
    body: J,
}

fn get(rt: &tokio::runtime::Runtime, url: &str, token: &str) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    rt.block_on(async {
        let req = hyper::Request::get(url)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let served_by = resp.headers().get("x-finstream-served-by").map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply { status, served_by, body: serde_json::from_slice(&body).unwrap_or(J::Null) }
    })
}

/// Polls until every user's total and limit answers correctly from `url`.
fn converged(
    rt: &tokio::runtime::Runtime,
    url: &str,
    admin: &str,
    totals: &BTreeMap<String, Total>,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let wrong = totals.iter().find_map(|(user, t)| {
            let r = get(rt, &format!("{url}/v1/stores/ledger-totals/keys/{user}"), admin);
            let expected = json!({"user_id": t.user_id, "cents": t.cents, "payments": t.payments});
            if r.status != 200 || r.body["entries"][0]["value"] != expected {
                return Some(format!("{user}: {} {}", r.status, r.body));
            }
            let r = get(rt, &format!("{url}/v1/stores/ledger-limits/keys/{user}"), admin);
            (r.status != 200).then(|| format!("limit of {user}: {} {}", r.status, r.body))
        });
        match wrong {
            None => return Ok(()),
            Some(w) if Instant::now() >= deadline => return Err(w),
            Some(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn a_test_topologys_stores_answer_from_both_instances_with_no_handler_written_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let kafka = Kafka::cluster(1);
    kafka.create_topics(&[(PAYMENTS_TOPIC, PARTITIONS), (LIMITS_TOPIC, 1)]);
    let bs = kafka.bootstrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let la = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let lb = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url_a = format!("http://{}", la.local_addr().unwrap());
    let url_b = format!("http://{}", lb.local_addr().unwrap());
    let start = |name: &str, url: &str| {
        let mut s = KafkaStreams::new(
            ledger::topology(),
            config(&bs, &dir.path().join(name), url.to_string()),
            StreamsMetrics::default(),
        )
        .unwrap();
        s.start().unwrap();
        s
    };
    let (a, b) = (start("a", &url_a), start("b", &url_b));
    let (_server_a, _server_b) = (serve(&rt, la, &a), serve(&rt, lb, &b));

    let p = testkit::producer(&bs);
    let mut totals = BTreeMap::<String, Total>::new();
    for (user, payment, ts) in ledger::payments(USERS, PER_USER) {
        let t = totals.entry(user.clone()).or_insert(Total { user_id: user.clone(), cents: 0, payments: 0 });
        t.cents += payment.cents;
        t.payments += 1;
        testkit::produce(&p, PAYMENTS_TOPIC, &user, JsonSerde::new().serialize(PAYMENTS_TOPIC, &payment).unwrap(), ts);
    }
    for (i, user) in totals.keys().enumerate() {
        let limit = I64Serde.serialize(LIMITS_TOPIC, &(i as i64 * 10)).unwrap();
        testkit::produce(&p, LIMITS_TOPIC, StringSerde.serialize(LIMITS_TOPIC, user).unwrap(), limit, 0);
    }
    rdkafka::producer::Producer::flush(&p, Duration::from_secs(30)).unwrap();

    assert!(
        testkit::wait_until(Duration::from_secs(90), || a.state_handle().hosts().len() == 2
            && !a.state_handle().assignment().1.is_empty()
            && !b.state_handle().assignment().1.is_empty()),
        "the group split the tasks"
    );
    let admin = ledger::token("ops", Role::Admin);
    for url in [&url_a, &url_b] {
        converged(&rt, url, &admin, &totals).unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    // Each instance forwards some keys to the other; A's forwarded ones are B's users.
    let mut owned_by_b = BTreeSet::new();
    for (url, other) in [(&url_a, &url_b), (&url_b, &url_a)] {
        let forwarded: Vec<&String> = totals
            .keys()
            .filter(|u| {
                let r = get(&rt, &format!("{url}/v1/stores/ledger-totals/keys/{u}"), &admin);
                r.served_by.as_deref() == Some(other.as_str())
            })
            .collect();
        assert!(!forwarded.is_empty() && forwarded.len() < USERS, "{url} forwarded {} of {USERS}", forwarded.len());
        if url == &url_a {
            owned_by_b.extend(forwarded.into_iter().cloned());
        }
    }

    // A user of B's, asked at A: their own entries come back through forwarding; another
    // user's token gets the 404 of an absent key, for the lookup and nothing from a scan.
    let remote_user = owned_by_b.first().unwrap().clone();
    let local_user = totals.keys().find(|u| !owned_by_b.contains(*u)).unwrap().clone();
    let (mine, theirs) = (ledger::token(&remote_user, Role::User), ledger::token(&local_user, Role::User));
    let lookup = format!("{url_a}/v1/stores/ledger-totals/keys/{remote_user}");
    let r = get(&rt, &lookup, &mine);
    assert_eq!((r.status, r.served_by.as_deref()), (200, Some(url_b.as_str())), "{}", r.body);
    assert_eq!(r.body["entries"][0]["value"]["payments"], PER_USER as u64);
    let r = get(&rt, &lookup, &theirs);
    assert_eq!((r.status, r.body["error"].as_str()), (404, Some("not_found")), "{}", r.body);
    let absent = get(&rt, &format!("{url_a}/v1/stores/ledger-totals/keys/u-404"), &admin);
    assert_eq!(r.body, absent.body, "another user's key reads like an absent one");
    let scan = format!("{url_a}/v1/stores/ledger-payments?prefix={remote_user}%7C");
    let r = get(&rt, &scan, &mine);
    assert_eq!((r.status, r.served_by.as_deref()), (200, Some(url_b.as_str())), "{}", r.body);
    assert_eq!(r.body["entries"].as_array().map(Vec::len), Some(PER_USER), "{}", r.body);
    let r = get(&rt, &scan, &theirs);
    assert_eq!((r.status, r.body["entries"].clone()), (200, json!([])), "{}", r.body);
    let r = get(&rt, &format!("{url_a}/v1/stores/ledger-audit/keys/p-0-0"), &mine);
    assert_eq!(r.status, 403, "{}", r.body);

    // An administrator's scan asks both instances and merges them in key order, page by page.
    let users: Vec<J> = totals.keys().map(|u| json!(u)).collect();
    for url in [&url_a, &url_b] {
        let (mut seen, mut next) = (Vec::new(), String::new());
        loop {
            let r = get(&rt, &format!("{url}/v1/stores/ledger-totals?limit=5{next}"), &admin);
            assert_eq!(r.status, 200, "{}", r.body);
            seen.extend(r.body["entries"].as_array().unwrap().iter().map(|e| e["key"].clone()));
            match r.body["next"].as_str() {
                Some(c) => next = format!("&after={c}"),
                None => break,
            }
        }
        assert_eq!(seen, users, "{url}");
    }
    // A raw store's key says nothing of its partition: found by asking every one.
    for (user, payment, _) in ledger::payments(USERS, PER_USER).into_iter().filter(|(u, _, _)| *u == remote_user) {
        let r = get(&rt, &format!("{url_a}/v1/stores/ledger-audit/keys/{}", payment.id), &admin);
        assert_eq!(r.body["entries"][0]["value"], format!("{user}:{}", payment.cents), "{}", r.body);
    }
    // The global table answers where asked, under its owner rule.
    let r = get(&rt, &format!("{url_a}/v1/stores/ledger-limits/keys/{remote_user}"), &mine);
    assert_eq!((r.status, r.served_by), (200, None), "{}", r.body);
    assert_eq!(get(&rt, &format!("{url_a}/v1/stores/ledger-limits/keys/{remote_user}"), &theirs).status, 404);

    drop((_server_a, _server_b));
    a.close().unwrap();
    b.close().unwrap();
}
