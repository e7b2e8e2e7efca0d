//! The independent reference model of the money rules (issue 4 and `docs/money-rules.md`), the
//! oracle of the end-to-end test.
//!
//! Plain loops over the input, no engine code: readability over speed. It computes, from a slice of
//! input [`Event`]s, the final state every processor must end in: balances per account, budget state
//! per (budget, period), goal state per goal, and the set of notification ids.
//!
//! # The order it assumes
//!
//! The engine processes each input partition in order and, inside a task, picks among the heads of
//! its co-partitioned inputs the record with the smallest timestamp. State is per account
//! (balances: the account's own `transactions` partition merged with the credit legs from the
//! `transfer-credits` repartition topic) and per user (budgets and goals: the user's transactions
//! repartitioned by user, merged with `budgets` / `financial-goals`). The reference models that as
//! **one timeline of all events sorted by `(timestamp, position in the input slice)`**, which is
//! the same as a timestamp-ordered loop per key, because each key's state only ever sees its own
//! records:
//!
//! - a transaction's debit leg (or only leg) is applied to `account_id` at its `occurred_at`; a
//!   TRANSFER's credit leg is applied to `counterparty_account_id` at the same `occurred_at` (in the
//!   engine it travels through a repartition topic, so its position among the counterparty's own
//!   records is by timestamp only approximately);
//! - budgets and goals see the user's transactions interleaved with the user's budget and goal
//!   events by timestamp (in the engine the repartitioned transactions of a user's different
//!   accounts come from different upstream tasks, so again approximately);
//! - the global tables (`exchange-rates`, `user-profile`) take effect at their timestamp. In the
//!   engine a global table is updated by its own thread, not synchronised with stream time, so a
//!   rate or profile change is seen "when the record is processed" by wall clock. Only inputs
//!   whose global-table records all precede every other record (and never change) give one
//!   well-defined answer: the generator's e2e preset ([`crate::generator::GeneratorConfig::e2e`])
//!   is built that way;
//! - late events (an `occurred_at` earlier than records delivered before them) are placed at their
//!   timestamp here, whereas the engine applies them where they sit in their partition. Sums
//!   commute, so this only matters for order-sensitive outputs (threshold crossings, the last
//!   transaction id); the e2e preset only makes order-insensitive records late.
//!
//! Exact duplicate deliveries sort next to each other (same timestamp, input order); the first
//! one is applied and the others count as duplicates, which is what the engine does whichever
//! copy it sees first since they are identical.
//!
//! Dedupe follows docs/money-rules.md ("Duplicates"): one clock per dedupe store, input stream
//! and partition, entries remembered at that clock ([`dedupe`]). Accounts follow "Accounts"
//! ([`accounts`]): the `accounts` record names an account's owner and currency, legs before it
//! are attributed when it arrives, and transfers into an account whose owner is not known yet
//! count for the owner (cash flow, goals linked to the account) once known. In timestamp order
//! an account's record, stamped before its first transaction, comes first, as in the engine.
//!
//! Spending analytics (issue 5) is in [`analytics`]: daily totals, monthly cash flow and late
//! records, in [`ReferenceOutput::spending_daily`], [`ReferenceOutput::cash_flow`] and
//! [`ReferenceOutput::late_records`]. Its lateness follows the processing order given: in timestamp
//! order ([`compute`]) nothing is late.
//!
//! # What it does not model
//! Fraud scores and their FRAUD_ALERT notifications (measured against labels instead), the
//! balance lineage and the exact payload (spent at crossing, triggering transaction id) of each
//! alert or progress record: those depend on processing order, the final state does not.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, Months, NaiveDate, TimeZone};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use schemas::{
    AccountEvent, BudgetAction, BudgetEvent, BudgetPeriod, Category, GoalEvent, GoalEventType, GoalStatus,
    TimestampMillis, TransactionEvent, TransactionKind, TransactionStatus,
};

use crate::event::Event;
use dedupe::Lane;

mod accounts;
pub mod analytics;
mod budgets;
mod dedupe;
mod goals;

pub use analytics::{AnalyticsConfig, DailyKey, DailyTotal, LateRecord, MonthlyCashFlow};
pub use goals::goal_percent;

/// Knobs of the processors that change the expected results.
#[derive(Debug, Clone)]
pub struct ReferenceConfig {
    /// LOW_BALANCE when a balance goes from `>=` this to `<` this (default 0).
    pub low_balance_threshold: Decimal,
    /// Dedupe retention: event-time progress of a record's own stream in its task after the
    /// original was remembered (default 30 days).
    pub dedupe_retention_ms: i64,
    /// Partitions of the topics (the engine's tasks): one dedupe clock per stream and
    /// partition (default 1).
    pub partitions: u32,
    /// Spending analytics: grace, default base currency, partitions (lateness clocks).
    pub analytics: AnalyticsConfig,
}

impl Default for ReferenceConfig {
    fn default() -> Self {
        ReferenceConfig {
            low_balance_threshold: Decimal::ZERO,
            dedupe_retention_ms: 30 * 24 * 3_600_000,
            partitions: 1,
            analytics: AnalyticsConfig::default(),
        }
    }
}

/// Which leg of a transaction an account sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Leg {
    /// The only leg of a non-transfer, or the `-` leg of a TRANSFER on `account_id`.
    Debit,
    /// The `+` leg of a TRANSFER on `counterparty_account_id`.
    Credit,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Debit => "debit",
            Leg::Credit => "credit",
        }
    }
}

/// Final state of one account (what the last `BalanceUpdated` says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub account_id: String,
    /// Owner learned from an applied leg whose `account_id` is this account; `""` while unknown.
    pub user_id: String,
    pub balance: Decimal,
    pub currency: String,
    pub applied_count: i64,
    pub last_transaction_id: String,
    pub updated_at: TimestampMillis,
}

/// State of one budget in one period, as of its last evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetPeriodState {
    pub budget_id: String,
    pub user_id: String,
    pub category: Category,
    pub period: BudgetPeriod,
    pub period_start: TimestampMillis,
    pub period_end: TimestampMillis,
    /// Local date of `period_start` in the user's timezone, as in the alert id.
    pub period_start_date: NaiveDate,
    pub limit: Decimal,
    pub currency: String,
    /// Spending in the period converted to the budget currency, at the last evaluation.
    pub spent: Decimal,
    /// `alert_id`s raised for this (budget, period).
    pub alerts: BTreeSet<String>,
    /// The budget was deleted after (or at) this evaluation; no later evaluation happened.
    pub deleted: bool,
}

/// Final state of one goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalState {
    pub goal_id: String,
    pub user_id: String,
    pub name: String,
    pub target: Decimal,
    pub currency: String,
    pub account_id: Option<String>,
    pub created_at: TimestampMillis,
    pub saved: Decimal,
    pub percent: Decimal,
    pub status: GoalStatus,
    /// Milestones (25, 50, 75, 100) reached so far.
    pub milestones: BTreeSet<i32>,
    pub updated_at: TimestampMillis,
}

/// A record a processor would send to its dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `balances`, `budgets` or `goals`.
    pub processor: &'static str,
    /// transaction_id, budget_id or goal_id.
    pub source_id: String,
    pub reason: &'static str,
}

/// Ignored duplicate deliveries per processor (the `finstream_duplicates_total` counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuplicateCounts {
    /// Legs: a duplicated transfer counts twice (debit and credit).
    pub balances: u64,
    pub budgets: u64,
    pub goals: u64,
    /// Analytics: transactions and transfers in.
    pub analytics: u64,
}

/// Everything the reference expects.
#[derive(Debug, Clone, Default)]
pub struct ReferenceOutput {
    pub accounts: BTreeMap<String, AccountState>,
    /// Keyed by `(budget_id, period_start millis)`.
    pub budgets: BTreeMap<(String, i64), BudgetPeriodState>,
    pub goals: BTreeMap<String, GoalState>,
    /// Every expected `notification_id` (without FRAUD_ALERT ones).
    pub notifications: BTreeSet<String>,
    pub duplicates: DuplicateCounts,
    pub dead_letters: Vec<DeadLetter>,
    /// Every daily window of the `spending-daily` store at the end of the input, keyed by
    /// `(user_id, category symbol, window start)`; [`DailyTotal::closed`] says which are final.
    pub spending_daily: BTreeMap<DailyKey, DailyTotal>,
    /// The `cash-flow` store at the end, keyed by `(user_id, "YYYY-MM")` (local month).
    pub cash_flow: BTreeMap<(String, String), MonthlyCashFlow>,
    /// Spending records found late (beyond grace), in processing order: not in any window,
    /// counted on `finstream_late_records_total{processor="analytics"}`.
    pub late_records: Vec<LateRecord>,
}

impl ReferenceOutput {
    /// Every `alert_id` raised, all budgets and periods.
    pub fn alert_ids(&self) -> BTreeSet<String> {
        self.budgets.values().flat_map(|b| b.alerts.iter().cloned()).collect()
    }
}

/// Computes the expected final state from `events` (in delivery order; see the module docs for
/// the processing order assumed).
pub fn compute(events: &[Event], cfg: &ReferenceConfig) -> ReferenceOutput {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].timestamp(), i));
    compute_in_order(events, order, cfg)
}

/// Like [`compute`] but processes `events` in the order of the indexes in `order` (for tests that
/// check a result does not depend on order, e.g. delivery order, where late events come late).
pub fn compute_in_order(
    events: &[Event],
    order: impl IntoIterator<Item = usize>,
    cfg: &ReferenceConfig,
) -> ReferenceOutput {
    let dedupe = || dedupe::Dedupe::new(cfg.dedupe_retention_ms, cfg.partitions);
    let mut m = Model {
        cfg: cfg.clone(),
        analytics: analytics::Analytics::new(cfg.analytics.clone(), dedupe()),
        balance_dedupe: dedupe(),
        budget_dedupe: dedupe(),
        goal_dedupe: dedupe(),
        ..Model::default()
    };
    for i in order {
        let ev = &events[i];
        match ev {
            Event::Rate(r) => {
                m.rates.insert(r.currency.clone(), r.usd_rate);
            }
            Event::Profile(p) => {
                m.timezones.insert(p.user_id.clone(), p.timezone.clone());
                m.analytics.profile(p);
            }
            Event::Account(a) => m.account_event(a),
            Event::Transaction(t) => {
                m.balance_legs(t);
                m.budget_transaction(t);
                m.goal_transaction(t);
                m.analytics_transaction(t);
            }
            Event::Budget(b) => m.budget_event(b),
            Event::Goal(g) => m.goal_event(g),
        }
    }
    let (a, dead) = m.analytics.finish();
    m.out.spending_daily = a.spending_daily;
    m.out.cash_flow = a.cash_flow;
    m.out.late_records = a.late;
    m.out.duplicates.analytics = a.duplicates;
    m.out.dead_letters.extend(dead);
    m.out
}

/// Converts `amount` from `from` to `to`: `amount × usd_rate(from) / usd_rate(to)` rounded
/// half-even to `to`'s ISO 4217 minor units; the same currency is returned unchanged. `None` when
/// a rate (or the target's minor units) is unknown.
pub fn convert(amount: Decimal, from: &str, to: &str, rates: &BTreeMap<String, Decimal>) -> Option<Decimal> {
    if from == to {
        return Some(amount);
    }
    let (rf, rt) = (rates.get(from)?, rates.get(to)?);
    let minor = schemas::currency::minor_units(to)?;
    Some((amount * rf / rt).round_dp_with_strategy(minor, RoundingStrategy::MidpointNearestEven))
}

/// The timezone named `name`, UTC when it does not parse.
pub fn timezone(name: Option<&str>) -> Tz {
    name.and_then(|n| n.parse::<Tz>().ok()).unwrap_or(Tz::UTC)
}

/// Local calendar date of `ts` in `tz`.
pub fn local_date(tz: Tz, ts: TimestampMillis) -> NaiveDate {
    tz.timestamp_millis_opt(ts.0).single().map(|d| d.date_naive()).unwrap_or_default()
}

/// The first instant of local date `d` in `tz` as UTC millis: local midnight, or (where a DST
/// change skips midnight) the first local time of that date that exists, in 15-minute steps.
pub fn local_midnight(tz: Tz, d: NaiveDate) -> TimestampMillis {
    let mut t = d.and_hms_opt(0, 0, 0).expect("midnight");
    for _ in 0..96 {
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return TimestampMillis(dt.timestamp_millis());
        }
        t += chrono::Duration::minutes(15);
    }
    TimestampMillis(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis())
}

/// `[start, end)` local dates of the period of `kind` containing `d`: calendar month, or ISO week
/// from Monday.
pub fn period_dates(kind: BudgetPeriod, d: NaiveDate) -> (NaiveDate, NaiveDate) {
    match kind {
        BudgetPeriod::Weekly => {
            let start = d - Days::new(u64::from(d.weekday().num_days_from_monday()));
            (start, start + Days::new(7))
        }
        _ => {
            let start = d.with_day(1).expect("day 1");
            (start, start + Months::new(1))
        }
    }
}

#[derive(Debug, Clone)]
struct BudgetDef {
    category: Category,
    limit: Decimal,
    currency: String,
    period: BudgetPeriod,
    /// Local date (at SET time) of the SET's `updated_at`: the budget covers that date's period and
    /// later ones.
    set_date: NaiveDate,
}

#[derive(Debug, Clone)]
struct LiveGoal {
    state: GoalState,
    /// Transactions already counted for this goal.
    counted: BTreeSet<String>,
}

#[derive(Default)]
struct Model {
    cfg: ReferenceConfig,
    rates: BTreeMap<String, Decimal>,
    timezones: BTreeMap<String, String>,
    /// Account records (owner, currency) by account id.
    records: BTreeMap<String, accounts::AccountRecord>,
    /// Transfers into an account whose owner is not known yet, by account, in event-time order.
    held_in: BTreeMap<String, BTreeMap<(i64, String), TransactionEvent>>,
    /// Balances: `account|transaction_id|leg`, lanes transactions and transfer credits.
    balance_dedupe: dedupe::Dedupe,
    /// Budgets: `user|transaction_id`.
    budget_dedupe: dedupe::Dedupe,
    /// Spending per `(user, category, local date, currency)`.
    spending: BTreeMap<(String, String, NaiveDate, String), Decimal>,
    /// Live budgets per `(user, budget_id)`.
    budget_defs: BTreeMap<(String, String), BudgetDef>,
    /// Goals: `user|transaction_id` and `user|transaction_id|in`.
    goal_dedupe: dedupe::Dedupe,
    /// Live goals per `(user, goal_id)`.
    live_goals: BTreeMap<(String, String), LiveGoal>,
    analytics: analytics::Analytics,
    out: ReferenceOutput,
}

impl Model {
    fn tz(&self, user: &str) -> Tz {
        timezone(self.timezones.get(user).map(String::as_str))
    }

    fn dead_letter(&mut self, processor: &'static str, source_id: &str, reason: &'static str) {
        self.out.dead_letters.push(DeadLetter { processor, source_id: source_id.to_string(), reason });
    }

    // ---------------------------------------------------------------- balances

    fn balance_legs(&mut self, t: &TransactionEvent) {
        // Only COMPLETED moves money; PENDING/FAILED are not remembered by dedupe either.
        if t.status != TransactionStatus::Completed {
            return;
        }
        let debit_sign = if t.kind == TransactionKind::Transfer {
            -Decimal::ONE
        } else {
            if t.signed_amount().is_sign_negative() {
                -Decimal::ONE
            } else {
                Decimal::ONE
            }
        };
        self.apply_leg(t, &t.account_id, Leg::Debit, debit_sign);
        if t.kind == TransactionKind::Transfer {
            if let Some(cp) = t.counterparty_account_id.as_deref() {
                self.apply_leg(t, cp, Leg::Credit, Decimal::ONE);
            }
        }
    }

    fn apply_leg(&mut self, t: &TransactionEvent, account: &str, leg: Leg, sign: Decimal) {
        let key = format!("{account}|{}|{}", t.transaction_id, leg.as_str());
        let lane = match leg {
            Leg::Debit => Lane::Transactions,
            Leg::Credit => Lane::TransferCredits,
        };
        if self.balance_dedupe.seen(lane, account, &key) {
            self.out.duplicates.balances += 1;
            return;
        }
        let record = self.records.get(account).cloned();
        let known_currency = self.out.accounts.get(account).map(|a| a.currency.clone());
        // An account's currency is its record's, else that of its first applied leg.
        let currency = known_currency
            .or_else(|| record.as_ref().map(|r| r.currency.clone()))
            .unwrap_or_else(|| t.currency.clone());
        let Some(amount) = convert(t.amount, &t.currency, &currency, &self.rates) else {
            self.dead_letter("balances", &t.transaction_id, "missing_exchange_rate");
            return;
        };
        let acc = self.out.accounts.entry(account.to_string()).or_insert_with(|| AccountState {
            account_id: account.to_string(),
            user_id: record.as_ref().map(|r| r.user_id.clone()).unwrap_or_default(),
            balance: Decimal::ZERO,
            currency: currency.clone(),
            applied_count: 0,
            last_transaction_id: String::new(),
            updated_at: TimestampMillis(0),
        });
        let (before, owner_before) = (acc.balance, acc.user_id.clone());
        acc.balance += sign * amount;
        acc.applied_count += 1;
        acc.last_transaction_id = t.transaction_id.clone();
        acc.updated_at = t.occurred_at;
        // Without a record, the account's own transactions name its owner.
        if t.account_id == account && record.is_none() {
            acc.user_id = t.user_id.clone();
        }
        let owner = acc.user_id.clone();
        let threshold = self.cfg.low_balance_threshold;
        if before >= threshold && acc.balance < threshold {
            self.out.notifications.insert(format!("low-balance:{account}:{}:{}", t.transaction_id, leg.as_str()));
        }
        self.balance_dedupe.remember(lane, account, &key, t.occurred_at.0);
        if owner_before.is_empty() && !owner.is_empty() {
            self.owner_known(account, &owner);
        }
    }

    // ---------------------------------------------------------------- analytics

    /// The user's copy of the transaction, then (a COMPLETED TRANSFER) its credit to the owner
    /// of the receiving account, at once or when the owner becomes known.
    fn analytics_transaction(&mut self, t: &TransactionEvent) {
        self.analytics.transaction(t, &self.rates);
        if t.status == TransactionStatus::Completed && t.kind == TransactionKind::Transfer {
            self.route_transfer_in(t);
        }
    }
}
