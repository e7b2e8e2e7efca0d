//! finstream's money processors (issue 4): running balances, budgets, savings goals and the
//! notifications they raise; fraud scores and spending analytics (issue 5); the `accounts` table
//! that says who owns each account (issue 14); built on the
//! `streams` engine and the `schemas` event contract.
//!
//! Layout follows Vector's transforms: one module per processor (`accounts`, `balances`,
//! `transfers_in`, `budgets`, `goals`, `fraud`, `analytics`),
//! shared rule modules (`legs`, `dedupe`, `fx`, `periods`, `money_fmt`, `notifications`,
//! `tables`), and one explicit registration in [`topology::finance_topology`]. Where issue 4 is
//! silent, `docs/money-rules.md` is binding; every module cites the rule it implements.

pub mod accounts;
pub mod analytics;
pub mod balances;
pub mod budgets;
pub mod config;
pub mod dedupe;
pub mod expiry;
pub mod fraud;
pub mod fx;
pub mod goals;
pub mod legs;
pub mod money_fmt;
pub mod notifications;
pub mod periods;
pub mod tables;
pub mod topology;
pub mod transfers_in;

pub use config::{AnalyticsConfig, FinanceConfig, FraudConfig, SpendingEmit, TopicNames};
pub use topology::{finance_topology, stores};
