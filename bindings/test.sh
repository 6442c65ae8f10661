#!/usr/bin/env bash
# Builds sealpost-ffi once (debug) and tests the generated bindings in their
# own runtimes: Python (maturin wheel + pytest), Kotlin on the JVM (kotlinc +
# JNA + JUnit 5), and Swift (generated and checked for completeness only: no
# Swift compiler can be installed here). Installs what it needs when it is
# missing, so it runs on a fresh machine as well as a warm one; tools go
# under the cargo target directory, nothing is cached outside it.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() { printf '\n==> bindings [%ss]: %s\n' "$((SECONDS - start))" "$*"; }

step "install what the bindings need (Python venv, JDK, JNA, JUnit 5, kotlinc) when missing"
source bindings/env.sh
lib="$target/debug/libsealpost_ffi.so"
bindgen="$target/debug/uniffi-bindgen"

step "build sealpost-ffi (debug, once for every language)"
# The library alone, as maturin builds it (built together with
# uniffi-bindgen, cargo would unify uniffi's `cli` feature into it and
# maturin would compile it again). uniffi-bindgen is built by maturin's own
# `cargo run` below, and the Kotlin and Swift steps reuse that binary.
cargo build -p sealpost-ffi
test -f "$lib"
# The relay process the end-to-end tests talk to.
cargo build -p sealpost-relay --bin sealpost-relay
export SEALPOST_RELAY="$target/debug/sealpost-relay"
test -x "$SEALPOST_RELAY"

# --- Python -----------------------------------------------------------------
step "python: build the wheel with maturin and install it"
rm -rf "$work/wheels"
(cd bindings/python && CARGO_TARGET_DIR="$target" "$venv/bin/maturin" build --quiet --out "$work/wheels")
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$work"/wheels/sealpost-*.whl
# Type information ships in the wheel.
"$venv/bin/python" - <<'EOF'
import pathlib, sealpost
pkg = pathlib.Path(sealpost.__file__).parent
assert (pkg / "py.typed").is_file(), "py.typed missing from the wheel"
assert "Session" in sealpost.__all__ and "SealpostError" in sealpost.__all__
EOF

step "python: pytest"
(cd bindings/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests)

# --- Kotlin -----------------------------------------------------------------
step "kotlin: generate from the built library"
test -x "$bindgen"
rm -rf "$work/gen"
"$bindgen" generate --no-format --library "$lib" --language kotlin --out-dir "$work/gen/kotlin"

step "kotlin: compile and run the JUnit tests on the JVM"
"$kotlin_home/bin/kotlinc" -nowarn -jvm-target 17 \
    "$work/gen/kotlin/sealpost/sealpost.kt" bindings/kotlin/src/test/kotlin/sealpost/*.kt \
    -cp "$j/jna.jar:$j/junit-jupiter-api.jar:$j/apiguardian-api.jar:$j/opentest4j.jar" \
    -d "$work/kotlin-tests.jar"
java -Djna.library.path="$(dirname "$lib")" -jar "$j/junit-platform-console-standalone.jar" \
    -cp "$work/kotlin-tests.jar:$j/jna.jar:$kotlin_home/lib/kotlin-stdlib.jar" \
    --scan-classpath "$work/kotlin-tests.jar" --fail-if-no-tests --disable-banner --details=summary --disable-ansi-colors

# --- Swift ------------------------------------------------------------------
step "swift: generate Swift, C header and modulemap and check they are complete (not compiled: no Swift compiler here)"
"$bindgen" generate --no-format --library "$lib" --language swift --out-dir "$work/gen/swift"
python3 bindings/swift/check-generated.py "$work/gen/swift" "$lib"

step "bindings: all green"
