#!/usr/bin/env bash
# Records the public API of the `sealpost` crate in core/api/*.txt (one file
# per feature set), from rustdoc's JSON output reduced to a sorted list by
# scripts/public-api.py. With --check, fails when the API differs from the
# committed files, so every widening or narrowing is a visible decision:
# run `bash scripts/public-api.sh` and commit the diff.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-write}
case "$mode" in write | --check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
target=${CARGO_TARGET_DIR:-target}
json="$target/doc/sealpost.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for set in default all-features; do
  flags=()
  [ "$set" = all-features ] && flags=(--all-features)
  rm -f "$json"
  cargo +nightly rustdoc -q -p sealpost --lib "${flags[@]}" -- -Z unstable-options --output-format json
  python3 scripts/public-api.py "$json" >"$tmp/$set.txt"
  lines=$(wc -l <"$tmp/$set.txt")
  if [ "$lines" -lt 50 ]; then
    echo "public API ($set): only $lines items, refusing (rustdoc output changed?)" >&2
    exit 1
  fi
  if [ "$mode" = --check ]; then
    if ! diff -u "core/api/$set.txt" "$tmp/$set.txt"; then
      echo "public API ($set) differs from core/api/$set.txt: run bash scripts/public-api.sh and commit the change" >&2
      status=1
    else
      echo "public API ($set): $lines items, unchanged"
    fi
  else
    mkdir -p core/api
    cp "$tmp/$set.txt" "core/api/$set.txt"
    echo "wrote core/api/$set.txt ($lines items)"
  fi
done
exit $status
