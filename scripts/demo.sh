#!/usr/bin/env bash
# The main command: installs build prerequisites, then runs the embedded demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/finstream/target}
scripts/setup.sh
cargo run --locked -p finstream -- demo "$@"
