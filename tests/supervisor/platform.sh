#!/usr/bin/env bash
# End-to-end test of issue 7: the real tabbify-node, tabbify-supervisord and
# tabbify-runner on loopback, driven with the tabbify CLI and curl.
#
# Usage: platform.sh BIN_DIR HELLO_WASM CGI_WASM
#   BIN_DIR holds src/{node,supervisord,runner,tabbify}/ of the build tree.
# Checks: push + deploy, GET through the node, a 10 MiB echo, 100 concurrent clients, a
# trap (500, then the next request works), an infinite loop cut at its deadline, scale to
# zero and back, kill -9 of the supervisor (the app keeps answering, the runner is adopted,
# not duplicated), kill -9 of a runner (restarted, recorded), a new version replacing
# the runner, stop, and `tabbify up`.
set -u
BIN=$(realpath "$1") HELLO=$(realpath "$2") CGI=$(realpath "$3")
. "$(dirname "$0")/harness.sh"

start_node --supervisor-lost-ms 2500
SUP_ARGS=(--docker-socket "$WORK/no-docker.sock") # detection stays the same whatever the host runs
start_sup
token

# ---- capability detection and health ----
H=$(curl -s "http://127.0.0.1:$SPORT/health")
check "supervisor /health status" ok "$(jq -r .status <<<"$H")"
check "/health has docker, firecracker, ula" "true" "$(jq 'has("docker") and has("firecracker") and has("ula")' <<<"$H")"
for _ in $(seq 50); do [ "$(curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq length)" = 1 ] && break; sleep 0.1; done
check "the node lists the supervisor with its tags" '["supervisor","wasm-http"]' \
  "$(curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -c '.[0].tags')"

# ---- an always_on app: deploy, GET, echo, concurrency, trap ----
make_app hello hello always_on 300 5 "$HELLO"
A=$(push_deploy hello) || { fail "push/deploy"; exit 1; }
wait_state "$A" running && ok "always_on app running after deploy" || fail "app state $(app_state "$A")"
check "GET through the node" "Hello from Tabbify! You sent GET /greet?x=1" "$(curl -s "$U/app/$A/greet?x=1")"
head -c $((10 << 20)) /dev/urandom >"$WORK/10m"
curl -s --data-binary @"$WORK/10m" -o "$WORK/10m.back" "$U/app/$A/echo"
cmp -s "$WORK/10m" "$WORK/10m.back" && ok "10 MiB POST echoed byte-exact" || fail "10 MiB echo differs ($(stat -c %s "$WORK/10m.back") bytes back)"
seq 100 | xargs -P 100 -I{} curl -s -o /dev/null -w '%{http_code}\n' "$U/app/$A/c{}" >"$WORK/codes"
check "100 concurrent clients all get 200" 100 "$(grep -c '^200$' "$WORK/codes")"
check "a guest that traps gets 500" 500 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$A/fail")"
check "the next request works" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$A/")"
grep -q "runtime" "$S/logs/$A.log" && ok "the trap is in the app's log" || fail "no runtime line in $S/logs/$A.log"

# ---- a guest in an infinite loop is stopped at its deadline ----
make_app loop looper always_on 300 1 "$CGI"
L=$(push_deploy loop)
wait_state "$L" running || fail "loop app state $(app_state "$L")"
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' -m 20 "$U/app/$L/loop")
ms=$((($(date +%s%N) - t0) / 1000000))
check "an infinite loop answers 500" 500 "$code"
[ "$ms" -lt 5000 ] && ok "cut at its 1 s deadline (${ms} ms)" || fail "the loop took ${ms} ms"
check "the looping app still serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$L/env")"

# ---- an app that cannot start: recorded once with the runner's sentence, not retried ----
printf 'this is not wasm' >"$WORK/bad.wasm"
make_app bad broken always_on 300 5 "$WORK/bad.wasm"
B=$(push_deploy bad)
for _ in $(seq 50); do [ -n "$(events deployment_failed | grep "$B")" ] && break; sleep 0.1; done
R=$(events deployment_failed | grep "$B" | jq -r .reason)
case "$R" in *magic*|*module*|*wasm*) ok "deployment_failed names the problem: $R" ;; *) fail "deployment_failed reason: [$R]" ;; esac
sleep 0.5
check "a broken app is not restarted in a loop" 1 "$(events deployment_failed | grep -c "$B")"
check "a request to it gets 503" 503 "$(curl -s -o "$WORK/body" -w '%{http_code}' "$U/app/$B/")"
grep -q "$(jq -r .message "$WORK/body" | cut -c1-20)" <<<"the deployment of app $B failed: $R" && ok "with the reason: $(jq -r .message "$WORK/body")" || fail "503 body: $(cat "$WORK/body")"

# ---- on_request: started by the first request, gone after idle_timeout_sec, started again ----
make_app lazy lazy on_request 1 5 "$HELLO"
Z=$(push_deploy lazy)
sleep 0.3
check "on_request app has no runner before its first request" "" "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$Z\") | .runner")"
t0=$(date +%s%N)
check "first request starts it" "Hello from Tabbify! You sent GET /" "$(curl -s "$U/app/$Z/")"
echo "   (cold start through the node: $((($(date +%s%N) - t0) / 1000000)) ms)"
sleep 2.5
check "after idle_timeout_sec the runner is gone" "" "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$Z\") | .runner")"
events runner_exited | grep -q "\"app\":\"$Z\".*\"reason\":\"idle\"\|\"reason\":\"idle\".*\"app\":\"$Z\"" && ok "runner_exited idle recorded" || fail "no idle runner_exited for $Z"
wait_state "$Z" idle && ok "app state is idle" || fail "app state $(app_state "$Z")"
check "the next request starts it again" "Hello from Tabbify! You sent GET /again" "$(curl -s "$U/app/$Z/again")"

# ---- kill -9 a runner: restarted with backoff, recorded ----
RP=$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\") | .pid")
kill -9 "$RP"
for _ in $(seq 50); do
  NP=$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\" and .state==\"running\") | .pid")
  [ -n "$NP" ] && [ "$NP" != "$RP" ] && break; sleep 0.1
done
[ -n "$NP" ] && [ "$NP" != "$RP" ] && ok "the killed runner was restarted (pid $RP -> $NP)" || fail "no new runner after kill -9"
events app_crashed | grep -q "\"app\":\"$A\".*\"signal\":9\|\"signal\":9.*\"app\":\"$A\"" && ok "app_crashed with signal 9 recorded" || fail "no app_crashed for $A: $(events app_crashed)"
check "the app answers again" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$A/")"

# ---- kill -9 the supervisor: apps keep answering; the restarted one adopts, no duplicates ----
"$CLI" stop --app "$Z" >/dev/null # the on_request app would idle out meanwhile
for _ in $(seq 50); do [ -z "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$Z\") | .runner")" ] && break; sleep 0.1; done
pids_of() { curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\" or .app==\"$L\") | \"\\(.app) \\(.pid)\"" | sort; }
before=$(pids_of)
check "two always_on runners before" 2 "$(echo "$before" | grep -c .)"
kill -9 "$SUP_PID"; wait "$SUP_PID" 2>/dev/null
check "with the supervisor dead, the app still answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$A/")"
sup_state() { curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -r '.[0].state'; }
for _ in $(seq 60); do [ "$(sup_state)" = lost ] && break; sleep 0.1; done
check "without heartbeats the node records the supervisor lost" lost "$(sup_state)"
check "and the app still answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$A/")"
start_sup
for _ in $(seq 30); do [ "$(sup_state)" = up ] && break; sleep 0.1; done
check "the restarted supervisor is up again" up "$(sup_state)"
sleep 0.5
check "the restarted supervisor has the same runners (same pids)" "$before" "$(pids_of)"
check "it adopted them" 2 "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq "[.[] | select((.app==\"$A\" or .app==\"$L\") and .adopted)] | length")"
check "no runner process was started twice" "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq '[.[] | select(.pid > 0)] | length')" \
  "$(runner_pids | grep -c .)"
for _ in $(seq 30); do [ -n "$(events runner_adopted | grep "$A")" ] && break; sleep 0.1; done
[ -n "$(events runner_adopted | grep "$A")" ] && ok "runner_adopted recorded" || fail "no runner_adopted event for $A"
check "and the app answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/app/$A/")"

# ---- a new version replaces the runner; stop stops it ----
OLD=$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\") | .runner")
(cd "$WORK/hello" && "$CLI" push >/dev/null && "$CLI" deploy >/dev/null)
for _ in $(seq 50); do
  NEW=$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\" and .version==2 and .state==\"running\") | .runner")
  [ -n "$NEW" ] && break; sleep 0.1
done
[ -n "$NEW" ] && ok "version 2 runs" || fail "version 2 did not start"
for _ in $(seq 30); do events runner_exited | grep -q "$OLD.*replaced\|replaced.*$OLD" && break; sleep 0.1; done
events runner_exited | grep -q "$OLD" && ok "the version 1 runner exited (replaced)" || fail "no runner_exited for $OLD"
(cd "$WORK/hello" && "$CLI" stop >/dev/null)
for _ in $(seq 50); do [ -z "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\") | .runner")" ] && break; sleep 0.1; done
check "a stopped app's runner is gone" "" "$(curl -s "http://127.0.0.1:$SPORT/v1/runners" | jq -r ".[] | select(.app==\"$A\") | .runner")"
check "a stopped app answers 503" 503 "$(curl -s -o "$WORK/body" -w '%{http_code}' "$U/app/$A/")"

kill "$SUP_PID" "$NODE_PID"
wait "$SUP_PID"; check "the supervisor exits 0 on SIGTERM" 0 "$?"
wait "$NODE_PID"; check "the node exits 0 on SIGTERM" 0 "$?"
SUP_PID= NODE_PID=

pkill -9 -f "$WORK/" 2>/dev/null

# ---- tabbify up: everything in one process, the demo answering ----
"$CLI" up --state-dir "$WORK/up" --listen 127.0.0.1:0 >"$WORK/up.out" 2>"$WORK/up.err" &
UP_PID=$!
for _ in $(seq 200); do grep -q "curl http" "$WORK/up.out" && break; sleep 0.05; done
URL=$(grep -o 'curl http[^ ]*/' "$WORK/up.out" | head -1 | cut -c6-)
[ -n "$URL" ] || { fail "tabbify up printed no curl line: $(cat "$WORK/up.out" "$WORK/up.err")"; }
check "tabbify up: the printed curl line works" "Hello from Tabbify! You sent GET /" "$(curl -s "$URL")"
check "tabbify up: admin token is 0600" 600 "$(stat -c %a "$WORK/up/admin.token")"
kill -INT "$UP_PID"
for _ in $(seq 100); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$UP_PID" 2>/dev/null && fail "tabbify up did not stop on SIGINT" || ok "tabbify up stops on SIGINT"
sleep 0.3
check "and its runners stopped with it" "" "$(pgrep -f "$WORK/up/" -a | grep tabbify-runner)"
wait "$UP_PID" 2>/dev/null; check "tabbify up exits 0" 0 "$?"
UP_PID=

# Sanitizer builds: no report from any program (runners write theirs into the app logs).
check "no sanitizer reports" "" "$(grep -rl 'Sanitizer\|runtime error:' "$WORK"/*.err "$S/logs" "$WORK/up/logs" 2>/dev/null)"

echo "$FAILS failed"
[ "$FAILS" -eq 0 ]
