#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a loopback port, for the tests.
#
#   eval "$(bash scripts/pg-cluster.sh start DIR)"   # prints the exports
#   bash scripts/pg-cluster.sh restart DIR           # crash-restart (immediate)
#   bash scripts/pg-cluster.sh stop DIR
#
# `start` installs Debian's PostgreSQL if it is missing, creates a cluster
# in DIR/data owned by an unprivileged user (initdb refuses root), starts it
# listening on 127.0.0.1 only, and prints `export SEALPOST_TEST_DATABASE_URL=…`
# (trust authentication: the port is reachable from this machine only).
set -euo pipefail
cmd=${1:?usage: pg-cluster.sh start|restart|stop DIR}
dir=${2:?usage: pg-cluster.sh start|restart|stop DIR}

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

# Runs a server binary as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$(cat "$dir/owner")" -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if ! bin >/dev/null; then
        echo "installing PostgreSQL from Debian's packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql >&2
        # The package starts a system cluster; the tests use their own.
        if command -v pg_lsclusters >/dev/null; then
            pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
                pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
            done
        fi
    fi
    pgbin=$(bin) || { echo "pg-cluster: no initdb found after installing" >&2; exit 1; }
    mkdir -p "$dir"
    owner=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        if id postgres >/dev/null 2>&1; then owner=postgres; else
            id sealpost-pg >/dev/null 2>&1 || useradd --system --no-create-home sealpost-pg
            owner=sealpost-pg
        fi
    fi
    echo "$owner" > "$dir/owner"
    if [ "$owner" != "$(id -un)" ]; then
        runuser -u "$owner" -- mktemp -d /tmp/sealpost-pg.XXXXXX > "$dir/root"
    fi
    pg=$(home)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$pgbin/initdb" -D "$pg/data" -U sealpost -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner tee -a "$pg/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg'
max_connections = 300
fsync = on
synchronous_commit = on
CONF
    as_owner "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 start >/dev/null \
        || { cat "$pg/server.log" >&2; exit 1; }
    echo "$port" > "$dir/port"
    echo "export SEALPOST_TEST_DATABASE_URL=postgres://sealpost@127.0.0.1:$port/postgres"
    ;;
restart)
    pg=$(home)
    as_owner "$(bin)/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 60 -m immediate restart >/dev/null
    ;;
stop)
    pg=$(home)
    if [ -f "$pg/data/postmaster.pid" ]; then
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
