//! The `accounts` table on the test driver (docs/money-rules.md, "Accounts"): owner and currency
//! from the account's record, legs that arrive before it applied at once and attributed when it
//! comes, transfers into an account with no known owner held and released, closing, and records
//! that would rewrite an account.

mod common;

use std::collections::BTreeMap;

use common::*;
use processors::FinanceConfig;
use rust_decimal::Decimal;
use schemas::AccountEventType::{AccountClosed, AccountOpened};
use schemas::TransactionKind::*;
use schemas::*;
use streams::DriverConfig;

/// u1 owns a checking account and a savings account that only ever receives transfers (its own
/// and u2's), with a goal linked to it; u2 owns a checking account. One of u2's transfers is
/// delivered twice.
fn money() -> Vec<TransactionEvent> {
    vec![
        txn("d1", "chk-1", "u1", Deposit, "500", "USD", "2026-03-01T09:00:00Z"),
        txn("d2", "chk-2", "u2", Deposit, "300", "USD", "2026-03-01T09:30:00Z"),
        transfer("t1", "chk-1", "sav-1", "u1", "100", "USD", "2026-03-02T10:00:00Z"),
        transfer("t2", "chk-2", "sav-1", "u2", "40", "USD", "2026-03-03T10:00:00Z"),
        transfer("t2", "chk-2", "sav-1", "u2", "40", "USD", "2026-03-03T10:00:00Z"),
        transfer("t3", "chk-2", "chk-1", "u2", "25", "USD", "2026-03-04T10:00:00Z"),
        txn("p1", "chk-1", "u1", Payment, "30", "USD", "2026-03-05T10:00:00Z"),
    ]
}

fn records() -> Vec<AccountEvent> {
    vec![
        account(AccountOpened, "chk-1", "u1", "USD", "2026-03-01T08:00:00Z"),
        account(AccountOpened, "sav-1", "u1", "USD", "2026-03-01T08:00:01Z"),
        account(AccountOpened, "chk-2", "u2", "USD", "2026-03-01T08:00:02Z"),
    ]
}

/// What users and dashboards see: every balance (owner, currency, amount, legs), each user's
/// cash flow for March, u1's goal, and how many transfers are still held.
type Outcome = (BTreeMap<String, (String, String, Decimal, i64)>, Vec<Option<(Decimal, Decimal, i64)>>, Decimal, usize);

fn outcome(h: &Harness) -> Outcome {
    let balances =
        h.all_balances().into_iter().map(|(k, b)| (k, (b.user_id, b.currency, b.balance, b.applied_count))).collect();
    let flows = ["u1", "u2"]
        .iter()
        .map(|u| h.cash_flow(u, "2026-03").map(|c| (c.transfers_in, c.transfers_out, c.count)))
        .collect();
    (balances, flows, h.goals("u1").goals["g1"].saved, h.held_transfers().len())
}

fn with_goal() -> Harness {
    let mut h = Harness::new();
    h.goal(&goal(GoalEventType::GoalCreated, "g1", "u1", "1000", Some("sav-1"), "2026-03-01T00:00:00Z"));
    h
}

#[test]
fn the_outcome_does_not_depend_on_whether_the_account_event_came_first() {
    let mut first = with_goal();
    for a in records() {
        first.account(&a);
    }
    for t in money() {
        first.tx(&t);
    }
    let expected = outcome(&first);
    let (balances, flows, saved, held) = &expected;
    assert_eq!(balances["sav-1"], ("u1".into(), "USD".into(), d("140"), 2), "a duplicate is applied once");
    // u1's transfers in: its own 100 and u2's 40 (into savings) and 25 (into checking).
    assert_eq!(flows[0], Some((d("165"), d("100"), 6)));
    assert_eq!(flows[1], Some((d("0"), d("65"), 3)));
    assert_eq!(*saved, d("140"), "the goal counts the owner's own transfer and u2's");
    assert_eq!(*held, 0);

    // The records last: the savings account has no owner until its record comes, so the
    // transfers into it wait; then everything is attributed and released.
    let mut last = with_goal();
    for t in money() {
        last.tx(&t);
    }
    let sav = last.balance("sav-1").unwrap();
    assert_eq!((sav.user_id.as_str(), sav.balance), ("", d("140")), "money is never held back");
    assert_eq!(last.held_transfers().len(), 2, "t1 and t2 (once) wait for sav-1's owner");
    assert_eq!(last.cash_flow("u1", "2026-03").unwrap().transfers_in, d("25"), "chk-1's owner is known");
    let before = last.balances_out().len();
    for a in records() {
        last.account(&a);
    }
    assert_eq!(outcome(&last), expected);
    let attributed: Vec<BalanceUpdated> = last.balances_out().split_off(before);
    assert_eq!(attributed.len(), 1, "only sav-1 changed: {attributed:?}");
    assert_eq!((attributed[0].account_id.as_str(), attributed[0].user_id.as_str()), ("sav-1", "u1"));
    assert_eq!(attributed[0].applied_count, 2, "attribution is not a leg");

    // The records in the middle: the same again.
    let mut middle = with_goal();
    let (txs, recs) = (money(), records());
    for t in &txs[..3] {
        middle.tx(t);
    }
    for a in &recs {
        middle.account(a);
    }
    for t in &txs[3..] {
        middle.tx(t);
    }
    assert_eq!(outcome(&middle), expected);
}

#[test]
fn an_account_s_own_first_leg_names_its_owner_and_releases_what_was_held() {
    let mut h = with_goal();
    h.tx(&txn("d2", "chk-2", "u2", Deposit, "300", "USD", "2026-03-01T09:30:00Z"));
    h.tx(&transfer("t2", "chk-2", "sav-1", "u2", "40", "USD", "2026-03-03T10:00:00Z"));
    assert_eq!(h.held_transfers().len(), 1);
    assert!(h.cash_flow("u1", "2026-03").is_none());
    // Interest paid on the savings account names u1 as its owner (no record needed).
    h.tx(&txn("i1", "sav-1", "u1", Interest, "1", "USD", "2026-03-04T10:00:00Z"));
    assert!(h.held_transfers().is_empty());
    let flow = h.cash_flow("u1", "2026-03").unwrap();
    assert_eq!((flow.transfers_in, flow.money_in, flow.count), (d("40"), d("1"), 2));
    assert_eq!(h.goals("u1").goals["g1"].saved, d("41"));
}

#[test]
fn an_opened_account_has_an_empty_balance_its_owner_can_read() {
    let mut h = Harness::new();
    h.account(&account(AccountOpened, "sav-9", "u9", "JPY", "2026-03-01T08:00:00Z"));
    let b = h.balance("sav-9").unwrap();
    assert_eq!((b.user_id.as_str(), b.currency.as_str(), b.balance, b.applied_count), ("u9", "JPY", d("0"), 0));
    assert!(h.balances_out().is_empty(), "no leg, no BalanceUpdated");
    // Its first leg converts into the account's currency, not the other way round.
    h.rate("JPY", "0.0066666667");
    h.tx(&transfer("t1", "chk-1", "sav-9", "u1", "10.00", "USD", "2026-03-02T10:00:00Z"));
    let b = h.balance("sav-9").unwrap();
    assert_eq!((b.currency.as_str(), b.balance, b.user_id.as_str()), ("JPY", d("1500"), "u9"));
    assert_eq!(h.cash_flow("u9", "2026-03").unwrap().transfers_in, d("10.00"), "USD: u9 has no profile");
}

#[test]
fn a_late_record_in_another_currency_converts_the_balance_once() {
    let mut h = Harness::new();
    h.rate("EUR", "1.085");
    h.tx(&transfer("t1", "chk-1", "eur-sav", "u1", "100", "USD", "2026-03-02T10:00:00Z"));
    h.tx(&transfer("t2", "chk-1", "eur-sav", "u1", "0.50", "USD", "2026-03-02T11:00:00Z"));
    assert_eq!(h.balance("eur-sav").unwrap().currency, "USD", "first leg's currency until the record says");
    h.account(&account(AccountOpened, "eur-sav", "u1", "EUR", "2026-03-03T08:00:00Z"));
    let b = h.balance("eur-sav").unwrap();
    // 100.50 USD / 1.085 = 92.6267… EUR, once, half-even to cents.
    assert_eq!((b.currency.as_str(), b.balance, b.applied_count, b.user_id.as_str()), ("EUR", d("92.63"), 2, "u1"));
    let last = h.balances_out().pop().unwrap();
    assert_eq!((last.currency.as_str(), last.balance, last.user_id.as_str()), ("EUR", d("92.63"), "u1"));
    // Later legs convert one by one.
    h.tx(&transfer("t3", "chk-1", "eur-sav", "u1", "10.85", "USD", "2026-03-04T10:00:00Z"));
    assert_eq!(h.balance("eur-sav").unwrap().balance, d("102.63"));

    // A record whose currency has no rate cannot be applied: dead letter, nothing changes.
    h.tx(&transfer("t4", "chk-1", "gbp-sav", "u1", "5", "USD", "2026-03-04T11:00:00Z"));
    h.account(&account(AccountOpened, "gbp-sav", "u1", "GBP", "2026-03-04T12:00:00Z"));
    assert_eq!(h.dlq_reasons("accounts"), ["missing_exchange_rate"]);
    assert!(h.account_record("gbp-sav").is_none());
    let b = h.balance("gbp-sav").unwrap();
    assert_eq!((b.currency.as_str(), b.user_id.as_str()), ("USD", ""));
}

#[test]
fn closing_keeps_the_owner_and_money_still_moves() {
    let mut h = Harness::new();
    h.account(&account(AccountOpened, "acc-1", "u1", "USD", "2026-03-01T08:00:00Z"));
    h.tx(&txn("d1", "acc-1", "u1", Deposit, "10", "USD", "2026-03-01T09:00:00Z"));
    h.account(&account(AccountClosed, "acc-1", "u1", "USD", "2026-03-02T08:00:00Z"));
    let r = h.account_record("acc-1").unwrap();
    assert!(r.closed && r.closed_at == Some(ms("2026-03-02T08:00:00Z")) && r.opened_at == ms("2026-03-01T08:00:00Z"));
    // A settlement after closing still moves money, and is counted for operators.
    h.tx(&txn("r1", "acc-1", "u1", Refund, "3", "USD", "2026-03-03T09:00:00Z"));
    let b = h.balance("acc-1").unwrap();
    assert_eq!((b.balance, b.applied_count, b.user_id.as_str()), (d("13"), 2, "u1"));
    let closed_legs = h.d.metrics().events.with_label_values(&["balances", "leg_on_closed_account"]).get();
    assert_eq!(closed_legs, 1);
    assert_eq!(h.cash_flow("u1", "2026-03").unwrap().money_in, d("13"));
    // A late redelivery of the ACCOUNT_OPENED (older than the closing) does not reopen it.
    h.account(&account(AccountOpened, "acc-1", "u1", "USD", "2026-03-01T08:00:00Z"));
    assert!(h.account_record("acc-1").unwrap().closed);
    assert_eq!(h.d.metrics().events.with_label_values(&["account-events", "stale_account_event"]).get(), 1);
    // Reopened.
    h.account(&account(AccountOpened, "acc-1", "u1", "USD", "2026-03-04T08:00:00Z"));
    let r = h.account_record("acc-1").unwrap();
    assert!(!r.closed && r.closed_at.is_none());
}

#[test]
fn records_that_would_rewrite_an_account_are_dead_lettered() {
    let mut h = Harness::new();
    h.account(&account(AccountOpened, "acc-1", "u1", "USD", "2026-03-01T08:00:00Z"));
    h.account(&account(AccountOpened, "acc-1", "u2", "USD", "2026-03-01T09:00:00Z"));
    h.account(&account(AccountClosed, "acc-1", "u1", "EUR", "2026-03-01T10:00:00Z"));
    // Keyed by another account than it names: its task does not hold that account.
    let a = account(AccountOpened, "acc-2", "u1", "USD", "2026-03-01T11:00:00Z");
    let bytes = streams::Serde::serialize(&AvroSerde::<AccountEvent>::new(h.registry.clone()), "accounts", &a).unwrap();
    h.d.pipe_raw("accounts", Some(b"acc-3".to_vec()), Some(bytes), a.occurred_at.0).unwrap();
    let mut reasons = h.dlq_reasons("accounts");
    reasons.sort();
    assert_eq!(reasons, ["invalid_account_update", "invalid_account_update", "key_mismatch"]);
    let r = h.account_record("acc-1").unwrap();
    assert_eq!((r.user_id.as_str(), r.currency.as_str(), r.closed), ("u1", "USD", false));
    assert!(h.account_record("acc-2").is_none() && h.account_record("acc-3").is_none());
    // A transaction naming another user than the record's owner: the record wins, and it shows.
    h.tx(&txn("d1", "acc-1", "u2", Deposit, "10", "USD", "2026-03-02T09:00:00Z"));
    assert_eq!(h.balance("acc-1").unwrap().user_id, "u1");
    assert_eq!(h.d.metrics().events.with_label_values(&["balances", "owner_mismatch"]).get(), 1);
}

#[test]
fn transfers_to_accounts_no_one_opens_do_not_wait_forever() {
    let day = 86_400_000;
    let cfg = FinanceConfig { transfers_in_hold_ms: 10 * day, dedupe_purge_interval_ms: day, ..Default::default() };
    // One partition: one task holds every transfer (the hold's clock is per task).
    let mut h = Harness::with(cfg, DriverConfig { partitions: 1, ..Default::default() });
    h.tx(&txn("d1", "chk-1", "u1", Deposit, "500", "USD", "2026-03-01T09:00:00Z"));
    h.tx(&transfer("t1", "chk-1", "ext-1", "u1", "10", "USD", "2026-03-01T10:00:00Z"));
    h.tx(&transfer("t2", "chk-1", "ext-2", "u1", "10", "USD", "2026-03-05T10:00:00Z"));
    assert_eq!(h.held_transfers().len(), 2);
    // Three weeks of transfers to other banks later, the first two have expired and are gone.
    h.tx(&transfer("t3", "chk-1", "ext-3", "u1", "10", "USD", "2026-03-22T10:00:00Z"));
    let held: Vec<String> = h.held_transfers().into_iter().map(|t| t.transaction_id).collect();
    assert_eq!(held, ["t3"]);
    // An owner who turns up after that does not get them in cash flow (the balance has them).
    h.account(&account(AccountOpened, "ext-1", "u7", "USD", "2026-03-23T08:00:00Z"));
    assert!(h.cash_flow("u7", "2026-03").is_none());
    assert_eq!(h.balance("ext-1").unwrap().balance, d("10"));
    // Within the hold, it does.
    h.account(&account(AccountOpened, "ext-3", "u8", "USD", "2026-03-23T08:00:00Z"));
    assert_eq!(h.cash_flow("u8", "2026-03").unwrap().transfers_in, d("10"));
}
