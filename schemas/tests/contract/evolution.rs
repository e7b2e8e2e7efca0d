//! Schema evolution: records written with older (and newer) registered versions are read with the
//! current schema.

use apache_avro::types::{Record, Value};
use apache_avro::Schema;
use schemas::registry::SchemaRegistry;
use schemas::{wire, AvroRecord, AvroSerde, Category, Channel, TransactionEvent};
use serde_json::Value as J;
use streams::serde::Serde;

use crate::samples::*;

/// The current TransactionEvent schema with some fields removed (an older version).
fn without_fields(drop: &[&str]) -> String {
    let mut v: J = serde_json::from_str(TransactionEvent::contract().json).unwrap();
    v["fields"].as_array_mut().unwrap().retain(|f| !drop.contains(&f["name"].as_str().unwrap()));
    v.to_string()
}

fn put_common(r: &mut Record<'_>) {
    r.put("transaction_id", "tx-old");
    r.put("account_id", "acc-1");
    r.put("user_id", "user-1");
    r.put("kind", Value::Enum(0, "DEPOSIT".into()));
    r.put("amount", Value::Decimal(apache_avro::Decimal::from(vec![0x27, 0x10]))); // 1.0000
    r.put("currency", "EUR");
    r.put("status", Value::Enum(0, "COMPLETED".into()));
    r.put("category", Value::Enum(9, "income".into()));
    r.put("counterparty_account_id", Value::Union(0, Box::new(Value::Null)));
    r.put("merchant", Value::Union(0, Box::new(Value::Null)));
    r.put("channel", Value::Enum(1, "ONLINE".into()));
    r.put("occurred_at", Value::TimestampMillis(1_600_000_000_000));
}

#[test]
fn v1_records_get_defaults_for_added_optional_fields() {
    let v1 = without_fields(&["goal_id", "location"]);
    let reg = registry();
    let v1_id = reg.register("transactions-value", &v1).unwrap();
    // The current schema is a BACKWARD compatible successor.
    let v2_id = reg.register("transactions-value", TransactionEvent::contract().json).unwrap();
    assert_ne!(v1_id, v2_id);

    let schema = Schema::parse_str(&v1).unwrap();
    let mut r = Record::new(&schema).unwrap();
    put_common(&mut r);
    let body = apache_avro::to_avro_datum(&schema, r).unwrap();

    let serde = AvroSerde::<TransactionEvent>::new(reg);
    let tx = serde.deserialize("transactions", &wire::frame(v1_id, &body)).unwrap();
    assert_eq!(tx.goal_id, None);
    assert_eq!(tx.location, None);
    assert_eq!(tx.amount, dec("1"));
    assert_eq!(tx.channel, Channel::Online);

    // Records of both versions interleave; each id has its own cached plan.
    let current = serde.serialize("transactions", &transaction()).unwrap();
    assert_eq!(u32::from_be_bytes(current[1..5].try_into().unwrap()), v2_id);
    assert_eq!(serde.deserialize("transactions", &current).unwrap(), transaction());
    assert_eq!(serde.deserialize("transactions", &wire::frame(v1_id, &body)).unwrap(), tx);
}

#[test]
fn newer_writers_fields_are_skipped_and_new_symbols_fall_back_to_defaults() {
    // A future version: a new optional field in the middle, a new channel and a new category.
    let mut v: J = serde_json::from_str(TransactionEvent::contract().json).unwrap();
    let fields = v["fields"].as_array_mut().unwrap();
    fields.insert(6, serde_json::json!({"name": "note", "type": ["null", "string"], "default": null}));
    for f in fields.iter_mut() {
        match f["name"].as_str().unwrap() {
            "channel" => f["type"]["symbols"].as_array_mut().unwrap().push("CRYPTO".into()),
            "category" => f["type"]["symbols"].as_array_mut().unwrap().push("pets".into()),
            _ => {}
        }
    }
    let v3 = v.to_string();
    let schema = Schema::parse_str(&v3).unwrap();
    let mut r = Record::new(&schema).unwrap();
    put_common(&mut r);
    r.put("note", Value::Union(1, Box::new(Value::String("hello".into()))));
    r.put("goal_id", Value::Union(0, Box::new(Value::Null)));
    r.put("location", Value::Union(0, Box::new(Value::Null)));
    r.put("channel", Value::Enum(6, "CRYPTO".into()));
    r.put("category", Value::Enum(12, "pets".into()));
    let body = apache_avro::to_avro_datum(&schema, r).unwrap();

    let reg = registry();
    let id = reg.register("transactions-value", &v3).unwrap();
    let tx = AvroSerde::<TransactionEvent>::new(reg).deserialize("transactions", &wire::frame(id, &body)).unwrap();
    assert_eq!(tx.channel, Channel::Unknown);
    assert_eq!(tx.category, Category::Other);
    assert_eq!(tx.transaction_id, "tx-old");
    assert_eq!(tx.occurred_at.0, 1_600_000_000_000);
}

#[test]
fn int_written_fields_promote_to_long() {
    // A writer that declared applied_count as int: Avro promotes int to long.
    let mut v: J = serde_json::from_str(schemas::BalanceUpdated::contract().json).unwrap();
    for f in v["fields"].as_array_mut().unwrap() {
        if f["name"] == "applied_count" {
            f["type"] = "int".into();
        }
    }
    let writer = v.to_string();
    let schema = Schema::parse_str(&writer).unwrap();
    let mut r = Record::new(&schema).unwrap();
    r.put("account_id", "acc-1");
    r.put("user_id", "user-1");
    r.put("balance", Value::Decimal(apache_avro::Decimal::from(vec![0x01])));
    r.put("currency", "EUR");
    r.put("last_transaction_id", "tx-1");
    r.put("applied_count", Value::Int(7));
    r.put("updated_at", Value::TimestampMillis(5));
    let body = apache_avro::to_avro_datum(&schema, r).unwrap();
    let reg = registry();
    let id = reg.register("x-value", &writer).unwrap();
    let b = AvroSerde::<schemas::BalanceUpdated>::new(reg).deserialize("x", &wire::frame(id, &body)).unwrap();
    assert_eq!(b.applied_count, 7);
    assert_eq!(b.balance, dec("0.0001"));
}

#[test]
fn account_events_from_a_newer_writer_keep_their_owner() {
    // A future version: a new account type, a new event type and a new optional field.
    let mut v: J = serde_json::from_str(schemas::AccountEvent::contract().json).unwrap();
    let fields = v["fields"].as_array_mut().unwrap();
    fields.push(serde_json::json!({"name": "iban", "type": ["null", "string"], "default": null}));
    for f in fields.iter_mut() {
        match f["name"].as_str().unwrap() {
            "account_type" => f["type"]["symbols"].as_array_mut().unwrap().push("BROKERAGE".into()),
            "event_type" => f["type"]["symbols"].as_array_mut().unwrap().push("ACCOUNT_RENAMED".into()),
            _ => {}
        }
    }
    let writer = v.to_string();
    let schema = Schema::parse_str(&writer).unwrap();
    let mut r = Record::new(&schema).unwrap();
    r.put("event_id", "ae-9");
    r.put("event_type", Value::Enum(0, "ACCOUNT_OPENED".into()));
    r.put("account_id", "acc-9");
    r.put("user_id", "user-9");
    r.put("account_type", Value::Enum(4, "BROKERAGE".into()));
    r.put("currency", "CHF");
    r.put("display_name", Value::Union(0, Box::new(Value::Null)));
    r.put("occurred_at", Value::TimestampMillis(1_700_000_000_000));
    r.put("iban", Value::Union(1, Box::new(Value::String("CH93 0076 2011 6238 5295 7".into()))));
    let body = apache_avro::to_avro_datum(&schema, r).unwrap();
    let reg = registry();
    let id = reg.register("accounts-value", &writer).unwrap();
    let serde = AvroSerde::<schemas::AccountEvent>::new(reg);
    let a = serde.deserialize("accounts", &wire::frame(id, &body)).unwrap();
    assert_eq!(a.account_type, schemas::AccountType::Unknown);
    assert_eq!((a.user_id.as_str(), a.currency.as_str()), ("user-9", "CHF"));

    // An event type this reader does not know is not acted on: a dead letter, not a guess.
    let mut r = Record::new(&schema).unwrap();
    r.put("event_id", "ae-10");
    r.put("event_type", Value::Enum(3, "ACCOUNT_RENAMED".into()));
    r.put("account_id", "acc-9");
    r.put("user_id", "user-9");
    r.put("account_type", Value::Enum(0, "CHECKING".into()));
    r.put("currency", "CHF");
    r.put("display_name", Value::Union(0, Box::new(Value::Null)));
    r.put("occurred_at", Value::TimestampMillis(1_700_000_000_001));
    r.put("iban", Value::Union(0, Box::new(Value::Null)));
    let body = apache_avro::to_avro_datum(&schema, r).unwrap();
    let err = serde.deserialize("accounts", &wire::frame(id, &body)).unwrap_err();
    assert_eq!(err.reason, schemas::reason::INVALID_FIELD);
}
