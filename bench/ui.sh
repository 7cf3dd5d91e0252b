#!/usr/bin/env bash
# UI benchmark: the release server with 1,000 syncs in its embedded store; p50/p99 of the
# Dashboard and Syncs pages (server-rendered, signed in) over 1,000 requests each, and the
# release wasm size (raw, gzip). Targets: p50 <= 10 ms, wasm <= 400 KB gzip.
# Usage: make bench-ui   (SYNCS / REQUESTS / PORT override the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."

SYNCS=${SYNCS:-1000}
REQUESTS=${REQUESTS:-1000}
PORT=${PORT:-3107}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

scripts/setup-tools.sh release
cargo leptos build --release

wasm="$TARGET_DIR/site/pkg/idra.wasm"
[ -f "$wasm" ] || wasm=target/site/pkg/idra.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "wasm: $raw bytes raw, $gz bytes gzip (target <= 400000 gzip)"

# No in-process agent: the figures are the web server's alone, and 1,000 syncs pointing at
# nowhere would otherwise fill the errors list while we measure.
"$TARGET_DIR/release/idra-server" --data-dir "$WORK/data" --site-root target/site \
  --listen "127.0.0.1:$PORT" --no-agent >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

python3 bench/ui_load.py --base "http://127.0.0.1:$PORT" --syncs "$SYNCS" --requests "$REQUESTS" \
  --workdir "$WORK"
