//! Generator: determinism, contract validity, the e2e preset's shape, rough realism.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use connectors::generator::{Generator, GeneratorConfig};
use connectors::reference::{self, ReferenceConfig};
use connectors::Event;
use schemas::{Category, TransactionKind, TransactionStatus};

fn small(seed: u64) -> GeneratorConfig {
    GeneratorConfig { seed, users: 30, days: 40, fraud: true, ..GeneratorConfig::default() }
}

fn e2e() -> &'static (Vec<Event>, GeneratorConfig) {
    static E2E: std::sync::OnceLock<(Vec<Event>, GeneratorConfig)> = std::sync::OnceLock::new();
    E2E.get_or_init(|| {
        let cfg = GeneratorConfig::e2e(7);
        (Generator::new(cfg.clone()).collect(), cfg)
    })
}

fn transactions(events: &[Event]) -> impl Iterator<Item = &schemas::TransactionEvent> {
    events.iter().filter_map(Event::as_transaction)
}

#[test]
fn same_seed_same_events_other_seed_other_events() {
    let a: Vec<Event> = Generator::new(small(1)).collect();
    let b: Vec<Event> = Generator::new(small(1)).collect();
    let c: Vec<Event> = Generator::new(small(2)).collect();
    assert!(a.len() > 1000, "{} events", a.len());
    assert_eq!(a, b);
    assert_ne!(a, c);
    let (_, la) = Generator::generate_all(small(1));
    let (_, lb) = Generator::generate_all(small(1));
    assert_eq!(la, lb);
}

#[test]
fn every_event_passes_the_contract_validation() {
    for events in [Generator::new(small(3)).collect::<Vec<_>>(), e2e().0.clone()] {
        for e in &events {
            if let Err(err) = e.validate() {
                panic!("{err}: {e:?}");
            }
            assert!(!e.key().is_empty());
        }
    }
}

#[test]
fn topics_and_keys_follow_the_contract() {
    for e in Generator::new(small(4)) {
        let (topic, key) = (e.topic(), e.key().to_string());
        match &e {
            Event::Transaction(t) => assert_eq!((topic, key), ("transactions", t.account_id.clone())),
            Event::Budget(b) => assert_eq!((topic, key), ("budgets", b.user_id.clone())),
            Event::Goal(g) => assert_eq!((topic, key), ("financial-goals", g.user_id.clone())),
            Event::Profile(p) => assert_eq!((topic, key), ("user-profile", p.user_id.clone())),
            Event::Account(a) => assert_eq!((topic, key), ("accounts", a.account_id.clone())),
            Event::Rate(r) => assert_eq!((topic, key), ("exchange-rates", r.currency.clone())),
        }
    }
}

#[test]
fn e2e_preset_is_big_enough() {
    let (events, cfg) = e2e();
    let txns: BTreeSet<&str> = transactions(events).map(|t| t.transaction_id.as_str()).collect();
    let users: BTreeSet<&str> = transactions(events).map(|t| t.user_id.as_str()).collect();
    assert!(txns.len() >= 20_000, "{} transactions", txns.len());
    assert!(users.len() >= 200 && cfg.users >= 200, "{} users", users.len());
}

#[test]
fn e2e_rates_come_first_and_never_change_and_cover_every_currency() {
    let (events, _) = e2e();
    let first_other = events.iter().position(|e| !matches!(e, Event::Rate(_))).unwrap();
    assert!(first_other > 0);
    assert!(events[first_other..].iter().all(|e| !matches!(e, Event::Rate(_))));
    let first_ts = events[first_other..].iter().map(|e| e.timestamp()).min().unwrap();
    assert!(events[..first_other].iter().all(|e| e.timestamp() < first_ts));
    let rated: BTreeSet<String> = events[..first_other].iter().map(|e| e.key().to_string()).collect();
    for t in transactions(events) {
        assert!(rated.contains(&t.currency), "{}", t.currency);
    }
    // Profiles follow the rates and never change either.
    let profiles: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::Profile(_))).collect();
    let first_txn_ts = transactions(events).map(|t| t.occurred_at).min().unwrap();
    assert!(profiles.iter().all(|p| p.timestamp() < first_txn_ts));
    assert_eq!(profiles.len(), e2e().1.users);
}

#[test]
fn default_config_emits_rates_first_and_moves_them_slowly() {
    let events: Vec<Event> = Generator::new(small(5)).collect();
    let first_txn = events.iter().position(|e| matches!(e, Event::Transaction(_))).unwrap();
    let early: BTreeSet<&str> =
        events[..first_txn].iter().filter(|e| matches!(e, Event::Rate(_))).map(|e| e.key()).collect();
    for t in transactions(&events) {
        assert!(early.contains(t.currency.as_str()), "{}", t.currency);
    }
    let mut last: HashMap<String, f64> = HashMap::new();
    let mut updates = 0;
    for e in &events {
        if let Event::Rate(r) = e {
            let v: f64 = r.usd_rate.to_string().parse().unwrap();
            if let Some(prev) = last.insert(r.currency.clone(), v) {
                updates += 1;
                assert!((v / prev - 1.0).abs() < 0.01, "{} moved from {prev} to {v}", r.currency);
            }
        }
    }
    assert!(updates > 100);
}

#[test]
fn timestamps_distinct_per_user_and_increasing_but_for_late_events() {
    let (events, _) = e2e();
    let mut seen: HashMap<&str, BTreeMap<i64, &Event>> = HashMap::new();
    let mut max_ts: HashMap<&str, i64> = HashMap::new();
    let (mut out_of_order, mut total) = (0, 0);
    for e in events {
        let Some(user) = e.user_id() else { continue };
        let ts = e.timestamp().0;
        if let Some(prev) = seen.entry(user).or_default().insert(ts, e) {
            assert_eq!(prev, e, "two different events of {user} at {ts}");
            continue; // an exact duplicate
        }
        total += 1;
        let m = max_ts.entry(user).or_insert(i64::MIN);
        if ts < *m {
            out_of_order += 1;
        }
        *m = (*m).max(ts);
    }
    assert!(out_of_order > 0, "some late events");
    assert!((out_of_order as f64) < 0.02 * total as f64, "{out_of_order} of {total}");
    // At most 1000 users: no two different events of different users tie either.
    let mut all: BTreeMap<i64, &Event> = BTreeMap::new();
    for e in events.iter().filter(|e| !matches!(e, Event::Rate(_))) {
        if let Some(prev) = all.insert(e.timestamp().0, e) {
            assert_eq!(prev, e);
        }
    }
}

#[test]
fn duplicates_are_exact_copies_delivered_shortly_after() {
    let (events, _) = e2e();
    let mut first: HashMap<(&str, String), (usize, &Event)> = HashMap::new();
    let mut dups = 0;
    for (i, e) in events.iter().enumerate() {
        let Event::Transaction(t) = e else { continue };
        let key = (t.transaction_id.as_str(), format!("{}", t.status));
        if let Some((j, prev)) = first.insert(key, (i, e)) {
            assert_eq!(prev, e);
            assert!(i > j);
            dups += 1;
        }
    }
    let n = transactions(events).count();
    assert!(dups as f64 > 0.01 * n as f64 && (dups as f64) < 0.03 * n as f64, "{dups} duplicates of {n}");
}

#[test]
fn salary_is_monthly_and_life_is_varied() {
    let events: Vec<Event> = Generator::new(GeneratorConfig { users: 20, days: 90, ..small(6) }).collect();
    let mut salaries: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    let mut kinds = BTreeSet::new();
    let mut categories = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    let mut foreign = 0;
    let base: HashMap<&str, &str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Profile(p) => Some((p.user_id.as_str(), p.base_currency.as_str())),
            _ => None,
        })
        .collect();
    for t in transactions(&events) {
        kinds.insert(t.kind.to_string());
        categories.insert(t.category.to_string());
        statuses.insert(t.status.to_string());
        if t.kind == TransactionKind::Deposit
            && t.category == Category::Income
            && t.status == TransactionStatus::Completed
        {
            salaries.entry(t.user_id.as_str()).or_default().insert(t.occurred_at.0);
        }
        if t.kind == TransactionKind::Payment && base[t.user_id.as_str()] != t.currency {
            foreign += 1;
        }
    }
    assert_eq!(kinds.len(), 7, "{kinds:?}");
    assert!(categories.len() >= 10, "{categories:?}");
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert!(foreign > 0);
    assert_eq!(salaries.len(), 20);
    for (user, times) in salaries {
        // Opening deposits on the set-up day, then a salary every month: two or three in 90 days.
        let salaries: Vec<i64> =
            times.iter().copied().filter(|&t| t > GeneratorConfig::default().start_ms + 86_400_000).collect();
        assert!((2..=3).contains(&salaries.len()), "{user}: {salaries:?}");
        for w in salaries.windows(2) {
            let days = (w[1] - w[0]) as f64 / 86_400_000.0;
            assert!((27.0..=32.0).contains(&days), "{user}: {days} days between salaries");
        }
    }
}

#[test]
fn fraud_labels_point_at_generated_transactions() {
    let (events, labels) = Generator::generate_all(GeneratorConfig { users: 200, days: 60, ..small(8) });
    assert!(!labels.is_empty());
    let ids: BTreeSet<&str> = transactions(&events).map(|t| t.transaction_id.as_str()).collect();
    for l in &labels {
        assert!(ids.contains(l.transaction_id.as_str()), "{l:?}");
    }
    let scenarios: BTreeSet<String> = labels.iter().map(|l| format!("{:?}", l.scenario)).collect();
    assert!(scenarios.len() >= 3, "{scenarios:?}");
    // Labels serialize for the side file.
    let line = serde_json::to_string(&labels[0]).unwrap();
    assert!(line.contains("scenario"));
}

#[test]
fn e2e_accounts_open_well_before_any_transfer_into_them() {
    let (events, _) = e2e();
    let mut opened: HashMap<&str, i64> = HashMap::new();
    let mut first_in: HashMap<&str, i64> = HashMap::new();
    for t in transactions(events).filter(|t| t.status == TransactionStatus::Completed) {
        let e = opened.entry(t.account_id.as_str()).or_insert(t.occurred_at.0);
        *e = (*e).min(t.occurred_at.0);
        if let Some(cp) = t.counterparty_account_id.as_deref() {
            let e = first_in.entry(cp).or_insert(t.occurred_at.0);
            *e = (*e).min(t.occurred_at.0);
        }
    }
    for (acc, t_in) in first_in {
        let open = opened.get(acc).unwrap_or_else(|| panic!("{acc} never has its own transaction"));
        assert!(t_in - open >= 12 * 3_600_000, "{acc}: opened {open}, first credit {t_in}");
    }
}

#[test]
fn every_account_is_opened_by_its_owner_before_anything_touches_it() {
    for events in [Generator::new(small(5)).collect::<Vec<_>>(), e2e().0.clone()] {
        let all: BTreeSet<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Account(a) => Some(a.account_id.as_str()),
                _ => None,
            })
            .collect();
        // (owner, currency, delivery position, occurred_at) of each account's record.
        let mut opened: HashMap<String, (String, String, usize, i64)> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            match e {
                Event::Account(a) => {
                    assert_eq!(a.event_type, schemas::AccountEventType::AccountOpened);
                    let prev = opened
                        .insert(a.account_id.clone(), (a.user_id.clone(), a.currency.clone(), i, a.occurred_at.0));
                    assert!(prev.is_none(), "{} opened twice", a.account_id);
                }
                Event::Transaction(t) => {
                    let (owner, currency, at, when) =
                        opened.get(&t.account_id).unwrap_or_else(|| panic!("{t:?} before its account"));
                    assert!(*at < i && *when < t.occurred_at.0, "{t:?}");
                    assert_eq!(owner, &t.user_id, "{t:?}");
                    if t.kind != TransactionKind::Transfer && t.channel == schemas::Channel::BankTransfer {
                        assert_eq!(currency, &t.currency, "{t:?}");
                    }
                    // Accounts at other banks (a drain's destination) have no record here.
                    if let Some(cp) = t.counterparty_account_id.as_deref().filter(|c| all.contains(c)) {
                        assert!(opened.get(cp).is_some_and(|o| o.2 < i), "transfer into {cp} before it was opened");
                    }
                }
                _ => {}
            }
        }
        assert!(!opened.is_empty());
    }
}

#[test]
fn e2e_results_do_not_depend_on_delivery_order() {
    let (events, _) = e2e();
    let cfg = ReferenceConfig::default();
    let by_time = reference::compute(events, &cfg);
    let by_delivery = reference::compute_in_order(events, 0..events.len(), &cfg);
    assert!(by_time.dead_letters.is_empty(), "{:?}", &by_time.dead_letters[..3.min(by_time.dead_letters.len())]);
    assert!(!by_time.notifications.iter().any(|n| n.starts_with("low-balance:")), "no LOW_BALANCE in e2e");
    assert_eq!(by_time.accounts, by_delivery.accounts);
    assert_eq!(by_time.goals, by_delivery.goals);
    assert_eq!(by_time.notifications, by_delivery.notifications);
    let spent = |o: &reference::ReferenceOutput| -> Vec<_> {
        o.budgets.iter().map(|(k, b)| (k.clone(), b.spent, b.alerts.clone(), b.deleted)).collect()
    };
    assert_eq!(spent(&by_time), spent(&by_delivery));
    // The preset exercises the rules: alerts, milestones, achieved goals, duplicates.
    let alerts = by_time.alert_ids();
    assert!(
        alerts.iter().any(|a| a.ends_with(":80")) && alerts.iter().any(|a| a.ends_with(":100")),
        "{}",
        alerts.len()
    );
    assert!(by_time.notifications.iter().any(|n| n.starts_with("goal:") && n.ends_with(":25")));
    assert!(by_time.goals.values().any(|g| g.status == schemas::GoalStatus::Achieved));
    assert!(by_time.duplicates.balances > 0 && by_time.duplicates.budgets > 0);
    // Every account's last leg is its closing INTEREST.
    let closing: BTreeSet<&str> = transactions(events)
        .filter(|t| t.kind == TransactionKind::Interest)
        .map(|t| t.transaction_id.as_str())
        .collect();
    for a in by_time.accounts.values() {
        assert!(closing.contains(a.last_transaction_id.as_str()), "{a:?}");
        assert!(a.balance > rust_decimal::Decimal::ZERO);
    }
}
