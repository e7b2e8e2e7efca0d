//! Dedupe stores (docs/money-rules.md, "Duplicates"): a key per seen transaction leg with the
//! event's `occurred_at`, expired relative to stream time and purged by a stream-time punctuation.
//!
//! An entry older than the retention no longer counts even before the purge removes it, so the
//! outcome does not depend on when punctuations happen to fire (e.g. after a crash).
//!
//! Each store also holds an expiry index in the same key space: `"\0ttl|<time>|<key>"`, with the
//! time as fixed-width digits so key order is time order. Keys of seen legs never start with NUL,
//! so the index sorts before them and a purge reads only the index entries that have expired
//! instead of the whole store (which holds every transaction of the retention, 30 days by
//! default).

use serde::{Deserialize, Serialize};
use streams::{ProcessError, ProcessorContext, PunctuationType};

/// Event name counted on `finstream_processor_events_total{processor,event="duplicate"}`.
pub const DUPLICATE_EVENT: &str = "duplicate";

/// Value of a dedupe store entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeEntry {
    /// `occurred_at` (epoch millis) of the transaction first applied under this key.
    pub occurred_at: i64,
}

/// One dedupe store with its retention.
#[derive(Debug, Clone)]
pub struct Dedupe {
    pub store: &'static str,
    pub retention_ms: i64,
    pub purge_interval_ms: i64,
}

impl Dedupe {
    /// Schedules the purge punctuation (call from `Processor::init`).
    pub fn schedule(&self, ctx: &mut ProcessorContext<'_>) {
        ctx.schedule(self.purge_interval_ms.max(1), PunctuationType::StreamTime);
    }

    fn horizon(&self, stream_time: i64) -> i64 {
        stream_time.saturating_sub(self.retention_ms.max(0))
    }

    /// Whether `key` was applied within the retention. When it was, counts a duplicate on the
    /// calling processor.
    pub fn seen(&self, ctx: &mut ProcessorContext<'_>, key: &str) -> Result<bool, ProcessError> {
        let horizon = self.horizon(ctx.stream_time());
        let entry = ctx.kv_store::<String, DedupeEntry>(self.store)?.get(&key.to_string())?;
        let seen = entry.is_some_and(|e| e.occurred_at >= horizon);
        if seen {
            ctx.count_event(DUPLICATE_EVENT);
            tracing::debug!(store = self.store, key, "duplicate ignored");
        }
        Ok(seen)
    }

    /// Remembers `key` as applied (and indexes it by time for the purge).
    pub fn remember(&self, ctx: &mut ProcessorContext<'_>, key: &str, occurred_at: i64) -> Result<(), ProcessError> {
        let entry = DedupeEntry { occurred_at };
        let mut store = ctx.kv_store::<String, DedupeEntry>(self.store)?;
        store.put(&key.to_string(), &entry)?;
        store.put(&index_key(occurred_at, key), &entry)?;
        Ok(())
    }

    /// Deletes entries older than the retention relative to `stream_time`; returns how many.
    pub fn purge(&self, ctx: &mut ProcessorContext<'_>, stream_time: i64) -> Result<usize, ProcessError> {
        let horizon = self.horizon(stream_time);
        let mut store = ctx.kv_store::<String, DedupeEntry>(self.store)?;
        let upper = index_key(horizon, "");
        let expired = store.range_bytes(Some(INDEX_PREFIX.as_bytes()), Some(upper.as_bytes()))?;
        let mut purged = 0;
        for (index, _) in expired {
            store.delete(&index)?;
            let Some(key) = index.get(INDEX_PREFIX.len() + TIME_DIGITS + 1..) else { continue };
            // The key may have been remembered again after it expired: keep the newer entry.
            if store.get(&key.to_string())?.is_some_and(|e| e.occurred_at < horizon) {
                store.delete(&key.to_string())?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

/// Prefix of the expiry index entries (sorts before every dedupe key).
const INDEX_PREFIX: &str = "\0ttl|";
/// Width of the index's time field: `occurred_at - i64::MIN` as unsigned decimal digits.
const TIME_DIGITS: usize = 20;

/// `"\0ttl|<time>|<key>"`: ordered by `occurred_at`, also for times before 1970.
fn index_key(occurred_at: i64, key: &str) -> String {
    let shifted = (occurred_at as u64) ^ (1 << 63);
    format!("{INDEX_PREFIX}{shifted:0width$}|{key}", width = TIME_DIGITS)
}

/// Dedupe key of a balance leg: `(account, transaction_id, leg)`.
pub fn leg_key(account_id: &str, transaction_id: &str, leg: crate::legs::Leg) -> String {
    format!("{account_id}|{transaction_id}|{}", leg.as_str())
}

/// Dedupe key of a user's transaction (budgets, goals): `(user, transaction_id)`.
pub fn user_key(user_id: &str, transaction_id: &str) -> String {
    format!("{user_id}|{transaction_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_before_all_dedupe_keys() {
        let times = [i64::MIN, -86_400_000, -1, 0, 1, 1_790_000_000_000, i64::MAX];
        let keys: Vec<String> = times.iter().map(|t| index_key(*t, "acc|tx|DEBIT")).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert!(keys.iter().all(|k| k.len() == INDEX_PREFIX.len() + TIME_DIGITS + 1 + "acc|tx|DEBIT".len()));
        assert!(keys.iter().all(|k| k.as_str() < " " && k.as_str() < "a"));
        // Everything at or after the horizon is outside the purge's range.
        assert!(index_key(5, "zzz") < index_key(6, ""));
        assert!(index_key(6, "") <= index_key(6, "a"));
    }
}
