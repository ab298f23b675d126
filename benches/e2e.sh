#!/usr/bin/env bash
# End-to-end benchmark: JSON log lines through `stdin` and through `tcp`
# (codec json_lines) → correlation + mutate → stdout dots (one byte per event), the same
# pipeline but for its input, printing events/s, MiB/s and the peak RSS of the sluice
# process. Each run fails unless exactly N events came out.
#
#   benches/e2e.sh              # 1,000,000 lines, 2 workers
#   N=200000 WORKERS=1 benches/e2e.sh
#
# The data is the bundled tests/data/json-20000.log.gz repeated up to N lines.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-125}

cargo build --release --quiet
bin=target/release/sluice
data=target/bench-data/json-$N.log
if [ ! -s "$data" ]; then
  mkdir -p target/bench-data
  src=target/bench-data/sample-20000.log
  gzip -dc tests/data/json-20000.log.gz > "$src"
  reps=$(( (N + 19999) / 20000 ))
  for _ in $(seq "$reps"); do cat "$src"; done | head -n "$N" > "$data"
fi
bytes=$(stat -c %s "$data")

filters='correlation {} mutate { add_field => { "environment" => "production" } }'
output='stdout { codec => dots }'

report() { # name seconds rss_kib
  python3 - "$@" "$N" "$bytes" <<'PY'
import sys
name, secs, rss, n, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"{name:<6} {n} events in {secs:.2f}s: {n/secs:,.0f} events/s, {size/secs/2**20:.1f} MiB/s, peak RSS {rss/1024:.1f} MiB")
PY
}

check() { # name events_out
  if [ "$2" -ne "$N" ]; then
    echo "$1: $2 events came out of $N" >&2
    exit 1
  fi
}

# stdin: the process ends at EOF, so its own run time is the measurement.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -f "%e %M" -o "$tmp/stdin.time" "$bin" -w "$WORKERS" -b "$BATCH" --log.level warn -e \
  "input { stdin { codec => json_lines } } filter { $filters } output { $output }" < "$data" > "$tmp/stdin.out"
check stdin "$(stat -c %s "$tmp/stdin.out")"
read -r secs rss < "$tmp/stdin.time"
report stdin "$secs" "$rss"

# tcp: the run ends when N bytes (events) came out.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkfifo "$tmp/out"
/usr/bin/time -f "%e %M" -o "$tmp/tcp.time" "$bin" -w "$WORKERS" -b "$BATCH" --log.level error -e \
  "input { tcp { host => \"127.0.0.1\" port => $port codec => json_lines } } filter { $filters } output { $output }" \
  > "$tmp/out" &
timer=$!
exec 4<"$tmp/out"
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
start=$(date +%s.%N)
cat "$data" > "/dev/tcp/127.0.0.1/$port" &
# Fewer than N events would leave head waiting: bound the wait, then count.
timeout "${TCP_TIMEOUT:-300}" head -c "$N" <&4 > "$tmp/tcp.out" || true
end=$(date +%s.%N)
check tcp "$(stat -c %s "$tmp/tcp.out")"
pkill -TERM -P "$timer" || true
exec 4<&-
wait "$timer" 2>/dev/null || true
read -r _ rss < <(tail -n 1 "$tmp/tcp.time")
report tcp "$(python3 -c "print($end - $start)")" "$rss"
