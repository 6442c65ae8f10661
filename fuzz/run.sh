#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time (default 20 s),
# seeded from test-vectors/. Installs nightly and cargo-fuzz if missing.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET]
#
# SEALPOST_FUZZ_TARGETS="a b" runs only the named targets (each must exist).
# Fails if a target crashes, if there are no targets, or if any target
# executed zero inputs (read from libFuzzer's -print_final_stats output).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
# libFuzzer treats -max_total_time=0 as "no limit": refuse it, and anything
# that is not a positive whole number of seconds.
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "fuzz/run.sh: SECONDS_PER_TARGET must be a whole number >= 1, not '$secs'" >&2
  exit 2
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || cargo install cargo-fuzz
python3 make_seeds.py corpus
all=$(cargo +nightly fuzz list)
if [ -z "$all" ]; then
  echo "fuzz/run.sh: cargo fuzz list found no targets" >&2
  exit 1
fi
targets=${SEALPOST_FUZZ_TARGETS:-$all}
for t in $targets; do
  if ! grep -qx -- "$t" <<<"$all"; then
    echo "fuzz/run.sh: no fuzz target named '$t' (targets: $(echo $all))" >&2
    exit 1
  fi
done
mkdir -p corpus
if ! cargo +nightly fuzz build >corpus/build.log 2>&1; then
  tail -40 corpus/build.log >&2
  echo "fuzz/run.sh: building the fuzz targets failed" >&2
  exit 1
fi
passed=0
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "--- $t (${secs}s)"
  log="corpus/$t.log"
  if ! cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 ${SEALPOST_FUZZ_EXTRA_ARGS:-} >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed; the crashing input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
  units=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\)$/\1/p' "$log" | tail -1)
  if [ -z "$units" ]; then
    tail -20 "$log" >&2
    echo "fuzz target $t printed no stat::number_of_executed_units: did it run?" >&2
    exit 1
  fi
  if [ "$units" -eq 0 ]; then
    tail -20 "$log" >&2
    echo "fuzz target $t executed zero inputs" >&2
    exit 1
  fi
  grep -E "^(stat::new_units_added|Done)" "$log" || :
  echo "$t: $units inputs executed"
  passed=$((passed + 1))
done
if [ "$passed" -eq 0 ]; then
  echo "fuzz/run.sh: no target ran" >&2
  exit 1
fi
echo "fuzz: $passed passed, 0 failed"
