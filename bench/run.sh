#!/usr/bin/env bash
# Idra vs Sling vs a raw binary COPY pipe, Postgres → Postgres on the local server.
#   1,000,000-row initial copy, then 100,000 new rows copied incrementally.
# Then the throughput of every destination on 100,000 rows (agent/benches/destinations.rs).
# Every destination is verified against the source (count and checksum) after every run.
# Usage: make bench   (or bench/run.sh; ROWS / NEW_ROWS / PGURL override the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
NEW_ROWS=${NEW_ROWS:-100000}
PGBASE=${PGBASE:-postgres://postgres@127.0.0.1:5432}
DB=idra_bench
URL="$PGBASE/$DB"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- tools: Idra's release agent, Sling from PyPI (offline binary wheel) --------------
cargo build --release -q -p idra-agent
AGENT=${CARGO_TARGET_DIR:-target}/release/idra-agent
if [ ! -x bench/.venv/bin/python ]; then python3 -m venv bench/.venv; fi
if ! bench/.venv/bin/python -c "import sling_linux_amd64" 2>/dev/null; then
  bench/.venv/bin/pip install -q sling-linux-amd64
fi
SLING=$(bench/.venv/bin/python -c "import os, sling_linux_amd64 as s; print(os.path.join(os.path.dirname(s.__file__), 'bin', 'sling-linux-amd64'))")
export SLING_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 SLING_HOME_DIR="$WORK/sling"

q() { psql "$URL" -qtAX -v ON_ERROR_STOP=1 -c "$1"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
checksum() { q "SELECT count(*) || ' ' || md5(string_agg(id::text || '|' || ts::text || '|' || txt || '|' || amount::text || '|' || n::text, ',' ORDER BY id)) FROM $1"; }
verify() {
  local got; got=$(checksum "$1")
  if [ "$got" != "$(checksum bench_src)" ]; then echo "MISMATCH: $1 has ($got), source has ($(checksum bench_src))" >&2; exit 1; fi
  echo "  verified $1: ${got%% *} rows, checksum matches"
}

# --- source data ------------------------------------------------------------------------
psql "$PGBASE/postgres" -qtAX -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q "CREATE TABLE bench_src (id bigint PRIMARY KEY, ts timestamptz NOT NULL, txt text NOT NULL, amount numeric(12,2) NOT NULL, n int NOT NULL)"
insert_rows() {
  q "INSERT INTO bench_src SELECT g, timestamptz '2024-01-01' + g * interval '1 second', md5(g::text) || to_char(g, 'FM00000000'), (g % 1000000) / 100.0, g % 1000 FROM generate_series($1, $2) g"
  q "VACUUM ANALYZE bench_src"
}
insert_rows 1 "$ROWS"
echo "source: $(q 'SELECT count(*) FROM bench_src') rows (bigint, timestamptz, text of 40 chars, numeric(12,2), int)"

cat > "$WORK/idra.json" <<JSON
{"datasources": [{"name": "pg", "kind": "postgres", "connection_string": "$URL"}],
 "syncs": [{"name": "bench", "source": {"datasource": "pg", "table": "bench_src"},
            "destination": {"datasource": "pg", "table": "bench_idra"},
            "mode": "by_id", "write_mode": "insert", "key_columns": ["id"], "batch_size": 100000}]}
JSON
run_idra() {
  /usr/bin/time -f "%M" -o "$WORK/rss" "$AGENT" --config "$WORK/idra.json" --state-dir "$WORK/state" --once
  IDRA_RSS_KB=$(cat "$WORK/rss")
}
export PG_BENCH="postgresql://postgres@127.0.0.1:5432/$DB?sslmode=disable"
run_sling() { "$SLING" run --src-conn PG_BENCH --src-stream public.bench_src --tgt-conn PG_BENCH --tgt-object public.bench_sling "$@" > "$WORK/sling.log" 2>&1 || { cat "$WORK/sling.log"; exit 1; }; }

echo
echo "== initial copy of $ROWS rows"
t0=$(now); run_idra; t1=$(now)
idra_initial=$(secs "$t0" "$t1"); idra_rss_initial=$IDRA_RSS_KB
echo "idra:  ${idra_initial} s  $(rate "$ROWS" "$idra_initial") rows/s  peak RSS $((IDRA_RSS_KB / 1024)) MiB"
verify bench_idra

t0=$(now); run_sling --mode full-refresh; t1=$(now)
sling_initial=$(secs "$t0" "$t1")
echo "sling: ${sling_initial} s  $(rate "$ROWS" "$sling_initial") rows/s"
verify bench_sling

q "CREATE TABLE bench_copy (LIKE bench_src INCLUDING ALL)"
t0=$(now)
psql "$URL" -qtAX -c "COPY bench_src TO STDOUT (FORMAT binary)" | psql "$URL" -qtAX -c "COPY bench_copy FROM STDIN (FORMAT binary)"
t1=$(now)
copy_initial=$(secs "$t0" "$t1")
echo "copy:  ${copy_initial} s  $(rate "$ROWS" "$copy_initial") rows/s  (COPY TO STDOUT binary | COPY FROM STDIN binary)"
verify bench_copy

# The fair reference for how Idra loads (no index during the load, the key built at the
# end): a COPY pipe into a table without indexes, then ADD PRIMARY KEY.
q "CREATE TABLE bench_copy_pk (LIKE bench_src INCLUDING DEFAULTS)"
t0=$(now)
psql "$URL" -qtAX -c "COPY bench_src TO STDOUT (FORMAT binary)" | psql "$URL" -qtAX -c "COPY bench_copy_pk FROM STDIN (FORMAT binary)"
q "ALTER TABLE bench_copy_pk ADD PRIMARY KEY (id)"
t1=$(now)
copy_pk_initial=$(secs "$t0" "$t1")
echo "copy+pk: ${copy_pk_initial} s  $(rate "$ROWS" "$copy_pk_initial") rows/s  (the same pipe into a table without indexes, then ADD PRIMARY KEY)"
verify bench_copy_pk

echo
echo "== incremental: $NEW_ROWS new rows"
insert_rows $((ROWS + 1)) $((ROWS + NEW_ROWS))
t0=$(now); run_idra; t1=$(now)
idra_incr=$(secs "$t0" "$t1")
echo "idra:  ${idra_incr} s  $(rate "$NEW_ROWS" "$idra_incr") rows/s  peak RSS $((IDRA_RSS_KB / 1024)) MiB"
verify bench_idra
t0=$(now); run_sling --mode incremental --primary-key id --update-key id; t1=$(now)
sling_incr=$(secs "$t0" "$t1")
echo "sling: ${sling_incr} s  $(rate "$NEW_ROWS" "$sling_incr") rows/s"
verify bench_sling

echo
echo "peak RSS idra: initial $((idra_rss_initial / 1024)) MiB, incremental $((IDRA_RSS_KB / 1024)) MiB"
echo "ratio idra/sling initial: $(ratio "$sling_initial" "$idra_initial")"
echo "ratio idra/copy initial: $(ratio "$copy_initial" "$idra_initial")"
echo "ratio idra/copy+pk initial: $(ratio "$copy_pk_initial" "$idra_initial")"
echo "ratio idra/sling incremental: $(ratio "$sling_incr" "$idra_incr")"
echo "(ratios are speed ratios: the other tool's time divided by Idra's; above 1 means Idra is faster)"

echo
# Every destination on 100,000 rows (rows/s), against the peers the tests use.
scripts/start-databases.sh >/dev/null
scripts/start-mongo.sh >/dev/null
cargo bench -q -p idra-agent --bench destinations
