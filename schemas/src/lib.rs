//! finstream's event contract.
//!
//! The `.avsc` files in `schemas/avro/` are the source of truth for every topic's value; this crate
//! holds the Rust types that mirror them (tested field by field), an Avro codec that resolves
//! writer schemas against them once per schema id (not once per record), the Confluent wire
//! format, validation of input events, and a Confluent-compatible schema registry (client, in-process
//! implementation and HTTP server).
//!
//! Errors leave this crate as [`streams::serde::SerdeError`] whose `reason` is one of the stable
//! classes in [`reason`]; the engine puts them in dead-letter headers and metric labels.

pub mod codec;
pub mod contract;
pub mod currency;
pub mod events;
pub mod reason;
pub mod registry;
pub mod serde;
pub mod wire;

pub use codec::Datum;
pub use contract::{AvroRecord, ContractSchema};
pub use events::*;
pub use serde::AvroSerde;
