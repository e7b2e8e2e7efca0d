//! The query API finds every account and user that a producer with librdkafka's default
//! partitioner (Python's confluent-kafka: CRC32) wrote: it routes a key to the partition its
//! sub-topology's partitioner puts it on, and the engine keeps the key's state there.

mod common;

use axum::http::StatusCode;
use common::*;
use processors::stores;
use query::Authenticator;
use schemas::{BudgetPeriod, Category, TransactionKind};
use streams::partitioner::{DecisionBasis, Partitioner};

const ACCOUNTS: usize = 60;

/// Input already in the topics when the application starts (the partitioner is decided from
/// it at the first run, as the runtime does at its first start).
fn python_world() -> World {
    let mut w = World::new().with_producer(Partitioner::Crc32);
    for u in 0..ACCOUNTS / 3 {
        let b = budget(
            &format!("b{u}"),
            &format!("u{u}"),
            Category::Groceries,
            "100",
            BudgetPeriod::Monthly,
            "2026-03-01T00:00:00Z",
        );
        w.budget(&b);
    }
    for a in 0..ACCOUNTS {
        let (account, user) = (format!("a{a}"), format!("u{}", a / 3));
        let amount = format!("{}", 10 + a);
        w.tx(&txn(&format!("t{a}"), &account, &user, TransactionKind::Deposit, &amount, "2026-03-02T10:00:00Z"));
        w.tx(&txn(&format!("p{a}"), &account, &user, TransactionKind::Payment, "1", "2026-03-03T10:00:00Z"));
    }
    w.rate("USD", "1");
    for u in 0..ACCOUNTS / 3 {
        w.profile(&format!("u{u}"), "UTC");
    }
    w.run();
    w
}

#[tokio::test]
async fn every_account_and_user_a_python_producer_wrote_is_found() {
    let w = python_world();
    let decisions = w.d.partitioner_decisions();
    assert_eq!(decisions["transactions"].partitioner, Partitioner::Crc32);
    assert_eq!(decisions["transactions"].basis, DecisionBasis::Detected);
    // 20 budgets over 4 partitions are too few to tell (16 records must tell CRC32 apart from
    // each other hash): the users sub-topology falls back to murmur2 and the budgets, which
    // CRC32 put elsewhere, are re-placed to where murmur2 puts their users.
    assert_eq!(decisions["budgets"].basis, DecisionBasis::Default);
    let users = w.d.topology().subtopology_of_store(stores::BUDGETS).unwrap();
    assert_eq!(w.d.partition_plan().unwrap().subtopology(users).unwrap().partitioner, Partitioner::Murmur2);
    assert!(w.d.metrics().misplaced_records.with_label_values(&["budgets"]).get() > 0);
    let app = w.app_with(w.task_stores(), Authenticator::disabled());
    for a in 0..ACCOUNTS {
        let r = get(&app, &format!("/v1/accounts/a{a}/balance"), None).await;
        assert_eq!(r.status, StatusCode::OK, "a{a}: {:?}", r.body);
        assert_eq!(r.body["balance"], format!("{}.0000", 9 + a), "a{a}");
        assert_eq!(r.body["applied_count"], 2, "a{a}: both legs in one task");
    }
    for u in 0..ACCOUNTS / 3 {
        let r = get(&app, &format!("/v1/users/u{u}/budgets?at=2026-03-15"), None).await;
        assert_eq!(r.status, StatusCode::OK, "u{u}: {:?}", r.body);
        assert_eq!(r.body["budgets"].as_array().map(Vec::len), Some(1), "u{u}: {:?}", r.body);
    }
    assert_eq!(w.d.metrics().misplaced_records.with_label_values(&["transactions"]).get(), 0);
}

/// Routing with murmur2 over the same committed state misses accounts: what the API did
/// before it asked the plan.
#[tokio::test]
async fn murmur2_routing_would_miss_them() {
    let w = python_world();
    let stores = w.task_stores().with_store_partitioner(stores::BALANCES, Partitioner::Murmur2);
    let app = w.app_with(stores, Authenticator::disabled());
    let mut missing = 0;
    for a in 0..ACCOUNTS {
        if get(&app, &format!("/v1/accounts/a{a}/balance"), None).await.status == StatusCode::NOT_FOUND {
            missing += 1;
        }
    }
    assert!(missing > ACCOUNTS / 3, "{missing} of {ACCOUNTS} accounts not found");
}
