#!/usr/bin/env bash
# run.sh TABBIFY WORKDIR — an AssemblyScript program as a WASI command. The compiler and
# @assemblyscript/wasi-shim come from the npm registry with npm, pinned, into WORKDIR
# (cached); exit status 77 (skipped) when npm or the registry is not available.
source "$(dirname "$0")/../../cli/lib.sh"
tabbify=$1
mkdir -p "$2"
work=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -x "$work/node_modules/.bin/asc" ]]; then
  command -v npm >/dev/null || { echo "SKIP: no npm"; exit 77; }
  (cd "$work" && npm install --no-audit --no-fund --no-save assemblyscript@0.27.37 @assemblyscript/wasi-shim@0.1.0 \
    >npm.log 2>&1) || { echo "SKIP: cannot install AssemblyScript; see $work/npm.log"; exit 77; }
fi
(cd "$work" && ./node_modules/.bin/asc "$here/hello.ts" --config node_modules/@assemblyscript/wasi-shim/asconfig.json \
  -O -o hello.wasm >asc.log 2>&1) || { echo "FAIL: asc did not compile hello.ts:"; cat "$work/asc.log"; exit 1; }

out=$("$tabbify" wasm run --env GREETING="hi there" "$work/hello.wasm" one "two words" 2>"$scratch/err")
expect_eq "exit status" 7 $?
expect_eq "stdout" "hello from AssemblyScript
argc=3
arg one
arg two words
sum=5050
GREETING=hi there
HOME granted: no
clock sane: yes
random in [0,1): yes" "$out"
expect_eq "stderr" "to stderr" "$(cat "$scratch/err")"
finish
