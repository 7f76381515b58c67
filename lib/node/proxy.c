/*
 * proxy.c — ANY /app/{uuid}/...: the node's reverse proxy for app traffic. It finds where
 * the app runs (a small route cache in front of the projections), wakes the app through
 * its supervisor when no runner is known or the known one refuses, and streams the
 * request and the response through lib/http's client with backpressure both ways,
 * reusing pooled keep-alive connections to the runners. docs/internals/NODE.md has the
 * statuses and the wake protocol.
 *
 * Ownership: a proxied exchange (tb__node_px_t) hangs off the node's exchange (x->px)
 * and outlives it while its upstream call runs: when the client goes away the call is
 * canceled and the px is freed in the call's on_done. A px waiting on a wake sits in the
 * wake's waiter list and leaves it when its client goes. A wake call lives until its
 * on_done, whether or not anyone still waits, so that the app starts anyway.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "node_int.h"
#include "tb/alloc.h"
#include "tb/log.h"
#include "tb/ula.h"

#define APP_PORT 8730                     /* runners on the mesh: [app ULA]:8730 */
#define SUPERVISOR_PORT 8730              /* a supervisor address given without a port */
#define BODY_HIGH ((size_t)64 << 10)      /* request body bytes held before pausing the client */
#define BODY_MAX ((size_t)256 << 10)      /* BODY_HIGH plus one server read, with room to spare */
#define RESP_HIGH ((size_t)256 << 10)     /* response bytes queued to the client before pausing upstream */
#define WAKE_BODY_MAX ((size_t)16 << 10)  /* a wake answer is a small JSON object */
#define MAX_FWD_HEADERS 96                /* the server admits 64 request headers by default */
#define URL_MAX 2600                      /* "http://" + address + a target the router admitted */

struct tb__node_px {
  tb_node_t *node;
  tb_http_req_t *req;      /* NULL once the client exchange is over */
  tb_uuid_t app;
  char id[TB_UUID_STR_LEN + 1];
  size_t prefix_len;       /* "/app/<uuid>" as the client spelled it */
  char addr[TB__NODE_ADDR_MAX];  /* the upstream being dialled */
  char sup[TB__NODE_ADDR_MAX];   /* the supervisor that can wake the app; "" none */
  bool mesh;               /* addr is the app's ULA: no wake, no retry */
  tb_http_call_t *call;    /* the upstream call in flight */
  uint64_t call_started;
  /* request body: a small buffer the client fills and the call's body source drains */
  bool has_body;
  tb_buf_t body;
  size_t boff;
  bool reading, body_ended, body_pulled, src_waiting;
  /* response */
  bool resp_started, up_paused, finished;
  bool retried;
  tb__node_wake_t *wake;   /* the wake this px waits on */
  tb__node_px_t *wnext;
};

struct tb__node_wake {
  tb_node_t *node;
  tb__node_wake_t *next;
  tb_uuid_t app;
  char id[TB_UUID_STR_LEN + 1];
  char sup[TB__NODE_ADDR_MAX];
  int status;
  tb_buf_t body;
  tb__node_px_t *waiters;
};

static void px_dial(tb__node_px_t *px);
static void px_wake(tb__node_px_t *px);

/* ---- replies ---- */

static void px_error(tb__node_px_t *px, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void px_error(tb__node_px_t *px, int status, const char *code, const char *fmt, ...) {
  if (!px->req) return;
  char msg[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  px->finished = true;
  tb_http_resp_error(px->req, status, code, msg);
}

static void px_free(tb__node_px_t *px) {
  tb_buf_deinit(&px->body);
  tb_free(px);
}

/* ---- addresses ---- */

/* Copies an address as a URL authority: a bare IPv6 address ("::1", as older
 * supervisor_registered events carry) gets brackets and `default_port`. Returns false when
 * it does not parse. */
static bool norm_addr(const char *in, int default_port, char *out, size_t cap) {
  tb_http_addr_t a;
  char tmp[TB__NODE_ADDR_MAX + 2];
  if (!in || !*in) return false;
  if (in[0] != '[' && strchr(in, ':') != strrchr(in, ':')) {
    snprintf(tmp, sizeof tmp, "[%s]", in);
    in = tmp;
  }
  if (strncmp(in, "unix:", 5) == 0 || tb_http_addr_parse(in, default_port, &a, NULL) != 0) return false;
  int n = strchr(a.host, ':') ? snprintf(out, cap, "[%s]:%u", a.host, a.port) : snprintf(out, cap, "%s:%u", a.host, a.port);
  return n > 0 && (size_t)n < cap;
}

/* ---- the route cache ---- */

static size_t dest_hash(const tb_uuid_t *u) {
  uint64_t h;
  memcpy(&h, u->b + 8, sizeof h); /* UUID v7's random half */
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  return (size_t)(h ^ (h >> 32));
}

#define DEST_WAYS 8

static tb__node_dest_t *dest_find(tb_node_t *n, const tb_uuid_t *app) {
  size_t h = dest_hash(app);
  for (size_t i = 0; i < DEST_WAYS; i++) {
    tb__node_dest_t *e = &n->dests[(h + i) & (TB__NODE_DESTS - 1)];
    if (e->used && memcmp(e->app.b, app->b, 16) == 0) return e;
  }
  return NULL;
}

/* The entry for `app`, taking the least recently used slot of its set when it has none. */
static tb__node_dest_t *dest_get(tb_node_t *n, const tb_uuid_t *app) {
  tb__node_dest_t *e = dest_find(n, app);
  if (e) return e;
  size_t h = dest_hash(app);
  tb__node_dest_t *victim = NULL;
  for (size_t i = 0; i < DEST_WAYS; i++) {
    tb__node_dest_t *c = &n->dests[(h + i) & (TB__NODE_DESTS - 1)];
    if (!c->used) {
      victim = c;
      break;
    }
    if (!victim || c->used_at < victim->used_at) victim = c;
  }
  memset(victim, 0, sizeof *victim);
  victim->used = true;
  victim->app = *app;
  return victim;
}

/* Finds the supervisor `sup_id` in state "up" and copies its address. */
static bool supervisor_addr(tb_node_t *n, const char *sup_id, char *out, size_t cap) {
  json_t *all = NULL, *s;
  size_t i;
  bool found = false;
  if (!sup_id || tb_proj_supervisors(n->proj, NULL, NULL, &all) != 0) return false;
  json_array_foreach(all, i, s) {
    const char *id = json_string_value(json_object_get(s, "supervisor"));
    if (!id || strcmp(id, sup_id) != 0) continue;
    const char *st = json_string_value(json_object_get(s, "state"));
    if (st && strcmp(st, "up") == 0)
      found = norm_addr(json_string_value(json_object_get(s, "address")), SUPERVISOR_PORT, out, cap);
    break;
  }
  json_decref(all);
  return found;
}

/*
 * Brings the entry for `app` up to date with the projections when they moved since it was
 * checked. Returns the entry, or NULL for an app the projections do not know (404). On
 * the hot path (nothing appended since) this builds no JSON.
 */
static tb__node_dest_t *dest_lookup(tb_node_t *n, const tb_uuid_t *app) {
  uint64_t off = tb_projections_offset(n->proj);
  tb__node_dest_t *e = dest_find(n, app);
  if (e && e->offset == off) {
    e->used_at = ++n->dest_clock;
    return e;
  }
  json_t *a = NULL;
  if (tb_proj_app(n->proj, app, &a) != 0) {
    if (e) e->used = false;
    return NULL;
  }
  const char *state = json_string_value(json_object_get(a, "state"));
  if (state && strcmp(state, "deleted") == 0) {
    json_decref(a);
    if (e) e->used = false;
    return NULL;
  }
  if (!e) e = dest_get(n, app);
  e->offset = off;
  e->used_at = ++n->dest_clock;
  e->status = 0, e->code = NULL;
  json_t *dep = json_object_get(a, "current_deployment"), *run = json_object_get(a, "current_runner");
  if (state && strcmp(state, "stopped") == 0) {
    e->status = 503, e->code = "app_stopped";
  } else if (!json_is_object(dep)) {
    e->status = 503, e->code = "not_deployed";
  }
  char sup[TB__NODE_ADDR_MAX] = "", ra[TB__NODE_ADDR_MAX] = "";
  if (json_is_object(dep)) supervisor_addr(n, json_string_value(json_object_get(dep, "supervisor")), sup, sizeof sup);
  snprintf(e->sup, sizeof e->sup, "%s", sup);
  const char *rstate = json_string_value(json_object_get(run, "state"));
  const char *rid = json_string_value(json_object_get(run, "runner"));
  snprintf(e->runner, sizeof e->runner, "%s", rid ? rid : "");
  if (strcmp(e->runner, e->dead_runner) != 0) e->dead[0] = 0; /* another runner since: try it */
  if (state && strcmp(state, "running") == 0 && rstate && strcmp(rstate, "running") == 0)
    norm_addr(json_string_value(json_object_get(run, "address")), APP_PORT, ra, sizeof ra);
  /* The projection's runner wins over an older wake answer, unless it is the very address
   * that just refused us (the runner idled out or crashed and its event is not in yet). */
  if (ra[0] && strcmp(ra, e->dead) != 0) {
    snprintf(e->addr, sizeof e->addr, "%s", ra);
    e->from_wake = false;
  } else if (!e->from_wake) {
    e->addr[0] = 0;
  }
  json_decref(a);
  return e;
}

static void dest_mark_dead(tb_node_t *n, const tb_uuid_t *app, const char *addr) {
  tb__node_dest_t *e = dest_find(n, app);
  if (!e) return;
  snprintf(e->dead, sizeof e->dead, "%s", addr);
  memcpy(e->dead_runner, e->runner, sizeof e->runner);
  if (strcmp(e->addr, addr) == 0) e->addr[0] = 0, e->from_wake = false;
}

/* ---- the request body: client -> buffer -> upstream ---- */

static void body_data(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  tb__node_px_t *px = ud;
  if (px->finished) return; /* answered already: lib/http drains or closes */
  if (px->boff > 0) {      /* keep the unsent bytes at the front */
    memmove(px->body.data, px->body.data + px->boff, px->body.len - px->boff);
    px->body.len -= px->boff;
    px->boff = 0;
  }
  if (tb_buf_append(&px->body, data, len) != 0) { /* cannot happen: reads stop at BODY_HIGH */
    tb_http_req_read_stop(req);
    px->reading = false;
    if (px->call) tb_http_call_cancel(px->call);
    return;
  }
  if (px->body.len >= BODY_HIGH) {
    tb_http_req_read_stop(req);
    px->reading = false;
  }
  if (px->src_waiting && px->call) {
    px->src_waiting = false;
    tb_http_call_body_ready(px->call);
  }
}

static void body_end(tb_http_req_t *req, void *ud) {
  (void)req;
  tb__node_px_t *px = ud;
  px->body_ended = true;
  px->reading = false;
  if (px->src_waiting && px->call) {
    px->src_waiting = false;
    tb_http_call_body_ready(px->call);
  }
}

static void body_resume(tb__node_px_t *px) {
  if (px->reading || px->body_ended || !px->req || px->finished) return;
  if (tb_http_req_read_start(px->req, body_data, body_end, px) == 0) px->reading = true;
}

static long body_source(tb_http_call_t *call, uint8_t *buf, size_t cap, void *ud) {
  (void)call;
  tb__node_px_t *px = ud;
  if (!px->req) return TB_ECANCELED;
  px->body_pulled = true;
  size_t avail = px->body.len - px->boff;
  if (avail == 0) {
    if (px->body_ended) return 0;
    px->src_waiting = true;
    body_resume(px);
    return TB_EAGAIN;
  }
  size_t k = avail < cap ? avail : cap;
  memcpy(buf, px->body.data + px->boff, k);
  px->boff += k;
  if (px->boff == px->body.len) px->boff = 0, px->body.len = 0;
  if (px->body.len - px->boff < BODY_HIGH / 2) body_resume(px);
  return (long)k;
}

/* ---- the response: upstream -> client ---- */

static bool is_hop(const char *name, size_t len, const char *conn) {
  static const char *const hop[] = {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"};
  char c0 = (char)(name[0] | 0x20);
  if (c0 == 'c' || c0 == 'k' || c0 == 't' || c0 == 'u' || c0 == 'p') { /* the hop-by-hop initials */
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
      if (strlen(hop[i]) == len && strncasecmp(name, hop[i], len) == 0) return true;
    if (len >= 6 && strncasecmp(name, "proxy-", 6) == 0) return true;
  }
  /* Connection: a, b names more hop-by-hop headers. */
  for (const char *p = conn; p && *p;) {
    p += strspn(p, " \t,");
    size_t n = strcspn(p, " \t,");
    if (n == len && n > 0 && strncasecmp(p, name, n) == 0) return true;
    p += n;
  }
  return false;
}

static void resp_written(tb_http_req_t *req, int status, void *ud) {
  tb__node_px_t *px = ud;
  if (status != 0 || !px->up_paused || !px->call || !px->req) return;
  if (tb_http_resp_queued(req) <= RESP_HIGH / 2) {
    px->up_paused = false;
    tb_http_call_read_start(px->call);
  }
}

static void up_response(tb_http_call_t *call, const tb_http_head_t *head, void *ud) {
  tb__node_px_t *px = ud;
  if (!px->req) return;
  tb_http_header_t hs[MAX_FWD_HEADERS];
  size_t nh = 0;
  const char *conn = tb_http_head_get(head, "Connection");
  for (size_t i = 0; i < head->nheaders && nh < MAX_FWD_HEADERS; i++) {
    const tb_http_header_t *h = &head->headers[i];
    if (!is_hop(h->name, h->name_len, conn)) hs[nh++] = *h;
  }
  int64_t len = head->chunked ? -1 : head->content_length;
  int rc = tb_http_resp_start(px->req, head->status, hs, nh, len);
  if (rc != 0) {
    tb_log_debug("node", "upstream response not relayed", TB_KV_STR("app", px->id), TB_KV_INT("status", head->status),
                 TB_KV_ERR(rc));
    if (rc == TB_EINVAL)
      px_error(px, 502, "app_unreachable", "The app's runner at %s sent a response the node cannot relay (status %d).",
               px->addr, head->status);
    tb_http_call_cancel(call);
    return;
  }
  px->resp_started = true;
}

static void up_data(tb_http_call_t *call, const uint8_t *data, size_t len, void *ud) {
  tb__node_px_t *px = ud;
  if (!px->req || !px->resp_started) return;
  if (tb_http_resp_write(px->req, data, len, resp_written, px) != 0) {
    tb_http_call_cancel(call);
    return;
  }
  if (tb_http_resp_queued(px->req) > RESP_HIGH && !px->up_paused) {
    px->up_paused = true;
    tb_http_call_read_stop(call);
  }
}

static void up_done(tb_http_call_t *call, int err, void *ud) {
  tb__node_px_t *px = ud;
  tb_node_t *n = px->node;
  bool reused = tb_http_call_reused(call);
  px->call = NULL;
  if (!px->req) { /* the client left; we canceled */
    px_free(px);
    return;
  }
  if (err == 0) {
    px->finished = true;
    if (px->resp_started) tb_http_resp_end(px->req);
    return;
  }
  if (px->resp_started) {
    /* The head is out: the only honest thing left is to cut the response short. */
    if (err != TB_ECANCELED) /* (canceled: the client's side was torn down first) */
      tb_log_info("node", "upstream failed mid-response", TB_KV_STR("app", px->id), TB_KV_STR("address", px->addr),
                  TB_KV_ERR(err));
    px->finished = true;
    tb_http_resp_abort(px->req);
    return;
  }
  if (px->finished) return; /* answered already (a response we could not relay) */
  /* A pooled connection the runner had closed, and lib/http could not retry (a streamed
   * body): send again on a new one while nothing of the body has been taken. */
  if (reused && !px->body_pulled && !px->retried && (err == TB_ECONNRESET || err == TB_EPIPE)) {
    px->retried = true;
    px_dial(px);
    return;
  }
  if (err == TB_ECONNREFUSED && !px->mesh) {
    dest_mark_dead(n, &px->app, px->addr);
    /* Scale to zero, or a crash: wake the app and try once more if the body is still ours. */
    if (px->sup[0] && !px->retried && !px->body_pulled && !n->closing) {
      px->retried = true;
      px_wake(px);
      return;
    }
  }
  uint64_t took = uv_now(n->loop) - px->call_started;
  if (err == TB_ETIMEDOUT && (reused || took >= n->proxy_timeout_ms)) {
    px_error(px, 504, "app_timeout", "The app's runner at %s sent no response within %llu ms.", px->addr,
             (unsigned long long)n->proxy_timeout_ms);
    return;
  }
  px_error(px, 502, "app_unreachable", "The app's runner at %s did not answer: %s.", px->addr,
           err == TB_ETIMEDOUT ? "the connection timed out" : tb_strerror(err));
}

/* ---- dialling ---- */

/* Appends n bytes to dst (capacity cap, used *at) and NUL-terminates; false when they do
 * not fit. The per-request strings are built with this rather than snprintf. */
static bool put(char *dst, size_t cap, size_t *at, const char *src, size_t n) {
  if (*at + n + 1 > cap) return false;
  memcpy(dst + *at, src, n);
  *at += n;
  dst[*at] = 0;
  return true;
}

/* X-Forwarded-For wants the client's address without its port. */
static void peer_ip(const char *peer, char *out, size_t cap) {
  size_t at = 0;
  out[0] = 0;
  if (!peer || strcmp(peer, "unix") == 0) return;
  if (peer[0] == '[') {
    const char *close = strchr(peer, ']');
    if (close) put(out, cap, &at, peer + 1, (size_t)(close - peer - 1));
    return;
  }
  const char *colon = strrchr(peer, ':');
  put(out, cap, &at, peer, colon ? (size_t)(colon - peer) : strlen(peer));
}

static void px_dial(tb__node_px_t *px) {
  tb_node_t *n = px->node;
  if (!px->req) return;
  const tb_http_head_t *head = tb_http_req_head(px->req);
  /* /app/<uuid>/rest?q -> /rest?q; /app/<uuid> and /app/<uuid>/ -> / */
  const char *rest = head->target + px->prefix_len;
  char url[URL_MAX];
  size_t ul = 0;
  if (!put(url, sizeof url, &ul, "http://", 7) || !put(url, sizeof url, &ul, px->addr, strlen(px->addr)) ||
      (rest[0] != '/' && !put(url, sizeof url, &ul, "/", 1)) || !put(url, sizeof url, &ul, rest, strlen(rest))) {
    px_error(px, 414, "uri_too_long", "The request target is too long.");
    return;
  }

  /* Headers: the client's, minus hop-by-hop ones and the X-Forwarded-* we set ourselves. */
  tb_http_header_t hs[MAX_FWD_HEADERS];
  size_t nh = 0;
  const char *conn = tb_http_head_get(head, "Connection");
  const char *xff = NULL, *host = NULL;
  for (size_t i = 0; i < head->nheaders && nh < MAX_FWD_HEADERS - 4; i++) {
    const tb_http_header_t *h = &head->headers[i];
    if (is_hop(h->name, h->name_len, conn)) continue;
    if (h->name_len == 4 && strncasecmp(h->name, "host", 4) == 0) {
      host = h->value;
      continue;
    }
    if (h->name_len == 6 && strncasecmp(h->name, "expect", 6) == 0) continue; /* answered by the node */
    if (h->name_len > 12 && strncasecmp(h->name, "x-forwarded-", 12) == 0) {
      if (h->name_len == 15 && strncasecmp(h->name, "x-forwarded-for", 15) == 0 && !xff) xff = h->value;
      continue;
    }
    hs[nh++] = *h;
  }
  char ip[64], fwd_for[2048], prefix[128];
  peer_ip(tb_http_req_peer(px->req), ip, sizeof ip);
  size_t fl = 0, il = strlen(ip), pl = 0;
  fwd_for[0] = 0;
  if (xff && !(put(fwd_for, sizeof fwd_for, &fl, xff, strlen(xff)) &&
               (!il || put(fwd_for, sizeof fwd_for, &fl, ", ", 2)) && put(fwd_for, sizeof fwd_for, &fl, ip, il)))
    fl = 0, fwd_for[0] = 0; /* an absurd chain: restart it */
  if (fl == 0) put(fwd_for, sizeof fwd_for, &fl, ip, il);
  put(prefix, sizeof prefix, &pl, head->target, px->prefix_len); /* the router checked it is a UUID */
  if (fwd_for[0]) hs[nh++] = (tb_http_header_t){"X-Forwarded-For", fwd_for, 0, 0};
  hs[nh++] = (tb_http_header_t){"X-Forwarded-Proto", "http", 0, 0};
  if (host) hs[nh++] = (tb_http_header_t){"X-Forwarded-Host", host, 0, 0};
  hs[nh++] = (tb_http_header_t){"X-Forwarded-Prefix", prefix, 0, 0};

  tb_http_request_t rq = {
      .method = head->method,
      .url = url,
      .headers = hs,
      .nheaders = nh,
      .timeout_ms = n->proxy_timeout_ms,
  };
  if (px->has_body) {
    rq.body_source = body_source;
    rq.body_length = head->chunked ? -1 : head->content_length;
  }
  static const tb_http_call_cbs_t cbs = {up_response, up_data, up_done};
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  px->call_started = uv_now(n->loop);
  int rc = tb_http_client_request(n->client, &rq, &cbs, px, &px->call, &eb);
  if (rc != 0) {
    px->call = NULL;
    if (rc == TB_EINVAL)
      px_error(px, 400, "invalid_request", "The request cannot be forwarded: %s.", msg);
    else
      px_error(px, 503, "overloaded", "The request cannot be forwarded now: %s.", msg[0] ? msg : tb_strerror(rc));
    return;
  }
  if (px->has_body) body_resume(px);
}

/* ---- waking an app through its supervisor ---- */

static void wake_free(tb__node_wake_t *w) {
  tb_buf_deinit(&w->body);
  tb_free(w);
}

static void wake_response(tb_http_call_t *call, const tb_http_head_t *head, void *ud) {
  (void)call;
  tb__node_wake_t *w = ud;
  w->status = head->status;
}

static void wake_data(tb_http_call_t *call, const uint8_t *data, size_t len, void *ud) {
  (void)call;
  tb__node_wake_t *w = ud;
  tb_buf_append(&w->body, data, len); /* a longer answer is cut: it is an error anyway */
}

static void wake_done(tb_http_call_t *call, int err, void *ud) {
  (void)call;
  tb__node_wake_t *w = ud;
  tb_node_t *n = w->node;
  for (tb__node_wake_t **pp = &n->wakes; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  json_t *j = w->status ? json_loadb((const char *)w->body.data, w->body.len, 0, NULL) : NULL;
  const char *smsg = json_string_value(json_object_get(j, "message"));
  char addr[TB__NODE_ADDR_MAX] = "";
  bool ok = err == 0 && w->status == 200 &&
            norm_addr(json_string_value(json_object_get(j, "address")), APP_PORT, addr, sizeof addr);
  if (ok) {
    tb__node_dest_t *e = dest_get(n, &w->app); /* a new entry (offset 0) is checked at the next lookup */
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    e->from_wake = true;
    if (strcmp(e->dead, addr) == 0) e->dead[0] = 0;
    tb_log_debug("node", "app woken", TB_KV_STR("app", w->id), TB_KV_STR("address", addr));
  } else if (err != 0) {
    tb_log_info("node", "wake failed", TB_KV_STR("app", w->id), TB_KV_STR("supervisor", w->sup), TB_KV_ERR(err));
  } else {
    tb_log_info("node", "wake refused", TB_KV_STR("app", w->id), TB_KV_STR("supervisor", w->sup),
                TB_KV_INT("status", w->status));
  }
  while (w->waiters) {
    tb__node_px_t *px = w->waiters;
    w->waiters = px->wnext;
    px->wnext = NULL, px->wake = NULL;
    if (ok) {
      snprintf(px->addr, sizeof px->addr, "%s", addr);
      px_dial(px);
    } else if (err == TB_ETIMEDOUT) {
      px_error(px, 503, "start_failed", "The app's supervisor at %s did not start it within %llu ms.", w->sup,
               (unsigned long long)n->wake_timeout_ms);
    } else if (err != 0 && px->retried) {
      px_error(px, 502, "app_unreachable",
               "The app's runner at %s refused the connection and its supervisor at %s did not answer: %s.", px->addr,
               w->sup, tb_strerror(err));
    } else if (err != 0) {
      px_error(px, 502, "app_unreachable", "The app's supervisor at %s did not answer: %s.", w->sup, tb_strerror(err));
    } else if (w->status == 409) {
      px_error(px, 503, "app_stopped", "%s", smsg ? smsg : "The app is stopped.");
    } else if (w->status == 200) {
      px_error(px, 503, "start_failed", "The app's supervisor at %s woke it but named no valid address.", w->sup);
    } else if (smsg) {
      px_error(px, 503, "start_failed", "%s", smsg);
    } else {
      px_error(px, 503, "start_failed", "The app's supervisor at %s answered %d to the wake call.", w->sup, w->status);
    }
  }
  json_decref(j);
  wake_free(w);
}

/*
 * Joins the wake in flight for px's app, or starts one: POST http://<supervisor>/v1/apps/
 * <uuid>/wake with an empty body. The client's request waits meanwhile, its body unread.
 */
static void px_wake(tb__node_px_t *px) {
  tb_node_t *n = px->node;
  tb__node_wake_t *w = n->wakes;
  while (w && memcmp(w->app.b, px->app.b, 16) != 0) w = w->next;
  if (!w) {
    w = tb_calloc(1, sizeof *w);
    if (!w) {
      px_error(px, 503, "overloaded", "The node is out of memory.");
      return;
    }
    w->node = n, w->app = px->app;
    memcpy(w->id, px->id, sizeof w->id);
    snprintf(w->sup, sizeof w->sup, "%s", px->sup);
    tb_buf_init(&w->body, WAKE_BODY_MAX);
    char url[TB__NODE_ADDR_MAX + 64], msg[256] = "";
    snprintf(url, sizeof url, "http://%s/v1/apps/%s/wake", w->sup, w->id);
    static const tb_http_header_t accept = {"Accept", "application/json", 0, 0};
    tb_http_request_t rq = {.method = "POST", .url = url, .headers = &accept, .nheaders = 1,
                            .timeout_ms = n->wake_timeout_ms};
    static const tb_http_call_cbs_t cbs = {wake_response, wake_data, wake_done};
    tb_errbuf_t eb = {msg, sizeof msg};
    int rc = tb_http_client_request(n->client, &rq, &cbs, w, NULL, &eb);
    if (rc != 0) {
      wake_free(w);
      px_error(px, 503, "start_failed", "The app cannot be woken through its supervisor at %s: %s.", px->sup,
               msg[0] ? msg : tb_strerror(rc));
      return;
    }
    w->next = n->wakes;
    n->wakes = w;
  }
  px->wake = w;
  px->wnext = w->waiters;
  w->waiters = px;
}

/* ---- the route ---- */

void tb__node_app_route(tb__node_x_t *x) {
  tb_node_t *n = x->node;
  const char *seg = x->params[0];
  if (tb_uuid_parse(seg, strlen(seg), &x->app_id) != 0) {
    tb__node_error(x, 400, "invalid_uuid", "\"%s\" is not an app UUID.", seg);
    return;
  }
  char id[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&x->app_id, id);
  tb__node_dest_t *e = dest_lookup(n, &x->app_id);
  if (!e) {
    tb__node_error(x, 404, "unknown_app", "There is no app %s.", id);
    return;
  }
  if (e->status) {
    tb__node_error(x, e->status, e->code,
                   strcmp(e->code, "app_stopped") == 0 ? "App %s is stopped; deploy it to start it again."
                                                       : "App %s has never been deployed.",
                   id);
    return;
  }
  tb__node_px_t *px = tb_calloc(1, sizeof *px);
  if (!px) {
    tb__node_error(x, 503, "overloaded", "The node is out of memory.");
    return;
  }
  const tb_http_head_t *head = tb_http_req_head(x->req);
  px->node = n, px->req = x->req, px->app = x->app_id;
  memcpy(px->id, id, sizeof px->id);
  px->prefix_len = 5 + strlen(seg); /* the router matched "/app/" + the segment as sent */
  px->has_body = head->chunked || head->content_length > 0;
  tb_buf_init(&px->body, BODY_MAX);
  memcpy(px->sup, e->sup, strlen(e->sup) + 1); /* same sizes */
  x->px = px;
  if (e->addr[0]) {
    memcpy(px->addr, e->addr, strlen(e->addr) + 1);
    px_dial(px);
  } else if (e->sup[0]) {
    px_wake(px);
  } else {
    /* No runner known and no supervisor to ask: the mesh path, the app's own ULA. */
    tb_ula_t ula;
    char s[TB_ULA_STR_MAX];
    tb_ula_derive_app(&x->app_id, &ula);
    tb_ula_format(&ula, s);
    snprintf(px->addr, sizeof px->addr, "[%s]:%d", s, APP_PORT);
    px->mesh = true;
    px_dial(px);
  }
}

void tb__node_proxy_detach(tb__node_x_t *x) {
  tb__node_px_t *px = x->px;
  if (!px) return;
  x->px = NULL;
  px->req = NULL;
  if (px->wake) {
    for (tb__node_px_t **pp = &px->wake->waiters; *pp; pp = &(*pp)->wnext)
      if (*pp == px) {
        *pp = px->wnext;
        break;
      }
    px->wake = NULL;
  }
  if (px->call) tb_http_call_cancel(px->call); /* up_done frees px */
  else px_free(px);
}

int tb__node_proxy_init(tb_node_t *n, const tb_node_config_t *cfg) {
  n->proxy_timeout_ms = cfg->proxy_timeout_ms ? cfg->proxy_timeout_ms : 60000;
  n->wake_timeout_ms = cfg->wake_timeout_ms ? cfg->wake_timeout_ms : 30000;
  n->dests = tb_calloc(TB__NODE_DESTS, sizeof *n->dests);
  if (!n->dests) return TB_ENOMEM;
  tb_http_client_config_t cc = {0};
  cc.connect_timeout_ms = n->dial_timeout_ms;
  cc.max_idle_per_host = 64; /* enough for a busy app's concurrent requests to find a warm connection */
  cc.limits.max_body_bytes = UINT64_MAX; /* an app's answers are its own business; they stream */
  return tb_http_client_new(n->loop, &cc, &n->client);
}

void tb__node_proxy_deinit(tb_node_t *n) {
  tb_free(n->dests);
  n->dests = NULL;
}
