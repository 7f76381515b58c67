/*
 * client.c — the HTTP/1.1 client on libuv, with a keep-alive pool (include/tb/http.h).
 *
 * A call (tb_http_call_t) runs on one connection at a time. Connections are keyed by
 * "host:port" or "unix:/path"; one that finished a call cleanly (response read to its
 * end, request fully sent, keep-alive on both sides, no stray bytes) goes back to the
 * pool, where it keeps reading so that a server closing it is noticed, and is closed
 * after pool_idle_ms. A call on a pooled connection that fails before any response byte
 * arrived is retried once on a fresh connection if its body can be sent again, because
 * the server may have closed the idle connection just as we reused it.
 *
 * Connecting always starts from the loop, never inside tb_http_client_request, so every
 * network failure (refused, unreachable, timed out, name not found) reaches the caller
 * the same way: through on_done. The request body goes out one write at a time (the
 * head with an in-memory body, then each piece a body source returns), which is the
 * backpressure: the source is asked again only when the previous piece was written. The
 * response is read while there is room in the read buffer and parsed while the caller
 * has not called tb_http_call_read_stop.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "tb/alloc.h"
#include "tb/log.h"

typedef struct cconn cconn_t;

enum cstate { C_START, C_RESOLVING, C_CONNECTING, C_BUSY, C_IDLE };

struct tb_http_call {
  tb_http_client_t *cl;
  cconn_t *conn;
  tb_http_call_t *prev, *next;
  tb_http_call_cbs_t cbs;
  void *ud;
  char *key;
  tb_http_addr_t addr;
  tb_buf_t head;
  const uint8_t *body;
  size_t body_len;
  tb_http_body_source_fn source;
  int64_t body_length;
  uint8_t *chunk;
  uint64_t sent;
  uint64_t timeout_ms;
  bool head_method;
  bool head_sent, body_sent, source_waiting;
  bool reading, interim, resp_done, got_response, resp_keep_alive;
  bool reused, retried, canceled;
  uint64_t bytes_received;
};

struct cconn {
  tb__http_stream_t *h; /* replaced when a failed connect moves on to the next address */
  uv_timer_t timer;
  uv_idle_t pump;
  uv_connect_t connect_req;
  uv_getaddrinfo_t gai;
  tb_http_client_t *cl;
  cconn_t *prev, *next;
  char *key;
  tb_http_addr_t addr;
  struct sockaddr_storage addrs[8]; /* what the name resolved to, tried in order */
  int naddrs, addr_i;
  tb_http_parser_t *parser;
  uint8_t *rbuf;
  size_t rcap, rstart, rend;
  tb_http_call_t *call;
  enum cstate state;
  int handles_open;
  size_t nwrites;
  uint64_t last_io, started;
  int write_err;
  bool closing, reading, peer_eof, in_process;
};

struct tb_http_client {
  uv_loop_t *loop;
  tb_http_client_config_t cfg;
  cconn_t *conns;
  size_t nconns;
  tb_http_call_t *calls;
  uv_idle_t closer;
  bool closing, freeing;
  void (*on_closed)(void *ud);
  void *closed_ud;
};

typedef struct cwreq {
  uv_write_t w;
  cconn_t *conn;
  size_t len;
  uint8_t data[];
} cwreq_t;

static void conn_process(cconn_t *k);
static void conn_close(cconn_t *k);
static void conn_start(cconn_t *k);
static void maybe_finish_close(tb_http_client_t *cl);
static int conn_new(tb_http_client_t *cl, tb_http_call_t *call);

/* Calls --------------------------------------------------------------------------------- */

static void call_free(tb_http_call_t *call) {
  tb_buf_deinit(&call->head);
  tb_free(call->chunk);
  tb_free(call->key);
  tb_free(call);
}

static size_t idle_count(const tb_http_client_t *cl, const char *key) {
  size_t n = 0;
  for (const cconn_t *k = cl->conns; k; k = k->next)
    if (k->state == C_IDLE && !k->closing && strcmp(k->key, key) == 0) n++;
  return n;
}

static void conn_update(cconn_t *k);

/* Ends the call: detaches it from its connection (pooling or closing that), retries once
 * when the failure looks like a stale pooled connection, else runs on_done and frees. */
static void call_finish(tb_http_call_t *call, int err, bool reusable) {
  tb_http_client_t *cl = call->cl;
  cconn_t *k = call->conn;
  if (k) {
    k->call = NULL;
    call->conn = NULL;
    if (err == 0 && reusable && !cl->closing && idle_count(cl, k->key) < cl->cfg.max_idle_per_host) {
      k->state = C_IDLE;
      k->last_io = uv_now(cl->loop);
      conn_update(k);
    } else {
      conn_close(k);
    }
  }
  if (err != 0 && err != TB_ECANCELED && err != TB_ETIMEDOUT && call->reused && call->bytes_received == 0 &&
      !call->retried && call->source == NULL && !call->canceled && !cl->closing) {
    call->retried = true;
    call->reused = false;
    call->head_sent = call->body_sent = false;
    tb_log_debug("http", "retrying on a new connection", TB_KV_STR("key", call->key), TB_KV_ERR(err));
    if (conn_new(cl, call) == 0) return;
  }
  if (call->prev) call->prev->next = call->next;
  else cl->calls = call->next;
  if (call->next) call->next->prev = call->prev;
  if (call->cbs.on_done) call->cbs.on_done(call, err, call->ud);
  call_free(call);
  maybe_finish_close(cl);
}

/* Writing ------------------------------------------------------------------------------ */

static void on_write(uv_write_t *uw, int status) {
  cwreq_t *w = (cwreq_t *)uw;
  cconn_t *k = w->conn;
  tb_free(w);
  k->nwrites--;
  if (k->closing) return;
  if (status < 0) {
    if (k->state == C_IDLE) { /* the last call's tail failed after its answer: drop the connection */
      conn_close(k);
      return;
    }
    /* The server may have answered and closed (413 to a long upload): stop sending and
     * let the read side decide; EOF without a complete response fails the call. */
    k->write_err = tb__http_uv_err(status);
    if (k->call) k->call->body_sent = true;
  } else {
    k->last_io = uv_now(k->cl->loop);
  }
  conn_process(k);
}

static void conn_schedule(cconn_t *k);

/* Writes pre + data + post, then `extra` (borrowed: the caller's body). With nothing in
 * flight the socket is tried at once (uv_try_write), which spares the copy, the write
 * request and libuv's re-arming of the poll set; the pump then carries on as on_write
 * would. Otherwise (or for what the socket did not take) a copy of pre + data + post is
 * queued, followed by `extra`. */
static int conn_write(cconn_t *k, const void *pre, size_t prelen, const void *data, size_t len, const void *post,
                      size_t postlen, const void *extra, size_t extralen) {
  if (k->nwrites == 0) {
    uv_buf_t tb[4];
    unsigned nb = 0;
    if (prelen) tb[nb++] = uv_buf_init((char *)pre, (unsigned)prelen);
    if (len) tb[nb++] = uv_buf_init((char *)data, (unsigned)len);
    if (postlen) tb[nb++] = uv_buf_init((char *)post, (unsigned)postlen);
    if (extralen) tb[nb++] = uv_buf_init((char *)extra, (unsigned)extralen);
    size_t all = prelen + len + postlen + extralen;
    int r = nb ? uv_try_write(&k->h->stream, tb, nb) : 0;
    if (r >= 0 && (size_t)r == all) {
      k->last_io = uv_now(k->cl->loop);
      conn_schedule(k);
      return 0;
    }
    if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) { /* as on_write does: let the read side decide */
      k->write_err = tb__http_uv_err(r);
      if (k->call) k->call->body_sent = true;
      conn_schedule(k);
      return 0;
    }
    if (r > 0) { /* queue the rest, dropping what went out from the front */
      size_t skip = (size_t)r;
      const void **ptrs[4] = {&pre, &data, &post, &extra};
      size_t *lens[4] = {&prelen, &len, &postlen, &extralen};
      for (int i = 0; i < 4 && skip > 0; i++) {
        size_t l = *lens[i], d = skip < l ? skip : l;
        *ptrs[i] = (const uint8_t *)*ptrs[i] + d;
        *lens[i] = l - d;
        skip -= d;
      }
    }
  }
  size_t total = prelen + len + postlen;
  cwreq_t *w = tb_malloc(sizeof *w + total);
  if (w == NULL) return TB_ENOMEM;
  w->conn = k;
  w->len = total;
  if (prelen) memcpy(w->data, pre, prelen);
  if (len) memcpy(w->data + prelen, data, len);
  if (postlen) memcpy(w->data + prelen + len, post, postlen);
  uv_buf_t b[2] = {uv_buf_init((char *)w->data, (unsigned)total), uv_buf_init((char *)extra, (unsigned)extralen)};
  int rc = uv_write(&w->w, &k->h->stream, b, extralen ? 2 : 1, on_write);
  if (rc != 0) {
    tb_free(w);
    return tb__http_uv_err(rc);
  }
  k->nwrites++;
  return 0;
}

/* Sends what can be sent now. Returns 0 or the error that ends the call. */
static int call_send(tb_http_call_t *call) {
  cconn_t *k = call->conn;
  if (k->nwrites > 0 || call->body_sent) return 0;
  if (!call->head_sent) {
    call->head_sent = true;
    if (call->source == NULL) call->body_sent = true;
    return conn_write(k, call->head.data, call->head.len, NULL, 0, NULL, 0, call->body, call->body_len);
  }
  if (call->source_waiting) return 0;
  size_t cap = call->cl->cfg.read_buffer_size;
  if (call->chunk == NULL && (call->chunk = tb_malloc(cap)) == NULL) return TB_ENOMEM;
  long n = call->source(call, call->chunk, cap, call->ud);
  if (n == TB_EAGAIN) {
    call->source_waiting = true;
    return 0;
  }
  if (n < 0) return (int)n;
  bool chunked = call->body_length < 0;
  if (n == 0) {
    call->body_sent = true;
    if (!chunked && call->sent != (uint64_t)call->body_length) return TB_EINVAL;
    return chunked ? conn_write(k, TB_HTTP_CHUNK_LAST, sizeof TB_HTTP_CHUNK_LAST - 1, NULL, 0, NULL, 0, NULL, 0) : 0;
  }
  if ((size_t)n > cap) return TB_EINVAL;
  if (!chunked && call->sent + (uint64_t)n > (uint64_t)call->body_length) return TB_EINVAL;
  call->sent += (uint64_t)n;
  if (!chunked) return conn_write(k, NULL, 0, call->chunk, (size_t)n, NULL, 0, NULL, 0);
  char pre[TB_HTTP_CHUNK_PREFIX_MAX];
  size_t plen = tb_http_chunk_prefix(pre, (size_t)n);
  return conn_write(k, pre, plen, call->chunk, (size_t)n, "\r\n", 2, NULL, 0);
}

/* Response events (the connection is `ud`) ----------------------------------------------- */

static int r_on_head(void *ud, const tb_http_head_t *head) {
  cconn_t *k = ud;
  tb_http_call_t *call = k->call;
  if (call == NULL) return TB_EPARSE; /* a response nobody asked for */
  if (head->status / 100 == 1 && head->status != 101) {
    call->interim = true;
    return 0;
  }
  call->got_response = true;
  call->resp_keep_alive = head->keep_alive;
  if (call->cbs.on_response && !call->canceled) call->cbs.on_response(call, head, call->ud);
  return (call->reading && !call->canceled) ? 0 : TB_HTTP_PAUSE;
}

static int r_on_data(void *ud, const uint8_t *data, size_t len) {
  cconn_t *k = ud;
  tb_http_call_t *call = k->call;
  if (call->cbs.on_data && !call->canceled) call->cbs.on_data(call, data, len, call->ud);
  return (call->reading && !call->canceled) ? 0 : TB_HTTP_PAUSE;
}

static int r_on_end(void *ud) {
  cconn_t *k = ud;
  tb_http_call_t *call = k->call;
  if (call->interim) {
    call->interim = false;
    return 0;
  }
  call->resp_done = true;
  return TB_HTTP_PAUSE;
}

static const tb_http_parser_cbs_t response_cbs = {r_on_head, r_on_data, r_on_end};

/* Reading, timer, pump ----------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  cconn_t *k = h->data;
  if (k->rend == k->rcap && k->rstart > 0) {
    memmove(k->rbuf, k->rbuf + k->rstart, k->rend - k->rstart);
    k->rend -= k->rstart;
    k->rstart = 0;
  }
  buf->base = (char *)k->rbuf + k->rend;
  buf->len = k->rcap - k->rend;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cconn_t *k = s->data;
  if (nread == 0 || k->closing) return;
  if (nread < 0) {
    if (nread != UV_EOF && k->write_err == 0) k->write_err = tb__http_uv_err((int)nread);
    k->peer_eof = true;
    uv_read_stop(s);
    k->reading = false;
    if (k->state == C_IDLE) {
      conn_close(k);
      return;
    }
    conn_process(k);
    return;
  }
  k->last_io = uv_now(k->cl->loop);
  if (k->state == C_IDLE) { /* the server spoke out of turn: this connection is done */
    conn_close(k);
    return;
  }
  k->rend += (size_t)nread;
  if (k->call) k->call->bytes_received += (uint64_t)nread;
  conn_process(k);
}

static void on_timer(uv_timer_t *t);

static uint64_t conn_deadline(const cconn_t *k) {
  const tb_http_client_t *cl = k->cl;
  switch (k->state) {
  case C_START:
    return 0;
  case C_RESOLVING:
  case C_CONNECTING:
    return k->started + cl->cfg.connect_timeout_ms;
  case C_IDLE:
    return k->last_io + cl->cfg.pool_idle_ms;
  case C_BUSY: {
    const tb_http_call_t *call = k->call;
    if (call == NULL || call->timeout_ms == 0 || !call->reading || call->source_waiting) return 0;
    return k->last_io + call->timeout_ms;
  }
  }
  return 0;
}

static void conn_update(cconn_t *k) {
  if (k->closing) return;
  bool want = (k->state == C_BUSY || k->state == C_IDLE) && !k->peer_eof && (k->rend < k->rcap || k->rstart > 0);
  if (want && !k->reading) {
    if (uv_read_start(&k->h->stream, on_alloc, on_read) == 0) k->reading = true;
  } else if (!want && k->reading) {
    uv_read_stop(&k->h->stream);
    k->reading = false;
  }
  uint64_t d = conn_deadline(k);
  if (d == 0) {
    uv_timer_stop(&k->timer);
  } else {
    uint64_t now = uv_now(k->cl->loop);
    uv_timer_start(&k->timer, on_timer, d > now ? d - now : 0, 0);
  }
}

static void conn_fail(cconn_t *k, int err) {
  if (k->call) call_finish(k->call, err, false);
  else conn_close(k);
}

static void on_timer(uv_timer_t *t) {
  cconn_t *k = t->data;
  uint64_t d = conn_deadline(k), now = uv_now(k->cl->loop);
  if (d == 0 || k->closing) return;
  if (d > now) {
    uv_timer_start(&k->timer, on_timer, d - now, 0);
    return;
  }
  if (k->state == C_IDLE) conn_close(k);
  else conn_fail(k, TB_ETIMEDOUT);
}

static void on_pump(uv_idle_t *h) {
  cconn_t *k = h->data;
  uv_idle_stop(h);
  if (k->closing) return;
  if (k->state == C_START && !(k->call && k->call->canceled)) {
    conn_start(k);
    return;
  }
  conn_process(k);
}

static void conn_schedule(cconn_t *k) {
  if (!k->closing) uv_idle_start(&k->pump, on_pump);
}

static void conn_process(cconn_t *k) {
  if (k->in_process || k->closing) return;
  k->in_process = true;
  for (;;) {
    tb_http_call_t *call = k->call;
    if (k->closing || call == NULL) break;
    if (call->canceled) {
      call_finish(call, TB_ECANCELED, false);
      break;
    }
    if (k->state != C_BUSY) break;
    if (call->resp_done) {
      /* A write may still await its callback although the answer is in (libuv runs write
       * callbacks a loop turn later): the bytes are the kernel's, in order, so the
       * connection can serve the next call; on_write closes it if that write failed. */
      bool reusable = call->resp_keep_alive && !k->peer_eof && k->write_err == 0 && call->body_sent &&
                      k->rstart == k->rend;
      call_finish(call, 0, reusable);
      break;
    }
    int rc = call_send(call);
    if (rc != 0) {
      call_finish(call, rc, false);
      break;
    }
    if (!call->reading || k->rstart == k->rend) {
      if (k->peer_eof && k->rstart == k->rend) {
        /* The server closed: a close-delimited body ends here; anything else is cut short. */
        if (tb_http_parser_finish(k->parser) == 0 && call->resp_done) continue;
        call_finish(call, k->write_err ? k->write_err : TB_ECONNRESET, false);
      }
      break;
    }
    size_t n = 0;
    rc = tb_http_parser_feed(k->parser, k->rbuf + k->rstart, k->rend - k->rstart, &n);
    k->rstart += n;
    if (k->rstart == k->rend) k->rstart = k->rend = 0;
    if (rc != 0) {
      tb_log_debug("http", "bad response", TB_KV_STR("key", k->key), TB_KV_STR("reason", tb_http_parser_error(k->parser)));
      call_finish(call, rc, false);
      break;
    }
  }
  k->in_process = false;
  conn_update(k);
}

/* Connecting ----------------------------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h);
static void on_stream_closed(uv_handle_t *h);
static void connect_next(cconn_t *k);

static void on_connect(uv_connect_t *r, int status) {
  cconn_t *k = r->handle->data;
  if (k->closing) return;
  if (status < 0) {
    if (k->addr.kind == TB_HTTP_ADDR_TCP && k->addr_i + 1 < k->naddrs) {
      /* A socket whose connect failed is spent: close it and try the next address. */
      tb__http_stream_t *h = tb_calloc(1, sizeof *h);
      if (h != NULL) {
        uv_close(&k->h->handle, on_stream_closed);
        k->h = h;
        uv_tcp_init(k->cl->loop, &h->tcp);
        h->handle.data = k;
        k->handles_open++;
        k->addr_i++;
        connect_next(k);
        return;
      }
    }
    conn_fail(k, tb__http_uv_err(status));
    return;
  }
  if (k->addr.kind == TB_HTTP_ADDR_TCP) uv_tcp_nodelay(&k->h->tcp, 1);
  k->state = C_BUSY;
  k->last_io = uv_now(k->cl->loop);
  conn_process(k);
}

static void connect_next(cconn_t *k) {
  k->state = C_CONNECTING;
  int rc = uv_tcp_connect(&k->connect_req, &k->h->tcp, (struct sockaddr *)&k->addrs[k->addr_i], on_connect);
  if (rc != 0) conn_fail(k, tb__http_uv_err(rc));
  else conn_update(k);
}

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res) {
  cconn_t *k = r->data;
  k->handles_open--; /* the request held the connection open */
  if (k->closing) {
    uv_freeaddrinfo(res);
    if (k->handles_open == 0) conn_close(k); /* finishes the free */
    return;
  }
  k->naddrs = 0;
  for (struct addrinfo *ai = status == 0 ? res : NULL; ai && k->naddrs < 8; ai = ai->ai_next)
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && ai->ai_addrlen <= sizeof k->addrs[0])
      memcpy(&k->addrs[k->naddrs++], ai->ai_addr, ai->ai_addrlen);
  uv_freeaddrinfo(res);
  if (k->naddrs == 0) {
    tb_log_debug("http", "cannot resolve", TB_KV_STR("host", k->addr.host),
                 TB_KV_STR("reason", status ? uv_strerror(status) : "no address"));
    conn_fail(k, TB_ENOTFOUND);
    return;
  }
  k->addr_i = 0;
  connect_next(k);
}

static void conn_start(cconn_t *k) {
  k->started = uv_now(k->cl->loop);
  if (k->addr.kind == TB_HTTP_ADDR_UNIX) {
    k->state = C_CONNECTING;
    uv_pipe_connect(&k->connect_req, &k->h->pipe, k->addr.path, on_connect);
    conn_update(k);
    return;
  }
  if (tb__http_sockaddr(&k->addr, &k->addrs[0]) == 0) {
    k->naddrs = 1;
    k->addr_i = 0;
    connect_next(k);
    return;
  }
  char port[8];
  snprintf(port, sizeof port, "%u", k->addr.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  k->state = C_RESOLVING;
  k->gai.data = k;
  int rc = uv_getaddrinfo(k->cl->loop, &k->gai, on_resolved, k->addr.host, port, &hints);
  if (rc != 0) {
    conn_fail(k, TB_ENOTFOUND);
    return;
  }
  k->handles_open++;
  conn_update(k);
}

/* Connection lifetime --------------------------------------------------------------------- */

static void conn_free(cconn_t *k) {
  tb_http_client_t *cl = k->cl;
  if (k->prev) k->prev->next = k->next;
  else cl->conns = k->next;
  if (k->next) k->next->prev = k->prev;
  cl->nconns--;
  tb_http_parser_free(k->parser);
  tb_free(k->rbuf);
  tb_free(k->key);
  tb_free(k);
  maybe_finish_close(cl);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  cconn_t *k = h->data;
  if (--k->handles_open == 0) conn_free(k);
}

static void on_stream_closed(uv_handle_t *h) {
  cconn_t *k = h->data;
  tb_free(h);
  if (--k->handles_open == 0) conn_free(k);
}

static void conn_close(cconn_t *k) {
  if (k->closing) {
    if (k->handles_open == 0) conn_free(k);
    return;
  }
  k->closing = true;
  k->reading = false;
  if (k->state == C_RESOLVING) uv_cancel((uv_req_t *)&k->gai);
  uv_close(&k->h->handle, on_stream_closed);
  uv_close((uv_handle_t *)&k->timer, on_conn_handle_closed);
  uv_close((uv_handle_t *)&k->pump, on_conn_handle_closed);
}

/* Attaches `call` to a new connection, started from the loop. */
static int conn_new(tb_http_client_t *cl, tb_http_call_t *call) {
  cconn_t *k = tb_calloc(1, sizeof *k);
  if (k == NULL) return TB_ENOMEM;
  k->cl = cl;
  k->addr = call->addr;
  k->rcap = cl->cfg.read_buffer_size;
  k->key = tb_strdup(call->key);
  k->rbuf = tb_malloc(k->rcap);
  k->h = tb_calloc(1, sizeof *k->h);
  if (k->key == NULL || k->rbuf == NULL || k->h == NULL ||
      tb_http_parser_new(TB_HTTP_RESPONSE, &cl->cfg.limits, &response_cbs, k, &k->parser) != 0) {
    tb_free(k->key);
    tb_free(k->rbuf);
    tb_free(k->h);
    tb_free(k);
    return TB_ENOMEM;
  }
  if (k->addr.kind == TB_HTTP_ADDR_UNIX) uv_pipe_init(cl->loop, &k->h->pipe, 0);
  else uv_tcp_init(cl->loop, &k->h->tcp);
  uv_timer_init(cl->loop, &k->timer);
  uv_idle_init(cl->loop, &k->pump);
  k->h->handle.data = k->timer.data = k->pump.data = k;
  k->handles_open = 3;
  k->state = C_START;
  k->next = cl->conns;
  if (cl->conns) cl->conns->prev = k;
  cl->conns = k;
  cl->nconns++;
  k->call = call;
  call->conn = k;
  tb_http_parser_set_skip_body(k->parser, call->head_method);
  conn_schedule(k);
  return 0;
}

/* API ------------------------------------------------------------------------------------- */

int tb_http_client_new(uv_loop_t *loop, const tb_http_client_config_t *cfg, tb_http_client_t **out) {
  if (loop == NULL || out == NULL) return TB_EINVAL;
  tb__http_ignore_sigpipe();
  tb_http_client_t *cl = tb_calloc(1, sizeof *cl);
  if (cl == NULL) return TB_ENOMEM;
  cl->loop = loop;
  if (cfg) cl->cfg = *cfg;
  if (cl->cfg.max_idle_per_host == 0) cl->cfg.max_idle_per_host = 8;
  if (cl->cfg.pool_idle_ms == 0) cl->cfg.pool_idle_ms = 30000;
  if (cl->cfg.connect_timeout_ms == 0) cl->cfg.connect_timeout_ms = 10000;
  if (cl->cfg.read_buffer_size == 0) cl->cfg.read_buffer_size = TB__HTTP_READ_BUFFER;
  uv_idle_init(loop, &cl->closer);
  cl->closer.data = cl;
  *out = cl;
  return 0;
}

static void on_closer_closed(uv_handle_t *h) {
  tb_http_client_t *cl = h->data;
  void (*cb)(void *) = cl->on_closed;
  void *ud = cl->closed_ud;
  tb_free(cl);
  if (cb) cb(ud);
}

static void maybe_finish_close(tb_http_client_t *cl) {
  if (!cl->closing || cl->freeing || cl->nconns > 0 || cl->calls != NULL) return;
  cl->freeing = true;
  uv_close((uv_handle_t *)&cl->closer, on_closer_closed);
}

void tb_http_client_close(tb_http_client_t *cl, void (*on_closed)(void *ud), void *ud) {
  if (cl->closing) return;
  cl->closing = true;
  cl->on_closed = on_closed;
  cl->closed_ud = ud;
  for (cconn_t *k = cl->conns; k; k = k->next) {
    if (k->call) {
      k->call->canceled = true;
      conn_schedule(k);
    } else {
      conn_close(k);
    }
  }
  maybe_finish_close(cl);
}

int tb_http_client_request(tb_http_client_t *cl, const tb_http_request_t *rq, const tb_http_call_cbs_t *cbs,
                           void *ud, tb_http_call_t **out, tb_errbuf_t *eb) {
  if (out) *out = NULL;
  if (cl->closing) return tb_errf(eb, TB_ECANCELED, "the client is closing");
  if (rq->url == NULL) return tb_errf(eb, TB_EINVAL, "the request has no URL");
  if (rq->body && rq->body_source) return tb_errf(eb, TB_EINVAL, "a request body is in memory or streamed, not both");
  tb_http_url_t url;
  int rc = tb_http_url_parse(rq->url, &url, eb);
  if (rc != 0) return rc;
  const char *method = rq->method ? rq->method : "GET";
  tb_http_call_t *call = tb_calloc(1, sizeof *call);
  char *target = tb_strndup(url.target, url.target_len);
  if (call == NULL || target == NULL) {
    rc = TB_ENOMEM;
    goto fail;
  }
  call->cl = cl;
  if (cbs) call->cbs = *cbs;
  call->ud = ud;
  call->body = rq->body;
  call->body_len = rq->body ? rq->body_len : 0;
  call->source = rq->body_source;
  call->body_length = rq->body_source ? rq->body_length : (int64_t)call->body_len;
  call->timeout_ms = rq->timeout_ms;
  call->head_method = strcmp(method, "HEAD") == 0;
  call->reading = true;
  tb_buf_init(&call->head, (size_t)1 << 20);
  rc = tb_http_request_head(&call->head, method, target, url.authority, rq->headers, rq->nheaders,
                            call->body_length < 0 ? -1 : call->body_length, true);
  if (rc == TB_EINVAL) {
    rc = tb_errf(eb, TB_EINVAL, "invalid method, target or header in request to %s", rq->url);
    goto fail;
  }
  if (rc != 0) goto fail;
  if (rq->unix_socket) {
    if (strlen(rq->unix_socket) >= sizeof call->addr.path) {
      rc = tb_errf(eb, TB_EINVAL, "unix socket path is longer than %zu bytes", sizeof call->addr.path - 1);
      goto fail;
    }
    call->addr.kind = TB_HTTP_ADDR_UNIX;
    snprintf(call->addr.path, sizeof call->addr.path, "%s", rq->unix_socket);
  } else {
    call->addr = url.addr;
  }
  {
    char key[400];
    if (call->addr.kind == TB_HTTP_ADDR_UNIX) {
      snprintf(key, sizeof key, "unix:%s", call->addr.path);
    } else {
      char host[256];
      size_t i = 0;
      for (; call->addr.host[i] && i + 1 < sizeof host; i++) host[i] = (char)tolower((unsigned char)call->addr.host[i]);
      host[i] = '\0';
      snprintf(key, sizeof key, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, call->addr.port);
    }
    if ((call->key = tb_strdup(key)) == NULL) {
      rc = TB_ENOMEM;
      goto fail;
    }
  }
  /* A pooled connection to the same place, most recently used first. */
  cconn_t *idle = NULL;
  for (cconn_t *k = cl->conns; k; k = k->next)
    if (k->state == C_IDLE && !k->closing && strcmp(k->key, call->key) == 0 &&
        (idle == NULL || k->last_io > idle->last_io))
      idle = k;
  if (idle) {
    idle->state = C_BUSY;
    idle->call = call;
    idle->last_io = uv_now(cl->loop);
    call->conn = idle;
    call->reused = true;
    tb_http_parser_set_skip_body(idle->parser, call->head_method);
    conn_schedule(idle);
  } else if ((rc = conn_new(cl, call)) != 0) {
    goto fail;
  }
  call->next = cl->calls;
  if (cl->calls) cl->calls->prev = call;
  cl->calls = call;
  tb_free(target);
  if (out) *out = call;
  return 0;
fail:
  tb_free(target);
  if (call) call_free(call);
  return rc;
}

void tb_http_call_cancel(tb_http_call_t *call) {
  if (call->canceled) return;
  call->canceled = true;
  if (call->conn) conn_schedule(call->conn);
}

void tb_http_call_read_stop(tb_http_call_t *call) { call->reading = false; }

void tb_http_call_read_start(tb_http_call_t *call) {
  call->reading = true;
  if (call->conn) conn_schedule(call->conn);
}

void tb_http_call_body_ready(tb_http_call_t *call) {
  call->source_waiting = false;
  if (call->conn) conn_schedule(call->conn);
}

bool tb_http_call_reused(const tb_http_call_t *call) { return call->reused; }
