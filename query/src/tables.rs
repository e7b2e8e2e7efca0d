//! The two global tables the query service reads: user profiles (timezone, base currency) and
//! exchange rates. Their stores hold the topics' raw Avro bytes, decoded here with the schema
//! registry like the processors do (`processors::tables`).

use std::sync::Arc;

use chrono_tz::Tz;
use processors::stores;
use rust_decimal::Decimal;
use schemas::registry::SchemaRegistry;
use schemas::{AvroSerde, ExchangeRate, UserProfile};
use streams::Serde;

use crate::error::ApiError;
use crate::reader::StateReader;

pub struct Tables {
    profiles: AvroSerde<UserProfile>,
    rates: AvroSerde<ExchangeRate>,
}

impl Tables {
    pub fn new(registry: Arc<dyn SchemaRegistry>) -> Self {
        Tables { profiles: AvroSerde::new(registry.clone()), rates: AvroSerde::new(registry) }
    }

    /// The user's profile; an undecodable entry reads as absent, as in the processors.
    pub fn profile(&self, reader: &dyn StateReader, user_id: &str) -> Result<Option<UserProfile>, ApiError> {
        let Some(bytes) = reader.global_get(stores::USER_PROFILES, user_id.as_bytes())? else { return Ok(None) };
        if bytes.is_empty() {
            return Ok(None);
        }
        match self.profiles.deserialize(stores::USER_PROFILES, &bytes) {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                tracing::warn!(error = %e, "undecodable user profile ignored");
                Ok(None)
            }
        }
    }

    /// The user's timezone (UTC when unknown), with its name.
    pub fn timezone(&self, reader: &dyn StateReader, user_id: &str) -> Result<Tz, ApiError> {
        Ok(self.profile(reader, user_id)?.map(|p| processors::periods::parse_tz(&p.timezone)).unwrap_or(Tz::UTC))
    }

    /// Latest USD value of one unit of `currency` (USD is 1 when absent).
    pub fn usd_rate(&self, reader: &dyn StateReader, currency: &str) -> Result<Option<Decimal>, ApiError> {
        let rate = match reader.global_get(stores::EXCHANGE_RATES, currency.as_bytes())? {
            Some(bytes) if !bytes.is_empty() => match self.rates.deserialize(stores::EXCHANGE_RATES, &bytes) {
                Ok(r) if r.usd_rate > Decimal::ZERO => Some(r.usd_rate),
                _ => None,
            },
            _ => None,
        };
        Ok(rate.or_else(|| (currency == "USD").then_some(Decimal::ONE)))
    }
}
