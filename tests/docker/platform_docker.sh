#!/usr/bin/env bash
# End-to-end test of the docker runtime (issue 8): a private dockerd (dockerd.sh), the
# real tabbify-node, tabbify-supervisord and tabbify-runner, an OCI image made at build
# time (image/mkimage.sh: a static C HTTP server in a `docker save` tarball) pushed and
# deployed with the CLI and reached through the node.
#
# Usage: platform_docker.sh BIN_DIR IMAGE_DIR
# Checks: the supervisor offers docker while the daemon answers; push + deploy; GET and a
# streamed POST through the node; the container's env, labels, memory limit and logs; a
# container killed for exceeding memory_mb is restarted with an app_crashed event naming
# the limit; a restarted runner adopts the running container instead of creating a
# second; stop removes it; a bad image gives a clear deployment_failed; a stopped daemon
# makes the supervisor drop the docker tag. Exit 77 (skip) only when no dockerd can run.
set -u
BIN=$(realpath "$1") IMG=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../supervisor/harness.sh"

DK=$WORK/dk
stop_docker() { "$HERE/dockerd.sh" stop "$DK" >/dev/null 2>&1; }
CLEANUP_HOOK=stop_docker
SOCK=$("$HERE/dockerd.sh" start "$DK")
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || { echo "the private dockerd did not start"; exit 1; }
dk() { curl -s --unix-socket "$SOCK" "http://docker$1"; }
containers_of() { # APP -> ids of its containers, running or not
  dk "/containers/json?all=1&filters=$(jq -rn --arg l "io.tabbify.app=$1" '{label:[$l]}|@uri')" | jq -r '.[].Id'
}

start_node --supervisor-lost-ms 5000
SUP_ARGS=(--docker-socket "$SOCK")
start_sup
token

# ---- detection ----
check "/health: docker answers" true "$(curl -s "http://127.0.0.1:$SPORT/health" | jq .docker)"
for _ in $(seq 50); do curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -e '.[0].tags|index("docker")' >/dev/null && break; sleep 0.1; done
check "the supervisor is tagged docker" '["supervisor","wasm-http","docker"]' \
  "$(curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -c '.[0].tags')"

# ---- an image app: push, deploy, GET, streamed POST ----
docker_app() { # DIR NAME ARCHIVE MEMORY_MB [LIFECYCLE IDLE]
  mkdir -p "$WORK/$1"
  cp "$3" "$WORK/$1/image.tar"
  cat >"$WORK/$1/tabbify.toml" <<TOML
[app]
name = "$2"
[build]
kind = "docker"
archive = "image.tar"
[runtime]
type = "docker"
lifecycle = "${5:-always_on}"
idle_timeout_sec = ${6:-300}
port = 8080
memory_mb = $4
request_timeout_sec = 20
[env]
GREETING = "hello from the manifest"
TOML
}
docker_app web web "$IMG/httpd.tar" 32
t0=$(date +%s%N)
A=$(push_deploy web) || { fail "push/deploy"; exit 1; }
wait_state "$A" running && ok "the docker app runs ($((($(date +%s%N) - t0) / 1000000)) ms from push to running)" \
  || fail "app state $(app_state "$A"): $(tail -5 "$S/logs/$A.log")"
check "GET through the node" "hello from a container" "$(curl -s "$U/app/$A/")"
curl -s "$U/app/$A/env" | grep -q "^GREETING=hello from the manifest$" && ok "the manifest's env reached the container" \
  || fail "env: $(curl -s "$U/app/$A/env" | head -5)"
head -c $((1 << 20)) /dev/urandom >"$WORK/1m"
curl -s -H "Transfer-Encoding: chunked" --data-binary @"$WORK/1m" -o "$WORK/1m.back" "$U/app/$A/echo"
cmp -s "$WORK/1m" "$WORK/1m.back" && ok "a streamed 1 MiB POST echoed byte-exact" || fail "echo differs ($(stat -c %s "$WORK/1m.back") bytes)"
C=$(containers_of "$A")
check "one container for the app" 1 "$(echo "$C" | grep -c .)"
INS=$(dk "/containers/$C/json")
check "labelled with the deployment's version" 1 "$(jq -r '.Config.Labels["io.tabbify.version"]' <<<"$INS")"
check "memory_mb is its memory limit" $((32 << 20)) "$(jq .HostConfig.Memory <<<"$INS")"
sleep 0.3
grep -q " stdout GET /env" "$S/logs/$A.log" && ok "the container's stdout is in the app's log" || fail "no stdout line in $S/logs/$A.log"
grep -q " stderr httpd" "$S/logs/$A.log" && ok "and its stderr" || fail "no stderr line in $S/logs/$A.log"

# ---- over its memory: killed, restarted, recorded ----
curl -s -o /dev/null -m 20 "$U/app/$A/alloc?mb=200"
for _ in $(seq 100); do [ -n "$(events app_crashed | grep "$A")" ] && break; sleep 0.1; done
R=$(events app_crashed | grep "$A" | jq -r .reason | head -1)
case "$R" in *memory*32*) ok "app_crashed says why: $R" ;; *) fail "app_crashed reason: [$R]" ;; esac
for _ in $(seq 100); do [ "$(app_state "$A")" = running ] && [ "$(curl -s "$U/app/$A/")" = "hello from a container" ] && break; sleep 0.1; done
check "restarted, it answers again" "hello from a container" "$(curl -s "$U/app/$A/")"
check "still one container (the killed one was replaced)" 1 "$(containers_of "$A" | grep -c .)"

# ---- a runner that dies: the next one adopts the running container ----
C1=$(containers_of "$A")
curl -s -o /dev/null "$U/app/$A/env"
sleep 0.3
envlines=$(grep -c " stdout GET /env" "$S/logs/$A.log")
RP=$(runners | jq -r ".[] | select(.app==\"$A\") | .pid")
kill -9 "$RP"
for _ in $(seq 100); do
  NP=$(runners | jq -r ".[] | select(.app==\"$A\" and .state==\"running\") | .pid")
  [ -n "$NP" ] && [ "$NP" != "$RP" ] && break; sleep 0.1
done
[ -n "$NP" ] && [ "$NP" != "$RP" ] && ok "the killed runner was restarted" || fail "no new runner"
check "the new runner adopted the container (same id, no second one)" "$C1" "$(containers_of "$A")"
grep -q "adopted the running container" "$S/logs/$A.log" && ok "the adoption is in the log" || fail "no adoption line"
check "and the app answers" "hello from a container" "$(curl -s "$U/app/$A/")"
sleep 0.3
check "the adopted container's earlier output is not logged twice" "$envlines" "$(grep -c " stdout GET /env" "$S/logs/$A.log")"

# ---- stop removes the container ----
(cd "$WORK/web" && "$CLI" stop >/dev/null)
for _ in $(seq 100); do [ -z "$(containers_of "$A")" ] && break; sleep 0.1; done
check "a stopped app's container is removed" "" "$(containers_of "$A")"

# ---- on_request: the first request starts a container, idling out removes it ----
docker_app lazy lazy "$IMG/httpd.tar" 32 on_request 1
Z=$(push_deploy lazy)
sleep 0.3
check "no container before the first request" "" "$(containers_of "$Z")"
t0=$(date +%s%N)
check "the first request starts it" "hello from a container" "$(curl -s "$U/app/$Z/")"
echo "   (cold start of a docker app through the node: $((($(date +%s%N) - t0) / 1000000)) ms)"
for _ in $(seq 60); do [ -z "$(containers_of "$Z")" ] && break; sleep 0.1; done
check "idle for idle_timeout_sec: the container is removed" "" "$(containers_of "$Z")"
events runner_exited | grep "$Z" | grep -q '"reason":"idle"' && ok "runner_exited idle recorded" || fail "no idle runner_exited for $Z"
check "the next request starts it again" "hello from a container" "$(curl -s "$U/app/$Z/")"
(cd "$WORK/lazy" && "$CLI" stop >/dev/null)

# ---- a bad image: a clear, recorded failure ----
head -c 1000 /dev/urandom >"$WORK/junk.tar"
docker_app bad bad "$WORK/junk.tar" 32
B=$(push_deploy bad)
for _ in $(seq 100); do [ -n "$(events deployment_failed | grep "$B")" ] && break; sleep 0.1; done
R=$(events deployment_failed | grep "$B" | jq -r .reason)
case "$R" in *"not an image the Docker daemon can load"*) ok "deployment_failed: $R" ;; *) fail "deployment_failed reason: [$R]" ;; esac

# ---- the daemon goes away: the supervisor drops the docker tag ----
stop_docker
for _ in $(seq 100); do curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -e '.[0].tags|index("docker")' >/dev/null || break; sleep 0.1; done
check "without the daemon the supervisor is no longer tagged docker" '["supervisor","wasm-http"]' \
  "$(curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -c '.[0].tags')"
check "/health says why" true "$(curl -s "http://127.0.0.1:$SPORT/health" | jq '.docker == false and (.why.docker | test("no daemon answers"))')"
check "a docker deploy is refused with 409" 409 "$(curl -s -o "$WORK/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" \
  -H 'Content-Type: application/json' -d '{}' "$U/v1/apps/$A/deploy")"

kill "$SUP_PID" "$NODE_PID"
wait "$SUP_PID"; check "the supervisor exits 0" 0 "$?"
wait "$NODE_PID"; check "the node exits 0" 0 "$?"
SUP_PID= NODE_PID=
check "no sanitizer reports" "" "$(grep -rl 'Sanitizer\|runtime error:' "$WORK"/*.err "$S/logs" 2>/dev/null)"
echo "$FAILS failed"
[ "$FAILS" -eq 0 ]
