//! Response bodies. Amounts are decimal strings with 4 places ("1234.5000"), so no client
//! parses money into a float; instants are RFC 3339 in UTC; dates are `YYYY-MM-DD`.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Scale of amounts in responses (the contract's decimal scale).
pub const AMOUNT_SCALE: u32 = 4;

/// `1234.5` → `"1234.5000"` (half-even past 4 places).
pub fn amount(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(AMOUNT_SCALE, RoundingStrategy::MidpointNearestEven);
    r.rescale(AMOUNT_SCALE);
    r.to_string()
}

/// A percentage with 2 places, as a string.
pub fn percent(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    r.rescale(2);
    r.to_string()
}

/// Epoch millis → RFC 3339 UTC with millisecond precision.
pub fn instant(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    pub account_id: String,
    pub user_id: String,
    #[schema(example = "1234.5000")]
    pub balance: String,
    pub currency: String,
    pub applied_count: i64,
    pub last_transaction_id: String,
    /// Event time of the last applied leg, RFC 3339.
    pub updated_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LineageLeg {
    pub transaction_id: String,
    /// `DEBIT` (the leg on the transaction's own account) or `CREDIT` (a transfer's credit leg).
    pub leg: String,
    /// Signed amount in the account's currency.
    pub amount: String,
    pub balance_after: String,
    pub occurred_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Lineage {
    pub account_id: String,
    /// Newest first.
    pub legs: Vec<LineageLeg>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FraudScoreItem {
    pub transaction_id: String,
    pub account_id: String,
    pub user_id: String,
    /// 0-100.
    pub score: i32,
    /// `APPROVE`, `REVIEW` or `DECLINE`.
    pub decision: String,
    pub reasons: Vec<String>,
    pub model_version: String,
    pub scored_at: String,
}

impl From<schemas::FraudScore> for FraudScoreItem {
    fn from(s: schemas::FraudScore) -> Self {
        FraudScoreItem {
            transaction_id: s.transaction_id,
            account_id: s.account_id,
            user_id: s.user_id,
            score: s.score,
            decision: s.decision.symbol().to_string(),
            reasons: s.reasons,
            model_version: s.model_version,
            scored_at: instant(s.scored_at.0),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FraudScores {
    pub account_id: String,
    /// Newest first.
    pub scores: Vec<FraudScoreItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BudgetStatus {
    pub budget_id: String,
    pub category: String,
    /// `MONTHLY` or `WEEKLY`.
    pub period: String,
    /// Local midnight starting the period, RFC 3339 (UTC).
    pub period_start: String,
    /// Local midnight ending the period (exclusive), RFC 3339 (UTC).
    pub period_end: String,
    pub limit: String,
    /// Net spending in the period, converted into the budget's currency with the latest rates.
    pub spent: String,
    /// `limit - spent` (negative once exceeded).
    pub remaining: String,
    /// `spent / limit × 100`, 2 places.
    pub percent: String,
    pub currency: String,
    /// Thresholds (80, 100) alerted in this period.
    pub alerts_raised: Vec<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Budgets {
    pub user_id: String,
    /// The local date the periods contain.
    pub at: String,
    /// The user's IANA timezone (UTC when unknown).
    pub timezone: String,
    pub budgets: Vec<BudgetStatus>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Goal {
    pub goal_id: String,
    pub name: String,
    pub saved: String,
    pub target: String,
    /// `min(100, saved / target × 100)`, 2 places.
    pub percent: String,
    /// `IN_PROGRESS` or `ACHIEVED`.
    pub status: String,
    pub currency: String,
    pub target_date: Option<String>,
    pub account_id: Option<String>,
    /// Milestones (25, 50, 75, 100) reached.
    pub milestones_reached: Vec<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Goals {
    pub user_id: String,
    pub goals: Vec<Goal>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpendingDay {
    /// Local date in the user's timezone.
    pub date: String,
    pub category: String,
    pub total: String,
    pub count: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Spending {
    pub user_id: String,
    pub from: String,
    pub to: String,
    pub timezone: String,
    /// By date, then category.
    pub days: Vec<SpendingDay>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CashFlow {
    pub user_id: String,
    /// `YYYY-MM`, the local month.
    pub month: String,
    pub money_in: String,
    pub money_out: String,
    pub transfers_in: String,
    pub transfers_out: String,
    /// `money_in + transfers_in - money_out - transfers_out`.
    pub net: String,
    pub count: i64,
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
}

/// One store of `GET /v1/stores`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreInfo {
    pub name: String,
    /// `key_value`, `window` (entries per key and window start) or `session` (per key, session
    /// start and end).
    pub layout: String,
    /// `admin_only`, or `per_owner`: a user reads the entries whose key or value names them.
    pub access: String,
    /// A global store: every instance holds all of it and answers where asked.
    pub everywhere: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreList {
    /// The stores the caller may query, by name.
    pub stores: Vec<StoreInfo>,
}

/// One entry of a store, rendered by the store's `QuerySpec` (raw stores: keys as text,
/// values as the JSON they hold, else text, else hex).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoreEntry {
    #[schema(value_type = Value)]
    pub key: serde_json::Value,
    /// Window or session start, epoch millis (windowed layouts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Session end, epoch millis (session layout only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    #[schema(value_type = Value)]
    pub value: serde_json::Value,
    /// Opaque position of the entry in the store's key order: `after=<cursor>` continues after
    /// it.
    pub cursor: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoreEntries {
    pub store: String,
    /// In the store's key order, across partitions.
    pub entries: Vec<StoreEntry>,
    /// Present when the page is full: pass it as `after` for the next page (which may be
    /// empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}
