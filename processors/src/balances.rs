//! Balances (keyed by account): a running balance per account from every COMPLETED leg, a
//! `BalanceUpdated` per applied leg, LOW_BALANCE when crossing below the threshold, and a bounded
//! lineage of applied legs. Two processors share the stores: `balances` applies the leg on
//! `account_id` (read from `transactions`), `balance-credits` the credit leg of a TRANSFER (read
//! from the `transfer-credits` repartition topic, keyed by the counterparty account).
//!
//! Owner and currency come from the account's record (`accounts` table, [`crate::accounts`])
//! when it is known; otherwise a new balance takes the currency of its first leg and the owner
//! its own transactions name, until the record attributes it.

use std::sync::Arc;

use rust_decimal::Decimal;
use schemas::{BalanceUpdated, Notification, TimestampMillis, TransactionEvent};
use serde::{Deserialize, Serialize};
use streams::store::query::{Owner, QuerySpec};
use streams::{JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record, StringSerde};

use crate::dedupe::{leg_key, Dedupe, Lane};
use crate::legs::{credit_leg, debit_leg, Leg};
use crate::topology::{nodes, stores, Shared};
use crate::transfers_in::HeldTransfers;
use crate::{accounts, fx, notifications};

/// Typed handle of the `balances` store: account_id → the account's balance.
///
/// Queryable on `/v1/stores/balances` by the balance's owner (nobody but administrators while
/// the owner is unknown, as on `/v1/accounts/{id}/balance`).
pub const BALANCES_STORE: KvStoreDef<String, BalanceState> =
    KvStoreDef::new(stores::BALANCES, &StringSerde, &JsonSerde::new())
        .queryable(QuerySpec::string_keys().owned_by(Owner::Value(balance_owner)));

fn balance_owner(b: &BalanceState) -> Option<&str> {
    Some(b.user_id.as_str()).filter(|u| !u.is_empty())
}

/// Typed handle of the `balance-lineage` store: [`lineage_key`] → one applied leg.
pub const LINEAGE_STORE: KvStoreDef<String, LineageEntry> =
    KvStoreDef::new(stores::BALANCE_LINEAGE, &StringSerde, &JsonSerde::new());

/// Value of the `balances` store (key: account_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceState {
    pub account_id: String,
    /// Owner: the account's record's, else the user of the last applied transaction whose
    /// `account_id` is this account; `""` while unknown (an account only ever credited).
    pub user_id: String,
    /// The account's record's currency, else the currency of the first applied leg.
    pub currency: String,
    pub balance: Decimal,
    /// Legs applied to this account.
    pub applied_count: i64,
    pub last_transaction_id: String,
    /// `occurred_at` of the last applied leg (epoch millis).
    pub updated_at: i64,
}

/// One applied leg in the `balance-lineage` store, under [`lineage_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageEntry {
    pub transaction_id: String,
    pub leg: Leg,
    /// Signed amount in the account's currency (after conversion).
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub occurred_at: i64,
}

/// Digits of the sequence number in a lineage key.
const LINEAGE_SEQ_DIGITS: usize = 20;

/// `account_id|<applied_count, 20 digits>`: one entry per applied leg, so an update writes one
/// small record (and its changelog record) instead of rewriting the account's whole lineage;
/// the entry `lineage_len` legs older is deleted in the same step.
pub fn lineage_key(account_id: &str, seq: i64) -> String {
    format!("{account_id}|{seq:0width$}", width = LINEAGE_SEQ_DIGITS)
}

/// The key range holding an account's lineage: `[from, to)`.
pub fn lineage_range(account_id: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let from = format!("{account_id}|").into_bytes();
    let to = streams::store::prefix_end(&from);
    (from, to)
}

/// The sequence number of `key` if it is a lineage key of `account_id` (and not of an account
/// whose id merely starts with `account_id|`).
pub fn lineage_seq(account_id: &str, key: &[u8]) -> Option<i64> {
    let rest = key.strip_prefix(account_id.as_bytes())?.strip_prefix(b"|")?;
    if rest.len() != LINEAGE_SEQ_DIGITS || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

impl BalanceState {
    pub fn to_event(&self) -> BalanceUpdated {
        BalanceUpdated {
            account_id: self.account_id.clone(),
            user_id: self.user_id.clone(),
            balance: self.balance,
            currency: self.currency.clone(),
            last_transaction_id: self.last_transaction_id.clone(),
            applied_count: self.applied_count,
            updated_at: TimestampMillis(self.updated_at),
        }
    }
}

/// Applies one kind of leg (`Debit`: the leg on `account_id`; `Credit`: a transfer's credit leg).
pub struct BalancesProcessor {
    shared: Arc<Shared>,
    leg: Leg,
    dedupe: Dedupe,
    held: HeldTransfers,
}

impl BalancesProcessor {
    pub fn new(shared: Arc<Shared>, leg: Leg) -> Self {
        let lane = match leg {
            Leg::Debit => Lane::Transactions,
            Leg::Credit => Lane::TransferCredits,
        };
        let dedupe = shared.dedupe(stores::BALANCES_DEDUPE, lane);
        let held = HeldTransfers::new(&shared);
        BalancesProcessor { shared, leg, dedupe, held }
    }
}

impl Processor<String, TransactionEvent> for BalancesProcessor {
    fn process(
        &mut self,
        record: Record<String, TransactionEvent>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let tx = &record.value;
        let mv = match self.leg {
            Leg::Debit => debit_leg(tx),
            Leg::Credit => credit_leg(tx),
        };
        let Some(mv) = mv else { return Ok(()) };
        let key = leg_key(&mv.account_id, &tx.transaction_id, mv.leg);
        if self.dedupe.seen(ctx, &key)? {
            return Ok(());
        }
        let at = tx.occurred_at.0;
        let record = accounts::owner_for_leg(ctx, &mv.account_id, tx, mv.leg == Leg::Debit)?;
        let mut state = ctx.store(&BALANCES_STORE)?.get(&mv.account_id)?.unwrap_or_else(|| BalanceState {
            account_id: mv.account_id.clone(),
            user_id: record.as_ref().map(|r| r.user_id.clone()).unwrap_or_default(),
            currency: record.as_ref().map_or_else(|| tx.currency.clone(), |r| r.currency.clone()),
            balance: Decimal::ZERO,
            applied_count: 0,
            last_transaction_id: String::new(),
            updated_at: at,
        });
        let owner_before = state.user_id.clone();
        // Everything fallible about the record comes before any write.
        let magnitude = fx::convert(&self.shared.tables, ctx, mv.signed_amount.abs(), &tx.currency, &state.currency)?;
        let amount = if mv.signed_amount.is_sign_negative() { -magnitude } else { magnitude };
        let before = state.balance;
        let after = before.checked_add(amount).ok_or_else(|| {
            ProcessError::data(fx::CONVERSION_OVERFLOW, format!("balance of {} overflows", mv.account_id))
        })?;
        // Without a record, the account's own transactions say who owns it.
        if mv.leg == Leg::Debit && record.is_none() {
            state.user_id = tx.user_id.clone();
        }
        state.balance = after;
        state.applied_count += 1;
        state.last_transaction_id = tx.transaction_id.clone();
        state.updated_at = at;

        let threshold = self.shared.config.low_balance_threshold;
        ctx.forward_to(nodes::BALANCES_SINK, Record::new(mv.account_id.clone(), state.to_event(), at))?;
        if before >= threshold && after < threshold {
            let n = notifications::low_balance(
                &state.user_id,
                &mv.account_id,
                &tx.transaction_id,
                mv.leg,
                after,
                threshold,
                &state.currency,
                at,
            );
            ctx.forward_to::<String, Notification>(
                nodes::BALANCE_NOTIFICATIONS_SINK,
                Record::new(state.user_id.clone(), n, at),
            )?;
        }

        let mut lineage = ctx.store(&LINEAGE_STORE)?;
        let entry = LineageEntry {
            transaction_id: tx.transaction_id.clone(),
            leg: mv.leg,
            amount,
            balance_after: after,
            occurred_at: at,
        };
        lineage.put(&lineage_key(&mv.account_id, state.applied_count), &entry)?;
        let kept = i64::try_from(self.shared.config.lineage_len).unwrap_or(i64::MAX);
        if state.applied_count > kept {
            lineage.delete(&lineage_key(&mv.account_id, state.applied_count - kept))?;
        }
        ctx.store(&BALANCES_STORE)?.put(&mv.account_id, &state)?;
        if owner_before.is_empty() && !state.user_id.is_empty() {
            // The owner is known now: transfers into the account held for want of one go to them.
            self.held.release(ctx, &mv.account_id, &state.user_id)?;
        }
        self.dedupe.remember(ctx, &key, at)
    }
}

#[cfg(test)]
mod lineage_key_tests {
    use super::*;

    #[test]
    fn keys_order_by_sequence_and_stay_within_their_account() {
        assert!(lineage_key("a", 9) < lineage_key("a", 10));
        assert_eq!(lineage_seq("a", lineage_key("a", 42).as_bytes()), Some(42));
        // `a|b` is another account whose keys share the prefix `a|`.
        let other = lineage_key("a|b", 7);
        let (from, to) = lineage_range("a");
        assert!(other.as_bytes() >= from.as_slice() && other.as_bytes() < to.unwrap().as_slice());
        assert_eq!(lineage_seq("a", other.as_bytes()), None);
        assert_eq!(lineage_seq("a|b", other.as_bytes()), Some(7));
    }
}
