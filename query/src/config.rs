//! `[query]` in `finstream.toml`.

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;

/// The query service of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Serve the query API at all.
    pub enabled: bool,
    /// Address the API listens on. Default `127.0.0.1:8080`: loopback, so that a node without
    /// authorization configured is not reachable from elsewhere.
    pub listen: String,
    /// URL the other instances of the application use to forward queries here (Kafka
    /// Streams' `application.server`), e.g. `http://10.0.0.5:8080`. Empty: the top-level
    /// `application_server`, if any; without either, this instance does not join routing and
    /// answers only the partitions it holds.
    pub advertised_url: String,
    /// `[query.auth]`: bearer-token authorization.
    pub auth: AuthConfig,
}

pub fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

pub const fn default_enabled() -> bool {
    true
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            enabled: default_enabled(),
            listen: default_listen(),
            advertised_url: String::new(),
            auth: AuthConfig::default(),
        }
    }
}
