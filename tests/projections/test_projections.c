/*
 * test_projections.c — what events do to the read side, and what the node can ask it:
 * a whole app life cycle through the queries, the rules of applying (order, unknown
 * types, newer schemas, bad payloads), snapshots that restore exactly what replay builds
 * and are refused when they do not match the log, and secret values that never appear in
 * clear in the log, a snapshot or a log line.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evtest.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/log.h"
#include "tb/projections.h"
#include "tb/secretbox.h"
#include "test.h"
#include "workload.h"

/* ---- Building events by hand. ---- */

static uint64_t next_off;

static tb_event_t ev_of(const char *type, const char *payload) {
  uint64_t off = ++next_off;
  tb_event_t ev = {.offset = off, .type = type, .schema = 1, .actor = "user:alice", .ts_ns = 1000 + (int64_t)off,
                   .payload = payload, .payload_len = strlen(payload)};
  tb_uuid_v7_new(&ev.id);
  return ev;
}

static void apply_ok(tb_projections_t *p, const char *type, const char *payload) {
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_event_t ev = ev_of(type, payload);
  int rc = tb_projections_apply(p, &ev, &eb);
  if (rc) fail_msg("%s: %s (%s)", type, msg, tb_err_name(rc));
}

static const char *S(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static long long I(json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

#define APP "0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887"
#define APP2 "0192e4c4-7b5e-7a8c-9d2f-3c4b5a697888"
#define DEP1 "0192e4c4-7b5e-7a8c-9d2f-000000000001"
#define DEP2 "0192e4c4-7b5e-7a8c-9d2f-000000000002"
#define DEP3 "0192e4c4-7b5e-7a8c-9d2f-000000000003"
#define SUP "0192e4c4-7b5e-7a8c-9d2f-5555555555a1"
#define SUP2 "0192e4c4-7b5e-7a8c-9d2f-5555555555a2"
#define RUN1 "0192e4c4-7b5e-7a8c-9d2f-777777777701"
#define RUN2 "0192e4c4-7b5e-7a8c-9d2f-777777777702"
#define TOK "0192e4c4-7b5e-7a8c-9d2f-999999999999"

static tb_uuid_t U(const char *s) {
  tb_uuid_t u;
  assert_int_equal(tb_uuid_parse(s, strlen(s), &u), 0);
  return u;
}

static void test_life_cycle(void **state) {
  tb_projections_t *p = NULL;
  assert_int_equal(tb_projections_new(&p), 0);
  next_off = 0;
  json_t *j = NULL;
  tb_uuid_t app = U(APP);

  apply_ok(p, "supervisor_registered",
           "{\"supervisor\":\"" SUP "\",\"name\":\"laptop\",\"address\":\"fd5a:1f02::1\",\"tags\":[\"home\",\"gpu\"],"
           "\"runtimes\":[\"wasm-http\",\"docker\"]}");
  apply_ok(p, "supervisor_registered",
           "{\"supervisor\":\"" SUP2 "\",\"name\":\"ec2\",\"address\":\"fd5a:1f02::2\",\"tags\":[\"cloud\"],"
           "\"runtimes\":[\"firecracker\"]}");
  apply_ok(p, "app_registered", "{\"app\":\"" APP "\",\"tenant\":\"acme\",\"name\":\"hello\",\"runtime\":\"wasm-http\"}");
  apply_ok(p, "app_registered", "{\"app\":\"" APP2 "\",\"tenant\":\"other\",\"name\":\"x\",\"runtime\":\"docker\"}");
  apply_ok(p, "version_uploaded",
           "{\"app\":\"" APP "\",\"version\":1,\"digest\":\"blake3:aa\",\"size\":10,\"artifact\":\"apps/x/v1/app.wasm\"}");
  apply_ok(p, "version_uploaded",
           "{\"app\":\"" APP "\",\"version\":2,\"digest\":\"blake3:bb\",\"size\":20,\"artifact\":\"apps/x/v2/app.wasm\"}");

  /* Listing by tenant. */
  assert_int_equal(tb_proj_apps_of_tenant(p, "acme", &j), 0);
  assert_int_equal(json_array_size(j), 1);
  assert_string_equal(S(json_array_get(j, 0), "name"), "hello");
  assert_string_equal(S(json_array_get(j, 0), "state"), "registered");
  assert_int_equal(I(json_array_get(j, 0), "latest_version"), 2);
  json_decref(j);

  /* Deploy, place, start. */
  apply_ok(p, "deploy_requested",
           "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"version\":2,\"runtime\":\"wasm-http\",\"tags\":[\"home\"]}");
  assert_int_equal(tb_proj_runner_of(p, &app, &j), TB_ENOTFOUND);
  apply_ok(p, "deployment_placed", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP "\"}");
  apply_ok(p, "app_started",
           "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP "\",\"runner\":\"" RUN1
           "\",\"address\":\"[fd5a:1f02:1:2:3::1]:8730\",\"pid\":4242}");
  assert_int_equal(tb_proj_runner_of(p, &app, &j), 0);
  assert_string_equal(S(j, "address"), "[fd5a:1f02:1:2:3::1]:8730");
  assert_string_equal(S(j, "supervisor"), SUP);
  assert_int_equal(I(j, "pid"), 4242);
  json_decref(j);
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "running");
  assert_int_equal(json_array_size(json_object_get(j, "versions")), 2);
  assert_int_equal(I(json_array_get(json_object_get(j, "versions"), 1), "version"), 2);
  json_t *cd = json_object_get(j, "current_deployment");
  assert_string_equal(S(cd, "deployment"), DEP1);
  assert_string_equal(S(cd, "state"), "running");
  assert_int_equal(I(cd, "version"), 2);
  assert_string_equal(S(json_object_get(j, "current_runner"), "runner"), RUN1);
  json_decref(j);

  /* Supervisors by tag and runtime; heartbeats update them. */
  apply_ok(p, "supervisor_heartbeat", "{\"supervisor\":\"" SUP "\",\"runners\":1,\"cpu_milli\":250,\"mem_free_mb\":900}");
  assert_int_equal(tb_proj_supervisors(p, "gpu", NULL, &j), 0);
  assert_int_equal(json_array_size(j), 1);
  assert_int_equal(I(json_array_get(j, 0), "runners"), 1);
  assert_int_equal(I(json_array_get(j, 0), "last_seen"), 1000 + (long long)next_off);
  json_decref(j);
  assert_int_equal(tb_proj_supervisors(p, NULL, "firecracker", &j), 0);
  assert_int_equal(json_array_size(j), 1);
  assert_string_equal(S(json_array_get(j, 0), "name"), "ec2");
  json_decref(j);
  assert_int_equal(tb_proj_supervisors(p, NULL, NULL, &j), 0);
  assert_int_equal(json_array_size(j), 2);
  json_decref(j);
  apply_ok(p, "supervisor_lost", "{\"supervisor\":\"" SUP2 "\",\"reason\":\"no heartbeat for 60 s\"}");
  assert_int_equal(tb_proj_supervisors(p, "cloud", NULL, &j), 0);
  assert_string_equal(S(json_array_get(j, 0), "state"), "lost");
  json_decref(j);

  /* A crash, then a new deployment that supersedes the crashed one, then a rollback. */
  apply_ok(p, "app_crashed", "{\"app\":\"" APP "\",\"runner\":\"" RUN1 "\",\"exit_code\":3,\"reason\":\"boom\"}");
  assert_int_equal(tb_proj_runner_of(p, &app, &j), TB_ENOTFOUND);
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "crashed");
  assert_true(json_is_null(json_object_get(j, "current_runner")));
  assert_string_equal(S(json_object_get(j, "current_deployment"), "state"), "crashed");
  json_decref(j);
  apply_ok(p, "deploy_requested", "{\"app\":\"" APP "\",\"deployment\":\"" DEP2 "\",\"version\":1}");
  apply_ok(p, "app_started",
           "{\"app\":\"" APP "\",\"deployment\":\"" DEP2 "\",\"supervisor\":\"" SUP "\",\"runner\":\"" RUN2
           "\",\"address\":\"[fd5a::1]:8730\"}");
  apply_ok(p, "rollback_requested",
           "{\"app\":\"" APP "\",\"deployment\":\"" DEP3 "\",\"from_version\":1,\"to_version\":2}");
  tb_uuid_t dep2 = U(DEP2), dep3 = U(DEP3);
  assert_int_equal(tb_proj_deployment(p, &dep2, &j), 0);
  assert_string_equal(S(j, "state"), "superseded");
  json_decref(j);
  assert_int_equal(tb_proj_deployment(p, &dep3, &j), 0);
  assert_int_equal(I(j, "version"), 2);
  assert_int_equal(I(j, "rollback_from"), 1);
  json_decref(j);

  /* Stop: the runner exits afterwards. */
  apply_ok(p, "app_stopped", "{\"app\":\"" APP "\"}");
  apply_ok(p, "runner_exited", "{\"app\":\"" APP "\",\"runner\":\"" RUN2 "\",\"signal\":15}");
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "stopped");
  json_decref(j);

  /* Secrets: listed by name, sealed values only on request. */
  apply_ok(p, "secret_registered",
           "{\"app\":\"" APP "\",\"name\":\"DB\",\"alg\":\"xchacha20poly1305-ietf\",\"key_id\":\"k1\",\"nonce\":\"n1\","
           "\"ciphertext\":\"c1\"}");
  apply_ok(p, "secret_registered",
           "{\"app\":\"" APP "\",\"name\":\"DB\",\"alg\":\"xchacha20poly1305-ietf\",\"key_id\":\"k1\",\"nonce\":\"n2\","
           "\"ciphertext\":\"c2\"}");
  apply_ok(p, "secret_registered",
           "{\"app\":\"" APP "\",\"name\":\"API\",\"alg\":\"xchacha20poly1305-ietf\",\"key_id\":\"k1\",\"nonce\":\"n3\","
           "\"ciphertext\":\"c3\"}");
  assert_int_equal(tb_proj_secrets_of(p, &app, &j), 0);
  assert_int_equal(json_array_size(j), 2);
  assert_string_equal(S(json_array_get(j, 0), "name"), "API");
  assert_int_equal(I(json_array_get(j, 1), "version"), 2);
  assert_null(json_object_get(json_array_get(j, 1), "ciphertext"));
  json_decref(j);
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  char *text = json_dumps(j, 0);
  assert_null(strstr(text, "c2"));
  free(text);
  json_decref(j);
  assert_int_equal(tb_proj_secret(p, &app, "DB", &j), 0);
  assert_string_equal(S(j, "ciphertext"), "c2");
  assert_string_equal(S(j, "nonce"), "n2");
  json_decref(j);
  apply_ok(p, "secret_removed", "{\"app\":\"" APP "\",\"name\":\"DB\"}");
  assert_int_equal(tb_proj_secret(p, &app, "DB", &j), TB_ENOTFOUND);

  /* Tokens. */
  tb_uuid_t tok = U(TOK);
  apply_ok(p, "token_issued", "{\"token\":\"" TOK "\",\"tenant\":\"acme\",\"subject\":\"alice\",\"scopes\":[\"apps\"]}");
  assert_false(tb_proj_token_revoked(p, &tok));
  apply_ok(p, "token_revoked", "{\"token\":\"" TOK "\"}");
  assert_true(tb_proj_token_revoked(p, &tok));

  /* Deleted apps leave the tenant's list but stay answerable. */
  apply_ok(p, "app_deleted", "{\"app\":\"" APP "\"}");
  assert_int_equal(tb_proj_apps_of_tenant(p, "acme", &j), 0);
  assert_int_equal(json_array_size(j), 0);
  json_decref(j);
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "deleted");
  json_decref(j);
  tb_uuid_t nope = U(DEP1);
  assert_int_equal(tb_proj_app(p, &nope, &j), TB_ENOTFOUND);
  assert_int_equal(tb_projections_offset(p), next_off);
  tb_projections_free(p);
}

/*
 * What a supervisor reads: its placements, a crashed deployment revived by the restart,
 * and scale to zero (runner_exited "idle" leaves the app idle, the next app_started
 * brings it back).
 */
static void test_supervisor_view(void **state) {
  tb_projections_t *p = NULL;
  assert_int_equal(tb_projections_new(&p), 0);
  next_off = 0;
  json_t *j = NULL;
  tb_uuid_t app = U(APP), sup = U(SUP), sup2 = U(SUP2);
  apply_ok(p, "supervisor_registered", "{\"supervisor\":\"" SUP "\",\"name\":\"box\",\"address\":\"127.0.0.1:1\"}");
  apply_ok(p, "app_registered", "{\"app\":\"" APP "\",\"tenant\":\"acme\",\"name\":\"hello\",\"runtime\":\"wasm-http\"}");
  apply_ok(p, "app_registered", "{\"app\":\"" APP2 "\",\"tenant\":\"acme\",\"name\":\"x\",\"runtime\":\"wasm-http\"}");
  assert_int_equal(tb_proj_placements(p, &sup, &j), 0);
  assert_int_equal(json_array_size(j), 0);
  json_decref(j);
  apply_ok(p, "version_uploaded",
           "{\"app\":\"" APP "\",\"version\":1,\"digest\":\"sha256:aa\",\"artifact\":\"apps/a/v1/artifact\"}");
  apply_ok(p, "deploy_requested", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"version\":1}");
  apply_ok(p, "deployment_placed", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP "\"}");
  assert_int_equal(tb_proj_placements(p, &sup2, &j), 0);
  assert_int_equal(json_array_size(j), 0); /* placed elsewhere */
  json_decref(j);
  assert_int_equal(tb_proj_placements(p, &sup, &j), 0);
  assert_int_equal(json_array_size(j), 1);
  json_t *pl = json_array_get(j, 0);
  assert_string_equal(S(json_object_get(pl, "app"), "app"), APP);
  assert_string_equal(S(pl, "name"), "hello");
  assert_string_equal(S(json_object_get(pl, "deployment"), "deployment"), DEP1);
  assert_string_equal(S(json_object_get(pl, "version"), "artifact"), "apps/a/v1/artifact");
  assert_true(json_is_null(json_object_get(pl, "runner")));
  json_decref(j);

  /* A crash, then the supervisor's restart: the deployment runs again. */
  apply_ok(p, "app_started", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP
           "\",\"runner\":\"" RUN1 "\",\"address\":\"127.0.0.1:2\"}");
  apply_ok(p, "app_crashed", "{\"app\":\"" APP "\",\"runner\":\"" RUN1 "\",\"signal\":9}");
  assert_int_equal(tb_proj_deployment(p, &(tb_uuid_t){0}, &j), TB_ENOTFOUND);
  tb_uuid_t dep1 = U(DEP1);
  assert_int_equal(tb_proj_deployment(p, &dep1, &j), 0);
  assert_string_equal(S(j, "state"), "crashed");
  json_decref(j);
  apply_ok(p, "app_started", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP
           "\",\"runner\":\"" RUN2 "\",\"address\":\"127.0.0.1:3\"}");
  assert_int_equal(tb_proj_deployment(p, &dep1, &j), 0);
  assert_string_equal(S(j, "state"), "running");
  json_decref(j);
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "running");
  json_decref(j);

  /* Scale to zero and back. */
  apply_ok(p, "runner_exited", "{\"app\":\"" APP "\",\"runner\":\"" RUN2 "\",\"exit_code\":10,\"reason\":\"idle\"}");
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "idle");
  assert_string_equal(S(json_object_get(j, "current_deployment"), "state"), "idle");
  json_decref(j);
  assert_int_equal(tb_proj_runner_of(p, &app, &j), TB_ENOTFOUND);
  assert_int_equal(tb_proj_placements(p, &sup, &j), 0);
  assert_string_equal(S(json_array_get(j, 0), "app_state"), "idle");
  json_decref(j);
  apply_ok(p, "app_started", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP
           "\",\"runner\":\"" RUN1 "\",\"address\":\"127.0.0.1:4\"}");
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "running");
  json_decref(j);

  /* A plain exit (not idle) leaves the app exited; a stop ends the placement's runnability. */
  apply_ok(p, "runner_exited", "{\"app\":\"" APP "\",\"runner\":\"" RUN1 "\",\"reason\":\"replaced\"}");
  assert_int_equal(tb_proj_app(p, &app, &j), 0);
  assert_string_equal(S(j, "state"), "exited");
  json_decref(j);
  apply_ok(p, "app_stopped", "{\"app\":\"" APP "\"}");
  assert_int_equal(tb_proj_placements(p, &sup, &j), 0);
  assert_string_equal(S(json_array_get(j, 0), "app_state"), "stopped");
  assert_string_equal(S(json_object_get(json_array_get(j, 0), "deployment"), "state"), "stopped");
  json_decref(j);

  tb_projections_free(p);
  (void)state;
}

static void test_apply_rules(void **state) {
  tb_projections_t *p = NULL;
  assert_int_equal(tb_projections_new(&p), 0);
  next_off = 0;
  tb_log_set_level(TB_LOG_ERROR); /* the skips below warn on purpose */
  apply_ok(p, "app_registered", "{\"app\":\"" APP "\",\"tenant\":\"acme\",\"name\":\"hello\",\"runtime\":\"wasm-http\"}");
  tb_buf_t a, b;
  tb_buf_init(&a, TB_BUF_DEFAULT_MAX);
  tb_buf_init(&b, TB_BUF_DEFAULT_MAX);
  assert_int_equal(tb_projections_dump(p, &a), 0);

  /* An event seen before is skipped; one from the future is a gap. */
  tb_event_t old = ev_of("app_deleted", "{\"app\":\"" APP "\"}");
  old.offset = 1;
  assert_int_equal(tb_projections_apply(p, &old, NULL), 0);
  tb_event_t gap = ev_of("app_deleted", "{\"app\":\"" APP "\"}");
  gap.offset = 5;
  assert_int_equal(tb_projections_apply(p, &gap, NULL), TB_ECONFLICT);
  next_off = 1;
  assert_int_equal(tb_projections_offset(p), 1);

  /* A newer schema stops everything; the offset does not move. */
  tb_event_t newer = ev_of("app_deleted", "{\"app\":\"" APP "\"}");
  newer.schema = 2;
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_projections_apply(p, &newer, &eb), TB_EUNSUPPORTED);
  assert_non_null(strstr(msg, "schema 2"));
  assert_int_equal(tb_projections_offset(p), 1);
  next_off = 1;

  /* Unknown types and bad payloads advance the offset and change nothing else. */
  apply_ok(p, "something_new", "{\"whatever\":1}");
  apply_ok(p, "version_uploaded", "{\"app\":\"" APP "\",\"version\":\"two\",\"digest\":\"d\",\"artifact\":\"a\"}");
  apply_ok(p, "version_uploaded", "{\"app\":\"" APP "\"}");
  apply_ok(p, "app_started", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"supervisor\":\"" SUP
                            "\",\"runner\":\"" RUN1 "\",\"address\":\"x\"}"); /* no such deployment */
  apply_ok(p, "app_registered", "{\"app\":\"" APP "\",\"tenant\":\"t\",\"name\":\"again\",\"runtime\":\"docker\"}");
  assert_int_equal(tb_projections_offset(p), 6);
  assert_int_equal(tb_projections_dump(p, &b), 0);
  /* The dumps differ only in offset, last_id and skipped. */
  json_t *ja = json_loads(tb_buf_cstr(&a), 0, NULL), *jb = json_loads(tb_buf_cstr(&b), 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(jb, "skipped")), 4);
  json_object_del(ja, "offset");
  json_object_del(jb, "offset");
  json_object_del(ja, "last_id");
  json_object_del(jb, "last_id");
  json_object_del(ja, "skipped");
  json_object_del(jb, "skipped");
  assert_true(json_equal(ja, jb));
  json_decref(ja);
  json_decref(jb);

  /* Producers can check a payload before appending it. */
  tb_event_t chk = ev_of("deploy_requested", "{\"app\":\"" APP "\",\"version\":1}");
  assert_int_equal(tb_projections_check_event(&chk, &eb), TB_EINVAL);
  assert_non_null(strstr(msg, "\"deployment\" is required"));
  chk = ev_of("deploy_requested", "{\"app\":\"" APP "\",\"deployment\":\"" DEP1 "\",\"version\":1}");
  assert_int_equal(tb_projections_check_event(&chk, &eb), 0);
  chk = ev_of("not_in_the_catalogue", "{}");
  assert_int_equal(tb_projections_check_event(&chk, &eb), 0);
  tb_log_set_level(TB_LOG_INFO);
  tb_buf_deinit(&a);
  tb_buf_deinit(&b);
  tb_projections_free(p);
}

/* ---- With a real log: replay, snapshots. ---- */

static void fill_log(tb_eventlog_t *log, wl_t *w, int n) {
  uint64_t start = 0;
  tb_eventlog_head(log, &start);
  for (int i = 0; i < n; i++) {
    tb_event_t ev;
    wl_next(w, &ev);
    char msg[256] = "";
    tb_errbuf_t eb = {msg, sizeof msg};
    if (tb_eventlog_append_async(log, &ev, NULL, NULL, &eb) != 0) fail_msg("append: %s", msg);
  }
  uint64_t head = 0;
  for (int i = 0; i < 3000; i++) {
    tb_eventlog_head(log, &head);
    if (head >= start + (uint64_t)n) break;
    tb_clock_sleep_ms(10);
  }
}

static char *dump(tb_projections_t *p) {
  tb_buf_t b;
  tb_buf_init(&b, TB_BUF_DEFAULT_MAX);
  assert_int_equal(tb_projections_dump(p, &b), 0);
  return tb_buf_steal(&b, NULL);
}

static void test_snapshots(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  char snaps[256];
  evtest_tmpdir(snaps, sizeof snaps, "snaps");
  tb_eventlog_t *log = evtest_open(&t);
  wl_t *w = wl_new(7);
  fill_log(log, w, 6000);

  /* Full replay, and the same state restored from a snapshot taken half-way. */
  tb_projections_t *half = NULL, *full = NULL, *fast = NULL;
  assert_int_equal(tb_projections_open(log, NULL, &half, NULL), 0);
  assert_int_equal(tb_projections_offset(half), 6000);
  assert_int_equal(tb_projections_snapshot_save(half, snaps, NULL), 0);
  fill_log(log, w, 4000);
  assert_int_equal(tb_projections_open(log, NULL, &full, NULL), 0);
  assert_int_equal(tb_projections_offset(full), 10000);
  char *a = dump(full);
  assert_non_null(strstr(a, "\"skipped\":0"));
  assert_int_equal(tb_projections_open(log, snaps, &fast, NULL), 0);
  char *b = dump(fast);
  assert_string_equal(a, b);
  /* Catching up an older state gives the same too. */
  uint64_t n = 0;
  assert_int_equal(tb_projections_catch_up(half, log, &n, NULL), 0);
  assert_int_equal(n, 4000);
  char *c = dump(half);
  assert_string_equal(a, c);
  tb_free(b);
  tb_free(c);
  tb_projections_free(fast);

  /* A damaged snapshot is passed over for the previous one, then for full replay. */
  tb_log_set_level(TB_LOG_ERROR);
  assert_int_equal(tb_projections_snapshot_save(full, snaps, NULL), 0); /* .prev is now the 6000 one */
  char path[400];
  snprintf(path, sizeof path, "%s/projections.snap", snaps);
  int fd = open(path, O_WRONLY);
  assert_int_equal(pwrite(fd, "X", 1, 500), 1);
  close(fd);
  assert_int_equal(tb_projections_open(log, snaps, &fast, NULL), 0);
  b = dump(fast);
  assert_string_equal(a, b);
  tb_free(b);
  tb_projections_free(fast);
  /* A snapshot of another log does not fit this one. */
  evtest_log_t t2;
  evtest_new_log(&t2);
  tb_eventlog_t *log2 = evtest_open(&t2);
  wl_t *w2 = wl_new(99);
  fill_log(log2, w2, 7000);
  tb_projections_t *other = NULL;
  assert_int_equal(tb_projections_open(log2, NULL, &other, NULL), 0);
  char snaps2[256];
  evtest_tmpdir(snaps2, sizeof snaps2, "snaps2");
  assert_int_equal(tb_projections_snapshot_save(other, snaps2, NULL), 0);
  assert_int_equal(tb_projections_open(log, snaps2, &fast, NULL), 0);
  b = dump(fast);
  assert_string_equal(a, b);
  tb_projections_t *probe = NULL;
  assert_int_equal(tb_projections_new(&probe), 0);
  assert_int_equal(tb_projections_snapshot_load(probe, snaps2, log, NULL), TB_ENOENT);
  tb_projections_free(probe);
  tb_log_set_level(TB_LOG_INFO);
  tb_free(b);
  tb_projections_free(fast);
  tb_projections_free(other);
  tb_eventlog_close(log2);
  evtest_remove(&t2);
  evtest_rmrf(snaps2);
  wl_free(w2);

  /* maybe_snapshot only writes when enough happened. */
  struct stat st1, st2;
  assert_int_equal(tb_projections_snapshot_save(full, snaps, NULL), 0);
  assert_int_equal(stat(path, &st1), 0);
  tb_clock_sleep_ms(10);
  assert_int_equal(tb_projections_maybe_snapshot(full, snaps, 100, NULL), 0);
  assert_int_equal(stat(path, &st2), 0);
  assert_true(st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec && st1.st_ino == st2.st_ino);

  tb_free(a);
  tb_projections_free(half);
  tb_projections_free(full);
  tb_eventlog_close(log);
  evtest_remove(&t);
  evtest_rmrf(snaps);
  wl_free(w);
}

/* ---- Secrets end to end. ---- */

static bool file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return false;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  bool hit = memmem(buf, got, needle, strlen(needle)) != NULL;
  free(buf);
  return hit;
}

static void test_secrets_never_in_clear(void **state) {
  char dir[256], logfile[320];
  evtest_tmpdir(dir, sizeof dir, "secrets");
  snprintf(logfile, sizeof logfile, "%s/log.txt", dir);
  int lfd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  tb_log_set_fd(lfd);
  tb_log_set_level(TB_LOG_DEBUG);

  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.state_dir = dir;
  tb_eventlog_t *log = NULL;
  tb_secretbox_t *box = NULL;
  assert_int_equal(tb_eventlog_open(&o, &log, NULL), 0);
  assert_int_equal(tb_secretbox_open(dir, &box, NULL), 0);
  tb_uuid_t app = U(APP);
  const char *value = "hunter2-correct-horse-battery";
  const char *reg = "{\"app\":\"" APP "\",\"tenant\":\"acme\",\"name\":\"hello\",\"runtime\":\"wasm-http\"}";
  tb_event_t ev = {.type = "app_registered", .schema = 1, .actor = "user:alice", .payload = reg,
                   .payload_len = strlen(reg), .aggregate = app};
  assert_int_equal(tb_eventlog_append(log, &ev, NULL, NULL), 0);
  json_t *payload = NULL;
  assert_int_equal(tb_secretbox_seal(box, &app, "DB_PASSWORD", value, strlen(value), &payload, NULL), 0);
  char *text = json_dumps(payload, JSON_COMPACT);
  ev = (tb_event_t){.type = "secret_registered", .schema = 1, .actor = "user:alice", .payload = text,
                    .payload_len = strlen(text), .aggregate = app};
  assert_int_equal(tb_projections_check_event(&ev, NULL), 0);
  assert_int_equal(tb_eventlog_append(log, &ev, NULL, NULL), 0);
  free(text);
  json_decref(payload);

  tb_projections_t *p = NULL;
  assert_int_equal(tb_projections_open(log, dir, &p, NULL), 0);
  assert_int_equal(tb_projections_snapshot_save(p, dir, NULL), 0);
  json_t *s = NULL;
  assert_int_equal(tb_proj_secret(p, &app, "DB_PASSWORD", &s), 0);
  uint8_t *plain = NULL;
  size_t len = 0;
  assert_int_equal(tb_secretbox_unseal(box, &app, "DB_PASSWORD", S(s, "key_id"), S(s, "nonce"), S(s, "ciphertext"),
                                       &plain, &len, NULL),
                   0);
  assert_int_equal(len, strlen(value));
  assert_memory_equal(plain, value, len);
  tb_secretbox_free_value(plain, len);
  json_decref(s);
  tb_buf_t d;
  tb_buf_init(&d, TB_BUF_DEFAULT_MAX);
  assert_int_equal(tb_projections_dump(p, &d), 0);
  assert_null(strstr(tb_buf_cstr(&d), "hunter2"));
  tb_buf_deinit(&d);
  tb_projections_free(p);
  tb_secretbox_close(box);
  tb_eventlog_close(log);
  tb_log_set_fd(2);
  tb_log_set_level(TB_LOG_INFO);
  close(lfd);

  char path[400];
  const char *files[] = {"events.db", "events.db-wal", "projections.snap", "log.txt", "secrets.key"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (file_contains(path, "hunter2")) fail_msg("the secret value is in clear in %s", files[i]);
  }
  snprintf(path, sizeof path, "%s/projections.snap", dir);
  assert_true(file_contains(path, "DB_PASSWORD")); /* the name is not secret; the value is */
  evtest_rmrf(dir);
}

/* ---- Readers while a writer applies. ---- */

typedef struct reader_arg {
  tb_projections_t *p;
  atomic_bool stop;
  atomic_long queries;
} reader_arg_t;

static void *reader(void *arg) {
  reader_arg_t *r = arg;
  while (!atomic_load(&r->stop)) {
    json_t *j = NULL;
    for (int t = 0; t < 16; t++) {
      char tenant[32];
      snprintf(tenant, sizeof tenant, "tenant-%d", t);
      if (tb_proj_apps_of_tenant(r->p, tenant, &j) == 0) json_decref(j);
    }
    if (tb_proj_supervisors(r->p, "gpu", NULL, &j) == 0) json_decref(j);
    atomic_fetch_add(&r->queries, 1);
  }
  return NULL;
}

static void test_concurrent_queries(void **state) {
  tb_projections_t *p = NULL;
  assert_int_equal(tb_projections_new(&p), 0);
  reader_arg_t r = {.p = p};
  atomic_init(&r.stop, false);
  atomic_init(&r.queries, 0);
  pthread_t th;
  pthread_create(&th, NULL, reader, &r);
  /* Let the reader get going first: on a loaded machine it might otherwise not run at all
   * before the writer is done. */
  while (atomic_load(&r.queries) == 0) tb_clock_sleep_ms(1);
  wl_t *w = wl_new(3);
  for (uint64_t i = 1; i <= 20000; i++) {
    tb_event_t ev;
    wl_next(w, &ev);
    ev.offset = i;
    assert_int_equal(tb_projections_apply(p, &ev, NULL), 0);
  }
  atomic_store(&r.stop, true);
  pthread_join(th, NULL);
  wl_free(w);
  tb_projections_free(p);
}

/* ---- Allocation failures: every one ends in TB_ENOMEM, nothing leaks (ASan checks). ---- */

static void test_allocation_failures(void **state) {
  enum { N = 400 };
  wl_t *w = wl_new(5);
  tb_event_t evs[N];
  char *payloads[N], *types[N], *actors[N];
  for (int i = 0; i < N; i++) {
    wl_next(w, &evs[i]);
    payloads[i] = strndup(evs[i].payload, evs[i].payload_len);
    types[i] = strdup(evs[i].type);
    actors[i] = strdup(evs[i].actor);
    evs[i].payload = payloads[i];
    evs[i].type = types[i];
    evs[i].actor = actors[i];
    evs[i].offset = (uint64_t)i + 1;
  }
  wl_free(w);
  tb_log_set_level(TB_LOG_OFF);
  for (long fail = 0; fail < 3000; fail += 7) {
    tb_projections_t *p = NULL;
    if (tb_projections_new(&p) != 0) continue;
    tb_alloc_fail_after(fail);
    for (int i = 0; i < N; i++) {
      int rc = tb_projections_apply(p, &evs[i], NULL);
      if (rc != 0 && rc != TB_ENOMEM) fail_msg("event %d with %ld allocations allowed: %s", i, fail, tb_err_name(rc));
      if (rc) break;
    }
    tb_buf_t b;
    tb_buf_init(&b, TB_BUF_DEFAULT_MAX);
    int rc = tb_projections_dump(p, &b);
    assert_true(rc == 0 || rc == TB_ENOMEM);
    tb_buf_deinit(&b);
    tb_alloc_fail_after(-1);
    tb_projections_free(p);
  }
  tb_log_set_level(TB_LOG_INFO);
  for (int i = 0; i < N; i++) {
    free(payloads[i]);
    free(types[i]);
    free(actors[i]);
  }
}

int main(void) {
  evtest_setup("embedded");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_life_cycle),  cmocka_unit_test(test_supervisor_view), cmocka_unit_test(test_apply_rules),
      cmocka_unit_test(test_snapshots),   cmocka_unit_test(test_secrets_never_in_clear),
      cmocka_unit_test(test_concurrent_queries), cmocka_unit_test(test_allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
