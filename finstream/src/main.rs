//! The `finstream` command line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use finstream::{app, config, registry, serve};
use runtime::KafkaStreams;
use streams::StreamsMetrics;

#[derive(Parser)]
#[command(name = "finstream", version, about = "Kafka Streams for Rust, proven on money")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Partitions of every topic on the embedded cluster.
const DEMO_PARTITIONS: i32 = 4;

#[derive(clap::Args)]
struct DemoArgs {
    /// Events per second from the generator.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// Number of synthetic users.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Generator seed: the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run the pipeline without synthetic traffic, for another producer to feed it.
    #[arg(long)]
    no_generator: bool,
    /// Port of the embedded schema registry (0: any free port).
    #[arg(long, default_value_t = 8081)]
    registry_port: u16,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Port of the query API on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    query_port: u16,
}

#[derive(Subcommand)]
enum Command {
    /// Runs everything in one process: an embedded Kafka-protocol cluster, the topology and a
    /// data generator. Ctrl-C stops it.
    Demo(DemoArgs),
    /// Runs the topology against the Kafka cluster in the configuration.
    Run {
        #[arg(long, env = "FINSTREAM_CONFIG")]
        config: Option<PathBuf>,
        /// Allow the query API without authorization on a non-loopback listener.
        #[arg(long)]
        insecure: bool,
    },
    /// Deletes this application's local state (like kafka-streams-application-reset's
    /// local part); internal topics are left to the cluster's admin tools.
    Reset {
        #[arg(long, env = "FINSTREAM_CONFIG")]
        config: Option<PathBuf>,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,librdkafka=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Demo(args) => demo(args),
        Command::Run { config, insecure } => run(config, insecure),
        Command::Reset { config, yes } => reset(config, yes),
    }
}

fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)).context("installing Ctrl-C handler")?;
    Ok(stop)
}

fn run(path: Option<PathBuf>, insecure: bool) -> anyhow::Result<()> {
    let mut config = config::load(path.as_deref())?;
    serve::check_exposure(&config.query, insecure)?;
    serve::apply_advertised_url(&mut config);
    let stop = stop_flag()?;
    let registry = registry::start(&config.schema_registry, &config.streams)?;
    let metrics = StreamsMetrics::default();
    let mut app = app::finance_streams(&config, registry.client.clone(), metrics.clone())?;
    app.start()?;
    let _query = serve::start_for(&config.query, &app, registry.client.clone(), metrics)?;
    tracing::info!("finstream running; Ctrl-C to stop");
    wait(&app, &stop, None)?;
    app.close()?;
    Ok(())
}

/// Blocks until Ctrl-C, the optional deadline, or a failed stream thread.
fn wait(app: &KafkaStreams, stop: &AtomicBool, deadline: Option<Instant>) -> anyhow::Result<()> {
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(e) = app.error() {
            anyhow::bail!("stream thread failed: {e}");
        }
    }
    Ok(())
}

fn reset(path: Option<PathBuf>, yes: bool) -> anyhow::Result<()> {
    let config = config::load(path.as_deref())?;
    let dir = config.streams.app_state_dir();
    if !yes {
        println!("would delete {} (pass --yes to delete)", dir.display());
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))?;
    }
    println!("deleted {}", dir.display());
    Ok(())
}

fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let mock = app::embedded_cluster()?;
    let bootstrap = mock.bootstrap_servers();
    let state = std::env::temp_dir().join(format!("finstream-demo-{}", std::process::id()));
    let mut config = config::AppConfig::default();
    config.streams.application_id = "finstream-demo".into();
    config.streams.bootstrap_servers = bootstrap.clone();
    config.streams.state_dir = state.clone();
    config.schema_registry.listen = format!("127.0.0.1:{}", args.registry_port);
    mock.create_topic(&config.schema_registry.topic, 1, 1)?;
    let registry = registry::start(&config.schema_registry, &config.streams)?;
    let metrics = StreamsMetrics::default();
    let mut app = app::finance_streams(&config, registry.client.clone(), metrics.clone())?;
    app::create_topics(&mock, &runtime::topics::plan(&config.streams, app.topology()), DEMO_PARTITIONS)?;
    app.start()?;
    config.query.listen = format!("127.0.0.1:{}", args.query_port);
    let query = serve::start_for(&config.query, &app, registry.client.clone(), metrics.clone())?;
    println!("kafka bootstrap: {bootstrap}");
    println!("schema registry: {}", registry.url.as_deref().unwrap_or_default());
    println!("state dir: {}", state.display());
    println!(
        "example: kcat -b {bootstrap} -C -t account-balances -o beginning -s value=avro -r {}",
        registry.url.as_deref().unwrap_or_default()
    );
    if let Some(q) = &query {
        println!("{}", serve::demo_help(&q.url));
    }
    let deadline = args.duration_secs.map(|d| Instant::now() + Duration::from_secs(d));
    let result = wait(&app, &stop, deadline);
    println!("shutting down");
    drop(query);
    app.close()?;
    let _ = std::fs::remove_dir_all(&state);
    result
}
