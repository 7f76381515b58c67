/*
 * stream.c — the node's log streaming: GET /v1/apps/{uuid}/logs, sent chunked and kept
 * open with follow=1. (App traffic, ANY /app/{uuid}/..., is proxy.c.)
 *
 * Logs live in <state_dir>/logs/<uuid>.log: one line per record, appended by whoever
 * runs the app (runners, through their supervisor, in the next issue; tests append lines
 * directly). The node streams the file chunked and, with follow=1, polls it every
 * 200 ms for bytes past what it sent, until the client goes away.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node_int.h"
#include "tb/alloc.h"

#define LOG_POLL_MS 200

static int pump(tb__node_x_t *x);

static void handle_closed(uv_handle_t *h) {
  tb__node_x_t *x = h->data;
  x->timer = NULL;
  tb_free(h);
  tb_free(x);
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
  if (!x->timer) {
    tb_free(x);
    return;
  }
  uv_close((uv_handle_t *)x->timer, handle_closed);
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
