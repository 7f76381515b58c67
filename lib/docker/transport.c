/*
 * transport.c — one HTTP request to the Docker daemon over its unix socket, with
 * libcurl, and the translation of whatever goes wrong into a TB_E* code and a sentence.
 *
 * Every call of the component goes through tb__docker_do. The handle's easy handle is
 * reset and re-armed for each request, which keeps its connection (and the daemon's
 * keep-alive) between calls. Non-2xx answers are always buffered (bounded) so their
 * "message" can go into the sentence; 2xx answers go to the request's sink or buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "docker_int.h"
#include "tb/alloc.h"

typedef struct xfer {
  tb_docker_t *d;
  tb__docker_req_t *r;
  tb_buf_t err_answer; /* a non-2xx answer, kept for its message */
  int sink_rc;         /* the sink's or the buffer's error, which curl cannot carry */
  tb_errbuf_t *eb;
  int upload_errno;
} xfer_t;

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud) {
  xfer_t *x = ud;
  size_t n = size * nmemb;
  long status = 0;
  tb_curl.curl_easy_getinfo(x->d->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    /* Keep what fits of an error answer; the rest is not worth failing over. */
    size_t room = x->err_answer.max - x->err_answer.len;
    tb_buf_append(&x->err_answer, p, n < room ? n : room);
    return n;
  }
  if (x->r->sink) {
    int rc = x->r->sink(x->r->sink_ud, (const uint8_t *)p, n, x->eb);
    if (rc) {
      x->sink_rc = rc;
      return 0; /* CURLE_WRITE_ERROR */
    }
    return n;
  }
  if (x->r->answer) {
    int rc = tb_buf_append(x->r->answer, p, n);
    if (rc) {
      x->sink_rc = rc == TB_ETOOBIG ? tb_errf(x->eb, rc, "the Docker daemon's answer to the request to %s is larger "
                                                          "than %zu bytes", x->r->what, x->r->answer->max)
                                    : tb_errf(x->eb, rc, "out of memory reading the Docker daemon's answer");
      return 0;
    }
  }
  return n;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *ud) {
  xfer_t *x = ud;
  size_t n = fread(p, 1, size * nmemb, x->r->upload);
  if (n == 0 && ferror(x->r->upload)) {
    x->upload_errno = errno ? errno : EIO;
    return CURL_READFUNC_ABORT;
  }
  return n;
}

/* Called by curl about once a second even when nothing moves: the cancellation point. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  xfer_t *x = ud;
  return atomic_load(&x->d->cancelled) ? 1 : 0;
}

void tb__docker_message(const tb_buf_t *answer, char *out, size_t cap) {
  out[0] = '\0';
  if (answer->len == 0) return;
  json_t *j = json_loadb((const char *)answer->data, answer->len, JSON_DECODE_ANY, NULL);
  const char *m = NULL;
  if (j && json_is_object(j)) m = json_string_value(json_object_get(j, "message"));
  if (m) {
    snprintf(out, cap, "%s", m);
  } else { /* plain text (some 400s are), trimmed */
    size_t n = answer->len < cap - 1 ? answer->len : cap - 1;
    memcpy(out, answer->data, n);
    out[n] = '\0';
  }
  json_decref(j);
  size_t n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '.')) out[--n] = '\0';
}

static int status_error(long status) {
  switch (status) {
  case 400: return TB_EINVAL;
  case 401:
  case 403: return TB_EDENIED;
  case 404: return TB_ENOTFOUND;
  case 409: return TB_ECONFLICT;
  default: return TB_EIO;
  }
}

/* A failure to reach the daemon at all: the sentence names the socket. */
static int connect_error(tb_docker_t *d, long os_errno, tb_errbuf_t *eb) {
  switch (os_errno) {
  case ENOENT:
    return tb_errf(eb, TB_ENOENT, "no Docker daemon answers at %s (no such socket); is dockerd running?", d->socket);
  case ECONNREFUSED:
    return tb_errf(eb, TB_ECONNREFUSED, "no Docker daemon answers at %s (connection refused); is dockerd running?",
                   d->socket);
  case EACCES:
  case EPERM:
    return tb_errf(eb, TB_EACCES,
                   "cannot connect to the Docker daemon at %s: permission denied (the user needs access to the "
                   "socket, for instance through the docker group)", d->socket);
  case 0:
    return tb_errf(eb, TB_ECONNREFUSED, "cannot connect to the Docker daemon at %s; is dockerd running?", d->socket);
  default:
    return tb_errf(eb, tb_err_from_errno((int)os_errno), "cannot connect to the Docker daemon at %s: %s", d->socket,
                   tb_strerror(tb_err_from_errno((int)os_errno)));
  }
}

/* Keeps the two headers the client reads: Api-Version (negotiation from a ping) and Server. */
static size_t on_header(char *line, size_t size, size_t n, void *ud) {
  tb__docker_req_t *r = ud;
  size_t len = size * n, k;
  static const struct { const char *name; size_t off, cap; } keep[] = {
      {"Api-Version:", offsetof(tb__docker_req_t, api_version), sizeof ((tb__docker_req_t *)0)->api_version},
      {"Server:", offsetof(tb__docker_req_t, server), sizeof ((tb__docker_req_t *)0)->server},
  };
  for (k = 0; k < sizeof keep / sizeof keep[0]; k++) {
    size_t nl = strlen(keep[k].name);
    if (len <= nl || strncasecmp(line, keep[k].name, nl) != 0) continue;
    const char *v = line + nl;
    size_t vl = len - nl;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
    char *dst = (char *)r + keep[k].off;
    snprintf(dst, keep[k].cap, "%.*s", (int)vl, v);
  }
  return len;
}

int tb__docker_do(tb_docker_t *d, tb__docker_req_t *r, tb_errbuf_t *eb) {
  CURL *c = d->curl;
  struct curl_slist *headers = NULL, *h;
  tb_buf_t url;
  xfer_t x = {.d = d, .r = r, .eb = eb};
  int rc = 0;
  tb_buf_init(&url, 8192);
  tb_buf_init(&x.err_answer, 16384);
  r->status = 0;

  if (atomic_load(&d->cancelled)) {
    rc = tb_errf(eb, TB_ECANCELED, "the request to %s was cancelled", r->what);
    goto out;
  }
  if ((rc = tb_buf_puts(&url, "http://docker")) != 0 || (rc = tb_buf_puts(&url, r->path)) != 0) {
    rc = tb_errf(eb, rc, "the request path for %s is too long", r->what);
    goto out;
  }
  tb_curl.curl_easy_reset(c);
  tb_curl.curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
  tb_curl.curl_easy_setopt(c, CURLOPT_URL, tb_buf_cstr(&url));
  tb_curl.curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
  tb_curl.curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  tb_curl.curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  tb_curl.curl_easy_setopt(c, CURLOPT_TIMEOUT, r->timeout_s);
  tb_curl.curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  tb_curl.curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  tb_curl.curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  r->api_version[0] = r->server[0] = '\0';
  tb_curl.curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  tb_curl.curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  tb_curl.curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  tb_curl.curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
  /* No "Expect: 100-continue" round trip before uploads: the daemon reads what it gets. */
  if ((h = tb_curl.curl_slist_append(headers, "Expect:")) == NULL) goto nomem;
  headers = h;
  if (r->content_type) {
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", r->content_type);
    if ((h = tb_curl.curl_slist_append(headers, ct)) == NULL) goto nomem;
    headers = h;
  }
  tb_curl.curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (r->upload) {
    tb_curl.curl_easy_setopt(c, CURLOPT_POST, 1L);
    tb_curl.curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    tb_curl.curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    tb_curl.curl_easy_setopt(c, CURLOPT_READDATA, &x);
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->upload_len);
  } else if (r->body) {
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
  } else if (strcmp(r->method, "POST") == 0) {
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    tb_curl.curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
  }

  CURLcode cc = tb_curl.curl_easy_perform(c);
  tb_curl.curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  if (cc != CURLE_OK) {
    long os_errno = 0;
    tb_curl.curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
    if (x.sink_rc) {
      rc = x.sink_rc; /* the sentence is the sink's */
    } else if (x.upload_errno) {
      rc = tb_errf(eb, tb_err_from_errno(x.upload_errno), "reading the body to %s: %s", r->what,
                   tb_strerror(tb_err_from_errno(x.upload_errno)));
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
      rc = tb_errf(eb, TB_ECANCELED, "the request to %s was cancelled", r->what);
    } else if (cc == CURLE_COULDNT_CONNECT) {
      rc = connect_error(d, os_errno, eb);
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
      rc = tb_errf(eb, TB_ETIMEDOUT, "the Docker daemon at %s did not finish the request to %s within %ld s",
                   d->socket, r->what, r->timeout_s);
    } else if (cc == CURLE_GOT_NOTHING || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
               cc == CURLE_PARTIAL_FILE) {
      rc = tb_errf(eb, TB_ECONNRESET, "the Docker daemon at %s closed the connection during the request to %s (%s)",
                   d->socket, r->what, tb_curl.curl_easy_strerror(cc));
    } else {
      rc = tb_errf(eb, TB_EIO, "talking to the Docker daemon at %s to %s failed: %s", d->socket, r->what,
                   tb_curl.curl_easy_strerror(cc));
    }
    goto out;
  }
  if ((r->status >= 200 && r->status <= 299) || r->status == 304) goto out;
  char msg[1024];
  tb__docker_message(&x.err_answer, msg, sizeof msg);
  rc = tb_errf(eb, status_error(r->status), "the Docker daemon %s to %s: %s",
               r->status >= 500 ? "failed" : "refused", r->what, msg[0] ? msg : "(no reason given)");
  goto out;

nomem:
  rc = tb_errf(eb, TB_ENOMEM, "out of memory preparing the request to %s", r->what);
out:
  tb_curl.curl_slist_free_all(headers);
  tb_buf_deinit(&url);
  tb_buf_deinit(&x.err_answer);
  return rc;
}

int tb__docker_path(const tb_docker_t *d, tb_buf_t *out, const char *fmt, ...) {
  int rc = tb_buf_printf(out, "/v%s", d->api);
  if (rc) return rc;
  va_list ap;
  va_start(ap, fmt);
  rc = tb_buf_vprintf(out, fmt, ap);
  va_end(ap);
  return rc;
}

int tb__docker_escape(tb_buf_t *out, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int rc;
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
        *p == '.' || *p == '_' || *p == '~') {
      rc = tb_buf_putc(out, *p);
    } else {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      rc = tb_buf_append(out, e, 3);
    }
    if (rc) return rc;
  }
  return 0;
}

/* ---- JSON message streams ---- */

void tb__docker_jsonstream_init(tb__docker_jsonstream_t *s, int (*on_message)(void *, json_t *), void *ud) {
  memset(s, 0, sizeof *s);
  tb_buf_init(&s->line, TB__DOCKER_MAX_MESSAGE);
  s->on_message = on_message;
  s->ud = ud;
}

void tb__docker_jsonstream_deinit(tb__docker_jsonstream_t *s) { tb_buf_deinit(&s->line); }

static void copy_trimmed(char *out, size_t cap, const char *s) {
  snprintf(out, cap, "%s", s);
  size_t n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = '\0';
}

static int one_message(tb__docker_jsonstream_t *s, const char *p, size_t n, tb_errbuf_t *eb) {
  while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ')) n--;
  if (n == 0) return 0;
  json_t *m = json_loadb(p, n, 0, NULL);
  if (m == NULL || !json_is_object(m)) {
    json_decref(m);
    return tb_errf(eb, TB_EPARSE, "the Docker daemon sent a progress message that is not a JSON object: %.*s",
                   (int)(n < 200 ? n : 200), p);
  }
  const char *err = json_string_value(json_object_get(json_object_get(m, "errorDetail"), "message"));
  if (err == NULL) err = json_string_value(json_object_get(m, "error"));
  if (err && s->error[0] == '\0') copy_trimmed(s->error, sizeof s->error, err);
  const char *text = json_string_value(json_object_get(m, "stream"));
  if (text == NULL) text = json_string_value(json_object_get(m, "status"));
  if (text) copy_trimmed(s->last, sizeof s->last, text);
  int rc = s->on_message ? s->on_message(s->ud, m) : 0;
  json_decref(m);
  if (rc) tb_errf(eb, rc, "reading the Docker daemon's progress messages: %s", tb_strerror(rc));
  return rc;
}

int tb__docker_jsonstream_sink(void *ud, const uint8_t *p, size_t n, tb_errbuf_t *eb) {
  tb__docker_jsonstream_t *s = ud;
  while (n > 0) {
    const uint8_t *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (s->line.len == 0 && nl) { /* a whole line in the input: no copy */
      int rc = one_message(s, (const char *)p, take, eb);
      if (rc) return rc;
    } else {
      int rc = tb_buf_append(&s->line, p, take);
      if (rc) return tb_errf(eb, rc, "a progress message from the Docker daemon is longer than %zu bytes", s->line.max);
      if (nl) {
        rc = one_message(s, (const char *)s->line.data, s->line.len, eb);
        tb_buf_reset(&s->line);
        if (rc) return rc;
      }
    }
    if (!nl) break;
    p += take + 1;
    n -= take + 1;
  }
  return 0;
}

int tb__docker_jsonstream_finish(tb__docker_jsonstream_t *s, tb_errbuf_t *eb) {
  int rc = 0;
  if (s->line.len) rc = one_message(s, (const char *)s->line.data, s->line.len, eb);
  tb_buf_reset(&s->line);
  return rc;
}
