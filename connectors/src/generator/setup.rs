//! Set-up: the users with their homes, profiles, accounts, budgets and goals, and the
//! day-zero events (rates, profiles, opening deposits, budgets, goals); transaction builders.

use super::*;

impl Generator {
    pub(super) fn make_users(&mut self) {
        let total: u32 = HOMES.iter().map(|(_, w)| w).sum();
        for idx in 0..self.cfg.users {
            let mut pick = self.rng.random_range(0..total);
            let mut home = &HOMES[0].0;
            for (p, w) in HOMES {
                if pick < *w {
                    home = p;
                    break;
                }
                pick -= w;
            }
            let home_tz: Tz = home.tz.parse().expect("known zone");
            let profile_tz = if self.chance(0.06) { "UTC".to_string() } else { home.tz.to_string() };
            let id = self.id(format!("u{idx:05}"));
            let n_accounts = match self.rng.random_range(0..10) {
                0..=2 => 1,
                3..=7 => 2,
                _ => 3,
            };
            let mut accounts = Vec::new();
            for a in 0..n_accounts {
                let (kind, currency) = match a {
                    0 => (AccountKind::Checking, home.currency),
                    1 => (AccountKind::Savings, home.currency),
                    _ if self.chance(0.5) => (AccountKind::Savings, home.currency),
                    _ => (AccountKind::Foreign, if home.currency == "USD" { "EUR" } else { "USD" }),
                };
                let acc_id = self.id(format!("a{idx:05}-{}", a + 1));
                self.account_index.insert(acc_id.clone(), (idx, a));
                accounts.push(Account {
                    id: acc_id,
                    currency,
                    kind,
                    safe_usd: 0.0,
                    maturing: Vec::new(),
                    goal_linked: false,
                });
            }
            let salary_usd = self.between(2500.0, 9000.0);
            let day0 = local_date(home_tz, self.cfg.start_ms);
            let user = User {
                idx,
                id,
                home_tz,
                home,
                profile_tz,
                base: home.currency,
                accounts,
                day0,
                salary_usd,
                salary_day: self.rng.random_range(1..=28),
                rent_usd: salary_usd * self.between(0.22, 0.35),
                rent_day: self.rng.random_range(1..=5),
                grocery_weekday: self.rng.random_range(0..7),
                has_fee_plan: self.chance(0.5),
                budgets: Vec::new(),
                goals: Vec::new(),
                scheduled: Vec::new(),
                trip: None,
                fraud_done: false,
                last_ts: i64::MIN,
            };
            self.users.push(user);
        }
    }

    /// Batch 0: rates, profiles, then per user the accounts' records, opening deposits, budgets
    /// and goals.
    pub(super) fn setup(&mut self) {
        let start = self.cfg.start_ms;
        let rates: Vec<(&'static str, Decimal)> = self.rates.iter().map(|(c, r)| (*c, *r)).collect();
        for (i, (cur, r)) in rates.into_iter().enumerate() {
            let ev = Event::Rate(ExchangeRate {
                currency: cur.to_string(),
                usd_rate: r,
                as_of: TimestampMillis(start + i as i64),
            });
            self.deliver(start + i as i64, ev);
        }
        for u in 0..self.users.len() {
            let mut items = Vec::new();
            let user = &self.users[u];
            let profile = UserProfile {
                user_id: user.id.clone(),
                base_currency: user.base.to_string(),
                timezone: user.profile_tz.clone(),
                home_country: user.home.country.to_string(),
                updated_at: TimestampMillis(0),
            };
            items.push(Item { ts: start + MINUTE, ev: Event::Profile(profile), account: 0, flags: Flags::default() });
            // Every account's record (owner, currency) before anything happens on it.
            for (a, acc) in self.users[u].accounts.iter().enumerate() {
                let (account_type, name) = match acc.kind {
                    AccountKind::Checking => (AccountType::Checking, "Checking".to_string()),
                    AccountKind::Savings => (AccountType::Savings, "Savings".to_string()),
                    AccountKind::Foreign => (AccountType::Checking, format!("{} account", acc.currency)),
                };
                let ev = Event::Account(AccountEvent {
                    event_id: format!("{}-opened", acc.id),
                    event_type: AccountEventType::AccountOpened,
                    account_id: acc.id.clone(),
                    user_id: self.users[u].id.clone(),
                    account_type,
                    currency: acc.currency.to_string(),
                    display_name: Some(name),
                    occurred_at: TimestampMillis(0),
                });
                let ts = start + 2 * MINUTE + a as i64 * SECOND;
                items.push(Item { ts, ev, account: a, flags: Flags::default() });
            }
            // Opening deposits: about three months of salary on checking, some savings elsewhere.
            for a in 0..self.users[u].accounts.len() {
                let usd = match self.users[u].accounts[a].kind {
                    AccountKind::Checking => self.users[u].salary_usd * self.between(1.5, 3.0),
                    _ => self.users[u].salary_usd * self.between(0.2, 1.0),
                };
                let ts = start + HOUR + self.rng.random_range(0..2 * HOUR);
                let t = self.txn(u, a, TransactionKind::Deposit, usd, Category::Income, Channel::BankTransfer);
                items.push(Item { ts, ev: Event::Transaction(t), account: a, flags: Flags::default() });
            }
            // Budgets on two to four categories.
            let n = self.rng.random_range(2..=4);
            for k in 0..n {
                let (category, mut period) = BUDGETED[(u + k) % BUDGETED.len()];
                if self.chance(0.2) {
                    period = if period == BudgetPeriod::Weekly { BudgetPeriod::Monthly } else { BudgetPeriod::Weekly };
                }
                let monthly_usd = expected_monthly_usd(category);
                let per_period = if period == BudgetPeriod::Weekly { monthly_usd * 7.0 / 30.0 } else { monthly_usd };
                let base = self.users[u].base;
                let currency = if base != "USD" && self.chance(0.1) { "USD" } else { base };
                let factor = self.between(0.9, 2.2);
                let limit = self.round_money(per_period * factor, currency);
                let id = self.id(format!("b{u:05}-{}", k + 1));
                let plan = BudgetPlan { id, category, period, currency, limit, alive: true };
                let ts = start + 3 * HOUR + self.rng.random_range(0..2 * HOUR);
                items.push(self.budget_item(u, &plan, BudgetAction::Set, ts));
                self.users[u].budgets.push(plan);
            }
            // Goals: one linked to a savings account, and/or one fed by tags.
            let savings = self.users[u].accounts.iter().position(|a| a.kind == AccountKind::Savings);
            let monthly_saving = self.users[u].salary_usd * 0.15;
            let months = f64::from(self.cfg.days) / 30.0;
            if let Some(s) = savings.filter(|_| self.chance(0.5)) {
                let acc = self.users[u].accounts[s].id.clone();
                self.users[u].accounts[s].goal_linked = true;
                let target_usd = monthly_saving * months * self.between(0.8, 2.5);
                items.push(self.new_goal(u, "Emergency fund", Some(acc), target_usd, start + 5 * HOUR));
            }
            if self.chance(0.5) {
                let target_usd = monthly_saving * months * self.between(0.3, 1.2);
                items.push(self.new_goal(u, "Vacation", None, target_usd, start + 5 * HOUR + 30 * MINUTE));
            }
            self.schedule_items(u, items);
        }
    }

    pub(super) fn new_goal(&mut self, u: usize, name: &str, account: Option<String>, target_usd: f64, ts: i64) -> Item {
        let base = self.users[u].base;
        let currency = if base != "USD" && self.chance(0.1) { "USD" } else { base };
        let n = self.users[u].goals.len() + 1;
        let id = self.id(format!("g{u:05}-{n}"));
        let target = self.round_money(target_usd.max(50.0), currency);
        let end = self.users[u].day0 + Days::new(u64::from(self.cfg.days) + 60);
        let target_date = Some(DateDays((end - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32));
        let plan = GoalPlan { id, name: name.to_string(), currency, target, target_date, account, alive: true };
        let item = self.goal_item(u, &plan, GoalEventType::GoalCreated, ts);
        self.users[u].goals.push(plan);
        item
    }

    pub(super) fn budget_item(&self, u: usize, p: &BudgetPlan, action: BudgetAction, ts: i64) -> Item {
        let ev = Event::Budget(BudgetEvent {
            budget_id: p.id.clone(),
            user_id: self.users[u].id.clone(),
            category: p.category,
            limit: p.limit,
            currency: p.currency.to_string(),
            period: p.period,
            action,
            updated_at: TimestampMillis(0),
        });
        Item { ts, ev, account: 0, flags: Flags::default() }
    }

    pub(super) fn goal_item(&self, u: usize, p: &GoalPlan, event_type: GoalEventType, ts: i64) -> Item {
        let ev = Event::Goal(GoalEvent {
            event_type,
            goal_id: p.id.clone(),
            user_id: self.users[u].id.clone(),
            name: p.name.clone(),
            target_amount: p.target,
            currency: p.currency.to_string(),
            target_date: p.target_date,
            account_id: p.account.clone(),
            occurred_at: TimestampMillis(0),
        });
        Item { ts, ev, account: 0, flags: Flags::default() }
    }

    /// A COMPLETED transaction of about `usd` in the account's currency (timestamp set later).
    pub(super) fn txn(
        &mut self,
        u: usize,
        a: usize,
        kind: TransactionKind,
        usd: f64,
        category: Category,
        channel: Channel,
    ) -> TransactionEvent {
        let currency = self.users[u].accounts[a].currency;
        let amount = self.money(usd, currency);
        self.txn_in(u, a, kind, amount, currency, category, channel)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn txn_in(
        &mut self,
        u: usize,
        a: usize,
        kind: TransactionKind,
        amount: Decimal,
        currency: &str,
        category: Category,
        channel: Channel,
    ) -> TransactionEvent {
        self.txn_counter += 1;
        let user = &self.users[u];
        let (merchant, location) = if matches!(channel, Channel::Card | Channel::Online)
            && matches!(kind, TransactionKind::Payment | TransactionKind::Refund)
        {
            let (names, mcc) = merchants(category);
            let i = self.rng.random_range(0..names.len());
            let place = user.trip.map(|(_, p)| p).unwrap_or(user.home);
            let m = Merchant {
                merchant_id: format!("m-{}-{}", category.as_str_lower(), i + 1),
                name: names[i].to_string(),
                mcc: mcc.to_string(),
            };
            let loc = (channel == Channel::Card).then(|| Location {
                country: place.country.to_string(),
                city: place.city.to_string(),
                lat: place.lat,
                lon: place.lon,
            });
            (Some(m), loc)
        } else {
            (None, None)
        };
        TransactionEvent {
            transaction_id: format!("{}t{:08}", self.cfg.id_prefix, self.txn_counter),
            account_id: user.accounts[a].id.clone(),
            user_id: user.id.clone(),
            kind,
            amount,
            currency: currency.to_string(),
            status: TransactionStatus::Completed,
            category,
            counterparty_account_id: None,
            merchant,
            goal_id: None,
            channel,
            location,
            occurred_at: TimestampMillis(0),
        }
    }
}
