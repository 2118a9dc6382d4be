#!/usr/bin/env bash
# The demo: builds the example tools from source with `harness build`, whitelists them by
# digest with their grants, and calls them through the sandbox — including a tool error, a
# refused call, a call outside a tool's grant, and a security review.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p harness-host
demo=target/demo
rm -rf "$demo" && mkdir -p "$demo"
harness() { echo "\$ harness $*"; target/release/harness "$@" || echo "(exit code $?)"; echo; }
{
  echo '[host]'
  echo "data_dir = \"$PWD/$demo/data\""
  echo '[defaults]'
  echo 'fuel = 100_000_000'
  echo 'timeout = "2s"'
  for tool in calc text kb tickets; do
    target/release/harness build "tools/$tool" --target-dir target/guest -o "$demo/$tool.wasm" 2>/dev/null
    case $tool in
      kb) echo "fs = [{ host = \"$PWD/tools/kb/sample\", guest = \"/kb\", mode = \"ro\" }]" ;;
      tickets) echo 'kv = { quota = "1 MiB" }' ;;
    esac
    echo
  done
} > "$demo/harness.toml"
echo "# $demo/harness.toml"; cat "$demo/harness.toml"; echo
harness check --policy "$demo/harness.toml"
harness call --policy "$demo/harness.toml" calc.apply '{"op": "mul", "a": 6, "b": 7}'
harness call --policy "$demo/harness.toml" calc.apply '{"op": "div", "a": 1, "b": 0}'
harness call --policy "$demo/harness.toml" calc.apply '{"op": "pow", "a": 2, "b": 8}'
harness call --policy "$demo/harness.toml" text.stats '{"input": "Tools run sandboxed.\nEvery call is metered."}'
harness call --policy "$demo/harness.toml" kb.search '{"query": "reset my VPN password", "limit": 2}'
harness call --policy "$demo/harness.toml" kb.document '{"path": "/kb/../../../etc/passwd"}'
harness call --policy "$demo/harness.toml" --principal ana tickets.create '{"title": "VPN refuses my client", "body": "version 4.9", "priority": "high"}'
harness call --policy "$demo/harness.toml" --principal bob tickets.resolve '{"id": 1}'
harness audit "$demo/tickets.wasm" --tool tickets --policy "$demo/harness.toml"
