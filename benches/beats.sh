#!/usr/bin/env bash
# Beats benchmark: the Filebeat-like load client (benches/beats_load.rs: N connections,
# window 2048, compressed, 2 windows in flight) → sluice `beats` → `null`, at
# 4 and 100 connections, each at the default `-w` and at `-w 1`. For each run it prints
# events/s, the CPU seconds sluice used (user + system) and their cost per event, the
# peak RSS of the sluice process, and the load average when the run ended. On a busy
# machine events/s is noise; compare CPU µs per event.
#
#   benches/beats.sh                          # all four runs
#   RUNS="4:2" EVENTS=4000000 benches/beats.sh  # only 4 connections with -w 2
#   SLUICE=/path/to/other/sluice benches/beats.sh   # another build, same client
#
# RUNS is a list of CONNECTIONS:WORKERS (WORKERS `default`: sluice's own default, the
# number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-2000000}
RUNS=${RUNS:-"4:default 100:default 4:1 100:1"}
SLUICE=${SLUICE:-target/release/sluice}

if [ "$SLUICE" = target/release/sluice ]; then
  cargo build --release --quiet
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The load client's executable, run directly so that no cargo lock is taken mid-run.
# `cargo bench` builds it optimized (the bench profile is the release profile): a debug
# client is slower than sluice itself and the figures would measure the client.
if ! cargo bench --bench beats_load --no-run --message-format json >"$tmp/build.json" 2>"$tmp/build.err"; then
  cat "$tmp/build.err" >&2
  exit 1
fi
client=$(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "beats_load" and m.get("executable"):
        assert m["profile"]["opt_level"] == "3", "the load client is not optimized"
        print(m["executable"])' "$tmp/build.json")

run() {
  local conns=$1 workers=$2
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local wflag=()
  [ "$workers" != default ] && wflag=(-w "$workers")
  /usr/bin/time -f "%U %S %M" -o "$tmp/time" "$SLUICE" "${wflag[@]}" --log.level warn -e \
    "input { beats { host => \"127.0.0.1\" port => $port } } output { null {} }" &
  local server=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  PORT=$port CONNS=$conns EVENTS=$EVENTS "$client" --bench >"$tmp/client"
  kill -TERM "$(pgrep -P "$server")" # sluice, the child of time
  wait "$server" || true
  local load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  # "beats  N events over C connections in Ss: R events/s"
  read -r events secs rate < <(awk '/^beats/ { sub(/s:$/, "", $8); print $2, $8, $9 }' "$tmp/client")
  read -r user sys rss_kb <"$tmp/time"
  awk -v c="$conns" -v w="$workers" -v e="$events" -v r="$rate" -v u="$user" -v s="$sys" \
    -v m="$rss_kb" -v l="$load" 'BEGIN {
      cpu = u + s
      printf "beats conns=%-3s -w %-7s %9d events  %8.0f events/s  cpu %6.2f s (user %.2f sys %.2f)  %5.2f cpu-µs/event  peak RSS %4d MiB  load %s\n",
        c, w, e, r, cpu, u, s, cpu * 1e6 / e, m / 1024, l
    }'
}

echo "sluice: $SLUICE  client: $client"
for spec in $RUNS; do
  run "${spec%%:*}" "${spec##*:}"
done
