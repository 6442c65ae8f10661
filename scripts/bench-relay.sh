#!/usr/bin/env bash
# Load benchmark of the relay's durable deposit-and-deliver path against a
# same-run baseline, with wrk on loopback, 1 KiB envelopes, at 64 and 256
# connections. Prints Markdown tables.
#
#   bash scripts/bench-relay.sh [--backend sqlite|postgres] [--senders N] [--addresses N] [--hold N] [SECONDS]
#
# sqlite (default): one relay on SQLite against relay/examples/baseline.rs
#   (a minimal hyper server storing each body in SQLite, WAL +
#   synchronous=FULL, group commit).
# postgres: two relay instances on one PostgreSQL database (wrk's two
#   threads each talk to one; the recipient is pushed by the first)
#   against relay/examples/baseline_pg.rs (one INSERT per request, the
#   same durability). Uses $SEALPOST_TEST_DATABASE_URL, or starts a
#   throwaway cluster with scripts/pg-cluster.sh.
# --senders N: deposits come from N accounts in turn (1 by default: one
#   hot account and session per thread, the worst case for shared state).
# --addresses N: deposits come from N client addresses in turn, named in
#   X-Forwarded-For with loopback as the trusted proxy (as behind a load
#   balancer); 0 by default: every request from 127.0.0.1.
# --hold N: then opens N WebSocket push connections to one relay and
#   reports the relay's memory per connection (VmRSS growth / N).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=sqlite secs=10 hold=0 senders=1 addresses=0
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend=$2; shift 2 ;;
    --hold) hold=$2; shift 2 ;;
    --senders) senders=$2; shift 2 ;;
    --addresses) addresses=$2; shift 2 ;;
    *) secs=$1; shift ;;
  esac
done
case "$backend" in sqlite | postgres) ;; *) echo "--backend sqlite|postgres" >&2; exit 2 ;; esac
threads=2
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || sudo apt-get install -y wrk; }
cargo build -q --release -p sealpost-relay --bins --examples
bin=target/release
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
pg_dir=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pg_dir" ]; then bash scripts/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
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
    END { if (err == "") err = 0; printf "%s %s %s %s\n", rps, p50, p99, err }'
}

# Everything the relays need lifted for load from one loopback address.
lifted=(--rate-ip-burst 1e9 --rate-ip-per-sec 1e9 --rate-account-burst 1e9 --rate-account-per-sec 1e9
  --rate-ip-write-bytes-burst 1e15 --rate-ip-write-bytes-per-sec 1e15 --max-connections-per-address 1000000
  --max-requests-in-flight-per-address 1000000 --max-mailbox-messages 100000000 --max-clock-skew-secs 3600
  --sender-quota-bytes 1000000000000000)
[ "$addresses" -gt 0 ] && lifted+=(--trusted-proxies 127.0.0.1)

if [ "$backend" = postgres ]; then
  if [ -z "${SEALPOST_TEST_DATABASE_URL:-}" ]; then
    pg_dir="$tmp/pg"
    pg_exports=$(bash scripts/pg-cluster.sh start "$pg_dir") && eval "$pg_exports"
  fi
  db=$SEALPOST_TEST_DATABASE_URL
  command -v psql >/dev/null || PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin | tail -1)"
  # A fresh schema per run: its URL.
  schema_url() {
    local name="bench_$1_$$_$RANDOM"
    psql -q "$db" -c "CREATE SCHEMA $name" >/dev/null
    echo "$db?options=-c%20search_path%3D$name"
  }
fi

echo "Backend: $backend. wrk: $threads threads, ${secs} s per run; $senders sender(s), $addresses forwarded client address(es) (0: all from loopback)."
echo
echo "| run | connections | deposits/s | p50 | p99 | non-2xx | delivered | ratio to baseline |"
echo "|---|---|---|---|---|---|---|---|"
for conns in 64 256; do
  prep="$tmp/prep-$conns"
  mkdir -p "$prep"
  if [ "$backend" = sqlite ]; then
    mkdir -p "$tmp/base-$conns"
    "$bin/examples/baseline" 127.0.0.1:9391 "$tmp/base-$conns" 2>/dev/null &
    base_pid=$!
    ports=9390
  else
    "$bin/examples/baseline_pg" 127.0.0.1:9391 "$(schema_url "base_$conns")" 2>/dev/null &
    base_pid=$!
    ports="9390 9392"
    url=$(schema_url "relay_$conns")
  fi
  pids+=("$base_pid")
  relay_pids=()
  for port in $ports; do
    if [ "$backend" = sqlite ]; then
      store=(--data-dir "$tmp/relay-$conns")
    else
      store=(--data-dir "$tmp/relay-$conns-$port" --database-url "$url")
    fi
    "$bin/sealpost-relay" --listen "127.0.0.1:$port" "${store[@]}" "${lifted[@]}" 2>/dev/null &
    relay_pids+=($!)
    pids+=($!)
    wait_up "http://127.0.0.1:$port/healthz"
  done
  # The relays idle while the baseline runs; the body file is shared.
  SEALPOST_BENCH_SENDERS=$senders SEALPOST_BENCH_THREADS=$threads "$bin/examples/load" prepare http://127.0.0.1:9390 $((secs * 50000)) "$prep"
  wait_up http://127.0.0.1:9391/
  base=$(SEALPOST_BENCH_DIR="$prep" wrk -t$threads -c$conns -d"${secs}s" --latency -s scripts/bench/baseline.lua \
    http://127.0.0.1:9391/ | summarize)
  kill "$base_pid" 2>/dev/null || true
  read -r b_rps b_p50 b_p99 b_err <<<"$base"
  echo "| baseline | $conns | $b_rps | $b_p50 | $b_p99 | $b_err | - | 1.00 |"

  "$bin/examples/load" deliver http://127.0.0.1:9390 "$prep" $((secs + 5)) > "$tmp/delivered-$conns" &
  deliver_pid=$!
  sleep 0.5
  relay=$(SEALPOST_BENCH_DIR="$prep" SEALPOST_BENCH_PORTS="$ports" SEALPOST_BENCH_ADDRESSES=$addresses wrk -t$threads -c$conns -d"${secs}s" --latency \
    -s scripts/bench/deposit.lua http://127.0.0.1:9390/ | summarize)
  wait "$deliver_pid" || true
  kill "${relay_pids[@]}" 2>/dev/null || true
  read -r r_rps r_p50 r_p99 r_err <<<"$relay"
  ratio=$(awk -v a="$r_rps" -v b="$b_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
  name=relay
  [ "$backend" = postgres ] && name="relay ×2"
  echo "| $name | $conns | $r_rps | $r_p50 | $r_p99 | $r_err | $(cat "$tmp/delivered-$conns") | $ratio |"
done

if [ "$hold" -gt 0 ]; then
  # Both the relay and the load tool hold N descriptors: raise the soft
  # limit as far as the hard one allows.
  if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((hold + 1000)) ]; then
    echo "--hold $hold needs an open-file limit of $((hold + 1000)); the hard limit is $(ulimit -Hn)" >&2
    exit 1
  fi
  ulimit -n "$(ulimit -Hn)"
  hold_dir="$tmp/hold"
  mkdir -p "$hold_dir"
  "$bin/sealpost-relay" --listen 127.0.0.1:9394 --data-dir "$tmp/relay-hold" "${lifted[@]}" \
    --max-connections $((hold + 1000)) 2>/dev/null &
  hold_pid=$!
  pids+=("$hold_pid")
  wait_up http://127.0.0.1:9394/healthz
  rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$hold_pid/status"; }
  before=$(rss)
  started=$(date +%s.%N)
  "$bin/examples/load" hold http://127.0.0.1:9394 "$hold" "$hold_dir" &
  pids+=($!)
  while [ ! -f "$hold_dir/held" ]; do sleep 0.2; done
  took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  sleep 2
  after=$(rss)
  read -r held failed <"$hold_dir/held"
  gauge=$(curl -s http://127.0.0.1:9394/metrics | awk '/^sealpost_push_connections / { print $2 }')
  touch "$hold_dir/release"
  echo
  echo "| push connections held | failed | relay's gauge | VmRSS before | VmRSS after | per connection | open in |"
  echo "|---|---|---|---|---|---|---|"
  per=$(awk -v a="$before" -v b="$after" -v n="$held" 'BEGIN { if (n > 0) printf "%.1f KiB", (b - a) / n; else print "n/a" }')
  echo "| $held | $failed | $gauge | $((before / 1024)) MiB | $((after / 1024)) MiB | $per | ${took} s |"
fi
