//! Reference model, spending analytics (issue 5): hand-computed daily windows, cash flow and
//! late records. Every expected number is worked out in the comments.

use connectors::reference::{analytics::partition_of, compute, compute_in_order, AnalyticsConfig, ReferenceConfig};
use connectors::Event;
use rust_decimal::Decimal;
use schemas::TransactionKind::*;
use schemas::{
    Category, Channel, ExchangeRate, TimestampMillis, TransactionEvent, TransactionKind, TransactionStatus, UserProfile,
};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// RFC 3339 → epoch millis.
fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn rate(cur: &str, r: &str) -> Event {
    Event::Rate(ExchangeRate { currency: cur.into(), usd_rate: d(r), as_of: TimestampMillis(0) })
}

fn profile(user: &str, tz: &str, base: &str) -> Event {
    Event::Profile(UserProfile {
        user_id: user.into(),
        base_currency: base.into(),
        timezone: tz.into(),
        home_country: "US".into(),
        updated_at: TimestampMillis(1),
    })
}

fn tx(id: &str, user: &str, kind: TransactionKind, amount: &str, cur: &str, at: &str) -> TransactionEvent {
    TransactionEvent {
        transaction_id: id.into(),
        account_id: format!("{user}-chk"),
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
        occurred_at: TimestampMillis(ms(at)),
    }
}

fn cat(mut t: TransactionEvent, c: Category) -> Event {
    t.category = c;
    Event::Transaction(t)
}

fn ev(t: TransactionEvent) -> Event {
    Event::Transaction(t)
}

fn window(user: &str, c: Category, start: &str) -> (String, String, i64) {
    (user.into(), c.symbol().into(), ms(start))
}

/// Processing order = input order (so late records stay late).
fn in_input_order(events: &[Event], cfg: &ReferenceConfig) -> connectors::ReferenceOutput {
    compute_in_order(events, 0..events.len(), cfg)
}

#[test]
fn local_midnight_windows_spending_kinds_and_duplicates() {
    let pending = {
        let mut t = tx("pending", "u1", Payment, "99", "USD", "2026-03-02T12:00:00-05:00");
        t.status = TransactionStatus::Pending;
        t
    };
    let mut transfer = tx("tr", "u1", Transfer, "50", "USD", "2026-03-02T13:00:00-05:00");
    transfer.counterparty_account_id = Some("elsewhere".into());
    let events = vec![
        profile("u1", "America/New_York", "USD"),
        ev(tx("a", "u1", Payment, "10", "USD", "2026-03-02T23:59:59.999-05:00")),
        ev(tx("b", "u1", Payment, "20", "USD", "2026-03-03T00:00:00-05:00")),
        ev(tx("w", "u1", Withdrawal, "40", "USD", "2026-03-02T09:00:00-05:00")),
        ev(tx("f", "u1", Fee, "1.50", "USD", "2026-03-02T09:30:00-05:00")),
        ev(tx("r", "u1", Refund, "5.25", "USD", "2026-03-02T18:00:00-05:00")),
        ev(tx("dep", "u1", Deposit, "1000", "USD", "2026-03-02T08:00:00-05:00")),
        ev(pending),
        ev(transfer),
        ev(tx("a", "u1", Payment, "10", "USD", "2026-03-02T23:59:59.999-05:00")), // duplicate
        cat(tx("c", "u1", Payment, "7", "USD", "2026-03-02T12:00:00-05:00"), Category::Dining),
    ];
    let out = compute(&events, &ReferenceConfig::default());
    // 2 March in New York: 10 + 40 + 1.50 - 5.25 = 46.25 from 4 transactions (refund included);
    // DEPOSIT and TRANSFER are not spending, PENDING moves nothing, the copy of "a" is a duplicate.
    let mar2 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-02T00:00:00-05:00")];
    assert_eq!((mar2.total, mar2.count, mar2.currency.as_str()), (d("46.25"), 4, "USD"));
    assert_eq!(mar2.window_end, ms("2026-03-03T00:00:00-05:00"));
    let mar3 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-03T00:00:00-05:00")];
    assert_eq!((mar3.total, mar3.count), (d("20"), 1));
    assert_eq!(out.spending_daily[&window("u1", Category::Dining, "2026-03-02T00:00:00-05:00")].total, d("7"));
    assert_eq!(out.spending_daily.len(), 3);
    assert_eq!(out.duplicates.analytics, 1);
    assert!(out.late_records.is_empty(), "timestamp order: nothing is late");
    // The clock ended at 3 March 00:00 New York: 2 March ended at that instant, and its grace (1 h)
    // has not passed, so no window is closed yet.
    assert!(out.spending_daily.values().all(|w| !w.closed));
}

#[test]
fn dst_days_last_23_and_25_hours() {
    let events = vec![
        profile("u1", "Europe/Berlin", "EUR"),
        ev(tx("spring", "u1", Payment, "5", "EUR", "2026-03-29T23:30:00+02:00")),
        ev(tx("autumn", "u1", Payment, "7", "EUR", "2026-10-25T00:30:00+02:00")),
        ev(tx("autumn2", "u1", Payment, "8", "EUR", "2026-10-25T23:30:00+01:00")),
    ];
    let out = compute(&events, &ReferenceConfig::default());
    let spring = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-29T00:00:00+01:00")];
    assert_eq!(spring.window_end - ms("2026-03-29T00:00:00+01:00"), 23 * 3_600_000);
    let autumn = &out.spending_daily[&window("u1", Category::Groceries, "2026-10-25T00:00:00+02:00")];
    assert_eq!(autumn.window_end, ms("2026-10-26T00:00:00+01:00"));
    assert_eq!((autumn.total, autumn.count), (d("15"), 2));
    assert!(spring.closed && !autumn.closed);
}

#[test]
fn base_currency_per_transaction_rounding_and_fixed_window_currency() {
    let events = vec![
        rate("EUR", "1.085"),
        rate("JPY", "0.0067"),
        rate("USD", "1"),
        profile("u1", "UTC", "EUR"),
        // 108.50 USD / 1.085 = 100.00 EUR; 1,000 JPY × 0.0067 / 1.085 = 6.17511... → 6.18 EUR.
        ev(tx("p1", "u1", Payment, "108.50", "USD", "2026-03-02T10:00:00Z")),
        ev(tx("p2", "u1", Payment, "1000", "JPY", "2026-03-02T11:00:00Z")),
        // The base currency changes to JPY: the open window stays in EUR, a new one is in JPY.
        profile("u1", "UTC", "JPY"),
        // 2.17 EUR stays 2.17 EUR in the EUR window; 10.00 USD in JPY: 10 / 0.0067 = 1492.5… → 1493.
        ev(tx("p3", "u1", Payment, "2.17", "EUR", "2026-03-02T12:00:00Z")),
        ev(tx("p4", "u1", Payment, "10.00", "USD", "2026-03-03T12:00:00Z")),
        // No GBP rate: dead-lettered for analytics, nothing of it applied anywhere.
        ev(tx("gbp", "u1", Payment, "5", "GBP", "2026-03-03T13:00:00Z")),
    ];
    let out = in_input_order(&events, &ReferenceConfig::default());
    let w1 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-02T00:00:00Z")];
    assert_eq!((w1.total, w1.count, w1.currency.as_str()), (d("108.35"), 3, "EUR"));
    let w2 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-03T00:00:00Z")];
    assert_eq!((w2.total, w2.count, w2.currency.as_str()), (d("1493"), 1, "JPY"));
    assert!(out.dead_letters.iter().any(|l| l.processor == "analytics" && l.source_id == "gbp"));
    // March's cash flow was opened in EUR: 100.00 + 6.18 + 2.17 + (10 USD = 9.216589… → 9.22) EUR.
    let m = &out.cash_flow[&("u1".to_string(), "2026-03".to_string())];
    assert_eq!((m.money_out, m.count, m.currency.as_str()), (d("117.57"), 4, "EUR"));
}

#[test]
fn records_beyond_grace_are_counted_not_applied_and_still_in_cash_flow() {
    let events = vec![
        profile("u1", "Europe/Berlin", "EUR"),
        ev(tx("a", "u1", Payment, "10", "EUR", "2026-03-02T12:00:00+01:00")),
        // 3 March 00:30: 2 March ended 30 min ago, grace is 1 h: still open.
        ev(tx("b", "u1", Payment, "1", "EUR", "2026-03-03T00:30:00+01:00")),
        ev(tx("in-grace", "u1", Payment, "5", "EUR", "2026-03-02T23:00:00+01:00")),
        // 01:00 exactly: end + grace <= clock, 2 March is closed.
        ev(tx("c", "u1", Payment, "1", "EUR", "2026-03-03T01:00:00+01:00")),
        ev(tx("late", "u1", Payment, "100", "EUR", "2026-03-02T23:30:00+01:00")),
        // A late refund is late too; a late deposit is not spending and never late.
        ev(tx("late-refund", "u1", Refund, "3", "EUR", "2026-03-02T20:00:00+01:00")),
        ev(tx("late-dep", "u1", Deposit, "50", "EUR", "2026-03-02T20:00:00+01:00")),
    ];
    let out = in_input_order(&events, &ReferenceConfig::default());
    let mar2 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-02T00:00:00+01:00")];
    assert_eq!((mar2.total, mar2.count, mar2.closed), (d("15"), 2, true));
    let mar3 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-03T00:00:00+01:00")];
    assert_eq!((mar3.total, mar3.count, mar3.closed), (d("2"), 2, false));
    let late: Vec<&str> = out.late_records.iter().map(|l| l.transaction_id.as_str()).collect();
    assert_eq!(late, ["late", "late-refund"]);
    // Cash flow has no windows: 10 + 1 + 5 + 1 + 100 out, 3 + 50 in, 7 transactions.
    let m = &out.cash_flow[&("u1".to_string(), "2026-03".to_string())];
    assert_eq!((m.money_out, m.money_in, m.count), (d("117"), d("53"), 7));
    // With a 2-hour grace the same input has nothing late.
    let cfg = ReferenceConfig {
        analytics: AnalyticsConfig { grace_ms: 2 * 3_600_000, ..AnalyticsConfig::default() },
        ..ReferenceConfig::default()
    };
    let out = in_input_order(&events, &cfg);
    assert!(out.late_records.is_empty());
    // 10 + 5 + 100 - 3 = 112 from 4 transactions.
    let mar2 = &out.spending_daily[&window("u1", Category::Groceries, "2026-03-02T00:00:00+01:00")];
    assert_eq!((mar2.total, mar2.count), (d("112"), 4));
}

#[test]
fn one_lateness_clock_per_partition() {
    // Two users on different partitions of 2.
    let users: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    let a = users.iter().find(|u| partition_of(u, 2) == 0).unwrap().clone();
    let b = users.iter().find(|u| partition_of(u, 2) == 1).unwrap().clone();
    let events = vec![
        ev(tx("a1", &a, Payment, "1", "USD", "2026-03-05T12:00:00Z")),
        // b's 2 March is long over by a's clock, not by b's own task's clock.
        ev(tx("b1", &b, Payment, "2", "USD", "2026-03-02T12:00:00Z")),
    ];
    let one = in_input_order(&events, &ReferenceConfig::default());
    assert_eq!(one.late_records.len(), 1, "one task: b1 is late");
    let cfg = ReferenceConfig {
        analytics: AnalyticsConfig { partitions: 2, ..AnalyticsConfig::default() },
        ..ReferenceConfig::default()
    };
    let two = in_input_order(&events, &cfg);
    assert!(two.late_records.is_empty());
    assert_eq!(two.spending_daily[&window(&b, Category::Groceries, "2026-03-02T00:00:00Z")].total, d("2"));
    // No profile: UTC and the default base currency.
    assert_eq!(two.spending_daily[&window(&b, Category::Groceries, "2026-03-02T00:00:00Z")].currency, "USD");
}

#[test]
fn monthly_cash_flow_lines_and_transfers_in_when_the_owner_is_known() {
    let transfer = |id: &str, user: &str, from: &str, to: &str, amount: &str, at: &str| {
        let mut t = tx(id, user, Transfer, amount, "USD", at);
        t.account_id = from.into();
        t.counterparty_account_id = Some(to.into());
        ev(t)
    };
    let mut sav_interest = tx("int", "u1", Interest, "2.50", "USD", "2026-03-05T12:00:00Z");
    sav_interest.account_id = "u1-sav".into();
    let events = vec![
        profile("u1", "America/New_York", "USD"),
        profile("u2", "UTC", "USD"),
        // u2-chk's owner becomes known; u3-chk never has a transaction of its own.
        ev(tx("u2-dep", "u2", Deposit, "5", "USD", "2026-03-01T12:00:00Z")),
        ev(tx("dep", "u1", Deposit, "3000", "USD", "2026-03-01T12:00:00Z")),
        ev(sav_interest),
        ev(tx("ref", "u1", Refund, "15", "USD", "2026-03-06T12:00:00Z")),
        ev(tx("pay", "u1", Payment, "120", "USD", "2026-03-07T12:00:00Z")),
        ev(tx("wd", "u1", Withdrawal, "60", "USD", "2026-03-08T12:00:00Z")),
        ev(tx("fee", "u1", Fee, "3", "USD", "2026-03-09T12:00:00Z")),
        transfer("to-u2", "u1", "u1-chk", "u2-chk", "200", "2026-03-10T12:00:00Z"),
        transfer("to-u3", "u1", "u1-chk", "u3-chk", "70", "2026-03-11T12:00:00Z"),
        transfer("from-u2", "u2", "u2-chk", "u1-chk", "40", "2026-03-12T12:00:00Z"),
        // Between two accounts of u1 (u1-sav's owner is known from its interest): both lines.
        transfer("own", "u1", "u1-chk", "u1-sav", "25", "2026-03-13T12:00:00Z"),
        // 1 April 02:00 UTC is still 31 March in New York.
        ev(tx("eom", "u1", Payment, "9", "USD", "2026-04-01T02:00:00Z")),
        ev(tx("apr", "u1", Payment, "11", "USD", "2026-04-01T05:00:00Z")),
        transfer("to-u2", "u1", "u1-chk", "u2-chk", "200", "2026-03-10T12:00:00Z"), // duplicate
    ];
    let out = in_input_order(&events, &ReferenceConfig::default());
    let month = |u: &str, m: &str| out.cash_flow.get(&(u.to_string(), m.to_string())).cloned();
    let m = month("u1", "2026-03").unwrap();
    // in: 3000 + 2.50 + 15; out: 120 + 60 + 3 + 9; transfers out: 200 + 70 + 25; in: 40 + 25.
    assert_eq!((m.money_in, m.money_out), (d("3017.50"), d("192")));
    assert_eq!((m.transfers_out, m.transfers_in), (d("295"), d("65")));
    assert_eq!((m.count, m.currency.as_str()), (12, "USD"));
    assert_eq!(month("u1", "2026-04").unwrap().money_out, d("11"));
    let u2 = month("u2", "2026-03").unwrap();
    assert_eq!((u2.money_in, u2.transfers_in, u2.transfers_out, u2.count), (d("5"), d("200"), d("40"), 3));
    assert!(month("u3", "2026-03").is_none(), "u3-chk's owner is unknown");
    // The copy of "to-u2" is a duplicate twice: u1's transaction and u2's transfer in.
    assert_eq!(out.duplicates.analytics, 2);
}
