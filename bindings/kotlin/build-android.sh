#!/usr/bin/env bash
# Builds libsealpost_ffi.so for the Android ABIs with cargo-ndk (NDK r28+,
# so segments are 16 KB-aligned) into src/main/jniLibs/<abi>/ and generates
# the Kotlin sources into src/main/kotlin/. Needs the Android NDK
# (ANDROID_NDK_HOME) and `cargo install cargo-ndk`; not run by CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bindings/kotlin
abis=(arm64-v8a armeabi-v7a x86_64)
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
args=()
for abi in "${abis[@]}"; do args+=(-t "$abi"); done
cargo ndk "${args[@]}" -o "$here/src/main/jniLibs" build -p sealpost-ffi --profile release-ffi
cargo build -p uniffi-bindgen
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$target/debug/uniffi-bindgen" generate --library "$here/src/main/jniLibs/arm64-v8a/libsealpost_ffi.so" \
    --language kotlin --no-format --out-dir "$here/src/main/kotlin"
# Check the 16 KB alignment of every LOAD segment (2**14).
for abi in "${abis[@]}"; do
    so="$here/src/main/jniLibs/$abi/libsealpost_ffi.so"
    if readelf -lW "$so" | awk '/LOAD/ { if ($NF != "0x4000" && $NF != "0x10000") bad = 1 } END { exit bad }'; then
        echo "$abi: 16 KB aligned"
    else
        echo "$abi: LOAD segments are not 16 KB aligned (use NDK r28+ or -Wl,-z,max-page-size=16384)" >&2
        exit 1
    fi
done
