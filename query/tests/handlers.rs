//! Every endpoint against state the real finance topology committed (on the engine's test
//! driver), through `query::app` without a server.

mod common;

use axum::http::StatusCode;
use common::*;
use processors::goals::UserGoals;
use processors::stores;
use query::Authenticator;
use schemas::{BudgetPeriod, Category, FraudScore, GoalProgress, TransactionKind};

/// Two users in New York; `u1` has an account with a deposit, a payment and a refund, a
/// monthly groceries budget of 200 and a goal on its account.
fn world() -> World {
    let mut w = World::new();
    w.rate("USD", "1");
    w.rate("EUR", "1.25");
    w.profile("u1", "America/New_York");
    w.profile("u2", "America/New_York");
    w.budget(&budget("b1", "u1", Category::Groceries, "200", BudgetPeriod::Monthly, "2026-03-01T12:00:00Z"));
    w.goal(&goal("g1", "u1", "1000", Some("a1"), "2026-03-01T12:00:00Z"));
    w.tx(&txn("t1", "a1", "u1", TransactionKind::Deposit, "500.50", "2026-03-02T15:00:00Z"));
    w.tx(&txn("t2", "a1", "u1", TransactionKind::Payment, "150.25", "2026-03-03T15:00:00Z"));
    // 2026-03-04T03:00Z is still March 3rd in New York.
    w.tx(&txn("t3", "a1", "u1", TransactionKind::Payment, "19.75", "2026-03-04T03:00:00Z"));
    w.tx(&txn("t4", "a1", "u1", TransactionKind::Payment, "30", "2026-04-01T15:00:00Z"));
    w.tx(&txn("t5", "a2", "u2", TransactionKind::Deposit, "10", "2026-03-02T15:00:00Z"));
    w.run();
    w
}

#[tokio::test]
async fn balance_lineage_and_fraud_scores() {
    let w = world();
    let app = w.app(Authenticator::disabled());
    let r = get(&app, "/v1/accounts/a1/balance", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // 500.50 - 150.25 - 19.75 - 30
    assert_eq!(r.body["balance"], "300.5000");
    assert_eq!(r.body["user_id"], "u1");
    assert_eq!(r.body["currency"], "USD");
    assert_eq!(r.body["applied_count"], 4);
    assert_eq!(r.body["last_transaction_id"], "t4");
    assert_eq!(r.body["updated_at"], "2026-04-01T15:00:00.000Z");

    let r = get(&app, "/v1/accounts/a1/lineage", None).await;
    let legs = r.body["legs"].as_array().unwrap();
    let ids: Vec<&str> = legs.iter().map(|l| l["transaction_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t4", "t3", "t2", "t1"], "newest first");
    assert_eq!(legs[0]["amount"], "-30.0000");
    assert_eq!(legs[0]["balance_after"], "300.5000");
    assert_eq!(legs[3]["leg"], "DEBIT");
    let r = get(&app, "/v1/accounts/a1/lineage?limit=2", None).await;
    assert_eq!(r.body["legs"].as_array().unwrap().len(), 2);

    // Scores answer exactly what the topology emitted on `fraud-scores`.
    let emitted: Vec<FraudScore> = w.output("fraud-scores");
    let of_a1: Vec<&FraudScore> = emitted.iter().filter(|s| s.account_id == "a1").collect();
    assert_eq!(of_a1.len(), 3, "payments are scored: {emitted:?}");
    let r = get(&app, "/v1/accounts/a1/fraud-scores", None).await;
    let scores = r.body["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    assert_eq!(scores[0]["transaction_id"], of_a1.last().unwrap().transaction_id.as_str(), "newest first");
    for s in &of_a1 {
        let r = get(&app, &format!("/v1/accounts/a1/fraud-scores/{}", s.transaction_id), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["score"], s.score);
        assert_eq!(r.body["decision"], s.decision.symbol());
        assert_eq!(r.body["reasons"], serde_json::json!(s.reasons));
        assert_eq!(r.body["scored_at"], query::model::instant(s.scored_at.0));
    }
    let r = get(&app, "/v1/accounts/a1/fraud-scores?limit=1", None).await;
    assert_eq!(r.body["scores"].as_array().unwrap().len(), 1);
    let r = get(&app, "/v1/accounts/a1/fraud-scores/t1", None).await;
    error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn budgets_for_a_date_and_today() {
    let w = world();
    let app = w.app(Authenticator::disabled());
    let r = get(&app, "/v1/users/u1/budgets?at=2026-03-20", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["timezone"], "America/New_York");
    let b = &r.body["budgets"][0];
    assert_eq!(b["budget_id"], "b1");
    assert_eq!(b["category"], "groceries");
    assert_eq!(b["period"], "MONTHLY");
    assert_eq!(b["period_start"], "2026-03-01T05:00:00.000Z", "EST midnight");
    assert_eq!(b["period_end"], "2026-04-01T04:00:00.000Z", "EDT midnight");
    assert_eq!(b["limit"], "200.0000");
    assert_eq!(b["spent"], "170.0000");
    assert_eq!(b["remaining"], "30.0000");
    assert_eq!(b["percent"], "85.00");
    assert_eq!(b["alerts_raised"], serde_json::json!([80]));
    // April: only t4.
    let r = get(&app, "/v1/users/u1/budgets?at=2026-04-01", None).await;
    let b = &r.body["budgets"][0];
    assert_eq!(b["spent"], "30.0000");
    assert_eq!(b["alerts_raised"], serde_json::json!([]));
    // February: before the budget was set.
    let r = get(&app, "/v1/users/u1/budgets?at=2026-02-10", None).await;
    assert_eq!(r.body["budgets"], serde_json::json!([]));
    // Default: today in New York.
    let r = get(&app, "/v1/users/u1/budgets", None).await;
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::New_York).date_naive().to_string();
    assert_eq!(r.body["at"], today.as_str());
    // A known user without budgets, an unknown user.
    let r = get(&app, "/v1/users/u2/budgets", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["budgets"], serde_json::json!([]));
    error(&get(&app, "/v1/users/nobody/budgets", None).await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn goals_spending_and_cash_flow() {
    let w = world();
    let app = w.app(Authenticator::disabled());
    let r = get(&app, "/v1/users/u1/goals", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let g = &r.body["goals"][0];
    let stored: Vec<(String, UserGoals)> = w.d.store_all(stores::GOALS);
    let s = &stored.iter().find(|(u, _)| u == "u1").unwrap().1.goals["g1"];
    let progress: Vec<GoalProgress> = w.output("goal-progress");
    let last = progress.iter().rfind(|p| p.goal_id == "g1").unwrap();
    assert_eq!(g["saved"], query::model::amount(last.saved));
    assert_eq!(g["saved"], query::model::amount(s.saved));
    assert_eq!(g["target"], "1000.0000");
    assert_eq!(g["percent"], query::model::percent(s.percent()));
    assert_eq!(g["status"], "IN_PROGRESS");
    assert_eq!(g["target_date"], "2026-02-16", "day 20500 after 1970-01-01");
    assert_eq!(g["account_id"], "a1");

    let r = get(&app, "/v1/users/u1/spending?from=2026-03-01&to=2026-03-31", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let days = r.body["days"].as_array().unwrap();
    let got: Vec<(String, String, String)> = days
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().into(),
                d["category"].as_str().unwrap().into(),
                d["total"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, [("2026-03-03".to_string(), "groceries".to_string(), "170.0000".to_string())]);
    assert_eq!(days[0]["count"], 2);
    let r = get(&app, "/v1/users/u1/spending?from=2026-04-01&to=2026-04-01", None).await;
    assert_eq!(r.body["days"][0]["total"], "30.0000");
    let r = get(&app, "/v1/users/u2/spending?from=2026-03-01&to=2026-03-31", None).await;
    assert_eq!(r.body["days"], serde_json::json!([]));

    let r = get(&app, "/v1/users/u1/cash-flow?month=2026-03", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["money_in"], "500.5000");
    assert_eq!(r.body["money_out"], "170.0000");
    assert_eq!(r.body["net"], "330.5000");
    assert_eq!(r.body["count"], 3);
    let r = get(&app, "/v1/users/u1/cash-flow?month=2025-12", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["money_in"], "0.0000");
    error(&get(&app, "/v1/users/ghost/cash-flow?month=2026-03", None).await, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn malformed_input_is_a_400_that_says_what() {
    let w = world();
    let app = w.app(Authenticator::disabled());
    let cases = [
        ("/v1/accounts/a%7C1/balance", "account_id"),
        ("/v1/accounts/a1/lineage?limit=0", "limit"),
        ("/v1/accounts/a1/lineage?limit=abc", "limit"),
        ("/v1/accounts/a1/lineage?limt=3", "limt"),
        ("/v1/accounts/a1/fraud-scores/t%20x", "transaction_id"),
        ("/v1/users/u1/budgets?at=2026-13-01", "at"),
        ("/v1/users/u1/spending?from=2026-03-01", "to"),
        ("/v1/users/u1/spending?from=2026-03-05&to=2026-03-01", "before"),
        ("/v1/users/u1/spending?from=2024-01-01&to=2026-03-01", "366"),
        ("/v1/users/u1/cash-flow", "month"),
        ("/v1/users/u1/cash-flow?month=2026-3", "month"),
        (&format!("/v1/users/{}/goals", "x".repeat(200)), "user_id"),
    ];
    for (uri, mention) in cases {
        let r = get(&app, uri, None).await;
        let msg = error(&r, StatusCode::BAD_REQUEST, "bad_request");
        assert!(msg.contains(mention), "{uri}: {msg}");
    }
    for uri in
        ["/v1/accounts/nope/balance", "/v1/accounts/nope/lineage", "/v1/accounts/nope/fraud-scores", "/v1/nothing"]
    {
        error(&get(&app, uri, None).await, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn restoring_partition_is_503_with_retry_after_and_ops_endpoints() {
    let w = world();
    let mut stores = w.stores(4);
    let p = streams::murmur2::partition_for_key(b"a1", 4);
    stores.restoring = vec![p];
    let app = w.app_with(stores, Authenticator::disabled());
    let r = get(&app, "/v1/accounts/a1/balance", None).await;
    error(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(r.headers["retry-after"], "1");
    let r = get(&app, "/ready", None).await;
    error(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(get(&app, "/health", None).await.body["status"], "ok");

    // Routed over 4 partitions, everything else still answers.
    let app = w.app_with(w.stores(4), Authenticator::disabled());
    assert_eq!(get(&app, "/v1/accounts/a1/balance", None).await.body["balance"], "300.5000");
    assert_eq!(get(&app, "/v1/accounts/a2/balance", None).await.body["balance"], "10.0000");
    let r = get(&app, "/v1/users/u1/spending?from=2026-03-01&to=2026-03-31", None).await;
    assert_eq!(r.body["days"][0]["total"], "170.0000");
    assert_eq!(get(&app, "/ready", None).await.status, StatusCode::OK);

    let r = get(&app, "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(text.contains("finstream_"), "{text}");

    let r = get(&app, "/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/v1/accounts/{account_id}/balance",
        "/v1/accounts/{account_id}/lineage",
        "/v1/accounts/{account_id}/fraud-scores",
        "/v1/accounts/{account_id}/fraud-scores/{transaction_id}",
        "/v1/users/{user_id}/budgets",
        "/v1/users/{user_id}/goals",
        "/v1/users/{user_id}/spending",
        "/v1/users/{user_id}/cash-flow",
        "/health",
        "/ready",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} missing from openapi");
    }
    let balance = &r.body["components"]["schemas"]["Balance"]["properties"];
    assert_eq!(balance["balance"]["type"], "string", "amounts are strings: {balance}");
}
