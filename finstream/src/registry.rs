//! Which schema registry the application uses: a Confluent-compatible one at a URL, or finstream's
//! embedded registry, persisted in a compacted topic and served over HTTP on its own listener
//! (Confluent's port 8081 by default) so outside producers and consumers can use it too.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use runtime::{KafkaSchemaStore, StreamsConfig};
use schemas::registry::{server, EmbeddedRegistry, HttpRegistry, SchemaRegistry};
use serde::{Deserialize, Serialize};

/// `[schema_registry]` in `finstream.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// A Confluent-compatible registry to use instead of the embedded one (e.g.
    /// `http://schema-registry:8081`). Empty: embedded.
    pub url: String,
    /// Address the embedded registry listens on. Default `127.0.0.1:8081`: loopback, because the
    /// registry accepts registrations without authentication.
    pub listen: String,
    /// Compacted topic that persists the embedded registry's schemas, as Confluent's `_schemas`.
    pub topic: String,
    /// HTTP Basic user for a registry at `url` that requires credentials (Confluent's
    /// `basic.auth.user.info`); empty: none.
    pub username: String,
    /// Its password; better given as `FINSTREAM_SCHEMA_REGISTRY__PASSWORD` than in the file.
    pub password: String,
}

fn default_listen() -> String {
    format!("127.0.0.1:{}", server::DEFAULT_PORT)
}

fn default_topic() -> String {
    "_schemas".into()
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: String::new(),
            listen: default_listen(),
            topic: default_topic(),
            username: String::new(),
            password: String::new(),
        }
    }
}

/// A client of the registry at `config.url`, with its credentials if any.
pub fn http_client(config: &RegistryConfig) -> HttpRegistry {
    let client = HttpRegistry::new(&config.url);
    if config.username.is_empty() {
        client
    } else {
        client.with_basic_auth(&config.username, &config.password)
    }
}

/// The registry in use, and the embedded server while it runs (dropping it stops the server).
pub struct Registry {
    pub client: Arc<dyn SchemaRegistry>,
    /// Where the embedded registry answers, if it is the one in use.
    pub url: Option<String>,
    _server: Option<tokio::runtime::Runtime>,
}

/// Connects to the configured registry, or opens the embedded one from its topic on the cluster
/// in `streams` and starts serving it.
pub fn start(config: &RegistryConfig, streams: &StreamsConfig) -> anyhow::Result<Registry> {
    if !config.url.is_empty() {
        return Ok(Registry { client: Arc::new(http_client(config)), url: None, _server: None });
    }
    let store = KafkaSchemaStore::open(streams, &config.topic).context("opening the registry's topic")?;
    let registry = Arc::new(
        EmbeddedRegistry::open(Arc::new(store)).map_err(|e| anyhow::anyhow!("replaying {}: {e}", config.topic))?,
    );
    let addr: SocketAddr =
        config.listen.parse().with_context(|| format!("schema_registry.listen {:?}", config.listen))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("schema-registry")
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("schema registry cannot listen on {addr}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    rt.spawn(server::serve(listener, registry.clone()));
    tracing::info!(%url, topic = %config.topic, "embedded schema registry listening");
    Ok(Registry { client: registry, url: Some(url), _server: Some(rt) })
}
