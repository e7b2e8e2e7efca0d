#!/usr/bin/env bash
# The test command: installs build prerequisites, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/finstream/target}
scripts/setup.sh
# Headless Chromium loads the dashboard in finstream/tests/dashboard.rs.
if ! command -v "${CHROMIUM:-chromium}" >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
# Python's confluent-kafka is the outside client of the interoperability test
# (finstream/tests/python_interop.rs); it lives in a venv beside the target directory.
venv=${FINSTREAM_VENV:-$HOME/.cache/finstream/venv}
if ! "$venv/bin/python" -c "import confluent_kafka, fastavro" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "confluent-kafka[avro,schemaregistry]==2.16.0"
fi
export PYTHON="$venv/bin/python"
# Apache Kafka under the Kafka tests: the jars are resolved from Maven Central (cached in ~/.m2)
# before the build, and one single-node broker serves every test binary of the run
# (testkit's FINSTREAM_TEST_BOOTSTRAP; tests that kill brokers start private clusters). It is
# stopped, and its data removed, when this script exits.
scripts/kafka.sh classpath >/dev/null
if [ -z "${FINSTREAM_TEST_BOOTSTRAP:-}" ]; then
  broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/finstream-test-kafka.XXXXXX")
  trap 'scripts/kafka.sh stop --dir "$broker_dir" >/dev/null 2>&1 || true; rm -rf "$broker_dir"' EXIT
  bootstrap=$(KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:--XX:TieredStopAtLevel=1} scripts/kafka.sh start --dir "$broker_dir" --watch $$ | sed -n 's/^bootstrap: //p')
  [ -n "$bootstrap" ] || { echo "test.sh: the test broker did not start" >&2; exit 1; }
  export FINSTREAM_TEST_BOOTSTRAP=$bootstrap
  echo "test broker: $bootstrap"
fi
started=$(date +%s)
cargo test --workspace --locked --no-fail-fast "$@"
echo "test.sh: cargo test took $(( $(date +%s) - started )) s"
