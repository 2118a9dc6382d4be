#!/usr/bin/env bash
# Installs what Harness needs on a fresh Debian machine, skipping what is there:
# clang-16 + lld-16 + wasi-libc (to build C tools to wasm). Rust comes from the machine.
set -euo pipefail
need=()
for pkg in clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
