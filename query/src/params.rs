//! Validation of path ids and query parameters: every rejection says which input was wrong
//! and why, as a 400 in the API's error shape.

use std::collections::HashMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use chrono::NaiveDate;

use crate::error::ApiError;

/// Longest accepted id.
pub const MAX_ID_LEN: usize = 128;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// Longest `spending` range, in days.
pub const MAX_SPENDING_DAYS: i64 = 366;

/// Ids are 1-128 characters of `A-Z a-z 0-9 - _ . : @`. `|` in particular is refused: stores
/// use it to join composite keys, so an id containing it could read another key's data.
pub fn id<'a>(what: &str, value: &'a str) -> Result<&'a str, ApiError> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(ApiError::BadRequest(format!("{what} must be 1-{MAX_ID_LEN} characters long")));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:@".contains(*c))) {
        return Err(ApiError::BadRequest(format!("{what} contains {c:?}; allowed are letters, digits and - _ . : @")));
    }
    Ok(value)
}

pub fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| ApiError::BadRequest(format!("bad path: {e}")))
}

pub fn query(q: Result<Query<HashMap<String, String>>, QueryRejection>) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))
}

/// Rejects parameters the endpoint does not know (a typo would otherwise be silently ignored).
pub fn only(q: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = q.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    Err(ApiError::BadRequest(format!("unknown query parameter(s) {}; known: {}", unknown.join(", "), known.join(", "))))
}

/// `limit`: 1..=MAX_LIMIT, default `default`.
pub fn limit(q: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}, got {v:?}"))),
        },
    }
}

/// A `YYYY-MM-DD` parameter.
pub fn date(name: &str, v: &str) -> Result<NaiveDate, ApiError> {
    if v.len() != 10 {
        return Err(ApiError::BadRequest(format!("{name} must be a date YYYY-MM-DD, got {v:?}")));
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|e| ApiError::BadRequest(format!("{name} must be a date YYYY-MM-DD, got {v:?}: {e}")))
}

/// A required `YYYY-MM-DD` parameter.
pub fn required_date(q: &HashMap<String, String>, name: &str) -> Result<NaiveDate, ApiError> {
    let v =
        q.get(name).ok_or_else(|| ApiError::BadRequest(format!("query parameter {name}=YYYY-MM-DD is required")))?;
    date(name, v)
}

/// A `YYYY-MM` month; returns its canonical text.
pub fn month(name: &str, v: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest(format!("{name} must be a month YYYY-MM, got {v:?}"));
    if v.len() != 7 {
        return Err(bad());
    }
    let d = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    Ok(d.format("%Y-%m").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_dates_months_limits() {
        assert!(id("account_id", "acc-1_a.b:c@d").is_ok());
        for bad in ["", "a|b", "a b", "ä", &"x".repeat(129)] {
            let e = id("account_id", bad).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(ref m) if m.contains("account_id")), "{bad:?}: {e}");
        }
        assert!(date("at", "2026-02-29").is_err());
        assert!(date("at", "2026-2-1").is_err());
        assert_eq!(date("at", "2028-02-29").unwrap().to_string(), "2028-02-29");
        assert_eq!(month("month", "2026-03").unwrap(), "2026-03");
        assert!(month("month", "2026-13").is_err());
        assert!(month("month", "2026-3").is_err());
        let q = |v: &str| HashMap::from([("limit".to_string(), v.to_string())]);
        assert_eq!(limit(&q("5"), 20).unwrap(), 5);
        assert_eq!(limit(&HashMap::new(), 20).unwrap(), 20);
        for bad in ["0", "-1", "1001", "x", ""] {
            assert!(limit(&q(bad), 20).is_err(), "{bad}");
        }
        assert!(only(&q("1"), &["limit"]).is_ok());
        let e = only(&q("1"), &["at"]).unwrap_err().to_string();
        assert!(e.contains("limit"), "{e}");
    }
}
