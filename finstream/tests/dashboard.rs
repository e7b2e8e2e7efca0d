//! The dashboard in a real browser: a running demo on Apache Kafka (`--bootstrap-servers` to a
//! private broker; registry, topology under exactly-once, generator with fraud scenarios, query
//! API) and headless Chromium loading `/` with a chosen
//! account and user. The test checks that the page drew what the query API answers: the
//! account's balance, a bar per spending category, throughput counters above zero and the
//! activity rows. The screenshot is kept in Cargo's test tmp dir (path printed).
//!
//! Needs Debian's `chromium` (scripts/test.sh installs it; `CHROMIUM` overrides the binary).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use connectors::Generator;
use finstream::demo::{Demo, DemoOptions};
use schemas::TransactionKind;
use serde_json::Value;

fn get(url: &str) -> (u16, Value) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut r = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// Polls `f` every 500 ms until it returns something, failing after `secs`.
fn wait_for<T>(what: &str, secs: u64, demo: &Demo, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        assert!(demo.error().is_none(), "{:?}", demo.error());
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn chromium(args: &[&str], profile: &Path) -> String {
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let out = Command::new(&bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} ({e}): install Debian's chromium (scripts/test.sh does)"));
    assert!(out.status.success(), "{bin} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The text of the element with `id` in a serialized DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let open_end = start + dom[start..].find('>')? + 1;
    let close = open_end + dom[open_end..].find('<')?;
    Some(dom[open_end..close].trim())
}

/// `<tr>` rows inside the `<tbody id="…">` of a serialized DOM.
fn rows(dom: &str, tbody: &str) -> usize {
    let Some(start) = dom.find(&format!("<tbody id=\"{tbody}\">")) else { return 0 };
    let end = start + dom[start..].find("</tbody>").unwrap_or(0);
    dom[start..end].matches("<tr>").count()
}

#[test]
fn dashboard_shows_live_data_in_headless_chromium() {
    let kafka = testkit::Kafka::cluster(1);
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        rate: 400.0,
        users: 20,
        seed: 11,
        generator: true,
        fraud: true,
        registry_port: 0,
        state_dir: Some(dir.path().join("state")),
        query_port: Some(0),
        bootstrap_servers: Some(kafka.bootstrap().to_string()),
    };
    // The page is asked about the account of the first generated transaction and about the user
    // with the most spending among the first events, over the days those events cover.
    let (events, _) = Generator::generate_all(opts.generator_config());
    let early: Vec<_> = events.iter().filter_map(|e| e.as_transaction()).take(1500).collect();
    let account = early[0].account_id.clone();
    let mut spenders: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &early {
        if t.kind == TransactionKind::Payment {
            *spenders.entry(t.user_id.as_str()).or_default() += 1;
        }
    }
    let user = spenders.iter().max_by_key(|(_, n)| **n).map(|(u, _)| u.to_string()).unwrap();
    let day = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap().date_naive();
    let from = day(early.iter().map(|t| t.occurred_at.0).min().unwrap()).pred_opt().unwrap();
    let to = day(early.iter().map(|t| t.occurred_at.0).max().unwrap()).succ_opt().unwrap();

    let demo = Demo::start(&opts).unwrap();
    let url = demo.query_url().expect("the demo serves the query API").to_string();

    // The API has the data the page will draw.
    let balance = wait_for("the account's balance", 120, &demo, || {
        let (status, b) = get(&format!("{url}/v1/accounts/{account}/balance"));
        (status == 200).then_some(b)
    });
    let categories: BTreeSet<String> = wait_for("the user's spending", 120, &demo, || {
        let (status, s) = get(&format!("{url}/v1/users/{user}/spending?from={from}&to={to}"));
        assert!(status == 200 || status == 404, "{status} {s}");
        let cats: BTreeSet<String> = s["days"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["category"].as_str().map(str::to_string))
            .collect();
        (!cats.is_empty()).then_some(cats)
    });
    let activity = wait_for("budget alerts and fraud decisions", 180, &demo, || {
        let (_, a) = get(&format!("{url}/v1/activity"));
        let n = |k: &str| a[k].as_array().map_or(0, Vec::len);
        (n("budget_alerts") > 0 && n("fraud_decisions") > 0).then_some(a)
    });

    let page = format!("{url}/?account={account}&user={user}&from={from}&to={to}");
    let profile = tempfile::tempdir().unwrap();
    // Virtual time lets the page's 2 s refresh run a few times without the test sleeping.
    let dom = chromium(&["--virtual-time-budget=10000", "--dump-dom", &page], profile.path());
    let (_, lineage) = get(&format!("{url}/v1/accounts/{account}/lineage?limit=100"));
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    chromium(
        &["--virtual-time-budget=10000", "--window-size=1400,1100", &format!("--screenshot={}", shot.display()), &page],
        profile.path(),
    );
    println!("dashboard screenshot: {}", shot.display());
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "no screenshot at {}", shot.display());
    demo.close().unwrap();

    let shown = element_text(&dom, "balance-amount").unwrap_or_else(|| panic!("no balance drawn:\n{dom}"));
    let (amount, currency) = shown.split_once(' ').unwrap();
    assert_eq!(currency, balance["currency"].as_str().unwrap());
    // The balance moves while the generator runs: the page's figure must be one the account
    // really had, i.e. a `balance_after` of its recent lineage.
    let history: Vec<&str> =
        lineage["legs"].as_array().unwrap().iter().filter_map(|l| l["balance_after"].as_str()).collect();
    assert!(history.contains(&amount), "page shows {amount}, not among the account's recent balances {history:?}");
    assert!(dom.contains(&format!("user {}", balance["user_id"].as_str().unwrap())), "balance owner not shown");

    let drawn: BTreeSet<String> = dom
        .match_indices("data-category=\"")
        .map(|(i, m)| dom[i + m.len()..].split('"').next().unwrap().to_string())
        .collect();
    assert!(!drawn.is_empty(), "no spending bars:\n{dom}");
    assert!(drawn.is_superset(&categories), "bars {drawn:?} miss categories the API had earlier {categories:?}");

    let processed: u64 = element_text(&dom, "processed").unwrap().parse().unwrap();
    assert!(processed > 0, "throughput counters not drawn");
    assert_eq!(element_text(&dom, "status"), Some("ready"));
    assert!(rows(&dom, "alerts") > 0, "no alert rows; the API had {}", activity["budget_alerts"]);
    assert!(rows(&dom, "fraud") > 0, "no fraud rows; the API had {}", activity["fraud_decisions"]);
}
