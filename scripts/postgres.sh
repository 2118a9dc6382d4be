#!/usr/bin/env bash
# Starts a PostgreSQL 15 server for tests on a free loopback port: Debian's postgresql package,
# its cluster in DIR (initdb + pg_ctl, as the unprivileged `postgres` user when run as root), a
# superuser `harness` with a random password, password authentication over TCP only.
# Prints a postgres:// URL of the `postgres` database once it accepts connections; stop it with
# `scripts/postgres.sh stop DIR`.
#   usage: scripts/postgres.sh DIR | scripts/postgres.sh stop DIR
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed (scripts/setup.sh installs Debian's postgresql)" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "$1" = stop ]; then
  as_owner "$bin/pg_ctl" -D "$2/data" -m immediate stop > /dev/null 2>&1 || true
  exit 0
fi
dir=$1
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
echo "$password" > "$dir/pwfile"
chmod 600 "$dir/pwfile"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pwfile"; fi
as_owner "$bin/initdb" -D "$dir/data" -U harness --pwfile="$dir/pwfile" -A scram-sha-256 \
  --auth-local=trust -E UTF8 --no-sync > "$dir/initdb.log" 2>&1 || {
  cat "$dir/initdb.log" >&2
  exit 1
}
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=on" \
  start > /dev/null || {
  cat "$dir/log" >&2
  exit 1
}
echo "postgres://harness:$password@127.0.0.1:$port/postgres"
