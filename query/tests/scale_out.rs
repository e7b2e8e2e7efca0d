//! On Apache Kafka (a private broker per test: the finance topology reads and writes the default
//! topic names): the finance topology on `KafkaStreams` instances with RocksDB state, each with a
//! query server on loopback.
//!
//! - reads see committed state only;
//! - two instances sharing one application.id answer every key from both (the non-owner
//!   forwards to the owner found through the hosts topic), and after one stops the other
//!   answers everything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use processors::{finance_topology, FinanceConfig};
use query::{AppState, Authenticator};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use runtime::{KafkaStreams, StreamsConfig};
use rust_decimal::Decimal;
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use schemas::*;
use serde_json::Value as J;
use streams::StreamsMetrics;
use testkit::Kafka;

const APP: &str = "query-scale";
const PARTITIONS: i32 = 4;

fn config(bootstrap: &str, state: &std::path::Path, server: Option<String>) -> StreamsConfig {
    let mut c = testkit::streams_config(bootstrap, APP, state);
    c.application_server = server;
    c
}

fn streams(cfg: StreamsConfig, registry: &Arc<dyn SchemaRegistry>) -> KafkaStreams {
    let topology = finance_topology(&FinanceConfig::default(), registry.clone()).unwrap();
    KafkaStreams::new(topology, cfg, StreamsMetrics::default()).unwrap()
}

/// A private broker with the finance topology's input topics.
fn cluster() -> Kafka {
    let kafka = Kafka::cluster(1);
    let names = FinanceConfig::default().topics;
    let inputs = [
        &names.transactions,
        &names.accounts,
        &names.budgets,
        &names.goals,
        &names.user_profiles,
        &names.exchange_rates,
    ];
    kafka.create_topics(&inputs.map(|t| (t.as_str(), PARTITIONS)));
    kafka
}

/// Deposits of round `round` into `acc-0..acc-{accounts}` (owner `user-{i % 7}`), added to the
/// expected balance per account and money in per user.
fn deposit_round(
    p: &BaseProducer,
    serde: &AvroSerde<TransactionEvent>,
    round: i64,
    accounts: usize,
    balances: &mut BTreeMap<String, Decimal>,
    money_in: &mut BTreeMap<String, Decimal>,
) {
    for i in 0..accounts {
        let account = format!("acc-{i}");
        let user = format!("user-{}", i % 7);
        let amount = Decimal::new((i as i64 + 1) * 100 + round * 7, 2);
        let t = TransactionEvent {
            transaction_id: format!("t-{round}-{i}"),
            account_id: account.clone(),
            user_id: user.clone(),
            kind: TransactionKind::Deposit,
            amount,
            currency: "USD".into(),
            status: TransactionStatus::Completed,
            category: Category::Income,
            counterparty_account_id: None,
            merchant: None,
            goal_id: None,
            channel: Channel::BankTransfer,
            location: None,
            occurred_at: TimestampMillis(1_772_668_800_000 + round * 60_000), // 2026-03-05
        };
        let bytes = streams::Serde::serialize(serde, "transactions", &t).unwrap();
        *balances.entry(account.clone()).or_insert(Decimal::ZERO) += amount;
        *money_in.entry(user).or_insert(Decimal::ZERO) += amount;
        testkit::produce(p, "transactions", &account, bytes, t.occurred_at.0);
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).set("partitioner", "murmur2_random").create().unwrap()
}

/// `accounts` accounts with three deposits each; returns the expected balance per account and
/// money in per user.
fn produce(
    bootstrap: &str,
    registry: &Arc<dyn SchemaRegistry>,
    accounts: usize,
) -> (BTreeMap<String, Decimal>, BTreeMap<String, Decimal>) {
    let p = producer(bootstrap);
    let serde = AvroSerde::<TransactionEvent>::new(registry.clone());
    let (mut balances, mut money_in) = (BTreeMap::new(), BTreeMap::new());
    for round in 0..3 {
        deposit_round(&p, &serde, round, accounts, &mut balances, &mut money_in);
    }
    (balances, money_in)
}

struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn serve(
    rt: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    app: &KafkaStreams,
    registry: &Arc<dyn SchemaRegistry>,
) -> Server {
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state =
        AppState::new(Arc::new(app.state_handle()), registry.clone(), Authenticator::disabled(), app.metrics().clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(query::serve(listener, query::app(state), async move { drop(rx.await) }));
    Server { url, stop: Some(tx) }
}

fn get(rt: &tokio::runtime::Runtime, url: &str) -> (u16, Option<String>, J) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    rt.block_on(async {
        let resp = client.get(url.parse().unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let served_by = resp.headers().get("x-finstream-served-by").map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, served_by, serde_json::from_slice(&body).unwrap_or(J::Null))
    })
}

fn amount(d: Decimal) -> String {
    query::model::amount(d)
}

/// Polls until every expected balance and money-in answers correctly from `url`.
fn converged(
    rt: &tokio::runtime::Runtime,
    url: &str,
    balances: &BTreeMap<String, Decimal>,
    money_in: &BTreeMap<String, Decimal>,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut wrong = None;
        for (acc, b) in balances {
            let (status, _, body) = get(rt, &format!("{url}/v1/accounts/{acc}/balance"));
            if status != 200 || body["balance"] != amount(*b).as_str() {
                wrong = Some(format!("{acc}: {status} {body}"));
                break;
            }
        }
        if wrong.is_none() {
            for (user, m) in money_in {
                let (status, _, body) = get(rt, &format!("{url}/v1/users/{user}/cash-flow?month=2026-03"));
                if status != 200 || body["money_in"] != amount(*m).as_str() {
                    wrong = Some(format!("{user}: {status} {body}"));
                    break;
                }
            }
        }
        match wrong {
            None => return Ok(()),
            Some(w) if Instant::now() >= deadline => return Err(w),
            Some(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Records the `balances` processor node has processed.
fn processed(metrics: &StreamsMetrics) -> f64 {
    metrics
        .registry
        .gather()
        .iter()
        .filter(|f| f.name() == "finstream_processor_records_in_total")
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| m.get_label().iter().any(|l| l.value() == processors::topology::nodes::BALANCES))
        .map(|m| m.get_counter().get_value())
        .sum()
}

#[test]
fn reads_see_committed_state_only() {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
    let dir = tempfile::tempdir().unwrap();
    let kafka = cluster();
    let bs = kafka.bootstrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let state_dir = dir.path().join("a");

    // No periodic commit: records are processed, but nothing commits while it runs.
    let mut cfg = config(&bs, &state_dir, None);
    cfg.commit_interval_ms = Some(120_000);
    cfg.transaction_timeout_ms = Some(300_000);
    let mut app = streams(cfg, &registry);
    app.start().unwrap();
    let (balances, _) = produce(&bs, &registry, 6);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let server = serve(&rt, listener, &app, &registry);
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed(app.metrics()) < 18.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(processed(app.metrics()) >= 18.0, "the deposits were processed");
    std::thread::sleep(Duration::from_millis(500));
    for acc in balances.keys() {
        let (status, _, body) = get(&rt, &format!("{}/v1/accounts/{acc}/balance", server.url));
        assert_eq!(status, 404, "uncommitted balance of {acc} must not be visible: {body}");
    }
    drop(server);
    app.close().unwrap(); // commits

    // The committed state is what a restarted instance serves.
    let mut app = streams(config(&bs, &state_dir, None), &registry);
    app.start().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let server = serve(&rt, listener, &app, &registry);
    converged(&rt, &server.url, &balances, &BTreeMap::new(), Duration::from_secs(60)).unwrap();
    drop(server);
    app.close().unwrap();
}

#[test]
fn two_instances_answer_every_key_before_and_after_one_stops() {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
    let dir = tempfile::tempdir().unwrap();
    let kafka = cluster();
    let bs = kafka.bootstrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let la = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let lb = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url_a = format!("http://{}", la.local_addr().unwrap());
    let url_b = format!("http://{}", lb.local_addr().unwrap());

    let mut a = streams(config(&bs, &dir.path().join("a"), Some(url_a.clone())), &registry);
    let mut b = streams(config(&bs, &dir.path().join("b"), Some(url_b.clone())), &registry);
    a.start().unwrap();
    b.start().unwrap();
    let server_a = serve(&rt, la, &a, &registry);
    let server_b = serve(&rt, lb, &b, &registry);
    let (balances, money_in) = produce(&bs, &registry, 40);

    // Both instances hold tasks, and each answers every key.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(a.state_handle().hosts().len() == 2
        && !a.state_handle().assignment().1.is_empty()
        && !b.state_handle().assignment().1.is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !a.state_handle().assignment().1.is_empty() && !b.state_handle().assignment().1.is_empty(),
        "the group split the tasks"
    );
    for url in [&server_a.url, &server_b.url] {
        converged(&rt, url, &balances, &money_in, Duration::from_secs(90)).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    // Some answers were forwarded in each direction.
    for (url, other) in [(&server_a.url, &url_b), (&server_b.url, &url_a)] {
        let forwarded = balances
            .keys()
            .filter(|acc| get(&rt, &format!("{url}/v1/accounts/{acc}/balance")).1.as_deref() == Some(other.as_str()))
            .count();
        assert!(forwarded > 0 && forwarded < balances.len(), "{url} forwarded {forwarded} of {}", balances.len());
    }

    // B stops: A takes over every partition and answers everything.
    drop(server_b);
    b.close().unwrap();
    converged(&rt, &server_a.url, &balances, &money_in, Duration::from_secs(90)).unwrap();
    let (_, tasks) = a.state_handle().assignment();
    assert_eq!(tasks.iter().filter(|t| t.subtopology == 0).count(), PARTITIONS as usize, "A holds every accounts task");
    assert_eq!(a.state_handle().hosts().len(), 1, "B's entry was withdrawn");
    drop(server_a);
    a.close().unwrap();
}

/// What a dashboard polling every account saw while the application scaled.
#[derive(Debug, Default)]
struct Seen {
    ok: usize,
    /// 503 answers, all with Retry-After.
    unavailable: usize,
    /// Anything a client must not see: a 503 without Retry-After, another error, a 404 for an
    /// account already answered, a balance going backwards (deposits only) or past its total.
    violations: Vec<String>,
}

/// Polls `GET /v1/accounts/{acc}/balance` for every account on `url` until `stop`.
fn poll_balances(
    url: String,
    accounts: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    totals: Arc<std::sync::Mutex<BTreeMap<String, Decimal>>>,
) -> Seen {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut seen = Seen::default();
    let mut last: BTreeMap<String, Decimal> = BTreeMap::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for i in 0..accounts {
            let acc = format!("acc-{i}");
            let (status, retry_after, body) = rt.block_on(async {
                let resp = client.get(format!("{url}/v1/accounts/{acc}/balance").parse().unwrap()).await.unwrap();
                let status = resp.status().as_u16();
                let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, retry, serde_json::from_slice::<J>(&body).unwrap_or(J::Null))
            });
            match status {
                200 => {
                    seen.ok += 1;
                    let balance: Decimal = body["balance"].as_str().unwrap().parse().unwrap();
                    let total = totals.lock().unwrap().get(&acc).copied().unwrap_or_default();
                    if last.get(&acc).is_some_and(|b| balance < *b) || balance > total {
                        seen.violations
                            .push(format!("{acc}: balance {balance} after {:?}, produced {total}", last.get(&acc)));
                    }
                    last.insert(acc, balance);
                }
                503 if retry_after.is_some() => seen.unavailable += 1,
                404 if !last.contains_key(&acc) => {}
                _ => seen.violations.push(format!("{acc}: {status} (Retry-After {retry_after:?}) {body}")),
            }
        }
    }
    seen
}

/// Scale 1 → 3 → 1 while deposits keep arriving: a dashboard polling every account through the
/// first instance gets an answer for every key throughout (503 with Retry-After only while its
/// partition moves or restores, never an error, never a balance that goes back), and the final
/// balances are exact.
#[test]
fn scaling_one_three_one_while_producing_keeps_every_key_answerable() {
    const ACCOUNTS: usize = 24;
    let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
    let dir = tempfile::tempdir().unwrap();
    let kafka = cluster();
    let bs = kafka.bootstrap().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listeners: Vec<_> =
        (0..3).map(|_| rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap()).collect();
    let urls: Vec<String> = listeners.iter().map(|l| format!("http://{}", l.local_addr().unwrap())).collect();
    let mut listeners = listeners.into_iter();
    let start = |i: usize| {
        let mut s = streams(config(&bs, &dir.path().join(i.to_string()), Some(urls[i].clone())), &registry);
        s.start().unwrap();
        s
    };

    // Deposits keep arriving, a round every 50 ms, until the end.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let totals = Arc::new(std::sync::Mutex::new(BTreeMap::<String, Decimal>::new()));
    let producing = {
        let (stop, totals, bs, registry) = (stop.clone(), totals.clone(), bs.clone(), registry.clone());
        std::thread::spawn(move || {
            let p = producer(&bs);
            let serde = AvroSerde::<TransactionEvent>::new(registry);
            let (mut balances, mut money_in) = (BTreeMap::new(), BTreeMap::new());
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                // Totals count a round before it is sent: a balance never exceeds them.
                let mut next = balances.clone();
                for i in 0..ACCOUNTS {
                    let amount = Decimal::new((i as i64 + 1) * 100 + round * 7, 2);
                    *next.entry(format!("acc-{i}")).or_insert(Decimal::ZERO) += amount;
                }
                *totals.lock().unwrap() = next;
                deposit_round(&p, &serde, round, ACCOUNTS, &mut balances, &mut money_in);
                round += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            balances
        })
    };

    let a = start(0);
    let server_a = serve(&rt, listeners.next().unwrap(), &a, &registry);
    let poll_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let polling = {
        let (url, stop, totals) = (server_a.url.clone(), poll_stop.clone(), totals.clone());
        std::thread::spawn(move || poll_balances(url, ACCOUNTS, stop, totals))
    };
    let owns = |s: &KafkaStreams| !s.state_handle().assignment().1.is_empty();
    std::thread::sleep(Duration::from_secs(3));

    // 1 → 3.
    let b = start(1);
    let server_b = serve(&rt, listeners.next().unwrap(), &b, &registry);
    let c = start(2);
    let server_c = serve(&rt, listeners.next().unwrap(), &c, &registry);
    assert!(
        testkit::wait_until(Duration::from_secs(90), || owns(&a)
            && owns(&b)
            && owns(&c)
            && b.is_ready()
            && c.is_ready()),
        "three instances share the work"
    );
    std::thread::sleep(Duration::from_secs(3));

    // 3 → 1: each leaves the group, then its server goes away.
    for (s, server) in [(c, server_c), (b, server_b)] {
        s.close().unwrap();
        drop(server);
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(testkit::wait_until(Duration::from_secs(90), || a.is_ready() && a.state_handle().hosts().len() == 1));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let balances = producing.join().unwrap();
    converged(&rt, &server_a.url, &balances, &BTreeMap::new(), Duration::from_secs(90)).unwrap();
    poll_stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = polling.join().unwrap();
    eprintln!("dashboard saw {} answers, {} times 503 + Retry-After", seen.ok, seen.unavailable);
    assert!(
        seen.violations.is_empty(),
        "{} violations, e.g. {:?}",
        seen.violations.len(),
        &seen.violations[..seen.violations.len().min(10)]
    );
    assert!(seen.ok > ACCOUNTS * 10, "the dashboard kept getting answers");
    drop(server_a);
    a.close().unwrap();
}
