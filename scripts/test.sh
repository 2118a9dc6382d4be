#!/usr/bin/env bash
# Runs every test: unit tests, and end-to-end tests against components built from source.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
