#!/usr/bin/env bash
# Integration test of the node's /app/{uuid}/... proxy: the real tabbify-node on a loopback
# port in front of the real upstream test server (tests/node/upstream.c), driven with curl.
# A second upstream plays the supervisor's wake API; events the supervisor and runners will
# append (supervisor_registered, app_started, supervisor_left) come from append_event.
# Usage: node_proxy.sh TABBIFY_NODE TABBIFY UPSTREAM APPEND_EVENT
# Every check prints what was expected and what came back; every process is killed.
set -u
NODE_BIN=$(realpath "$1") CLI=$(realpath "$2") UP_BIN=$(realpath "$3") APPEND=$(realpath "$4")
WORK=$(mktemp -d /tmp/tb-proxy-test.XXXXXX)
NODE_PID= UP_PID= UP2_PID= SUP_PID=
FAILS=0
cleanup() {
  for p in $NODE_PID $UP_PID $UP2_PID $SUP_PID; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

# start_upstream NAME: starts one upstream, sets ${NAME}_PID and ${NAME}_PORT
start_upstream() {
  "$UP_BIN" >"$WORK/$1.out" 2>"$WORK/$1.err" &
  eval "$1_PID=$!"
  local port=
  for _ in $(seq 100); do
    port=$(grep -o 'port [0-9]*' "$WORK/$1.out" 2>/dev/null | cut -d' ' -f2)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { echo "upstream $1 did not start:"; cat "$WORK/$1.err"; exit 1; }
  eval "$1_PORT=$port"
}

start_node() { # extra args...
  "$NODE_BIN" --state-dir "$WORK/state" --listen 127.0.0.1:0 "$@" >"$WORK/node.out" 2>>"$WORK/node.err" &
  NODE_PID=$!
  PORT=
  for _ in $(seq 100); do
    PORT=$(grep -o 'port [0-9]*' "$WORK/node.out" 2>/dev/null | cut -d' ' -f2)
    [ -n "$PORT" ] && break
    sleep 0.05
  done
  [ -n "$PORT" ] || { echo "the node did not start:"; cat "$WORK/node.err"; exit 1; }
  U=http://127.0.0.1:$PORT
}

# expect STATUS DESCRIPTION curl-args...   (body left in $WORK/body)
expect() {
  local want=$1 what=$2; shift 2
  local got
  got=$(curl -s -o "$WORK/body" -w '%{http_code}' "$@")
  if [ "$got" = "$want" ]; then ok "$what -> $got"; else fail "$what: expected $want, got $got: $(head -c 300 "$WORK/body")"; fi
}
# body_has TEXT DESCRIPTION
body_has() {
  grep -qF -- "$1" "$WORK/body" && ok "$2" || fail "$2: expected the body to contain [$1], got: $(head -c 400 "$WORK/body")"
}

new_uuid7() {
  python3 -c "import time,os,uuid; b=bytearray(int(time.time()*1000).to_bytes(6,'big')+os.urandom(10)); b[6]=0x70|(b[6]&15); b[8]=0x80|(b[8]&63); print(uuid.UUID(bytes=bytes(b)))"
}
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/body" "$1"; }
append() { "$APPEND" "$WORK/state" "$@" >/dev/null || fail "append_event $2 failed"; }
upstream_stat() { curl -s "http://127.0.0.1:$1/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

start_upstream UP
start_upstream SUP
start_node --proxy-timeout-ms 1000 --supervisor edge:wasm-http
KEY="$WORK/state/node.key"
T=$("$CLI" token create --tenant acme --scope '*' --key-file "$KEY")
A=(-H "Authorization: Bearer $T")

# The fake supervisor "fake" at $SUP_PORT; the node learns of it from the log.
FAKE=$(new_uuid7)
append supervisor_registered "$FAKE" "{\"supervisor\":\"$FAKE\",\"name\":\"fake\",\"address\":\"127.0.0.1:$SUP_PORT\",\"tags\":[\"wasm-http\"],\"runtimes\":[\"wasm-http\"]}"
sleep 0.4

# register APP; upload v1; deploy on TARGET (sets DEP and SUPID); empty TARGET: no deploy
register() {
  local id=$1
  expect 201 "register $id" "${A[@]}" -d "{\"app\":{\"id\":\"$id\",\"name\":\"p\"},\"runtime\":{\"type\":\"wasm-http\"}}" "$U/v1/apps"
  printf 'v1' >"$WORK/v1.bin"
  expect 201 "upload v1 of $id" "${A[@]}" -X PUT -H "X-Content-SHA256: $(sha256sum "$WORK/v1.bin" | cut -c1-64)" \
    --data-binary @"$WORK/v1.bin" "$U/v1/apps/$id/versions/1"
}
deploy() { # APP TARGET
  expect 202 "deploy $1 on $2" "${A[@]}" -d "{\"target\":\"$2\"}" "$U/v1/apps/$1/deploy"
  DEP=$(json_field deployment) SUPID=$(json_field supervisor)
}
started() { # APP ADDRESS: the runner event a supervisor appends
  local r
  r=$(new_uuid7)
  append app_started "$1" "{\"app\":\"$1\",\"deployment\":\"$DEP\",\"supervisor\":\"$SUPID\",\"runner\":\"$r\",\"address\":\"$2\",\"pid\":1}"
}

# ---- errors before any upstream ----
expect 400 "malformed uuid" "$U/app/not-a-uuid/x"
body_has '"error":"invalid_uuid"' "400 says invalid_uuid"
expect 404 "unknown app" "$U/app/$(new_uuid7)/x"
body_has '"error":"unknown_app"' "404 says unknown_app"
N=$(new_uuid7)
register "$N"
expect 503 "never deployed" "$U/app/$N/x"
body_has '"error":"not_deployed"' "503 says not_deployed"

# ---- app A: running on $UP_PORT, placed on the fake supervisor ----
APP=$(new_uuid7)
register "$APP"
deploy "$APP" fake
started "$APP" "127.0.0.1:$UP_PORT"
sleep 0.4

expect 200 "GET through the proxy" -H "Host: example.test" -H "X-Forwarded-For: 10.1.2.3" \
  -H "Connection: keep-alive, X-Secret-Hop" -H "X-Secret-Hop: 1" -H "Keep-Alive: timeout=5" -H "TE: trailers" \
  -H "Proxy-Authorization: Basic eA==" -H "X-Forwarded-Proto: https" -H "X-Custom: kept" \
  "$U/app/$APP/inspect?a=1&b=two"
python3 - "$WORK/body" "$APP" <<'PY' && ok "target rewritten, X-Forwarded-* set, hop-by-hop dropped" || fail "inspect: $(cat "$WORK/body")"
import json, sys
j = json.load(open(sys.argv[1])); app = sys.argv[2]
h = {}
for k, v in j["headers"]:
    h.setdefault(k.lower(), []).append(v)
errs = []
def want(c, m):
    if not c: errs.append(m)
want(j["method"] == "GET", "method %r" % j["method"])
want(j["target"] == "/inspect?a=1&b=two", "target %r" % j["target"])
want(h.get("x-forwarded-for") == ["10.1.2.3, 127.0.0.1"], "x-forwarded-for %r" % h.get("x-forwarded-for"))
want(h.get("x-forwarded-proto") == ["http"], "x-forwarded-proto %r" % h.get("x-forwarded-proto"))
want(h.get("x-forwarded-host") == ["example.test"], "x-forwarded-host %r" % h.get("x-forwarded-host"))
want(h.get("x-forwarded-prefix") == ["/app/" + app], "x-forwarded-prefix %r" % h.get("x-forwarded-prefix"))
want(h.get("x-custom") == ["kept"], "x-custom %r" % h.get("x-custom"))
for gone in ("x-secret-hop", "keep-alive", "te", "proxy-authorization", "transfer-encoding", "upgrade"):
    want(gone not in h, "%s passed through" % gone)
want(h.get("connection", ["keep-alive"]) == ["keep-alive"], "connection %r" % h.get("connection"))
if errs:
    print("; ".join(errs), file=sys.stderr); sys.exit(1)
PY
expect 200 "/app/<uuid> reaches the upstream" "$U/app/$APP"
body_has '"target":"/"' "/app/<uuid> maps to /"
expect 200 "/app/<uuid>/?q reaches the upstream" "$U/app/$APP/?q=1"
body_has '"target":"/?q=1"' "/app/<uuid>/?q maps to /?q"
expect 404 "an upstream 404" "$U/app/$APP/nothing"
body_has '"error":"not_found"' "the upstream's own 404 passed through"
expect 418 "upstream status passed through" "$U/app/$APP/status/418"
curl -s -D "$WORK/hdr" -o /dev/null "$U/app/$APP/status/201"
grep -qi '^X-Upstream-Status: 201' "$WORK/hdr" && ok "upstream headers passed through" || fail "headers: $(cat "$WORK/hdr")"
expect 200 "HEAD through the proxy" -I "$U/app/$APP/fixed"

# 10 MiB POST echoed byte for byte (Content-Length, then chunked)
head -c 10485760 /dev/urandom >"$WORK/10m.bin"
curl -s -o "$WORK/10m.out" --data-binary @"$WORK/10m.bin" "$U/app/$APP/echo" \
  && cmp -s "$WORK/10m.bin" "$WORK/10m.out" && ok "10 MiB POST echoed byte for byte" \
  || fail "10 MiB echo differs ($(stat -c %s "$WORK/10m.out" 2>/dev/null) bytes back)"
curl -s -o "$WORK/10m.out" -H "Transfer-Encoding: chunked" --data-binary @"$WORK/10m.bin" "$U/app/$APP/echo" \
  && cmp -s "$WORK/10m.bin" "$WORK/10m.out" && ok "10 MiB chunked POST echoed byte for byte" \
  || fail "10 MiB chunked echo differs ($(stat -c %s "$WORK/10m.out" 2>/dev/null) bytes back)"
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$NODE_PID/status")
[ "$RSS" -lt 100000 ] && ok "node peak RSS ${RSS} kB after the 10 MiB echoes" || fail "node peak RSS ${RSS} kB: a body was buffered?"

# 20 MiB response streamed
curl -s -o "$WORK/20m.out" "$U/app/$APP/big?n=20971520"
python3 - "$WORK/20m.out" <<'PY' && ok "20 MiB response streamed intact" || fail "20 MiB response differs"
import sys
d = open(sys.argv[1], "rb").read()
n = len(d)
exp = bytes(((i * 7 + i // 251) & 0xff) for i in range(n))
sys.exit(0 if n == 20971520 and d == exp else 1)
PY

# 100 concurrent requests
for i in $(seq 100); do
  curl -s -o "$WORK/c$i" -w '%{http_code}\n' "$U/app/$APP/inspect?i=$i" >"$WORK/code$i" &
done
wait $(jobs -p | grep -v -e "^$NODE_PID$" -e "^$UP_PID$" -e "^$SUP_PID$") 2>/dev/null
good=0
for i in $(seq 100); do
  [ "$(cat "$WORK/code$i")" = 200 ] && grep -q "\"/inspect?i=$i\"" "$WORK/c$i" && good=$((good + 1))
done
[ "$good" = 100 ] && ok "100 concurrent requests answered, each its own" || fail "only $good of 100 concurrent requests right"

# keep-alive: 50 sequential requests reuse pooled upstream connections
c0=$(upstream_stat "$UP_PORT" connections)
for i in $(seq 50); do curl -s -o /dev/null "$U/app/$APP/fixed"; done
c1=$(upstream_stat "$UP_PORT" connections)
[ $((c1 - c0)) -le 3 ] && ok "50 sequential requests used $((c1 - c0)) new upstream connection(s)" \
  || fail "50 sequential requests opened $((c1 - c0)) upstream connections"

# upstream silent past --proxy-timeout-ms: 504; mid-body failure: truncated transfer
expect 504 "slow head past the proxy timeout" "$U/app/$APP/slowhead?ms=3000"
body_has '"error":"app_timeout"' "504 says app_timeout"
expect 200 "slow head within the timeout" "$U/app/$APP/slowhead?ms=200"
curl -s -o /dev/null "$U/app/$APP/die"
rc=$?
[ "$rc" = 18 ] && ok "upstream dying mid-body: curl sees a truncated transfer (18)" || fail "/die: curl exit $rc, expected 18"
expect 200 "the node still serves after that" "$U/app/$APP/fixed"

# client gone mid-response: the node cancels the upstream call and carries on
curl -s -o /dev/null --max-time 0.3 "$U/app/$APP/big?n=2000000000"
expect 200 "the node still serves after a client left mid-stream" "$U/app/$APP/fixed"

# ---- wake: app W placed on the fake supervisor, no runner known ----
W=$(new_uuid7)
register "$W"
deploy "$W" fake
curl -s -X POST "http://127.0.0.1:$SUP_PORT/mode?wake=ok&delay=500&addr=127.0.0.1:$UP_PORT" >/dev/null
w0=$(upstream_stat "$SUP_PORT" wakes)
for i in $(seq 10); do
  curl -s -o "$WORK/w$i" -w '%{http_code}\n' "$U/app/$W/inspect?w=$i" >"$WORK/wcode$i" &
done
wait $(jobs -p | grep -v -e "^$NODE_PID$" -e "^$UP_PID$" -e "^$SUP_PID$") 2>/dev/null
good=0
for i in $(seq 10); do [ "$(cat "$WORK/wcode$i")" = 200 ] && good=$((good + 1)); done
w1=$(upstream_stat "$SUP_PORT" wakes)
[ "$good" = 10 ] && ok "10 concurrent requests to a sleeping app answered after the wake" || fail "only $good of 10 woken requests got 200: $(cat "$WORK/w1")"
[ $((w1 - w0)) = 1 ] && ok "they shared one wake call" || fail "$((w1 - w0)) wake calls for 10 concurrent requests"
expect 200 "the woken address is cached" "$U/app/$W/fixed"
[ "$(upstream_stat "$SUP_PORT" wakes)" = "$w1" ] && ok "no wake for the next request" || fail "a second wake for a cached app"

# scale to zero: the projected runner refuses; the node wakes once and retries
Z=$(new_uuid7)
register "$Z"
deploy "$Z" fake
start_upstream UP2
DEAD=127.0.0.1:$UP2_PORT
kill -9 "$UP2_PID"; wait "$UP2_PID" 2>/dev/null; UP2_PID=
started "$Z" "$DEAD"
sleep 0.4
curl -s -X POST "http://127.0.0.1:$SUP_PORT/mode?wake=ok&delay=0&addr=127.0.0.1:$UP_PORT" >/dev/null
w0=$(upstream_stat "$SUP_PORT" wakes)
expect 200 "refused by an idled-out runner: woken and retried" -d 'small body' "$U/app/$Z/echo"
[ "$(cat "$WORK/body")" = "small body" ] && ok "the retried request kept its body" || fail "retried body: $(cat "$WORK/body")"
[ $(($(upstream_stat "$SUP_PORT" wakes) - w0)) = 1 ] && ok "one wake for the refused dial" || fail "wakes: $(($(upstream_stat "$SUP_PORT" wakes) - w0))"

# wake failures: 409 -> 503 app_stopped, 500 -> 503 start_failed with the supervisor's message
F=$(new_uuid7)
register "$F"
deploy "$F" fake
curl -s -X POST "http://127.0.0.1:$SUP_PORT/mode?wake=409&delay=0" >/dev/null
expect 503 "supervisor says 409" "$U/app/$F/x"
body_has '"error":"app_stopped"' "409 from the supervisor is app_stopped"
body_has 'was stopped by its owner' "with the supervisor's message"
curl -s -X POST "http://127.0.0.1:$SUP_PORT/mode?wake=500&delay=0" >/dev/null
expect 503 "supervisor fails to start it" "$U/app/$F/x"
body_has '"error":"start_failed"' "a failed wake is start_failed"
body_has 'exited at start: bad module' "with the supervisor's message"
curl -s -X POST "http://127.0.0.1:$SUP_PORT/mode?wake=ok" >/dev/null

# ---- app K: runner killed, its supervisor gone: 502 naming the address ----
K=$(new_uuid7)
register "$K"
deploy "$K" edge
start_upstream UP2
started "$K" "127.0.0.1:$UP2_PORT"
append supervisor_left "$SUPID" "{\"supervisor\":\"$SUPID\",\"reason\":\"test\"}"
sleep 0.4
expect 200 "K answers while its runner lives" "$U/app/$K/fixed"
kill -9 "$UP2_PID"; wait "$UP2_PID" 2>/dev/null; UP2_PID=
expect 502 "runner killed" "$U/app/$K/fixed"
body_has '"error":"app_unreachable"' "502 says app_unreachable"
body_has "127.0.0.1:$UP2_PORT" "502 names the runner's address"
body_has "connection refused" "502 gives the reason"

# ---- the upstream itself killed (app A: the wake path says the supervisor's answer) ----
expect 202 "stop A" "${A[@]}" -X POST "$U/v1/apps/$APP/stop"
expect 503 "stopped app" "$U/app/$APP/fixed"
body_has '"error":"app_stopped"' "503 says app_stopped"

# ---- graceful stop: pooled upstream connections and caches are released (ASan checks leaks) ----
curl -s -o /dev/null "$U/app/$W/fixed"
kill -TERM "$NODE_PID"
for _ in $(seq 100); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$NODE_PID" 2>/dev/null; then
  fail "the node did not exit within 10 s of SIGTERM"
else
  wait "$NODE_PID"; rc=$?
  NODE_PID=
  [ "$rc" = 0 ] && ok "SIGTERM: the node exits cleanly" || fail "SIGTERM: the node exited with $rc: $(grep -m3 -e ERROR -e Sanitizer "$WORK/node.err")"
fi

echo "node stderr (last lines):"; tail -5 "$WORK/node.err"
if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all proxy checks passed"
