//! Dedupe in the reference model, from docs/money-rules.md ("Duplicates") alone: each dedupe
//! store of each task keeps one clock per input stream (lane), the largest `occurred_at` it has
//! remembered from that stream; a key is remembered at that clock and counts as seen while the
//! clock is at most the retention past it. A task is one partition (Kafka's default partitioner
//! over the record's key, [`super::analytics::partition_of`]), so the clocks are per partition.

use std::collections::BTreeMap;

use super::analytics::partition_of;

/// The stream a record reached its processor through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lane {
    /// `transactions` (debit legs).
    Transactions,
    /// The transfer-credits repartition (credit legs).
    TransferCredits,
    /// The by-user repartition (budgets, goals, analytics).
    TransactionsByUser,
    /// Transfers into a user's accounts.
    TransfersInByUser,
}

/// One dedupe store (of every task).
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    retention_ms: i64,
    partitions: u32,
    /// `(lane, partition)` → the lane's clock.
    clocks: BTreeMap<(Lane, u32), i64>,
    /// `(lane, key)` → the clock when it was remembered.
    remembered: BTreeMap<(Lane, String), i64>,
}

impl Dedupe {
    pub(crate) fn new(retention_ms: i64, partitions: u32) -> Self {
        Dedupe { retention_ms, partitions, ..Dedupe::default() }
    }

    /// Whether `key` (of a record whose task is chosen by `partition_key`) was remembered in
    /// `lane` within the retention of that lane's clock.
    pub(crate) fn seen(&self, lane: Lane, partition_key: &str, key: &str) -> bool {
        let Some(clock) = self.clocks.get(&(lane, partition_of(partition_key, self.partitions))) else {
            return false;
        };
        self.remembered.get(&(lane, key.to_string())).is_some_and(|&at| clock.saturating_sub(at) <= self.retention_ms)
    }

    pub(crate) fn remember(&mut self, lane: Lane, partition_key: &str, key: &str, occurred_at: i64) {
        let clock = self.clocks.entry((lane, partition_of(partition_key, self.partitions))).or_insert(occurred_at);
        *clock = (*clock).max(occurred_at);
        self.remembered.insert((lane, key.to_string()), *clock);
    }
}
