#!/bin/sh
# run_spec.sh — converts the WebAssembly spec testsuite with wast2json and runs a driver
# over the result.
#
#   run_spec.sh convert WAST2JSON SUITE_DIR OUT_DIR
#   run_spec.sh run     WAST2JSON SUITE_DIR OUT_DIR DRIVER [DRIVER_ARGS...]
#
# "convert" turns every SUITE_DIR/*.wast into OUT_DIR/<name>/<name>.json plus the
# .wasm/.wat files wast2json writes beside it (a file is reconverted only when its .wast
# is newer). "run" converts, then runs DRIVER once with every JSON file as an argument and
# exits with its status.
#
# wast2json 1.0.32 enables exactly the Wasm 2.0 feature set by default (mutable globals,
# saturating conversions, sign extension, multi-value, bulk memory, reference types,
# SIMD), so no feature flags are passed: every file of the 2.0 suite converts with them,
# and --enable-all produces byte-identical output for this suite.
set -eu

mode=$1
wast2json=$2
suite=$3
out=$4
shift 4

mkdir -p "$out"
failed=0
for wast in "$suite"/*.wast; do
  name=$(basename "$wast" .wast)
  dir="$out/$name"
  json="$dir/$name.json"
  if [ -f "$json" ] && [ "$json" -nt "$wast" ]; then
    continue
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  if ! "$wast2json" "$wast" -o "$json" 2>"$dir/wast2json.err"; then
    echo "wast2json failed on $name.wast:" >&2
    cat "$dir/wast2json.err" >&2
    rm -f "$json"
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "some .wast files did not convert" >&2
  exit 1
fi

case "$mode" in
convert) exit 0 ;;
run)
  driver=$1
  shift
  set -- "$@" "$out"/*/*.json
  exec "$driver" "$@"
  ;;
*)
  echo "usage: run_spec.sh convert|run WAST2JSON SUITE_DIR OUT_DIR [DRIVER ARGS...]" >&2
  exit 2
  ;;
esac
