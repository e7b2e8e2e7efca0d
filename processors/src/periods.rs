//! Time (docs/money-rules.md, "Time" and "Budgets"): the user's timezone from the `user-profile`
//! global table (UTC when unknown or unparsable), local dates of event times, and MONTHLY /
//! WEEKLY (ISO, from Monday) periods from local midnight to local midnight as UTC epoch millis.
//! Never the wall clock.

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use schemas::BudgetPeriod;
use streams::{ProcessError, ProcessorContext};

use crate::tables::GlobalTables;

/// Dead-letter reason for a timestamp outside the years 1..=9999.
pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";

/// The user's timezone: the latest known profile's IANA zone, UTC when unknown or unparsable.
pub fn user_tz(tables: &GlobalTables, ctx: &ProcessorContext<'_>, user_id: &str) -> Result<Tz, ProcessError> {
    Ok(tables.profile(ctx, user_id)?.map(|p| parse_tz(&p.timezone)).unwrap_or(Tz::UTC))
}

/// Parses an IANA zone name; UTC when unknown.
pub fn parse_tz(name: &str) -> Tz {
    name.trim().parse::<Tz>().unwrap_or(Tz::UTC)
}

/// The local calendar date of `ms` (epoch millis) in `tz`.
pub fn local_date(tz: Tz, ms: i64) -> Result<NaiveDate, ProcessError> {
    let utc = chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| ProcessError::data(INVALID_TIMESTAMP, format!("timestamp {ms} out of range")))?;
    let date = utc.with_timezone(&tz).date_naive();
    if !(1..=9999).contains(&date.year()) {
        return Err(ProcessError::data(INVALID_TIMESTAMP, format!("timestamp {ms} is outside years 1..=9999")));
    }
    Ok(date)
}

/// UTC epoch millis of the first instant of `date` in `tz`. When local midnight does not exist
/// (a DST gap at midnight, e.g. America/Santiago) the day starts at the first existing instant.
pub fn local_midnight_ms(tz: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    for step in 0..=(24 * 4) {
        let t = midnight + chrono::Duration::minutes(15 * step);
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt.timestamp_millis();
        }
    }
    // No instant of the day exists locally (a skipped day, e.g. Pacific/Apia 2011-12-30): use
    // the UTC reading of midnight, which is still monotonic in `date`.
    midnight.and_utc().timestamp_millis()
}

/// A budget period in one timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First local date of the period.
    pub start_date: NaiveDate,
    /// First local date after the period.
    pub end_date: NaiveDate,
    /// Local midnight of `start_date`, UTC epoch millis (inclusive).
    pub start_ms: i64,
    /// Local midnight of `end_date`, UTC epoch millis (exclusive).
    pub end_ms: i64,
}

/// The period of kind `kind` that contains local date `date`; `None` for an unknown kind.
pub fn period_containing(kind: BudgetPeriod, tz: Tz, date: NaiveDate) -> Option<Period> {
    let (start, end) = match kind {
        BudgetPeriod::Monthly => {
            let start = date.with_day(1)?;
            (start, start.checked_add_months(Months::new(1))?)
        }
        BudgetPeriod::Weekly => {
            let start = date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))?;
            (start, start.checked_add_days(Days::new(7))?)
        }
        BudgetPeriod::Unknown => return None,
    };
    Some(Period {
        start_date: start,
        end_date: end,
        start_ms: local_midnight_ms(tz, start),
        end_ms: local_midnight_ms(tz, end),
    })
}

/// `YYYY-MM-DD`, the form local dates take in store keys and alert ids (sorts chronologically).
pub fn date_key(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }
    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn monthly_in_new_york_across_dst() {
        let tz = parse_tz("America/New_York");
        // 2026-03-08 is the US DST start; March starts at EST midnight, April at EDT midnight.
        let p = period_containing(BudgetPeriod::Monthly, tz, date("2026-03-15")).unwrap();
        assert_eq!(p.start_ms, ms("2026-03-01T00:00:00-05:00"));
        assert_eq!(p.end_ms, ms("2026-04-01T00:00:00-04:00"));
        assert_eq!(date_key(p.start_date), "2026-03-01");
        // 2026-03-01T04:30Z is still February 28th in New York.
        assert_eq!(local_date(tz, ms("2026-03-01T04:30:00Z")).unwrap(), date("2026-02-28"));
    }

    #[test]
    fn weekly_is_iso_from_monday() {
        let tz = Tz::UTC;
        // 2026-01-01 is a Thursday: its ISO week starts Monday 2025-12-29.
        let p = period_containing(BudgetPeriod::Weekly, tz, date("2026-01-01")).unwrap();
        assert_eq!(p.start_date, date("2025-12-29"));
        assert_eq!(p.end_date, date("2026-01-05"));
        let p = period_containing(BudgetPeriod::Weekly, tz, date("2026-01-04")).unwrap(); // Sunday
        assert_eq!(p.start_date, date("2025-12-29"));
        let p = period_containing(BudgetPeriod::Weekly, tz, date("2026-01-05")).unwrap(); // Monday
        assert_eq!(p.start_date, date("2026-01-05"));
        assert!(period_containing(BudgetPeriod::Unknown, tz, date("2026-01-05")).is_none());
    }

    #[test]
    fn midnight_in_a_dst_gap_and_bad_zone() {
        // Santiago skipped 2022-09-11 00:00..01:00 local: the day starts at 01:00 -03:00.
        let tz = parse_tz("America/Santiago");
        assert_eq!(local_midnight_ms(tz, date("2022-09-11")), ms("2022-09-11T01:00:00-03:00"));
        assert_eq!(parse_tz("Mars/Olympus"), Tz::UTC);
        assert!(local_date(Tz::UTC, i64::MAX).is_err());
    }
}
