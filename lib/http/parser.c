/*
 * parser.c — the request/response parser of the protocol core (include/tb/http.h).
 *
 * http-parser does the tokenising; this file adds what it leaves to its user: it collects
 * the request line, status line and header fields into one bounded arena, enforces our
 * limits with the status each deserves (431 head size and header count, 413 body size,
 * 400 anything malformed), checks the framing rules that matter for request smuggling
 * (one Host, no Content-Length beside chunked, no unknown Transfer-Encoding), and turns
 * http-parser's callbacks into three events that can each stop the feed.
 *
 * The parser is always paused at the end of a head and at the end of a message. That is
 * how the head size is counted exactly (execute returns at the final LF), and it means
 * the user's on_head and on_end run outside http-parser, where they may do anything but
 * feed this parser again.
 */
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tb/alloc.h"
#include "tb/buf.h"
#include "tb/http.h"

enum piece { PIECE_NONE, PIECE_URL, PIECE_STATUS, PIECE_FIELD, PIECE_VALUE };

typedef struct hdr_off {
  size_t name_off, name_len;
  size_t value_off, value_len; /* value_off == SIZE_MAX: no value bytes were seen */
} hdr_off_t;

struct tb_http_parser {
  http_parser hp;
  tb_http_kind_t kind;
  tb_http_limits_t lim;
  tb_http_parser_cbs_t cbs;
  void *ud;

  tb_buf_t arena;      /* request-target or reason, then names and values, NUL-separated */
  hdr_off_t *offs;     /* one per header field, offsets into arena */
  size_t noffs, cap_offs;
  tb_http_header_t *hdrs; /* built from offs when the head is complete */
  size_t cap_hdrs;
  size_t url_off, url_len, status_off, status_len;
  enum piece piece;

  tb_http_head_t head;
  size_t head_bytes;     /* bytes of the current head so far */
  size_t trailer_bytes;  /* bytes of trailer fields of a chunked body */
  uint64_t body_bytes;
  bool in_message;       /* message begun, not yet ended */
  bool in_head;          /* message begun, head not yet delivered */
  bool head_pending;     /* paused at the end of the head; deliver it */
  bool end_pending;      /* paused at the end of the message; deliver on_end */
  bool user_paused;      /* on_data asked to stop */
  bool skip_body;        /* the response answers HEAD */
  bool upgraded;

  int err;               /* sticky: 0 or the code every feed returns */
  int status;            /* the HTTP status that answers err */
  char errmsg[192];
};

static int fail(tb_http_parser_t *p, int err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(tb_http_parser_t *p, int err, int status, const char *fmt, ...) {
  if (p->err == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
    va_end(ap);
    p->err = err;
    p->status = p->kind == TB_HTTP_REQUEST ? status : 0;
  }
  return -1; /* what http-parser callbacks return to stop with an error */
}

static const char *what(const tb_http_parser_t *p) {
  return p->kind == TB_HTTP_REQUEST ? "request" : "response";
}

/* Ends the piece being collected: trims a value's trailing blanks, records its length
 * and writes the NUL that terminates it. */
static int piece_end(tb_http_parser_t *p) {
  tb_buf_t *a = &p->arena;
  switch (p->piece) {
  case PIECE_NONE:
    return 0;
  case PIECE_URL:
    p->url_len = a->len - p->url_off;
    break;
  case PIECE_STATUS:
    p->status_len = a->len - p->status_off;
    break;
  case PIECE_FIELD:
    p->offs[p->noffs - 1].name_len = a->len - p->offs[p->noffs - 1].name_off;
    break;
  case PIECE_VALUE: {
    hdr_off_t *h = &p->offs[p->noffs - 1];
    while (a->len > h->value_off && (a->data[a->len - 1] == ' ' || a->data[a->len - 1] == '\t')) a->len--;
    h->value_len = a->len - h->value_off;
    break;
  }
  }
  p->piece = PIECE_NONE;
  if (tb_buf_putc(a, 0) != 0)
    return fail(p, TB_ETOOBIG, 431, "%s head is larger than %zu bytes", what(p), p->lim.max_head_bytes);
  return 0;
}

static int piece_add(tb_http_parser_t *p, enum piece kind, const char *at, size_t len) {
  tb_buf_t *a = &p->arena;
  if (p->piece != kind) {
    if (piece_end(p) != 0) return -1;
    switch (kind) {
    case PIECE_URL:
      p->url_off = a->len;
      break;
    case PIECE_STATUS:
      p->status_off = a->len;
      break;
    case PIECE_FIELD:
      if (p->noffs == p->lim.max_headers)
        return fail(p, TB_ETOOBIG, 431, "%s has more than %zu header fields", what(p), p->lim.max_headers);
      if (p->noffs == p->cap_offs) {
        size_t cap = p->cap_offs ? p->cap_offs * 2 : 16;
        if (cap > p->lim.max_headers) cap = p->lim.max_headers;
        hdr_off_t *o = tb_reallocarray(p->offs, cap, sizeof *o);
        if (o == NULL) return fail(p, TB_ENOMEM, 500, "out of memory");
        p->offs = o;
        p->cap_offs = cap;
      }
      p->offs[p->noffs++] = (hdr_off_t){a->len, 0, SIZE_MAX, 0};
      break;
    case PIECE_VALUE:
      p->offs[p->noffs - 1].value_off = a->len;
      break;
    case PIECE_NONE:
      break;
    }
    p->piece = kind;
  }
  int rc = tb_buf_append(a, at, len);
  if (rc == TB_ENOMEM) return fail(p, TB_ENOMEM, 500, "out of memory");
  if (rc != 0) return fail(p, TB_ETOOBIG, 431, "%s head is larger than %zu bytes", what(p), p->lim.max_head_bytes);
  return 0;
}

/* http-parser callbacks ------------------------------------------------------------- */

static int on_message_begin(http_parser *hp) {
  tb_http_parser_t *p = hp->data;
  tb_buf_reset(&p->arena);
  p->noffs = 0;
  p->url_off = p->url_len = p->status_off = p->status_len = 0;
  p->piece = PIECE_NONE;
  memset(&p->head, 0, sizeof p->head);
  p->trailer_bytes = 0;
  p->body_bytes = 0;
  p->in_message = true;
  p->in_head = true;
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len) {
  return piece_add(hp->data, PIECE_URL, at, len);
}

static int on_status(http_parser *hp, const char *at, size_t len) {
  return piece_add(hp->data, PIECE_STATUS, at, len);
}

static int trailer_bytes(tb_http_parser_t *p, size_t len) {
  p->trailer_bytes += len;
  if (p->trailer_bytes > p->lim.max_head_bytes)
    return fail(p, TB_ETOOBIG, 431, "%s trailer is larger than %zu bytes", what(p), p->lim.max_head_bytes);
  return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
  tb_http_parser_t *p = hp->data;
  if (!p->in_head) return trailer_bytes(p, len); /* trailers are counted, not kept */
  return piece_add(p, PIECE_FIELD, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  tb_http_parser_t *p = hp->data;
  if (!p->in_head) return trailer_bytes(p, len);
  return piece_add(p, PIECE_VALUE, at, len);
}

static int on_headers_complete(http_parser *hp) {
  tb_http_parser_t *p = hp->data;
  if (piece_end(p) != 0) return -1;
  p->head_pending = true;
  http_parser_pause(hp, 1);
  return p->skip_body ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
  tb_http_parser_t *p = hp->data;
  p->body_bytes += len;
  if (p->body_bytes > p->lim.max_body_bytes)
    return fail(p, TB_ETOOBIG, 413, "%s body is larger than %llu bytes", what(p),
                (unsigned long long)p->lim.max_body_bytes);
  if (p->cbs.on_data == NULL) return 0;
  int rc = p->cbs.on_data(p->ud, (const uint8_t *)at, len);
  if (rc < 0) return fail(p, rc, 500, "%s", tb_strerror(rc));
  if (rc == TB_HTTP_PAUSE) {
    p->user_paused = true;
    http_parser_pause(hp, 1);
  }
  return 0;
}

static int on_message_complete(http_parser *hp) {
  tb_http_parser_t *p = hp->data;
  p->end_pending = true;
  if (hp->upgrade) p->upgraded = true;
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The head ---------------------------------------------------------------------------- */

static bool ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

/* Debian builds http-parser without HTTP_PARSER_STRICT, which lets spaces into field
 * names and control characters into values; we hold received fields to RFC 9110. */
static bool token_char(unsigned char c) {
  if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool field_ok(const tb_http_header_t *f) {
  if (f->name_len == 0) return false;
  for (size_t i = 0; i < f->name_len; i++)
    if (!token_char((unsigned char)f->name[i])) return false;
  for (size_t i = 0; i < f->value_len; i++) {
    unsigned char c = (unsigned char)f->value[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

/* Builds p->head from the arena and checks the framing rules. Returns 0 or -1 (failed). */
static int build_head(tb_http_parser_t *p) {
  http_parser *hp = &p->hp;
  if (p->noffs > p->cap_hdrs) {
    tb_http_header_t *h = tb_reallocarray(p->hdrs, p->noffs, sizeof *h);
    if (h == NULL) return fail(p, TB_ENOMEM, 500, "out of memory");
    p->hdrs = h;
    p->cap_hdrs = p->noffs;
  }
  const char *base = tb_buf_cstr(&p->arena);
  size_t hosts = 0, content_lengths = 0, transfer_encodings = 0;
  tb_http_head_t *h = &p->head;
  for (size_t i = 0; i < p->noffs; i++) {
    hdr_off_t *o = &p->offs[i];
    tb_http_header_t *f = &p->hdrs[i];
    f->name = base + o->name_off;
    f->name_len = o->name_len;
    f->value = o->value_off == SIZE_MAX ? "" : base + o->value_off;
    f->value_len = o->value_off == SIZE_MAX ? 0 : o->value_len;
    if (!field_ok(f)) return fail(p, TB_EPARSE, 400, "malformed %s: invalid header field \"%.40s\"", what(p), f->name);
    if (ieq(f->name, "host")) hosts++;
    else if (ieq(f->name, "content-length")) content_lengths++;
    else if (ieq(f->name, "transfer-encoding")) transfer_encodings++;
    else if (ieq(f->name, "expect") && ieq(f->value, "100-continue")) h->expect_continue = true;
  }
  h->headers = p->hdrs;
  h->nheaders = p->noffs;
  h->version_major = hp->http_major;
  h->version_minor = hp->http_minor;
  h->chunked = (hp->flags & F_CHUNKED) != 0;
  h->content_length = (!h->chunked && hp->content_length != UINT64_MAX && content_lengths > 0)
                          ? (int64_t)hp->content_length
                          : -1;
  h->upgrade = hp->upgrade;
  if (p->kind == TB_HTTP_REQUEST) {
    h->method = http_method_str((enum http_method)hp->method);
    h->target = p->url_len ? base + p->url_off : "";
    h->reason = "";
    h->keep_alive = http_should_keep_alive(hp) != 0;
    if (hp->http_major != 1)
      return fail(p, TB_EPARSE, 400, "HTTP/%d.%d is not supported", hp->http_major, hp->http_minor);
    if (hosts > 1 || (hosts == 0 && hp->http_minor >= 1))
      return fail(p, TB_EPARSE, 400, "an HTTP/1.1 request needs exactly one Host header, got %zu", hosts);
    if (transfer_encodings && !h->chunked)
      return fail(p, TB_EPARSE, 400, "Transfer-Encoding other than chunked is not supported");
    if (h->chunked && content_lengths)
      return fail(p, TB_EPARSE, 400, "a request cannot have both Content-Length and Transfer-Encoding");
    if (h->target[0] == '\0') return fail(p, TB_EPARSE, 400, "request has no target");
  } else {
    h->method = NULL;
    h->target = "";
    h->status = hp->status_code;
    h->reason = p->status_len ? base + p->status_off : "";
    /* A 1xx is followed by the real response on the same connection. */
    h->keep_alive = (h->status / 100 == 1) ? true : http_should_keep_alive(hp) != 0;
  }
  bool bodyless = p->kind == TB_HTTP_RESPONSE &&
                  (p->skip_body || h->status / 100 == 1 || h->status == 204 || h->status == 304);
  if (!bodyless && h->content_length > 0 && (uint64_t)h->content_length > p->lim.max_body_bytes)
    return fail(p, TB_ETOOBIG, 413, "%s body of %lld bytes is larger than %llu bytes", what(p),
                (long long)h->content_length, (unsigned long long)p->lim.max_body_bytes);
  return 0;
}

/* Maps an http-parser error to ours (when no callback has set one already). */
static void parse_error(tb_http_parser_t *p) {
  enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
  if (p->err) return;
  if (e == HPE_HEADER_OVERFLOW) {
    fail(p, TB_ETOOBIG, 431, "%s head is larger than %zu bytes", what(p), TB_HTTP_PARSER_HEAD_CEILING);
    return;
  }
  fail(p, TB_EPARSE, 400, "malformed %s: %s", what(p), http_errno_description(e));
}

/* API ----------------------------------------------------------------------------------- */

int tb_http_parser_new(tb_http_kind_t kind, const tb_http_limits_t *limits, const tb_http_parser_cbs_t *cbs,
                       void *ud, tb_http_parser_t **out) {
  tb_http_parser_t *p = tb_calloc(1, sizeof *p);
  if (p == NULL) return TB_ENOMEM;
  p->kind = kind;
  if (limits) p->lim = *limits;
  if (p->lim.max_head_bytes == 0) p->lim.max_head_bytes = TB_HTTP_DEFAULT_MAX_HEAD_BYTES;
  if (p->lim.max_headers == 0) p->lim.max_headers = TB_HTTP_DEFAULT_MAX_HEADERS;
  if (p->lim.max_body_bytes == 0) p->lim.max_body_bytes = TB_HTTP_DEFAULT_MAX_BODY_BYTES;
  if (cbs) p->cbs = *cbs;
  p->ud = ud;
  /* Every piece adds one NUL; the head limit itself is enforced on consumed bytes. */
  tb_buf_init(&p->arena, p->lim.max_head_bytes + 2 * p->lim.max_headers + 16);
  http_parser_init(&p->hp, kind == TB_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE);
  p->hp.data = p;
  *out = p;
  return 0;
}

void tb_http_parser_free(tb_http_parser_t *p) {
  if (p == NULL) return;
  tb_buf_deinit(&p->arena);
  tb_free(p->offs);
  tb_free(p->hdrs);
  tb_free(p);
}

void tb_http_parser_set_skip_body(tb_http_parser_t *p, bool skip) { p->skip_body = skip; }

int tb_http_parser_status(const tb_http_parser_t *p) { return p->err ? p->status : 0; }

const char *tb_http_parser_error(const tb_http_parser_t *p) { return p->err ? p->errmsg : ""; }

bool tb_http_parser_in_message(const tb_http_parser_t *p) { return p->in_message; }

/* Runs the events the last execute stopped at. Returns 0 to go on, TB_HTTP_PAUSE to
 * return to the caller, or -1 when the parser failed. */
static int deliver(tb_http_parser_t *p) {
  if (p->head_pending) {
    p->head_pending = false;
    p->head_bytes += 1; /* execute stops before the head's final LF */
    if (p->head_bytes > p->lim.max_head_bytes)
      return fail(p, TB_ETOOBIG, 431, "%s head is larger than %zu bytes", what(p), p->lim.max_head_bytes);
    if (build_head(p) != 0) return -1;
    p->in_head = false;
    if (p->cbs.on_head) {
      int rc = p->cbs.on_head(p->ud, &p->head);
      if (rc < 0) return fail(p, rc, 500, "%s", tb_strerror(rc));
      if (rc == TB_HTTP_PAUSE) return TB_HTTP_PAUSE;
    }
    return 0;
  }
  if (p->end_pending) {
    p->end_pending = false;
    p->in_message = false;
    p->head_bytes = 0;
    if (p->cbs.on_end) {
      int rc = p->cbs.on_end(p->ud);
      if (rc < 0) return fail(p, rc, 500, "%s", tb_strerror(rc));
      if (rc == TB_HTTP_PAUSE) return TB_HTTP_PAUSE;
    }
    return 0;
  }
  if (p->user_paused) {
    p->user_paused = false;
    return TB_HTTP_PAUSE;
  }
  return 0;
}

int tb_http_parser_feed(tb_http_parser_t *p, const uint8_t *data, size_t len, size_t *consumed) {
  size_t off = 0;
  int rc = 0;
  if (p->err) goto out;
  while (off < len) {
    if (p->upgraded) {
      fail(p, TB_EUNSUPPORTED, 400, "bytes after an upgrade are not HTTP");
      break;
    }
    /* While in a head, feed no more than can take it past the limit, so the limit is
     * exact and http-parser never sees a head much larger than we allow. */
    bool heading = p->in_head || !p->in_message;
    size_t chunk = len - off;
    if (heading) {
      size_t room = p->lim.max_head_bytes - p->head_bytes + 1;
      if (p->head_bytes > p->lim.max_head_bytes) room = 1;
      if (chunk > room) chunk = room;
    }
    size_t n = http_parser_execute(&p->hp, &settings, (const char *)data + off, chunk);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (heading) p->head_bytes += n;
    off += n;
    if (e == HPE_PAUSED) {
      http_parser_pause(&p->hp, 0);
      int d = deliver(p);
      if (d < 0) break;
      if (d == TB_HTTP_PAUSE) goto out;
      continue;
    }
    if (e != HPE_OK) {
      parse_error(p);
      break;
    }
    if (p->in_head && p->head_bytes > p->lim.max_head_bytes) {
      fail(p, TB_ETOOBIG, 431, "%s head is larger than %zu bytes", what(p), p->lim.max_head_bytes);
      break;
    }
  }
out:
  if (consumed) *consumed = off;
  rc = p->err;
  return rc;
}

int tb_http_parser_finish(tb_http_parser_t *p) {
  if (p->err) return p->err;
  if (!p->in_message) return 0;
  http_parser_execute(&p->hp, &settings, NULL, 0);
  enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
  if (e == HPE_PAUSED) {
    http_parser_pause(&p->hp, 0);
    if (p->end_pending) {
      (void)deliver(p);
      return p->err;
    }
  }
  fail(p, TB_EPARSE, 400, "connection closed in the middle of a %s", what(p));
  return p->err;
}

const char *tb_http_head_get(const tb_http_head_t *head, const char *name) {
  for (size_t i = 0; i < head->nheaders; i++)
    if (strcasecmp(head->headers[i].name, name) == 0) return head->headers[i].value;
  return NULL;
}
