//! finstream connectors.
//!
//! - [`generator`]: deterministic synthetic finance data (the core of `finstream generate`): users,
//!   profiles, accounts, budgets, goals, daily-life transactions, exchange rates, duplicates, late
//!   events and labelled fraud scenarios, as input [`Event`]s with topic, key and timestamp.
//! - [`reference`]: the independent reference model of the money rules (issue 4 and
//!   `docs/money-rules.md`) that the end-to-end test compares the processors with.

pub mod event;
pub mod generator;
pub mod reference;

pub use event::{topics, Event};
pub use generator::{FraudLabel, FraudScenario, Generator, GeneratorConfig};
pub use reference::{compute, compute_in_order, ReferenceConfig, ReferenceOutput};
