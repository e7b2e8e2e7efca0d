//! The other input records: accounts, budgets, goals, user profiles and exchange rates.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use streams::serde::SerdeError;

use super::validate;
use super::{
    AccountEventType, AccountType, BudgetAction, BudgetPeriod, Category, DateDays, GoalEventType, TimestampMillis,
};
use crate::reason;

/// An account's lifecycle (topic `accounts`, key account_id): its owner and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    pub event_id: String,
    pub event_type: AccountEventType,
    pub account_id: String,
    /// The owner.
    pub user_id: String,
    /// Informational; `Unknown` (a type newer than this reader) is accepted.
    pub account_type: AccountType,
    /// ISO 4217 code the account is kept in.
    pub currency: String,
    pub display_name: Option<String>,
    pub occurred_at: TimestampMillis,
}

crate::avro_record!(top AccountEvent {
    event_id, event_type, account_id, user_id, account_type, currency, display_name, occurred_at,
});

impl AccountEvent {
    /// Ids and owner present, event type known, currency known. Both OPENED and CLOSED carry the
    /// owner and the currency, so either one alone is enough to attribute the account.
    fn check(&self) -> Result<(), SerdeError> {
        const R: &str = "AccountEvent";
        validate::non_empty(R, "event_id", &self.event_id)?;
        validate::non_empty(R, "account_id", &self.account_id)?;
        validate::non_empty(R, "user_id", &self.user_id)?;
        validate::known(R, "event_type", self.event_type, AccountEventType::Unknown)?;
        validate::currency(R, "currency", &self.currency).map(drop)
    }
}

/// Sets or deletes a spending limit (topic `budgets`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetEvent {
    pub budget_id: String,
    pub user_id: String,
    pub category: Category,
    pub limit: Decimal,
    pub currency: String,
    pub period: BudgetPeriod,
    pub action: BudgetAction,
    pub updated_at: TimestampMillis,
}

crate::avro_record!(top BudgetEvent { budget_id, user_id, category, limit, currency, period, action, updated_at });

impl BudgetEvent {
    /// Ids present, currency known, limit not negative (zero is a valid "spend nothing" budget),
    /// action known, and a SET has a known period.
    fn check(&self) -> Result<(), SerdeError> {
        const R: &str = "BudgetEvent";
        validate::non_empty(R, "budget_id", &self.budget_id)?;
        validate::non_empty(R, "user_id", &self.user_id)?;
        let minor = validate::currency(R, "currency", &self.currency)?;
        validate::amount(R, "limit", self.limit, minor, true)?;
        validate::known(R, "action", self.action, BudgetAction::Unknown)?;
        if self.action == BudgetAction::Set {
            validate::known(R, "period", self.period, BudgetPeriod::Unknown)?;
        }
        Ok(())
    }
}

/// Creates, updates or deletes a savings goal (topic `financial-goals`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalEvent {
    pub event_type: GoalEventType,
    pub goal_id: String,
    pub user_id: String,
    pub name: String,
    pub target_amount: Decimal,
    pub currency: String,
    pub target_date: Option<DateDays>,
    /// Deposits into this account count towards the goal.
    pub account_id: Option<String>,
    pub occurred_at: TimestampMillis,
}

crate::avro_record!(top GoalEvent {
    event_type, goal_id, user_id, name, target_amount, currency, target_date, account_id, occurred_at,
});

impl GoalEvent {
    /// Ids present, event type known, currency known, a positive target (deletes may carry zero).
    fn check(&self) -> Result<(), SerdeError> {
        const R: &str = "GoalEvent";
        validate::non_empty(R, "goal_id", &self.goal_id)?;
        validate::non_empty(R, "user_id", &self.user_id)?;
        validate::known(R, "event_type", self.event_type, GoalEventType::Unknown)?;
        let minor = validate::currency(R, "currency", &self.currency)?;
        let deleting = self.event_type == GoalEventType::GoalDeleted;
        validate::amount(R, "target_amount", self.target_amount, minor, deleting)
    }
}

/// A user's settings (topic `user-profile`, key user_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    pub user_id: String,
    pub base_currency: String,
    /// IANA zone name.
    pub timezone: String,
    /// ISO 3166-1 alpha-2.
    pub home_country: String,
    pub updated_at: TimestampMillis,
}

crate::avro_record!(top UserProfile { user_id, base_currency, timezone, home_country, updated_at });

impl UserProfile {
    /// Id and timezone present, base currency known.
    fn check(&self) -> Result<(), SerdeError> {
        const R: &str = "UserProfile";
        validate::non_empty(R, "user_id", &self.user_id)?;
        validate::non_empty(R, "timezone", &self.timezone)?;
        validate::currency(R, "base_currency", &self.base_currency).map(drop)
    }
}

/// Value of one unit of `currency` in USD (topic `exchange-rates`, key currency code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRate {
    pub currency: String,
    /// Decimal(28,10): rates need more fractional digits than money.
    pub usd_rate: Decimal,
    pub as_of: TimestampMillis,
}

crate::avro_record!(top ExchangeRate { currency, usd_rate, as_of });

impl ExchangeRate {
    /// Currency known, rate strictly positive.
    fn check(&self) -> Result<(), SerdeError> {
        validate::currency("ExchangeRate", "currency", &self.currency)?;
        if self.usd_rate.is_sign_negative() && !self.usd_rate.is_zero() {
            return Err(SerdeError::new(reason::NEGATIVE_AMOUNT, format!("ExchangeRate.usd_rate {}", self.usd_rate)));
        }
        if self.usd_rate.is_zero() {
            return Err(SerdeError::new(reason::INVALID_FIELD, "ExchangeRate.usd_rate is zero"));
        }
        Ok(())
    }
}
