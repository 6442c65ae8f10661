#!/usr/bin/env bash
# Regenerates test-vectors/ deterministically. With --check, regenerates into
# a temporary folder and fails if the committed files differ.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cargo run -q -p sealpost --example gen_vectors -- "$tmp" >/dev/null
  for f in "$tmp"/*.json; do
    if ! cmp -s "$f" "test-vectors/$(basename "$f")"; then
      echo "test-vectors/$(basename "$f") is out of date: run bash scripts/regen-vectors.sh" >&2
      exit 1
    fi
  done
  echo "test vectors are up to date"
else
  cargo run -q -p sealpost --example gen_vectors -- test-vectors
fi
