# Sourced by bindings/test.sh and bindings/bench/run.sh: installs what the
# Python and Kotlin bindings need when it is missing (idempotent) and sets
#   target, work   the cargo target directory and bindings/ under it
#   venv           a virtualenv with maturin 1.16, pytest, websockets and paho-mqtt
#   kotlin_home    a current kotlinc (npm kotlin-compiler)
#   j              where Debian keeps JNA and JUnit 5
# Tools go under the cargo target directory; nothing is cached outside it.

target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
work="$target/bindings"
mkdir -p "$work"

venv="$work/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/maturin" --version 2>/dev/null | grep -q '^maturin 1\.16\.' \
    || ! "$venv/bin/python" -c 'import pytest, websockets.sync.client, paho.mqtt.client' 2>/dev/null; then
    "$venv/bin/pip" install --quiet 'maturin>=1.16,<1.17' 'pytest>=8' 'websockets>=13' 'paho-mqtt>=2,<3'
fi

need=()
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
dpkg -s libjna-java >/dev/null 2>&1 || need+=(libjna-java)
dpkg -s junit5 >/dev/null 2>&1 || need+=(junit5)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
kotlin_home="$work/kotlin/node_modules/kotlin-compiler"
[ -x "$kotlin_home/bin/kotlinc" ] || npm install --silent --no-audit --no-fund --prefix "$work/kotlin" kotlin-compiler
j=/usr/share/java
