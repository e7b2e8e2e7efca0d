//! Test harness: the finance topology on `TopologyTestDriver` with the real Avro serde and an
//! in-memory embedded registry.
#![allow(dead_code)]

pub mod generated;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use processors::analytics::{CashFlow, DailySpending};
use processors::balances::{BalanceState, LineageEntry};
use processors::budgets::UserBudgets;
use processors::fraud::FraudState;
use processors::goals::UserGoals;
use processors::{finance_topology, stores, FinanceConfig};
use rust_decimal::Decimal;
use schemas::registry::{EmbeddedRegistry, SchemaRegistry};
use schemas::*;
use streams::record::header;
use streams::{DriverConfig, OutRecord, StringSerde, TopologyTestDriver};

pub const APP: &str = "finance";

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// RFC 3339 → epoch millis.
pub fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

pub fn txn(
    id: &str,
    account: &str,
    user: &str,
    kind: TransactionKind,
    amount: &str,
    currency: &str,
    at: &str,
) -> TransactionEvent {
    TransactionEvent {
        transaction_id: id.into(),
        account_id: account.into(),
        user_id: user.into(),
        kind,
        amount: d(amount),
        currency: currency.into(),
        status: TransactionStatus::Completed,
        category: Category::Groceries,
        counterparty_account_id: None,
        merchant: None,
        goal_id: None,
        channel: Channel::Online,
        location: None,
        occurred_at: TimestampMillis(ms(at)),
    }
}

pub fn transfer(
    id: &str,
    from: &str,
    to: &str,
    user: &str,
    amount: &str,
    currency: &str,
    at: &str,
) -> TransactionEvent {
    let mut t = txn(id, from, user, TransactionKind::Transfer, amount, currency, at);
    t.counterparty_account_id = Some(to.into());
    t.category = Category::Savings;
    t
}

/// ACCOUNT_OPENED (or, with `kind`, another account event) of `account`, owned by `user`.
pub fn account(kind: AccountEventType, account: &str, user: &str, currency: &str, at: &str) -> AccountEvent {
    AccountEvent {
        event_id: format!("{account}-{}-{at}", kind.symbol()),
        event_type: kind,
        account_id: account.into(),
        user_id: user.into(),
        account_type: AccountType::Savings,
        currency: currency.into(),
        display_name: None,
        occurred_at: TimestampMillis(ms(at)),
    }
}

pub fn budget(id: &str, user: &str, category: Category, limit: &str, period: BudgetPeriod, at: &str) -> BudgetEvent {
    BudgetEvent {
        budget_id: id.into(),
        user_id: user.into(),
        category,
        limit: d(limit),
        currency: "USD".into(),
        period,
        action: BudgetAction::Set,
        updated_at: TimestampMillis(ms(at)),
    }
}

pub fn goal(kind: GoalEventType, id: &str, user: &str, target: &str, account: Option<&str>, at: &str) -> GoalEvent {
    GoalEvent {
        event_type: kind,
        goal_id: id.into(),
        user_id: user.into(),
        name: format!("Goal {id}"),
        target_amount: d(target),
        currency: "USD".into(),
        target_date: None,
        account_id: account.map(Into::into),
        occurred_at: TimestampMillis(ms(at)),
    }
}

pub struct Harness {
    pub d: TopologyTestDriver,
    pub registry: Arc<dyn SchemaRegistry>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(FinanceConfig::default(), DriverConfig { partitions: 4, commit_every: 5, ..Default::default() })
    }

    pub fn with(cfg: FinanceConfig, driver: DriverConfig) -> Self {
        let registry: Arc<dyn SchemaRegistry> = Arc::new(EmbeddedRegistry::in_memory());
        let topo = finance_topology(&cfg, registry.clone()).unwrap().build(APP).unwrap();
        let d = TopologyTestDriver::new(topo, driver).unwrap();
        Harness { d, registry }
    }

    fn avro<T: AvroRecord>(&self) -> AvroSerde<T> {
        AvroSerde::new(self.registry.clone())
    }

    fn encode<T: AvroRecord>(&self, topic: &str, v: &T) -> Vec<u8> {
        streams::Serde::serialize(&self.avro::<T>(), topic, v).unwrap()
    }

    // ---- inputs (processed at once) ----
    pub fn rate(&mut self, code: &str, usd_rate: &str) {
        let v = ExchangeRate { currency: code.into(), usd_rate: d(usd_rate), as_of: TimestampMillis(0) };
        let bytes = self.encode("exchange-rates", &v);
        self.d.pipe_raw("exchange-rates", Some(code.as_bytes().to_vec()), Some(bytes), 0).unwrap();
    }
    pub fn profile(&mut self, user: &str, tz: &str) {
        self.profile_with(user, tz, "USD", "US");
    }
    pub fn profile_with(&mut self, user: &str, tz: &str, base_currency: &str, home_country: &str) {
        let v = UserProfile {
            user_id: user.into(),
            base_currency: base_currency.into(),
            timezone: tz.into(),
            home_country: home_country.into(),
            updated_at: TimestampMillis(0),
        };
        let bytes = self.encode("user-profile", &v);
        self.d.pipe_raw("user-profile", Some(user.as_bytes().to_vec()), Some(bytes), 0).unwrap();
    }
    pub fn tx(&mut self, t: &TransactionEvent) {
        self.append_tx(t);
        self.d.run().unwrap();
    }
    pub fn budget(&mut self, b: &BudgetEvent) {
        self.append_budget(b);
        self.d.run().unwrap();
    }
    pub fn account(&mut self, a: &AccountEvent) {
        self.append_account(a);
        self.d.run().unwrap();
    }
    pub fn goal(&mut self, g: &GoalEvent) {
        self.append_goal(g);
        self.d.run().unwrap();
    }

    // ---- inputs (appended only; call `d.run()`) ----
    pub fn append_tx(&mut self, t: &TransactionEvent) {
        let bytes = self.encode("transactions", t);
        self.d.append_raw("transactions", Some(t.account_id.as_bytes().to_vec()), Some(bytes), t.occurred_at.0);
    }
    pub fn append_account(&mut self, a: &AccountEvent) {
        let bytes = self.encode("accounts", a);
        self.d.append_raw("accounts", Some(a.account_id.as_bytes().to_vec()), Some(bytes), a.occurred_at.0);
    }
    pub fn append_budget(&mut self, b: &BudgetEvent) {
        let bytes = self.encode("budgets", b);
        self.d.append_raw("budgets", Some(b.user_id.as_bytes().to_vec()), Some(bytes), b.updated_at.0);
    }
    pub fn append_goal(&mut self, g: &GoalEvent) {
        let bytes = self.encode("financial-goals", g);
        self.d.append_raw("financial-goals", Some(g.user_id.as_bytes().to_vec()), Some(bytes), g.occurred_at.0);
    }

    // ---- outputs ----
    pub fn read<T: AvroRecord>(&self, topic: &str) -> Vec<T> {
        let vs = self.avro::<T>().without_validation();
        self.d.read_output::<String, T>(topic, &StringSerde, &vs).into_iter().map(|r| r.value).collect()
    }
    pub fn balances_out(&self) -> Vec<BalanceUpdated> {
        self.read("account-balances")
    }
    pub fn alerts(&self) -> Vec<BudgetAlert> {
        self.read("budget-alerts")
    }
    pub fn progress(&self) -> Vec<GoalProgress> {
        self.read("goal-progress")
    }
    pub fn notifications(&self) -> Vec<Notification> {
        self.read("notifications")
    }
    pub fn fraud_scores(&self) -> Vec<FraudScore> {
        self.read("fraud-scores")
    }
    /// The score of one transaction (panics unless exactly one was written).
    pub fn score_of(&self, transaction_id: &str) -> FraudScore {
        let mut s: Vec<_> = self.fraud_scores().into_iter().filter(|s| s.transaction_id == transaction_id).collect();
        assert_eq!(s.len(), 1, "one score for {transaction_id}: {s:?}");
        s.remove(0)
    }
    pub fn spending(&self) -> Vec<SpendingAggregate> {
        self.read("spending-daily")
    }
    pub fn dlq(&self, topic: &str) -> Vec<OutRecord> {
        self.d.read_raw(&format!("{topic}-dlq"))
    }
    pub fn dlq_reasons(&self, topic: &str) -> Vec<String> {
        self.dlq(topic).iter().map(|r| r.headers.get_str(header::ERROR_CLASS).unwrap_or("").to_string()).collect()
    }

    /// (rejecting processor, reason) of each dead letter on `topic`'s dead-letter topic, sorted.
    pub fn dlq_rejections(&self, topic: &str) -> Vec<(String, String)> {
        let text = |r: &streams::record::OutRecord, h: &str| r.headers.get_str(h).unwrap_or("").to_string();
        let mut out: Vec<_> =
            self.dlq(topic).iter().map(|r| (text(r, header::ERROR_PROCESSOR), text(r, header::ERROR_CLASS))).collect();
        out.sort();
        out
    }

    // ---- stores ----
    pub fn balance(&self, account: &str) -> Option<BalanceState> {
        self.d.store_get(&processors::balances::BALANCES_STORE, &account.to_string())
    }
    /// An account's lineage, newest first.
    pub fn lineage(&self, account: &str) -> Vec<LineageEntry> {
        let mut legs: Vec<(i64, LineageEntry)> = self
            .d
            .store(&processors::balances::LINEAGE_STORE)
            .into_iter()
            .filter_map(|(k, v)| processors::balances::lineage_seq(account, k.as_bytes()).map(|seq| (seq, v)))
            .collect();
        legs.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        legs.into_iter().map(|(_, v)| v).collect()
    }
    pub fn budgets(&self, user: &str) -> UserBudgets {
        self.d.store_get(&processors::budgets::BUDGETS_STORE, &user.to_string()).unwrap_or_default()
    }
    pub fn goals(&self, user: &str) -> UserGoals {
        self.d.store_get(&processors::goals::GOALS_STORE, &user.to_string()).unwrap_or_default()
    }
    pub fn fraud_state(&self, account: &str) -> Option<FraudState> {
        self.d.store_get(&processors::fraud::FRAUD_STATE_STORE, &account.to_string())
    }
    /// The `fraud-scores` store of an account (newest first).
    pub fn kept_scores(&self, account: &str) -> Vec<FraudScore> {
        self.d.store_get(&processors::fraud::FRAUD_SCORES_STORE, &account.to_string()).unwrap_or_default()
    }
    /// Every window of the `spending-daily` store.
    pub fn daily_windows(&self) -> Vec<DailySpending> {
        let vs = streams::JsonSerde::<DailySpending>::default();
        self.d
            .store_raw(stores::SPENDING_DAILY)
            .into_iter()
            .filter_map(|(k, v)| {
                streams::window::decode_window_entry(&StringSerde, &vs, stores::SPENDING_DAILY, &k, &v)
            })
            .map(|(_, _, v)| v)
            .collect()
    }
    pub fn cash_flow(&self, user: &str, month: &str) -> Option<CashFlow> {
        self.d.store_get(&processors::analytics::CASH_FLOW_STORE, &format!("{user}|{month}"))
    }
    /// `finstream_late_records_total{processor="analytics"}`.
    pub fn late_records(&self) -> u64 {
        self.d.metrics().late_records.with_label_values(&["analytics"]).get()
    }
    pub fn account_record(&self, account: &str) -> Option<processors::accounts::AccountRecord> {
        self.d.store_get(&processors::accounts::ACCOUNTS_STORE, &account.to_string())
    }
    /// Entries of the `transfers-in-held` store that are transfers (not index or clock entries).
    pub fn held_transfers(&self) -> Vec<TransactionEvent> {
        self.d
            .store_all::<String, processors::expiry::Slot<TransactionEvent>>(stores::TRANSFERS_IN_HELD)
            .into_iter()
            .filter_map(|(_, v)| match v {
                processors::expiry::Slot::Entry { value, .. } => Some(value),
                _ => None,
            })
            .collect()
    }
    pub fn all_balances(&self) -> BTreeMap<String, BalanceState> {
        self.d.store(&processors::balances::BALANCES_STORE).into_iter().collect()
    }

    /// `finstream_processor_events_total{processor, event="duplicate"}`.
    pub fn duplicates(&self, processor: &str) -> u64 {
        self.d.metrics().events.with_label_values(&[processor, "duplicate"]).get()
    }
}
