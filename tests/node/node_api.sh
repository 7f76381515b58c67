#!/usr/bin/env bash
# Integration test of tabbify-node: starts the real node on an ephemeral loopback port with
# a temporary state directory and drives it with curl and the tabbify CLI, the way users
# do. Usage: node_api.sh TABBIFY_NODE TABBIFY
# Every check prints what was expected and what came back; the node is always killed.
set -u
NODE_BIN=$(realpath "$1") CLI=$(realpath "$2")
WORK=$(mktemp -d /tmp/tb-node-test.XXXXXX)
NODE_PID=
FAILS=0
cleanup() { [ -n "$NODE_PID" ] && kill -9 "$NODE_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

start_node() { # extra args...
  "$NODE_BIN" --state-dir "$WORK/state" --listen 127.0.0.1:0 --max-artifact-bytes 4194304 "$@" \
    >"$WORK/node.out" 2>>"$WORK/node.err" &
  NODE_PID=$!
  for _ in $(seq 100); do
    PORT=$(grep -o 'port [0-9]*' "$WORK/node.out" 2>/dev/null | cut -d' ' -f2)
    [ -n "$PORT" ] && break
    sleep 0.05
  done
  [ -n "$PORT" ] || { echo "the node did not start:"; cat "$WORK/node.err"; exit 1; }
  : >"$WORK/node.out"
  U=http://127.0.0.1:$PORT
}

# expect STATUS DESCRIPTION curl-args...   (body left in $WORK/body)
expect() {
  local want=$1 what=$2; shift 2
  local got
  got=$(curl -s -o "$WORK/body" -w '%{http_code}' "$@")
  if [ "$got" = "$want" ]; then ok "$what -> $got"; else fail "$what: expected $want, got $got: $(head -c 300 "$WORK/body")"; fi
}

new_uuid7() {
  python3 -c "import time,os,uuid; b=bytearray(int(time.time()*1000).to_bytes(6,'big')+os.urandom(10)); b[6]=0x70|(b[6]&15); b[8]=0x80|(b[8]&63); print(uuid.UUID(bytes=bytes(b)))"
}

start_node --supervisor edge:wasm-http,gpu
KEY="$WORK/state/node.key"
[ "$(stat -c %a "$KEY")" = 600 ] && ok "key file is 0600" || fail "key file mode is $(stat -c %a "$KEY")"
T=$("$CLI" token create --tenant acme --scope 'apps:*' --scope events:read --scope supervisors:read --key-file "$KEY")
TR=$("$CLI" token create --tenant acme --scope apps:read --key-file "$KEY")
TO=$("$CLI" token create --tenant other --scope '*' --key-file "$KEY")
TX=$("$CLI" token create --tenant acme --scope '*' --ttl 1 --key-file "$KEY")
A=(-H "Authorization: Bearer $T")

# ---- health, auth ----
expect 200 "GET /health is open" "$U/health"
expect 401 "no token" "$U/v1/apps"
grep -q '"error":"missing_token"' "$WORK/body" && ok "401 has a JSON body" || fail "401 body: $(cat "$WORK/body")"
expect 401 "garbage token" -H "Authorization: Bearer abc.def.ghi" "$U/v1/apps"
expect 403 "read-only token cannot register" -H "Authorization: Bearer $TR" -d '{}' "$U/v1/apps"
expect 200 "list (empty)" "${A[@]}" "$U/v1/apps"
[ "$(cat "$WORK/body")" = "[]" ] && ok "no apps yet" || fail "expected [], got $(cat "$WORK/body")"

# ---- register ----
ID=$(new_uuid7)
MAN="{\"app\":{\"id\":\"$ID\",\"name\":\"hello\"},\"runtime\":{\"type\":\"wasm-http\"}}"
expect 400 "register: not JSON" "${A[@]}" -d 'nope' "$U/v1/apps"
expect 400 "register: no app.id" "${A[@]}" -d '{"app":{"name":"x"},"runtime":{"type":"wasm-http"}}' "$U/v1/apps"
expect 201 "register" "${A[@]}" -d "$MAN" "$U/v1/apps"
expect 200 "register again (same tenant) is idempotent" "${A[@]}" -d "$MAN" "$U/v1/apps"
expect 409 "register someone else's id" -H "Authorization: Bearer $TO" -d "$MAN" "$U/v1/apps"
expect 200 "get app" "${A[@]}" "$U/v1/apps/$ID"
expect 403 "other tenant cannot read it" -H "Authorization: Bearer $TO" "$U/v1/apps/$ID"
expect 400 "malformed uuid" "${A[@]}" "$U/v1/apps/not-a-uuid"
expect 404 "unknown app" "${A[@]}" "$U/v1/apps/$(new_uuid7)"
expect 404 "no such route" "${A[@]}" "$U/v1/nothing"

# ---- upload ----
head -c 100000 /dev/urandom >"$WORK/v1.bin"
SHA1=$(sha256sum "$WORK/v1.bin" | cut -c1-64)
expect 400 "upload without X-Content-SHA256" "${A[@]}" -X PUT --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/1"
expect 400 "upload with a wrong hash" "${A[@]}" -X PUT -H "X-Content-SHA256: $(printf '0%.0s' $(seq 64))" \
  --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/1"
grep -q digest_mismatch "$WORK/body" && ok "mismatch says digest_mismatch" || fail "mismatch body: $(cat "$WORK/body")"
left=$(find "$WORK/state/artifacts" -type f | wc -l)
[ "$left" = 0 ] && ok "a mismatch leaves nothing behind" || fail "files left after a mismatch: $(find "$WORK/state/artifacts" -type f)"
expect 400 "version 0" "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA1" --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/0"
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
expect 400 "a manifest header that is not base64url" "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA1" \
  -H "X-Tabbify-Manifest: not*base64" --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/1"
grep -q invalid_manifest "$WORK/body" && ok "says invalid_manifest" || fail "body: $(cat "$WORK/body")"
expect 400 "a manifest of another app" "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA1" \
  -H "X-Tabbify-Manifest: $(printf '{"app":{"id":"%s"}}' "$(new_uuid7)" | b64url)" --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/1"
MJSON="{\"app\":{\"id\":\"$ID\",\"name\":\"hello\"},\"runtime\":{\"type\":\"wasm-http\",\"lifecycle\":\"on_request\"}}"
expect 201 "upload v1" "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA1" -H "X-Tabbify-Manifest: $(printf '%s' "$MJSON" | b64url)" \
  --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/1"
cmp -s "$WORK/v1.bin" "$WORK/state/artifacts/apps/$ID/v1/artifact" && ok "v1 stored byte for byte" || fail "v1 differs in the store"
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi; }
check_eq "the version's manifest is stored with it" "$MJSON" "$(cat "$WORK/state/artifacts/apps/$ID/v1/manifest.json" 2>&1)"
expect 409 "v1 again (immutable)" "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA1" --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/1"
head -c 5000000 /dev/zero >"$WORK/big.bin"
expect 413 "artifact over the limit" "${A[@]}" -X PUT -H "X-Content-SHA256: $(sha256sum "$WORK/big.bin" | cut -c1-64)" \
  --data-binary @"$WORK/big.bin" "$U/v1/apps/$ID/versions/2"
expect 413 "chunked artifact over the limit" "${A[@]}" -X PUT -H "Transfer-Encoding: chunked" \
  -H "X-Content-SHA256: $(sha256sum "$WORK/big.bin" | cut -c1-64)" --data-binary @"$WORK/big.bin" "$U/v1/apps/$ID/versions/2"
[ ! -e "$WORK/state/artifacts/apps/$ID/v2" ] && ok "413 leaves no v2" || fail "v2 exists after 413"
expect 403 "other tenant cannot upload" -H "Authorization: Bearer $TO" -X PUT -H "X-Content-SHA256: $SHA1" \
  --data-binary @"$WORK/v1.bin" "$U/v1/apps/$ID/versions/2"

# ---- deploy, rollback, stop ----
expect 409 "deploy on a runtime no supervisor carries" "${A[@]}" -d '{"runtime":"docker"}' "$U/v1/apps/$ID/deploy"
grep -q no_supervisor "$WORK/body" && ok "409 says no_supervisor" || fail "409 body: $(cat "$WORK/body")"
expect 409 "deploy to an unknown target" "${A[@]}" -d '{"target":"nowhere"}' "$U/v1/apps/$ID/deploy"
expect 404 "deploy an unknown version" "${A[@]}" -d '{"version":9}' "$U/v1/apps/$ID/deploy"
expect 400 "deploy with a bad body" "${A[@]}" -d '{"version":"one"}' "$U/v1/apps/$ID/deploy"
expect 409 "rollback with nothing deployed" "${A[@]}" -d '{}' "$U/v1/apps/$ID/rollback"
expect 202 "deploy v1" "${A[@]}" -d '{}' "$U/v1/apps/$ID/deploy"
grep -q '"supervisor_name":"edge"' "$WORK/body" && ok "placed on edge" || fail "deploy body: $(cat "$WORK/body")"
printf 'v2 bytes' >"$WORK/v2.bin"
expect 201 "upload v2" "${A[@]}" -X PUT -H "X-Content-SHA256: $(sha256sum "$WORK/v2.bin" | cut -c1-64)" \
  --data-binary @"$WORK/v2.bin" "$U/v1/apps/$ID/versions/2"
expect 202 "deploy v2 on edge" "${A[@]}" -d '{"version":2,"target":"edge"}' "$U/v1/apps/$ID/deploy"
expect 202 "rollback" "${A[@]}" -d '{}' "$U/v1/apps/$ID/rollback"
grep -q '"version":1' "$WORK/body" && ok "rolled back to v1" || fail "rollback body: $(cat "$WORK/body")"
expect 202 "stop" "${A[@]}" -X POST "$U/v1/apps/$ID/stop"
expect 200 "supervisors" "${A[@]}" "$U/v1/supervisors"
grep -q '"display_name":"edge","tags":\["wasm-http","gpu"\]' "$WORK/body" && ok "supervisor listed" || fail "supervisors: $(cat "$WORK/body")"

# ---- events ----
expect 200 "events" "${A[@]}" "$U/v1/events?from=1"
types=$(python3 -c "import json,sys; print(' '.join(e['type'] for e in json.load(open(sys.argv[1]))))" "$WORK/body")
want="supervisor_registered app_registered version_uploaded deploy_requested deployment_placed version_uploaded deploy_requested deployment_placed rollback_requested deployment_placed app_stopped"
[ "$types" = "$want" ] && ok "events in order" || fail "events: expected [$want], got [$types]"
expect 400 "events?from=abc" "${A[@]}" "$U/v1/events?from=abc"
expect 403 "events without events:read" -H "Authorization: Bearer $TR" "$U/v1/events"

# ---- logs ----
echo "first line" >"$WORK/state/logs/$ID.log"
expect 200 "logs" "${A[@]}" "$U/v1/apps/$ID/logs"
[ "$(cat "$WORK/body")" = "first line" ] && ok "log line served" || fail "logs: $(cat "$WORK/body")"
curl -s -N "${A[@]}" "$U/v1/apps/$ID/logs?follow=1" >"$WORK/follow" &
CURL_PID=$!
sleep 0.4
echo "second line" >>"$WORK/state/logs/$ID.log"
sleep 0.6
kill "$CURL_PID" 2>/dev/null; wait "$CURL_PID" 2>/dev/null
[ "$(cat "$WORK/follow")" = "$(printf 'first line\nsecond line')" ] && ok "follow=1 streams new lines" || fail "follow got: $(cat "$WORK/follow")"

# ---- /app/{uuid}/... ----
expect 400 "/app/ malformed uuid" "$U/app/xyz/"
expect 404 "/app/ unknown app" "$U/app/$(new_uuid7)/"
expect 503 "/app/ of a stopped app" "$U/app/$ID/index.html"
grep -q '"error":"app_stopped"' "$WORK/body" && ok "503 has a JSON body" || fail "503 body: $(cat "$WORK/body")"
# (the proxy itself, wake and 502/504: tests/node/node_proxy.sh)

# ---- expiry ----
sleep 1.1
expect 401 "expired token" -H "Authorization: Bearer $TX" "$U/v1/apps"

# ---- every route in /v1/openapi.json answers one of its documented statuses ----
expect 200 "openapi" "$U/v1/openapi.json"
cp "$WORK/body" "$WORK/openapi.json"
python3 - "$WORK/openapi.json" "$ID" >"$WORK/calls" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method in ("head", "options", "patch", "delete"): continue
        p = path.replace("{uuid}", sys.argv[2]).replace("{n}", "7").replace("{rest}", "x")
        print(method.upper(), p, " ".join(op["responses"].keys()))
PY
while read -r m p codes; do
  got=$(curl -s -o /dev/null -w '%{http_code}' -X "$m" "${A[@]}" -H "X-Content-SHA256: $SHA1" -d '{}' "$U$p")
  case " $codes " in *" $got "*) ok "$m $p -> $got (documented)";; *) fail "$m $p answered $got, documented: $codes";; esac
done <"$WORK/calls"
n=$(wc -l <"$WORK/calls"); [ "$n" -ge 13 ] && ok "$n operations documented" || fail "only $n operations in openapi.json"

# ---- the CLI: init, push (stamps the id, byte-for-byte otherwise), ls, status, deploy, rollback, logs ----
mkdir -p "$WORK/app/hello_App"
cli() { TABBIFY_SERVER="$U" TABBIFY_TOKEN="$T" HOME="$WORK/home" "$CLI" "$@"; }
clicheck() { # want-exit description args...
  local want=$1 what=$2; shift 2
  (cd "$WORK/app/hello_App" && cli "$@") >"$WORK/cli.out" 2>"$WORK/cli.err"
  local got=$?
  [ "$got" = "$want" ] && ok "tabbify $what -> exit $got" || fail "tabbify $what: expected exit $want, got $got: $(cat "$WORK/cli.out" "$WORK/cli.err")"
}
clicheck 0 "init" init
clicheck 1 "init again refuses to overwrite" init
clicheck 0 "manifest check of the template" manifest check
printf '\0asm\1\0\0\0' >"$WORK/app/hello_App/app.wasm"
cp "$WORK/app/hello_App/tabbify.toml" "$WORK/before.toml"
clicheck 0 "push" push
CID=$(grep -o '^id = "[0-9a-f-]*"' "$WORK/app/hello_App/tabbify.toml" | cut -d'"' -f2)
diff <(grep -v '^id = ' "$WORK/app/hello_App/tabbify.toml") "$WORK/before.toml" >/dev/null \
  && ok "push only added the id line" || fail "push changed more than the id: $(diff "$WORK/before.toml" "$WORK/app/hello_App/tabbify.toml")"
grep -q "version 1" "$WORK/cli.out" && ok "push printed version 1" || fail "push printed: $(cat "$WORK/cli.out")"
clicheck 0 "push again" push
grep -q "version 2" "$WORK/cli.out" && ok "second push is version 2" || fail "second push printed: $(cat "$WORK/cli.out")"
clicheck 0 "ls" ls
grep -q "$CID  hello-app" "$WORK/cli.out" && ok "ls lists the app" || fail "ls printed: $(cat "$WORK/cli.out")"
clicheck 1 "deploy to a missing target" deploy --target nowhere
grep -q "No supervisor named" "$WORK/cli.err" && ok "deploy error is one sentence" || fail "deploy error: $(cat "$WORK/cli.err")"
clicheck 0 "deploy --version 1" deploy --version 1
clicheck 0 "deploy" deploy
clicheck 0 "rollback" rollback
grep -q "version 1 on edge" "$WORK/cli.out" && ok "rollback went to v1" || fail "rollback printed: $(cat "$WORK/cli.out")"
clicheck 0 "status" status
grep -q "deployed: v1" "$WORK/cli.out" && ok "status shows v1 deployed" || fail "status printed: $(cat "$WORK/cli.out")"
echo "cli log line" >"$WORK/state/logs/$CID.log"
clicheck 0 "logs" logs
grep -q "cli log line" "$WORK/cli.out" && ok "logs printed the line" || fail "logs printed: $(cat "$WORK/cli.out")"
clicheck 0 "stop" stop
clicheck 2 "deploy --version x" deploy --version x
clicheck 1 "ls with a bad token" ls --token bad
mkdir -p "$WORK/home/.config/tabbify"
printf 'server = "%s"\ntoken = "%s"\n' "$U" "$T" >"$WORK/home/.config/tabbify/config.toml"
(cd "$WORK/app/hello_App" && HOME="$WORK/home" "$CLI" status >"$WORK/cli.out" 2>&1) && ok "server and token from config.toml" \
  || fail "config.toml: $(cat "$WORK/cli.out")"

# ---- revocation: POST /v1/revocations (scope admin:revoke) and `tabbify token revoke` ----
TA=$("$CLI" token create --tenant acme --scope admin:revoke --key-file "$KEY")
TV=$("$CLI" token create --tenant acme --scope apps:read --key-file "$KEY")
jti_of() { python3 -c "import sys,json,base64; p=sys.argv[1].split('.')[1]; p+='='*(-len(p)%4); print(json.loads(base64.urlsafe_b64decode(p))['jti'])" "$1"; }
JTI=$(jti_of "$TV")
AA=(-H "Authorization: Bearer $TA")
expect 200 "a token works before it is revoked" -H "Authorization: Bearer $TV" "$U/v1/apps"
expect 403 "revoking needs admin:revoke" "${A[@]}" -d "{\"kind\":\"token\",\"id\":\"$JTI\"}" "$U/v1/revocations"
grep -q insufficient_scope "$WORK/body" && ok "403 says insufficient_scope" || fail "403 body: $(cat "$WORK/body")"
expect 401 "revoking needs a token" -d "{\"kind\":\"token\",\"id\":\"$JTI\"}" "$U/v1/revocations"
expect 400 "revocation: not JSON" "${AA[@]}" -d 'nope' "$U/v1/revocations"
expect 400 "revocation: no body" "${AA[@]}" -X POST "$U/v1/revocations"
expect 400 "revocation: a JSON array" "${AA[@]}" -d '[]' "$U/v1/revocations"
expect 400 "revocation: bad kind" "${AA[@]}" -d '{"kind":"user","id":"x"}' "$U/v1/revocations"
expect 400 "revocation: no id" "${AA[@]}" -d '{"kind":"token"}' "$U/v1/revocations"
expect 400 "revocation: empty id" "${AA[@]}" -d '{"kind":"token","id":""}' "$U/v1/revocations"
expect 400 "revocation: id not a string" "${AA[@]}" -d '{"kind":"token","id":5}' "$U/v1/revocations"
expect 400 "revocation: reason not a string" "${AA[@]}" -d "{\"kind\":\"token\",\"id\":\"$JTI\",\"reason\":1}" "$U/v1/revocations"
expect 200 "the token still works after refused revocations" -H "Authorization: Bearer $TV" "$U/v1/apps"
clicheck 2 "token revoke without an id" token revoke --token "$TA"
clicheck 1 "token revoke with a non-admin token" token revoke --token-id "$JTI"
grep -q "403" "$WORK/cli.err" && ok "non-admin revoke says 403" || fail "non-admin revoke said: $(cat "$WORK/cli.err")"
clicheck 0 "token revoke --token-id" token revoke --token "$TA" --token-id "$JTI" --reason "leaked in a test"
grep -q "token $JTI revoked" "$WORK/cli.out" && ok "revoke printed the id" || fail "revoke printed: $(cat "$WORK/cli.out")"
expect 401 "a revoked token is refused at once" -H "Authorization: Bearer $TV" "$U/v1/apps"
grep -q '"error":"token_revoked"' "$WORK/body" && ok "401 says token_revoked" || fail "revoked body: $(cat "$WORK/body")"
clicheck 0 "token revoke again" token revoke --token "$TA" --token-id "$JTI"
grep -q "already revoked" "$WORK/cli.out" && ok "a second revoke appends nothing" || fail "second revoke printed: $(cat "$WORK/cli.out")"
clicheck 0 "token revoke --key-id (an unknown key)" token revoke --token "$TA" --key-id "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
expect 200 "events: one credential_revoked per revocation" "${A[@]}" "$U/v1/events?type=credential_revoked"
nrev=$(python3 -c "import json,sys; a=json.load(open(sys.argv[1])); print(len(a), a[0]['payload']['reason'], a[0]['actor'])" "$WORK/body")
[ "$nrev" = "2 leaked in a test user:acme" ] && ok "revocations are events with reason and actor" || fail "revocation events: $nrev"
expect 400 "events?type= with a bad type" "${A[@]}" "$U/v1/events?type=Bad-Type"

# ---- tabbify events against the node (--server, or TABBIFY_SERVER without --state-dir) ----
"$CLI" events --state-dir "$WORK/state" >"$WORK/ev.local" 2>&1 || fail "local events: $(cat "$WORK/ev.local")"
clicheck 0 "events (remote through TABBIFY_SERVER)" events
cmp -s "$WORK/cli.out" "$WORK/ev.local" && ok "remote events print exactly what local ones do" \
  || fail "remote and local events differ: $(diff "$WORK/ev.local" "$WORK/cli.out" | head -5)"
"$CLI" events --state-dir "$WORK/state" --json --from 3 --type version_uploaded >"$WORK/ev.local" 2>&1
clicheck 0 "events --server --json --from 3 --type version_uploaded" events --server "$U" --json --from 3 --type version_uploaded
cmp -s "$WORK/cli.out" "$WORK/ev.local" && [ -s "$WORK/ev.local" ] && ok "remote --json --type matches local" \
  || fail "remote and local --json differ: $(diff "$WORK/ev.local" "$WORK/cli.out" | head -5)"
clicheck 2 "events --server with --state-dir" events --server "$U" --state-dir "$WORK/state"
clicheck 2 "events --server --verify" events --server "$U" --verify
clicheck 1 "events --server with a token without events:read" events --server "$U" --token "$TR"
HEAD=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['offset'])" <(curl -s "$U/health"))
(cli events --follow --from $((HEAD + 1)) >"$WORK/ev.follow" 2>&1) &
FOLLOW_PID=$!
sleep 0.4
clicheck 0 "token revoke while following" token revoke --token "$TA" --token-id follow-test
sleep 1.2
kill "$FOLLOW_PID" 2>/dev/null; wait "$FOLLOW_PID" 2>/dev/null
grep -q "credential_revoked .*follow-test" "$WORK/ev.follow" && [ "$(wc -l <"$WORK/ev.follow")" = 1 ] \
  && ok "events --follow polls the node" || fail "events --follow printed: $(cat "$WORK/ev.follow")"

# ---- large uploads run on the threadpool: /health answers while they are in progress ----
ID2=$(new_uuid7)
expect 201 "register a second app" "${A[@]}" -d "{\"app\":{\"id\":\"$ID2\",\"name\":\"big\"},\"runtime\":{\"type\":\"wasm-http\"}}" "$U/v1/apps"
head -c 4000000 /dev/urandom >"$WORK/big4.bin"
SHA4=$(sha256sum "$WORK/big4.bin" | cut -c1-64)
UP_PIDS=()
for v in 1 2 3; do
  rate=(); [ "$v" != 1 ] && rate=(--limit-rate 2M)
  curl -s -o /dev/null -w '%{http_code}' "${rate[@]}" "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA4" \
    --data-binary @"$WORK/big4.bin" "$U/v1/apps/$ID2/versions/$v" >"$WORK/upcode$v" &
  UP_PIDS+=($!)
done
sleep 0.2
busy=0 slowest=0
for _ in $(seq 10); do
  [ -n "$(find "$WORK/state/artifacts/tmp" -type f)" ] && busy=$((busy + 1))
  t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "$U/health")
  [ "${t% *}" = 200 ] || fail "GET /health during uploads answered ${t% *}"
  slowest=$(python3 -c "print(max($slowest, ${t#* }))")
  sleep 0.1
done
for p in "${UP_PIDS[@]}"; do wait "$p"; done
[ "$busy" -gt 0 ] && ok "uploads were in progress during $busy of 10 health checks" || fail "no upload was in progress while checking /health"
python3 -c "import sys; sys.exit(0 if $slowest < 1.0 else 1)" && ok "GET /health answered within ${slowest}s during large uploads" \
  || fail "GET /health took ${slowest}s during large uploads"
[ "$(cat "$WORK/upcode1" "$WORK/upcode2" "$WORK/upcode3")" = "201201201" ] && ok "three 4 MB uploads at once stored" \
  || fail "concurrent uploads answered $(cat "$WORK/upcode1") $(cat "$WORK/upcode2") $(cat "$WORK/upcode3")"
for v in 1 2 3; do cmp -s "$WORK/big4.bin" "$WORK/state/artifacts/apps/$ID2/v$v/artifact" || fail "v$v of the big app differs"; done

curl -s -o /dev/null --limit-rate 1M "${A[@]}" -X PUT -H "X-Content-SHA256: $SHA4" \
  --data-binary @"$WORK/big4.bin" "$U/v1/apps/$ID2/versions/4" &
CURL_PID=$!
sleep 0.5
kill "$CURL_PID" 2>/dev/null; wait "$CURL_PID" 2>/dev/null
sleep 0.5
[ -z "$(find "$WORK/state/artifacts/tmp" -type f)" ] && [ ! -e "$WORK/state/artifacts/apps/$ID2/v4" ] \
  && ok "a client gone mid-upload leaves nothing behind" || fail "left after the client went away: $(find "$WORK/state/artifacts/tmp" "$WORK/state/artifacts/apps/$ID2" -type f)"
expect 200 "the node still answers after that" "$U/health"

# ---- SIGKILL mid-upload: nothing acknowledged is lost, no partial artifact is visible ----
head -c 3000000 /dev/urandom >"$WORK/v3.bin"
curl -s -o /dev/null "${A[@]}" -X PUT -H "X-Content-SHA256: $(sha256sum "$WORK/v3.bin" | cut -c1-64)" \
  --limit-rate 500K --data-binary @"$WORK/v3.bin" "$U/v1/apps/$ID/versions/3" &
CURL_PID=$!
sleep 1
parts=$(find "$WORK/state/artifacts/tmp" -type f | wc -l)
[ "$parts" = 1 ] && ok "upload in progress in tmp/" || fail "expected one temporary file, found $parts"
kill -9 "$NODE_PID"; wait "$NODE_PID" 2>/dev/null
kill "$CURL_PID" 2>/dev/null; wait "$CURL_PID" 2>/dev/null
start_node
expect 200 "after restart: get app" "${A[@]}" "$U/v1/apps/$ID"
vs=$(python3 -c "import json,sys; print(' '.join(str(v['version']) for v in json.load(open(sys.argv[1]))['versions']))" "$WORK/body")
[ "$vs" = "1 2" ] && ok "acknowledged versions survive a SIGKILL" || fail "versions after restart: [$vs]"
cmp -s "$WORK/v1.bin" "$WORK/state/artifacts/apps/$ID/v1/artifact" && ok "v1 intact after SIGKILL" || fail "v1 damaged"
[ -z "$(find "$WORK/state/artifacts/tmp" -type f)" ] && [ ! -e "$WORK/state/artifacts/apps/$ID/v3" ] \
  && ok "no partial upload visible after restart" || fail "partial upload left: $(find "$WORK/state/artifacts" -type f)"
expect 201 "v3 can be uploaded after the restart" "${A[@]}" -X PUT -H "X-Content-SHA256: $(sha256sum "$WORK/v3.bin" | cut -c1-64)" \
  --data-binary @"$WORK/v3.bin" "$U/v1/apps/$ID/versions/3"

curl -s -N "${A[@]}" "$U/v1/apps/$ID/logs?follow=1" >"$WORK/follow2" &
CURL_PID=$!
sleep 0.3
start=$(date +%s%N)
kill "$NODE_PID"; wait "$NODE_PID"; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 0 ] && [ "$ms" -lt 2000 ] && ok "SIGTERM stops the node cleanly in ${ms} ms with a follower open" \
  || fail "node exited with $rc on SIGTERM after ${ms} ms"
wait "$CURL_PID"; rc=$?
[ "$rc" = 0 ] && ok "the follower's stream ended properly" || fail "curl following the log exited $rc"
NODE_PID=
echo "$FAILS failure(s)"
[ "$FAILS" = 0 ]
