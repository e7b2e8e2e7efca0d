//! Calendar windows: local days, ISO weeks and calendar months in a time zone, as a window kind
//! of their own. Kafka Streams' windows are fixed-size and aligned to the UTC epoch, so "what
//! did Alice spend on Tuesday" (her Tuesday, in Berlin) is not expressible with them: a local
//! day starts at local midnight, and lasts 23 or 25 hours on daylight-saving changes; weeks and
//! months vary accordingly.
//!
//! A window is `[first instant of the first local date, first instant of the first local date
//! after it)`, in UTC epoch millis. The first instant of a date is its local midnight, or when
//! midnight falls into a DST gap (e.g. America/Santiago) the first local time that exists that
//! day. The zone comes from the record, or from a table through a closure the user gives, so
//! every user's windows follow their own calendar.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone};
pub use chrono_tz::Tz;

use crate::context::ProcessorContext;
use crate::processor::ProcessError;
use crate::window::assign::WindowAssigner;

/// Dead-letter reason for a timestamp no calendar can place.
pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";

/// The length of a calendar window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarUnit {
    /// Local midnight to local midnight.
    Day,
    /// Monday to Monday (ISO 8601).
    IsoWeek,
    /// The first of the month to the first of the next.
    Month,
}

impl CalendarUnit {
    /// The first local date of the period containing `date`, and the first date after it.
    pub fn period_dates(self, date: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
        let start = match self {
            CalendarUnit::Day => date,
            CalendarUnit::IsoWeek => {
                date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))?
            }
            CalendarUnit::Month => date.with_day(1)?,
        };
        let end = match self {
            CalendarUnit::Day => start.checked_add_days(Days::new(1))?,
            CalendarUnit::IsoWeek => start.checked_add_days(Days::new(7))?,
            CalendarUnit::Month => start.checked_add_months(Months::new(1))?,
        };
        Some((start, end))
    }

    /// The period of this unit containing the instant `ts` (epoch millis) in `tz`, as
    /// `[start, end)` epoch millis.
    pub fn window_containing(self, tz: Tz, ts: i64) -> Result<(i64, i64), ProcessError> {
        let date = local_date(tz, ts)?;
        let (first, next) = self.period_dates(date).ok_or_else(|| out_of_range(ts))?;
        Ok((first_instant_ms(tz, first), first_instant_ms(tz, next)))
    }

    fn name(self) -> &'static str {
        match self {
            CalendarUnit::Day => "local day",
            CalendarUnit::IsoWeek => "ISO week",
            CalendarUnit::Month => "calendar month",
        }
    }
}

fn out_of_range(ts: i64) -> ProcessError {
    ProcessError::data(INVALID_TIMESTAMP, format!("timestamp {ts} is outside the calendar"))
}

/// The local calendar date of the instant `ms` in `tz`.
pub fn local_date(tz: Tz, ms: i64) -> Result<NaiveDate, ProcessError> {
    let utc = DateTime::from_timestamp_millis(ms).ok_or_else(|| out_of_range(ms))?;
    Ok(utc.with_timezone(&tz).date_naive())
}

/// Epoch millis of the first instant of local date `date` in `tz`: local midnight, the earlier
/// one if midnight happens twice, or the end of the DST gap if midnight does not happen. A date
/// a zone skipped altogether (Pacific/Apia, 2011-12-30) starts where the next one does.
pub fn first_instant_ms(tz: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    if let Some(dt) = tz.from_local_datetime(&midnight).earliest() {
        return dt.timestamp_millis();
    }
    // Midnight is in a gap: the day starts at the transition, the first instant whose local
    // date is `date`. Local dates only move forward around a gap, so a binary search over the
    // two days around the naive reading of midnight finds it to the millisecond.
    let naive_ms = midnight.and_utc().timestamp_millis();
    const TWO_DAYS: i64 = 2 * 24 * 60 * 60 * 1000;
    let (mut lo, mut hi) = (naive_ms - TWO_DAYS, naive_ms + TWO_DAYS);
    let reached = |t: i64| local_date(tz, t).is_ok_and(|d| d >= date);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if reached(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// Parses an IANA zone name, UTC when it is empty or unknown (a profile with a bad zone still
/// gets windows).
pub fn zone_or_utc(name: &str) -> Tz {
    name.trim().parse::<Tz>().unwrap_or(Tz::UTC)
}

type ZoneFn<K, V> = dyn Fn(&K, &V, &ProcessorContext<'_>) -> Result<Tz, ProcessError> + Send + Sync;

enum Zone<K, V> {
    Fixed(Tz),
    PerRecord(Arc<ZoneFn<K, V>>),
}

impl<K, V> Clone for Zone<K, V> {
    fn clone(&self) -> Self {
        match self {
            Zone::Fixed(tz) => Zone::Fixed(*tz),
            Zone::PerRecord(f) => Zone::PerRecord(f.clone()),
        }
    }
}

/// Calendar windows for `windowed_by`: each record falls into the one period of `unit` that
/// contains its timestamp in its zone.
pub struct CalendarWindows<K, V> {
    unit: CalendarUnit,
    zone: Zone<K, V>,
    grace: i64,
}

impl<K, V> Clone for CalendarWindows<K, V> {
    fn clone(&self) -> Self {
        CalendarWindows { unit: self.unit, zone: self.zone.clone(), grace: self.grace }
    }
}

impl<K, V> CalendarWindows<K, V> {
    /// Windows of `unit` in the zone `zone` gives for each record: a field of the value, or a
    /// lookup in a table (`ctx.global(&PROFILES).get(..)`). An error dead-letters the record.
    pub fn per_record<F>(unit: CalendarUnit, zone: F) -> Self
    where
        F: Fn(&K, &V, &ProcessorContext<'_>) -> Result<Tz, ProcessError> + Send + Sync + 'static,
    {
        CalendarWindows { unit, zone: Zone::PerRecord(Arc::new(zone)), grace: 0 }
    }

    /// Windows of `unit` in one zone for every record.
    pub fn in_zone(unit: CalendarUnit, tz: Tz) -> Self {
        CalendarWindows { unit, zone: Zone::Fixed(tz), grace: 0 }
    }

    /// Local days in each record's zone.
    pub fn days<F>(zone: F) -> Self
    where
        F: Fn(&K, &V, &ProcessorContext<'_>) -> Result<Tz, ProcessError> + Send + Sync + 'static,
    {
        Self::per_record(CalendarUnit::Day, zone)
    }

    /// ISO weeks (from Monday) in each record's zone.
    pub fn iso_weeks<F>(zone: F) -> Self
    where
        F: Fn(&K, &V, &ProcessorContext<'_>) -> Result<Tz, ProcessError> + Send + Sync + 'static,
    {
        Self::per_record(CalendarUnit::IsoWeek, zone)
    }

    /// Calendar months in each record's zone.
    pub fn months<F>(zone: F) -> Self
    where
        F: Fn(&K, &V, &ProcessorContext<'_>) -> Result<Tz, ProcessError> + Send + Sync + 'static,
    {
        Self::per_record(CalendarUnit::Month, zone)
    }

    /// Accepts records up to `ms` after their window's end.
    pub fn grace(mut self, ms: i64) -> Self {
        self.grace = ms.max(0);
        self
    }

    pub fn unit(&self) -> CalendarUnit {
        self.unit
    }
}

impl<K: 'static, V: 'static> WindowAssigner<K, V> for CalendarWindows<K, V> {
    fn assign(&self, key: &K, value: &V, ts: i64, ctx: &ProcessorContext<'_>) -> Result<Vec<(i64, i64)>, ProcessError> {
        let tz = match &self.zone {
            Zone::Fixed(tz) => *tz,
            Zone::PerRecord(f) => f(key, value, ctx)?,
        };
        Ok(vec![self.unit.window_containing(tz, ts)?])
    }
    fn grace(&self) -> i64 {
        self.grace
    }
    fn describe(&self) -> String {
        let zone = match &self.zone {
            Zone::Fixed(tz) => tz.name().to_string(),
            Zone::PerRecord(_) => "per record".to_string(),
        };
        format!("{} ({zone}), grace {} ms", self.unit.name(), self.grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }
    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }
    fn window(unit: CalendarUnit, zone: &str, at: &str) -> (i64, i64) {
        unit.window_containing(tz(zone), ms(at)).unwrap()
    }

    #[test]
    fn berlin_days_last_23_and_25_hours_on_dst_changes() {
        use CalendarUnit::Day;
        // Summer time starts 2026-03-29 02:00 CET -> 03:00 CEST.
        let (s, e) = window(Day, "Europe/Berlin", "2026-03-29T12:00:00+02:00");
        assert_eq!((s, e), (ms("2026-03-29T00:00:00+01:00"), ms("2026-03-30T00:00:00+02:00")));
        assert_eq!(e - s, 23 * HOUR);
        // And ends 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 happens twice, both on the 25th.
        let (s, e) = window(Day, "Europe/Berlin", "2026-10-25T02:30:00+01:00");
        assert_eq!((s, e), (ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00")));
        assert_eq!(e - s, 25 * HOUR);
        assert_eq!(window(Day, "Europe/Berlin", "2026-10-25T02:30:00+02:00"), (s, e));
        // An ordinary day, and the instants at its edges.
        let (s, e) = window(Day, "Europe/Berlin", "2026-06-10T23:59:59.999+02:00");
        assert_eq!(e - s, 24 * HOUR);
        assert_eq!(window(Day, "Europe/Berlin", "2026-06-10T00:00:00+02:00").0, s);
        assert_eq!(window(Day, "Europe/Berlin", "2026-06-11T00:00:00+02:00").0, e, "midnight opens the next day");
    }

    #[test]
    fn new_york_days_weeks_and_months_across_dst() {
        use CalendarUnit::*;
        let (s, e) = window(Day, "America/New_York", "2026-03-08T10:00:00-04:00");
        assert_eq!((s, e), (ms("2026-03-08T00:00:00-05:00"), ms("2026-03-09T00:00:00-04:00")));
        assert_eq!(e - s, 23 * HOUR);
        let (s, e) = window(Day, "America/New_York", "2026-11-01T01:30:00-05:00");
        assert_eq!(e - s, 25 * HOUR);
        // 2026-11-01T04:30Z is still October 31st in New York: the UTC date does not decide.
        let (s, _) = window(Day, "America/New_York", "2026-11-01T03:30:00Z");
        assert_eq!(s, ms("2026-10-31T00:00:00-04:00"));
        // The ISO week Monday 2026-03-02 .. Monday 2026-03-09 contains the short day.
        let (s, e) = window(IsoWeek, "America/New_York", "2026-03-08T23:00:00-04:00");
        assert_eq!((s, e), (ms("2026-03-02T00:00:00-05:00"), ms("2026-03-09T00:00:00-04:00")));
        assert_eq!(e - s, 7 * 24 * HOUR - HOUR);
        let (s, e) = window(Month, "America/New_York", "2026-11-15T12:00:00-05:00");
        assert_eq!((s, e), (ms("2026-11-01T00:00:00-04:00"), ms("2026-12-01T00:00:00-05:00")));
        assert_eq!(e - s, 30 * 24 * HOUR + HOUR);
    }

    #[test]
    fn berlin_months_and_iso_weeks_across_year_ends() {
        use CalendarUnit::*;
        let (s, e) = window(Month, "Europe/Berlin", "2026-03-31T23:30:00+02:00");
        assert_eq!((s, e), (ms("2026-03-01T00:00:00+01:00"), ms("2026-04-01T00:00:00+02:00")));
        assert_eq!(e - s, 31 * 24 * HOUR - HOUR);
        // 2026-01-01 is a Thursday: its ISO week starts Monday 2025-12-29.
        let (s, e) = window(IsoWeek, "Europe/Berlin", "2026-01-01T09:00:00+01:00");
        assert_eq!((s, e), (ms("2025-12-29T00:00:00+01:00"), ms("2026-01-05T00:00:00+01:00")));
        // Sunday night still belongs to the week that started on Monday.
        assert_eq!(window(IsoWeek, "Europe/Berlin", "2026-01-04T23:59:00+01:00").0, s);
        // February of a leap year, and a month before the epoch.
        let (s, e) = window(Month, "Europe/Berlin", "2028-02-29T12:00:00+01:00");
        assert_eq!(e - s, 29 * 24 * HOUR);
        let (s, e) = window(Month, "UTC", "1969-12-31T23:59:59Z");
        assert_eq!((s, e), (ms("1969-12-01T00:00:00Z"), 0));
    }

    #[test]
    fn midnight_in_a_dst_gap_starts_the_day_at_the_transition() {
        // Santiago skipped 2022-09-11 00:00..01:00 local: the day starts at 01:00 -03:00 and is
        // 23 hours long; the day before ends there.
        let (s, e) = window(CalendarUnit::Day, "America/Santiago", "2022-09-11T12:00:00-03:00");
        assert_eq!(s, ms("2022-09-11T01:00:00-03:00"));
        assert_eq!(e - s, 23 * HOUR);
        assert_eq!(window(CalendarUnit::Day, "America/Santiago", "2022-09-10T23:59:00-04:00").1, s);
        // Apia skipped 2011-12-30 entirely: the 29th ends where the 31st begins.
        let (_, e) = window(CalendarUnit::Day, "Pacific/Apia", "2011-12-29T12:00:00-10:00");
        assert_eq!(window(CalendarUnit::Day, "Pacific/Apia", "2011-12-31T12:00:00+14:00").0, e);
    }

    #[test]
    fn windows_tile_every_hour_of_a_year_in_each_zone() {
        for zone in ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"] {
            for unit in [CalendarUnit::Day, CalendarUnit::IsoWeek, CalendarUnit::Month] {
                let mut t = ms("2026-01-01T00:00:00Z");
                let mut last: Option<(i64, i64)> = None;
                while t < ms("2027-01-01T00:00:00Z") {
                    let w = unit.window_containing(tz(zone), t).unwrap();
                    assert!(w.0 <= t && t < w.1, "{zone} {unit:?}: {t} in {w:?}");
                    if let Some(prev) = last.filter(|p| *p != w) {
                        assert_eq!(prev.1, w.0, "{zone} {unit:?}: windows are contiguous");
                    }
                    last = Some(w);
                    t += HOUR / 2;
                }
            }
        }
    }

    #[test]
    fn zone_names_fall_back_to_utc_and_bad_timestamps_are_data_errors() {
        assert_eq!(zone_or_utc(" Europe/Berlin "), tz("Europe/Berlin"));
        assert_eq!(zone_or_utc("Mars/Olympus"), Tz::UTC);
        let err = CalendarUnit::Day.window_containing(Tz::UTC, i64::MAX).unwrap_err();
        assert_eq!(err.class(), INVALID_TIMESTAMP);
    }
}
