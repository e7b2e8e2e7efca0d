//! Fraud quality (issue 5, "Measure quality"): the connectors generator on a fixed seed with
//! labelled fraud scenarios next to normal life, run through the whole finance topology on the
//! test driver; REVIEW+DECLINE is measured against the labels.
//!
//! Positives are defined in docs/money-rules.md ("Fraud quality"): a scored transaction (one
//! `FraudScore` per account and transaction id) is a positive when the generator labelled its
//! `(account_id, transaction_id)`; every other scored transaction is a negative. Predicted
//! positive: decision REVIEW or DECLINE. The labels are read only here, after the run.
//!
//! Asserted: precision over transactions ≥ 0.8, recall over scenario instances ≥ 0.9 (an
//! instance is caught when at least one of its labelled transactions is REVIEW or DECLINE, i.e.
//! a FRAUD_ALERT reaches the user during the attack), and a regression floor on recall over
//! transactions, which cannot reach 0.9 in real time: the first five attempts of a card-testing
//! burst look like one night-time purchase each until VELOCITY (more than 5 in 10 minutes) can
//! see the burst (docs/money-rules.md, "Fraud quality").
//!
//! Reproduce (prints the report; `FRAUD_QUALITY_SEED=<n>` runs another seed, not asserted,
//! `FRAUD_QUALITY_DETAILS=1` lists every labelled and every falsely flagged score):
//! `cargo test -p processors --release --test fraud_quality -- --nocapture`

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use connectors::{FraudLabel, FraudScenario, Generator, GeneratorConfig};
use processors::FinanceConfig;
use schemas::{FraudDecision, FraudScore};
use streams::DriverConfig;

/// The asserted seed.
const SEED: u64 = 2026;

/// The measured data set: enough users for about fifty scenario instances.
fn data_set(seed: u64) -> GeneratorConfig {
    GeneratorConfig { seed, users: 400, days: 45, fraud: true, ..GeneratorConfig::default() }
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    tp: u64,
    fn_: u64,
    fp: u64,
    tn: u64,
}

impl Counts {
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
}

fn flagged(s: &FraudScore) -> bool {
    matches!(s.decision, FraudDecision::Review | FraudDecision::Decline)
}

fn features(s: &FraudScore) -> String {
    let f: Vec<&str> = s.reasons.iter().filter_map(|r| r.split_whitespace().next()).collect();
    if f.is_empty() {
        "-".into()
    } else {
        f.join("+")
    }
}

#[test]
fn review_and_decline_catch_the_injected_scenarios() {
    let started = std::time::Instant::now();
    let seed = std::env::var("FRAUD_QUALITY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let (events, labels) = Generator::generate_all(data_set(seed));
    let cfg = FinanceConfig::default();
    let mut h = Harness::with(cfg, DriverConfig { partitions: 4, commit_every: 500, ..Default::default() });
    h.pipe_events(&events);
    let scores = h.fraud_scores();

    let by_key: BTreeMap<(&str, &str), &FraudLabel> =
        labels.iter().map(|l| ((l.account_id.as_str(), l.transaction_id.as_str()), l)).collect();
    let mut scored: BTreeMap<(&str, &str), &FraudScore> = BTreeMap::new();
    for s in &scores {
        assert!(scored.insert((s.account_id.as_str(), s.transaction_id.as_str()), s).is_none(), "scored twice: {s:?}");
    }
    for l in &labels {
        assert!(scored.contains_key(&(l.account_id.as_str(), l.transaction_id.as_str())), "label not scored: {l:?}");
    }

    let mut all = Counts::default();
    let mut per: BTreeMap<String, Counts> = BTreeMap::new();
    let mut instances: BTreeMap<&str, (FraudScenario, bool)> = BTreeMap::new();
    let mut fp_patterns: BTreeMap<String, u64> = BTreeMap::new();
    let mut fn_patterns: BTreeMap<String, u64> = BTreeMap::new();
    for (key, s) in &scored {
        let label = by_key.get(key);
        let f = flagged(s);
        match (label, f) {
            (Some(l), true) => {
                all.tp += 1;
                per.entry(format!("{:?}", l.scenario)).or_default().tp += 1;
            }
            (Some(l), false) => {
                all.fn_ += 1;
                per.entry(format!("{:?}", l.scenario)).or_default().fn_ += 1;
                *fn_patterns.entry(format!("{:?} {}", l.scenario, features(s))).or_default() += 1;
            }
            (None, true) => {
                all.fp += 1;
                *fp_patterns.entry(features(s)).or_default() += 1;
            }
            (None, false) => all.tn += 1,
        }
        if let Some(l) = label {
            let e = instances.entry(l.scenario_id.as_str()).or_insert((l.scenario, false));
            e.1 |= f;
        }
    }

    let caught = instances.values().filter(|(_, f)| *f).count();
    let scenario_recall = caught as f64 / instances.len().max(1) as f64;
    let cfg = data_set(seed);
    println!(
        "fraud quality: seed {seed}, {} users, {} days, model {}",
        cfg.users,
        cfg.days,
        FinanceConfig::default().fraud.model_version
    );
    println!(
        "  {} events, {} scored transactions, {} labelled in {} scenario instances, {:.1}s",
        events.len(),
        scored.len(),
        labels.len(),
        instances.len(),
        started.elapsed().as_secs_f64()
    );
    println!("  transactions: TP {} FN {} FP {} TN {}", all.tp, all.fn_, all.fp, all.tn);
    println!(
        "  precision {:.3}, recall {:.3} over transactions, recall {:.3} over scenario instances ({caught} of {})",
        all.precision(),
        all.recall(),
        scenario_recall,
        instances.len()
    );
    for (name, c) in &per {
        let inst: Vec<bool> =
            instances.values().filter(|(sc, _)| format!("{sc:?}") == *name).map(|(_, f)| *f).collect();
        println!(
            "  {name:<24} recall {:.3} over transactions ({} of {}), instances caught {} of {}",
            c.recall(),
            c.tp,
            c.tp + c.fn_,
            inst.iter().filter(|f| **f).count(),
            inst.len()
        );
    }
    println!("  missed (scenario, features): {fn_patterns:?}");
    println!("  false positives by features: {fp_patterns:?}");
    if std::env::var_os("FRAUD_QUALITY_DETAILS").is_some() {
        for l in &labels {
            let s = scored[&(l.account_id.as_str(), l.transaction_id.as_str())];
            println!("  {} {:?} {} {:?} {:?}", l.scenario_id, l.scenario, l.transaction_id, s.decision, s.reasons);
        }
        for s in scored
            .values()
            .filter(|s| flagged(s) && !by_key.contains_key(&(s.account_id.as_str(), s.transaction_id.as_str())))
        {
            println!("  FP {} {} {:?} {:?}", s.account_id, s.transaction_id, s.decision, s.reasons);
        }
    }
    if seed != SEED {
        return;
    }
    let kinds: BTreeSet<String> = per.keys().cloned().collect();
    assert_eq!(kinds.len(), 4, "every scenario kind is in the data set: {kinds:?}");
    assert!(instances.len() >= 40, "enough scenario instances to measure: {}", instances.len());
    assert!(all.precision() >= 0.8, "precision {:.3} below the floor 0.8", all.precision());
    assert!(scenario_recall >= 0.9, "recall over scenario instances {scenario_recall:.3} below the floor 0.9");
    // Regression floor (rules-v2 measures 0.65 on this seed, 0.59 on seed 7): see the module
    // docs for why not 0.9.
    assert!(all.recall() >= 0.55, "recall over transactions {:.3} below the regression floor 0.55", all.recall());
}
