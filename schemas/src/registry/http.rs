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
    /// `Authorization` header value (HTTP Basic), for registries that require credentials
    /// (Confluent's `basic.auth.user.info`).
    authorization: Option<String>,
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
            authorization: None,
            ids: RwLock::default(),
            schemas: RwLock::default(),
        }
    }

    /// Sends HTTP Basic credentials with every request (use `https://` URLs with a TLS-enabled
    /// build when the network is not trusted: Basic credentials are only encoded, not encrypted).
    pub fn with_basic_auth(mut self, username: &str, password: &str) -> Self {
        self.authorization = Some(format!("Basic {}", base64(format!("{username}:{password}").as_bytes())));
        self
    }

    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<T, RegistryError> {
        let url = format!("{}{path}", self.base_url);
        let transport = |e: ureq::Error| RegistryError::Transport(format!("{method} {url}: {e}"));
        let auth = self.authorization.as_deref().unwrap_or_default();
        let mut response = match body {
            Some(b) => {
                let req = self.agent.post(&url).header("Content-Type", CONTENT_TYPE).header("Accept", CONTENT_TYPE);
                if auth.is_empty() {
                    req.send(b)
                } else {
                    req.header("Authorization", auth).send(b)
                }
            }
            None if method == "DELETE" => {
                let req = self.agent.delete(&url).header("Accept", CONTENT_TYPE);
                if auth.is_empty() {
                    req.call()
                } else {
                    req.header("Authorization", auth).call()
                }
            }
            None => {
                let req = self.agent.get(&url).header("Accept", CONTENT_TYPE);
                if auth.is_empty() {
                    req.call()
                } else {
                    req.header("Authorization", auth).call()
                }
            }
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

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn basic_credentials_are_sent_with_requests() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let body = "[\"a-value\"]";
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            s.write_all(reply.as_bytes()).unwrap();
            String::from_utf8_lossy(&buf[..n]).to_string()
        });
        let reg = HttpRegistry::new(&url).with_basic_auth("svc", "s3cret");
        assert_eq!(reg.subjects().unwrap(), vec!["a-value".to_string()]);
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(request.contains("authorization: basic c3zjonmzy3jlda=="), "{request}");
    }
}
