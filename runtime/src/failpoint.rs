//! Named fail points of the commit cycle for crash tests: `FINSTREAM_FAIL_POINT=<name>@<n>` makes
//! the process abort (no destructors, no clean shutdown: a crash) the n-th time any stream
//! thread reaches the point `<name>` (see [`streams::FailPoint`] for the names). Unset, it costs
//! one atomic load per commit step.

use std::sync::atomic::{AtomicU64, Ordering};

use streams::FailPoint;

/// The environment variable naming the fail point.
pub const FAIL_POINT_ENV: &str = "FINSTREAM_FAIL_POINT";

#[derive(Debug, Default)]
pub struct FailPoints {
    armed: Option<(FailPoint, u64)>,
    hits: AtomicU64,
}

impl FailPoints {
    /// Reads `FINSTREAM_FAIL_POINT`; an unparsable value is reported and ignored.
    pub fn from_env() -> FailPoints {
        let Ok(spec) = std::env::var(FAIL_POINT_ENV) else { return FailPoints::default() };
        match Self::parse(&spec) {
            Some(armed) => FailPoints { armed: Some(armed), hits: AtomicU64::new(0) },
            None => {
                tracing::error!(%spec, "ignoring {FAIL_POINT_ENV}: expected <name>@<n>");
                FailPoints::default()
            }
        }
    }

    fn parse(spec: &str) -> Option<(FailPoint, u64)> {
        let (name, n) = spec.split_once('@').unwrap_or((spec, "1"));
        Some((FailPoint::parse(name)?, n.parse().ok().filter(|n| *n > 0)?))
    }

    /// Aborts the process when `point` is armed and reached for the n-th time.
    pub fn hit(&self, point: FailPoint) {
        let Some((armed, n)) = self.armed else { return };
        if armed == point && self.hits.fetch_add(1, Ordering::SeqCst) + 1 == n {
            eprintln!("finstream: fail point {} reached: aborting the process", point.name());
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(FailPoints::parse("after_send_offsets@3"), Some((FailPoint::AfterSendOffsets, 3)));
        assert_eq!(FailPoints::parse("after_transaction_commit"), Some((FailPoint::AfterTransactionCommit, 1)));
        assert_eq!(FailPoints::parse("nowhere@1"), None);
        assert_eq!(FailPoints::parse("after_changelog_flush@0"), None);
    }
}
