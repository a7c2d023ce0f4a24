#!/usr/bin/env bash
# A throwaway PostgreSQL server for the history store tests, on 127.0.0.1 only, with trust auth.
#
#   bash .ci/postgres.sh run CMD...   start a cluster, run CMD with CHATBOT_TEST_POSTGRES_URL set to it,
#                                     stop the cluster, and exit with CMD's status (`make test` does this).
#                                     With CHATBOT_TEST_POSTGRES_URL already set, just run CMD.
#   bash .ci/postgres.sh start        start a cluster and print its URL (nothing else goes to stdout):
#                                     export CHATBOT_TEST_POSTGRES_URL="$(bash .ci/postgres.sh start)"
#   bash .ci/postgres.sh data         print the cluster folder of the last `start`:
#                                     export CHATBOT_TEST_POSTGRES_DATA="$(bash .ci/postgres.sh data)"
#   bash .ci/postgres.sh stop         stop the cluster the last `start` made and delete its folder.
#
# `run` also exports CHATBOT_TEST_POSTGRES_DATA, the cluster folder, so the fault tests
# (tests/test_store_faults.py) can stop, restart and freeze the server. Its settings (port, socket folder,
# 127.0.0.1 only) are in the cluster's postgresql.conf, so `pg_ctl -D "$CHATBOT_TEST_POSTGRES_DATA" -l LOG
# start` or `restart` needs no other option; as root, run pg_ctl as the owner:
# `runuser -u postgres -- pg_ctl ...`. The tests find pg_ctl next to the `postgres` binary named in the
# cluster's postmaster.opts.
#
# Debian's postgresql is installed first if missing. The cluster runs with fsync off: it holds test data
# only, and its own durability is not under test.
set -euo pipefail

STATE="${TMPDIR:-/tmp}/chatbot-test-postgres.dir"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
say() { echo "postgres.sh: $*" >&2; }

bindir() {
  local initdb
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  [ -n "$initdb" ] && dirname "$initdb"
}

# Run a server command as the cluster's owner: PostgreSQL refuses to run as root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_postgres() {
  [ -n "$(bindir)" ] && return
  say "installing Debian's postgresql…"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
  [ -n "$(bindir)" ] || { say "postgresql is not installed and could not be installed"; exit 1; }
}

# Start a new cluster in a fresh folder; sets DATA and URL.
start_cluster() {
  install_postgres
  local bin port
  bin=$(bindir)
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/chatbot-pg.XXXXXX")
  chmod 755 "$DATA"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DATA"; fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$DATA/cluster" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    >"$DATA/initdb.log" 2>&1 || { cat "$DATA/initdb.log" >&2; exit 1; }
  cat >>"$DATA/cluster/postgresql.conf" <<EOF

# .ci/postgres.sh: a throwaway test server on 127.0.0.1 only
port = $port
unix_socket_directories = '$DATA'
listen_addresses = '127.0.0.1'
fsync = off
max_connections = 200
EOF
  as_owner "$bin/pg_ctl" -D "$DATA/cluster" -l "$DATA/server.log" -w -t 60 start >&2 \
    || { cat "$DATA/server.log" >&2; exit 1; }
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') is listening on 127.0.0.1:$port (data in $DATA)"
  URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

stop_cluster() {
  local data=$1
  if ! as_owner "$(bindir)/pg_ctl" -D "$data/cluster" -m immediate stop >&2; then
    say "could not stop the server in $data; its log is $data/server.log"
    return 1
  fi
  rm -rf "$data"
}

case "${1:-start}" in
  run)
    shift
    if [ -n "${CHATBOT_TEST_POSTGRES_URL:-}" ]; then exec "$@"; fi
    start_cluster
    trap 'stop_cluster "$DATA"' EXIT
    CHATBOT_TEST_POSTGRES_URL="$URL" CHATBOT_TEST_POSTGRES_DATA="$DATA/cluster" "$@"
    ;;
  start)
    start_cluster
    echo "$DATA" >"$STATE"
    echo "$URL"
    ;;
  data)
    [ -f "$STATE" ] || { say "no cluster was started: run \`bash .ci/postgres.sh start\` first"; exit 1; }
    echo "$(cat "$STATE")/cluster"
    ;;
  stop)
    [ -f "$STATE" ] || { say "no cluster to stop"; exit 0; }
    stop_cluster "$(cat "$STATE")"
    rm -f "$STATE"
    ;;
  *)
    say "usage: bash .ci/postgres.sh run CMD... | start | data | stop"
    exit 2
    ;;
esac
