//! One input record of the pipeline, with the topic, key and record timestamp the contract
//! (issue 3) gives it.

use schemas::{
    AccountEvent, AvroRecord, BudgetEvent, ExchangeRate, GoalEvent, TimestampMillis, TransactionEvent, UserProfile,
};

/// Input topic names (issue 3).
pub mod topics {
    pub const TRANSACTIONS: &str = "transactions";
    pub const ACCOUNTS: &str = "accounts";
    pub const BUDGETS: &str = "budgets";
    pub const GOALS: &str = "financial-goals";
    pub const PROFILES: &str = "user-profile";
    pub const RATES: &str = "exchange-rates";
}

/// An input event for one of the six input topics.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Rate(ExchangeRate),
    Profile(UserProfile),
    Account(AccountEvent),
    Budget(BudgetEvent),
    Goal(GoalEvent),
    Transaction(TransactionEvent),
}

impl Event {
    /// The topic this event is produced to.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::Rate(_) => topics::RATES,
            Event::Profile(_) => topics::PROFILES,
            Event::Account(_) => topics::ACCOUNTS,
            Event::Budget(_) => topics::BUDGETS,
            Event::Goal(_) => topics::GOALS,
            Event::Transaction(_) => topics::TRANSACTIONS,
        }
    }

    /// The record key: account_id for transactions and accounts, user_id for budgets, goals and profiles,
    /// the currency code for rates.
    pub fn key(&self) -> &str {
        match self {
            Event::Rate(r) => &r.currency,
            Event::Profile(p) => &p.user_id,
            Event::Account(a) => &a.account_id,
            Event::Budget(b) => &b.user_id,
            Event::Goal(g) => &g.user_id,
            Event::Transaction(t) => &t.account_id,
        }
    }

    /// The record timestamp: `as_of`, `updated_at` or `occurred_at`.
    pub fn timestamp(&self) -> TimestampMillis {
        match self {
            Event::Rate(r) => r.as_of,
            Event::Profile(p) => p.updated_at,
            Event::Account(a) => a.occurred_at,
            Event::Budget(b) => b.updated_at,
            Event::Goal(g) => g.occurred_at,
            Event::Transaction(t) => t.occurred_at,
        }
    }

    /// The user the event belongs to (`None` for rates).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Event::Rate(_) => None,
            Event::Profile(p) => Some(&p.user_id),
            Event::Account(a) => Some(&a.user_id),
            Event::Budget(b) => Some(&b.user_id),
            Event::Goal(g) => Some(&g.user_id),
            Event::Transaction(t) => Some(&t.user_id),
        }
    }

    /// The contract's input validation (`AvroRecord::validate`), as `"reason: message"`.
    pub fn validate(&self) -> Result<(), String> {
        let r = match self {
            Event::Rate(e) => e.validate(),
            Event::Profile(e) => e.validate(),
            Event::Account(e) => e.validate(),
            Event::Budget(e) => e.validate(),
            Event::Goal(e) => e.validate(),
            Event::Transaction(e) => e.validate(),
        };
        r.map_err(|e| format!("{}: {}", e.reason, e.message))
    }

    pub fn as_transaction(&self) -> Option<&TransactionEvent> {
        match self {
            Event::Transaction(t) => Some(t),
            _ => None,
        }
    }
}
