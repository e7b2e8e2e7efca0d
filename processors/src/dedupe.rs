//! Dedupe (docs/money-rules.md, "Duplicates"): the one mechanism every money processor uses to
//! apply a transaction (leg) at most once.
//!
//! A dedupe store remembers each applied key in the lane of the stream it came through, for
//! `dedupe_retention_ms` of event-time progress of that stream in this task
//! ([`crate::expiry`]): a duplicate is caught whenever it arrives within the retention's worth
//! of event-time progress of its own stream after the original, whatever its `occurred_at`
//! (a statement imported twice, a year late) and whatever the task's other inputs do (a
//! backfill, where direct inputs run months ahead of repartitioned ones). Only remembered
//! records move a lane's clock: duplicates, PENDING/FAILED records and records a processor
//! dead-letters do not.

use streams::{ProcessError, ProcessorContext};

pub use crate::expiry::Lane;
use crate::expiry::{Expiring, Slot};

/// Event name counted on `finstream_processor_events_total{processor,event="duplicate"}`.
pub const DUPLICATE_EVENT: &str = "duplicate";

/// Value of a dedupe store entry (JSON): the entry's value is the `occurred_at` (epoch millis)
/// of the record applied under the key.
pub type DedupeEntry = Slot<i64>;

/// One lane of one dedupe store, with its retention.
#[derive(Debug, Clone)]
pub struct Dedupe {
    keys: Expiring<i64>,
}

impl Dedupe {
    pub fn new(store: &'static str, lane: Lane, retention_ms: i64, purge_interval_ms: i64) -> Self {
        Dedupe { keys: Expiring::new(store, lane, retention_ms, purge_interval_ms) }
    }

    /// Whether `key` was applied within the retention of this lane's clock. When it was, counts
    /// a duplicate on the calling processor.
    pub fn seen(&self, ctx: &mut ProcessorContext<'_>, key: &str) -> Result<bool, ProcessError> {
        let seen = self.keys.get(ctx, key)?.is_some();
        if seen {
            ctx.count_event(DUPLICATE_EVENT);
            tracing::debug!(store = self.keys.store(), lane = self.keys.lane().as_str(), key, "duplicate ignored");
        }
        Ok(seen)
    }

    /// Remembers `key` as applied by a record of `occurred_at` (advancing the lane's clock, and
    /// purging expired keys when a purge is due).
    pub fn remember(&self, ctx: &mut ProcessorContext<'_>, key: &str, occurred_at: i64) -> Result<(), ProcessError> {
        self.keys.put(ctx, key, occurred_at, occurred_at)
    }

    /// The lane's clock (the largest `occurred_at` remembered in it).
    pub fn clock(&self, ctx: &mut ProcessorContext<'_>) -> Result<Option<i64>, ProcessError> {
        self.keys.clock(ctx)
    }

    /// Deletes the keys expired at the lane's clock now (normally done by `remember`).
    pub fn purge(&self, ctx: &mut ProcessorContext<'_>) -> Result<usize, ProcessError> {
        self.keys.purge(ctx)
    }
}

/// Dedupe key of a balance leg: `(account, transaction_id, leg)`.
pub fn leg_key(account_id: &str, transaction_id: &str, leg: crate::legs::Leg) -> String {
    format!("{account_id}|{transaction_id}|{}", leg.as_str())
}

/// Dedupe key of a user's transaction (budgets, goals, analytics): `(user, transaction_id)`.
pub fn user_key(user_id: &str, transaction_id: &str) -> String {
    format!("{user_id}|{transaction_id}")
}
