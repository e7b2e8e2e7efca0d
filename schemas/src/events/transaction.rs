//! `TransactionEvent` (topic `transactions`, key account_id) and its nested records.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use streams::serde::SerdeError;

use super::validate;
use super::{Category, Channel, TimestampMillis, TransactionKind, TransactionStatus};
use crate::reason;

/// A money movement on one account. `amount` is a positive magnitude; `kind` gives the sign; only
/// `status == Completed` moves money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionEvent {
    pub transaction_id: String,
    pub account_id: String,
    pub user_id: String,
    pub kind: TransactionKind,
    pub amount: Decimal,
    pub currency: String,
    pub status: TransactionStatus,
    pub category: Category,
    /// Required for TRANSFER: the money leaves `account_id` and arrives here.
    pub counterparty_account_id: Option<String>,
    pub merchant: Option<Merchant>,
    pub goal_id: Option<String>,
    pub channel: Channel,
    pub location: Option<Location>,
    pub occurred_at: TimestampMillis,
}

/// Where a card or online payment went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub merchant_id: String,
    pub name: String,
    /// ISO 18245 merchant category code, kept as a string for its leading zeros.
    pub mcc: String,
}

/// Where a transaction happened. Coordinates are not money, so doubles are fine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
}

crate::avro_record!(Merchant { merchant_id, name, mcc });
crate::avro_record!(Location { country, city, lat, lon });
crate::avro_record!(top TransactionEvent {
    transaction_id, account_id, user_id, kind, amount, currency, status, category,
    counterparty_account_id, merchant, goal_id, channel, location, occurred_at,
});

impl TransactionEvent {
    /// The amount with the sign `kind` gives it for `account_id`: money in is positive.
    pub fn signed_amount(&self) -> Decimal {
        match self.kind {
            TransactionKind::Deposit | TransactionKind::Refund | TransactionKind::Interest => self.amount,
            _ => -self.amount,
        }
    }

    /// Domain checks for a decoded input event (see `AvroRecord::validate`): ids present, amount
    /// positive (`negative_amount` when below zero, `invalid_field` when zero or finer than the
    /// currency's minor unit), currency known (`unknown_currency`), kind known, a TRANSFER names a
    /// counterparty other than itself (`transfer_without_counterparty`), location plausible.
    fn check(&self) -> Result<(), SerdeError> {
        const R: &str = "TransactionEvent";
        validate::non_empty(R, "transaction_id", &self.transaction_id)?;
        validate::non_empty(R, "account_id", &self.account_id)?;
        validate::non_empty(R, "user_id", &self.user_id)?;
        let minor = validate::currency(R, "currency", &self.currency)?;
        validate::amount(R, "amount", self.amount, minor, false)?;
        validate::known(R, "kind", self.kind, TransactionKind::Unknown)?;
        if self.kind == TransactionKind::Transfer {
            match self.counterparty_account_id.as_deref().map(str::trim) {
                None | Some("") => {
                    return Err(SerdeError::new(
                        reason::TRANSFER_WITHOUT_COUNTERPARTY,
                        format!("TRANSFER {} has no counterparty_account_id", self.transaction_id),
                    ))
                }
                Some(c) if c == self.account_id => {
                    return Err(SerdeError::new(
                        reason::INVALID_FIELD,
                        format!("TRANSFER {} has itself as counterparty", self.transaction_id),
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(loc) = &self.location {
            let country_ok = loc.country.len() == 2 && loc.country.bytes().all(|b| b.is_ascii_uppercase());
            let coords_ok = (-90.0..=90.0).contains(&loc.lat) && (-180.0..=180.0).contains(&loc.lon);
            if !country_ok || !coords_ok {
                return Err(SerdeError::new(reason::INVALID_FIELD, format!("TransactionEvent.location: {loc:?}")));
            }
        }
        Ok(())
    }
}
