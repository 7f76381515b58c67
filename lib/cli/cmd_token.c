/*
 * cmd_token.c — `tabbify token create`: mints an API token with the node's signing key.
 *
 *   tabbify token create --tenant T --scope S [--scope S...] [--ttl SECONDS]
 *                        [--subject NAME] [--key-file FILE | --state-dir DIR]
 *
 * A local operation: it reads the key file the node created at first start
 * (<state dir>/node.key, the state directory found as `tabbify events` finds it) and
 * prints the token on stdout. It never creates a key: a missing file is an error, so a
 * token can only come from the key a node trusts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tb/alloc.h"
#include "tb/auth.h"

static int key_path(const char *dir_flag, char *out, size_t cap) {
  const char *env = getenv("TABBIFY_STATE_DIR"), *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  if (dir_flag) return snprintf(out, cap, "%s/node.key", dir_flag), 0;
  if (env && *env) return snprintf(out, cap, "%s/node.key", env), 0;
  if (xdg && *xdg) return snprintf(out, cap, "%s/tabbify/node.key", xdg), 0;
  if (home && *home) return snprintf(out, cap, "%s/.local/state/tabbify/node.key", home), 0;
  return -1;
}

int tb__cli_token(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "create") != 0)
    return tb__cli_fail(2, "usage: tabbify token create --tenant T --scope S... [--ttl SECONDS] [--subject NAME] "
                           "[--key-file FILE | --state-dir DIR]");
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
