#!/usr/bin/env bash
# Installs what Harness needs on a fresh Debian machine, skipping what is there:
# - clang-16 + lld-16 + wasi-libc, to build C tools (and link Rust ones) to wasm;
# - rustc-web + cargo-web + rust-web-src, Debian's Rust with the standard-library source, to
#   build Rust tools for wasm where rustup cannot add the wasm32-wasip2 target;
# - componentize-py in ./.venv, to build Python tools;
# - the official MCP Python SDK (mcp) in ./.venv, the real client the MCP tests drive;
# - the Python client (clients/python, editable) with httpx and pytest, and Django with Django
#   REST framework for the example app (examples/django), and schemathesis (which checks the
#   HTTP API against its OpenAPI document), in ./.venv;
# - chromium, and playwright-core from npm, to drive the operator console in a headless browser;
# - docker-registry (the CNCF distribution registry) and apache2-utils (htpasswd), for the tests of
#   tools pulled from an OCI registry (scripts/registry.sh starts one on loopback);
# - postgresql (15, with its psql client), for the tests of state shared by several replicas
#   (scripts/postgres.sh starts a throwaway server on loopback);
# - the MCP conformance suite and the Node 22 it needs, from npm into ./.npm-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 rustc-web cargo-web rust-web-src python3-venv chromium docker-registry apache2-utils postgresql postgresql-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
componentize_py_version=0.25.1
if ! .venv/bin/componentize-py --version 2>/dev/null | grep -q "$componentize_py_version"; then
  echo "setup: installing componentize-py $componentize_py_version into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q "componentize-py==$componentize_py_version"
fi
mcp_version=2.3.0
if ! .venv/bin/python -c "import importlib.metadata as m; assert m.version('mcp') == '$mcp_version'" 2>/dev/null; then
  echo "setup: installing the MCP Python SDK $mcp_version into .venv"
  .venv/bin/pip install -q "mcp==$mcp_version"
fi
python_packages=(httpx==0.28.1 pytest==9.2.0 Django==5.2.19 djangorestframework==3.18.3 schemathesis==4.32.5)
if ! .venv/bin/python - "${python_packages[@]}" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
for wanted in sys.argv[1:]:
    name, version = wanted.split("==")
    assert m.version(name) == version, wanted
m.version("harness-client")
PY
then
  echo "setup: installing ${python_packages[*]} and clients/python into .venv"
  .venv/bin/pip install -q "${python_packages[@]}"
  .venv/bin/pip install -q -e clients/python
fi
playwright_version=1.65.1
if ! grep -q "\"version\": \"$playwright_version\"" .npm-tools/node_modules/playwright-core/package.json 2>/dev/null; then
  echo "setup: installing playwright-core $playwright_version into .npm-tools"
  mkdir -p .npm-tools
  (cd .npm-tools && npm install --silent --no-audit --no-fund "playwright-core@$playwright_version" >/dev/null)
fi
conformance_version=0.1.16
if [ ! -x .npm-tools/node_modules/.bin/conformance ] || ! grep -q "\"version\": \"$conformance_version\"" .npm-tools/node_modules/@modelcontextprotocol/conformance/package.json 2>/dev/null; then
  echo "setup: installing the MCP conformance suite $conformance_version and Node 22 into .npm-tools"
  mkdir -p .npm-tools
  (cd .npm-tools && npm install --silent --no-audit --no-fund "node@22" "@modelcontextprotocol/conformance@$conformance_version" >/dev/null)
fi
