/* harness.c — test server routes, the curl runner and the raw client (harness.h). */
#include "harness.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/alloc.h"

#ifndef TH_CURL
#define TH_CURL "curl"
#endif

uint8_t th_pattern(uint64_t i) { return (uint8_t)((i * 7 + i / 251) & 0xff); }

/* Routes ---------------------------------------------------------------------------------- */

typedef struct rctx {
  th_server_t *s;
  tb_http_req_t *req;
  uint64_t count, n, sent;
  bool pattern_ok, paused, has_timer;
  uv_timer_t timer;
} rctx_t;

static void free_ctx_cb(uv_handle_t *h) { free(h->data); }

static void on_done(tb_http_req_t *req, int err, void *ud) {
  rctx_t *c = ud;
  if (err == 0) c->s->done_ok++;
  else c->s->done_err++;
  c->s->last_done_err = err;
  if (c->has_timer) {
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->timer, free_ctx_cb);
  } else {
    free(c);
  }
}

static uint64_t query_num(const char *target, const char *key, uint64_t dflt) {
  const char *q = strchr(target, '?');
  if (q == NULL) return dflt;
  const char *p = strstr(q, key);
  if (p == NULL) return dflt;
  return strtoull(p + strlen(key), NULL, 10);
}

/* /echo: every piece read is written back; reading pauses while much is queued. */
static void echo_data(tb_http_req_t *req, const uint8_t *d, size_t n, void *ud);
static void echo_end(tb_http_req_t *req, void *ud) { tb_http_resp_end(req); }

static void echo_written_resume(tb_http_req_t *req, int status, void *ud) {
  rctx_t *c = ud;
  if (status == 0 && c->paused && tb_http_resp_queued(req) < (64 << 10)) {
    c->paused = false;
    tb_http_req_read_start(req, echo_data, echo_end, c);
  }
}

static void echo_data(tb_http_req_t *req, const uint8_t *d, size_t n, void *ud) {
  rctx_t *c = ud;
  c->s->body_bytes += n;
  if (tb_http_resp_write(req, d, n, echo_written_resume, c) != 0) return;
  size_t q = tb_http_resp_queued(req);
  if (q > c->s->max_queued) c->s->max_queued = q;
  if (q > (256 << 10)) {
    c->paused = true;
    tb_http_req_read_stop(req);
  }
}

/* /count */
static void count_data(tb_http_req_t *req, const uint8_t *d, size_t n, void *ud) {
  rctx_t *c = ud;
  for (size_t i = 0; i < n; i++)
    if (d[i] != th_pattern(c->count + i)) c->pattern_ok = false;
  c->count += n;
  c->s->body_bytes += n;
}

static void count_end(tb_http_req_t *req, void *ud) {
  rctx_t *c = ud;
  char text[64];
  int len = snprintf(text, sizeof text, "%llu %s\n", (unsigned long long)c->count, c->pattern_ok ? "ok" : "bad");
  tb_http_resp_send(req, 200, "text/plain", text, (size_t)len);
}

/* /stream */
static void stream_pump(tb_http_req_t *req, rctx_t *c);
static void stream_written(tb_http_req_t *req, int status, void *ud) {
  if (status == 0) stream_pump(req, ud);
}

static void stream_pump(tb_http_req_t *req, rctx_t *c) {
  uint8_t piece[16 << 10];
  while (c->sent < c->n && tb_http_resp_queued(req) < (128 << 10)) {
    size_t len = c->n - c->sent < sizeof piece ? (size_t)(c->n - c->sent) : sizeof piece;
    for (size_t i = 0; i < len; i++) piece[i] = th_pattern(c->sent + i);
    c->sent += len;
    if (tb_http_resp_write(req, piece, len, stream_written, c) != 0) return;
  }
  if (c->sent == c->n && tb_http_resp_queued(req) == 0) {
    c->sent++; /* end once */
    tb_http_resp_end(req);
  }
}

/* /slow */
static void slow_fire(uv_timer_t *t) {
  rctx_t *c = t->data;
  tb_http_resp_send(c->req, 200, "text/plain", "late\n", 5);
}

static void handler(tb_http_req_t *req, void *ud) {
  th_server_t *s = ud;
  rctx_t *c = calloc(1, sizeof *c);
  assert(c != NULL);
  c->s = s;
  c->req = req;
  c->pattern_ok = true;
  tb_http_req_set_data(req, c);
  tb_http_req_on_done(req, on_done, c);
  const tb_http_head_t *h = tb_http_req_head(req);
  const char *t = h->target;
  size_t plen = strcspn(t, "?");
  if (strncmp(t, "/hello", plen) == 0 && plen == 6) {
    tb_http_resp_send(req, 200, "text/plain", "hello\n", 6);
  } else if (plen == 5 && strncmp(t, "/echo", 5) == 0) {
    tb_http_header_t ct = {"Content-Type", "application/octet-stream", 0, 0};
    tb_http_resp_start(req, 200, &ct, 1, h->content_length);
    if (!h->chunked && h->content_length <= 0) tb_http_resp_end(req);
    else tb_http_req_read_start(req, echo_data, echo_end, c);
  } else if (plen == 6 && strncmp(t, "/count", 6) == 0) {
    tb_http_req_read_start(req, count_data, count_end, c);
  } else if (plen == 7 && strncmp(t, "/stream", 7) == 0) {
    c->n = query_num(t, "n=", 1000);
    tb_http_resp_start(req, 200, NULL, 0, -1);
    stream_pump(req, c);
  } else if (plen == 5 && strncmp(t, "/slow", 5) == 0) {
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->has_timer = true;
    uv_timer_start(&c->timer, slow_fire, query_num(t, "ms=", 100), 0);
  } else if (plen == 7 && strncmp(t, "/reject", 7) == 0) {
    tb_http_resp_error(req, 413, "content_too_large", "not here");
  } else if (plen == 6 && strncmp(t, "/abort", 6) == 0) {
    tb_http_resp_start(req, 200, NULL, 0, -1);
    tb_http_resp_write(req, "partial", 7, NULL, NULL);
    tb_http_resp_abort(req);
  } else if (plen == 6 && strncmp(t, "/short", 6) == 0) {
    tb_http_resp_start(req, 200, NULL, 0, 10);
    tb_http_resp_write(req, "abc", 3, NULL, NULL);
    tb_http_resp_end(req);
  } else {
    tb_http_resp_error(req, 404, "not_found", "no such route");
  }
}

void th_server_start(th_server_t *s, uv_loop_t *loop, const tb_http_server_config_t *cfg, const char *addr) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  char err[256] = "";
  tb_errbuf_t eb = {err, sizeof err};
  int rc = tb_http_server_new(loop, cfg, handler, s, &s->srv);
  assert(rc == 0);
  rc = tb_http_server_listen(s->srv, addr, &eb);
  if (rc != 0) {
    fprintf(stderr, "listen %s: %s (%s)\n", addr, err, tb_err_name(rc));
    abort();
  }
  s->port = tb_http_server_port(s->srv);
}

static void on_server_closed(void *ud) { ((th_server_t *)ud)->closed = true; }

void th_server_stop(th_server_t *s) {
  tb_http_server_close(s->srv, on_server_closed, s);
  while (!s->closed) uv_run(s->loop, UV_RUN_ONCE);
}

/* curl ------------------------------------------------------------------------------------ */

typedef struct crun {
  th_curl_t *res;
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_write_t w;
  uint8_t piece[64 << 10];
  uint64_t in_len, in_sent;
  size_t out_max;
  int open;
  bool use_in;
} crun_t;

static void crun_closed(uv_handle_t *h) { ((crun_t *)h->data)->open--; }

static void crun_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static char buf[64 << 10];
  b->base = buf;
  b->len = sizeof buf;
}

static void crun_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  crun_t *r = st->data;
  if (n < 0) {
    uv_close((uv_handle_t *)st, crun_closed);
    return;
  }
  if (st == (uv_stream_t *)&r->out) {
    for (ssize_t i = 0; i < n; i++)
      if ((uint8_t)b->base[i] != th_pattern(r->res->out_len + (uint64_t)i)) r->res->out_pattern_ok = false;
    size_t keep = r->res->out.len < r->out_max ? r->out_max - r->res->out.len : 0;
    tb_buf_append(&r->res->out, b->base, (size_t)n < keep ? (size_t)n : keep);
    r->res->out_len += (uint64_t)n;
  } else {
    tb_buf_append(&r->res->err, b->base, (size_t)n);
  }
}

static void crun_feed(crun_t *r);
static void crun_written(uv_write_t *w, int status) {
  crun_t *r = w->data;
  if (status < 0) {
    uv_close((uv_handle_t *)&r->in, crun_closed);
    return;
  }
  crun_feed(r);
}

static void crun_feed(crun_t *r) {
  if (r->in_sent == r->in_len) {
    uv_close((uv_handle_t *)&r->in, crun_closed);
    return;
  }
  size_t len = r->in_len - r->in_sent < sizeof r->piece ? (size_t)(r->in_len - r->in_sent) : sizeof r->piece;
  for (size_t i = 0; i < len; i++) r->piece[i] = th_pattern(r->in_sent + i);
  r->in_sent += len;
  uv_buf_t b = uv_buf_init((char *)r->piece, (unsigned)len);
  r->w.data = r;
  if (uv_write(&r->w, (uv_stream_t *)&r->in, &b, 1, crun_written) != 0) uv_close((uv_handle_t *)&r->in, crun_closed);
}

static void crun_exit(uv_process_t *p, int64_t status, int sig) {
  crun_t *r = p->data;
  r->res->exit_status = sig ? 128 + sig : (int)status;
  uv_close((uv_handle_t *)p, crun_closed);
}

void th_curl_run(uv_loop_t *loop, const char *const *args, uint64_t in_len, size_t out_max, th_curl_t *res) {
  memset(res, 0, sizeof *res);
  tb_buf_init(&res->out, out_max + 1);
  tb_buf_init(&res->err, 1 << 20);
  res->out_pattern_ok = true;
  crun_t *r = calloc(1, sizeof *r);
  assert(r != NULL);
  r->res = res;
  r->in_len = in_len;
  r->out_max = out_max;
  const char *argv[96] = {TH_CURL, "-q", "-sS", "--noproxy", "*", "--max-time", "20"};
  size_t n = 7;
  for (size_t i = 0; args[i]; i++) {
    assert(n < 95);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  uv_pipe_init(loop, &r->in, 0);
  uv_pipe_init(loop, &r->out, 0);
  uv_pipe_init(loop, &r->err, 0);
  r->in.data = r->out.data = r->err.data = r->proc.data = r;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = in_len ? (UV_CREATE_PIPE | UV_READABLE_PIPE) : UV_IGNORE;
  stdio[0].data.stream = (uv_stream_t *)&r->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&r->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&r->err;
  uv_process_options_t opt = {.exit_cb = crun_exit, .file = TH_CURL, .args = (char **)argv, .stdio_count = 3,
                              .stdio = stdio};
  int rc = uv_spawn(loop, &r->proc, &opt);
  if (rc != 0) {
    fprintf(stderr, "cannot run %s: %s\n", TH_CURL, uv_strerror(rc));
    abort();
  }
  r->open = 4;
  uv_read_start((uv_stream_t *)&r->out, crun_alloc, crun_read);
  uv_read_start((uv_stream_t *)&r->err, crun_alloc, crun_read);
  if (in_len) crun_feed(r);
  else uv_close((uv_handle_t *)&r->in, crun_closed);
  while (r->open > 0) uv_run(loop, UV_RUN_ONCE);
  free(r);
}

void th_curl_free(th_curl_t *res) {
  tb_buf_deinit(&res->out);
  tb_buf_deinit(&res->err);
}

int th_count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

/* Raw client ------------------------------------------------------------------------------ */

typedef struct raw {
  th_raw_t *res;
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_timer_t gap, deadline;
  uv_write_t w;
  const char *const *pieces;
  size_t npieces, next;
  uint64_t gap_ms;
  int open;
  bool closing;
} raw_t;

static void raw_closed(uv_handle_t *h) { ((raw_t *)h->data)->open--; }

static void raw_finish(raw_t *r) {
  if (r->closing) return;
  r->closing = true;
  uv_close((uv_handle_t *)&r->tcp, raw_closed);
  uv_close((uv_handle_t *)&r->gap, raw_closed);
  uv_close((uv_handle_t *)&r->deadline, raw_closed);
}

static void raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  static char buf[64 << 10];
  b->base = buf;
  b->len = sizeof buf;
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  raw_t *r = s->data;
  if (n < 0) {
    r->res->closed_by_server = true;
    if (n != UV_EOF) r->res->err = (int)n;
    raw_finish(r);
    return;
  }
  tb_buf_append(&r->res->got, b->base, (size_t)n);
}

static void raw_send_next(raw_t *r);
static void raw_gap(uv_timer_t *t) { raw_send_next(t->data); }

static void raw_written(uv_write_t *w, int status) {
  raw_t *r = w->data;
  if (r->closing) return;
  if (status < 0) {
    r->res->err = status;
    return;
  }
  if (r->next < r->npieces) uv_timer_start(&r->gap, raw_gap, r->gap_ms, 0);
}

static void raw_send_next(raw_t *r) {
  if (r->closing || r->next >= r->npieces) return;
  const char *p = r->pieces[r->next++];
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)strlen(p));
  r->w.data = r;
  uv_write(&r->w, (uv_stream_t *)&r->tcp, &b, 1, raw_written);
}

static void raw_connected(uv_connect_t *c, int status) {
  raw_t *r = c->data;
  if (status < 0) {
    r->res->err = status;
    raw_finish(r);
    return;
  }
  uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
  raw_send_next(r);
}

static void raw_timeout(uv_timer_t *t) { raw_finish(t->data); }

void th_raw_run(uv_loop_t *loop, int port, const char *const *pieces, size_t npieces, uint64_t gap_ms,
                uint64_t timeout_ms, th_raw_t *res) {
  memset(res, 0, sizeof *res);
  tb_buf_init(&res->got, 1 << 24);
  raw_t *r = calloc(1, sizeof *r);
  assert(r != NULL);
  r->res = res;
  r->pieces = pieces;
  r->npieces = npieces;
  r->gap_ms = gap_ms;
  uv_tcp_init(loop, &r->tcp);
  uv_timer_init(loop, &r->gap);
  uv_timer_init(loop, &r->deadline);
  r->tcp.data = r->gap.data = r->deadline.data = r->conn.data = r;
  r->open = 3;
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  uv_tcp_connect(&r->conn, &r->tcp, (struct sockaddr *)&sa, raw_connected);
  uv_timer_start(&r->deadline, raw_timeout, timeout_ms, 0);
  while (r->open > 0) uv_run(loop, UV_RUN_ONCE);
  free(r);
}

void th_raw_free(th_raw_t *res) { tb_buf_deinit(&res->got); }
