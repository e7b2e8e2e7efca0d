//! Spending analytics (keyed by user): daily spending per (user, category) in windows from local
//! midnight to local midnight in the user's timezone, and monthly cash flow per user. See
//! docs/money-rules.md, "Spending analytics".
//!
//! Why not the engine's `WindowedAggregate`: its `TimeWindows` are fixed-size and aligned to the
//! epoch, so a window cannot start at a user's local midnight, and a DST day lasts 23 or 25
//! hours. Its closing also follows the task's stream time, which in this sub-topology includes
//! the `budgets` and `financial-goals` topics (a budget SET dated next week would close today's
//! windows) and restarts from the replayed records after a crash. So this processor keeps the
//! window bookkeeping itself, with the engine's building blocks: the windows live in a window
//! store (`spending-daily`, key `user|category` + window start), windows not yet final in an
//! index ordered by end time (`spending-daily-open`, the engine's `OpenWindowSerde`), and the
//! clock that decides lateness and closing is the largest `occurred_at` of the transactions this
//! task has applied or rejected as late, kept in the `analytics-clock` store so that a crash or
//! a lost state directory replays to exactly the same decisions. Late records are counted on the
//! engine's `finstream_late_records_total{processor="analytics"}` and not applied to windows.

use std::sync::Arc;

use chrono::Days;
use rust_decimal::Decimal;
use schemas::{Category, SpendingAggregate, TimestampMillis, TransactionEvent, TransactionKind};
use serde::{Deserialize, Serialize};
use streams::store::query::{Owner, QuerySpec, Routing};
use streams::{
    EmitStrategy, JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record, StringSerde, Windowed,
};

use crate::dedupe::{user_key, Dedupe, Lane};
use crate::legs::{moves_money, spending_delta};
use crate::periods::{local_date, local_midnight_ms, parse_tz};
use crate::topology::{nodes, stores, Shared, UserInput};
use crate::{fx, periods};

/// Typed handle of the `cash-flow` store: `user_id|YYYY-MM` → the month's cash flow.
///
/// Queryable on `/v1/stores/cash-flow` by the user before the `|`, which is also the record key
/// the users sub-topology is partitioned by: `?prefix=user|2026-` lists a user's months.
pub const CASH_FLOW_STORE: KvStoreDef<String, CashFlow> =
    KvStoreDef::new(stores::CASH_FLOW, &StringSerde, &JsonSerde::new()).queryable(
        QuerySpec::string_keys()
            .owned_by(Owner::Key(|key| key.split_once('|').map(|(user, _)| user)))
            .routed_by(Routing::Derived(user_of_key)),
    );

/// The user a `cash-flow` key (or key prefix) belongs to, once it has its `|`.
fn user_of_key(text: &str) -> Option<Vec<u8>> {
    text.split_once('|').map(|(user, _)| user.as_bytes().to_vec()).filter(|u| !u.is_empty())
}

/// Typed handle of the `analytics-clock` store: `"clock"` → the largest `occurred_at` analytics has seen.
pub const ANALYTICS_CLOCK_STORE: KvStoreDef<String, i64> =
    KvStoreDef::new(stores::ANALYTICS_CLOCK, &StringSerde, &JsonSerde::new());

/// Key of the single entry of the `analytics-clock` store.
pub const CLOCK_KEY: &str = "clock";

/// Value of the `spending-daily` window store (key `user_id|category`, window start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailySpending {
    pub user_id: String,
    pub category: Category,
    /// Local midnight starting the day, UTC epoch millis (inclusive).
    pub window_start: i64,
    /// The next local midnight, UTC epoch millis (exclusive).
    pub window_end: i64,
    /// Net spending (PAYMENT + WITHDRAWAL + FEE - REFUND) in `currency`.
    pub total: Decimal,
    /// Transactions applied (refunds included).
    pub count: i64,
    /// The user's base currency when the window was opened.
    pub currency: String,
}

impl DailySpending {
    pub fn to_event(&self) -> SpendingAggregate {
        SpendingAggregate {
            user_id: self.user_id.clone(),
            category: self.category,
            window_start: TimestampMillis(self.window_start),
            window_end: TimestampMillis(self.window_end),
            total: self.total,
            count: self.count,
            currency: self.currency.clone(),
        }
    }
}

/// Value of the `cash-flow` store (key `user_id|YYYY-MM`, the local month in the user's
/// timezone). All amounts are positive magnitudes in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashFlow {
    pub user_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// DEPOSIT, INTEREST, REFUND.
    pub money_in: Decimal,
    /// WITHDRAWAL, PAYMENT, FEE.
    pub money_out: Decimal,
    /// TRANSFER from one of the user's accounts.
    pub transfers_out: Decimal,
    /// TRANSFER into an account whose owner is this user (when known at processing time).
    pub transfers_in: Decimal,
    /// Transactions applied to this month (transfers in included).
    pub count: i64,
    /// The user's base currency when the month was opened.
    pub currency: String,
}

/// The `cash-flow` key of a user's local month.
pub fn cash_flow_key(user_id: &str, month: &str) -> String {
    format!("{user_id}|{month}")
}

/// The `spending-daily` key of a user's category.
pub fn window_key(user_id: &str, category: Category) -> String {
    format!("{user_id}|{}", category.symbol())
}

/// The day window `[start, end)` containing `at` in timezone `tz`.
pub fn day_window(tz: chrono_tz::Tz, at: i64) -> Result<(i64, i64), ProcessError> {
    let date = local_date(tz, at)?;
    let next = date
        .checked_add_days(Days::new(1))
        .ok_or_else(|| ProcessError::data(periods::INVALID_TIMESTAMP, format!("timestamp {at} out of range")))?;
    Ok((local_midnight_ms(tz, date), local_midnight_ms(tz, next)))
}

type OpenKey = (i64, Windowed<String>);

pub struct AnalyticsProcessor {
    shared: Arc<Shared>,
    /// The user's transactions (spending and cash flow).
    dedupe: Dedupe,
    /// Transfers into the user's accounts: their own stream, so their own clock.
    dedupe_in: Dedupe,
}

impl AnalyticsProcessor {
    pub fn new(shared: Arc<Shared>) -> Self {
        let dedupe = shared.dedupe(stores::ANALYTICS_DEDUPE, Lane::TransactionsByUser);
        let dedupe_in = shared.dedupe(stores::ANALYTICS_DEDUPE, Lane::TransfersInByUser);
        AnalyticsProcessor { shared, dedupe, dedupe_in }
    }

    fn emit_strategy(&self) -> EmitStrategy {
        self.shared.config.analytics.emit.strategy()
    }

    /// The user's timezone and base currency (latest profile; UTC and the configured default
    /// when unknown).
    fn user_settings(&self, ctx: &ProcessorContext<'_>, user: &str) -> Result<(chrono_tz::Tz, String), ProcessError> {
        Ok(match self.shared.tables.profile(ctx, user)? {
            Some(p) => (parse_tz(&p.timezone), p.base_currency),
            None => (chrono_tz::Tz::UTC, self.shared.config.analytics.default_base_currency.clone()),
        })
    }

    fn load_cash_flow(
        ctx: &mut ProcessorContext<'_>,
        user: &str,
        month: &str,
        base: &str,
    ) -> Result<CashFlow, ProcessError> {
        Ok(ctx.store(&CASH_FLOW_STORE)?.get(&cash_flow_key(user, month))?.unwrap_or_else(|| CashFlow {
            user_id: user.to_string(),
            month: month.to_string(),
            money_in: Decimal::ZERO,
            money_out: Decimal::ZERO,
            transfers_out: Decimal::ZERO,
            transfers_in: Decimal::ZERO,
            count: 0,
            currency: base.to_string(),
        }))
    }

    fn transaction(
        &mut self,
        user: &str,
        tx: &TransactionEvent,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        if !moves_money(tx) {
            return Ok(());
        }
        let key = user_key(user, &tx.transaction_id);
        if self.dedupe.seen(ctx, &key)? {
            return Ok(());
        }
        let at = tx.occurred_at.0;
        let (tz, base) = self.user_settings(ctx, user)?;
        let month = local_date(tz, at)?.format("%Y-%m").to_string();

        // Everything fallible about the record comes before any write.
        let mut flow = Self::load_cash_flow(ctx, user, &month, &base)?;
        let magnitude = fx::convert(&self.shared.tables, ctx, tx.amount, &tx.currency, &flow.currency)?;
        let line = match tx.kind {
            TransactionKind::Deposit | TransactionKind::Interest | TransactionKind::Refund => &mut flow.money_in,
            TransactionKind::Withdrawal | TransactionKind::Payment | TransactionKind::Fee => &mut flow.money_out,
            TransactionKind::Transfer => &mut flow.transfers_out,
            TransactionKind::Unknown => return Ok(()),
        };
        *line += magnitude;
        flow.count += 1;

        let clock = ctx.store(&ANALYTICS_CLOCK_STORE)?.get(&CLOCK_KEY.to_string())?;
        let clock = clock.unwrap_or(i64::MIN).max(at);
        let grace = self.shared.config.analytics.grace_ms;
        let mut daily = None;
        if let Some(delta) = spending_delta(tx) {
            let (start, end) = day_window(tz, at)?;
            if end.saturating_add(grace) <= clock {
                ctx.count_late();
                tracing::debug!(user, transaction_id = %tx.transaction_id, start, "late record not applied to its daily window");
            } else {
                let wkey = window_key(user, tx.category);
                let existing = ctx.window_store::<String, DailySpending>(stores::SPENDING_DAILY)?.get(&wkey, start)?;
                let is_new = existing.is_none();
                let mut w = existing.unwrap_or_else(|| DailySpending {
                    user_id: user.to_string(),
                    category: tx.category,
                    window_start: start,
                    window_end: end,
                    total: Decimal::ZERO,
                    count: 0,
                    currency: base.clone(),
                });
                let converted = fx::convert(&self.shared.tables, ctx, delta.abs(), &tx.currency, &w.currency)?;
                w.total += if delta.is_sign_negative() { -converted } else { converted };
                w.count += 1;
                daily = Some((wkey, w, is_new));
            }
        }

        // Writes.
        ctx.store(&ANALYTICS_CLOCK_STORE)?.put(&CLOCK_KEY.to_string(), &clock)?;
        ctx.store(&CASH_FLOW_STORE)?.put(&cash_flow_key(user, &month), &flow)?;
        if let Some((wkey, w, is_new)) = daily {
            ctx.window_store::<String, DailySpending>(stores::SPENDING_DAILY)?.put(&wkey, w.window_start, &w)?;
            if self.emit_strategy() == EmitStrategy::OnUpdate {
                ctx.forward_to(nodes::SPENDING_DAILY_SINK, Record::new(user.to_string(), w.to_event(), at))?;
            }
            if is_new {
                let windowed = Windowed { key: wkey, start: w.window_start, end: w.window_end };
                ctx.kv_store::<OpenKey, ()>(stores::SPENDING_DAILY_OPEN)?.put(&(w.window_end, windowed), &())?;
            }
        }
        self.dedupe.remember(ctx, &key, at)?;
        self.advance(clock, ctx)
    }

    /// Closes every window whose end plus grace has passed (emitting its final total with
    /// OnWindowClose) and deletes the closed windows that fell out of retention. Both indexes
    /// are ordered by window end, so each step scans only the windows that are due.
    fn advance(&mut self, clock: i64, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let cfg = &self.shared.config.analytics;
        let final_only = self.emit_strategy() == EmitStrategy::OnWindowClose;
        for (end, w) in due(ctx, stores::SPENDING_DAILY_OPEN, clock.saturating_sub(cfg.grace_ms))? {
            ctx.kv_store::<OpenKey, ()>(stores::SPENDING_DAILY_OPEN)?.delete(&(end, w.clone()))?;
            if final_only {
                let value = ctx.window_store::<String, DailySpending>(stores::SPENDING_DAILY)?.get(&w.key, w.start)?;
                if let Some(v) = value {
                    let user = v.user_id.clone();
                    ctx.forward_to(nodes::SPENDING_DAILY_SINK, Record::new(user, v.to_event(), end - 1))?;
                }
            }
            ctx.kv_store::<OpenKey, ()>(stores::SPENDING_DAILY_CLOSED)?.put(&(end, w), &())?;
        }
        let horizon = clock.saturating_sub(cfg.retention_ms.max(cfg.grace_ms));
        for (end, w) in due(ctx, stores::SPENDING_DAILY_CLOSED, horizon)? {
            ctx.window_store::<String, DailySpending>(stores::SPENDING_DAILY)?.delete(&w.key, w.start)?;
            ctx.kv_store::<OpenKey, ()>(stores::SPENDING_DAILY_CLOSED)?.delete(&(end, w))?;
        }
        Ok(())
    }

    /// A transfer into an account owned by `owner` (routed by `transfer-in-owner`).
    fn transfer_in(
        &mut self,
        owner: &str,
        tx: &TransactionEvent,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        if !moves_money(tx) || tx.kind != TransactionKind::Transfer {
            return Ok(());
        }
        let key = format!("{}|in", user_key(owner, &tx.transaction_id));
        if self.dedupe_in.seen(ctx, &key)? {
            return Ok(());
        }
        let at = tx.occurred_at.0;
        let (tz, base) = self.user_settings(ctx, owner)?;
        let month = local_date(tz, at)?.format("%Y-%m").to_string();
        let mut flow = Self::load_cash_flow(ctx, owner, &month, &base)?;
        flow.transfers_in += fx::convert(&self.shared.tables, ctx, tx.amount, &tx.currency, &flow.currency)?;
        flow.count += 1;
        ctx.store(&CASH_FLOW_STORE)?.put(&cash_flow_key(owner, &month), &flow)?;
        self.dedupe_in.remember(ctx, &key, at)
    }
}

/// Entries of an index keyed `(window end, window)` with `end <= upto`, oldest first.
fn due(ctx: &mut ProcessorContext<'_>, index: &str, upto: i64) -> Result<Vec<OpenKey>, ProcessError> {
    // The key starts with the end time, sign bit flipped: byte order is time order.
    let upper = ((upto.saturating_add(1) as u64) ^ (1 << 63)).to_be_bytes();
    let entries = ctx.kv_store::<OpenKey, ()>(index)?.range_bytes(None, Some(&upper))?;
    Ok(entries.into_iter().map(|(k, _)| k).collect())
}

impl Processor<String, UserInput> for AnalyticsProcessor {
    fn process(
        &mut self,
        record: Record<String, UserInput>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        match &record.value {
            UserInput::Transaction(tx) => self.transaction(&record.key, tx, ctx),
            UserInput::TransferIn(tx) => self.transfer_in(&record.key, tx, ctx),
            UserInput::Budget(_) | UserInput::Goal(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn day_windows_are_local_midnights_and_dst_days_are_23_or_25_hours() {
        let berlin = parse_tz("Europe/Berlin");
        let (s, e) = day_window(berlin, ms("2026-03-29T12:00:00+02:00")).unwrap();
        assert_eq!((s, e), (ms("2026-03-29T00:00:00+01:00"), ms("2026-03-30T00:00:00+02:00")));
        assert_eq!(e - s, 23 * 3_600_000);
        let (s, e) = day_window(berlin, ms("2026-10-25T12:00:00+01:00")).unwrap();
        assert_eq!((s, e), (ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00")));
        assert_eq!(e - s, 25 * 3_600_000);
        let (s, _) = day_window(berlin, ms("2026-01-10T23:59:59.999+01:00")).unwrap();
        assert_eq!(s, ms("2026-01-10T00:00:00+01:00"));
        let (s, _) = day_window(berlin, ms("2026-01-11T00:00:00+01:00")).unwrap();
        assert_eq!(s, ms("2026-01-11T00:00:00+01:00"));
    }
}
