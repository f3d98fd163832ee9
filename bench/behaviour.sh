#!/usr/bin/env bash
# Behaviour benchmarks (issue: behaviour → recommendations). Each prints its figure with a
# baseline from the same run (crates/kehu-server/examples/behaviour_bench.rs):
#   1. in-process state update, 1M customers × 300 products × 20M events, one core, vs
#      counting the same events in a plain hash map; memory per customer × product pair;
#      in-process decision latency vs the non-personalized decision;
#   2. durable ingest over HTTP on loopback (SQLite, batches of 500, state updated, event
#      ids as kehu.js makes them) vs the plain insert of the same events into the same
#      database, no state; rounds alternate the two (median of 5), then the same on a
#      database holding 10M earlier events (the bank's history);
#   3. recommendations over HTTP at a fixed 5,000 requests/s on a generated bank of N
#      customers with ~27 app events each (`kehu demo --events 27`), vs /healthz at the
#      same rate.
# Usage: bench/behaviour.sh [N=1000000]   (KEHU_BENCH_DIR=DIR keeps the bank of part 3 there
# and reuses it when it exists; KEHU_BENCH_ONLY=rec runs part 3 only)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target}"
bank=${KEHU_BENCH_DIR:-}
[ -n "$bank" ] && [ -f "$bank/kehu.db" ] || cargo build --release -q -p kehu
cargo build --release -q -p kehu-server --example behaviour_bench
BENCH="$CARGO_TARGET_DIR/release/examples/behaviour_bench"
KEHU="$CARGO_TARGET_DIR/release/kehu"
work=$(mktemp -d /tmp/kehu-behaviour.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "${KEHU_BENCH_ONLY:-}" != rec ]; then
  echo "== 1. state update, memory, decisions in process"
  "$BENCH" state --customers 1000000 --products 300 --events 20000000
  echo "== 2. ingest over HTTP"
  "$BENCH" ingest --dir "$work/ingest" --customers 10000 --events 1000000 --clients 4 --rounds 5
  "$BENCH" ingest --dir "$work/ingest" --customers 100000 --events 1000000 --clients 4 --rounds 3 --history 10000000
fi
echo "== 3. recommendations over HTTP on $N customers"
bank=${bank:-$work/bank}
if [ ! -f "$bank/kehu.db" ]; then
  /usr/bin/time -f "   demo bank with events: %e s, peak RSS %M KB" \
    "$KEHU" --data-dir "$bank" demo --customers "$N" --events 27 2>&1 | grep -E "demo|rebuilt|peak" || true
fi
echo "-- customers drawn uniformly over the whole bank"
"$BENCH" http-rec --dir "$bank" --rate 5000 --seconds 10
echo "-- customers drawn from an active set of 50,000"
"$BENCH" http-rec --dir "$bank" --rate 5000 --seconds 10 --hot 50000
