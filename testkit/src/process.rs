//! Child processes: one test of the same test binary run in its own OS process, so a test can
//! SIGKILL an engine instance (a crash: no close, no flush, no abort), SIGSTOP it past its session
//! and transaction timeouts (a zombie) and SIGCONT it.
//!
//! The child side is an ordinary `#[test]` that returns at once unless [`child_role`] names it:
//!
//! ```ignore
//! #[test]
//! fn instance() {
//!     if testkit::process::child_role() != Some("instance") { return }
//!     let kafka = testkit::Kafka::shared(); // the parent's cluster
//!     // ... run until killed
//! }
//! ```

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::kafka::{Kafka, Signal, BOOTSTRAP_ENV};

/// Names the test a child process was started to run.
pub const ROLE_ENV: &str = "FINSTREAM_TEST_CHILD";

/// The test this process was started to run as a child, if it is a child.
pub fn child_role() -> Option<&'static str> {
    static ROLE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ROLE.get_or_init(|| std::env::var(ROLE_ENV).ok()).as_deref()
}

/// A child process running one test of this test binary. Killed (SIGKILL) on drop if it still
/// runs.
pub struct Child {
    child: std::process::Child,
    test: String,
}

impl Child {
    /// Starts this test binary running only the test `test` (its name without the module path
    /// when it is at the top of the file), with [`ROLE_ENV`] set to `test`,
    /// `FINSTREAM_TEST_BOOTSTRAP` set to `kafka`'s bootstrap (so [`Kafka::shared`] in the child is
    /// `kafka`), and `env`. Its output goes to this process's stderr.
    pub fn spawn(test: &str, kafka: &Kafka, env: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, test)
            .env(BOOTSTRAP_ENV, kafka.bootstrap())
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting child {test}: {e}"));
        Child { child, test: test.into() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal`; the child must still exist (a zombie not yet reaped counts).
    pub fn signal(&self, signal: Signal) {
        // SAFETY: kill(2) with the pid of our own (not yet reaped) child.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal.raw()) };
        assert_eq!(
            rc,
            0,
            "kill -{} {} ({}): {}",
            signal.name(),
            self.pid(),
            self.test,
            std::io::Error::last_os_error()
        );
    }

    /// SIGKILL, then waits for the process to be gone.
    pub fn kill(&mut self) {
        if self.child.try_wait().expect("child status").is_none() {
            self.signal(Signal::Kill);
        }
        self.child.wait().expect("child status");
    }

    /// The exit status, if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("child status")
    }

    /// Waits for the child to exit by itself, killing it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_at_most(timeout) {
            Some(status) => status,
            None => {
                self.kill();
                panic!("child {} did not exit within {timeout:?}; killed", self.test);
            }
        }
    }

    /// The exit status if the child exits within `timeout`; `None` (still running) otherwise.
    pub fn wait_at_most(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}
