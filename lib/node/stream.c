/*
 * stream.c — the node's long-lived exchanges: GET /v1/apps/{uuid}/logs (streamed, and
 * kept open with follow=1) and ANY /app/{uuid}/... (dial the app's runner).
 *
 * Logs live in <state_dir>/logs/<uuid>.log: one line per record, appended by whoever
 * runs the app (runners, through their supervisor, in the next issue; tests append lines
 * directly). The node streams the file chunked and, with follow=1, polls it every
 * 200 ms for bytes past what it sent, until the client goes away.
 *
 * /app/{uuid}/...: a malformed UUID is 400 and an unknown app 404. For a known app the node
 * dials the address the runner projection reports, or [tb_ula_derive_app(uuid)]:8730
 * when there is none, with a short timeout; a failed dial is 502 with a JSON body. The
 * proxy itself comes with the runner (issue 7): a successful dial answers 501 for now.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node_int.h"
#include "tb/alloc.h"
#include "tb/ula.h"

#define LOG_POLL_MS 200
#define APP_PORT 8730

static int pump(tb__node_x_t *x);

static void handle_closed(uv_handle_t *h) {
  tb__node_x_t *x = h->data;
  if (h == (uv_handle_t *)x->timer) x->timer = NULL;
  if (h == (uv_handle_t *)x->tcp) x->tcp = NULL;
  tb_free(h);
  if (!x->timer && !x->tcp) tb_free(x);
}

static void unfollow(tb__node_x_t *x) {
  if (!x->fprev) return;
  *x->fprev = x->fnext;
  if (x->fnext) x->fnext->fprev = x->fprev;
  x->fnext = NULL, x->fprev = NULL;
}

void tb__node_end_followers(tb_node_t *n) {
  while (n->followers) {
    tb__node_x_t *x = n->followers;
    unfollow(x);
    if (x->timer) uv_timer_stop(x->timer);
    if (!x->done) {
      pump(x);
      tb_http_resp_end(x->req);
    }
  }
}

void tb__node_x_stream_cleanup(tb__node_x_t *x) {
  unfollow(x);
  if (x->log_fd >= 0) close(x->log_fd), x->log_fd = -1;
  if (!x->timer && !x->tcp) {
    tb_free(x);
    return;
  }
  if (x->timer) uv_close((uv_handle_t *)x->timer, handle_closed);
  if (x->tcp) uv_close((uv_handle_t *)x->tcp, handle_closed);
}

/* ---- logs ---- */

static void log_path(tb__node_x_t *x, char *out, size_t cap) {
  char id[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&x->app_id, id);
  snprintf(out, cap, "%s/%s.log", x->node->logs_dir, id);
}

/* Sends what the file holds past what was sent; 0, or -1 when the exchange failed. */
static int pump(tb__node_x_t *x) {
  if (x->log_fd < 0) {
    char p[1200];
    log_path(x, p, sizeof p);
    x->log_fd = open(p, O_RDONLY | O_CLOEXEC);
    if (x->log_fd < 0) return 0;
  }
  uint8_t buf[16384];
  for (;;) {
    /* Backpressure: a slow follower does not make the node buffer the whole file. */
    if (tb_http_resp_queued(x->req) > ((size_t)1 << 20)) return 0;
    ssize_t r = read(x->log_fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    if (tb_http_resp_write(x->req, buf, (size_t)r, NULL, NULL) != 0) return -1;
  }
}

static void log_tick(uv_timer_t *t) {
  tb__node_x_t *x = t->data;
  if (x->done) return;
  if (pump(x) != 0) uv_timer_stop(t);
}

void tb__node_get_logs(tb__node_x_t *x) {
  char v[8] = "";
  bool follow = false;
  for (const char *p = x->query; *p;) {
    size_t len = strcspn(p, "&");
    if (len >= 7 && strncmp(p, "follow=", 7) == 0) snprintf(v, sizeof v, "%.*s", (int)(len - 7), p + 7);
    p += len + (p[len] == '&');
  }
  if (v[0]) {
    if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0 && strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
      tb__node_error(x, 400, "invalid_query", "follow must be 1 or 0.");
      return;
    }
    follow = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
  }
  tb_http_header_t h[1] = {{"Content-Type", "text/plain; charset=utf-8", 0, 0}};
  if (tb_http_resp_start(x->req, 200, h, 1, -1) != 0) return;
  if (pump(x) != 0) return;
  if (!follow || x->node->closing) {
    tb_http_resp_end(x->req);
    return;
  }
  x->timer = tb_malloc(sizeof *x->timer);
  if (!x->timer) {
    tb_http_resp_end(x->req);
    return;
  }
  uv_timer_init(x->node->loop, x->timer);
  x->timer->data = x;
  uv_timer_start(x->timer, log_tick, LOG_POLL_MS, LOG_POLL_MS);
  x->fnext = x->node->followers;
  if (x->fnext) x->fnext->fprev = &x->fnext;
  x->fprev = &x->node->followers;
  x->node->followers = x;
}

/* ---- /app/{uuid}/... ---- */

static void dial_finish(tb__node_x_t *x, int status) {
  if (x->timer) uv_timer_stop(x->timer);
  if (x->done || x->failed) return;
  x->failed = true;
  char id[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&x->app_id, id);
  if (status == 0)
    tb__node_error(x, 501, "not_proxied", "App %s is reachable; proxying to it arrives with the runner.", id);
  else
    tb__node_error(x, 502, "app_unreachable", "App %s has no reachable runner at %s (%s).", id, x->segs,
                   uv_strerror(status));
}

static void dial_timeout(uv_timer_t *t) {
  tb__node_x_t *x = t->data;
  dial_finish(x, UV_ETIMEDOUT);
}

static void dial_done(uv_connect_t *c, int status) {
  tb__node_x_t *x = c->data;
  tb_free(c);
  if (status == UV_ECANCELED) return;
  dial_finish(x, status);
}

void tb__node_app_route(tb__node_x_t *x) {
  const char *seg = x->params[0];
  if (tb_uuid_parse(seg, strlen(seg), &x->app_id) != 0) {
    tb__node_error(x, 400, "invalid_uuid", "\"%s\" is not an app UUID.", seg);
    return;
  }
  if (tb_proj_app(x->node->proj, &x->app_id, &x->app) != 0) {
    x->app = NULL;
    tb__node_error(x, 404, "unknown_app", "There is no app %s.", seg);
    return;
  }
  /* Where the runner listens: the projection's address, else the app's ULA. */
  char addr_text[300] = "";
  json_t *run = NULL;
  if (tb_proj_runner_of(x->node->proj, &x->app_id, &run) == 0) {
    const char *a = json_string_value(json_object_get(run, "address"));
    if (a) snprintf(addr_text, sizeof addr_text, "%s", a);
  }
  json_decref(run);
  if (!addr_text[0]) {
    tb_ula_t ula;
    char s[TB_ULA_STR_MAX];
    tb_ula_derive_app(&x->app_id, &ula);
    tb_ula_format(&ula, s);
    snprintf(addr_text, sizeof addr_text, "[%s]:%d", s, APP_PORT);
  }
  snprintf(x->segs, sizeof x->segs, "%s", addr_text); /* params are no longer needed */
  tb_http_addr_t addr;
  struct sockaddr_storage ss;
  int rc = tb_http_addr_parse(addr_text, APP_PORT, &addr, NULL) != 0 ? UV_EINVAL : 0;
  if (rc == 0 && uv_ip6_addr(addr.host, addr.port, (struct sockaddr_in6 *)&ss) != 0 &&
      uv_ip4_addr(addr.host, addr.port, (struct sockaddr_in *)&ss) != 0)
    rc = UV_EINVAL;
  uv_connect_t *c = NULL;
  if (rc == 0) {
    x->tcp = tb_malloc(sizeof *x->tcp);
    x->timer = tb_malloc(sizeof *x->timer);
    c = tb_malloc(sizeof *c);
    if (!x->tcp || !x->timer || !c) {
      tb_free(x->tcp), tb_free(x->timer), tb_free(c);
      x->tcp = NULL, x->timer = NULL;
      tb__node_error(x, 503, "overloaded", "The node is out of memory.");
      return;
    }
    uv_tcp_init(x->node->loop, x->tcp);
    uv_timer_init(x->node->loop, x->timer);
    x->tcp->data = x, x->timer->data = x, c->data = x;
    rc = uv_tcp_connect(c, x->tcp, (const struct sockaddr *)&ss, dial_done);
    if (rc != 0) tb_free(c);
    else uv_timer_start(x->timer, dial_timeout, x->node->dial_timeout_ms, 0);
  }
  if (rc != 0) dial_finish(x, rc);
}
