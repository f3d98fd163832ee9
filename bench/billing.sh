#!/usr/bin/env bash
# Billing benchmarks (issue 5). Prints each figure with its baseline from the same run:
#   1. the billing cycle through the store (the product path: Store::add_reads = read intake
#      with VEE, Store::billing_run = tariff, bills and lines, reads marked billed;
#      Store::ageing over every unpaid bill) for N accounts with history, on SQLite and on
#      PostgreSQL (a throwaway PostgreSQL 15 from .ci/pg.sh unless KEHU_PG_URL is set),
#      each against a plain insert of the same reads, bills and lines on that backend;
#   2. penalty + ageing recomputation in memory for N accounts × 12 bills against a plain
#      sum over the same bills.
# Usage: bench/billing.sh [N=1000000] [BACKENDS=sqlite,postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
BACKENDS=${2:-sqlite,postgres}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target}"
cargo build --release -p kehu-store --example billing_bench -q
if [[ "$BACKENDS" == *postgres* && -z "${KEHU_PG_URL:-}" ]]; then
  source .ci/pg.sh
fi
/usr/bin/time -f "   wall %e s, peak RSS %M KiB" "$CARGO_TARGET_DIR/release/examples/billing_bench" "$N" "${TMPDIR:-/tmp}" "$BACKENDS"
