#!/usr/bin/env bash
# End-to-end test of the Docker client (lib/docker) against a real, private dockerd.
# Usage: docker_e2e.sh DOCKER_CLIENT IMAGE_DIR
#
# Starts the daemon with dockerd.sh (its own data root, exec root, socket and bridge),
# runs docker_client over the image tarballs CMake made in IMAGE_DIR, then takes the
# daemon away in two steps and checks the sentence a user would get: first SIGKILL
# (the socket file stays: connection refused), then a full stop (no socket: no such
# file). The daemon and everything it started are stopped whatever happens (trap).
# Exit 77 (CTest SKIP) only when this machine cannot run a dockerd at all.
set -u
CLIENT=$(realpath "$1") IMG=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d /tmp/tbdocker.XXXXXX)
# shellcheck disable=SC2317  # called by the trap
cleanup() { "$HERE/dockerd.sh" stop "$D"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$(date +%s%N)
SOCK=$("$HERE/dockerd.sh" start "$D")
rc=$?
if [[ $rc -eq 77 ]]; then
  echo "SKIP: this machine cannot run a private dockerd (see above)"
  exit 77
fi
[[ $rc -eq 0 ]] || { echo "FAIL: the private dockerd did not start"; exit 1; }
echo "timing: daemon start (to the first /_ping OK) $((($(date +%s%N) - t0) / 1000000)) ms"

failed=0
# The client gets less time than CTest's 180 s so that on a hang this script, not CTest's
# SIGKILL, ends it, and the trap still stops the daemon.
timeout -k 5 120 "$CLIENT" "$SOCK" "$IMG/httpd.tar" "$IMG/httpd-oci.tar" "$IMG/httpd-both.tar" "$IMG/rootfs.tar" || failed=1

# The daemon goes away: killed (its socket file stays behind), then stopped and removed.
# A handle opened before (the supervisor's kind) must notice too.
coproc WATCH { timeout -k 5 60 "$CLIENT" --watch "$SOCK"; }
# shellcheck disable=SC2153  # WATCH_PID is set by coproc
watch_pid=$WATCH_PID
while read -r line <&"${WATCH[0]}"; do
  echo "$line"
  [[ "$line" == ready ]] && break
done
[[ "${line:-}" == ready ]] || { echo "FAIL: the watching client did not get ready"; failed=1; }
kill -KILL "$(cat "$D/dockerd.pid")" 2>/dev/null
for _ in $(seq 50); do kill -0 "$(cat "$D/dockerd.pid")" 2>/dev/null || break; sleep 0.1; done
echo "-- dockerd killed; its socket file: $(ls -l "$SOCK" 2>&1)"
timeout -k 5 30 "$CLIENT" --down "$SOCK" || failed=1
echo go >&"${WATCH[1]}"
cat <&"${WATCH[0]}"
wait "$watch_pid" || failed=1
"$HERE/dockerd.sh" stop "$D"
echo "-- dockerd stopped and its directory removed"
timeout -k 5 30 "$CLIENT" --down "$SOCK" || failed=1

[[ -e "$D" ]] && { echo "FAIL: dockerd.sh stop left $D behind"; failed=1; }
exit $failed
