#!/usr/bin/env bash
# bench/docker/run.sh — cold start of a docker app through the platform against `docker
# run` of the same image on the same daemon, in one run (issue 8): from the command (or
# the request) to the first 200 from the container's HTTP server. docs/internals/BENCH.md
# ("Docker cold start") explains the cases and the figures.
#
# usage: bench/docker/run.sh [BUILD_DIR] [--quick | --check-only]
#
#   BUILD_DIR     a build tree with src/{node,supervisord,runner,tabbify}/ and
#                 tests/docker/image/httpd.tar (default: build/ at the top of the tree)
#   --quick       3 rounds instead of 10
#   --check-only  1 round of every case, figures not worth reading (bench_docker_smoke)
#
# Environment: BENCH_ROUNDS=N overrides the number of rounds; BENCH_KEEP=1 keeps the
# temporary directory (logs, raw figures) on exit.
#
# Cases, each timed once per round, in the same round so that the machine's load of the
# moment falls on all of them alike (the image is loaded beforehand in every case; the
# one-time loads are reported apart):
#   a   `docker run -d --rm --memory M` of the image, `docker inspect` for its IP, curl
#       every 5 ms until IP:8080 answers 200
#   b1  an always_on app: `tabbify stop` (untimed), then `tabbify deploy` (a new
#       deployment of the same version) and curl every 5 ms until /app/<id>/ answers 200
#   b2  an on_request app with idle_timeout_sec = 1, once it idled out (its runner gone
#       from the supervisor's /v1/runners): one request through the node, which wakes it
#
# Starts a private dockerd (tests/docker/dockerd.sh), the real node, supervisor and
# runners (tests/supervisor/harness.sh) in a mktemp directory and stops everything it
# started on exit. Exit 2, saying why, when no Docker daemon can run here (not root, no
# docker.io); exit 1 on any wrong answer (a non-200, a failed deploy, no start within
# 30 s); never on a figure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
die() { # a failure: exit 1
  echo "bench/docker: $*" >&2
  exit 1
}
unavailable() { # cannot run here: exit 2, which bench_docker_smoke reports as skipped
  echo "bench/docker: $*" >&2
  exit 2
}
usage() {
  sed -n '7,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

B='' MODE=full
for a in "$@"; do
  case $a in
  --quick) MODE=quick ;;
  --check-only) MODE=check ;;
  -h | --help | -*) usage ;;
  *) [[ -z "$B" ]] || usage; B=$a ;;
  esac
done
B=${B:-$ROOT/build}
[[ -d "$B" ]] || die "no build directory $B (build first: cmake -S . -B build -G Ninja && cmake --build build)"
B=$(cd "$B" && pwd)
IMAGE_TAR=$B/tests/docker/image/httpd.tar IMAGE=tabbify-test/httpd:1 PORT=8080 MEM_MB=32
GREETING="hello from a container"
for f in "$B/src/node/tabbify-node" "$B/src/supervisord/tabbify-supervisord" "$B/src/runner/tabbify-runner" \
  "$B/src/tabbify/tabbify" "$IMAGE_TAR"; do
  [[ -e "$f" ]] || die "$f is missing: build it first (cmake --build $B)"
done
case $MODE in
full) ROUNDS=${BENCH_ROUNDS:-10} ;;
quick) ROUNDS=${BENCH_ROUNDS:-3} ;;
check) ROUNDS=1 ;;
esac
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number, not [$ROUNDS]"

# Debian's docker.io CLI, not whatever else is on PATH (/usr/local/bin/docker is no
# package's and may speak another API version).
DOCKER=/usr/bin/docker
[[ $(id -u) -eq 0 ]] || unavailable "a private dockerd needs root; run this as root (or skip the docker benchmark)"
[[ -x $DOCKER ]] || unavailable "$DOCKER (Debian's docker.io) is not installed: run scripts/setup, which installs docker.io"
command -v dockerd >/dev/null || unavailable "dockerd (Debian's docker.io) is not installed: run scripts/setup, which installs docker.io"
for t in curl jq python3; do command -v "$t" >/dev/null || unavailable "$t is not installed: run scripts/setup"; done

START=$EPOCHREALTIME
# The harness makes WORK, starts the node and the supervisor, pushes and deploys with
# the CLI, and on exit ends every process it started by its pid (runners included).
BIN=$B/src
. "$ROOT/tests/supervisor/harness.sh"
DK=$WORK/dk SOCK=''
stop_docker() { # the daemon's stop kills what is left of its containers (ours and the runners')
  [[ -d "$DK" ]] && "$ROOT/tests/docker/dockerd.sh" stop "$DK" >/dev/null 2>&1
  [[ "${BENCH_KEEP:-0}" == 1 ]] && KEEP_WORK=1
  exec 2>/dev/null # no "Killed" notices for the jobs the harness ends next
}
CLEANUP_HOOK=stop_docker
trap 'exit 130' INT TERM

now_us() { echo $((10#${EPOCHREALTIME//[!0-9]/})); } # microseconds, without forking (any decimal mark)
ms_since() { echo $((($(now_us) - $1) / 1000)); }

# ---- the daemon ----
SOCK=$("$ROOT/tests/docker/dockerd.sh" start "$DK" 2>"$WORK/dockerd.err")
rc=$?
if [[ $rc -ne 0 ]]; then
  why=$(grep -v '^$' "$WORK/dockerd.err" | tail -n 12)
  [[ $rc -eq 77 ]] && unavailable "no Docker daemon can run on this machine: ${why#dockerd.sh: SKIP: }"
  unavailable "the private dockerd did not start, so nothing can be measured; its output:"$'\n'"$why"
fi
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$WORK/docker-config
mkdir -p "$DOCKER_CONFIG"
dk() { curl -s --unix-socket "$SOCK" "http://docker$1"; }
containers_of() { # APP -> ids of its containers, running or not
  dk "/containers/json?all=1&filters=$(jq -rn --arg l "io.tabbify.app=$1" '{label:[$l]}|@uri')" | jq -r '.[].Id'
}
# ID -> "CREATED STARTED" of a container, as microseconds since the epoch
container_times() {
  dk "/containers/$1/json" | jq -r '[.Created, .State.StartedAt] | @tsv' | python3 -c '
import sys, datetime
def us(s):
    s = s.rstrip("Z"); base, _, frac = s.partition(".")
    t = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1000000 + int((frac + "000000")[:6])
print(*[us(x) for x in sys.stdin.read().split()])'
}

echo "bench/docker: $(date -u '+%F %T') UTC, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "  build $B; $($DOCKER version --format 'docker CLI {{.Client.Version}}, dockerd {{.Server.Version}} (API {{.Server.APIVersion}})' 2>&1 | head -1)"
echo "  image $IMAGE ($(($(stat -c %s "$IMAGE_TAR") / 1024)) KiB), memory limit $MEM_MB MiB in every case; $ROUNDS round(s)"

# ---- the platform ----
# shellcheck disable=SC2119  # the harness's start functions take extra flags, none here
start_node
SUP_ARGS=(--docker-socket "$SOCK")
# shellcheck disable=SC2119
start_sup
token
tagged=''
for _ in $(seq 100); do
  curl -s -H "Authorization: Bearer $T" "$U/v1/supervisors" | jq -e '.[0].tags|index("docker")' >/dev/null && { tagged=1; break; }
  sleep 0.1
done
[[ -n "$tagged" ]] || die "the supervisor does not offer docker: $(curl -s "http://127.0.0.1:$SPORT/health")"

docker_app() { # DIR NAME LIFECYCLE -> an app directory for the image
  mkdir -p "$WORK/$1"
  cp "$IMAGE_TAR" "$WORK/$1/image.tar"
  cat >"$WORK/$1/tabbify.toml" <<TOML
[app]
name = "$2"
[build]
kind = "docker"
archive = "image.tar"
[runtime]
type = "docker"
lifecycle = "$3"
idle_timeout_sec = 1
port = $PORT
memory_mb = $MEM_MB
request_timeout_sec = 30
TOML
}
# get URL -> "STATUS" of one GET; the body is left in $WORK/body
get() { curl -s -o "$WORK/body" -w '%{http_code}' --max-time 30 "$1"; }
# poll URL -> polls every 5 ms until a 200; fails after 30 s or on a 200 that is not the greeting
poll() {
  local st deadline=$(($(now_us) + 30000000))
  while :; do
    st=$(get "$1")
    if [[ "$st" == 200 ]]; then
      [[ "$(cat "$WORK/body")" == "$GREETING" ]] && return 0
      echo "  $1 answered 200 with [$(head -c 200 "$WORK/body")], not the greeting" >&2
      return 1
    fi
    ((st != 0)) && NON200+=" $st"
    (($(now_us) > deadline)) && { echo "  $1 did not answer 200 within 30 s (last status $st)" >&2; return 1; }
    sleep 0.005
  done
}
app_listed() { runners | jq -e ".[] | select(.app==\"$1\")" >/dev/null 2>&1; }
wait_gone() { # APP -> its runner and its containers are gone (30 s at most)
  for _ in $(seq 1500); do
    app_listed "$1" || [[ -n "$(containers_of "$1")" ]] || return 0
    sleep 0.02
  done
  return 1
}
# Where an app's latest start spent its time, from the supervisor's files and logs and the
# daemon: the runner's spec.json written (the supervisor decided to spawn), the container's
# Created and StartedAt (daemon, ns), the app log's "started container" and "started …"
# lines (the runner: create+start returned; ready), the supervisor's "runner ready".
# APP -> "SPEC CREATED STARTED LOG_CONTAINER LOG_READY SUP_READY" in µs since the epoch
platform_stamps() {
  local app=$1 rid c spec created started
  rid=$(runners | jq -r ".[] | select(.app==\"$app\" and .state==\"running\") | .runner" | head -1)
  spec=$(stat -c %.6Y "$S/sup/runners/$rid/spec.json" 2>/dev/null | tr -d .)
  c=$(containers_of "$app" | head -1)
  read -r created started <<<"$( [[ -n "$c" ]] && container_times "$c")"
  python3 - "$S/logs/$app.log" "$WORK/sup.err" "$app" "${spec:-0}" "${created:-0}" "${started:-0}" <<'PY'
import re, sys, datetime
def stamp(line):
    m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?)Z", line)
    if not m: return 0
    t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1e6)
def last(path, pat):
    v = 0
    for line in open(path, errors="replace"):
        if re.search(pat, line): v = stamp(line)
    return v
log, sup, app, spec, created, started = sys.argv[1:7]
print(spec, created, started, last(log, r" runner started container "), last(log, r" runner started \S+ \(docker\)"),
      last(sup, r'msg="runner ready" app=' + app))
PY
}

# ---- one-time: the image loads ----
echo
echo "== one-time: loading the image (not in the rounds)"
t0=$(now_us)
$DOCKER load -q -i "$IMAGE_TAR" >"$WORK/load.out" 2>&1 || die "docker load failed: $(cat "$WORK/load.out")"
LOAD_A=$(ms_since "$t0")
$DOCKER image inspect "$IMAGE" >/dev/null 2>&1 || die "docker load did not give $IMAGE: $(cat "$WORK/load.out")"
docker_app warm dk-warm always_on
t0=$(now_us)
A=$(push_deploy warm 2>>"$WORK/push.err") || die "push/deploy of the always_on app failed: $(cat "$WORK/push.err")"
NON200=''
poll "$U/app/$A/" || die "the always_on app's first start failed; its log: $(tail -5 "$S/logs/$A.log")"
LOAD_B1=$(ms_since "$t0")
docker_app lazy dk-lazy on_request
Z=$(push_deploy lazy 2>>"$WORK/push.err") || die "push/deploy of the on_request app failed: $(cat "$WORK/push.err")"
t0=$(now_us)
[[ "$(get "$U/app/$Z/")" == 200 && "$(cat "$WORK/body")" == "$GREETING" ]] ||
  die "the on_request app's first wake failed: $(head -c 300 "$WORK/body"); its log: $(tail -5 "$S/logs/$Z.log")"
LOAD_B2=$(ms_since "$t0")
echo "  docker load -i httpd.tar: $LOAD_A ms"
echo "  platform, always_on app: push + deploy + load + first 200: $LOAD_B1 ms"
echo "  platform, on_request app: first request after deploy (wake + load + start): $LOAD_B2 ms"

# ---- the rounds ----
# Raw figures, one line per case and round, all times µs since the epoch (0: not known):
#   a  ROUND T0 RUN_RETURNED IP_KNOWN FIRST_200 CREATED STARTED
#   b1 ROUND T0 DEPLOY_RETURNED 0 FIRST_200 SPEC CREATED STARTED LOG_CONTAINER LOG_READY SUP_READY
#   b2 ROUND T0 0 0 ANSWER SPEC CREATED STARTED LOG_CONTAINER LOG_READY SUP_READY
RAW=$WORK/raw.tsv
: >"$RAW"
FAILS=0 NON200=''
echo
echo "== $ROUNDS round(s): a (docker run), b1 (tabbify deploy), b2 (wake of a scaled-to-zero app)"
for ((i = 1; i <= ROUNDS; i++)); do
  # Nothing of ours runs while a case is timed: the on_request app idled out and its
  # container is gone (it was woken in the previous round).
  wait_gone "$Z" || { echo "  round $i: the on_request app did not idle out within 30 s" >&2; FAILS=$((FAILS + 1)); }

  # a: docker run
  t0=$(now_us)
  cid=$($DOCKER run -d --rm --memory "${MEM_MB}m" --memory-swap "${MEM_MB}m" "$IMAGE" 2>"$WORK/run.err")
  rc=$? t1=$(now_us)
  if [[ $rc -ne 0 || -z "$cid" ]]; then
    echo "  round $i a: docker run failed: $(cat "$WORK/run.err")" >&2; FAILS=$((FAILS + 1))
  else
    ip=$($DOCKER inspect -f '{{.NetworkSettings.IPAddress}}' "$cid")
    t2=$(now_us)
    if [[ -n "$ip" ]] && poll "http://$ip:$PORT/"; then
      t3=$(now_us)
      echo "a $i $t0 $t1 $t2 $t3 $(container_times "$cid")" >>"$RAW"
    else
      echo "  round $i a: the container (IP [$ip]) did not answer" >&2; FAILS=$((FAILS + 1))
    fi
    $DOCKER rm -f "$cid" >/dev/null 2>&1
  fi

  # b1: tabbify deploy of the always_on app (stopped first, untimed)
  (cd "$WORK/warm" && "$CLI" stop >/dev/null 2>"$WORK/stop.err") || { echo "  round $i b1: tabbify stop failed: $(cat "$WORK/stop.err")" >&2; FAILS=$((FAILS + 1)); }
  wait_gone "$A" || { echo "  round $i b1: the stopped app's runner or container is still there after 30 s" >&2; FAILS=$((FAILS + 1)); }
  t0=$(now_us)
  if (cd "$WORK/warm" && "$CLI" deploy >/dev/null 2>"$WORK/deploy.err"); then
    t1=$(now_us)
    if poll "$U/app/$A/"; then
      t3=$(now_us)
      echo "b1 $i $t0 $t1 0 $t3 $(platform_stamps "$A")" >>"$RAW"
    else
      echo "  round $i b1: the deployed app did not answer; its log: $(tail -3 "$S/logs/$A.log")" >&2; FAILS=$((FAILS + 1))
    fi
  else
    echo "  round $i b1: tabbify deploy failed: $(cat "$WORK/deploy.err")" >&2; FAILS=$((FAILS + 1))
  fi

  # b2: one request wakes the scaled-to-zero app
  wait_gone "$Z" || { echo "  round $i b2: the on_request app did not idle out within 30 s" >&2; FAILS=$((FAILS + 1)); }
  t0=$(now_us)
  st=$(get "$U/app/$Z/")
  t3=$(now_us)
  if [[ "$st" == 200 && "$(cat "$WORK/body")" == "$GREETING" ]]; then
    echo "b2 $i $t0 0 0 $t3 $(platform_stamps "$Z")" >>"$RAW"
  else
    echo "  round $i b2: the wake answered $st: $(head -c 300 "$WORK/body")" >&2; FAILS=$((FAILS + 1))
  fi
  printf '  round %d: a %s ms, b1 %s ms, b2 %s ms (%s s so far)\n' "$i" \
    "$(awk -v i="$i" '$1 == "a" && $2 == i {print int(($6 - $3) / 1000)}' "$RAW")" \
    "$(awk -v i="$i" '$1 == "b1" && $2 == i {print int(($6 - $3) / 1000)}' "$RAW")" \
    "$(awk -v i="$i" '$1 == "b2" && $2 == i {print int(($6 - $3) / 1000)}' "$RAW")" \
    "$((($(now_us) - ${START//[!0-9]/}) / 1000000))"
done
[[ -n "$NON200" ]] && echo "  (statuses other than 200 seen while polling, before the first 200:$NON200)"

# ---- the report ----
echo
python3 - "$RAW" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def ms(a, b):
    a, b = int(a), int(b)
    return (b - a) / 1000 if a and b else None
def stats(v):
    v = sorted(x for x in v if x is not None)
    if not v: return None
    return v[(len(v) - 1) // 2], v[0], v[-1], len(v)
def f(x): return "—" if x is None else "%.1f" % x
case = {"a": "a   docker run -d --rm → 200", "b1": "b1  tabbify deploy → 200 via node",
        "b2": "b2  wake: request → 200 via node"}
tot = {}
print("| case | p50 ms | min ms | max ms | n |")
print("|---|---:|---:|---:|---:|")
for k in ("a", "b1", "b2"):
    s = stats(ms(r[2], r[5]) for r in rows if r[0] == k)
    tot[k] = s
    if s: print("| %s | %s | %s | %s | %d |" % (case[k], f(s[0]), f(s[1]), f(s[2]), s[3]))
    else: print("| %s | — | — | — | 0 |" % case[k])
print()
for k in ("b1", "b2"):
    if tot.get(k) and tot.get("a"):
        r = tot[k][0] / tot["a"][0]
        print("ratio %s / a (p50): %.2f  (target ≤ 1.0: %s)" % (k, r, "met" if r <= 1.0 else "missed"))
# The daemon's create → start (runc, the network namespace) is most of every case and
# swings with the load; what is left is what each path adds around the same daemon work.
def outside(r, c0, c1):
    t, d = ms(r[2], r[5]), ms(r[c0], r[c1])
    return t - d if t is not None and d is not None else None
out = {k: stats(outside(r, *cols) for r in rows if r[0] == k) for k, cols in (("a", (6, 7)), ("b1", (7, 8)), ("b2", (7, 8)))}
print("outside the daemon's create → start (p50 per round, ms): a %s, b1 %s, b2 %s" %
      tuple(f(out[k][0] if out[k] else None) for k in ("a", "b1", "b2")))
print()
print("where the time goes (p50 of each phase, ms; log stamps are ms, the daemon's µs):")
def phases(k, names):
    out = []
    for name, a, b in names:
        s = stats(ms(r[a], r[b]) for r in rows if r[0] == k)
        out.append("%s %s" % (name, f(s[0]) if s else "—"))
    return out
print("  a : " + "; ".join(phases("a", [
    ("CLI → container created", 2, 6), ("created → started (daemon)", 6, 7), ("started → docker run returned", 7, 3),
    ("→ IP (docker inspect)", 3, 4), ("→ first 200 (curl polls)", 4, 5)])))
for k, first in (("b1", "deploy → spec written (CLI, node, supervisor)"), ("b2", "request → spec written (node wake, supervisor)")):
    print("  %s: " % k + "; ".join(phases(k, [
        (first, 2, 6), ("→ container created (runner start-up, docker open, inspect, list, create)", 6, 7),
        ("created → started (daemon)", 7, 8), ("started → 'started container' log", 8, 9),
        ("→ runner ready line (wait_ready, API handles)", 9, 10), ("→ supervisor 'runner ready'", 10, 11),
        ("→ 200 at the client", 11, 5)])))
PY
echo
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after the run; took $((($(now_us) - ${START//[!0-9]/}) / 1000000)) s"
((FAILS == 0)) || die "$FAILS wrong answer(s) or failed start(s); see above"
