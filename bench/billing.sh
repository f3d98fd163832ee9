#!/usr/bin/env bash
# Billing benchmarks (issue 5). Prints each figure with its baseline from the same run:
#   1. a billing cycle for N accounts on SQLite (VEE on N reads, bills and lines, penalties
#      and ageing over the unpaid bills, one transaction) against a plain insert of the
#      same rows into a fresh database with the same schema;
#   2. penalty + ageing recomputation in memory for N accounts × 12 bills against a plain
#      sum over the same bills.
# Usage: bench/billing.sh [N=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target}"
cargo build --release -p kehu-store --example billing_bench -q
/usr/bin/time -f "   wall %e s, peak RSS %M KiB" "$CARGO_TARGET_DIR/release/examples/billing_bench" "$N" "${TMPDIR:-/tmp}"
