//! Which windows a record belongs to, for every window kind the DSL's `windowed_by` takes:
//! epoch-aligned [`TimeWindows`] and [`super::calendar::CalendarWindows`] (local days, weeks and
//! months, whose length varies with the calendar and daylight saving time).

use crate::context::ProcessorContext;
use crate::processor::ProcessError;
use crate::window::TimeWindows;

/// Assigns a record to windows `[start, end)` (epoch millis).
pub trait WindowAssigner<K, V>: Send + Sync + 'static {
    /// The windows containing the record, oldest first. `ctx` lets an assigner read stores, e.g.
    /// a user's time zone from a global table.
    fn assign(
        &self,
        key: &K,
        value: &V,
        timestamp: i64,
        ctx: &ProcessorContext<'_>,
    ) -> Result<Vec<(i64, i64)>, ProcessError>;
    /// How long after a window's end records for it are still accepted.
    fn grace(&self) -> i64;
    /// For `describe()`.
    fn describe(&self) -> String;
}

impl<K, V> WindowAssigner<K, V> for TimeWindows {
    fn assign(&self, _: &K, _: &V, timestamp: i64, _: &ProcessorContext<'_>) -> Result<Vec<(i64, i64)>, ProcessError> {
        Ok(self.windows_for(timestamp).into_iter().map(|s| (s, s.saturating_add(self.size))).collect())
    }
    fn grace(&self) -> i64 {
        self.grace
    }
    fn describe(&self) -> String {
        if self.advance == self.size {
            format!("tumbling {} ms, grace {} ms", self.size, self.grace)
        } else {
            format!("hopping {} ms every {} ms, grace {} ms", self.size, self.advance, self.grace)
        }
    }
}
