//! Every dead-letter reason class, as `SerdeError::reason`.

use schemas::registry::{CompatibilityLevel, EmbeddedRegistry, SchemaRegistry};
use schemas::{reason, wire, AvroRecord, AvroSerde, TransactionEvent, TransactionKind};
use serde_json::Value as J;
use std::sync::Arc;
use streams::serde::{Serde, SerdeError};

use crate::samples::*;

fn serde_with(reg: &Arc<EmbeddedRegistry>) -> AvroSerde<TransactionEvent> {
    AvroSerde::new(reg.clone())
}

fn fails(serde: &AvroSerde<TransactionEvent>, bytes: &[u8]) -> SerdeError {
    serde.deserialize("transactions", bytes).expect_err("must fail")
}

fn invalid(tx: TransactionEvent) -> SerdeError {
    let reg = registry();
    let serde = serde_with(&reg);
    let bytes = serde.serialize("transactions", &tx).unwrap();
    fails(&serde, &bytes)
}

#[test]
fn framing_errors() {
    let reg = registry();
    let serde = serde_with(&reg);
    assert_eq!(fails(&serde, b"").reason, reason::EMPTY_PAYLOAD);
    assert_eq!(fails(&serde, b"{\"amount\": 1}").reason, reason::BAD_MAGIC_BYTE);
    assert_eq!(fails(&serde, &[1, 0, 0, 0, 1, 2]).reason, reason::BAD_MAGIC_BYTE);
    assert_eq!(fails(&serde, &[0, 0, 0]).reason, reason::BAD_MAGIC_BYTE);
    let e = fails(&serde, &[0, 0, 0, 0x30, 0x39, 2, 3]);
    assert_eq!(e.reason, reason::UNKNOWN_SCHEMA_ID, "{e}");
    assert!(e.message.contains("12345"));
    // Asked again (served from the negative cache): same class.
    assert_eq!(fails(&serde, &[0, 0, 0, 0x30, 0x39]).reason, reason::UNKNOWN_SCHEMA_ID);
}

#[test]
fn garbage_after_a_valid_header_is_avro_decode() {
    let reg = registry();
    let serde = serde_with(&reg);
    let good = serde.serialize("transactions", &transaction()).unwrap();
    let id = u32::from_be_bytes(good[1..5].try_into().unwrap());
    // Random-looking garbage, a truncated record, and trailing bytes.
    let garbage: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert_eq!(fails(&serde, &wire::frame(id, &garbage)).reason, reason::AVRO_DECODE);
    assert_eq!(fails(&serde, &good[..good.len() - 3]).reason, reason::AVRO_DECODE);
    let mut long = good.clone();
    long.push(0);
    assert_eq!(fails(&serde, &long).reason, reason::AVRO_DECODE);
    // A huge claimed string length fails without allocating it.
    assert_eq!(fails(&serde, &wire::frame(id, &[0xfe, 0xff, 0xff, 0xff, 0x0f])).reason, reason::AVRO_DECODE);
}

#[test]
fn writer_schema_that_does_not_resolve() {
    let reg = registry();
    reg.set_level(None, CompatibilityLevel::None).unwrap();
    // amount as a string: no promotion reads a string as a decimal.
    let mut v: J = serde_json::from_str(TransactionEvent::contract().json).unwrap();
    for f in v["fields"].as_array_mut().unwrap() {
        if f["name"] == "amount" {
            f["type"] = "string".into();
        }
    }
    let id = reg.register("transactions-value", &v.to_string()).unwrap();
    let e = fails(&serde_with(&reg), &wire::frame(id, &[0]));
    assert_eq!(e.reason, reason::SCHEMA_RESOLUTION, "{e}");
    assert!(e.message.contains("amount"), "{e}");
    // A different record altogether.
    let id = reg.register("transactions-value", schemas::Notification::contract().json).unwrap();
    assert_eq!(fails(&serde_with(&reg), &wire::frame(id, &[0])).reason, reason::SCHEMA_RESOLUTION);
}

#[test]
fn writer_without_a_required_field() {
    let reg = registry();
    reg.set_level(None, CompatibilityLevel::None).unwrap();
    let mut v: J = serde_json::from_str(TransactionEvent::contract().json).unwrap();
    v["fields"].as_array_mut().unwrap().retain(|f| f["name"] != "currency");
    let id = reg.register("transactions-value", &v.to_string()).unwrap();
    let e = fails(&serde_with(&reg), &wire::frame(id, &[0]));
    assert_eq!(e.reason, reason::MISSING_FIELD, "{e}");
    assert!(e.message.contains("currency"), "{e}");
}

#[test]
fn validation_classes() {
    let e = invalid(TransactionEvent { amount: dec("-5"), ..transaction() });
    assert_eq!(e.reason, reason::NEGATIVE_AMOUNT, "{e}");
    let e = invalid(TransactionEvent { currency: "XYZ".into(), ..transaction() });
    assert_eq!(e.reason, reason::UNKNOWN_CURRENCY, "{e}");
    let e = invalid(TransactionEvent { currency: "eur".into(), ..transaction() });
    assert_eq!(e.reason, reason::UNKNOWN_CURRENCY, "{e}");
    let e = invalid(TransactionEvent { counterparty_account_id: None, ..transfer() });
    assert_eq!(e.reason, reason::TRANSFER_WITHOUT_COUNTERPARTY, "{e}");
    let e = invalid(TransactionEvent { counterparty_account_id: Some(" ".into()), ..transfer() });
    assert_eq!(e.reason, reason::TRANSFER_WITHOUT_COUNTERPARTY, "{e}");
    for bad in [
        TransactionEvent { amount: dec("0"), ..transaction() },
        TransactionEvent { amount: dec("100.5"), currency: "JPY".into(), ..transaction() },
        TransactionEvent { amount: dec("1.001"), currency: "EUR".into(), ..transaction() },
        TransactionEvent { transaction_id: "".into(), ..transaction() },
        TransactionEvent { kind: TransactionKind::Unknown, ..transaction() },
        TransactionEvent { counterparty_account_id: Some("acc-1".into()), ..transfer() },
    ] {
        assert_eq!(invalid(bad.clone()).reason, reason::INVALID_FIELD, "{bad:?}");
    }
    // Fine: KWD has three decimals, JPY whole amounts.
    for ok in [
        TransactionEvent { amount: dec("1.005"), currency: "KWD".into(), ..transaction() },
        TransactionEvent { amount: dec("1500"), currency: "JPY".into(), ..transaction() },
        transfer(),
    ] {
        let reg = registry();
        let serde = serde_with(&reg);
        assert_eq!(serde.deserialize("t", &serde.serialize("t", &ok).unwrap()).unwrap(), ok);
    }
    // Without validation the record decodes.
    let reg = registry();
    let serde = serde_with(&reg).without_validation();
    let bad = TransactionEvent { amount: dec("-5"), ..transaction() };
    assert_eq!(serde.deserialize("t", &serde.serialize("t", &bad).unwrap()).unwrap(), bad);
}

#[test]
fn other_inputs_validate_too() {
    use schemas::{AccountEvent, AccountEventType, AccountType, BudgetEvent, ExchangeRate, GoalEvent, UserProfile};
    fn check<T: AvroRecord>(v: T) -> Option<String> {
        let serde = AvroSerde::<T>::new(registry());
        serde.deserialize("t", &serde.serialize("t", &v).unwrap()).err().map(|e| e.reason)
    }
    assert_eq!(check(account()), None);
    // A newer account type reads as UNKNOWN and is still a valid owner record.
    assert_eq!(check(AccountEvent { account_type: AccountType::Unknown, ..account() }), None);
    assert_eq!(check(AccountEvent { user_id: " ".into(), ..account() }).as_deref(), Some(reason::INVALID_FIELD));
    assert_eq!(
        check(AccountEvent { event_type: AccountEventType::Unknown, ..account() }).as_deref(),
        Some(reason::INVALID_FIELD)
    );
    assert_eq!(check(AccountEvent { currency: "EURO".into(), ..account() }).as_deref(), Some(reason::UNKNOWN_CURRENCY));
    assert_eq!(check(budget()), None);
    assert_eq!(check(BudgetEvent { limit: dec("-1"), ..budget() }).as_deref(), Some(reason::NEGATIVE_AMOUNT));
    assert_eq!(check(BudgetEvent { currency: "ABC".into(), ..budget() }).as_deref(), Some(reason::UNKNOWN_CURRENCY));
    assert_eq!(check(goal()), None);
    assert_eq!(check(GoalEvent { target_amount: dec("-1"), ..goal() }).as_deref(), Some(reason::NEGATIVE_AMOUNT));
    assert_eq!(check(profile()), None);
    assert_eq!(
        check(UserProfile { base_currency: "???".into(), ..profile() }).as_deref(),
        Some(reason::UNKNOWN_CURRENCY)
    );
    assert_eq!(check(rate()), None);
    assert_eq!(check(ExchangeRate { usd_rate: dec("0"), ..rate() }).as_deref(), Some(reason::INVALID_FIELD));
    assert_eq!(check(ExchangeRate { usd_rate: dec("-1"), ..rate() }).as_deref(), Some(reason::NEGATIVE_AMOUNT));
}

#[test]
fn registry_failures_are_not_record_faults() {
    struct Down;
    impl SchemaRegistry for Down {
        fn register(&self, _: &str, _: &str) -> Result<u32, schemas::registry::RegistryError> {
            Err(schemas::registry::RegistryError::Transport("connection refused".into()))
        }
        fn schema_by_id(&self, _: u32) -> Result<String, schemas::registry::RegistryError> {
            Err(schemas::registry::RegistryError::Transport("connection refused".into()))
        }
        fn latest(&self, _: &str) -> Result<schemas::registry::RegisteredSchema, schemas::registry::RegistryError> {
            Err(schemas::registry::RegistryError::Transport("connection refused".into()))
        }
    }
    let serde = AvroSerde::<TransactionEvent>::new(Arc::new(Down));
    assert_eq!(serde.deserialize("t", &wire::frame(1, &[0])).unwrap_err().reason, reason::REGISTRY_UNAVAILABLE);
    assert_eq!(serde.serialize("t", &transaction()).unwrap_err().reason, reason::REGISTRY_UNAVAILABLE);
}
