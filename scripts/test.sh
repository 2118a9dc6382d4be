#!/usr/bin/env bash
# Runs every check and test: formatting and lints first (so neither can land broken), then unit
# and end-to-end tests against components built from source (Rust, Python, C and WAT guests) in
# parallel processes, doc tests and examples, the benchmarks once in test mode, the example tools'
# own unit tests, the Python helper's tests, the Python client's and the Django example's tests
# against real servers, and the demo on the same (debug) build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# One OCI registry (tests of tools pulled from a registry) and one PostgreSQL 15 (tests of state
# shared by replicas; each test takes a database of its own) for the whole run; removed at exit.
registry_dir=$(mktemp -d)
postgres_dir=$(mktemp -d)
cleanup() {
  kill "$(cat "$registry_dir/pid" 2>/dev/null)" 2>/dev/null || true
  scripts/postgres.sh stop "$postgres_dir"
  rm -rf "$registry_dir" "$postgres_dir"
}
trap cleanup EXIT
HARNESS_TEST_REGISTRY=$(scripts/registry.sh "$registry_dir")
HARNESS_TEST_POSTGRES=$(scripts/postgres.sh "$postgres_dir")
export HARNESS_TEST_REGISTRY HARNESS_TEST_POSTGRES
cargo nextest run --workspace --lib --bins --tests --examples --no-fail-fast
cargo test --workspace --doc
cargo test -p harness-e2e --bench boundary
cargo test --manifest-path tools/Cargo.toml --target-dir target
python3 -m unittest discover guest-sdk/python
export HARNESS_BIN=$PWD/target/debug/harness
.venv/bin/python -m pytest -q -p no:cacheprovider clients/python/tests
.venv/bin/python examples/django/manage.py test desk
HARNESS_PROFILE=dev scripts/demo.sh
