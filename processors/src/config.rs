//! [`FinanceConfig`]: the knobs of the money processors, with serde defaults so an empty TOML
//! table (or `{}`) gives the documented defaults.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// 30 days in milliseconds.
pub const THIRTY_DAYS_MS: i64 = 30 * 24 * 3_600_000;

/// Settings of the finance topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinanceConfig {
    /// A LOW_BALANCE notification is raised when a balance goes from `>=` this to `<` this
    /// (in the account's currency). Default 0.
    #[serde(default = "default_low_balance_threshold")]
    pub low_balance_threshold: Decimal,
    /// Applied legs kept per account in the `balance-lineage` store, newest first. Default 100.
    #[serde(default = "default_lineage_len")]
    pub lineage_len: usize,
    /// How long a transaction id is remembered by the dedupe stores: event-time progress of the
    /// stream it came in (the largest `occurred_at` remembered from it) after it was remembered,
    /// see `processors::dedupe`. Default 30 days.
    #[serde(default = "default_dedupe_retention_ms")]
    pub dedupe_retention_ms: i64,
    /// Event-time progress of a dedupe lane between two purges of its expired entries. Default
    /// 1 day: a purge reads only expired entries, and an expired entry already counts as absent,
    /// so purging more often only saves disk (at most one day's entries beyond the retention).
    #[serde(default = "default_dedupe_purge_interval_ms")]
    pub dedupe_purge_interval_ms: i64,
    /// How long a transfer into an account whose owner is not known yet waits for the owner (to
    /// count in their cash flow and goals): event-time progress of the held transfers' stream
    /// after it was held. Default 90 days; transfers to accounts at other banks wait in vain.
    #[serde(default = "default_transfers_in_hold_ms")]
    pub transfers_in_hold_ms: i64,
    /// Fraud scoring (`fraud`): features, weights, thresholds, `model_version`.
    #[serde(default)]
    pub fraud: FraudConfig,
    /// Spending analytics (`analytics`): daily windows and monthly cash flow.
    #[serde(default)]
    pub analytics: AnalyticsConfig,
    /// Names of the topics read and written.
    #[serde(default)]
    pub topics: TopicNames,
}

/// Default [`FinanceConfig::low_balance_threshold`]: 0.
pub const fn default_low_balance_threshold() -> Decimal {
    Decimal::ZERO
}
/// Default [`FinanceConfig::lineage_len`]: 100.
pub const fn default_lineage_len() -> usize {
    100
}
/// Default [`FinanceConfig::dedupe_retention_ms`]: 30 days.
pub const fn default_dedupe_retention_ms() -> i64 {
    THIRTY_DAYS_MS
}
/// Default [`FinanceConfig::transfers_in_hold_ms`]: 90 days.
pub const fn default_transfers_in_hold_ms() -> i64 {
    3 * THIRTY_DAYS_MS
}
/// Default [`FinanceConfig::dedupe_purge_interval_ms`]: 1 day.
pub const fn default_dedupe_purge_interval_ms() -> i64 {
    24 * 3_600_000
}

impl Default for FinanceConfig {
    fn default() -> Self {
        FinanceConfig {
            low_balance_threshold: default_low_balance_threshold(),
            lineage_len: default_lineage_len(),
            dedupe_retention_ms: default_dedupe_retention_ms(),
            dedupe_purge_interval_ms: default_dedupe_purge_interval_ms(),
            transfers_in_hold_ms: default_transfers_in_hold_ms(),
            fraud: FraudConfig::default(),
            analytics: AnalyticsConfig::default(),
            topics: TopicNames::default(),
        }
    }
}

/// Ten minutes in milliseconds.
pub const TEN_MINUTES_MS: i64 = 600_000;
/// One hour in milliseconds.
pub const ONE_HOUR_MS: i64 = 3_600_000;
/// 90 days in milliseconds.
pub const NINETY_DAYS_MS: i64 = 90 * 24 * ONE_HOUR_MS;

/// Fraud scoring (docs/money-rules.md, "Fraud scores"). Every feature that fires adds its
/// weight; the score is the sum capped at 100. The defaults are model `rules-v2`: any one of
/// VELOCITY, IMPOSSIBLE_TRAVEL, RAPID_DRAIN alone reaches REVIEW; AMOUNT_ANOMALY needs one more
/// signal (e.g. NEW_MERCHANT); FOREIGN_COUNTRY, NIGHT_TIME, NEW_MERCHANT and HIGH_RISK_MCC are
/// weak signals that reach REVIEW only together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudConfig {
    /// Names this configuration in every `FraudScore.model_version`. Default `rules-v2`; change
    /// it whenever a weight, a threshold or the meaning of a feature changes (`rules-v1` kept
    /// AMOUNT_ANOMALY statistics on raw amounts and learnt from flagged transactions too).
    pub model_version: String,
    /// REVIEW at or above this score. Default 50.
    pub review_threshold: i32,
    /// DECLINE at or above this score. Default 80.
    pub decline_threshold: i32,
    /// VELOCITY fires when more than this many scored transactions (this one included, any
    /// status) fall in the sliding window. Default 5.
    pub velocity_max_count: usize,
    /// VELOCITY window. Default 10 minutes.
    pub velocity_window_ms: i64,
    /// Default 50.
    pub velocity_weight: i32,
    /// AMOUNT_ANOMALY: history horizon (daily buckets of running statistics). Default 90 days.
    pub anomaly_history_ms: i64,
    /// AMOUNT_ANOMALY needs at least this many prior outflows in the horizon. Default 10.
    pub anomaly_min_history: u64,
    /// AMOUNT_ANOMALY fires above `exp(mean + this many standard deviations)` of the logarithms
    /// of the prior amounts in USD... Default 3.
    pub anomaly_sigmas: f64,
    /// ...and at least this multiple of their geometric mean `exp(mean)` (so a flat history does
    /// not flag a slightly larger amount). Default 2.
    pub anomaly_min_multiple: f64,
    /// Default 40.
    pub anomaly_weight: i32,
    /// NEW_MERCHANT: first transaction of the account at a merchant, at least this much in USD.
    /// Default 200.
    pub new_merchant_min_usd: Decimal,
    /// Default 15.
    pub new_merchant_weight: i32,
    /// IMPOSSIBLE_TRAVEL: implied speed from the previous located transaction above this.
    /// Default 900 km/h.
    pub impossible_travel_kmh: f64,
    /// IMPOSSIBLE_TRAVEL ignores hops shorter than this (city-level coordinates). Default 100 km.
    pub impossible_travel_min_km: f64,
    /// Default 50.
    pub impossible_travel_weight: i32,
    /// FOREIGN_COUNTRY: location country differs from the profile's home country. Default 10.
    pub foreign_country_weight: i32,
    /// NIGHT_TIME: local hour (user's timezone) in `[night_start_hour, night_end_hour)`.
    /// Default 0.
    pub night_start_hour: u32,
    /// Default 5.
    pub night_end_hour: u32,
    /// Default 10.
    pub night_time_weight: i32,
    /// HIGH_RISK_MCC: merchant category codes. Default 7995 (gambling), 6051 (quasi-cash),
    /// 4829 (money transfer), 6012 (financial institutions: merchandise and services).
    pub high_risk_mccs: Vec<String>,
    /// Default 20.
    pub high_risk_mcc_weight: i32,
    /// RAPID_DRAIN: outflows within this window... Default 1 hour.
    pub rapid_drain_window_ms: i64,
    /// ...above this fraction of the balance at the window's start... Default 0.8.
    pub rapid_drain_ratio: Decimal,
    /// ...and at least this much in USD (so a nearly empty account is not "drained"). Default 100.
    pub rapid_drain_min_usd: Decimal,
    /// Default 50.
    pub rapid_drain_weight: i32,
    /// Scores kept per account in the `fraud-scores` store, newest first. Default 20.
    pub scores_kept: usize,
}

/// Default [`FraudConfig::model_version`]: `rules-v2` (not `const`: a `String`).
pub fn default_model_version() -> String {
    "rules-v2".to_string()
}
/// Default [`FraudConfig::review_threshold`]: 50.
pub const fn default_review_threshold() -> i32 {
    50
}
/// Default [`FraudConfig::decline_threshold`]: 80.
pub const fn default_decline_threshold() -> i32 {
    80
}
/// Default [`FraudConfig::velocity_max_count`]: 5.
pub const fn default_velocity_max_count() -> usize {
    5
}
/// Default [`FraudConfig::velocity_window_ms`]: 10 minutes.
pub const fn default_velocity_window_ms() -> i64 {
    TEN_MINUTES_MS
}
/// Default [`FraudConfig::velocity_weight`]: 50.
pub const fn default_velocity_weight() -> i32 {
    50
}
/// Default [`FraudConfig::anomaly_history_ms`]: 90 days.
pub const fn default_anomaly_history_ms() -> i64 {
    NINETY_DAYS_MS
}
/// Default [`FraudConfig::anomaly_min_history`]: 10.
pub const fn default_anomaly_min_history() -> u64 {
    10
}
/// Default [`FraudConfig::anomaly_sigmas`]: 3.
pub const fn default_anomaly_sigmas() -> f64 {
    3.0
}
/// Default [`FraudConfig::anomaly_min_multiple`]: 2.
pub const fn default_anomaly_min_multiple() -> f64 {
    2.0
}
/// Default [`FraudConfig::anomaly_weight`]: 40.
pub const fn default_anomaly_weight() -> i32 {
    40
}
/// Default [`FraudConfig::new_merchant_min_usd`]: 200.
pub const fn default_new_merchant_min_usd() -> Decimal {
    Decimal::from_parts(200, 0, 0, false, 0)
}
/// Default [`FraudConfig::new_merchant_weight`]: 15.
pub const fn default_new_merchant_weight() -> i32 {
    15
}
/// Default [`FraudConfig::impossible_travel_kmh`]: 900.
pub const fn default_impossible_travel_kmh() -> f64 {
    900.0
}
/// Default [`FraudConfig::impossible_travel_min_km`]: 100.
pub const fn default_impossible_travel_min_km() -> f64 {
    100.0
}
/// Default [`FraudConfig::impossible_travel_weight`]: 50.
pub const fn default_impossible_travel_weight() -> i32 {
    50
}
/// Default [`FraudConfig::foreign_country_weight`]: 10.
pub const fn default_foreign_country_weight() -> i32 {
    10
}
/// Default [`FraudConfig::night_start_hour`]: 0.
pub const fn default_night_start_hour() -> u32 {
    0
}
/// Default [`FraudConfig::night_end_hour`]: 5.
pub const fn default_night_end_hour() -> u32 {
    5
}
/// Default [`FraudConfig::night_time_weight`]: 10.
pub const fn default_night_time_weight() -> i32 {
    10
}
/// Default [`FraudConfig::high_risk_mccs`]: 7995, 6051, 4829, 6012 (not `const`: a `Vec`).
pub fn default_high_risk_mccs() -> Vec<String> {
    ["7995", "6051", "4829", "6012"].map(String::from).to_vec()
}
/// Default [`FraudConfig::high_risk_mcc_weight`]: 20.
pub const fn default_high_risk_mcc_weight() -> i32 {
    20
}
/// Default [`FraudConfig::rapid_drain_window_ms`]: 1 hour.
pub const fn default_rapid_drain_window_ms() -> i64 {
    ONE_HOUR_MS
}
/// Default [`FraudConfig::rapid_drain_ratio`]: 0.8.
pub const fn default_rapid_drain_ratio() -> Decimal {
    Decimal::from_parts(8, 0, 0, false, 1)
}
/// Default [`FraudConfig::rapid_drain_min_usd`]: 100.
pub const fn default_rapid_drain_min_usd() -> Decimal {
    Decimal::from_parts(100, 0, 0, false, 0)
}
/// Default [`FraudConfig::rapid_drain_weight`]: 50.
pub const fn default_rapid_drain_weight() -> i32 {
    50
}
/// Default [`FraudConfig::scores_kept`]: 20.
pub const fn default_scores_kept() -> usize {
    20
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            model_version: default_model_version(),
            review_threshold: default_review_threshold(),
            decline_threshold: default_decline_threshold(),
            velocity_max_count: default_velocity_max_count(),
            velocity_window_ms: default_velocity_window_ms(),
            velocity_weight: default_velocity_weight(),
            anomaly_history_ms: default_anomaly_history_ms(),
            anomaly_min_history: default_anomaly_min_history(),
            anomaly_sigmas: default_anomaly_sigmas(),
            anomaly_min_multiple: default_anomaly_min_multiple(),
            anomaly_weight: default_anomaly_weight(),
            new_merchant_min_usd: default_new_merchant_min_usd(),
            new_merchant_weight: default_new_merchant_weight(),
            impossible_travel_kmh: default_impossible_travel_kmh(),
            impossible_travel_min_km: default_impossible_travel_min_km(),
            impossible_travel_weight: default_impossible_travel_weight(),
            foreign_country_weight: default_foreign_country_weight(),
            night_start_hour: default_night_start_hour(),
            night_end_hour: default_night_end_hour(),
            night_time_weight: default_night_time_weight(),
            high_risk_mccs: default_high_risk_mccs(),
            high_risk_mcc_weight: default_high_risk_mcc_weight(),
            rapid_drain_window_ms: default_rapid_drain_window_ms(),
            rapid_drain_ratio: default_rapid_drain_ratio(),
            rapid_drain_min_usd: default_rapid_drain_min_usd(),
            rapid_drain_weight: default_rapid_drain_weight(),
            scores_kept: default_scores_kept(),
        }
    }
}

/// When `spending-daily` receives a window's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendingEmit {
    /// After every change of the window (default; Kafka Streams without suppression).
    #[default]
    OnUpdate,
    /// Once, when the window closes (its end plus grace has passed): final results only.
    OnWindowClose,
}

impl SpendingEmit {
    /// The engine's name for the same choice.
    pub const fn strategy(self) -> streams::EmitStrategy {
        match self {
            SpendingEmit::OnUpdate => streams::EmitStrategy::OnUpdate,
            SpendingEmit::OnWindowClose => streams::EmitStrategy::OnWindowClose,
        }
    }
}

/// Spending analytics (docs/money-rules.md, "Spending analytics").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// How long after a daily window's end records for it are still applied. Default 1 hour.
    pub grace_ms: i64,
    /// `on_update` (default) or `on_window_close`.
    pub emit: SpendingEmit,
    /// How long a closed daily window stays queryable after its end, in event time (Kafka
    /// Streams' window-store retention): older windows are deleted from the store and its
    /// changelog. Default 400 days, so a year of daily spending can always be asked for.
    pub retention_ms: i64,
    /// Base currency of a user without a known profile. Default `USD` (not `const`: a `String`).
    pub default_base_currency: String,
}

/// Default [`AnalyticsConfig::grace_ms`]: 1 hour.
pub const fn default_grace_ms() -> i64 {
    ONE_HOUR_MS
}
/// Default [`AnalyticsConfig::retention_ms`]: 400 days.
pub const fn default_retention_ms() -> i64 {
    400 * 24 * ONE_HOUR_MS
}
/// Default [`AnalyticsConfig::default_base_currency`]: `USD`.
pub fn default_base_currency() -> String {
    "USD".to_string()
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            grace_ms: default_grace_ms(),
            emit: SpendingEmit::OnUpdate,
            retention_ms: default_retention_ms(),
            default_base_currency: default_base_currency(),
        }
    }
}

/// Topic names; the defaults are the contract's names (issue 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicNames {
    /// Input `TransactionEvent`s, keyed by account_id.
    pub transactions: String,
    /// Input `AccountEvent`s (a table), keyed by account_id.
    pub accounts: String,
    /// Input `BudgetEvent`s, keyed by user_id.
    pub budgets: String,
    /// Input `GoalEvent`s, keyed by user_id.
    pub goals: String,
    /// Input `UserProfile`s (global table), keyed by user_id.
    pub user_profiles: String,
    /// Input `ExchangeRate`s (global table), keyed by currency code.
    pub exchange_rates: String,
    /// Output `BalanceUpdated`, keyed by account_id.
    pub account_balances: String,
    /// Output `BudgetAlert`, keyed by user_id.
    pub budget_alerts: String,
    /// Output `GoalProgress`, keyed by user_id.
    pub goal_progress: String,
    /// Output `Notification`, keyed by user_id.
    pub notifications: String,
    /// Output `FraudScore`, keyed by account_id.
    pub fraud_scores: String,
    /// Output `SpendingAggregate`, keyed by user_id.
    pub spending_daily: String,
}

impl TopicNames {
    /// Every topic of the contract with the record name (`.avsc`) of its values.
    pub fn with_value_records(&self) -> [(&str, &'static str); 12] {
        use schemas::AvroRecord;
        [
            (&self.transactions, schemas::TransactionEvent::NAME),
            (&self.accounts, schemas::AccountEvent::NAME),
            (&self.budgets, schemas::BudgetEvent::NAME),
            (&self.goals, schemas::GoalEvent::NAME),
            (&self.user_profiles, schemas::UserProfile::NAME),
            (&self.exchange_rates, schemas::ExchangeRate::NAME),
            (&self.account_balances, schemas::BalanceUpdated::NAME),
            (&self.budget_alerts, schemas::BudgetAlert::NAME),
            (&self.goal_progress, schemas::GoalProgress::NAME),
            (&self.notifications, schemas::Notification::NAME),
            (&self.fraud_scores, schemas::FraudScore::NAME),
            (&self.spending_daily, schemas::SpendingAggregate::NAME),
        ]
    }
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            transactions: "transactions".into(),
            accounts: "accounts".into(),
            budgets: "budgets".into(),
            goals: "financial-goals".into(),
            user_profiles: "user-profile".into(),
            exchange_rates: "exchange-rates".into(),
            account_balances: "account-balances".into(),
            budget_alerts: "budget-alerts".into(),
            goal_progress: "goal-progress".into(),
            notifications: "notifications".into(),
            fraud_scores: "fraud-scores".into(),
            spending_daily: "spending-daily".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_gives_defaults() {
        let cfg: FinanceConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, FinanceConfig::default());
        assert_eq!(cfg.lineage_len, 100);
        assert_eq!(cfg.dedupe_retention_ms, 2_592_000_000);
        assert_eq!(cfg.topics.goals, "financial-goals");
        let cfg: FinanceConfig =
            serde_json::from_str(r#"{"low_balance_threshold":"10.5","topics":{"budgets":"b2"}}"#).unwrap();
        assert_eq!(cfg.low_balance_threshold, Decimal::new(105, 1));
        assert_eq!(cfg.topics.budgets, "b2");
        assert_eq!(cfg.topics.transactions, "transactions");
        assert!(serde_json::from_str::<FinanceConfig>(r#"{"lineage":3}"#).is_err());
        assert_eq!(cfg.fraud.model_version, "rules-v2");
        assert_eq!(cfg.fraud.rapid_drain_ratio, Decimal::new(8, 1));
        assert_eq!(cfg.fraud.new_merchant_min_usd, Decimal::new(200, 0));
        let cfg: FinanceConfig = serde_json::from_str(
            r#"{"fraud":{"model_version":"v2","velocity_max_count":3},"analytics":{"emit":"on_window_close"}}"#,
        )
        .unwrap();
        assert_eq!((cfg.fraud.model_version.as_str(), cfg.fraud.velocity_max_count), ("v2", 3));
        assert_eq!(cfg.fraud.review_threshold, 50);
        assert_eq!(cfg.analytics.emit, SpendingEmit::OnWindowClose);
        assert_eq!(cfg.analytics.grace_ms, 3_600_000);
        assert!(serde_json::from_str::<FinanceConfig>(r#"{"fraud":{"weights":1}}"#).is_err());
    }
}
