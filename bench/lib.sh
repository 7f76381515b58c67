# bench/lib.sh — what bench/run and bench/startup share: finding the tools, building
# the kernels (natively and to wasm32) and the tabbify binary. Sourced, never run.
#
# Everything is built into $BENCH_DIR (default build-bench/ at the top of the tree),
# in full/ and quick/ for the two problem sizes, and rebuilt only when a source is newer
# than what was built from it. Needs clang and wasm-ld (Debian's clang 14 + lld), nothing
# else; the kernels use no libc.
# shellcheck shell=bash disable=SC2034  # the variables here are used by the scripts that source it

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SRC=$BENCH_ROOT/bench
BENCH_DIR=${BENCH_DIR:-$BENCH_ROOT/build-bench}
BENCH_CC=${BENCH_CC:-clang}

# The benchmark kernels, in the order the tables list them.
BENCH_KERNELS=(fib sieve nbody matmul_i32 matmul_f64 sha256 qsort crc32 lz)

# Flags both builds share, so native and wasm compile exactly the same program:
# no libc and no library-call idioms (-ffreestanding -fno-builtin), sqrt as an
# instruction (-fno-math-errno), and no fused multiply-add, which would change f64
# results and so the checksums (-ffp-contract=off).
BENCH_CFLAGS=(-std=c17 -O2 -ffreestanding -fno-builtin -fno-math-errno -ffp-contract=off -Wall -Wextra)
# shellcheck disable=SC2054  # the commas belong to the linker flags
BENCH_WASM_FLAGS=(--target=wasm32 -nostdlib -Wl,--no-entry -Wl,--export=run -Wl,--strip-all)

bench_die() {
  echo "bench: $*" >&2
  exit 2
}

# Makes sure clang can find wasm-ld: Debian may install only wasm-ld-14.
bench_find_tools() {
  command -v "$BENCH_CC" >/dev/null || bench_die "$BENCH_CC not found (scripts/setup installs clang)"
  if ! command -v wasm-ld >/dev/null; then
    local ld
    ld=$(command -v wasm-ld-14 || command -v wasm-ld-15 || command -v wasm-ld-16 || true)
    [[ -n "$ld" ]] || bench_die "wasm-ld not found (scripts/setup installs lld)"
    mkdir -p "$BENCH_DIR/bin"
    ln -sf "$ld" "$BENCH_DIR/bin/wasm-ld"
    PATH=$BENCH_DIR/bin:$PATH
  fi
}

# True when $1 is missing or older than any of the remaining files.
bench_stale() {
  local out=$1 f
  shift
  [[ -e "$out" ]] || return 0
  for f in "$@"; do [[ "$f" -nt "$out" ]] && return 0; done
  return 1
}

# bench_build_kernel NAME MODE: builds $BENCH_DIR/MODE/NAME (native) and NAME.wasm,
# where MODE is full or quick (-DQUICK).
bench_build_kernel() {
  local k=$1 mode=$2 out=$BENCH_DIR/$2
  local src=$BENCH_SRC/kernels/$k.c hdr=$BENCH_SRC/kernels/kernel.h drv=$BENCH_SRC/native_main.c
  local def=()
  [[ "$mode" == quick ]] && def=(-DQUICK)
  [[ -f "$src" ]] || bench_die "no kernel $k (bench/kernels/$k.c)"
  mkdir -p "$out"
  if bench_stale "$out/$k" "$src" "$hdr" "$drv" "$BENCH_SRC/lib.sh"; then
    if ! "$BENCH_CC" "${BENCH_CFLAGS[@]}" "${def[@]}" -c "$src" -o "$out/$k.o" ||
      ! "$BENCH_CC" -O2 "$drv" "$out/$k.o" -o "$out/$k"; then
      bench_die "cannot build $k natively"
    fi
  fi
  if bench_stale "$out/$k.wasm" "$src" "$hdr" "$BENCH_SRC/lib.sh"; then
    "$BENCH_CC" "${BENCH_WASM_FLAGS[@]}" "${BENCH_CFLAGS[@]}" "${def[@]}" "$src" -o "$out/$k.wasm" ||
      bench_die "cannot build $k for wasm32"
  fi
}

# Sets TABBIFY to a tabbify binary: $TABBIFY if set, else build/src/tabbify/tabbify,
# which it builds (only that target) when it is missing.
bench_find_tabbify() {
  if [[ -n "${TABBIFY:-}" ]]; then
    [[ -x "$TABBIFY" ]] || bench_die "TABBIFY=$TABBIFY is not an executable"
    return
  fi
  TABBIFY=$BENCH_ROOT/build/src/tabbify/tabbify
  [[ -x "$TABBIFY" ]] && return
  echo "bench: building tabbify in build/" >&2
  (cd "$BENCH_ROOT" && cmake -S . -B build -G Ninja >/dev/null && cmake --build build --target tabbify) >&2 ||
    bench_die "cannot build tabbify"
}

# bench_now VAR: sets VAR to the wall clock in microseconds, without a subshell. Bash 5's
# EPOCHREALTIME costs no process; date +%s%N, the fallback, costs a fork and an exec.
if [[ -n "${EPOCHREALTIME:-}" ]]; then
  bench_now() {
    local t=${EPOCHREALTIME/[.,]/}
    printf -v "$1" '%d' "$((10#$t))"
  }
else
  bench_now() {
    local ns
    ns=$(date +%s%N)
    printf -v "$1" '%d' "$((ns / 1000))"
  }
fi

# bench_median N...: the median of integers (the lower middle one for an even count).
bench_median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
