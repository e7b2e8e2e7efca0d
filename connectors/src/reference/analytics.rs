//! Spending analytics in the reference model (issue 5 and `docs/money-rules.md`, "Spending
//! analytics"), written from those rules alone: daily spending per (user, category, local day)
//! in the user's base currency, monthly cash flow per user, late records beyond grace.
//!
//! It follows the processing order the caller gives ([`crate::reference::compute_in_order`]); in
//! timestamp order ([`crate::reference::compute`]) no record is ever late. Lateness is decided
//! per task, as in the engine: analytics keeps one clock (the largest `occurred_at` of the
//! transactions it applied or found late) per partition of the user-keyed topics, and a user's
//! partition is Kafka's default partitioner over the user id
//! ([`AnalyticsConfig::partitions`]).

use std::collections::BTreeMap;

use chrono::Days;
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use schemas::{TransactionEvent, TransactionKind, TransactionStatus, UserProfile};

use super::dedupe::{Dedupe, Lane};
use super::{local_date, local_midnight, timezone, DeadLetter};

/// The analytics settings that change the expected results (`analytics.*` of the processors'
/// configuration, plus the partition count that scopes the lateness clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsConfig {
    /// A daily window is closed once `window_end + grace_ms <= clock` (default 1 hour).
    pub grace_ms: i64,
    /// Base currency of a user without a known profile (default `USD`).
    pub default_base_currency: String,
    /// Partitions of the user-keyed topics: one lateness clock per partition (default 1).
    pub partitions: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig { grace_ms: 3_600_000, default_base_currency: "USD".into(), partitions: 1 }
    }
}

/// Key of [`crate::reference::ReferenceOutput::spending_daily`]: `(user_id, category symbol as in
/// the contract, e.g. "groceries", window start = local midnight in UTC millis)`.
pub type DailyKey = (String, String, i64);

/// One daily window: what the `spending-daily` store holds for it at the end of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyTotal {
    /// The next local midnight, UTC millis (exclusive).
    pub window_end: i64,
    /// PAYMENT + WITHDRAWAL + FEE - REFUND, each converted on its own to `currency`.
    pub total: Decimal,
    /// Transactions applied (refunds included).
    pub count: i64,
    /// The user's base currency when the window was first written.
    pub currency: String,
    /// `window_end + grace <= clock` of the user's task at the end of the input: the total is
    /// final (and, with `emit = on_window_close`, the one record emitted for the window).
    pub closed: bool,
}

/// One user's local month (`cash-flow` store), positive magnitudes in `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthlyCashFlow {
    /// DEPOSIT, INTEREST, REFUND.
    pub money_in: Decimal,
    /// WITHDRAWAL, PAYMENT, FEE.
    pub money_out: Decimal,
    /// TRANSFER from one of the user's accounts.
    pub transfers_out: Decimal,
    /// TRANSFER into an account of this user (counted once its owner is known).
    pub transfers_in: Decimal,
    /// Transactions counted in the month, transfers in included.
    pub count: i64,
    /// The user's base currency when the month was first written.
    pub currency: String,
}

/// A spending record whose window was already closed: counted, not applied to the window (it
/// still counts in cash flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateRecord {
    pub user_id: String,
    pub transaction_id: String,
    /// Key of the window it would have gone to.
    pub window: DailyKey,
}

/// Everything analytics is expected to end with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyticsOutput {
    pub spending_daily: BTreeMap<DailyKey, DailyTotal>,
    /// Keyed by `(user_id, "YYYY-MM")`, the month local to the user.
    pub cash_flow: BTreeMap<(String, String), MonthlyCashFlow>,
    /// In processing order; `late.len()` is `finstream_late_records_total{processor="analytics"}`.
    pub late: Vec<LateRecord>,
    /// Ignored duplicate deliveries (transactions and transfers in).
    pub duplicates: u64,
}

/// Kafka's default partitioner: `murmur2(key) & 0x7fffffff % partitions`.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) as u32 % partitions.max(1)
}

/// Kafka's murmur2 (seed `0x9747b28c`), as a signed 32-bit value like Java's.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// `amount` in `to`: `amount × usd_rate(from) / usd_rate(to)` half-even to `to`'s minor units, the
/// same currency unchanged; USD is 1 when the table has no USD entry. `None`: a rate is missing.
fn convert(amount: Decimal, from: &str, to: &str, rates: &BTreeMap<String, Decimal>) -> Option<Decimal> {
    if from == to {
        return Some(amount);
    }
    let rate = |c: &str| rates.get(c).copied().or_else(|| (c == "USD").then_some(Decimal::ONE));
    let minor = schemas::currency::minor_units(to).unwrap_or(4);
    let v = amount.checked_mul(rate(from)?)?.checked_div(rate(to)?)?;
    Some(v.round_dp_with_strategy(minor, RoundingStrategy::MidpointNearestEven))
}

/// The analytics part of the reference model's state.
#[derive(Debug, Default)]
pub(crate) struct Analytics {
    cfg: AnalyticsConfig,
    /// user → (timezone, base currency) of the latest profile.
    profiles: BTreeMap<String, (Tz, String)>,
    /// Dedupe: `user|transaction_id` (lane by-user) and `user|transaction_id|in` (transfers in).
    dedupe: Dedupe,
    /// Partition → clock.
    clocks: BTreeMap<u32, i64>,
    pub(crate) out: AnalyticsOutput,
    pub(crate) dead_letters: Vec<DeadLetter>,
}

impl Analytics {
    pub(crate) fn new(cfg: AnalyticsConfig, dedupe: Dedupe) -> Self {
        Analytics { cfg, dedupe, ..Analytics::default() }
    }

    pub(crate) fn profile(&mut self, p: &UserProfile) {
        self.profiles.insert(p.user_id.clone(), (timezone(Some(&p.timezone)), p.base_currency.clone()));
    }

    fn settings(&self, user: &str) -> (Tz, String) {
        self.profiles.get(user).cloned().unwrap_or_else(|| (Tz::UTC, self.cfg.default_base_currency.clone()))
    }

    fn month_entry(&self, user: &str, tz: Tz, base: &str, at: i64) -> ((String, String), MonthlyCashFlow) {
        let month = local_date(tz, schemas::TimestampMillis(at)).format("%Y-%m").to_string();
        let key = (user.to_string(), month);
        let flow = self.out.cash_flow.get(&key).cloned().unwrap_or_else(|| MonthlyCashFlow {
            money_in: Decimal::ZERO,
            money_out: Decimal::ZERO,
            transfers_out: Decimal::ZERO,
            transfers_in: Decimal::ZERO,
            count: 0,
            currency: base.to_string(),
        });
        (key, flow)
    }

    fn dead_letter(&mut self, t: &TransactionEvent) {
        self.dead_letters.push(DeadLetter {
            processor: "analytics",
            source_id: t.transaction_id.clone(),
            reason: "missing_exchange_rate",
        });
    }

    /// A transaction of `t.user_id` (the user-keyed copy of a COMPLETED transaction).
    pub(crate) fn transaction(&mut self, t: &TransactionEvent, rates: &BTreeMap<String, Decimal>) {
        if t.status != TransactionStatus::Completed || t.kind == TransactionKind::Unknown {
            return;
        }
        let user = t.user_id.as_str();
        let key = format!("{user}|{}", t.transaction_id);
        if self.dedupe.seen(Lane::TransactionsByUser, user, &key) {
            self.out.duplicates += 1;
            return;
        }
        let at = t.occurred_at.0;
        let (tz, base) = self.settings(user);
        let (month_key, mut flow) = self.month_entry(user, tz, &base, at);
        let Some(amount) = convert(t.amount, &t.currency, &flow.currency, rates) else {
            return self.dead_letter(t);
        };
        match t.kind {
            TransactionKind::Deposit | TransactionKind::Interest | TransactionKind::Refund => flow.money_in += amount,
            TransactionKind::Withdrawal | TransactionKind::Payment | TransactionKind::Fee => flow.money_out += amount,
            _ => flow.transfers_out += amount,
        }
        flow.count += 1;

        let partition = partition_of(user, self.cfg.partitions);
        let clock = self.clocks.get(&partition).copied().unwrap_or(i64::MIN).max(at);
        let sign = match t.kind {
            TransactionKind::Payment | TransactionKind::Withdrawal | TransactionKind::Fee => Some(Decimal::ONE),
            TransactionKind::Refund => Some(Decimal::NEGATIVE_ONE),
            _ => None,
        };
        let mut window = None;
        let mut late = None;
        if let Some(sign) = sign {
            let date = local_date(tz, t.occurred_at);
            let start = local_midnight(tz, date).0;
            let end = local_midnight(tz, date + Days::new(1)).0;
            let wkey = (user.to_string(), t.category.symbol().to_string(), start);
            if end.saturating_add(self.cfg.grace_ms) <= clock {
                late = Some(LateRecord {
                    user_id: user.to_string(),
                    transaction_id: t.transaction_id.clone(),
                    window: wkey,
                });
            } else {
                let mut w = self.out.spending_daily.get(&wkey).cloned().unwrap_or_else(|| DailyTotal {
                    window_end: end,
                    total: Decimal::ZERO,
                    count: 0,
                    currency: base.clone(),
                    closed: false,
                });
                let Some(v) = convert(t.amount, &t.currency, &w.currency, rates) else {
                    return self.dead_letter(t);
                };
                w.total += sign * v;
                w.count += 1;
                window = Some((wkey, w));
            }
        }
        // Nothing above failed: apply it all.
        self.clocks.insert(partition, clock);
        self.out.cash_flow.insert(month_key, flow);
        if let Some((k, w)) = window {
            self.out.spending_daily.insert(k, w);
        }
        self.out.late.extend(late);
        self.dedupe.remember(Lane::TransactionsByUser, user, &key, at);
    }

    /// The credit leg of a COMPLETED TRANSFER into an account owned by `owner` (as soon as the
    /// owner is known: at once, or when the account's record or own first leg names them).
    pub(crate) fn transfer_in(&mut self, owner: &str, t: &TransactionEvent, rates: &BTreeMap<String, Decimal>) {
        if t.status != TransactionStatus::Completed || t.kind != TransactionKind::Transfer {
            return;
        }
        let key = format!("{owner}|{}|in", t.transaction_id);
        if self.dedupe.seen(Lane::TransfersInByUser, owner, &key) {
            self.out.duplicates += 1;
            return;
        }
        let (tz, base) = self.settings(owner);
        let (month_key, mut flow) = self.month_entry(owner, tz, &base, t.occurred_at.0);
        let Some(amount) = convert(t.amount, &t.currency, &flow.currency, rates) else {
            return self.dead_letter(t);
        };
        flow.transfers_in += amount;
        flow.count += 1;
        self.out.cash_flow.insert(month_key, flow);
        self.dedupe.remember(Lane::TransfersInByUser, owner, &key, t.occurred_at.0);
    }

    /// Marks the windows closed by the final clock of their user's task.
    pub(crate) fn finish(mut self) -> (AnalyticsOutput, Vec<DeadLetter>) {
        for ((user, _, _), w) in self.out.spending_daily.iter_mut() {
            let clock = self.clocks.get(&partition_of(user, self.cfg.partitions)).copied().unwrap_or(i64::MIN);
            w.closed = w.window_end.saturating_add(self.cfg.grace_ms) <= clock;
        }
        (self.out, self.dead_letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_test_vectors() {
        for (key, want) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key.as_bytes()), want, "{key}");
        }
        assert_eq!(partition_of("anything", 1), 0);
    }

    #[test]
    fn conversion_rounds_half_even_and_usd_defaults_to_one() {
        let rates: BTreeMap<String, Decimal> =
            [("EUR".to_string(), Decimal::new(1085, 3)), ("JPY".to_string(), Decimal::new(67, 4))].into();
        assert_eq!(convert(Decimal::new(1000, 2), "USD", "JPY", &rates), Some(Decimal::new(1493, 0)));
        assert_eq!(convert(Decimal::new(10850, 2), "USD", "EUR", &rates), Some(Decimal::new(10000, 2)));
        assert_eq!(convert(Decimal::new(1, 0), "GBP", "EUR", &rates), None);
        assert_eq!(convert(Decimal::new(105, 3), "KWD", "KWD", &rates), Some(Decimal::new(105, 3)));
    }
}
