//! The `.avsc` files compiled into the binary, and the traits that tie Rust types to them.
//!
//! Each Rust event type lists its fields in `.avsc` order ([`AvroRecord::FIELDS`]) and converts to
//! and from a positional [`Datum::Record`]; tests compare that list, and the encoded bytes, with the
//! `.avsc` (parsed independently by apache-avro), so the Rust types provably match the contract.

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::Schema;
use streams::serde::SerdeError;

use crate::codec::{encode, Datum, Shape};
use crate::reason;

/// Avro namespace of every contract type.
pub const NAMESPACE: &str = "finstream.events";

/// `(record name, .avsc text)` of every top-level contract schema.
pub const AVSC_FILES: &[(&str, &str)] = &[
    ("TransactionEvent", include_str!("../avro/TransactionEvent.avsc")),
    ("AccountEvent", include_str!("../avro/AccountEvent.avsc")),
    ("BudgetEvent", include_str!("../avro/BudgetEvent.avsc")),
    ("GoalEvent", include_str!("../avro/GoalEvent.avsc")),
    ("UserProfile", include_str!("../avro/UserProfile.avsc")),
    ("ExchangeRate", include_str!("../avro/ExchangeRate.avsc")),
    ("BalanceUpdated", include_str!("../avro/BalanceUpdated.avsc")),
    ("BudgetAlert", include_str!("../avro/BudgetAlert.avsc")),
    ("GoalProgress", include_str!("../avro/GoalProgress.avsc")),
    ("FraudScore", include_str!("../avro/FraudScore.avsc")),
    ("SpendingAggregate", include_str!("../avro/SpendingAggregate.avsc")),
    ("Notification", include_str!("../avro/Notification.avsc")),
];

/// One contract schema, parsed once per process.
#[derive(Debug)]
pub struct ContractSchema {
    /// Record name without namespace, e.g. `TransactionEvent`.
    pub name: &'static str,
    /// The `.avsc` text, exactly as registered with the schema registry.
    pub json: &'static str,
    pub schema: Schema,
    pub shape: Shape,
}

fn contracts() -> &'static HashMap<&'static str, ContractSchema> {
    static ALL: OnceLock<HashMap<&'static str, ContractSchema>> = OnceLock::new();
    ALL.get_or_init(|| {
        AVSC_FILES
            .iter()
            .map(|(name, json)| {
                // The files are compiled in and covered by tests: failing here is a build defect.
                let schema = Schema::parse_str(json).unwrap_or_else(|e| panic!("{name}.avsc: {e}"));
                let shape = Shape::compile(&schema).unwrap_or_else(|e| panic!("{name}.avsc: {e}"));
                (*name, ContractSchema { name, json, schema, shape })
            })
            .collect()
    })
}

/// The contract schema named `name` (see [`AVSC_FILES`]).
pub fn contract(name: &str) -> Option<&'static ContractSchema> {
    contracts().get(name)
}

/// A Rust value that is one Avro field value.
pub trait AvroField: Sized {
    fn to_datum(&self) -> Datum;
    /// Converts back; the error says what was expected.
    fn from_datum(d: Datum) -> Result<Self, String>;
}

/// A top-level contract record (one `.avsc` file; the value of one topic).
pub trait AvroRecord: AvroField + Send + Sync + 'static {
    /// Record name, as in [`AVSC_FILES`].
    const NAME: &'static str;
    /// Field names in `.avsc` order.
    const FIELDS: &'static [&'static str];

    /// Domain checks run after decoding input events. Derived events have none.
    fn validate(&self) -> Result<(), SerdeError> {
        Ok(())
    }

    fn contract() -> &'static ContractSchema {
        contract(Self::NAME).unwrap_or_else(|| panic!("{} is not in AVSC_FILES", Self::NAME))
    }

    /// Plain Avro binary (no wire-format header) with the contract schema.
    fn to_avro(&self) -> Result<Vec<u8>, SerdeError> {
        let mut out = Vec::with_capacity(128);
        encode(&Self::contract().shape, &self.to_datum(), &mut out)?;
        Ok(out)
    }

    /// From a record datum decoded with a plan whose reader is this type's contract schema.
    fn from_record(d: Datum) -> Result<Self, SerdeError> {
        Self::from_datum(d).map_err(|m| SerdeError::new(reason::SCHEMA_RESOLUTION, format!("{}: {m}", Self::NAME)))
    }
}

fn expected(what: &str, d: &Datum) -> String {
    format!("expected {what}, got {}", d.kind())
}

impl AvroField for String {
    fn to_datum(&self) -> Datum {
        Datum::String(self.clone())
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::String(s) => Ok(s),
            d => Err(expected("string", &d)),
        }
    }
}

impl AvroField for i64 {
    fn to_datum(&self) -> Datum {
        Datum::Long(*self)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::Long(v) => Ok(v),
            d => Err(expected("long", &d)),
        }
    }
}

impl AvroField for i32 {
    fn to_datum(&self) -> Datum {
        Datum::Int(*self)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::Int(v) => Ok(v),
            d => Err(expected("int", &d)),
        }
    }
}

impl AvroField for f64 {
    fn to_datum(&self) -> Datum {
        Datum::Double(*self)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::Double(v) => Ok(v),
            d => Err(expected("double", &d)),
        }
    }
}

impl AvroField for rust_decimal::Decimal {
    fn to_datum(&self) -> Datum {
        Datum::Decimal(*self)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::Decimal(v) => Ok(v),
            d => Err(expected("decimal", &d)),
        }
    }
}

impl<T: AvroField> AvroField for Option<T> {
    fn to_datum(&self) -> Datum {
        self.as_ref().map_or(Datum::Null, T::to_datum)
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::Null => Ok(None),
            d => T::from_datum(d).map(Some),
        }
    }
}

impl<T: AvroField> AvroField for Vec<T> {
    fn to_datum(&self) -> Datum {
        Datum::Array(self.iter().map(T::to_datum).collect())
    }
    fn from_datum(d: Datum) -> Result<Self, String> {
        match d {
            Datum::Array(items) => items.into_iter().map(T::from_datum).collect(),
            d => Err(expected("array", &d)),
        }
    }
}

/// Implements [`AvroField`] for a record struct from its field list (in `.avsc` order), and
/// [`AvroRecord`] too when given `top`.
#[macro_export]
macro_rules! avro_record {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl $ty {
            /// Field names in `.avsc` order.
            pub const AVRO_FIELDS: &'static [&'static str] = &[$(stringify!($field)),+];
        }
        impl $crate::contract::AvroField for $ty {
            fn to_datum(&self) -> $crate::codec::Datum {
                $crate::codec::Datum::Record(vec![$($crate::contract::AvroField::to_datum(&self.$field)),+])
            }
            fn from_datum(d: $crate::codec::Datum) -> Result<Self, String> {
                let $crate::codec::Datum::Record(values) = d else {
                    return Err(format!("{}: expected a record, got {}", stringify!($ty), d.kind()));
                };
                if values.len() != Self::AVRO_FIELDS.len() {
                    return Err(format!("{}: expected {} fields, got {}", stringify!($ty), Self::AVRO_FIELDS.len(), values.len()));
                }
                let mut it = values.into_iter();
                Ok($ty {
                    $($field: $crate::contract::AvroField::from_datum(it.next().expect("length checked"))
                        .map_err(|m| format!("{}.{}: {m}", stringify!($ty), stringify!($field)))?,)+
                })
            }
        }
    };
    (top $ty:ident { $($field:ident),+ $(,)? }) => {
        $crate::avro_record!($ty { $($field),+ });
        impl $crate::contract::AvroRecord for $ty {
            const NAME: &'static str = stringify!($ty);
            const FIELDS: &'static [&'static str] = $ty::AVRO_FIELDS;
            fn validate(&self) -> Result<(), streams::serde::SerdeError> {
                $ty::check(self)
            }
        }
    };
}

/// Declares a Rust enum for an Avro enum: variants in symbol order, `serde` names equal to the
/// symbols (so JSON state stores read like the Avro data), and the variant that unknown symbols
/// map to (the `.avsc` `default`).
#[macro_export]
macro_rules! avro_enum {
    ($(#[$meta:meta])* $ty:ident default $default:ident { $($variant:ident = $symbol:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $ty {
            $(#[serde(rename = $symbol)] $variant),+
        }
        impl $ty {
            /// Avro symbols in `.avsc` order.
            pub const SYMBOLS: &'static [&'static str] = &[$($symbol),+];
            const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// The Avro symbol.
            pub fn symbol(self) -> &'static str {
                Self::SYMBOLS[self.index()]
            }
            fn index(self) -> usize {
                Self::ALL.iter().position(|v| *v == self).expect("every variant is listed")
            }
            /// The variant of a symbol; unknown symbols give the default variant.
            pub fn from_symbol(s: &str) -> Self {
                Self::SYMBOLS.iter().position(|x| *x == s).map_or($ty::$default, |i| Self::ALL[i])
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.symbol())
            }
        }
        impl $crate::contract::AvroField for $ty {
            fn to_datum(&self) -> $crate::codec::Datum {
                $crate::codec::Datum::Enum(self.index() as u32)
            }
            fn from_datum(d: $crate::codec::Datum) -> Result<Self, String> {
                match d {
                    $crate::codec::Datum::Enum(i) => Ok(Self::ALL.get(i as usize).copied().unwrap_or($ty::$default)),
                    d => Err(format!("expected enum {}, got {}", stringify!($ty), d.kind())),
                }
            }
        }
    };
}
