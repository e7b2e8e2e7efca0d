//! Golden test in Arroyo style: one mixed scenario (transfers across partitions, foreign
//! currencies, a missing rate, PENDING/FAILED, duplicates, budgets, goals, time zones) run
//! straight through, then again with each crash kind of the driver in the middle. Committed
//! outputs and final stores must be identical to the straight run.

mod common;

use std::collections::BTreeMap;

use common::*;
use processors::{stores, FinanceConfig};
use schemas::*;
use streams::{Crash, DriverConfig, Serde};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const USERS: usize = 6;
const START: &str = "2026-02-20T00:00:00Z";

fn currency_of(user: usize) -> &'static str {
    ["USD", "EUR", "USD", "JPY", "USD", "KWD"][user]
}

fn amount_in(rng: &mut Lcg, currency: &str) -> String {
    let units = 1 + rng.below(150);
    match currency {
        "JPY" => format!("{}", units * 120),
        "KWD" => format!("{}.{:03}", units / 3, rng.below(1000)),
        _ => format!("{units}.{:02}", rng.below(100)),
    }
}

/// Appends the whole scenario (globals first: the driver's global tables update on append).
/// With `step`, each input record is run to quiescence before the next is appended, so the
/// order in which a task sees records from several upstream tasks (a transaction and a transfer
/// credit for the same account, or one user's transactions from accounts on several partitions)
/// is fixed by the input order. Without it, that merge order depends on when commits make
/// repartitioned records visible, which crashes change (as in Kafka Streams: there is no
/// timestamp-synchronised merge across repartition topics), so intermediate outputs may differ.
fn scenario(h: &mut Harness, step: bool) {
    for (c, r) in [("EUR", "1.085"), ("JPY", "0.0066666667"), ("KWD", "3.2512")] {
        h.rate(c, r);
    }
    for (u, tz) in [(1, "America/New_York"), (2, "Asia/Tokyo"), (3, "Europe/Berlin"), (5, "Australia/Sydney")] {
        h.profile(&format!("u{u}"), tz);
    }
    let t0 = ms(START);
    let hour = 3_600_000i64;
    for u in 0..USERS {
        let user = format!("u{u}");
        let mut b = budget(&format!("b{u}-g"), &user, Category::Groceries, "300", BudgetPeriod::Monthly, START);
        b.currency = currency_of(u).into();
        if b.currency == "JPY" {
            b.limit = d("40000");
        }
        h.append_budget(&b);
        if step {
            h.d.run().unwrap();
        }
        let mut w = budget(&format!("b{u}-d"), &user, Category::Dining, "80", BudgetPeriod::Weekly, START);
        w.updated_at = TimestampMillis(t0 + 5 * 24 * hour);
        h.append_budget(&w);
        if step {
            h.d.run().unwrap();
        }
        let sav = format!("a{u}-sav");
        let mut g = if u % 2 == 0 {
            goal(GoalEventType::GoalCreated, &format!("g{u}"), &user, "500", Some(&sav), START)
        } else {
            goal(GoalEventType::GoalCreated, &format!("g{u}"), &user, "200", None, START)
        };
        g.occurred_at = TimestampMillis(t0 + (u as i64) * 24 * hour);
        h.append_goal(&g);
        if step {
            h.d.run().unwrap();
        }
    }
    // Half the accounts have their record from the start; the others get theirs late, some in
    // another currency than their first leg (attributed and converted when it arrives).
    for u in (0..USERS).step_by(2) {
        for acc in [format!("a{u}-chk"), format!("a{u}-sav")] {
            h.append_account(&account(AccountEventType::AccountOpened, &acc, &format!("u{u}"), currency_of(u), START));
            if step {
                h.d.run().unwrap();
            }
        }
    }
    let late_records = |h: &mut Harness, at: i64| {
        for u in (1..USERS).step_by(2) {
            let currency = if u % 4 == 1 { "KWD" } else { currency_of(u) };
            let mut a =
                account(AccountEventType::AccountOpened, &format!("a{u}-sav"), &format!("u{u}"), currency, START);
            a.occurred_at = TimestampMillis(at);
            h.append_account(&a);
            if step {
                h.d.run().unwrap();
            }
        }
        // Closing one account, and a record that would change an owner (dead-lettered).
        let mut closed = account(AccountEventType::AccountClosed, "a0-sav", "u0", currency_of(0), START);
        closed.occurred_at = TimestampMillis(at);
        h.append_account(&closed);
        let mut thief = account(AccountEventType::AccountOpened, "a2-chk", "u3", currency_of(2), START);
        thief.occurred_at = TimestampMillis(at);
        h.append_account(&thief);
        if step {
            h.d.run().unwrap();
        }
    };
    let mut rng = Lcg(42);
    let mut pending = Vec::new();
    for i in 0..420usize {
        let u = rng.below(USERS as u64) as usize;
        let user = format!("u{u}");
        let (chk, sav) = (format!("a{u}-chk"), format!("a{u}-sav"));
        let at = t0 + i as i64 * 3 * hour + rng.below(hour as u64) as i64;
        let mut currency = currency_of(u).to_string();
        let roll = rng.below(100);
        if roll < 8 {
            currency = ["EUR", "JPY", "KWD", "USD"][rng.below(4) as usize].into();
        } else if roll < 10 {
            currency = "GBP".into(); // no rate: dead-lettered by the processors that convert it
        }
        let kind = match rng.below(100) {
            0..=19 => TransactionKind::Deposit,
            20..=54 => TransactionKind::Payment,
            55..=64 => TransactionKind::Withdrawal,
            65..=69 => TransactionKind::Fee,
            70..=77 => TransactionKind::Refund,
            78..=92 => TransactionKind::Transfer,
            _ => TransactionKind::Interest,
        };
        let mut t =
            txn(&format!("t{i}"), if rng.below(4) == 0 { &sav } else { &chk }, &user, kind, "1", &currency, START);
        t.amount = d(&amount_in(&mut rng, &currency));
        t.occurred_at = TimestampMillis(at);
        t.category = [Category::Groceries, Category::Dining, Category::Travel][rng.below(3) as usize];
        if kind == TransactionKind::Transfer {
            // Own savings, or another user's checking account (another partition, another task).
            let other = rng.below(USERS as u64);
            let to = if t.account_id == chk && rng.below(2) == 0 { sav.clone() } else { format!("a{other}-chk") };
            t.counterparty_account_id = Some(if to == t.account_id { sav.clone() } else { to });
            if t.counterparty_account_id.as_deref() == Some(t.account_id.as_str()) {
                t.counterparty_account_id = Some(chk.clone());
            }
        }
        if rng.below(5) == 0 {
            t.goal_id = Some(format!("g{u}"));
        }
        // Merchants and places for fraud scoring, derived from `i` so the rng sequence (and with
        // it the rest of the scenario) stays as it was.
        if i % 3 == 0 {
            let mcc = ["5411", "5812", "7995", "4829", "5732"][i % 5];
            t.merchant =
                Some(Merchant { merchant_id: format!("m{}", i % 11), name: format!("M{}", i % 11), mcc: mcc.into() });
        }
        if i % 4 == 0 {
            let (country, lat, lon) =
                [("US", 40.71, -74.0), ("US", 34.05, -118.24), ("FR", 48.86, 2.35), ("JP", 35.68, 139.69)][i % 7 % 4];
            t.location = Some(Location { country: country.into(), city: "c".into(), lat, lon });
        }
        if i % 60 == 30 {
            // A straggler two days late: past its daily window's grace (late for analytics).
            let mut late = txn(&format!("t{i}-late"), &chk, &user, TransactionKind::Payment, "3", "USD", START);
            late.occurred_at = TimestampMillis(at - 48 * hour);
            h.append_tx(&late);
            if step {
                h.d.run().unwrap();
            }
        }
        if i % 50 == 10 {
            // A card-testing burst: six small payments within minutes.
            for b in 0..6 {
                let mut burst = txn(&format!("t{i}-b{b}"), &chk, &user, TransactionKind::Payment, "1", "USD", START);
                burst.occurred_at = TimestampMillis(at - 10 * 60_000 + b * 60_000);
                h.append_tx(&burst);
                if step {
                    h.d.run().unwrap();
                }
            }
        }
        match rng.below(100) {
            0..=4 => {
                t.status = TransactionStatus::Pending;
                pending.push(t.clone());
            }
            5..=7 => t.status = TransactionStatus::Failed,
            _ => {}
        }
        h.append_tx(&t);
        if step {
            h.d.run().unwrap();
        }
        if rng.below(10) == 0 {
            h.append_tx(&t);
            if step {
                h.d.run().unwrap();
            } // at-least-once upstream: delivered twice...
            if rng.below(2) == 0 {
                h.append_tx(&t);
                if step {
                    h.d.run().unwrap();
                } // ...or three times
            }
        }
        if i % 25 == 24 {
            for mut p in pending.drain(..) {
                p.status = TransactionStatus::Completed; // status update, same transaction id
                p.occurred_at = TimestampMillis(at);
                h.append_tx(&p);
                if step {
                    h.d.run().unwrap();
                }
            }
        }
        if i == 300 {
            late_records(h, at);
        }
        if i == 200 {
            // Mid-stream budget and goal changes.
            let mut b = budget("b1-g", "u1", Category::Groceries, "150", BudgetPeriod::Monthly, START);
            b.currency = "EUR".into();
            b.updated_at = TimestampMillis(at);
            h.append_budget(&b);
            if step {
                h.d.run().unwrap();
            }
            let mut g = goal(GoalEventType::GoalUpdated, "g3", "u3", "100", None, START);
            g.occurred_at = TimestampMillis(at);
            h.append_goal(&g);
            if step {
                h.d.run().unwrap();
            }
            let mut del = goal(GoalEventType::GoalDeleted, "g4", "u4", "0", None, START);
            del.occurred_at = TimestampMillis(at);
            h.append_goal(&del);
            if step {
                h.d.run().unwrap();
            }
        }
    }
}

/// Everything committed: outputs per topic and partition (decoded), notifications and dead
/// letters as sorted multisets (two tasks write them), and every store's bytes.
/// A store's committed entries (key bytes, value bytes).
type KvBytes = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, PartialEq)]
struct Snapshot {
    outputs: BTreeMap<(String, i32), Vec<String>>,
    unordered: BTreeMap<String, Vec<String>>,
    stores: BTreeMap<&'static str, KvBytes>,
}

fn decoded<T: AvroRecord + std::fmt::Debug>(h: &Harness, topic: &str) -> Vec<(i32, String)> {
    let serde = AvroSerde::<T>::new(h.registry.clone()).without_validation();
    h.d.read_raw(topic)
        .into_iter()
        .map(|r| {
            let v = serde.deserialize(topic, r.value.as_deref().unwrap_or_default()).unwrap();
            (
                r.partition.unwrap_or(-1),
                format!("{:?} {v:?}", String::from_utf8_lossy(r.key.as_deref().unwrap_or_default())),
            )
        })
        .collect()
}

fn snapshot(h: &Harness) -> Snapshot {
    let mut outputs: BTreeMap<(String, i32), Vec<String>> = BTreeMap::new();
    let ordered = [
        ("account-balances", decoded::<BalanceUpdated>(h, "account-balances")),
        ("budget-alerts", decoded::<BudgetAlert>(h, "budget-alerts")),
        ("goal-progress", decoded::<GoalProgress>(h, "goal-progress")),
        ("fraud-scores", decoded::<FraudScore>(h, "fraud-scores")),
        ("spending-daily", decoded::<SpendingAggregate>(h, "spending-daily")),
    ];
    for (topic, recs) in ordered {
        for (p, r) in recs {
            outputs.entry((topic.to_string(), p)).or_default().push(r);
        }
    }
    let mut unordered = BTreeMap::new();
    let mut n: Vec<String> = decoded::<Notification>(h, "notifications").into_iter().map(|(_, r)| r).collect();
    n.sort();
    unordered.insert("notifications".to_string(), n);
    for dlq in [
        "transactions",
        "accounts",
        "budgets",
        "financial-goals",
        &format!("{APP}-transactions-by-user-repartition"),
        &format!("{APP}-transfer-credits-repartition"),
        &format!("{APP}-transfers-in-by-user-repartition"),
    ] {
        let mut recs: Vec<String> = h
            .dlq(dlq)
            .into_iter()
            .map(|r| format!("{:?} {:?} {:?}", r.key, r.value, r.headers.get_str(streams::record::header::ERROR_CLASS)))
            .collect();
        recs.sort();
        unordered.insert(format!("{dlq}-dlq"), recs);
    }
    let stores = [
        stores::ACCOUNTS,
        stores::TRANSFERS_IN_HELD,
        stores::BALANCES,
        stores::BALANCE_LINEAGE,
        stores::BALANCES_DEDUPE,
        stores::BUDGETS,
        stores::BUDGETS_DEDUPE,
        stores::GOALS,
        stores::GOALS_DEDUPE,
        stores::FRAUD,
        stores::FRAUD_SCORES,
        stores::FRAUD_DEDUPE,
        stores::SPENDING_DAILY,
        stores::SPENDING_DAILY_OPEN,
        stores::ANALYTICS_CLOCK,
        stores::CASH_FLOW,
        stores::ANALYTICS_DEDUPE,
    ]
    .into_iter()
    .map(|s| (s, h.d.store_raw(s)))
    .collect();
    Snapshot { outputs, unordered, stores }
}

fn run(crashes: Vec<(usize, Crash)>) -> (Snapshot, usize, Harness) {
    run_with(FinanceConfig { lineage_len: 5, ..Default::default() }, crashes)
}

fn run_with(cfg: FinanceConfig, crashes: Vec<(usize, Crash)>) -> (Snapshot, usize, Harness) {
    let mut h = Harness::with(cfg, DriverConfig { partitions: 3, commit_every: 7, crashes, ..Default::default() });
    scenario(&mut h, true);
    h.d.run().unwrap();
    (snapshot(&h), h.d.crashes_done, h)
}

#[test]
fn golden_run_is_identical_with_every_crash_kind() {
    let (straight, crashes, h) = run(Vec::new());
    assert_eq!(crashes, 0);
    // The scenario exercises what it claims to.
    let count =
        |topic: &str| straight.outputs.iter().filter(|((t, _), _)| t == topic).map(|(_, v)| v.len()).sum::<usize>();
    assert!(count("account-balances") > 300, "{}", count("account-balances"));
    assert!(count("budget-alerts") >= 6, "{}", count("budget-alerts"));
    assert!(count("goal-progress") >= 20, "{}", count("goal-progress"));
    assert!(straight.unordered["notifications"].len() >= 10);
    assert!(!straight.unordered["transactions-dlq"].is_empty(), "GBP without a rate is dead-lettered");
    assert!(h.duplicates("balances") > 10, "duplicates were delivered");
    assert!(h.all_balances().values().any(|b| b.user_id.is_empty() || b.currency == "JPY"));
    assert!(count("fraud-scores") > 250, "{}", count("fraud-scores"));
    assert!(count("spending-daily") > 150, "{}", count("spending-daily"));
    let scores = h.fraud_scores();
    assert!(scores.iter().any(|s| s.decision != FraudDecision::Approve), "some scores reach REVIEW");
    assert!(scores.iter().any(|s| s.reasons.iter().any(|r| r.starts_with("VELOCITY"))), "the bursts are seen");
    assert!(straight.unordered["notifications"].iter().any(|n| n.contains("FraudAlert")));
    assert!(!straight.stores[stores::CASH_FLOW].is_empty());
    assert!(h.late_records() > 0, "some records are late for their daily window");
    assert!(straight.unordered["accounts-dlq"].iter().any(|r| r.contains("invalid_account_update")));
    assert!(h.account_record("a0-sav").unwrap().closed);
    let converted = h.balance("a1-sav").unwrap();
    assert_eq!((converted.currency.as_str(), converted.user_id.as_str()), ("KWD", "u1"), "attributed late");
    for kind in Crash::ALL {
        let points = vec![(5, kind), (97, kind), (98, kind), (400, kind), (777, kind), (950, kind)];
        let (crashed, done, _) = run(points);
        assert_eq!(done, 6, "{kind:?}: every crash happened");
        assert_eq!(crashed.outputs, straight.outputs, "{kind:?}: outputs");
        assert_eq!(crashed.unordered, straight.unordered, "{kind:?}: notifications and dead letters");
        assert_eq!(crashed.stores, straight.stores, "{kind:?}: stores");
    }
}

#[test]
fn golden_run_with_final_only_spending_is_identical_with_crashes() {
    let cfg = FinanceConfig {
        lineage_len: 5,
        analytics: processors::AnalyticsConfig { emit: processors::SpendingEmit::OnWindowClose, ..Default::default() },
        ..Default::default()
    };
    let (straight, _, _) = run_with(cfg.clone(), Vec::new());
    assert!(straight.outputs.iter().any(|((t, _), v)| t == "spending-daily" && !v.is_empty()));
    assert!(!straight.stores[stores::SPENDING_DAILY_OPEN].is_empty(), "the last days are still open");
    let points = vec![(50, Crash::WipeState), (300, Crash::AfterTransactionCommit), (600, Crash::Process)];
    let (crashed, done, _) = run_with(cfg, points);
    assert_eq!(done, 3);
    assert_eq!(crashed, straight);
}
