//! `[import]` in `finstream.toml`: how the columns of a bank's export become the contract's
//! `TransactionEvent`. The defaults read a typical statement export
//! (`Date,Description,Amount,Currency,Reference,Account,Category`, signed amounts).

use serde::{Deserialize, Serialize};

/// File format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// By extension: `.jsonl`, `.ndjson` and `.json` are JSON Lines, anything else CSV.
    #[default]
    Auto,
    Csv,
    JsonLines,
}

/// Column (CSV header, or JSON key) of each contract field; an empty name means the file has no
/// such column and [`ImportDefaults`] (or a derivation) supplies the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportColumns {
    /// Empty: derived from the account, the line number and the line's content, so importing the
    /// same file twice gives the same ids (and finstream's deduplication drops the second copy).
    pub transaction_id: String,
    pub account_id: String,
    pub user_id: String,
    /// When the transaction happened: RFC 3339, `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD`, epoch
    /// milliseconds, or [`ImportMapping::date_format`].
    pub occurred_at: String,
    /// A signed amount (negative: money out), unless `kind` is mapped, then a positive magnitude.
    pub amount: String,
    /// Statements with separate debit and credit columns: money out here (positive or negative).
    pub debit: String,
    /// … and money in here.
    pub credit: String,
    pub currency: String,
    /// The contract's kind symbol (`DEPOSIT`, `PAYMENT`, …, case-insensitive).
    pub kind: String,
    pub status: String,
    /// The contract's category symbol (`groceries`, `dining`, …, case-insensitive).
    pub category: String,
    pub channel: String,
    /// Payee or payer as the bank prints it; becomes the merchant's name.
    pub description: String,
    /// ISO 18245 merchant category code.
    pub mcc: String,
    pub counterparty_account_id: String,
    pub goal_id: String,
}

fn col(s: &str) -> String {
    s.to_string()
}

impl Default for ImportColumns {
    fn default() -> Self {
        ImportColumns {
            transaction_id: col("Reference"),
            account_id: col("Account"),
            user_id: String::new(),
            occurred_at: col("Date"),
            amount: col("Amount"),
            debit: String::new(),
            credit: String::new(),
            currency: col("Currency"),
            kind: String::new(),
            status: String::new(),
            category: col("Category"),
            channel: String::new(),
            description: col("Description"),
            mcc: String::new(),
            counterparty_account_id: String::new(),
            goal_id: String::new(),
        }
    }
}

/// Values for fields a line lacks (no column, or an empty cell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportDefaults {
    /// A statement is usually one account's: its id when there is no account column.
    pub account_id: String,
    /// The owner of the account(s); statements rarely name them.
    pub user_id: String,
    pub currency: String,
    pub status: String,
    pub category: String,
    pub channel: String,
    /// Kind of money out when amounts are signed (default `PAYMENT`).
    pub debit_kind: String,
    /// Kind of money in when amounts are signed (default `DEPOSIT`).
    pub credit_kind: String,
}

fn default_status() -> String {
    "COMPLETED".into()
}
fn default_category() -> String {
    "other".into()
}
fn default_channel() -> String {
    "BANK_TRANSFER".into()
}
fn default_debit_kind() -> String {
    "PAYMENT".into()
}
fn default_credit_kind() -> String {
    "DEPOSIT".into()
}

impl Default for ImportDefaults {
    fn default() -> Self {
        ImportDefaults {
            account_id: String::new(),
            user_id: String::new(),
            currency: String::new(),
            status: default_status(),
            category: default_category(),
            channel: default_channel(),
            debit_kind: default_debit_kind(),
            credit_kind: default_credit_kind(),
        }
    }
}

/// `[import]`: the file format, the column mapping and the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportMapping {
    pub format: FileFormat,
    /// CSV field delimiter (default `,`; many European banks export `;`).
    pub delimiter: char,
    /// CSV decimal separator (default `.`; `,` for `1.234,56`-style amounts, where `.` then
    /// groups thousands).
    pub decimal_comma: bool,
    /// A chrono `strftime` format for `occurred_at` when the bank uses its own (e.g. `%d/%m/%Y`);
    /// empty: the formats listed at [`ImportColumns::occurred_at`].
    pub date_format: String,
    /// IANA timezone of dates and times without an offset (default `UTC`).
    pub timezone: String,
    /// Prefix of derived transaction ids (default `import-`).
    pub id_prefix: String,
    pub columns: ImportColumns,
    pub defaults: ImportDefaults,
}

const fn default_delimiter() -> char {
    ','
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_id_prefix() -> String {
    "import-".into()
}

impl Default for ImportMapping {
    fn default() -> Self {
        ImportMapping {
            format: FileFormat::Auto,
            delimiter: default_delimiter(),
            decimal_comma: false,
            date_format: String::new(),
            timezone: default_timezone(),
            id_prefix: default_id_prefix(),
            columns: ImportColumns::default(),
            defaults: ImportDefaults::default(),
        }
    }
}
