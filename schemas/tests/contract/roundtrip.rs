//! Every record through `AvroSerde` and the Confluent wire format, and through apache-avro as an
//! independent Avro implementation in both directions.

use std::fmt::Debug;

use schemas::registry::{SchemaRegistry, VersionSel};
use schemas::wire;
use schemas::{AccountEvent, AccountEventType, AvroRecord, AvroSerde};
use streams::serde::Serde;

use crate::samples::*;

fn roundtrip<T: AvroRecord + PartialEq + Debug + serde::Serialize + serde::de::DeserializeOwned>(
    topic: &str,
    value: T,
) {
    let reg = registry();
    let serde = AvroSerde::<T>::new(reg.clone());
    let bytes = serde.serialize(topic, &value).unwrap();

    // Confluent framing with the id registered under <topic>-value.
    let registered = reg.version(&format!("{topic}-value"), VersionSel::Latest).unwrap();
    assert_eq!(bytes[0], 0);
    assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), registered.id);
    assert_eq!(registered.schema, T::contract().json);

    let back = serde.deserialize(topic, &bytes).unwrap();
    assert_eq!(back, value, "{}", T::NAME);

    // apache-avro reads our bytes with the .avsc, field by field, and writes the same bytes back.
    let schema = &T::contract().schema;
    let (_, body) = wire::split(&bytes).unwrap();
    let v = apache_avro::from_avro_datum(schema, &mut &body[..], None).unwrap();
    let apache_avro::types::Value::Record(fields) = &v else { panic!("{v:?}") };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, T::FIELDS, "{}", T::NAME);
    assert_eq!(apache_avro::to_avro_datum(schema, v).unwrap(), body, "{}", T::NAME);

    // Decoding is served from the cache after the first record, and again gives the same value.
    assert_eq!(serde.deserialize(topic, &bytes).unwrap(), value);
    // The JSON form (state stores) round-trips too.
    let json = serde_json::to_string(&value).unwrap();
    assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
}

#[test]
fn every_record_round_trips() {
    roundtrip("transactions", transaction());
    roundtrip("transactions", transfer());
    roundtrip("accounts", account());
    roundtrip(
        "accounts",
        AccountEvent { event_type: AccountEventType::AccountClosed, display_name: None, ..account() },
    );
    roundtrip("budgets", budget());
    roundtrip("financial-goals", goal());
    roundtrip("user-profile", profile());
    roundtrip("exchange-rates", rate());
    roundtrip("account-balances", balance());
    roundtrip("budget-alerts", alert());
    roundtrip("goal-progress", progress());
    roundtrip("fraud-scores", fraud());
    roundtrip("spending-daily", spending());
    roundtrip("notifications", notification());
}

#[test]
fn empty_arrays_and_absent_optionals_round_trip() {
    let mut f = fraud();
    f.reasons.clear();
    roundtrip("fraud-scores", f);
    let mut p = progress();
    p.milestone = None;
    roundtrip("goal-progress", p);
}

#[test]
fn foreign_writer_bytes_decode() {
    // A TransactionEvent written by apache-avro from a generic record, as a client in another
    // language would, including a decimal and a timestamp.
    use apache_avro::types::{Record, Value};
    let schema = &schemas::TransactionEvent::contract().schema;
    let mut r = Record::new(schema).unwrap();
    r.put("transaction_id", "tx-9");
    r.put("account_id", "acc-9");
    r.put("user_id", "user-9");
    r.put("kind", Value::Enum(0, "DEPOSIT".into()));
    // 1234.56 → unscaled 12345600 = 0x00BC6100
    r.put("amount", Value::Decimal(apache_avro::Decimal::from(vec![0x00, 0xBC, 0x61, 0x00])));
    r.put("currency", "USD");
    r.put("status", Value::Enum(0, "COMPLETED".into()));
    r.put("category", Value::Enum(9, "income".into()));
    r.put("counterparty_account_id", Value::Union(0, Box::new(Value::Null)));
    r.put("merchant", Value::Union(0, Box::new(Value::Null)));
    r.put("goal_id", Value::Union(1, Box::new(Value::String("goal-9".into()))));
    r.put("channel", Value::Enum(3, "BANK_TRANSFER".into()));
    r.put("location", Value::Union(0, Box::new(Value::Null)));
    r.put("occurred_at", Value::TimestampMillis(1_700_000_000_000));
    let body = apache_avro::to_avro_datum(schema, r).unwrap();

    let reg = registry();
    let id = reg.register("transactions-value", schemas::TransactionEvent::contract().json).unwrap();
    let serde = AvroSerde::<schemas::TransactionEvent>::new(reg);
    let tx = serde.deserialize("transactions", &wire::frame(id, &body)).unwrap();
    assert_eq!(tx.amount, dec("1234.56"));
    assert_eq!(tx.amount.scale(), 4);
    assert_eq!(tx.kind, schemas::TransactionKind::Deposit);
    assert_eq!(tx.category, schemas::Category::Income);
    assert_eq!(tx.channel, schemas::Channel::BankTransfer);
    assert_eq!(tx.goal_id.as_deref(), Some("goal-9"));
    assert_eq!(tx.occurred_at, schemas::TimestampMillis(1_700_000_000_000));
}

#[test]
fn writer_id_is_registered_once_per_topic_and_shared_by_subjects() {
    let reg = registry();
    let serde = AvroSerde::<schemas::BalanceUpdated>::new(reg.clone());
    let a = serde.writer_id("account-balances").unwrap();
    assert_eq!(serde.writer_id("account-balances").unwrap(), a);
    // Same schema under another subject: same global id, as in Confluent.
    assert_eq!(serde.writer_id("other-balances").unwrap(), a);
    assert_eq!(reg.versions("account-balances-value").unwrap(), vec![1]);
}
