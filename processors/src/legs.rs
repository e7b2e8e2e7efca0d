//! Which legs a transaction has and their signs (docs/money-rules.md, "Legs, signs, status").

use rust_decimal::Decimal;
use schemas::{TransactionEvent, TransactionKind, TransactionStatus};
use serde::{Deserialize, Serialize};

/// Side of a transaction on one account. Non-transfer kinds have only a `Debit` leg (the leg on
/// `account_id`, whatever its sign); a TRANSFER also has a `Credit` leg on the counterparty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    Debit,
    Credit,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Debit => "debit",
            Leg::Credit => "credit",
        }
    }
}

/// One money movement on one account, in the transaction's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegMove {
    pub account_id: String,
    pub leg: Leg,
    /// Positive: money in.
    pub signed_amount: Decimal,
}

/// Only COMPLETED transactions move money.
pub fn moves_money(tx: &TransactionEvent) -> bool {
    tx.status == TransactionStatus::Completed
}

/// +1 for DEPOSIT, REFUND, INTEREST; -1 for WITHDRAWAL, PAYMENT, FEE, TRANSFER (on `account_id`);
/// `None` for an unknown kind.
pub fn own_sign(kind: TransactionKind) -> Option<Decimal> {
    match kind {
        TransactionKind::Deposit | TransactionKind::Refund | TransactionKind::Interest => Some(Decimal::ONE),
        TransactionKind::Withdrawal | TransactionKind::Payment | TransactionKind::Fee | TransactionKind::Transfer => {
            Some(Decimal::NEGATIVE_ONE)
        }
        TransactionKind::Unknown => None,
    }
}

/// The leg on `account_id` of a COMPLETED transaction.
pub fn debit_leg(tx: &TransactionEvent) -> Option<LegMove> {
    if !moves_money(tx) {
        return None;
    }
    let sign = own_sign(tx.kind)?;
    Some(LegMove { account_id: tx.account_id.clone(), leg: Leg::Debit, signed_amount: sign * tx.amount })
}

/// The credit leg on the counterparty of a COMPLETED TRANSFER.
pub fn credit_leg(tx: &TransactionEvent) -> Option<LegMove> {
    if !moves_money(tx) || tx.kind != TransactionKind::Transfer {
        return None;
    }
    let cp = tx.counterparty_account_id.as_deref().filter(|c| !c.trim().is_empty())?;
    Some(LegMove { account_id: cp.to_string(), leg: Leg::Credit, signed_amount: tx.amount })
}

/// Budget spending change of a COMPLETED transaction, in its currency: `+amount` for PAYMENT,
/// WITHDRAWAL, FEE, `-amount` for REFUND, `None` for kinds that are not spending.
pub fn spending_delta(tx: &TransactionEvent) -> Option<Decimal> {
    if !moves_money(tx) {
        return None;
    }
    match tx.kind {
        TransactionKind::Payment | TransactionKind::Withdrawal | TransactionKind::Fee => Some(tx.amount),
        TransactionKind::Refund => Some(-tx.amount),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Category, Channel, TimestampMillis};

    fn tx(kind: TransactionKind, status: TransactionStatus) -> TransactionEvent {
        TransactionEvent {
            transaction_id: "t".into(),
            account_id: "a".into(),
            user_id: "u".into(),
            kind,
            amount: Decimal::new(1050, 2),
            currency: "USD".into(),
            status,
            category: Category::Other,
            counterparty_account_id: Some("b".into()),
            merchant: None,
            goal_id: None,
            channel: Channel::Online,
            location: None,
            occurred_at: TimestampMillis(0),
        }
    }

    #[test]
    fn signs_by_kind() {
        use TransactionKind::*;
        let amt = Decimal::new(1050, 2);
        for (k, s) in
            [(Deposit, 1), (Refund, 1), (Interest, 1), (Withdrawal, -1), (Payment, -1), (Fee, -1), (Transfer, -1)]
        {
            let leg = debit_leg(&tx(k, TransactionStatus::Completed)).unwrap();
            assert_eq!(leg.signed_amount, amt * Decimal::from(s), "{k:?}");
            assert_eq!(leg.leg, Leg::Debit);
        }
        assert!(debit_leg(&tx(Unknown, TransactionStatus::Completed)).is_none());
        let credit = credit_leg(&tx(Transfer, TransactionStatus::Completed)).unwrap();
        assert_eq!((credit.account_id.as_str(), credit.signed_amount), ("b", amt));
        assert!(credit_leg(&tx(Deposit, TransactionStatus::Completed)).is_none());
    }

    #[test]
    fn only_completed_moves_money() {
        for s in [TransactionStatus::Pending, TransactionStatus::Failed, TransactionStatus::Unknown] {
            assert!(debit_leg(&tx(TransactionKind::Deposit, s)).is_none());
            assert!(credit_leg(&tx(TransactionKind::Transfer, s)).is_none());
            assert!(spending_delta(&tx(TransactionKind::Payment, s)).is_none());
        }
    }

    #[test]
    fn spending_kinds() {
        use TransactionKind::*;
        let c = TransactionStatus::Completed;
        assert_eq!(spending_delta(&tx(Payment, c)), Some(Decimal::new(1050, 2)));
        assert_eq!(spending_delta(&tx(Fee, c)), Some(Decimal::new(1050, 2)));
        assert_eq!(spending_delta(&tx(Withdrawal, c)), Some(Decimal::new(1050, 2)));
        assert_eq!(spending_delta(&tx(Refund, c)), Some(Decimal::new(-1050, 2)));
        assert_eq!(spending_delta(&tx(Transfer, c)), None);
        assert_eq!(spending_delta(&tx(Deposit, c)), None);
    }
}
