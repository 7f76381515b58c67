# harness.sh — what the platform tests (and bench/proxy) share: start the real node and
# supervisor on loopback with one state directory, push and deploy apps with the CLI,
# read events, and report checks. Source it after setting BIN (the build's src/ dir);
# it makes WORK (a temporary directory, removed on exit with everything started in it;
# KEEP_WORK=1 keeps it). CLEANUP_HOOK names a function run first on exit.
#
#   start_node [ARGS]     tabbify-node on 127.0.0.1:0 → NODE_PID, NPORT, U (its URL)
#   start_sup [ARGS]      tabbify-supervisord on 127.0.0.1:0 → SUP_PID, SPORT; SUP_ARGS (an
#                         array) is added to every start
#   make_app DIR NAME LIFECYCLE IDLE TIMEOUT WASM      a wasm-http app directory
#   push_deploy DIR       push + deploy it with the CLI; prints the app id
#   events TYPE, app_state APP, wait_state APP STATE, runners (the supervisor's slots)
#   check WHAT EXPECTED GOT, ok, fail; FAILS counts failures
NODE_BIN=$BIN/node/tabbify-node SUP_BIN=$BIN/supervisord/tabbify-supervisord CLI=$BIN/tabbify/tabbify
WORK=$(mktemp -d /tmp/tb-platform.XXXXXX)
S=$WORK/state
NODE_PID= SUP_PID= UP_PID=
FAILS=0
SUP_ARGS=()
LAUNCH=() # a prefix for the node's and the supervisor's command (taskset -c 1)
CLEANUP_HOOK=:
# The runners this run started (detached by the supervisor on purpose, so not our
# children): found by their spec path, which lies under WORK, and ended by pid.
own_runners() {
  local d c
  for d in /proc/[0-9]*; do
    c=$({ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null) || continue
    [[ "$c" == *tabbify-runner*"$WORK/"* ]] && echo "${d#/proc/}"
  done
}
cleanup() {
  local p
  $CLEANUP_HOOK
  for p in $NODE_PID $SUP_PID $UP_PID $(own_runners); do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi; }

wait_port() { # FILE PATTERN -> prints the port
  for _ in $(seq 200); do
    p=$(grep -o "$2 [0-9]*" "$1" 2>/dev/null | head -1 | awk '{print $NF}')
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.05
  done
  return 1
}

start_node() {
  "${LAUNCH[@]}" "$NODE_BIN" --state-dir "$S" --listen 127.0.0.1:0 "$@" >"$WORK/node.out" 2>>"$WORK/node.err" &
  NODE_PID=$!
  NPORT=$(wait_port "$WORK/node.out" "on port") || { cat "$WORK/node.err"; exit 1; }
  U=http://127.0.0.1:$NPORT
}
start_sup() {
  : >"$WORK/sup.out"
  "${LAUNCH[@]}" "$SUP_BIN" --state-dir "$S/sup" --events-dir "$S" --store-dir "$S/artifacts" --logs-dir "$S/logs" \
    --no-mesh --bind 127.0.0.1:0 --name box --heartbeat-ms 1000 "${SUP_ARGS[@]}" "$@" >"$WORK/sup.out" \
    2>>"$WORK/sup.err" &
  SUP_PID=$!
  SPORT=$(wait_port "$WORK/sup.out" "on port") || { cat "$WORK/sup.err"; exit 1; }
}
token() { # the admin token for the node's state; exports what the CLI reads
  T=$("$CLI" token create --tenant acme --scope '*' --state-dir "$S")
  export TABBIFY_SERVER=$U TABBIFY_TOKEN=$T
}
events() { # TYPE -> one line per event payload
  curl -s -H "Authorization: Bearer $T" "$U/v1/events?type=$1" | jq -c '.[].payload'
}
app_state() { curl -s -H "Authorization: Bearer $T" "$U/v1/apps/$1" | jq -r .state; }
wait_state() { # APP STATE
  for _ in $(seq 100); do [ "$(app_state "$1")" = "$2" ] && return 0; sleep 0.1; done
  return 1
}
runners() { curl -s "http://127.0.0.1:$SPORT/v1/runners"; }
runner_pids() { pgrep -f "runners/[0-9a-f-]*/spec.json" -a | grep -F "$WORK/" | awk '{print $1}' | sort; }
make_app() { # DIR NAME LIFECYCLE IDLE TIMEOUT WASM
  mkdir -p "$WORK/$1"
  cp "$6" "$WORK/$1/app.wasm"
  cat >"$WORK/$1/tabbify.toml" <<TOML
[app]
name = "$2"
[build]
kind = "wasm"
wasm = "app.wasm"
[runtime]
type = "wasm-http"
lifecycle = "$3"
idle_timeout_sec = $4
request_timeout_sec = $5
memory_mb = 64
TOML
}
push_deploy() { # DIR -> prints the app id
  (cd "$WORK/$1" && "$CLI" push >/dev/null && "$CLI" deploy >/dev/null) || return 1
  grep -o '^id = "[0-9a-f-]*"' "$WORK/$1/tabbify.toml" | cut -d'"' -f2
}
