#!/usr/bin/env bash
# The demo: builds the example tools from source, whitelists them by digest, and calls them
# through the sandbox with `harness`, including a tool error and a refused call.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p harness-host -p harness-build
demo=target/demo
mkdir -p "$demo"
for tool in calc text; do
  target/release/harness-build c "tools/$tool/$tool.c" --wit "tools/$tool/wit" --world "$tool" -o "$demo/$tool.wasm" > "$demo/$tool.toml"
done
{
  echo '[defaults]'
  echo 'fuel = 100_000_000'
  echo 'timeout = "2s"'
  cat "$demo/calc.toml" "$demo/text.toml"
} > "$demo/harness.toml"
harness() { echo "\$ harness $*"; target/release/harness "$@" || echo "(exit code $?)"; echo; }
harness check --policy "$demo/harness.toml"
harness call --policy "$demo/harness.toml" calc.apply '{"op": "mul", "a": 6, "b": 7}'
harness call --policy "$demo/harness.toml" text.stats '{"input": "Tools run sandboxed.\nEvery call is metered."}'
harness call --policy "$demo/harness.toml" calc.apply '{"op": "div", "a": 1, "b": 0}'
harness call --policy "$demo/harness.toml" calc.apply '{"op": "pow", "a": 2, "b": 8}'
harness call --policy "$demo/harness.toml" --report text.find '{"input": "v1 v2 beta", "pattern": "has-digit"}'
harness audit "$demo/calc.wasm"
