/*
 * cmd_token.c — `tabbify token create` mints an API token with the node's signing key;
 * `tabbify token revoke` revokes one (or every token of a key) through the node's API.
 *
 *   tabbify token create --tenant T --scope S [--scope S...] [--ttl SECONDS]
 *                        [--subject NAME] [--key-file FILE | --state-dir DIR]
 *   tabbify token revoke --token-id JTI | --key-id KID [--reason TEXT] [--server URL] [--token T]
 *
 * create is a local operation: it reads the key file the node created at first start
 * (<state dir>/node.key, the state directory found as `tabbify events` finds it) and
 * prints the token on stdout. It never creates a key: a missing file is an error, so a
 * token can only come from the key a node trusts.
 *
 * revoke calls POST /v1/revocations (scope admin:revoke), which appends the
 * credential_revoked event; the node refuses the token from its next request on. Server
 * and token are found as for every API command (api_client.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "tb/alloc.h"
#include "tb/auth.h"

static int key_path(const char *dir_flag, char *out, size_t cap) {
  char buf[900];
  snprintf(out, cap, "%s/node.key", tb__cli_state_dir(dir_flag, buf, sizeof buf));
  return 0;
}

static int token_revoke(int argc, char **argv) {
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
  const char *kind = NULL, *id = NULL, *reason = NULL;
  int rc = 0;
  for (int i = 2; i < argc && rc == 0; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) rc = tb__cli_fail(2, "%s needs a value.", a);
    else if (strcmp(a, "--token-id") == 0 || strcmp(a, "--key-id") == 0) {
      if (id) rc = tb__cli_fail(2, "token revoke takes one --token-id or --key-id.");
      kind = a[2] == 't' ? "token" : "key", id = v;
    } else if (strcmp(a, "--reason") == 0) reason = v;
    else rc = tb__cli_fail(2, "unknown option %s for token revoke.", a);
  }
  if (rc == 0 && !id) rc = tb__cli_fail(2, "token revoke needs --token-id JTI or --key-id KID.");
  json_t *body = rc == 0 ? json_pack("{s:s, s:s}", "kind", kind, "id", id) : NULL;
  if (body && reason) json_object_set_new(body, "reason", json_string(reason));
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (rc == 0 && !text) rc = tb__cli_fail(1, "out of memory.");
  if (rc == 0) {
    tb__cli_body_t b = {.json = text};
    long st = 0;
    json_t *out = NULL;
    rc = tb__cli_api_call(&api, "POST", "/v1/revocations", &b, &st, &out);
    if (rc == 0) printf("%s %s %s\n", kind, id, st == 201 ? "revoked" : "was already revoked");
    json_decref(out);
  }
  free(text);
  tb__cli_api_deinit(&api);
  return rc;
}

int tb__cli_token(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "revoke") == 0) return token_revoke(argc, argv);
  if (argc < 2 || strcmp(argv[1], "create") != 0)
    return tb__cli_fail(2, "usage: tabbify token create --tenant T --scope S... [--ttl SECONDS] [--subject NAME] "
                           "[--key-file FILE | --state-dir DIR]\n"
                           "       tabbify token revoke --token-id JTI | --key-id KID [--reason TEXT]");
  const char *tenant = NULL, *subject = NULL, *key_file = NULL, *dir = NULL;
  const char *scopes[64];
  size_t nscopes = 0;
  int64_t ttl = 24 * 3600;
  for (int i = 2; i < argc; i += 2) { /* every option takes a value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return tb__cli_fail(2, "%s needs a value.", a);
    if (strcmp(a, "--tenant") == 0) tenant = v;
    else if (strcmp(a, "--subject") == 0) subject = v;
    else if (strcmp(a, "--key-file") == 0) key_file = v;
    else if (strcmp(a, "--state-dir") == 0) dir = v;
    else if (strcmp(a, "--scope") == 0) {
      if (nscopes == 64) return tb__cli_fail(2, "a token may carry at most 64 scopes.");
      scopes[nscopes++] = v;
    }
    else if (strcmp(a, "--ttl") == 0) {
      char *end;
      ttl = strtoll(v, &end, 10);
      if (*end || ttl < 1) return tb__cli_fail(2, "--ttl must be a number of seconds, not \"%s\".", v);
    } else
      return tb__cli_fail(2, "unknown option %s for token create.", a);
  }
  if (!tenant) return tb__cli_fail(2, "token create needs --tenant.");
  if (nscopes == 0) return tb__cli_fail(2, "token create needs at least one --scope (e.g. apps:*).");
  char path[1024];
  if (key_file) snprintf(path, sizeof path, "%s", key_file);
  else if (key_path(dir, path, sizeof path) != 0) return tb__cli_fail(2, "no key file: give --key-file or --state-dir.");
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_auth_key_t *key = NULL;
  int rc = tb_auth_key_load(path, &key, &eb);
  if (rc != 0) return tb__cli_fail(1, "%s.", msg[0] ? msg : tb_strerror(rc));
  tb_auth_token_spec_t spec = {.subject = subject ? subject : tenant, .tenant = tenant, .scopes = scopes,
                               .nscopes = nscopes, .ttl_s = ttl};
  char *tok = NULL;
  rc = tb_auth_token_create(key, &spec, &tok, NULL, &eb);
  tb_auth_key_free(key);
  if (rc != 0) return tb__cli_fail(2, "%s.", msg[0] ? msg : tb_strerror(rc));
  puts(tok);
  tb_free(tok);
  return 0;
}
