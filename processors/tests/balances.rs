//! Balance rules on the test driver (issue 4 "Balances", docs/money-rules.md).

mod common;

use common::*;
use processors::FinanceConfig;
use schemas::{NotificationKind, TransactionKind::*, TransactionStatus};
use streams::murmur2::partition_for_key;
use streams::record::header;
use streams::DriverConfig;

#[test]
fn transfer_between_accounts_on_different_partitions() {
    let mut h = Harness::new();
    let (a, b) = ("acc-1", "acc-2");
    assert_ne!(
        partition_for_key(a.as_bytes(), 4),
        partition_for_key(b.as_bytes(), 4),
        "pick accounts on two partitions"
    );
    h.tx(&txn("t1", a, "u1", Deposit, "100.00", "USD", "2026-03-01T10:00:00Z"));
    h.tx(&txn("t2", b, "u2", Deposit, "5.00", "USD", "2026-03-01T10:01:00Z"));
    h.tx(&transfer("t3", a, b, "u1", "30.25", "USD", "2026-03-01T11:00:00Z"));
    let (sa, sb) = (h.balance(a).unwrap(), h.balance(b).unwrap());
    assert_eq!((sa.balance, sa.applied_count, sa.user_id.as_str()), (d("69.75"), 2, "u1"));
    assert_eq!((sb.balance, sb.applied_count, sb.user_id.as_str()), (d("35.25"), 2, "u2"));
    assert_eq!(sb.last_transaction_id, "t3");
    let out = h.balances_out();
    assert_eq!(out.len(), 4, "one BalanceUpdated per applied leg");
    assert!(out.iter().any(|u| u.account_id == b && u.balance == d("35.25") && u.last_transaction_id == "t3"));
    // The credit leg went through the repartition topic keyed by the counterparty.
    let credits = h.d.read_raw(&format!("{APP}-transfer-credits-repartition"));
    assert_eq!(credits.len(), 1);
    assert_eq!(credits[0].key.as_deref(), Some(b.as_bytes()));
}

#[test]
fn credit_to_unknown_account_takes_transaction_currency_and_no_owner() {
    let mut h = Harness::new();
    h.tx(&txn("t1", "acc-1", "u1", Deposit, "10", "EUR", "2026-03-01T10:00:00Z"));
    h.tx(&transfer("t2", "acc-1", "new", "u1", "4", "EUR", "2026-03-01T11:00:00Z"));
    let s = h.balance("new").unwrap();
    assert_eq!((s.currency.as_str(), s.user_id.as_str(), s.balance), ("EUR", "", d("4")));
}

#[test]
fn duplicates_delivered_twice_and_three_times_are_ignored_everywhere() {
    let mut h = Harness::new();
    h.budget(&budget(
        "b1",
        "u1",
        schemas::Category::Groceries,
        "100",
        schemas::BudgetPeriod::Monthly,
        "2026-03-01T00:00:00Z",
    ));
    h.goal(&goal(schemas::GoalEventType::GoalCreated, "g1", "u1", "1000", None, "2026-03-01T00:00:00Z"));
    let mut dep = txn("t1", "acc-1", "u1", Deposit, "50", "USD", "2026-03-02T10:00:00Z");
    dep.goal_id = Some("g1".into());
    let pay = txn("t2", "acc-1", "u1", Payment, "70", "USD", "2026-03-02T11:00:00Z");
    let tr = transfer("t3", "acc-1", "acc-2", "u1", "5", "USD", "2026-03-02T12:00:00Z");
    for _ in 0..2 {
        h.tx(&dep);
    }
    for _ in 0..3 {
        h.tx(&pay);
        h.tx(&tr);
    }
    let s = h.balance("acc-1").unwrap();
    assert_eq!((s.balance, s.applied_count), (d("-25"), 3));
    assert_eq!(h.balance("acc-2").unwrap().balance, d("5"));
    assert_eq!(h.balances_out().len(), 4);
    let spent: rust_decimal::Decimal = h.budgets("u1").spending["groceries"]["2026-03-02"]["USD"];
    assert_eq!(spent, d("70"));
    assert_eq!(h.alerts().len(), 0, "70 of 100 stays under 80%");
    assert_eq!(h.goals("u1").goals["g1"].saved, d("50"));
    assert_eq!(h.progress().len(), 2, "created + one deposit");
    // 1 + 2 + 2 duplicate debit legs, 2 duplicate credit legs.
    assert_eq!(h.duplicates("balances"), 5);
    assert_eq!(h.duplicates("balance-credits"), 2);
    assert_eq!(h.duplicates("budgets"), 5);
    assert_eq!(h.duplicates("goals"), 5);
}

#[test]
fn dedupe_entries_expire_after_the_retention_and_are_purged() {
    let day = 86_400_000;
    let cfg = FinanceConfig { dedupe_retention_ms: 2 * day, dedupe_purge_interval_ms: 3_600_000, ..Default::default() };
    let mut h = Harness::with(cfg, DriverConfig { partitions: 1, ..Default::default() });
    let t1 = txn("t1", "acc-1", "u1", Deposit, "10", "USD", "2026-03-01T10:00:00Z");
    h.tx(&t1);
    h.tx(&txn("t2", "acc-1", "u1", Deposit, "20", "USD", "2026-03-03T10:00:00Z"));
    h.tx(&t1);
    assert_eq!(h.duplicates("balances"), 1, "within the retention: ignored");
    let keys = |h: &Harness| -> Vec<String> {
        h.d.store_all::<String, processors::dedupe::DedupeEntry>(processors::stores::BALANCES_DEDUPE)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    // One entry per leg plus its expiry index entry.
    assert_eq!(keys(&h).iter().filter(|k| k.contains("|t1|")).count(), 2);

    // The lane's clock passes 3 March 10:00: t1 (remembered at 1 March) is two days behind it
    // and purged, index and all; t2 stays.
    h.tx(&txn("t3", "acc-1", "u1", Deposit, "30", "USD", "2026-03-03T12:00:00Z"));
    let left = keys(&h);
    assert!(!left.iter().any(|k| k.contains("|t1|")), "{left:?}");
    assert_eq!(left.iter().filter(|k| k.contains("|t2|")).count(), 2);
    // Each entry has its index entry; the lane's clock is the one other key.
    assert_eq!(left.iter().filter(|k| k.starts_with("\0ttl|")).count() * 2 + 1, left.len(), "{left:?}");
    assert!(left.contains(&"\0clock|tx".to_string()), "{left:?}");

    // Documented limit: a redelivery older than the retention is applied again.
    h.tx(&t1);
    assert_eq!(h.duplicates("balances"), 1);
    let s = h.balance("acc-1").unwrap();
    assert_eq!((s.balance, s.applied_count), (d("70"), 4));
}

#[test]
fn pending_then_completed_is_applied_once() {
    let mut h = Harness::new();
    let mut t = txn("t1", "acc-1", "u1", Deposit, "20", "USD", "2026-03-02T10:00:00Z");
    t.status = TransactionStatus::Pending;
    h.tx(&t);
    assert!(h.balance("acc-1").is_none(), "PENDING moves no money");
    t.status = TransactionStatus::Failed;
    h.tx(&t);
    t.status = TransactionStatus::Completed;
    h.tx(&t);
    h.tx(&t);
    let s = h.balance("acc-1").unwrap();
    assert_eq!((s.balance, s.applied_count), (d("20"), 1));
    assert_eq!(h.duplicates("balances"), 1);
}

#[test]
fn low_balance_when_crossing_below_threshold() {
    let mut h = Harness::new();
    let steps = [
        ("t1", Deposit, "50"),
        ("t2", Payment, "30"),    // 20
        ("t3", Withdrawal, "30"), // -10: crosses
        ("t4", Fee, "5"),         // -15: already below
        ("t5", Deposit, "100"),   // 85
        ("t6", Payment, "85"),    // 0: at threshold, not below
        ("t7", Payment, "0.01"),  // -0.01: crosses
    ];
    for (i, (id, kind, amt)) in steps.iter().enumerate() {
        h.tx(&txn(id, "acc-1", "u1", *kind, amt, "USD", &format!("2026-03-02T10:0{i}:00Z")));
    }
    // t6 and t7 also drain the account (fraud's RAPID_DRAIN): only the LOW_BALANCE ones here.
    let n: Vec<_> = h.notifications().into_iter().filter(|n| n.kind != NotificationKind::FraudAlert).collect();
    let ids: Vec<_> = n.iter().map(|n| n.notification_id.as_str()).collect();
    assert_eq!(ids, ["low-balance:acc-1:t3:debit", "low-balance:acc-1:t7:debit"]);
    assert!(n.iter().all(|n| n.kind == NotificationKind::LowBalance && n.user_id == "u1"));
    assert_eq!(n[0].message, "The balance of account acc-1 is -10.00 USD, below 0.00 USD.");
    assert_eq!(n[0].source_event_id, "t3");
    assert_eq!(n[0].created_at.0, ms("2026-03-02T10:02:00Z"));
}

#[test]
fn low_balance_threshold_is_configurable() {
    let cfg = FinanceConfig { low_balance_threshold: d("100"), ..Default::default() };
    let mut h = Harness::with(cfg, DriverConfig::default());
    h.tx(&txn("t1", "acc-1", "u1", Deposit, "150", "USD", "2026-03-02T10:00:00Z"));
    h.tx(&txn("t2", "acc-1", "u1", Payment, "60", "USD", "2026-03-02T10:01:00Z"));
    assert_eq!(h.notifications().len(), 1);
    assert_eq!(h.notifications()[0].message, "The balance of account acc-1 is 90.00 USD, below 100.00 USD.");
}

#[test]
fn lineage_is_bounded_newest_first() {
    let cfg = FinanceConfig { lineage_len: 3, ..Default::default() };
    let mut h = Harness::with(cfg, DriverConfig::default());
    for i in 1..=5 {
        h.tx(&txn(
            &format!("t{i}"),
            "acc-1",
            "u1",
            Deposit,
            &format!("{i}"),
            "USD",
            &format!("2026-03-02T10:0{i}:00Z"),
        ));
    }
    h.tx(&transfer("t6", "acc-1", "acc-2", "u1", "1", "USD", "2026-03-02T10:09:00Z"));
    let l = h.lineage("acc-1");
    let view: Vec<_> = l.iter().map(|e| (e.transaction_id.as_str(), e.amount, e.balance_after)).collect();
    assert_eq!(view, [("t6", d("-1"), d("14")), ("t5", d("5"), d("15")), ("t4", d("4"), d("10"))]);
    assert_eq!(h.lineage("acc-2")[0].leg, processors::legs::Leg::Credit);
}

#[test]
fn converted_amounts_round_half_even_to_jpy_and_kwd_minor_units() {
    let mut h = Harness::new();
    h.rate("JPY", "0.0066666667");
    h.rate("KWD", "3.2512");
    h.rate("EUR", "1.085");
    h.tx(&txn("j0", "acc-jpy", "u1", Deposit, "1000", "JPY", "2026-03-02T10:00:00Z"));
    h.tx(&txn("j1", "acc-jpy", "u1", Deposit, "10.00", "USD", "2026-03-02T10:01:00Z")); // 1499.99999 -> 1500
    h.tx(&txn("j2", "acc-jpy", "u1", Payment, "0.01", "USD", "2026-03-02T10:02:00Z")); // 1.49999 -> 1
    h.tx(&txn("k0", "acc-kwd", "u1", Deposit, "1.000", "KWD", "2026-03-02T10:00:00Z"));
    h.tx(&txn("k1", "acc-kwd", "u1", Deposit, "10.00", "USD", "2026-03-02T10:01:00Z")); // 3.0757874 -> 3.076
    h.tx(&txn("k2", "acc-kwd", "u1", Deposit, "1.00", "EUR", "2026-03-02T10:02:00Z")); // 0.33372293 -> 0.334
    assert_eq!(h.balance("acc-jpy").unwrap().balance, d("2499"));
    assert_eq!(h.balance("acc-kwd").unwrap().balance, d("4.410"));
    let amounts: Vec<_> = h.lineage("acc-kwd").iter().map(|e| e.amount).collect();
    assert_eq!(amounts, [d("0.334"), d("3.076"), d("1.000")]);
}

#[test]
fn missing_rate_goes_to_transactions_dlq_with_reason() {
    let mut h = Harness::new();
    h.tx(&txn("t1", "acc-1", "u1", Deposit, "10", "USD", "2026-03-02T10:00:00Z"));
    let gbp = txn("t2", "acc-1", "u1", Deposit, "5", "GBP", "2026-03-02T10:01:00Z");
    h.tx(&gbp);
    assert_eq!(h.dlq_reasons("transactions"), ["missing_exchange_rate"]);
    let dlq = &h.dlq("transactions")[0];
    assert_eq!(dlq.headers.get_str(header::SOURCE_TOPIC), Some("transactions"));
    assert_eq!(dlq.key.as_deref(), Some(&b"acc-1"[..]));
    let s = h.balance("acc-1").unwrap();
    assert_eq!((s.balance, s.applied_count), (d("10"), 1), "nothing of it applied");
    // Once the rate is known, a redelivery applies (the failed record was not remembered).
    h.rate("GBP", "1.25");
    h.tx(&gbp);
    assert_eq!(h.balance("acc-1").unwrap().balance, d("16.25"));
}

#[test]
fn notification_ids_are_deterministic_across_runs() {
    let run = || {
        let mut h = Harness::new();
        h.budget(&budget(
            "b1",
            "u1",
            schemas::Category::Groceries,
            "50",
            schemas::BudgetPeriod::Monthly,
            "2026-03-01T00:00:00Z",
        ));
        h.goal(&goal(schemas::GoalEventType::GoalCreated, "g1", "u1", "40", Some("acc-1"), "2026-03-01T00:00:00Z"));
        h.tx(&txn("t1", "acc-1", "u1", Deposit, "30", "USD", "2026-03-02T10:00:00Z"));
        h.tx(&txn("t2", "acc-1", "u1", Payment, "60", "USD", "2026-03-02T11:00:00Z"));
        let mut n = h.notifications();
        n.sort_by(|a, b| a.notification_id.cmp(&b.notification_id));
        n
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    let ids: Vec<_> = a.iter().map(|n| n.notification_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "budget:b1:2026-03-01:100",
            "budget:b1:2026-03-01:80",
            "goal:g1:25",
            "goal:g1:50",
            "goal:g1:75",
            "low-balance:acc-1:t2:debit"
        ]
    );
}
