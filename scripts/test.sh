#!/usr/bin/env bash
# Runs every test of the Sealpost workspace. Installs what it needs first
# (idempotently), so it works on a fresh machine as well as a warm one.
set -euo pipefail
cd "$(dirname "$0")/.."

# A whole run builds everything once: incremental compilation caches would
# only cost time and disk (a developer's own cargo commands keep theirs).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# Each step prints the seconds since the start, so a CI log shows where the
# time goes.
start=$SECONDS
step() { printf '\n==> [%ss] %s\n' "$((SECONDS - start))" "$*"; }

step "toolchain components and targets"
rustup component add rustfmt clippy >/dev/null 2>&1 || rustup component add rustfmt clippy
rustup target add thumbv7em-none-eabihf wasm32-unknown-unknown

step "python packages for the independent checks"
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet cryptography

step "format"
cargo fmt --all -- --check

step "clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

step "the public API of sealpost matches core/api/*.txt (every change is a visible decision)"
bash scripts/public-api.sh --check

step "no_std builds of the core"
cargo build -p sealpost --no-default-features --target thumbv7em-none-eabihf
cargo build -p sealpost --no-default-features --target wasm32-unknown-unknown
cargo build -p sealpost-client --target wasm32-unknown-unknown

step "the MQTT device example builds the core as a microcontroller would (no default features)"
core=$(cargo tree -p sealpost-mqtt-device -e normal -f '{p} [{f}]' | grep -E '── sealpost v[^ ]+ \(' | sed 's/ (\*)$//' | sort -u)
echo "$core"
if [ -z "$core" ] || echo "$core" | grep -qv '\[\]$'; then
    echo "examples/mqtt-device must build sealpost without features" >&2
    exit 1
fi

step "test vectors are up to date"
bash scripts/regen-vectors.sh --check

step "a throwaway PostgreSQL cluster on a loopback port (installed from Debian's packages if missing)"
tmp=$(mktemp -d)
cleanup() {
    bash scripts/pg-cluster.sh stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
pg_exports=$(bash scripts/pg-cluster.sh start "$tmp/pg") && eval "$pg_exports"
# The PostgreSQL tests fail instead of skipping when the database is missing.
export SEALPOST_TEST_DATABASE_URL SEALPOST_REQUIRE_POSTGRES=1
psql "$SEALPOST_TEST_DATABASE_URL" -qAtc 'SELECT 1' >/dev/null

step "Mosquitto for the MQTT tests (each test starts its own broker; installed from Debian's packages if missing)"
bash scripts/mqtt-broker.sh install

step "tests"
cargo test --workspace --all-features

step "secret hygiene again in a release build (no debug assertions, full optimization: what ships)"
cargo test --release -p sealpost-hygiene

step "the whole core test suite again with the portable RustCrypto AEADs instead of ring"
cargo test -p sealpost --no-default-features --features std,rsa

step "bindings: Python (maturin wheel, pytest), Kotlin (JVM, JUnit 5) and Swift (generated and checked)"
bash bindings/test.sh

step "bindings: the npm package (wasm-bindgen, wasm-opt, size budget, npm pack; Node and headless Chromium)"
bash bindings/wasm/test.sh

step "independent Python implementation checks every vector (from docs/PROTOCOL.md alone)"
python3 test-vectors/verify.py

step "fuzz every target briefly (fuzz/README.md says how to run them for hours)"
bash fuzz/run.sh "${SEALPOST_FUZZ_SECONDS:-10}"

step "RSA interop with Python's cryptography, both directions"
cargo run -q -p sealpost --features rsa --example rsa_vectors -- "$tmp/from_sealpost.json"
python3 test-vectors/rsa/interop.py check "$tmp/from_sealpost.json"
python3 test-vectors/rsa/interop.py check test-vectors/rsa/from_sealpost.json

step "all green"
