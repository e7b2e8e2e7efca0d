//! `finstream import` of the same statement twice applies nothing twice (issue 14): a bank's CSV
//! export from a year ago goes through the import path (`connectors::import::import`: mapping,
//! contract validation, derived transaction ids, serialization) into the `transactions` topic of
//! the test driver, into a pipeline whose live traffic is a year further on. Every balance,
//! budget, goal and analytics figure after the second import equals the figures after the
//! first; a later export that overlaps the first adds only its new lines.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use connectors::import::{import, ImportMapping, ImportOptions, ImportSummary, ImportTarget};
use connectors::ConnectorError;
use rust_decimal::Decimal;
use schemas::TransactionKind::*;
use schemas::*;
use streams::TopologyTestDriver;

/// The import's destination: the driver's `transactions` topic (keyed and stamped as the
/// importer says); flushing processes everything.
struct DriverTarget<'a> {
    d: &'a mut TopologyTestDriver,
    serde: AvroSerde<TransactionEvent>,
}

impl ImportTarget for DriverTarget<'_> {
    fn transaction_serde(&self) -> &AvroSerde<TransactionEvent> {
        &self.serde
    }
    fn send_raw(&mut self, topic: &str, key: &str, payload: &[u8], timestamp: i64) -> Result<(), ConnectorError> {
        self.d.append_raw(topic, Some(key.as_bytes().to_vec()), Some(payload.to_vec()), timestamp);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.d.run().map_err(|e| ConnectorError::Delivery(e.to_string()))
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `finstream import <file> --user-id u1` with the default mapping.
fn import_file(h: &mut Harness, file: &str) -> ImportSummary {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    let report_path = std::env::temp_dir().join(format!("finstream-import-{}-{n}.rejected.jsonl", std::process::id()));
    let mut mapping = ImportMapping::default();
    mapping.defaults.user_id = "u1".into();
    let opts = ImportOptions {
        path: fixture(file),
        report_path: report_path.clone(),
        topic: "transactions".into(),
        mapping,
        progress: false,
    };
    let serde = AvroSerde::new(h.registry.clone());
    let summary = import(&opts, &mut DriverTarget { d: &mut h.d, serde }).unwrap();
    assert_eq!(std::fs::read_to_string(&report_path).unwrap(), "", "no line rejected");
    std::fs::remove_file(report_path).ok();
    summary
}

/// A year later: u1 (Berlin, EUR) with a groceries budget and a goal on the statement's account,
/// and live traffic on several accounts (every partition's clocks are in March 2026).
fn pipeline() -> Harness {
    let mut h = Harness::new();
    h.rate("EUR", "1.085");
    h.profile_with("u1", "Europe/Berlin", "EUR", "DE");
    let mut b = budget("b1", "u1", Category::Groceries, "300", BudgetPeriod::Monthly, "2025-02-01T00:00:00Z");
    b.currency = "EUR".into();
    h.budget(&b);
    let mut g = goal(GoalEventType::GoalCreated, "g1", "u1", "5000", Some("acc-1"), "2025-01-01T00:00:00Z");
    g.currency = "EUR".into();
    h.goal(&g);
    h.account(&account(AccountEventType::AccountOpened, "acc-1", "u1", "EUR", "2025-01-01T00:00:00Z"));
    for i in 0..40 {
        let at = format!("2026-03-{:02}T10:00:00Z", 1 + i % 28);
        let (acc, user) = (format!("live-{}", i % 8), format!("u{}", 2 + i % 8));
        h.tx(&txn(&format!("live-{i}"), &acc, &user, Deposit, "10", "EUR", &at));
    }
    h.tx(&txn("live-acc-1", "acc-1", "u1", Deposit, "100", "EUR", "2026-03-10T10:00:00Z"));
    h
}

/// `UserBudgets::spending`: category → local date → currency → net spending.
type Spending =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, std::collections::BTreeMap<String, Decimal>>>;

/// Every figure a user or dashboard sees.
#[derive(Debug, PartialEq)]
struct Figures {
    balance: (Decimal, i64, String),
    lineage: usize,
    spending: Spending,
    alerts: Vec<String>,
    goal: (Decimal, Vec<i32>),
    cash_flow: Vec<(String, Decimal, Decimal, i64)>,
    windows: Vec<(String, i64, Decimal, i64)>,
    balance_records: usize,
    notifications: usize,
}

fn figures(h: &Harness) -> Figures {
    let b = h.balance("acc-1").unwrap();
    let g = &h.goals("u1").goals["g1"];
    let mut alerts: Vec<String> = h.alerts().into_iter().map(|a| a.alert_id).collect();
    alerts.sort();
    let mut windows: Vec<_> = h
        .daily_windows()
        .into_iter()
        .filter(|w| w.user_id == "u1")
        .map(|w| (w.category.symbol().to_string(), w.window_start, w.total, w.count))
        .collect();
    windows.sort();
    Figures {
        balance: (b.balance, b.applied_count, b.last_transaction_id),
        lineage: h.lineage("acc-1").len(),
        spending: h.budgets("u1").spending,
        alerts,
        goal: (g.saved, g.milestones.clone()),
        cash_flow: h
            .d
            .store(&processors::analytics::CASH_FLOW_STORE)
            .into_iter()
            .filter(|(_, c)| c.user_id == "u1")
            .map(|(k, c)| (k, c.money_in, c.money_out, c.count))
            .collect(),
        windows,
        balance_records: h.balances_out().len(),
        notifications: h.notifications().len(),
    }
}

#[test]
fn last_year_s_statement_imported_twice_counts_once() {
    let mut h = pipeline();
    let first = import_file(&mut h, "statement-2025-03.csv");
    assert_eq!((first.imported, first.rejected), (12, 0));
    let once = figures(&h);
    // The statement did reach everything: balance, budget (both thresholds), goal, cash flow.
    assert_eq!(once.balance.0, d("1760.35"), "100 live + the statement's net 1660.35");
    assert_eq!(once.balance.1, 13);
    assert_eq!(once.alerts, ["b1:2025-03-01:100", "b1:2025-03-01:80"]);
    // Signed amounts: the refund line is money in (a DEPOSIT), not negative spending.
    assert_eq!(once.spending["groceries"].values().map(|c| c["EUR"]).sum::<Decimal>(), d("354.05"));
    assert_eq!(once.goal.0, d("1760.35"));
    let march = h.cash_flow("u1", "2025-03").unwrap();
    assert_eq!((march.money_in, march.money_out, march.count), (d("3212.40"), d("1552.05"), 12));
    // Two identical coffees on one day are two transactions.
    assert_eq!(once.spending["dining"]["2025-03-02"]["EUR"], d("7.00"));

    let dups = |h: &Harness| ["balances", "budgets", "goals"].map(|n| h.duplicates(n));
    let before = dups(&h);
    let second = import_file(&mut h, "statement-2025-03.csv");
    assert_eq!(second.imported, 12, "the importer sends every valid line; dedupe is the pipeline's job");
    assert_eq!(figures(&h), once, "a second import changes nothing");
    let after = dups(&h);
    for (n, (b, a)) in before.iter().zip(after).enumerate() {
        assert_eq!(a - b, 12, "processor {n}: every line a duplicate");
    }
}

#[test]
fn an_overlapping_later_export_adds_only_its_new_lines() {
    let mut h = pipeline();
    import_file(&mut h, "statement-2025-03.csv");
    let once = figures(&h);
    import_file(&mut h, "statement-2025-03-overlap.csv");
    let both = figures(&h);
    // Three lines are the first export's (same content, same account: same ids), two are new.
    assert_eq!(both.balance.1, once.balance.1 + 2);
    assert_eq!(both.balance.0, once.balance.0 - d("41.20"));
    assert_eq!(h.duplicates("balances"), 3);
    // The same new lines in a single import of a merged statement give the same figures.
    let mut merged = pipeline();
    import_file(&mut merged, "statement-2025-03.csv");
    import_file(&mut merged, "statement-2025-03-overlap.csv");
    import_file(&mut merged, "statement-2025-03.csv");
    assert_eq!(figures(&merged), both);
}
