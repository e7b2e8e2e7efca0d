//! Authorization: a generated matrix of users × resources in which no user reads anything that
//! is not theirs (404, exactly like an unknown id), admin reads everything, and requests
//! without a valid token get 401.

mod common;

use axum::http::StatusCode;
use common::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use query::{AuthConfig, AuthMode, Authenticator, Claims, Role};
use schemas::{AccountEvent, AccountEventType, AccountType, BudgetPeriod, Category, TransactionKind};

const SECRET: &str = "test-secret-of-at-least-32-bytes!!";

fn exp(offset_secs: i64) -> u64 {
    (chrono::Utc::now().timestamp() + offset_secs) as u64
}

fn hs256(sub: &str, role: Role) -> String {
    let claims = Claims { sub: sub.into(), role, exp: exp(600) };
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn hs_auth() -> Authenticator {
    Authenticator::new(&AuthConfig { mode: AuthMode::Jwt, hs256_secret: SECRET.into(), ..Default::default() }).unwrap()
}

/// `users` users; user i owns accounts `acc-i-0`, `acc-i-1`, a budget and a goal.
fn populated(users: usize) -> World {
    let mut w = World::new();
    w.rate("USD", "1");
    for i in 0..users {
        let u = format!("user-{i}");
        w.profile(&u, "Europe/Paris");
        w.budget(&budget(
            &format!("b-{i}"),
            &u,
            Category::Groceries,
            "100",
            BudgetPeriod::Monthly,
            "2026-03-01T00:00:00Z",
        ));
        w.goal(&goal(&format!("g-{i}"), &u, "50", Some(&format!("acc-{i}-0")), "2026-03-01T00:00:00Z"));
        for a in 0..2 {
            let acc = format!("acc-{i}-{a}");
            w.tx(&txn(&format!("dep-{i}-{a}"), &acc, &u, TransactionKind::Deposit, "100", "2026-03-02T10:00:00Z"));
            w.tx(&txn(&format!("pay-{i}-{a}"), &acc, &u, TransactionKind::Payment, "12.5", "2026-03-03T10:00:00Z"));
        }
    }
    w.run();
    w
}

/// Every resource of user `i`: (owner, uri).
fn resources(i: usize) -> Vec<String> {
    let u = format!("user-{i}");
    let mut r = vec![
        format!("/v1/users/{u}/budgets?at=2026-03-10"),
        format!("/v1/users/{u}/goals"),
        format!("/v1/users/{u}/spending?from=2026-03-01&to=2026-03-31"),
        format!("/v1/users/{u}/cash-flow?month=2026-03"),
    ];
    for a in 0..2 {
        let acc = format!("acc-{i}-{a}");
        r.push(format!("/v1/accounts/{acc}/balance"));
        r.push(format!("/v1/accounts/{acc}/lineage"));
        r.push(format!("/v1/accounts/{acc}/fraud-scores"));
        r.push(format!("/v1/accounts/{acc}/fraud-scores/pay-{i}-{a}"));
    }
    r
}

#[tokio::test]
async fn users_read_only_their_own_and_admin_reads_all() {
    const USERS: usize = 5;
    let w = populated(USERS);
    // Routed over 4 partitions, as a running instance would be.
    let app = w.app_with(w.stores(4), hs_auth());
    let admin = hs256("ops", Role::Admin);
    let mut checked = 0;
    for owner in 0..USERS {
        for uri in resources(owner) {
            let r = get(&app, &uri, Some(&admin)).await;
            assert_eq!(r.status, StatusCode::OK, "admin {uri}: {:?}", r.body);
            let r = get(&app, &uri, None).await;
            error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
            assert_eq!(r.headers["www-authenticate"], "Bearer");
            for caller in 0..USERS {
                let token = hs256(&format!("user-{caller}"), Role::User);
                let r = get(&app, &uri, Some(&token)).await;
                if caller == owner {
                    assert_eq!(r.status, StatusCode::OK, "user-{caller} reads own {uri}: {:?}", r.body);
                } else {
                    let msg = error(&r, StatusCode::NOT_FOUND, "not_found");
                    assert!(!msg.contains(&format!("user-{caller}")), "{msg}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, USERS * USERS * 12);
    // Someone else's resource answers exactly like a nonexistent one.
    let t = hs256("user-0", Role::User);
    let other = get(&app, "/v1/accounts/acc-1-0/balance", Some(&t)).await;
    let missing = get(&app, "/v1/accounts/acc-99-0/balance", Some(&hs256("ops", Role::Admin))).await;
    assert_eq!(other.status, missing.status);
    assert_eq!(
        other.body["message"].as_str().unwrap().replace("acc-1-0", "X"),
        missing.body["message"].as_str().unwrap().replace("acc-99-0", "X")
    );
}

/// A savings account that only ever receives transfers: nobody can read it under JWT until
/// its `accounts` record names its owner; then the owner can, and still nobody else.
#[tokio::test]
async fn an_account_only_ever_credited_is_its_owners_once_its_record_arrives() {
    let mut w = populated(2);
    let tr = |id: &str, from: &str, user: &str| {
        let mut t = txn(id, from, user, TransactionKind::Transfer, "5", "2026-03-04T10:00:00Z");
        t.counterparty_account_id = Some("sav-0".into());
        t
    };
    w.tx(&tr("tr-1", "acc-0-0", "user-0"));
    w.tx(&tr("tr-2", "acc-1-0", "user-1"));
    w.run();
    let uri = "/v1/accounts/sav-0/balance";
    let (owner, other) = (hs256("user-0", Role::User), hs256("user-1", Role::User));
    let app = w.app_with(w.stores(4), hs_auth());
    let r = get(&app, uri, Some(&hs256("ops", Role::Admin))).await;
    assert_eq!((r.status, r.body["user_id"].as_str()), (StatusCode::OK, Some("")), "{:?}", r.body);
    error(&get(&app, uri, Some(&owner)).await, StatusCode::NOT_FOUND, "not_found");

    w.account(&AccountEvent {
        event_id: "sav-0-opened".into(),
        event_type: AccountEventType::AccountOpened,
        account_id: "sav-0".into(),
        user_id: "user-0".into(),
        account_type: AccountType::Savings,
        currency: "USD".into(),
        display_name: Some("Savings".into()),
        occurred_at: schemas::TimestampMillis(1_772_600_000_000),
    });
    w.run();
    let app = w.app_with(w.stores(4), hs_auth());
    let r = get(&app, uri, Some(&owner)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["user_id"].as_str(), r.body["balance"].as_str()), (Some("user-0"), Some("10.0000")));
    error(&get(&app, uri, Some(&other)).await, StatusCode::NOT_FOUND, "not_found");
    // user-1's transfer into it now also counts in user-0's cash flow.
    let r = get(&app, "/v1/users/user-0/cash-flow?month=2026-03", Some(&owner)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["transfers_in"].as_str(), Some("10.0000"), "{:?}", r.body);
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let w = populated(1);
    let app = w.app(hs_auth());
    let uri = "/v1/accounts/acc-0-0/balance";
    let wrong_key = encode(
        &Header::default(),
        &Claims { sub: "user-0".into(), role: Role::User, exp: exp(600) },
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    )
    .unwrap();
    let expired = encode(
        &Header::default(),
        &Claims { sub: "user-0".into(), role: Role::User, exp: exp(-3600) },
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    for token in [wrong_key.as_str(), expired.as_str(), "not-a-jwt"] {
        error(&get(&app, uri, Some(token)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(get(&app, uri, Some(&hs256("user-0", Role::User))).await.status, StatusCode::OK);
    // Ops endpoints stay open (probes and scrapers carry no user token).
    assert_eq!(get(&app, "/health", None).await.status, StatusCode::OK);
    assert_eq!(get(&app, "/metrics", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rs256_public_key() {
    let w = populated(2);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let auth = Authenticator::new(&AuthConfig {
        mode: AuthMode::Jwt,
        rs256_public_key_file: dir.join("rs256-test-public.pem").display().to_string(),
        ..Default::default()
    })
    .unwrap();
    let app = w.app(auth);
    let private = std::fs::read(dir.join("rs256-test-private.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&private).unwrap();
    let token = |sub: &str, role| {
        encode(&Header::new(jsonwebtoken::Algorithm::RS256), &Claims { sub: sub.into(), role, exp: exp(600) }, &key)
            .unwrap()
    };
    assert_eq!(get(&app, "/v1/users/user-1/goals", Some(&token("user-1", Role::User))).await.status, StatusCode::OK);
    error(
        &get(&app, "/v1/users/user-1/goals", Some(&token("user-0", Role::User))).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // An HS256 token signed with the public key text must not pass (algorithm confusion).
    let pem = std::fs::read(dir.join("rs256-test-public.pem")).unwrap();
    let forged = encode(
        &Header::default(),
        &Claims { sub: "user-1".into(), role: Role::Admin, exp: exp(600) },
        &EncodingKey::from_secret(&pem),
    )
    .unwrap();
    error(&get(&app, "/v1/users/user-1/goals", Some(&forged)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(Authenticator::new(&AuthConfig { mode: AuthMode::Jwt, ..Default::default() }).is_err(), "jwt needs a key");
}

/// The generic `/v1/stores` endpoint applies each store's owner rule with no handler code: a
/// user reads the entries whose key or value names them (someone else's key is a 404 like an
/// absent one), never an administrators-only store (403), and scans only what routes to one
/// partition; administrators read everything.
#[tokio::test]
async fn generic_store_endpoint_applies_each_stores_owner_rule() {
    use common::ledger;
    let (_, stores) = ledger::local(4, 3, 4);
    let state = query::AppState::new(
        std::sync::Arc::new(stores),
        std::sync::Arc::new(schemas::registry::EmbeddedRegistry::in_memory()),
        ledger::jwt(),
        streams::StreamsMetrics::default(),
    );
    let app = query::app(state);
    let admin = ledger::token("ops", query::Role::Admin);
    let (u1, u2) = (ledger::token("u-1", query::Role::User), ledger::token("u-2", query::Role::User));

    // Point lookups: value-owned, key-owned, windowed, global.
    for uri in [
        "/v1/stores/ledger-totals/keys/u-1",
        "/v1/stores/ledger-payments/keys/u-1%7Cp-1-0",
        "/v1/stores/ledger-limits/keys/u-1",
    ] {
        assert_eq!(get(&app, uri, Some(&admin)).await.status, StatusCode::OK, "admin {uri}");
        let r = get(&app, uri, Some(&u1)).await;
        assert_eq!(r.status, StatusCode::OK, "owner {uri}: {:?}", r.body);
        let theirs = get(&app, uri, Some(&u2)).await;
        let absent = get(&app, &uri.replace("u-1", "u-9"), Some(&admin)).await;
        error(&theirs, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(theirs.body, absent.body, "another user's key answers exactly like an absent one");
        error(&get(&app, uri, None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let r = get(&app, "/v1/stores/ledger-hourly/keys/u-1", Some(&u1)).await;
    assert_eq!(r.body["entries"].as_array().map(Vec::len), Some(3), "{:?}", r.body);
    let r = get(&app, "/v1/stores/ledger-hourly/keys/u-1", Some(&u2)).await;
    assert_eq!((r.status, r.body["entries"].clone()), (StatusCode::OK, serde_json::json!([])));

    // Scans: a user's prefix that routes lists only their entries.
    let r = get(&app, "/v1/stores/ledger-payments?prefix=u-1%7C", Some(&u1)).await;
    assert_eq!(r.body["entries"].as_array().map(Vec::len), Some(3), "{:?}", r.body);
    let r = get(&app, "/v1/stores/ledger-payments?prefix=u-1%7C", Some(&u2)).await;
    assert_eq!((r.status, r.body["entries"].clone()), (StatusCode::OK, serde_json::json!([])));
    for uri in ["/v1/stores/ledger-payments", "/v1/stores/ledger-totals?prefix=u-1", "/v1/stores/ledger-hourly"] {
        let m = error(&get(&app, uri, Some(&u1)).await, StatusCode::BAD_REQUEST, "bad_request");
        assert!(m.contains("one partition"), "{uri}: {m}");
        assert_eq!(get(&app, uri, Some(&admin)).await.status, StatusCode::OK, "admin {uri}");
    }
    // Administrators only: the raw store, and choosing partitions.
    for uri in
        ["/v1/stores/ledger-audit/keys/p-1-0", "/v1/stores/ledger-audit", "/v1/stores/ledger-totals?partitions=0"]
    {
        error(&get(&app, uri, Some(&u1)).await, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(get(&app, uri, Some(&admin)).await.status, StatusCode::OK, "admin {uri}");
    }
    error(
        &get(&app, "/v1/stores/ledger-totals/keys/u-1?limit=0", Some(&u1)).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    error(&get(&app, "/v1/stores/nope/keys/u-1", Some(&u1)).await, StatusCode::NOT_FOUND, "not_found");

    // The listing shows a user the stores they can query.
    let r = get(&app, "/v1/stores", Some(&u1)).await;
    let names: Vec<&str> = r.body["stores"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ledger-hourly", "ledger-limits", "ledger-payments", "ledger-totals"]);
    let r = get(&app, "/v1/stores", Some(&admin)).await;
    assert_eq!(r.body["stores"].as_array().map(Vec::len), Some(5));
}

/// The finance stores whose handles carry an owner rule are a user's on `/v1/stores` too, with
/// the same answers as the dedicated endpoints; the others are for administrators.
#[tokio::test]
async fn finance_stores_on_the_generic_endpoint_follow_their_owner_rules() {
    let w = populated(3);
    let app = w.app_with(w.stores(4), hs_auth());
    let (admin, u1, u2) = (hs256("ops", Role::Admin), hs256("user-1", Role::User), hs256("user-2", Role::User));
    for uri in [
        "/v1/stores/balances/keys/acc-1-0",
        "/v1/stores/budgets/keys/user-1",
        "/v1/stores/goals/keys/user-1",
        "/v1/stores/cash-flow/keys/user-1%7C2026-03",
    ] {
        let r = get(&app, uri, Some(&u1)).await;
        assert_eq!(r.status, StatusCode::OK, "owner {uri}: {:?}", r.body);
        assert_eq!(get(&app, uri, Some(&admin)).await.body, r.body, "{uri}");
        error(&get(&app, uri, Some(&u2)).await, StatusCode::NOT_FOUND, "not_found");
    }
    let dedicated = get(&app, "/v1/accounts/acc-1-0/balance", Some(&u1)).await;
    let generic = get(&app, "/v1/stores/balances/keys/acc-1-0", Some(&u1)).await;
    assert_eq!(generic.body["entries"][0]["value"]["user_id"], dedicated.body["user_id"]);
    let r = get(&app, "/v1/stores/cash-flow?prefix=user-1%7C2026-", Some(&u1)).await;
    assert_eq!(r.body["entries"].as_array().map(Vec::len), Some(1), "{:?}", r.body);
    // No owner rule: administrators only.
    for uri in ["/v1/stores/balance-lineage", "/v1/stores/fraud-scores/keys/acc-1-0"] {
        error(&get(&app, uri, Some(&u1)).await, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(get(&app, uri, Some(&admin)).await.status, StatusCode::OK, "admin {uri}");
    }
}
