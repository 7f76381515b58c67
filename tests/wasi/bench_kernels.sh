#!/usr/bin/env bash
# bench_kernels.sh TABBIFY BENCH_DIR WORKDIR CLANG SYSROOT [--time | --insn]
#
# The engine's benchmark kernels (bench/kernels) built as ordinary WASI commands: each
# kernel object linked with bench/native_main.c and wasi-libc, so its checksum leaves
# through printf and fd_write like any program's output. As a test (the default, -DQUICK)
# every command must print exactly the checksum the native build prints.
#
# --time (full size) also prints, per kernel, the CPU time (user + system, best of 3:
# the shared machines make wall time swing) natively, on our engine as a bare export
# (`--invoke run`, what bench/run measures) and as a WASI command, with the ratios to
# native. --insn (quick size) counts instructions with callgrind instead, which does not
# swing at all but takes minutes. Either shows what the WASI layer costs: nothing.
set -uo pipefail
tabbify=$1
bench=$2
mkdir -p "$3"
work=$(cd "$3" && pwd)
cc=$4
sysroot=$(cd "$5" && pwd)
timing=0
[[ "${6:-}" == --time ]] && timing=1
[[ "${6:-}" == --insn ]] && timing=2
BENCH_SRC=$bench
# shellcheck source=../../bench/lib.sh
source "$bench/lib.sh"
mode=quick
def=(-DQUICK)
((timing == 1)) && mode=full && def=()
out=$work/$mode
mkdir -p "$out"
passed=0
failed=0

cost() { # cost CMD...: CPU microseconds (best of 3), or instructions under --insn
  if ((timing == 2)); then
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
      sed -nE 's/.*Collected : ([0-9]+).*/\1/p'
    return
  fi
  local best=0 t
  for ((i = 0; i < 3; i++)); do
    t=$( { TIMEFORMAT='%3U %3S'; time "$@" >/dev/null 2>&1; } 2>&1 | awk '{ printf "%d", ($1 + $2) * 1e6 }')
    ((best == 0 || t < best)) && best=$t
  done
  echo "$best"
}
unit=ms
((timing == 2)) && unit=Minsn
((timing)) && printf '%-11s %10s %10s %8s %10s %8s   (%s)\n' kernel native invoke ×native wasi ×native "$unit"
for k in "${BENCH_KERNELS[@]}"; do
  src=$bench/kernels/$k.c
  "$cc" "${BENCH_CFLAGS[@]}" "${def[@]}" -c "$src" -o "$out/$k.o" &&
    "$cc" -O2 "$bench/native_main.c" "$out/$k.o" -o "$out/$k" || { echo "FAIL $k: native build"; failed=$((failed + 1)); continue; }
  "$cc" --target=wasm32-wasi "--sysroot=$sysroot" "${BENCH_CFLAGS[@]}" "${def[@]}" -c "$src" -o "$out/$k.wasi.o" &&
    "$cc" --target=wasm32-wasi "--sysroot=$sysroot" -O2 "$bench/native_main.c" "$out/$k.wasi.o" -o "$out/$k.wasi.wasm" ||
    { echo "FAIL $k: WASI build"; failed=$((failed + 1)); continue; }
  want=$("$out/$k")
  got=$("$tabbify" wasm run "$out/$k.wasi.wasm" 2>&1)
  status=$?
  if [[ $status -ne 0 || "$got" != "$want" ]]; then
    echo "FAIL $k: native printed $want, the WASI command printed \"$got\" (status $status)"
    failed=$((failed + 1))
    continue
  fi
  passed=$((passed + 1))
  if ((timing)); then
    "$cc" "${BENCH_WASM_FLAGS[@]}" "${BENCH_CFLAGS[@]}" "${def[@]}" "$src" -o "$out/$k.wasm"
    tn=$(cost "$out/$k")
    ti=$(cost "$tabbify" wasm run "$out/$k.wasm" --invoke run)
    tw=$(cost "$tabbify" wasm run "$out/$k.wasi.wasm")
    awk -v k="$k" -v n="$tn" -v i="$ti" -v w="$tw" -v d="$((timing == 2 ? 1000000 : 1000))" \
      'BEGIN { if (n < 1) n = 1; printf "%-11s %10.1f %10.1f %7.2f× %10.1f %7.2f×\n", k, n / d, i / d, i / n, w / d, w / n }'
  else
    echo "ok $k: $want"
  fi
done
echo "$passed passed, $failed failed"
((failed == 0))
