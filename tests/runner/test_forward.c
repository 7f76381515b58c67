/*
 * test_forward.c — the forwarding backend (lib/runner/forward.c) against a real HTTP
 * server: tests/node/upstream.c, started as a process on loopback. The io callbacks are
 * in-memory here (a body source, a response sink), as the runner's bridge would be.
 *
 * Usage: runner_forward UPSTREAM_BINARY
 */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/runner/runner_int.h"
#include "tb/alloc.h"
#include "test.h"

static const char *upstream_bin;
static pid_t upstream_pid;
static char upstream_addr[64];

/* ---- in-memory io ---- */

typedef struct sink {
  const uint8_t *body; /* request body source */
  size_t body_len, body_off, piece;
  int status, nheads;
  char headers[4096];
  tb_buf_t out;
} sink_t;

static int64_t src_read(void *arg, uint8_t *buf, size_t len) {
  sink_t *s = arg;
  size_t n = s->body_len - s->body_off;
  if (n > len) n = len;
  if (s->piece && n > s->piece) n = s->piece;
  memcpy(buf, s->body + s->body_off, n);
  s->body_off += n;
  return (int64_t)n;
}

static int snk_head(void *arg, int status, const char *reason, const tb_wagi_header_t *hs, size_t n) {
  (void)reason;
  sink_t *s = arg;
  s->status = status;
  s->nheads++;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(s->headers);
    snprintf(s->headers + l, sizeof s->headers - l, "%s: %s\n", hs[i].name, hs[i].value);
  }
  return 0;
}

static int snk_body(void *arg, const uint8_t *data, size_t len) { return tb_buf_append(&((sink_t *)arg)->out, data, len); }

static int serve(tb__fwd_t *f, sink_t *s, const char *method, const char *path, const char *query, int64_t clen,
                 tb_wagi_result_t *res) {
  tb_buf_init(&s->out, (size_t)64 << 20);
  tb_wagi_header_t hs[] = {{"X-Test", "yes"}, {"Host", "ignored.example"}};
  tb_wagi_request_t rq = {.method = method, .path = path, .query = query, .protocol = "HTTP/1.1",
                          .server_name = "app.example", .content_length = clen, .headers = hs, .nheaders = 2};
  tb_wagi_io_t io = {.read_body = src_read, .write_head = snk_head, .write_body = snk_body, .arg = s};
  return tb__fwd_serve(f, &rq, &io, res);
}

/* ---- the upstream process ---- */

static int start_upstream(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char *argv[] = {(char *)upstream_bin, "--listen", "127.0.0.1:0", NULL};
  assert_int_equal(posix_spawn(&upstream_pid, upstream_bin, &fa, NULL, argv, NULL), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  char line[200] = "";
  size_t got = 0;
  while (got < sizeof line - 1 && !strchr(line, '\n')) {
    ssize_t n = read(fds[0], line + got, sizeof line - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    line[got] = 0;
  }
  close(fds[0]);
  const char *p = strstr(line, "port ");
  assert_non_null(p);
  snprintf(upstream_addr, sizeof upstream_addr, "127.0.0.1:%d", atoi(p + 5));
  return 0;
}

static int stop_upstream(void **state) {
  (void)state;
  kill(upstream_pid, SIGKILL);
  waitpid(upstream_pid, NULL, 0);
  return 0;
}

/* ---- tests ---- */

static void test_get_and_headers(void **state) {
  (void)state;
  tb__fwd_t *f = NULL;
  assert_int_equal(tb__fwd_new(upstream_addr, 5000, &f, NULL), 0);
  sink_t s = {0};
  tb_wagi_result_t res;
  assert_int_equal(serve(f, &s, "GET", "/inspect", "a=1", 0, &res), 0);
  assert_int_equal(s.status, 200);
  assert_int_equal(res.status, 200);
  assert_true(res.head_sent);
  tb_buf_putc(&s.out, 0);
  const char *body = (const char *)s.out.data;
  assert_non_null(strstr(body, "\"target\":\"/inspect?a=1\""));
  assert_non_null(strstr(body, "X-Test"));
  assert_non_null(strstr(body, "app.example")); /* Host: the request's server name */
  assert_null(strstr(body, "ignored.example"));
  tb_buf_deinit(&s.out);
  tb__fwd_free(f);
}

static void test_echo_streams_both_ways(void **state) {
  (void)state;
  tb__fwd_t *f = NULL;
  assert_int_equal(tb__fwd_new(upstream_addr, 5000, &f, NULL), 0);
  size_t n = (size_t)8 << 20; /* larger than any socket buffer pair: needs interleaving */
  uint8_t *body = tb_malloc(n);
  for (size_t i = 0; i < n; i++) body[i] = (uint8_t)(i * 7 + (i >> 13));
  for (int chunked = 0; chunked < 2; chunked++) {
    sink_t s = {.body = body, .body_len = n, .piece = 50000};
    tb_wagi_result_t res;
    assert_int_equal(serve(f, &s, "POST", "/echo", NULL, chunked ? -1 : (int64_t)n, &res), 0);
    assert_int_equal(s.status, 200);
    assert_int_equal(s.out.len, n);
    assert_memory_equal(s.out.data, body, n);
    assert_int_equal(res.body_in, n);
    tb_buf_deinit(&s.out);
  }
  tb_free(body);
  tb__fwd_free(f);
}

static void test_keep_alive(void **state) {
  (void)state;
  tb__fwd_t *f = NULL;
  assert_int_equal(tb__fwd_new(upstream_addr, 5000, &f, NULL), 0);
  sink_t s = {0};
  tb_wagi_result_t res;
  assert_int_equal(serve(f, &s, "GET", "/stats", NULL, 0, &res), 0);
  tb_buf_putc(&s.out, 0);
  long before = atol(strstr((char *)s.out.data, "\"connections\":") + 14);
  tb_buf_deinit(&s.out);
  for (int i = 0; i < 20; i++) {
    sink_t t = {0};
    assert_int_equal(serve(f, &t, "GET", "/fixed", NULL, 0, &res), 0);
    assert_int_equal(t.status, 200);
    tb_buf_deinit(&t.out);
  }
  sink_t u = {0};
  assert_int_equal(serve(f, &u, "GET", "/stats", NULL, 0, &res), 0);
  tb_buf_putc(&u.out, 0);
  long after = atol(strstr((char *)u.out.data, "\"connections\":") + 14);
  tb_buf_deinit(&u.out);
  assert_int_equal(after, before); /* every request on the one kept connection */
  tb__fwd_free(f);
}

static void test_errors(void **state) {
  (void)state;
  tb_wagi_result_t res;
  /* Status and body pass through. */
  tb__fwd_t *f = NULL;
  assert_int_equal(tb__fwd_new(upstream_addr, 300, &f, NULL), 0);
  sink_t s = {0};
  assert_int_equal(serve(f, &s, "GET", "/status/418", NULL, 0, &res), 0);
  assert_int_equal(s.status, 418);
  tb_buf_deinit(&s.out);
  /* Silence past the timeout before the head: 504. */
  sink_t t = {0};
  assert_int_equal(serve(f, &t, "GET", "/slowhead", "ms=2000", 0, &res), 0);
  assert_int_equal(t.status, 504);
  assert_non_null(strstr(res.error, "did not answer"));
  tb_buf_deinit(&t.out);
  /* Cut after the head: the response is truncated. */
  sink_t u = {0};
  assert_int_equal(serve(f, &u, "GET", "/die", NULL, 0, &res), TB_ETRAP);
  assert_true(res.truncated);
  assert_int_equal(u.status, 200);
  tb_buf_deinit(&u.out);
  tb__fwd_free(f);
  /* Nobody listening: 502 naming the address. */
  assert_int_equal(tb__fwd_new("127.0.0.1:1", 1000, &f, NULL), 0);
  sink_t v = {0};
  assert_int_equal(serve(f, &v, "GET", "/", NULL, 0, &res), 0);
  assert_int_equal(v.status, 502);
  assert_non_null(strstr(res.error, "127.0.0.1:1"));
  tb_buf_deinit(&v.out);
  tb__fwd_free(f);
  /* Addresses it refuses. */
  char msg[200] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb__fwd_new("app.example:80", 0, &f, &eb), TB_EINVAL);
  assert_non_null(strstr(msg, "numeric"));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s UPSTREAM\n", argv[0]);
    return 2;
  }
  upstream_bin = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_and_headers),
      cmocka_unit_test(test_echo_streams_both_ways),
      cmocka_unit_test(test_keep_alive),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, start_upstream, stop_upstream);
}
