//! `finstream.toml`: the engine settings at top level, librdkafka settings under `[kafka]`,
//! then `FINSTREAM_*` environment overrides (`FINSTREAM_APPLICATION_ID`,
//! `FINSTREAM_NUM_STREAM_THREADS`, `FINSTREAM_KAFKA_SECURITY_PROTOCOL` → `kafka."security.protocol"`).

use std::path::Path;

use anyhow::{bail, Context};
use runtime::StreamsConfig;
use serde::Deserialize;

use processors::FinanceConfig;

use crate::registry::RegistryConfig;

/// The whole configuration file. Later sections (query service, registry) join here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AppConfig {
    #[serde(flatten)]
    pub streams: StreamsConfig,
    /// `[finance]`: thresholds, retention and topic names of the money processors.
    pub finance: FinanceConfig,
    /// `[schema_registry]`: an outside registry's URL, or the embedded one's listener and topic.
    pub schema_registry: RegistryConfig,
    /// `[query]`: the query API's listener, advertised URL and `[query.auth]`.
    pub query: query::QueryConfig,
    /// `[import]`: how `finstream import` maps a file's columns to transactions.
    pub import: connectors::import::ImportMapping,
}

/// Tables of the file besides the engine's own keys.
const SECTIONS: &[&str] = &["finance", "schema_registry", "query", "import"];

fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(b) = raw.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    toml::Value::String(raw.to_string())
}

/// `FINSTREAM_*` variables that are not configuration keys: the configuration file's path, the
/// crash tests' fail point, what the scripts and the test support read (`FINSTREAM_TEST_*`, the
/// venv and cache directories). Anything else unknown is refused, so a misspelt key is caught.
fn is_process_variable(name: &str) -> bool {
    name.starts_with("FINSTREAM_TEST_")
        || ["FINSTREAM_CONFIG", runtime::failpoint::FAIL_POINT_ENV, "FINSTREAM_VENV", "FINSTREAM_CACHE"].contains(&name)
}

/// Applies `FINSTREAM_*` variables onto a parsed TOML table.
pub fn apply_env(table: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) {
    for (name, value) in vars {
        let Some(key) = name.strip_prefix("FINSTREAM_") else { continue };
        let key = key.to_ascii_lowercase();
        if let Some(kafka_key) = key.strip_prefix("kafka_") {
            let kafka = table.entry("kafka").or_insert_with(|| toml::Value::Table(Default::default()));
            if let Some(t) = kafka.as_table_mut() {
                t.insert(kafka_key.replace('_', "."), toml::Value::String(value));
            }
        } else {
            // `__` separates nesting levels: FINSTREAM_QUERY__AUTH__HS256_SECRET is
            // `[query.auth] hs256_secret`, so secrets need not be written into the file.
            let path: Vec<&str> = key.split("__").collect();
            let (field, tables) = path.split_last().expect("split yields one part at least");
            let mut t = &mut *table;
            for name in tables {
                let entry = t.entry(name.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
                if !entry.is_table() {
                    // A scalar where the variable names a table: the variable wins.
                    *entry = toml::Value::Table(Default::default());
                }
                let toml::Value::Table(inner) = entry else { unreachable!("made a table above") };
                t = inner;
            }
            t.insert(field.to_string(), env_value(&value));
        }
    }
}

/// Reads the file (if given), applies the environment and rejects unknown keys, so a typo in a
/// setting is an error rather than a silently ignored line.
pub fn load(path: Option<&Path>) -> anyhow::Result<AppConfig> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        None => String::new(),
    };
    let mut table: toml::Table = toml::from_str(&text).context("parsing configuration")?;
    apply_env(&mut table, std::env::vars().filter(|(k, _)| k.starts_with("FINSTREAM_") && !is_process_variable(k)));
    // `flatten` hides unknown keys from serde, so the top level is checked against the
    // engine's own field names (nested tables deny unknown fields themselves).
    let known = serde_json::to_value(StreamsConfig::default()).context("listing configuration keys")?;
    let known: Vec<&String> = known.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    let unknown: Vec<&String> =
        table.keys().filter(|k| !SECTIONS.contains(&k.as_str()) && !known.contains(k)).collect();
    if !unknown.is_empty() {
        bail!("unknown configuration keys: {}", unknown.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "));
    }
    toml::Value::Table(table).try_into().context("invalid configuration")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let mut t: toml::Table = toml::from_str(
            "application_id = \"a\"\nnum_stream_threads = 2\n[kafka]\n\"security.protocol\" = \"SSL\"\n",
        )
        .unwrap();
        apply_env(
            &mut t,
            [
                ("FINSTREAM_APPLICATION_ID".to_string(), "b".to_string()),
                ("FINSTREAM_KAFKA_SASL_MECHANISM".to_string(), "PLAIN".to_string()),
                ("FINSTREAM_FINANCE__LINEAGE_LEN".to_string(), "7".to_string()),
                ("FINSTREAM_QUERY__AUTH__HS256_SECRET".to_string(), "s3cret".to_string()),
                ("FINSTREAM_QUERY__AUTH__MODE".to_string(), "jwt".to_string()),
            ]
            .into_iter(),
        );
        let c: AppConfig = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(c.streams.application_id, "b");
        assert_eq!(c.streams.num_stream_threads, 2);
        assert_eq!(c.streams.kafka.get("security.protocol").map(String::as_str), Some("SSL"));
        assert_eq!(c.streams.kafka.get("sasl.mechanism").map(String::as_str), Some("PLAIN"));
        assert_eq!(c.finance.lineage_len, 7);
        assert_eq!(c.query.auth.hs256_secret, "s3cret");
        assert_eq!(c.query.auth.mode, query::AuthMode::Jwt);
    }

    #[test]
    fn process_variables_are_not_configuration() {
        for name in ["FINSTREAM_TEST_BOOTSTRAP", "FINSTREAM_TEST_CHILD", "FINSTREAM_FAIL_POINT", "FINSTREAM_CONFIG"] {
            assert!(is_process_variable(name), "{name}");
        }
        assert!(!is_process_variable("FINSTREAM_APPLICATION_ID"));
        assert!(!is_process_variable("FINSTREAM_APLICATION_ID"), "a typo is still refused");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        std::fs::write(&p, "aplication_id = \"typo\"\n").unwrap();
        let err = load(Some(&p)).unwrap_err().to_string();
        assert!(err.contains("aplication_id"), "{err}");
    }
}
