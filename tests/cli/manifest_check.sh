#!/usr/bin/env bash
# `tabbify manifest check`: resolved JSON and exit 0 for good manifests; one line per
# problem on stderr and exit 2 for bad ones; a clear sentence for a missing file.
tabbify=$1 data=$2
source "$(dirname "$0")/lib.sh"

# The seeds' examples parse and resolve.
out=$("$tabbify" manifest check "$data/seed-000-runtimes.toml" 2>"$scratch/err"); rc=$?
expect_eq "seed 000 exit" 0 "$rc"
expect_eq "seed 000 runtime" "docker on_request 300 512" \
  "$(jq -r '.runtime | "\(.type) \(.lifecycle) \(.idle_timeout_sec) \(.memory_mb)"' <<<"$out")"
expect_eq "seed 000 deploy" "ec2-prod=docker thinkpad=firecracker" \
  "$(jq -r '[.deploy[] | "\(.supervisor)=\(.runtime)"] | join(" ")' <<<"$out")"
expect_eq "seed 000 stderr" "" "$(cat "$scratch/err")"

out=$("$tabbify" manifest check "$data/seed-004-from.toml" 2>/dev/null); rc=$?
expect_eq "seed 004 exit" 0 "$rc"
expect_eq "seed 004" "fabricks.dev/runtimes/python:3.12 server.py 8080 wasm-http" \
  "$(jq -r '"\(.from.image) \(.source.entrypoint) \(.capabilities.network.listen[0]) \(.runtime.type)"' <<<"$out")"

# The default file name is tabbify.toml in the current directory.
mkdir -p "$scratch/myapp"
printf '[app]\nname = "x"\n\n[build]\nkind = "docker"\n\n[runtime]\ntype = "dockr"\n' >"$scratch/myapp/tabbify.toml"
err=$(cd "$scratch/myapp" && "$tabbify" manifest check 2>&1 >/dev/null); rc=$?
expect_eq "bad manifest exit" 2 "$rc"
expect_eq "bad manifest line" \
  'tabbify.toml:8:8: runtime.type must be one of wasm-http, docker, firecracker, got "dockr"' "$err"

# Several problems: one line each, nothing on stdout.
out=$("$tabbify" manifest check "$data/typos.toml" 2>"$scratch/err"); rc=$?
expect_eq "typos exit" 2 "$rc"
expect_eq "typos stdout" "" "$out"
expect_eq "typos lines" 6 "$(wc -l <"$scratch/err")"
expect_eq "typos did-you-mean" "1" "$(grep -c 'unknown table \[runtim\], did you mean \[runtime\]?' "$scratch/err")"

# Missing file.
err=$("$tabbify" manifest check "$scratch/none.toml" 2>&1); rc=$?
expect_eq "missing exit" 1 "$rc"
expect_eq "missing message" "$scratch/none.toml: cannot read the manifest: no such file or directory" "$err"

# Usage errors.
"$tabbify" manifest frobnicate >/dev/null 2>&1; expect_eq "usage exit" 2 "$?"
err=$("$tabbify" manifset 2>&1); rc=$?
expect_eq "command typo exit" 2 "$rc"
expect_eq "command typo" 'tabbify: unknown command "tabbify manifset", did you mean "tabbify manifest"?' "$err"

finish
