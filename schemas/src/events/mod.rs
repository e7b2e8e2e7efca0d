//! Rust types of the contract's records, one per `.avsc` file, plus their enums and the
//! timestamp/date newtypes.
//!
//! Money is [`rust_decimal::Decimal`] (never a float), decoded at exactly the schema's scale.
//! All types derive serde so the engine can also keep them in JSON state stores; decimals are
//! serialized as strings there (the workspace enables `serde-with-str`) so no digit is lost.

mod derived;
mod enums;
mod inputs;
mod transaction;
mod validate;

pub use derived::{BalanceUpdated, BudgetAlert, FraudScore, GoalProgress, Notification, SpendingAggregate};
pub use enums::*;
pub use inputs::{AccountEvent, BudgetEvent, ExchangeRate, GoalEvent, UserProfile};
pub use transaction::{Location, Merchant, TransactionEvent};

use crate::codec::Datum;
use crate::contract::AvroField;

/// Avro `timestamp-millis`: milliseconds since the Unix epoch, UTC. A newtype rather than a chrono
/// type so the contract crate stays dependency-light and the value is exactly what is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TimestampMillis(pub i64);

impl AvroField for TimestampMillis {
    fn to_datum(&self) -> Datum {
        Datum::Long(self.0)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        i64::from_datum(d).map(TimestampMillis)
    }
}

/// Avro `date`: days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DateDays(pub i32);

impl AvroField for DateDays {
    fn to_datum(&self) -> Datum {
        Datum::Int(self.0)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        i32::from_datum(d).map(DateDays)
    }
}
