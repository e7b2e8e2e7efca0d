//! `finstream demo` in a test: the embedded cluster, registry, topology and generator thread
//! started through the same library function the binary uses, until derived balances appear on
//! `account-balances` over the Kafka protocol.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connectors::Generator;
use finstream::demo::{Demo, DemoOptions, DEMO_PARTITIONS};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use schemas::{AvroSerde, BalanceUpdated};
use streams::serde::Serde;

#[test]
fn demo_pipeline_turns_generated_traffic_into_account_balances() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        rate: 300.0,
        users: 30,
        seed: 5,
        generator: true,
        fraud: false,
        registry_port: 0,
        state_dir: Some(dir.path().join("state")),
        query_port: Some(0),
        bootstrap_servers: None,
    };
    let demo = Demo::start(&opts).unwrap();
    assert!(demo.registry_url().starts_with("http://127.0.0.1:"), "{}", demo.registry_url());

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", demo.bootstrap())
        .set("group.id", "demo-test-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..DEMO_PARTITIONS {
        tpl.add_partition_offset("account-balances", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let serde = AvroSerde::<BalanceUpdated>::new(demo.registry.client.clone()).without_validation();
    let mut balances: BTreeMap<String, BalanceUpdated> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while balances.len() < 5 && Instant::now() < deadline {
        assert!(demo.error().is_none(), "{:?}", demo.error());
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let b = serde.deserialize("account-balances", m.payload().unwrap()).unwrap();
            assert_eq!(m.key(), Some(b.account_id.as_bytes()), "keyed by account");
            balances.insert(b.account_id.clone(), b);
        }
    }
    let summary = demo.close().unwrap().expect("the generator ran");
    assert!(balances.len() >= 5, "only {} accounts got balances in time", balances.len());
    assert!(summary.events > 0);

    // The balances are for the generator's accounts, owned by the generator's users.
    let (events, _) = Generator::generate_all(opts.generator_config());
    let owners: BTreeMap<&str, &str> =
        events.iter().filter_map(|e| e.as_transaction()).map(|t| (t.account_id.as_str(), t.user_id.as_str())).collect();
    for (account, b) in &balances {
        assert_eq!(owners.get(account.as_str()).copied(), Some(b.user_id.as_str()), "{account}");
        assert!(b.applied_count >= 1);
    }
}
