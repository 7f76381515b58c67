/*
 * api_int.h — the CLI's API client, shared by the commands that talk to a node.
 */
#ifndef TB_CLI_API_INT_H
#define TB_CLI_API_INT_H

#include <jansson.h>
#include <stdio.h>

#include "cli_int.h"
#include "tb/manifest.h"
#include "tb/uuid.h"

typedef struct tb__cli_api {
  char server[1024]; /* "http://127.0.0.1:8090", no trailing slash */
  char *token;       /* owned; NULL: none */
} tb__cli_api_t;

/** A request body: JSON text, or a file streamed with its SHA-256 (hex) declared. */
typedef struct tb__cli_body {
  const char *json;
  FILE *file;
  long long file_size;
  const char *sha256;
  const char *manifest;  /* with `file`: the resolved manifest JSON, sent base64url in X-Tabbify-Manifest */
} tb__cli_body_t;

/** Resolves server and token (flags, which it removes from argv; env; config file). */
int tb__cli_api_init(tb__cli_api_t *api, int *argc, char **argv);
void tb__cli_api_deinit(tb__cli_api_t *api);

/**
 * One blocking request. With `out`, a JSON answer is parsed into *out (new reference, or
 * NULL); without, the body goes to stdout as it arrives. Returns 0 for a 2xx/3xx answer, or
 * prints one sentence (the node's "message") and returns the exit status 1.
 */
int tb__cli_api_call(tb__cli_api_t *api, const char *method, const char *path, const tb__cli_body_t *body,
                     long *status, json_t **out);

/** The app id: --app UUID, else [app] id of `manifest_path` (default ./tabbify.toml). */
int tb__cli_app_id(const char *flag, const char *manifest_path, char id[TB_UUID_STR_LEN + 1]);

#endif /* TB_CLI_API_INT_H */
