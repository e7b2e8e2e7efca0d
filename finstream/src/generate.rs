//! `finstream generate`: synthetic finance traffic for any Kafka cluster (the generator and the
//! producer live in `connectors`; this is the command line around them).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use connectors::{topics, EventProducer, GenerateOptions, GeneratorConfig, KafkaTarget};
use schemas::registry::SchemaRegistry;

use crate::config;

/// Where records go: the cluster, its librdkafka settings and the schema registry. Read from
/// `finstream.toml` (bootstrap_servers, `[kafka]`, `schema_registry.url`) and overridden by flags.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// finstream.toml to take the cluster, `[kafka]` settings and registry URL from.
    #[arg(long, env = "FINSTREAM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers (overrides the configuration).
    #[arg(long, short = 'b')]
    pub bootstrap_servers: Option<String>,
    /// Confluent-compatible schema registry URL (overrides `schema_registry.url`).
    #[arg(long)]
    pub registry_url: Option<String>,
    /// A librdkafka setting, `key=value` (repeatable; e.g. `-X security.protocol=SASL_SSL`).
    #[arg(short = 'X', long = "kafka", value_parser = parse_kv)]
    pub kafka: Vec<(String, String)>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

impl TargetArgs {
    /// The configuration, the cluster to produce to and a client of the registry.
    pub fn resolve(&self) -> anyhow::Result<(config::AppConfig, KafkaTarget, Arc<dyn SchemaRegistry>)> {
        let cfg = config::load(self.config.as_deref())?;
        let mut kafka: BTreeMap<String, String> = cfg.streams.kafka.clone();
        kafka.extend(self.kafka.iter().cloned());
        let target = KafkaTarget {
            bootstrap_servers: self.bootstrap_servers.clone().unwrap_or_else(|| cfg.streams.bootstrap_servers.clone()),
            kafka,
        };
        let mut registry = cfg.schema_registry.clone();
        if let Some(url) = &self.registry_url {
            registry.url = url.clone();
        }
        anyhow::ensure!(
            !registry.url.is_empty(),
            "no schema registry: pass --registry-url (e.g. the URL `finstream demo` prints) or set schema_registry.url"
        );
        let client = crate::registry::http_client(&registry);
        Ok((cfg, target, Arc::new(client)))
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Same seed, same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of synthetic users (at most 1000 keeps every timestamp unique).
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Days of daily life in one data set.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// First day of event time, YYYY-MM-DD (default 2026-03-02).
    #[arg(long)]
    pub start: Option<String>,
    /// Events per second (default: as fast as the cluster takes them).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many events, continuing into fresh rounds of users if the data set is
    /// smaller (default: one data set).
    #[arg(long)]
    pub count: Option<u64>,
    /// Keep producing fresh rounds until Ctrl-C.
    #[arg(long, conflicts_with = "count")]
    pub forever: bool,
    /// Mix in labelled fraud scenarios.
    #[arg(long)]
    pub fraud: bool,
    /// JSON Lines file for the fraud labels (never written into the events).
    #[arg(long, requires = "fraud")]
    pub labels: Option<PathBuf>,
    /// Share of transactions delivered twice.
    #[arg(long, default_value_t = 0.01)]
    pub duplicate_ratio: f64,
    /// Share of transactions delivered late.
    #[arg(long, default_value_t = 0.01)]
    pub late_ratio: f64,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

impl GenerateArgs {
    pub fn options(&self) -> anyhow::Result<GenerateOptions> {
        anyhow::ensure!(self.rate.is_none_or(|r| r > 0.0 && r.is_finite()), "--rate must be a positive number");
        for (name, v) in [("--duplicate-ratio", self.duplicate_ratio), ("--late-ratio", self.late_ratio)] {
            anyhow::ensure!((0.0..=1.0).contains(&v), "{name} must be between 0 and 1");
        }
        let mut generator = GeneratorConfig {
            seed: self.seed,
            users: self.users,
            days: self.days,
            fraud: self.fraud,
            duplicate_ratio: self.duplicate_ratio,
            late_ratio: self.late_ratio,
            ..GeneratorConfig::default()
        };
        if let Some(d) = &self.start {
            generator.start_ms = connectors::start_of_day(d)?;
        }
        Ok(GenerateOptions {
            generator,
            rate: self.rate,
            count: self.count,
            endless: self.forever,
            labels_path: self.labels.clone(),
            progress: !self.no_progress && std::io::stderr().is_terminal(),
        })
    }
}

/// Produces until done or `stop`, then prints what went where.
pub fn run(args: &GenerateArgs, stop: &AtomicBool) -> anyhow::Result<()> {
    let opts = args.options()?;
    let (cfg, target, registry) = args.target.resolve()?;
    let mut producer = EventProducer::new(&target, registry).context("creating the producer")?;
    let names = &cfg.finance.topics;
    for (topic, to) in [
        (topics::TRANSACTIONS, &names.transactions),
        (topics::ACCOUNTS, &names.accounts),
        (topics::BUDGETS, &names.budgets),
        (topics::GOALS, &names.goals),
        (topics::PROFILES, &names.user_profiles),
        (topics::RATES, &names.exchange_rates),
    ] {
        producer.rename_topic(topic, to);
    }
    let summary = connectors::generate(&opts, &mut producer, stop)?;
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "produced {} events to {} in {secs:.1} s ({:.0}/s)",
        summary.events,
        target.bootstrap_servers,
        summary.events as f64 / secs.max(1e-9)
    );
    for (topic, n) in &summary.by_topic {
        println!("  {topic}: {n}");
    }
    if let Some(p) = &opts.labels_path {
        println!("{} fraud labels written to {}", summary.labels, p.display());
    }
    Ok(())
}
