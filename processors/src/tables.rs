//! Reading the two global tables. Their stores hold the topics' raw Avro bytes (Confluent wire
//! format, exactly as produced), declared with `BytesSerde`, and are decoded here with the same
//! `AvroSerde` as everything else. Decoding here rather than in the store's serde keeps a bad
//! table record a *data* problem (the entry reads as absent) instead of a store error that would
//! stop the task.

use std::sync::Arc;

use rust_decimal::Decimal;
use schemas::registry::SchemaRegistry;
use schemas::{AvroSerde, ExchangeRate, UserProfile};
use streams::{ProcessError, ProcessorContext, Serde};

use crate::topology::stores;

/// Decoders for the global tables, shared by all processors of a topology.
pub struct GlobalTables {
    rates: AvroSerde<ExchangeRate>,
    profiles: AvroSerde<UserProfile>,
    rates_topic: String,
    profiles_topic: String,
}

impl GlobalTables {
    pub fn new(registry: Arc<dyn SchemaRegistry>, rates_topic: &str, profiles_topic: &str) -> Self {
        GlobalTables {
            rates: AvroSerde::new(registry.clone()),
            profiles: AvroSerde::new(registry),
            rates_topic: rates_topic.to_string(),
            profiles_topic: profiles_topic.to_string(),
        }
    }

    fn raw(ctx: &ProcessorContext<'_>, store: &str, key: &str) -> Result<Option<Vec<u8>>, ProcessError> {
        Ok(ctx.global_get::<String, Vec<u8>>(store, &key.to_string())?)
    }

    /// Latest known USD value of one unit of `currency`. USD itself is 1 when the table has no
    /// USD entry. A record that does not decode or validate reads as unknown.
    pub fn usd_rate(&self, ctx: &ProcessorContext<'_>, currency: &str) -> Result<Option<Decimal>, ProcessError> {
        let rate = match Self::raw(ctx, stores::EXCHANGE_RATES, currency)? {
            Some(bytes) if !bytes.is_empty() => match self.rates.deserialize(&self.rates_topic, &bytes) {
                Ok(r) if r.usd_rate > Decimal::ZERO => Some(r.usd_rate),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(currency, error = %e, "undecodable exchange rate ignored");
                    None
                }
            },
            _ => None,
        };
        Ok(rate.or_else(|| (currency == "USD").then_some(Decimal::ONE)))
    }

    /// Latest known profile of `user_id`, if any decodes.
    pub fn profile(&self, ctx: &ProcessorContext<'_>, user_id: &str) -> Result<Option<UserProfile>, ProcessError> {
        Ok(match Self::raw(ctx, stores::USER_PROFILES, user_id)? {
            Some(bytes) if !bytes.is_empty() => match self.profiles.deserialize(&self.profiles_topic, &bytes) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(user_id, error = %e, "undecodable user profile ignored");
                    None
                }
            },
            _ => None,
        })
    }
}
