#!/usr/bin/env bash
# End-to-end bench: generator -> elasticsearch output -> osmem-server, next to the same
# documents posted to the same server with curl (the ceiling).
#
#   benches/elasticsearch.sh [EVENTS]        (default 100000)
#   SLUICE=path/to/sluice benches/elasticsearch.sh   (another build, e.g. a baseline)
#
# Prints events/s and bulk bytes/s for both, and Sluice's share of the ceiling. Fails
# when a bulk response reports an item error or an index does not hold N documents.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
BATCH=${BATCH:-1000}
PAR=${PAR:-2}

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet -r tests/requirements.txt
OSMEM=$(.venv/bin/python -c 'import osmem_server; print(osmem_server.resolve_binary())')
if [ -z "${SLUICE:-}" ]; then
  cargo build --release --quiet
  SLUICE=target/release/sluice
fi

work=$(mktemp -d)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$OSMEM" -addr "127.0.0.1:$port" -no-stdin-watch >"$work/osmem.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
ES="http://127.0.0.1:$port"

# The documents: exactly what the pipeline produces, captured with the file output.
$SLUICE --log.level error --path.data "$work/d0" -w 1 -b "$BATCH" -e "input { generator { count => $N message => '127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] \"GET /api/v1/devices HTTP/1.1\" 200 512' } } output { file { path => '$work/events.json' } }"
mkdir -p "$work/bulk"
awk -v b="$BATCH" -v dir="$work/bulk" '{ f = sprintf("%s/%08d.ndjson", dir, int((NR-1)/b)); print "{\"index\":{\"_index\":\"ceiling\"}}" > f; print > f; if (NR % b == 0) close(f) }' "$work/events.json"
bytes=$(cat "$work/bulk"/*.ndjson | wc -c)

t0=$(date +%s.%N)
ls "$work"/bulk/*.ndjson | xargs -P "$PAR" -I{} curl -sf -o {}.resp -XPOST "$ES/_bulk" -H 'content-type: application/x-ndjson' --data-binary @{}
t1=$(date +%s.%N)
# HTTP 200 says nothing about the items: each response lists their statuses.
.venv/bin/python - "$work"/bulk/*.resp <<'PY'
import json, sys
failed = 0
for path in sys.argv[1:]:
    for item in json.load(open(path))["items"]:
        (result,) = item.values()
        if not 200 <= result["status"] < 300:
            failed += 1
            if failed <= 5:
                print(f"bulk item failed: {result}", file=sys.stderr)
if failed:
    sys.exit(f"{failed} bulk items failed")
PY

count() { # index
  curl -sf -XPOST "$ES/$1/_refresh" >/dev/null
  curl -sf "$ES/$1/_count" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["count"])'
}
expect() { # name count
  if [ "$2" -ne "$N" ]; then
    echo "$1: $2 documents indexed of $N" >&2
    exit 1
  fi
}
curl_count=$(count ceiling)
expect curl "$curl_count"

t2=$(date +%s.%N)
$SLUICE --log.level error --path.data "$work/d1" -w "$PAR" -b "$BATCH" -e "input { generator { count => $N message => '127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] \"GET /api/v1/devices HTTP/1.1\" 200 512' } } output { elasticsearch { hosts => ['$ES'] index => 'sluice' max_inflight => $PAR } }"
t3=$(date +%s.%N)
sluice_count=$(count sluice)
expect sluice "$sluice_count"

.venv/bin/python - "$N" "$bytes" "$t0" "$t1" "$t2" "$t3" "$curl_count" "$sluice_count" <<'PY'
import sys
n, b = int(sys.argv[1]), int(sys.argv[2])
t0, t1, t2, t3 = map(float, sys.argv[3:7])
cc, sc = sys.argv[7], sys.argv[8]
c, s = t1 - t0, t3 - t2
print(f"curl (ceiling): {n/c:10.0f} events/s {b/c/1e6:7.2f} MB/s bulk  ({c:.2f}s, {cc} docs)")
print(f"sluice:         {n/s:10.0f} events/s {b/s/1e6:7.2f} MB/s bulk  ({s:.2f}s, {sc} docs, generator included)")
print(f"sluice / ceiling: {c/s*100:.0f}%")
PY
