#!/usr/bin/env bash
# Beats benchmark: the Filebeat-like load client (benches/beats_load.rs: N connections,
# window 2048, compressed, 2 windows in flight) → sluice `beats` → `null`. Prints
# events/s and the peak RSS of the sluice process.
#
#   benches/beats.sh                    # 4 connections, 2,000,000 events, 2 workers
#   CONNS=100 EVENTS=2048000 benches/beats.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-4}
EVENTS=${EVENTS:-2000000}
WORKERS=${WORKERS:-2}

cargo build --release --quiet
cargo bench --bench beats_load --no-run --quiet 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/time -f "%M" -o "$tmp/rss" target/release/sluice -w "$WORKERS" --log.level warn -e \
  "input { beats { host => \"127.0.0.1\" port => $port } } output { null {} }" &
server=$!
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
PORT=$port CONNS=$CONNS EVENTS=$EVENTS cargo bench --bench beats_load --quiet
kill -TERM "$(pgrep -P "$server")"  # sluice, the child of time
wait "$server" || true
echo "peak RSS of sluice: $(( $(cat "$tmp/rss") / 1024 )) MiB ($CONNS connections)"
