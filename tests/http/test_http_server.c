/*
 * test_http_server.c — the server on loopback, driven by the curl binary and by raw
 * sockets: keep-alive, streaming both ways, the limits and their statuses, pipelining,
 * HEAD, Expect: 100-continue, connection close, graceful shutdown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "test.h"

typedef struct fx {
  uv_loop_t loop;
  th_server_t s;
  char base[64];
} fx_t;

static void fx_start(fx_t *f, const tb_http_server_config_t *cfg) {
  assert_int_equal(uv_loop_init(&f->loop), 0);
  th_server_start(&f->s, &f->loop, cfg, "127.0.0.1:0");
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->s.port);
}

static void fx_stop(fx_t *f) {
  th_server_stop(&f->s);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle was closed */
}

static const char *url(fx_t *f, const char *path) {
  static char buf[4][256];
  static int i;
  char *u = buf[i++ % 4];
  snprintf(u, 256, "%s%s", f->base, path);
  return u;
}

/* Lets the server finish closing what the client just left. */
static void settle(fx_t *f) {
  for (int i = 0; i < 50 && f->s.done_err == 0; i++) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(5000);
  }
}

static void dump(const char *what, const th_curl_t *c) {
  fprintf(stderr, "%s: exit %d\n--- stdout\n%s\n--- stderr\n%s\n", what, c->exit_status, tb_buf_cstr(&c->out),
          tb_buf_cstr(&c->err));
}

/* Two requests on one connection: curl --next reuses it, the server accepted once. */
static void keep_alive(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_curl_t c;
  const char *args[] = {"-v", url(&f, "/hello"), "--next", url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, args, 0, 1 << 20, &c);
  if (c.exit_status) dump("keep_alive", &c);
  assert_int_equal(c.exit_status, 0);
  assert_string_equal(tb_buf_cstr(&c.out), "hello\nhello\n");
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "Re-using existing connection"), 1);
  tb_http_server_stats_t st;
  tb_http_server_stats(f.s.srv, &st);
  assert_int_equal(st.connections, 1);
  assert_int_equal(st.requests, 2);
  th_curl_free(&c);
  fx_stop(&f);
}

/* A chunked upload from a pipe comes back byte for byte, chunked. */
static void chunked_upload_echoed(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_curl_t c;
  const char *args[] = {"-v", "-T", "-", "-H", "Transfer-Encoding: chunked", url(&f, "/echo"), NULL};
  th_curl_run(&f.loop, args, 1 << 20, 0, &c);
  if (c.exit_status) dump("chunked_upload_echoed", &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(c.out_len, 1 << 20);
  assert_true(c.out_pattern_ok);
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "> Transfer-Encoding: chunked"), 1);
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< Transfer-Encoding: chunked"), 1);
  assert_int_equal(f.s.body_bytes, 1 << 20);
  th_curl_free(&c);
  fx_stop(&f);
}

/* 10 MiB up and back, and 10 MiB down: the server never holds more than a read buffer
 * and what the route lets queue (it pauses reading above 256 KiB). */
static void ten_mib_streamed(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  const uint64_t ten = (uint64_t)10 << 20;
  th_curl_t c;
  const char *up[] = {"-T", "-", url(&f, "/echo"), NULL};
  th_curl_run(&f.loop, up, ten, 0, &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(c.out_len, ten);
  assert_true(c.out_pattern_ok);
  th_curl_free(&c);
  tb_http_server_stats_t st;
  tb_http_server_stats(f.s.srv, &st);
  fprintf(stderr, "10 MiB echo: most queued %zu bytes, route saw %zu\n", st.queued_peak, f.s.max_queued);
  assert_true(st.queued_peak < (512 << 10));
  assert_true(f.s.max_queued < (512 << 10));

  char path[64];
  snprintf(path, sizeof path, "/stream?n=%llu", (unsigned long long)ten);
  const char *down[] = {url(&f, path), NULL};
  th_curl_run(&f.loop, down, 0, 0, &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(c.out_len, ten);
  assert_true(c.out_pattern_ok);
  th_curl_free(&c);
  tb_http_server_stats(f.s.srv, &st);
  assert_true(st.queued_peak < (512 << 10));
  fx_stop(&f);
}

static const tb_http_server_config_t limited = {
    .limits = {.max_head_bytes = 8192, .max_headers = 32, .max_body_bytes = 1 << 20},
    .idle_timeout_ms = 300,
};

/* curl's output with -w '\n%{http_code}': the body, a newline, the status. */
static int status_of(const th_curl_t *c) {
  const char *s = tb_buf_cstr(&c->out), *nl = strrchr(s, '\n');
  return nl ? atoi(nl + 1) : -1;
}

static void header_limits_431(void **state) {
  fx_t f;
  fx_start(&f, &limited);
  th_curl_t c;
  char big[9100];
  memcpy(big, "X-Big: ", 7);
  memset(big + 7, 'a', sizeof big - 8);
  big[sizeof big - 1] = '\0';
  const char *a1[] = {"-w", "\n%{http_code}", "-H", big, url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, a1, 0, 1 << 20, &c);
  assert_int_equal(status_of(&c), 431);
  assert_non_null(strstr(tb_buf_cstr(&c.out), "\"error\":\"header_fields_too_large\""));
  assert_non_null(strstr(tb_buf_cstr(&c.out), "larger than 8192 bytes"));
  th_curl_free(&c);

  const char *a2[96] = {"-w", "\n%{http_code}"};
  size_t n = 2;
  static char hs[40][32];
  for (int i = 0; i < 40; i++) {
    snprintf(hs[i], sizeof hs[i], "X-N%d: v", i);
    a2[n++] = "-H";
    a2[n++] = hs[i];
  }
  a2[n++] = url(&f, "/hello");
  a2[n] = NULL;
  th_curl_run(&f.loop, a2, 0, 1 << 20, &c);
  assert_int_equal(status_of(&c), 431);
  assert_non_null(strstr(tb_buf_cstr(&c.out), "more than 32 header fields"));
  th_curl_free(&c);
  /* Within the limits, the same server answers. */
  const char *a3[] = {"-w", "\n%{http_code}", url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, a3, 0, 1 << 20, &c);
  assert_int_equal(status_of(&c), 200);
  th_curl_free(&c);
  fx_stop(&f);
}

static void body_limit_413(void **state) {
  fx_t f;
  fx_start(&f, &limited);
  th_curl_t c;
  /* Declared with Content-Length: refused before the body. */
  const char *a1[] = {"-w", "\n%{http_code}", "--data-binary", "@-", url(&f, "/count"), NULL};
  th_curl_run(&f.loop, a1, 2 << 20, 1 << 20, &c);
  assert_int_equal(status_of(&c), 413);
  assert_non_null(strstr(tb_buf_cstr(&c.out), "\"error\":\"content_too_large\""));
  th_curl_free(&c);
  /* Chunked: refused when the body passes the limit, and the route learns why. */
  const char *a2[] = {"-w", "\n%{http_code}", "-T", "-", url(&f, "/count"), NULL};
  th_curl_run(&f.loop, a2, 2 << 20, 1 << 20, &c);
  assert_int_equal(status_of(&c), 413);
  assert_non_null(strstr(tb_buf_cstr(&c.out), "\"status\":413"));
  th_curl_free(&c);
  settle(&f);
  assert_int_equal(f.s.last_done_err, TB_ETOOBIG);
  /* Exactly the limit is accepted. */
  const char *a3[] = {"--data-binary", "@-", url(&f, "/count"), NULL};
  th_curl_run(&f.loop, a3, 1 << 20, 1 << 20, &c);
  assert_string_equal(tb_buf_cstr(&c.out), "1048576 ok\n");
  th_curl_free(&c);
  fx_stop(&f);
}

static void malformed_400(void **state) {
  fx_t f;
  fx_start(&f, &limited);
  th_raw_t r;
  const char *bad[] = {"GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"};
  th_raw_run(&f.loop, f.s.port, bad, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  const char *got = tb_buf_cstr(&r.got);
  assert_true(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
  assert_non_null(strstr(got, "Connection: close\r\n"));
  assert_non_null(strstr(got, "\"error\":\"bad_request\""));
  th_raw_free(&r);
  const char *tls[] = {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"};
  th_raw_run(&f.loop, f.s.port, tls, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  assert_true(strncmp(tb_buf_cstr(&r.got), "HTTP/1.1 400 ", 13) == 0);
  th_raw_free(&r);
  fx_stop(&f);
}

static void idle_408(void **state) {
  fx_t f;
  fx_start(&f, &limited); /* idle 300 ms */
  th_raw_t r;
  /* A head that stops half way. */
  const char *part[] = {"GET /hello HTTP/1.1\r\nHo"};
  th_raw_run(&f.loop, f.s.port, part, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  assert_true(strncmp(tb_buf_cstr(&r.got), "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
  assert_non_null(strstr(tb_buf_cstr(&r.got), "\"error\":\"request_timeout\""));
  th_raw_free(&r);
  /* A body that stops half way; the route reading it learns TB_ETIMEDOUT. */
  const char *body[] = {"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this"};
  th_raw_run(&f.loop, f.s.port, body, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  assert_true(strncmp(tb_buf_cstr(&r.got), "HTTP/1.1 408 ", 13) == 0);
  settle(&f);
  assert_int_equal(f.s.last_done_err, TB_ETIMEDOUT);
  th_raw_free(&r);
  /* An idle keep-alive connection is closed without a word. */
  const char *one[] = {"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"};
  th_raw_run(&f.loop, f.s.port, one, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  assert_int_equal(th_count(tb_buf_cstr(&r.got), "HTTP/1.1"), 1);
  assert_non_null(strstr(tb_buf_cstr(&r.got), "\r\n\r\nhello\n"));
  th_raw_free(&r);
  fx_stop(&f);
}

/* A trickled head still has to arrive within head_timeout_ms. */
static void slow_head_408(void **state) {
  fx_t f;
  tb_http_server_config_t cfg = {.idle_timeout_ms = 1000, .head_timeout_ms = 250};
  fx_start(&f, &cfg);
  th_raw_t r;
  const char *drip[] = {"GET /hello HTTP/1.1\r\n", "X-A: 1\r\n", "X-B: 2\r\n", "X-C: 3\r\n", "X-D: 4\r\n", "\r\n"};
  th_raw_run(&f.loop, f.s.port, drip, 6, 100, 3000, &r);
  assert_true(r.closed_by_server);
  assert_true(strncmp(tb_buf_cstr(&r.got), "HTTP/1.1 408 ", 13) == 0);
  assert_non_null(strstr(tb_buf_cstr(&r.got), "took longer than 250 ms"));
  th_raw_free(&r);
  fx_stop(&f);
}

/* Three requests in one write are answered in order; the last asks to close. */
static void pipelined(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_raw_t r;
  const char *reqs[] = {"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
                        "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /stream?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"};
  th_raw_run(&f.loop, f.s.port, reqs, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  const char *got = tb_buf_cstr(&r.got);
  assert_int_equal(th_count(got, "HTTP/1.1 200 OK\r\n"), 4);
  const char *p1 = strstr(got, "\r\n\r\nhello\n");
  const char *p2 = strstr(got, "\r\n\r\nabcde");
  const char *p3 = strstr(got, "Content-Length: 6\r\n\r\nHTTP/1.1 200 OK"); /* HEAD: no body */
  assert_non_null(p1);
  assert_non_null(p2);
  assert_non_null(p3);
  assert_true(p1 < p2 && p2 < p3);
  /* The last answer is chunked: 3 pattern bytes (0, 7, 14), then the last chunk. */
  assert_true(r.got.len > 13);
  assert_memory_equal(r.got.data + r.got.len - 13, "3\r\n\x00\x07\x0e\r\n0\r\n\r\n", 13);
  tb_http_server_stats_t st;
  tb_http_server_stats(f.s.srv, &st);
  assert_int_equal(st.connections, 1);
  assert_int_equal(st.requests, 4);
  th_raw_free(&r);
  fx_stop(&f);
}

/* A route that answers without reading the body: a small rest is read and dropped and
 * the connection kept; a large one gets Connection: close. */
static void unread_body(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_raw_t r;
  const char *small[] = {"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
                         "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"};
  th_raw_run(&f.loop, f.s.port, small, 1, 0, 3000, &r);
  assert_true(r.closed_by_server);
  assert_int_equal(th_count(tb_buf_cstr(&r.got), "HTTP/1.1 200 OK\r\n"), 2);
  assert_int_equal(th_count(tb_buf_cstr(&r.got), "hello\n"), 2);
  th_raw_free(&r);
  th_curl_t c;
  const char *big[] = {"-v", "--data-binary", "@-", url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, big, 1 << 20, 1 << 20, &c);
  assert_string_equal(tb_buf_cstr(&c.out), "hello\n");
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< Connection: close"), 1);
  th_curl_free(&c);
  fx_stop(&f);
}

/* A client that leaves in the middle of a long response ends the exchange with an error
 * the route sees, and nothing is left behind. */
static void client_leaves(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_raw_t r;
  const char *req[] = {"GET /stream?n=500000000 HTTP/1.1\r\nHost: x\r\n\r\n"};
  th_raw_run(&f.loop, f.s.port, req, 1, 0, 200, &r);
  assert_false(r.closed_by_server);
  assert_true(r.got.len > 0);
  th_raw_free(&r);
  settle(&f);
  assert_int_equal(f.s.done_err, 1);
  assert_true(f.s.last_done_err == TB_ECONNRESET || f.s.last_done_err == TB_EPIPE);
  fx_stop(&f);
}

/* A client that leaves while the server drops the rest of a body it answered early (a
 * 413 to a chunked upload): the exchange ends at once, not at the idle timeout. */
static void client_leaves_while_drained(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_raw_t r;
  const char *req[] = {"POST /reject HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"};
  th_raw_run(&f.loop, f.s.port, req, 1, 0, 200, &r);
  assert_non_null(strstr(tb_buf_cstr(&r.got), "413"));
  th_raw_free(&r);
  for (int i = 0; i < 100 && f.s.done_ok + f.s.done_err == 0; i++) {
    uv_run(&f.loop, UV_RUN_NOWAIT);
    usleep(5000);
  }
  assert_int_equal(f.s.done_ok + f.s.done_err, 1);
  fx_stop(&f);
}

/* A handler that aborts mid-response: the client gets the bytes sent so far and sees the
 * transfer cut short (curl exit 18), and on_done says TB_ECONNABORTED. */
static void resp_abort(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_curl_t c;
  const char *args[] = {url(&f, "/abort"), NULL};
  th_curl_run(&f.loop, args, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 18);
  assert_string_equal(tb_buf_cstr(&c.out), "partial");
  th_curl_free(&c);
  settle(&f);
  assert_int_equal(f.s.done_err, 1);
  assert_int_equal(f.s.last_done_err, TB_ECONNABORTED);
  fx_stop(&f);
}

static void head_request(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_curl_t c;
  const char *args[] = {"-I", url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, args, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 0);
  assert_true(strncmp(tb_buf_cstr(&c.out), "HTTP/1.1 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(tb_buf_cstr(&c.out), "Content-Length: 6\r\n"));
  assert_null(strstr(tb_buf_cstr(&c.out), "hello"));
  th_curl_free(&c);
  fx_stop(&f);
}

static void expect_continue(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_curl_t c;
  /* The route reads the body: 100 Continue, then the answer. */
  const char *a1[] = {"-v", "-H", "Expect: 100-continue", "--data-binary", "@-", url(&f, "/count"), NULL};
  th_curl_run(&f.loop, a1, 100000, 1 << 20, &c);
  if (c.exit_status) dump("expect_continue", &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< HTTP/1.1 100 Continue"), 1);
  assert_string_equal(tb_buf_cstr(&c.out), "100000 ok\n");
  th_curl_free(&c);
  /* The route refuses without reading: no 100, the final answer, and a close. */
  const char *a2[] = {"-v", "-w", "\n%{http_code}", "-H", "Expect: 100-continue", "--data-binary", "@-",
                      url(&f, "/reject"), NULL};
  th_curl_run(&f.loop, a2, 100000, 1 << 20, &c);
  assert_int_equal(status_of(&c), 413);
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "100 Continue"), 0);
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< Connection: close"), 1);
  th_curl_free(&c);
  fx_stop(&f);
}

static void connection_close(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  th_curl_t c;
  tb_http_server_stats_t st;
  /* HTTP/1.0 without keep-alive: one connection per request. */
  const char *a1[] = {"-v", "-0", url(&f, "/hello"), "--next", "-0", url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, a1, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 0);
  assert_string_equal(tb_buf_cstr(&c.out), "hello\nhello\n");
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< Connection: close"), 2);
  tb_http_server_stats(f.s.srv, &st);
  assert_int_equal(st.connections, 2);
  th_curl_free(&c);
  /* Connection: close from an HTTP/1.1 client is honoured. */
  const char *a2[] = {"-v", "-H", "Connection: close", url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, a2, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< Connection: close"), 1);
  th_curl_free(&c);
  /* An unknown length to HTTP/1.0 is delimited by the close. */
  const char *a3[] = {"-0", url(&f, "/stream?n=100000"), NULL};
  th_curl_run(&f.loop, a3, 0, 0, &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(c.out_len, 100000);
  assert_true(c.out_pattern_ok);
  th_curl_free(&c);
  /* A body shorter than its Content-Length ends in a close the client notices. */
  const char *a4[] = {url(&f, "/short"), NULL};
  th_curl_run(&f.loop, a4, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 18); /* CURLE_PARTIAL_FILE */
  th_curl_free(&c);
  fx_stop(&f);
}

static void ipv6_and_unix_socket(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  th_server_t s6, su;
  th_server_start(&s6, &loop, NULL, "[::1]:0");
  char u[96], path[64];
  snprintf(u, sizeof u, "http://[::1]:%d/hello", s6.port);
  th_curl_t c;
  const char *a1[] = {"-g", u, NULL};
  th_curl_run(&loop, a1, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 0);
  assert_string_equal(tb_buf_cstr(&c.out), "hello\n");
  th_curl_free(&c);
  snprintf(path, sizeof path, "/tmp/tb-http-test-%d.sock", (int)getpid());
  unlink(path);
  char addr[80];
  snprintf(addr, sizeof addr, "unix:%s", path);
  th_server_start(&su, &loop, NULL, addr);
  const char *a2[] = {"--unix-socket", path, "http://localhost/echo", "--data-binary", "@-", NULL};
  th_curl_run(&loop, a2, 5000, 0, &c);
  assert_int_equal(c.exit_status, 0);
  assert_int_equal(c.out_len, 5000);
  assert_true(c.out_pattern_ok);
  th_curl_free(&c);
  th_server_stop(&s6);
  th_server_stop(&su);
  unlink(path);
  uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Closing the server lets the exchange in flight finish, then refuses new ones. */
typedef struct closer {
  th_server_t *s;
  uv_timer_t t;
} closer_t;

static void on_closed_flag(void *ud) { ((th_server_t *)ud)->closed = true; }
/* Closes the server once the slow request is in the handler's hands (not merely in the
 * listen backlog, where closing the listener resets it). */
static void close_now(uv_timer_t *t) {
  closer_t *c = t->data;
  tb_http_server_stats_t st;
  tb_http_server_stats(c->s->srv, &st);
  if (st.requests == 0) return;
  tb_http_server_close(c->s->srv, on_closed_flag, c->s);
  uv_close((uv_handle_t *)t, NULL);
}

static void graceful_close(void **state) {
  fx_t f;
  fx_start(&f, NULL);
  closer_t cl = {.s = &f.s};
  uv_timer_init(&f.loop, &cl.t);
  cl.t.data = &cl;
  uv_timer_start(&cl.t, close_now, 5, 5);
  th_curl_t c;
  const char *a1[] = {"-v", url(&f, "/slow?ms=400"), NULL};
  th_curl_run(&f.loop, a1, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 0);
  assert_string_equal(tb_buf_cstr(&c.out), "late\n");
  assert_int_equal(th_count(tb_buf_cstr(&c.err), "< Connection: close"), 1);
  th_curl_free(&c);
  while (!f.s.closed) uv_run(&f.loop, UV_RUN_ONCE);
  const char *a2[] = {url(&f, "/hello"), NULL};
  th_curl_run(&f.loop, a2, 0, 1 << 20, &c);
  assert_int_equal(c.exit_status, 7); /* CURLE_COULDNT_CONNECT */
  th_curl_free(&c);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&f.loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(keep_alive),
      cmocka_unit_test(chunked_upload_echoed),
      cmocka_unit_test(ten_mib_streamed),
      cmocka_unit_test(header_limits_431),
      cmocka_unit_test(body_limit_413),
      cmocka_unit_test(malformed_400),
      cmocka_unit_test(idle_408),
      cmocka_unit_test(slow_head_408),
      cmocka_unit_test(pipelined),
      cmocka_unit_test(unread_body),
      cmocka_unit_test(client_leaves),
      cmocka_unit_test(resp_abort),
      cmocka_unit_test(client_leaves_while_drained),
      cmocka_unit_test(head_request),
      cmocka_unit_test(expect_continue),
      cmocka_unit_test(connection_close),
      cmocka_unit_test(ipv6_and_unix_socket),
      cmocka_unit_test(graceful_close),
  };
  return TB_RUN(tests);
}
