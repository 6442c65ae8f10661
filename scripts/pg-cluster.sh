#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a loopback port, for the tests.
#
#   out=$(bash scripts/pg-cluster.sh start DIR) && eval "$out"   # the exports
#   bash scripts/pg-cluster.sh restart DIR           # crash-restart (immediate)
#   bash scripts/pg-cluster.sh stop DIR
#
# `start` installs Debian's PostgreSQL if it is missing (as root; otherwise
# it says what to install), creates a cluster owned by an unprivileged user
# (initdb refuses root: as root that is the dedicated user `sealpost-pg`,
# never the system's `postgres`), starts it listening on 127.0.0.1 only, and
# prints `export SEALPOST_TEST_DATABASE_URL=…`. Every connection needs the
# cluster's password (SCRAM), a random one made here and kept only in that
# URL, so other local users cannot use the cluster; its files and socket are
# in a directory only the owner may enter.
set -euo pipefail
cmd=${1:?usage: pg-cluster.sh start|restart|stop DIR}
dir=$(realpath -m -- "${2:?usage: pg-cluster.sh start|restart|stop DIR}")
owner_name=sealpost-pg
# shellcheck source=scripts/debian.sh
. "$(dirname "$0")/debian.sh"

bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

# Where the cluster lives: DIR itself, or (as root) a directory of the
# owner's own that DIR/root names, since the owner may not enter DIR.
home() {
    if [ -f "$dir/root" ]; then cat "$dir/root"; else echo "$dir"; fi
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$owner_name" -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if ! bin >/dev/null; then
        debian_install pg-cluster postgresql
        # The package starts a system cluster; the tests use their own.
        if command -v pg_lsclusters >/dev/null; then
            pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
                pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
            done
        fi
    fi
    pgbin=$(bin) || { echo "pg-cluster: no initdb found after installing" >&2; exit 1; }
    command -v python3 >/dev/null || { echo "pg-cluster: python3 is needed to pick a free port" >&2; exit 1; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then
        id "$owner_name" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner_name"
        runuser -u "$owner_name" -- mktemp -d /tmp/sealpost-pg.XXXXXX > "$dir/root"
    fi
    pg=$(home)
    password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # The password file lives only while initdb reads it.
    (umask 077; printf '%s\n' "$password" | as_owner tee "$pg/pwfile" >/dev/null)
    as_owner "$pgbin/initdb" -D "$pg/data" -U sealpost -A scram-sha-256 --pwfile="$pg/pwfile" \
        --no-sync --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; as_owner rm -f "$pg/pwfile"; exit 1; }
    as_owner rm -f "$pg/pwfile"
    as_owner tee -a "$pg/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg'
unix_socket_permissions = 0700
max_connections = 300
fsync = on
synchronous_commit = on
CONF
    as_owner "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 start >/dev/null \
        || { as_owner cat "$pg/server.log" >&2; exit 1; }
    echo "$port" > "$dir/port"
    echo "export SEALPOST_TEST_DATABASE_URL=postgres://sealpost:$password@127.0.0.1:$port/postgres"
    ;;
restart)
    pg=$(home)
    as_owner "$(bin)/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 -m immediate restart >/dev/null
    ;;
stop)
    [ -d "$dir" ] || exit 0
    pg=$(home)
    if as_owner test -f "$pg/data/postmaster.pid"; then
        as_owner "$(bin)/pg_ctl" -D "$pg/data" -w -t 60 -m fast stop >/dev/null || true
    fi
    [ "$pg" = "$dir" ] || rm -rf "$pg"
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg-cluster.sh start|restart|stop DIR" >&2
    exit 2
    ;;
esac
