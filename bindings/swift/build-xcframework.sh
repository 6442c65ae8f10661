#!/usr/bin/env bash
# Builds SealpostFFI.xcframework (static libraries for iOS devices, the iOS
# simulator and macOS, with the uniffi header and modulemap) and the Swift
# source for Package.swift. Needs macOS with Xcode and rustup; it cannot run
# on the project's Linux machines, where bindings/test.sh only generates and
# checks the same Swift, header and modulemap.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bindings/swift
profile=release-ffi
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
    cargo build -p sealpost-ffi --profile "$profile" --target "$t"
done
cargo build -p uniffi-bindgen
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
lib() { echo "$target/$1/$profile/libsealpost_ffi.a"; }

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
"$target/debug/uniffi-bindgen" generate --library "$target/aarch64-apple-darwin/$profile/libsealpost_ffi.dylib" \
    --language swift --out-dir "$gen"
mkdir -p "$here/Sources/Sealpost"
cp "$gen/Sealpost.swift" "$here/Sources/Sealpost/"
headers="$gen/headers"
mkdir -p "$headers"
cp "$gen/SealpostFFI.h" "$headers/"
# An XCFramework's headers carry the module map under this exact name.
cp "$gen/SealpostFFI.modulemap" "$headers/module.modulemap"

# One library per platform: the simulator and macOS slices are fat.
fat="$gen/fat"
mkdir -p "$fat/ios-sim" "$fat/macos"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$fat/ios-sim/libsealpost_ffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$fat/macos/libsealpost_ffi.a"
rm -rf "$here/SealpostFFI.xcframework"
xcodebuild -create-xcframework \
    -library "$(lib aarch64-apple-ios)" -headers "$headers" \
    -library "$fat/ios-sim/libsealpost_ffi.a" -headers "$headers" \
    -library "$fat/macos/libsealpost_ffi.a" -headers "$headers" \
    -output "$here/SealpostFFI.xcframework"
echo "built $here/SealpostFFI.xcframework and $here/Sources/Sealpost/Sealpost.swift"
