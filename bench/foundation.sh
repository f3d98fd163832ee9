#!/usr/bin/env bash
# Foundation benchmarks (issue: foundation). Prints each figure with its baseline from the
# same run:
#   1. import of N customers from CSV into SQLite vs `sqlite3 .import` of the same file into
#      a bare table, and into PostgreSQL vs `COPY` of the same file (rows/s, ratio, peak RSS);
#   2. `kehu demo --customers N` wall time;
#   3. GET /api/v1/customers/{id} on the demo database under wrk (p50/p99, requests/s),
#      against GET /healthz (the server's floor) in the same run.
# Usage: bench/foundation.sh [N=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target}"
cargo build --release -p kehu -q
KEHU="$CARGO_TARGET_DIR/release/kehu"
command -v sqlite3 >/dev/null || apt-get install -y -qq sqlite3 >/dev/null
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
work=$(mktemp -d /tmp/kehu-bench.XXXXXX)
source .ci/pg.sh
trap 'kehu_pg_stop; rm -rf "$work"' EXIT
PSQL="psql -q -X -v ON_ERROR_STOP=1 $KEHU_PG_URL"

# compare BASELINE_NAME: prints baseline and kehu rows/s and their ratio
compare() {
  python3 - "$1" "$N" "$base_t" "$kehu_t" "$kehu_rss" <<'PY'
import sys
name, n, b, k, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"   {name:16s}: {b:6.2f} s  {n/b:10.0f} rows/s")
print(f"   {'kehu import':16s}: {k:6.2f} s  {n/k:10.0f} rows/s  peak RSS {rss/1024:.0f} MB")
print(f"   ratio kehu/baseline rows/s: {b/k:.2f}x (target >= 0.5x, RSS < 200 MB)")
PY
}
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
# run CMD… : sets T (wall seconds) and RSS (peak KiB)
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r T RSS <"$work/time"
}

echo "== input: $N customers"
"$KEHU" demo --customers "$N" --seed 1 --csv-dir "$work/in" --customers-only 2>/dev/null
csv="$work/in/customers.csv"
ls -l "$csv" | awk '{printf "   %s bytes\n", $5}'

echo "== 1a. SQLite: sqlite3 .import (bare table) vs kehu import (validated, idempotent upsert, indexed)"
measure sqlite3 "$work/base.db" ".mode csv" ".import $csv customers_bare"
base_t=$T
measure "$KEHU" --data-dir "$work/kehu-sqlite" import customers "$csv"
kehu_t=$T; kehu_rss=$RSS
compare "sqlite3 .import"
measure "$KEHU" --data-dir "$work/kehu-sqlite" import customers "$csv"
echo "   re-import of the same file (all updates): $(secs "$T") s, peak RSS $((RSS/1024)) MB"

echo "== 1b. PostgreSQL: COPY (bare table) vs kehu import"
$PSQL -c "CREATE DATABASE base" -c "CREATE DATABASE kehu"
base_url="${KEHU_PG_URL%/*}/base"
cols=$(head -1 "$csv")
psql -q -X "$base_url" -c "CREATE TABLE customers_bare ($(echo "$cols" | sed 's/,/ text,/g') text)"
measure psql -q -X "$base_url" -c "\\copy customers_bare FROM '$csv' WITH (FORMAT csv, HEADER true)"
base_t=$T
measure "$KEHU" --database-url "${KEHU_PG_URL%/*}/kehu" import customers "$csv"
kehu_t=$T; kehu_rss=$RSS
compare "COPY"
# A second baseline: PostgreSQL's own COPY of the same file into kehu's customers table
# (same column types, same five indexes, built the fastest way: dropped for the load and
# created again after it), i.e. the floor for any loader that keeps kehu's schema.
$PSQL -c "CREATE DATABASE same"
same_url="${KEHU_PG_URL%/*}/same"
"$KEHU" --database-url "$same_url" export customers --out /dev/null
psql -q -X -v ON_ERROR_STOP=1 "$same_url" >/dev/null <<'SQL'
ALTER TABLE customers ALTER COLUMN updated_at SET DEFAULT now();
DROP INDEX customers_name, customers_manager;
ALTER TABLE customers DROP CONSTRAINT customers_external_id_key;
-- kehu derives the phone's last four digits on import; here the database does it.
ALTER TABLE customers DROP COLUMN phone_last4;
ALTER TABLE customers ADD COLUMN phone_last4 TEXT COLLATE "C" GENERATED ALWAYS AS (right(phone, 4)) STORED;
SQL
cat >"$work/same.sql" <<SQL
BEGIN;
\\copy customers ($cols) FROM '$csv' WITH (FORMAT csv, HEADER true)
ALTER TABLE customers ADD CONSTRAINT customers_external_id_key UNIQUE (external_id);
CREATE INDEX customers_name ON customers (name);
CREATE INDEX customers_phone_last4 ON customers (phone_last4);
CREATE INDEX customers_manager ON customers (manager_id);
COMMIT;
SQL
measure psql -q -X -v ON_ERROR_STOP=1 "$same_url" -f "$work/same.sql"
base_t=$T
compare "COPY, same schema"

# The bank only (`--events 0`): the app events and assessments that `kehu demo` adds by
# default belong to the behaviour benchmark (bench/behaviour.sh).
echo "== 2. kehu demo --customers $N --events 0 (customers, holdings, 12 months of transactions; SQLite)"
measure "$KEHU" --data-dir "$work/demo" demo --customers "$N" --seed 42 --events 0
echo "   $(secs "$T") s, peak RSS $((RSS/1024)) MB (target < 120 s)"
grep -o "DemoSummary.*" "$work/err" | sed 's/^/   /'

echo "== 3. GET /api/v1/customers/{id} on the $N-customer demo database (wrk, 2 threads, 32 connections, 15 s)"
port=$(( 40000 + RANDOM % 10000 ))
"$KEHU" --data-dir "$work/demo" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
srv=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
token=$("$KEHU" --data-dir "$work/demo" api-token create bench 2>/dev/null)
cat >"$work/ids.lua" <<LUA
math.randomseed(7)
local h = { ["Authorization"] = "Bearer $token" }
request = function() return wrk.format("GET", "/api/v1/customers/" .. math.random(1, $N), h) end
LUA
wrk -t2 -c32 -d15s --latency -s "$work/ids.lua" "http://127.0.0.1:$port" >"$work/wrk360" 
wrk -t2 -c32 -d15s --latency "http://127.0.0.1:$port/healthz" >"$work/wrkh"
kill -TERM $srv; wait $srv || true
python3 - "$work/wrk360" "$work/wrkh" <<'PY'
import re, sys
def parse(p):
    t = open(p).read()
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
    rps = float(re.search(r"Requests/sec:\s+(\S+)", t).group(1))
    return lat, rps
(l1, r1), (l2, r2) = parse(sys.argv[1]), parse(sys.argv[2])
print(f"   customer 360 : p50 {l1['50']:>8}  p99 {l1['99']:>8}  {r1:9.0f} req/s")
print(f"   /healthz     : p50 {l2['50']:>8}  p99 {l2['99']:>8}  {r2:9.0f} req/s  (baseline: same server, no data)")
print(f"   ratio 360/healthz req/s: {r1/r2:.2f}x")
PY
