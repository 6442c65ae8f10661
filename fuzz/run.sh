#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time (default 20 s),
# seeded from test-vectors/. Installs nightly and cargo-fuzz if missing.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || cargo install cargo-fuzz
python3 make_seeds.py corpus
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build $targets >/dev/null 2>&1 || cargo +nightly fuzz build
passed=0
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "--- $t (${secs}s)"
  log="corpus/$t.log"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed; the crashing input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$log" || true
  passed=$((passed + 1))
done
echo "fuzz: $passed passed, 0 failed"
