//! Dedupe stores (docs/money-rules.md, "Duplicates"): a key per seen transaction leg with the
//! event's `occurred_at`, expired relative to stream time and purged by a stream-time punctuation.
//!
//! An entry older than the retention no longer counts even before the purge removes it, so the
//! outcome does not depend on when punctuations happen to fire (e.g. after a crash).

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

    /// Remembers `key` as applied.
    pub fn remember(&self, ctx: &mut ProcessorContext<'_>, key: &str, occurred_at: i64) -> Result<(), ProcessError> {
        ctx.kv_store::<String, DedupeEntry>(self.store)?.put(&key.to_string(), &DedupeEntry { occurred_at })?;
        Ok(())
    }

    /// Deletes entries older than the retention relative to `stream_time`; returns how many.
    pub fn purge(&self, ctx: &mut ProcessorContext<'_>, stream_time: i64) -> Result<usize, ProcessError> {
        let horizon = self.horizon(stream_time);
        let mut store = ctx.kv_store::<String, DedupeEntry>(self.store)?;
        let expired: Vec<String> =
            store.all()?.into_iter().filter(|(_, e)| e.occurred_at < horizon).map(|(k, _)| k).collect();
        for k in &expired {
            store.delete(k)?;
        }
        Ok(expired.len())
    }
}

/// Dedupe key of a balance leg: `(account, transaction_id, leg)`.
pub fn leg_key(account_id: &str, transaction_id: &str, leg: crate::legs::Leg) -> String {
    format!("{account_id}|{transaction_id}|{}", leg.as_str())
}

/// Dedupe key of a user's transaction (budgets, goals): `(user, transaction_id)`.
pub fn user_key(user_id: &str, transaction_id: &str) -> String {
    format!("{user_id}|{transaction_id}")
}
