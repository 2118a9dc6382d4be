#!/usr/bin/env bash
# Runs every test: unit tests, end-to-end tests against components built from source (Rust,
# Python, C and WAT guests), the example tools' own unit tests, and the Python helper's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
cargo test --manifest-path tools/Cargo.toml --target-dir target
python3 -m unittest discover guest-sdk/python
