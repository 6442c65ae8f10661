#!/usr/bin/env bash
# Load benchmark of the relay's durable deposit-and-deliver path against a
# baseline (a minimal hyper server that only stores each body in SQLite,
# WAL + synchronous=FULL, group commit), with wrk on loopback, 1 KiB
# envelopes, at 64 and 256 connections. Prints a Markdown table.
#
#   bash scripts/bench-relay.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
threads=2
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk; }
cargo build -q --release -p sealpost-relay --bins --examples
bin=target/release
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

wait_up() {
  for _ in $(seq 1 200); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.05
  done
  echo "server at $1 did not start" >&2
  exit 1
}

# wrk output -> "req/s p50 p99 errors"
summarize() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    /Non-2xx or 3xx responses:/ { err = $5 }
    /Socket errors:/ { serr = $0 }
    END { if (err == "") err = 0; printf "%s %s %s %s\n", rps, p50, p99, err }'
}

echo "| run | connections | requests/s | p50 | p99 | non-2xx | delivered | ratio to baseline |"
echo "|---|---|---|---|---|---|---|---|"
for conns in 64 256; do
  # Baseline first.
  mkdir -p "$tmp/base-$conns"
  "$bin/examples/baseline" 127.0.0.1:9391 "$tmp/base-$conns" 2>/dev/null &
  pids+=($!)
  wait_up http://127.0.0.1:9391/
  mkdir -p "$tmp/prep-$conns"
  # The body file is shared with the relay run below; any 1 KiB-envelope body does.
  "$bin/sealpost-relay" --listen 127.0.0.1:9390 --data-dir "$tmp/relay-$conns" \
    --rate-ip-burst 1e9 --rate-ip-per-sec 1e9 --rate-account-burst 1e9 --rate-account-per-sec 1e9 \
    --rate-ip-write-bytes-burst 1e15 --rate-ip-write-bytes-per-sec 1e15 --max-connections-per-address 100000 --max-requests-in-flight-per-address 100000 \
    --max-mailbox-messages 100000000 --max-clock-skew-secs 3600 2>/dev/null &
  relay_pid=$!
  pids+=($relay_pid)
  wait_up http://127.0.0.1:9390/healthz
  SEALPOST_BENCH_THREADS=$threads "$bin/examples/load" prepare http://127.0.0.1:9390 $((secs * 50000)) "$tmp/prep-$conns"
  base=$(SEALPOST_BENCH_DIR="$tmp/prep-$conns" wrk -t$threads -c$conns -d${secs}s --latency -s scripts/bench/baseline.lua http://127.0.0.1:9391/ | summarize)
  kill "${pids[-2]}" 2>/dev/null || true
  read -r b_rps b_p50 b_p99 b_err <<<"$base"
  echo "| baseline | $conns | $b_rps | $b_p50 | $b_p99 | $b_err | - | 1.00 |"

  "$bin/examples/load" deliver http://127.0.0.1:9390 "$tmp/prep-$conns" $((secs + 5)) > "$tmp/delivered-$conns" &
  deliver_pid=$!
  sleep 0.5
  relay=$(SEALPOST_BENCH_DIR="$tmp/prep-$conns" SEALPOST_BENCH_THREADS=$threads wrk -t$threads -c$conns -d${secs}s --latency -s scripts/bench/deposit.lua http://127.0.0.1:9390/ | summarize)
  wait "$deliver_pid" || true
  kill "$relay_pid" 2>/dev/null || true
  read -r r_rps r_p50 r_p99 r_err <<<"$relay"
  ratio=$(awk -v a="$r_rps" -v b="$b_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  echo "| relay | $conns | $r_rps | $r_p50 | $r_p99 | $r_err | $(cat "$tmp/delivered-$conns") | $ratio |"
done
