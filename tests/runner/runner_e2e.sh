#!/usr/bin/env bash
# End-to-end test of tabbify-runner: the real program, started the way the supervisor
# starts it (a spec file, TABBIFY_READY_FD), driven with curl on loopback and its control
# socket. Usage: runner_e2e.sh TABBIFY_RUNNER HELLO_WASM CGI_WASM
# Every check prints what was expected and what came back; runners are always killed.
set -u
RUNNER=$(realpath "$1") HELLO=$(realpath "$2") CGI=$(realpath "$3")
source "$(dirname "$0")/../cli/lib.sh"
W=$scratch
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

ok() { checks=$((checks + 1)); echo "ok: $*"; }
# check WHAT EXPECTED GOT: expect_eq that also says when it passed
check() {
  expect_eq "$1" "$2" "$3"
  [[ "$2" == "$3" ]] && echo "ok: $1 -> $3"
}
# contains WHAT NEEDLE HAYSTACK
contains() {
  checks=$((checks + 1))
  if [[ "$3" == *"$2"* ]]; then echo "ok: $1"; else
    failures=$((failures + 1))
    printf 'FAIL %s\n  expected to contain: %s\n  got:                 %s\n' "$1" "$2" "$3"
  fi
}

sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# spec NAME ARTIFACT [extra JSON fields] -> writes $W/NAME.json
spec() {
  local name=$1 art=$2 extra=${3:-}
  cat >"$W/$name.json" <<EOF
{"runner":"r-$name","app":"a-$name","deployment":"d-$name","version":3,"supervisor":"s1",
 "name":"$name","runtime":"wasm-http","artifact":"$art","digest":"$(sha "$art")",
 "listen":"127.0.0.1:0","control":"$W/$name/control.sock","log":"$W/logs/$name.log",
 "workers":4 $extra}
EOF
}

# start NAME: starts the runner on $W/NAME.json; sets PID and ADDR (or READY to the error line)
start() {
  local name=$1
  : >"$W/$name.ready"
  TABBIFY_READY_FD=3 "$RUNNER" --spec "$W/$name.json" 3>"$W/$name.ready" >"$W/$name.out" 2>"$W/$name.err" &
  PID=$!
  PIDS+=("$PID")
  READY=
  for _ in $(seq 200); do
    READY=$(cat "$W/$name.ready")
    [[ "$READY" == *$'\n'* || "$READY" == *"}" ]] && break
    kill -0 "$PID" 2>/dev/null || { READY=$(cat "$W/$name.ready"); break; }
    sleep 0.02
  done
  ADDR=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("address",""))' "$READY" 2>/dev/null)
  CTL=$W/$name/control.sock
}

# wait_exit PID TIMEOUT_S: waits for PID (a child of this shell, so not in a $(...)),
# sets EC to its exit code, or to "running" if it is still running after TIMEOUT_S
wait_exit() {
  local pid=$1 t=$2
  EC=running
  for _ in $(seq $((t * 20))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      EC=$?
      return
    fi
    sleep 0.05
  done
}

code() { curl -s -o "$W/body" -w '%{http_code}' "$@"; }

# ---- the hello app --------------------------------------------------------------------
spec hello "$HELLO"
start hello
contains "readiness line names the address" '"address":"127.0.0.1:' "$READY"
contains "readiness line names the runner" '"runner":"r-hello"' "$READY"
check "readiness pid is the runner's" "$PID" "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$READY")"
U=http://$ADDR

check "GET / status" 200 "$(code "$U/?x=1")"
contains "GET / greets" "Hello from Tabbify! You sent GET /?x=1" "$(cat "$W/body")"

head -c $((10 << 20)) /dev/urandom >"$W/big"
hwm() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }
hwm0=$(hwm)
check "POST 10 MiB /echo status" 200 "$(curl -s -o "$W/big.out" -w '%{http_code}' --data-binary @"$W/big" "$U/echo")"
if cmp -s "$W/big" "$W/big.out"; then ok "10 MiB echoed byte-exact"; else
  checks=$((checks + 1)); failures=$((failures + 1))
  echo "FAIL 10 MiB echo: expected $(stat -c %s "$W/big") identical bytes, got $(stat -c %s "$W/big.out") bytes that differ"
fi

grown=$(($(hwm) - hwm0))
# Streamed, not buffered: the peak RSS grows by the guest's instance and the bounded
# buffers (well under 10 MiB); ASan's shadow and quarantine add a few MiB.
check "10 MiB echo is streamed (peak RSS grew $grown KiB, < 8 MiB)" yes "$([[ $grown -lt 8192 ]] && echo yes || echo no)"

got=$(seq 100 | xargs -P 100 -I{} curl -s -o /dev/null -w '%{http_code}\n' "$U/?c={}" | sort | uniq -c | tr -s ' ' | sed 's/^ //')
check "100 concurrent clients all 200" "100 200" "$got"

check "keep-alive: two requests on one connection" "200200" \
  "$(curl -s -o /dev/null -o /dev/null -w '%{http_code}' "$U/a" "$U/b")"
contains "keep-alive: the connection was reused" "Re-using existing connection" \
  "$(curl -sv -o /dev/null -o /dev/null "$U/a" "$U/b" 2>&1)"

check "GET /fail traps -> 500" 500 "$(code "$U/fail")"
check "the next GET after a trap" 200 "$(code "$U/")"

status=$(curl -s --unix-socket "$CTL" http://runner/status)
contains "control /status state" '"state":"running"' "$status"
contains "control /status runner" '"runner":"r-hello"' "$status"
contains "control /status address" "\"address\":\"$ADDR\"" "$status"
contains "control /status counts requests" '"requests":' "$status"
check "control /health" '{"status":"ok"}' "$(curl -s --unix-socket "$CTL" http://runner/health)"
check "control unknown path" 404 "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$CTL" http://runner/nope)"

contains "log has the started line" "runner started hello (wasm-http) on $ADDR" "$(cat "$W/logs/hello.log")"
contains "log has the 500 line" "runner request GET /fail answered 500" "$(cat "$W/logs/hello.log")"

# SIGTERM during a slow request (an upload at 100 KB/s): it completes, then exit 0.
head -c 200000 /dev/urandom >"$W/slow"
curl -s --limit-rate 100K -o "$W/slow.out" -w '%{http_code}' --data-binary @"$W/slow" "$U/echo" >"$W/slow.code" &
CURL=$!
sleep 0.7
kill -TERM "$PID"
wait "$CURL"
check "slow request during SIGTERM completes" 200 "$(cat "$W/slow.code")"
if cmp -s "$W/slow" "$W/slow.out"; then ok "slow request echoed whole"; else
  checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL slow request body differs"; fi
wait_exit "$PID" 15
check "exit code after SIGTERM" 0 "$EC"
check "control socket removed" "gone" "$([[ -e "$CTL" ]] && echo present || echo gone)"

# POST /stop on the control socket, during a slow request: /status says draining, new
# connections are refused, the request completes, exit 0.
start hello
curl -s --limit-rate 100K -o "$W/slow2.out" -w '%{http_code}' --data-binary @"$W/slow" "http://$ADDR/echo" >"$W/slow2.code" &
CURL=$!
sleep 0.5
check "POST /stop" '{"state":"draining"}' "$(curl -s -X POST --unix-socket "$CTL" http://runner/stop)"
contains "/status while draining" '"state":"draining"' "$(curl -s --unix-socket "$CTL" http://runner/status)"
check "new connection while draining is refused" 000 "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/")"
wait "$CURL"
check "slow request during POST /stop completes" 200 "$(cat "$W/slow2.code")"
wait_exit "$PID" 15
check "exit code after POST /stop" 0 "$EC"

# ---- the test guest: deadline, memory cap, stderr ---------------------------------------
spec cgi "$CGI" ',"request_timeout_sec":1,"memory_mb":16'
start cgi
U=http://$ADDR
t0=$(date +%s%N)
check "/loop past its 1 s deadline" 500 "$(code -m 10 "$U/loop")"
ms=$((($(date +%s%N) - t0) / 1000000))
check "/loop answered within 1-3 s" yes "$([[ $ms -ge 900 && $ms -le 3000 ]] && echo yes || echo "no: $ms ms")"
check "serves after a deadline" 200 "$(code "$U/counter")"
check "/oom under memory_mb=16" 200 "$(code "$U/oom")"
contains "/oom: the guest saw allocation fail" "OOM after" "$(cat "$W/body")"
check "serves after /oom" 200 "$(code "$U/counter")"
# Output is streamed while the guest runs: the head and "started" arrive long before the
# 1 s deadline ends the request.
check "/looplate: output streams before the guest ends" started "$(curl -s -m 0.5 "$U/looplate" | tr -d '\n')"
sleep 0.6 # let that request reach its deadline: the pool has room again
# A guest that fails after its head went out: the client must not see a clean end.
curl -s -m 10 -o "$W/late" "$U/looplate"
rc=$?
check "/looplate: the connection is cut (curl fails)" yes "$([[ $rc -ne 0 && $rc -ne 28 ]] && echo yes || echo "no: curl exit $rc")"
contains "/looplate: the head and first bytes came through" "started" "$(cat "$W/late")"
# A client that goes away mid-upload: its worker ends and the runner goes on.
head -c 3000000 /dev/urandom >"$W/up"
curl -s -m 0.5 --limit-rate 200K -o /dev/null --data-binary @"$W/up" "$U/echo-gone"
sleep 0.3
contains "client gone mid-upload: nothing left in flight" '"inflight":0' "$(curl -s --unix-socket "$CTL" http://runner/status)"
check "serves after a client went away" 200 "$(code "$U/counter")"
check "/stderr" 200 "$(code "$U/stderr")"
sleep 0.1
log=$(cat "$W/logs/cgi.log")
contains "log has the guest's stderr line" " stderr guest says hello on stderr" "$log"
contains "log has the deadline runtime line" " runtime cgi: deadline" "$log"
kill -TERM "$PID"
wait_exit "$PID" 15
check "cgi exit code" 0 "$EC"

# ---- lifecycle on_request --------------------------------------------------------------
# A request every ~0.3 s for 2.5 s (longer than the 1 s idle timeout), then silence.
spec idle "$HELLO" ',"lifecycle":"on_request","idle_timeout_sec":1'
start idle
for i in $(seq 10); do curl -s -o /dev/null "http://$ADDR/?keep=$i"; sleep 0.25; done
check "on_request: alive while requests come" alive "$(kill -0 "$PID" 2>/dev/null && echo alive || echo dead)"
t0=$(date +%s%N)
wait_exit "$PID" 10
check "on_request: exit code when idle" 10 "$EC"
ms=$((($(date +%s%N) - t0) / 1000000))
check "on_request: idled out after about 1 s" yes "$([[ $ms -ge 500 && $ms -le 3000 ]] && echo yes || echo "no: $ms ms")"
contains "log has the idle line" "runner idle for 1 s" "$(cat "$W/logs/idle.log")"

# Requests racing the idle stop: each is served whole or refused before any byte.
start idle
sleep 0.75
seq 40 | xargs -P 40 -I{} curl -s -o /dev/null -w '%{http_code}:%{size_download}:%{exitcode}\n' "http://$ADDR/?race={}" >"$W/race"
wait_exit "$PID" 10
# code:bytes:curl-exit — whole: 200 with curl exit 0; refused: no status and no byte
bad=$(grep -v -E '^(200:[1-9][0-9]*:0|000:0:[0-9]+)$' "$W/race" | sort | uniq -c | tr '\n' ' ')
check "idle race: every request served whole or refused cleanly" "" "$bad"
echo "   (idle race: $(grep -c '^200' "$W/race") served, $(grep -c '^000' "$W/race") refused; exit $EC)"

# ---- setup errors ------------------------------------------------------------------------
spec bad "$HELLO"
sed -i 's/"digest":"sha256:[0-9a-f]*"/"digest":"sha256:'"$(printf '0%.0s' $(seq 64))"'"/' "$W/bad.json"
start bad
contains "bad digest: readiness error" '{"error":"the artifact '"$HELLO"': the artifact does not match its digest' "$READY"
wait_exit "$PID" 10
check "bad digest: exit code" 2 "$EC"
contains "bad digest: the sentence on stderr" "does not match its digest" "$(cat "$W/bad.err")"

echo "not wasm at all" >"$W/notwasm"
spec notwasm "$W/notwasm"
start notwasm
contains "non-wasm artifact: readiness error" "is not a valid WASI module" "$READY"
wait_exit "$PID" 10
check "non-wasm artifact: exit code" 2 "$EC"

spec missing "$HELLO"
sed -i 's/"listen":"127.0.0.1:0",//' "$W/missing.json"
start missing
contains "missing field: readiness error names it" 'spec field \"listen\" is missing' "$READY"
wait_exit "$PID" 10
check "missing field: exit code" 2 "$EC"

spec firecracker "$HELLO"
sed -i 's/"runtime":"wasm-http"/"runtime":"firecracker"/' "$W/firecracker.json"
start firecracker
contains "unknown runtime: readiness error" 'spec field \"runtime\" is \"firecracker\"' "$READY"
wait_exit "$PID" 10
check "unknown runtime: exit code" 2 "$EC"

# Without TABBIFY_READY_FD: a line on stdout for humans.
spec human "$HELLO"
"$RUNNER" --spec "$W/human.json" >"$W/human.out" 2>"$W/human.err" &
PID=$!
PIDS+=("$PID")
for _ in $(seq 100); do grep -q listening "$W/human.out" && break; sleep 0.02; done
contains "stdout line without TABBIFY_READY_FD" "tabbify-runner listening on 127.0.0.1:" "$(cat "$W/human.out")"
kill -INT "$PID"
wait_exit "$PID" 15
check "exit code after SIGINT" 0 "$EC"

finish
