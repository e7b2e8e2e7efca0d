//! Spending analytics against the independent reference model (`connectors::reference`): the
//! generator's events (rates moving daily, a late timezone fix, duplicates, events delivered up
//! to 18 hours late, fraud bursts) run through the whole finance topology on the test driver, one
//! event at a time in delivery order; the `spending-daily` and `cash-flow` stores, the late-record
//! counter and, with final-only emission, the emitted windows must equal the reference exactly.

mod common;

use std::collections::BTreeMap;

use common::*;
use connectors::reference::{compute_in_order, AnalyticsConfig, ReferenceConfig};
use connectors::{Generator, GeneratorConfig};
use processors::{AnalyticsConfig as ProcAnalytics, FinanceConfig, SpendingEmit};
use rust_decimal::Decimal;
use streams::DriverConfig;

const PARTITIONS: i32 = 4;

fn input() -> GeneratorConfig {
    GeneratorConfig {
        seed: 11,
        users: 60,
        days: 30,
        late_ratio: 0.05,
        max_late_ms: 18 * 3_600_000,
        duplicate_ratio: 0.03,
        fraud: true,
        ..GeneratorConfig::default()
    }
}

type Windows = BTreeMap<(String, String, i64), (i64, Decimal, i64, String)>;
type Months = BTreeMap<(String, String), (Decimal, Decimal, Decimal, Decimal, i64, String)>;

fn run(emit: SpendingEmit) -> (Harness, Windows, Months) {
    let (events, _) = Generator::generate_all(input());
    let cfg =
        FinanceConfig { analytics: ProcAnalytics { emit, ..ProcAnalytics::default() }, ..FinanceConfig::default() };
    let mut h = Harness::with(cfg, DriverConfig { partitions: PARTITIONS, commit_every: 500, ..Default::default() });
    h.pipe_events(&events);
    let windows: Windows = h
        .daily_windows()
        .into_iter()
        .map(|w| {
            ((w.user_id, w.category.symbol().to_string(), w.window_start), (w.window_end, w.total, w.count, w.currency))
        })
        .collect();
    let months: Months =
        h.d.store(&processors::analytics::CASH_FLOW_STORE)
            .into_iter()
            .map(|(_, c)| {
                ((c.user_id, c.month), (c.money_in, c.money_out, c.transfers_out, c.transfers_in, c.count, c.currency))
            })
            .collect();
    (h, windows, months)
}

fn reference() -> connectors::ReferenceOutput {
    let (events, _) = Generator::generate_all(input());
    let cfg = ReferenceConfig {
        analytics: AnalyticsConfig { partitions: PARTITIONS as u32, ..AnalyticsConfig::default() },
        ..ReferenceConfig::default()
    };
    compute_in_order(&events, 0..events.len(), &cfg)
}

fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    got: &BTreeMap<K, V>,
    want: &BTreeMap<K, V>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            Some(g) if g == w => {}
            g => out.push(format!("{k:?}: processors {g:?}, reference {w:?}")),
        }
    }
    out.extend(got.keys().filter(|k| !want.contains_key(k)).map(|k| format!("{k:?}: only in processors")));
    out
}

#[test]
fn spending_daily_and_cash_flow_equal_the_reference() {
    let expected = reference();
    let want_windows: Windows = expected
        .spending_daily
        .iter()
        .map(|(k, w)| (k.clone(), (w.window_end, w.total, w.count, w.currency.clone())))
        .collect();
    let want_months: Months = expected
        .cash_flow
        .iter()
        .map(|(k, c)| {
            (k.clone(), (c.money_in, c.money_out, c.transfers_out, c.transfers_in, c.count, c.currency.clone()))
        })
        .collect();
    println!(
        "reference: {} windows ({} closed), {} months, {} late records, {} duplicates",
        want_windows.len(),
        expected.spending_daily.values().filter(|w| w.closed).count(),
        want_months.len(),
        expected.late_records.len(),
        expected.duplicates.analytics
    );
    // The input exercises what it should.
    assert!(want_windows.len() > 1000, "{} windows", want_windows.len());
    assert!(expected.late_records.len() >= 5, "{} late records", expected.late_records.len());
    assert!(expected.duplicates.analytics > 20);
    assert!(want_months.values().any(|m| m.3 > Decimal::ZERO), "some transfers in");
    assert!(want_windows.values().any(|w| w.3 != "USD"), "several base currencies");
    assert!(!expected.dead_letters.iter().any(|l| l.processor == "analytics"));

    let (h, windows, months) = run(SpendingEmit::OnUpdate);
    let d = diff(&windows, &want_windows);
    assert!(d.is_empty(), "{} of {} windows differ:\n{}", d.len(), want_windows.len(), d.join("\n"));
    let d = diff(&months, &want_months);
    assert!(d.is_empty(), "{} of {} months differ:\n{}", d.len(), want_months.len(), d.join("\n"));
    assert_eq!(h.late_records(), expected.late_records.len() as u64);
    assert_eq!(h.duplicates("analytics"), expected.duplicates.analytics);
    // On update: the last record emitted per window is its total in the store.
    let mut last: Windows = BTreeMap::new();
    for s in h.spending() {
        last.insert(
            (s.user_id, s.category.symbol().to_string(), s.window_start.0),
            (s.window_end.0, s.total, s.count, s.currency),
        );
    }
    assert_eq!(last, want_windows);

    // Final results only: exactly the windows the reference calls closed, once each, final.
    let (h, windows, _) = run(SpendingEmit::OnWindowClose);
    assert_eq!(windows, want_windows, "the store is the same whatever is emitted");
    let finals = h.spending();
    let emitted: Windows = finals
        .iter()
        .map(|s| {
            (
                (s.user_id.clone(), s.category.symbol().to_string(), s.window_start.0),
                (s.window_end.0, s.total, s.count, s.currency.clone()),
            )
        })
        .collect();
    assert_eq!(emitted.len(), finals.len(), "one final record per window");
    let closed: Windows = want_windows
        .iter()
        .filter(|(k, _)| expected.spending_daily[*k].closed)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(closed.len() > want_windows.len() / 2);
    let d = diff(&emitted, &closed);
    assert!(d.is_empty(), "{} final windows differ:\n{}", d.len(), d.join("\n"));
}
