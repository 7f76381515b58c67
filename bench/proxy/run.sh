#!/usr/bin/env bash
# bench/proxy/run.sh — the data path of the wasm-http runtime, against nginx in the same
# run: requests per second and latency of the demo app straight from its runner, through
# tabbify-node's proxy and through nginx proxying to the same runner, then the cost of a
# cold start of a scaled-to-zero app. docs/internals/BENCH.md ("The proxy data path")
# explains the figures.
#
# usage: bench/proxy/run.sh [BUILD_DIR] [--quick | --check-only]
#
#   BUILD_DIR     a build tree with src/{node,supervisord,runner,tabbify}/ and
#                 examples/hello/hello.wasm (default: build/ at the top of the tree)
#   --quick       2 s wrk runs and 5 cold starts instead of 10 s and 20 (< 30 s in all)
#   --check-only  every path once, 1 s each, figures not worth reading (bench_proxy_smoke)
#
# Environment, for sensitivity runs (both proxies always get identical conditions):
#   BENCH_WRK="-t2 -c32"   wrk threads and connections of the throughput cases
#   BENCH_PIN=1            pin wrk to CPU 0 and runner, node and nginx to CPU 1 (taskset)
#   BENCH_COLD=N           cold starts to time (default 20, 5 with --quick)
#   BENCH_KEEP=1           keep the temporary directories (wrk output, logs) on exit
#
# Starts the real node, supervisor and runner on loopback ephemeral ports in a mktemp
# directory and stops everything it started on exit. Needs wrk and nginx (Debian's;
# `scripts/setup --bench` installs both) and exits 2, saying so, when one is missing.
# A benchmark: it never fails on a figure, but it exits 1 when something answered wrong
# (a non-2xx status or a socket error in wrk's output, a failed cold start), because a
# proxy that fails fast would otherwise look good in requests per second.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { # a failure: exit 1
  echo "bench/proxy: $*" >&2
  exit 1
}
missing() { # a tool to install: exit 2, which bench_proxy_smoke reports as skipped
  echo "bench/proxy: $*" >&2
  exit 2
}
usage() {
  sed -n '8,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

B='' MODE=full
for a in "$@"; do
  case $a in
  --quick) MODE=quick ;;
  --check-only) MODE=check ;;
  -h | --help) usage ;;
  -*) usage ;;
  *) [[ -z "$B" ]] || usage; B=$a ;;
  esac
done
B=${B:-$ROOT/build}
[[ -d "$B" ]] || die "no build directory $B (build first: cmake -S . -B build -G Ninja && cmake --build build)"
B=$(cd "$B" && pwd)
NODE_BIN=$B/src/node/tabbify-node SUP_BIN=$B/src/supervisord/tabbify-supervisord
CLI=$B/src/tabbify/tabbify HELLO=$B/examples/hello/hello.wasm
for f in "$NODE_BIN" "$SUP_BIN" "$B/src/runner/tabbify-runner" "$CLI" "$HELLO"; do
  [[ -e "$f" ]] || die "$f is missing: build it first (cmake --build $B)"
done

# The tools: PATH first, then /usr/sbin where Debian puts nginx.
NGINX=$(command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)
command -v wrk >/dev/null || missing "wrk is not installed: run scripts/setup --bench (it installs wrk and nginx-light)"
[[ -n "$NGINX" ]] || missing "nginx is not installed: run scripts/setup --bench (it installs wrk and nginx-light)"
for t in curl jq python3 "${CC:-cc}"; do command -v "$t" >/dev/null || missing "$t is not installed: run scripts/setup"; done

case $MODE in
full) DUR=10 COLD_N=${BENCH_COLD:-20} C1_ROUNDS=3 ORDER=(a b c1 cN c1 b a) ;;
quick) DUR=2 COLD_N=${BENCH_COLD:-5} C1_ROUNDS=1 ORDER=(a b c1 cN c1 b a) ;;
check) DUR=1 COLD_N=1 C1_ROUNDS=0 ORDER=(a b c1 cN) ;;
esac
read -r -a WRK_LOAD <<<"${BENCH_WRK:--t2 -c32}"
PIN=${BENCH_PIN:-0}
PIN_CLIENT=() PIN_SERVER=()
if [[ "$PIN" == 1 ]]; then
  command -v taskset >/dev/null || die "BENCH_PIN=1 needs taskset (util-linux)"
  PIN_CLIENT=(taskset -c 0) PIN_SERVER=(taskset -c 1)
fi

START=$(date +%s%N)
# The harness makes WORK, starts the node and the supervisor, pushes and deploys with
# the CLI, and on exit ends every process it started by its pid, runners included.
BIN=$B/src
. "$ROOT/tests/supervisor/harness.sh"
# nginx's workers drop to an unprivileged user when it starts as root; their temp
# directories live in a directory of its own that that user can reach.
NGX=$(mktemp -d /tmp/tb-proxy-bench-nginx.XXXXXX)
chmod 711 "$NGX"
NGX_PID=''
bench_cleanup() {
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench/proxy: kept $WORK and $NGX" >&2; KEEP_WORK=1; fi
  exec 2>/dev/null # no "Killed" notices from bash for the jobs ended next
  if [[ -n "$NGX_PID" ]]; then kill "$NGX_PID"; wait "$NGX_PID"; fi
  [[ "${BENCH_KEEP:-0}" == 1 ]] || rm -rf "$NGX"
}
CLEANUP_HOOK=bench_cleanup
trap 'exit 130' INT TERM
"${CC:-cc}" -std=c17 -O2 -o "$WORK/timed_get" "$ROOT/bench/proxy/timed_get.c" || die "cannot compile bench/proxy/timed_get.c"

runner_field() { # APP FIELD -> the field of the app's running runner
  runners | jq -r ".[] | select(.app==\"$1\" and .state==\"running\") | .$2" | head -1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Latency as wrk prints it (123.45us, 1.23ms, 1.00s) in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000
    else if (u == "m") f = 60000000; else { print "nan"; exit }
    printf "%.0f", n * f }'
}
fmt_us() { # microseconds -> "123 µs" / "1.23 ms"
  awk -v u="$1" 'BEGIN { if (u == "nan" || u == "") { print "—"; exit } a = u < 0 ? -u : u
    if (a < 1000) printf "%d µs", u; else if (a < 1000000) printf "%.2f ms", u / 1000; else printf "%.2f s", u / 1000000 }'
}

# ---- start the platform, deploy hello twice ----
# The supervisor's children (the runners) inherit its CPU affinity; its heartbeat stays
# at the default 30 s, so no event is appended during a measurement.
LAUNCH=("${PIN_SERVER[@]}")
SUP_ARGS=(--heartbeat-ms 30000)
start_node
start_sup
token
# The node learns of the supervisor through its heartbeat; deploy places apps on it.
for _ in $(seq 100); do
  [[ "$(curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq length 2>/dev/null)" == 1 ]] && break
  sleep 0.1
done

make_app warm hello-warm always_on 300 5 "$HELLO"
A=$(push_deploy warm) || die "push/deploy of the always_on app failed: $(cat "$WORK/node.err")"
ADDR=
for _ in $(seq 100); do ADDR=$(runner_field "$A" address); [[ -n "$ADDR" ]] && break; sleep 0.1; done
[[ -n "$ADDR" ]] || die "the always_on app has no running runner: $(runners)"
RUNNER_PID=$(runner_field "$A" pid)

# ---- nginx, configured as a fair reverse proxy to the same runner ----
# One config per worker count; everything in its own prefix directory.
start_nginx() { # WORKERS -> sets NGX_PID, NGX_PORT
  local w=$1
  mkdir -p "$NGX/$w/tmp"
  for _ in 1 2 3; do
    NGX_PORT=$(free_port)
    cat >"$NGX/$w/nginx.conf" <<CONF
# Generated by bench/proxy/run.sh: a plain keep-alive reverse proxy to one runner.
daemon off;
master_process on;
worker_processes $w;
pid $NGX/$w/nginx.pid;
error_log $NGX/$w/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $NGX/$w/tmp/body;
  proxy_temp_path $NGX/$w/tmp/proxy;
  fastcgi_temp_path $NGX/$w/tmp/fastcgi;
  uwsgi_temp_path $NGX/$w/tmp/uwsgi;
  scgi_temp_path $NGX/$w/tmp/scgi;
  upstream runner { server $ADDR; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / {
      proxy_pass http://runner;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
    "${PIN_SERVER[@]}" "$NGINX" -c "$NGX/$w/nginx.conf" -p "$NGX/$w/" 2>>"$NGX/$w/error.log" &
    NGX_PID=$!
    for _ in $(seq 100); do
      curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" && return 0
      kill -0 "$NGX_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill "$NGX_PID" 2>/dev/null; wait "$NGX_PID" 2>/dev/null; NGX_PID=
  done
  cat "$NGX/$w/error.log" >&2
  die "nginx did not start"
}
stop_nginx() {
  [[ -n "$NGX_PID" ]] || return 0
  kill "$NGX_PID" 2>/dev/null; wait "$NGX_PID" 2>/dev/null; NGX_PID=
}

# The three doors to the same runner must all answer the greeting before anything is timed.
GREETING="Hello from Tabbify! You sent GET /"
check_door() { # NAME URL
  local body
  body=$(curl -s -m 5 "$2")
  [[ "$body" == "$GREETING" ]] || die "$1 ($2) answered [$body], not the greeting"
}
check_door runner "http://$ADDR/"
check_door node "$U/app/$A/"

URL_a="http://$ADDR/" URL_b="$U/app/$A/"
declare -A NAME=([a]="a  runner, direct" [b]="b  through tabbify-node" [c1]="c  through nginx (1 worker)"
  [cN]="c' through nginx (auto workers)")
declare -A RPS P50 P99 PCPU RCPU ERR N

# CPU time (user + system, all threads, in clock ticks) the given processes have used.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() {
  local p t=0 st f
  for p in "$@"; do
    st=$({ cat "/proc/$p/stat"; } 2>/dev/null) || continue
    # Fields 14 and 15 (utime, stime), counted from field 3, after the ")" that ends the name.
    read -r -a f <<<"${st##*) }"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
# The proxy's processes for case X: the node, or nginx's master and its workers.
proxy_pids() {
  case $1 in
  b) echo "$NODE_PID" ;;
  c1 | cN) echo "$NGX_PID" "$(cat "/proc/$NGX_PID/task/$NGX_PID/children" 2>/dev/null)" ;;
  esac
}

# wrk_case SLOT X LABEL URL WRK-ARGS...: one wrk run of case X, kept in $WORK/wrk.SLOT.LABEL,
# summed up on one line, and its figures kept under SLOT: req/s, p50, p99, and the CPU
# time the proxy and the runner spent per request (from /proc, so it counts only their
# own work, whatever else the machine was doing).
wrk_case() {
  local key=$1 x=$2 label=$3 url=$4 out pp
  shift 4
  out=$WORK/wrk.$key.$label
  # shellcheck disable=SC2207  # pids are words
  pp=($(proxy_pids "$x"))
  local r0 p0 r1 p1
  r0=$(cpu_ticks "$RUNNER_PID") p0=$(cpu_ticks "${pp[@]}")
  "${PIN_CLIENT[@]}" wrk "$@" --latency "$url" >"$out" 2>&1
  r1=$(cpu_ticks "$RUNNER_PID") p1=$(cpu_ticks "${pp[@]}")
  local rps p50 p99 n err="" rcpu="" pcpu=""
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  n=$(awk '/ requests in / {print $1}' "$out")
  p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
  if [[ -n "$n" && "$n" -gt 0 ]]; then
    rcpu=$(((r1 - r0) * TICK_US / n))
    ((${#pp[@]})) && pcpu=$(((p1 - p0) * TICK_US / n))
  fi
  # Errors a fast-failing proxy would hide in its req/s: non-2xx/3xx answers, socket errors.
  grep -q 'Non-2xx or 3xx responses' "$out" && err+="$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$out") "
  grep -q 'Socket errors' "$out" && err+="$(grep -o 'Socket errors:.*' "$out")"
  [[ -n "$rps" ]] || err+="wrk printed no figures: $(head -3 "$out" | tr '\n' ' ')"
  printf '  %-34s run %s  %10s req/s  p50 %9s  p99 %9s  CPU/req: proxy %6s, runner %6s  %s\n' "${NAME[$x]}" "$label" \
    "${rps:-—}" "$(fmt_us "$p50")" "$(fmt_us "$p99")" "$(fmt_us "$pcpu")" "$(fmt_us "$rcpu")" "${err:-ok}"
  # Keep the run with the higher req/s (and that run's other figures); errors from either run stay.
  if [[ -n "$rps" ]] && { [[ -z "${RPS[$key]:-}" ]] || awk -v a="$rps" -v b="${RPS[$key]}" 'BEGIN {exit !(a > b)}'; }; then
    RPS[$key]=$rps P50[$key]=$p50 P99[$key]=$p99 PCPU[$key]=$pcpu RCPU[$key]=$rcpu
  fi
  [[ -n "$err" ]] && ERR[$key]+="run $label: $err; "
  return 0
}
# run_case SLOT X LABEL WRK-ARGS...: case X (a, b, c1, cN) once, its figures kept under
# SLOT; starts and stops nginx for c1 and cN.
run_case() {
  local slot=$1 x=$2 label=$3
  shift 3
  case $x in
  a) wrk_case "$slot" "$x" "$label" "$URL_a" "$@" ;;
  b) wrk_case "$slot" "$x" "$label" "$URL_b" "$@" ;;
  c1 | cN)
    start_nginx "$([[ $x == c1 ]] && echo 1 || echo auto)"
    check_door nginx "http://127.0.0.1:$NGX_PORT/"
    wrk_case "$slot" "$x" "$label" "http://127.0.0.1:$NGX_PORT/" "$@"
    stop_nginx
    ;;
  esac
}

echo "bench/proxy: $(date -u '+%F %T') UTC, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "  build $B; nginx $("$NGINX" -v 2>&1 | sed 's/.*version: //'); $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
[[ "$PIN" == 1 ]] && echo "  pinned: wrk on CPU 0; runner, node and nginx on CPU 1"
echo "  app $A, runner $ADDR (pid $RUNNER_PID), node :$NPORT"
echo
echo "== 1. throughput: wrk ${WRK_LOAD[*]} -d${DUR}s --latency, in the order ${ORDER[*]}"
for x in "${ORDER[@]}"; do
  n=$((${N[$x]:-0} + 1)) N[$x]=$n
  run_case "$x" "$x" "$n" "${WRK_LOAD[@]}" -d"${DUR}s"
done
LOAD1=$(cut -d' ' -f1 /proc/loadavg)

# One connection, one request at a time: latency without queueing, which is what a proxy
# adds to each request when it is not saturated.
if [[ $MODE != check ]]; then
  echo
  echo "== 1'. one connection: wrk -t1 -c1 -d1s --latency, $C1_ROUNDS rounds in turning order"
  for ((i = 1; i <= C1_ROUNDS; i++)); do
    order=(a b c1)
    ((i % 2)) || order=(c1 b a)
    for x in "${order[@]}"; do run_case "q$x" "$x" "$i" -t1 -c1 -d1s; done
  done
fi

# ---- 2. cold start ----
echo
echo "== 2. cold start of an on_request app (idle_timeout_sec = 1), $COLD_N times"
make_app lazy hello-lazy on_request 1 5 "$HELLO"
Z=$(push_deploy lazy) || die "push/deploy of the on_request app failed"
app_listed() { runners | jq -e ".[] | select(.app==\"$Z\")" >/dev/null 2>&1; }
COLD=() COLD_ERR=0 WARM=()
: >"$WORK/cold.tsv"
# timed PATH -> microseconds from connect() to the last byte of one request through the
# node on a new connection (bench/proxy/timed_get.c: its process start-up is not in it);
# empty, with the answer on stderr, when it is not the greeting. KIND=cold also logs the
# request's wall-clock start to cold.tsv for the breakdown below.
timed() {
  local out line
  out=$("$WORK/timed_get" "$NPORT" "$1" 2>&1)
  line=${out%%$'\n'*}
  if [[ "$line" != "200 "* || "$out" != *"$GREETING"* ]]; then
    echo "  request to $1 answered: $(head -c 300 <<<"$out")" >&2
    return 1
  fi
  read -r _ wall us <<<"$line"
  [[ "${KIND:-}" == cold ]] && echo "$wall $us" >>"$WORK/cold.tsv"
  echo "$us"
}
for _ in $(seq "$COLD_N"); do
  # Wait until the runner idled out and the supervisor no longer lists it.
  for _ in $(seq 400); do app_listed || break; sleep 0.02; done
  app_listed && { echo "  the runner did not idle out within 8 s" >&2; COLD_ERR=$((COLD_ERR + 1)); continue; }
  if us=$(KIND=cold timed "/app/$Z/"); then COLD+=("$us"); else COLD_ERR=$((COLD_ERR + 1)); fi
done
# The same request to the same app while it is warm (the last cold request woke it).
for _ in $(seq 20); do us=$(timed "/app/$Z/") && WARM+=("$us"); done
pctl() { # P VALUES... -> the P-th percentile (nearest rank) of the values
  local p=$1
  shift
  (($#)) || { echo nan; return; }
  printf '%s\n' "$@" | sort -n | awk -v p="$p" '{v[NR] = $1} END {i = int((p * NR + 99) / 100); if (i < 1) i = 1; print v[i]}'
}
# Where a cold request's time goes, from the logs' millisecond timestamps: request sent ->
# the runner is set up (its "runner started" line in the app log, written after it loaded
# the module and bound its port: covers the node's wake call, the supervisor's spawn and
# the runner's start-up) -> the supervisor saw it ready ("runner ready") -> the answer
# reached the client (the wake's reply to the node, the dial, the request itself).
cold_phases() {
  python3 - "$WORK/cold.tsv" "$S/logs/$Z.log" "$WORK/sup.err" "$Z" <<'PY' 2>/dev/null
import re, sys, datetime
def stamps(path, pat):
    out = []
    for line in open(path, errors="replace"):
        if re.search(pat, line):
            m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
            if m:
                t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
                out.append(t.timestamp() * 1e6)
    return sorted(out)
started = stamps(sys.argv[2], r"^\S+ runner started ")
ready = stamps(sys.argv[3], r'msg="runner ready" app=' + sys.argv[4])
ph = [[], [], []]
for line in open(sys.argv[1]):
    t0, us = map(float, line.split())
    # The log stamps are truncated to the millisecond.
    s = [t for t in started if t >= t0 - 1000]
    if not s:
        continue
    r = [t for t in ready if t >= s[0]]
    if not r:
        continue
    ph[0].append(s[0] - t0); ph[1].append(r[0] - s[0]); ph[2].append(t0 + us - r[0])
if ph[0]:
    med = lambda v: sorted(v)[(len(v) - 1) // 2] / 1000
    print("%.1f %.1f %.1f %d" % (med(ph[0]), med(ph[1]), med(ph[2]), len(ph[0])))
PY
}

# ---- the report ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.2f", a / b }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "nan" || b == "nan") print "nan"; else printf "%d", a - b }'; }
echo
echo "== results: of two runs of a case, the one with more req/s, with its other figures;"
echo "   CPU = CPU time in µs per request of the proxy's processes and of the runner (from /proc)"
# (printf pads bytes, and "µ" is two, so the header is written out.)
echo "| case                             |    req/s |   p50 µs |   p99 µs |  proxy CPU | runner CPU | errors"
printf '|%s|%s|%s|%s|%s|%s|%s\n' "$(printf -- '-%.0s' {1..34})" "---------:" "---------:" "---------:" \
  "-----------:" "-----------:" "-------"
row() { # SLOT NAME
  printf '| %-32s | %8.0f | %8s | %8s | %10s | %10s | %s\n' "$2" "${RPS[$1]:-0}" "${P50[$1]:-—}" "${P99[$1]:-—}" \
    "${PCPU[$1]:-—}" "${RCPU[$1]:-—}" "${ERR[$1]:-none}"
}
for x in a b c1 cN; do row $x "${NAME[$x]}"; done
if [[ $MODE != check ]]; then
  echo "one connection (-t1 -c1; of the rounds, the one with more req/s):"
  for x in a b c1; do row "q$x" "${NAME[$x]}"; done
fi
echo
echo "derived:"
printf '  node  added latency p50 at %s: %s (target ≤ 100 µs); p99: %s\n' "${WRK_LOAD[*]}" \
  "$(fmt_us "$(diff_us "${P50[b]:-}" "${P50[a]:-}")")" "$(fmt_us "$(diff_us "${P99[b]:-}" "${P99[a]:-}")")"
printf '  nginx added latency p50 at %s: %s; p99: %s\n' "${WRK_LOAD[*]}" \
  "$(fmt_us "$(diff_us "${P50[c1]:-}" "${P50[a]:-}")")" "$(fmt_us "$(diff_us "${P99[c1]:-}" "${P99[a]:-}")")"
[[ $MODE == check ]] || printf '  node  added latency p50 on one connection: %s;  nginx: %s\n' \
  "$(fmt_us "$(diff_us "${P50[qb]:-}" "${P50[qa]:-}")")" "$(fmt_us "$(diff_us "${P50[qc1]:-}" "${P50[qa]:-}")")"
printf '  req/s node / nginx(1 worker): %s (target ≥ 1.0);  node / nginx(auto): %s\n' \
  "$(ratio "${RPS[b]:-}" "${RPS[c1]:-}")" "$(ratio "${RPS[b]:-}" "${RPS[cN]:-}")"
printf '  req/s through a proxy / direct: node %s, nginx(1 worker) %s, nginx(auto) %s\n' \
  "$(ratio "${RPS[b]:-}" "${RPS[a]:-}")" "$(ratio "${RPS[c1]:-}" "${RPS[a]:-}")" "$(ratio "${RPS[cN]:-}" "${RPS[a]:-}")"
printf '  proxy CPU per request, node / nginx(1 worker): %s (lower is better; less sensitive to other load than req/s)\n' \
  "$(ratio "${PCPU[b]:-}" "${PCPU[c1]:-}")"
echo
echo "cold start through the node (bench/proxy/timed_get: new connection, connect() to last byte):"
printf '  cold: p50 %s, max %s over %d requests (target p50 ≤ 10 ms)%s\n' \
  "$(fmt_us "$(pctl 50 "${COLD[@]}")")" "$(fmt_us "$(pctl 100 "${COLD[@]}")")" "${#COLD[@]}" \
  "$( ((COLD_ERR)) && echo ", $COLD_ERR FAILED")"
printf '  warm, same request: p50 %s, max %s over %d requests\n' \
  "$(fmt_us "$(pctl 50 "${WARM[@]}")")" "$(fmt_us "$(pctl 100 "${WARM[@]}")")" "${#WARM[@]}"
R=$(cold_phases)
if [[ -n "$R" ]]; then
  read -r p1 p2 p3 pn <<<"$R"
  echo "  cold, median of $pn (log stamps in ms): request to runner set up $p1 ms (wake, spawn, runner start-up);" \
    "to supervisor sees it ready $p2 ms; to answer $p3 ms (wake reply, dial, request)"
else
  echo "  cold breakdown: not available (no matching 'runner started' / 'runner ready' log lines)"
fi
echo
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after the run (${LOAD1} after the throughput cases);" \
  "wrk, the runner and the proxy share these $(nproc) CPUs"
echo "took $((($(date +%s%N) - START) / 1000000000)) s"
# Wrong answers make the run fail; slow ones never do.
FAILED=$COLD_ERR
for k in "${!ERR[@]}"; do FAILED=$((FAILED + 1)); echo "bench/proxy: errors in case $k: ${ERR[$k]}" >&2; done
((FAILED == 0)) || exit 1
