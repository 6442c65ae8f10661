#!/usr/bin/env bash
# Regenerates test-vectors/ deterministically (core/examples/gen_vectors.rs).
#
# With --check, regenerates into a temporary folder and fails if
#   - a generated file differs from the committed one,
#   - a generated file is not committed, or
#   - a committed test-vectors/*.json file is no longer generated.
# mlkem.json is made by test-vectors/mlkem.py with OpenSSL's randomized
# encapsulation, so it is not regenerated: `mlkem.py --check` verifies
# everything in it that is deterministic (seeds, keys, decapsulations).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cargo run -q -p sealpost --example gen_vectors -- "$tmp" >/dev/null
  # Files made outside gen_vectors, each with its own deterministic check.
  others=(mlkem.json)
  python3 test-vectors/mlkem.py --check test-vectors/mlkem.json
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    committed=$(git ls-files -- ':(glob)test-vectors/*.json' | xargs -r -n1 basename | sort)
  else
    committed=$(cd test-vectors && ls -- *.json | sort)
  fi
  generated=$( (cd "$tmp" && ls -- *.json; printf '%s\n' "${others[@]}") | sort)
  if [ -z "$(cd "$tmp" && ls -- *.json 2>/dev/null)" ]; then
    echo "gen_vectors wrote no vector file" >&2
    exit 1
  fi
  status=0
  for f in $(comm -23 <(echo "$committed") <(echo "$generated")); do
    echo "test-vectors/$f is committed but no longer generated: remove it or generate it" >&2
    status=1
  done
  for f in $(comm -13 <(echo "$committed") <(echo "$generated")); do
    echo "test-vectors/$f is generated but not committed: run bash scripts/regen-vectors.sh and commit it" >&2
    status=1
  done
  checked=0
  for f in "$tmp"/*.json; do
    name=$(basename "$f")
    if ! cmp -s "$f" "test-vectors/$name"; then
      echo "test-vectors/$name is out of date: run bash scripts/regen-vectors.sh" >&2
      status=1
    fi
    checked=$((checked + 1))
  done
  [ "$status" = 0 ] || exit 1
  echo "test vectors are up to date ($checked regenerated and compared, ${#others[@]} checked by their own script)"
else
  cargo run -q -p sealpost --example gen_vectors -- test-vectors
fi
