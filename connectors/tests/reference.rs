//! Reference model on small hand-written scenarios; every expected number is computed by hand in
//! the comments.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeZone, Utc};
use connectors::reference::{self, compute, convert, ReferenceConfig};
use connectors::Event;
use rust_decimal::Decimal;
use schemas::{
    BudgetAction, BudgetEvent, BudgetPeriod, Category, Channel, ExchangeRate, GoalEvent, GoalEventType, GoalStatus,
    TimestampMillis, TransactionEvent, TransactionKind, TransactionStatus, UserProfile,
};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Millis of a UTC date-time `YYYY-MM-DD HH:MM`.
fn at(s: &str) -> i64 {
    let dt = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    Utc.from_utc_datetime(&dt).timestamp_millis()
}

fn rate(cur: &str, r: &str) -> Event {
    Event::Rate(ExchangeRate { currency: cur.into(), usd_rate: d(r), as_of: TimestampMillis(0) })
}

fn profile(user: &str, tz: &str, ts: i64) -> Event {
    Event::Profile(UserProfile {
        user_id: user.into(),
        base_currency: "USD".into(),
        timezone: tz.into(),
        home_country: "US".into(),
        updated_at: TimestampMillis(ts),
    })
}

fn tx(
    id: &str,
    account: &str,
    user: &str,
    kind: TransactionKind,
    amount: &str,
    cur: &str,
    ts: i64,
) -> TransactionEvent {
    TransactionEvent {
        transaction_id: id.into(),
        account_id: account.into(),
        user_id: user.into(),
        kind,
        amount: d(amount),
        currency: cur.into(),
        status: TransactionStatus::Completed,
        category: Category::Groceries,
        counterparty_account_id: None,
        merchant: None,
        goal_id: None,
        channel: Channel::Card,
        location: None,
        occurred_at: TimestampMillis(ts),
    }
}

fn ev(t: TransactionEvent) -> Event {
    Event::Transaction(t)
}

fn transfer(id: &str, from: &str, user: &str, to: &str, amount: &str, cur: &str, ts: i64) -> TransactionEvent {
    let mut t = tx(id, from, user, TransactionKind::Transfer, amount, cur, ts);
    t.counterparty_account_id = Some(to.into());
    t.category = Category::Savings;
    t
}

fn budget(
    id: &str,
    user: &str,
    cat: Category,
    limit: &str,
    period: BudgetPeriod,
    action: BudgetAction,
    ts: i64,
) -> Event {
    Event::Budget(BudgetEvent {
        budget_id: id.into(),
        user_id: user.into(),
        category: cat,
        limit: d(limit),
        currency: "USD".into(),
        period,
        action,
        updated_at: TimestampMillis(ts),
    })
}

fn goal(kind: GoalEventType, id: &str, user: &str, target: &str, cur: &str, account: Option<&str>, ts: i64) -> Event {
    Event::Goal(GoalEvent {
        event_type: kind,
        goal_id: id.into(),
        user_id: user.into(),
        name: "trip".into(),
        target_amount: d(target),
        currency: cur.into(),
        target_date: None,
        account_id: account.map(Into::into),
        occurred_at: TimestampMillis(ts),
    })
}

fn base_rates() -> Vec<Event> {
    vec![rate("USD", "1"), rate("EUR", "1.085"), rate("JPY", "0.0067"), rate("KWD", "3.25")]
}

fn run(mut events: Vec<Event>) -> reference::ReferenceOutput {
    let mut all = base_rates();
    all.append(&mut events);
    compute(&all, &ReferenceConfig::default())
}

#[test]
fn transfer_between_two_users_moves_money_on_both_accounts() {
    let t0 = at("2026-03-02 10:00");
    let out = run(vec![
        ev(tx("d1", "a1", "u1", TransactionKind::Deposit, "100", "USD", t0)),
        ev(tx("d2", "a2", "u2", TransactionKind::Deposit, "50", "USD", t0 + 1)),
        ev(transfer("x1", "a1", "u1", "a2", "30", "USD", t0 + 2)),
    ]);
    let (a1, a2) = (&out.accounts["a1"], &out.accounts["a2"]);
    // a1: 100 - 30 = 70; a2: 50 + 30 = 80; both saw two legs, the last being the transfer.
    assert_eq!((a1.balance, a1.applied_count, a1.last_transaction_id.as_str()), (d("70"), 2, "x1"));
    assert_eq!((a2.balance, a2.applied_count, a2.last_transaction_id.as_str()), (d("80"), 2, "x1"));
    assert_eq!((a1.user_id.as_str(), a2.user_id.as_str()), ("u1", "u2"));
    assert_eq!(a2.updated_at, TimestampMillis(t0 + 2));
}

#[test]
fn credit_to_an_unknown_account_opens_it_in_the_transfer_currency_without_owner() {
    let t0 = at("2026-03-02 10:00");
    let out = run(vec![
        ev(tx("d1", "a1", "u1", TransactionKind::Deposit, "100", "EUR", t0)),
        ev(transfer("x1", "a1", "u1", "ext", "40", "EUR", t0 + 1)),
    ]);
    let ext = &out.accounts["ext"];
    assert_eq!((ext.balance, ext.currency.as_str(), ext.user_id.as_str()), (d("40"), "EUR", ""));
}

#[test]
fn duplicates_delivered_twice_and_three_times_count_once() {
    let t0 = at("2026-03-02 10:00");
    let dep = tx("d1", "a1", "u1", TransactionKind::Deposit, "100", "USD", t0);
    let x = transfer("x1", "a1", "u1", "a2", "10", "USD", t0 + 5);
    let mut pending = tx("p1", "a1", "u1", TransactionKind::Payment, "5", "USD", t0 + 10);
    pending.status = TransactionStatus::Pending;
    let mut completed = pending.clone();
    completed.status = TransactionStatus::Completed;
    completed.occurred_at = TimestampMillis(t0 + 20);
    let out = run(vec![ev(dep.clone()), ev(dep.clone()), ev(dep), ev(x.clone()), ev(x), ev(pending), ev(completed)]);
    // a1: +100 - 10 - 5 = 85 from three legs; a2: +10 from one.
    assert_eq!((out.accounts["a1"].balance, out.accounts["a1"].applied_count), (d("85"), 3));
    assert_eq!((out.accounts["a2"].balance, out.accounts["a2"].applied_count), (d("10"), 1));
    // Ignored: deposit twice, transfer debit and credit once each. PENDING is not remembered.
    assert_eq!(out.duplicates.balances, 4);
    assert_eq!(out.duplicates.budgets, 3);
}

#[test]
fn jpy_and_kwd_conversion_rounds_half_even_to_minor_units() {
    let mut rates = BTreeMap::new();
    for (c, r) in [("USD", "1"), ("JPY", "0.02"), ("KWD", "4")] {
        rates.insert(c.to_string(), d(r));
    }
    // 0.05 USD / 0.02 = 2.5 JPY → 2 (half-even; half-up would give 3); 0.07 / 0.02 = 3.5 → 4.
    assert_eq!(convert(d("0.05"), "USD", "JPY", &rates), Some(d("2")));
    assert_eq!(convert(d("0.07"), "USD", "JPY", &rates), Some(d("4")));
    // 0.01 USD / 4 = 0.0025 KWD → 0.002; 0.03 / 4 = 0.0075 → 0.008.
    assert_eq!(convert(d("0.01"), "USD", "KWD", &rates), Some(d("0.002")));
    assert_eq!(convert(d("0.03"), "USD", "KWD", &rates), Some(d("0.008")));
    // Same currency: unchanged; unknown rate: none.
    assert_eq!(convert(d("1.005"), "KWD", "KWD", &rates), Some(d("1.005")));
    assert_eq!(convert(d("1"), "EUR", "USD", &rates), None);

    // Through balances with realistic rates: JPY 0.0067, KWD 3.25.
    let t0 = at("2026-03-02 10:00");
    let out = run(vec![
        ev(tx("j0", "aj", "u1", TransactionKind::Deposit, "10000", "JPY", t0)),
        // 12.34 / 0.0067 = 1841.79… → 1842 JPY.
        ev(tx("j1", "aj", "u1", TransactionKind::Payment, "12.34", "USD", t0 + 1)),
        ev(tx("k0", "ak", "u2", TransactionKind::Deposit, "100", "KWD", t0 + 2)),
        // 10.05 / 3.25 = 3.09230… → 3.092 KWD.
        ev(tx("k1", "ak", "u2", TransactionKind::Payment, "10.05", "USD", t0 + 3)),
        // Transfer of 1000 JPY into the KWD account: 1000 × 0.0067 / 3.25 = 2.06153… → 2.062 KWD.
        ev(transfer("x1", "aj", "u1", "ak", "1000", "JPY", t0 + 4)),
    ]);
    assert_eq!(out.accounts["aj"].balance, d("7158")); // 10000 - 1842 - 1000
    assert_eq!(out.accounts["ak"].balance, d("98.970")); // 100 - 3.092 + 2.062
    assert_eq!(out.accounts["ak"].currency, "KWD");
}

#[test]
fn missing_rate_is_a_dead_letter_and_applies_nothing() {
    let t0 = at("2026-03-02 10:00");
    let out = run(vec![
        ev(tx("d1", "a1", "u1", TransactionKind::Deposit, "100", "USD", t0)),
        ev(tx("p1", "a1", "u1", TransactionKind::Payment, "5", "CHF", t0 + 1)),
    ]);
    assert_eq!((out.accounts["a1"].balance, out.accounts["a1"].applied_count), (d("100"), 1));
    assert!(out.dead_letters.iter().any(|l| l.processor == "balances" && l.reason == "missing_exchange_rate"));
}

#[test]
fn low_balance_fires_when_crossing_below_zero_only() {
    let t0 = at("2026-03-02 10:00");
    let out = run(vec![
        ev(tx("d1", "a1", "u1", TransactionKind::Deposit, "10", "USD", t0)),
        ev(tx("p1", "a1", "u1", TransactionKind::Payment, "15", "USD", t0 + 1)), // 10 → -5: fires
        ev(tx("p2", "a1", "u1", TransactionKind::Payment, "1", "USD", t0 + 2)),  // -5 → -6: already below
        ev(tx("d2", "a1", "u1", TransactionKind::Deposit, "6", "USD", t0 + 3)),  // -6 → 0: at threshold
        ev(transfer("x1", "a1", "u1", "a2", "0.01", "USD", t0 + 4)),             // 0 → -0.01: fires again
    ]);
    let low: Vec<&String> = out.notifications.iter().filter(|n| n.starts_with("low-balance:")).collect();
    assert_eq!(low, ["low-balance:a1:p1:debit", "low-balance:a1:x1:debit"]);
}

#[test]
fn budget_alerts_at_80_and_100_once_refund_back_under_80_and_next_month() {
    let u = "u1";
    let day = |s: &str| at(&format!("2026-03-{s}"));
    let p = |id: &str, amount: &str, ts: i64| ev(tx(id, "a1", u, TransactionKind::Payment, amount, "USD", ts));
    let events = vec![
        profile(u, "UTC", day("01 00:00")),
        budget("b1", u, Category::Groceries, "100", BudgetPeriod::Monthly, BudgetAction::Set, day("01 01:00")),
        p("p1", "50", day("03 10:00")), // 50: nothing
        p("p2", "35", day("05 10:00")), // 85: WARNING (>= 80)
        ev(tx("r1", "a1", u, TransactionKind::Refund, "10", "USD", day("06 10:00"))), // 75: back under 80
        p("p3", "4", day("07 10:00")),  // 79
        p("p4", "1", day("08 10:00")),  // 80: reached again, but 80 alerted once already
        p("p5", "28", day("09 10:00")), // 108: EXCEEDED only
        p("p6", "120", at("2026-04-02 10:00")), // April: 120 crosses both at once
    ];
    let out = run(events);
    let march = &out.budgets[&("b1".to_string(), at("2026-03-01 00:00"))];
    assert_eq!(march.spent, d("108"));
    assert_eq!(march.period_end, TimestampMillis(at("2026-04-01 00:00")));
    let ids: Vec<&str> = march.alerts.iter().map(String::as_str).collect();
    assert_eq!(ids, ["b1:2026-03-01:100", "b1:2026-03-01:80"]);
    let april = &out.budgets[&("b1".to_string(), at("2026-04-01 00:00"))];
    assert_eq!(april.spent, d("120"));
    assert_eq!(april.alerts.len(), 2);
    assert_eq!(out.notifications.iter().filter(|n| n.starts_with("budget:")).count(), 4);
    assert!(out.notifications.contains("budget:b1:2026-04-01:100"));
}

#[test]
fn budget_set_late_in_period_counts_earlier_spending_and_other_kinds_do_not() {
    let u = "u1";
    let mut other = tx("t1", "a1", u, TransactionKind::Transfer, "500", "USD", at("2026-03-02 09:00"));
    other.counterparty_account_id = Some("a9".into()); // TRANSFER is not spending
    let mut dining = tx("p2", "a1", u, TransactionKind::Payment, "500", "USD", at("2026-03-02 11:00"));
    dining.category = Category::Dining; // another category
    let events = vec![
        ev(tx("p1", "a1", u, TransactionKind::Payment, "90", "USD", at("2026-03-02 10:00"))),
        ev(other),
        ev(dining),
        // Spending in February is before the budget's first period.
        ev(tx("p0", "a1", u, TransactionKind::Payment, "90", "USD", at("2026-02-27 10:00"))),
        budget("b1", u, Category::Groceries, "100", BudgetPeriod::Monthly, BudgetAction::Set, at("2026-03-04 12:00")),
    ];
    let out = run(events);
    // SET evaluates at once: 90 >= 80 → WARNING, triggered by the SET.
    assert_eq!(out.alert_ids().into_iter().collect::<Vec<_>>(), ["b1:2026-03-01:80"]);
    assert_eq!(out.budgets.len(), 1);
    // Lowering the limit to 90 evaluates again: 90 >= 90 → EXCEEDED.
    let mut events2 = vec![budget(
        "b1",
        u,
        Category::Groceries,
        "90",
        BudgetPeriod::Monthly,
        BudgetAction::Set,
        at("2026-03-05 12:00"),
    )];
    let mut all = vec![ev(tx("p1", "a1", u, TransactionKind::Payment, "90", "USD", at("2026-03-02 10:00")))];
    all.push(budget(
        "b1",
        u,
        Category::Groceries,
        "100",
        BudgetPeriod::Monthly,
        BudgetAction::Set,
        at("2026-03-04 12:00"),
    ));
    all.append(&mut events2);
    // DELETE stops tracking: later spending raises nothing.
    all.push(budget(
        "b1",
        u,
        Category::Groceries,
        "90",
        BudgetPeriod::Monthly,
        BudgetAction::Delete,
        at("2026-03-06 12:00"),
    ));
    all.push(ev(tx("p9", "a1", u, TransactionKind::Payment, "500", "USD", at("2026-04-02 10:00"))));
    let out = run(all);
    let ids: Vec<String> = out.alert_ids().into_iter().collect();
    assert_eq!(ids, ["b1:2026-03-01:100", "b1:2026-03-01:80"]);
    assert!(out.budgets.values().all(|b| b.deleted));
}

#[test]
fn weekly_budget_in_the_users_timezone_and_foreign_spending_converted_per_currency_and_date() {
    let u = "u1";
    // Tokyo is UTC+9. 2026-03-04 is a Wednesday: the ISO week starts Monday 2026-03-02, local
    // midnight = 2026-03-01 15:00 UTC.
    let mut e1 = tx("e1", "a1", u, TransactionKind::Payment, "10.00", "EUR", at("2026-03-04 03:00"));
    e1.category = Category::Dining;
    let mut e2 = tx("e2", "a1", u, TransactionKind::Payment, "10.01", "EUR", at("2026-03-04 04:00"));
    e2.category = Category::Dining;
    let mut e3 = tx("e3", "a1", u, TransactionKind::Payment, "10.00", "EUR", at("2026-03-05 04:00"));
    e3.category = Category::Dining;
    // Sunday 2026-03-08 20:00 UTC is Monday 05:00 in Tokyo: the next week.
    let mut e4 = tx("e4", "a1", u, TransactionKind::Payment, "99", "USD", at("2026-03-08 20:00"));
    e4.category = Category::Dining;
    let events = vec![
        profile(u, "Asia/Tokyo", at("2026-03-01 00:00")),
        budget("b2", u, Category::Dining, "50", BudgetPeriod::Weekly, BudgetAction::Set, at("2026-03-02 00:00")),
        ev(e1),
        ev(e2),
        ev(e3),
        ev(e4),
    ];
    let out = run(events);
    let week = &out.budgets[&("b2".to_string(), at("2026-03-01 15:00"))];
    assert_eq!(week.period_start_date, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
    assert_eq!(week.period_end, TimestampMillis(at("2026-03-08 15:00")));
    // 3/4: 20.01 EUR × 1.085 = 21.71085 → 21.71 USD; 3/5: 10.00 × 1.085 = 10.85. Spent 32.56.
    assert_eq!(week.spent, d("32.56"));
    assert!(week.alerts.is_empty()); // 32.56 < 40
    let next = &out.budgets[&("b2".to_string(), at("2026-03-08 15:00"))];
    assert_eq!(next.spent, d("99"));
    let ids: Vec<&str> = next.alerts.iter().map(String::as_str).collect();
    assert_eq!(ids, ["b2:2026-03-09:100", "b2:2026-03-09:80"]);
}

#[test]
fn late_profile_timezone_change_affects_later_records_only() {
    let u = "u1";
    // 2026-03-31 20:00 UTC: March 31 in UTC, April 1 (05:00) in Tokyo.
    let events = vec![
        budget("b1", u, Category::Groceries, "100", BudgetPeriod::Monthly, BudgetAction::Set, at("2026-03-01 00:00")),
        ev(tx("p1", "a1", u, TransactionKind::Payment, "30", "USD", at("2026-03-31 20:00"))),
        profile(u, "Asia/Tokyo", at("2026-03-31 21:00")),
        ev(tx("p2", "a1", u, TransactionKind::Payment, "30", "USD", at("2026-03-31 22:00"))),
    ];
    let out = run(events);
    // p1 was dated March 31 (UTC, no profile yet); p2 April 1 in Tokyo.
    assert_eq!(out.budgets[&("b1".to_string(), at("2026-03-01 00:00"))].spent, d("30"));
    assert_eq!(out.budgets[&("b1".to_string(), at("2026-03-31 15:00"))].spent, d("30"));
}

#[test]
fn goal_milestones_sticky_achieved_tags_and_deletion() {
    let u = "u1";
    let t = |h: u32| at("2026-03-02 00:00") + i64::from(h) * 3_600_000;
    let mut tagged_before = tx("g0", "chk", u, TransactionKind::Deposit, "500", "USD", t(1));
    tagged_before.goal_id = Some("g2".into());
    let mut tagged = tx("g1", "chk", u, TransactionKind::Deposit, "54.25", "USD", t(6));
    tagged.goal_id = Some("g2".into());
    let mut tagged_payment = tx("g3", "chk", u, TransactionKind::Payment, "10.85", "USD", t(7));
    tagged_payment.goal_id = Some("g2".into());
    let events = vec![
        ev(tx("o1", "chk", u, TransactionKind::Deposit, "5000", "USD", t(0))),
        ev(tagged_before), // before g2 exists: does not count
        goal(GoalEventType::GoalCreated, "g1", u, "1000", "USD", Some("sav"), t(2)),
        goal(GoalEventType::GoalCreated, "g2", u, "100", "EUR", None, t(2) + 1),
        ev(transfer("s1", "chk", u, "sav", "300", "USD", t(3))), // g1: 300 → 30 %: 25
        ev(tx("s2", "sav", u, TransactionKind::Interest, "250", "USD", t(4))), // 550 → 55 %: 50
        ev(transfer("s3", "chk", u, "sav", "500", "USD", t(5))), // 1050 → 100 %: 75 and 100, ACHIEVED
        // g2: 54.25 USD / 1.085 = 50.00 EUR → 50 %: 25 and 50.
        ev(tagged),
        // g2: tagged payment counts negative: 10.85 / 1.085 = 10.00 EUR → 40.00 EUR, 40 %.
        ev(tagged_payment),
        ev(transfer("s4", "sav", u, "chk", "600", "USD", t(8))), // g1: 450 → 45 %, still ACHIEVED
        ev(tx("s5", "chk", u, TransactionKind::Deposit, "99", "USD", t(9))), // untouched, untagged
        goal(GoalEventType::GoalUpdated, "g1", u, "500", "USD", Some("sav"), t(10)), // 450/500 = 90 %
        goal(GoalEventType::GoalUpdated, "g2", u, "100", "USD", None, t(11)), // currency change: rejected
        goal(GoalEventType::GoalDeleted, "g2", u, "0", "EUR", None, t(12)),
    ];
    let out = run(events);
    let g1 = &out.goals["g1"];
    assert_eq!((g1.saved, g1.percent, g1.status), (d("450"), d("90.00"), GoalStatus::Achieved));
    assert_eq!(g1.milestones.iter().copied().collect::<Vec<_>>(), [25, 50, 75, 100]);
    assert_eq!(g1.target, d("500"));
    let g2 = &out.goals["g2"];
    assert_eq!((g2.saved, g2.percent, g2.status), (d("40.00"), d("40.00"), GoalStatus::Deleted));
    let goal_notes: Vec<&str> =
        out.notifications.iter().filter(|n| n.starts_with("goal:")).map(String::as_str).collect();
    assert_eq!(goal_notes, ["goal:g1:100", "goal:g1:25", "goal:g1:50", "goal:g1:75", "goal:g2:25", "goal:g2:50"]);
    assert!(out.dead_letters.iter().any(|l| l.reason == "invalid_goal_update" && l.source_id == "g2"));
}

#[test]
fn goal_percent_rounds_half_even_and_is_zero_when_negative() {
    assert_eq!(reference::goal_percent(d("1"), d("3")), d("33.33"));
    assert_eq!(reference::goal_percent(d("2"), d("3")), d("66.67"));
    // 0.00125 → 0.125 % → 0.12 (half-even).
    assert_eq!(reference::goal_percent(d("0.00125"), d("1")), d("0.12"));
    assert_eq!(reference::goal_percent(d("-5"), d("100")), d("0"));
    assert_eq!(reference::goal_percent(d("250"), d("100")), d("100"));
}

fn opened(account: &str, user: &str, cur: &str, ts: i64) -> Event {
    Event::Account(schemas::AccountEvent {
        event_id: format!("{account}-opened"),
        event_type: schemas::AccountEventType::AccountOpened,
        account_id: account.into(),
        user_id: user.into(),
        account_type: schemas::AccountType::Savings,
        currency: cur.into(),
        display_name: None,
        occurred_at: TimestampMillis(ts),
    })
}

/// docs/money-rules.md, "Accounts": a savings account that only receives transfers (u1's own and
/// u2's, one delivered twice) learns its owner from its record; whether the record comes first or
/// last changes nothing in the end.
#[test]
fn an_account_record_first_or_last_gives_the_same_owner_cash_flow_and_goal() {
    let t0 = at("2026-03-02 10:00");
    let h = 3_600_000;
    let money = vec![
        goal(GoalEventType::GoalCreated, "g1", "u1", "1000", "USD", Some("sav"), t0 - 2 * h),
        ev(tx("d1", "chk-1", "u1", TransactionKind::Deposit, "500", "USD", t0)),
        ev(tx("d2", "chk-2", "u2", TransactionKind::Deposit, "300", "EUR", t0 + 1)),
        ev(transfer("t1", "chk-1", "u1", "sav", "100", "USD", t0 + h)),
        ev(transfer("t2", "chk-2", "u2", "sav", "40", "EUR", t0 + 2 * h)),
        ev(transfer("t2", "chk-2", "u2", "sav", "40", "EUR", t0 + 2 * h)),
    ];
    let mut first = base_rates();
    first.push(opened("sav", "u1", "EUR", t0 - h));
    first.extend(money.clone());
    let mut last = base_rates();
    last.extend(money);
    last.push(opened("sav", "u1", "EUR", t0 + 3 * h));
    let cfg = ReferenceConfig::default();
    let (a, b) = (compute(&first, &cfg), compute(&last, &cfg));

    // Record first: EUR from the start; 100 USD = 92.17 EUR (100 / 1.085 = 92.1658..), + 40 EUR.
    let sav = &a.accounts["sav"];
    assert_eq!(
        (sav.user_id.as_str(), sav.currency.as_str(), sav.balance, sav.applied_count),
        ("u1", "EUR", d("132.17"), 2)
    );
    // Record last: USD until then (100 + 40 EUR = 43.40 USD), then the sum converted once:
    // 143.40 / 1.085 = 132.1658.. -> 132.17. Here the two roundings agree.
    let sav = &b.accounts["sav"];
    assert_eq!(
        (sav.user_id.as_str(), sav.currency.as_str(), sav.balance, sav.applied_count),
        ("u1", "EUR", d("132.17"), 2)
    );
    // u1's transfers in (own 100 USD, u2's 40 EUR = 43.40 USD) and the goal (own + u2's) agree.
    for out in [&a, &b] {
        let march = &out.cash_flow[&("u1".to_string(), "2026-03".to_string())];
        assert_eq!((march.transfers_in, march.transfers_out, march.count), (d("143.40"), d("100"), 4));
        assert_eq!(out.goals["g1"].saved, d("143.40"));
        assert_eq!(out.duplicates.balances, 2, "the second t2: its debit and its credit leg");
    }
}
