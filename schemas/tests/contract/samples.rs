//! One realistic value of every contract record.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use schemas::registry::EmbeddedRegistry;
use schemas::*;

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn registry() -> Arc<EmbeddedRegistry> {
    Arc::new(EmbeddedRegistry::in_memory())
}

pub const T0: TimestampMillis = TimestampMillis(1_735_689_600_123);

pub fn transaction() -> TransactionEvent {
    TransactionEvent {
        transaction_id: "tx-1".into(),
        account_id: "acc-1".into(),
        user_id: "user-1".into(),
        kind: TransactionKind::Payment,
        amount: dec("42.50"),
        currency: "EUR".into(),
        status: TransactionStatus::Completed,
        category: Category::Groceries,
        counterparty_account_id: None,
        merchant: Some(Merchant { merchant_id: "m-9".into(), name: "Bäckerei Müller".into(), mcc: "0742".into() }),
        goal_id: None,
        channel: Channel::Card,
        location: Some(Location { country: "DE".into(), city: "Berlin".into(), lat: 52.52, lon: 13.405 }),
        occurred_at: T0,
    }
}

pub fn transfer() -> TransactionEvent {
    TransactionEvent {
        transaction_id: "tx-2".into(),
        kind: TransactionKind::Transfer,
        amount: dec("1000"),
        category: Category::Savings,
        counterparty_account_id: Some("acc-2".into()),
        merchant: None,
        goal_id: Some("goal-1".into()),
        channel: Channel::BankTransfer,
        location: None,
        ..transaction()
    }
}

pub fn account() -> AccountEvent {
    AccountEvent {
        event_id: "ae-1".into(),
        event_type: AccountEventType::AccountOpened,
        account_id: "acc-2".into(),
        user_id: "user-1".into(),
        account_type: AccountType::Savings,
        currency: "JPY".into(),
        display_name: Some("Rainy day".into()),
        occurred_at: T0,
    }
}

pub fn budget() -> BudgetEvent {
    BudgetEvent {
        budget_id: "b-1".into(),
        user_id: "user-1".into(),
        category: Category::Dining,
        limit: dec("300.00"),
        currency: "USD".into(),
        period: BudgetPeriod::Monthly,
        action: BudgetAction::Set,
        updated_at: T0,
    }
}

pub fn goal() -> GoalEvent {
    GoalEvent {
        event_type: GoalEventType::GoalCreated,
        goal_id: "goal-1".into(),
        user_id: "user-1".into(),
        name: "Holiday".into(),
        target_amount: dec("250000"),
        currency: "JPY".into(),
        target_date: Some(DateDays(20_454)),
        account_id: Some("acc-2".into()),
        occurred_at: T0,
    }
}

pub fn profile() -> UserProfile {
    UserProfile {
        user_id: "user-1".into(),
        base_currency: "EUR".into(),
        timezone: "Europe/Berlin".into(),
        home_country: "DE".into(),
        updated_at: T0,
    }
}

pub fn rate() -> ExchangeRate {
    ExchangeRate { currency: "IDR".into(), usd_rate: dec("0.0000610123"), as_of: T0 }
}

pub fn balance() -> BalanceUpdated {
    BalanceUpdated {
        account_id: "acc-1".into(),
        user_id: "user-1".into(),
        balance: dec("-12.3400"),
        currency: "EUR".into(),
        last_transaction_id: "tx-1".into(),
        applied_count: 17,
        updated_at: T0,
    }
}

pub fn alert() -> BudgetAlert {
    BudgetAlert {
        alert_id: "b-1:2025-01:80".into(),
        user_id: "user-1".into(),
        budget_id: "b-1".into(),
        category: Category::Dining,
        period_start: TimestampMillis(1_735_689_600_000),
        period_end: TimestampMillis(1_738_368_000_000),
        spent: dec("240.01"),
        limit: dec("300"),
        currency: "USD".into(),
        threshold_percent: 80,
        level: AlertLevel::Warning,
        transaction_id: "tx-1".into(),
        occurred_at: T0,
    }
}

pub fn progress() -> GoalProgress {
    GoalProgress {
        goal_id: "goal-1".into(),
        user_id: "user-1".into(),
        saved: dec("125000"),
        target: dec("250000"),
        currency: "JPY".into(),
        percent: dec("50.0000"),
        status: GoalStatus::InProgress,
        milestone: Some(50),
        updated_at: T0,
    }
}

pub fn fraud() -> FraudScore {
    FraudScore {
        transaction_id: "tx-1".into(),
        account_id: "acc-1".into(),
        user_id: "user-1".into(),
        score: 87,
        decision: FraudDecision::Review,
        reasons: vec!["new_country".into(), "velocity".into()],
        model_version: "rules-1".into(),
        scored_at: T0,
    }
}

pub fn spending() -> SpendingAggregate {
    SpendingAggregate {
        user_id: "user-1".into(),
        category: Category::Groceries,
        window_start: TimestampMillis(1_735_689_600_000),
        window_end: TimestampMillis(1_735_776_000_000),
        total: dec("99.99"),
        count: 3,
        currency: "EUR".into(),
    }
}

pub fn notification() -> Notification {
    Notification {
        notification_id: "n-1".into(),
        user_id: "user-1".into(),
        kind: NotificationKind::BudgetWarning,
        title: "80 % of your dining budget".into(),
        message: "You have spent 240.01 USD of 300 USD.".into(),
        source_event_id: "b-1:2025-01:80".into(),
        created_at: T0,
    }
}
