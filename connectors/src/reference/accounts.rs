//! Accounts in the reference model, from docs/money-rules.md ("Accounts") alone: the account's
//! record names its owner and currency; legs that arrive before it are applied at once and
//! attributed when it arrives; transfers into an account whose owner is not known yet wait
//! until it is, then count for the owner.

use super::*;

/// What the reference knows of an account from its record.
#[derive(Debug, Clone)]
pub(super) struct AccountRecord {
    pub user_id: String,
    pub currency: String,
}

impl Model {
    pub(super) fn account_event(&mut self, e: &AccountEvent) {
        let id = e.account_id.as_str();
        if let Some(r) = self.records.get(id) {
            if r.user_id != e.user_id || r.currency != e.currency {
                self.dead_letter("accounts", &e.event_id, "invalid_account_update");
                return;
            }
        }
        match self.out.accounts.get(id).cloned() {
            Some(mut acc) => {
                if acc.currency != e.currency {
                    let Some(v) = convert(acc.balance.abs(), &acc.currency, &e.currency, &self.rates) else {
                        self.dead_letter("accounts", &e.event_id, "missing_exchange_rate");
                        return;
                    };
                    acc.balance = if acc.balance.is_sign_negative() { -v } else { v };
                    acc.currency = e.currency.clone();
                }
                acc.user_id = e.user_id.clone();
                self.out.accounts.insert(id.to_string(), acc);
            }
            None => {
                let acc = AccountState {
                    account_id: id.to_string(),
                    user_id: e.user_id.clone(),
                    balance: Decimal::ZERO,
                    currency: e.currency.clone(),
                    applied_count: 0,
                    last_transaction_id: String::new(),
                    updated_at: e.occurred_at,
                };
                self.out.accounts.insert(id.to_string(), acc);
            }
        }
        let record = AccountRecord { user_id: e.user_id.clone(), currency: e.currency.clone() };
        self.records.insert(id.to_string(), record);
        self.owner_known(id, &e.user_id);
    }

    /// The owner of `account`: its record's user, else the user its own applied legs named.
    pub(super) fn owner_of(&self, account: &str) -> Option<String> {
        if let Some(r) = self.records.get(account) {
            return Some(r.user_id.clone());
        }
        self.out.accounts.get(account).map(|a| a.user_id.clone()).filter(|u| !u.is_empty())
    }

    /// A COMPLETED TRANSFER's credit: to the receiving account's owner now, or once known. A
    /// transfer waiting for its owner is kept once, however often it was delivered.
    pub(super) fn route_transfer_in(&mut self, t: &TransactionEvent) {
        let Some(cp) = t.counterparty_account_id.as_deref().filter(|c| !c.trim().is_empty()) else { return };
        match self.owner_of(cp) {
            Some(owner) => self.transfer_in(&owner, t),
            None => {
                let held = self.held_in.entry(cp.to_string()).or_default();
                held.insert((t.occurred_at.0, t.transaction_id.clone()), t.clone());
            }
        }
    }

    /// `owner` is now known for `account`: the transfers waiting for it count, oldest first.
    pub(super) fn owner_known(&mut self, account: &str, owner: &str) {
        for (_, t) in self.held_in.remove(account).unwrap_or_default() {
            self.transfer_in(owner, &t);
        }
    }

    fn transfer_in(&mut self, owner: &str, t: &TransactionEvent) {
        self.goal_transfer_in(owner, t);
        self.analytics.transfer_in(owner, t, &self.rates);
    }
}
