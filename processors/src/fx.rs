//! Currency conversion (docs/money-rules.md, "Currency"): `amount × usd_rate(from) / usd_rate(to)`
//! with the latest known rates, rounded half-even to the target currency's ISO 4217 minor units;
//! the same currency is taken unchanged. A missing rate is the record's fault:
//! `ProcessError::Data` with reason `missing_exchange_rate`.

use rust_decimal::{Decimal, RoundingStrategy};
use schemas::currency::minor_units;
use streams::{ProcessError, ProcessorContext};

use crate::tables::GlobalTables;

/// Dead-letter reason when a needed rate is unknown.
pub const MISSING_EXCHANGE_RATE: &str = "missing_exchange_rate";
/// Dead-letter reason when a conversion overflows `Decimal`.
pub const CONVERSION_OVERFLOW: &str = "conversion_overflow";

/// Rounds half-even to the currency's minor units (unknown codes: 4 places, the contract scale).
pub fn round_minor(amount: Decimal, currency: &str) -> Decimal {
    amount.round_dp_with_strategy(minor_units(currency).unwrap_or(4), RoundingStrategy::MidpointNearestEven)
}

/// Pure conversion given a rate lookup (`usd_rate(code)`).
pub fn convert_with(
    amount: Decimal,
    from: &str,
    to: &str,
    usd_rate: impl Fn(&str) -> Result<Option<Decimal>, ProcessError>,
) -> Result<Decimal, ProcessError> {
    if from == to {
        return Ok(amount);
    }
    let missing =
        |c: &str| ProcessError::data(MISSING_EXCHANGE_RATE, format!("no exchange rate for {c} ({from} -> {to})"));
    let rf = usd_rate(from)?.ok_or_else(|| missing(from))?;
    let rt = usd_rate(to)?.ok_or_else(|| missing(to))?;
    let converted = amount
        .checked_mul(rf)
        .and_then(|usd| usd.checked_div(rt))
        .ok_or_else(|| ProcessError::data(CONVERSION_OVERFLOW, format!("{amount} {from} -> {to} overflows")))?;
    Ok(round_minor(converted, to))
}

/// Converts with the `exchange-rates` global table.
pub fn convert(
    tables: &GlobalTables,
    ctx: &ProcessorContext<'_>,
    amount: Decimal,
    from: &str,
    to: &str,
) -> Result<Decimal, ProcessError> {
    convert_with(amount, from, to, |c| tables.usd_rate(ctx, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rates(c: &str) -> Result<Option<Decimal>, ProcessError> {
        Ok(match c {
            "USD" => Some(Decimal::ONE),
            "JPY" => Some(d("0.0066666667")),
            "KWD" => Some(d("3.2512")),
            "EUR" => Some(d("1.085")),
            _ => None,
        })
    }

    #[test]
    fn rounding_half_even_to_minor_units() {
        // 10.00 USD -> 1499.99999250 JPY -> 1500 (0 minor units)
        assert_eq!(convert_with(d("10.00"), "USD", "JPY", rates).unwrap(), d("1500"));
        // 1 KWD = 3.2512 USD: 10.00 USD = 3.07578740... KWD -> 3.076
        assert_eq!(convert_with(d("10.00"), "USD", "KWD", rates).unwrap(), d("3.076"));
        // half-even ties: 0.125 -> 0.12, 0.135 -> 0.14
        assert_eq!(round_minor(d("0.125"), "USD"), d("0.12"));
        assert_eq!(round_minor(d("0.135"), "USD"), d("0.14"));
        assert_eq!(round_minor(d("2.5"), "JPY"), d("2"));
        assert_eq!(round_minor(d("3.5"), "JPY"), d("4"));
        assert_eq!(round_minor(d("1.0005"), "KWD"), d("1.000"));
    }

    #[test]
    fn same_currency_is_exact_and_missing_rate_is_data_error() {
        assert_eq!(convert_with(d("1.005"), "KWD", "KWD", rates).unwrap(), d("1.005"));
        let err = convert_with(d("1"), "GBP", "USD", rates).unwrap_err();
        assert_eq!(err.class(), MISSING_EXCHANGE_RATE);
        let err = convert_with(d("1"), "USD", "GBP", rates).unwrap_err();
        assert_eq!(err.class(), MISSING_EXCHANGE_RATE);
    }
}
