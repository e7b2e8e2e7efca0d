//! Test harness: the real finance topology on the engine's `TopologyTestDriver` (real Avro
//! serde, in-memory registry); its committed stores are copied into `LocalStores` and queried
//! through `query::app` with `tower::ServiceExt::oneshot`.
#![allow(dead_code)]

pub mod ledger;

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use processors::{finance_topology, stores, FinanceConfig};
use query::{AppState, Authenticator, LocalStores};
use rust_decimal::Decimal;
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use schemas::*;
use serde_json::Value as J;
use streams::partitioner::Partitioner;
use streams::store::{KvBackend, MemoryBackend};
use streams::{DriverConfig, StreamsMetrics, StringSerde, TopologyTestDriver};
use tower::ServiceExt;

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

pub fn txn(id: &str, account: &str, user: &str, kind: TransactionKind, amount: &str, at: &str) -> TransactionEvent {
    TransactionEvent {
        transaction_id: id.into(),
        account_id: account.into(),
        user_id: user.into(),
        kind,
        amount: d(amount),
        currency: "USD".into(),
        status: TransactionStatus::Completed,
        category: Category::Groceries,
        counterparty_account_id: None,
        merchant: None,
        goal_id: None,
        channel: Channel::Online,
        location: None,
        occurred_at: TimestampMillis(ms(at)),
    }
}

pub fn budget(id: &str, user: &str, category: Category, limit: &str, period: BudgetPeriod, at: &str) -> BudgetEvent {
    BudgetEvent {
        budget_id: id.into(),
        user_id: user.into(),
        category,
        limit: d(limit),
        currency: "USD".into(),
        period,
        action: BudgetAction::Set,
        updated_at: TimestampMillis(ms(at)),
    }
}

pub fn goal(id: &str, user: &str, target: &str, account: Option<&str>, at: &str) -> GoalEvent {
    GoalEvent {
        event_type: GoalEventType::GoalCreated,
        goal_id: id.into(),
        user_id: user.into(),
        name: format!("Goal {id}"),
        target_amount: d(target),
        currency: "USD".into(),
        target_date: Some(DateDays(20_500)),
        account_id: account.map(Into::into),
        occurred_at: TimestampMillis(ms(at)),
    }
}

/// Stores whose committed contents the query service reads.
pub const STORES: &[&str] = &[
    stores::BALANCES,
    stores::BALANCE_LINEAGE,
    stores::FRAUD_SCORES,
    stores::BUDGETS,
    stores::GOALS,
    stores::SPENDING_DAILY,
    stores::CASH_FLOW,
];

pub struct World {
    pub d: TopologyTestDriver,
    pub registry: Arc<dyn SchemaRegistry>,
    globals: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
    /// The partitioner of the producers writing the input topics.
    producer: Partitioner,
}

impl World {
    pub fn new() -> Self {
        let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
        let topo = finance_topology(&FinanceConfig::default(), registry.clone()).unwrap().build("finance").unwrap();
        let d = TopologyTestDriver::new(topo, DriverConfig { partitions: 4, commit_every: 5, ..Default::default() })
            .unwrap();
        World { d, registry, globals: Vec::new(), producer: Partitioner::Murmur2 }
    }

    /// Input written by producers with `partitioner` (e.g. CRC32: Python's confluent-kafka).
    pub fn with_producer(mut self, partitioner: Partitioner) -> Self {
        self.producer = partitioner;
        self
    }

    fn encode<T: AvroRecord>(&self, topic: &str, v: &T) -> Vec<u8> {
        streams::Serde::serialize(&AvroSerde::<T>::new(self.registry.clone()), topic, v).unwrap()
    }

    pub fn rate(&mut self, code: &str, usd_rate: &str) {
        let v = ExchangeRate { currency: code.into(), usd_rate: d(usd_rate), as_of: TimestampMillis(0) };
        let bytes = self.encode("exchange-rates", &v);
        self.d.pipe_raw("exchange-rates", Some(code.as_bytes().to_vec()), Some(bytes.clone()), 0).unwrap();
        self.globals.push((stores::EXCHANGE_RATES, code.as_bytes().to_vec(), bytes));
    }

    pub fn profile(&mut self, user: &str, tz: &str) {
        let v = UserProfile {
            user_id: user.into(),
            base_currency: "USD".into(),
            timezone: tz.into(),
            home_country: "US".into(),
            updated_at: TimestampMillis(0),
        };
        let bytes = self.encode("user-profile", &v);
        self.d.pipe_raw("user-profile", Some(user.as_bytes().to_vec()), Some(bytes.clone()), 0).unwrap();
        self.globals.push((stores::USER_PROFILES, user.as_bytes().to_vec(), bytes));
    }

    pub fn tx(&mut self, t: &TransactionEvent) {
        let bytes = self.encode("transactions", t);
        let key = Some(t.account_id.as_bytes().to_vec());
        self.d.append_raw_with(self.producer, "transactions", key, Some(bytes), t.occurred_at.0);
    }

    pub fn account(&mut self, a: &AccountEvent) {
        let bytes = self.encode("accounts", a);
        self.d.append_raw("accounts", Some(a.account_id.as_bytes().to_vec()), Some(bytes), a.occurred_at.0);
    }

    pub fn budget(&mut self, b: &BudgetEvent) {
        let bytes = self.encode("budgets", b);
        let key = Some(b.user_id.as_bytes().to_vec());
        self.d.append_raw_with(self.producer, "budgets", key, Some(bytes), b.updated_at.0);
    }

    pub fn goal(&mut self, g: &GoalEvent) {
        let bytes = self.encode("financial-goals", g);
        let key = Some(g.user_id.as_bytes().to_vec());
        self.d.append_raw_with(self.producer, "financial-goals", key, Some(bytes), g.occurred_at.0);
    }

    pub fn run(&mut self) {
        self.d.run().unwrap();
    }

    /// Derived records the topology wrote to `topic`.
    pub fn output<T: AvroRecord>(&self, topic: &str) -> Vec<T> {
        let vs = AvroSerde::<T>::new(self.registry.clone()).without_validation();
        self.d.read_output::<String, T>(topic, &StringSerde, &vs).into_iter().map(|r| r.value).collect()
    }

    /// The committed stores, copied into `partitions` local partitions routed like the engine
    /// (every store here is keyed by its routing key or prefixed by it up to `|`).
    pub fn stores(&self, partitions: i32) -> LocalStores {
        let mut s = LocalStores::new(partitions).with_topology(self.d.topology().clone());
        for store in STORES {
            for (k, v) in self.d.store_raw(store) {
                let routing = routing_key(store, &k);
                s.put(store, &routing, &k, &v).unwrap();
            }
        }
        for (store, k, v) in &self.globals {
            s.put_global(store, k, v).unwrap();
        }
        s
    }

    /// The committed stores exactly as the engine's tasks hold them (partition p = task p), with
    /// query routing by each store's sub-topology partitioner from the driver's plan.
    pub fn task_stores(&self) -> LocalStores {
        let partitions = self.d.partition_plan().expect("run first").subtopology(0).unwrap().partitions;
        let mut s = LocalStores::new(partitions).with_topology(self.d.topology().clone());
        let plan = self.d.partition_plan().unwrap();
        for store in STORES {
            let sub = self.d.topology().subtopology_of_store(store).unwrap();
            let p = plan.subtopology(sub).unwrap().partitioner;
            s = s.with_store_partitioner(store, p);
            let backends = (0..partitions)
                .map(|part| {
                    let b = MemoryBackend::default();
                    let entries: Vec<_> =
                        self.d.store_raw_in(store, part).into_iter().map(|(k, v)| (k, Some(v))).collect();
                    b.apply(&entries, None).unwrap();
                    Arc::new(b) as Arc<dyn KvBackend>
                })
                .collect();
            s = s.with_store(store, backends);
        }
        for (store, k, v) in &self.globals {
            s.put_global(store, k, v).unwrap();
        }
        s
    }

    pub fn app(&self, auth: Authenticator) -> Router {
        self.app_with(self.stores(1), auth)
    }

    pub fn app_with(&self, stores: LocalStores, auth: Authenticator) -> Router {
        let state = AppState::new(Arc::new(stores), self.registry.clone(), auth, StreamsMetrics::default());
        query::app(state)
    }
}

/// The record key a store entry was partitioned by: the store key up to `|` (window-store keys
/// are length-prefixed).
pub fn routing_key(store: &str, key: &[u8]) -> Vec<u8> {
    let k: &[u8] = if store == stores::SPENDING_DAILY { &key[4..] } else { key };
    k.split(|b| *b == b'|').next().unwrap_or(k).to_vec()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: J,
}

pub async fn get(app: &Router, uri: &str, token: Option<&str>) -> Reply {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| J::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply { status, headers, body }
}

/// Asserts an error reply's status and shape and returns its message.
pub fn error(r: &Reply, status: StatusCode, code: &str) -> String {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.body["error"], code, "{:?}", r.body);
    r.body["message"].as_str().expect("message is a string").to_string()
}
