#!/usr/bin/env bash
# The test command: installs build prerequisites, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/finstream/target}
scripts/setup.sh
cargo test --workspace --locked "$@"
