#!/usr/bin/env bash
# Queue benchmark: JSON log lines over `tcp` (codec json_lines) → an output that costs
# nothing (stdout, codec dots: one byte per event, which is how the script sees the end),
# with the memory queue, the persisted queue at its defaults, and the persisted queue
# syncing every batch (queue.checkpoint.writes 1), each over 1 and over CONNS concurrent
# connections. Prints events/s, CPU seconds and peak RSS of the sluice process per run,
# then per round the persisted/memory ratios (cases of one round run back to back, so
# the ratios compare like with like on a loaded machine), and the load average.
#
#   benches/queue.sh                 # 200,000 lines, 2 workers, 1 and 8 connections, 3 rounds
#   N=1000000 WORKERS=4 CONNS=16 ROUNDS=5 benches/queue.sh
#   SLUICE=/path/to/sluice benches/queue.sh   # another build (skips cargo build)
#   BEATS=1 benches/queue.sh         # also Beats (benches/beats_load.rs, 4 connections)
#   ONLY='w=1' benches/queue.sh      # only the cases whose name matches (grep -E)
#
# A run is timed from the first byte sent to the last event out.
# The persisted queue lives in a temporary directory under target/ (a real disk, not
# /tmp, which may be tmpfs and would hide the cost of fsync).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200000}
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-125}
CONNS=${CONNS:-8}
ROUNDS=${ROUNDS:-3}
BEATS=${BEATS:-0}
ONLY=${ONLY:-}

if [ -z "${SLUICE:-}" ]; then
  cargo build --release --quiet
  SLUICE=target/release/sluice
fi
data=target/bench-data/json-$N.log
if [ ! -s "$data" ]; then
  mkdir -p target/bench-data
  src=target/bench-data/json-20000.log
  gzip -dc tests/data/json-20000.log.gz > "$src"
  reps=$(( (N + 19999) / 20000 ))
  for _ in $(seq "$reps"); do cat "$src"; done | head -n "$N" > "$data"
fi

mkdir -p target/bench-queue
tmp=$(mktemp -d target/bench-queue/run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# The input cut in CONNS parts of whole lines, one per connection.
mkdir -p "$tmp/parts"
split -n "l/$CONNS" "$data" "$tmp/parts/part."

if [ "$BEATS" = 1 ]; then
  cargo bench --bench beats_load --no-run --quiet 2>/dev/null
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 400); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "sluice did not listen on $1" >&2
  return 1
}

results=$tmp/results
: > "$results"

report() { # round, name, conns, start, end, events
  read -r _ user sys rss < <(tail -n 1 "$tmp/time")
  python3 - "$@" "$user" "$sys" "$rss" "$results" <<'PY'
import sys
rnd, name, conns, start, end, n, user, sys_, rss, results = sys.argv[1:]
secs = float(end) - float(start)
rate = int(n) / secs
print(f"round {rnd} {name:<20} x{conns:<3} {int(n)} events in {secs:6.2f}s: {rate:>9,.0f} events/s, "
      f"CPU {float(user)+float(sys_):.2f}s (whole run), peak RSS {int(rss)/1024:.1f} MiB", flush=True)
with open(results, "a") as f:
    f.write(f"{rnd}\t{name}\t{conns}\t{rate}\t{int(rss)/1024}\n")
PY
}

run_tcp() { # round, name, conns, extra sluice flags...
  local round=$1 name=$2 conns=$3
  if [ -n "$ONLY" ] && ! grep -qE "$ONLY" <<<"$name"; then return 0; fi
  shift 3
  local port
  port=$(free_port)
  rm -rf "$tmp/data" "$tmp/out"
  mkfifo "$tmp/out"
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$SLUICE" -w "$WORKERS" -b "$BATCH" \
    --log.level error --path.data "$tmp/data" "$@" -e \
    "input { tcp { host => \"127.0.0.1\" port => $port codec => json_lines } } output { stdout { codec => dots } }" \
    > "$tmp/out" &
  local timer=$!
  exec 4<"$tmp/out"
  wait_port "$port"
  local start end
  start=$(date +%s.%N)
  if [ "$conns" = 1 ]; then
    cat "$data" > "/dev/tcp/127.0.0.1/$port" &
  else
    # The same events, cut in $conns parts sent at once.
    local sent=0
    for part in "$tmp"/parts/part.*; do
      [ "$sent" -lt "$conns" ] || break
      cat "$part" > "/dev/tcp/127.0.0.1/$port" &
      sent=$((sent + 1))
    done
  fi
  head -c "$N" <&4 > /dev/null
  end=$(date +%s.%N)
  pkill -TERM -P "$timer" || true
  cat <&4 > /dev/null || true
  exec 4<&-
  wait "$timer" 2>/dev/null || true
  wait 2>/dev/null || true
  report "$round" "$name" "$conns" "$start" "$end" "$N"
}

run_beats() { # round, name, extra sluice flags...
  local round=$1 name=$2
  if [ -n "$ONLY" ] && ! grep -qE "$ONLY" <<<"$name"; then return 0; fi
  shift 2
  local port
  port=$(free_port)
  rm -rf "$tmp/data"
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$SLUICE" -w "$WORKERS" -b "$BATCH" \
    --log.level error --path.data "$tmp/data" "$@" -e \
    "input { beats { host => \"127.0.0.1\" port => $port } } output { null {} }" &
  local timer=$!
  wait_port "$port"
  local start end
  start=$(date +%s.%N)
  # The client returns once every window was acked (by then synced, per the queue).
  PORT=$port CONNS=4 EVENTS=$N cargo bench --bench beats_load --quiet > /dev/null
  end=$(date +%s.%N)
  pkill -TERM -P "$timer" || true
  wait "$timer" 2>/dev/null || true
  report "$round" "$name" 4 "$start" "$end" "$N"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
for round in $(seq "$ROUNDS"); do
  for conns in 1 "$CONNS"; do
    run_tcp "$round" "tcp memory" "$conns"
    run_tcp "$round" "tcp persisted" "$conns" --queue.type persisted
    run_tcp "$round" "tcp persisted w=1" "$conns" --queue.type persisted --queue.checkpoint.writes 1
  done
  if [ "$BEATS" = 1 ]; then
    run_beats "$round" "beats memory"
    run_beats "$round" "beats persisted" --queue.type persisted
    run_beats "$round" "beats persisted w=1" --queue.type persisted --queue.checkpoint.writes 1
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$results" <<'PY'
import sys, statistics
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rate = {(r, n, c): float(v) for r, n, c, v, _ in rows}
rss = defaultdict(list)
for _, n, c, _, m in rows:
    rss[(n, c)].append(float(m))
print("\nratio to the memory queue of the same round and connections (median of rounds):")
for (n, c) in sorted({(n, c) for _, n, c in rate}):
    kind = n.split()[0]
    base = f"{kind} memory"
    ratios = [rate[(r, n, c)] / rate[(r, base, c)] for r, n2, c2 in rate
              if n2 == n and c2 == c and (r, base, c) in rate]
    rates = [rate[(r, n2, c2)] for r, n2, c2 in rate if n2 == n and c2 == c]
    ratio = (f"ratio {statistics.median(ratios):.2f} (rounds: {', '.join(f'{x:.2f}' for x in ratios)})"
             if ratios else "ratio - (no memory run)")
    print(f"  {n:<20} x{c:<3} {statistics.median(rates):>9,.0f} events/s  {ratio}  "
          f"peak RSS max {max(rss[(n, c)]):.1f} MiB")
PY
