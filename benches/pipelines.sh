#!/usr/bin/env bash
# What an event costs, end to end, through three stdin pipelines, each at the default
# `-w` (one worker per core) and at `-w 1`:
#
#   json        stdin json_lines → mutate add_field → null
#   grok        stdin → grok (the api pattern) → null
#   quickstart  pipelines/quickstart.conf on samples/mixed.log (file output, in a
#               scratch directory)
#
# For each: events/s, CPU seconds (user + system), CPU seconds per million events, peak
# RSS and the CPU per thread (see benches/measure.py). On a shared machine compare the
# CPU figures, not the wall ones; the load average is printed with each run.
#
#   benches/pipelines.sh                         # 1,000,000 events, release build
#   N=200000 RUNS=3 benches/pipelines.sh         # fewer events, each run 3 times
#   BIN=/path/to/other/sluice benches/pipelines.sh   # compare another build
#   ONLY="json grok" WORKERS="1" benches/pipelines.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
RUNS=${RUNS:-1}
ONLY=${ONLY:-json grok quickstart}
WORKERS=${WORKERS:-default 1}

if [ -z "${BIN:-}" ] && [ -z "${DATA_ONLY:-}" ]; then
  cargo build --release --quiet --bin sluice
  BIN=target/release/sluice
fi
[ -n "${DATA_ONLY:-}" ] || BIN=$(realpath "$BIN")

# Each data set: its sample repeated up to N lines.
data_dir=target/bench-data
mkdir -p "$data_dir"
repeat() { # sample out
  [ -s "$2" ] && return
  awk -v n="$N" '{ line[NR] = $0 } END { for (i = 0; i < n; i++) print line[i % NR + 1] }' "$1" > "$2.tmp"
  mv "$2.tmp" "$2"
}
[ -s "$data_dir/json-sample.log" ] || gzip -dc tests/data/json-20000.log.gz > "$data_dir/json-sample.log"
# The api pattern is for the log lines; the sample's tracebacks would only measure failures.
[ -s "$data_dir/api-sample.log" ] || gzip -dc tests/data/api-2000.log.gz | grep '^20' > "$data_dir/api-sample.log"
repeat "$data_dir/json-sample.log" "$data_dir/json-$N.log"
repeat "$data_dir/api-sample.log" "$data_dir/api-$N.log"
repeat samples/mixed.log "$data_dir/mixed-$N.log"
# DATA_ONLY=1: only make the data (benches/vector.sh uses it).
[ -n "${DATA_ONLY:-}" ] && exit 0

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
config() { # name
  case $1 in
    json) echo 'input { stdin { codec => json_lines } } filter { mutate { add_field => { "environment" => "production" } } } output { null {} }' ;;
    grok) echo 'input { stdin {} } filter { grok { match => { "message" => "%{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} %{GREEDYDATA:logger_name} - %{GREEDYDATA:message}" } overwrite => ["message"] } } output { null {} }' ;;
  esac
}
input() { # name
  case $1 in
    json) echo "$data_dir/json-$N.log" ;;
    grok) echo "$data_dir/api-$N.log" ;;
    quickstart) echo "$data_dir/mixed-$N.log" ;;
  esac
}

echo "binary $BIN, $N events, $(nproc) cores"
for name in $ONLY; do
  data=$(realpath "$(input "$name")")
  for w in $WORKERS; do
    flags=(--log.level error --api.enabled false --path.data "$scratch/data")
    [ "$w" = default ] || flags+=(-w "$w")
    for _ in $(seq "$RUNS"); do
      rm -rf "$scratch/data" "$scratch/run"
      mkdir -p "$scratch/run"
      if [ "$name" = quickstart ]; then
        # The quickstart writes data/quickstart/... relative to where it runs.
        (cd "$scratch/run" && python3 "$OLDPWD/benches/measure.py" "$name -w $w" "$N" "$data" -- \
          "$BIN" "${flags[@]}" -f "$OLDPWD/pipelines/quickstart.conf")
      else
        python3 benches/measure.py "$name -w $w" "$N" "$data" -- "$BIN" "${flags[@]}" -e "$(config "$name")"
      fi
    done
  done
done
