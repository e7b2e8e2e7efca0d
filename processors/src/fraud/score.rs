//! The features and the score: pure functions of a transaction, the account's state before it
//! and what the processor looked up.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use schemas::{FraudDecision, TransactionEvent, TransactionKind, TransactionStatus};

use super::{FraudState, RecentTx, RunningStats, DAY_MS};
use crate::config::FraudConfig;
use crate::money_fmt::format_money;

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
pub(super) fn outflow_usd(tx: &TransactionEvent, cx: &Context) -> Option<Decimal> {
    if tx.status == TransactionStatus::Failed || !is_scored(tx.kind) {
        return None;
    }
    cx.amount_usd
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
