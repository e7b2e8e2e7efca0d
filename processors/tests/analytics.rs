//! Spending analytics on the test driver: local-midnight windows (23:59:59.999 vs 00:00, DST
//! days), grace and late records, OnUpdate vs final-only emission, base-currency conversion,
//! monthly cash flow with transfers, and daily totals against an independent recomputation.

mod common;

use std::collections::BTreeMap;

use common::*;
use processors::{AnalyticsConfig, FinanceConfig, SpendingEmit};
use rust_decimal::Decimal;
use schemas::TransactionKind::*;
use schemas::*;
use streams::{Crash, DriverConfig};

fn pay(id: &str, user: &str, amount: &str, category: Category, at: &str) -> TransactionEvent {
    let mut t = txn(id, &format!("{user}-chk"), user, Payment, amount, "USD", at);
    t.category = category;
    t
}

fn final_only() -> FinanceConfig {
    FinanceConfig {
        analytics: AnalyticsConfig { emit: SpendingEmit::OnWindowClose, ..Default::default() },
        ..Default::default()
    }
}

#[test]
fn window_boundary_at_local_midnight() {
    let mut h = Harness::new();
    h.profile("u1", "America/New_York");
    h.tx(&pay("a", "u1", "10", Category::Groceries, "2026-03-02T23:59:59.999-05:00"));
    h.tx(&pay("b", "u1", "20", Category::Groceries, "2026-03-03T00:00:00-05:00"));
    let out = h.spending();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].window_start.0, ms("2026-03-02T00:00:00-05:00"));
    assert_eq!(out[0].window_end.0, ms("2026-03-03T00:00:00-05:00"));
    assert_eq!((out[0].total, out[0].count), (d("10"), 1));
    assert_eq!(out[1].window_start.0, ms("2026-03-03T00:00:00-05:00"));
    assert_eq!((out[1].total, out[1].count), (d("20"), 1));
    assert!(out.iter().all(|o| o.user_id == "u1" && o.category == Category::Groceries && o.currency == "USD"));
    // In UTC both were on 2026-03-03 (04:59:59.999Z and 05:00Z): the user's zone decides.
}

#[test]
fn dst_days_in_berlin_are_23_and_25_hours() {
    let mut h = Harness::new();
    h.profile("u1", "Europe/Berlin");
    h.tx(&pay("spring", "u1", "5", Category::Dining, "2026-03-29T23:30:00+02:00"));
    h.tx(&pay("autumn", "u1", "7", Category::Dining, "2026-10-25T00:30:00+02:00"));
    h.tx(&pay("autumn2", "u1", "8", Category::Dining, "2026-10-25T23:30:00+01:00"));
    let w = h.spending();
    assert_eq!(w[0].window_start.0, ms("2026-03-29T00:00:00+01:00"));
    assert_eq!(w[0].window_end.0 - w[0].window_start.0, 23 * 3_600_000);
    assert_eq!(w[1].window_start.0, ms("2026-10-25T00:00:00+02:00"));
    assert_eq!(w[1].window_end.0, ms("2026-10-26T00:00:00+01:00"));
    assert_eq!(w[1].window_end.0 - w[1].window_start.0, 25 * 3_600_000);
    assert_eq!((w[2].window_start, w[2].total, w[2].count), (w[1].window_start, d("15"), 2));
}

#[test]
fn grace_inside_applies_outside_is_late_and_counted() {
    let mut h = Harness::new();
    h.profile("u1", "Europe/Berlin");
    h.tx(&pay("a", "u1", "10", Category::Groceries, "2026-03-02T12:00:00+01:00"));
    // Next day 00:30: the 2 March window ended 30 minutes ago, grace is 1 hour.
    h.tx(&pay("b", "u1", "1", Category::Groceries, "2026-03-03T00:30:00+01:00"));
    h.tx(&pay("in-grace", "u1", "5", Category::Groceries, "2026-03-02T23:00:00+01:00"));
    // 01:00 exactly: end + grace <= clock, the window is closed.
    h.tx(&pay("c", "u1", "1", Category::Groceries, "2026-03-03T01:00:00+01:00"));
    h.tx(&pay("late", "u1", "100", Category::Groceries, "2026-03-02T23:30:00+01:00"));
    let days: BTreeMap<i64, (Decimal, i64)> =
        h.daily_windows().into_iter().map(|w| (w.window_start, (w.total, w.count))).collect();
    assert_eq!(days[&ms("2026-03-02T00:00:00+01:00")], (d("15"), 2));
    assert_eq!(days[&ms("2026-03-03T00:00:00+01:00")], (d("2"), 2));
    assert_eq!(h.late_records(), 1);
    assert_eq!(h.spending().len(), 4, "the late record emits nothing");
    // Cash flow has no window: the late payment is still money out in March.
    assert_eq!(h.cash_flow("u1", "2026-03").unwrap().money_out, d("117"));
}

#[test]
fn on_update_emits_each_change_final_only_emits_once_after_grace() {
    let run = |cfg: FinanceConfig| {
        let mut h = Harness::with(cfg, DriverConfig::default());
        h.profile("u1", "Asia/Tokyo");
        h.tx(&pay("a", "u1", "10", Category::Dining, "2026-03-02T12:00:00+09:00"));
        h.tx(&pay("b", "u1", "20", Category::Dining, "2026-03-02T19:00:00+09:00"));
        h.tx(&pay("c", "u1", "4", Category::Travel, "2026-03-02T20:00:00+09:00"));
        let before = h.spending();
        h.tx(&pay("d", "u1", "1", Category::Dining, "2026-03-03T00:59:59+09:00"));
        let still = h.spending();
        h.tx(&pay("e", "u1", "1", Category::Dining, "2026-03-03T01:00:00+09:00"));
        (before, still, h.spending())
    };
    let (before, _, all) = run(FinanceConfig::default());
    let totals: Vec<_> = before.iter().map(|s| (s.category, s.total)).collect();
    assert_eq!(totals, [(Category::Dining, d("10")), (Category::Dining, d("30")), (Category::Travel, d("4"))]);
    assert_eq!(all.len(), 5);

    let (before, still, all) = run(final_only());
    assert!(before.is_empty() && still.is_empty(), "nothing until end + grace");
    let finals: Vec<_> = all.iter().map(|s| (s.category, s.total, s.count)).collect();
    assert_eq!(finals, [(Category::Dining, d("30"), 2), (Category::Travel, d("4"), 1)]);
    assert_eq!(all[0].window_start.0, ms("2026-03-02T00:00:00+09:00"));
}

#[test]
fn closed_windows_leave_the_store_after_retention() {
    let day = 24 * 3_600_000;
    let cfg = FinanceConfig {
        analytics: AnalyticsConfig { retention_ms: 3 * day, ..Default::default() },
        ..Default::default()
    };
    let mut h = Harness::with(cfg, DriverConfig::default());
    h.profile("u1", "Europe/Berlin");
    h.tx(&pay("d1", "u1", "1", Category::Dining, "2026-03-01T12:00:00+01:00"));
    h.tx(&pay("d2", "u1", "2", Category::Dining, "2026-03-02T12:00:00+01:00"));
    h.tx(&pay("g2", "u1", "3", Category::Groceries, "2026-03-02T13:00:00+01:00"));
    let starts = |h: &Harness| h.daily_windows().iter().map(|w| (w.window_start, w.category)).collect::<Vec<_>>();
    assert_eq!(starts(&h).len(), 3);
    // 5 March 00:00 is exactly 3 days after the 1 March window's end: it goes, 2 March stays.
    h.tx(&pay("d5", "u1", "4", Category::Dining, "2026-03-05T00:00:00+01:00"));
    let mar = |day: u32| ms(&format!("2026-03-{day:02}T00:00:00+01:00"));
    assert_eq!(starts(&h), [(mar(2), Category::Dining), (mar(5), Category::Dining), (mar(2), Category::Groceries)]);
    // Retention never reaches open windows or the month's cash flow.
    h.tx(&pay("d9", "u1", "5", Category::Dining, "2026-03-09T12:00:00+01:00"));
    assert_eq!(starts(&h), [(mar(9), Category::Dining)]);
    assert_eq!(h.cash_flow("u1", "2026-03").unwrap().money_out, d("15"));
    // A record for a deleted day is late, as it was before the deletion.
    h.tx(&pay("old", "u1", "6", Category::Dining, "2026-03-01T18:00:00+01:00"));
    assert_eq!(h.late_records(), 1);
    assert_eq!(starts(&h), [(mar(9), Category::Dining)]);
}

#[test]
fn spending_as_budgets_define_it_in_the_base_currency() {
    let mut h = Harness::new();
    h.rate("EUR", "1.085");
    h.profile_with("u1", "UTC", "EUR", "DE");
    let at = "2026-03-02T12:00:00Z";
    h.tx(&pay("p", "u1", "108.50", Category::Shopping, at)); // 100.00 EUR
    let mut w = txn("w", "u1-chk", "u1", Withdrawal, "20", "EUR", at);
    w.category = Category::Shopping;
    h.tx(&w);
    let mut f = txn("f", "u1-chk", "u1", Fee, "1", "EUR", at);
    f.category = Category::Shopping;
    h.tx(&f);
    let mut r = txn("r", "u1-chk", "u1", Refund, "10", "EUR", at);
    r.category = Category::Shopping;
    h.tx(&r);
    let mut pending = pay("pending", "u1", "99", Category::Shopping, at);
    pending.status = TransactionStatus::Pending;
    h.tx(&pending);
    let mut tr = transfer("t", "u1-chk", "x", "u1", "50", "EUR", at);
    tr.category = Category::Shopping;
    h.tx(&tr);
    h.tx(&pay("p", "u1", "108.50", Category::Shopping, at)); // duplicate
    let w = h.daily_windows();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].total, w[0].count, w[0].currency.as_str()), (d("111.00"), 4, "EUR"));
    // A rate that is missing dead-letters the record for analytics (reason as for budgets).
    h.tx(&pay("gbp", "u1", "5", Category::Shopping, at).with_currency("GBP"));
    assert!(h
        .dlq_reasons(&format!("{APP}-transactions-by-user-repartition"))
        .contains(&"missing_exchange_rate".into()));
    assert_eq!(h.daily_windows()[0].count, 4);
}

trait WithCurrency {
    fn with_currency(self, c: &str) -> Self;
}

impl WithCurrency for TransactionEvent {
    fn with_currency(mut self, c: &str) -> Self {
        self.currency = c.into();
        self
    }
}

#[test]
fn monthly_cash_flow_lines_including_transfers() {
    let mut h = Harness::new();
    h.profile("u1", "America/New_York");
    h.profile("u2", "UTC");
    // u2's account is known (it had a transaction), u3's is not.
    h.tx(&txn("u2-dep", "u2-chk", "u2", Deposit, "5", "USD", "2026-03-01T12:00:00Z"));
    for t in [
        txn("dep", "u1-chk", "u1", Deposit, "3000", "USD", "2026-03-01T12:00:00Z"),
        txn("int", "u1-sav", "u1", Interest, "2.50", "USD", "2026-03-05T12:00:00Z"),
        txn("ref", "u1-chk", "u1", Refund, "15", "USD", "2026-03-06T12:00:00Z"),
        txn("pay", "u1-chk", "u1", Payment, "120", "USD", "2026-03-07T12:00:00Z"),
        txn("wd", "u1-chk", "u1", Withdrawal, "60", "USD", "2026-03-08T12:00:00Z"),
        txn("fee", "u1-chk", "u1", Fee, "3", "USD", "2026-03-09T12:00:00Z"),
        transfer("to-u2", "u1-chk", "u2-chk", "u1", "200", "USD", "2026-03-10T12:00:00Z"),
        transfer("to-u3", "u1-chk", "u3-chk", "u1", "70", "USD", "2026-03-11T12:00:00Z"),
        transfer("from-u2", "u2-chk", "u1-chk", "u2", "40", "USD", "2026-03-12T12:00:00Z"),
        // 1 April 02:00 UTC is still 31 March in New York.
        txn("eom", "u1-chk", "u1", Payment, "9", "USD", "2026-04-01T02:00:00Z"),
        txn("apr", "u1-chk", "u1", Payment, "11", "USD", "2026-04-01T05:00:00Z"),
    ] {
        h.tx(&t);
    }
    h.tx(&transfer("to-u2", "u1-chk", "u2-chk", "u1", "200", "USD", "2026-03-10T12:00:00Z")); // duplicate
    let m = h.cash_flow("u1", "2026-03").unwrap();
    assert_eq!(m.money_in, d("3017.50"));
    assert_eq!(m.money_out, d("192"));
    assert_eq!(m.transfers_out, d("270"));
    assert_eq!(m.transfers_in, d("40"), "from u2 into u1-chk, whose owner is known");
    assert_eq!((m.count, m.currency.as_str(), m.month.as_str()), (10, "USD", "2026-03"));
    assert_eq!(h.cash_flow("u1", "2026-04").unwrap().money_out, d("11"));
    let u2 = h.cash_flow("u2", "2026-03").unwrap();
    assert_eq!((u2.money_in, u2.transfers_in, u2.transfers_out), (d("5"), d("200"), d("40")));
    assert!(h.cash_flow("u3", "2026-03").is_none(), "u3-chk's owner is unknown");
}

/// Independent recomputation: the final daily totals equal a direct sum of the same input per
/// (user, category, local date), in order and shuffled within grace, with and without crashes.
#[test]
fn daily_totals_equal_an_independent_recomputation() {
    let zones = [("u0", "Europe/Berlin"), ("u1", "America/New_York"), ("u2", "Asia/Kolkata")];
    let cats = [Category::Groceries, Category::Dining, Category::Travel];
    let mut input = Vec::new();
    let t0 = ms("2026-03-27T00:00:00Z"); // across the Berlin DST change
    let mut seed = 7u64;
    let mut rnd = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for i in 0..300 {
        let (user, _) = zones[rnd(3) as usize];
        let kind = [Payment, Payment, Withdrawal, Fee, Refund, Deposit][rnd(6) as usize];
        let at = t0 + i * 40 * 60_000 + rnd(30 * 60_000) as i64;
        let mut t = txn(&format!("t{i}"), &format!("{user}-chk"), user, kind, "1", "USD", "2026-03-27T00:00:00Z");
        t.amount = Decimal::new(100 + rnd(10_000) as i64, 2);
        t.category = cats[rnd(3) as usize];
        t.occurred_at = TimestampMillis(at);
        input.push(t);
    }
    let mut expected: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    for t in &input {
        let tz: chrono_tz::Tz = zones.iter().find(|(u, _)| *u == t.user_id).unwrap().1.parse().unwrap();
        let date = chrono::DateTime::from_timestamp_millis(t.occurred_at.0).unwrap().with_timezone(&tz).date_naive();
        let sign = match t.kind {
            Payment | Withdrawal | Fee => Decimal::ONE,
            Refund => Decimal::NEGATIVE_ONE,
            _ => continue,
        };
        *expected.entry((t.user_id.clone(), t.category.symbol().to_string(), date.to_string())).or_default() +=
            sign * t.amount;
    }
    let run = |cfg: FinanceConfig, crashes: Vec<(usize, Crash)>| {
        let mut h = Harness::with(cfg, DriverConfig { partitions: 3, commit_every: 7, crashes, ..Default::default() });
        for (u, tz) in zones {
            h.profile(u, tz);
        }
        for t in &input {
            h.tx(t);
        }
        let mut got: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
        for w in h.daily_windows() {
            let tz: chrono_tz::Tz = zones.iter().find(|(u, _)| *u == w.user_id).unwrap().1.parse().unwrap();
            let date = chrono::DateTime::from_timestamp_millis(w.window_start).unwrap().with_timezone(&tz).date_naive();
            got.insert((w.user_id.clone(), w.category.symbol().to_string(), date.to_string()), w.total);
        }
        (got, h.spending(), h.late_records())
    };
    let (got, updates, late) = run(FinanceConfig::default(), vec![]);
    assert_eq!(late, 0);
    assert_eq!(got, expected);
    assert!(updates.len() > 150);
    // Final-only: one record per window, each equal to the recomputation, also across crashes.
    for crashes in [vec![], vec![(50, Crash::Process), (200, Crash::WipeState), (420, Crash::AfterTransactionCommit)]] {
        let (got, finals, _) = run(final_only(), crashes);
        assert_eq!(got, expected);
        let closed: Vec<_> =
            finals.iter().map(|f| (f.user_id.clone(), f.category.symbol(), f.window_start.0)).collect();
        let mut dedup = closed.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), closed.len(), "one final result per window");
        assert!(finals.len() + 9 >= got.len(), "all but each user's last open day per category are final");
    }
}
