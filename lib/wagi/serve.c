/*
 * serve.c — one WAGI request: the CGI/1.1 environment (RFC 3875, with WAGI's X_*
 * additions), a fresh store, WASI context and instance, stdin fed from the caller's body
 * source, and the guest's stdout parsed as a CGI response as it is written.
 *
 * Nothing here is sized by the body: stdin reads go straight to io->read_body into guest
 * memory, and stdout writes go straight to io->write_body once the header block is
 * complete. The only buffer is the header block, capped at max_header_bytes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/http.h"
#include "tb/wasi.h"
#include "wagi_int.h"

/* ---- Per-request state, the stdio callbacks' argument ---- */

typedef struct req {
  tb_wagi_app_t *app;
  const tb_wagi_io_t *io;
  tb_wagi_result_t *res;
  char *hdr; /* the header block so far */
  size_t hlen, hcap;
  bool head_done;
  bool malformed; /* the header block was refused: res->error says why */
  int io_err;     /* an io callback failed */
} req_t;

static bool is_tchar(unsigned char c) {
  return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void set_error(req_t *r, const char *fmt, const char *arg) {
  snprintf(r->res->error, sizeof r->res->error, fmt, arg);
}

static int send_body(req_t *r, const uint8_t *p, size_t n) {
  int rc;
  if (n == 0) return 0;
  rc = r->io->write_body(r->io->arg, p, n);
  if (rc < 0) {
    r->io_err = rc;
    return rc;
  }
  r->res->body_out += n;
  return 0;
}

/*
 * Parses the complete header block hdr[0, end) in place (NULs replace ':' and line ends)
 * and sends the head. Returns 0, or -1 with r->malformed set.
 */
static int parse_head(req_t *r, size_t end) {
  tb_wagi_header_t *hs = NULL;
  size_t nlines = 0, n = 0;
  int status = 0;
  const char *reason = NULL;
  bool location = false;
  char *p = r->hdr, *lim = r->hdr + end;
  int rc = -1;

  for (char *q = p; q < lim; q++) nlines += *q == '\n';
  hs = tb_calloc(nlines ? nlines : 1, sizeof *hs);
  if (!hs) {
    set_error(r, "%s", "out of memory for the response headers");
    r->malformed = true;
    return -1;
  }
  while (p < lim) {
    char *nl = memchr(p, '\n', (size_t)(lim - p)), *eol = nl, *colon, *v;
    if (eol > p && eol[-1] == '\r') eol--;
    if (eol == p) break; /* the blank line */
    *eol = '\0';
    for (colon = p; colon < eol && is_tchar((unsigned char)*colon); colon++) {}
    if (colon == p || colon == eol || *colon != ':') {
      set_error(r, "malformed CGI header line \"%.60s\"", p);
      goto out;
    }
    *colon = '\0';
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {}
    for (char *e = eol; e > v && (e[-1] == ' ' || e[-1] == '\t');) *--e = '\0';
    for (char *c = v; *c; c++) {
      if ((unsigned char)*c < 0x20 && *c != '\t') {
        set_error(r, "control character in CGI header \"%.60s\"", p);
        goto out;
      }
    }
    if (strcasecmp(p, "Status") == 0) {
      char *endp;
      long s = strtol(v, &endp, 10);
      if (endp != v + 3 || s < 100 || s > 599 || (*endp && *endp != ' ')) {
        set_error(r, "malformed CGI Status \"%.60s\"", v);
        goto out;
      }
      status = (int)s;
      while (*endp == ' ') endp++;
      reason = *endp ? endp : NULL;
    } else {
      if (strcasecmp(p, "Location") == 0) location = true;
      hs[n].name = p;
      hs[n].value = v;
      n++;
    }
    p = nl + 1;
  }
  if (n == 0 && status == 0) {
    set_error(r, "%s", "malformed CGI response: the header block is empty");
    goto out;
  }
  if (status == 0) status = location ? 302 : 200;
  if (!reason) reason = tb_http_status_reason(status);
  r->res->status = status;
  r->res->head_sent = true;
  r->head_done = true;
  rc = r->io->write_head(r->io->arg, status, reason, hs, n);
  if (rc < 0) r->io_err = rc;
  rc = 0;
out:
  if (rc != 0) r->malformed = true;
  tb_free(hs);
  return rc;
}

/* The guest's stdout. */
static int64_t on_stdout(void *arg, const uint8_t *data, size_t len) {
  req_t *r = arg;
  size_t max = r->app->max_header_bytes, take, from, end = 0;
  if (r->io_err || r->malformed) return TB_EPIPE;
  if (r->head_done) return send_body(r, data, len) < 0 ? TB_EPIPE : (int64_t)len;

  take = len < max - r->hlen ? len : max - r->hlen;
  if (r->hlen + take > r->hcap) {
    size_t cap = r->hcap ? r->hcap : 1024;
    char *nb;
    while (cap < r->hlen + take) cap *= 2;
    if (cap > max) cap = max;
    nb = tb_realloc(r->hdr, cap);
    if (!nb) {
      set_error(r, "%s", "out of memory for the response headers");
      r->malformed = true;
      return TB_EPIPE;
    }
    r->hdr = nb;
    r->hcap = cap;
    if (cap > r->res->peak_held) r->res->peak_held = cap;
  }
  memcpy(r->hdr + r->hlen, data, take);
  /* Look for "\n\n" or "\n\r\n", starting where one could straddle the last write. */
  from = r->hlen > 2 ? r->hlen - 2 : 0;
  r->hlen += take;
  for (size_t i = from; i < r->hlen; i++) {
    if (r->hdr[i] != '\n') continue;
    if (i + 1 < r->hlen && r->hdr[i + 1] == '\n') { end = i + 2; break; }
    if (i + 2 < r->hlen && r->hdr[i + 1] == '\r' && r->hdr[i + 2] == '\n') { end = i + 3; break; }
  }
  if (end == 0 && r->hlen > 0 && (r->hdr[0] == '\n' || (r->hlen > 1 && r->hdr[0] == '\r' && r->hdr[1] == '\n')))
    end = r->hdr[0] == '\n' ? 1 : 2; /* a blank line first: an empty header block */
  if (end == 0) {
    if (r->hlen == max) {
      snprintf(r->res->error, sizeof r->res->error, "malformed CGI response: header block larger than %zu bytes",
               max);
      r->malformed = true;
      return TB_EPIPE;
    }
    return (int64_t)len;
  }
  {
    size_t rest = r->hlen - end;
    if (parse_head(r, end) != 0) return TB_EPIPE;
    if (r->io_err) return TB_EPIPE;
    if (send_body(r, (const uint8_t *)r->hdr + end, rest) < 0) return TB_EPIPE;
    if (send_body(r, data + take, len - take) < 0) return TB_EPIPE;
  }
  return (int64_t)len;
}

/* The guest's stderr: the app's log. */
static int64_t on_stderr(void *arg, const uint8_t *data, size_t len) {
  req_t *r = arg;
  if (r->app->log) r->app->log(r->app->log_arg, TB_WAGI_LOG_STDERR, (const char *)data, len);
  return (int64_t)len;
}

/* The guest's stdin: the request body, straight from the caller. */
static int64_t on_stdin(void *arg, uint8_t *buf, size_t len) {
  req_t *r = arg;
  int64_t n;
  if (!r->io->read_body) return 0;
  n = r->io->read_body(r->io->arg, buf, len);
  if (n < 0) {
    set_error(r, "%s", "reading the request body failed");
    return TB_EIO;
  }
  r->res->body_in += (uint64_t)n;
  return n;
}

/* ---- The CGI environment ---- */

static int env_set(tb_wasi_config_t *cfg, const char *name, const char *value) {
  return tb_wasi_config_env(cfg, name, value ? value : "", NULL);
}

/* Percent-decodes `s` into a new string; NULL when it holds %00 or a bad escape (the
 * caller then uses it undecoded) or on allocation failure. */
static char *url_decode(const char *s) {
  size_t n = strlen(s);
  char *out = tb_malloc(n + 1), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      int hi, lo;
      if (i + 2 >= n) goto bad;
      if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) goto bad;
      hi = isdigit((unsigned char)s[i + 1]) ? s[i + 1] - '0' : (tolower((unsigned char)s[i + 1]) - 'a' + 10);
      lo = isdigit((unsigned char)s[i + 2]) ? s[i + 2] - '0' : (tolower((unsigned char)s[i + 2]) - 'a' + 10);
      if (hi == 0 && lo == 0) goto bad;
      *o++ = (char)(hi * 16 + lo);
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
bad:
  tb_free(out);
  return NULL;
}

/* HTTP_<NAME> with '-' → '_', upper-cased; false for a name that cannot be one. */
static bool http_var(const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  if (n == 0 || n + 6 > cap) return false;
  memcpy(out, "HTTP_", 5);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!is_tchar(c)) return false;
    out[5 + i] = c == '-' ? '_' : (char)toupper(c);
  }
  out[5 + n] = '\0';
  return true;
}

static int build_env(tb_wagi_app_t *app, const tb_wagi_request_t *q, tb_wasi_config_t *cfg) {
  char name[300], other[300], num[32];
  const char *path = q->path && q->path[0] ? q->path : "/";
  const char *script = q->script_name ? q->script_name : "";
  const char *raw_info = path;
  char *info = NULL;
  int rc = 0;

  /* HTTP_* first, so neither the manifest nor the meta-variables can be overridden by a
   * client. Repeated headers are joined with ", " (RFC 3875 4.1.18). Content-Type and
   * Content-Length are meta-variables of their own. */
  for (size_t i = 0; i < q->nheaders && rc == 0; i++) {
    const tb_wagi_header_t *h = &q->headers[i];
    bool seen = false;
    size_t total;
    char *joined, *o;
    if (!http_var(h->name, name, sizeof name)) continue;
    if (strcmp(name, "HTTP_CONTENT_TYPE") == 0 || strcmp(name, "HTTP_CONTENT_LENGTH") == 0) continue;
    /* httpoxy: a client's "Proxy:" header must not become the guest's HTTP_PROXY. */
    if (strcmp(name, "HTTP_PROXY") == 0) continue;
    for (size_t j = 0; j < i && !seen; j++)
      seen = http_var(q->headers[j].name, other, sizeof other) && strcmp(name, other) == 0;
    if (seen) continue;
    total = strlen(h->value) + 1;
    for (size_t j = i + 1; j < q->nheaders; j++)
      if (http_var(q->headers[j].name, other, sizeof other) && strcmp(name, other) == 0)
        total += strlen(q->headers[j].value) + 2;
    joined = o = tb_malloc(total);
    if (!joined) return TB_ENOMEM;
    o += sprintf(o, "%s", h->value);
    for (size_t j = i + 1; j < q->nheaders; j++)
      if (http_var(q->headers[j].name, other, sizeof other) && strcmp(name, other) == 0)
        o += sprintf(o, ", %s", q->headers[j].value);
    rc = env_set(cfg, name, joined);
    tb_free(joined);
  }
  for (size_t i = 0; i < app->nenv && rc == 0; i++) rc = tb_wasi_config_env_grant(cfg, app->env[i], NULL);
  if (rc) return rc;

  /* PATH_INFO is the path below SCRIPT_NAME, url-decoded; X_RAW_PATH_INFO as sent. */
  if (script[0] && strncmp(path, script, strlen(script)) == 0) raw_info = path + strlen(script);
  info = url_decode(raw_info);
  for (size_t i = 0; i < q->nheaders; i++) {
    if (strcasecmp(q->headers[i].name, "Content-Type") == 0) {
      rc = rc ? rc : env_set(cfg, "CONTENT_TYPE", q->headers[i].value);
      break;
    }
  }
  snprintf(num, sizeof num, "%lld", (long long)(q->content_length > 0 ? q->content_length : 0));
  if (q->content_length >= 0) rc = rc ? rc : env_set(cfg, "CONTENT_LENGTH", num);
  rc = rc ? rc : env_set(cfg, "GATEWAY_INTERFACE", "CGI/1.1");
  rc = rc ? rc : env_set(cfg, "REQUEST_METHOD", q->method ? q->method : "GET");
  rc = rc ? rc : env_set(cfg, "SCRIPT_NAME", script);
  rc = rc ? rc : env_set(cfg, "PATH_INFO", info ? info : raw_info);
  rc = rc ? rc : env_set(cfg, "PATH_TRANSLATED", info ? info : raw_info);
  rc = rc ? rc : env_set(cfg, "X_RAW_PATH_INFO", raw_info);
  rc = rc ? rc : env_set(cfg, "QUERY_STRING", q->query);
  rc = rc ? rc : env_set(cfg, "SERVER_PROTOCOL", q->protocol ? q->protocol : "HTTP/1.1");
  rc = rc ? rc : env_set(cfg, "SERVER_SOFTWARE", "Tabbify");
  rc = rc ? rc : env_set(cfg, "SERVER_NAME", q->server_name);
  rc = rc ? rc : env_set(cfg, "SERVER_PORT", q->server_port);
  rc = rc ? rc : env_set(cfg, "REMOTE_ADDR", q->remote_addr);
  rc = rc ? rc : env_set(cfg, "REMOTE_HOST", q->remote_addr);
  rc = rc ? rc : env_set(cfg, "X_FULL_URL", q->full_url);
  rc = rc ? rc : env_set(cfg, "X_MATCHED_ROUTE", q->matched_route ? q->matched_route : "/...");
  tb_free(info);
  return rc;
}

/* ---- Serving ---- */

/* The library's own response, when the guest's cannot be sent. */
static int send_error(req_t *r, int status, const char *why) {
  static const tb_wagi_header_t hs[] = {{"Content-Type", "text/plain; charset=utf-8"}};
  char body[128];
  int rc, n;
  if (!r->res->error[0]) snprintf(r->res->error, sizeof r->res->error, "%s", why);
  r->res->status = status;
  r->res->head_sent = true;
  rc = r->io->write_head(r->io->arg, status, tb_http_status_reason(status), hs, 1);
  if (rc < 0) return rc;
  n = snprintf(body, sizeof body, "%d %s\n", status, tb_http_status_reason(status));
  return r->io->write_body(r->io->arg, (const uint8_t *)body, (size_t)n) < 0 ? TB_EPIPE : 0;
}

static void log_trap(tb_wagi_app_t *app, const tb_wasm_trap_t *t, bool deadline) {
  const char *fn = tb_wasm_module_func_name(app->module, t->func_index);
  if (deadline)
    tb__wagi_logf(app, "deadline: request stopped after %u ms in function %u%s%s%s at offset 0x%x",
                  app->deadline_ms, t->func_index, fn ? " (" : "", fn ? fn : "", fn ? ")" : "", t->offset);
  else
    tb__wagi_logf(app, "trap: %s in function %u%s%s%s at offset 0x%x", t->msg, t->func_index, fn ? " (" : "",
                  fn ? fn : "", fn ? ")" : "", t->offset);
}

int tb_wagi_serve(tb_wagi_app_t *app, const tb_wagi_request_t *q, const tb_wagi_io_t *io, tb_wagi_result_t *res) {
  req_t r = {.app = app, .io = io, .res = res};
  tb__wagi_watch_t watch = {0};
  tb_wasi_config_t *cfg = NULL;
  tb_wasi_ctx_t *ctx = NULL;
  tb_wasm_store_t *store = NULL;
  tb_wasm_instance_t *inst = NULL;
  tb_wasm_func_t *start;
  bool watching = false, fired = false;
  char ebuf[200] = "";
  tb_errbuf_t eb = {ebuf, sizeof ebuf};
  int64_t t0, t1;
  int rc;

  memset(res, 0, sizeof *res);
  if (!app || !q || !io || !io->write_head || !io->write_body) return TB_EINVAL;
  t0 = tb_clock_mono_ns();
  {
    tb_wasi_stdio_t in = {.kind = TB_WASI_STDIO_CALLBACK, .read = on_stdin, .arg = &r};
    tb_wasi_stdio_t out = {.kind = TB_WASI_STDIO_CALLBACK, .write = on_stdout, .arg = &r};
    tb_wasi_stdio_t err = {.kind = TB_WASI_STDIO_CALLBACK, .write = on_stderr, .arg = &r};
    rc = tb_wasi_config_new(&cfg);
    if (rc == 0) rc = tb_wasi_config_arg(cfg, app->name);
    if (rc == 0) rc = build_env(app, q, cfg);
    if (rc == 0) rc = tb_wasi_config_stdio(cfg, 0, &in);
    if (rc == 0) rc = tb_wasi_config_stdio(cfg, 1, &out);
    if (rc == 0) rc = tb_wasi_config_stdio(cfg, 2, &err);
    if (rc == 0) rc = tb_wasi_ctx_new(cfg, &ctx, &eb);
    if (rc == 0) rc = tb_wasm_store_new(app->engine, &store);
  }
  if (rc != 0) {
    tb__wagi_logf(app, "could not set up the request: %s", ebuf[0] ? ebuf : tb_strerror(rc));
    rc = send_error(&r, 500, "could not set up the request");
    goto out;
  }
  if (app->memory_pages) tb_wasm_store_set_memory_limit(store, app->memory_pages);
  if (app->deadline_ms) {
    watch.store = store;
    watch.deadline_ns = t0 + (int64_t)app->deadline_ms * TB_NS_PER_MS;
    tb__wagi_watch_add(app, &watch);
    watching = true;
  }

  rc = tb_wasi_instantiate(ctx, store, app->module, NULL, &inst, &res->trap, &eb);
  t1 = tb_clock_mono_ns();
  res->instantiate_ns = t1 - t0;
  if (rc == 0) {
    start = tb_wasm_instance_func(inst, "_start");
    rc = start ? tb_wasm_call(store, start, NULL, 0, NULL, 0, &res->trap) : TB_ENOTFOUND;
    res->run_ns = tb_clock_mono_ns() - t1;
  } else if (rc != TB_ETRAP) {
    tb__wagi_logf(app, "could not instantiate: %s", ebuf[0] ? ebuf : tb_strerror(rc));
    if (watching) tb__wagi_watch_remove(app, &watch);
    watching = false;
    rc = send_error(&r, 500, "could not instantiate the app");
    goto out;
  }
  if (watching) fired = tb__wagi_watch_remove(app, &watch);
  watching = false;

  if (rc == TB_ETRAP && res->trap.kind == TB_WASM_TRAP_EXIT) {
    res->exit_code = res->trap.exit_code;
    res->trap.kind = TB_WASM_TRAP_NONE;
    rc = 0;
  }
  if (r.io_err) { /* the client is gone: nothing more can be sent */
    res->truncated = res->head_sent;
    rc = r.io_err;
    goto out;
  }
  if (rc == TB_ETRAP) {
    res->timed_out = fired && res->trap.kind == TB_WASM_TRAP_INTERRUPTED;
    log_trap(app, &res->trap, res->timed_out);
    if (r.head_done) {
      res->truncated = true;
      snprintf(res->error, sizeof res->error, "%s after the head was sent",
               res->timed_out ? "deadline passed" : "trap");
      goto out;
    }
    rc = send_error(&r, 500, res->timed_out ? "the request's deadline passed" : "the app trapped");
    goto out;
  }
  if (rc != 0) { /* no _start: check_command makes this unreachable */
    rc = send_error(&r, 500, "the app has no _start");
    goto out;
  }
  if (r.head_done) {
    if (res->exit_code != 0) tb__wagi_logf(app, "exited with code %d after its response head", res->exit_code);
    goto out;
  }
  if (res->exit_code != 0) {
    tb__wagi_logf(app, "exited with code %d before its response head", res->exit_code);
    snprintf(res->error, sizeof res->error, "the app exited with code %d", res->exit_code);
    rc = send_error(&r, 500, res->error);
    goto out;
  }
  if (!r.malformed) set_error(&r, "%s", "malformed CGI response: no blank line ends the header block");
  tb__wagi_logf(app, "%s", res->error);
  rc = send_error(&r, 502, res->error);
out:
  if (watching) tb__wagi_watch_remove(app, &watch);
  tb_wasm_store_free(store);
  tb_wasi_ctx_free(ctx);
  tb_wasi_config_free(cfg);
  tb_free(r.hdr);
  return rc;
}
