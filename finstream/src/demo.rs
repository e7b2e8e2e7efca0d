//! `finstream demo` as a library: the embedded cluster, the embedded registry, the finance
//! topology and the generator's traffic, in one process. `main.rs` prints the addresses and waits;
//! tests start the same pipeline and look at its output topics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use connectors::{ConnectorError, EventProducer, GenerateOptions, GenerateSummary, GeneratorConfig, KafkaTarget};
use runtime::KafkaStreams;
use schemas::registry::{HttpRegistry, SchemaRegistry};
use streams::StreamsMetrics;

use crate::app::{self, EmbeddedCluster};
use crate::config::AppConfig;
use crate::registry::{self, Registry};
use crate::serve::{self, Example, QueryServer};

/// Partitions of every topic on the embedded cluster.
pub const DEMO_PARTITIONS: i32 = 4;

/// Spending windows' grace in the demo: 31 days of event time. The generator plays a month of
/// life in seconds, so the input partitions' tasks drift apart by hours or days of event time
/// and records reaching the user-keyed windows through the repartition topic would be late under
/// the production default of one hour.
pub const DEMO_GRACE_MS: i64 = 31 * 24 * 3_600_000;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Generator events per second.
    pub rate: f64,
    pub users: usize,
    pub seed: u64,
    /// Produce synthetic traffic (`--no-generator` turns it off).
    pub generator: bool,
    /// Mix labelled fraud scenarios into the traffic, so the dashboard has fraud decisions to show.
    pub fraud: bool,
    /// Port of the embedded schema registry (0: any free port).
    pub registry_port: u16,
    /// Local state; default a fresh directory under the system's temp dir, removed on close.
    pub state_dir: Option<PathBuf>,
    /// Port of the query API and dashboard on 127.0.0.1 (0: any free port; `None`: not served).
    pub query_port: Option<u16>,
    /// A Kafka cluster to run on instead of the embedded one (then with exactly-once).
    pub bootstrap_servers: Option<String>,
}

impl DemoOptions {
    /// The generator's configuration for these options (tests regenerate the same events).
    pub fn generator_config(&self) -> GeneratorConfig {
        GeneratorConfig { seed: self.seed, users: self.users, fraud: self.fraud, ..GeneratorConfig::default() }
    }
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            rate: 50.0,
            users: 200,
            seed: 42,
            generator: true,
            fraud: true,
            registry_port: 8081,
            state_dir: None,
            query_port: Some(8080),
            bootstrap_servers: None,
        }
    }
}

/// Registers every topic's contract schema under `<topic>-value`, so an outside consumer or
/// producer finds the schemas before the first record is written.
pub fn register_contract(config: &AppConfig, registry: &dyn SchemaRegistry) -> anyhow::Result<()> {
    for (topic, record) in config.finance.topics.with_value_records() {
        let schema = schemas::contract::contract(record).with_context(|| format!("{record} is not in the contract"))?;
        registry
            .register(&schemas::registry::subject_for(topic), schema.json)
            .with_context(|| format!("registering the schema of {topic}"))?;
    }
    Ok(())
}

/// The generator's thread, producing at the demo's rate until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<GenerateSummary, ConnectorError>>,
}

/// A running demo. Fields are public so other services (the query API) can attach to it.
pub struct Demo {
    /// The embedded cluster, unless the demo runs on a given one.
    pub mock: Option<EmbeddedCluster>,
    bootstrap: String,
    pub registry: Registry,
    pub config: AppConfig,
    pub app: KafkaStreams,
    pub metrics: StreamsMetrics,
    query: Option<QueryServer>,
    traffic: Option<Traffic>,
    /// What the generator plays (its first round), when it runs.
    generated: Option<GeneratorConfig>,
    state: PathBuf,
}

impl Demo {
    /// Starts the cluster, the registry, the topics, the topology and (unless disabled) the
    /// generator.
    pub fn start(opts: &DemoOptions) -> anyhow::Result<Demo> {
        let mock = match opts.bootstrap_servers {
            Some(_) => None,
            None => Some(app::embedded_cluster()?),
        };
        let bootstrap = match (&mock, &opts.bootstrap_servers) {
            (Some(m), _) => m.bootstrap_servers(),
            (None, Some(bs)) => bs.clone(),
            (None, None) => unreachable!("one of the two is set"),
        };
        let state = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("finstream-demo-{}", std::process::id())));
        let mut config = AppConfig::default();
        config.streams.application_id = "finstream-demo".into();
        config.streams.bootstrap_servers = bootstrap.clone();
        config.streams.state_dir = state.clone();
        // The embedded cluster does not isolate transactions (see docs/exactly-once.md): on it the
        // demo runs at-least-once; on a real cluster exactly-once, the default.
        if mock.is_some() {
            config.streams.processing_guarantee = runtime::ProcessingGuarantee::AtLeastOnce;
            config.streams.commit_interval_ms = Some(runtime::config::default_eos_commit_interval_ms());
        }
        config.finance.analytics.grace_ms = DEMO_GRACE_MS;
        config.schema_registry.listen = format!("127.0.0.1:{}", opts.registry_port);
        if let Some(mock) = &mock {
            mock.create_topic(&config.schema_registry.topic, 1, 1)?;
        }
        let registry = registry::start(&config.schema_registry, &config.streams)?;
        register_contract(&config, &*registry.client)?;
        let metrics = StreamsMetrics::default();
        let mut app = app::finance_streams(&config, registry.client.clone(), metrics.clone())?;
        let plan = runtime::topics::plan(&config.streams, app.topology());
        match &mock {
            Some(mock) => app::create_topics(mock, &plan, DEMO_PARTITIONS)?,
            None => runtime::topics::create_planned(&config.streams, &plan, DEMO_PARTITIONS)
                .context("creating the demo's topics")?,
        }
        app.start()?;
        let query = match opts.query_port {
            Some(port) => {
                config.query.listen = format!("127.0.0.1:{port}");
                serve::start_for(&config, &app, registry.client.clone(), metrics.clone())?
            }
            None => None,
        };
        let generated = opts.generator.then(|| opts.generator_config());
        let mut demo = Demo { mock, bootstrap, registry, config, app, metrics, query, traffic: None, generated, state };
        if opts.generator {
            demo.traffic = Some(demo.start_traffic(opts)?);
        }
        Ok(demo)
    }

    /// Produces like any outside client would: over the Kafka protocol to the bootstrap address,
    /// registering schemas over HTTP at the registry URL the demo prints.
    fn start_traffic(&self, opts: &DemoOptions) -> anyhow::Result<Traffic> {
        let registry: Arc<dyn SchemaRegistry> = match &self.registry.url {
            Some(url) => Arc::new(HttpRegistry::new(url)),
            None => self.registry.client.clone(),
        };
        let mut producer = EventProducer::new(&KafkaTarget::new(self.bootstrap()), registry)
            .context("creating the generator's producer")?;
        let gen_opts = GenerateOptions {
            generator: opts.generator_config(),
            rate: Some(opts.rate),
            count: None,
            endless: true,
            labels_path: None,
            progress: false,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("demo-generator".into())
            .spawn(move || connectors::generate(&gen_opts, &mut producer, &s))
            .context("starting the generator thread")?;
        Ok(Traffic { stop, thread })
    }

    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// The processing guarantee the demo runs with (at-least-once on the embedded cluster).
    pub fn guarantee(&self) -> runtime::ProcessingGuarantee {
        self.config.streams.processing_guarantee
    }

    /// The embedded registry's URL.
    pub fn registry_url(&self) -> &str {
        self.registry.url.as_deref().unwrap_or_default()
    }

    /// Ids and dates from the generator's first events (placeholders without a generator), for
    /// the example requests the demo prints.
    pub fn example(&self) -> Example {
        let Some(cfg) = &self.generated else { return Example::default() };
        // The first card payment's account: an everyday account, busier than a savings one.
        let first = connectors::Generator::new(cfg.clone())
            .filter_map(|e| e.as_transaction().cloned())
            .find(|t| t.kind == schemas::TransactionKind::Payment);
        let Some(t) = first else { return Example::default() };
        let day = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|d| d.date_naive());
        let (Some(start), Some(end)) = (day(cfg.start_ms), day(cfg.start_ms + i64::from(cfg.days) * 86_400_000)) else {
            return Example::default();
        };
        Example {
            account_id: t.account_id,
            user_id: t.user_id,
            from: start.to_string(),
            to: end.to_string(),
            month: start.format("%Y-%m").to_string(),
        }
    }

    /// Where the query API and the dashboard answer, e.g. `http://127.0.0.1:8080`.
    pub fn query_url(&self) -> Option<&str> {
        self.query.as_ref().map(|q| q.url.as_str())
    }

    pub fn state_dir(&self) -> &std::path::Path {
        &self.state
    }

    /// Why the demo cannot go on: a failed stream thread, or a generator that stopped by itself.
    pub fn error(&self) -> Option<String> {
        if let Some(e) = self.app.error() {
            return Some(format!("stream thread failed: {e}"));
        }
        match &self.traffic {
            Some(t) if t.thread.is_finished() => Some("the generator stopped".into()),
            _ => None,
        }
    }

    /// Stops the generator (flushing what it sent), closes the topology and removes the state.
    pub fn close(mut self) -> anyhow::Result<Option<GenerateSummary>> {
        drop(self.query.take());
        let mut summary = None;
        if let Some(t) = self.traffic.take() {
            t.stop.store(true, Ordering::SeqCst);
            let result = t.thread.join().map_err(|_| anyhow::anyhow!("the generator thread panicked"))?;
            summary = Some(result.context("generator")?);
        }
        self.app.close()?;
        let _ = std::fs::remove_dir_all(&self.state);
        Ok(summary)
    }
}
