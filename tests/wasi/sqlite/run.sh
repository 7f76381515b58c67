#!/usr/bin/env bash
# run.sh TABBIFY WORKDIR CLANG SYSROOT — SQLite's shell, built from Debian's source
# (build.sh), run on our engine as an ordinary WASI command with a granted directory,
# against Debian's native sqlite3 as the oracle:
#   - test.sql gives byte-identical output, and the database file the guest wrote is
#     one the native shell reads back whole (integrity_check, same answers);
#   - a database the native shell wrote, and stdin, work the other way round;
#   - the guest cannot open a database outside its grant, nor write under --dir-ro;
#   - SQLite's speedtest1 runs to the end and leaves a sound database.
source "$(dirname "$0")/../../cli/lib.sh"
tabbify=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/build.sh" "$work" "$3" "$4"
rc=$?
if ((rc == 77)); then
  echo "SKIP: SQLite's shell could not be built here"
  exit 77
fi
((rc == 0)) || { echo "FAIL: build.sh exited $rc"; exit 1; }
command -v sqlite3 >/dev/null || { echo "SKIP: no native sqlite3 to compare with"; exit 77; }
wasm=$work/sqlite3.wasm
mkdir -p "$scratch/native" "$scratch/guest" "$scratch/outside"

# The script, both ways.
sqlite3 "$scratch/native/t.db" <"$here/test.sql" >"$scratch/native.out" 2>&1
# SQLite puts VACUUM's temporary database in $SQLITE_TMPDIR: a granted directory.
mkdir -p "$scratch/tmp"
"$tabbify" wasm run --dir "$scratch/guest::/db" --dir "$scratch/tmp::/tmp" --env SQLITE_TMPDIR=/tmp "$wasm" /db/t.db <"$here/test.sql" >"$scratch/guest.out" 2>"$scratch/guest.err"
expect_eq "test.sql exit status" 0 $?
if ! diff -u "$scratch/native.out" "$scratch/guest.out" >"$scratch/diff"; then
  expect_eq "test.sql output (diff below)" "" "$(cat "$scratch/diff")"
else
  expect_eq "test.sql output" "$(wc -l <"$scratch/native.out") lines" "$(wc -l <"$scratch/guest.out") lines"
fi
expect_eq "test.sql stderr" "" "$(grep -v 'cannot find home directory' "$scratch/guest.err")"

# The file the guest wrote, read natively.
expect_eq "guest's database, natively: integrity" "ok" "$(sqlite3 "$scratch/guest/t.db" 'PRAGMA integrity_check')"
q="SELECT count(*), round(sum(amount), 2) FROM orders; SELECT group_concat(k) FROM kv;"
expect_eq "guest's database, natively: contents" "$(sqlite3 "$scratch/native/t.db" "$q")" "$(sqlite3 "$scratch/guest/t.db" "$q")"

# A database written natively, queried by the guest with SQL as an argument.
got=$("$tabbify" wasm run --dir-ro "$scratch/native::/ro" "$wasm" -readonly /ro/t.db \
  "SELECT count(*) FROM customer; SELECT name FROM customer WHERE id = 1234;" 2>/dev/null)
expect_eq "native database, read by the guest" "2000
customer 1234" "$got"

# The grants hold: nothing outside /db, nothing written under --dir-ro.
echo "CREATE TABLE stolen(x);" >"$scratch/outside/evil.sql"
got=$("$tabbify" wasm run --dir "$scratch/guest::/db" "$wasm" /db/t.db "ATTACH '/db/../outside/x.db' AS x;" 2>&1)
[[ "$got" == *"unable to open database: /db/../outside/x.db"* ]]
expect_eq "attach outside the grant: refused ($got)" 0 $?
expect_eq "attach outside the grant: nothing created" "evil.sql" "$(ls "$scratch/outside")"
got=$("$tabbify" wasm run --dir "$scratch/guest::/db" "$wasm" /db/t.db ".read /db/../outside/evil.sql" 2>&1)
expect_eq ".read outside the grant" "Error: cannot open \"/db/../outside/evil.sql\"" "${got##*$'\n'}"
before=$(sha256sum "$scratch/native/t.db")
got=$("$tabbify" wasm run --dir-ro "$scratch/native::/ro" "$wasm" /ro/t.db "DELETE FROM orders;" 2>&1)
expect_eq "--dir-ro: a write fails (SQLITE_READONLY)" 8 $?
[[ "$got" == *"attempt to write a readonly database"* ]]
expect_eq "--dir-ro: the message ($got)" 0 $?
expect_eq "--dir-ro: the file is untouched" "$before" "$(sha256sum "$scratch/native/t.db")"
# speedtest1: SQLite's benchmark, every kind of statement on a file database, ending
# with an integrity check.
"$tabbify" wasm run --dir "$scratch/guest::/db" --dir "$scratch/tmp::/tmp" --env SQLITE_TMPDIR=/tmp \
  "$work/speedtest1.wasm" --size 1 /db/speed.db >"$scratch/speed.out" 2>&1
expect_eq "speedtest1 exit status" 0 $?
expect_eq "speedtest1 ran to the end" "1" "$(grep -c 'TOTAL\.\.\.' "$scratch/speed.out")"
expect_eq "speedtest1's database, natively" "ok" "$(sqlite3 "$scratch/guest/speed.db" 'PRAGMA integrity_check')"
finish
