#!/usr/bin/env bash
# A throwaway Mosquitto broker on a loopback port, for the tests, with the
# dynamic-security plugin as its only access control (as docs/RELAY.md
# section 14 asks an operator to set it up).
#
#   out=$(bash scripts/mqtt-broker.sh start DIR) && eval "$out"   # the exports
#   bash scripts/mqtt-broker.sh restart DIR     # stop (SIGTERM) and start again: same port, same state
#   bash scripts/mqtt-broker.sh stop DIR
#   bash scripts/mqtt-broker.sh install         # only the package (DIR unused)
#
# `start` installs Debian's mosquitto if it is missing (as root; otherwise it
# says what to install), writes a configuration in DIR (anonymous clients
# refused, sessions and queued messages persisted in DIR), starts the broker
# on a free loopback port, and creates two dynamic-security clients with
# random passwords: `admin` (every right, for tests that inspect the broker)
# and `sealpost-relay`, whose role holds exactly what the relay needs (the
# plugin's command topics and the `sealpost/` topics). It prints:
#   export SEALPOST_TEST_MQTT_PORT=…
#   export SEALPOST_TEST_MQTT_ADMIN_PASSWORD=…
#   export SEALPOST_TEST_MQTT_RELAY_PASSWORD_FILE=DIR/relay.pw
# With DIR/tls.crt and DIR/tls.key present before `start` (PEM), it also
# listens with TLS on a second loopback port and prints
#   export SEALPOST_TEST_MQTT_TLS_PORT=…
set -euo pipefail
cmd=${1:?usage: mqtt-broker.sh start|restart|stop DIR, or install}
dir=$(realpath -m -- "${2:-.}")
plugin=$(ls /usr/lib/*/mosquitto_dynamic_security.so 2>/dev/null | head -n 1 || true)
# shellcheck source=scripts/debian.sh
. "$(dirname "$0")/debian.sh"

wait_for_port() {
    local port=$1
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "mqtt-broker: nothing listens on port $port; its log:" >&2
    cat "$dir/broker.log" >&2 || true
    return 1
}

launch() {
    mosquitto -c "$dir/mosquitto.conf" >>"$dir/broker.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_for_port "$(cat "$dir/port")"
}

halt() {
    [ -f "$dir/pid" ] || return 0
    local pid
    pid=$(cat "$dir/pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
}

ctrl() {
    mosquitto_ctrl -h 127.0.0.1 -p "$(cat "$dir/port")" -u admin -P "$(cat "$dir/admin.pw")" dynsec "$@" \
        >>"$dir/ctrl.log" 2>&1 || { echo "mqtt-broker: mosquitto_ctrl dynsec $1 failed:" >&2; cat "$dir/ctrl.log" >&2; exit 1; }
}

install() {
    if ! command -v mosquitto >/dev/null || [ -z "$plugin" ]; then
        debian_install mqtt-broker mosquitto
        # The package may start a system broker on 1883; the tests use their own.
        if command -v systemctl >/dev/null; then systemctl stop mosquitto >/dev/null 2>&1 || true; fi
        plugin=$(ls /usr/lib/*/mosquitto_dynamic_security.so | head -n 1)
    fi
}

case "$cmd" in
install)
    install
    ;;
start)
    install
    command -v python3 >/dev/null || { echo "mqtt-broker: python3 is needed to pick a free port" >&2; exit 1; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    (umask 077
     head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/admin.pw"
     head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$dir/relay.pw")
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    mosquitto_ctrl dynsec init "$dir/dynsec.json" admin "$(cat "$dir/admin.pw")" >"$dir/ctrl.log" 2>&1
    cat >"$dir/mosquitto.conf" <<CONF
# Written by scripts/mqtt-broker.sh for one test run.
user $(id -un)
per_listener_settings false
allow_anonymous false
listener $port 127.0.0.1
plugin $plugin
plugin_opt_config_file $dir/dynsec.json
persistence true
persistence_location $dir/
autosave_interval 1
log_dest stderr
log_type error
log_type warning
log_type notice
CONF
    if [ -f "$dir/tls.crt" ] && [ -f "$dir/tls.key" ]; then
        tls_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        cat >>"$dir/mosquitto.conf" <<CONF
listener $tls_port 127.0.0.1
certfile $dir/tls.crt
keyfile $dir/tls.key
CONF
    fi
    launch
    if [ -n "${tls_port:-}" ]; then wait_for_port "$tls_port"; fi
    ctrl createRole sealpost-relay
    # The plugin's commands and answers; the topics under sealpost/, and
    # requests through the relays' shared subscription. (Answers on $
    # topics need their publishClientReceive: no default covers them.)
    for acl in 'publishClientSend $CONTROL/dynamic-security/#' 'publishClientReceive $CONTROL/dynamic-security/#' \
        'subscribePattern $CONTROL/dynamic-security/#' 'publishClientSend sealpost/#' \
        'publishClientReceive sealpost/#' 'subscribePattern $share/sealpost-relay/sealpost/#'; do
        # shellcheck disable=SC2086
        ctrl addRoleACL sealpost-relay $acl allow
    done
    ctrl createClient sealpost-relay -p "$(cat "$dir/relay.pw")"
    ctrl addClientRole sealpost-relay sealpost-relay
    echo "export SEALPOST_TEST_MQTT_PORT=$port"
    echo "export SEALPOST_TEST_MQTT_ADMIN_PASSWORD=$(cat "$dir/admin.pw")"
    echo "export SEALPOST_TEST_MQTT_RELAY_PASSWORD_FILE=$dir/relay.pw"
    if [ -n "${tls_port:-}" ]; then echo "export SEALPOST_TEST_MQTT_TLS_PORT=$tls_port"; fi
    ;;
restart)
    halt
    launch
    ;;
stop)
    [ -d "$dir" ] || exit 0
    halt
    rm -rf "$dir"
    ;;
*)
    echo "usage: mqtt-broker.sh start|restart|stop DIR, or install" >&2
    exit 2
    ;;
esac
