//! Load benchmark of the query API on loopback: point lookups of `/v1/accounts/{id}/balance` on
//! a RocksDB store of `--accounts` accounts (default 100k, over 4 partitions), against `/health`
//! (no state, same HTTP stack) measured in the same run as the baseline.
//!
//! Two kinds of phase per endpoint:
//! - open loop at `--rate` requests/s (default 5000) for `--secs`: latency is measured from
//!   each request's *scheduled* send time, so a stall counts against every request it delays
//!   (no coordinated omission). Target: balance p99 ≤ 5 ms at 5k req/s.
//!   The latency "from send" is also printed: it leaves out how late the client's 1 ms-granular
//!   timer woke up, which the schedule-based figure charges to the server.
//! - closed loop with `--connections` keep-alive connections as fast as they go: throughput.
//!
//! `cargo run --release -p query --bin query-bench -- --accounts 100000 --rate 5000 --secs 5`

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use processors::balances::BalanceState;
use processors::stores;
use query::{AppState, Authenticator, LocalStores};
use rust_decimal::Decimal;
use schemas::registry::EmbeddedRegistry;
use state::{RocksConfig, RocksProvider};
use streams::murmur2::partition_for_key;
use streams::store::{BackendProvider, KvBackend};
use streams::StreamsMetrics;

struct Args {
    accounts: usize,
    rate: u64,
    secs: u64,
    connections: usize,
}

fn args() -> Args {
    let mut a = Args { accounts: 100_000, rate: 5_000, secs: 5, connections: 32 };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).map(String::as_str).unwrap_or("");
        let n: u64 = v.parse().unwrap_or_else(|_| panic!("{} needs a number, got {v:?}", pair[0]));
        match pair[0].as_str() {
            "--accounts" => a.accounts = n as usize,
            "--rate" => a.rate = n,
            "--secs" => a.secs = n,
            "--connections" => a.connections = n as usize,
            other => panic!("unknown argument {other}; known: --accounts --rate --secs --connections"),
        }
    }
    a
}

const PARTITIONS: i32 = 4;

fn account(i: usize) -> String {
    format!("acc-{i:07}")
}

/// Fills RocksDB backends (one per partition) with `n` balances, routed like the engine.
fn fill(dir: &std::path::Path, n: usize) -> Vec<Arc<dyn KvBackend>> {
    let provider = RocksProvider::new(dir, RocksConfig::default()).expect("rocksdb opens");
    let backends: Vec<Arc<dyn KvBackend>> =
        (0..PARTITIONS).map(|p| provider.open(&format!("0_{p}"), stores::BALANCES).expect("store opens")).collect();
    let mut batches: Vec<Vec<streams::store::Entry>> = vec![Vec::new(); PARTITIONS as usize];
    for i in 0..n {
        let id = account(i);
        let b = BalanceState {
            account_id: id.clone(),
            user_id: format!("user-{}", i / 3),
            currency: "EUR".into(),
            balance: Decimal::new(i as i64 * 137 + 5, 2),
            applied_count: (i % 50) as i64 + 1,
            last_transaction_id: format!("t-{i}"),
            updated_at: 1_772_668_800_000 + i as i64,
        };
        let p = partition_for_key(id.as_bytes(), PARTITIONS) as usize;
        batches[p].push((id.into_bytes(), Some(serde_json::to_vec(&b).expect("serializes"))));
    }
    for (p, batch) in batches.into_iter().enumerate() {
        for chunk in batch.chunks(10_000) {
            backends[p].apply(chunk, Some(1)).expect("batch applies");
        }
    }
    backends
}

#[derive(Default)]
struct Outcome {
    /// Latency per request from its scheduled send time, microseconds.
    latencies: Vec<u64>,
    /// Latency per request from its actual send time (excludes client timer lateness).
    service: Vec<u64>,
    errors: usize,
    elapsed: Duration,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.latencies.extend(o.latencies);
        self.service.extend(o.service);
        self.errors += o.errors;
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i] as f64 / 1000.0
    }
    fn service_pct(&self, p: f64) -> f64 {
        if self.service.is_empty() {
            return f64::NAN;
        }
        let i = ((self.service.len() as f64 - 1.0) * p).round() as usize;
        self.service[i] as f64 / 1000.0
    }
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: std::net::SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

/// One GET; true when it answered 200.
async fn request(sender: &mut Sender, host: &str, path: &str) -> bool {
    let req = hyper::Request::get(path).header("host", host).body(Empty::<Bytes>::new()).expect("request");
    if sender.ready().await.is_err() {
        return false;
    }
    match sender.send_request(req).await {
        Ok(resp) => {
            let ok = resp.status() == 200;
            ok && resp.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// `path_of(i)` for request i; `rate == 0`: closed loop for `secs`.
async fn phase(
    addr: std::net::SocketAddr,
    connections: usize,
    rate: u64,
    secs: u64,
    path_of: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Outcome {
    let host = addr.to_string();
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + Duration::from_secs(secs);
    let total = (rate * secs) as usize;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let host = host.clone();
        let path_of = path_of.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let mut out = Outcome::default();
            let mut i = c;
            loop {
                let scheduled = if let Some(gap_ns) = (1_000_000_000u64).checked_div(rate) {
                    if i >= total {
                        break;
                    }
                    let at = start + Duration::from_nanos(i as u64 * gap_ns);
                    tokio::time::sleep_until(at.into()).await;
                    at
                } else {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    now.max(start)
                };
                if rate == 0 && Instant::now() < start {
                    tokio::time::sleep_until(start.into()).await;
                }
                let sent = Instant::now();
                if request(&mut sender, &host, &path_of(i)).await {
                    out.latencies.push(scheduled.elapsed().as_micros() as u64);
                    out.service.push(sent.elapsed().as_micros() as u64);
                } else {
                    out.errors += 1;
                    sender = connect(addr).await;
                }
                i += connections;
            }
            out
        }));
    }
    let mut all = Outcome::default();
    for t in tasks {
        all.merge(t.await.expect("load task"));
    }
    all.elapsed = Instant::now().saturating_duration_since(start);
    all.latencies.sort_unstable();
    all.service.sort_unstable();
    all
}

fn report(name: &str, o: &Outcome) {
    println!(
        "{name:<22} {:>7} req {:>3} err {:>7.0} req/s | from schedule p50 {:>6.3} p99 {:>6.3} max {:>7.3} ms | from send p50 {:>6.3} p99 {:>6.3} ms",
        o.latencies.len(),
        o.errors,
        o.throughput(),
        o.pct(0.50),
        o.pct(0.99),
        o.pct(1.0),
        o.service_pct(0.50),
        o.service_pct(0.99),
    );
}

fn main() {
    let a = args();
    let dir = std::env::temp_dir().join(format!("finstream-query-bench-{}", std::process::id()));
    let t = Instant::now();
    let backends = fill(&dir, a.accounts);
    println!("store: {} accounts in RocksDB over {PARTITIONS} partitions, loaded in {:.1?}", a.accounts, t.elapsed());
    let stores = LocalStores::new(PARTITIONS).with_store(stores::BALANCES, backends);
    let state = AppState::new(
        Arc::new(stores),
        Arc::new(EmbeddedRegistry::in_memory()),
        Authenticator::disabled(),
        StreamsMetrics::default(),
    );
    // The server gets the runtime `finstream` gives it (2 workers); the load generator its own.
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("binds");
    let addr = listener.local_addr().expect("addr");
    server_rt.spawn(query::serve(listener, query::app(state), std::future::pending()));
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");

    let n = a.accounts;
    let balance: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(move |i| format!("/v1/accounts/{}/balance", account((i.wrapping_mul(7919)) % n)));
    let health: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(|_| "/health".to_string());

    // Correctness spot check before timing.
    client_rt.block_on(async {
        let mut s = connect(addr).await;
        assert!(request(&mut s, &addr.to_string(), &format!("/v1/accounts/{}/balance", account(n - 1))).await);
        assert!(!request(&mut s, &addr.to_string(), "/v1/accounts/missing/balance").await);
    });
    // Warm up connections, caches and the allocator.
    client_rt.block_on(phase(addr, a.connections, 0, 1, balance.clone()));

    println!("open loop at {} req/s for {} s, {} connections:", a.rate, a.secs, a.connections);
    let base_open = client_rt.block_on(phase(addr, a.connections, a.rate, a.secs, health.clone()));
    report("  /health (baseline)", &base_open);
    let bal_open = client_rt.block_on(phase(addr, a.connections, a.rate, a.secs, balance.clone()));
    report("  balance", &bal_open);
    println!("closed loop, {} connections, {} s:", a.connections, a.secs);
    let base_closed = client_rt.block_on(phase(addr, a.connections, 0, a.secs, health));
    report("  /health (baseline)", &base_closed);
    let bal_closed = client_rt.block_on(phase(addr, a.connections, 0, a.secs, balance));
    report("  balance", &bal_closed);

    println!(
        "ratios balance/health: open-loop p50 {:.2}x, p99 {:.2}x; closed-loop throughput {:.2}x",
        bal_open.pct(0.5) / base_open.pct(0.5),
        bal_open.pct(0.99) / base_open.pct(0.99),
        bal_closed.throughput() / base_closed.throughput()
    );
    let rate_ok = bal_open.errors == 0 && bal_open.throughput() >= a.rate as f64 * 0.95;
    let verdict = |p99: f64| if rate_ok && p99 <= 5.0 { "MET" } else { "NOT MET" };
    println!(
        "target p99 <= 5 ms at {} req/s (achieved {:.0} req/s): from schedule {} (p99 {:.3} ms), from send {} (p99 {:.3} ms)",
        a.rate,
        bal_open.throughput(),
        verdict(bal_open.pct(0.99)),
        bal_open.pct(0.99),
        verdict(bal_open.service_pct(0.99)),
        bal_open.service_pct(0.99),
    );
    drop(server_rt);
    let _ = std::fs::remove_dir_all(&dir);
}
