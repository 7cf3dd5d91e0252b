#!/usr/bin/env bash
# Everything `make test` (and so CI) checks, in order of cost: formatting, lints, the Rust
# tests (the Store contract against the embedded store and a real etcd), then the browser
# tests against a freshly built server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/start-etcd.sh
scripts/start-databases.sh
scripts/start-mongo.sh
scripts/start-kafka.sh
export IDRA_TEST_ETCD=http://127.0.0.1:23790
export IDRA_REQUIRE_ETCD=1

step() { printf '\n== %s\n' "$*"; }
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace"
cargo test --workspace -- --skip sources_and_destinations_agree_after_faults 2>&1 | tee "$logs/cargo.log"

step "make check, short: the correctness checker with a fixed seed (make check runs it long)"
IDRA_CHECK_SEED=1 IDRA_CHECK_SECS=20 cargo test -p idra-agent --test checker sources_and_destinations_agree_after_faults -- --nocapture 2>&1 | tee -a "$logs/cargo.log"

step "cargo leptos build (UI for the browser tests)"
cargo leptos build --split

step "playwright (Chromium)"
(cd end2end && npx playwright test) 2>&1 | tee "$logs/playwright.log"

# One closing line for both runners (any failure above already stopped the script).
rust=$(awk '/^test result:/ { n += $4 } END { print n + 0 }' "$logs/cargo.log")
browser=$(awk '$2 == "passed" && $1 ~ /^[0-9]+$/ { n += $1 } END { print n + 0 }' "$logs/playwright.log")
skipped=$(grep -c '^skipped:' "$logs/cargo.log" || true)
printf '\n%s Rust tests and %s browser tests\n' "$rust" "$browser"
grep '^skipped:' "$logs/cargo.log" || true
echo "summary: $((rust + browser - skipped)) passed, 0 failed, $skipped skipped"
