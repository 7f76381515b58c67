#!/usr/bin/env bash
# `tabbify events` on a real embedded log filled by the crash test's writer: the listing,
# --from, --type, --json, --follow while events arrive, --verify, and a damaged log.
tabbify=$1
writer=$2
source "$(dirname "$0")/lib.sh"

dir=$scratch/state
"$tabbify" events --state-dir "$dir" >/dev/null 2>"$scratch/err"; expect_eq "no log: exit" 1 "$?"
expect_eq "no log: message" "tabbify: cannot open the event log: there is no event log at $dir/events.db" "$(cat "$scratch/err")"

"$writer" embedded "$dir" "$scratch/snaps" 0 50 8 >/dev/null || { echo "FAIL cannot fill the log"; exit 1; }
out=$("$tabbify" events --state-dir "$dir"); expect_eq "all events: exit" 0 "$?"
expect_eq "all events: lines" 50 "$(wc -l <<<"$out")"
expect_eq "first line starts with offset 1" "1  2026-01-01T00:00:00.000Z  supervisor_registered" "$(head -1 <<<"$out" | cut -d' ' -f1-5)"
expect_eq "--from 45" "45 46 47 48 49 50" "$("$tabbify" events --state-dir "$dir" --from 45 | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "--type" 8 "$("$tabbify" events --state-dir "$dir" --type supervisor_registered | wc -l)"
TABBIFY_STATE_DIR=$dir "$tabbify" events --from 50 >/dev/null; expect_eq "TABBIFY_STATE_DIR" 0 "$?"

json=$("$tabbify" events --state-dir "$dir" --json --from 2 | head -1)
expect_eq "--json offset" 2 "$(jq -r .offset <<<"$json")"
expect_eq "--json payload is an object" object "$(jq -r '.payload | type' <<<"$json")"
expect_eq "--json key" w-1 "$(jq -r .idempotency_key <<<"$json")"
expect_eq "--json every line parses" 50 "$("$tabbify" events --state-dir "$dir" --json | jq -c .offset | wc -l)"

# --follow prints what is appended after it started.
"$tabbify" events --state-dir "$dir" --from 51 --follow >"$scratch/follow" 2>&1 &
follower=$!
"$writer" embedded "$dir" "$scratch/snaps" 50 60 8 >/dev/null
for _ in $(seq 100); do [[ $(wc -l <"$scratch/follow") -ge 10 ]] && break; sleep 0.05; done
kill -INT $follower; wait $follower; expect_eq "--follow: exit on SIGINT" 0 "$?"
expect_eq "--follow: new events" "51 60" "$(cut -d' ' -f1 "$scratch/follow" | sed -n '1p;$p' | tr '\n' ' ' | sed 's/ $//')"

out=$("$tabbify" events --state-dir "$dir" --verify); expect_eq "--verify: exit" 0 "$?"
expect_eq "--verify: message" "ok: 60 events, every page and checksum verified" "$out"

"$tabbify" events --state-dir "$dir" --from x >/dev/null 2>&1; expect_eq "--from x: exit" 2 "$?"
"$tabbify" events --state-dir "$dir" --bogus >/dev/null 2>&1; expect_eq "unknown flag: exit" 2 "$?"

# A flipped byte in an event is reported with its offset, never printed as if fine.
perl -0777 -pi -e 's/"name":"sup-3"/"name":"sup-2"/' "$dir/events.db"
"$tabbify" events --state-dir "$dir" >/dev/null 2>"$scratch/err"; expect_eq "damaged: exit" 1 "$?"
expect_eq "damaged: message" "tabbify: $dir/events.db: the event at offset 4 fails its checksum" "$(grep -v '^ts=' "$scratch/err")"
"$tabbify" events --state-dir "$dir" --verify >/dev/null 2>&1; expect_eq "damaged: --verify exit" 1 "$?"
finish
