//! Dedupe that does not depend on processing order (docs/money-rules.md, "Duplicates"): the
//! same generated input, with duplicate deliveries, run live-like (each event to quiescence
//! before the next) and as a backfill (every input already in its topic before the application
//! starts, so each task's direct inputs are complete months before its repartitioned ones), must
//! end with the same sums, applying each duplicate exactly once.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use connectors::{Event, Generator, GeneratorConfig};
use processors::{AnalyticsConfig, FinanceConfig};
use rust_decimal::Decimal;
use schemas::{AccountEventType, GoalEventType, TimestampMillis, TransactionEvent, TransactionKind};
use streams::DriverConfig;

const DAY: i64 = 86_400_000;

/// Four months of life: long enough for a backfill's direct inputs to run past the dedupe
/// retention (30 days) ahead of the repartitioned ones.
fn input() -> Vec<Event> {
    // Rates and profiles never change: which rate or timezone a record meets would depend on
    // when the global tables are updated, not on dedupe.
    let cfg = GeneratorConfig {
        seed: 14,
        users: 40,
        days: 120,
        duplicate_ratio: 0.08,
        rate_updates: false,
        profile_updates: false,
        ..GeneratorConfig::default()
    };
    Generator::generate_all(cfg).0
}

fn config() -> FinanceConfig {
    // Lateness of daily windows follows processing order by design; here only sums are compared.
    FinanceConfig {
        analytics: AnalyticsConfig { grace_ms: 365 * DAY, ..AnalyticsConfig::default() },
        ..FinanceConfig::default()
    }
}

/// A user's `UserBudgets::spending`.
type Spending = BTreeMap<String, BTreeMap<String, BTreeMap<String, Decimal>>>;

/// Everything that is a sum: balances, spending per day and currency, goals' savings (of goals
/// never changed after creation: which version of a goal a transaction meets depends on order),
/// cash flow, and the duplicates each processor ignored.
#[derive(Debug, PartialEq)]
struct Sums {
    balances: BTreeMap<String, (String, String, Decimal, i64)>,
    /// user → category → local date → currency → net spending.
    spending: BTreeMap<String, Spending>,
    goals: BTreeMap<String, Decimal>,
    cash_flow: BTreeMap<String, (Decimal, Decimal, Decimal, Decimal, i64)>,
    duplicates: Vec<(&'static str, u64)>,
}

fn sums(h: &Harness, events: &[Event]) -> Sums {
    let changed: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Goal(g) if g.event_type != GoalEventType::GoalCreated => Some(g.goal_id.as_str()),
            _ => None,
        })
        .collect();
    let users: BTreeSet<&str> = events.iter().filter_map(Event::user_id).collect();
    Sums {
        balances: h
            .all_balances()
            .into_iter()
            .map(|(k, b)| (k, (b.user_id, b.currency, b.balance, b.applied_count)))
            .collect(),
        spending: users.iter().map(|u| (u.to_string(), h.budgets(u).spending)).collect(),
        goals: users
            .iter()
            .flat_map(|u| h.goals(u).goals.into_iter())
            .filter(|(id, _)| !changed.contains(id.as_str()))
            .map(|(id, g)| (id, g.saved))
            .collect(),
        cash_flow: h
            .d
            .store(&processors::analytics::CASH_FLOW_STORE)
            .into_iter()
            .map(|(k, c)| (k, (c.money_in, c.money_out, c.transfers_out, c.transfers_in, c.count)))
            .collect(),
        duplicates: ["balances", "balance-credits", "budgets", "goals"].map(|n| (n, h.duplicates(n))).to_vec(),
    }
}

fn is_global(e: &Event) -> bool {
    matches!(e, Event::Rate(_) | Event::Profile(_))
}

#[test]
fn a_backfill_applies_every_duplicate_once_like_live_traffic() {
    let events = input();
    let transfers = events.iter().filter_map(Event::as_transaction).filter(|t| t.kind == TransactionKind::Transfer);
    let transfers = transfers.count();
    assert!(transfers > 250, "{transfers} transfers");

    let mut live = Harness::with(config(), DriverConfig { partitions: 4, ..Default::default() });
    live.pipe_events(&events);
    let want = sums(&live, &events);
    assert!(want.duplicates.iter().all(|(_, n)| *n > 10), "duplicates were delivered: {:?}", want.duplicates);

    // Backfill: global tables first (an application restores them before processing), then every
    // other record already in its topic; one run, committing rarely, so each task reads its
    // direct input to the end before the repartitioned records become visible.
    let mut backfill =
        Harness::with(config(), DriverConfig { partitions: 4, commit_every: 10_000, ..Default::default() });
    let (globals, rest): (Vec<&Event>, Vec<&Event>) = events.iter().partition(|e| is_global(e));
    for e in globals {
        backfill.append_event(e);
    }
    backfill.d.run().unwrap();
    for e in rest {
        backfill.append_event(e);
    }
    backfill.d.run().unwrap();
    let got = sums(&backfill, &events);
    assert_eq!(got.duplicates, want.duplicates);
    for (id, b) in &want.balances {
        assert_eq!(got.balances.get(id), Some(b), "balance of {id}");
    }
    assert_eq!(got, want);
}

/// The backfill shape itself, small enough to read: a transfer delivered twice in January is
/// processed as a credit leg only after the counterparty's task has read its own `transactions`
/// to May. The copy is a duplicate of its own stream (credit legs), whose clock is in January.
#[test]
fn a_credit_duplicate_behind_months_of_direct_input_is_caught() {
    let mut h = Harness::with(
        FinanceConfig::default(),
        DriverConfig { partitions: 2, commit_every: 10_000, ..Default::default() },
    );
    let t = |id: &str, acc: &str, user: &str, kind, amount: &str, at: i64| {
        let mut t: TransactionEvent = txn(id, acc, user, kind, amount, "USD", "2026-01-01T00:00:00Z");
        t.occurred_at = TimestampMillis(at);
        t
    };
    let jan = ms("2026-01-10T10:00:00Z");
    let mut tr = transfer("tr", "a-from", "a-to", "u1", "50", "USD", "2026-01-10T10:00:00Z");
    tr.occurred_at = TimestampMillis(jan);
    let opened = account(AccountEventType::AccountOpened, "a-to", "u2", "USD", "2026-01-01T00:00:00Z");
    h.append_account(&opened);
    h.append_tx(&t("dep", "a-from", "u1", TransactionKind::Deposit, "100", jan - DAY));
    h.append_tx(&tr);
    h.append_tx(&tr); // delivered twice
    for m in 0..120 {
        // Daily life on the receiving account, months past January.
        h.append_tx(&t(&format!("i{m}"), "a-to", "u2", TransactionKind::Interest, "1", jan + m * DAY));
    }
    h.d.run().unwrap();
    let b = h.balance("a-to").unwrap();
    assert_eq!((b.balance, b.applied_count), (Decimal::from(50 + 120), 121), "the credit once");
    assert_eq!(h.duplicates("balance-credits"), 1);
    assert_eq!(h.cash_flow("u2", "2026-01").unwrap().transfers_in, d("50"), "and the owner's cash flow once");
}
