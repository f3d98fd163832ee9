# Sourced by .ci/run and the benchmark scripts: starts a throwaway PostgreSQL 15 cluster on
# 127.0.0.1 in a temporary directory (its own port), exports KEHU_PG_URL, stops it on exit.
set -euo pipefail
pg_bin=/usr/lib/postgresql/15/bin
if [ ! -x "$pg_bin/initdb" ]; then
  echo "installing PostgreSQL 15…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi
pg_dir=$(mktemp -d /tmp/kehu-pg.XXXXXX)
pg_port=${KEHU_PG_PORT:-$(( 20000 + RANDOM % 20000 ))}
pg_user=postgres
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$pg_dir"
  as_pg() { runuser -u postgres -- "$@"; }
else
  pg_user=$(id -un)
  as_pg() { "$@"; }
fi
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U kehu --auth=trust -E UTF8 --locale=C.UTF-8 >"$pg_dir/initdb.log" 2>&1 \
  || { cat "$pg_dir/initdb.log"; exit 1; }
as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
  start >/dev/null || { cat "$pg_dir/server.log"; exit 1; }
kehu_pg_stop() {
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap kehu_pg_stop EXIT
export KEHU_PG_URL="postgres://kehu@127.0.0.1:$pg_port/postgres"
echo "PostgreSQL 15 running on 127.0.0.1:$pg_port (data in $pg_dir, removed at exit)"
