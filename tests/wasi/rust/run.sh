#!/usr/bin/env bash
# run.sh TABBIFY WORKDIR — a Rust program (std, wasm32-wasi) as a WASI command. Needs
# Debian's rustc with libstd-rust-dev-wasm32 (/usr/lib/rustlib/wasm32-wasi); exit status
# 77 (skipped) without them.
source "$(dirname "$0")/../../cli/lib.sh"
tabbify=$1
mkdir -p "$2"
work=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
rustc=/usr/bin/rustc # Debian's: the one whose std has the wasm32-wasi target
[[ -x $rustc && -d /usr/lib/rustlib/wasm32-wasi ]] || { echo "SKIP: no rustc with wasm32-wasi std"; exit 77; }
"$rustc" --target wasm32-wasi -O --edition 2021 "$here/hello.rs" -o "$work/hello.wasm" 2>"$work/rustc.log" ||
  { echo "FAIL: rustc:"; cat "$work/rustc.log"; exit 1; }
mkdir -p "$scratch/data"
echo "outside" >"$scratch/outside.txt"
out=$("$tabbify" wasm run --dir "$scratch/data::/data" --env GREETING=hej "$work/hello.wasm" x "y z" 2>"$scratch/err")
expect_eq "exit status" 5 $?
expect_eq "stdout" 'args: ["x", "y z"]
GREETING=hej
PATH granted: false
read back: written by rust
moved: 15 bytes, is_file true
listing: ["a", "moved.txt"]
escape refused: 76' "$out"
expect_eq "stderr" "done" "$(cat "$scratch/err")"
expect_eq "host: the file the guest moved" "written by rust" "$(cat "$scratch/data/rs/moved.txt")"
expect_eq "host: the tree the guest removed" "moved.txt" "$(ls "$scratch/data/rs")"
finish
