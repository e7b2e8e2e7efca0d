//! The contract's Avro enums. Every one has a `default` symbol in its `.avsc` so that readers built
//! today survive symbols added tomorrow: an unknown symbol reads as `Unknown` (or `Other` for
//! categories) instead of failing the record.

crate::avro_enum!(
    /// Gives the sign of a transaction's amount.
    TransactionKind default Unknown {
        Deposit = "DEPOSIT", Withdrawal = "WITHDRAWAL", Payment = "PAYMENT", Transfer = "TRANSFER",
        Refund = "REFUND", Fee = "FEE", Interest = "INTEREST", Unknown = "UNKNOWN",
    }
);

crate::avro_enum!(
    /// Only `Completed` moves money.
    TransactionStatus default Unknown {
        Completed = "COMPLETED", Pending = "PENDING", Failed = "FAILED", Unknown = "UNKNOWN",
    }
);

crate::avro_enum!(
    /// Spending category; symbols are lowercase as the issue lists them.
    Category default Other {
        Groceries = "groceries", Dining = "dining", Rent = "rent", Transport = "transport",
        Utilities = "utilities", Entertainment = "entertainment", Shopping = "shopping", Health = "health",
        Travel = "travel", Income = "income", Savings = "savings", Other = "other",
    }
);

crate::avro_enum!(
    /// How a transaction was made.
    Channel default Unknown {
        Card = "CARD", Online = "ONLINE", Atm = "ATM", BankTransfer = "BANK_TRANSFER", Mobile = "MOBILE",
        Unknown = "UNKNOWN",
    }
);

crate::avro_enum!(
    /// Budget period.
    BudgetPeriod default Unknown { Monthly = "MONTHLY", Weekly = "WEEKLY", Unknown = "UNKNOWN" }
);

crate::avro_enum!(
    /// SET creates or replaces a budget; DELETE removes it.
    BudgetAction default Unknown { Set = "SET", Delete = "DELETE", Unknown = "UNKNOWN" }
);

crate::avro_enum!(
    /// What happened to a goal.
    GoalEventType default Unknown {
        GoalCreated = "GOAL_CREATED", GoalUpdated = "GOAL_UPDATED", GoalDeleted = "GOAL_DELETED",
        Unknown = "UNKNOWN",
    }
);

crate::avro_enum!(
    /// WARNING at 80 %, EXCEEDED at 100 %.
    AlertLevel default Unknown { Warning = "WARNING", Exceeded = "EXCEEDED", Unknown = "UNKNOWN" }
);

crate::avro_enum!(
    /// State of a goal.
    GoalStatus default Unknown {
        InProgress = "IN_PROGRESS", Achieved = "ACHIEVED", Deleted = "DELETED", Unknown = "UNKNOWN",
    }
);

crate::avro_enum!(
    /// What a fraud score means for the transaction.
    FraudDecision default Unknown { Approve = "APPROVE", Review = "REVIEW", Decline = "DECLINE", Unknown = "UNKNOWN" }
);

crate::avro_enum!(
    /// What a notification is about.
    NotificationKind default Unknown {
        BudgetWarning = "BUDGET_WARNING", BudgetExceeded = "BUDGET_EXCEEDED", GoalMilestone = "GOAL_MILESTONE",
        GoalAchieved = "GOAL_ACHIEVED", FraudAlert = "FRAUD_ALERT", LowBalance = "LOW_BALANCE",
        Unknown = "UNKNOWN",
    }
);

crate::avro_enum!(
    /// What happened to an account.
    AccountEventType default Unknown { AccountOpened = "ACCOUNT_OPENED", AccountClosed = "ACCOUNT_CLOSED", Unknown = "UNKNOWN" }
);

crate::avro_enum!(
    /// Kind of account; informational (no money rule depends on it).
    AccountType default Unknown {
        Checking = "CHECKING", Savings = "SAVINGS", CreditCard = "CREDIT_CARD", Unknown = "UNKNOWN",
    }
);

/// `(Avro enum name, its symbols)` for every Rust enum, so tests can compare them with the `.avsc`.
pub const ENUM_SYMBOLS: &[(&str, &[&str])] = &[
    ("TransactionKind", TransactionKind::SYMBOLS),
    ("TransactionStatus", TransactionStatus::SYMBOLS),
    ("Category", Category::SYMBOLS),
    ("Channel", Channel::SYMBOLS),
    ("BudgetPeriod", BudgetPeriod::SYMBOLS),
    ("BudgetAction", BudgetAction::SYMBOLS),
    ("GoalEventType", GoalEventType::SYMBOLS),
    ("AlertLevel", AlertLevel::SYMBOLS),
    ("GoalStatus", GoalStatus::SYMBOLS),
    ("FraudDecision", FraudDecision::SYMBOLS),
    ("NotificationKind", NotificationKind::SYMBOLS),
    ("AccountEventType", AccountEventType::SYMBOLS),
    ("AccountType", AccountType::SYMBOLS),
];
