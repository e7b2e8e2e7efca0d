//! Accounts (keyed by account): the `accounts` topic kept as a table in the accounts
//! sub-topology (co-partitioned with `transactions`), and what an account's record does to the
//! money that already reached it. See docs/money-rules.md, "Accounts".
//!
//! The record is the authority on who owns an account and which currency it is kept in. Money
//! is never held back waiting for it: a leg for an account not yet known is applied at once
//! (in the currency of the account's first leg, owned by whoever its own transactions name, or
//! nobody while it has only been credited). When the record arrives, the balance is attributed:
//! `user_id` and `currency` become the record's (the balance converted once when the currency
//! differs), a `BalanceUpdated` says so, and the transfers into the account that were held for
//! want of an owner are released to the owner's cash flow and goals ([`crate::transfers_in`]).

use std::sync::Arc;

use rust_decimal::Decimal;
use schemas::{AccountEvent, AccountEventType, AccountType, TransactionEvent};
use serde::{Deserialize, Serialize};
use streams::{JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record, StringSerde};

use crate::balances::BalanceState;
use crate::budgets::KEY_MISMATCH;
use crate::fx;
use crate::topology::{nodes, stores, Shared};
use crate::transfers_in::HeldTransfers;

/// Typed handle of the `accounts` store: account_id → owner and currency (the `accounts` topic as a table).
pub const ACCOUNTS_STORE: KvStoreDef<String, AccountRecord> =
    KvStoreDef::new(stores::ACCOUNTS, &StringSerde, &JsonSerde::new());

/// Dead-letter reason for an account event that would change a known account's owner or
/// currency (a new account id is the way to do either).
pub const INVALID_ACCOUNT_UPDATE: &str = "invalid_account_update";

/// Event counted on `finstream_processor_events_total{processor,event}` when a leg is applied to
/// a closed account (applied all the same: money is never dropped).
pub const LEG_ON_CLOSED_ACCOUNT: &str = "leg_on_closed_account";
/// Event counted when a transaction's `user_id` is not the owner its account's record names
/// (the record wins).
pub const OWNER_MISMATCH: &str = "owner_mismatch";
/// Event counted when an account event older than the record's last one arrives (a late
/// redelivery of ACCOUNT_OPENED must not reopen a closed account): ignored.
pub const STALE_ACCOUNT_EVENT: &str = "stale_account_event";

/// Value of the `accounts` store (key: account_id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub account_id: String,
    /// The owner.
    pub user_id: String,
    pub currency: String,
    pub account_type: AccountType,
    pub display_name: Option<String>,
    /// ACCOUNT_CLOSED seen (and no ACCOUNT_OPENED after it).
    pub closed: bool,
    /// `occurred_at` of the first account event of this account.
    pub opened_at: i64,
    /// `occurred_at` of the ACCOUNT_CLOSED, while closed.
    pub closed_at: Option<i64>,
    /// `occurred_at` of the last account event applied.
    pub updated_at: i64,
    pub last_event_id: String,
}

/// The record of `account_id`, if its account event has been processed.
pub fn record(ctx: &mut ProcessorContext<'_>, account_id: &str) -> Result<Option<AccountRecord>, ProcessError> {
    Ok(ctx.store(&ACCOUNTS_STORE)?.get(&account_id.to_string())?)
}

/// Fills the `accounts` table and attributes balances (see the module docs).
pub struct AccountsProcessor {
    shared: Arc<Shared>,
    held: HeldTransfers,
}

impl AccountsProcessor {
    pub fn new(shared: Arc<Shared>) -> Self {
        let held = HeldTransfers::new(&shared);
        AccountsProcessor { shared, held }
    }

    /// The account's balance as the record says it is: owned by the record's user and kept in
    /// its currency. `None` when nothing changes. Fails (before anything is written) when the
    /// conversion needs a rate that is missing.
    fn attribute(
        &self,
        ctx: &ProcessorContext<'_>,
        balance: &BalanceState,
        ev: &AccountEvent,
    ) -> Result<Option<BalanceState>, ProcessError> {
        if balance.user_id == ev.user_id && balance.currency == ev.currency {
            return Ok(None);
        }
        let mut b = balance.clone();
        if b.currency != ev.currency {
            let magnitude = fx::convert(&self.shared.tables, ctx, b.balance.abs(), &b.currency, &ev.currency)?;
            b.balance = if b.balance.is_sign_negative() { -magnitude } else { magnitude };
            tracing::debug!(account = %b.account_id, from = %balance.currency, to = %ev.currency, "balance converted into the account's currency");
            b.currency = ev.currency.clone();
        }
        b.user_id = ev.user_id.clone();
        Ok(Some(b))
    }
}

impl Processor<String, AccountEvent> for AccountsProcessor {
    fn process(
        &mut self,
        record: Record<String, AccountEvent>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let ev = &record.value;
        if ev.account_id != record.key {
            return Err(ProcessError::data(
                KEY_MISMATCH,
                format!("account event {} keyed {:?}, account {:?}", ev.event_id, record.key, ev.account_id),
            ));
        }
        let at = ev.occurred_at.0;
        let known = self::record(ctx, &ev.account_id)?;
        if let Some(k) = &known {
            if k.user_id != ev.user_id || k.currency != ev.currency {
                return Err(ProcessError::data(
                    INVALID_ACCOUNT_UPDATE,
                    format!(
                        "account {} is {}'s in {}; event {} says {}'s in {}",
                        ev.account_id, k.user_id, k.currency, ev.event_id, ev.user_id, ev.currency
                    ),
                ));
            }
            if at < k.updated_at {
                ctx.count_event(STALE_ACCOUNT_EVENT);
                tracing::debug!(account = %ev.account_id, event_id = %ev.event_id, "account event older than the record's last one ignored");
                return Ok(());
            }
        }
        // Everything fallible about the record comes before any write.
        let balance = ctx.store(&crate::balances::BALANCES_STORE)?.get(&ev.account_id)?;
        let attributed = match &balance {
            Some(b) => self.attribute(ctx, b, ev)?,
            None => None,
        };
        let closing = ev.event_type == AccountEventType::AccountClosed;
        let rec = AccountRecord {
            account_id: ev.account_id.clone(),
            user_id: ev.user_id.clone(),
            currency: ev.currency.clone(),
            account_type: ev.account_type,
            display_name: ev.display_name.clone(),
            closed: closing,
            opened_at: known.as_ref().map_or(at, |k| k.opened_at),
            closed_at: closing.then_some(at),
            updated_at: at,
            last_event_id: ev.event_id.clone(),
        };
        ctx.store(&ACCOUNTS_STORE)?.put(&ev.account_id, &rec)?;
        match (balance, attributed) {
            // A new account: an empty balance the owner can read before its first leg.
            (None, _) => {
                let empty = BalanceState {
                    account_id: ev.account_id.clone(),
                    user_id: ev.user_id.clone(),
                    currency: ev.currency.clone(),
                    balance: Decimal::ZERO,
                    applied_count: 0,
                    last_transaction_id: String::new(),
                    updated_at: at,
                };
                ctx.store(&crate::balances::BALANCES_STORE)?.put(&ev.account_id, &empty)?;
            }
            // Legs came first: the derived record now says who owns the money, in which currency.
            (Some(_), Some(b)) => {
                ctx.store(&crate::balances::BALANCES_STORE)?.put(&ev.account_id, &b)?;
                ctx.forward_to(nodes::BALANCES_SINK, Record::new(ev.account_id.clone(), b.to_event(), at))?;
            }
            (Some(_), None) => {}
        }
        self.held.release(ctx, &ev.account_id, &ev.user_id)
    }
}

/// What a leg on `account_id` learns from the account's record: the owner and currency a new
/// balance starts with, and whether the leg's own `user_id` may name the owner (only while no
/// record is known). Counts legs on closed accounts and owner mismatches.
pub fn owner_for_leg(
    ctx: &mut ProcessorContext<'_>,
    account_id: &str,
    tx: &TransactionEvent,
    debit: bool,
) -> Result<Option<AccountRecord>, ProcessError> {
    let rec = record(ctx, account_id)?;
    if let Some(r) = &rec {
        if r.closed {
            ctx.count_event(LEG_ON_CLOSED_ACCOUNT);
        }
        if debit && tx.user_id != r.user_id {
            ctx.count_event(OWNER_MISMATCH);
        }
    }
    Ok(rec)
}
