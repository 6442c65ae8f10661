#!/usr/bin/env bash
# Runs the criterion benchmarks (Sealpost, vodozemac's Olm and ring in the
# same run) and prints the figures and ratios for docs/PERFORMANCE.md.
#
#   bash scripts/bench.sh                  # every benchmark, default times
#   bash scripts/bench.sh --bench protocol -- --measurement-time 3 --warm-up-time 1 'session_start|round_trip|x25519'
#
# Arguments are passed to `cargo bench -p sealpost-benches` (after `--`,
# to criterion: a filter, shorter times on a loaded machine).
set -euo pipefail
cd "$(dirname "$0")/.."
results="${CARGO_TARGET_DIR:-target}/criterion"
rm -rf "$results"
cargo bench -q -p sealpost-benches "$@" >/dev/null
python3 benches/summarize.py "$results"
