/*
 * fuzz_http.c — libFuzzer target over the HTTP request path of the protocol core.
 *
 * The first byte picks the limits and how the rest is split into feeds (every split must
 * give the same result: the parser keeps state across feeds and pauses at each head and
 * each end). Every head handed out must be self-consistent; every accepted head is
 * serialised again and parsed back. The same bytes then go through the response
 * parser (with EOF) and the URL parser. Nothing may crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tb/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct st {
  int heads, ends;
  uint64_t body;
  int pause_every;
  int events;
} st_t;

static void check_head(const tb_http_head_t *h) {
  for (size_t i = 0; i < h->nheaders; i++) {
    if (strlen(h->headers[i].name) != h->headers[i].name_len) abort();
    if (strlen(h->headers[i].value) != h->headers[i].value_len) abort();
    if (h->headers[i].name_len == 0) abort();
    if (tb_http_head_get(h, h->headers[i].name) == NULL) abort();
  }
  if (h->chunked && h->content_length >= 0) abort();
  if (h->method && (h->target == NULL || h->target[0] == '\0')) abort();
}

static int on_head(void *ud, const tb_http_head_t *h) {
  st_t *s = ud;
  s->heads++;
  check_head(h);
  if (h->method) {
    /* What we accepted, we can say again, and read back without harm. (Not always
     * accepted again: http-parser treats a field named like "Transfer-Encodingx" as
     * Transfer-Encoding when it meets our Content-Length.) */
    tb_buf_t b;
    tb_buf_init(&b, 1 << 20);
    const char *host = tb_http_head_get(h, "host");
    if (tb_http_request_head(&b, h->method, h->target, host ? host : "h", h->headers, h->nheaders,
                             h->chunked ? -1 : (h->content_length > 0 ? h->content_length : 0), h->keep_alive) == 0) {
      tb_http_parser_t *p;
      if (tb_http_parser_new(TB_HTTP_REQUEST, NULL, NULL, NULL, &p) == 0) {
        size_t used;
        if (tb_http_parser_feed(p, b.data, b.len, &used) != 0 && tb_http_parser_error(p)[0] == '\0') abort();
        tb_http_parser_free(p);
      }
    }
    tb_buf_deinit(&b);
  }
  return ++s->events % s->pause_every == 0 ? TB_HTTP_PAUSE : 0;
}

static int on_data(void *ud, const uint8_t *d, size_t n) {
  st_t *s = ud;
  if (n == 0) abort();
  s->body += n;
  return ++s->events % s->pause_every == 0 ? TB_HTTP_PAUSE : 0;
}

static int on_end(void *ud) {
  st_t *s = ud;
  s->ends++;
  return ++s->events % s->pause_every == 0 ? TB_HTTP_PAUSE : 0;
}

static int run(tb_http_kind_t kind, const tb_http_limits_t *lim, const uint8_t *d, size_t n, size_t step,
               int pause_every, st_t *s) {
  static const tb_http_parser_cbs_t cbs = {on_head, on_data, on_end};
  memset(s, 0, sizeof *s);
  s->pause_every = pause_every;
  tb_http_parser_t *p;
  if (tb_http_parser_new(kind, lim, &cbs, s, &p) != 0) return 0;
  size_t off = 0;
  int rc = 0;
  while (off < n && rc == 0) {
    size_t len = n - off < step ? n - off : step, used = 0;
    rc = tb_http_parser_feed(p, d + off, len, &used);
    if (used > len) abort();
    off += used;
  }
  if (rc != 0) {
    int status = tb_http_parser_status(p);
    if (kind == TB_HTTP_REQUEST && status != 400 && status != 413 && status != 431) abort();
    if (tb_http_parser_error(p)[0] == '\0') abort(); /* a refusal always says why */
  } else if (kind == TB_HTTP_RESPONSE) {
    (void)tb_http_parser_finish(p);
  }
  tb_http_parser_free(p);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  tb_http_limits_t lim = {0};
  if (mode & 1) lim = (tb_http_limits_t){.max_head_bytes = 256, .max_headers = 8, .max_body_bytes = 64};
  size_t step = (mode >> 1) & 7 ? (size_t)((mode >> 1) & 7) : size + 1;
  int pause_every = 1 + ((mode >> 4) & 3);

  st_t whole, split;
  int a = run(TB_HTTP_REQUEST, &lim, data, size, size + 1, 1000000, &whole);
  int b = run(TB_HTTP_REQUEST, &lim, data, size, step, pause_every, &split);
  /* Splitting and pausing change nothing about what the bytes mean. (Which refusal
   * comes first may: http-parser reports a field name when it ends or when a feed does,
   * so the header count can be checked before or after a bad character in it.) */
  if ((a == 0) != (b == 0) || whole.heads != split.heads || whole.ends != split.ends) abort();
  /* (On a refusal the body bytes handed out before it depend on where feeds split.) */
  if (a == 0 && whole.body != split.body) abort();

  st_t resp;
  run(TB_HTTP_RESPONSE, &lim, data, size, step, pause_every, &resp);

  char *s = malloc(size + 1);
  if (s == NULL) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  tb_http_url_t u;
  tb_http_addr_t addr;
  (void)tb_http_url_parse(s, &u, NULL);
  (void)tb_http_addr_parse(s, 80, &addr, NULL);
  free(s);
  return 0;
}
