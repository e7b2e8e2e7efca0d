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
    /// How long (event time, relative to stream time) a transaction id is remembered by the
    /// dedupe stores. Default 30 days.
    #[serde(default = "default_dedupe_retention_ms")]
    pub dedupe_retention_ms: i64,
    /// Stream-time interval of the punctuation that purges expired dedupe entries. Default 1 hour.
    #[serde(default = "default_dedupe_purge_interval_ms")]
    pub dedupe_purge_interval_ms: i64,
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
/// Default [`FinanceConfig::dedupe_purge_interval_ms`]: 1 hour.
pub const fn default_dedupe_purge_interval_ms() -> i64 {
    3_600_000
}

impl Default for FinanceConfig {
    fn default() -> Self {
        FinanceConfig {
            low_balance_threshold: default_low_balance_threshold(),
            lineage_len: default_lineage_len(),
            dedupe_retention_ms: default_dedupe_retention_ms(),
            dedupe_purge_interval_ms: default_dedupe_purge_interval_ms(),
            topics: TopicNames::default(),
        }
    }
}

/// Topic names; the defaults are the contract's names (issue 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicNames {
    /// Input `TransactionEvent`s, keyed by account_id.
    pub transactions: String,
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
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            transactions: "transactions".into(),
            budgets: "budgets".into(),
            goals: "financial-goals".into(),
            user_profiles: "user-profile".into(),
            exchange_rates: "exchange-rates".into(),
            account_balances: "account-balances".into(),
            budget_alerts: "budget-alerts".into(),
            goal_progress: "goal-progress".into(),
            notifications: "notifications".into(),
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
    }
}
