//! The `fraud-state` store's value: what fraud scoring remembers per account, and how a
//! scored transaction or an applied leg updates it.

use std::collections::BTreeMap;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use schemas::TransactionEvent;
use serde::{Deserialize, Serialize};

use super::score::{is_scored, outflow_usd, Context};
use super::{DAY_MS, MERCHANTS_KEPT, RECENT_KEPT, SUSPECTS_KEPT_MS};
use crate::config::FraudConfig;

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

impl FraudState {
    pub(super) fn new(account_id: &str) -> Self {
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
    pub(super) fn remember_scored(&mut self, tx: &TransactionEvent, cx: &Context, cfg: &FraudConfig, flagged: bool) {
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
    pub(super) fn apply_leg(
        &mut self,
        tx: &TransactionEvent,
        signed: Decimal,
        amount_usd: Option<Decimal>,
        cfg: &FraudConfig,
    ) {
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
