/*
 * exchange.c — HTTP exchanges handed from the loop thread to a fixed pool of worker
 * threads that run the backend, and their bytes carried back, with backpressure both
 * ways. docs/internals/RUNNER.md has the picture.
 *
 * An exchange (ex_t) is shared by the loop (which owns the tb_http_req_t) and one
 * worker (which runs backend->serve with io callbacks into it). The shared state sits
 * under the exchange's mutex:
 *
 *   inbound   a ring of IN_CAP bytes the loop fills from on_data; the loop stops reading
 *             when less than one read buffer is free, and the worker asks for reading to
 *             resume (through the wake-up list) once it has drained it.
 *   outbound  the head (a block of name\0value\0 pairs) and a byte buffer the worker
 *             appends body bytes to; the worker blocks while that buffer plus what the
 *             connection still has queued exceed OUT_MAX.
 *   ends      worker_done (with the result) and cancelled (the client went away: the
 *             worker's io callbacks fail so the request ends promptly).
 *
 * The worker never calls libuv: it marks the exchange as needing the loop's attention by
 * pushing it on a lock-free list (once: `noted`) and sends the pool's one uv_async_t; the
 * loop takes the whole list and acts on each. Exchanges are recycled through a free list
 * owned by the loop, with their buffers, so a steady stream of requests allocates
 * nothing here; they are released when the HTTP side (on_done) and the worker are both
 * done with them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner_int.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/log.h"

#define IN_CAP ((size_t)128 << 10)    /* request body bytes held per exchange */
#define READ_CHUNK ((size_t)64 << 10) /* the HTTP server's read buffer: one on_data at most */
#define OUT_MAX ((size_t)256 << 10)   /* response bytes queued per exchange before the worker waits */
#define OUT_CHUNK ((size_t)64 << 10)  /* the most the worker appends at once */
#define POOL_KEEP 256                 /* idle exchanges kept for reuse */

typedef struct ex ex_t;

/* A worker thread and the exchange it is serving (read by the loop's flush timer). */
struct worker {
  tb__runner_pool_t *p;
  pthread_t th;
  _Atomic(ex_t *) cur;
};

struct ex {
  tb__runner_pool_t *p;
  ex_t *next_work;        /* the work queue (pool->qmu) */
  ex_t *next_note;        /* the wake-up list */
  ex_t *next_free;        /* the free list (loop) */
  pthread_mutex_t mu;
  pthread_cond_t cv;

  /* Under mu. */
  uint8_t *in;            /* IN_CAP bytes, allocated on first use and kept */
  size_t in_head, in_len;
  bool in_end;            /* the body is all in the ring */
  bool in_paused;         /* the loop is not reading (stopped, or never started) */
  bool in_want;           /* the worker asked the loop to (re)start reading */
  bool cancelled;         /* the HTTP side is gone or failed: io callbacks fail */
  bool noted;             /* on the wake-up list */
  bool unflushed;         /* output queued that the loop was not woken for yet */
  bool head_ready;        /* the worker wrote the head into head_blk */
  tb_buf_t out_pend;      /* body bytes the loop has not taken yet */
  size_t out_http;        /* bytes the connection still has queued */
  bool worker_done;
  bool truncated;         /* the backend failed after the head was sent */
  int serve_rc;

  /* Written by the worker before head_ready, read by the loop after. */
  tb_buf_t head_blk;
  size_t head_n;
  int status;
  int64_t content_length;

  /* The request, copied by the loop before the worker sees it (immutable after). */
  tb_buf_t rq;                /* the strings */
  tb_wagi_header_t *rq_hv;
  long *rq_off;               /* the headers' offsets in rq while it may still move */
  size_t rq_hv_cap;
  tb_wagi_request_t wreq;
  int64_t deadline_ns;        /* monotonic; bounds waits for body bytes */

  /* Loop only. */
  tb_http_req_t *req;         /* NULL once on_done ran */
  tb_buf_t out_spare;         /* swapped with out_pend to write outside the lock */
  tb_http_header_t *hv;
  size_t hv_cap;
  bool head_sent, done_seen, req_done;
};

struct tb__runner_pool {
  uv_loop_t *loop;
  tb__runner_pool_config_t cfg;
  uv_async_t async;
  _Atomic(ex_t *) notes;     /* the wake-up list, LIFO; the loop takes it whole */
  pthread_mutex_t qmu;
  pthread_cond_t qcv;
  ex_t *q_head, *q_tail;     /* under qmu */
  size_t q_len;              /* under qmu */
  bool quit;                 /* under qmu */
  struct worker *threads;
  uint32_t nthreads;
  uv_timer_t flush;          /* while requests are in flight: pushes out output workers sat on */
  int handles_open;
  ex_t *free_list;           /* loop */
  size_t nfree;              /* loop */
  size_t inflight;           /* loop */
  void (*on_closed)(void *ud);
  void *closed_ud;
};

/* ---- Exchanges ---- */

static ex_t *ex_new(tb__runner_pool_t *p) {
  ex_t *ex = tb_calloc(1, sizeof *ex);
  pthread_condattr_t ca;
  if (ex == NULL) return NULL;
  ex->p = p;
  pthread_mutex_init(&ex->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ex->cv, &ca);
  pthread_condattr_destroy(&ca);
  tb_buf_init(&ex->out_pend, OUT_MAX + OUT_CHUNK);
  tb_buf_init(&ex->out_spare, OUT_MAX + OUT_CHUNK);
  tb_buf_init(&ex->head_blk, (size_t)1 << 20);
  tb_buf_init(&ex->rq, (size_t)1 << 20);
  return ex;
}

static void ex_free(ex_t *ex) {
  pthread_mutex_destroy(&ex->mu);
  pthread_cond_destroy(&ex->cv);
  tb_buf_deinit(&ex->out_pend);
  tb_buf_deinit(&ex->out_spare);
  tb_buf_deinit(&ex->head_blk);
  tb_buf_deinit(&ex->rq);
  tb_free(ex->in);
  tb_free(ex->rq_hv);
  tb_free(ex->rq_off);
  tb_free(ex->hv);
  tb_free(ex);
}

static ex_t *ex_get(tb__runner_pool_t *p) {
  ex_t *ex = p->free_list;
  if (ex) {
    p->free_list = ex->next_free;
    p->nfree--;
  } else {
    ex = ex_new(p);
    if (ex == NULL) return NULL;
  }
  /* Reset everything but the allocations. */
  ex->next_work = ex->next_note = ex->next_free = NULL;
  ex->in_head = ex->in_len = 0;
  ex->in_end = ex->in_want = ex->cancelled = ex->noted = ex->unflushed = ex->head_ready = false;
  ex->in_paused = true;
  tb_buf_reset(&ex->out_pend);
  tb_buf_reset(&ex->out_spare);
  tb_buf_reset(&ex->head_blk);
  tb_buf_reset(&ex->rq);
  ex->out_http = 0;
  ex->worker_done = ex->truncated = false;
  ex->serve_rc = 0;
  ex->head_n = 0;
  ex->status = 0;
  ex->content_length = -1;
  ex->req = NULL;
  ex->head_sent = ex->done_seen = ex->req_done = false;
  return ex;
}

static void ex_put(tb__runner_pool_t *p, ex_t *ex) {
  if (p->nfree >= POOL_KEEP) {
    ex_free(ex);
    return;
  }
  ex->next_free = p->free_list;
  p->free_list = ex;
  p->nfree++;
}

/* Marks `ex` as needing the loop. Call with ex->mu held; returns true when the caller
 * must uv_async_send (after unlocking, since the loop may recycle `ex` at once). */
static bool ex_note_locked(ex_t *ex) {
  ex->unflushed = false;
  if (ex->noted) return false;
  ex->noted = true;
  ex_t *head = atomic_load_explicit(&ex->p->notes, memory_order_relaxed);
  do ex->next_note = head;
  while (!atomic_compare_exchange_weak_explicit(&ex->p->notes, &head, ex, memory_order_release, memory_order_relaxed));
  return true;
}

/* ---- The request, copied for the worker (loop thread) ---- */

/* Appends `n` bytes and a NUL to ex->rq; returns the offset, or -1. */
static long rq_add(ex_t *ex, const char *s, size_t n) {
  size_t off = ex->rq.len;
  if (tb_buf_append(&ex->rq, s, n) != 0 || tb_buf_putc(&ex->rq, '\0') != 0) return -1;
  return (long)off;
}

static const char *trim(const char *s, size_t *n) {
  while (*n && (*s == ' ' || *s == '\t')) s++, (*n)--;
  while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t')) (*n)--;
  return s;
}

/* The first entry of a comma-separated header value. */
static const char *first_entry(const char *v, size_t *n) {
  const char *comma = strchr(v, ',');
  *n = comma ? (size_t)(comma - v) : strlen(v);
  return trim(v, n);
}

/* Splits "host:port", "[v6]:port", "host" into host (without brackets) and port. */
static void split_hostport(const char *s, size_t n, const char **host, size_t *hn, const char **port, size_t *pn) {
  *port = NULL;
  *pn = 0;
  if (n && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close) {
      *host = s + 1;
      *hn = (size_t)(close - s - 1);
      if ((size_t)(close - s) + 1 < n && close[1] == ':') {
        *port = close + 2;
        *pn = n - (size_t)(close - s) - 2;
      }
      return;
    }
  }
  const char *colon = memchr(s, ':', n);
  if (colon && memchr(colon + 1, ':', n - (size_t)(colon - s) - 1) == NULL) {
    *host = s;
    *hn = (size_t)(colon - s);
    *port = colon + 1;
    *pn = n - *hn - 1;
  } else {
    *host = s;
    *hn = n;
  }
}

static int ex_copy_request(ex_t *ex, tb_http_req_t *req) {
  const tb_http_head_t *h = tb_http_req_head(req);
  const char *target = h->target, *q, *v;
  size_t n, hn, pn;
  const char *host, *port;
  char proto[16], portbuf[8];
  long o_method, o_path, o_query, o_proto, o_remote, o_name, o_port, o_url;
  long *o_hdr = NULL;
  int rc = TB_ENOMEM;
  bool https;

  /* Absolute-form targets ("http://host/p") carry the path after the authority. */
  if (strncmp(target, "http://", 7) == 0 || strncmp(target, "https://", 8) == 0) {
    const char *slash = strchr(strstr(target, "//") + 2, '/');
    target = slash ? slash : "/";
  }
  q = strchr(target, '?');
  o_method = rq_add(ex, h->method, strlen(h->method));
  o_path = rq_add(ex, target, q ? (size_t)(q - target) : strlen(target));
  o_query = q ? rq_add(ex, q + 1, strlen(q + 1)) : rq_add(ex, "", 0);
  n = (size_t)snprintf(proto, sizeof proto, "HTTP/%d.%d", h->version_major, h->version_minor);
  o_proto = rq_add(ex, proto, n);

  if ((v = tb_http_head_get(h, "X-Forwarded-For")) != NULL && *v) {
    v = first_entry(v, &n);
    o_remote = rq_add(ex, v, n);
  } else {
    const char *peer = tb_http_req_peer(req);
    split_hostport(peer, strlen(peer), &host, &hn, &port, &pn);
    o_remote = rq_add(ex, host, hn);
  }

  v = tb_http_head_get(h, "X-Forwarded-Proto");
  https = v && strncasecmp(v, "https", 5) == 0;
  if ((v = tb_http_head_get(h, "X-Forwarded-Host")) == NULL || !*v) v = tb_http_head_get(h, "Host");
  if (v && *v) {
    v = first_entry(v, &n);
    split_hostport(v, n, &host, &hn, &port, &pn);
  } else {
    host = "localhost";
    hn = strlen(host);
    port = NULL;
  }
  if (port == NULL || pn == 0) {
    snprintf(portbuf, sizeof portbuf, "%d", https ? 443 : 80);
    port = portbuf;
    pn = strlen(portbuf);
  }
  o_name = rq_add(ex, host, hn);
  o_port = rq_add(ex, port, pn);
  /* X_FULL_URL: the scheme, the authority as the client named it, the target. */
  {
    size_t start = ex->rq.len;
    bool v6 = memchr(host, ':', hn) != NULL;
    int brc = tb_buf_printf(&ex->rq, "%s://%s%.*s%s", https ? "https" : "http", v6 ? "[" : "", (int)hn, host,
                            v6 ? "]" : "");
    bool default_port = (https && pn == 3 && memcmp(port, "443", 3) == 0) || (!https && pn == 2 && memcmp(port, "80", 2) == 0);
    if (brc == 0 && !default_port) brc = tb_buf_printf(&ex->rq, ":%.*s", (int)pn, port);
    if (brc == 0) brc = tb_buf_puts(&ex->rq, target);
    if (brc == 0) brc = tb_buf_putc(&ex->rq, '\0');
    o_url = brc == 0 ? (long)start : -1;
  }

  if (h->nheaders > ex->rq_hv_cap) {
    tb_wagi_header_t *nv = tb_reallocarray(ex->rq_hv, h->nheaders, sizeof *nv);
    if (nv == NULL) goto out;
    ex->rq_hv = nv;
    long *no = tb_reallocarray(ex->rq_off, 2 * h->nheaders, sizeof *no);
    if (no == NULL) goto out;
    ex->rq_off = no;
    ex->rq_hv_cap = h->nheaders;
  }
  o_hdr = ex->rq_off;
  for (size_t i = 0; i < h->nheaders; i++) {
    o_hdr[2 * i] = rq_add(ex, h->headers[i].name, h->headers[i].name_len);
    o_hdr[2 * i + 1] = rq_add(ex, h->headers[i].value, h->headers[i].value_len);
    if (o_hdr[2 * i] < 0 || o_hdr[2 * i + 1] < 0) goto out;
  }
  if (o_method < 0 || o_path < 0 || o_query < 0 || o_proto < 0 || o_remote < 0 || o_name < 0 || o_port < 0 ||
      o_url < 0)
    goto out;

  const char *base = (const char *)ex->rq.data;
  for (size_t i = 0; i < h->nheaders; i++) {
    ex->rq_hv[i].name = base + o_hdr[2 * i];
    ex->rq_hv[i].value = base + o_hdr[2 * i + 1];
  }
  ex->wreq = (tb_wagi_request_t){
      .method = base + o_method,
      .path = base + o_path,
      .query = base + o_query,
      .script_name = "",
      .matched_route = "/...",
      .protocol = base + o_proto,
      .remote_addr = base + o_remote,
      .server_name = base + o_name,
      .server_port = base + o_port,
      .full_url = base + o_url,
      .content_length = h->chunked ? -1 : (h->content_length < 0 ? 0 : h->content_length),
      .headers = ex->rq_hv,
      .nheaders = h->nheaders,
  };
  rc = 0;
out:
  return rc;
}

/* ---- Body in (loop side) ---- */

static void on_body_data(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  ex_t *ex = ud;
  bool overflow = false;
  pthread_mutex_lock(&ex->mu);
  if (IN_CAP - ex->in_len < len) {
    overflow = true; /* cannot happen while we stop at READ_CHUNK free; fail safe */
    ex->cancelled = true;
  } else {
    size_t tail = (ex->in_head + ex->in_len) % IN_CAP, first = IN_CAP - tail < len ? IN_CAP - tail : len;
    memcpy(ex->in + tail, data, first);
    memcpy(ex->in, data + first, len - first);
    ex->in_len += len;
  }
  if (IN_CAP - ex->in_len < READ_CHUNK && !ex->in_paused) {
    ex->in_paused = true;
    tb_http_req_read_stop(req);
  }
  pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
  if (overflow) tb_http_resp_abort(req);
}

static void on_body_end(tb_http_req_t *req, void *ud) {
  ex_t *ex = ud;
  (void)req;
  pthread_mutex_lock(&ex->mu);
  ex->in_end = true;
  pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
}

/* ---- The worker's io callbacks ---- */

/*
 * Whether the worker should wake the loop for the output it just queued. A fast request
 * (the common case: head and a small body within microseconds) wakes the loop once, at
 * its end; output goes out early when OUT_FLUSH bytes are pending and before the worker
 * waits (for body bytes or for room). Output of a slow or streaming guest that sits
 * below OUT_FLUSH is pushed out by the loop's flush timer (FLUSH_MS). With ex->mu held.
 */
#define OUT_FLUSH ((size_t)16 << 10)
#define FLUSH_MS 5
static bool out_flush_due(ex_t *ex) { return ex->out_pend.len >= OUT_FLUSH; }

static int64_t io_read_body(void *arg, uint8_t *buf, size_t len) {
  ex_t *ex = arg;
  bool send = false;
  int64_t rc;
  struct timespec ts = {.tv_sec = ex->deadline_ns / TB_NS_PER_SEC, .tv_nsec = ex->deadline_ns % TB_NS_PER_SEC};
  pthread_mutex_lock(&ex->mu);
  for (;;) {
    if (ex->cancelled) {
      rc = TB_ECONNRESET;
      break;
    }
    if (ex->in_len > 0) {
      size_t n = len < ex->in_len ? len : ex->in_len;
      size_t first = IN_CAP - ex->in_head < n ? IN_CAP - ex->in_head : n;
      memcpy(buf, ex->in + ex->in_head, first);
      memcpy(buf + first, ex->in, n - first);
      ex->in_head = (ex->in_head + n) % IN_CAP;
      ex->in_len -= n;
      rc = (int64_t)n;
      break;
    }
    if (ex->in_end) {
      rc = 0;
      break;
    }
    if (ex->unflushed && ex_note_locked(ex)) uv_async_send(&ex->p->async); /* flush before waiting */
    if (ex->in_paused && !ex->in_want) {
      ex->in_want = true;
      /* Wake the loop now, not after the wait. Safe under the lock: the loop cannot
       * recycle `ex` before the worker is done with it. */
      if (ex_note_locked(ex)) uv_async_send(&ex->p->async);
    }
    if (pthread_cond_timedwait(&ex->cv, &ex->mu, &ts) == ETIMEDOUT && !ex->cancelled && ex->in_len == 0 &&
        !ex->in_end) {
      rc = TB_ETIMEDOUT;
      break;
    }
  }
  if (rc > 0 && ex->in_paused && !ex->in_want && !ex->in_end && IN_CAP - ex->in_len >= READ_CHUNK) {
    ex->in_want = true;
    send |= ex_note_locked(ex);
  }
  pthread_mutex_unlock(&ex->mu);
  if (send) uv_async_send(&ex->p->async);
  return rc;
}

static int io_write_head(void *arg, int status, const char *reason, const tb_wagi_header_t *hs, size_t n) {
  ex_t *ex = arg;
  bool send;
  (void)reason;
  ex->content_length = -1;
  for (size_t i = 0; i < n; i++) {
    if (tb_buf_append(&ex->head_blk, hs[i].name, strlen(hs[i].name) + 1) != 0 ||
        tb_buf_append(&ex->head_blk, hs[i].value, strlen(hs[i].value) + 1) != 0)
      return TB_ENOMEM;
    if (strcasecmp(hs[i].name, "Content-Length") == 0) {
      char *end;
      const char *v = hs[i].value;
      long long cl = strtoll(v, &end, 10);
      ex->content_length = (*v >= '0' && *v <= '9' && *end == '\0' && cl >= 0) ? cl : -1;
    }
  }
  ex->head_n = n;
  ex->status = status;
  pthread_mutex_lock(&ex->mu);
  if (ex->cancelled) {
    pthread_mutex_unlock(&ex->mu);
    return TB_ECONNRESET;
  }
  ex->head_ready = true;
  ex->unflushed = true;
  send = out_flush_due(ex) && ex_note_locked(ex);
  pthread_mutex_unlock(&ex->mu);
  if (send) uv_async_send(&ex->p->async);
  return 0;
}

static int io_write_body(void *arg, const uint8_t *data, size_t len) {
  ex_t *ex = arg;
  while (len > 0) {
    size_t n = len < OUT_CHUNK ? len : OUT_CHUNK;
    bool send;
    pthread_mutex_lock(&ex->mu);
    while (!ex->cancelled && ex->out_pend.len + ex->out_http >= OUT_MAX) {
      if (ex_note_locked(ex)) uv_async_send(&ex->p->async); /* what is pending must go before we wait */
      pthread_cond_wait(&ex->cv, &ex->mu);
    }
    if (ex->cancelled) {
      pthread_mutex_unlock(&ex->mu);
      return TB_ECONNRESET;
    }
    if (tb_buf_append(&ex->out_pend, data, n) != 0) {
      pthread_mutex_unlock(&ex->mu);
      return TB_ENOMEM;
    }
    ex->unflushed = true;
    send = out_flush_due(ex) && ex_note_locked(ex);
    pthread_mutex_unlock(&ex->mu);
    if (send) uv_async_send(&ex->p->async);
    data += n;
    len -= n;
  }
  return 0;
}

/* ---- Workers ---- */

static void serve_one(tb__runner_pool_t *p, struct worker *w, ex_t *ex) {
  tb_wagi_result_t res;
  tb_wagi_io_t io = {.read_body = io_read_body, .write_head = io_write_head, .write_body = io_write_body, .arg = ex};
  bool cancelled, send;
  int rc = TB_ECANCELED;

  pthread_mutex_lock(&ex->mu);
  cancelled = ex->cancelled;
  pthread_mutex_unlock(&ex->mu);
  memset(&res, 0, sizeof res);
  atomic_store_explicit(&w->cur, ex, memory_order_release);
  if (!cancelled) {
    ex->deadline_ns = tb_clock_mono_ns() + (int64_t)p->cfg.request_timeout_ms * TB_NS_PER_MS;
    rc = p->cfg.backend->serve(p->cfg.backend_state, &ex->wreq, &io, &res);
    tb__applog_flush_thread(p->cfg.log);
    if (res.status >= 500 || (rc < 0 && rc != TB_ECONNRESET && !res.head_sent))
      tb__applog_printf(p->cfg.log, "runner", "request %s %s answered %d: %s", ex->wreq.method, ex->wreq.path,
                        res.status ? res.status : 500, res.error[0] ? res.error : tb_strerror(rc));
    else if (rc < 0 && res.head_sent && rc != TB_ECONNRESET && rc != TB_ETRAP)
      tb__applog_printf(p->cfg.log, "runner", "request %s %s cut short: %s", ex->wreq.method, ex->wreq.path,
                        tb_strerror(rc));
  }
  atomic_store_explicit(&w->cur, NULL, memory_order_release);
  pthread_mutex_lock(&ex->mu);
  ex->worker_done = true;
  ex->serve_rc = rc;
  ex->truncated = res.truncated || (rc < 0 && res.head_sent);
  send = ex_note_locked(ex);
  pthread_mutex_unlock(&ex->mu);
  /* From here on `ex` may be recycled by the loop: not touched again. */
  if (send) uv_async_send(&p->async);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  tb__runner_pool_t *p = w->p;
  for (;;) {
    pthread_mutex_lock(&p->qmu);
    while (p->q_head == NULL && !p->quit) pthread_cond_wait(&p->qcv, &p->qmu);
    ex_t *ex = p->q_head;
    if (ex == NULL) {
      pthread_mutex_unlock(&p->qmu);
      break;
    }
    p->q_head = ex->next_work;
    if (p->q_head == NULL) p->q_tail = NULL;
    p->q_len--;
    pthread_mutex_unlock(&p->qmu);
    serve_one(p, w, ex);
  }
  return NULL;
}

/* ---- The loop side ---- */

static void ex_release_maybe(ex_t *ex) {
  tb__runner_pool_t *p = ex->p;
  if (!ex->req_done || !ex->done_seen) return;
  ex_put(p, ex);
  if (--p->inflight == 0) uv_timer_stop(&p->flush);
  if (p->cfg.cbs.on_released) p->cfg.cbs.on_released(p->cfg.ud);
}

static void on_req_done(tb_http_req_t *req, int err, void *ud) {
  ex_t *ex = ud;
  (void)req;
  (void)err;
  pthread_mutex_lock(&ex->mu);
  if (!ex->worker_done) ex->cancelled = true;
  pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
  ex->req = NULL;
  ex->req_done = true;
  ex_release_maybe(ex);
}

static void on_written(tb_http_req_t *req, int status, void *ud) {
  ex_t *ex = ud;
  (void)status;
  pthread_mutex_lock(&ex->mu);
  ex->out_http = tb_http_resp_queued(req);
  pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
}

/* Cuts the exchange: the client sees the connection drop; the worker's io fails. */
static void ex_abort(ex_t *ex) {
  pthread_mutex_lock(&ex->mu);
  ex->cancelled = true;
  pthread_cond_broadcast(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
  if (ex->req) tb_http_resp_abort(ex->req);
}

static int ex_send_head(ex_t *ex) {
  if (ex->head_n > ex->hv_cap) {
    tb_http_header_t *nv = tb_reallocarray(ex->hv, ex->head_n, sizeof *nv);
    if (nv == NULL) return TB_ENOMEM;
    ex->hv = nv;
    ex->hv_cap = ex->head_n;
  }
  const char *s = (const char *)ex->head_blk.data;
  for (size_t i = 0; i < ex->head_n; i++) {
    ex->hv[i].name = s;
    s += strlen(s) + 1;
    ex->hv[i].value = s;
    s += strlen(s) + 1;
    ex->hv[i].name_len = ex->hv[i].value_len = 0;
  }
  ex->head_sent = true;
  return tb_http_resp_start(ex->req, ex->status, ex->hv, ex->head_n, ex->content_length);
}

static void ex_process(ex_t *ex) {
  bool want_read = false, head = false, done;
  int serve_rc;
  bool truncated;

  pthread_mutex_lock(&ex->mu);
  ex->noted = false;
  if (ex->in_want) {
    ex->in_want = false;
    if (ex->in_paused && ex->req) {
      ex->in_paused = false;
      want_read = true;
    }
  }
  if (ex->head_ready && !ex->head_sent) head = true;
  tb_buf_t t = ex->out_spare;
  ex->out_spare = ex->out_pend;
  ex->out_pend = t;
  done = ex->worker_done && !ex->done_seen;
  serve_rc = ex->serve_rc;
  truncated = ex->truncated;
  pthread_mutex_unlock(&ex->mu);

  if (ex->req == NULL) { /* the client is gone; the worker was told */
    tb_buf_reset(&ex->out_spare);
    if (done) {
      ex->done_seen = true;
      ex_release_maybe(ex);
    }
    return;
  }
  if (want_read && tb_http_req_read_start(ex->req, on_body_data, on_body_end, ex) != 0) {
    ex_abort(ex);
    goto finish;
  }
  /* The whole response is here already (the common case): send it with its length, not
   * chunked. Never for a failed one: a length would make a cut response look whole. */
  if (head && done && !truncated && serve_rc == 0 && ex->content_length < 0)
    ex->content_length = (int64_t)ex->out_spare.len;
  if (head && ex_send_head(ex) != 0) {
    ex_abort(ex);
    goto finish;
  }
  if (ex->out_spare.len) {
    int rc = tb_http_resp_write(ex->req, ex->out_spare.data, ex->out_spare.len, on_written, ex);
    tb_buf_reset(&ex->out_spare);
    if (rc != 0) {
      ex_abort(ex);
      goto finish;
    }
    pthread_mutex_lock(&ex->mu);
    ex->out_http = tb_http_resp_queued(ex->req);
    pthread_mutex_unlock(&ex->mu);
  }
  if (done) {
    if (truncated) {
      ex_abort(ex);
    } else if (!ex->head_sent) {
      /* The backend failed before any head: answer for it. */
      int rc = serve_rc == TB_ETIMEDOUT
                   ? tb_http_resp_error(ex->req, 408, "request_timeout", "the request body did not arrive in time")
                   : tb_http_resp_error(ex->req, 500, "internal_error", "the app could not answer the request");
      if (rc != 0) ex_abort(ex);
    } else if (serve_rc < 0) {
      ex_abort(ex);
    } else {
      /* Fewer bytes than a Content-Length the app announced fails here, and lib/http
       * closes the connection: the client sees the response was cut. */
      (void)tb_http_resp_end(ex->req);
    }
  }
finish:
  if (done) {
    ex->done_seen = true;
    ex_release_maybe(ex);
  }
}

/*
 * Every FLUSH_MS while requests are in flight: wakes the loop (through the usual list)
 * for exchanges whose worker queued output without waking it. The exchanges a worker
 * points at stay valid here: they are recycled only on this thread.
 */
static void on_flush(uv_timer_t *t) {
  tb__runner_pool_t *p = t->data;
  bool send = false;
  for (uint32_t i = 0; i < p->nthreads; i++) {
    ex_t *ex = atomic_load_explicit(&p->threads[i].cur, memory_order_acquire);
    if (ex == NULL) continue;
    pthread_mutex_lock(&ex->mu);
    if (ex->unflushed) send |= ex_note_locked(ex);
    pthread_mutex_unlock(&ex->mu);
  }
  if (send) uv_async_send(&p->async);
}

static void on_async(uv_async_t *a) {
  tb__runner_pool_t *p = a->data;
  ex_t *list = atomic_exchange_explicit(&p->notes, NULL, memory_order_acquire), *rev = NULL;
  while (list) { /* the list is LIFO: reverse it to act in the order things happened */
    ex_t *next = list->next_note;
    list->next_note = rev;
    rev = list;
    list = next;
  }
  while (rev) {
    ex_t *next = rev->next_note;
    ex_process(rev);
    rev = next;
  }
}

void tb__runner_pool_submit(tb__runner_pool_t *p, tb_http_req_t *req) {
  const tb_http_head_t *h = tb_http_req_head(req);
  ex_t *ex;
  size_t qlen;

  pthread_mutex_lock(&p->qmu);
  qlen = p->q_len;
  pthread_mutex_unlock(&p->qmu);
  if (qlen >= p->cfg.max_queued) {
    tb_log_warn("runner", "request refused: the queue is full", TB_KV_UINT("queued", qlen));
    tb__applog_printf(p->cfg.log, "runner", "request %s %s answered 503: %zu requests are already waiting",
                      h->method, h->target, qlen);
    tb_http_resp_error(req, 503, "unavailable", "the app is busy: too many requests are waiting");
    return;
  }
  ex = ex_get(p);
  if (ex == NULL || ex_copy_request(ex, req) != 0) {
    if (ex) ex_put(p, ex);
    tb_http_resp_error(req, 503, "unavailable", "the runner is out of memory");
    return;
  }
  if (!h->chunked && h->content_length <= 0) ex->in_end = true;
  else if (ex->in == NULL && (ex->in = tb_malloc(IN_CAP)) == NULL) {
    ex_put(p, ex);
    tb_http_resp_error(req, 503, "unavailable", "the runner is out of memory");
    return;
  }
  ex->req = req;
  tb_http_req_set_data(req, ex);
  tb_http_req_on_done(req, on_req_done, ex);
  if (p->inflight++ == 0) uv_timer_start(&p->flush, on_flush, FLUSH_MS, FLUSH_MS);
  pthread_mutex_lock(&p->qmu);
  if (p->q_tail) p->q_tail->next_work = ex;
  else p->q_head = ex;
  p->q_tail = ex;
  p->q_len++;
  pthread_cond_signal(&p->qcv);
  pthread_mutex_unlock(&p->qmu);
}

size_t tb__runner_pool_inflight(const tb__runner_pool_t *p) { return p->inflight; }

int tb__runner_pool_new(uv_loop_t *loop, const tb__runner_pool_config_t *cfg, tb__runner_pool_t **out) {
  tb__runner_pool_t *p = tb_calloc(1, sizeof *p);
  int rc;
  if (p == NULL) return TB_ENOMEM;
  p->loop = loop;
  p->cfg = *cfg;
  atomic_init(&p->notes, NULL);
  pthread_mutex_init(&p->qmu, NULL);
  pthread_cond_init(&p->qcv, NULL);
  rc = uv_async_init(loop, &p->async, on_async);
  if (rc != 0) {
    pthread_mutex_destroy(&p->qmu);
    pthread_cond_destroy(&p->qcv);
    tb_free(p);
    return TB_EINTERNAL;
  }
  p->async.data = p;
  p->threads = tb_calloc(cfg->workers, sizeof *p->threads);
  uv_timer_init(loop, &p->flush);
  p->flush.data = p;
  p->handles_open = 2;
  for (uint32_t i = 0; p->threads && i < cfg->workers; i++) {
    p->threads[i].p = p;
    atomic_init(&p->threads[i].cur, NULL);
    if (pthread_create(&p->threads[i].th, NULL, worker_main, &p->threads[i]) != 0) break;
    p->nthreads++;
  }
  if (p->nthreads == 0) {
    tb_log_error("runner", "cannot start worker threads");
    rc = TB_EAGAIN;
    tb__runner_pool_free(p, NULL, NULL);
    return rc;
  }
  *out = p;
  return 0;
}

static void on_async_closed(uv_handle_t *h) {
  tb__runner_pool_t *p = h->data;
  if (--p->handles_open > 0) return;
  void (*cb)(void *) = p->on_closed;
  void *ud = p->closed_ud;
  while (p->free_list) {
    ex_t *ex = p->free_list;
    p->free_list = ex->next_free;
    ex_free(ex);
  }
  pthread_mutex_destroy(&p->qmu);
  pthread_cond_destroy(&p->qcv);
  tb_free(p->threads);
  tb_free(p);
  if (cb) cb(ud);
}

void tb__runner_pool_free(tb__runner_pool_t *p, void (*on_closed)(void *ud), void *ud) {
  pthread_mutex_lock(&p->qmu);
  p->quit = true;
  pthread_cond_broadcast(&p->qcv);
  pthread_mutex_unlock(&p->qmu);
  for (uint32_t i = 0; i < p->nthreads; i++) pthread_join(p->threads[i].th, NULL);
  p->on_closed = on_closed;
  p->closed_ud = ud;
  uv_close((uv_handle_t *)&p->async, on_async_closed);
  uv_close((uv_handle_t *)&p->flush, on_async_closed);
}
