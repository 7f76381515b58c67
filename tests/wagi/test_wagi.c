/*
 * test_wagi.c — the wasm-http runtime served the way the runner will call it: real
 * guests compiled by clang for wasm32-wasi (the demo app and progs/cgi.c), requests
 * described as the HTTP layer would, responses collected through the io callbacks.
 *
 * Arguments: the path of hello.wasm, then of cgi.wasm.
 */
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tb/clock.h"
#include "tb/wagi.h"

static const char *hello_path, *cgi_path;
static tb_wasm_engine_t *engine;

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *b;
  long n;
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  b = malloc((size_t)n);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

/* ---- The log sink: everything into one string ---- */

typedef struct logbuf {
  pthread_mutex_t mu;
  char text[64 * 1024];
  size_t len;
} logbuf_t;

static void log_sink(void *arg, tb_wagi_log_kind_t kind, const char *data, size_t len) {
  logbuf_t *l = arg;
  pthread_mutex_lock(&l->mu);
  if (l->len + len + 2 < sizeof l->text) {
    memcpy(l->text + l->len, data, len);
    l->len += len;
    if (kind == TB_WAGI_LOG_RUNTIME) l->text[l->len++] = '\n';
    l->text[l->len] = '\0';
  }
  pthread_mutex_unlock(&l->mu);
}

static tb_wagi_app_t *make_app(const char *path, uint32_t memory_mb, uint32_t deadline_ms, logbuf_t *log) {
  static const char *const env[] = {"FOO=bar", "APP_MODE=test"};
  tb_wagi_config_t cfg = {.memory_mb = memory_mb, .deadline_ms = deadline_ms, .env = env, .nenv = 2,
                          .name = "testapp", .log = log_sink, .log_arg = log};
  size_t len;
  uint8_t *bytes = slurp(path, &len);
  char eb_text[200] = "";
  tb_errbuf_t eb = {eb_text, sizeof eb_text};
  tb_wagi_app_t *app = NULL;
  int rc = tb_wagi_app_new(engine, bytes, len, &cfg, &app, &eb);
  if (rc != 0) fail_msg("tb_wagi_app_new(%s): %s: %s", path, tb_err_name(rc), eb_text);
  free(bytes);
  return app;
}

/* ---- A response collector ---- */

typedef struct resp {
  int status, nheads;
  char reason[64];
  char headers[4096]; /* "Name: value\n" each */
  char body[8192];
  size_t body_len;
  /* For the echo test: the body is checked against the generator instead of kept. */
  bool verify;
  uint64_t verified, mismatches, body_in;
  size_t max_read, max_write;
  uint64_t body_total; /* the generator's length */
} resp_t;

static uint8_t gen_byte(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static int64_t rd(void *arg, uint8_t *buf, size_t len) {
  resp_t *r = arg;
  size_t n = len;
  if (r->body_in >= r->body_total) return 0;
  if (n > r->body_total - r->body_in) n = (size_t)(r->body_total - r->body_in);
  for (size_t i = 0; i < n; i++) buf[i] = gen_byte(r->body_in + i);
  r->body_in += n;
  if (n > r->max_read) r->max_read = n;
  return (int64_t)n;
}

static int wh(void *arg, int status, const char *reason, const tb_wagi_header_t *h, size_t n) {
  resp_t *r = arg;
  size_t used = 0;
  r->nheads++;
  r->status = status;
  snprintf(r->reason, sizeof r->reason, "%s", reason);
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(r->headers + used, sizeof r->headers - used, "%s: %s\n", h[i].name, h[i].value);
  return 0;
}

static int wb(void *arg, const uint8_t *data, size_t len) {
  resp_t *r = arg;
  if (len > r->max_write) r->max_write = len;
  if (r->verify) {
    for (size_t i = 0; i < len; i++) r->mismatches += data[i] != gen_byte(r->verified + i);
    r->verified += len;
    return 0;
  }
  if (r->body_len + len >= sizeof r->body) return -1;
  memcpy(r->body + r->body_len, data, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int serve(tb_wagi_app_t *app, const char *method, const char *path, resp_t *r, tb_wagi_result_t *res) {
  tb_wagi_request_t q = {.method = method, .path = path, .protocol = "HTTP/1.1", .remote_addr = "127.0.0.1",
                         .server_name = "localhost", .server_port = "8080", .content_length = -1,
                         .matched_route = "/..."};
  tb_wagi_io_t io = {.read_body = rd, .write_head = wh, .write_body = wb, .arg = r};
  return tb_wagi_serve(app, &q, &io, res);
}

/* ---- The demo app ---- */

static void test_hello(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(hello_path, 64, 5000, &log);
  tb_wagi_result_t res;
  resp_t r = {0};
  int64_t inst = 0, run = 0, total = 0, t0;
  const int N = 200;

  assert_int_equal(serve(app, "GET", "/", &r, &res), 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.nheads, 1);
  assert_string_equal(r.headers, "Content-Type: text/plain\n");
  assert_string_equal(r.body, "Hello from Tabbify! You sent GET /\n");
  assert_false(res.truncated);

  /* Time per request (informational): a fresh store and instance, then _start. */
  for (int i = 0; i < N; i++) {
    resp_t rr = {0};
    t0 = tb_clock_mono_ns();
    assert_int_equal(serve(app, "GET", "/", &rr, &res), 0);
    total += tb_clock_mono_ns() - t0;
    assert_int_equal(rr.status, 200);
    inst += res.instantiate_ns;
    run += res.run_ns;
  }
  printf("# GET / on hello.wasm: %.1f us per request (instantiate %.1f us, run %.1f us), %d requests\n",
         (double)total / N / 1000.0, (double)inst / N / 1000.0, (double)run / N / 1000.0, N);
  tb_wagi_app_free(app);
}

static long maxrss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void test_echo_streams(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(hello_path, 64, 60000, &log);
  tb_wagi_result_t res;
  resp_t warm = {0}, *r = calloc(1, sizeof *r);
  long rss0;

  assert_int_equal(serve(app, "GET", "/", &warm, &res), 0); /* warm the allocator and the engine */
  rss0 = maxrss_kib();
  r->verify = true;
  r->body_total = 10u << 20;
  assert_int_equal(serve(app, "POST", "/echo", r, &res), 0);
  assert_int_equal(r->status, 200);
  assert_string_equal(r->headers, "Content-Type: application/octet-stream\n");
  assert_int_equal(r->body_in, 10u << 20);
  assert_int_equal(res.body_in, 10u << 20);
  assert_int_equal(r->verified, 10u << 20);
  assert_int_equal(res.body_out, 10u << 20);
  assert_int_equal(r->mismatches, 0);
  /* Nothing is buffered whole: the library holds at most its header block, and every
   * chunk crossing the io callbacks is guest-buffer sized. */
  printf("# echo 10 MiB: peak held by the library %zu bytes, largest read %zu, largest write %zu, "
         "maxrss +%ld KiB, %.1f ms\n",
         res.peak_held, r->max_read, r->max_write, maxrss_kib() - rss0, (double)res.run_ns / 1e6);
  assert_true(res.peak_held <= 64 * 1024);
  assert_true(r->max_read <= 256 * 1024);
  assert_true(r->max_write <= 256 * 1024);
#ifndef TB_SANITIZE
  assert_true(maxrss_kib() - rss0 < 8 * 1024);
#endif
  free(r);
  tb_wagi_app_free(app);
}

static void test_fail_then_ok(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(hello_path, 64, 5000, &log);
  tb_wagi_result_t res;
  resp_t r = {0}, r2 = {0};

  assert_int_equal(serve(app, "GET", "/fail", &r, &res), 0);
  assert_int_equal(r.status, 500);
  assert_int_equal(res.status, 500);
  assert_int_equal(res.trap.kind, TB_WASM_TRAP_UNREACHABLE);
  assert_string_equal(r.body, "500 Internal Server Error\n");
  assert_non_null(strstr(log.text, "testapp: trap: unreachable in function"));
  assert_non_null(strstr(log.text, "at offset 0x"));
  printf("# log: %s", log.text);

  assert_int_equal(serve(app, "GET", "/", &r2, &res), 0);
  assert_int_equal(r2.status, 200);
  assert_string_equal(r2.body, "Hello from Tabbify! You sent GET /\n");
  tb_wagi_app_free(app);
}

/* The client goes away mid-response: the io error comes back, the response is truncated. */
static void test_client_gone(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(hello_path, 64, 5000, &log);
  tb_wagi_result_t res;
  resp_t r = {0}, r2 = {0};
  r.body_total = 1u << 20; /* more than resp_t.body holds: wb fails */
  assert_int_equal(serve(app, "POST", "/echo", &r, &res), -1);
  assert_int_equal(r.status, 200);
  assert_true(res.head_sent);
  assert_true(res.truncated);
  assert_int_equal(serve(app, "GET", "/", &r2, &res), 0);
  assert_int_equal(r2.status, 200);
  tb_wagi_app_free(app);
}

/* ---- The test guest ---- */

static void test_deadline(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 64, 200, &log);
  tb_wagi_result_t res;
  resp_t r = {0}, r2 = {0}, r3 = {0};
  int64_t t0 = tb_clock_mono_ns(), ms;

  assert_int_equal(serve(app, "GET", "/loop", &r, &res), 0);
  ms = (tb_clock_mono_ns() - t0) / TB_NS_PER_MS;
  printf("# /loop stopped after %lld ms (deadline 200 ms)\n", (long long)ms);
  assert_int_equal(r.status, 500);
  assert_true(res.timed_out);
  assert_int_equal(res.trap.kind, TB_WASM_TRAP_INTERRUPTED);
  assert_true(ms >= 190 && ms < 5000);
  assert_non_null(strstr(log.text, "testapp: deadline: request stopped after 200 ms"));

  /* After the head: the response is truncated, the caller must abort the connection. */
  assert_int_equal(serve(app, "GET", "/looplate", &r2, &res), TB_ETRAP);
  assert_int_equal(r2.status, 200);
  assert_string_equal(r2.body, "started\n");
  assert_true(res.head_sent);
  assert_true(res.truncated);
  assert_true(res.timed_out);

  /* The next request is unaffected. */
  assert_int_equal(serve(app, "GET", "/counter", &r3, &res), 0);
  assert_int_equal(r3.status, 200);
  assert_false(res.timed_out);
  tb_wagi_app_free(app);
}

static void test_cgi_headers(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 64, 5000, &log);
  tb_wagi_result_t res;
  struct {
    const char *path;
    int rc, status;
    const char *reason, *headers, *body, *error;
    int exit_code;
  } cases[] = {
      {"/status", 0, 404, "Not Found Here", "Content-Type: text/plain\n", "nope\n", NULL, 0},
      {"/location", 0, 302, "Found", "Location: https://example.com/elsewhere\n", "", NULL, 0},
      {"/headers", 0, 200, "OK", "Content-Type: text/html\nX-Custom: spaced value\nSet-Cookie: a=1\n", "<p>hi</p>",
       NULL, 0},
      {"/noheaders", 0, 502, "Bad Gateway", NULL, "502 Bad Gateway\n", "no blank line", 0},
      {"/nothing", 0, 502, "Bad Gateway", NULL, "502 Bad Gateway\n", "no blank line", 0},
      {"/bighead", 0, 502, "Bad Gateway", NULL, "502 Bad Gateway\n", "header block larger than 65536 bytes", 0},
      {"/badline", 0, 502, "Bad Gateway", NULL, "502 Bad Gateway\n", "malformed CGI header line", 0},
      {"/exit", 0, 500, "Internal Server Error", NULL, "500 Internal Server Error\n", "exited with code 3", 3},
      {"/exitlate", 0, 200, "OK", "Content-Type: text/plain\n", "partial\n", NULL, 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    resp_t r = {0};
    int rc = serve(app, "GET", cases[i].path, &r, &res);
    printf("# %s -> %d %s (%s)\n", cases[i].path, r.status, r.reason, res.error);
    assert_int_equal(rc, cases[i].rc);
    assert_int_equal(r.nheads, 1);
    assert_int_equal(r.status, cases[i].status);
    assert_int_equal(res.status, cases[i].status);
    assert_string_equal(r.reason, cases[i].reason);
    if (cases[i].headers) assert_string_equal(r.headers, cases[i].headers);
    assert_string_equal(r.body, cases[i].body);
    if (cases[i].error) assert_non_null(strstr(res.error, cases[i].error));
    assert_int_equal(res.exit_code, cases[i].exit_code);
    assert_false(res.truncated);
  }
  assert_non_null(strstr(log.text, "malformed CGI response"));
  tb_wagi_app_free(app);
}

static void test_isolation(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 64, 5000, &log);
  tb_wagi_result_t res;
  for (int i = 0; i < 5; i++) {
    resp_t r = {0};
    assert_int_equal(serve(app, "GET", "/counter", &r, &res), 0);
    assert_string_equal(r.body, "1\n");
  }
  tb_wagi_app_free(app);
}

static void test_memory_cap(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 4, 5000, &log);
  tb_wagi_result_t res;
  resp_t r = {0}, r2 = {0};
  unsigned mib = 99;
  assert_int_equal(serve(app, "GET", "/oom", &r, &res), 0);
  if (r.status != 200) fail_msg("/oom: %d (%s), log: %s", r.status, res.error, log.text);
  printf("# /oom with a 4 MiB cap: %s", r.body);
  assert_int_equal(sscanf(r.body, "OOM after %u MiB", &mib), 1);
  assert_true(mib < 4);
  assert_int_equal(serve(app, "GET", "/counter", &r2, &res), 0);
  assert_string_equal(r2.body, "1\n");
  tb_wagi_app_free(app);
}

static void test_stderr_to_log(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 64, 5000, &log);
  tb_wagi_result_t res;
  resp_t r = {0};
  assert_int_equal(serve(app, "GET", "/stderr", &r, &res), 0);
  assert_string_equal(r.body, "ok\n");
  assert_string_equal(log.text, "guest says hello on stderr\n");
  tb_wagi_app_free(app);
}

static void test_environment(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 64, 5000, &log);
  tb_wagi_result_t res;
  resp_t r = {0};
  tb_wagi_header_t hs[] = {{"Host", "example.com:8080"}, {"X-Foo-Bar", "1"}, {"content-type", "text/plain"},
                           {"x-foo-bar", "2"}, {"Content-Length", "0"}, {"User-Agent", "curl/7.88"},
                           {"Proxy", "http://evil.example"}};
  tb_wagi_request_t q = {.method = "POST", .path = "/app/e%6ev", .query = "a=1&b=2", .script_name = "/app",
                         .matched_route = "/app/...", .protocol = "HTTP/1.1", .remote_addr = "10.0.0.7",
                         .server_name = "example.com", .server_port = "8080",
                         .full_url = "http://example.com:8080/app/e%6ev?a=1&b=2", .content_length = 0,
                         .headers = hs, .nheaders = sizeof hs / sizeof hs[0]};
  tb_wagi_io_t io = {.read_body = rd, .write_head = wh, .write_body = wb, .arg = &r};
  static const char *const want[] = {
      "REQUEST_METHOD=POST\n", "PATH_INFO=/env\n", "X_RAW_PATH_INFO=/e%6ev\n", "SCRIPT_NAME=/app\n",
      "QUERY_STRING=a=1&b=2\n", "SERVER_PROTOCOL=HTTP/1.1\n", "CONTENT_LENGTH=0\n", "CONTENT_TYPE=text/plain\n",
      "REMOTE_ADDR=10.0.0.7\n", "HTTP_X_FOO_BAR=1, 2\n", "HTTP_HOST=example.com:8080\n",
      "HTTP_USER_AGENT=curl/7.88\n", "X_FULL_URL=http://example.com:8080/app/e%6ev?a=1&b=2\n",
      "X_MATCHED_ROUTE=/app/...\n", "GATEWAY_INTERFACE=CGI/1.1\n", "SERVER_NAME=example.com\n",
      "SERVER_PORT=8080\n", "FOO=bar\n", "APP_MODE=test\n"};
  assert_int_equal(tb_wagi_serve(app, &q, &io, &res), 0);
  assert_int_equal(r.status, 200);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    if (!strstr(r.body, want[i])) fail_msg("missing %s in the guest's environment:\n%s", want[i], r.body);
  assert_null(strstr(r.body, "HTTP_CONTENT_TYPE"));
  assert_null(strstr(r.body, "HTTP_CONTENT_LENGTH"));
  assert_null(strstr(r.body, "HTTP_PROXY")); /* httpoxy */
  tb_wagi_app_free(app);
}

/* Several worker threads on one app, sharing its module and watchdog. */
typedef struct worker {
  tb_wagi_app_t *app;
  int ok;
} worker_t;

static void *work(void *arg) {
  worker_t *w = arg;
  for (int i = 0; i < 50; i++) {
    resp_t r = {0};
    tb_wagi_result_t res;
    if (serve(w->app, "GET", i % 10 == 9 ? "/loop" : "/counter", &r, &res) == 0 &&
        ((i % 10 == 9 && r.status == 500 && res.timed_out) || (i % 10 != 9 && !strcmp(r.body, "1\n"))))
      w->ok++;
  }
  return NULL;
}

static void test_threads(void **state) {
  logbuf_t log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tb_wagi_app_t *app = make_app(cgi_path, 64, 300, &log);
  pthread_t t[4];
  worker_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_t){.app = app};
    if (pthread_create(&t[i], NULL, work, &w[i]) != 0) fail_msg("pthread_create");
  }
  /* Join every worker before asserting: a failed assertion leaves the function. */
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 4; i++) assert_int_equal(w[i].ok, 50);
  tb_wagi_app_free(app);
}

static void test_bad_modules(void **state) {
  static const uint8_t garbage[] = {0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00};
  static const uint8_t empty[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  tb_wagi_config_t cfg = {0};
  tb_wagi_app_t *app = NULL;
  char text[200] = "";
  tb_errbuf_t eb = {text, sizeof text};
  assert_int_equal(tb_wagi_app_new(engine, garbage, sizeof garbage, &cfg, &app, &eb), TB_EPARSE);
  assert_null(app);
  assert_int_equal(tb_wagi_app_new(engine, empty, sizeof empty, &cfg, &app, &eb), TB_EINVAL);
  assert_non_null(strstr(text, "not a WASI command"));
  assert_null(app);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello),         cmocka_unit_test(test_echo_streams),
      cmocka_unit_test(test_fail_then_ok),  cmocka_unit_test(test_client_gone),
      cmocka_unit_test(test_deadline),
      cmocka_unit_test(test_cgi_headers),   cmocka_unit_test(test_isolation),
      cmocka_unit_test(test_memory_cap),    cmocka_unit_test(test_stderr_to_log),
      cmocka_unit_test(test_environment),   cmocka_unit_test(test_threads),
      cmocka_unit_test(test_bad_modules),
  };
  int rc;
  if (argc != 3) {
    fprintf(stderr, "usage: %s HELLO.wasm CGI.wasm\n", argv[0]);
    return 2;
  }
  hello_path = argv[1];
  cgi_path = argv[2];
  if (tb_wasm_engine_new(NULL, &engine) != 0) return 1;
  rc = TB_RUN(tests);
  tb_wasm_engine_free(engine);
  return rc;
}
