#!/usr/bin/env bash
# Queue benchmark: JSON log lines over `tcp` (codec json_lines) → an output that costs
# nothing (stdout, codec dots: one byte per event, which is how the script sees the end),
# with the memory queue, the persisted queue at its defaults, and the persisted queue
# syncing every batch (queue.checkpoint.writes 1). Prints events/s, CPU seconds and
# peak RSS of the sluice process for each.
#
#   benches/queue.sh                 # 200,000 lines, 2 workers
#   N=1000000 WORKERS=4 benches/queue.sh
#   SLUICE=/path/to/sluice benches/queue.sh   # another build (skips cargo build)
#
# A run is timed from the first byte sent to the last event out.
# The persisted queue lives in a temporary directory under target/ (a real disk, not
# /tmp, which may be tmpfs and would hide the cost of fsync).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200000}
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-125}

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

run() { # name, extra sluice flags...
  local name=$1
  shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -rf "$tmp/data" "$tmp/out"
  mkfifo "$tmp/out"
  /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$SLUICE" -w "$WORKERS" -b "$BATCH" \
    --log.level error --path.data "$tmp/data" "$@" -e \
    "input { tcp { host => \"127.0.0.1\" port => $port codec => json_lines } } output { stdout { codec => dots } }" \
    > "$tmp/out" &
  local timer=$!
  exec 4<"$tmp/out"
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  local start end
  start=$(date +%s.%N)
  cat "$data" > "/dev/tcp/127.0.0.1/$port" &
  head -c "$N" <&4 > /dev/null
  end=$(date +%s.%N)
  pkill -TERM -P "$timer" || true
  cat <&4 > /dev/null || true
  exec 4<&-
  wait "$timer" 2>/dev/null || true
  read -r _ user sys rss < <(tail -n 1 "$tmp/time")
  python3 - "$name" "$start" "$end" "$user" "$sys" "$rss" "$N" <<'PY'
import sys
name, start, end, user, sys_, rss, n = sys.argv[1:]
secs = float(end) - float(start)
print(f"{name:<20} {int(n)} events in {secs:.2f}s: {int(n)/secs:>9,.0f} events/s, "
      f"CPU {float(user)+float(sys_):.2f}s (whole run), peak RSS {int(rss)/1024:.1f} MiB")
PY
}

run memory
run persisted --queue.type persisted
run "persisted writes=1" --queue.type persisted --queue.checkpoint.writes 1
