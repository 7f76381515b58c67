/*
 * api_client.c — how the CLI's API commands reach a node: the server URL and token
 * (--server/--token, else $TABBIFY_SERVER/$TABBIFY_TOKEN, else server/token in
 * ~/.config/tabbify/config.toml, else http://127.0.0.1:8090 and no token), and blocking
 * requests with libcurl.
 *
 * Why libcurl and not lib/http's client: a CLI command makes one or two requests and
 * waits for them; libcurl gives that blocking shape, upload from a FILE* with a known
 * length, and a progress callback for free, where lib/http's client would need a libuv
 * loop, a body-source callback and a state machine per command. The node side keeps
 * using lib/http; curl is what the integration tests drive it with anyway.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"
#include "tb/curl.h"
#include "tb/alloc.h"
#include "tb/base64.h"
#include "tb/json.h"
#include "tb/toml.h"

static void config_file(tb__cli_api_t *api) {
  const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
  char path[1024];
  if (xdg && *xdg) snprintf(path, sizeof path, "%s/tabbify/config.toml", xdg);
  else if (home && *home) snprintf(path, sizeof path, "%s/.config/tabbify/config.toml", home);
  else return;
  FILE *f = fopen(path, "rb");
  if (!f) return;
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  if (tb_toml_parse(buf, n, &doc, &err) != 0) {
    fprintf(stderr, "tabbify: ignoring %s: line %u: %s.\n", path, err.line, err.msg);
    return;
  }
  const tb_toml_value_t *root = tb_toml_root(doc), *v;
  if (!api->server[0] && (v = tb_toml_get(root, "server")) && tb_toml_type(v) == TB_TOML_STRING)
    snprintf(api->server, sizeof api->server, "%s", tb_toml_str(v, NULL));
  if (!api->token && (v = tb_toml_get(root, "token")) && tb_toml_type(v) == TB_TOML_STRING)
    api->token = tb_strdup(tb_toml_str(v, NULL));
  tb_toml_free(doc);
}

int tb__cli_api_init(tb__cli_api_t *api, int *argc, char **argv) {
  memset(api, 0, sizeof *api);
  /* Take --server and --token out of argv so commands see only their own flags. */
  int w = 1;
  for (int i = 1; i < *argc; i++) {
    if ((strcmp(argv[i], "--server") == 0 || strcmp(argv[i], "--token") == 0) && i + 1 < *argc) {
      if (argv[i][2] == 's') snprintf(api->server, sizeof api->server, "%s", argv[i + 1]);
      else api->token = tb_strdup(argv[i + 1]);
      i++;
      continue;
    }
    argv[w++] = argv[i];
  }
  *argc = w;
  const char *es = getenv("TABBIFY_SERVER"), *et = getenv("TABBIFY_TOKEN");
  if (!api->server[0] && es && *es) snprintf(api->server, sizeof api->server, "%s", es);
  if (!api->token && et && *et) api->token = tb_strdup(et);
  if (!api->server[0] || !api->token) config_file(api);
  if (!api->server[0]) snprintf(api->server, sizeof api->server, "http://127.0.0.1:8090");
  size_t n = strlen(api->server);
  while (n > 0 && api->server[n - 1] == '/') api->server[--n] = 0;
  /* libcurl is loaded here, by the commands that talk to a node, and by no others. */
  if (tb_curl_load(NULL) == 0) tb_curl.curl_global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

void tb__cli_api_deinit(tb__cli_api_t *api) {
  tb_free(api->token);
  if (tb_curl_load(NULL) == 0) tb_curl.curl_global_cleanup();
}

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
  tb_buf_t *b = ud;
  return tb_buf_append(b, p, sz * n) == 0 ? sz * n : 0;
}

static size_t to_stdout(char *p, size_t sz, size_t n, void *ud) {
  (void)ud;
  size_t w = fwrite(p, sz, n, stdout);
  fflush(stdout);
  return w * sz;
}

static int progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)ud, (void)dltotal, (void)dlnow;
  if (ultotal > 0) fprintf(stderr, "\r  uploading %3d%% (%lld / %lld bytes)", (int)(ulnow * 100 / ultotal),
                           (long long)ulnow, (long long)ultotal);
  return 0;
}

int tb__cli_api_call(tb__cli_api_t *api, const char *method, const char *path, const tb__cli_body_t *body,
                     long *status, json_t **out) {
  char why[256];
  tb_errbuf_t eb = {why, sizeof why};
  if (tb_curl_load(&eb) != 0) return tb__cli_fail(1, "%s.", why);
  CURL *c = tb_curl.curl_easy_init();
  if (!c) return tb__cli_fail(1, "cannot start an HTTP client.");
  char url[2048], auth[8300], sha[100], *mh = NULL;
  snprintf(url, sizeof url, "%s%s", api->server, path);
  tb_buf_t resp;
  tb_buf_init(&resp, TB_BUF_DEFAULT_MAX);
  struct curl_slist *h = NULL;
  if (api->token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", api->token);
    h = tb_curl.curl_slist_append(h, auth);
  }
  tb_curl.curl_easy_setopt(c, CURLOPT_URL, url);
  tb_curl.curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  tb_curl.curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  if (body && body->file) {
    snprintf(sha, sizeof sha, "X-Content-SHA256: %s", body->sha256);
    h = tb_curl.curl_slist_append(h, sha);
    h = tb_curl.curl_slist_append(h, "Content-Type: application/octet-stream");
    if (body->manifest) {
      size_t ml = strlen(body->manifest);
      mh = tb_malloc(sizeof "X-Tabbify-Manifest: " + (ml + 2) / 3 * 4 + 1);
      if (mh) {
        size_t k = (size_t)sprintf(mh, "X-Tabbify-Manifest: ");
        mh[k + tb_base64url_encode(body->manifest, ml, mh + k)] = 0;
        h = tb_curl.curl_slist_append(h, mh);
      }
    }
    tb_curl.curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    tb_curl.curl_easy_setopt(c, CURLOPT_READDATA, body->file);
    tb_curl.curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body->file_size);
    if (isatty(STDERR_FILENO)) {
      tb_curl.curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      tb_curl.curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    }
  } else if (body && body->json) {
    h = tb_curl.curl_slist_append(h, "Content-Type: application/json");
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->json);
  } else if (strcmp(method, "POST") == 0) {
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  tb_curl.curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (!out) tb_curl.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, to_stdout);
  else {
    tb_curl.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    tb_curl.curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
  }
  CURLcode cc = tb_curl.curl_easy_perform(c);
  if (body && body->file && isatty(STDERR_FILENO)) fputc('\n', stderr);
  int rc = 0;
  if (cc != CURLE_OK) {
    rc = tb__cli_fail(1, "cannot reach the node at %s: %s.", api->server, tb_curl.curl_easy_strerror(cc));
    goto out;
  }
  tb_curl.curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  if (out) {
    *out = NULL;
    if (resp.len > 0 && tb_json_parse((const char *)resp.data, resp.len, out, NULL) != 0) *out = NULL;
    if (*status >= 400) {
      const char *msg = json_string_value(json_object_get(*out, "message"));
      rc = tb__cli_fail(1, "the node refused (%ld): %s%s", *status, msg ? msg : "no reason given",
                        msg && msg[strlen(msg) - 1] == '.' ? "" : ".");
      json_decref(*out);
      *out = NULL;
    }
  } else if (*status >= 400) {
    rc = tb__cli_fail(1, "the node answered %ld.", *status);
  }
out:
  tb_curl.curl_slist_free_all(h);
  tb_free(mh);
  tb_curl.curl_easy_cleanup(c);
  tb_buf_deinit(&resp);
  return rc;
}

int tb__cli_app_id(const char *flag, const char *manifest_path, char id[TB_UUID_STR_LEN + 1]) {
  tb_uuid_t u;
  if (flag) {
    if (tb_uuid_parse(flag, strlen(flag), &u) != 0) return tb__cli_fail(2, "\"%s\" is not an app UUID.", flag);
    tb_uuid_format(&u, id);
    return 0;
  }
  const char *path = manifest_path ? manifest_path : "tabbify.toml";
  tb_manifest_t *m = NULL;
  tb_diags_t d;
  tb_diags_init(&d);
  int rc = tb_manifest_load(path, &m, &d);
  tb_diags_deinit(&d);
  if (rc != 0) return tb__cli_fail(2, "no --app given and %s cannot be read; run this in the app's directory.", path);
  bool has = m->app.has_id;
  if (has) tb_uuid_format(&m->app.id, id);
  tb_manifest_free(m);
  if (!has) return tb__cli_fail(2, "%s has no [app] id yet; run `tabbify push` first.", path);
  return 0;
}
