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
cargo test --workspace --locked "$@"
