/* test_http_core.c — the protocol core on byte buffers: parser, limits, serialisers, URLs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/http.h"
#include "test.h"

/* A recorder of parser events: heads, body bytes and ends, as text. */
typedef struct rec {
  tb_buf_t log;
  tb_buf_t body;
  int heads, ends;
  int pause_on_end, pause_on_data;
  int status;
  int64_t content_length;
  bool keep_alive, expect_continue, chunked;
} rec_t;

static int r_head(void *ud, const tb_http_head_t *h) {
  rec_t *r = ud;
  r->heads++;
  r->status = h->status;
  r->content_length = h->content_length;
  r->keep_alive = h->keep_alive;
  r->expect_continue = h->expect_continue;
  r->chunked = h->chunked;
  if (h->method) tb_buf_printf(&r->log, "%s %s HTTP/%d.%d\n", h->method, h->target, h->version_major, h->version_minor);
  else tb_buf_printf(&r->log, "%d %s\n", h->status, h->reason);
  for (size_t i = 0; i < h->nheaders; i++) {
    assert_int_equal(strlen(h->headers[i].name), h->headers[i].name_len);
    assert_int_equal(strlen(h->headers[i].value), h->headers[i].value_len);
    tb_buf_printf(&r->log, "%s=[%s]\n", h->headers[i].name, h->headers[i].value);
  }
  return 0;
}

static int r_data(void *ud, const uint8_t *d, size_t n) {
  rec_t *r = ud;
  tb_buf_append(&r->body, d, n);
  return r->pause_on_data ? TB_HTTP_PAUSE : 0;
}

static int r_end(void *ud) {
  rec_t *r = ud;
  r->ends++;
  tb_buf_printf(&r->log, "end body=%zu\n", r->body.len);
  return r->pause_on_end ? TB_HTTP_PAUSE : 0;
}

static const tb_http_parser_cbs_t rcbs = {r_head, r_data, r_end};

static void rec_init(rec_t *r) {
  memset(r, 0, sizeof *r);
  tb_buf_init(&r->log, 1 << 20);
  tb_buf_init(&r->body, 1 << 24);
}

static void rec_deinit(rec_t *r) {
  tb_buf_deinit(&r->log);
  tb_buf_deinit(&r->body);
}

/* Parses `s` in pieces of `step` bytes (0: all at once); returns the feed result. */
static int parse(tb_http_kind_t kind, const tb_http_limits_t *lim, const char *s, size_t len, size_t step,
                 rec_t *r, tb_http_parser_t **keep) {
  tb_http_parser_t *p = NULL;
  assert_int_equal(tb_http_parser_new(kind, lim, &rcbs, r, &p), 0);
  int rc = 0;
  size_t off = 0;
  while (off < len && rc == 0) {
    size_t n = step ? (len - off < step ? len - off : step) : len - off, used = 0;
    rc = tb_http_parser_feed(p, (const uint8_t *)s + off, n, &used);
    off += used;
  }
  if (keep) *keep = p;
  else tb_http_parser_free(p);
  return rc;
}

static const char chunked_req[] =
    "POST /upload?x=1 HTTP/1.1\r\n"
    "Host: example\r\n"
    "Transfer-Encoding: chunked\r\n"
    "X-Folded:   first   \r\n"
    "Expect: 100-continue\r\n"
    "\r\n"
    "5;ext=1\r\nhello\r\n"
    "1\r\n \r\n"
    "5\r\nworld\r\n"
    "0\r\n"
    "Trailer-Field: t\r\n"
    "\r\n";

static void request_fields(void **state) {
  rec_t r;
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_REQUEST, NULL, chunked_req, sizeof chunked_req - 1, 0, &r, NULL), 0);
  assert_string_equal(tb_buf_cstr(&r.log),
                      "POST /upload?x=1 HTTP/1.1\n"
                      "Host=[example]\n"
                      "Transfer-Encoding=[chunked]\n"
                      "X-Folded=[first]\n"
                      "Expect=[100-continue]\n"
                      "end body=11\n");
  assert_string_equal(tb_buf_cstr(&r.body), "hello world");
  assert_true(r.chunked);
  assert_true(r.expect_continue);
  assert_true(r.keep_alive);
  assert_int_equal(r.content_length, -1);
  rec_deinit(&r);
}

/* Any split of the input gives the same events. */
static void every_split_is_equal(void **state) {
  rec_t whole;
  rec_init(&whole);
  assert_int_equal(parse(TB_HTTP_REQUEST, NULL, chunked_req, sizeof chunked_req - 1, 0, &whole, NULL), 0);
  for (size_t step = 1; step < 40; step++) {
    rec_t r;
    rec_init(&r);
    assert_int_equal(parse(TB_HTTP_REQUEST, NULL, chunked_req, sizeof chunked_req - 1, step, &r, NULL), 0);
    assert_string_equal(tb_buf_cstr(&r.log), tb_buf_cstr(&whole.log));
    assert_string_equal(tb_buf_cstr(&r.body), tb_buf_cstr(&whole.body));
    rec_deinit(&r);
  }
  rec_deinit(&whole);
}

static void pipelined_requests_pause_at_each_end(void **state) {
  const char two[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                     "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                     "GET /c HTTP/1.0\r\n\r\n";
  rec_t r;
  rec_init(&r);
  r.pause_on_end = 1;
  tb_http_parser_t *p;
  assert_int_equal(tb_http_parser_new(TB_HTTP_REQUEST, NULL, &rcbs, &r, &p), 0);
  size_t off = 0, used;
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)two, sizeof two - 1, &used), 0);
  assert_int_equal(used, strlen("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert_int_equal(r.ends, 1);
  assert_false(tb_http_parser_in_message(p));
  off += used;
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)two + off, sizeof two - 1 - off, &used), 0);
  off += used;
  assert_int_equal(r.ends, 2);
  assert_string_equal(tb_buf_cstr(&r.body), "xyz");
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)two + off, sizeof two - 1 - off, &used), 0);
  off += used;
  assert_int_equal(off, sizeof two - 1);
  assert_int_equal(r.ends, 3);
  assert_false(r.keep_alive); /* HTTP/1.0 without keep-alive */
  tb_http_parser_free(p);
  rec_deinit(&r);
}

static void pause_in_body_and_resume(void **state) {
  const char req[] = "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
  rec_t r;
  rec_init(&r);
  r.pause_on_data = 1;
  tb_http_parser_t *p;
  assert_int_equal(tb_http_parser_new(TB_HTTP_REQUEST, NULL, &rcbs, &r, &p), 0);
  size_t off = 0, used, head_len = strlen(req) - 10;
  /* Feed the head, then the body two bytes at a time: each feed stops after on_data. */
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)req, head_len + 4, &used), 0);
  off = used;
  assert_int_equal(r.body.len, 4);
  while (off < sizeof req - 1) {
    size_t n = sizeof req - 1 - off < 2 ? sizeof req - 1 - off : 2;
    assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)req + off, n, &used), 0);
    off += used;
    if (r.ends) break;
  }
  /* The last body byte may be handed back once (http-parser re-reads it to end). */
  while (r.ends == 0) {
    assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)req + off, sizeof req - 1 - off, &used), 0);
    off += used;
  }
  assert_string_equal(tb_buf_cstr(&r.body), "0123456789");
  assert_int_equal(off, sizeof req - 1);
  tb_http_parser_free(p);
  rec_deinit(&r);
}

static char *make_head(size_t target_len, size_t nheaders) {
  tb_buf_t b;
  tb_buf_init(&b, 1 << 22);
  tb_buf_puts(&b, "GET /");
  for (size_t i = 1; i < target_len; i++) tb_buf_putc(&b, 'a');
  tb_buf_puts(&b, " HTTP/1.1\r\nHost: h\r\n");
  for (size_t i = 1; i < nheaders; i++) tb_buf_printf(&b, "X-H%zu: v\r\n", i);
  tb_buf_puts(&b, "\r\n");
  return tb_buf_steal(&b, NULL);
}

static void head_size_limit_is_exact(void **state) {
  tb_http_limits_t lim = {.max_head_bytes = 200};
  /* "GET /" + a + " HTTP/1.1\r\nHost: h\r\n\r\n": 5 + (n-1) + 11 + 9 + 2 bytes */
  size_t fixed = 5 + 11 + 9 + 2 - 1;
  char *ok = make_head(200 - fixed, 1), *big = make_head(201 - fixed, 1);
  assert_int_equal(strlen(ok), 200);
  for (size_t step = 0; step < 3; step++) {
    rec_t r;
    rec_init(&r);
    assert_int_equal(parse(TB_HTTP_REQUEST, &lim, ok, strlen(ok), step * 7, &r, NULL), 0);
    assert_int_equal(r.ends, 1);
    rec_deinit(&r);
    rec_init(&r);
    tb_http_parser_t *p;
    assert_int_equal(parse(TB_HTTP_REQUEST, &lim, big, strlen(big), step * 7, &r, &p), TB_ETOOBIG);
    assert_int_equal(tb_http_parser_status(p), 431);
    assert_non_null(strstr(tb_http_parser_error(p), "larger than 200 bytes"));
    assert_int_equal(r.heads, 0);
    /* Errors are sticky. */
    size_t used;
    assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)"x", 1, &used), TB_ETOOBIG);
    tb_http_parser_free(p);
    rec_deinit(&r);
  }
  free(ok);
  free(big);
  /* A head that never ends is refused once it passes the limit, not at the end. */
  tb_http_limits_t small = {.max_head_bytes = 64};
  rec_t r;
  rec_init(&r);
  tb_http_parser_t *p;
  assert_int_equal(tb_http_parser_new(TB_HTTP_REQUEST, &small, &rcbs, &r, &p), 0);
  const char *line = "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
  size_t used;
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, &used), 0);
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)line, strlen(line), &used), TB_ETOOBIG);
  assert_int_equal(tb_http_parser_status(p), 431);
  tb_http_parser_free(p);
  rec_deinit(&r);
}

static void header_count_limit(void **state) {
  tb_http_limits_t lim = {.max_headers = 10};
  char *ok = make_head(1, 10), *many = make_head(1, 11);
  rec_t r;
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_REQUEST, &lim, ok, strlen(ok), 0, &r, NULL), 0);
  rec_deinit(&r);
  rec_init(&r);
  tb_http_parser_t *p;
  assert_int_equal(parse(TB_HTTP_REQUEST, &lim, many, strlen(many), 0, &r, &p), TB_ETOOBIG);
  assert_int_equal(tb_http_parser_status(p), 431);
  assert_non_null(strstr(tb_http_parser_error(p), "more than 10 header fields"));
  tb_http_parser_free(p);
  rec_deinit(&r);
  free(ok);
  free(many);
}

static void body_limit(void **state) {
  tb_http_limits_t lim = {.max_body_bytes = 10};
  rec_t r;
  tb_http_parser_t *p;
  /* Declared too large: refused at the head, before any body byte. */
  const char cl[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_REQUEST, &lim, cl, sizeof cl - 1, 0, &r, &p), TB_ETOOBIG);
  assert_int_equal(tb_http_parser_status(p), 413);
  assert_int_equal(r.heads, 0);
  tb_http_parser_free(p);
  rec_deinit(&r);
  /* Exactly the limit is fine. */
  const char ten[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_REQUEST, &lim, ten, sizeof ten - 1, 3, &r, NULL), 0);
  assert_int_equal(r.ends, 1);
  rec_deinit(&r);
  /* Chunked: refused when the body passes the limit. */
  const char ch[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n";
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_REQUEST, &lim, ch, sizeof ch - 1, 0, &r, &p), TB_ETOOBIG);
  assert_int_equal(tb_http_parser_status(p), 413);
  assert_int_equal(r.heads, 1);
  assert_int_equal(r.ends, 0);
  tb_http_parser_free(p);
  rec_deinit(&r);
}

static void malformed_is_400(void **state) {
  static const char *const bad[] = {
      "GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",                                  /* no Host */
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",            /* two Hosts */
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rec_t r;
    rec_init(&r);
    tb_http_parser_t *p;
    int rc = parse(TB_HTTP_REQUEST, NULL, bad[i], strlen(bad[i]), 0, &r, &p);
    if (rc != TB_EPARSE) fprintf(stderr, "case %zu: expected TB_EPARSE, got %s (%s)\n", i, tb_err_name(rc), tb_http_parser_error(p));
    assert_int_equal(rc, TB_EPARSE);
    assert_int_equal(tb_http_parser_status(p), 400);
    assert_true(strlen(tb_http_parser_error(p)) > 0);
    tb_http_parser_free(p);
    rec_deinit(&r);
  }
}

static void responses(void **state) {
  rec_t r;
  tb_http_parser_t *p;
  /* An interim 100 then the real response, as two messages. */
  const char two[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_RESPONSE, NULL, two, sizeof two - 1, 1, &r, NULL), 0);
  assert_string_equal(tb_buf_cstr(&r.log), "100 Continue\nend body=0\n200 OK\nContent-Length=[2]\nend body=2\n");
  rec_deinit(&r);
  /* The answer to HEAD has a length and no body. */
  const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  rec_init(&r);
  assert_int_equal(tb_http_parser_new(TB_HTTP_RESPONSE, NULL, &rcbs, &r, &p), 0);
  tb_http_parser_set_skip_body(p, true);
  size_t used;
  assert_int_equal(tb_http_parser_feed(p, (const uint8_t *)head, sizeof head - 1, &used), 0);
  assert_int_equal(r.ends, 2);
  assert_int_equal(r.body.len, 0);
  tb_http_parser_free(p);
  rec_deinit(&r);
  /* A body delimited by the close ends at finish; a cut-short one fails. */
  const char eof[] = "HTTP/1.0 200 OK\r\n\r\nuntil the end";
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_RESPONSE, NULL, eof, sizeof eof - 1, 0, &r, &p), 0);
  assert_int_equal(r.ends, 0);
  assert_int_equal(tb_http_parser_finish(p), 0);
  assert_int_equal(r.ends, 1);
  assert_string_equal(tb_buf_cstr(&r.body), "until the end");
  assert_false(r.keep_alive);
  tb_http_parser_free(p);
  rec_deinit(&r);
  const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_RESPONSE, NULL, cut, sizeof cut - 1, 0, &r, &p), 0);
  assert_int_equal(tb_http_parser_finish(p), TB_EPARSE);
  tb_http_parser_free(p);
  rec_deinit(&r);
}

static void response_head_framing(void **state) {
  tb_buf_t b;
  tb_buf_init(&b, 4096);
  tb_http_header_t hs[] = {{"Content-Type", "text/plain", 0, 0},
                           {"Content-Length", "999", 0, 0}, /* ours, dropped */
                           {"Connection", "upgrade", 0, 0}, /* hop-by-hop, dropped */
                           {"X-Ok", "1", 0, 0}};
  tb_http_framing_t f = {.content_length = 5, .request_minor = 1, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 200, NULL, hs, 4, &f), 0);
  const char *s = tb_buf_cstr(&b);
  assert_true(strncmp(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Ok: 1\r\nDate: ", 56) == 0);
  assert_non_null(strstr(s, " GMT\r\nContent-Length: 5\r\n\r\n"));
  assert_null(strstr(s, "999"));
  assert_null(strstr(s, "Connection"));
  assert_false(f.chunked || f.no_body || f.close_delimited);
  assert_true(f.keep_alive);

  /* Unknown length: chunked for HTTP/1.1, close-delimited for HTTP/1.0. */
  tb_buf_reset(&b);
  f = (tb_http_framing_t){.content_length = -1, .request_minor = 1, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 200, NULL, NULL, 0, &f), 0);
  assert_true(f.chunked);
  assert_non_null(strstr(tb_buf_cstr(&b), "Transfer-Encoding: chunked\r\n"));
  tb_buf_reset(&b);
  f = (tb_http_framing_t){.content_length = -1, .request_minor = 0, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 200, NULL, NULL, 0, &f), 0);
  assert_true(f.close_delimited);
  assert_false(f.keep_alive);
  assert_non_null(strstr(tb_buf_cstr(&b), "Connection: close\r\n"));
  /* HTTP/1.0 keep-alive is said out loud. */
  tb_buf_reset(&b);
  f = (tb_http_framing_t){.content_length = 0, .request_minor = 0, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 200, NULL, NULL, 0, &f), 0);
  assert_non_null(strstr(tb_buf_cstr(&b), "Connection: keep-alive\r\n"));
  /* HEAD, 204 and 304 carry no body. */
  tb_buf_reset(&b);
  f = (tb_http_framing_t){.content_length = 42, .head_request = true, .request_minor = 1, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 200, NULL, NULL, 0, &f), 0);
  assert_true(f.no_body);
  assert_non_null(strstr(tb_buf_cstr(&b), "Content-Length: 42\r\n"));
  tb_buf_reset(&b);
  f = (tb_http_framing_t){.content_length = -1, .request_minor = 1, .keep_alive = false};
  assert_int_equal(tb_http_response_head(&b, 204, NULL, NULL, 0, &f), 0);
  assert_true(f.no_body);
  assert_null(strstr(tb_buf_cstr(&b), "Content-Length"));
  assert_null(strstr(tb_buf_cstr(&b), "Transfer-Encoding"));
  assert_non_null(strstr(tb_buf_cstr(&b), "Connection: close\r\n"));

  /* Response splitting is refused, and the buffer is left as it was. */
  tb_buf_reset(&b);
  tb_buf_puts(&b, "keep");
  tb_http_header_t evil[] = {{"X-Evil", "a\r\nSet-Cookie: x=1", 0, 0}};
  tb_http_header_t evil_name[] = {{"X Evil", "a", 0, 0}};
  f = (tb_http_framing_t){.content_length = 0, .request_minor = 1, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 200, NULL, evil, 1, &f), TB_EINVAL);
  assert_int_equal(tb_http_response_head(&b, 200, NULL, evil_name, 1, &f), TB_EINVAL);
  assert_int_equal(tb_http_response_head(&b, 99, NULL, NULL, 0, &f), TB_EINVAL);
  assert_int_equal(tb_http_response_head(&b, 200, "OK\r\n", NULL, 0, &f), TB_EINVAL);
  assert_string_equal(tb_buf_cstr(&b), "keep");
  /* A head that does not fit leaves the buffer unchanged too. */
  tb_buf_t tiny;
  tb_buf_init(&tiny, 20);
  assert_int_equal(tb_http_response_head(&tiny, 200, NULL, hs, 4, &f), TB_ETOOBIG);
  assert_int_equal(tiny.len, 0);
  tb_buf_deinit(&tiny);
  tb_buf_deinit(&b);
}

/* What we serialise, we parse back the same. */
static void round_trip(void **state) {
  tb_buf_t b;
  tb_buf_init(&b, 4096);
  tb_http_header_t hs[] = {{"X-A", "1", 0, 0}, {"Host", "ignored", 0, 0}, {"Accept", "*/*", 0, 0}};
  assert_int_equal(tb_http_request_head(&b, "PUT", "/v1/x?y=%20", "[fd5a::1]:8730", hs, 3, -1, true), 0);
  char pre[TB_HTTP_CHUNK_PREFIX_MAX];
  size_t n = tb_http_chunk_prefix(pre, 26);
  assert_string_equal(pre, "1a\r\n");
  tb_buf_append(&b, pre, n);
  tb_buf_puts(&b, "abcdefghijklmnopqrstuvwxyz\r\n" TB_HTTP_CHUNK_LAST);
  rec_t r;
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_REQUEST, NULL, (const char *)b.data, b.len, 5, &r, NULL), 0);
  assert_string_equal(tb_buf_cstr(&r.log),
                      "PUT /v1/x?y=%20 HTTP/1.1\nHost=[[fd5a::1]:8730]\nX-A=[1]\nAccept=[*/*]\n"
                      "Transfer-Encoding=[chunked]\nend body=26\n");
  rec_deinit(&r);

  tb_buf_reset(&b);
  assert_int_equal(tb_http_request_head(&b, "GET", "/", "h", NULL, 0, 0, false), 0);
  assert_string_equal(tb_buf_cstr(&b), "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  tb_buf_reset(&b);
  assert_int_equal(tb_http_request_head(&b, "POST", "/", "h", NULL, 0, 0, true), 0);
  assert_string_equal(tb_buf_cstr(&b), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  assert_int_equal(tb_http_request_head(&b, "GET", "/a b", "h", NULL, 0, 0, true), TB_EINVAL);
  assert_int_equal(tb_http_request_head(&b, "G T", "/", "h", NULL, 0, 0, true), TB_EINVAL);

  tb_buf_reset(&b);
  tb_http_framing_t f = {.content_length = 3, .request_minor = 1, .keep_alive = true};
  assert_int_equal(tb_http_response_head(&b, 201, NULL, hs, 1, &f), 0);
  tb_buf_puts(&b, "new");
  rec_init(&r);
  assert_int_equal(parse(TB_HTTP_RESPONSE, NULL, (const char *)b.data, b.len, 0, &r, NULL), 0);
  assert_int_equal(r.status, 201);
  assert_int_equal(r.content_length, 3);
  assert_true(r.keep_alive);
  assert_string_equal(tb_buf_cstr(&r.body), "new");
  rec_deinit(&r);
  tb_buf_deinit(&b);
}

static void error_json(void **state) {
  tb_buf_t b;
  tb_buf_init(&b, 4096);
  assert_int_equal(tb_http_error_json(&b, 413, "content_too_large", "body \"x\"\n is over\x01 \xc3\xa9 \xff"), 0);
  assert_string_equal(tb_buf_cstr(&b), "{\"error\":\"content_too_large\",\"message\":"
                                       "\"body \\\"x\\\"\\u000a is over\\u0001 \xc3\xa9 \\ufffd\",\"status\":413}");
  assert_string_equal(tb_http_status_reason(431), "Request Header Fields Too Large");
  assert_string_equal(tb_http_status_reason(799), "Unknown");
  tb_buf_deinit(&b);
}

static void urls_and_addresses(void **state) {
  tb_http_url_t u;
  tb_http_addr_t a;
  char err[200];
  tb_errbuf_t eb = {err, sizeof err};
  assert_int_equal(tb_http_url_parse("http://[fd5a:1f02:aa::1]:8730/app/x?y=1#frag", &u, &eb), 0);
  assert_string_equal(u.addr.host, "fd5a:1f02:aa::1");
  assert_int_equal(u.addr.port, 8730);
  assert_string_equal(u.authority, "[fd5a:1f02:aa::1]:8730");
  assert_int_equal(u.target_len, strlen("/app/x?y=1"));
  assert_int_equal(strncmp(u.target, "/app/x?y=1", u.target_len), 0);
  assert_int_equal(tb_http_url_parse("http://[fe80::1%25lo]:80", &u, &eb), 0);
  assert_string_equal(u.addr.host, "fe80::1%lo");
  assert_string_equal(u.authority, "[fe80::1]:80");
  assert_int_equal(u.target_len, 1);
  assert_int_equal(tb_http_url_parse("HTTP://Example.com", &u, &eb), 0);
  assert_int_equal(u.addr.port, 80);
  assert_string_equal(u.authority, "Example.com");
  assert_int_equal(tb_http_url_parse("https://x/", &u, &eb), TB_EINVAL);
  assert_non_null(strstr(err, "https"));
  assert_int_equal(tb_http_url_parse("http://u:p@x/", &u, &eb), TB_EINVAL);
  assert_int_equal(tb_http_url_parse("http://x:99999/", &u, &eb), TB_EINVAL);
  assert_int_equal(tb_http_url_parse("http://x/a b", &u, &eb), TB_EINVAL);
  assert_int_equal(tb_http_url_parse("http://[::1/", &u, &eb), TB_EINVAL);
  assert_int_equal(tb_http_addr_parse("127.0.0.1:0", 0, &a, &eb), 0);
  assert_int_equal(a.kind, TB_HTTP_ADDR_TCP);
  assert_int_equal(a.port, 0);
  assert_int_equal(tb_http_addr_parse("unix:/run/t.sock", 0, &a, &eb), 0);
  assert_int_equal(a.kind, TB_HTTP_ADDR_UNIX);
  assert_string_equal(a.path, "/run/t.sock");
  assert_int_equal(tb_http_addr_parse("::1:80", 0, &a, &eb), TB_EINVAL);
  assert_non_null(strstr(err, "brackets"));
  assert_int_equal(tb_http_addr_parse("host", 0, &a, &eb), TB_EINVAL);
  assert_int_equal(tb_http_addr_parse("host", 8090, &a, &eb), 0);
  assert_int_equal(a.port, 8090);
}

/* Every allocation the parser makes can fail; each failure is an error, never a crash
 * or a leak (the ASan build checks leaks). */
static void allocation_failures(void **state) {
  int failures = 0;
  for (long n = 0; n < 200; n++) {
    rec_t r;
    rec_init(&r);
    tb_http_parser_t *p = NULL;
    tb_alloc_fail_after(n);
    int rc = tb_http_parser_new(TB_HTTP_REQUEST, NULL, &rcbs, &r, &p);
    if (rc == 0) {
      size_t used;
      rc = tb_http_parser_feed(p, (const uint8_t *)chunked_req, sizeof chunked_req - 1, &used);
      tb_http_parser_free(p);
    }
    tb_alloc_fail_after(-1);
    rec_deinit(&r);
    if (rc == 0) break;
    assert_true(rc == TB_ENOMEM);
    failures++;
  }
  assert_true(failures > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(request_fields),
      cmocka_unit_test(every_split_is_equal),
      cmocka_unit_test(pipelined_requests_pause_at_each_end),
      cmocka_unit_test(pause_in_body_and_resume),
      cmocka_unit_test(head_size_limit_is_exact),
      cmocka_unit_test(header_count_limit),
      cmocka_unit_test(body_limit),
      cmocka_unit_test(malformed_is_400),
      cmocka_unit_test(responses),
      cmocka_unit_test(response_head_framing),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(error_json),
      cmocka_unit_test(urls_and_addresses),
      cmocka_unit_test(allocation_failures),
  };
  return TB_RUN(tests);
}
