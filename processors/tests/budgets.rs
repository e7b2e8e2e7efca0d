//! Budget rules on the test driver (issue 4 "Budgets", docs/money-rules.md).

mod common;

use common::*;
use schemas::{AlertLevel, BudgetAction, BudgetPeriod::*, Category, NotificationKind, TransactionKind::*};

fn pay(h: &mut Harness, id: &str, amount: &str, at: &str) {
    h.tx(&txn(id, "acc-1", "u1", Payment, amount, "USD", at));
}

fn alert_view(h: &Harness) -> Vec<(String, AlertLevel, String, String)> {
    h.alerts().into_iter().map(|a| (a.alert_id, a.level, a.spent.normalize().to_string(), a.transaction_id)).collect()
}

fn v(id: &str, level: AlertLevel, spent: &str, tx: &str) -> (String, AlertLevel, String, String) {
    (id.to_string(), level, spent.to_string(), tx.to_string())
}

#[test]
fn one_transaction_crossing_both_thresholds_emits_warning_then_exceeded() {
    let mut h = Harness::new();
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-01T00:00:00Z"));
    pay(&mut h, "t1", "120", "2026-03-05T10:00:00Z");
    assert_eq!(
        alert_view(&h),
        [
            v("b1:2026-03-01:80", AlertLevel::Warning, "120", "t1"),
            v("b1:2026-03-01:100", AlertLevel::Exceeded, "120", "t1")
        ]
    );
    let a = &h.alerts()[0];
    assert_eq!((a.period_start.0, a.period_end.0), (ms("2026-03-01T00:00:00Z"), ms("2026-04-01T00:00:00Z")));
    assert_eq!((a.threshold_percent, a.limit, a.category), (80, d("100"), Category::Groceries));
    assert_eq!(a.occurred_at.0, ms("2026-03-05T10:00:00Z"));
    let n = h.notifications();
    let kinds: Vec<_> = n.iter().filter(|n| n.kind != NotificationKind::LowBalance).map(|n| n.kind).collect();
    assert_eq!(kinds, [NotificationKind::BudgetWarning, NotificationKind::BudgetExceeded]);
    let warn = n.iter().find(|n| n.kind == NotificationKind::BudgetWarning).unwrap();
    assert_eq!(warn.notification_id, "budget:b1:2026-03-01:80");
    assert_eq!(warn.message, "You have spent 120.00 USD of your 100.00 USD groceries budget (80%).");
}

#[test]
fn other_categories_and_non_spending_kinds_do_not_count() {
    let mut h = Harness::new();
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-01T00:00:00Z"));
    let mut dining = txn("t1", "acc-1", "u1", Payment, "500", "USD", "2026-03-05T10:00:00Z");
    dining.category = Category::Dining;
    h.tx(&dining);
    h.tx(&txn("t2", "acc-1", "u1", Deposit, "500", "USD", "2026-03-05T10:00:00Z"));
    h.tx(&transfer("t3", "acc-1", "acc-2", "u1", "500", "USD", "2026-03-05T10:00:00Z"));
    let mut t4 = txn("t4", "acc-1", "u1", Transfer, "500", "USD", "2026-03-05T10:00:00Z");
    t4.counterparty_account_id = Some("acc-3".into());
    t4.category = Category::Groceries;
    h.tx(&t4);
    assert!(h.alerts().is_empty());
    for kind in [Fee, Withdrawal] {
        h.tx(&txn(&format!("{kind:?}"), "acc-1", "u1", kind, "45", "USD", "2026-03-06T10:00:00Z"));
    }
    assert_eq!(alert_view(&h), [v("b1:2026-03-01:80", AlertLevel::Warning, "90", "Withdrawal")]);
}

#[test]
fn refund_back_under_80_then_crossing_next_month() {
    let mut h = Harness::new();
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-01T00:00:00Z"));
    pay(&mut h, "t1", "85", "2026-03-05T10:00:00Z");
    h.tx(&txn("r1", "acc-1", "u1", Refund, "20", "USD", "2026-03-06T10:00:00Z")); // 65
    pay(&mut h, "t2", "10", "2026-03-07T10:00:00Z"); // 75
    pay(&mut h, "t3", "10", "2026-03-08T10:00:00Z"); // 85 again: already warned
    assert_eq!(alert_view(&h), [v("b1:2026-03-01:80", AlertLevel::Warning, "85", "t1")]);
    pay(&mut h, "t4", "90", "2026-04-02T10:00:00Z");
    pay(&mut h, "t5", "15", "2026-04-03T10:00:00Z");
    assert_eq!(
        alert_view(&h)[1..],
        [
            v("b1:2026-04-01:80", AlertLevel::Warning, "90", "t4"),
            v("b1:2026-04-01:100", AlertLevel::Exceeded, "105", "t5")
        ]
    );
    let s = h.budgets("u1");
    assert_eq!(s.spending["groceries"]["2026-03-06"]["USD"], d("-20"));
    assert_eq!(s.alerts.len(), 3);
}

#[test]
fn budget_set_after_spending_alerts_at_once() {
    let mut h = Harness::new();
    pay(&mut h, "t1", "60", "2026-03-02T10:00:00Z");
    pay(&mut h, "t2", "50", "2026-03-03T10:00:00Z");
    pay(&mut h, "old", "500", "2026-02-27T10:00:00Z"); // February: not in the SET's period
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-10T00:00:00Z"));
    assert_eq!(
        alert_view(&h),
        [
            v("b1:2026-03-01:80", AlertLevel::Warning, "110", ""),
            v("b1:2026-03-01:100", AlertLevel::Exceeded, "110", "")
        ]
    );
    assert_eq!(h.alerts()[0].occurred_at.0, ms("2026-03-10T00:00:00Z"));
    // Spending dated before the budget's first period is not evaluated against it.
    pay(&mut h, "older", "1", "2026-02-28T10:00:00Z");
    assert_eq!(h.alerts().len(), 2);
}

#[test]
fn lowering_a_limit_evaluates_at_once() {
    let mut h = Harness::new();
    h.budget(&budget("b1", "u1", Category::Groceries, "200", Monthly, "2026-03-01T00:00:00Z"));
    pay(&mut h, "t1", "100", "2026-03-02T10:00:00Z");
    assert!(h.alerts().is_empty());
    h.budget(&budget("b1", "u1", Category::Groceries, "120", Monthly, "2026-03-03T00:00:00Z"));
    assert_eq!(alert_view(&h), [v("b1:2026-03-01:80", AlertLevel::Warning, "100", "")]);
    h.budget(&budget("b1", "u1", Category::Groceries, "90", Monthly, "2026-03-04T00:00:00Z"));
    assert_eq!(alert_view(&h)[1], v("b1:2026-03-01:100", AlertLevel::Exceeded, "100", ""));
    assert_eq!(h.alerts()[1].limit, d("90"));
}

#[test]
fn raising_a_limit_and_crossing_again_does_not_alert_twice() {
    let mut h = Harness::new();
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-01T00:00:00Z"));
    pay(&mut h, "t1", "90", "2026-03-02T10:00:00Z");
    h.budget(&budget("b1", "u1", Category::Groceries, "200", Monthly, "2026-03-03T00:00:00Z"));
    pay(&mut h, "t2", "80", "2026-03-04T10:00:00Z"); // 170 >= 160: WARNING already raised
    assert_eq!(alert_view(&h), [v("b1:2026-03-01:80", AlertLevel::Warning, "90", "t1")]);
    pay(&mut h, "t3", "40", "2026-03-05T10:00:00Z"); // 210 >= 200: EXCEEDED for the first time
    assert_eq!(alert_view(&h)[1], v("b1:2026-03-01:100", AlertLevel::Exceeded, "210", "t3"));
    // DELETE stops tracking; a later SET of the same budget keeps the alerts already raised.
    let mut del = budget("b1", "u1", Category::Groceries, "0", Monthly, "2026-03-06T00:00:00Z");
    del.action = BudgetAction::Delete;
    h.budget(&del);
    pay(&mut h, "t4", "1", "2026-03-06T10:00:00Z");
    assert!(h.budgets("u1").budgets.is_empty());
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-07T00:00:00Z"));
    assert_eq!(h.alerts().len(), 2);
}

#[test]
fn weekly_periods_follow_iso_weeks() {
    let mut h = Harness::new();
    h.budget(&budget("w1", "u1", Category::Groceries, "100", Weekly, "2026-03-04T12:00:00Z")); // Wednesday
    pay(&mut h, "t1", "50", "2026-03-02T00:00:00Z"); // Monday of the same week: counts
    pay(&mut h, "t2", "35", "2026-03-08T23:59:59Z"); // Sunday: 85
    pay(&mut h, "t3", "85", "2026-03-09T00:00:00Z"); // next Monday: new week, 85
    let a = h.alerts();
    let ids: Vec<_> = a.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids, ["w1:2026-03-02:80", "w1:2026-03-09:80"]);
    assert_eq!((a[0].period_start.0, a[0].period_end.0), (ms("2026-03-02T00:00:00Z"), ms("2026-03-09T00:00:00Z")));
    assert_eq!(a[0].spent, d("85"));
    // Across a year end: 2025-12-29 (Mon) .. 2026-01-05.
    pay(&mut h, "y1", "90", "2025-12-31T10:00:00Z");
    assert_eq!(h.alerts().len(), 2, "a week before the SET's week is not covered");
}

#[test]
fn budgets_convert_spending_per_currency_into_their_currency() {
    let mut h = Harness::new();
    h.rate("JPY", "0.0066666667");
    let mut b = budget("b1", "u1", Category::Travel, "15000", Monthly, "2026-03-01T00:00:00Z");
    b.currency = "JPY".into();
    h.budget(&b);
    let mut t = txn("t1", "acc-1", "u1", Payment, "60.00", "USD", "2026-03-02T10:00:00Z");
    t.category = Category::Travel;
    h.tx(&t); // 8999.99 -> 9000 JPY
    let mut t2 = txn("t2", "acc-1", "u1", Payment, "3000", "JPY", "2026-03-02T11:00:00Z");
    t2.category = Category::Travel;
    h.tx(&t2); // 12000 = 80%
    assert_eq!(alert_view(&h), [v("b1:2026-03-01:80", AlertLevel::Warning, "12000", "t2")]);
    assert_eq!(
        h.notifications().iter().find(|n| n.notification_id.starts_with("budget")).unwrap().message,
        "You have spent 12,000 JPY of your 15,000 JPY travel budget (80%)."
    );
    // A currency without a rate: each processor that needs one (budgets; analytics for the
    // user's cash flow) dead-letters the record on its input topic, naming itself.
    let mut t3 = txn("t3", "acc-9", "u1", Payment, "1", "GBP", "2026-03-02T12:00:00Z");
    t3.category = Category::Travel;
    h.tx(&t3);
    let rejected = |p: &str| (p.to_string(), "missing_exchange_rate".to_string());
    assert_eq!(
        h.dlq_rejections(&format!("{APP}-transactions-by-user-repartition")),
        [rejected("analytics"), rejected("budgets")]
    );
    assert!(!h.budgets("u1").spending["travel"]["2026-03-02"].contains_key("GBP"));
}

#[test]
fn late_timezone_change_applies_to_later_records_with_local_month_boundaries() {
    let mut h = Harness::new();
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-02-10T00:00:00Z"));
    pay(&mut h, "t1", "50", "2026-02-28T14:00:00Z"); // UTC (no profile yet): February
    h.profile("u1", "Asia/Tokyo");
    // 2026-02-28T16:00Z is 2026-03-01 01:00 in Tokyo: March, so February stays at 50.
    pay(&mut h, "t2", "40", "2026-02-28T16:00:00Z");
    assert!(h.alerts().is_empty());
    let s = h.budgets("u1");
    assert_eq!(s.spending["groceries"]["2026-02-28"]["USD"], d("50"), "earlier records keep their dates");
    assert_eq!(s.spending["groceries"]["2026-03-01"]["USD"], d("40"));
    pay(&mut h, "t3", "45", "2026-03-10T00:00:00Z"); // March: 85
    let a = h.alerts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].alert_id, "b1:2026-03-01:80");
    // Local midnight in Tokyo (UTC+9).
    assert_eq!(
        (a[0].period_start.0, a[0].period_end.0),
        (ms("2026-03-01T00:00:00+09:00"), ms("2026-04-01T00:00:00+09:00"))
    );
    // Unknown zone names fall back to UTC.
    h.profile("u1", "Not/AZone");
    pay(&mut h, "t4", "1", "2026-03-31T20:00:00Z");
    assert!(h.budgets("u1").spending["groceries"].contains_key("2026-03-31"));
}

#[test]
fn month_boundary_at_local_midnight_in_new_york_across_dst() {
    let mut h = Harness::new();
    h.profile("u1", "America/New_York");
    h.budget(&budget("b1", "u1", Category::Groceries, "100", Monthly, "2026-03-01T12:00:00Z"));
    pay(&mut h, "t1", "90", "2026-04-01T03:30:00Z"); // 23:30 EDT on March 31st
    pay(&mut h, "t2", "90", "2026-04-01T04:00:00Z"); // 00:00 EDT April 1st
    let a = h.alerts();
    let ids: Vec<_> = a.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids, ["b1:2026-03-01:80", "b1:2026-04-01:80"]);
    assert_eq!(a[0].period_start.0, ms("2026-03-01T00:00:00-05:00"));
    assert_eq!(a[0].period_end.0, ms("2026-04-01T00:00:00-04:00"));
}
