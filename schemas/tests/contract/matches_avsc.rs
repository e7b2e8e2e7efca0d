//! The Rust types against the `.avsc` files, read as plain JSON (not through this crate's parser).

use std::collections::BTreeMap;

use schemas::contract::AVSC_FILES;
use schemas::events::ENUM_SYMBOLS;
use schemas::*;
use serde_json::Value;

fn avsc(name: &str) -> Value {
    let text = AVSC_FILES.iter().find(|(n, _)| *n == name).unwrap().1;
    // The compiled-in text is the file on disk.
    let path = format!("{}/avro/{name}.avsc", env!("CARGO_MANIFEST_DIR"));
    assert_eq!(std::fs::read_to_string(path).unwrap(), text);
    serde_json::from_str(text).unwrap()
}

fn field_names(record: &Value) -> Vec<String> {
    record["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
}

/// Every named record and enum inside a schema, by name.
fn named(v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(t)), Some(Value::String(n))) = (m.get("type"), m.get("name")) {
                if t == "record" || t == "enum" {
                    out.insert(n.clone(), v.clone());
                }
            }
            m.values().for_each(|x| named(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| named(x, out)),
        _ => {}
    }
}

fn fields_of<T: AvroRecord>() -> (&'static str, &'static [&'static str]) {
    (T::NAME, T::FIELDS)
}

#[test]
fn record_fields_match_in_name_and_order() {
    let records = [
        fields_of::<TransactionEvent>(),
        fields_of::<AccountEvent>(),
        fields_of::<BudgetEvent>(),
        fields_of::<GoalEvent>(),
        fields_of::<UserProfile>(),
        fields_of::<ExchangeRate>(),
        fields_of::<BalanceUpdated>(),
        fields_of::<BudgetAlert>(),
        fields_of::<GoalProgress>(),
        fields_of::<FraudScore>(),
        fields_of::<SpendingAggregate>(),
        fields_of::<Notification>(),
    ];
    assert_eq!(records.len(), AVSC_FILES.len());
    for (name, fields) in records {
        let s = avsc(name);
        assert_eq!(s["namespace"], "finstream.events", "{name}");
        assert_eq!(s["name"], name);
        assert_eq!(field_names(&s), fields, "{name}");
    }
    let mut all = BTreeMap::new();
    named(&avsc("TransactionEvent"), &mut all);
    assert_eq!(field_names(&all["Merchant"]), Merchant::AVRO_FIELDS);
    assert_eq!(field_names(&all["Location"]), Location::AVRO_FIELDS);
}

#[test]
fn enums_match_and_have_defaults() {
    let mut all = BTreeMap::new();
    for (name, _) in AVSC_FILES {
        named(&avsc(name), &mut all);
    }
    let rust: BTreeMap<&str, &[&str]> = ENUM_SYMBOLS.iter().copied().collect();
    let mut seen = 0;
    for (name, v) in &all {
        if v["type"] != "enum" {
            continue;
        }
        seen += 1;
        let symbols: Vec<&str> = v["symbols"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(rust.get(name.as_str()).copied(), Some(symbols.as_slice()), "enum {name}");
        let default = v["default"].as_str().unwrap_or_else(|| panic!("enum {name} has no default"));
        let expected = if name == "Category" { "other" } else { "UNKNOWN" };
        assert_eq!(default, expected, "enum {name}");
    }
    assert_eq!(seen, ENUM_SYMBOLS.len());
}

/// Walks fields: decimals are (18,4) except ExchangeRate.usd_rate (28,10); timestamps are
/// timestamp-millis longs; unions are ["null", T] with default null.
#[test]
fn money_timestamps_and_optionals_follow_the_rules() {
    fn check(record: &str, v: &Value) {
        for f in v["fields"].as_array().unwrap() {
            let name = format!("{record}.{}", f["name"].as_str().unwrap());
            let t = &f["type"];
            if let Value::Array(branches) = t {
                assert_eq!(branches[0], "null", "{name}");
                assert_eq!(branches.len(), 2, "{name}");
                assert!(f.get("default").is_some_and(Value::is_null), "{name} needs default null");
                if branches[1]["type"] == "record" {
                    check(branches[1]["name"].as_str().unwrap(), &branches[1]);
                }
            }
            if t["logicalType"] == "decimal" {
                assert_eq!(t["type"], "bytes", "{name}");
                let expected = if name == "ExchangeRate.usd_rate" { (28, 10) } else { (18, 4) };
                assert_eq!((t["precision"].as_u64().unwrap(), t["scale"].as_u64().unwrap()), expected, "{name}");
            }
            if name.ends_with("_at") || name.ends_with("_start") || name.ends_with("_end") {
                assert_eq!(t["type"], "long", "{name}");
                assert_eq!(t["logicalType"], "timestamp-millis", "{name}");
            }
        }
    }
    for (name, _) in AVSC_FILES {
        check(name, &avsc(name));
    }
}
