#!/usr/bin/env bash
# bench/node/run.sh — API requests per second of tabbify-node: GET /v1/apps for a tenant
# with 1,000 apps, measured with wrk (Debian's; scripts/setup installs it).
#   bench/node/run.sh BUILD_DIR [DURATION_S] [CONNECTIONS] [THREADS]
# Starts the real node on a loopback port with a temporary state directory, registers
# 1,000 apps through the API (each one event, fsync'd), then runs wrk with --latency and
# prints requests/s and the p99 latency. A benchmark, never a test.
set -eu
B=$(realpath "$1") DUR=${2:-10} CONN=${3:-64} THR=${4:-4}
WORK=$(mktemp -d /tmp/tb-node-bench.XXXXXX)
"$B/src/node/tabbify-node" --state-dir "$WORK/state" --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do PORT=$(grep -o 'port [0-9]*' "$WORK/out" | cut -d' ' -f2 || true); [ -n "$PORT" ] && break; sleep 0.05; done
U=http://127.0.0.1:$PORT
T=$("$B/src/tabbify/tabbify" token create --tenant bench --scope 'apps:*' --key-file "$WORK/state/node.key")
python3 - "$U" "$T" <<'PY'
import http.client, json, os, sys, time, urllib.parse, uuid
u = urllib.parse.urlparse(sys.argv[1]); c = http.client.HTTPConnection(u.hostname, u.port)
h = {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"}
for i in range(1000):
    b = bytearray(int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10)); b[6] = 0x70 | (b[6] & 15); b[8] = 0x80 | (b[8] & 63)
    body = json.dumps({"app": {"id": str(uuid.UUID(bytes=bytes(b))), "name": "app-%d" % i}, "runtime": {"type": "wasm-http"}})
    c.request("POST", "/v1/apps", body, h); r = c.getresponse(); r.read()
    assert r.status == 201, r.status
PY
bytes=$(curl -s -H "Authorization: Bearer $T" "$U/v1/apps" | wc -c)
echo "1000 apps registered; GET /v1/apps is $bytes bytes"
wrk -t"$THR" -c"$CONN" -d"${DUR}s" --latency -H "Authorization: Bearer $T" "$U/v1/apps" | tee "$WORK/wrk"
echo "RESULT: $(grep 'Requests/sec' "$WORK/wrk" | awk '{print $2}') req/s, p99 $(grep ' 99%' "$WORK/wrk" | awk '{print $2}') (c=$CONN t=$THR ${DUR}s)"
