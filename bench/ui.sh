#!/usr/bin/env bash
# UI benchmark: the release server with 1,000 syncs in its embedded store; p50/p99 of the
# Dashboard and Syncs pages (server-rendered, signed in) over 1,000 requests each, and the
# release wasm sizes (raw, gzip): the main module, and what a first visit to each page loads
# (main + the page's lazily loaded chunks, see app/src/routes.rs). Targets: p50 <= 10 ms,
# wasm <= 400 KB gzip.
# Usage: make bench-ui   (SYNCS / REQUESTS / PORT override the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
# As the Makefile does, so running this script directly finds the wasm-opt that
# setup-tools.sh installs (otherwise cargo-leptos tries to download one and fails).
export PATH="$PWD/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

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
cargo leptos build --release --split

pkg="$TARGET_DIR/site/pkg"
[ -f "$pkg/idra.wasm" ] || pkg=target/site/pkg
python3 - "$pkg" <<'PY'
import gzip, json, os, sys
pkg = sys.argv[1]
size = lambda name: os.path.getsize(os.path.join(pkg, name))
gz = lambda name: len(gzip.compress(open(os.path.join(pkg, name), "rb").read(), 9))
main_raw, main_gz = size("idra.wasm"), gz("idra.wasm")
print(f"wasm main module: {main_raw} bytes raw, {main_gz} bytes gzip (target <= 400000 gzip)")
manifest = json.load(open(os.path.join(pkg, "__wasm_split_manifest.json")))
worst = 0
for split, chunks in sorted(manifest.items()):
    raw = main_raw + sum(size(c + ".wasm") for c in chunks)
    total = main_gz + sum(gz(c + ".wasm") for c in chunks)
    worst = max(worst, total)
    name = split.strip("_").rsplit("_", 1)[0]
    print(f"  with {name}: {raw} bytes raw, {total} bytes gzip")
print(f"wasm largest first load (main + one page's chunks): {worst} bytes gzip (target <= 400000)")
PY

# No in-process agent: the figures are the web server's alone, and 1,000 syncs pointing at
# nowhere would otherwise fill the errors list while we measure.
"$TARGET_DIR/release/idra-server" --data-dir "$WORK/data" --site-root target/site \
  --listen "127.0.0.1:$PORT" --no-agent >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

python3 bench/ui_load.py --base "http://127.0.0.1:$PORT" --syncs "$SYNCS" --requests "$REQUESTS" \
  --workdir "$WORK"
