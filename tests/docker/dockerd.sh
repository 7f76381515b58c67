#!/usr/bin/env bash
# dockerd.sh — a private Docker daemon for tests and benchmarks.
#
#   dockerd.sh start DIR   starts dockerd with everything under DIR (data root, socket,
#                          pid file, log) and an exec root under /tmp/tbdk.XXXX; prints
#                          the socket path once the daemon answers GET /_ping (30 s at
#                          most). Exit 77 when this machine cannot run a daemon at all
#                          (not root, no dockerd, no bridge support), 1 when it tried and
#                          failed (the log tail is printed).
#   dockerd.sh stop DIR    SIGTERM to dockerd, SIGKILL after 10 s, then kills whatever
#                          is left of its containerd and shims, unmounts, removes the
#                          bridge and deletes DIR and the exec root. Safe to call twice
#                          and after a failed start.
#
# Why each flag (docs/internals/DOCKER.md): --data-root/--exec-root/-H/--pidfile keep the
# daemon off the system's /var/lib/docker and /var/run/docker.sock; the exec root must be
# short because containerd puts unix sockets below it (108-byte sun_path). --bridge names
# a bridge this script creates with a subnet of its own, so parallel runs don't collide
# and containers get an address the host reaches directly; --iptables=false leaves the
# host firewall alone; vfs is the storage driver that works on any file system
# (including overlayfs, where overlay2 cannot nest).
set -u

die() { echo "dockerd.sh: $*" >&2; exit 1; }
skip() { echo "dockerd.sh: SKIP: $*" >&2; exit 77; }

[[ $# -eq 2 ]] || { echo "usage: dockerd.sh start|stop DIR" >&2; exit 2; }
cmd=$1
D=$2

start() {
  [[ $(id -u) -eq 0 ]] || skip "a private dockerd needs root"
  command -v dockerd >/dev/null || skip "dockerd is not installed (scripts/setup installs docker.io)"
  command -v ip >/dev/null || skip "ip (iproute2) is not installed"
  mkdir -p "$D" || die "cannot create $D"
  D=$(realpath "$D")
  local ex
  ex=$(mktemp -d /tmp/tbdk.XXXX) || die "cannot create an exec root under /tmp"
  echo "$ex" >"$D/exec-root"

  # A bridge name (at most 15 bytes) and a /24 of our own: the first free pair from a
  # start derived from our pid, so two runs at once pick different ones.
  local n=$(($$ % 250)) i br="" net=""
  for ((i = 0; i < 250; i++)); do
    local k=$(((n + i) % 250 + 1))
    local cand=tbdk$k
    [[ -e /sys/class/net/$cand ]] && continue
    ip -4 addr show 2>/dev/null | grep -q "inet 10\.213\.$k\." && continue
    if ip link add "$cand" type bridge 2>/dev/null; then
      br=$cand net=$k
      break
    fi
    [[ $i -eq 0 ]] && ! ip link add tbdkprobe$$ type dummy 2>/dev/null && skip "cannot create network links (no bridge support or no CAP_NET_ADMIN)"
    ip link del tbdkprobe$$ 2>/dev/null
  done
  [[ -n "$br" ]] || skip "no free bridge name/subnet tbdk1..250 / 10.213.1-250.0/24"
  echo "$br" >"$D/bridge"
  if ! ip addr add "10.213.$net.1/24" dev "$br" || ! ip link set "$br" up; then
    ip link del "$br" 2>/dev/null
    die "cannot configure bridge $br"
  fi

  dockerd --data-root "$D/root" --exec-root "$ex" -H "unix://$D/docker.sock" \
    --pidfile "$D/docker.pid" --iptables=false --ip6tables=false --ip-forward=false \
    --bridge="$br" --storage-driver=vfs >"$D/log" 2>&1 &
  echo $! >"$D/dockerd.pid"
  local pid=$!
  for ((i = 0; i < 300; i++)); do
    if [[ -S "$D/docker.sock" ]] &&
      [[ $(curl -s --max-time 2 --unix-socket "$D/docker.sock" http://d/_ping 2>/dev/null) == OK ]]; then
      probe_containers
      echo "$D/docker.sock"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "dockerd.sh: dockerd did not answer on $D/docker.sock; the end of its log:" >&2
  tail -n 30 "$D/log" >&2
  stop
  exit 1
}

# Can this machine run a container at all? A daemon can start where runc cannot (no
# cgroup or namespace rights in a sandbox). One static binary that exits 0, imported as
# an image and run once; when that fails the machine cannot run containers, which is a
# skip (77) with the daemon's words, not a failure of the code under test.
probe_containers() {
  local api="curl -s --max-time 60 --unix-socket $D/docker.sock" w="$D/probe" id code
  mkdir -p "$w/rootfs"
  printf 'int main(void){return 0;}\n' >"$w/ok.c"
  if ! cc -static -O2 -o "$w/rootfs/ok" "$w/ok.c" 2>"$w/cc.err"; then
    stop
    skip "cannot build a static probe binary (cc -static): $(head -c 200 "$w/cc.err")"
  fi
  tar -C "$w/rootfs" -cf "$w/rootfs.tar" ok
  $api -X POST -H 'Content-Type: application/x-tar' --data-binary @"$w/rootfs.tar" \
    "http://d/images/create?fromSrc=-&repo=tabbify-probe&tag=1" >/dev/null
  id=$($api -X POST -H 'Content-Type: application/json' -d '{"Image":"tabbify-probe:1","Cmd":["/ok"],"HostConfig":{"NetworkMode":"none"}}' \
    http://d/containers/create | sed -n 's/.*"Id":"\([0-9a-f]*\)".*/\1/p')
  local why=""
  if [[ -z "$id" ]]; then
    why="the daemon cannot create a container"
  else
    why=$($api -X POST "http://d/containers/$id/start")
    code=$($api -X POST "http://d/containers/$id/wait" | sed -n 's/.*"StatusCode":\([0-9]*\).*/\1/p')
    [[ -z "$why" && "$code" == 0 ]] && why=""
    [[ -z "$why" && "$code" != 0 ]] && why="the probe container exited with status ${code:-unknown}"
    $api -X DELETE "http://d/containers/$id?force=1" >/dev/null
  fi
  $api -X DELETE "http://d/images/tabbify-probe:1" >/dev/null
  rm -rf "$w"
  if [[ -n "$why" ]]; then
    stop
    skip "this machine cannot run containers: $(head -c 300 <<<"$why")"
  fi
}

# Processes whose command line names one of our private directories: dockerd itself,
# its containerd, the shims (all started with paths under DIR or the exec root).
ours() { # the daemon's own processes (dockerd, containerd, shims, runc) that name DIR
  local p cl comm
  for p in /proc/[0-9]*; do
    comm=$(cat "$p/comm" 2>/dev/null) || continue
    case "$comm" in dockerd | containerd* | runc | docker-proxy) ;; *) continue ;; esac
    cl=$( (tr '\0' ' ' <"$p/cmdline") 2>/dev/null) || continue
    for pat in "$@"; do
      [[ -n "$pat" && "$cl" == *"$pat/"* ]] && { echo "${p#/proc/}"; break; }
    done
  done
}

stop() {
  [[ -d "$D" ]] || return 0
  D=$(realpath "$D")
  local ex="" br="" pid="" i
  [[ -f "$D/exec-root" ]] && ex=$(cat "$D/exec-root")
  [[ -f "$D/bridge" ]] && br=$(cat "$D/bridge")
  [[ -f "$D/dockerd.pid" ]] && pid=$(cat "$D/dockerd.pid")
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  # The containers' own processes: a daemon that died (or was killed) before stopping
  # them leaves them running, re-parented to init. They are found through the cgroups
  # named after the container ids (cgroupfs: .../docker/<id>, systemd: docker-<id>.scope).
  local ids=() id f cgs=()
  [[ -d "$D/root/containers" ]] && mapfile -t ids < <(ls "$D/root/containers")
  for id in "${ids[@]}"; do
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || continue
    while IFS= read -r f; do cgs+=("$(dirname "$f")"); done < <(find /sys/fs/cgroup -maxdepth 5 -path "*$id*" -name cgroup.procs 2>/dev/null)
  done
  for f in "${cgs[@]}"; do xargs -r kill -KILL <"$f/cgroup.procs" 2>/dev/null; done
  local left=()
  mapfile -t left < <(ours "$D" "$ex")
  ((${#left[@]})) && kill -KILL "${left[@]}" 2>/dev/null
  for ((i = 0; i < 50; i++)); do [[ -z "$(ours "$D" "$ex")" ]] && break; sleep 0.1; done
  # Mounts the daemon left behind (container shm, netns files, vfs layers): deepest first.
  local m
  while IFS= read -r m; do
    umount -l "$m" 2>/dev/null
  done < <(awk '{print $2}' /proc/mounts | grep -E "^($D|${ex:-/nonexistent})/" | sort -r)
  for f in "${cgs[@]}"; do rmdir "$f" 2>/dev/null; done # empty by now; runc may have removed them
  [[ -n "$br" ]] && ip link del "$br" 2>/dev/null
  [[ -n "$ex" && "$ex" == /tmp/tbdk.* ]] && rm -rf "$ex"
  rm -rf "$D"
  return 0
}

case $cmd in
start) start ;;
stop) stop ;;
*) echo "usage: dockerd.sh start|stop DIR" >&2; exit 2 ;;
esac
