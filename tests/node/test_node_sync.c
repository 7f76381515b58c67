/*
 * test_node_sync.c — the node learns from events it did not append itself: a token
 * revoked by a credential_revoked event in the log is refused (401 token_revoked), both
 * when the event was there before the node started and when another writer appends it
 * while the node runs (the node's sync timer picks it up); a supervisor_registered event
 * appended by another writer shows in GET /v1/supervisors. The node runs in-process on
 * its own loop thread; requests go through the curl binary, as a client would send them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "tb/alloc.h"
#include "tb/auth.h"
#include "tb/eventlog.h"
#include "tb/node.h"

typedef struct harness {
  char dir[64];
  uv_loop_t loop;
  uv_async_t stop;
  tb_node_t *node;
  int port;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready;
} harness_t;

static void on_stop(uv_async_t *a) {
  harness_t *h = a->data;
  uv_close((uv_handle_t *)a, NULL);
  tb_node_close(h->node, NULL, NULL);
}

static void *loop_main(void *ud) {
  harness_t *h = ud;
  uv_loop_init(&h->loop);
  uv_async_init(&h->loop, &h->stop, on_stop);
  h->stop.data = h;
  tb_node_config_t cfg = {.listen = "127.0.0.1:0", .state_dir = h->dir};
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc = tb_node_new(&h->loop, &cfg, &h->node, &eb);
  if (rc != 0) fprintf(stderr, "tb_node_new: %s\n", msg);
  pthread_mutex_lock(&h->mu);
  h->port = rc == 0 ? tb_node_port(h->node) : -1;
  h->ready = true;
  pthread_cond_signal(&h->cv);
  pthread_mutex_unlock(&h->mu);
  if (rc == 0) uv_run(&h->loop, UV_RUN_DEFAULT);
  uv_loop_close(&h->loop);
  return NULL;
}

static void append_event(const char *dir, const char *type, json_t *payload) {
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.state_dir = dir;
  tb_eventlog_t *log = NULL;
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_eventlog_open(&o, &log, &eb), 0);
  char *text = json_dumps(payload, JSON_COMPACT);
  tb_event_t ev = {.type = type, .schema = 1, .actor = "test", .payload = text, .payload_len = strlen(text)};
  int rc = tb_eventlog_append(log, &ev, NULL, &eb);
  if (rc != 0) fprintf(stderr, "append: %s\n", msg);
  assert_int_equal(rc, 0);
  free(text);
  json_decref(payload);
  tb_eventlog_close(log);
}

/* GET `path` with `token`; returns the status and leaves the body in `body`. */
static int get(int port, const char *path, const char *token, char *body, size_t cap) {
  char cmd[12000];
  snprintf(cmd, sizeof cmd, "%s -s -w '\\n%%{http_code}' -H 'Authorization: Bearer %s' http://127.0.0.1:%d%s", TN_CURL,
           token, port, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(body, 1, cap - 1, p);
  body[n] = 0;
  pclose(p);
  char *nl = strrchr(body, '\n');
  if (!nl) return -1;
  *nl = 0;
  return atoi(nl + 1);
}

static char *mint(tb_auth_key_t *key, char jti[TB_AUTH_JTI_MAX]) {
  const char *scopes[] = {"*"};
  tb_auth_token_spec_t spec = {.subject = "t", .tenant = "acme", .scopes = scopes, .nscopes = 1, .ttl_s = 3600};
  char *tok = NULL;
  assert_int_equal(tb_auth_token_create(key, &spec, &tok, jti, NULL), 0);
  return tok;
}

static void test_sync(void **state) {
  (void)state;
  harness_t h = {0};
  snprintf(h.dir, sizeof h.dir, "/tmp/tb-node-sync.XXXXXX");
  assert_non_null(mkdtemp(h.dir));
  char keyfile[128];
  snprintf(keyfile, sizeof keyfile, "%s/node.key", h.dir);
  tb_auth_key_t *key = NULL;
  assert_int_equal(tb_auth_key_load_or_create(keyfile, &key, NULL, NULL), 0);
  char jti_a[TB_AUTH_JTI_MAX], jti_b[TB_AUTH_JTI_MAX], jti_c[TB_AUTH_JTI_MAX];
  char *a = mint(key, jti_a), *b = mint(key, jti_b), *c = mint(key, jti_c);
  append_event(h.dir, TB_AUTH_EVENT_REVOKED, tb_auth_revocation_event("token", jti_a, "before start"));

  pthread_mutex_init(&h.mu, NULL);
  pthread_cond_init(&h.cv, NULL);
  assert_int_equal(pthread_create(&h.th, NULL, loop_main, &h), 0);
  pthread_mutex_lock(&h.mu);
  while (!h.ready) pthread_cond_wait(&h.cv, &h.mu);
  pthread_mutex_unlock(&h.mu);
  assert_true(h.port > 0);

  char body[8192];
  int st = get(h.port, "/v1/apps", a, body, sizeof body);
  if (st != 401 || !strstr(body, "token_revoked")) fail_msg("revoked before start: expected 401 token_revoked, got %d %s", st, body);
  st = get(h.port, "/v1/apps", b, body, sizeof body);
  if (st != 200) fail_msg("good token: expected 200, got %d %s", st, body);

  /* Another writer appends while the node runs. */
  append_event(h.dir, TB_AUTH_EVENT_REVOKED, tb_auth_revocation_event("token", jti_b, "while running"));
  append_event(h.dir, "supervisor_registered",
               json_pack("{s:s, s:s, s:s, s:[s]}", "supervisor", "01a20000-0000-7000-8000-000000000001", "name",
                         "outside", "address", "::1", "tags", "wasm-http"));
  usleep(600 * 1000); /* more than two sync periods */
  st = get(h.port, "/v1/apps", b, body, sizeof body);
  if (st != 401 || !strstr(body, "token_revoked")) fail_msg("revoked while running: expected 401, got %d %s", st, body);
  st = get(h.port, "/v1/supervisors", c, body, sizeof body);
  if (st != 200 || !strstr(body, "\"display_name\":\"outside\"")) fail_msg("supervisors: got %d %s", st, body);

  uv_async_send(&h.stop);
  pthread_join(h.th, NULL);
  tb_free(a), tb_free(b), tb_free(c);
  tb_auth_key_free(key);
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf %s", h.dir);
  assert_int_equal(system(rm), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_sync)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
