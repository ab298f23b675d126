#!/usr/bin/env bash
# Side by side with Vector: the same data through the same three pipelines, Sluice at
# its defaults and Vector as its users would configure it:
#
#   json   stdin → parse the JSON line, add a field → discard
#          (sluice: json_lines codec + mutate add_field → null;
#           vector: stdin → remap parse_json + merge, set a field → blackhole)
#   grok   stdin → grok the api pattern → discard
#          (vector: remap parse_grok + merge)
#   beats  the load client of benches/beats.sh (4 connections, windows of 2048,
#          compressed) → discard, acknowledged end to end
#          (vector: logstash source with acknowledgements → blackhole)
#
# Vector is not installed by the tests; build it once from its source and point VECTOR
# at the binary (features sources-stdin, sources-logstash, transforms-remap,
# sinks-blackhole and tikv-jemallocator, its default allocator).
#
#   VECTOR=/path/to/vector benches/vector.sh
#   VECTOR=... ONLY="beats" RUNS=3 benches/vector.sh
set -euo pipefail
cd "$(dirname "$0")/.."

: "${VECTOR:?set VECTOR to a vector binary}"
N=${N:-1000000}
RUNS=${RUNS:-1}
ONLY=${ONLY:-json grok beats}
EVENTS=${EVENTS:-2000000}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin sluice
  BIN=target/release/sluice
fi
BIN=$(realpath "$BIN")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"

# The same data as benches/pipelines.sh.
N=$N DATA_ONLY=1 benches/pipelines.sh
json_data=target/bench-data/json-$N.log
api_data=target/bench-data/api-$N.log

# stdin → remap (the VRL in $2) → blackhole, as $tmp/$1.yaml.
remap_config() { # name vrl
  {
    printf 'data_dir: %s\nsources:\n  in: { type: stdin }\n' "$tmp/data"
    printf 'transforms:\n  parse:\n    type: remap\n    inputs: [in]\n    source: |\n'
    printf '%s\n' "$2" | sed 's/^/      /'
    printf 'sinks:\n  out: { type: blackhole, inputs: [parse], print_interval_secs: 0 }\n'
  } >"$tmp/$1.yaml"
}
remap_config json '. = merge!(., parse_json!(string!(.message)))
.environment = "production"'
remap_config grok '. = merge(., parse_grok!(string!(.message), "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:message}"))'

stdin_pipeline() { # name data sluice-config
  local name=$1 data=$2 config=$3
  python3 benches/measure.py "vector $name" "$N" "$data" -- "$VECTOR" --quiet -c "$tmp/$name.yaml" | head -1
  python3 benches/measure.py "sluice $name" "$N" "$data" -- "$BIN" --log.level error \
    --api.enabled false --path.data "$tmp/sluice-data" -e "$config" | head -1
}

beats_vector() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$tmp/beats.yaml" <<EOF
data_dir: $tmp/data
acknowledgements: { enabled: true }
sources:
  in: { type: logstash, address: "127.0.0.1:$port" }
sinks:
  out: { type: blackhole, inputs: [in], print_interval_secs: 0 }
EOF
  /usr/bin/time -f "%U %S %M" -o "$tmp/time" "$VECTOR" --quiet -c "$tmp/beats.yaml" &
  local server=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  PORT=$port CONNS=4 EVENTS=$EVENTS "$client" --bench >"$tmp/client"
  kill -TERM "$(pgrep -P "$server")"
  wait "$server" || true
  read -r events secs rate < <(awk '/^beats/ { sub(/s:$/, "", $8); print $2, $8, $9 }' "$tmp/client")
  read -r user sys rss_kb <"$tmp/time"
  awk -v e="$events" -v r="$rate" -v u="$user" -v s="$sys" -v m="$rss_kb" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
    cpu = u + s
    printf "vector beats conns=4 %9d events  %8.0f events/s  cpu %6.2f s  %5.2f cpu-µs/event  peak RSS %4d MiB  load %s\n",
      e, r, cpu, cpu * 1e6 / e, m / 1024, l
  }'
}

if [[ " $ONLY " == *" beats "* ]]; then
  cargo bench --bench beats_load --no-run --message-format json >"$tmp/build.json" 2>/dev/null
  client=$(python3 -c 'import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "beats_load" and m.get("executable"):
        print(m["executable"])' "$tmp/build.json")
fi

echo "vector: $VECTOR ($("$VECTOR" --version))  sluice: $BIN  $(nproc) cores"
for _ in $(seq "$RUNS"); do
  for name in $ONLY; do
    case $name in
      json) stdin_pipeline json "$json_data" 'input { stdin { codec => json_lines } } filter { mutate { add_field => { "environment" => "production" } } } output { null {} }' ;;
      grok) stdin_pipeline grok "$api_data" 'input { stdin {} } filter { grok { match => { "message" => "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:message}" } overwrite => ["message"] } } output { null {} }' ;;
      beats)
        beats_vector
        RUNS="4:default" EVENTS=$EVENTS SLUICE=$BIN benches/beats.sh | tail -1
        ;;
    esac
  done
done
