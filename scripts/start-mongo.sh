#!/usr/bin/env bash
# Starts SecantusDB (a MongoDB-wire-protocol server from PyPI; there is no MongoDB in
# Debian) for the MongoDB connector tests on 127.0.0.1:27017, with SCRAM authentication and
# a user idra / idra-secret, unless one already answers there. Installs it into
# .tools/secantus (a venv) when missing. Idempotent and fast when already running.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${IDRA_TEST_MONGO_PORT:-27017}"
DATA="${IDRA_TEST_MONGO_DIR:-${TMPDIR:-/tmp}/idra-test-mongo-$PORT}"
LOG="$DATA.log"
PY=.tools/secantus/bin/python

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if answers; then
  echo "mongodb (SecantusDB): already running on 127.0.0.1:$PORT"
  exit 0
fi
if ! "$PY" -c "import secantus" 2>/dev/null; then
  echo "installing SecantusDB 0.7.0b3 from PyPI into .tools/secantus"
  python3 -m venv .tools/secantus
  .tools/secantus/bin/pip install -q secantusdb==0.7.0b3
fi

start() {
  nohup "$PY" -m secantus --host 127.0.0.1 --port "$PORT" --storage-path "$DATA" "$@" >>"$LOG" 2>&1 &
  echo $! >"$DATA.pid"
  for _ in $(seq 1 150); do answers && return 0; sleep 0.1; done
  echo "SecantusDB did not start on 127.0.0.1:$PORT; see $LOG" >&2
  exit 1
}

mkdir -p "$DATA"
if [ ! -f "$DATA/.idra-user" ]; then
  # Users are provisioned on an open server, which then restarts with --auth.
  start
  "$PY" - "$PORT" <<'PY'
import sys, pymongo
c = pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true", serverSelectionTimeoutMS=10000)
c.admin.command("createUser", "idra", pwd="idra-secret", roles=["root"])
PY
  kill "$(cat "$DATA.pid")"
  for _ in $(seq 1 100); do kill -0 "$(cat "$DATA.pid")" 2>/dev/null || break; sleep 0.1; done
  touch "$DATA/.idra-user"
fi
start --auth
echo "mongodb (SecantusDB): started on 127.0.0.1:$PORT with auth (log: $LOG)"
