#!/usr/bin/env bash
# The binding benchmark (issue 11 item 6): 1 KiB encrypt + decrypt round
# trips per second through the Python binding and the Kotlin binding against
# the Rust core, and the per-call overhead of each binding, all from one run
# of this script on a release build (profile release-ffi). Each program times
# the same loop the same way (median of 7 rounds of N calls).
#
#   bash bindings/bench/run.sh [N]      (N round trips per round, default 20000)
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000}

source bindings/env.sh
lib="$target/release-ffi/libsealpost_ffi.so"
out="$work/bench"
rm -rf "$out"
mkdir -p "$out"

cargo build -q --profile release-ffi -p sealpost-ffi --lib --example roundtrip_bench
test -f "$lib"

# Python: a wheel of the same release library.
(cd bindings/python && CARGO_TARGET_DIR="$target" "$venv/bin/maturin" build --quiet --profile release-ffi --out "$out/wheels")
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$out"/wheels/sealpost-*.whl

# Kotlin: generated from the release library, by the uniffi-bindgen that
# maturin's `cargo run` just built (building it here with `cargo build -p`
# would unify other features and compile it twice).
test -x "$target/debug/uniffi-bindgen"
"$target/debug/uniffi-bindgen" generate --no-format --library "$lib" --language kotlin --out-dir "$out/gen"
"$kotlin_home/bin/kotlinc" -nowarn -jvm-target 17 "$out/gen/sealpost/sealpost.kt" bindings/bench/Roundtrip.kt \
    -cp "$j/jna.jar" -d "$out/bench.jar"

"$target/release-ffi/examples/roundtrip_bench" "$n" >"$out/rust.json"
"$venv/bin/python" bindings/bench/roundtrip.py "$n" >"$out/python.json"
java -Djna.library.path="$(dirname "$lib")" -cp "$out/bench.jar:$j/jna.jar:$kotlin_home/lib/kotlin-stdlib.jar" \
    sealpost.bench.RoundtripKt "$n" >"$out/kotlin.json"

python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rust, py, kt = (json.loads((out / f"{l}.json").read_text()) for l in ("rust", "python", "kotlin"))
core = rust["core_round_trip_ns"]
print("1 KiB encrypt + decrypt round trip on an established session (median of 7 rounds)")
print(f"{'':28} {'round trips/s':>14} {'us each':>9} {'vs core':>8} {'per call':>10}")
rows = [("Rust core (baseline)", core, None), ("Rust, binding objects", rust["round_trip_ns"], rust["call_ns"]),
        ("Python binding", py["round_trip_ns"], py["call_ns"]), ("Kotlin binding (JVM)", kt["round_trip_ns"], kt["call_ns"])]
for name, ns, call in rows:
    per = "" if call is None else f"{call / 1000:.2f} us"
    print(f"{name:28} {1e9 / ns:14,.0f} {ns / 1000:9.2f} {core / ns:7.2f}x {per:>10}")
print("per call: the cheapest exported function (is_session_reset on an empty buffer), foreign call included")
PY
