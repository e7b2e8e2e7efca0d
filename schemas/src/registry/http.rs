//! [`HttpRegistry`]: a thin blocking client of the Confluent Schema Registry REST API, for the
//! embedded registry or any Confluent-compatible one. Ids and schemas are cached: they never change
//! once assigned, so each is fetched at most once per process.
//!
//! TLS is not compiled in (plain `http://` only), which keeps the build free of a crypto stack;
//! enable a ureq TLS feature if a remote registry needs `https://`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use serde::Deserialize;

use super::{RegisteredSchema, RegistryError, SchemaRegistry};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A Confluent REST client with id caches.
pub struct HttpRegistry {
    base_url: String,
    agent: ureq::Agent,
    /// (subject, schema text) → id.
    ids: RwLock<HashMap<(String, String), u32>>,
    /// id → schema text.
    schemas: RwLock<HashMap<u32, String>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

/// Percent-encodes a subject for use as one path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl HttpRegistry {
    /// A client of the registry at `base_url` (e.g. `http://127.0.0.1:8081`), with a 10 s timeout.
    pub fn new(base_url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        HttpRegistry {
            base_url: base_url.trim_end_matches('/').to_string(),
            agent,
            ids: RwLock::default(),
            schemas: RwLock::default(),
        }
    }

    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<T, RegistryError> {
        let url = format!("{}{path}", self.base_url);
        let transport = |e: ureq::Error| RegistryError::Transport(format!("{method} {url}: {e}"));
        let mut response = match body {
            Some(b) => {
                self.agent.post(&url).header("Content-Type", CONTENT_TYPE).header("Accept", CONTENT_TYPE).send(b)
            }
            None if method == "DELETE" => self.agent.delete(&url).header("Accept", CONTENT_TYPE).call(),
            None => self.agent.get(&url).header("Accept", CONTENT_TYPE).call(),
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(transport)?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(e) => RegistryError::api(status, e.error_code, e.message),
                Err(_) => RegistryError::api(status, u32::from(status), text),
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| RegistryError::Transport(format!("{method} {url}: unexpected response {text:?}: {e}")))
    }

    /// Live versions of a subject.
    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        self.call("GET", &format!("/subjects/{}/versions", segment(subject)), None)
    }

    /// All subjects.
    pub fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        self.call("GET", "/subjects", None)
    }

    /// Whether `schema` is compatible with the subject's latest version under its level.
    pub fn is_compatible(&self, subject: &str, schema: &str) -> Result<bool, RegistryError> {
        #[derive(Deserialize)]
        struct Answer {
            is_compatible: bool,
        }
        let body = serde_json::json!({ "schema": schema }).to_string();
        let path = format!("/compatibility/subjects/{}/versions/latest", segment(subject));
        self.call::<Answer>("POST", &path, Some(body)).map(|a| a.is_compatible)
    }

    /// Soft-deletes a subject; returns the deleted versions.
    pub fn delete_subject(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        self.call("DELETE", &format!("/subjects/{}", segment(subject)), None)
    }
}

impl SchemaRegistry for HttpRegistry {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.read().expect("lock").get(&key) {
            return Ok(*id);
        }
        #[derive(Deserialize)]
        struct Id {
            id: u32,
        }
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" }).to_string();
        let Id { id } = self.call("POST", &format!("/subjects/{}/versions", segment(subject)), Some(body))?;
        self.ids.write().expect("lock").insert(key, id);
        self.schemas.write().expect("lock").entry(id).or_insert_with(|| schema.to_string());
        Ok(id)
    }

    fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        if let Some(s) = self.schemas.read().expect("lock").get(&id) {
            return Ok(s.clone());
        }
        #[derive(Deserialize)]
        struct Body {
            schema: String,
        }
        let Body { schema } = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        self.schemas.write().expect("lock").insert(id, schema.clone());
        Ok(schema)
    }

    fn latest(&self, subject: &str) -> Result<RegisteredSchema, RegistryError> {
        self.call("GET", &format!("/subjects/{}/versions/latest", segment(subject)), None)
    }
}
