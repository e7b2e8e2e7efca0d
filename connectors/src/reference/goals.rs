//! Goals in the reference model: contributions of tagged transactions and of the goal's account,
//! milestones, ACHIEVED and DELETED.

use super::*;

impl Model {
    /// The signed contribution of `t` to `goal`, or `None` when it does not count.
    pub(super) fn contribution(goal: &GoalState, t: &TransactionEvent) -> Option<Decimal> {
        use TransactionKind as K;
        if let Some(acc) = goal.account_id.as_deref() {
            let from = t.account_id == acc;
            let to = t.counterparty_account_id.as_deref() == Some(acc);
            if from || to {
                return match t.kind {
                    K::Deposit | K::Interest | K::Refund if from => Some(t.amount),
                    K::Withdrawal | K::Payment | K::Fee if from => Some(-t.amount),
                    K::Transfer if from && to => Some(Decimal::ZERO),
                    K::Transfer if to => Some(t.amount),
                    K::Transfer => Some(-t.amount),
                    _ => None,
                };
            }
        }
        if t.goal_id.as_deref() == Some(goal.goal_id.as_str()) {
            return match t.kind {
                K::Deposit | K::Interest | K::Refund | K::Transfer => Some(t.amount),
                K::Withdrawal | K::Payment | K::Fee => Some(-t.amount),
                K::Unknown => None,
            };
        }
        None
    }

    pub(super) fn goal_transaction(&mut self, t: &TransactionEvent) {
        if t.status != TransactionStatus::Completed {
            return;
        }
        let key = format!("{}|{}", t.user_id, t.transaction_id);
        if self.goal_dedupe.seen(Lane::TransactionsByUser, &t.user_id, &key) {
            self.out.duplicates.goals += 1;
            return;
        }
        if self.count_toward_goals(&t.user_id, t, Self::contribution) {
            self.goal_dedupe.remember(Lane::TransactionsByUser, &t.user_id, &key, t.occurred_at.0);
        }
    }

    /// A COMPLETED TRANSFER into an account of `owner` made by another user (the owner's own
    /// transfers count from their own copy): it counts toward the owner's goals linked to that
    /// account.
    pub(super) fn goal_transfer_in(&mut self, owner: &str, t: &TransactionEvent) {
        if t.user_id == owner {
            return;
        }
        let key = format!("{owner}|{}|in", t.transaction_id);
        if self.goal_dedupe.seen(Lane::TransfersInByUser, owner, &key) {
            self.out.duplicates.goals += 1;
            return;
        }
        let into = |g: &GoalState, t: &TransactionEvent| {
            let linked = g.account_id.is_some() && g.account_id == t.counterparty_account_id;
            linked.then_some(t.amount)
        };
        if self.count_toward_goals(owner, t, into) {
            self.goal_dedupe.remember(Lane::TransfersInByUser, owner, &key, t.occurred_at.0);
        }
    }

    /// Adds what `t` contributes to each live goal of `user` created at or before it (each
    /// transaction once per goal). False when a needed rate is missing (dead letter, nothing
    /// applied).
    fn count_toward_goals(
        &mut self,
        user: &str,
        t: &TransactionEvent,
        contribution: impl Fn(&GoalState, &TransactionEvent) -> Option<Decimal>,
    ) -> bool {
        let mut changes = Vec::new();
        for ((u, id), g) in &self.live_goals {
            if u != user || t.occurred_at < g.state.created_at || g.counted.contains(&t.transaction_id) {
                continue;
            }
            if let Some(signed) = contribution(&g.state, t) {
                match convert(signed.abs(), &t.currency, &g.state.currency, &self.rates) {
                    Some(a) => changes.push((id.clone(), if signed.is_sign_negative() { -a } else { a })),
                    None => {
                        self.dead_letter("goals", &t.transaction_id, "missing_exchange_rate");
                        return false;
                    }
                }
            }
        }
        for (id, delta) in changes {
            let k = (user.to_string(), id);
            let Some(mut g) = self.live_goals.remove(&k) else { continue };
            g.counted.insert(t.transaction_id.clone());
            if !delta.is_zero() {
                g.state.saved += delta;
                self.goal_progress(&mut g.state, t.occurred_at);
            }
            self.live_goals.insert(k, g);
        }
        true
    }

    pub(super) fn goal_event(&mut self, e: &GoalEvent) {
        let key = (e.user_id.clone(), e.goal_id.clone());
        match e.event_type {
            GoalEventType::GoalCreated => {
                let mut state = GoalState {
                    goal_id: e.goal_id.clone(),
                    user_id: e.user_id.clone(),
                    name: e.name.clone(),
                    target: e.target_amount,
                    currency: e.currency.clone(),
                    account_id: e.account_id.clone(),
                    created_at: e.occurred_at,
                    saved: Decimal::ZERO,
                    percent: Decimal::ZERO,
                    status: GoalStatus::InProgress,
                    milestones: BTreeSet::new(),
                    updated_at: e.occurred_at,
                };
                self.goal_progress(&mut state, e.occurred_at);
                self.live_goals.insert(key, LiveGoal { state, counted: BTreeSet::new() });
            }
            GoalEventType::GoalUpdated => {
                // An update of a goal never created (or already deleted) has nothing to update.
                let Some(mut g) = self.live_goals.remove(&key) else { return };
                if g.state.currency != e.currency {
                    self.dead_letter("goals", &e.goal_id, "invalid_goal_update");
                } else {
                    g.state.name = e.name.clone();
                    g.state.target = e.target_amount;
                    g.state.account_id = e.account_id.clone();
                    self.goal_progress(&mut g.state, e.occurred_at);
                }
                self.live_goals.insert(key, g);
            }
            GoalEventType::GoalDeleted => {
                if let Some(mut g) = self.live_goals.remove(&key) {
                    g.state.status = GoalStatus::Deleted;
                    g.state.updated_at = e.occurred_at;
                    self.out.goals.insert(e.goal_id.clone(), g.state);
                }
            }
            GoalEventType::Unknown => {}
        }
    }

    /// Recomputes percent, milestones and status after a change, and records the state.
    pub(super) fn goal_progress(&mut self, g: &mut GoalState, at: TimestampMillis) {
        g.percent = goal_percent(g.saved, g.target);
        for m in [25, 50, 75, 100] {
            if g.percent >= Decimal::from(m) && g.milestones.insert(m) {
                self.out.notifications.insert(format!("goal:{}:{m}", g.goal_id));
            }
        }
        if g.percent >= Decimal::ONE_HUNDRED {
            g.status = GoalStatus::Achieved;
        }
        g.updated_at = at;
        self.out.goals.insert(g.goal_id.clone(), g.clone());
    }
}

/// `min(100, saved / target × 100)` rounded half-even to 2 places; 0 when saved < 0.
pub fn goal_percent(saved: Decimal, target: Decimal) -> Decimal {
    if saved.is_sign_negative() || target <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    (saved * Decimal::ONE_HUNDRED / target)
        .min(Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}
