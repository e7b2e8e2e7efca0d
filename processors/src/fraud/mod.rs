//! Fraud scoring (keyed by account): every PAYMENT, WITHDRAWAL and TRANSFER, whatever its status,
//! gets one `FraudScore` on `fraud-scores` from features kept in the `fraud-state` store; REVIEW
//! and DECLINE also raise a FRAUD_ALERT notification. See docs/money-rules.md, "Fraud scores".
//!
//! Two processors share the state: `fraud` reads `transactions` (scores, and applies the leg on
//! `account_id` of COMPLETED records to fraud's own balance), `fraud-credits` reads the
//! `transfer-credits` repartition (applies a transfer's credit leg to that balance). Fraud's
//! balance exists only for RAPID_DRAIN: it never touches the `balances` store and no error of
//! this module dead-letters a record (a missing rate only switches the amount features off).
//!
//! Features (weights and thresholds in [`FraudConfig`]):
//! - VELOCITY: more than `velocity_max_count` scored transactions in the sliding window ending
//!   at this one (`(t - window, t]`, this one included).
//! - AMOUNT_ANOMALY: amount (USD) far above the account's COMPLETED outflows over the history
//!   horizon, with at least `anomaly_min_history` of them. Spending amounts are roughly
//!   log-normal (many small payments, a few large ones), so the statistics are kept on
//!   `ln(amount in USD)`: the amount must exceed `exp(mean + k·σ)` and `m × exp(mean)` (m times
//!   the geometric mean). On raw amounts a 3σ bar flags ordinary 200 USD purchases of an account
//!   that mostly buys coffee, and is blown open by a single rent payment. Statistics are per-day
//!   Welford buckets `(n, mean, M2)` merged with Chan's formula: never raw history.
//! - NEW_MERCHANT: first transaction of the account at `merchant_id`, amount ≥ a USD minimum.
//! - IMPOSSIBLE_TRAVEL: haversine distance / time from the previous located transaction above
//!   the speed limit (hops shorter than `impossible_travel_min_km` are ignored).
//! - FOREIGN_COUNTRY: `location.country` differs from the profile's `home_country`.
//! - NIGHT_TIME: local hour in the user's timezone within the night hours.
//! - HIGH_RISK_MCC: `merchant.mcc` in the configured list.
//! - RAPID_DRAIN: non-FAILED outflows in the hour ending now above `ratio` × the money available
//!   at the start of that window (fraud's balance in USD just before its first outflow, plus
//!   COMPLETED inflows after that), and at least a USD minimum.
//!
//! The account's own history is learnt from approved behaviour only: a transaction scored REVIEW
//! or DECLINE is suspect until someone reviews it, so it feeds neither the amount statistics nor
//! the reference location of IMPOSSIBLE_TRAVEL. Otherwise an attack normalises itself (the first
//! large withdrawal of a drain makes the next ones look ordinary) and a fraudulent use far away
//! makes the cardholder's next purchase at home look impossible.

use std::sync::Arc;

use chrono::Timelike;
use rust_decimal::Decimal;
use schemas::{FraudDecision, FraudScore, Notification, NotificationKind, TimestampMillis, TransactionEvent};
use streams::{JsonSerde, KvStoreDef, ProcessError, Processor, ProcessorContext, Record, StringSerde};

use crate::dedupe::{Dedupe, Lane};
use crate::legs::{credit_leg, debit_leg, Leg};
use crate::money_fmt::format_money;
use crate::periods::user_tz;
use crate::topology::{nodes, stores, Shared};

/// Typed handle of the `fraud` store: account_id → fraud's features and own balance.
pub const FRAUD_STATE_STORE: KvStoreDef<String, FraudState> =
    KvStoreDef::new(stores::FRAUD, &StringSerde, &JsonSerde::new());

/// Typed handle of the `fraud-scores` store: account_id → the latest scores, newest first.
pub const FRAUD_SCORES_STORE: KvStoreDef<String, Vec<FraudScore>> =
    KvStoreDef::new(stores::FRAUD_SCORES, &StringSerde, &JsonSerde::new());

mod score;
mod state;

pub use score::{decide, features, haversine_km, is_scored, score, Context};
pub use state::{FraudState, LastLocation, RecentTx, RunningStats};

const DAY_MS: i64 = 86_400_000;
/// Merchants remembered per account (the least recently seen are forgotten first).
pub const MERCHANTS_KEPT: usize = 1000;
/// Recent transactions kept per account, whatever the windows say.
pub const RECENT_KEPT: usize = 500;
/// How long a flagged transaction id is remembered, so that its COMPLETED update (a PENDING
/// purchase completes a day or two later) stays out of the statistics too.
pub const SUSPECTS_KEPT_MS: i64 = 7 * DAY_MS;

/// Which leg a fraud processor applies to its balance.
pub struct FraudProcessor {
    shared: Arc<Shared>,
    leg: Leg,
    dedupe: Dedupe,
}

impl FraudProcessor {
    pub fn new(shared: Arc<Shared>, leg: Leg) -> Self {
        let lane = match leg {
            Leg::Debit => Lane::Transactions,
            Leg::Credit => Lane::TransferCredits,
        };
        let dedupe = shared.dedupe(stores::FRAUD_DEDUPE, lane);
        FraudProcessor { shared, leg, dedupe }
    }

    fn usd(
        &self,
        ctx: &ProcessorContext<'_>,
        amount: Decimal,
        currency: &str,
    ) -> Result<Option<Decimal>, ProcessError> {
        Ok(self.shared.tables.usd_rate(ctx, currency)?.and_then(|r| amount.checked_mul(r)))
    }

    fn balance_usd(&self, ctx: &ProcessorContext<'_>, state: &FraudState) -> Result<Decimal, ProcessError> {
        let mut total = Decimal::ZERO;
        for (c, v) in &state.balances {
            if let Some(u) = self.usd(ctx, *v, c)? {
                total = total.saturating_add(u);
            }
        }
        Ok(total)
    }

    fn score_and_emit(
        &self,
        tx: &TransactionEvent,
        state: &mut FraudState,
        amount_usd: Option<Decimal>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let cfg = &self.shared.config.fraud;
        let profile = self.shared.tables.profile(ctx, &tx.user_id)?;
        let tz = user_tz(&self.shared.tables, ctx, &tx.user_id)?;
        let t = tx.occurred_at.0;
        let local_hour = chrono::DateTime::from_timestamp_millis(t).map_or(12, |u| u.with_timezone(&tz).hour());
        let cx = Context {
            amount_usd,
            balance_usd: self.balance_usd(ctx, state)?,
            home_country: profile.map(|p| p.home_country),
            local_hour,
        };
        let (points, reasons) = score(tx, state, &cx, cfg);
        let decision = decide(points, cfg);
        let flagged = matches!(decision, FraudDecision::Review | FraudDecision::Decline);
        state.remember_scored(tx, &cx, cfg, flagged);
        let fs = FraudScore {
            transaction_id: tx.transaction_id.clone(),
            account_id: tx.account_id.clone(),
            user_id: tx.user_id.clone(),
            score: points,
            decision,
            reasons,
            model_version: cfg.model_version.clone(),
            scored_at: TimestampMillis(t),
        };
        let mut kept = ctx.store(&FRAUD_SCORES_STORE)?;
        let mut list = kept.get(&tx.account_id)?.unwrap_or_default();
        list.insert(0, fs.clone());
        list.truncate(cfg.scores_kept);
        kept.put(&tx.account_id, &list)?;
        if flagged {
            let n = alert(&fs, tx);
            ctx.forward_to::<String, Notification>(
                nodes::FRAUD_NOTIFICATIONS_SINK,
                Record::new(tx.user_id.clone(), n, t),
            )?;
        }
        ctx.forward_to(nodes::FRAUD_SCORES_SINK, Record::new(tx.account_id.clone(), fs, t))
    }
}

/// FRAUD_ALERT for a REVIEW or DECLINE score: `notification_id = fraud:{transaction_id}`.
pub fn alert(fs: &FraudScore, tx: &TransactionEvent) -> Notification {
    let title = match fs.decision {
        FraudDecision::Decline => "Suspicious transaction: high risk",
        _ => "Suspicious transaction: please review",
    };
    let features: Vec<&str> = fs.reasons.iter().filter_map(|r| r.split_whitespace().next()).collect();
    let at = tx.merchant.as_ref().map(|m| format!(" at {}", m.name)).unwrap_or_default();
    Notification {
        notification_id: format!("fraud:{}", tx.transaction_id),
        user_id: tx.user_id.clone(),
        kind: NotificationKind::FraudAlert,
        title: title.to_string(),
        message: format!(
            "A {} of {}{at} on account {} scored {}/100 ({}): {}.",
            tx.kind.symbol(),
            format_money(tx.amount, &tx.currency),
            tx.account_id,
            fs.score,
            fs.decision.symbol(),
            features.join(", ")
        ),
        source_event_id: tx.transaction_id.clone(),
        created_at: fs.scored_at,
    }
}

impl Processor<String, TransactionEvent> for FraudProcessor {
    fn process(
        &mut self,
        record: Record<String, TransactionEvent>,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        let tx = &record.value;
        let account = match self.leg {
            Leg::Debit => tx.account_id.clone(),
            Leg::Credit => match credit_leg(tx) {
                Some(l) => l.account_id,
                None => return Ok(()),
            },
        };
        let mut state = ctx.store(&FRAUD_STATE_STORE)?.get(&account)?;
        let before = state.clone();
        let st = state.get_or_insert_with(|| FraudState::new(&account));
        let amount_usd = self.usd(ctx, tx.amount, &tx.currency)?;
        let t = tx.occurred_at.0;
        if self.leg == Leg::Debit {
            st.user_id = tx.user_id.clone();
            let key = format!("{account}|{}|score", tx.transaction_id);
            if is_scored(tx.kind) && !self.dedupe.seen(ctx, &key)? {
                self.score_and_emit(tx, st, amount_usd, ctx)?;
                self.dedupe.remember(ctx, &key, t)?;
            }
        }
        let leg = match self.leg {
            Leg::Debit => debit_leg(tx),
            Leg::Credit => credit_leg(tx),
        };
        if let Some(mv) = leg {
            let key = format!("{account}|{}|{}", tx.transaction_id, mv.leg.as_str());
            if !self.dedupe.seen(ctx, &key)? {
                st.apply_leg(tx, mv.signed_amount, amount_usd, &self.shared.config.fraud);
                self.dedupe.remember(ctx, &key, t)?;
            }
        }
        if state != before {
            if let Some(s) = &state {
                ctx.store(&FRAUD_STATE_STORE)?.put(&account, s)?;
            }
        }
        Ok(())
    }
}
