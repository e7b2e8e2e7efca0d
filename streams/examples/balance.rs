//! A per-account balance in the DSL, in `rust_decimal` (never a float): deposits and
//! withdrawals in, the balance after each one out; a withdrawal that would overdraw the
//! account, or overflow it, is rejected to the dead-letter topic with its reason.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use streams::dsl::{Consumed, DslError, Grouped, Produced};
use streams::store::query::{Owner, QuerySpec};
use streams::{JsonSerde, KvStoreDef, ProcessError, StreamsBuilder, StringSerde, Topology};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Movement {
    pub user_id: String,
    /// Positive: deposit; negative: withdrawal.
    pub amount: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    pub user_id: String,
    pub balance: Decimal,
    pub movements: u64,
}

fn owner(b: &Balance) -> Option<&str> {
    Some(&b.user_id)
}

/// account → balance, readable by its owner through the generic query endpoint.
pub const BALANCES: KvStoreDef<String, Balance> = KvStoreDef::new("balances", &StringSerde, &JsonSerde::new())
    .queryable(QuerySpec::string_keys().owned_by(Owner::Value(owner)));

fn apply(account: &String, m: &Movement, b: Balance) -> Result<Balance, ProcessError> {
    let next = b.balance.checked_add(m.amount).ok_or_else(|| ProcessError::data("overflow", account.clone()))?;
    if next < Decimal::ZERO {
        return Err(ProcessError::data("insufficient_funds", format!("{account} would go to {next}")));
    }
    Ok(Balance { user_id: m.user_id.clone(), balance: next, movements: b.movements + 1 })
}

pub fn topology(movements: &str, balances: &str) -> Result<Topology, DslError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(movements, Consumed::with(StringSerde, JsonSerde::<Movement>::new()))
        .group_by_key(Grouped::with("movements-by-account", StringSerde, JsonSerde::new()))
        .try_aggregate(Balance::default, apply, &BALANCES)
        .to_stream()
        .to(balances, Produced::with(StringSerde, JsonSerde::new()));
    builder.build()
}

fn main() {
    let topology = topology("movements", "balances").expect("valid topology").build("balances").expect("builds");
    let mut driver = streams::TopologyTestDriver::new(topology, Default::default()).expect("driver starts");
    for (account, amount) in [("acc-1", "100.10"), ("acc-1", "-30.05"), ("acc-2", "5"), ("acc-1", "-500")] {
        let m = Movement { user_id: "alice".into(), amount: amount.parse().expect("decimal") };
        driver.pipe("movements", &account.to_string(), &m, 0, &StringSerde, &JsonSerde::new()).expect("processes");
    }
    for (account, b) in driver.store(&BALANCES) {
        println!("{account}: {} after {} movements", b.balance, b.movements);
    }
    println!("rejected: {}", driver.read_raw("movements-dlq").len());
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use streams::record::header;
    use streams::{Crash, DriverConfig, TopologyTestDriver};

    use super::*;

    fn movements() -> Vec<(String, Movement)> {
        (0..200i64)
            .map(|i| {
                let amount = Decimal::new((i * 7919) % 20_000 - 8_000, 2); // -80.00 .. 119.99
                (format!("acc-{}", i % 6), Movement { user_id: format!("user-{}", i % 3), amount })
            })
            .collect()
    }

    fn run(config: DriverConfig) -> (Vec<(String, Balance)>, Vec<String>, usize) {
        let mut d =
            TopologyTestDriver::new(topology("movements", "balances").unwrap().build("b").unwrap(), config).unwrap();
        for (i, (account, m)) in movements().iter().enumerate() {
            let v = serde_json::to_vec(m).unwrap();
            d.append_raw("movements", Some(account.clone().into_bytes()), Some(v), i as i64);
        }
        d.run().unwrap();
        let mut reasons: Vec<String> = d
            .read_raw("movements-dlq")
            .iter()
            .map(|r| r.headers.get_str(header::ERROR_CLASS).unwrap_or_default().to_string())
            .collect();
        reasons.sort();
        (d.store(&BALANCES), reasons, d.crashes_done)
    }

    #[test]
    fn balances_are_exact_and_overdrafts_rejected_with_and_without_crashes() {
        let mut expected = BTreeMap::<String, Balance>::new();
        let mut rejected = 0;
        for (account, m) in movements() {
            let b = expected.entry(account).or_default();
            if b.balance + m.amount < Decimal::ZERO {
                rejected += 1;
            } else {
                *b = Balance { user_id: m.user_id, balance: b.balance + m.amount, movements: b.movements + 1 };
            }
        }
        let base = DriverConfig { commit_every: 11, ..Default::default() };
        let straight = run(base.clone());
        assert_eq!(straight.0, expected.into_iter().filter(|(_, b)| b.movements > 0).collect::<Vec<_>>());
        assert!(rejected > 0);
        assert_eq!(straight.1, vec!["insufficient_funds".to_string(); rejected]);
        for kind in Crash::ALL {
            let crashed = run(DriverConfig { crashes: vec![(30, kind), (120, kind)], ..base.clone() });
            assert_eq!((crashed.0, crashed.1, crashed.2), (straight.0.clone(), straight.1.clone(), 2), "{kind:?}");
        }
    }
}
