//! Fraud scoring on the test driver: each feature alone, capping and decisions, FRAUD_ALERT
//! notifications, duplicates, the `fraud-scores` store, and that balances are never touched.

mod common;

use common::*;
use processors::{FinanceConfig, FraudConfig};
use schemas::TransactionKind::*;
use schemas::*;
use streams::DriverConfig;

fn at_merchant(mut t: TransactionEvent, id: &str, mcc: &str) -> TransactionEvent {
    t.merchant = Some(Merchant { merchant_id: id.into(), name: format!("Shop {id}"), mcc: mcc.into() });
    t
}

fn located(mut t: TransactionEvent, country: &str, lat: f64, lon: f64) -> TransactionEvent {
    t.location = Some(Location { country: country.into(), city: "x".into(), lat, lon });
    t
}

fn features(s: &FraudScore) -> Vec<&str> {
    s.reasons.iter().map(|r| r.split_whitespace().next().unwrap()).collect()
}

/// A user in UTC at home in the US with a funded account.
fn setup() -> Harness {
    let mut h = Harness::new();
    h.profile("u1", "UTC");
    h.tx(&txn("dep", "acc-1", "u1", Deposit, "100000", "USD", "2026-03-01T09:00:00Z"));
    h
}

#[test]
fn normal_payment_scores_zero_and_deposits_are_not_scored() {
    let h = setup();
    assert!(h.fraud_scores().is_empty(), "DEPOSIT is not scored");
    let mut h = h;
    h.tx(&at_merchant(txn("p1", "acc-1", "u1", Payment, "42.10", "USD", "2026-03-02T12:00:00Z"), "m1", "5411"));
    let s = h.score_of("p1");
    assert_eq!((s.score, s.decision, s.reasons.len()), (0, FraudDecision::Approve, 0));
    assert_eq!((s.account_id.as_str(), s.user_id.as_str(), s.model_version.as_str()), ("acc-1", "u1", "rules-v2"));
    assert_eq!(s.scored_at.0, ms("2026-03-02T12:00:00Z"));
    assert!(h.notifications().is_empty());
}

#[test]
fn velocity_alone() {
    let mut h = setup();
    for i in 0..7 {
        // 1 minute apart: the 6th in 10 minutes is more than 5.
        h.tx(&txn(&format!("v{i}"), "acc-1", "u1", Payment, "1.00", "USD", &format!("2026-03-02T12:0{i}:00Z")));
    }
    for i in 0..5 {
        assert_eq!(h.score_of(&format!("v{i}")).score, 0, "v{i}");
    }
    let s = h.score_of("v5");
    assert_eq!(features(&s), ["VELOCITY"]);
    assert_eq!((s.score, s.decision), (50, FraudDecision::Review));
    assert!(s.reasons[0].contains("6 transactions within 10 min"), "{:?}", s.reasons);
    // Any status counts: FAILED card tests are transactions too.
    let mut f = txn("v7", "acc-1", "u1", Payment, "1.00", "USD", "2026-03-02T12:07:00Z");
    f.status = TransactionStatus::Failed;
    h.tx(&f);
    assert_eq!(features(&h.score_of("v7")), ["VELOCITY"]);
    // The window slides: 12:20 sees only itself.
    h.tx(&txn("v8", "acc-1", "u1", Payment, "1.00", "USD", "2026-03-02T12:20:00Z"));
    assert_eq!(h.score_of("v8").score, 0);
}

#[test]
fn amount_anomaly_alone() {
    let mut h = setup();
    let amounts = ["40", "55", "48", "62", "51", "45", "58", "50", "47", "53"];
    for (i, a) in amounts.iter().enumerate() {
        let at = format!("2026-03-{:02}T12:00:00Z", 2 + i);
        h.tx(&txn(&format!("h{i}"), "acc-1", "u1", Payment, a, "USD", &at));
        if i == 8 {
            // 9 prior outflows: not enough history yet.
            h.tx(&txn("early", "acc-1", "u1", Payment, "900", "USD", "2026-03-10T18:00:00Z"));
            assert_eq!(h.score_of("early").score, 0);
        }
    }
    // History is now 11 outflows (incl. 900). On ln(USD): mean 4.18 (typical 65.65 USD), σ 0.84,
    // so the bar is exp(4.18 + 3 × 0.84) ≈ 806 USD; 2500 is far above it.
    h.tx(&txn("big", "acc-1", "u1", Payment, "2500", "USD", "2026-03-13T12:00:00Z"));
    let s = h.score_of("big");
    assert_eq!(features(&s), ["AMOUNT_ANOMALY"]);
    assert_eq!((s.score, s.decision), (40, FraudDecision::Approve));
    assert!(h.notifications().is_empty(), "APPROVE raises no alert");
    // Only COMPLETED outflows build the history; the statistics are daily buckets, not a list.
    let st = h.fraud_state("acc-1").unwrap();
    assert_eq!(st.stats.values().map(|s| s.n).sum::<u64>(), 12);
    // A history older than 90 days no longer counts.
    h.tx(&txn("later", "acc-1", "u1", Payment, "2500", "USD", "2026-06-20T12:00:00Z"));
    assert_eq!(h.score_of("later").score, 0);
}

/// A REVIEW or DECLINE is suspect until reviewed: it teaches neither the amount statistics nor
/// the reference location, so the next step of an attack is judged against normal behaviour.
#[test]
fn flagged_transactions_do_not_teach_the_model() {
    let mut h = setup();
    for i in 0..10 {
        let at = format!("2026-03-{:02}T12:00:00Z", 2 + i);
        h.tx(&txn(&format!("h{i}"), "acc-1", "u1", Payment, "50", "USD", &at));
    }
    // 02:00 UTC: NIGHT_TIME + AMOUNT_ANOMALY = 50, REVIEW; then a second large withdrawal.
    h.tx(&txn("w1", "acc-1", "u1", Withdrawal, "2500", "USD", "2026-03-13T02:00:00Z"));
    h.tx(&txn("w2", "acc-1", "u1", Withdrawal, "1500", "USD", "2026-03-13T02:05:00Z"));
    assert_eq!(h.score_of("w1").decision, FraudDecision::Review);
    let s = h.score_of("w2");
    assert_eq!(features(&s), ["AMOUNT_ANOMALY", "NIGHT_TIME"], "still judged against the 50 USD payments");
    assert!(s.reasons[0].contains("of 10 prior outflows"), "{:?}", s.reasons);
    let st = h.fraud_state("acc-1").unwrap();
    assert_eq!(st.stats.values().map(|s| s.n).sum::<u64>(), 10);
    assert_eq!(st.balances["USD"], d("95500"), "suspect legs still move fraud's balance");

    // New York, Los Angeles 30 minutes later (flagged), New York again 30 minutes after that:
    // the last one is compared with New York, not with the suspect Los Angeles payment.
    h.tx(&located(txn("l1", "acc-1", "u1", Payment, "10", "USD", "2026-03-14T12:00:00Z"), "US", 40.7128, -74.006));
    h.tx(&located(txn("l2", "acc-1", "u1", Payment, "10", "USD", "2026-03-14T12:30:00Z"), "US", 34.0522, -118.2437));
    h.tx(&located(txn("l3", "acc-1", "u1", Payment, "10", "USD", "2026-03-14T13:00:00Z"), "US", 40.7306, -73.9352));
    assert_eq!(features(&h.score_of("l2")), ["IMPOSSIBLE_TRAVEL"]);
    assert_eq!(h.score_of("l3").score, 0);
}

#[test]
fn new_merchant_alone() {
    let mut h = setup();
    h.tx(&at_merchant(txn("n1", "acc-1", "u1", Payment, "250", "USD", "2026-03-02T12:00:00Z"), "m1", "5732"));
    h.tx(&at_merchant(txn("n2", "acc-1", "u1", Payment, "250", "USD", "2026-03-03T12:00:00Z"), "m1", "5732"));
    h.tx(&at_merchant(txn("n3", "acc-1", "u1", Payment, "50", "USD", "2026-03-04T12:00:00Z"), "m2", "5732"));
    let s = h.score_of("n1");
    assert_eq!((features(&s), s.score), (vec!["NEW_MERCHANT"], 15));
    assert_eq!(h.score_of("n2").score, 0, "known merchant");
    assert_eq!(h.score_of("n3").score, 0, "below the minimum amount");
}

#[test]
fn new_merchant_threshold_is_in_usd() {
    let mut h = setup();
    h.rate("JPY", "0.0066666667");
    // 20,000 JPY ~ 133 USD < 200; 40,000 JPY ~ 267 USD.
    h.tx(&at_merchant(txn("j1", "acc-1", "u1", Payment, "20000", "JPY", "2026-03-02T12:00:00Z"), "m1", "5732"));
    h.tx(&at_merchant(txn("j2", "acc-1", "u1", Payment, "40000", "JPY", "2026-03-02T13:00:00Z"), "m2", "5732"));
    assert_eq!(h.score_of("j1").score, 0);
    assert_eq!(features(&h.score_of("j2")), ["NEW_MERCHANT"]);
    // No rate: the amount features are off, the transaction is still scored and not dead-lettered.
    h.tx(&at_merchant(txn("g1", "acc-1", "u1", Payment, "900", "GBP", "2026-03-02T14:00:00Z"), "m3", "5732"));
    assert_eq!(h.score_of("g1").score, 0);
}

#[test]
fn impossible_travel_alone() {
    let mut h = setup();
    // New York, then Los Angeles 30 minutes later (~3,940 km: ~7,900 km/h).
    h.tx(&located(txn("l1", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T12:00:00Z"), "US", 40.7128, -74.006));
    h.tx(&located(txn("l2", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T12:30:00Z"), "US", 34.0522, -118.2437));
    // Boston five hours later (~4,170 km from LA: 834 km/h, a flight) is possible.
    h.tx(&located(txn("l3", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T17:30:00Z"), "US", 42.3601, -71.0589));
    // A transaction without location does not reset the previous location.
    h.tx(&txn("l4", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T17:40:00Z"));
    // Cambridge MA, 5 km away, a minute later: short hops are ignored.
    h.tx(&located(txn("l5", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T17:41:00Z"), "US", 42.3736, -71.1097));
    assert_eq!(h.score_of("l1").score, 0);
    let s = h.score_of("l2");
    assert_eq!((features(&s), s.score, s.decision), (vec!["IMPOSSIBLE_TRAVEL"], 50, FraudDecision::Review));
    assert!(s.reasons[0].contains("km/h"), "{:?}", s.reasons);
    assert_eq!(h.score_of("l3").score, 0);
    assert_eq!(h.score_of("l4").score, 0);
    assert_eq!(h.score_of("l5").score, 0);
}

#[test]
fn foreign_country_alone() {
    let mut h = setup();
    h.tx(&located(txn("f1", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T12:00:00Z"), "FR", 48.8566, 2.3522));
    h.tx(&located(txn("f2", "acc-1", "u1", Payment, "10", "USD", "2026-03-03T12:00:00Z"), "US", 40.7128, -74.006));
    let s = h.score_of("f1");
    assert_eq!((features(&s), s.score), (vec!["FOREIGN_COUNTRY"], 10));
    assert_eq!(h.score_of("f2").score, 0);
    // Without a known profile there is no home country to compare with.
    h.tx(&located(txn("f3", "acc-2", "u2", Payment, "10", "USD", "2026-03-02T12:00:00Z"), "FR", 48.8566, 2.3522));
    assert_eq!(h.score_of("f3").score, 0);
}

#[test]
fn night_time_alone_in_the_users_timezone() {
    let mut h = Harness::new();
    h.profile("u1", "Europe/Berlin");
    for (id, at) in [
        ("n1", "2026-03-02T00:00:00+01:00"), // 00:00 local: night
        ("n2", "2026-03-02T04:59:59+01:00"), // still night
        ("n3", "2026-03-02T05:00:00+01:00"), // morning
        ("n4", "2026-03-02T23:59:00+01:00"), // late evening, not night
        ("n5", "2026-03-03T23:30:00Z"),      // 00:30 in Berlin: night, though 23:30 UTC
    ] {
        h.tx(&txn(id, "acc-1", "u1", Payment, "10", "USD", at));
    }
    for (id, night) in [("n1", true), ("n2", true), ("n3", false), ("n4", false), ("n5", true)] {
        let s = h.score_of(id);
        assert_eq!(features(&s) == ["NIGHT_TIME"], night, "{id}: {:?}", s.reasons);
        assert_eq!(s.score, if night { 10 } else { 0 });
    }
}

#[test]
fn high_risk_mcc_alone() {
    let mut h = setup();
    for (i, mcc) in ["7995", "6051", "4829", "6012", "5411"].iter().enumerate() {
        let at = format!("2026-03-0{}T12:00:00Z", 2 + i);
        h.tx(&at_merchant(txn(&format!("m{i}"), "acc-1", "u1", Payment, "20", "USD", &at), &format!("shop{i}"), mcc));
    }
    for i in 0..4 {
        let s = h.score_of(&format!("m{i}"));
        assert_eq!((features(&s), s.score), (vec!["HIGH_RISK_MCC"], 20));
    }
    assert_eq!(h.score_of("m4").score, 0);
}

#[test]
fn rapid_drain_alone() {
    let mut h = Harness::new();
    h.profile("u1", "UTC");
    h.tx(&txn("dep", "acc-1", "u1", Deposit, "1000", "USD", "2026-03-02T09:00:00Z"));
    for (i, at) in ["2026-03-02T12:00:00Z", "2026-03-02T12:20:00Z", "2026-03-02T12:40:00Z"].iter().enumerate() {
        h.tx(&txn(&format!("d{i}"), "acc-1", "u1", Withdrawal, "300", "USD", at));
    }
    assert_eq!(h.score_of("d0").score, 0);
    assert_eq!(h.score_of("d1").score, 0, "600 of 1000 is not above 80%");
    let s = h.score_of("d2");
    assert_eq!((features(&s), s.score), (vec!["RAPID_DRAIN"], 50));
    assert!(s.reasons[0].contains("900.00 USD") && s.reasons[0].contains("1,000.00 USD"), "{:?}", s.reasons);
    // Scores never move money: the balance is what balances say, with every leg applied.
    assert_eq!(h.balance("acc-1").unwrap().balance, d("100"));
    assert_eq!(h.fraud_state("acc-1").unwrap().balances["USD"], d("100"));
}

#[test]
fn rapid_drain_counts_money_that_came_in_during_the_window() {
    let mut h = Harness::new();
    h.profile("u1", "UTC");
    h.tx(&txn("dep", "acc-1", "u1", Deposit, "200", "USD", "2026-03-02T08:00:00Z"));
    h.tx(&txn("groceries", "acc-1", "u1", Payment, "50", "USD", "2026-03-02T08:30:00Z"));
    h.tx(&txn("salary", "acc-1", "u1", Deposit, "3000", "USD", "2026-03-02T09:00:00Z"));
    h.tx(&txn("rent", "acc-1", "u1", Transfer, "1500", "USD", "2026-03-02T09:10:00Z").tap_counterparty("landlord"));
    assert_eq!(h.score_of("rent").score, 0, "1550 of 3200 available");
    // A transfer credit counts as money in as well; small balances are never "drained".
    let mut small = Harness::new();
    small.tx(&txn("dep", "acc-9", "u9", Deposit, "50", "USD", "2026-03-02T08:00:00Z"));
    small.tx(&txn("p", "acc-9", "u9", Payment, "45", "USD", "2026-03-02T08:10:00Z"));
    assert_eq!(small.score_of("p").score, 0, "below the 100 USD minimum");
}

trait Counterparty {
    fn tap_counterparty(self, to: &str) -> Self;
}

impl Counterparty for TransactionEvent {
    fn tap_counterparty(mut self, to: &str) -> Self {
        self.counterparty_account_id = Some(to.into());
        self
    }
}

#[test]
fn capped_score_decline_and_fraud_alert() {
    let mut h = setup();
    h.profile("u1", "Europe/Berlin");
    h.tx(&located(txn("c1", "acc-1", "u1", Payment, "10", "USD", "2026-03-03T00:00:00Z"), "US", 40.7128, -74.006));
    // 02:00 in Berlin, in Paris an hour after New York, gambling, at a new merchant:
    // IMPOSSIBLE_TRAVEL 50 + FOREIGN_COUNTRY 10 + NIGHT_TIME 10 + HIGH_RISK_MCC 20 + NEW_MERCHANT 15.
    let t = at_merchant(txn("c2", "acc-1", "u1", Payment, "950", "USD", "2026-03-02T13:00:00Z"), "casino", "7995");
    let mut t = located(t, "FR", 48.8566, 2.3522);
    t.occurred_at = TimestampMillis(ms("2026-03-03T02:00:00+01:00"));
    h.tx(&t);
    let s = h.score_of("c2");
    assert_eq!(
        features(&s),
        ["NEW_MERCHANT", "IMPOSSIBLE_TRAVEL", "FOREIGN_COUNTRY", "NIGHT_TIME", "HIGH_RISK_MCC"],
        "{:?}",
        s.reasons
    );
    assert_eq!((s.score, s.decision), (100, FraudDecision::Decline), "105 capped at 100");
    let n = h.notifications();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].notification_id, "fraud:c2");
    assert_eq!(n[0].kind, NotificationKind::FraudAlert);
    assert_eq!((n[0].user_id.as_str(), n[0].source_event_id.as_str()), ("u1", "c2"));
    assert_eq!(n[0].created_at.0, t.occurred_at.0);
    assert_eq!(n[0].title, "Suspicious transaction: high risk");
    assert!(n[0].message.contains("950.00 USD at Shop casino") && n[0].message.contains("100/100 (DECLINE)"));
}

#[test]
fn thresholds_and_weights_are_configuration() {
    let cfg = FinanceConfig {
        fraud: FraudConfig {
            model_version: "strict-2".into(),
            review_threshold: 10,
            decline_threshold: 20,
            high_risk_mcc_weight: 25,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut h = Harness::with(cfg, DriverConfig::default());
    h.profile("u1", "UTC");
    h.tx(&located(txn("r1", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T12:00:00Z"), "FR", 48.8566, 2.3522));
    h.tx(&at_merchant(txn("r2", "acc-1", "u1", Payment, "10", "USD", "2026-03-02T13:00:00Z"), "m", "7995"));
    let (r1, r2) = (h.score_of("r1"), h.score_of("r2"));
    assert_eq!((r1.score, r1.decision, r1.model_version.as_str()), (10, FraudDecision::Review, "strict-2"));
    assert_eq!((r2.score, r2.decision), (25, FraudDecision::Decline));
    let ids: Vec<_> = h
        .notifications()
        .into_iter()
        .filter(|n| n.kind == NotificationKind::FraudAlert)
        .map(|n| (n.notification_id, n.title))
        .collect();
    assert_eq!(
        ids,
        [
            ("fraud:r1".to_string(), "Suspicious transaction: please review".to_string()),
            ("fraud:r2".to_string(), "Suspicious transaction: high risk".to_string())
        ]
    );
}

#[test]
fn duplicates_and_status_updates_are_scored_once() {
    let mut h = setup();
    let t = txn("x1", "acc-1", "u1", Payment, "100", "USD", "2026-03-02T12:00:00Z");
    h.tx(&t);
    h.tx(&t);
    let mut p = txn("x2", "acc-1", "u1", Payment, "50", "USD", "2026-03-02T12:05:00Z");
    p.status = TransactionStatus::Pending;
    h.tx(&p);
    p.status = TransactionStatus::Completed;
    h.tx(&p);
    let ids: Vec<_> = h.fraud_scores().into_iter().map(|s| s.transaction_id).collect();
    assert_eq!(ids, ["x1", "x2"]);
    // The second x1 is a duplicate for scoring and for fraud's balance leg; the COMPLETED x2 only
    // for scoring.
    assert_eq!(h.duplicates("fraud"), 3);
    // Fraud's own balance applied each COMPLETED leg once (the PENDING one when it completed).
    assert_eq!(h.fraud_state("acc-1").unwrap().balances["USD"], d("99850"));
    assert_eq!(h.balance("acc-1").unwrap().balance, d("99850"));
}

#[test]
fn fraud_scores_store_keeps_the_last_n_newest_first() {
    let cfg = FinanceConfig { fraud: FraudConfig { scores_kept: 3, ..Default::default() }, ..Default::default() };
    let mut h = Harness::with(cfg, DriverConfig::default());
    for i in 0..5 {
        h.tx(&txn(&format!("s{i}"), "acc-1", "u1", Payment, "1", "USD", &format!("2026-03-0{}T12:00:00Z", i + 1)));
    }
    let kept: Vec<_> = h.kept_scores("acc-1").into_iter().map(|s| s.transaction_id).collect();
    assert_eq!(kept, ["s4", "s3", "s2"]);
}

#[test]
fn transfer_credits_feed_frauds_balance_of_the_receiving_account() {
    let mut h = setup();
    h.tx(&transfer("tr", "acc-1", "acc-2", "u1", "500", "USD", "2026-03-02T12:00:00Z"));
    assert_eq!(h.fraud_state("acc-2").unwrap().balances["USD"], d("500"));
    assert_eq!(h.score_of("tr").account_id, "acc-1");
    // acc-2 spends it all within the hour: drained.
    h.tx(&txn("w", "acc-2", "u2", Withdrawal, "450", "USD", "2026-03-02T12:30:00Z"));
    assert_eq!(features(&h.score_of("w")), ["RAPID_DRAIN"]);
}
