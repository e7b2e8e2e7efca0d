//! Interoperability with a client no one here wrote: Python's confluent-kafka (SchemaRegistryClient,
//! AvroSerializer, AvroDeserializer) registers the contract in finstream's embedded registry over
//! HTTP, writes `transactions` to Apache Kafka that a finstream topology decodes, and
//! reads back the `account-balances` records finstream wrote, decimals and timestamps intact.
//!
//! Needs `python3` with `confluent-kafka[avro,schemaregistry]`; `scripts/test.sh` installs it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use runtime::{KafkaSchemaStore, KafkaStreams};
use rust_decimal::Decimal;
use schemas::registry::{server, EmbeddedRegistry, SchemaRegistry};
use schemas::{AvroSerde, BalanceUpdated, TransactionEvent, TransactionKind};
use serde_json::{json, Value as J};
use streams::{
    JsonSerde, ProcessError, Processor, ProcessorContext, Record, StoreSpec, StreamsMetrics, StringSerde, Topology,
};
use testkit::Kafka;

/// A running balance per account, written as the contract's `BalanceUpdated`.
struct Balance;

impl Processor<String, TransactionEvent> for Balance {
    fn process(
        &mut self,
        r: Record<String, TransactionEvent>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let tx = &r.value;
        let mut store = ctx.kv_store::<String, (Decimal, i64)>("balances")?;
        let (balance, count) = store.get(&tx.account_id)?.unwrap_or_default();
        let signed = if tx.kind == TransactionKind::Deposit { tx.amount } else { -tx.amount };
        let next = (balance + signed, count + 1);
        store.put(&tx.account_id, &next)?;
        let out = BalanceUpdated {
            account_id: tx.account_id.clone(),
            user_id: tx.user_id.clone(),
            balance: next.0,
            currency: tx.currency.clone(),
            last_transaction_id: tx.transaction_id.clone(),
            applied_count: next.1,
            updated_at: tx.occurred_at,
        };
        ctx.forward(Record::new(tx.account_id.clone(), out, r.timestamp))
    }
}

fn topology(registry: Arc<dyn SchemaRegistry>) -> Topology {
    let mut t = Topology::new();
    t.add_source::<String, TransactionEvent>(
        "transactions",
        &["transactions"],
        StringSerde,
        AvroSerde::<TransactionEvent>::new(registry.clone()),
    )
    .unwrap()
    .add_processor("balance", || Balance, &["transactions"])
    .unwrap()
    .add_state_store(
        StoreSpec::key_value::<String, (Decimal, i64)>("balances", StringSerde, JsonSerde::default()),
        &["balance"],
    )
    .unwrap()
    .add_sink::<String, BalanceUpdated>(
        "account-balances",
        "account-balances",
        StringSerde,
        AvroSerde::<BalanceUpdated>::new(registry),
        &["balance"],
    )
    .unwrap();
    t
}

/// Transactions as the Python side sends them: amounts as decimal strings (with every scale the
/// contract allows), times as epoch milliseconds.
fn input() -> Vec<J> {
    let amounts = ["0.01", "12.34", "1000", "99999.99", "0.5", "7.25", "123456789.12", "3.1"];
    (0..40)
        .map(|i| {
            let merchant =
                if i % 2 == 0 { json!({"merchant_id": "m-1", "name": "Café Zoë", "mcc": "5812"}) } else { J::Null };
            json!({
                "transaction_id": format!("py-{i}"),
                "account_id": format!("acc-{}", i % 5),
                "user_id": format!("user-{}", i % 5),
                "kind": if i % 3 == 0 { "DEPOSIT" } else { "PAYMENT" },
                "amount": amounts[i % amounts.len()],
                "currency": "EUR",
                "status": "COMPLETED",
                "category": "groceries",
                "counterparty_account_id": null,
                "merchant": merchant,
                "goal_id": null,
                "channel": "CARD",
                "location": null,
                "occurred_at": 1_790_000_000_123i64 + i as i64 * 60_000,
            })
        })
        .collect()
}

/// The Python interpreter with confluent-kafka.
fn python() -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import confluent_kafka, fastavro"]).status();
    assert!(
        probe.map(|s| s.success()).unwrap_or(false),
        "{python} lacks confluent-kafka: run scripts/test.sh (it installs confluent-kafka[avro,schemaregistry])"
    );
    python
}

/// Python produces `txs` to `transactions` (registering the schema at `registry_url`) and reads
/// back as many `account-balances` records, decoded with the Confluent deserializer.
fn run_python(python: &str, bootstrap: &str, registry_url: &str, txs: &[J], dir: &Path) -> Vec<J> {
    let input_path = dir.join("input.json");
    let output_path = dir.join("output.json");
    std::fs::write(&input_path, serde_json::to_vec(txs).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/interop/confluent_roundtrip.py");
    let status = Command::new(python)
        .arg(script)
        .args([bootstrap, registry_url])
        .arg(&input_path)
        .args(["account-balances", &txs.len().to_string()])
        .arg(&output_path)
        .status()
        .unwrap();
    assert!(status.success(), "python client failed");
    serde_json::from_slice(&std::fs::read(&output_path).unwrap()).unwrap()
}

/// Every record Python decoded equals a plain recomputation of the running balance from `txs`.
fn check_balances(txs: &[J], out: &[J]) {
    assert_eq!(out.len(), txs.len());
    let mut balance: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut expected: BTreeMap<String, J> = BTreeMap::new();
    for (i, tx) in txs.iter().enumerate() {
        let account = tx["account_id"].as_str().unwrap().to_string();
        let amount: Decimal = tx["amount"].as_str().unwrap().parse().unwrap();
        let b = balance.entry(account.clone()).or_default();
        *b += if tx["kind"] == "DEPOSIT" { amount } else { -amount };
        expected.insert(
            tx["transaction_id"].as_str().unwrap().to_string(),
            json!({
                "key": account,
                "value": {
                    "account_id": account,
                    "user_id": tx["user_id"],
                    // Decimal(18,4) on the wire: Python sees exactly four decimal places.
                    "balance": format!("{:.4}", b),
                    "currency": "EUR",
                    "last_transaction_id": format!("py-{i}"),
                    "applied_count": txs[..=i].iter().filter(|t| t["account_id"] == tx["account_id"]).count(),
                    "updated_at": tx["occurred_at"],
                }
            }),
        );
    }
    for got in out {
        let id = got["value"]["last_transaction_id"].as_str().unwrap();
        assert_eq!(got, &expected[id], "record for {id}");
    }
}

#[test]
fn python_confluent_kafka_writes_inputs_and_reads_derived_topics() {
    let python = python();

    // A private broker: the Python side writes `transactions` and reads `account-balances`.
    let kafka = Kafka::cluster(1);
    kafka.create_topics(&[("transactions", 2), ("account-balances", 2)]);
    let bs = kafka.bootstrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut config = testkit::streams_config(&bs, "interop", &dir.path().join("state"));
    config.commit_interval_ms = Some(200);

    // The embedded registry, persisted in `_schemas`, served over HTTP like Confluent's.
    let store = Arc::new(KafkaSchemaStore::open(&config, "_schemas").unwrap());
    let registry = Arc::new(EmbeddedRegistry::open(store).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(server::serve(listener, registry.clone()));

    let mut app = KafkaStreams::new(topology(registry.clone()), config, StreamsMetrics::default()).unwrap();
    app.start().unwrap();

    let txs = input();
    let out = run_python(&python, &bs, &url, &txs, dir.path());
    assert_eq!(app.state(), runtime::State::Running, "{:?}", app.error());

    // The Python producer registered the contract schema (finstream's reader resolved it).
    assert!(registry.subjects().contains(&"transactions-value".to_string()));

    // What Python decoded from finstream's output equals a plain recomputation from the input.
    check_balances(&txs, &out);
    app.close().unwrap();
}

/// `finstream demo --no-generator`: the full finance pipeline waits for another producer, here
/// Python's confluent-kafka talking to the printed bootstrap address and registry URL.
#[test]
fn python_feeds_the_demo_pipeline_without_generator() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let opts = finstream::demo::DemoOptions {
        generator: false,
        registry_port: 0,
        query_port: None,
        state_dir: Some(dir.path().join("state")),
        ..Default::default()
    };
    let demo = finstream::demo::Demo::start(&opts).unwrap();
    // The demo's schema set-up: every contract topic has its value schema before any record.
    let subjects = schemas::registry::HttpRegistry::new(demo.registry_url()).subjects().unwrap();
    for (topic, _) in processors::TopicNames::default().with_value_records() {
        assert!(subjects.contains(&format!("{topic}-value")), "{topic}-value missing from {subjects:?}");
    }
    let txs = input();
    let out = run_python(&python, &demo.bootstrap(), demo.registry_url(), &txs, dir.path());
    assert!(demo.error().is_none(), "{:?}", demo.error());
    check_balances(&txs, &out);
    demo.close().unwrap();
}
