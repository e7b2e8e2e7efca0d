//! The derived records finstream writes. Outside services read these with the Confluent Avro
//! deserializer, so they change only by adding optional fields with defaults.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use streams::serde::SerdeError;

use super::{AlertLevel, Category, FraudDecision, GoalStatus, NotificationKind, TimestampMillis};

/// Derived records are produced by finstream itself: nothing to validate on read.
macro_rules! no_checks {
    ($($ty:ident),+) => {$(
        impl $ty {
            fn check(&self) -> Result<(), SerdeError> {
                Ok(())
            }
        }
    )+};
}

/// An account's balance after applying a transaction (topic `account-balances`, key account_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdated {
    pub account_id: String,
    pub user_id: String,
    /// May be negative (overdraft).
    pub balance: Decimal,
    pub currency: String,
    pub last_transaction_id: String,
    pub applied_count: i64,
    pub updated_at: TimestampMillis,
}

crate::avro_record!(top BalanceUpdated {
    account_id, user_id, balance, currency, last_transaction_id, applied_count, updated_at,
});

/// Spending crossed 80 % or 100 % of a budget (topic `budget-alerts`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetAlert {
    pub alert_id: String,
    pub user_id: String,
    pub budget_id: String,
    pub category: Category,
    pub period_start: TimestampMillis,
    pub period_end: TimestampMillis,
    pub spent: Decimal,
    pub limit: Decimal,
    pub currency: String,
    /// 80 or 100.
    pub threshold_percent: i32,
    pub level: AlertLevel,
    pub transaction_id: String,
    pub occurred_at: TimestampMillis,
}

crate::avro_record!(top BudgetAlert {
    alert_id, user_id, budget_id, category, period_start, period_end, spent, limit, currency,
    threshold_percent, level, transaction_id, occurred_at,
});

/// Progress of a savings goal (topic `goal-progress`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalProgress {
    pub goal_id: String,
    pub user_id: String,
    pub saved: Decimal,
    pub target: Decimal,
    pub currency: String,
    /// 0-100 with 4 decimals.
    pub percent: Decimal,
    pub status: GoalStatus,
    /// 25, 50, 75 or 100 when this update crossed that milestone.
    pub milestone: Option<i32>,
    pub updated_at: TimestampMillis,
}

crate::avro_record!(top GoalProgress {
    goal_id, user_id, saved, target, currency, percent, status, milestone, updated_at,
});

/// Risk score of one transaction (topic `fraud-scores`, key account_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudScore {
    pub transaction_id: String,
    pub account_id: String,
    pub user_id: String,
    /// 0-100.
    pub score: i32,
    pub decision: FraudDecision,
    pub reasons: Vec<String>,
    pub model_version: String,
    pub scored_at: TimestampMillis,
}

crate::avro_record!(top FraudScore {
    transaction_id, account_id, user_id, score, decision, reasons, model_version, scored_at,
});

/// Spending per user and category in one window (topic `spending-daily`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendingAggregate {
    pub user_id: String,
    pub category: Category,
    pub window_start: TimestampMillis,
    pub window_end: TimestampMillis,
    pub total: Decimal,
    pub count: i64,
    pub currency: String,
}

crate::avro_record!(top SpendingAggregate { user_id, category, window_start, window_end, total, count, currency });

/// A message for the user (topic `notifications`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub notification_id: String,
    pub user_id: String,
    pub kind: NotificationKind,
    pub title: String,
    pub message: String,
    pub source_event_id: String,
    pub created_at: TimestampMillis,
}

crate::avro_record!(top Notification { notification_id, user_id, kind, title, message, source_event_id, created_at });

no_checks!(BalanceUpdated, BudgetAlert, GoalProgress, FraudScore, SpendingAggregate, Notification);
