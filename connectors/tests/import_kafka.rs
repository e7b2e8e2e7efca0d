//! `finstream import` end to end: fixture files with good and bad lines go through the mapping,
//! the contract's validation and the producer to Apache Kafka; what arrived on `transactions`
//! and what the report says are both checked line by line.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use connectors::import::{import, ImportMapping, ImportOptions, RejectedLine};
use connectors::{EventProducer, KafkaTarget};
use rust_decimal::Decimal;
use schemas::registry::{HttpRegistry, SchemaRegistry};
use schemas::{AvroSerde, Category, TransactionEvent, TransactionKind, TransactionStatus};
use streams::serde::Serde;
use testkit::{read_committed_at_least, registry, unique, Kafka};

const PARTITIONS: i32 = 2;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

struct Outcome {
    summary: connectors::import::ImportSummary,
    report: Vec<RejectedLine>,
    arrived: Vec<TransactionEvent>,
}

fn run_import(file: &str, mapping: ImportMapping, expected: usize) -> Outcome {
    let kafka = Kafka::shared();
    let topic = unique("transactions");
    kafka.create_topics(&[(&topic, PARTITIONS)]);
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("rejected.jsonl");
    let client: Arc<dyn SchemaRegistry> = Arc::new(HttpRegistry::new(&reg.url));
    let mut producer = EventProducer::new(&KafkaTarget::new(kafka.bootstrap().to_string()), client).unwrap();
    let opts = ImportOptions {
        path: fixture(file),
        report_path: report_path.clone(),
        topic: topic.clone(),
        mapping,
        progress: false,
    };
    let summary = import(&opts, &mut producer).unwrap();
    let report: Vec<RejectedLine> =
        std::fs::read_to_string(&report_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let serde = AvroSerde::<TransactionEvent>::new(reg.registry.clone());
    let mut records = read_committed_at_least(kafka.bootstrap(), &topic, expected, Duration::from_secs(60));
    records.sort_by_key(|r| (r.timestamp, r.partition, r.offset));
    let arrived = records
        .iter()
        .map(|r| {
            let t = serde.deserialize(&topic, &r.value).unwrap();
            assert_eq!(r.key_str(), t.account_id, "keyed by account");
            assert_eq!(r.timestamp, t.occurred_at.0, "record timestamp is the event time");
            t
        })
        .collect();
    Outcome { summary, report, arrived }
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Epoch millis of a UTC `YYYY-MM-DD[THH:MM:SS]`, computed by hand to stay independent of the
/// importer's own date parsing.
fn ms(s: &str) -> i64 {
    let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let t: Vec<i64> = time.trim_end_matches('Z').split(':').map(|x| x.parse().unwrap()).collect();
    let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let (y, m, day) = (d[0], d[1], d[2]);
    let leap_days = |y: i64| (y - 1969) / 4 - (y - 1901) / 100 + (y - 1601) / 400;
    let leap_this = (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) && m > 2;
    let days = (y - 1970) * 365 + leap_days(y) + days_before_month[(m - 1) as usize] + day - 1 + i64::from(leap_this);
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000
}

#[test]
fn bank_statement_csv_with_the_default_mapping() {
    let mut mapping = ImportMapping::default();
    mapping.defaults.user_id = "user-1".into();
    let out = run_import("statement.csv", mapping, 8);

    let rejected: Vec<(u64, &str)> = out.report.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(
        rejected,
        vec![
            (5, "unknown_currency"),
            (6, "invalid_field"),  // zero
            (7, "invalid_field"),  // 1.234 EUR: finer than cents
            (8, "invalid_field"),  // not a date
            (9, "invalid_field"),  // "12,34": not a proper thousands group
            (10, "invalid_field"), // category "pets"
            (12, "invalid_field"), // 7.5 JPY
            (13, "missing_value"), // no account
            (19, "unreadable_line"),
        ],
        "{:#?}",
        out.report
    );
    assert!(out.report[0].message.contains("XYZ"), "{:?}", out.report[0]);
    assert!(out.report[1].message.contains("zero"), "{:?}", out.report[1]);
    assert!(out.report[3].content.starts_with("not-a-date,SOMETHING"), "{:?}", out.report[3]);
    assert_eq!(out.summary.rejected, 9);
    assert_eq!(out.summary.imported, 8);
    assert_eq!(out.summary.lines, 17, "16 data lines and a record over two lines; the blank line does not count");

    let got: Vec<(&str, &str, TransactionKind, Decimal, &str, Category, i64)> = out
        .arrived
        .iter()
        .map(|t| {
            (
                t.transaction_id.as_str(),
                t.account_id.as_str(),
                t.kind,
                t.amount,
                t.currency.as_str(),
                t.category,
                t.occurred_at.0,
            )
        })
        .collect();
    let derived = out.arrived.iter().find(|t| t.transaction_id.starts_with("import-")).expect("derived id");
    let want = vec![
        ("ref-001", "acc-1", TransactionKind::Deposit, dec("2500.00"), "EUR", Category::Income, ms("2026-03-02")),
        ("ref-002", "acc-1", TransactionKind::Payment, dec("45.20"), "EUR", Category::Groceries, ms("2026-03-03")),
        ("ref-003", "acc-1", TransactionKind::Payment, dec("12.5"), "EUR", Category::Dining, ms("2026-03-03T18:30:00")),
        ("ref-010", "acc-2", TransactionKind::Payment, dec("700"), "JPY", Category::Transport, ms("2026-03-06")),
        ("ref-013", "acc-1", TransactionKind::Payment, dec("9.99"), "EUR", Category::Shopping, ms("2026-03-07")),
        (
            derived.transaction_id.as_str(),
            "acc-1",
            TransactionKind::Deposit,
            dec("15.00"),
            "EUR",
            Category::Shopping,
            ms("2026-03-08"),
        ),
        // A repeated line is valid and kept: deduplication is finstream's job, not the importer's.
        ("ref-002", "acc-1", TransactionKind::Payment, dec("45.20"), "EUR", Category::Groceries, ms("2026-03-08")),
        ("ref-015", "acc-1", TransactionKind::Payment, dec("2.00"), "EUR", Category::Other, ms("2026-03-09T09:00:00")),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|g| (g.6, g.0.to_string()));
    let mut want_sorted = want.clone();
    want_sorted.sort_by_key(|g| (g.6, g.0.to_string()));
    assert_eq!(got_sorted, want_sorted);
    for t in &out.arrived {
        assert_eq!(t.user_id, "user-1");
        assert_eq!(t.status, TransactionStatus::Completed);
    }
    let tesco = out.arrived.iter().find(|t| t.transaction_id == "ref-002").unwrap();
    let m = tesco.merchant.as_ref().unwrap();
    assert_eq!((m.name.as_str(), m.merchant_id.as_str()), ("TESCO STORES 1234", "tesco-stores-1234"));
    let multi = out.arrived.iter().find(|t| t.transaction_id == "ref-013").unwrap();
    assert_eq!(multi.merchant.as_ref().unwrap().name, "MULTI\nLINE SHOP");
    assert!(out.arrived.iter().find(|t| t.transaction_id == "ref-010").unwrap().merchant.is_none(), "no description");
}

#[test]
fn json_lines_with_a_contract_style_mapping() {
    let mapping: ImportMapping = toml::from_str(
        r#"
        [columns]
        transaction_id = "id"
        account_id = "account"
        user_id = "user"
        kind = "kind"
        amount = "amount"
        currency = "currency"
        category = "category"
        channel = "channel"
        status = "status"
        occurred_at = "time"
        counterparty_account_id = "to"
        goal_id = "goal"
        description = ""
        "#,
    )
    .unwrap();
    let out = run_import("transactions.jsonl", mapping, 4);
    let rejected: Vec<(u64, &str)> = out.report.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(
        rejected,
        vec![
            (3, "transfer_without_counterparty"),
            (4, "negative_amount"),
            (5, "invalid_field"), // kind GIFT
            (8, "unreadable_line"),
            (9, "unreadable_line"),
            (10, "missing_value"), // no user
        ],
        "{:#?}",
        out.report
    );
    assert_eq!((out.summary.imported, out.summary.rejected, out.summary.lines), (4, 6, 10));
    let ids: Vec<&str> = out.arrived.iter().map(|t| t.transaction_id.as_str()).collect();
    assert_eq!(ids, ["j-1", "j-2", "j-6", "j-9"]);
    let t = &out.arrived;
    assert_eq!(
        (t[0].kind, t[0].amount, t[0].occurred_at.0),
        (TransactionKind::Deposit, dec("100.00"), 1_772_409_600_000)
    );
    assert_eq!(t[1].counterparty_account_id.as_deref(), Some("acc-10"));
    assert_eq!(t[1].occurred_at.0, ms("2026-03-02T10:00:00"));
    assert_eq!((t[2].status, t[2].amount), (TransactionStatus::Pending, dec("3.25")));
    assert_eq!(t[3].goal_id.as_deref(), Some("g-1"));
}

#[test]
fn a_header_that_cannot_fill_required_fields_fails_before_producing() {
    let kafka = Kafka::shared();
    let topic = unique("transactions");
    kafka.create_topics(&[(&topic, 1)]);
    let reg = registry();
    let dir = tempfile::tempdir().unwrap();
    let client: Arc<dyn SchemaRegistry> = Arc::new(HttpRegistry::new(&reg.url));
    let mut producer = EventProducer::new(&KafkaTarget::new(kafka.bootstrap().to_string()), client).unwrap();
    // The default mapping has no user column and no default user.
    let opts = ImportOptions {
        path: fixture("statement.csv"),
        report_path: dir.path().join("r.jsonl"),
        topic,
        mapping: ImportMapping::default(),
        progress: false,
    };
    let err = import(&opts, &mut producer).unwrap_err().to_string();
    assert!(err.contains("user_id"), "{err}");
    assert_eq!(producer.sent(), 0);
}
