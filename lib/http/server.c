/*
 * server.c — the HTTP/1.1 server on libuv (include/tb/http.h).
 *
 * Each connection owns one read buffer, one request parser and at most one exchange
 * (tb_http_req_t) at a time. Bytes are read while the buffer has room and parsed only
 * while the exchange can take them: the head is handed to the handler, the body only
 * while the handler has called tb_http_req_read_start, and nothing of a pipelined next
 * request until the current exchange is over. So a handler that stops reading holds back
 * the client by TCP flow control, and a connection never holds more than its read buffer
 * plus the response bytes the handler queued.
 *
 * One function, conn_process, moves a connection forward: it calls the handler, feeds the
 * parser, finishes exchanges and starts the next; every event (bytes read, write done,
 * read_start, timer) ends by calling it. User callbacks may call back into the API;
 * conn_process does not nest, and teardown is deferred to libuv's close callbacks, so a
 * connection never disappears under a callback. The exchange's on_done runs either when
 * the response is flushed and the request read (err 0) or from the connection's last
 * close callback, after every write callback. docs/internals/HTTP.md has the picture.
 */
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "tb/alloc.h"
#include "tb/log.h"

#define LINGER_MS 2000 /* after shutdown(SHUT_WR), how long we read and drop what still comes */

typedef struct conn conn_t;

typedef struct wreq {
  uv_write_t w;
  conn_t *c;
  tb_http_req_t *req; /* NULL for the layer's own writes */
  tb_http_write_fn cb;
  void *ud;
  size_t len;
  struct wreq *next; /* on the deferred list: completions with nothing to write */
  uint8_t data[];
} wreq_t;

struct tb_http_req {
  conn_t *c;
  const tb_http_head_t *head;
  void *data;
  tb_http_req_data_fn on_data;
  tb_http_req_end_fn on_end;
  void *body_ud;
  tb_http_req_done_fn on_done;
  void *done_ud;
  uint64_t body_seen;   /* body bytes parsed so far */
  size_t drained;       /* body bytes dropped after the response */
  bool handled;         /* the handler has been called */
  bool reading;         /* the handler wants body bytes */
  bool body_done;       /* the request has been read to its end */
  bool end_undelivered; /* the end came while no on_end was registered */
  bool end_owed;        /* deliver on_end from conn_process */
  bool discard;         /* the response is out; read and drop the rest of the body */
  bool continue_sent;
  bool keep_alive;
  bool resp_started, resp_ended, resp_flushed;
  bool aborted;         /* the layer answered instead (408, 413, 400): resp_* refuse */
  uint8_t *phead;       /* the response head, held back to go out with the first body bytes */
  size_t phead_len;
  tb_http_framing_t fr;
  uint64_t written;
};

struct conn {
  tb__http_stream_t h;
  uv_timer_t timer;
  uv_idle_t pump;
  uv_shutdown_t shutdown_req;
  tb_http_server_t *srv;
  conn_t *prev, *next;
  tb_http_parser_t *parser;
  uint8_t *rbuf;
  size_t rcap, rstart, rend;
  tb_http_req_t *req;
  wreq_t *deferred, *deferred_tail;
  size_t queued;    /* bytes in writes not yet completed */
  size_t nwrites;   /* uv_write requests in flight */
  int handles_open;
  uint64_t last_io;
  uint64_t head_start; /* when the first byte of the head being read arrived; 0: none */
  int close_err;
  bool reading, closing, shutting, shut_done, peer_eof, in_process, counted;
  char peer[64];
};

typedef struct listener {
  tb__http_stream_t h;
  tb_http_server_t *srv;
  struct listener *next;
  bool tcp;
  int port;
} listener_t;

struct tb_http_server {
  uv_loop_t *loop;
  tb_http_server_config_t cfg;
  tb_http_handler_fn handler;
  void *ud;
  listener_t *listeners;
  size_t listeners_open; /* listener handles not yet closed */
  conn_t *conns;
  size_t nconns;         /* conn structs alive (including closing ones) */
  tb_http_server_stats_t stats;
  uv_timer_t grace;
  bool closing, freeing;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

static void conn_process(conn_t *c);
static void conn_close(conn_t *c, int err);
static void conn_shutdown(conn_t *c);
static void maybe_finish_close(tb_http_server_t *srv);

/* Small helpers ------------------------------------------------------------------------ */

static bool req_dead(const tb_http_req_t *req) {
  return req->aborted || req->c->closing || req->c->shutting;
}

static bool req_bodyless(const tb_http_req_t *req) {
  return !req->head->chunked && req->head->content_length <= 0;
}

/* Can the unread rest of the body be read and dropped, to keep the connection? */
static bool can_drain(const tb_http_req_t *req) {
  const conn_t *c = req->c;
  if (!req->keep_alive || c->peer_eof || c->srv->closing) return false;
  if (req->head->expect_continue && !req->continue_sent) return false; /* the client may never send it */
  if (req->head->content_length >= 0)
    return (uint64_t)req->head->content_length - req->body_seen <= c->srv->cfg.drain_max_bytes;
  return true; /* chunked: try, and close if it goes on too long */
}

static bool parser_may_run(const conn_t *c) {
  const tb_http_req_t *req = c->req;
  if (c->closing || c->shutting) return false;
  if (req == NULL) return true;
  if (req->body_done || !req->handled) return false;
  return req->reading || req->discard || req_bodyless(req);
}

static const char *status_code_word(int status) {
  switch (status) {
  case 400: return "bad_request";
  case 408: return "request_timeout";
  case 413: return "content_too_large";
  case 431: return "header_fields_too_large";
  case 503: return "unavailable";
  default: return "internal_error";
  }
}

/* Reading and the timer ----------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn_t *c = h->data;
  if (c->shutting) c->rstart = c->rend = 0; /* lingering: everything read is dropped */
  if (c->rend == c->rcap && c->rstart > 0) {
    memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
    c->rend -= c->rstart;
    c->rstart = 0;
  }
  buf->base = (char *)c->rbuf + c->rend;
  buf->len = c->rcap - c->rend;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_update_read(conn_t *c) {
  if (c->closing) return;
  bool want = !c->peer_eof && (c->shutting || c->rend < c->rcap || c->rstart > 0);
  if (want && !c->reading) {
    if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0) c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop(&c->h.stream);
    c->reading = false;
  }
}

static void on_timer(uv_timer_t *t);

/* The one timer of a connection: idle time while we wait on the client (for a head, for
 * body bytes it should be sending, or for it to take our writes), the head deadline, and
 * the linger after shutdown. While the handler works, no clock runs. */
static uint64_t conn_deadline(const conn_t *c) {
  const tb_http_server_config_t *cfg = &c->srv->cfg;
  if (c->shutting) return c->last_io + (cfg->idle_timeout_ms < LINGER_MS ? cfg->idle_timeout_ms : LINGER_MS);
  bool waiting = c->req == NULL || (!c->req->body_done && parser_may_run(c) && c->rstart == c->rend);
  uint64_t d = 0;
  if (waiting || c->nwrites > 0) d = c->last_io + cfg->idle_timeout_ms;
  if (c->req == NULL && c->head_start) {
    uint64_t hd = c->head_start + cfg->head_timeout_ms;
    if (d == 0 || hd < d) d = hd;
  }
  return d;
}

static void conn_update_timer(conn_t *c) {
  if (c->closing) return;
  uint64_t d = conn_deadline(c);
  if (d == 0) {
    uv_timer_stop(&c->timer);
    return;
  }
  uint64_t now = uv_now(c->h.handle.loop);
  uv_timer_start(&c->timer, on_timer, d > now ? d - now : 0, 0);
}

/* Writing ----------------------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status);

static void conn_schedule(conn_t *c);

/*
 * Writes the `nb` pieces as one write. With nothing queued it first tries the socket at
 * once (uv_try_write): most writes complete there, which spares the copy, the write
 * request and libuv's re-arming of the poll set when its queue drains; the callback then
 * runs from the pump. What the socket does not take is copied and queued. Returns 0 or a
 * TB_E code (then nothing was written).
 */
static int conn_writev(conn_t *c, tb_http_req_t *req, const uv_buf_t *b, int nb, tb_http_write_fn cb, void *ud) {
  size_t total = 0, done = 0;
  for (int i = 0; i < nb; i++) total += b[i].len;
  if (c->nwrites == 0 && total > 0) {
    wreq_t *d = NULL;
    if (cb && (d = tb_calloc(1, sizeof *d)) == NULL) return TB_ENOMEM;
    int r = uv_try_write(&c->h.stream, b, (unsigned)nb);
    if (r >= 0 && (size_t)r == total) {
      c->last_io = uv_now(c->h.handle.loop);
      if (d) {
        d->c = c, d->req = req, d->cb = cb, d->ud = ud;
        if (c->deferred_tail) c->deferred_tail->next = d;
        else c->deferred = d;
        c->deferred_tail = d;
        conn_schedule(c);
      }
      return 0;
    }
    tb_free(d);
    if (r > 0) done = (size_t)r;
    else if (r != UV_EAGAIN && r != UV_ENOSYS) return tb__http_uv_err(r);
  }
  size_t qlen = total - done;
  wreq_t *w = tb_malloc(sizeof *w + qlen);
  if (w == NULL) return done ? TB_EIO : TB_ENOMEM; /* half a message out: the connection is lost */
  w->c = c;
  w->req = req;
  w->cb = cb;
  w->ud = ud;
  w->len = qlen;
  w->next = NULL;
  size_t at = 0, skip = done;
  for (int i = 0; i < nb; i++) {
    size_t l = b[i].len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    memcpy(w->data + at, b[i].base + skip, l - skip);
    at += l - skip;
    skip = 0;
  }
  uv_buf_t one = uv_buf_init((char *)w->data, (unsigned)qlen);
  int rc = uv_write(&w->w, &c->h.stream, &one, 1, on_write);
  if (rc != 0) {
    tb_free(w);
    return tb__http_uv_err(rc);
  }
  c->nwrites++;
  c->queued += qlen;
  if (c->queued > c->srv->stats.queued_peak) c->srv->stats.queued_peak = c->queued;
  conn_update_timer(c);
  return 0;
}

/* Writes pre + data + post as one write. */
static int conn_write(conn_t *c, tb_http_req_t *req, const void *pre, size_t prelen, const void *data,
                      size_t len, const void *post, size_t postlen, tb_http_write_fn cb, void *ud) {
  uv_buf_t b[3];
  int nb = 0;
  if (prelen) b[nb++] = uv_buf_init((char *)pre, (unsigned)prelen);
  if (len) b[nb++] = uv_buf_init((char *)data, (unsigned)len);
  if (postlen) b[nb++] = uv_buf_init((char *)post, (unsigned)postlen);
  return conn_writev(c, req, b, nb, cb, ud);
}

/* A completion with nothing to write (HEAD body, empty chunk): runs from the pump. */
static int conn_defer(conn_t *c, tb_http_req_t *req, tb_http_write_fn cb, void *ud) {
  wreq_t *w = tb_calloc(1, sizeof *w);
  if (w == NULL) return TB_ENOMEM;
  w->c = c;
  w->req = req;
  w->cb = cb;
  w->ud = ud;
  if (c->deferred_tail) c->deferred_tail->next = w;
  else c->deferred = w;
  c->deferred_tail = w;
  conn_schedule(c);
  return 0;
}

static void run_deferred(conn_t *c, int status) {
  while (c->deferred) {
    wreq_t *w = c->deferred;
    c->deferred = w->next;
    if (c->deferred == NULL) c->deferred_tail = NULL;
    if (w->cb) w->cb(w->req, status, w->ud);
    tb_free(w);
  }
}

static void check_flushed(conn_t *c) {
  tb_http_req_t *req = c->req;
  if (req && req->resp_ended && !req->resp_flushed && c->nwrites == 0 && c->deferred == NULL)
    req->resp_flushed = true;
}

static void on_write(uv_write_t *uw, int status) {
  wreq_t *w = (wreq_t *)uw;
  conn_t *c = w->c;
  c->nwrites--;
  c->queued -= w->len;
  if (status == 0) c->last_io = uv_now(c->h.handle.loop);
  int err = status ? tb__http_uv_err(status) : 0;
  if (w->cb) w->cb(w->req, err, w->ud);
  tb_free(w);
  if (c->closing) return;
  if (err) {
    conn_close(c, err);
    return;
  }
  check_flushed(c);
  conn_process(c);
}

/* Sends a response the layer makes itself (400, 408, 413, 431, 503) and closes. */
static void conn_fail_status(conn_t *c, int status, int err, const char *message) {
  if (c->closing || c->shutting) return;
  tb_http_req_t *req = c->req;
  if (req && req->resp_started) {
    conn_close(c, err);
    return;
  }
  if (req) req->aborted = true;
  c->close_err = err;
  tb_buf_t head, body;
  tb_buf_init(&head, 4096);
  tb_buf_init(&body, 1024);
  tb_http_framing_t fr = {.request_minor = 1, .keep_alive = false};
  if (req && strcmp(req->head->method, "HEAD") == 0) fr.head_request = true;
  int rc = tb_http_error_json(&body, status, status_code_word(status), message);
  fr.content_length = (int64_t)body.len;
  tb_http_header_t ct = {"Content-Type", "application/json", 0, 0};
  if (rc == 0) rc = tb_http_response_head(&head, status, NULL, &ct, 1, &fr);
  if (rc == 0)
    rc = conn_write(c, NULL, head.data, head.len, fr.no_body ? NULL : body.data, fr.no_body ? 0 : body.len,
                    NULL, 0, NULL, NULL);
  tb_buf_deinit(&head);
  tb_buf_deinit(&body);
  tb_log_debug("http", "request refused", TB_KV_INT("status", status), TB_KV_STR("peer", c->peer),
               TB_KV_STR("reason", message));
  if (rc != 0) conn_close(c, err);
  else conn_shutdown(c);
}

/* The exchange ------------------------------------------------------------------------- */

static void req_free(tb_http_req_t *req, int err) {
  if (req->on_done) req->on_done(req, err, req->done_ud);
  tb_free(req->phead);
  tb_free(req);
}

/* Writes the held-back response head, followed by `nb` more pieces, as one write. */
static int write_with_head(conn_t *c, tb_http_req_t *req, const uv_buf_t *more, int nb, tb_http_write_fn cb,
                           void *ud) {
  uv_buf_t b[5];
  int n = 0;
  if (req->phead) b[n++] = uv_buf_init((char *)req->phead, (unsigned)req->phead_len);
  for (int i = 0; i < nb && n < 5; i++) b[n++] = more[i];
  int rc = conn_writev(c, req, b, n, cb, ud);
  if (rc == 0 && req->phead) {
    tb_free(req->phead);
    req->phead = NULL;
    req->phead_len = 0;
  }
  return rc;
}

static void exchange_finish(conn_t *c) {
  tb_http_req_t *req = c->req;
  bool keep = req->keep_alive && !c->srv->closing;
  c->req = NULL;
  req_free(req, 0);
  if (c->closing) return;
  if (!keep || (c->peer_eof && c->rstart == c->rend)) {
    conn_shutdown(c);
    return;
  }
  c->head_start = c->rstart < c->rend ? uv_now(c->h.handle.loop) : 0;
  c->last_io = uv_now(c->h.handle.loop);
}

/* Parser events (the connection is `ud`) ------------------------------------------------- */

static int p_on_head(void *ud, const tb_http_head_t *head) {
  conn_t *c = ud;
  tb_http_req_t *req = tb_calloc(1, sizeof *req);
  if (req == NULL) return TB_ENOMEM;
  req->c = c;
  req->head = head;
  req->keep_alive = head->keep_alive && !head->upgrade && !c->srv->closing;
  c->req = req;
  c->head_start = 0;
  c->srv->stats.requests++;
  return TB_HTTP_PAUSE; /* the handler runs from conn_process, outside the parser */
}

static int p_on_data(void *ud, const uint8_t *data, size_t len) {
  conn_t *c = ud;
  tb_http_req_t *req = c->req;
  req->body_seen += len;
  if (req->discard) {
    req->drained += len;
    if (req->drained > c->srv->cfg.drain_max_bytes) return TB_ECANCELED;
    return 0;
  }
  if (req->on_data) req->on_data(req, data, len, req->body_ud);
  return (!req->reading || c->closing || c->shutting) ? TB_HTTP_PAUSE : 0;
}

static int p_on_end(void *ud) {
  conn_t *c = ud;
  tb_http_req_t *req = c->req;
  req->body_done = true;
  if (!req->discard) {
    if (req->on_end) req->on_end(req, req->body_ud);
    else req->end_undelivered = true;
  }
  return TB_HTTP_PAUSE; /* nothing of the next request until this exchange is over */
}

static const tb_http_parser_cbs_t parser_cbs = {p_on_head, p_on_data, p_on_end};

static void conn_check_eof(conn_t *c) {
  if (!c->peer_eof || c->closing || c->shutting) return;
  if (c->req == NULL) {
    if (c->rstart == c->rend) conn_close(c, 0);
    return;
  }
  if (c->req->discard) { /* the answer is out and the rest of the body will never come */
    conn_close(c, 0);
    return;
  }
  if (c->req->resp_ended) {
    c->req->keep_alive = false; /* let it flush, then close */
    return;
  }
  /* The client is gone before its answer was complete: the exchange is over. */
  conn_close(c, TB_ECONNRESET);
}

static void conn_parse_failed(conn_t *c, int rc) {
  if (c->req && c->req->resp_flushed) { /* failed while draining: the answer is out */
    conn_close(c, 0);
    return;
  }
  int status = tb_http_parser_status(c->parser);
  if (status == 0 || status == 500) {
    conn_close(c, rc);
    return;
  }
  conn_fail_status(c, status, rc, tb_http_parser_error(c->parser));
}

static void conn_process(conn_t *c) {
  if (c->in_process) return;
  c->in_process = true;
  while (!c->closing && !c->shutting) {
    tb_http_req_t *req = c->req;
    if (req && !req->handled) {
      req->handled = true;
      c->srv->handler(req, c->srv->ud);
      continue;
    }
    if (req && req->end_owed) {
      req->end_owed = false;
      if (req->on_end) req->on_end(req, req->body_ud);
      continue;
    }
    if (req && req->resp_flushed) {
      if (req->body_done) {
        exchange_finish(c);
        continue;
      }
      if (!req->discard) {
        if (!can_drain(req)) {
          conn_shutdown(c);
          break;
        }
        req->discard = true;
      }
    }
    if (!parser_may_run(c) || c->rstart == c->rend) break;
    size_t n = 0;
    int rc = tb_http_parser_feed(c->parser, c->rbuf + c->rstart, c->rend - c->rstart, &n);
    c->rstart += n;
    if (c->rstart == c->rend) c->rstart = c->rend = 0;
    if (rc != 0) {
      conn_parse_failed(c, rc);
      break;
    }
  }
  c->in_process = false;
  conn_check_eof(c);
  conn_update_read(c);
  conn_update_timer(c);
}

static void on_pump(uv_idle_t *h) {
  conn_t *c = h->data;
  uv_idle_stop(h);
  run_deferred(c, 0);
  if (c->closing) return;
  if (c->req && c->req->phead && !c->shutting) { /* no body bytes came this turn: the head goes alone */
    int rc = write_with_head(c, c->req, NULL, 0, NULL, NULL);
    if (rc != 0) {
      conn_close(c, rc);
      return;
    }
  }
  check_flushed(c);
  conn_process(c);
}

static void conn_schedule(conn_t *c) {
  if (!c->closing) uv_idle_start(&c->pump, on_pump);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      conn_close(c, tb__http_uv_err((int)nread));
      return;
    }
    c->peer_eof = true;
    uv_read_stop(s);
    c->reading = false;
    if (c->shutting) {
      if (c->shut_done) conn_close(c, 0); /* else on_shutdown closes once our bytes are out */
      return;
    }
    conn_process(c);
    return;
  }
  c->last_io = uv_now(c->h.handle.loop);
  if (c->shutting) {
    c->rstart = c->rend = 0;
    conn_update_timer(c);
    return;
  }
  c->rend += (size_t)nread;
  if (c->req == NULL && c->head_start == 0) c->head_start = c->last_io;
  conn_process(c);
}

static void on_timer(uv_timer_t *t) {
  conn_t *c = t->data;
  uint64_t d = conn_deadline(c), now = uv_now(t->loop);
  if (d == 0) return;
  if (d > now) { /* activity moved the deadline */
    uv_timer_start(&c->timer, on_timer, d - now, 0);
    return;
  }
  if (c->shutting) {
    conn_close(c, 0);
    return;
  }
  bool idle_between = c->req == NULL && !tb_http_parser_in_message(c->parser) && c->rstart == c->rend;
  if (idle_between) {
    conn_close(c, 0); /* a keep-alive connection nobody uses */
    return;
  }
  if (c->req && (c->req->resp_started || c->req->body_done)) {
    conn_close(c, TB_ETIMEDOUT); /* the client stopped taking our response */
    return;
  }
  char msg[96];
  if (c->req == NULL && c->head_start && now >= c->head_start + c->srv->cfg.head_timeout_ms)
    snprintf(msg, sizeof msg, "the request head took longer than %llu ms",
             (unsigned long long)c->srv->cfg.head_timeout_ms);
  else
    snprintf(msg, sizeof msg, "no bytes of the request for %llu ms", (unsigned long long)c->srv->cfg.idle_timeout_ms);
  conn_fail_status(c, 408, TB_ETIMEDOUT, msg);
}

/* Teardown ------------------------------------------------------------------------------ */

static void on_shutdown(uv_shutdown_t *r, int status) {
  conn_t *c = r->handle->data;
  c->shut_done = true;
  if (!c->closing && (status < 0 || c->peer_eof)) conn_close(c, 0);
}

/* Half-closes: sends FIN after the queued writes, then reads and drops whatever the
 * client still sends until it closes or LINGER_MS pass, so it sees our answer and not a
 * reset. */
static void conn_shutdown(conn_t *c) {
  if (c->closing || c->shutting) return;
  c->shutting = true;
  c->rstart = c->rend = 0;
  c->last_io = uv_now(c->h.handle.loop);
  if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_shutdown) != 0) {
    conn_close(c, 0);
    return;
  }
  conn_update_read(c);
  conn_update_timer(c);
}

static void conn_free(conn_t *c) {
  tb_http_server_t *srv = c->srv;
  run_deferred(c, TB_ECANCELED);
  if (c->req) {
    tb_http_req_t *req = c->req;
    c->req = NULL;
    int err = req->resp_flushed ? 0 : (c->close_err ? c->close_err : TB_ECONNRESET);
    req_free(req, err);
  }
  if (c->prev) c->prev->next = c->next;
  else if (srv->conns == c) srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  if (c->counted) srv->stats.open--;
  srv->nconns--;
  tb_http_parser_free(c->parser);
  tb_free(c->rbuf);
  tb_free(c);
  maybe_finish_close(srv);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles_open == 0) conn_free(c);
}

static void conn_close(conn_t *c, int err) {
  if (c->closing) return;
  c->closing = true;
  if (c->close_err == 0) c->close_err = err;
  c->reading = false;
  uv_close(&c->h.handle, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->pump, on_conn_handle_closed);
}

/* Accepting ------------------------------------------------------------------------------ */

static void on_connection(uv_stream_t *ls, int status) {
  listener_t *l = ls->data;
  tb_http_server_t *srv = l->srv;
  if (status < 0 || srv->closing) return;
  conn_t *c = tb_calloc(1, sizeof *c);
  if (c == NULL) return;
  c->srv = srv;
  if (l->tcp) uv_tcp_init(srv->loop, &c->h.tcp);
  else uv_pipe_init(srv->loop, &c->h.pipe, 0);
  uv_timer_init(srv->loop, &c->timer);
  uv_idle_init(srv->loop, &c->pump);
  c->h.handle.data = c->timer.data = c->pump.data = c;
  c->handles_open = 3;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  if (uv_accept(ls, &c->h.stream) != 0) {
    conn_close(c, 0);
    return;
  }
  srv->stats.connections++;
  srv->stats.open++;
  c->counted = true;
  if (srv->stats.open > srv->cfg.max_connections) {
    conn_close(c, 0);
    return;
  }
  c->rcap = srv->cfg.read_buffer_size;
  c->rbuf = tb_malloc(c->rcap);
  if (c->rbuf == NULL || tb_http_parser_new(TB_HTTP_REQUEST, &srv->cfg.limits, &parser_cbs, c, &c->parser) != 0) {
    conn_close(c, 0);
    return;
  }
  if (l->tcp) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_nodelay(&c->h.tcp, 1);
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
      tb__http_format_sockaddr((struct sockaddr *)&ss, c->peer, sizeof c->peer);
  } else {
    snprintf(c->peer, sizeof c->peer, "unix");
  }
  c->last_io = uv_now(srv->loop);
  conn_update_read(c);
  conn_update_timer(c);
}

/* Server --------------------------------------------------------------------------------- */

int tb_http_server_new(uv_loop_t *loop, const tb_http_server_config_t *cfg, tb_http_handler_fn handler,
                       void *ud, tb_http_server_t **out) {
  if (loop == NULL || handler == NULL || out == NULL) return TB_EINVAL;
  tb__http_ignore_sigpipe();
  tb_http_server_t *srv = tb_calloc(1, sizeof *srv);
  if (srv == NULL) return TB_ENOMEM;
  srv->loop = loop;
  if (cfg) srv->cfg = *cfg;
  tb_http_server_config_t *c = &srv->cfg;
  if (c->idle_timeout_ms == 0) c->idle_timeout_ms = 60000;
  if (c->head_timeout_ms == 0) c->head_timeout_ms = 30000;
  if (c->max_connections == 0) c->max_connections = 1024;
  if (c->read_buffer_size == 0) c->read_buffer_size = TB__HTTP_READ_BUFFER;
  if (c->drain_max_bytes == 0) c->drain_max_bytes = (size_t)64 << 10;
  if (c->close_grace_ms == 0) c->close_grace_ms = 5000;
  srv->handler = handler;
  srv->ud = ud;
  uv_timer_init(loop, &srv->grace);
  srv->grace.data = srv;
  *out = srv;
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  listener_t *l = h->data;
  tb_http_server_t *srv = l->srv;
  srv->listeners_open--;
  tb_free(l);
  maybe_finish_close(srv);
}

int tb_http_server_listen(tb_http_server_t *srv, const char *addr, tb_errbuf_t *eb) {
  tb_http_addr_t a;
  struct sockaddr_storage ss;
  int rc = tb_http_addr_parse(addr, 0, &a, eb);
  if (rc != 0) return rc;
  if (srv->closing) return tb_errf(eb, TB_ECANCELED, "the server is closing");
  listener_t *l = tb_calloc(1, sizeof *l);
  if (l == NULL) return TB_ENOMEM;
  l->srv = srv;
  l->tcp = a.kind == TB_HTTP_ADDR_TCP;
  if (l->tcp) {
    if (tb__http_sockaddr(&a, &ss) != 0) {
      tb_free(l);
      return tb_errf(eb, TB_EINVAL, "listen address \"%s\": the host must be a numeric IP address", addr);
    }
    uv_tcp_init(srv->loop, &l->h.tcp);
  } else {
    uv_pipe_init(srv->loop, &l->h.pipe, 0);
  }
  l->h.handle.data = l;
  srv->listeners_open++;
  if (l->tcp)
    rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
  else
    rc = uv_pipe_bind(&l->h.pipe, a.path);
  if (rc == 0) rc = uv_listen(&l->h.stream, 511, on_connection);
  if (rc != 0) {
    uv_close(&l->h.handle, on_listener_closed);
    return tb_errf(eb, tb__http_uv_err(rc), "cannot listen on %s: %s", addr, uv_strerror(rc));
  }
  if (l->tcp) {
    int len = sizeof ss;
    if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) == 0)
      l->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  /* Append, so the first listener stays first for tb_http_server_port. */
  listener_t **pp = &srv->listeners;
  while (*pp) pp = &(*pp)->next;
  *pp = l;
  tb_log_debug("http", "listening", TB_KV_STR("addr", addr), TB_KV_INT("port", l->port));
  return 0;
}

int tb_http_server_port(const tb_http_server_t *srv) {
  for (const listener_t *l = srv->listeners; l; l = l->next)
    if (l->tcp) return l->port;
  return TB_ENOENT;
}

void tb_http_server_stats(const tb_http_server_t *srv, tb_http_server_stats_t *out) { *out = srv->stats; }

static void on_grace_closed(uv_handle_t *h) {
  tb_http_server_t *srv = h->data;
  void (*cb)(void *) = srv->on_closed;
  void *ud = srv->closed_ud;
  tb_free(srv);
  if (cb) cb(ud);
}

static void maybe_finish_close(tb_http_server_t *srv) {
  if (!srv->closing || srv->freeing || srv->nconns > 0 || srv->listeners_open > 0) return;
  srv->freeing = true;
  uv_close((uv_handle_t *)&srv->grace, on_grace_closed);
}

static void on_grace(uv_timer_t *t) {
  tb_http_server_t *srv = t->data;
  for (conn_t *c = srv->conns; c; c = c->next) conn_close(c, TB_ECANCELED);
}

void tb_http_server_close(tb_http_server_t *srv, void (*on_closed)(void *ud), void *ud) {
  if (srv->closing) return;
  srv->closing = true;
  srv->on_closed = on_closed;
  srv->closed_ud = ud;
  for (listener_t *l = srv->listeners, *next; l; l = next) {
    next = l->next;
    uv_close(&l->h.handle, on_listener_closed);
  }
  srv->listeners = NULL;
  for (conn_t *c = srv->conns; c; c = c->next) {
    if (c->req == NULL) conn_close(c, 0);
    else if (!c->req->resp_started) c->req->keep_alive = false;
  }
  if (srv->nconns > 0) uv_timer_start(&srv->grace, on_grace, srv->cfg.close_grace_ms, 0);
  maybe_finish_close(srv);
}

/* Exchange API ----------------------------------------------------------------------------- */

const tb_http_head_t *tb_http_req_head(const tb_http_req_t *req) { return req->head; }

const char *tb_http_req_header(const tb_http_req_t *req, const char *name) {
  return tb_http_head_get(req->head, name);
}

const char *tb_http_req_peer(const tb_http_req_t *req) { return req->c->peer; }

void tb_http_req_set_data(tb_http_req_t *req, void *data) { req->data = data; }

void *tb_http_req_data(const tb_http_req_t *req) { return req->data; }

int tb_http_req_read_start(tb_http_req_t *req, tb_http_req_data_fn on_data, tb_http_req_end_fn on_end, void *ud) {
  conn_t *c = req->c;
  if (req_dead(req)) return TB_ECANCELED;
  req->on_data = on_data;
  req->on_end = on_end;
  req->body_ud = ud;
  req->reading = true;
  if (req->head->expect_continue && !req->continue_sent && !req->resp_started && !req->body_done) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    int rc = conn_write(c, NULL, cont, sizeof cont - 1, NULL, 0, NULL, 0, NULL, NULL);
    if (rc != 0) {
      conn_close(c, rc);
      return rc;
    }
    req->continue_sent = true;
  }
  if (req->body_done && req->end_undelivered) {
    req->end_undelivered = false;
    req->end_owed = true;
  }
  conn_schedule(c);
  return 0;
}

void tb_http_req_read_stop(tb_http_req_t *req) { req->reading = false; }

void tb_http_req_on_done(tb_http_req_t *req, tb_http_req_done_fn on_done, void *ud) {
  req->on_done = on_done;
  req->done_ud = ud;
}

int tb_http_resp_start(tb_http_req_t *req, int status, const tb_http_header_t *headers, size_t nheaders,
                       int64_t content_length) {
  conn_t *c = req->c;
  if (req_dead(req)) return TB_ECANCELED;
  if (req->resp_started || status < 200) return TB_EINVAL;
  tb_http_framing_t fr = {
      .content_length = content_length < 0 ? -1 : content_length,
      .head_request = strcmp(req->head->method, "HEAD") == 0,
      .request_minor = req->head->version_minor,
      .keep_alive = req->keep_alive && !c->srv->closing,
  };
  /* Answering before the body was read: keep the connection only if we can read and
   * drop the rest cheaply; otherwise tell the client we will close. */
  if (!req->body_done && !req_bodyless(req) && !can_drain(req)) fr.keep_alive = false;
  tb_buf_t head;
  tb_buf_init(&head, (size_t)1 << 20);
  int rc = tb_http_response_head(&head, status, NULL, headers, nheaders, &fr);
  if (rc == 0) {
    req->fr = fr;
    req->keep_alive = fr.keep_alive;
    req->resp_started = true;
    /* Held back until the first body bytes or the end, or at the latest the next pump
     * (this loop turn): a small answer then leaves in one write, one segment. */
    req->phead = head.data;
    req->phead_len = head.len;
    head = (tb_buf_t){0};
    conn_schedule(c);
  }
  tb_buf_deinit(&head);
  return rc;
}

int tb_http_resp_write(tb_http_req_t *req, const void *data, size_t len, tb_http_write_fn cb, void *ud) {
  conn_t *c = req->c;
  if (req_dead(req)) return TB_ECANCELED;
  if (!req->resp_started || req->resp_ended) return TB_EINVAL;
  if (req->fr.content_length >= 0 && req->written + len > (uint64_t)req->fr.content_length) return TB_EINVAL;
  req->written += len;
  if (req->fr.no_body || len == 0) return conn_defer(c, req, cb, ud); /* the pump sends a held head */
  int rc;
  char pre[TB_HTTP_CHUNK_PREFIX_MAX];
  uv_buf_t b[3];
  int nb = 0;
  if (req->fr.chunked) b[nb++] = uv_buf_init(pre, (unsigned)tb_http_chunk_prefix(pre, len));
  b[nb++] = uv_buf_init((char *)data, (unsigned)len);
  if (req->fr.chunked) b[nb++] = uv_buf_init("\r\n", 2);
  rc = write_with_head(c, req, b, nb, cb, ud);
  if (rc != 0) {
    req->written -= len;
    if (rc != TB_ENOMEM) conn_close(c, rc);
  }
  return rc;
}

int tb_http_resp_end(tb_http_req_t *req) {
  conn_t *c = req->c;
  if (req_dead(req)) return TB_ECANCELED;
  if (!req->resp_started || req->resp_ended) return TB_EINVAL;
  int rc = 0;
  req->resp_ended = true;
  if (!req->fr.no_body && req->fr.content_length >= 0 && req->written < (uint64_t)req->fr.content_length) {
    req->keep_alive = false; /* the client cannot find the end: close after what we sent */
    rc = TB_EINVAL;
  }
  if (req->fr.close_delimited) req->keep_alive = false;
  if ((req->fr.chunked && !req->fr.no_body) || req->phead) {
    uv_buf_t last = uv_buf_init(TB_HTTP_CHUNK_LAST, sizeof TB_HTTP_CHUNK_LAST - 1);
    int wrc = write_with_head(c, req, &last, req->fr.chunked && !req->fr.no_body ? 1 : 0, NULL, NULL);
    if (wrc != 0) {
      conn_close(c, wrc);
      return wrc;
    }
  }
  conn_schedule(c); /* if nothing is in flight, the response is flushed already */
  return rc;
}

void tb_http_resp_abort(tb_http_req_t *req) {
  conn_t *c = req->c;
  if (req_dead(req)) return;
  if (req->phead && write_with_head(c, req, NULL, 0, NULL, NULL) != 0) {
    conn_close(c, TB_ECONNABORTED);
    return;
  }
  req->aborted = true;
  req->keep_alive = false;
  c->close_err = TB_ECONNABORTED;
  conn_shutdown(c); /* FIN after the queued bytes; the exchange ends when the socket closes */
}

size_t tb_http_resp_queued(const tb_http_req_t *req) { return req->c->queued + req->phead_len; }

int tb_http_resp_send(tb_http_req_t *req, int status, const char *content_type, const void *body, size_t len) {
  tb_http_header_t ct = {"Content-Type", content_type, 0, 0};
  int rc = tb_http_resp_start(req, status, &ct, content_type ? 1 : 0, (int64_t)len);
  if (rc == 0 && len) rc = tb_http_resp_write(req, body, len, NULL, NULL);
  if (rc == 0) rc = tb_http_resp_end(req);
  return rc;
}

int tb_http_resp_error(tb_http_req_t *req, int status, const char *code, const char *message) {
  tb_buf_t body;
  tb_buf_init(&body, 64 << 10);
  int rc = tb_http_error_json(&body, status, code, message);
  if (rc == 0) rc = tb_http_resp_send(req, status, "application/json", body.data, body.len);
  tb_buf_deinit(&body);
  return rc;
}
