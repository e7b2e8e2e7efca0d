//! Budgets in the reference model: spending per (user, category, period) in the budget's
//! currency, thresholds evaluated on each transaction and each budget change.

use super::*;

impl Model {
    pub(super) fn budget_transaction(&mut self, t: &TransactionEvent) {
        if t.status != TransactionStatus::Completed {
            return;
        }
        let key = format!("{}|{}", t.user_id, t.transaction_id);
        if self.budget_dedupe.seen(Lane::TransactionsByUser, &t.user_id, &key) {
            self.out.duplicates.budgets += 1;
            return;
        }
        let sign = match t.kind {
            TransactionKind::Payment | TransactionKind::Withdrawal | TransactionKind::Fee => Decimal::ONE,
            TransactionKind::Refund => -Decimal::ONE,
            // Other kinds (TRANSFER included) are not spending.
            _ => {
                self.budget_dedupe.remember(Lane::TransactionsByUser, &t.user_id, &key, t.occurred_at.0);
                return;
            }
        };
        let tz = self.tz(&t.user_id);
        let date = local_date(tz, t.occurred_at);
        // The live budgets of this category that cover the transaction's period.
        let matching: Vec<(String, BudgetDef)> = self
            .budget_defs
            .iter()
            .filter(|((u, _), d)| {
                u == &t.user_id
                    && d.category == t.category
                    && period_dates(d.period, date).0 >= period_dates(d.period, d.set_date).0
            })
            .map(|((_, id), d)| (id.clone(), d.clone()))
            .collect();
        // A rate this record needs is missing: dead letter, nothing of it applied.
        if matching.iter().any(|(_, d)| convert(t.amount, &t.currency, &d.currency, &self.rates).is_none()) {
            self.dead_letter("budgets", &t.transaction_id, "missing_exchange_rate");
            return;
        }
        *self.spending.entry((t.user_id.clone(), t.category.to_string(), date, t.currency.clone())).or_default() +=
            sign * t.amount;
        self.budget_dedupe.remember(Lane::TransactionsByUser, &t.user_id, &key, t.occurred_at.0);
        for (id, def) in matching {
            self.evaluate_budget(&t.user_id, &id, &def, date, &t.transaction_id);
        }
    }

    pub(super) fn budget_event(&mut self, b: &BudgetEvent) {
        let key = (b.user_id.clone(), b.budget_id.clone());
        match b.action {
            BudgetAction::Set => {
                let tz = self.tz(&b.user_id);
                let date = local_date(tz, b.updated_at);
                let def = BudgetDef {
                    category: b.category,
                    limit: b.limit,
                    currency: b.currency.clone(),
                    period: b.period,
                    set_date: date,
                };
                self.budget_defs.insert(key, def.clone());
                self.evaluate_budget(&b.user_id, &b.budget_id, &def, date, "");
            }
            BudgetAction::Delete => {
                self.budget_defs.remove(&key);
                for ((id, _), st) in self.out.budgets.iter_mut() {
                    if id == &b.budget_id && st.user_id == b.user_id {
                        st.deleted = true;
                    }
                }
            }
            BudgetAction::Unknown => {}
        }
    }

    /// Recomputes `spent` of budget `id` for the period containing local date `date` and raises the
    /// 80/100 alerts not raised before. `spent` = Σ over currencies of the period's per-currency
    /// sum converted to the budget currency (money-rules.md "Budgets").
    pub(super) fn evaluate_budget(&mut self, user: &str, id: &str, def: &BudgetDef, date: NaiveDate, _trigger: &str) {
        let tz = self.tz(user);
        let (start, end) = period_dates(def.period, date);
        let mut spent = Decimal::ZERO;
        let cat = def.category.to_string();
        let from = (user.to_string(), cat.clone(), start, String::new());
        let to = (user.to_string(), cat, end, String::new());
        let mut per_currency: BTreeMap<&str, Decimal> = BTreeMap::new();
        for ((_, _, _, cur), sum) in self.spending.range(from..to) {
            *per_currency.entry(cur.as_str()).or_default() += *sum;
        }
        for (cur, sum) in per_currency {
            // Checked before the spending was recorded; a SET with a rate missing skips it.
            spent += convert(sum, cur, &def.currency, &self.rates).unwrap_or_default();
        }
        let period_start = local_midnight(tz, start);
        let entry = self.out.budgets.entry((id.to_string(), period_start.0)).or_insert_with(|| BudgetPeriodState {
            budget_id: id.to_string(),
            user_id: user.to_string(),
            category: def.category,
            period: def.period,
            period_start,
            period_end: local_midnight(tz, end),
            period_start_date: start,
            limit: def.limit,
            currency: def.currency.clone(),
            spent,
            alerts: BTreeSet::new(),
            deleted: false,
        });
        entry.category = def.category;
        entry.limit = def.limit;
        entry.currency = def.currency.clone();
        entry.spent = spent;
        entry.deleted = false;
        if spent > Decimal::ZERO {
            for (pct, reached) in [(80, spent >= def.limit * Decimal::new(8, 1)), (100, spent >= def.limit)] {
                let alert_id = format!("{id}:{}:{pct}", start.format("%Y-%m-%d"));
                // Each (budget, period, threshold) alerts once ever, whatever period entry holds it.
                if reached && !self.out.notifications.contains(&format!("budget:{alert_id}")) {
                    entry.alerts.insert(alert_id.clone());
                    self.out.notifications.insert(format!("budget:{alert_id}"));
                }
            }
        }
    }
}
