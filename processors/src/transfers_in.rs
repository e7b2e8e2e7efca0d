//! Transfers into an account, routed to the account's owner (docs/money-rules.md, "Accounts"
//! and "Spending analytics"): the credit leg of a COMPLETED TRANSFER goes, keyed by the owner of
//! the receiving account, to `<app>-transfers-in-by-user-repartition`, where the owner's cash
//! flow (transfers in) and account-linked goals count it.
//!
//! The owner is the account's record (`accounts` table) or, for an account without one, the
//! user its own transactions name (`balances`). A transfer into an account whose owner is not
//! known yet is held in `transfers-in-held` (key `account|<occurred_at>|transaction_id`) and
//! released, in event-time order, the moment the owner becomes known, by the account's record
//! ([`crate::accounts::AccountsProcessor`]) or its first applied leg of its own
//! ([`crate::balances::BalancesProcessor`]). So whether the account event came first does not
//! change where the money is counted, only when.
//!
//! Transfers to accounts at other banks never learn an owner here, so a held transfer expires
//! after `transfers_in_hold_ms` of event-time progress of the held transfers' own stream
//! ([`crate::expiry`]); an owner known later than that no longer sees it in cash flow or goals
//! (its balance has it all along).

use std::sync::Arc;

use schemas::TransactionEvent;
use streams::{ProcessError, Processor, ProcessorContext, Record};

use crate::accounts;
use crate::expiry::{Expiring, Lane};
use crate::legs::credit_leg;
use crate::topology::{nodes, stores, Shared};

/// Digits of the time field of a held key (`occurred_at - i64::MIN`, so key order is time order).
const TIME_DIGITS: usize = 20;

/// `account|<occurred_at>|transaction_id`.
pub fn held_key(account_id: &str, occurred_at: i64, transaction_id: &str) -> String {
    let shifted = (occurred_at as u64) ^ (1 << 63);
    format!("{account_id}|{shifted:0width$}|{transaction_id}", width = TIME_DIGITS)
}

/// The owner of `account_id` as known in this task: its record's user, else the user its own
/// applied legs named; `None` while neither is known.
pub fn owner_of(ctx: &mut ProcessorContext<'_>, account_id: &str) -> Result<Option<String>, ProcessError> {
    if let Some(r) = accounts::record(ctx, account_id)? {
        return Ok(Some(r.user_id));
    }
    let b = ctx.store(&crate::balances::BALANCES_STORE)?.get(&account_id.to_string())?;
    Ok(b.map(|b| b.user_id).filter(|u| !u.is_empty()))
}

/// The `transfers-in-held` store: transfers waiting for their account's owner.
#[derive(Debug, Clone)]
pub struct HeldTransfers {
    held: Expiring<TransactionEvent>,
}

impl HeldTransfers {
    pub fn new(shared: &Shared) -> Self {
        let cfg = &shared.config;
        let held = Expiring::new(
            stores::TRANSFERS_IN_HELD,
            Lane::TransferCredits,
            cfg.transfers_in_hold_ms,
            cfg.dedupe_purge_interval_ms,
        );
        HeldTransfers { held }
    }

    /// Holds `tx`, a transfer into `account_id`, until its owner is known. A duplicate delivery
    /// is held once.
    pub fn hold(
        &self,
        ctx: &mut ProcessorContext<'_>,
        account_id: &str,
        tx: TransactionEvent,
    ) -> Result<(), ProcessError> {
        let key = held_key(account_id, tx.occurred_at.0, &tx.transaction_id);
        tracing::debug!(account = %account_id, transaction_id = %tx.transaction_id, "transfer in held until the account's owner is known");
        let at = tx.occurred_at.0;
        self.held.put(ctx, &key, tx, at)
    }

    /// Sends the transfers held for `account_id` to `owner`, oldest first, and forgets them.
    pub fn release(&self, ctx: &mut ProcessorContext<'_>, account_id: &str, owner: &str) -> Result<(), ProcessError> {
        for (key, tx) in self.held.scan_prefix(ctx, &format!("{account_id}|"))? {
            // `a|…` also matches the keys of an account named `a|b`: only this account's are taken.
            if credit_leg(&tx).is_none_or(|l| l.account_id != account_id) {
                continue;
            }
            self.held.delete(ctx, &key)?;
            let at = tx.occurred_at.0;
            ctx.forward_to(nodes::TRANSFERS_IN_BY_USER_SINK, Record::new(owner.to_string(), tx, at))?;
        }
        Ok(())
    }
}

/// Routes a COMPLETED TRANSFER's credit leg to the owner of the receiving account, or holds it
/// until the owner is known.
pub struct TransferInOwner {
    held: HeldTransfers,
}

impl TransferInOwner {
    pub fn new(shared: Arc<Shared>) -> Self {
        TransferInOwner { held: HeldTransfers::new(&shared) }
    }
}

impl Processor<String, TransactionEvent> for TransferInOwner {
    fn process(
        &mut self,
        record: Record<String, TransactionEvent>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let Some(leg) = credit_leg(&record.value) else { return Ok(()) };
        match owner_of(ctx, &leg.account_id)? {
            Some(owner) => ctx.forward_to(nodes::TRANSFERS_IN_BY_USER_SINK, record.with_key(owner)),
            None => self.held.hold(ctx, &leg.account_id, record.value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_keys_order_by_time_within_an_account() {
        assert!(held_key("a", -5, "z") < held_key("a", 0, "a"));
        assert!(held_key("a", 0, "z") < held_key("a", 1_790_000_000_000, "a"));
        assert!(held_key("a", i64::MAX, "t").starts_with("a|"));
    }
}
