//! Amounts for humans: rounded half-even to the currency's minor units, thousands separated,
//! followed by the code: `1,234.50 USD`, `1,235 JPY`, `1.235 KWD`.

use rust_decimal::Decimal;
use schemas::currency::minor_units;

use crate::fx::round_minor;

/// Formats `amount` in `currency` (unknown codes keep 2 places).
pub fn format_money(amount: Decimal, currency: &str) -> String {
    let dp = minor_units(currency).unwrap_or(2);
    let rounded = round_minor(amount, currency);
    let mut rounded = rounded.round_dp(dp);
    rounded.rescale(dp);
    let text = rounded.abs().to_string();
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f} {currency}"),
        None => format!("{sign}{grouped} {currency}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn formats() {
        let f = |s: &str, c: &str| format_money(Decimal::from_str(s).unwrap(), c);
        assert_eq!(f("1234.5", "USD"), "1,234.50 USD");
        assert_eq!(f("1234.5", "JPY"), "1,234 JPY");
        assert_eq!(f("1235", "JPY"), "1,235 JPY");
        assert_eq!(f("1.2345", "KWD"), "1.234 KWD");
        assert_eq!(f("1.2355", "KWD"), "1.236 KWD");
        assert_eq!(f("0", "USD"), "0.00 USD");
        assert_eq!(f("-1234567.891", "EUR"), "-1,234,567.89 EUR");
        assert_eq!(f("999", "USD"), "999.00 USD");
        assert_eq!(f("100000", "USD"), "100,000.00 USD");
    }
}
