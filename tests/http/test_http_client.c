/*
 * test_http_client.c — the client against our server on loopback (IPv4, IPv6, a unix
 * socket): the keep-alive pool, bodies streamed both ways with backpressure, HEAD,
 * errors and timeouts, cancellation, and the same bytes as curl fetches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "test.h"

typedef struct rec {
  uv_loop_t *loop;
  int status;
  int64_t content_length;
  char content_type[64];
  tb_buf_t body;
  uint64_t body_len;
  bool pattern_ok;
  bool done, reused;
  int err;
  int responses;
  /* body source */
  uint64_t src_len, src_sent;
  int src_calls, eagain_every;
  uv_timer_t ready_timer;
  bool timer_inited;
  tb_http_call_t *call;
  /* response backpressure */
  bool toggle_reading;
  uv_timer_t toggle_timer;
} rec_t;

static void rec_init(rec_t *r, uv_loop_t *loop) {
  memset(r, 0, sizeof *r);
  r->loop = loop;
  r->pattern_ok = true;
  tb_buf_init(&r->body, 1 << 20);
}

static void rec_deinit(rec_t *r) {
  tb_buf_deinit(&r->body);
  if (r->timer_inited) uv_close((uv_handle_t *)&r->ready_timer, NULL);
  if (r->toggle_reading) uv_close((uv_handle_t *)&r->toggle_timer, NULL);
  uv_run(r->loop, UV_RUN_NOWAIT);
}

static void on_response(tb_http_call_t *call, const tb_http_head_t *h, void *ud) {
  rec_t *r = ud;
  r->responses++;
  r->status = h->status;
  r->content_length = h->content_length;
  const char *ct = tb_http_head_get(h, "content-type");
  snprintf(r->content_type, sizeof r->content_type, "%s", ct ? ct : "");
}

static void on_data(tb_http_call_t *call, const uint8_t *d, size_t n, void *ud) {
  rec_t *r = ud;
  for (size_t i = 0; i < n; i++)
    if (d[i] != th_pattern(r->body_len + i)) r->pattern_ok = false;
  size_t room = r->body.max - r->body.len;
  tb_buf_append(&r->body, d, n < room ? n : room);
  r->body_len += n;
}

static void on_done(tb_http_call_t *call, int err, void *ud) {
  rec_t *r = ud;
  r->done = true;
  r->err = err;
  r->reused = tb_http_call_reused(call);
  r->call = NULL;
}

static const tb_http_call_cbs_t cbs = {on_response, on_data, on_done};

static void wait_done(rec_t *r) {
  while (!r->done) uv_run(r->loop, UV_RUN_ONCE);
}

static void start(tb_http_client_t *cl, rec_t *r, const tb_http_request_t *rq) {
  char err[256] = "";
  tb_errbuf_t eb = {err, sizeof err};
  int rc = tb_http_client_request(cl, rq, &cbs, r, &r->call, &eb);
  if (rc != 0) fprintf(stderr, "request: %s: %s\n", tb_err_name(rc), err);
  assert_int_equal(rc, 0);
}

static void get(tb_http_client_t *cl, rec_t *r, const char *url) {
  tb_http_request_t rq = {.url = url};
  start(cl, r, &rq);
  wait_done(r);
}

typedef struct fx {
  uv_loop_t loop;
  th_server_t s;
  tb_http_client_t *cl;
  bool cl_closed;
} fx_t;

static void fx_start(fx_t *f, const tb_http_server_config_t *scfg, const tb_http_client_config_t *ccfg) {
  memset(f, 0, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  th_server_start(&f->s, &f->loop, scfg, "127.0.0.1:0");
  assert_int_equal(tb_http_client_new(&f->loop, ccfg, &f->cl), 0);
}

static const char *url(fx_t *f, const char *path) {
  static char buf[4][256];
  static int i;
  char *u = buf[i++ % 4];
  snprintf(u, 256, "http://127.0.0.1:%d%s", f->s.port, path);
  return u;
}

static void on_client_closed(void *ud) { *(bool *)ud = true; }

static void fx_stop(fx_t *f) {
  tb_http_client_close(f->cl, on_client_closed, &f->cl_closed);
  while (!f->cl_closed) uv_run(&f->loop, UV_RUN_ONCE);
  th_server_stop(&f->s);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void simple_get(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  rec_t r;
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/hello"));
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.content_length, 6);
  assert_string_equal(r.content_type, "text/plain");
  assert_string_equal(tb_buf_cstr(&r.body), "hello\n");
  rec_deinit(&r);
  /* A 404 is a response like any other: the JSON error body arrives. */
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/nope"));
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(tb_buf_cstr(&r.body), "\"error\":\"not_found\""));
  rec_deinit(&r);
  fx_stop(&f);
}

/* Sequential calls share one connection; parallel ones get their own, then share. */
static void keep_alive_pool(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  for (int i = 0; i < 3; i++) {
    rec_t r;
    rec_init(&r, &f.loop);
    get(f.cl, &r, url(&f, "/hello"));
    assert_int_equal(r.err, 0);
    assert_string_equal(tb_buf_cstr(&r.body), "hello\n");
    assert_int_equal(r.reused, i > 0);
    rec_deinit(&r);
  }
  tb_http_server_stats_t st;
  tb_http_server_stats(f.s.srv, &st);
  assert_int_equal(st.connections, 1);
  for (int round = 0; round < 2; round++) {
    rec_t r[4];
    tb_http_request_t rq = {.url = url(&f, "/slow?ms=30")};
    for (int i = 0; i < 4; i++) {
      rec_init(&r[i], &f.loop);
      start(f.cl, &r[i], &rq);
    }
    for (int i = 0; i < 4; i++) {
      wait_done(&r[i]);
      assert_int_equal(r[i].err, 0);
      assert_string_equal(tb_buf_cstr(&r[i].body), "late\n");
      rec_deinit(&r[i]);
    }
  }
  tb_http_server_stats(f.s.srv, &st);
  assert_int_equal(st.connections, 4); /* the first one and three more, reused in round 2 */
  fx_stop(&f);
}

static void fixed_body(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  uint8_t *body = malloc(100000);
  for (size_t i = 0; i < 100000; i++) body[i] = th_pattern(i);
  rec_t r;
  rec_init(&r, &f.loop);
  tb_http_header_t h = {"Content-Type", "application/octet-stream", 0, 0};
  tb_http_request_t rq = {.method = "POST", .url = url(&f, "/count"), .headers = &h, .nheaders = 1,
                          .body = body, .body_len = 100000};
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_string_equal(tb_buf_cstr(&r.body), "100000 ok\n");
  rec_deinit(&r);
  free(body);
  fx_stop(&f);
}

/* The body source: pattern bytes, TB_EAGAIN every few calls with a timer to resume. */
static void ready_again(uv_timer_t *t) {
  rec_t *r = t->data;
  if (r->call) tb_http_call_body_ready(r->call);
}

static long source(tb_http_call_t *call, uint8_t *buf, size_t cap, void *ud) {
  rec_t *r = ud;
  r->src_calls++;
  if (r->eagain_every && r->src_calls % r->eagain_every == 0) {
    if (!r->timer_inited) {
      uv_timer_init(r->loop, &r->ready_timer);
      r->ready_timer.data = r;
      r->timer_inited = true;
    }
    uv_timer_start(&r->ready_timer, ready_again, 1, 0);
    return TB_EAGAIN;
  }
  size_t n = 10000 + (size_t)(r->src_calls % 7) * 1000; /* uneven pieces */
  if (n > cap) n = cap;
  if (n > r->src_len - r->src_sent) n = (size_t)(r->src_len - r->src_sent);
  for (size_t i = 0; i < n; i++) buf[i] = th_pattern(r->src_sent + i);
  r->src_sent += n;
  return (long)n;
}

static void streamed_upload(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  /* Chunked, with pauses. */
  rec_t r;
  rec_init(&r, &f.loop);
  r.src_len = 5 << 20;
  r.eagain_every = 5;
  tb_http_request_t rq = {.method = "POST", .url = url(&f, "/count"), .body_source = source, .body_length = -1};
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_string_equal(tb_buf_cstr(&r.body), "5242880 ok\n");
  rec_deinit(&r);
  /* With a Content-Length. */
  rec_init(&r, &f.loop);
  r.src_len = 1 << 20;
  rq.body_length = 1 << 20;
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_string_equal(tb_buf_cstr(&r.body), "1048576 ok\n");
  rec_deinit(&r);
  /* A source that gives fewer bytes than it announced fails the call. */
  rec_init(&r, &f.loop);
  r.src_len = 1000;
  rq.body_length = 2000;
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, TB_EINVAL);
  rec_deinit(&r);
  fx_stop(&f);
}

static void toggle(uv_timer_t *t) {
  rec_t *r = t->data;
  if (r->call == NULL) return;
  static bool on = true;
  on = !on;
  if (on) tb_http_call_read_start(r->call);
  else tb_http_call_read_stop(r->call);
}

/* Up through the echo route and back down, 3 MiB, while the reader keeps pausing. */
static void streamed_both_ways(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  rec_t r;
  rec_init(&r, &f.loop);
  r.src_len = 3 << 20;
  r.eagain_every = 11;
  r.toggle_reading = true;
  uv_timer_init(&f.loop, &r.toggle_timer);
  r.toggle_timer.data = &r;
  uv_timer_start(&r.toggle_timer, toggle, 2, 2);
  tb_http_request_t rq = {.method = "PUT", .url = url(&f, "/echo"), .body_source = source, .body_length = -1};
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 3 << 20);
  assert_true(r.pattern_ok);
  rec_deinit(&r);
  tb_http_server_stats_t st;
  tb_http_server_stats(f.s.srv, &st);
  assert_true(st.queued_peak < (512 << 10));
  fx_stop(&f);
}

static void head_then_get(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  rec_t r;
  rec_init(&r, &f.loop);
  tb_http_request_t rq = {.method = "HEAD", .url = url(&f, "/hello")};
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.content_length, 6);
  assert_int_equal(r.body_len, 0);
  rec_deinit(&r);
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/hello"));
  assert_int_equal(r.err, 0);
  assert_true(r.reused);
  assert_string_equal(tb_buf_cstr(&r.body), "hello\n");
  rec_deinit(&r);
  fx_stop(&f);
}

static void ipv6_unix_and_names(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  th_server_t s6, s4, su;
  th_server_start(&s6, &loop, NULL, "[::1]:0");
  th_server_start(&s4, &loop, NULL, "127.0.0.1:0");
  char path[64], addr[80], u[128];
  snprintf(path, sizeof path, "/tmp/tb-http-client-%d.sock", (int)getpid());
  unlink(path);
  snprintf(addr, sizeof addr, "unix:%s", path);
  th_server_start(&su, &loop, NULL, addr);
  tb_http_client_t *cl;
  assert_int_equal(tb_http_client_new(&loop, NULL, &cl), 0);
  rec_t r;
  rec_init(&r, &loop);
  snprintf(u, sizeof u, "http://[::1]:%d/hello", s6.port);
  get(cl, &r, u);
  assert_int_equal(r.err, 0);
  assert_string_equal(tb_buf_cstr(&r.body), "hello\n");
  rec_deinit(&r);
  /* A unix socket: the URL gives target and Host. */
  rec_init(&r, &loop);
  tb_http_request_t rq = {.url = "http://localhost/stream?n=70000", .unix_socket = path};
  start(cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.body_len, 70000);
  assert_true(r.pattern_ok);
  rec_deinit(&r);
  /* "localhost" resolves to both families; whichever comes first, we reach the v4 server. */
  rec_init(&r, &loop);
  snprintf(u, sizeof u, "http://localhost:%d/hello", s4.port);
  get(cl, &r, u);
  assert_int_equal(r.err, 0);
  assert_string_equal(tb_buf_cstr(&r.body), "hello\n");
  rec_deinit(&r);
  bool closed = false;
  tb_http_client_close(cl, on_client_closed, &closed);
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
  th_server_stop(&s6);
  th_server_stop(&s4);
  th_server_stop(&su);
  unlink(path);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void errors(void **state) {
  fx_t f;
  tb_http_client_config_t ccfg = {.limits = {.max_body_bytes = 1000}};
  fx_start(&f, NULL, &ccfg);
  rec_t r;
  /* Nobody listens. */
  uv_loop_t other;
  uv_loop_init(&other);
  th_server_t gone;
  th_server_start(&gone, &other, NULL, "127.0.0.1:0");
  int dead_port = gone.port;
  th_server_stop(&gone);
  uv_loop_close(&other);
  char u[96];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/", dead_port);
  rec_init(&r, &f.loop);
  get(f.cl, &r, u);
  assert_int_equal(r.err, TB_ECONNREFUSED);
  assert_int_equal(r.responses, 0);
  rec_deinit(&r);
  /* A name that cannot resolve. */
  rec_init(&r, &f.loop);
  get(f.cl, &r, "http://no-such-host.invalid/");
  assert_int_equal(r.err, TB_ENOTFOUND);
  rec_deinit(&r);
  /* Silence longer than the timeout. */
  rec_init(&r, &f.loop);
  tb_http_request_t rq = {.url = url(&f, "/slow?ms=3000"), .timeout_ms = 150};
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, TB_ETIMEDOUT);
  rec_deinit(&r);
  /* A response body over the client's limit. */
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/stream?n=5000"));
  assert_int_equal(r.err, TB_ETOOBIG);
  rec_deinit(&r);
  /* A body cut short by the server. */
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/short"));
  assert_int_equal(r.err, TB_ECONNRESET);
  assert_string_equal(tb_buf_cstr(&r.body), "abc");
  rec_deinit(&r);
  /* Bad input fails at once and no callback runs. */
  char err[200];
  tb_errbuf_t eb = {err, sizeof err};
  tb_http_request_t bad = {.url = "ftp://x/"};
  rec_init(&r, &f.loop);
  assert_int_equal(tb_http_client_request(f.cl, &bad, &cbs, &r, NULL, &eb), TB_EINVAL);
  assert_non_null(strstr(err, "http://"));
  tb_http_header_t evil = {"X-A", "1\r\nX-B: 2", 0, 0};
  tb_http_request_t bad2 = {.url = url(&f, "/"), .headers = &evil, .nheaders = 1};
  assert_int_equal(tb_http_client_request(f.cl, &bad2, &cbs, &r, NULL, &eb), TB_EINVAL);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  assert_false(r.done);
  rec_deinit(&r);
  fx_stop(&f);
}

/* The server answers 413 while we are still uploading: the answer wins. */
static void early_answer(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  rec_t r;
  rec_init(&r, &f.loop);
  r.src_len = 20 << 20;
  tb_http_request_t rq = {.method = "POST", .url = url(&f, "/reject"), .body_source = source, .body_length = -1};
  start(f.cl, &r, &rq);
  wait_done(&r);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 413);
  assert_true(r.src_sent < r.src_len);
  rec_deinit(&r);
  fx_stop(&f);
  /* The server's body limit stops a chunked upload part way. */
  tb_http_server_config_t scfg = {.limits = {.max_body_bytes = 1 << 20}};
  fx_start(&f, &scfg, NULL);
  rec_init(&r, &f.loop);
  r.src_len = 64 << 20;
  tb_http_request_t rq2 = {.method = "POST", .url = url(&f, "/count"), .body_source = source, .body_length = -1};
  start(f.cl, &r, &rq2);
  wait_done(&r);
  if (r.err) fprintf(stderr, "limit: %s after %llu bytes\n", tb_err_name(r.err), (unsigned long long)r.src_sent);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(tb_buf_cstr(&r.body), "\"status\":413"));
  rec_deinit(&r);
  fx_stop(&f);
}

static void cancel_and_close(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  rec_t a, b;
  rec_init(&a, &f.loop);
  rec_init(&b, &f.loop);
  tb_http_request_t rq = {.url = url(&f, "/slow?ms=2000")};
  start(f.cl, &a, &rq);
  start(f.cl, &b, &rq);
  for (int i = 0; i < 5; i++) uv_run(&f.loop, UV_RUN_NOWAIT);
  tb_http_call_cancel(a.call);
  wait_done(&a);
  assert_int_equal(a.err, TB_ECANCELED);
  /* Closing the client ends the other call too. */
  tb_http_client_close(f.cl, on_client_closed, &f.cl_closed);
  wait_done(&b);
  assert_int_equal(b.err, TB_ECANCELED);
  while (!f.cl_closed) uv_run(&f.loop, UV_RUN_ONCE);
  rec_deinit(&a);
  rec_deinit(&b);
  th_server_stop(&f.s);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

static void noop_timer(uv_timer_t *t) {}

/* Runs the loop for `ms` milliseconds. */
static void sleep_loop(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, noop_timer, ms, 0);
  while (uv_is_active((uv_handle_t *)&t)) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* A pooled connection the server closed is not used again. */
static void server_closes_idle(void **state) {
  fx_t f;
  tb_http_server_config_t scfg = {.idle_timeout_ms = 100};
  fx_start(&f, &scfg, NULL);
  rec_t r;
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/hello"));
  assert_int_equal(r.err, 0);
  rec_deinit(&r);
  sleep_loop(&f.loop, 300);
  rec_init(&r, &f.loop);
  get(f.cl, &r, url(&f, "/hello"));
  assert_int_equal(r.err, 0);
  assert_false(r.reused);
  assert_string_equal(tb_buf_cstr(&r.body), "hello\n");
  rec_deinit(&r);
  fx_stop(&f);
}

/* Our client and curl fetch the same bytes. */
static void same_bytes_as_curl(void **state) {
  fx_t f;
  fx_start(&f, NULL, NULL);
  const char *paths[] = {"/stream?n=200000", "/hello", "/nope"};
  for (size_t i = 0; i < 3; i++) {
    rec_t r;
    rec_init(&r, &f.loop);
    get(f.cl, &r, url(&f, paths[i]));
    assert_int_equal(r.err, 0);
    th_curl_t c;
    const char *args[] = {"-w", "\n%{http_code} %{content_type}", url(&f, paths[i]), NULL};
    th_curl_run(&f.loop, args, 0, 1 << 20, &c);
    assert_int_equal(c.exit_status, 0);
    char tail[128];
    snprintf(tail, sizeof tail, "\n%d %s", r.status, r.content_type);
    assert_int_equal(c.out.len, r.body.len + strlen(tail));
    assert_memory_equal(c.out.data, r.body.data, r.body.len);
    assert_string_equal(tb_buf_cstr(&c.out) + r.body.len, tail);
    th_curl_free(&c);
    rec_deinit(&r);
  }
  fx_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(simple_get),
      cmocka_unit_test(keep_alive_pool),
      cmocka_unit_test(fixed_body),
      cmocka_unit_test(streamed_upload),
      cmocka_unit_test(streamed_both_ways),
      cmocka_unit_test(head_then_get),
      cmocka_unit_test(ipv6_unix_and_names),
      cmocka_unit_test(errors),
      cmocka_unit_test(early_answer),
      cmocka_unit_test(cancel_and_close),
      cmocka_unit_test(server_closes_idle),
      cmocka_unit_test(same_bytes_as_curl),
  };
  return TB_RUN(tests);
}
