#!/usr/bin/env bash
# Web UI benchmarks (issue 6). On an N-customer demo bank in SQLite (default 1,000,000),
# under wrk on loopback (2 threads, 10 s each), prints latency
# p50/p99 and requests/s of:
#   - GET /healthz                      the server's floor, the baseline of this same run
#   - GET /customers (admin, all)       the first page of the customer list
#   - GET /customers?q=王&scope=all      a name-prefix search page
#   - GET /customers/{random id}        the customer 360 page
# and the page weight (bytes, requests) of the 360 page and of the app home.
# Each at 32 connections (throughput; latency is mostly queueing on a small machine) and
# at 4 connections (latency close to the server time of one request).
# Usage: bench/web.sh [N=1000000]   (KEHU_BENCH_DIR=DIR keeps and reuses the database)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target}"
cargo build --release -p kehu -q
KEHU="$CARGO_TARGET_DIR/release/kehu"
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
work=${KEHU_BENCH_DIR:-$(mktemp -d /tmp/kehu-webbench.XXXXXX)}
mkdir -p "$work"
port=$(( 30000 + RANDOM % 20000 ))
B="http://127.0.0.1:$port"

if [ ! -f "$work/demo/kehu.db" ]; then
  echo "== generating a $N-customer demo bank"
  /usr/bin/time -f "   %e s" "$KEHU" --data-dir "$work/demo" demo --customers "$N" --seed 1 2>&1 | grep -E "^ +[0-9.]+ s$|generated"
fi
KEHU_WEB__APP_DEMO_LOGIN=true "$KEHU" --data-dir "$work/demo" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$B/healthz" >/dev/null && break; sleep 0.2; done

# login ID: prints the session cookie of a staff login
login() {
  local jar="$work/jar-$1"
  rm -f "$jar"
  local csrf
  csrf=$(curl -s -c "$jar" "$B/login" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
  curl -s -b "$jar" -c "$jar" -o /dev/null -d "csrf=$csrf&next=/&staff_id=$1&password=kehu-demo" "$B/login"
  awk '$6 == "kehu_session" { print "kehu_session=" $7 }' "$jar"
}
ADMIN=$(login S0001)
[ -n "$ADMIN" ] || { echo "login failed"; exit 1; }
# Warm the bank-wide dashboard once (it is cached), so the runs below measure the pages.
curl -s -o /dev/null -H "Cookie: $ADMIN" "$B/"

cat >"$work/c360.lua" <<LUA
request = function() return wrk.format("GET", string.format("/customers/C%09d", math.random(1, $N)), {["Cookie"] = "$ADMIN"}) end
LUA
C=32
run() { wrk -t2 -c$C -d10s --latency "$@" >"$work/wrk.out"; python3 - "$work/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"p50 {lat['50']:>9}  p99 {lat['99']:>9}  {rps:9.0f} req/s" + (f"  ({non2xx.group(1)} non-2xx!)" if non2xx else ""))
PY
}
for C in 32 4; do
echo "== wrk on $N customers (2 threads, $C connections, 10 s each)"
printf "   %-32s " "/healthz (baseline)"; run "$B/healthz"; base=$(grep Requests/sec "$work/wrk.out" | awk '{print $2}')
printf "   %-32s " "/customers (first page)"; run -H "Cookie: $ADMIN" "$B/customers?scope=all"; list=$(grep Requests/sec "$work/wrk.out" | awk '{print $2}')
printf "   %-32s " "/customers?q=王 (name prefix)"; run -H "Cookie: $ADMIN" "$B/customers?scope=all&q=%E7%8E%8B"
printf "   %-32s " "/customers/{id} (360 page)"; run -s "$work/c360.lua" "$B"; c360=$(grep Requests/sec "$work/wrk.out" | awk '{print $2}')
python3 -c "import sys; b,l,c=map(float,sys.argv[1:]); print(f'   req/s against /healthz: list {l/b:.2f}x, 360 {c/b:.2f}x')" "$base" "$list" "$c360"
done

echo "== page weight"
css=$(curl -s -o /dev/null -w "%{size_download}" "$B/static/kehu.css")
p360=$(curl -s -o /dev/null -w "%{size_download}" -H "Cookie: $ADMIN" "$B/customers/C000000001")
jar="$work/jar-app"; rm -f "$jar"
csrf=$(curl -s -c "$jar" "$B/app" | grep -o 'name="csrf" value="[^"]*"' | sed 's/.*value="//;s/"$//')
curl -s -b "$jar" -c "$jar" -o /dev/null -d "csrf=$csrf&customer=C000000001" "$B/app/login"
app=$(curl -s -o /dev/null -w "%{size_download}" -b "$jar" "$B/app")
curl -s -b "$jar" "$B/app" | grep -q total-assets || { echo "app login failed"; exit 1; }
echo "   360 page: $p360 bytes HTML + $css bytes CSS = $((p360 + css)) bytes, 2 requests (charts are inline SVG)"
echo "   app home: $app bytes HTML + $css bytes CSS = $((app + css)) bytes, 2 requests"
