//! Delivery: the closing days, scheduling a day's items with duplicates and late deliveries,
//! balance checks and the follow-ups of a transaction (completion of PENDING, refunds).

use super::*;

impl Generator {
    /// Order-robust only: after two quiet days, one INTEREST per account, its last leg.
    pub(super) fn closing(&mut self) {
        let b = self.cfg.days + 2;
        for u in 0..self.users.len() {
            let date = self.users[u].day0 + Days::new(u64::from(b));
            let tz = self.users[u].home_tz;
            let mut items = Vec::new();
            for a in 0..self.users[u].accounts.len() {
                let ts = local_ts(tz, date, 12 * 3600 + a as u32 * 60);
                let t = self.txn(u, a, TransactionKind::Interest, 0.5, Category::Savings, Channel::BankTransfer);
                items.push(Item { ts, ev: Event::Transaction(t), account: a, flags: Flags::default() });
            }
            self.schedule_items(u, items);
        }
    }

    // ------------------------------------------------------------------ delivery

    /// Sorts a user's items, gives them distinct timestamps (strictly increasing per user, the
    /// millisecond part = user index % 1000), applies the balance check, plans follow-ups
    /// (refunds, completions), and hands them to delivery, some late, some twice.
    pub(super) fn schedule_items(&mut self, u: usize, mut items: Vec<Item>) {
        items.sort_by_key(|i| i.ts);
        let offset = (self.users[u].idx % 1000) as i64;
        for mut item in items {
            let mut ts = item.ts.div_euclid(SECOND) * SECOND + offset;
            if ts <= self.users[u].last_ts {
                ts = self.users[u].last_ts + SECOND;
            }
            self.users[u].last_ts = ts;
            set_timestamp(&mut item.ev, ts);
            item.ts = ts;
            let mut deliver_at = ts;
            if let Event::Transaction(t) = &mut item.ev {
                self.check_balance(u, item.account, t, item.flags);
                self.follow_ups(u, item.account, t, item.flags);
                if let Some(s) = item.flags.fraud {
                    self.labels.push(FraudLabel {
                        transaction_id: t.transaction_id.clone(),
                        account_id: t.account_id.clone(),
                        user_id: t.user_id.clone(),
                        scenario: s,
                        scenario_id: format!("{}f{:05}", self.cfg.id_prefix, self.scenario_counter),
                        occurred_at: ts,
                    });
                }
                let late_allowed = !self.cfg.order_robust || item.flags.late_ok;
                if item.flags.fraud.is_none() && late_allowed && self.chance(self.cfg.late_ratio) {
                    deliver_at = ts + self.rng.random_range(10 * MINUTE..self.cfg.max_late_ms.max(10 * MINUTE + 1));
                }
                if self.chance(self.cfg.duplicate_ratio) {
                    let again = deliver_at + self.rng.random_range(SECOND..10 * MINUTE);
                    self.deliver(again, item.ev.clone());
                }
            }
            self.deliver(deliver_at, item.ev);
        }
    }

    /// Declines (FAILED) a debit the account cannot cover, and books the transaction in the
    /// generator's view of the balances. Credits count `maturity` after their time.
    pub(super) fn check_balance(&mut self, u: usize, a: usize, t: &mut TransactionEvent, flags: Flags) {
        if t.status != TransactionStatus::Completed {
            return;
        }
        let (maturity, margin) = if self.cfg.order_robust { (2 * DAY, 50.0) } else { (0, 0.0) };
        let now = t.occurred_at.0;
        let usd = self.usd(t.amount, &t.currency);
        let acc = &mut self.users[u].accounts[a];
        let (ready, waiting): (Vec<_>, Vec<_>) = acc.maturing.iter().partition(|(at, _)| at + maturity <= now);
        acc.maturing = waiting;
        acc.safe_usd += ready.iter().map(|(_, v)| v).sum::<f64>();
        let credit = matches!(t.kind, TransactionKind::Deposit | TransactionKind::Interest | TransactionKind::Refund);
        if credit {
            acc.maturing.push((now, usd));
            return;
        }
        if flags.fraud.is_none() && acc.safe_usd - usd < margin {
            t.status = TransactionStatus::Failed;
            return;
        }
        acc.safe_usd -= usd;
        if t.kind == TransactionKind::Transfer {
            if let Some(&(v, b)) = t.counterparty_account_id.as_ref().and_then(|c| self.account_index.get(c)) {
                self.users[v].accounts[b].maturing.push((now, usd));
            }
        }
    }

    pub(super) fn follow_ups(&mut self, u: usize, a: usize, t: &TransactionEvent, flags: Flags) {
        let tz = self.users[u].home_tz;
        let date = local_date(tz, t.occurred_at.0);
        if flags.complete_later && self.chance(0.8) {
            // The same transaction, COMPLETED a day or two later.
            let d = date + Days::new(self.rng.random_range(1..3));
            let ts = local_ts(tz, d, self.time_of_day(7, 23));
            let mut done = t.clone();
            done.status = TransactionStatus::Completed;
            let flags = Flags { refundable: true, ..Flags::default() };
            self.users[u].scheduled.push(Item { ts, ev: Event::Transaction(done), account: a, flags });
        }
        if flags.refundable && t.status == TransactionStatus::Completed && self.chance(0.06) {
            let d = date + Days::new(self.rng.random_range(2..10));
            let ts = local_ts(tz, d, self.time_of_day(7, 23));
            let minor = schemas::currency::minor_units(&t.currency).unwrap_or(2);
            let amount = if self.chance(0.6) {
                t.amount
            } else {
                (t.amount * Decimal::from_f64(self.between(0.2, 0.9)).unwrap_or(Decimal::ONE))
                    .round_dp(minor)
                    .max(Decimal::new(1, minor))
                    .normalize()
            };
            let mut r = self.txn_in(u, a, TransactionKind::Refund, amount, &t.currency, t.category, t.channel);
            r.merchant = t.merchant.clone();
            r.location = t.location.clone();
            self.users[u].scheduled.push(Item { ts, ev: Event::Transaction(r), account: a, flags: Flags::default() });
        }
    }
}
