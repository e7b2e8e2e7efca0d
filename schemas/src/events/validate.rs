//! Checks shared by the input events' `validate()`.

use rust_decimal::Decimal;
use streams::serde::SerdeError;

use crate::{currency, reason};

/// A required identifier must not be empty.
pub(crate) fn non_empty(record: &str, field: &str, value: &str) -> Result<(), SerdeError> {
    if value.trim().is_empty() {
        return Err(SerdeError::new(reason::INVALID_FIELD, format!("{record}.{field} is empty")));
    }
    Ok(())
}

/// A known ISO 4217 code; returns its minor units.
pub(crate) fn currency(record: &str, field: &str, code: &str) -> Result<u32, SerdeError> {
    currency::minor_units(code).ok_or_else(|| {
        SerdeError::new(reason::UNKNOWN_CURRENCY, format!("{record}.{field}: {code:?} is not an ISO 4217 code"))
    })
}

/// A money amount: not negative, not zero unless `allow_zero`, and with no more fractional
/// digits than the currency has (no fractions of a yen).
pub(crate) fn amount(
    record: &str,
    field: &str,
    value: Decimal,
    minor_units: u32,
    allow_zero: bool,
) -> Result<(), SerdeError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(SerdeError::new(reason::NEGATIVE_AMOUNT, format!("{record}.{field} is negative: {value}")));
    }
    if value.is_zero() && !allow_zero {
        return Err(SerdeError::new(reason::INVALID_FIELD, format!("{record}.{field} is zero")));
    }
    if value.normalize().scale() > minor_units {
        return Err(SerdeError::new(
            reason::INVALID_FIELD,
            format!("{record}.{field}: {value} has more than the currency's {minor_units} decimal places"),
        ));
    }
    Ok(())
}

/// An enum field read as `Unknown` (a symbol newer than this reader) cannot be acted on.
pub(crate) fn known<E: PartialEq + std::fmt::Display>(
    record: &str,
    field: &str,
    value: E,
    unknown: E,
) -> Result<(), SerdeError> {
    if value == unknown {
        return Err(SerdeError::new(reason::INVALID_FIELD, format!("{record}.{field} is {value}")));
    }
    Ok(())
}
