/*
 * upstream.c — the app the proxy tests put behind tabbify-node: a small HTTP server on
 * lib/http that shows what reached it and misbehaves on request. It also plays a
 * supervisor's control API (POST /v1/apps/{uuid}/wake) until the real one exists.
 *
 *   GET  /inspect, /       {"method","target","headers":[[name,value]...]} of this request
 *   POST /echo             the body streamed back (Content-Length kept, else chunked)
 *   GET  /big?n=BYTES      n bytes of a pattern, chunked, written as the client takes them
 *   GET  /slowhead?ms=M    "late\n" after M ms
 *   GET  /die              promises 1 MB, sends 1000 bytes, then cuts the connection
 *   ANY  /status/NNN       status NNN with a small JSON body
 *   GET  /fixed            "ok\n" (for wrk)
 *   GET  /stats            {"connections","requests","wakes"}
 *   POST /mode?wake=ok|409|500&delay=MS&addr=HOST:PORT   how the next wakes answer
 *   POST /v1/apps/{uuid}/wake   after `delay` ms: 200 {"app","runner","address"} (addr,
 *                          default this server), or 409/500 with a JSON error body
 *
 * Usage: upstream [--listen ADDR]. Prints "upstream listening on port N", runs until
 * killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/buf.h"
#include "tb/http.h"

#define QUEUE_HIGH ((size_t)256 << 10)

typedef struct ex {
  tb_http_req_t *req;
  uv_timer_t timer;
  bool has_timer;
  bool paused;   /* /echo: body reading stopped for backpressure */
  bool ended;    /* /echo: request body over */
  uint64_t n, sent;
  int kind;      /* 0 plain, 1 slowhead, 2 wake */
} ex_t;

static uv_loop_t *loop;
static tb_http_server_t *srv;
static int port;
static uint64_t wakes;
static char wake_mode[16] = "ok";
static uint64_t wake_delay_ms;
static char wake_addr[128];

static uint64_t qnum(const char *target, const char *key, uint64_t dflt) {
  const char *q = strchr(target, '?');
  for (const char *p = q ? q + 1 : NULL; p && *p;) {
    size_t kl = strlen(key);
    if (strncmp(p, key, kl) == 0 && p[kl] == '=') return strtoull(p + kl + 1, NULL, 10);
    p = strchr(p, '&');
    if (p) p++;
  }
  return dflt;
}

static void qstr(const char *target, const char *key, char *out, size_t cap) {
  const char *q = strchr(target, '?');
  for (const char *p = q ? q + 1 : NULL; p && *p;) {
    size_t kl = strlen(key);
    if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
      size_t n = strcspn(p + kl + 1, "&");
      snprintf(out, cap, "%.*s", (int)n, p + kl + 1);
      return;
    }
    p = strchr(p, '&');
    if (p) p++;
  }
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

static void on_done(tb_http_req_t *req, int err, void *ud) {
  (void)req, (void)err;
  ex_t *e = ud;
  if (e->has_timer) uv_close((uv_handle_t *)&e->timer, timer_closed);
  else free(e);
}

static void json_str(tb_buf_t *b, const char *s) {
  tb_buf_putc(b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') tb_buf_printf(b, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) tb_buf_printf(b, "\\u%04x", *s);
    else tb_buf_putc(b, *s);
  }
  tb_buf_putc(b, '"');
}

static void send_json(tb_http_req_t *req, int status, tb_buf_t *b) {
  tb_http_resp_send(req, status, "application/json", b->data, b->len);
  tb_buf_deinit(b);
}

/* /echo */
static void echo_data(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud);
static void echo_end(tb_http_req_t *req, void *ud);
static void echo_resume(tb_http_req_t *req, int status, void *ud) {
  ex_t *e = ud;
  if (status == 0 && e->paused && tb_http_resp_queued(req) < QUEUE_HIGH / 2) {
    e->paused = false;
    tb_http_req_read_start(req, echo_data, echo_end, e);
  }
}
static void echo_end(tb_http_req_t *req, void *ud) {
  (void)ud;
  tb_http_resp_end(req);
}
static void echo_data(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  ex_t *e = ud;
  tb_http_resp_write(req, data, len, echo_resume, e);
  if (tb_http_resp_queued(req) >= QUEUE_HIGH) {
    e->paused = true;
    tb_http_req_read_stop(req);
  }
}

/* /big */
static void big_pump(tb_http_req_t *req, ex_t *e);
static void big_written(tb_http_req_t *req, int status, void *ud) {
  if (status == 0) big_pump(req, ud);
}
static void big_pump(tb_http_req_t *req, ex_t *e) {
  uint8_t piece[16384];
  while (e->sent < e->n && tb_http_resp_queued(req) < QUEUE_HIGH) {
    size_t len = e->n - e->sent < sizeof piece ? (size_t)(e->n - e->sent) : sizeof piece;
    for (size_t i = 0; i < len; i++) piece[i] = (uint8_t)((e->sent + i) * 7 + (e->sent + i) / 251);
    e->sent += len;
    if (tb_http_resp_write(req, piece, len, big_written, e) != 0) return;
  }
  if (e->sent == e->n) {
    e->sent++; /* end once */
    tb_http_resp_end(req);
  }
}

static void wake_answer(ex_t *e) {
  tb_buf_t b;
  tb_buf_init(&b, 4096);
  const char *t = tb_http_req_head(e->req)->target; /* /v1/apps/<uuid>/wake */
  char app[64] = "";
  snprintf(app, sizeof app, "%.*s", (int)strcspn(t + 9, "/"), t + 9);
  if (strcmp(wake_mode, "409") == 0) {
    tb_buf_printf(&b, "{\"error\":\"app_stopped\",\"message\":\"App %s was stopped by its owner.\",\"status\":409}", app);
    send_json(e->req, 409, &b);
  } else if (strcmp(wake_mode, "500") == 0) {
    tb_buf_printf(&b, "{\"error\":\"start_failed\",\"message\":\"The runner for %s exited at start: bad module.\",\"status\":500}", app);
    send_json(e->req, 500, &b);
  } else {
    char self[64];
    snprintf(self, sizeof self, "127.0.0.1:%d", port);
    tb_buf_printf(&b, "{\"app\":\"%s\",\"runner\":\"01a20000-0000-7000-8000-00000000aaaa\",\"address\":\"%s\"}", app,
                  wake_addr[0] ? wake_addr : self);
    send_json(e->req, 200, &b);
  }
}

static void timer_fire(uv_timer_t *t) {
  ex_t *e = t->data;
  if (e->kind == 2) wake_answer(e);
  else tb_http_resp_send(e->req, 200, "text/plain", "late\n", 5);
}

static void later(ex_t *e, uint64_t ms, int kind) {
  e->kind = kind;
  e->has_timer = true;
  uv_timer_init(loop, &e->timer);
  e->timer.data = e;
  uv_timer_start(&e->timer, timer_fire, ms, 0);
}

static void handler(tb_http_req_t *req, void *ud) {
  (void)ud;
  ex_t *e = calloc(1, sizeof *e);
  if (!e) {
    tb_http_resp_error(req, 503, "oom", "out of memory");
    return;
  }
  e->req = req;
  tb_http_req_on_done(req, on_done, e);
  const tb_http_head_t *h = tb_http_req_head(req);
  const char *t = h->target;
  size_t pl = strcspn(t, "?");
#define IS(p) (pl == strlen(p) && strncmp(t, p, pl) == 0)
  tb_buf_t b;
  tb_buf_init(&b, 1 << 20);
  if (IS("/inspect") || IS("/")) {
    tb_buf_printf(&b, "{\"method\":");
    json_str(&b, h->method);
    tb_buf_printf(&b, ",\"target\":");
    json_str(&b, t);
    tb_buf_printf(&b, ",\"headers\":[");
    for (size_t i = 0; i < h->nheaders; i++) {
      tb_buf_printf(&b, "%s[", i ? "," : "");
      json_str(&b, h->headers[i].name);
      tb_buf_putc(&b, ',');
      json_str(&b, h->headers[i].value);
      tb_buf_putc(&b, ']');
    }
    tb_buf_printf(&b, "]}\n");
    send_json(req, 200, &b);
    return;
  }
  if (IS("/stats")) {
    tb_http_server_stats_t st;
    tb_http_server_stats(srv, &st);
    tb_buf_printf(&b, "{\"connections\":%llu,\"requests\":%llu,\"wakes\":%llu}\n", (unsigned long long)st.connections,
                  (unsigned long long)st.requests, (unsigned long long)wakes);
    send_json(req, 200, &b);
    return;
  }
  tb_buf_deinit(&b);
  if (IS("/fixed")) {
    tb_http_resp_send(req, 200, "text/plain", "ok\n", 3);
  } else if (IS("/echo")) {
    tb_http_header_t ct = {"Content-Type", "application/octet-stream", 0, 0};
    tb_http_resp_start(req, 200, &ct, 1, h->chunked ? -1 : h->content_length);
    if (!h->chunked && h->content_length <= 0) tb_http_resp_end(req);
    else tb_http_req_read_start(req, echo_data, echo_end, e);
  } else if (IS("/big")) {
    e->n = qnum(t, "n", 1000);
    tb_http_resp_start(req, 200, NULL, 0, -1);
    big_pump(req, e);
  } else if (IS("/slowhead")) {
    later(e, qnum(t, "ms", 100), 1);
  } else if (IS("/die")) {
    static uint8_t kb[1000];
    memset(kb, 'd', sizeof kb);
    tb_http_resp_start(req, 200, NULL, 0, 1000000);
    tb_http_resp_write(req, kb, sizeof kb, NULL, NULL);
    tb_http_resp_abort(req);
  } else if (pl == 11 && strncmp(t, "/status/", 8) == 0) {
    int st = atoi(t + 8);
    tb_http_header_t hd[2] = {{"Content-Type", "application/json", 0, 0}, {"X-Upstream-Status", t + 8, 0, 0}};
    char body[64];
    int n = snprintf(body, sizeof body, "{\"status\":%d}\n", st);
    char sv[4];
    snprintf(sv, sizeof sv, "%.3s", t + 8);
    hd[1].value = sv;
    if (tb_http_resp_start(req, st, hd, 2, n) == 0) {
      tb_http_resp_write(req, body, (size_t)n, NULL, NULL);
      tb_http_resp_end(req);
    } else {
      tb_http_resp_error(req, 400, "bad_status", "no such status");
    }
  } else if (IS("/mode")) {
    qstr(t, "wake", wake_mode, sizeof wake_mode);
    wake_delay_ms = qnum(t, "delay", wake_delay_ms);
    qstr(t, "addr", wake_addr, sizeof wake_addr);
    tb_http_resp_send(req, 200, "text/plain", "ok\n", 3);
  } else if (strcmp(h->method, "POST") == 0 && strncmp(t, "/v1/apps/", 9) == 0 && pl > 14 &&
             strncmp(t + pl - 5, "/wake", 5) == 0) {
    wakes++;
    later(e, wake_delay_ms, 2);
  } else {
    tb_http_resp_error(req, 404, "not_found", "no such route");
  }
}

int main(int argc, char **argv) {
  const char *listen = argc > 2 && strcmp(argv[1], "--listen") == 0 ? argv[2] : "127.0.0.1:0";
  loop = uv_default_loop();
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_http_server_config_t cfg = {0};
  cfg.limits.max_body_bytes = UINT64_MAX;
  if (tb_http_server_new(loop, &cfg, handler, NULL, &srv) != 0 || tb_http_server_listen(srv, listen, &eb) != 0) {
    fprintf(stderr, "upstream: cannot listen on %s: %s\n", listen, msg);
    return 1;
  }
  port = tb_http_server_port(srv);
  printf("upstream listening on port %d\n", port);
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
