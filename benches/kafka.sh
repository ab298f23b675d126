#!/usr/bin/env bash
# End-to-end bench against a local tansu broker (SQLite storage):
#   produce: generator -> kafka output (lz4) -> broker
#   consume: broker -> kafka input -> null
# next to Python confluent-kafka (librdkafka, C) producing and consuming the same
# messages against the same broker: the ceiling.
#
#   benches/kafka.sh [EVENTS]        (default 200000; SLUICE=binary to skip the build)
#
# Needs tansu (scripts/test.sh installs it; or set SLUICE_TANSU).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
BATCH=${BATCH:-500}
TANSU=${SLUICE_TANSU:-$HOME/.cache/sluice-test-tools/tansu-0.6.0/bin/tansu}
[ -x "$TANSU" ] || { echo "tansu not found at $TANSU: run scripts/test.sh first" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet -r tests/requirements.txt
PY=.venv/bin/python
# SLUICE=path/to/sluice benches a build made elsewhere; otherwise the release build here.
if [ -z "${SLUICE:-}" ]; then
  cargo build --release --quiet
  SLUICE=target/release/sluice
fi

work=$(mktemp -d)
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && exec "$TANSU" broker --storage-engine sqlite://tansu.db \
  --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  >"$work/tansu.log" 2>&1) &
broker=$!
trap 'kill $broker 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
B=127.0.0.1:$port
LINE='127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /api/v1/devices HTTP/1.1" 200 512'

$PY - "$B" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic(t, num_partitions=4, replication_factor=1) for t in ("ceiling", "sluice")]).values():
    f.result(30)
PY

# The messages: exactly what the pipeline produces (json codec), captured with `file`.
$SLUICE --log.level error --path.data "$work/d0" -w 1 -b "$BATCH" -e "input { generator { count => $N message => '$LINE' } } output { file { path => '$work/events.json' } }"

# Ceiling, produce: the same messages through confluent-kafka with the same settings.
$PY - "$B" "$work/events.json" <<'PY' > "$work/ceiling-produce"
import sys, time
from confluent_kafka import Producer
lines = open(sys.argv[2], "rb").read().splitlines()
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all", "enable.idempotence": True,
              "compression.type": "lz4", "partitioner": "murmur2_random"})
t = time.time()
for l in lines:
    while True:
        try:
            p.produce("ceiling", l); break
        except BufferError:
            p.poll(0.05)
    p.poll(0)
p.flush(120)
print(time.time() - t)
PY

t0=$(date +%s.%N)
$SLUICE --log.level error --path.data "$work/d1" -b "$BATCH" -e "input { generator { count => $N message => '$LINE' } } output { kafka { bootstrap_servers => '$B' topic_id => 'sluice' codec => json compression_type => 'lz4' } }"
t1=$(date +%s.%N)

# Ceiling, consume: read the whole topic with confluent-kafka.
$PY - "$B" "$N" <<'PY' > "$work/ceiling-consume"
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "ceiling", "auto.offset.reset": "earliest"})
c.subscribe(["sluice"])
n, want, t = 0, int(sys.argv[2]), None
while n < want:
    ms = c.consume(1000, 1.0)
    if ms and t is None: t = time.time()
    n += sum(1 for m in ms if not m.error())
print(time.time() - t)
c.close()
PY

# Sluice, consume: kafka input -> null until every message went through. The input
# never ends on its own, so stop it once the group's committed offsets reach the end.
t2=$(date +%s.%N)
$SLUICE --log.level error --path.data "$work/d2" -b "$BATCH" -e "input { kafka { bootstrap_servers => '$B' topics => ['sluice'] group_id => 'bench' auto_offset_reset => 'earliest' codec => json auto_commit_interval_ms => 200 } } output { null {} }" &
consumer=$!
$PY - "$B" "$N" <<'PY'
import sys, time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "bench"})
parts = [TopicPartition("sluice", p) for p in range(4)]
deadline = time.time() + 600
while time.time() < deadline:
    done = sum(max(tp.offset, 0) for tp in c.committed(parts, timeout=10))
    if done >= int(sys.argv[2]): break
    time.sleep(0.1)
PY
t3=$(date +%s.%N)
kill -INT $consumer; wait $consumer || true

$PY - "$N" "$t0" "$t1" "$t2" "$t3" "$(cat "$work/ceiling-produce")" "$(cat "$work/ceiling-consume")" <<'PY'
import sys
n = int(sys.argv[1])
t0, t1, t2, t3, cp, cc = map(float, sys.argv[2:8])
sp, sc = t1 - t0, t3 - t2
print(f"produce  confluent-kafka (ceiling): {n/cp:9.0f} events/s   sluice generator -> kafka (lz4): {n/sp:9.0f} events/s  ({cp/sp*100:.0f}% of ceiling)")
print(f"consume  confluent-kafka (ceiling): {n/cc:9.0f} events/s   sluice kafka -> null:           {n/sc:9.0f} events/s  ({cc/sc*100:.0f}% of ceiling)")
PY
