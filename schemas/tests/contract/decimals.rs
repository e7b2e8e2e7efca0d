//! Decimal edge cases through the wire format: exact scale, precision limits, no rounding.

use schemas::registry::SchemaRegistry;
use schemas::{reason, wire, AvroRecord, AvroSerde, BalanceUpdated, ExchangeRate, TransactionEvent};
use streams::serde::Serde;

use crate::samples::*;

fn balance_roundtrip(amount: &str) -> rust_decimal::Decimal {
    let serde = AvroSerde::<BalanceUpdated>::new(registry());
    let value = BalanceUpdated { balance: dec(amount), ..balance() };
    let bytes = serde.serialize("account-balances", &value).unwrap();
    serde.deserialize("account-balances", &bytes).unwrap().balance
}

#[test]
fn values_survive_exactly_at_scale_four() {
    for s in
        ["0.0001", "-0.0001", "0", "-12345678901234.5678", "99999999999999.9999", "-99999999999999.9999", "1", "-1"]
    {
        let back = balance_roundtrip(s);
        assert_eq!(back, dec(s), "{s}");
        assert_eq!(back.scale(), 4, "{s}");
    }
}

#[test]
fn shorter_scales_are_widened() {
    let back = balance_roundtrip("1.5");
    assert_eq!(back.to_string(), "1.5000");
    // JPY has no minor unit; its amounts still travel at scale 4.
    let serde = AvroSerde::<TransactionEvent>::new(registry());
    let tx = TransactionEvent { amount: dec("1500"), currency: "JPY".into(), ..transaction() };
    let back = serde.deserialize("transactions", &serde.serialize("transactions", &tx).unwrap()).unwrap();
    assert_eq!(back.amount.to_string(), "1500.0000");
}

#[test]
fn encoding_never_rounds_and_respects_precision() {
    let serde = AvroSerde::<BalanceUpdated>::new(registry());
    let err = serde.serialize("b", &BalanceUpdated { balance: dec("1.23456"), ..balance() }).unwrap_err();
    assert_eq!(err.reason, reason::DECIMAL_ROUNDING, "{err}");
    let err = serde.serialize("b", &BalanceUpdated { balance: dec("100000000000000"), ..balance() }).unwrap_err();
    assert_eq!(err.reason, reason::DECIMAL_OVERFLOW, "{err}");
    // Trailing zeros beyond the scale are not rounding.
    assert!(serde.serialize("b", &BalanceUpdated { balance: dec("1.50000000"), ..balance() }).is_ok());
}

#[test]
fn exchange_rates_keep_ten_decimals_and_28_digits() {
    let serde = AvroSerde::<ExchangeRate>::new(registry());
    for s in ["0.0000000001", "123456789012345678.1234567890", "1.0843"] {
        let r = ExchangeRate { usd_rate: dec(s), ..rate() };
        let back = serde.deserialize("exchange-rates", &serde.serialize("exchange-rates", &r).unwrap()).unwrap();
        assert_eq!(back.usd_rate, dec(s));
        assert_eq!(back.usd_rate.scale(), 10);
    }
    let r = ExchangeRate { usd_rate: dec("0.00000000001"), ..rate() };
    assert_eq!(serde.serialize("exchange-rates", &r).unwrap_err().reason, reason::DECIMAL_ROUNDING);
}

#[test]
fn a_writer_with_a_larger_scale_is_read_when_exact_and_rejected_when_it_would_round() {
    // A foreign producer registered amount as decimal(20,6).
    let wide = TransactionEvent::contract().json.replacen("\"scale\": 4", "\"scale\": 6", 1).replacen(
        "\"precision\": 18",
        "\"precision\": 20",
        1,
    );
    let reg = registry();
    reg.set_level(None, schemas::registry::CompatibilityLevel::None).unwrap();
    let id = reg.register("transactions-value", &wide).unwrap();
    let shape = schemas::codec::Shape::parse(&wide).unwrap();
    let serde = AvroSerde::<TransactionEvent>::new(reg);
    let encode = |amount: &str| {
        let mut body = Vec::new();
        let tx = TransactionEvent { amount: dec(amount), ..transaction() };
        schemas::codec::encode(&shape, &schemas::contract::AvroField::to_datum(&tx), &mut body).unwrap();
        wire::frame(id, &body)
    };
    let tx = serde.deserialize("transactions", &encode("12.340000")).unwrap();
    assert_eq!(tx.amount.to_string(), "12.3400");
    let err = serde.deserialize("transactions", &encode("12.345678")).unwrap_err();
    assert_eq!(err.reason, reason::AVRO_DECODE, "{err}");
}
