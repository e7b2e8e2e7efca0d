//! The one explicit registration of every processor, store and topic: [`finance_topology`].
//!
//! ```text
//! Sub-topology "accounts" (keyed by account_id)
//!   accounts ─ account-events (the `accounts` table; attributes balances) ─┬─> account-balances
//!                                                                          └─> transfers-in-by-user (held ones)
//!   transactions ─┬─ to-user (COMPLETED, re-key by user_id) ─> transactions-by-user repartition
//!                 ├─ to-credit (COMPLETED TRANSFER, re-key by counterparty) ─> transfer-credits repartition
//!                 ├─ fraud (score PAYMENT/WITHDRAWAL/TRANSFER) ─> fraud-scores, notifications (FRAUD_ALERT)
//!                 └─ balances (leg on account_id) ──┬─> account-balances (and held transfers in, once
//!                                                   │   the account's own leg names its owner)
//!   transfer-credits ─┬─ fraud-credits (fraud's own balance)
//!                     ├─ transfer-in-owner (owner known; else held) ─> transfers-in-by-user repartition
//!                     └─ balance-credits (credit leg) ┴─> notifications (LOW_BALANCE)
//!   stores: accounts, balances, balance-lineage, balances-dedupe, transfers-in-held, fraud-state,
//!           fraud-scores, fraud-dedupe
//! Sub-topology "users" (keyed by user_id)
//!   transactions-by-user ─ user-transactions ─┬─ budgets ─> budget-alerts, notifications
//!   budgets ─ budget-events ──────────────────┘
//!                                             ├─ goals ─> goal-progress, notifications
//!   financial-goals ─ goal-events ────────────┘
//!                                             └─ analytics ─> spending-daily
//!   transfers-in-by-user ─ transfers-in ──────┴ goals, analytics (transfers in)
//!   (each processor a record reaches has its own outcome: one rejecting it does not undo the
//!   others, see `streams::ProcessorContext::forward`)
//!   stores: budgets, budgets-dedupe, goals, goals-dedupe, spending-daily, spending-daily-open,
//!           analytics-clock, cash-flow, analytics-dedupe
//! Global stores: exchange-rates, user-profile (raw Avro bytes of their topics)
//! ```
//! Every output value is Avro (Confluent wire format); repartition topics and stores are private
//! and hold JSON.

use std::sync::Arc;

use schemas::registry::SchemaRegistry;
use schemas::{
    AccountEvent, AvroSerde, BalanceUpdated, BudgetAlert, BudgetEvent, FraudScore, GoalEvent, GoalProgress,
    Notification, SpendingAggregate, TransactionEvent,
};
use streams::window::{OpenWindowSerde, UnitSerde};
use streams::{
    BytesSerde, EventTime, JsonSerde, ProcessError, Processor, ProcessorContext, Record, Serde, SerdeError,
    SourceOptions, StoreSpec, StringSerde, Topology, TopologyError, Windowed,
};

use crate::accounts::AccountsProcessor;
use crate::analytics::{AnalyticsProcessor, DailySpending};
use crate::fraud::FraudProcessor;

use crate::balances::BalancesProcessor;
use crate::budgets::BudgetsProcessor;
use crate::config::FinanceConfig;
use crate::dedupe::{Dedupe, DedupeEntry, Lane};
use crate::expiry::Slot;
use crate::goals::GoalsProcessor;
use crate::legs::{credit_leg, moves_money, Leg};
use crate::tables::GlobalTables;
use crate::transfers_in::TransferInOwner;

/// Store names. They are stable: the query service reads them.
pub mod stores {
    /// account_id → [`crate::accounts::AccountRecord`] (JSON): the `accounts` topic as a table.
    pub const ACCOUNTS: &str = "accounts";
    /// `account|<occurred_at>|transaction_id` → [`schemas::TransactionEvent`] (JSON, in a
    /// [`crate::expiry::Slot`]): transfers into accounts whose owner is not known yet
    /// ([`crate::transfers_in`]).
    pub const TRANSFERS_IN_HELD: &str = "transfers-in-held";
    /// account_id → [`crate::balances::BalanceState`] (JSON).
    pub const BALANCES: &str = "balances";
    /// [`crate::balances::lineage_key`] (`account_id|seq`) → [`crate::balances::LineageEntry`]
    /// (JSON): the last `lineage_len` applied legs of each account; read an account's with
    /// [`crate::balances::lineage_range`].
    pub const BALANCE_LINEAGE: &str = "balance-lineage";
    /// `account|transaction_id|leg` → [`crate::dedupe::DedupeEntry`] (JSON).
    pub const BALANCES_DEDUPE: &str = "balances-dedupe";
    /// user_id → [`crate::budgets::UserBudgets`]: budgets, spending, alerts raised (JSON).
    pub const BUDGETS: &str = "budgets";
    /// `user|transaction_id` → [`crate::dedupe::DedupeEntry`] (JSON).
    pub const BUDGETS_DEDUPE: &str = "budgets-dedupe";
    /// user_id → [`crate::goals::UserGoals`] (JSON).
    pub const GOALS: &str = "goals";
    /// `user|transaction_id` → [`crate::dedupe::DedupeEntry`] (JSON).
    pub const GOALS_DEDUPE: &str = "goals-dedupe";
    /// account_id → [`crate::fraud::FraudState`]: fraud's features and own balance (JSON; private).
    pub const FRAUD: &str = "fraud-state";
    /// account_id → `Vec<`[`schemas::FraudScore`]`>`: the last `fraud.scores_kept` (default 20)
    /// scores of the account, newest first (JSON of the Rust type: decision as its Avro symbol,
    /// `scored_at` as epoch millis). For the query service.
    pub const FRAUD_SCORES: &str = "fraud-scores";
    /// `account|transaction_id|score`, `account|transaction_id|debit|credit` →
    /// [`crate::dedupe::DedupeEntry`] (JSON).
    pub const FRAUD_DEDUPE: &str = "fraud-dedupe";
    /// Window store: key `user_id|category` (category symbol) + window start (local midnight,
    /// UTC millis) → [`crate::analytics::DailySpending`] (JSON). Read with
    /// `streams::window::decode_window_entry(&StringSerde, &JsonSerde<DailySpending>, ..)`;
    /// `window_range_for(b"user|category")` gives one key's windows. For the query service.
    pub const SPENDING_DAILY: &str = "spending-daily";
    /// `(window end, Windowed<"user|category">)` → `()`: windows not yet closed (end + grace
    /// not passed; `streams::window::OpenWindowSerde`). Closing emits the final total with
    /// `analytics.emit = on_window_close`.
    pub const SPENDING_DAILY_OPEN: &str = "spending-daily-open";
    /// Same key as [`SPENDING_DAILY_OPEN`]: closed windows, deleted from [`SPENDING_DAILY`]
    /// once their end is `analytics.retention_ms` behind the analytics clock.
    pub const SPENDING_DAILY_CLOSED: &str = "spending-daily-closed";
    /// `"clock"` → i64: the largest `occurred_at` analytics has seen in this task (lateness).
    pub const ANALYTICS_CLOCK: &str = "analytics-clock";
    /// `user_id|YYYY-MM` (local month) → [`crate::analytics::CashFlow`] (JSON). For the query service.
    pub const CASH_FLOW: &str = "cash-flow";
    /// `user|transaction_id` and `user|transaction_id|in` → [`crate::dedupe::DedupeEntry`] (JSON).
    pub const ANALYTICS_DEDUPE: &str = "analytics-dedupe";
    /// Global: currency code → raw `ExchangeRate` Avro bytes of the `exchange-rates` topic.
    pub const EXCHANGE_RATES: &str = "exchange-rates";
    /// Global: user_id → raw `UserProfile` Avro bytes of the `user-profile` topic.
    pub const USER_PROFILES: &str = "user-profile";
}

/// Node names (processors, sinks, repartitions).
pub mod nodes {
    pub const ACCOUNTS_SOURCE: &str = "accounts-source";
    /// Fills the `accounts` table ([`crate::accounts::AccountsProcessor`]).
    pub const ACCOUNT_EVENTS: &str = "account-events";
    pub const TRANSACTIONS_SOURCE: &str = "transactions-source";
    pub const TO_USER: &str = "to-user";
    pub const TO_CREDIT: &str = "to-credit";
    pub const BALANCES: &str = "balances";
    /// Repartition name: topic `<app>-transfer-credits-repartition`, keyed by counterparty.
    pub const TRANSFER_CREDITS: &str = "transfer-credits";
    pub const BALANCE_CREDITS: &str = "balance-credits";
    pub const BALANCES_SINK: &str = "account-balances-sink";
    pub const BALANCE_NOTIFICATIONS_SINK: &str = "balance-notifications-sink";
    /// Repartition name: topic `<app>-transactions-by-user-repartition`, keyed by user_id.
    pub const TRANSACTIONS_BY_USER: &str = "transactions-by-user";
    pub const USER_TRANSACTIONS: &str = "user-transactions";
    pub const BUDGETS_SOURCE: &str = "budgets-source";
    pub const BUDGET_EVENTS: &str = "budget-events";
    pub const GOALS_SOURCE: &str = "goals-source";
    pub const GOAL_EVENTS: &str = "goal-events";
    pub const BUDGETS: &str = "budgets";
    pub const GOALS: &str = "goals";
    pub const BUDGET_ALERTS_SINK: &str = "budget-alerts-sink";
    pub const GOAL_PROGRESS_SINK: &str = "goal-progress-sink";
    pub const USER_NOTIFICATIONS_SINK: &str = "user-notifications-sink";
    pub const FRAUD: &str = "fraud";
    pub const FRAUD_CREDITS: &str = "fraud-credits";
    pub const FRAUD_SCORES_SINK: &str = "fraud-scores-sink";
    pub const FRAUD_NOTIFICATIONS_SINK: &str = "fraud-notifications-sink";
    pub const TRANSFER_IN_OWNER: &str = "transfer-in-owner";
    /// Repartition name: topic `<app>-transfers-in-by-user-repartition`, keyed by the owner of
    /// the receiving account.
    pub const TRANSFERS_IN_BY_USER: &str = "transfers-in-by-user";
    /// The sink writing that repartition topic (`add_repartition` names it `<name>-sink`).
    pub const TRANSFERS_IN_BY_USER_SINK: &str = "transfers-in-by-user-sink";
    pub const TRANSFERS_IN: &str = "transfers-in";
    pub const ANALYTICS: &str = "analytics";
    pub const SPENDING_DAILY_SINK: &str = "spending-daily-sink";
}

/// What every processor of the topology shares: the configuration and the global-table readers.
pub struct Shared {
    pub config: FinanceConfig,
    pub tables: GlobalTables,
}

impl Shared {
    /// The dedupe of `lane` in `store`, with the configured retention.
    pub fn dedupe(&self, store: &'static str, lane: Lane) -> Dedupe {
        Dedupe::new(store, lane, self.config.dedupe_retention_ms, self.config.dedupe_purge_interval_ms)
    }
}

/// Input of the user-keyed processors: a re-keyed transaction or an event of the user's own topics.
#[derive(Debug, Clone, PartialEq)]
pub enum UserInput {
    Transaction(TransactionEvent),
    Budget(BudgetEvent),
    Goal(GoalEvent),
    /// A COMPLETED TRANSFER into an account owned by the record's key (analytics' cash flow).
    TransferIn(TransactionEvent),
}

/// Maps a record to zero or one records.
type MapFn<K, V, K2, V2> = fn(Record<K, V>) -> Option<Record<K2, V2>>;

/// Stateless re-key / wrap step: `f` maps a record to zero or one records for every child.
struct MapProcessor<K, V, K2, V2> {
    f: MapFn<K, V, K2, V2>,
}

impl<K, V, K2, V2> Processor<K, V> for MapProcessor<K, V, K2, V2>
where
    K: Send + 'static,
    V: Send + 'static,
    K2: Clone + Send + 'static,
    V2: Clone + Send + 'static,
{
    fn process(&mut self, record: Record<K, V>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        match (self.f)(record) {
            Some(r) => ctx.forward(r),
            None => Ok(()),
        }
    }
}

fn to_user(r: Record<String, TransactionEvent>) -> Option<Record<String, TransactionEvent>> {
    if !moves_money(&r.value) {
        return None;
    }
    let user = r.value.user_id.clone();
    Some(r.with_key(user))
}

fn to_credit(r: Record<String, TransactionEvent>) -> Option<Record<String, TransactionEvent>> {
    let leg = credit_leg(&r.value)?;
    Some(r.with_key(leg.account_id))
}

fn wrap_tx(r: Record<String, TransactionEvent>) -> Option<Record<String, UserInput>> {
    let v = UserInput::Transaction(r.value.clone());
    Some(r.with_value(v))
}

fn wrap_transfer_in(r: Record<String, TransactionEvent>) -> Option<Record<String, UserInput>> {
    let v = UserInput::TransferIn(r.value.clone());
    Some(r.with_value(v))
}

fn wrap_budget(r: Record<String, BudgetEvent>) -> Option<Record<String, UserInput>> {
    let v = UserInput::Budget(r.value.clone());
    Some(r.with_value(v))
}

fn wrap_goal(r: Record<String, GoalEvent>) -> Option<Record<String, UserInput>> {
    let v = UserInput::Goal(r.value.clone());
    Some(r.with_value(v))
}

/// A user source keyed by the id its state is kept under (so key-placed), with event time from
/// the record's own time field (docs/money-rules.md, "Event time and partitioning").
fn placed<V: Clone + Send + 'static>(time: fn(&V) -> i64) -> SourceOptions<String, V> {
    SourceOptions::new().event_time(EventTime::extract(move |_: &String, v: &V| Some(time(v)))).key_placed()
}

fn json<T: serde::Serialize + serde::de::DeserializeOwned + 'static>() -> JsonSerde<T> {
    JsonSerde::default()
}

/// JSON for repartition topics (private to the application); `Clone`, as `add_repartition` needs.
struct RepartitionJson<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Clone for RepartitionJson<T> {
    fn clone(&self) -> Self {
        RepartitionJson(std::marker::PhantomData)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Serde<T> for RepartitionJson<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        JsonSerde::<T>::default().serialize(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        JsonSerde::<T>::default().deserialize(topic, bytes)
    }
}

fn repartition_json<T>() -> RepartitionJson<T> {
    RepartitionJson(std::marker::PhantomData)
}

/// Builds the finance topology. Build it with `Topology::build(application_id)`; repartition
/// topics are `<application_id>-transfer-credits-repartition` and
/// `<application_id>-transactions-by-user-repartition`. Store names are in [`stores`].
pub fn finance_topology(cfg: &FinanceConfig, registry: Arc<dyn SchemaRegistry>) -> Result<Topology, TopologyError> {
    let t = &cfg.topics;
    let shared = Arc::new(Shared {
        config: cfg.clone(),
        tables: GlobalTables::new(registry.clone(), &t.exchange_rates, &t.user_profiles),
    });
    let avro_tx = AvroSerde::<TransactionEvent>::new(registry.clone());
    let mut top = Topology::new();

    // Global tables (raw bytes, decoded by `tables`).
    top.add_global_store(
        StoreSpec::key_value::<String, Vec<u8>>(stores::EXCHANGE_RATES, StringSerde, BytesSerde),
        &t.exchange_rates,
    )?
    .add_global_store(
        StoreSpec::key_value::<String, Vec<u8>>(stores::USER_PROFILES, StringSerde, BytesSerde),
        &t.user_profiles,
    )?;

    // Accounts sub-topology: the `accounts` table first (its store joins it to the balances).
    let s = shared.clone();
    top.add_source_with(
        nodes::ACCOUNTS_SOURCE,
        &[&t.accounts],
        StringSerde,
        AvroSerde::<AccountEvent>::new(registry.clone()),
        placed(|a: &AccountEvent| a.occurred_at.0),
    )?
    .add_processor(nodes::ACCOUNT_EVENTS, move || AccountsProcessor::new(s.clone()), &[nodes::ACCOUNTS_SOURCE])?;
    // Children of the transactions source run in this order; the re-keying steps come first so
    // a data error of `balances` (dead-lettered) does not hold back budgets and goals.
    let tx_time = placed(|t: &TransactionEvent| t.occurred_at.0);
    top.add_source_with(nodes::TRANSACTIONS_SOURCE, &[&t.transactions], StringSerde, avro_tx, tx_time)?
        .add_processor(nodes::TO_USER, || MapProcessor { f: to_user }, &[nodes::TRANSACTIONS_SOURCE])?
        .add_processor(nodes::TO_CREDIT, || MapProcessor { f: to_credit }, &[nodes::TRANSACTIONS_SOURCE])?
        .add_repartition::<String, TransactionEvent>(
            nodes::TRANSFER_CREDITS,
            StringSerde,
            repartition_json(),
            &[nodes::TO_CREDIT],
        )?;
    let s = shared.clone();
    top.add_processor(nodes::FRAUD, move || FraudProcessor::new(s.clone(), Leg::Debit), &[nodes::TRANSACTIONS_SOURCE])?;
    let (s, s2) = (shared.clone(), shared.clone());
    top.add_processor(
        nodes::FRAUD_CREDITS,
        move || FraudProcessor::new(s.clone(), Leg::Credit),
        &[nodes::TRANSFER_CREDITS],
    )?
    .add_processor(
        nodes::TRANSFER_IN_OWNER,
        move || TransferInOwner::new(s2.clone()),
        &[nodes::TRANSFER_CREDITS],
    )?;
    let fraud_procs = [nodes::FRAUD, nodes::FRAUD_CREDITS];
    top.add_store(&crate::fraud::FRAUD_STATE_STORE, &fraud_procs)?
        .add_store(&crate::fraud::FRAUD_SCORES_STORE, &[nodes::FRAUD])?
        .add_state_store(
            StoreSpec::key_value::<String, DedupeEntry>(stores::FRAUD_DEDUPE, StringSerde, json()),
            &fraud_procs,
        )?
        .add_sink::<String, FraudScore>(
            nodes::FRAUD_SCORES_SINK,
            &t.fraud_scores,
            StringSerde,
            AvroSerde::<FraudScore>::new(registry.clone()),
            &[nodes::FRAUD],
        )?
        .add_sink::<String, Notification>(
            nodes::FRAUD_NOTIFICATIONS_SINK,
            &t.notifications,
            StringSerde,
            AvroSerde::<Notification>::new(registry.clone()),
            &[nodes::FRAUD],
        )?;
    let s = shared.clone();
    top.add_processor(
        nodes::BALANCES,
        move || BalancesProcessor::new(s.clone(), Leg::Debit),
        &[nodes::TRANSACTIONS_SOURCE],
    )?;
    let s = shared.clone();
    top.add_processor(
        nodes::BALANCE_CREDITS,
        move || BalancesProcessor::new(s.clone(), Leg::Credit),
        &[nodes::TRANSFER_CREDITS],
    )?;
    let balance_procs = [nodes::BALANCES, nodes::BALANCE_CREDITS];
    let owner_procs = [nodes::ACCOUNT_EVENTS, nodes::BALANCES, nodes::BALANCE_CREDITS, nodes::TRANSFER_IN_OWNER];
    top.add_store(&crate::accounts::ACCOUNTS_STORE, &owner_procs)?
        .add_store(&crate::balances::BALANCES_STORE, &owner_procs)?
        .add_state_store(
            StoreSpec::key_value::<String, Slot<TransactionEvent>>(stores::TRANSFERS_IN_HELD, StringSerde, json()),
            &[nodes::ACCOUNT_EVENTS, nodes::BALANCES, nodes::TRANSFER_IN_OWNER],
        )?
        .add_store(&crate::balances::LINEAGE_STORE, &balance_procs)?
        .add_state_store(
            StoreSpec::key_value::<String, DedupeEntry>(stores::BALANCES_DEDUPE, StringSerde, json()),
            &balance_procs,
        )?
        .add_sink::<String, BalanceUpdated>(
            nodes::BALANCES_SINK,
            &t.account_balances,
            StringSerde,
            AvroSerde::<BalanceUpdated>::new(registry.clone()),
            &[nodes::BALANCES, nodes::BALANCE_CREDITS, nodes::ACCOUNT_EVENTS],
        )?
        .add_sink::<String, Notification>(
            nodes::BALANCE_NOTIFICATIONS_SINK,
            &t.notifications,
            StringSerde,
            AvroSerde::<Notification>::new(registry.clone()),
            &balance_procs,
        )?;

    // Users sub-topology.
    top.add_repartition::<String, TransactionEvent>(
        nodes::TRANSACTIONS_BY_USER,
        StringSerde,
        repartition_json(),
        &[nodes::TO_USER],
    )?
    .add_processor(nodes::USER_TRANSACTIONS, || MapProcessor { f: wrap_tx }, &[nodes::TRANSACTIONS_BY_USER])?
    .add_source_with(
        nodes::BUDGETS_SOURCE,
        &[&t.budgets],
        StringSerde,
        AvroSerde::<BudgetEvent>::new(registry.clone()),
        placed(|b: &BudgetEvent| b.updated_at.0),
    )?
    .add_processor(nodes::BUDGET_EVENTS, || MapProcessor { f: wrap_budget }, &[nodes::BUDGETS_SOURCE])?
    .add_source_with(
        nodes::GOALS_SOURCE,
        &[&t.goals],
        StringSerde,
        AvroSerde::<GoalEvent>::new(registry.clone()),
        placed(|g: &GoalEvent| g.occurred_at.0),
    )?
    .add_processor(nodes::GOAL_EVENTS, || MapProcessor { f: wrap_goal }, &[nodes::GOALS_SOURCE])?
    // Written by transfer-in-owner, and by whoever makes an account's owner known (releasing
    // the transfers held for it).
    .add_repartition::<String, TransactionEvent>(
        nodes::TRANSFERS_IN_BY_USER,
        StringSerde,
        repartition_json(),
        &[nodes::TRANSFER_IN_OWNER, nodes::ACCOUNT_EVENTS, nodes::BALANCES],
    )?
    .add_processor(
        nodes::TRANSFERS_IN,
        || MapProcessor { f: wrap_transfer_in },
        &[nodes::TRANSFERS_IN_BY_USER],
    )?;
    // user-transactions and transfers-in forward to several processors: the engine gives each
    // its own outcome, so a record one of them rejects (e.g. a missing rate for a goal's
    // currency) is still applied by the others, and dead-lettered once per rejecting processor.
    let s = shared.clone();
    top.add_processor(
        nodes::BUDGETS,
        move || BudgetsProcessor::new(s.clone()),
        &[nodes::USER_TRANSACTIONS, nodes::BUDGET_EVENTS],
    )?;
    let s = shared.clone();
    top.add_processor(
        nodes::GOALS,
        move || GoalsProcessor::new(s.clone()),
        &[nodes::USER_TRANSACTIONS, nodes::GOAL_EVENTS, nodes::TRANSFERS_IN],
    )?;
    let s = shared.clone();
    top.add_processor(
        nodes::ANALYTICS,
        move || AnalyticsProcessor::new(s.clone()),
        &[nodes::USER_TRANSACTIONS, nodes::TRANSFERS_IN],
    )?;
    top.add_store(&crate::budgets::BUDGETS_STORE, &[nodes::BUDGETS])?
        .add_state_store(
            StoreSpec::key_value::<String, DedupeEntry>(stores::BUDGETS_DEDUPE, StringSerde, json()),
            &[nodes::BUDGETS],
        )?
        .add_store(&crate::goals::GOALS_STORE, &[nodes::GOALS])?
        .add_state_store(
            StoreSpec::key_value::<String, DedupeEntry>(stores::GOALS_DEDUPE, StringSerde, json()),
            &[nodes::GOALS],
        )?
        .add_state_store(
            StoreSpec::key_value::<String, DailySpending>(stores::SPENDING_DAILY, StringSerde, json()),
            &[nodes::ANALYTICS],
        )?
        .add_state_store(
            StoreSpec::key_value::<(i64, Windowed<String>), ()>(
                stores::SPENDING_DAILY_OPEN,
                OpenWindowSerde::<String>::default(),
                UnitSerde,
            ),
            &[nodes::ANALYTICS],
        )?
        .add_state_store(
            StoreSpec::key_value::<(i64, Windowed<String>), ()>(
                stores::SPENDING_DAILY_CLOSED,
                OpenWindowSerde::<String>::default(),
                UnitSerde,
            ),
            &[nodes::ANALYTICS],
        )?
        .add_store(&crate::analytics::ANALYTICS_CLOCK_STORE, &[nodes::ANALYTICS])?
        .add_store(&crate::analytics::CASH_FLOW_STORE, &[nodes::ANALYTICS])?
        .add_state_store(
            StoreSpec::key_value::<String, DedupeEntry>(stores::ANALYTICS_DEDUPE, StringSerde, json()),
            &[nodes::ANALYTICS],
        )?
        .add_sink::<String, SpendingAggregate>(
            nodes::SPENDING_DAILY_SINK,
            &t.spending_daily,
            StringSerde,
            AvroSerde::<SpendingAggregate>::new(registry.clone()),
            &[nodes::ANALYTICS],
        )?
        .add_sink::<String, BudgetAlert>(
            nodes::BUDGET_ALERTS_SINK,
            &t.budget_alerts,
            StringSerde,
            AvroSerde::<BudgetAlert>::new(registry.clone()),
            &[nodes::BUDGETS],
        )?
        .add_sink::<String, GoalProgress>(
            nodes::GOAL_PROGRESS_SINK,
            &t.goal_progress,
            StringSerde,
            AvroSerde::<GoalProgress>::new(registry.clone()),
            &[nodes::GOALS],
        )?
        .add_sink::<String, Notification>(
            nodes::USER_NOTIFICATIONS_SINK,
            &t.notifications,
            StringSerde,
            AvroSerde::<Notification>::new(registry),
            &[nodes::BUDGETS, nodes::GOALS],
        )?;
    Ok(top)
}
