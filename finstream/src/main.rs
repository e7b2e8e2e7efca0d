//! The `finstream` command line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use finstream::{app, config, demo, registry, serve};
use runtime::KafkaStreams;
use streams::StreamsMetrics;

#[derive(Parser)]
#[command(name = "finstream", version, about = "Kafka Streams for Rust, proven on money")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
    /// Leave the labelled fraud scenarios out of the synthetic traffic.
    #[arg(long)]
    no_fraud: bool,
    /// Port of the embedded schema registry (0: any free port).
    #[arg(long, default_value_t = 8081)]
    registry_port: u16,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Port of the query API on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    query_port: u16,
    /// Run on this Kafka cluster (e.g. one started by `scripts/kafka.sh start`) with exactly-once,
    /// instead of the embedded cluster (at-least-once).
    #[arg(long, short = 'b')]
    bootstrap_servers: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs everything in one process: an embedded Kafka-protocol cluster, the topology and a
    /// data generator. Ctrl-C stops it.
    Demo(DemoArgs),
    /// Produces synthetic finance events (Avro, Confluent wire format) to any Kafka cluster.
    Generate(finstream::generate::GenerateArgs),
    /// Loads a CSV or JSON Lines file of transactions into `transactions`, rejecting invalid lines
    /// to a report.
    Import(finstream::import::ImportArgs),
    /// Runs the topology against the Kafka cluster in the configuration.
    Run {
        #[arg(long, env = "FINSTREAM_CONFIG")]
        config: Option<PathBuf>,
        /// Allow the query API without authorization on a non-loopback listener.
        #[arg(long)]
        insecure: bool,
    },
    /// Prints the topology the configuration builds (sub-topologies with their sources,
    /// processors, stores and sinks; global stores; repartition and changelog topics), as Kafka
    /// Streams' `Topology::describe` does. Needs no cluster.
    Topology {
        #[arg(long, env = "FINSTREAM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Like kafka-streams-application-reset: deletes this application's local state, its
    /// internal topics and its committed offsets (with --yes; without, says what it would do).
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
        Command::Generate(args) => finstream::generate::run(&args, &*stop_flag()?),
        Command::Import(args) => finstream::import::run(&args),
        Command::Topology { config } => {
            let config = config::load(config.as_deref())?;
            print!("{}", app::built_topology(&config)?.describe());
            Ok(())
        }
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
    let _query = serve::start_for(&config, &app, registry.client.clone(), metrics)?;
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
    let plan = finstream::reset::plan(&config)?;
    let verb = if yes { "deleting" } else { "would delete" };
    println!("{verb} local state {}", plan.state_dir.display());
    for t in &plan.internal_topics {
        println!("{verb} internal topic {t}");
    }
    println!("{verb} the committed offsets of group {} (inputs: {})", plan.group, plan.input_topics.join(", "));
    if !yes {
        println!("nothing deleted: stop every instance, then pass --yes");
        return Ok(());
    }
    let report = finstream::reset::execute(&config, &plan)?;
    for (t, e) in &report.topics_failed {
        println!("could not delete {t}: {e}");
    }
    println!(
        "deleted {} internal topics{}; offsets: {:?}",
        report.topics_deleted.len(),
        if report.state_deleted { " and the local state" } else { "" },
        report.offsets
    );
    anyhow::ensure!(report.topics_failed.is_empty(), "some internal topics were not deleted");
    Ok(())
}

fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let opts = demo::DemoOptions {
        rate: args.rate as f64,
        users: args.users,
        seed: args.seed,
        generator: !args.no_generator,
        fraud: !args.no_fraud,
        registry_port: args.registry_port,
        state_dir: None,
        query_port: Some(args.query_port),
        bootstrap_servers: args.bootstrap_servers.clone(),
    };
    let demo = demo::Demo::start(&opts)?;
    let bootstrap = demo.bootstrap();
    let registry_url = demo.registry_url().to_string();
    let cluster = if opts.bootstrap_servers.is_some() { "" } else { " (embedded)" };
    println!("kafka bootstrap: {bootstrap}{cluster}");
    println!("processing guarantee: {}", serde_json::to_string(&demo.guarantee())?.trim_matches('"'));
    println!("schema registry: {registry_url}");
    println!("state dir: {}", demo.state_dir().display());
    if opts.generator {
        println!("generator: {} events/s, {} users, seed {}", args.rate, args.users, args.seed);
    } else {
        println!("generator: off (produce to the topics above, e.g. with `finstream generate -b {bootstrap} --registry-url {registry_url}`)");
    }
    println!("example: kcat -b {bootstrap} -C -t account-balances -o beginning -s value=avro -r {registry_url}");
    if let Some(url) = demo.query_url() {
        println!("{}", serve::demo_help(url, &demo.example()));
    }
    let deadline = args.duration_secs.map(|d| Instant::now() + Duration::from_secs(d));
    let mut failure = None;
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(e) = demo.error() {
            failure = Some(e);
            break;
        }
    }
    println!("shutting down");
    if let Some(summary) = demo.close()? {
        println!("generator produced {} events", summary.events);
    }
    match failure {
        Some(e) => anyhow::bail!(e),
        None => Ok(()),
    }
}
