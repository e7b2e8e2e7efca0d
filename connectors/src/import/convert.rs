//! One line of an import → a contract `TransactionEvent`, or the reason it cannot be one.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use schemas::{
    reason, AvroRecord, Category, Channel, Merchant, TimestampMillis, TransactionEvent, TransactionKind,
    TransactionStatus,
};

use super::mapping::ImportMapping;
use crate::ConnectorError;

/// Why a line was not imported: a stable reason class (the contract's `schemas::reason` ones
/// where they apply) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

/// Reason of a line the file format itself could not read (bad CSV quoting, bad JSON, bad UTF-8).
pub const UNREADABLE: &str = "unreadable_line";
/// Reason of a required value with neither a cell nor a default.
pub const MISSING_VALUE: &str = "missing_value";

fn reject(reason: &str, message: impl Into<String>) -> Rejection {
    Rejection { reason: reason.to_string(), message: message.into() }
}

fn invalid(message: impl Into<String>) -> Rejection {
    reject(reason::INVALID_FIELD, message)
}

/// Turns lines into events under one mapping (checked once, up front).
pub struct Converter {
    mapping: ImportMapping,
    tz: Tz,
}

/// A line's cells by column name.
pub trait Cells {
    /// The trimmed cell of `column`; `None` when the line has no such column or it is empty.
    fn cell(&self, column: &str) -> Option<String>;
}

impl Converter {
    /// Fails on a mapping that could never import anything (unknown timezone, default symbols
    /// that are not the contract's).
    pub fn new(mapping: ImportMapping) -> Result<Self, ConnectorError> {
        let tz: Tz = mapping.timezone.parse().map_err(|_| {
            ConnectorError::Config(format!("import.timezone {:?} is not an IANA timezone", mapping.timezone))
        })?;
        let d = &mapping.defaults;
        let checks = [
            ("status", parse_status(&d.status).err()),
            ("category", parse_category(&d.category).err()),
            ("channel", parse_channel(&d.channel).err()),
            ("debit_kind", parse_kind(&d.debit_kind).err()),
            ("credit_kind", parse_kind(&d.credit_kind).err()),
        ];
        for (field, err) in checks {
            if let Some(e) = err {
                return Err(ConnectorError::Config(format!("import.defaults.{field}: {}", e.message)));
            }
        }
        if mapping.columns.amount.is_empty() && mapping.columns.debit.is_empty() && mapping.columns.credit.is_empty() {
            return Err(ConnectorError::Config("import.columns: map amount, or debit and credit".into()));
        }
        if mapping.columns.occurred_at.is_empty() {
            return Err(ConnectorError::Config("import.columns.occurred_at is required".into()));
        }
        Ok(Converter { mapping, tz })
    }

    pub fn mapping(&self) -> &ImportMapping {
        &self.mapping
    }

    /// The cell of `column`, else the default (`None` when both are empty).
    fn value(&self, cells: &dyn Cells, column: &str, default: &str) -> Option<String> {
        let cell = if column.is_empty() { None } else { cells.cell(column) };
        cell.or_else(|| (!default.is_empty()).then(|| default.to_string()))
    }

    fn required(&self, cells: &dyn Cells, field: &str, column: &str, default: &str) -> Result<String, Rejection> {
        self.value(cells, column, default).ok_or_else(|| {
            let from = if column.is_empty() {
                "no column mapped".to_string()
            } else {
                format!("column {column:?} empty or absent")
            };
            reject(MISSING_VALUE, format!("{field}: {from} and no default"))
        })
    }

    /// Converts one line and validates the result against the contract, exactly as finstream
    /// validates what it consumes. `identity` (the line's content, normalized) and `occurrence`
    /// (how many earlier lines of the file had the same identity) only feed a derived
    /// transaction id, see [`derived_transaction_id`].
    pub fn convert(&self, cells: &dyn Cells, identity: &str, occurrence: u32) -> Result<TransactionEvent, Rejection> {
        let c = &self.mapping.columns;
        let d = &self.mapping.defaults;
        let account_id = self.required(cells, "account_id", &c.account_id, &d.account_id)?;
        let user_id = self.required(cells, "user_id", &c.user_id, &d.user_id)?;
        let currency = self.required(cells, "currency", &c.currency, &d.currency)?.to_ascii_uppercase();
        let when = self.required(cells, "occurred_at", &c.occurred_at, "")?;
        let occurred_at = self.timestamp(&when)?;
        let (kind, amount) = self.kind_and_amount(cells)?;
        let status = parse_status(&self.required(cells, "status", &c.status, &d.status)?)?;
        let category = parse_category(&self.required(cells, "category", &c.category, &d.category)?)?;
        let channel = parse_channel(&self.required(cells, "channel", &c.channel, &d.channel)?)?;
        let transaction_id = match self.value(cells, &c.transaction_id, "") {
            Some(id) => id,
            None => derived_transaction_id(&self.mapping.id_prefix, &account_id, identity, occurrence),
        };
        let merchant = self.value(cells, &c.description, "").map(|name| Merchant {
            merchant_id: slug(&name),
            mcc: self.value(cells, &c.mcc, "").unwrap_or_default(),
            name,
        });
        let event = TransactionEvent {
            transaction_id,
            account_id,
            user_id,
            kind,
            amount,
            currency,
            status,
            category,
            counterparty_account_id: self.value(cells, &c.counterparty_account_id, ""),
            merchant,
            goal_id: self.value(cells, &c.goal_id, ""),
            channel,
            location: None,
            occurred_at: TimestampMillis(occurred_at),
        };
        event.validate().map_err(|e| reject(&e.reason, e.message))?;
        Ok(event)
    }

    /// The kind and the positive magnitude: from a kind column and an amount, from a signed
    /// amount, or from debit/credit columns.
    fn kind_and_amount(&self, cells: &dyn Cells) -> Result<(TransactionKind, Decimal), Rejection> {
        let c = &self.mapping.columns;
        let d = &self.mapping.defaults;
        let comma = self.mapping.decimal_comma;
        if c.amount.is_empty() {
            let debit = self.value(cells, &c.debit, "").map(|s| parse_amount(&s, comma)).transpose()?;
            let credit = self.value(cells, &c.credit, "").map(|s| parse_amount(&s, comma)).transpose()?;
            let debit = debit.filter(|v| !v.is_zero());
            let credit = credit.filter(|v| !v.is_zero());
            return match (debit, credit) {
                (Some(v), None) => Ok((parse_kind(&d.debit_kind)?, v.abs())),
                (None, Some(v)) => Ok((parse_kind(&d.credit_kind)?, v.abs())),
                (Some(_), Some(_)) => Err(invalid("both debit and credit are filled")),
                (None, None) => Err(reject(MISSING_VALUE, "amount: neither debit nor credit is filled")),
            };
        }
        let amount = parse_amount(&self.required(cells, "amount", &c.amount, "")?, comma)?;
        match self.value(cells, &c.kind, "") {
            // An explicit kind: the amount is the contract's magnitude, validated as such.
            Some(k) => Ok((parse_kind(&k)?, amount)),
            None if amount.is_sign_negative() && !amount.is_zero() => Ok((parse_kind(&d.debit_kind)?, -amount)),
            None => Ok((parse_kind(&d.credit_kind)?, amount)),
        }
    }

    fn timestamp(&self, s: &str) -> Result<i64, Rejection> {
        let bad = || invalid(format!("occurred_at {s:?} is not a date or time this import reads"));
        let fmt = &self.mapping.date_format;
        if !fmt.is_empty() {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return self.local(dt).ok_or_else(bad);
            }
            let d = NaiveDate::parse_from_str(s, fmt).map_err(|_| bad())?;
            return self.local(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?).ok_or_else(bad);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<i64>().map_err(|_| bad());
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(dt.timestamp_millis());
        }
        for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
                return self.local(dt).ok_or_else(bad);
            }
        }
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        self.local(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?).ok_or_else(bad)
    }

    /// A wall-clock time in the mapping's timezone; in a DST gap, the first instant after it.
    fn local(&self, dt: NaiveDateTime) -> Option<i64> {
        self.tz
            .from_local_datetime(&dt)
            .earliest()
            .or_else(|| self.tz.from_local_datetime(&(dt + chrono::Duration::hours(1))).earliest())
            .map(|t| t.timestamp_millis())
    }
}

/// A decimal amount as banks print it: optional sign, `.` (or with `decimal_comma`, `,`) before
/// the fraction, and the other character only as a proper thousands separator (`1,234.56`), so
/// `12,34` under the wrong setting is an error rather than 1234.
pub fn parse_amount(s: &str, decimal_comma: bool) -> Result<Decimal, Rejection> {
    let bad = || invalid(format!("amount {s:?} is not a decimal number"));
    let (dec, group) = if decimal_comma { (',', '.') } else { ('.', ',') };
    let t = s.trim();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = match digits.split_once(dec) {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let int: String = if int.contains(group) {
        let groups: Vec<&str> = int.split(group).collect();
        let ok = (1..=3).contains(&groups[0].len())
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(bad());
        }
        groups.concat()
    } else {
        int.to_string()
    };
    let digits_ok = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(&int) || frac.is_some_and(|f| !digits_ok(f)) {
        return Err(bad());
    }
    let text = match frac {
        Some(f) => format!("{sign}{int}.{f}"),
        None => format!("{sign}{int}"),
    };
    Decimal::from_str(&text).map_err(|_| reject(reason::DECIMAL_OVERFLOW, format!("amount {s:?} is out of range")))
}

fn symbol<E>(field: &str, s: &str, symbols: &[&str], upper: bool, from: impl Fn(&str) -> E) -> Result<E, Rejection> {
    let norm = if upper { s.trim().to_ascii_uppercase() } else { s.trim().to_ascii_lowercase() };
    if norm == "UNKNOWN" || !symbols.contains(&norm.as_str()) {
        return Err(invalid(format!("{field} {s:?} is not one of {}", symbols.join(", "))));
    }
    Ok(from(&norm))
}

fn parse_kind(s: &str) -> Result<TransactionKind, Rejection> {
    symbol("kind", s, TransactionKind::SYMBOLS, true, TransactionKind::from_symbol)
}
fn parse_status(s: &str) -> Result<TransactionStatus, Rejection> {
    symbol("status", s, TransactionStatus::SYMBOLS, true, TransactionStatus::from_symbol)
}
fn parse_category(s: &str) -> Result<Category, Rejection> {
    symbol("category", s, Category::SYMBOLS, false, Category::from_symbol)
}
fn parse_channel(s: &str) -> Result<Channel, Rejection> {
    symbol("channel", s, Channel::SYMBOLS, true, Channel::from_symbol)
}

/// A stable merchant id from the name a bank prints (`"TESCO STORES 1234"` → `tesco-stores-1234`).
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The transaction id of a line without one (docs/money-rules.md, "Re-imports"):
/// `<id_prefix><32 hex digits>` of a hash over the statement's identity (the account the line
/// is for), the line's content (`identity`: its cells, trimmed) and its occurrence (how many
/// earlier lines of the same file have the same content: a bank may print two identical coffee
/// purchases on one day, and they are two transactions). Neither the file's name nor the line's
/// position goes in, so importing the same statement again, or a later export that overlaps it,
/// gives the same ids, and dedupe drops the copies.
pub fn derived_transaction_id(prefix: &str, account_id: &str, identity: &str, occurrence: u32) -> String {
    let h = fnv1a_128(&[account_id.as_bytes(), identity.as_bytes(), &occurrence.to_le_bytes()]);
    format!("{prefix}{h:032x}")
}

/// FNV-1a 128 over parts separated by a byte no UTF-8 text contains: a stable, dependency-free
/// hash for derived ids (128 bits, so distinct lines do not collide in practice; not a security
/// boundary).
pub(super) fn fnv1a_128(parts: &[&[u8]]) -> u128 {
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_accept_only_proper_grouping() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(parse_amount("1,234.56", false).unwrap(), d("1234.56"));
        assert_eq!(parse_amount("-45.2", false).unwrap(), d("-45.2"));
        assert_eq!(parse_amount("+7", false).unwrap(), d("7"));
        assert_eq!(parse_amount("1.234,56", true).unwrap(), d("1234.56"));
        assert_eq!(parse_amount("-0,99", true).unwrap(), d("-0.99"));
        for bad in ["12,34", "1,23.4", "", "-", "abc", "1.2.3", "1e5", "12 34", "--1"] {
            assert!(parse_amount(bad, false).is_err(), "{bad}");
        }
        assert_eq!(
            parse_amount("99999999999999999999999999999999", false).unwrap_err().reason,
            reason::DECIMAL_OVERFLOW
        );
    }

    #[test]
    fn symbols_are_case_insensitive_and_unknown_is_refused() {
        assert_eq!(parse_kind("refund").unwrap(), TransactionKind::Refund);
        assert_eq!(parse_category("Groceries").unwrap(), Category::Groceries);
        assert!(parse_kind("UNKNOWN").is_err());
        assert!(parse_category("pets").is_err());
        assert!(parse_channel("pigeon").is_err());
    }

    #[test]
    fn slugs_and_ids_are_stable() {
        assert_eq!(slug("TESCO STORES 1234"), "tesco-stores-1234");
        assert_eq!(slug("  Café  Zoë! "), "café-zoë");
        assert_eq!(fnv1a_128(&[b"a", b"b"]), fnv1a_128(&[b"a", b"b"]));
        assert_ne!(fnv1a_128(&[b"ab"]), fnv1a_128(&[b"a", b"b"]));
        // FNV-1a 128 of the empty input is its offset basis.
        assert_eq!(fnv1a_128(&[]), 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
        let id = derived_transaction_id("import-", "acc-1", "2026-03-08\x1fSHOP\x1f15.00", 0);
        assert_eq!(id.len(), "import-".len() + 32);
        assert_eq!(id, derived_transaction_id("import-", "acc-1", "2026-03-08\x1fSHOP\x1f15.00", 0));
        assert_ne!(id, derived_transaction_id("import-", "acc-1", "2026-03-08\x1fSHOP\x1f15.00", 1));
        assert_ne!(id, derived_transaction_id("import-", "acc-2", "2026-03-08\x1fSHOP\x1f15.00", 0));
    }
}
