/*
 * client.c — opening a connection to the Docker daemon: ping, version negotiation,
 * cancellation (include/tb/docker.h).
 *
 * The API version is settled once per handle: min(the daemon's ApiVersion — from the
 * ping's Api-Version header, else GET /version — and TB_DOCKER_API_MAX), refused below
 * TB_DOCKER_API_MIN. Every later path carries it
 * (/v1.41/...), so a newer daemon answers in the shapes this code was written against.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "docker_int.h"
#include "tb/alloc.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void) { global_rc = tb_curl.curl_global_init(CURL_GLOBAL_DEFAULT); }

/* "1.41" -> 1041; -1 when it is not MAJOR.MINOR. */
static long api_number(const char *v) {
  char *end;
  long major = strtol(v, &end, 10);
  if (end == v || *end != '.') return -1;
  const char *m = end + 1;
  long minor = strtol(m, &end, 10);
  if (end == m || *end != '\0' || major < 0 || minor < 0 || minor > 999) return -1;
  return major * 1000 + minor;
}

/* GET /_ping; its Api-Version and Server headers go to api/server when given. */
static int ping(tb_docker_t *d, char *api, size_t api_cap, char *server, size_t server_cap, tb_errbuf_t *eb) {
  tb_buf_t answer;
  tb_buf_init(&answer, 4096);
  tb__docker_req_t r = {.method = "GET", .path = "/_ping", .what = "answer a ping", .answer = &answer,
                        .timeout_s = 10};
  int rc = tb__docker_do(d, &r, eb);
  if (api) snprintf(api, api_cap, "%s", r.api_version);
  if (server) snprintf(server, server_cap, "%s", r.server);
  if (rc == 0 && strcmp(tb_buf_cstr(&answer), "OK") != 0) {
    rc = tb_errf(eb, TB_EIO, "the program at %s answered a ping with \"%.40s\", not as a Docker daemon does",
                 d->socket, tb_buf_cstr(&answer));
  }
  tb_buf_deinit(&answer);
  return rc;
}

int tb_docker_ping(tb_docker_t *d, tb_errbuf_t *eb) { return ping(d, NULL, 0, NULL, 0, eb); }

/* The API version every later path carries: min(the daemon's, ours); below ours refused. */
static int settle(tb_docker_t *d, const char *api, tb_errbuf_t *eb) {
  long have = api_number(api);
  if (have < 0) return tb_errf(eb, TB_EPARSE, "the Docker daemon at %s did not say which API version it speaks", d->socket);
  if (have < api_number(TB_DOCKER_API_MIN))
    return tb_errf(eb, TB_EUNSUPPORTED, "the Docker daemon at %s speaks API %s (Docker %s), Tabbify needs %s or newer",
                   d->socket, api, d->daemon, TB_DOCKER_API_MIN);
  snprintf(d->api, sizeof d->api, "%s", have < api_number(TB_DOCKER_API_MAX) ? api : TB_DOCKER_API_MAX);
  return 0;
}

static int negotiate(tb_docker_t *d, tb_errbuf_t *eb) {
  tb_buf_t answer;
  json_t *v = NULL;
  int rc;
  tb_buf_init(&answer, 1 << 20);
  tb__docker_req_t r = {.method = "GET", .path = "/version", .what = "tell its version", .answer = &answer,
                        .timeout_s = 10};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  char jerr[200];
  if (tb_json_parse((const char *)answer.data, answer.len, &v, &(tb_errbuf_t){jerr, sizeof jerr}) != 0 ||
      !json_is_object(v)) {
    rc = tb_errf(eb, TB_EPARSE, "the program at %s answered GET /version with something that is not a Docker "
                 "version object", d->socket);
    goto out;
  }
  const char *api = json_string_value(json_object_get(v, "ApiVersion"));
  const char *version = json_string_value(json_object_get(v, "Version"));
  snprintf(d->daemon, sizeof d->daemon, "%s", version ? version : "unknown");
  rc = settle(d, api ? api : "", eb);
out:
  json_decref(v);
  tb_buf_deinit(&answer);
  return rc;
}

int tb_docker_open(const char *socket_path, tb_docker_t **out, tb_errbuf_t *eb) {
  tb_docker_t *d = NULL;
  int rc;
  *out = NULL;
  if (socket_path == NULL) socket_path = TB_DOCKER_DEFAULT_SOCKET;
  if ((rc = tb_curl_load(eb)) != 0) return rc; /* libcurl, on first use */
  pthread_once(&global_once, global_init);
  if (global_rc != CURLE_OK) {
    return tb_errf(eb, TB_EINTERNAL, "libcurl failed to initialise: %s", tb_curl.curl_easy_strerror(global_rc));
  }
  if ((d = tb_calloc(1, sizeof *d)) == NULL || (d->socket = tb_strdup(socket_path)) == NULL ||
      (d->curl = tb_curl.curl_easy_init()) == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory opening a connection to the Docker daemon");
    goto out;
  }
  atomic_init(&d->cancelled, 0);
  /* A daemon names its API version in the ping's Api-Version header (and itself in
   * Server: "Docker/20.10.24+dfsg1 (linux)"): then GET /version, ~10 ms on 20.10, is
   * not needed. Without the header, /version says it. */
  char api[16], server[64];
  if ((rc = ping(d, api, sizeof api, server, sizeof server, eb)) != 0) goto out;
  if (api[0] && strncmp(server, "Docker/", 7) == 0) {
    snprintf(d->daemon, sizeof d->daemon, "%.*s", (int)strcspn(server + 7, " "), server + 7);
    rc = settle(d, api, eb);
  } else {
    rc = negotiate(d, eb);
  }
  if (rc != 0) goto out;
  *out = d;
  d = NULL;
out:
  tb_docker_close(d);
  return rc;
}

void tb_docker_close(tb_docker_t *d) {
  if (d == NULL) return;
  if (d->curl) tb_curl.curl_easy_cleanup(d->curl);
  tb_free(d->socket);
  tb_free(d);
}

const char *tb_docker_api_version(const tb_docker_t *d) { return d->api; }
const char *tb_docker_daemon_version(const tb_docker_t *d) { return d->daemon; }

void tb_docker_cancel(tb_docker_t *d) { atomic_store(&d->cancelled, 1); }
