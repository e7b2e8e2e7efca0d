//! The deployment files (nothing here can run Docker, so what can be checked is checked): the
//! compose file parses and every file it mounts or builds from exists; the Dockerfile builds with
//! the README's command; Prometheus' config, its rules and the Grafana dashboard parse and name
//! only metrics finstream registers; the topic script matches the topology's plan; the example
//! configurations load through `finstream::config`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use serde_yaml::Value as Y;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Y {
    let mut v: Y = serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    v.apply_merge().unwrap();
    v
}

fn compose() -> Y {
    yaml("docker-compose.yml")
}

fn service<'a>(compose: &'a Y, name: &str) -> &'a Y {
    compose["services"].get(name).unwrap_or_else(|| panic!("no service {name}"))
}

/// `host:container[:mode]` volume mounts of a service whose host side is a path in the repo.
fn bind_mounts(svc: &Y) -> Vec<(String, String)> {
    svc["volumes"]
        .as_sequence()
        .map(|s| s.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|v| v.starts_with("./"))
        .map(|v| {
            let mut parts = v.split(':');
            (parts.next().unwrap().to_string(), parts.next().expect("container path").to_string())
        })
        .collect()
}

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: finstream::generate::GenerateArgs,
}

#[test]
fn compose_parses_and_everything_it_references_exists() {
    let c = compose();
    let services: BTreeSet<&str> = c["services"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap()).collect();
    for s in ["kafka", "schema-registry", "finstream-1", "finstream-2", "generator", "prometheus", "grafana"] {
        assert!(services.contains(s), "service {s} missing: {services:?}");
    }
    assert!(service(&c, "kafka")["image"].as_str().unwrap().starts_with("apache/kafka:"));
    let kafka_env = &service(&c, "kafka")["environment"];
    assert_eq!(kafka_env["KAFKA_PROCESS_ROLES"].as_str(), Some("broker,controller"), "KRaft, one node");
    assert!(service(&c, "schema-registry")["image"].as_str().unwrap().starts_with("confluentinc/cp-schema-registry:"));

    for (name, svc) in c["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        if let Some(build) = svc.get("build") {
            let ctx = root().join(build["context"].as_str().unwrap());
            assert!(ctx.join(build["dockerfile"].as_str().unwrap()).is_file(), "{name}: Dockerfile");
        }
        for (host, _) in bind_mounts(svc) {
            assert!(root().join(&host).exists(), "{name} mounts {host}, which does not exist");
        }
        for dep in svc["depends_on"]
            .as_mapping()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_else(|| svc["depends_on"].as_sequence().cloned().unwrap_or_default())
        {
            assert!(services.contains(dep.as_str().unwrap()), "{name} depends on unknown {dep:?}");
        }
        // Every FINSTREAM_* variable names a real configuration key.
        if let Some(env) = svc["environment"].as_mapping() {
            let vars: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap_or_default().to_string()))
                .filter(|(k, _)| k.starts_with("FINSTREAM_"))
                .collect();
            let mut table: toml::Table = toml::from_str(&read("deploy/finstream.toml")).unwrap();
            table.remove("query");
            finstream::config::apply_env(&mut table, vars.clone().into_iter());
            let cfg: finstream::config::AppConfig = toml::Value::Table(table).try_into().unwrap();
            if vars.iter().any(|(k, _)| k == "FINSTREAM_APPLICATION_SERVER") {
                assert!(cfg.streams.application_server.as_deref().unwrap().contains(name), "{name}");
            }
        }
    }
    for instance in ["finstream-1", "finstream-2", "generator"] {
        let mounts = bind_mounts(service(&c, instance));
        assert!(mounts.contains(&("./deploy/finstream.toml".into(), "/etc/finstream/finstream.toml".into())));
    }
    // The generator's command line is one the real CLI accepts.
    let cmd: Vec<String> = service(&c, "generator")["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(cmd[0], "generate");
    let parsed = GenerateCli::try_parse_from(&cmd).unwrap_or_else(|e| panic!("{e}"));
    assert!(parsed.args.forever && parsed.args.fraud && parsed.args.rate.is_some());
}

/// `cargo build …` commands in a text (shell lines or Dockerfile RUN lines).
fn cargo_builds(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().trim_start_matches("RUN ").trim())
        .filter(|l| l.starts_with("cargo build"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn dockerfile_builds_with_the_readme_command_and_copies_existing_files() {
    let dockerfile = read("Dockerfile");
    let docker = cargo_builds(&dockerfile);
    assert_eq!(docker.len(), 1, "{docker:?}");
    let readme = cargo_builds(&read("README.md"));
    assert!(readme.contains(&docker[0]), "README's build commands {readme:?} lack the Dockerfile's {:?}", docker[0]);
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root().join(src).exists(), "Dockerfile copies {src}, which does not exist");
        }
    }
    let binary = dockerfile.lines().find(|l| l.contains("--from=build")).unwrap();
    assert!(binary.contains("/target/release/finstream "), "{binary}");
}

/// Metric names finstream registers: every `"finstream_…"` literal in the sources of a file that
/// registers Prometheus metrics (so it follows whatever crate adds metrics later).
fn registered_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root()).unwrap().flatten() {
        let src = krate.path().join("src");
        if src.is_dir() {
            collect_rs(&src, &mut files);
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        if !text.contains("Opts::new") && !text.contains("register(") {
            continue;
        }
        for piece in text.split('"').skip(1).step_by(2) {
            if piece.starts_with("finstream_")
                && piece.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                names.insert(piece.to_string());
            }
        }
    }
    names
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Histogram names, from a real registry's exposition (`# TYPE … histogram`).
fn histograms() -> BTreeSet<String> {
    let m = streams::StreamsMetrics::default();
    m.stage_latency.with_label_values(&["probe"]).observe(0.001);
    m.render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" histogram"))
        .map(str::to_string)
        .collect()
}

/// The series names a PromQL expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("finstream_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn assert_exported(used: &BTreeSet<String>, what: &str) {
    let registered = registered_metrics();
    let hist = histograms();
    assert!(registered.len() >= 15, "found only {registered:?}");
    assert!(hist.is_subset(&registered), "{hist:?} vs {registered:?}");
    for name in used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| hist.contains(*b)))
            .unwrap_or(name);
        assert!(registered.contains(base), "{what} uses {name}, which finstream does not export ({registered:?})");
    }
}

#[test]
fn prometheus_scrapes_the_instances_and_its_rules_use_real_metrics() {
    let c = compose();
    let prom = yaml("deploy/prometheus.yml");
    let query_port = {
        let cfg: toml::Table = toml::from_str(&read("deploy/finstream.toml")).unwrap();
        let listen = cfg["query"]["listen"].as_str().unwrap().to_string();
        listen.rsplit(':').next().unwrap().to_string()
    };
    let targets: Vec<String> = prom["scrape_configs"][0]["static_configs"][0]["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(targets, [format!("finstream-1:{query_port}"), format!("finstream-2:{query_port}")]);
    for t in &targets {
        let host = t.split(':').next().unwrap();
        assert!(c["services"].get(host).is_some(), "{t} is not a compose service");
    }
    // The rule file Prometheus loads is the one compose mounts there.
    let mounts = bind_mounts(service(&c, "prometheus"));
    let mounted: BTreeMap<&str, &str> = mounts.iter().map(|(h, c)| (c.as_str(), h.as_str())).collect();
    assert_eq!(mounted.get("/etc/prometheus/prometheus.yml"), Some(&"./deploy/prometheus.yml"));
    let mut used = BTreeSet::new();
    for rf in prom["rule_files"].as_sequence().unwrap() {
        let host = mounted.get(rf.as_str().unwrap()).unwrap_or_else(|| panic!("{rf:?} not mounted"));
        let rules = yaml(host.trim_start_matches("./"));
        for g in rules["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                let names = metric_names(r["expr"].as_str().unwrap());
                assert!(!names.is_empty(), "{r:?}");
                used.extend(names);
            }
        }
    }
    assert_exported(&used, "a Prometheus rule");
}

#[test]
fn grafana_is_provisioned_with_a_dashboard_of_real_metrics() {
    let c = compose();
    let mounts = bind_mounts(service(&c, "grafana"));
    let mounted: BTreeMap<&str, &str> = mounts.iter().map(|(h, c)| (c.as_str(), h.as_str())).collect();
    let provisioning = mounted["/etc/grafana/provisioning"].trim_start_matches("./");
    let ds = yaml(&format!("{provisioning}/datasources/prometheus.yml"));
    assert_eq!(ds["datasources"][0]["url"].as_str(), Some("http://prometheus:9090"));
    let uid = ds["datasources"][0]["uid"].as_str().unwrap().to_string();
    let providers = yaml(&format!("{provisioning}/dashboards/finstream.yml"));
    let dash_dir = providers["providers"][0]["options"]["path"].as_str().unwrap();
    let host_dir =
        mounted.get(dash_dir).unwrap_or_else(|| panic!("{dash_dir} is not mounted")).trim_start_matches("./");
    let mut used = BTreeSet::new();
    let mut panels = 0;
    for f in std::fs::read_dir(root().join(host_dir)).unwrap().flatten() {
        let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.path()).unwrap()).unwrap();
        assert!(d["title"].is_string() && d["uid"].is_string());
        for p in d["panels"].as_array().unwrap() {
            panels += 1;
            assert_eq!(p["datasource"]["uid"].as_str(), Some(uid.as_str()), "{}", p["title"]);
            for t in p["targets"].as_array().unwrap() {
                let names = metric_names(t["expr"].as_str().unwrap());
                assert!(!names.is_empty(), "{t}");
                used.extend(names);
            }
        }
    }
    assert!(panels >= 8, "{panels} panels");
    for essential in
        ["finstream_processor_records_in_total", "finstream_consumer_lag_records", "finstream_dead_letters_total"]
    {
        assert!(used.contains(essential), "the dashboard lacks {essential}");
    }
    assert_exported(&used, "the Grafana dashboard");
}

#[test]
fn topic_script_creates_the_topologys_non_internal_topics() {
    let script = read("deploy/create-topics.sh");
    let list = script.split("TOPICS=\"").nth(1).unwrap().split('"').next().unwrap();
    let created: BTreeMap<String, bool> = list
        .split_whitespace()
        .map(|e| {
            let (name, policy) = e.split_once(':').unwrap();
            (name.to_string(), policy == "compact")
        })
        .collect();
    let cfg: finstream::config::AppConfig = {
        let mut t: toml::Table = toml::from_str(&read("deploy/finstream.toml")).unwrap();
        t.remove("query");
        toml::Value::Table(t).try_into().unwrap()
    };
    let registry = Arc::new(schemas::registry::EmbeddedRegistry::in_memory());
    let topology =
        processors::finance_topology(&cfg.finance, registry).unwrap().build(&cfg.streams.application_id).unwrap();
    let internal_prefix = format!("{}-", cfg.streams.application_id);
    let wanted: BTreeMap<String, bool> = runtime::topics::plan(&cfg.streams, &topology)
        .into_iter()
        .filter(|t| !t.name.starts_with(&internal_prefix))
        .map(|t| (t.name, t.compacted))
        .collect();
    assert_eq!(created, wanted);
}

fn load_example(rel: &str) -> finstream::config::AppConfig {
    finstream::config::load(Some(&root().join(rel))).unwrap_or_else(|e| panic!("{rel}: {e:#}"))
}

#[test]
fn example_configurations_load() {
    let ex = load_example("finstream.example.toml");
    assert_eq!(ex.streams.kafka.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
    assert_eq!(ex.streams.num_stream_threads, 2);
    assert_eq!(ex.streams.state_dir, PathBuf::from("/var/lib/finstream"));
    assert!(!ex.schema_registry.url.is_empty() && !ex.schema_registry.username.is_empty());
    assert_eq!(ex.import.delimiter, ';');
    assert!(ex.import.decimal_comma);
    assert_eq!(ex.query.listen, "0.0.0.0:8080");
    assert_eq!(ex.query.auth.mode, query::AuthMode::Jwt);
    assert!(!ex.query.auth.rs256_public_key_file.is_empty());
    // Exposed with jwt: `finstream run` accepts it without --insecure.
    finstream::serve::check_exposure(&ex.query, false).unwrap();

    let dep = load_example("deploy/finstream.toml");
    assert_eq!(dep.streams.bootstrap_servers, "kafka:9092");
    assert_eq!(dep.schema_registry.url, "http://schema-registry:8081");
    assert_eq!(dep.query.auth.mode, query::AuthMode::Jwt);
    // The compose file gives each instance the HS256 secret through the environment.
    let c = compose();
    for name in ["finstream-1", "finstream-2"] {
        let env = &c["services"][name]["environment"];
        assert!(env["FINSTREAM_QUERY__AUTH__HS256_SECRET"].is_string(), "{name} has no query secret");
    }
}
