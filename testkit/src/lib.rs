//! Apache Kafka under finstream's tests.
//!
//! Every test that talks Kafka uses a real broker (`scripts/kafka.sh`, Kafka 4.4.0 from its Maven
//! jars): [`Kafka::shared`] is one single-node broker per test binary, started on first use and
//! gone when the binary exits (or the broker of `FINSTREAM_TEST_BOOTSTRAP`, which `scripts/test.sh`
//! starts once for the whole run); [`Kafka::cluster`] is a private cluster a test may kill nodes
//! of. Tests share a broker safely because every test names its own topics and application ids
//! with [`unique`].
//!
//! Besides the broker: topic administration ([`Kafka::create_topics`]), a producer of test input
//! ([`records::producer`]), a `read_committed` reader that reads to the high watermark
//! ([`records::Reader`]), the embedded schema registry served over HTTP ([`registry::registry`]),
//! an engine configuration with test timeouts ([`streams_config`]) and child processes running one
//! test of the same binary, to SIGKILL or SIGSTOP ([`process::Child`]).

pub mod kafka;
pub mod process;
pub mod records;
pub mod registry;
pub mod sums;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use kafka::{Kafka, Signal};
pub use process::Child;
pub use records::{produce, produce_all, producer, read_committed, read_committed_at_least, Consumed, Reader};
pub use registry::{registry, Registry};

/// A name no other test (in this run or an earlier one on the same broker) uses:
/// `<prefix>-<random per process>-<counter>`. For topics, application ids and transactional ids.
pub fn unique(prefix: &str) -> String {
    static RUN: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let run = RUN.get_or_init(rand::random);
    format!("{prefix}-{run:08x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Polls `f` every 50 ms until it is true (then `true`) or `timeout` passed (then `false`).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Session timeout of test instances: the broker's minimum (`group.min.session.timeout.ms`), so
/// a killed instance's partitions move within seconds.
pub const SESSION_TIMEOUT_MS: u64 = 6_000;
/// Transaction timeout of test instances (the engine's default): a transaction a SIGKILLed or
/// paused instance left open is aborted by the broker after this.
pub const TRANSACTION_TIMEOUT_MS: u64 = 10_000;

/// Engine configuration for a test: `application_id` (name it with [`unique`]), the broker, the
/// state directory, and timeouts short enough that restarts and rebalances take seconds.
pub fn streams_config(bootstrap: &str, application_id: &str, state_dir: &std::path::Path) -> runtime::StreamsConfig {
    let mut c = runtime::StreamsConfig {
        application_id: application_id.into(),
        bootstrap_servers: bootstrap.into(),
        state_dir: state_dir.to_path_buf(),
        transaction_timeout_ms: Some(TRANSACTION_TIMEOUT_MS),
        ..Default::default()
    };
    for (k, v) in [
        ("session.timeout.ms", SESSION_TIMEOUT_MS.to_string()),
        ("heartbeat.interval.ms", "500".to_string()),
        ("max.poll.interval.ms", "60000".to_string()),
    ] {
        c.kafka.insert(k.into(), v);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_valid_topic_names() {
        let (a, b) = (unique("in"), unique("in"));
        assert_ne!(a, b);
        assert!(a.starts_with("in-") && a.len() < 40, "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{a}");
    }

    #[test]
    fn test_config_passes_the_engine_validation() {
        let c = streams_config("127.0.0.1:9092", "app", std::path::Path::new("/tmp/x"));
        c.validate().unwrap();
        assert!(c.transaction_timeout_ms() > c.commit_interval_ms());
    }
}
