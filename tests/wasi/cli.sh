#!/usr/bin/env bash
# cli.sh — `tabbify wasm run` with WASI grants, as users run it: what a guest sees with
# and without --dir/--dir-ro/--env, the exit status it chooses, and the one-sentence
# errors for bad grants. usage: cli.sh TABBIFY PROGS_DIR
source "$(dirname "$0")/../cli/lib.sh"
tabbify=$1
progs=$2
tool=$progs/tool.wasm

run() { # run ARGS...: sets out, err, status
  out=$("$tabbify" wasm run "$@" 2>"$scratch/err")
  status=$?
  err=$(cat "$scratch/err")
}

mkdir -p "$scratch/data" "$scratch/ro" "$scratch/outside"
echo "granted" >"$scratch/data/in.txt"
echo "read only" >"$scratch/ro/r.txt"
echo "secret" >"$scratch/outside/s.txt"

# Arguments: argv[0] is the module as named, the rest follow FILE, options included.
run "$tool" args one --two "three four"
expect_eq "args" "$tool
args
one
--two
three four" "$out"
expect_eq "args status" 0 "$status"

# Nothing by default: no environment, no files.
run "$tool" env
expect_eq "no environment by default" "" "$out"
run "$tool" cat "$scratch/data/in.txt"
expect_eq "no files by default: status" 1 "$status"
[[ "$err" == "tool: $scratch/data/in.txt: "* ]]
expect_eq "no files by default: message" 0 $?

# --env KEY=VALUE and --env KEY (inherited; unset means not granted).
export TB_WASI_INHERITED="from the host"
unset TB_WASI_UNSET
run --env A=1 --env B= --env TB_WASI_INHERITED --env TB_WASI_UNSET --env A=2 "$tool" env
expect_eq "env grants" "A=2
B=
TB_WASI_INHERITED=from the host" "$out"

# --dir HOST::GUEST and --dir HOST.
run --dir "$scratch/data::/data" "$tool" cat /data/in.txt
expect_eq "--dir HOST::GUEST" "granted" "$out"
run --dir "$scratch/data" "$tool" cat "$scratch/data/in.txt"
expect_eq "--dir HOST" "granted" "$out"
run --dir="$scratch/data::/d" "$tool" write /d/new.txt "made by the guest"
expect_eq "write in a granted dir: status" 0 "$status"
expect_eq "write in a granted dir: file" "made by the guest" "$(cat "$scratch/data/new.txt")"
run --dir "$scratch/data::/data" "$tool" cat /data/../outside/s.txt
expect_eq "escape with ..: status" 1 "$status"
expect_eq "escape with ..: message" "tool: /data/../outside/s.txt: Capabilities insufficient" "$err"
run --dir "$scratch/data::/data" "$tool" ls /data
expect_eq "ls" "in.txt
new.txt" "$out"

# --dir-ro: reads work, writes do not, the host file is untouched.
run --dir-ro "$scratch/ro::/ro" "$tool" cat /ro/r.txt
expect_eq "--dir-ro read" "read only" "$out"
run --dir-ro "$scratch/ro::/ro" "$tool" write /ro/r.txt "overwritten"
expect_eq "--dir-ro write: status" 1 "$status"
expect_eq "--dir-ro write: message" "tool: /ro/r.txt: Capabilities insufficient" "$err"
expect_eq "--dir-ro write: file" "read only" "$(cat "$scratch/ro/r.txt")"

# The guest's exit status is the process's.
run "$tool" exit 42
expect_eq "exit status" 42 "$status"
run "$progs/exit.wasm"
expect_eq "proc_exit status" 42 "$status"
expect_eq "proc_exit output" "before exit" "$out"
run "$progs/trap.wasm"
expect_eq "trap status" 1 "$status"
expect_eq "trap message" "tabbify: trap: unreachable" "${err%% (*}"

# Bad grants: one sentence, status 2, and the module never runs.
run --dir /nope "$tool" args
expect_eq "--dir missing" "tabbify: --dir /nope: no such directory" "$err"
expect_eq "--dir missing: status" 2 "$status"
run --dir-ro "$scratch/data/in.txt::/x" "$tool" args
expect_eq "--dir-ro a file" "tabbify: --dir-ro $scratch/data/in.txt::/x: not a directory" "$err"
run --dir "$scratch/data::" "$tool" args
expect_eq "--dir empty guest" "tabbify: --dir $scratch/data::: the guest path is empty" "$err"
run --env =x "$tool" env
expect_eq "--env empty name" "tabbify: --env =x: the variable's name is empty" "$err"
run --dir
expect_eq "--dir without a value" "tabbify: --dir needs a value" "$err"
run --frobnicate "$tool"
expect_eq "unknown option: status" 2 "$status"

# A reactor with --invoke: _initialize first (its constructor reads BASE), then the call.
run --env BASE=6 "$progs/reactor.wasm" --invoke answer 7
expect_eq "reactor --invoke" "42" "$out"

# --tcplisten: a pre-opened listening socket; the guest serves two connections, each
# answered the way a client on this machine sees it.
port=0
for try in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 30000))
  "$tabbify" wasm run --tcplisten "127.0.0.1:$p" "$progs/echo.wasm" 2 >"$scratch/echo.out" 2>"$scratch/echo.err" &
  pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { port=$p; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ((port)) && break
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
# The probe above was the first connection (it sent nothing); this is the second.
if ((port)); then
  exec 4<>"/dev/tcp/127.0.0.1/$port"
  echo "hello over tcp" >&4
  IFS= read -r -t 10 reply <&4
  exec 4<&-
  wait "$pid"
  expect_eq "--tcplisten: the guest's exit status" 0 $?
  expect_eq "--tcplisten: reply" "echo: hello over tcp" "$reply"
else
  expect_eq "--tcplisten: a port to listen on" "found" "none ($(cat "$scratch/echo.err"))"
fi
run --tcplisten nonsense "$tool" args
expect_eq "--tcplisten without a port" "tabbify: --tcplisten nonsense: expected HOST:PORT" "$err"

finish
