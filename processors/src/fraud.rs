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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Timelike;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use schemas::{
    FraudDecision, FraudScore, Notification, NotificationKind, TimestampMillis, TransactionEvent, TransactionKind,
    TransactionStatus,
};
use serde::{Deserialize, Serialize};
use streams::{ProcessError, Processor, ProcessorContext, PunctuationType, Record};

use crate::config::FraudConfig;
use crate::dedupe::Dedupe;
use crate::legs::{credit_leg, debit_leg, Leg};
use crate::money_fmt::format_money;
use crate::periods::user_tz;
use crate::topology::{nodes, stores, Shared};

const DAY_MS: i64 = 86_400_000;
/// Merchants remembered per account (the least recently seen are forgotten first).
pub const MERCHANTS_KEPT: usize = 1000;
/// Recent transactions kept per account, whatever the windows say.
pub const RECENT_KEPT: usize = 500;
/// How long a flagged transaction id is remembered, so that its COMPLETED update (a PENDING
/// purchase completes a day or two later) stays out of the statistics too.
pub const SUSPECTS_KEPT_MS: i64 = 7 * DAY_MS;
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Feature names, the first word of every reason.
pub mod features {
    pub const VELOCITY: &str = "VELOCITY";
    pub const AMOUNT_ANOMALY: &str = "AMOUNT_ANOMALY";
    pub const NEW_MERCHANT: &str = "NEW_MERCHANT";
    pub const IMPOSSIBLE_TRAVEL: &str = "IMPOSSIBLE_TRAVEL";
    pub const FOREIGN_COUNTRY: &str = "FOREIGN_COUNTRY";
    pub const NIGHT_TIME: &str = "NIGHT_TIME";
    pub const HIGH_RISK_MCC: &str = "HIGH_RISK_MCC";
    pub const RAPID_DRAIN: &str = "RAPID_DRAIN";
}

/// Running statistics of `ln(amount in USD)` of one day's COMPLETED outflows (Welford).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    pub n: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl RunningStats {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }
    /// Chan et al.'s parallel combination.
    pub fn merge(&self, other: &RunningStats) -> RunningStats {
        if self.n == 0 {
            return *other;
        }
        if other.n == 0 {
            return *self;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let mean = self.mean + delta * other.n as f64 / n as f64;
        let m2 = self.m2 + other.m2 + delta * delta * (self.n as f64) * (other.n as f64) / n as f64;
        RunningStats { n, mean, m2 }
    }
    /// Population standard deviation.
    pub fn std_dev(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2.max(0.0) / self.n as f64).sqrt()
        }
    }
}

/// A scored transaction or an applied inflow, remembered for the sliding windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentTx {
    pub transaction_id: String,
    pub at: i64,
    /// Processing order on this account.
    pub seq: u64,
    /// A scored transaction (counts for VELOCITY); otherwise an applied inflow.
    pub scored: bool,
    /// Amount in USD when it counts toward RAPID_DRAIN (not FAILED, rate known).
    pub outflow_usd: Option<Decimal>,
    /// Amount in USD of a COMPLETED inflow (DEPOSIT, REFUND, INTEREST, transfer credit).
    pub inflow_usd: Option<Decimal>,
    /// Fraud's balance of the account in USD just before this transaction (rates known).
    pub balance_before_usd: Option<Decimal>,
}

/// The previous located transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastLocation {
    pub transaction_id: String,
    pub at: i64,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
}

/// Value of the `fraud-state` store (key: account_id). Private to fraud scoring.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FraudState {
    pub account_id: String,
    /// Owner from the latest transaction on this account (`""` when only ever credited).
    pub user_id: String,
    /// Fraud's own balance per currency from COMPLETED legs (never the `balances` store).
    pub balances: BTreeMap<String, Decimal>,
    /// Scored transactions within the longest sliding window, oldest first.
    pub recent: Vec<RecentTx>,
    /// Day (epoch millis / 86 400 000) → statistics of `ln(USD amount)` of that day's approved
    /// COMPLETED outflows.
    pub stats: BTreeMap<i64, RunningStats>,
    /// transaction_id → `occurred_at` of the transactions scored REVIEW or DECLINE in the last
    /// [`SUSPECTS_KEPT_MS`]: their legs do not feed the statistics.
    #[serde(default)]
    pub suspects: BTreeMap<String, i64>,
    /// merchant_id → `occurred_at` of the latest transaction there.
    pub merchants: BTreeMap<String, i64>,
    /// The approved located transaction with the latest `occurred_at` (IMPOSSIBLE_TRAVEL).
    pub last_location: Option<LastLocation>,
    /// Largest `occurred_at` seen on this account.
    pub max_at: i64,
    /// `seq` of the next entry of `recent`.
    pub next_seq: u64,
}

/// Great-circle distance in km.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// Whether the kind is scored (PAYMENT, WITHDRAWAL, TRANSFER).
pub fn is_scored(kind: TransactionKind) -> bool {
    matches!(kind, TransactionKind::Payment | TransactionKind::Withdrawal | TransactionKind::Transfer)
}

/// DECLINE at or above `decline`, REVIEW at or above `review`, else APPROVE.
pub fn decide(score: i32, cfg: &FraudConfig) -> FraudDecision {
    if score >= cfg.decline_threshold {
        FraudDecision::Decline
    } else if score >= cfg.review_threshold {
        FraudDecision::Review
    } else {
        FraudDecision::Approve
    }
}

/// What the features need besides the account's state, looked up by the processor.
pub struct Context {
    /// The transaction's amount in USD, when its rate is known.
    pub amount_usd: Option<Decimal>,
    /// Fraud's balance of the account in USD before this transaction (components with unknown
    /// rates left out).
    pub balance_usd: Decimal,
    pub home_country: Option<String>,
    /// Local hour of `occurred_at` in the user's timezone.
    pub local_hour: u32,
}

/// Scores `tx` against `state` (as it was before `tx`): `(score, reasons)`. Pure.
pub fn score(tx: &TransactionEvent, state: &FraudState, cx: &Context, cfg: &FraudConfig) -> (i32, Vec<String>) {
    let t = tx.occurred_at.0;
    let mut reasons = Vec::new();
    let mut total: i64 = 0;
    let mut fire = |name: &str, weight: i32, detail: String| {
        total += i64::from(weight);
        reasons.push(format!("{name} +{weight}: {detail}"));
    };

    // VELOCITY
    let in_window = |w: i64| move |r: &&RecentTx| r.at > t - w && r.at <= t;
    let count = 1 + state.recent.iter().filter(|r| r.scored).filter(in_window(cfg.velocity_window_ms)).count();
    if count > cfg.velocity_max_count {
        fire(
            features::VELOCITY,
            cfg.velocity_weight,
            format!(
                "{count} transactions within {} min (more than {})",
                cfg.velocity_window_ms / 60_000,
                cfg.velocity_max_count
            ),
        );
    }

    // AMOUNT_ANOMALY (statistics of ln(USD amount))
    if let Some(x) = cx.amount_usd.and_then(|a| a.to_f64()).filter(|x| x.is_finite() && *x > 0.0) {
        let horizon_day = (t - cfg.anomaly_history_ms).div_euclid(DAY_MS);
        let stats = state.stats.range(horizon_day..).fold(RunningStats::default(), |acc, (_, s)| acc.merge(s));
        if stats.n >= cfg.anomaly_min_history {
            let typical = stats.mean.exp();
            let bar = (stats.mean + cfg.anomaly_sigmas * stats.std_dev()).exp();
            if x > bar && x >= cfg.anomaly_min_multiple * typical {
                fire(
                    features::AMOUNT_ANOMALY,
                    cfg.anomaly_weight,
                    format!(
                        "{x:.2} USD is above {bar:.2} USD (typical {typical:.2} USD, {}σ on a log scale) of {} prior outflows",
                        cfg.anomaly_sigmas, stats.n
                    ),
                );
            }
        }
    }

    // NEW_MERCHANT
    if let (Some(m), Some(usd)) = (&tx.merchant, cx.amount_usd) {
        if !m.merchant_id.is_empty() && !state.merchants.contains_key(&m.merchant_id) && usd >= cfg.new_merchant_min_usd
        {
            fire(
                features::NEW_MERCHANT,
                cfg.new_merchant_weight,
                format!("first transaction at {} ({}) for this account", m.name, m.merchant_id),
            );
        }
    }

    // IMPOSSIBLE_TRAVEL
    if let (Some(loc), Some(prev)) = (&tx.location, &state.last_location) {
        let km = haversine_km(prev.lat, prev.lon, loc.lat, loc.lon);
        let hours = (t - prev.at).unsigned_abs() as f64 / 3_600_000.0;
        if km >= cfg.impossible_travel_min_km && (hours == 0.0 || km / hours > cfg.impossible_travel_kmh) {
            let speed = if hours == 0.0 { "at once".to_string() } else { format!("{:.0} km/h", km / hours) };
            fire(
                features::IMPOSSIBLE_TRAVEL,
                cfg.impossible_travel_weight,
                format!(
                    "{km:.0} km from {} ({}) in {:.0} min: {speed}",
                    prev.country,
                    prev.transaction_id,
                    hours * 60.0
                ),
            );
        }
    }

    // FOREIGN_COUNTRY
    if let (Some(loc), Some(home)) = (&tx.location, &cx.home_country) {
        if !loc.country.is_empty() && !home.is_empty() && !loc.country.eq_ignore_ascii_case(home) {
            fire(
                features::FOREIGN_COUNTRY,
                cfg.foreign_country_weight,
                format!("in {}, home country {home}", loc.country),
            );
        }
    }

    // NIGHT_TIME
    let (s, e, h) = (cfg.night_start_hour, cfg.night_end_hour, cx.local_hour);
    let night = if s <= e { s <= h && h < e } else { h >= s || h < e };
    if night {
        fire(features::NIGHT_TIME, cfg.night_time_weight, format!("local hour {h:02} is within {s:02}:00-{e:02}:00"));
    }

    // HIGH_RISK_MCC
    if let Some(m) = &tx.merchant {
        if cfg.high_risk_mccs.iter().any(|c| c == &m.mcc) {
            fire(features::HIGH_RISK_MCC, cfg.high_risk_mcc_weight, format!("merchant category {}", m.mcc));
        }
    }

    // RAPID_DRAIN
    if let Some(out) = outflow_usd(tx, cx) {
        let window: Vec<&RecentTx> = state.recent.iter().filter(in_window(cfg.rapid_drain_window_ms)).collect();
        let sum: Decimal = window.iter().filter_map(|r| r.outflow_usd).sum::<Decimal>() + out;
        // The balance at the window's start: just before its first outflow (or this one), plus
        // what came in after that, so a salary arriving mid-window is spendable money.
        let first = window.iter().filter(|r| r.outflow_usd.is_some()).min_by_key(|r| (r.at, r.seq));
        let available = match first {
            None => Some(cx.balance_usd),
            Some(f) => f
                .balance_before_usd
                .map(|b| b + window.iter().filter(|r| r.seq > f.seq).filter_map(|r| r.inflow_usd).sum::<Decimal>()),
        };
        if let Some(start) = available {
            if start > Decimal::ZERO && sum >= cfg.rapid_drain_min_usd && sum > cfg.rapid_drain_ratio * start {
                fire(
                    features::RAPID_DRAIN,
                    cfg.rapid_drain_weight,
                    format!(
                        "{} out within {} min, {}% of the {} available at the window's start",
                        format_money(sum, "USD"),
                        cfg.rapid_drain_window_ms / 60_000,
                        (sum / start * Decimal::ONE_HUNDRED).round_dp(0),
                        format_money(start, "USD")
                    ),
                );
            }
        }
    }

    (total.clamp(0, 100) as i32, reasons)
}

/// The USD amount counted toward RAPID_DRAIN: scored kinds that did not fail, rate known.
fn outflow_usd(tx: &TransactionEvent, cx: &Context) -> Option<Decimal> {
    if tx.status == TransactionStatus::Failed || !is_scored(tx.kind) {
        return None;
    }
    cx.amount_usd
}

impl FraudState {
    fn new(account_id: &str) -> Self {
        FraudState { account_id: account_id.to_string(), max_at: i64::MIN, ..Default::default() }
    }

    /// Adds an entry to `recent` and forgets entries outside every sliding window.
    fn push_recent(&mut self, mut entry: RecentTx, cfg: &FraudConfig) {
        self.max_at = self.max_at.max(entry.at);
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.recent.push(entry);
        let keep = cfg.velocity_window_ms.max(cfg.rapid_drain_window_ms);
        let horizon = self.max_at.saturating_sub(keep);
        self.recent.retain(|r| r.at > horizon);
        self.recent.sort_by_key(|r| (r.at, r.seq));
        if self.recent.len() > RECENT_KEPT {
            let drop = self.recent.len() - RECENT_KEPT;
            self.recent.drain(..drop);
        }
    }

    /// Remembers a scored transaction for the next ones; a `flagged` one (REVIEW or DECLINE) is
    /// not learnt as the account's normal behaviour (module docs).
    fn remember_scored(&mut self, tx: &TransactionEvent, cx: &Context, cfg: &FraudConfig, flagged: bool) {
        let t = tx.occurred_at.0;
        if flagged {
            self.suspects.insert(tx.transaction_id.clone(), t);
        }
        let horizon = self.max_at.max(t).saturating_sub(SUSPECTS_KEPT_MS);
        self.suspects.retain(|_, at| *at > horizon);
        self.push_recent(
            RecentTx {
                transaction_id: tx.transaction_id.clone(),
                at: t,
                seq: 0,
                scored: true,
                outflow_usd: outflow_usd(tx, cx),
                inflow_usd: None,
                balance_before_usd: Some(cx.balance_usd),
            },
            cfg,
        );
        if let Some(m) = &tx.merchant {
            if !m.merchant_id.is_empty() {
                let seen = self.merchants.entry(m.merchant_id.clone()).or_insert(t);
                *seen = (*seen).max(t);
                if self.merchants.len() > MERCHANTS_KEPT {
                    if let Some(oldest) =
                        self.merchants.iter().min_by_key(|(id, at)| (**at, id.as_str())).map(|(id, _)| id.clone())
                    {
                        self.merchants.remove(&oldest);
                    }
                }
            }
        }
        if let Some(loc) = tx.location.as_ref().filter(|_| !flagged) {
            if self.last_location.as_ref().is_none_or(|p| t >= p.at) {
                self.last_location = Some(LastLocation {
                    transaction_id: tx.transaction_id.clone(),
                    at: t,
                    country: loc.country.clone(),
                    lat: loc.lat,
                    lon: loc.lon,
                });
            }
        }
    }

    /// Applies a COMPLETED leg to fraud's balance; approved outflows of scored kinds feed the
    /// statistics.
    fn apply_leg(&mut self, tx: &TransactionEvent, signed: Decimal, amount_usd: Option<Decimal>, cfg: &FraudConfig) {
        let t = tx.occurred_at.0;
        self.max_at = self.max_at.max(t);
        let bal = self.balances.entry(tx.currency.clone()).or_default();
        *bal = bal.saturating_add(signed);
        if signed.is_sign_negative() && is_scored(tx.kind) {
            let suspect = self.suspects.contains_key(&tx.transaction_id);
            if let Some(x) = amount_usd.and_then(|a| a.to_f64()).filter(|x| x.is_finite() && *x > 0.0 && !suspect) {
                self.stats.entry(t.div_euclid(DAY_MS)).or_default().push(x.ln());
            }
        } else if signed.is_sign_positive() && amount_usd.is_some() {
            self.push_recent(
                RecentTx {
                    transaction_id: tx.transaction_id.clone(),
                    at: t,
                    seq: 0,
                    scored: false,
                    outflow_usd: None,
                    inflow_usd: amount_usd,
                    balance_before_usd: None,
                },
                cfg,
            );
        }
        let horizon_day = (self.max_at - cfg.anomaly_history_ms).div_euclid(DAY_MS);
        self.stats = self.stats.split_off(&horizon_day);
    }
}

/// Which leg a fraud processor applies to its balance.
pub struct FraudProcessor {
    shared: Arc<Shared>,
    leg: Leg,
    dedupe: Dedupe,
}

impl FraudProcessor {
    pub fn new(shared: Arc<Shared>, leg: Leg) -> Self {
        let dedupe = shared.dedupe(stores::FRAUD_DEDUPE);
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
        let mut kept = ctx.kv_store::<String, Vec<FraudScore>>(stores::FRAUD_SCORES)?;
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
    fn init(&mut self, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        if self.leg == Leg::Debit {
            self.dedupe.schedule(ctx);
        }
        Ok(())
    }

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
        let mut state = ctx.kv_store::<String, FraudState>(stores::FRAUD)?.get(&account)?;
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
                ctx.kv_store::<String, FraudState>(stores::FRAUD)?.put(&account, s)?;
            }
        }
        Ok(())
    }

    fn punctuate(
        &mut self,
        _kind: PunctuationType,
        ts: i64,
        ctx: &mut ProcessorContext<'_>,
    ) -> Result<(), ProcessError> {
        self.dedupe.purge(ctx, ts).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distances() {
        // Paris - New York ≈ 5837 km; Berlin - Munich ≈ 504 km.
        let pny = haversine_km(48.8566, 2.3522, 40.7128, -74.0060);
        assert!((pny - 5837.0).abs() < 10.0, "{pny}");
        let bm = haversine_km(52.52, 13.405, 48.1351, 11.582);
        assert!((bm - 504.0).abs() < 5.0, "{bm}");
        assert_eq!(haversine_km(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn welford_buckets_merge_like_one_pass() {
        let xs = [12.5, 40.0, 3.25, 99.0, 18.0, 18.0, 7.75];
        let mut all = RunningStats::default();
        xs.iter().for_each(|x| all.push(*x));
        let (mut a, mut b) = (RunningStats::default(), RunningStats::default());
        xs[..3].iter().for_each(|x| a.push(*x));
        xs[3..].iter().for_each(|x| b.push(*x));
        let m = a.merge(&b);
        assert_eq!(m.n, all.n);
        assert!((m.mean - all.mean).abs() < 1e-9 && (m.m2 - all.m2).abs() < 1e-6);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((all.std_dev() - var.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn decisions_at_thresholds() {
        let cfg = FraudConfig::default();
        assert_eq!(decide(49, &cfg), FraudDecision::Approve);
        assert_eq!(decide(50, &cfg), FraudDecision::Review);
        assert_eq!(decide(79, &cfg), FraudDecision::Review);
        assert_eq!(decide(80, &cfg), FraudDecision::Decline);
        assert_eq!(decide(100, &cfg), FraudDecision::Decline);
    }
}
