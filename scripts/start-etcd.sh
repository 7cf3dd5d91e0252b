#!/usr/bin/env bash
# Starts a single-node etcd for the tests on 127.0.0.1:23790 (our own ports, so a system
# etcd on 2379 is never touched), unless one already answers there. Idempotent and fast.
set -euo pipefail

PORT="${IDRA_TEST_ETCD_PORT:-23790}"
PEER_PORT="${IDRA_TEST_ETCD_PEER_PORT:-23800}"
DATA="${IDRA_TEST_ETCD_DIR:-${TMPDIR:-/tmp}/idra-test-etcd-$PORT}"
LOG="$DATA.log"

healthy() { ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$PORT" --dial-timeout=1s endpoint health >/dev/null 2>&1; }

if healthy; then
  echo "etcd: already running on 127.0.0.1:$PORT"
  exit 0
fi
command -v etcd >/dev/null || { echo "etcd is not installed: run scripts/setup-test-deps.sh" >&2; exit 1; }

rm -rf "$DATA"
mkdir -p "$DATA"
nohup etcd --name idra-test --data-dir "$DATA" \
  --listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "idra-test=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync >"$LOG" 2>&1 &

for _ in $(seq 1 100); do
  if healthy; then echo "etcd: started on 127.0.0.1:$PORT (log: $LOG)"; exit 0; fi
  sleep 0.1
done
echo "etcd did not become healthy on 127.0.0.1:$PORT; its log:" >&2
tail -20 "$LOG" >&2
exit 1
