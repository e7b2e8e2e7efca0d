//! The embedded schema registry answering over HTTP like Confluent's, for tests whose clients
//! (the generator, the importer, Python's confluent-kafka) talk to a registry URL.

use std::sync::Arc;

use schemas::registry::{server, EmbeddedRegistry};

/// An in-memory embedded registry served on a loopback port; serves as long as this lives.
pub struct Registry {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The registry itself, for direct lookups in assertions.
    pub registry: Arc<EmbeddedRegistry>,
    _rt: tokio::runtime::Runtime,
}

/// Starts an in-memory registry on a free port.
pub fn registry() -> Registry {
    serve(Arc::new(EmbeddedRegistry::in_memory()))
}

/// Serves `registry` (e.g. one persisted in a Kafka topic) over HTTP on a free port.
pub fn serve(registry: Arc<EmbeddedRegistry>) -> Registry {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("loopback port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    rt.spawn(server::serve(listener, registry.clone()));
    Registry { url, registry, _rt: rt }
}
