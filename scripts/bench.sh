#!/usr/bin/env bash
# Runs every criterion benchmark (Sealpost, vodozemac's Olm and ring in the
# same run) and prints the figures and ratios for docs/PERFORMANCE.md.
#
#   bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/criterion
cargo bench -q -p sealpost-benches >/dev/null
python3 benches/summarize.py
