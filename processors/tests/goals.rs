//! Goal rules on the test driver (issue 4 "Goals", docs/money-rules.md).

mod common;

use common::*;
use schemas::{GoalEventType::*, GoalStatus, NotificationKind, TransactionEvent, TransactionKind::*};

fn tagged(id: &str, kind: schemas::TransactionKind, amount: &str, at: &str) -> TransactionEvent {
    let mut t = txn(id, "acc-1", "u1", kind, amount, "USD", at);
    t.goal_id = Some("g1".into());
    t
}

fn view(h: &Harness) -> Vec<(String, String, GoalStatus, Option<i32>)> {
    h.progress()
        .into_iter()
        .map(|p| (p.saved.normalize().to_string(), p.percent.normalize().to_string(), p.status, p.milestone))
        .collect()
}

fn p(saved: &str, percent: &str, status: GoalStatus, m: Option<i32>) -> (String, String, GoalStatus, Option<i32>) {
    (saved.into(), percent.into(), status, m)
}

#[test]
fn goal_set_after_tagged_deposits_counts_only_later_ones() {
    let mut h = Harness::new();
    h.tx(&tagged("t1", Deposit, "40", "2026-03-01T10:00:00Z"));
    h.tx(&tagged("t2", Deposit, "40", "2026-03-02T10:00:00Z"));
    h.goal(&goal(GoalCreated, "g1", "u1", "200", None, "2026-03-03T00:00:00Z"));
    h.tx(&tagged("t3", Deposit, "30", "2026-03-04T10:00:00Z"));
    // Event time decides: a deposit dated before the goal was created does not count.
    h.tx(&tagged("t0", Deposit, "500", "2026-03-02T23:59:59Z"));
    assert_eq!(view(&h), [p("0", "0", GoalStatus::InProgress, None), p("30", "15", GoalStatus::InProgress, None)]);
    assert_eq!(h.goals("u1").goals["g1"].saved, d("30"));
}

#[test]
fn milestones_once_each_achieved_sticky_and_deleted() {
    let mut h = Harness::new();
    h.goal(&goal(GoalCreated, "g1", "u1", "100", None, "2026-03-01T00:00:00Z"));
    h.tx(&tagged("t1", Deposit, "30", "2026-03-02T10:00:00Z")); // 30: 25
    h.tx(&tagged("t2", Deposit, "30", "2026-03-03T10:00:00Z")); // 60: 50
    h.tx(&tagged("t3", Withdrawal, "20", "2026-03-04T10:00:00Z")); // 40
    h.tx(&tagged("t4", Deposit, "20", "2026-03-05T10:00:00Z")); // 60: 50 already
    h.tx(&tagged("t5", Interest, "50", "2026-03-06T10:00:00Z")); // 110: 75 and 100
    h.tx(&tagged("t6", Payment, "60", "2026-03-07T10:00:00Z")); // 50: still ACHIEVED
    h.tx(&tagged("t7", Deposit, "60", "2026-03-08T10:00:00Z")); // 110: nothing new
    h.goal(&goal(GoalDeleted, "g1", "u1", "0", None, "2026-03-09T00:00:00Z"));
    h.tx(&tagged("t8", Deposit, "10", "2026-03-10T10:00:00Z")); // no longer tracked
    use GoalStatus::*;
    assert_eq!(
        view(&h),
        [
            p("0", "0", InProgress, None),
            p("30", "30", InProgress, Some(25)),
            p("60", "60", InProgress, Some(50)),
            p("40", "40", InProgress, None),
            p("60", "60", InProgress, None),
            p("110", "100", Achieved, Some(100)),
            p("50", "50", Achieved, None),
            p("110", "100", Achieved, None),
            p("110", "100", Deleted, None),
        ]
    );
    let n = h.notifications();
    let goal_notes: Vec<_> = n
        .iter()
        .filter(|n| n.notification_id.starts_with("goal:"))
        .map(|n| (n.notification_id.as_str(), n.kind))
        .collect();
    assert_eq!(
        goal_notes,
        [
            ("goal:g1:25", NotificationKind::GoalMilestone),
            ("goal:g1:50", NotificationKind::GoalMilestone),
            ("goal:g1:75", NotificationKind::GoalMilestone),
            ("goal:g1:100", NotificationKind::GoalAchieved),
        ]
    );
    let achieved = n.iter().find(|n| n.kind == NotificationKind::GoalAchieved).unwrap();
    assert_eq!(achieved.message, "You reached your goal \"Goal g1\": 110.00 USD of 100.00 USD.");
    assert!(h.goals("u1").goals.is_empty(), "deleted goals are forgotten");
}

#[test]
fn goal_on_an_account_with_transfers_in_and_out() {
    let mut h = Harness::new();
    h.goal(&goal(GoalCreated, "g1", "u1", "100", Some("sav"), "2026-03-01T00:00:00Z"));
    h.tx(&transfer("t1", "chk", "sav", "u1", "50", "USD", "2026-03-02T10:00:00Z")); // +50
    h.tx(&transfer("t2", "sav", "chk", "u1", "20", "USD", "2026-03-03T10:00:00Z")); // -20
    h.tx(&txn("t3", "sav", "u1", Deposit, "10", "USD", "2026-03-04T10:00:00Z")); // +10
    h.tx(&txn("t4", "sav", "u1", Fee, "5", "USD", "2026-03-05T10:00:00Z")); // -5
    h.tx(&txn("t5", "chk", "u1", Deposit, "999", "USD", "2026-03-05T11:00:00Z")); // other account
                                                                                  // Another user's transfer into the account reaches its owner through the transfers in: +70.
    h.tx(&transfer("t6", "other", "sav", "u2", "70", "USD", "2026-03-05T12:00:00Z"));
    let mut t7 = txn("t7", "chk", "u1", Deposit, "15", "USD", "2026-03-06T10:00:00Z");
    t7.goal_id = Some("g1".into()); // tagged, on another account: counts
    h.tx(&t7);
    let mut t8 = txn("t8", "sav", "u1", Deposit, "1", "USD", "2026-03-06T11:00:00Z");
    t8.goal_id = Some("g1".into()); // tagged and into the account: counts once
    h.tx(&t8);
    assert_eq!(h.goals("u1").goals["g1"].saved, d("121"));
    assert_eq!(h.progress().len(), 8, "created + seven counted transactions");
    assert_eq!(h.balance("sav").unwrap().balance, d("106"), "balances see every leg");
}

#[test]
fn goal_amounts_convert_to_goal_currency_and_currency_changes_are_rejected() {
    let mut h = Harness::new();
    h.rate("JPY", "0.0066666667");
    h.rate("KWD", "3.2512");
    let mut g = goal(GoalCreated, "g1", "u1", "30000", None, "2026-03-01T00:00:00Z");
    g.currency = "JPY".into();
    h.goal(&g);
    let mut gk = goal(GoalCreated, "g2", "u1", "10", None, "2026-03-01T00:00:00Z");
    gk.currency = "KWD".into();
    h.goal(&gk);
    let mut t = tagged("t1", Deposit, "10.00", "2026-03-02T10:00:00Z"); // 1500 JPY
    h.tx(&t);
    t = tagged("t2", Deposit, "0.01", "2026-03-02T11:00:00Z"); // 1.4999 -> 1 JPY
    h.tx(&t);
    let mut tk = tagged("t3", Deposit, "10.00", "2026-03-02T12:00:00Z");
    tk.goal_id = Some("g2".into()); // 3.076 KWD
    h.tx(&tk);
    let goals = h.goals("u1").goals;
    assert_eq!(goals["g1"].saved, d("1501"));
    assert_eq!(goals["g2"].saved, d("3.076"));
    assert_eq!(goals["g2"].percent(), d("30.76"));
    g.event_type = GoalUpdated;
    g.currency = "USD".into();
    h.goal(&g);
    assert_eq!(h.dlq_reasons("financial-goals"), ["invalid_goal_update"]);
    // Updating the target re-evaluates milestones at once.
    let mut lower = goal(GoalUpdated, "g2", "u1", "3.5", None, "2026-03-03T00:00:00Z");
    lower.currency = "KWD".into();
    h.goal(&lower);
    let last = h.progress().pop().unwrap();
    assert_eq!((last.goal_id.as_str(), last.milestone, last.status), ("g2", Some(75), GoalStatus::InProgress));
    assert_eq!(h.goals("u1").goals["g2"].created_at, ms("2026-03-01T00:00:00Z"));
}
