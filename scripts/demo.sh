#!/usr/bin/env bash
# The demo: builds the example tools from source with `harness build`, whitelists them by
# digest with their grants, and runs an agent session through the sandbox — an answer from two
# tools, a call refused by role, a call paused for human approval and then approved, a runaway
# tool stopped by its fuel budget, personal data masked before the model, a token budget's hard
# stop, a kill switch flipped at run time, and the audit chain verified. The model is scripted (scripts/demo/*.jsonl) unless
# OPENAI_API_KEY is set, in which case the same runs go to a real model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
profile=${HARNESS_PROFILE:-release}   # the test script runs the demo on its debug build
cargo build --profile "$profile" -q -p harness-cli
bin=target/$([ "$profile" = dev ] && echo debug || echo "$profile")/harness
demo=target/demo
rm -rf "$demo" && mkdir -p "$demo"
say() { echo; echo "### $*"; }
harness() { echo "\$ harness $*"; "$bin" "$@" || echo "(exit code $?)"; }
build() { "$bin" build "$1" --target-dir target/guest -o "$demo/$(basename "$1").wasm" 2>/dev/null; }
{
  echo '[host]'
  echo "data_dir = \"$PWD/$demo/data\""
  echo '[defaults]'
  echo 'fuel = 100_000_000'
  echo 'timeout = "2s"'
  build tools/calc
  build tools/kb
  echo "fs = [{ host = \"$PWD/tools/kb/sample\", guest = \"/kb\", mode = \"ro\" }]"
  build tools/tickets
  echo 'kv = { quota = "1 MiB" }'
  echo 'roles = ["support"]'
  echo 'approval = "required"'
  build scripts/demo/runaway
  echo 'fuel = 5_000_000'
  echo
  if [ -n "${OPENAI_API_KEY:-}" ]; then
    echo '[models.main]'
    echo 'provider = "openai"'
    echo "model = \"${OPENAI_MODEL:-gpt-4o-mini}\""
  else
    echo '[models.main]'
    echo 'provider = "scripted"'
    echo "script = \"$PWD/$demo/script.jsonl\""
  fi
  echo '[agents.support]'
  echo 'model = "main"'
  echo 'system = "You are the IT support assistant. Use the tools; say which document an answer comes from."'
  echo '[budgets]'
  echo 'user_tokens = "20000/day"'
} > "$demo/harness.toml"
cp scripts/demo/two-tools.jsonl "$demo/script.jsonl"
echo "# $demo/harness.toml"; cat "$demo/harness.toml"
policy=(--policy "$demo/harness.toml")

say "An answer that uses two tools (run in parallel, each through the gates and the sandbox)"
harness run "${policy[@]}" --principal ana --role support "What is 6 × 7, and how do I reset my VPN password?"

say "A call refused by role: tickets needs the support role, and bob has none"
cp scripts/demo/role.jsonl "$demo/script.jsonl"
harness run "${policy[@]}" --principal bob "Open a ticket: the printer on floor 2 is jammed."

say "A call paused for human approval (persisted), then approved from another process: the run resumes"
cp scripts/demo/approval.jsonl "$demo/script.jsonl"
harness run "${policy[@]}" --principal sam --role support "Open a ticket: the VPN refuses my 4.9 client."
harness approvals list "${policy[@]}"
harness approvals approve "${policy[@]}" 1 --reason "known issue, go ahead"

say "A runaway tool is stopped by its fuel budget; the run goes on and says so"
cp scripts/demo/runaway.jsonl "$demo/script.jsonl"
harness run "${policy[@]}" --principal ana "Summarize this report for me."

say "Personal data is masked before anything reaches the model (and in the audit log)"
cp scripts/demo/pii.jsonl "$demo/script.jsonl"
harness run "${policy[@]}" --principal ana "My card 4111 1111 1111 1111 was charged twice; reach me at ana@example.com or +44 20 7946 0958."

say "A token budget stops a run hard: dave's runs may use 20000 tokens a day"
cp scripts/demo/budget.jsonl "$demo/script.jsonl"
harness run "${policy[@]}" --principal dave "Tell me everything about printers."

say "A kill switch, flipped from another process, acts on the next call without a restart"
harness kill "${policy[@]}" kb --reason "index being rebuilt"
cp scripts/demo/killed.jsonl "$demo/script.jsonl"
harness run "${policy[@]}" --principal ana "Where is the printer password?"
harness enable "${policy[@]}" kb

say "Every step above is a record in a hash chain; verification walks it"
harness audit-log verify "${policy[@]}"
