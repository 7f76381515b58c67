#!/usr/bin/env bash
# `tabbify ula UUID` prints fd5a:1f02:<first 6 bytes of BLAKE3(uuid bytes)>::1, checked
# here against b3sum computing the hash independently.
tabbify=$1
source "$(dirname "$0")/lib.sh"

for uuid in 0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887 00000000-0000-0000-0000-000000000000 $(cat /proc/sys/kernel/random/uuid); do
  hex=${uuid//-/}
  h=$(printf "$(sed 's/../\\x&/g' <<<"$hex")" | b3sum --no-names)
  full="fd5a:1f02:${h:0:4}:${h:4:4}:${h:8:4}:0:0:1"
  want=$(perl -MSocket=inet_pton,inet_ntop,AF_INET6 -e 'print inet_ntop(AF_INET6, inet_pton(AF_INET6, $ARGV[0]))' "$full")
  expect_eq "ula of $uuid" "$want" "$("$tabbify" ula "$uuid")"
done
"$tabbify" ula not-a-uuid >/dev/null 2>&1; expect_eq "bad uuid exit" 2 "$?"
finish
