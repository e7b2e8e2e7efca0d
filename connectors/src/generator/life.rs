//! Daily life: the batches of one day each, slowly moving rates, and one user's day of salary,
//! rent, shopping, transfers, refunds, trips and goal deposits.

use super::*;

impl Generator {
    pub(super) fn batch(&mut self, b: u32) {
        if b == 0 {
            self.setup();
            return;
        }
        if b > self.cfg.days {
            if b == self.cfg.days + 2 {
                self.closing();
            }
            return;
        }
        if self.cfg.rate_updates {
            self.move_rates(b);
        }
        for u in 0..self.users.len() {
            let date = self.users[u].day0 + Days::new(u64::from(b));
            let mut items = self.life(u, date, b);
            // Events planned earlier for this date.
            let tz = self.users[u].home_tz;
            let (lo, hi) = (local_ts(tz, date, 0), local_ts(tz, date + Days::new(1), 0));
            let sched = std::mem::take(&mut self.users[u].scheduled);
            let (now, later): (Vec<Item>, Vec<Item>) = sched.into_iter().partition(|i| i.ts >= lo && i.ts < hi);
            self.users[u].scheduled = later;
            items.extend(now);
            self.schedule_items(u, items);
        }
    }

    pub(super) fn move_rates(&mut self, b: u32) {
        let day_start = self.cfg.start_ms + i64::from(b) * DAY;
        let codes: Vec<&'static str> = self.rates.keys().copied().filter(|c| *c != "USD").collect();
        for (i, cur) in codes.into_iter().enumerate() {
            let step = self.between(-0.003, 0.003);
            let r = self.rates[cur];
            let moved = (r * Decimal::from_f64(1.0 + step).unwrap_or(Decimal::ONE)).round_dp(10).normalize();
            self.rates.insert(cur, moved);
            let ts = day_start + i as i64;
            self.deliver(
                ts,
                Event::Rate(ExchangeRate { currency: cur.to_string(), usd_rate: moved, as_of: TimestampMillis(ts) }),
            );
        }
    }

    /// Quiet time (order-robust: 03:00-04:00 local, away from any transaction) or a daytime moment.
    pub(super) fn admin_time(&mut self, u: usize, date: NaiveDate) -> i64 {
        let tz = self.users[u].home_tz;
        let secs = if self.cfg.order_robust { self.time_of_day(3, 4) } else { self.time_of_day(7, 23) };
        local_ts(tz, date, secs)
    }

    /// One local day of a user's life.
    pub(super) fn life(&mut self, u: usize, date: NaiveDate, b: u32) -> Vec<Item> {
        let mut items: Vec<Item> = Vec::new();
        let tz = self.users[u].home_tz;
        let at = |s: u32| local_ts(tz, date, s);
        let robust = self.cfg.order_robust;
        let dom = date.day();
        let last_dom = (date + Days::new(1)).day() == 1;
        let base = self.users[u].base;
        let has_savings = self.users[u].accounts.iter().position(|a| a.kind == AccountKind::Savings);
        let foreign = self.users[u].accounts.iter().position(|a| a.kind == AccountKind::Foreign);

        // Trips: start one now and then, end it when due. The day a trip starts and the day after
        // it ends the user is travelling: no card-present payments, so consecutive located
        // payments are always a flight apart (over 30 hours), never "impossible travel".
        let mut in_transit = false;
        if let Some((end, _)) = self.users[u].trip {
            if date > end {
                self.users[u].trip = None;
                in_transit = true;
            }
        } else if self.chance(0.012) {
            let i = self.rng.random_range(0..TRIPS.len() + HOMES.len());
            let dest = if i < TRIPS.len() { &TRIPS[i] } else { &HOMES[i - TRIPS.len()].0 };
            if dest.currency != base || dest.country != self.users[u].home.country {
                let len = self.rng.random_range(2..7);
                self.users[u].trip = Some((date + Days::new(len), dest));
                in_transit = true;
            }
        }
        let spend_currency = self.users[u].trip.map(|(_, p)| p.currency).unwrap_or(base);

        // Salary and rent.
        if dom == self.users[u].salary_day {
            let usd = self.users[u].salary_usd * self.between(0.98, 1.02);
            let ts = at(self.time_of_day(7, 9));
            let t = self.txn(u, 0, TransactionKind::Deposit, usd, Category::Income, Channel::BankTransfer);
            items.push(Item {
                ts,
                ev: Event::Transaction(t),
                account: 0,
                flags: Flags { late_ok: true, ..Flags::default() },
            });
            // Part of it goes to savings the next morning (scheduled now, on the next date).
            if let Some(s) = has_savings.filter(|_| b > 0) {
                let usd = self.users[u].salary_usd * self.between(0.08, 0.2);
                let ts = local_ts(tz, date + Days::new(1), self.time_of_day(8, 10));
                let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Savings, Channel::Mobile);
                t.counterparty_account_id = Some(self.users[u].accounts[s].id.clone());
                t.goal_id = self.tag_goal(u, 0.7);
                self.users[u].scheduled.push(Item {
                    ts,
                    ev: Event::Transaction(t),
                    account: 0,
                    flags: Flags::default(),
                });
            }
        }
        if dom == self.users[u].rent_day {
            let usd = self.users[u].rent_usd;
            let ts = at(self.time_of_day(9, 11));
            let t = self.txn(u, 0, TransactionKind::Payment, usd, Category::Rent, Channel::BankTransfer);
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        if dom == 10 {
            let usd = self.between(60.0, 220.0);
            let ts = at(self.time_of_day(9, 12));
            let t = self.txn(u, 0, TransactionKind::Payment, usd, Category::Utilities, Channel::BankTransfer);
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        if dom == 1 && self.users[u].has_fee_plan {
            let usd = self.between(2.0, 10.0);
            let ts = at(self.time_of_day(7, 8));
            let t = self.txn(u, 0, TransactionKind::Fee, usd, Category::Other, Channel::BankTransfer);
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        if last_dom {
            for a in 0..self.users[u].accounts.len() {
                if self.users[u].accounts[a].kind == AccountKind::Savings {
                    let usd = (self.users[u].accounts[a].safe_usd * 0.003).max(0.05);
                    let ts = at(self.time_of_day(7, 8));
                    let t = self.txn(u, a, TransactionKind::Interest, usd, Category::Savings, Channel::BankTransfer);
                    items.push(Item { ts, ev: Event::Transaction(t), account: a, flags: Flags::default() });
                }
            }
        }

        // Everyday spending on checking (in the local currency while abroad).
        let weekday = date.weekday().num_days_from_monday();
        let mut spend = Vec::new();
        if weekday == self.users[u].grocery_weekday || self.chance(0.05) {
            spend.push((Category::Groceries, self.between(40.0, 160.0), (16, 21)));
        }
        if self.chance(0.4) {
            spend.push((Category::Dining, self.between(8.0, 70.0), if self.chance(0.5) { (12, 14) } else { (19, 22) }));
        }
        if weekday < 5 && self.chance(0.55) {
            spend.push((Category::Transport, self.between(2.0, 25.0), (7, 9)));
        }
        if self.chance(0.15) {
            spend.push((Category::Shopping, self.between(15.0, 250.0), (10, 20)));
        }
        if self.chance(0.1) {
            spend.push((Category::Entertainment, self.between(10.0, 80.0), (18, 22)));
        }
        if self.chance(0.04) {
            spend.push((Category::Health, self.between(10.0, 120.0), (9, 18)));
        }
        if self.users[u].trip.is_some() && self.chance(0.5) {
            spend.push((Category::Travel, self.between(50.0, 300.0), (9, 21)));
        }
        for (cat, usd, (h0, h1)) in spend {
            let online = matches!(cat, Category::Shopping | Category::Entertainment) && self.chance(0.4);
            let channel = if online { Channel::Online } else { Channel::Card };
            if in_transit && channel == Channel::Card {
                continue;
            }
            let amount = self.money(usd, spend_currency);
            let mut t = self.txn_in(u, 0, TransactionKind::Payment, amount, spend_currency, cat, channel);
            let ts = at(self.time_of_day(h0, h1));
            let mut flags = Flags { refundable: true, ..Flags::default() };
            let r: f64 = self.rng.random();
            if r < 0.02 {
                t.status = TransactionStatus::Failed;
            } else if r < 0.05 {
                t.status = TransactionStatus::Pending;
                flags.complete_later = true;
            }
            let abroad = spend_currency != self.users[u].accounts[0].currency;
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
            if abroad && self.chance(0.5) {
                // Foreign transaction fee, on the account's currency.
                let fee = self.money(usd * 0.025, self.users[u].accounts[0].currency);
                let acc_cur = self.users[u].accounts[0].currency;
                let f = self.txn_in(u, 0, TransactionKind::Fee, fee, acc_cur, Category::Other, Channel::Card);
                items.push(Item { ts: ts + MINUTE, ev: Event::Transaction(f), account: 0, flags: Flags::default() });
            }
        }
        // Online purchase from abroad in another currency now and then.
        if self.chance(0.02) {
            let cur = ["USD", "EUR", "GBP", "JPY"][self.rng.random_range(0..4)];
            let usd = self.rng.random_range(10.0..120.0);
            let amount = self.money(usd, cur);
            let t = self.txn_in(u, 0, TransactionKind::Payment, amount, cur, Category::Shopping, Channel::Online);
            let ts = at(self.time_of_day(10, 22));
            items.push(Item {
                ts,
                ev: Event::Transaction(t),
                account: 0,
                flags: Flags { refundable: true, ..Flags::default() },
            });
        }
        // ATM.
        if self.chance(0.04) {
            let usd = self.rng.random_range(20.0..200.0);
            let amount = self.round_money(usd, spend_currency);
            let t =
                self.txn_in(u, 0, TransactionKind::Withdrawal, amount, spend_currency, Category::Other, Channel::Atm);
            let ts = at(self.time_of_day(8, 22));
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        // Transfers to other users (from day 2 on: every account has long been opened).
        if b >= 2 && self.users.len() > 1 && self.chance(0.04) {
            let mut v = self.rng.random_range(0..self.users.len() - 1);
            if v >= u {
                v += 1;
            }
            let usd = self.between(10.0, 150.0);
            let ts = at(self.time_of_day(9, 22));
            let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Other, Channel::Mobile);
            t.counterparty_account_id = Some(self.users[v].accounts[0].id.clone());
            items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
        }
        // To the foreign-currency account (converted on the credit leg), and spending from it.
        if let Some(f) = foreign.filter(|_| b >= 2) {
            if self.chance(0.02) {
                let usd = self.between(50.0, 400.0);
                let ts = at(self.time_of_day(9, 21));
                let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Savings, Channel::Mobile);
                t.counterparty_account_id = Some(self.users[u].accounts[f].id.clone());
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
            }
            if self.chance(0.03) {
                let usd = self.between(10.0, 90.0);
                let ts = at(self.time_of_day(10, 21));
                let t = self.txn(u, f, TransactionKind::Payment, usd, Category::Travel, Channel::Online);
                items.push(Item { ts, ev: Event::Transaction(t), account: f, flags: Flags::default() });
            }
        }
        // Savings: gifts toward goals, and (unless order-robust) taking money back out.
        if let Some(s) = has_savings {
            if self.chance(0.02) {
                let usd = self.between(20.0, 300.0);
                let ts = at(self.time_of_day(10, 20));
                let mut t = self.txn(u, s, TransactionKind::Deposit, usd, Category::Savings, Channel::BankTransfer);
                t.goal_id = self.tag_goal(u, 0.6);
                let late_ok = t.goal_id.is_none() && !self.users[u].accounts[s].goal_linked;
                items.push(Item {
                    ts,
                    ev: Event::Transaction(t),
                    account: s,
                    flags: Flags { late_ok, ..Flags::default() },
                });
            }
            let linked = self.users[u].accounts[s].goal_linked;
            if !(robust && linked) && b >= 2 && self.chance(0.015) {
                let usd = self.between(50.0, 300.0);
                let ts = at(self.time_of_day(9, 21));
                let mut t = self.txn(u, s, TransactionKind::Transfer, usd, Category::Savings, Channel::Mobile);
                t.counterparty_account_id = Some(self.users[u].accounts[0].id.clone());
                items.push(Item { ts, ev: Event::Transaction(t), account: s, flags: Flags::default() });
            }
        } else if self.chance(0.02) {
            let usd = self.between(20.0, 200.0);
            let ts = at(self.time_of_day(10, 20));
            let mut t = self.txn(u, 0, TransactionKind::Deposit, usd, Category::Savings, Channel::BankTransfer);
            t.goal_id = self.tag_goal(u, 0.8);
            let late_ok = t.goal_id.is_none();
            items.push(Item {
                ts,
                ev: Event::Transaction(t),
                account: 0,
                flags: Flags { late_ok, ..Flags::default() },
            });
        }
        if !robust && self.chance(0.005) {
            // Spending goal money (negative for a tag-fed goal).
            if let Some(g) = self.tag_goal(u, 1.0) {
                let usd = self.between(20.0, 150.0);
                let ts = at(self.time_of_day(10, 20));
                let mut t = self.txn(u, 0, TransactionKind::Withdrawal, usd, Category::Travel, Channel::Atm);
                t.goal_id = Some(g);
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
            }
        }

        // Budget and goal changes.
        let changes = self.cfg.settings_changes;
        for k in (0..self.users[u].budgets.len()).filter(|_| changes) {
            if !self.users[u].budgets[k].alive {
                continue;
            }
            if self.chance(0.004) {
                let ts = self.admin_time(u, date);
                self.users[u].budgets[k].alive = false;
                let item = self.budget_item(u, &self.users[u].budgets[k], BudgetAction::Delete, ts);
                items.push(item);
            } else if self.chance(1.0 / 30.0) {
                let factor = self.between(0.7, 1.4);
                let p = &self.users[u].budgets[k];
                let cur = p.currency;
                let new_limit = self.round_money(self.usd(p.limit, cur) * factor, cur);
                self.users[u].budgets[k].limit = new_limit;
                let ts = self.admin_time(u, date);
                let item = self.budget_item(u, &self.users[u].budgets[k], BudgetAction::Set, ts);
                items.push(item);
            }
        }
        for k in (0..self.users[u].goals.len()).filter(|_| changes) {
            if !self.users[u].goals[k].alive {
                continue;
            }
            if self.chance(0.003) {
                let ts = self.admin_time(u, date);
                self.users[u].goals[k].alive = false;
                let item = self.goal_item(u, &self.users[u].goals[k], GoalEventType::GoalDeleted, ts);
                items.push(item);
            } else if self.chance(1.0 / 40.0) {
                let factor = self.between(0.7, 1.3);
                let cur = self.users[u].goals[k].currency;
                let t = self.round_money(self.usd(self.users[u].goals[k].target, cur) * factor, cur);
                self.users[u].goals[k].target = t;
                let ts = self.admin_time(u, date);
                let item = self.goal_item(u, &self.users[u].goals[k], GoalEventType::GoalUpdated, ts);
                items.push(item);
            }
        }
        // A user who kept the default UTC zone fixes the profile.
        if self.cfg.profile_updates && self.users[u].profile_tz == "UTC" && self.chance(0.05) {
            let user = &mut self.users[u];
            user.profile_tz = user.home.tz.to_string();
            let profile = UserProfile {
                user_id: user.id.clone(),
                base_currency: user.base.to_string(),
                timezone: user.profile_tz.clone(),
                home_country: user.home.country.to_string(),
                updated_at: TimestampMillis(0),
            };
            let ts = at(self.time_of_day(7, 23));
            items.push(Item { ts, ev: Event::Profile(profile), account: 0, flags: Flags::default() });
        }
        // Every generated account opens on the set-up day, unlike a bank's accounts, which mostly
        // have years of history when fraud strikes: scenarios start after a warm-up of
        // FRAUD_WARM_UP_DAYS days of normal life.
        if self.cfg.fraud && !self.users[u].fraud_done && b >= FRAUD_WARM_UP_DAYS && self.chance(0.004) {
            self.users[u].fraud_done = true;
            self.fraud(u, date, &mut items);
        }
        items
    }

    /// The id of a live tag-fed goal of the user, with probability `p`.
    pub(super) fn tag_goal(&mut self, u: usize, p: f64) -> Option<String> {
        let ids: Vec<String> =
            self.users[u].goals.iter().filter(|g| g.alive && g.account.is_none()).map(|g| g.id.clone()).collect();
        if ids.is_empty() || !self.chance(p) {
            return None;
        }
        Some(ids[self.rng.random_range(0..ids.len())].clone())
    }
}
