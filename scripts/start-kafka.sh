#!/usr/bin/env bash
# Starts Tansu (a Kafka-protocol broker from crates.io) for the Kafka connector tests on
# 127.0.0.1:19094 with in-memory storage, unless one already answers there. Installs it with
# cargo when missing: about 8 minutes on 2 cores, once per machine (it lands in ~/.cargo/bin,
# outside the clone, like cargo-leptos). Idempotent and fast when already running.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${IDRA_TEST_KAFKA_PORT:-19094}"
LOG="${TMPDIR:-/tmp}/idra-test-tansu-$PORT.log"
VERSION=0.6.0

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if answers; then
  echo "kafka (Tansu): already running on 127.0.0.1:$PORT"
  exit 0
fi
if ! tansu --version 2>/dev/null | grep -q "$VERSION"; then
  echo "installing Tansu $VERSION from crates.io (about 8 minutes on 2 cores, once)"
  cargo install tansu --version "$VERSION" --features dynostore --locked
fi

nohup tansu broker \
  --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ >>"$LOG" 2>&1 &
for _ in $(seq 1 150); do
  if answers; then
    echo "kafka (Tansu): started on 127.0.0.1:$PORT (log: $LOG)"
    exit 0
  fi
  sleep 0.1
done
echo "Tansu did not start on 127.0.0.1:$PORT; see $LOG" >&2
exit 1
