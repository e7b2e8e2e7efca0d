//! Event-time expiry of keyed entries in a store: the one mechanism behind dedupe
//! ([`crate::dedupe`]) and the transfers held for an unknown owner ([`crate::transfers_in`]).
//!
//! # The clock
//! Entries expire on the clock of the records that go through the store, one clock per input
//! stream ([`Lane`]): the largest `occurred_at` put in that lane of that store, kept in the store
//! itself. An entry is stamped with that clock when it is put (`remembered_at`, not the record's
//! own `occurred_at`) and expires once the lane's clock has moved more than the retention past
//! it. So an entry lives for the retention's worth of event-time progress of its own stream,
//! - whatever its `occurred_at` (an import of last year's statement is remembered at today's
//!   clock, not a year ago);
//! - whatever the task's other inputs do (in a backfill the direct `transactions` run months
//!   ahead of the repartitioned credit legs; the credit lane's clock only follows credit legs);
//! - whenever punctuations fire, and after a crash (the clock is in the store and its
//!   changelog, so a replay decides exactly as the first run did).
//!
//! An expired entry reads as absent at once; the purge that deletes it runs on the same clock,
//! inside [`Expiring::put`], each time the lane's clock has advanced `purge_interval_ms` since
//! the last one: no punctuation, no schedule for a processor to forget.
//!
//! # Layout of a store
//! - `"<lane>|<key>"` → [`Slot::Entry`];
//! - `"\0ttl|<lane>|<remembered_at>|<lane>|<key>"` → [`Slot::Index`]: the expiry index, with the
//!   time as fixed-width digits so key order is time order; it sorts before every entry key
//!   (which never start with NUL), so a purge reads only the index entries that have expired
//!   instead of the whole store;
//! - `"\0clock|<lane>"` → [`Slot::Clock`]: the lane's clock and when its next purge is due.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use streams::{ProcessError, ProcessorContext};

/// Value of a store managed by [`Expiring`] (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot<V> {
    /// An entry and the lane's clock when it was put: retention counts from there.
    Entry { remembered_at: i64, value: V },
    /// An expiry-index entry (its key says everything).
    Index,
    /// A lane's clock.
    Clock {
        /// Largest `occurred_at` put in the lane (epoch millis).
        clock: i64,
        /// The next purge runs once the clock reaches this.
        next_purge: i64,
    },
}

/// The input stream whose records a lane follows; one clock per lane and store. The names are
/// part of the stores' keys: stable, never derived from topic names.
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

/// Prefix of the expiry index entries (sorts before every entry key).
const INDEX_PREFIX: &str = "\0ttl|";
/// Prefix of the lane clocks.
const CLOCK_PREFIX: &str = "\0clock|";
/// Width of the index's time field: `remembered_at - i64::MIN` as unsigned decimal digits.
const TIME_DIGITS: usize = 20;

/// One lane of one store whose entries expire in event time.
#[derive(Debug)]
pub struct Expiring<V> {
    store: &'static str,
    lane: Lane,
    retention_ms: i64,
    purge_interval_ms: i64,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for Expiring<V> {
    fn clone(&self) -> Self {
        Expiring { _value: PhantomData, ..*self }
    }
}

/// `(clock, next_purge)`; `None` before anything was put in the lane.
type LaneClock = Option<(i64, i64)>;

impl<V: Serialize + DeserializeOwned + 'static> Expiring<V> {
    pub fn new(store: &'static str, lane: Lane, retention_ms: i64, purge_interval_ms: i64) -> Self {
        Expiring {
            store,
            lane,
            retention_ms: retention_ms.max(0),
            purge_interval_ms: purge_interval_ms.max(1),
            _value: PhantomData,
        }
    }

    pub fn store(&self) -> &'static str {
        self.store
    }

    pub fn lane(&self) -> Lane {
        self.lane
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}|{key}", self.lane.as_str())
    }

    fn clock_key(&self) -> String {
        format!("{CLOCK_PREFIX}{}", self.lane.as_str())
    }

    fn index_prefix(&self) -> String {
        format!("{INDEX_PREFIX}{}|", self.lane.as_str())
    }

    /// `"\0ttl|<lane>|<time>|<entry key>"`: ordered by time, also for times before 1970.
    fn index_key(&self, remembered_at: i64, entry_key: &str) -> String {
        let shifted = (remembered_at as u64) ^ (1 << 63);
        format!("{}{shifted:0width$}|{entry_key}", self.index_prefix(), width = TIME_DIGITS)
    }

    /// Entries remembered before this are expired at `clock`.
    fn horizon(&self, clock: i64) -> i64 {
        clock.saturating_sub(self.retention_ms)
    }

    fn lane_clock(&self, ctx: &mut ProcessorContext<'_>) -> Result<LaneClock, ProcessError> {
        let slot = ctx.kv_store::<String, Slot<V>>(self.store)?.get(&self.clock_key())?;
        Ok(match slot {
            Some(Slot::Clock { clock, next_purge }) => Some((clock, next_purge)),
            _ => None,
        })
    }

    /// The lane's clock: the largest `occurred_at` put in it so far.
    pub fn clock(&self, ctx: &mut ProcessorContext<'_>) -> Result<Option<i64>, ProcessError> {
        Ok(self.lane_clock(ctx)?.map(|(c, _)| c))
    }

    /// The value under `key`, unless absent or expired.
    pub fn get(&self, ctx: &mut ProcessorContext<'_>, key: &str) -> Result<Option<V>, ProcessError> {
        let Some((clock, _)) = self.lane_clock(ctx)? else { return Ok(None) };
        let slot = ctx.kv_store::<String, Slot<V>>(self.store)?.get(&self.entry_key(key))?;
        Ok(match slot {
            Some(Slot::Entry { remembered_at, value }) if remembered_at >= self.horizon(clock) => Some(value),
            _ => None,
        })
    }

    /// The live entries whose key starts with `prefix`, in key order (keys without the lane).
    pub fn scan_prefix(&self, ctx: &mut ProcessorContext<'_>, prefix: &str) -> Result<Vec<(String, V)>, ProcessError> {
        let Some((clock, _)) = self.lane_clock(ctx)? else { return Ok(Vec::new()) };
        let horizon = self.horizon(clock);
        let lane = self.entry_key("");
        let found = ctx.kv_store::<String, Slot<V>>(self.store)?.prefix_scan(&self.entry_key(prefix))?;
        Ok(found
            .into_iter()
            .filter_map(|(k, slot)| match slot {
                Slot::Entry { remembered_at, value } if remembered_at >= horizon => {
                    Some((k.strip_prefix(&lane)?.to_string(), value))
                }
                _ => None,
            })
            .collect())
    }

    /// Puts `value` under `key` for a record of `occurred_at`: advances the lane's clock, stamps
    /// and indexes the entry with it, and purges when a purge is due.
    pub fn put(
        &self,
        ctx: &mut ProcessorContext<'_>,
        key: &str,
        value: V,
        occurred_at: i64,
    ) -> Result<(), ProcessError> {
        let before = self.lane_clock(ctx)?;
        let clock = before.map_or(occurred_at, |(c, _)| c.max(occurred_at));
        let mut next_purge = before.map_or(clock.saturating_add(self.purge_interval_ms), |(_, n)| n);
        if clock >= next_purge {
            self.purge_at(ctx, clock)?;
            next_purge = clock.saturating_add(self.purge_interval_ms);
        }
        let entry_key = self.entry_key(key);
        let mut store = ctx.kv_store::<String, Slot<V>>(self.store)?;
        store.put(&entry_key, &Slot::Entry { remembered_at: clock, value })?;
        store.put(&self.index_key(clock, &entry_key), &Slot::Index)?;
        if before != Some((clock, next_purge)) {
            store.put(&self.clock_key(), &Slot::Clock { clock, next_purge })?;
        }
        Ok(())
    }

    /// Forgets `key` (its index entry goes at the next purge).
    pub fn delete(&self, ctx: &mut ProcessorContext<'_>, key: &str) -> Result<(), ProcessError> {
        Ok(ctx.kv_store::<String, Slot<V>>(self.store)?.delete(&self.entry_key(key))?)
    }

    /// Deletes the entries of this lane expired at its current clock; returns how many.
    /// [`Expiring::put`] calls it when due; public for tests and tools.
    pub fn purge(&self, ctx: &mut ProcessorContext<'_>) -> Result<usize, ProcessError> {
        match self.lane_clock(ctx)? {
            Some((clock, _)) => self.purge_at(ctx, clock),
            None => Ok(0),
        }
    }

    fn purge_at(&self, ctx: &mut ProcessorContext<'_>, clock: i64) -> Result<usize, ProcessError> {
        let horizon = self.horizon(clock);
        let (from, upper) = (self.index_prefix(), self.index_key(horizon, ""));
        let mut store = ctx.kv_store::<String, Slot<V>>(self.store)?;
        let expired = store.range_bytes(Some(from.as_bytes()), Some(upper.as_bytes()))?;
        let mut purged = 0;
        for (index, _) in expired {
            store.delete(&index)?;
            let Some(entry_key) = index.get(from.len() + TIME_DIGITS + 1..) else { continue };
            let entry_key = entry_key.to_string();
            // The key may have been put again after it expired: keep the newer entry.
            if matches!(store.get(&entry_key)?, Some(Slot::Entry { remembered_at, .. }) if remembered_at < horizon) {
                store.delete(&entry_key)?;
                purged += 1;
            }
        }
        if purged > 0 {
            tracing::debug!(store = self.store, lane = self.lane.as_str(), purged, "expired entries purged");
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_within_a_lane_and_before_all_entry_keys() {
        let d = Expiring::<i64>::new("s", Lane::TransferCredits, 10, 1);
        let times = [i64::MIN, -86_400_000, -1, 0, 1, 1_790_000_000_000, i64::MAX];
        let entry = d.entry_key("acc|tx|credit");
        let keys: Vec<String> = times.iter().map(|t| d.index_key(*t, &entry)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert!(keys.iter().all(|k| k.as_str() < " " && k.starts_with(&d.index_prefix())));
        assert!(d.clock_key().as_str() < d.index_prefix().as_str(), "the clock is outside every purge range");
        // Everything at or after the horizon is outside the purge's range.
        assert!(d.index_key(5, "zzz") < d.index_key(6, ""));
        assert!(d.index_key(6, "") <= d.index_key(6, "a"));
        // Another lane's index is outside this lane's range.
        let other = Expiring::<i64>::new("s", Lane::Transactions, 10, 1);
        assert!(!other.index_key(0, &other.entry_key("x")).starts_with(&d.index_prefix()));
        assert_eq!(
            &d.index_key(7, &entry)[d.index_prefix().len() + TIME_DIGITS + 1..],
            "credit|acc|tx|credit",
            "the entry key is recovered from the index key"
        );
    }

    #[test]
    fn slots_read_back_as_json() {
        let e: Slot<i64> = Slot::Entry { remembered_at: 2, value: 1 };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"entry":{"remembered_at":2,"value":1}}"#);
        assert_eq!(serde_json::from_str::<Slot<i64>>(&json).unwrap(), e);
        assert_eq!(serde_json::to_string(&Slot::<i64>::Index).unwrap(), r#""index""#);
    }
}
