//! Dedupe (docs/money-rules.md, "Duplicates"): the one mechanism every money processor uses to
//! apply a transaction (leg) at most once.
//!
//! # The clock
//! Retention is counted on the clock of the records that go through a dedupe store, one clock
//! per input stream ([`Lane`]): the largest `occurred_at` remembered in that lane of that store,
//! kept in the store itself. An entry is remembered *at* that clock (`remembered_at`, not the
//! record's own `occurred_at`) and forgotten once the lane's clock has moved more than
//! `dedupe_retention_ms` past it. So a duplicate is caught whenever it arrives within the
//! retention's worth of event-time progress of its own stream after the original:
//! - whatever its `occurred_at` (importing last year's statement twice: the second copy meets
//!   entries remembered at today's clock, not a year ago);
//! - whatever the task's other inputs do (in a backfill the direct `transactions` run months
//!   ahead of the repartitioned credit legs; the credit lane's clock only follows credit legs);
//! - whenever punctuations fire, and after a crash (the clock is in the store and its
//!   changelog, so a replay decides exactly as the first run did).
//!
//! Only remembered records move a lane's clock: duplicates, PENDING/FAILED records and records a
//! processor dead-letters do not.
//!
//! # Layout of a store
//! - `"<lane>|<key>"` → [`DedupeEntry::Seen`]: a key applied in that lane;
//! - `"\0ttl|<lane>|<remembered_at>|<lane>|<key>"` → the same entry: the expiry index, with the
//!   time as fixed-width digits so key order is time order; it sorts before every key above
//!   (which never start with NUL), so a purge reads only the index entries that have expired
//!   instead of the whole store;
//! - `"\0clock|<lane>"` → [`DedupeEntry::Clock`]: the lane's clock and when its next purge is due.
//!
//! The purge runs on the same clock, inside [`Dedupe::remember`], each time the lane's clock
//! has advanced `dedupe_purge_interval_ms` since the last one: no punctuation, no schedule for
//! a processor to forget, and an expired entry already counts as absent before it is purged.

use serde::{Deserialize, Serialize};
use streams::{ProcessError, ProcessorContext};

/// Event name counted on `finstream_processor_events_total{processor,event="duplicate"}`.
pub const DUPLICATE_EVENT: &str = "duplicate";

/// Value of a dedupe store entry (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupeEntry {
    /// A key applied once; also the value of its expiry-index entry.
    Seen {
        /// `occurred_at` (epoch millis) of the record applied under this key.
        occurred_at: i64,
        /// The lane's clock when it was remembered: retention counts from here.
        remembered_at: i64,
    },
    /// A lane's clock.
    Clock {
        /// Largest `occurred_at` remembered in the lane (epoch millis).
        clock: i64,
        /// The next purge runs once the clock reaches this.
        next_purge: i64,
    },
}

/// The input stream whose records a dedupe lane remembers; one clock per lane and store. The
/// names are part of the store's keys: stable, never derived from topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// `transactions` (the leg on `account_id`, fraud scores).
    Transactions,
    /// The `transfer-credits` repartition topic (credit legs, keyed by counterparty).
    TransferCredits,
    /// The `transactions-by-user` repartition topic (budgets, goals, analytics).
    TransactionsByUser,
    /// The `transfers-in-by-user` repartition topic (transfers into a user's accounts).
    TransfersInByUser,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Transactions => "tx",
            Lane::TransferCredits => "credit",
            Lane::TransactionsByUser => "user",
            Lane::TransfersInByUser => "in",
        }
    }
}

/// One lane of one dedupe store, with its retention.
#[derive(Debug, Clone)]
pub struct Dedupe {
    store: &'static str,
    lane: Lane,
    retention_ms: i64,
    purge_interval_ms: i64,
}

/// The clock of a lane: `(clock, next_purge)`; `None` before anything was remembered.
type LaneClock = Option<(i64, i64)>;

impl Dedupe {
    pub fn new(store: &'static str, lane: Lane, retention_ms: i64, purge_interval_ms: i64) -> Self {
        Dedupe { store, lane, retention_ms: retention_ms.max(0), purge_interval_ms: purge_interval_ms.max(1) }
    }

    fn stored_key(&self, key: &str) -> String {
        format!("{}|{key}", self.lane.as_str())
    }

    fn clock_key(&self) -> String {
        format!("{CLOCK_PREFIX}{}", self.lane.as_str())
    }

    fn index_prefix(&self) -> String {
        format!("{INDEX_PREFIX}{}|", self.lane.as_str())
    }

    /// `"\0ttl|<lane>|<time>|<stored key>"`: ordered by time, also for times before 1970.
    fn index_key(&self, remembered_at: i64, stored: &str) -> String {
        let shifted = (remembered_at as u64) ^ (1 << 63);
        format!("{}{shifted:0width$}|{stored}", self.index_prefix(), width = TIME_DIGITS)
    }

    /// Entries remembered before this are expired at `clock`.
    fn horizon(&self, clock: i64) -> i64 {
        clock.saturating_sub(self.retention_ms)
    }

    /// The lane's clock (the largest `occurred_at` remembered in it so far).
    pub fn clock(&self, ctx: &mut ProcessorContext<'_>) -> Result<Option<i64>, ProcessError> {
        Ok(self.lane_clock(ctx)?.map(|(c, _)| c))
    }

    fn lane_clock(&self, ctx: &mut ProcessorContext<'_>) -> Result<LaneClock, ProcessError> {
        let entry = ctx.kv_store::<String, DedupeEntry>(self.store)?.get(&self.clock_key())?;
        Ok(match entry {
            Some(DedupeEntry::Clock { clock, next_purge }) => Some((clock, next_purge)),
            _ => None,
        })
    }

    /// Whether `key` was applied within the retention of this lane's clock. When it was, counts
    /// a duplicate on the calling processor.
    pub fn seen(&self, ctx: &mut ProcessorContext<'_>, key: &str) -> Result<bool, ProcessError> {
        let Some((clock, _)) = self.lane_clock(ctx)? else { return Ok(false) };
        let entry = ctx.kv_store::<String, DedupeEntry>(self.store)?.get(&self.stored_key(key))?;
        let seen =
            matches!(entry, Some(DedupeEntry::Seen { remembered_at, .. }) if remembered_at >= self.horizon(clock));
        if seen {
            ctx.count_event(DUPLICATE_EVENT);
            tracing::debug!(store = self.store, lane = self.lane.as_str(), key, "duplicate ignored");
        }
        Ok(seen)
    }

    /// Remembers `key` as applied by a record of `occurred_at`: advances the lane's clock, indexes
    /// the entry by the clock for the purge, and purges when one is due.
    pub fn remember(&self, ctx: &mut ProcessorContext<'_>, key: &str, occurred_at: i64) -> Result<(), ProcessError> {
        let before = self.lane_clock(ctx)?;
        let clock = before.map_or(occurred_at, |(c, _)| c.max(occurred_at));
        let mut next_purge = before.map_or(clock.saturating_add(self.purge_interval_ms), |(_, n)| n);
        if clock >= next_purge {
            self.purge_at(ctx, clock)?;
            next_purge = clock.saturating_add(self.purge_interval_ms);
        }
        let stored = self.stored_key(key);
        let entry = DedupeEntry::Seen { occurred_at, remembered_at: clock };
        let mut store = ctx.kv_store::<String, DedupeEntry>(self.store)?;
        store.put(&stored, &entry)?;
        store.put(&self.index_key(clock, &stored), &entry)?;
        if before != Some((clock, next_purge)) {
            store.put(&self.clock_key(), &DedupeEntry::Clock { clock, next_purge })?;
        }
        Ok(())
    }

    /// Deletes the entries of this lane expired at its current clock; returns how many.
    /// [`Dedupe::remember`] calls it when due; public for tests and tools.
    pub fn purge(&self, ctx: &mut ProcessorContext<'_>) -> Result<usize, ProcessError> {
        match self.lane_clock(ctx)? {
            Some((clock, _)) => self.purge_at(ctx, clock),
            None => Ok(0),
        }
    }

    fn purge_at(&self, ctx: &mut ProcessorContext<'_>, clock: i64) -> Result<usize, ProcessError> {
        let horizon = self.horizon(clock);
        let (from, upper) = (self.index_prefix(), self.index_key(horizon, ""));
        let mut store = ctx.kv_store::<String, DedupeEntry>(self.store)?;
        let expired = store.range_bytes(Some(from.as_bytes()), Some(upper.as_bytes()))?;
        let mut purged = 0;
        for (index, _) in expired {
            store.delete(&index)?;
            let Some(stored) = index.get(from.len() + TIME_DIGITS + 1..) else { continue };
            let stored = stored.to_string();
            // The key may have been remembered again after it expired: keep the newer entry.
            if matches!(store.get(&stored)?, Some(DedupeEntry::Seen { remembered_at, .. }) if remembered_at < horizon) {
                store.delete(&stored)?;
                purged += 1;
            }
        }
        if purged > 0 {
            tracing::debug!(store = self.store, lane = self.lane.as_str(), purged, "dedupe entries purged");
        }
        Ok(purged)
    }
}

/// Prefix of the expiry index entries (sorts before every dedupe key).
const INDEX_PREFIX: &str = "\0ttl|";
/// Prefix of the lane clocks.
const CLOCK_PREFIX: &str = "\0clock|";
/// Width of the index's time field: `remembered_at - i64::MIN` as unsigned decimal digits.
const TIME_DIGITS: usize = 20;

/// Dedupe key of a balance leg: `(account, transaction_id, leg)`.
pub fn leg_key(account_id: &str, transaction_id: &str, leg: crate::legs::Leg) -> String {
    format!("{account_id}|{transaction_id}|{}", leg.as_str())
}

/// Dedupe key of a user's transaction (budgets, goals, analytics): `(user, transaction_id)`.
pub fn user_key(user_id: &str, transaction_id: &str) -> String {
    format!("{user_id}|{transaction_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_within_a_lane_and_before_all_dedupe_keys() {
        let d = Dedupe::new("s", Lane::TransferCredits, 10, 1);
        let times = [i64::MIN, -86_400_000, -1, 0, 1, 1_790_000_000_000, i64::MAX];
        let stored = d.stored_key("acc|tx|credit");
        let keys: Vec<String> = times.iter().map(|t| d.index_key(*t, &stored)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert!(keys.iter().all(|k| k.as_str() < " " && k.starts_with(&d.index_prefix())));
        assert!(d.clock_key().as_str() < d.index_prefix().as_str(), "the clock is outside every purge range");
        // Everything at or after the horizon is outside the purge's range.
        assert!(d.index_key(5, "zzz") < d.index_key(6, ""));
        assert!(d.index_key(6, "") <= d.index_key(6, "a"));
        // Another lane's index is outside this lane's range.
        let other = Dedupe::new("s", Lane::Transactions, 10, 1);
        let o = other.index_key(0, &other.stored_key("x"));
        assert!(!o.starts_with(&d.index_prefix()));
        assert_eq!(
            &d.index_key(7, &stored)[d.index_prefix().len() + TIME_DIGITS + 1..],
            "credit|acc|tx|credit",
            "the stored key is recovered from the index key"
        );
    }

    #[test]
    fn entries_read_back_as_json() {
        let e = DedupeEntry::Seen { occurred_at: 1, remembered_at: 2 };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"seen":{"occurred_at":1,"remembered_at":2}}"#);
        assert_eq!(serde_json::from_str::<DedupeEntry>(&json).unwrap(), e);
    }
}
