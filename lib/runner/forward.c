/*
 * forward.c — serves a request by forwarding it over HTTP/1.1 to the app's own server
 * (a container, later a microVM), from the worker thread that took it.
 *
 * The runner's front (runner.c, exchange.c) is the same for every runtime: the loop
 * accepts, a worker serves through the tb_wagi_io_t callbacks with backpressure both
 * ways. A forwarding backend plugs in there and does blocking I/O on its own socket:
 * the request head is serialised with lib/http's protocol core, the body is pumped from
 * io->read_body, and the response is parsed with tb_http_parser and handed to
 * io->write_head/write_body as it arrives. Sending and receiving interleave (poll on
 * both directions), so an app that answers while it still reads — an echo — never
 * deadlocks against full socket buffers.
 *
 * Each worker keeps its last connection to the upstream open (keep-alive) in
 * thread-local state tagged with the forwarder's generation, so a new forwarder (a new
 * container) never inherits a socket to an old one. A request that fails on a reused
 * connection before any response byte and before any body byte was taken from the
 * client is retried once on a new connection.
 *
 * Statuses it chooses: 502 when the upstream cannot be reached or breaks off before its
 * response head, 504 when it stays silent for the request timeout. After the head was
 * sent a failure truncates the response (res->truncated: the front aborts the
 * connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner_int.h"
#include "tb/alloc.h"
#include "tb/clock.h"

#define FWD_IO_CHUNK ((size_t)64 << 10)
#define FWD_MAX_HEADERS 64

struct tb__fwd {
  struct sockaddr_storage sa;
  socklen_t salen;
  char address[128];
  uint32_t timeout_ms;
  uint64_t gen;
};

static _Atomic uint64_t fwd_generation = 1;
static _Thread_local int tl_fd = -1;
static _Thread_local uint64_t tl_gen;

int tb__fwd_new(const char *address, uint32_t timeout_ms, tb__fwd_t **out, tb_errbuf_t *eb) {
  tb_http_addr_t a;
  int rc = tb_http_addr_parse(address, 0, &a, eb);
  if (rc != 0) return rc;
  if (a.kind != TB_HTTP_ADDR_TCP) return tb_errf(eb, TB_EINVAL, "the app's address %s is not host:port", address);
  tb__fwd_t *f = tb_calloc(1, sizeof *f);
  if (!f) return TB_ENOMEM;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&f->sa;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&f->sa;
  if (uv_ip4_addr(a.host, a.port, s4) == 0) f->salen = sizeof *s4;
  else if (uv_ip6_addr(a.host, a.port, s6) == 0) f->salen = sizeof *s6;
  else {
    tb_free(f);
    return tb_errf(eb, TB_EINVAL, "the app's address %s is not a numeric IP and port", address);
  }
  snprintf(f->address, sizeof f->address, "%s", address);
  f->timeout_ms = timeout_ms ? timeout_ms : 30000;
  f->gen = fwd_generation++;
  *out = f;
  return 0;
}

void tb__fwd_free(tb__fwd_t *f) { tb_free(f); }

/* ---- connections ---- */

static bool still_open(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int dial(tb__fwd_t *f, int64_t deadline_ns, bool *reused) {
  if (tl_fd >= 0 && tl_gen == f->gen && still_open(tl_fd)) {
    *reused = true;
    int fd = tl_fd;
    tl_fd = -1;
    return fd;
  }
  if (tl_fd >= 0) close(tl_fd), tl_fd = -1;
  *reused = false;
  int fd = socket(f->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&f->sa, f->salen) != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int64_t left = (deadline_ns - tb_clock_mono_ns()) / TB_NS_PER_MS;
  int n = poll(&p, 1, left > 0 ? (int)left : 0);
  int err = 0;
  socklen_t el = sizeof err;
  if (n <= 0) err = n == 0 ? ETIMEDOUT : errno;
  else getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err) {
    close(fd);
    return -err;
  }
  return fd;
}

/* ---- one exchange ---- */

typedef struct fwd_x {
  const tb_wagi_io_t *io;
  tb_wagi_result_t *res;
  tb_wagi_header_t hs[FWD_MAX_HEADERS];
  bool head_seen, ended, keep_alive;
  int io_err;
} fwd_x_t;

static int on_head(void *ud, const tb_http_head_t *h) {
  fwd_x_t *x = ud;
  size_t n = 0;
  for (size_t i = 0; i < h->nheaders && n < FWD_MAX_HEADERS; i++)
    x->hs[n++] = (tb_wagi_header_t){h->headers[i].name, h->headers[i].value};
  x->head_seen = true;
  x->keep_alive = h->keep_alive;
  x->res->status = h->status;
  int rc = x->io->write_head(x->io->arg, h->status, h->reason, x->hs, n);
  if (rc < 0) return x->io_err = rc;
  x->res->head_sent = true;
  return 0;
}

static int on_data(void *ud, const uint8_t *data, size_t len) {
  fwd_x_t *x = ud;
  int rc = x->io->write_body(x->io->arg, data, len);
  if (rc < 0) return x->io_err = rc;
  x->res->body_out += len;
  return 0;
}

static int on_end(void *ud) {
  ((fwd_x_t *)ud)->ended = true;
  return 0;
}

/* The library's own answer when nothing was sent yet: a status and one line of text. */
static int answer(const tb_wagi_io_t *io, tb_wagi_result_t *res, int status, const char *fmt, const char *a,
                  const char *b) {
  char line[300];
  snprintf(res->error, sizeof res->error, fmt, a, b);
  int n = snprintf(line, sizeof line, "%s\n", res->error);
  tb_wagi_header_t ct = {"Content-Type", "text/plain; charset=utf-8"};
  res->status = status;
  int rc = io->write_head(io->arg, status, NULL, &ct, 1);
  if (rc == 0) res->head_sent = true, rc = io->write_body(io->arg, (const uint8_t *)line, (size_t)n);
  return rc;
}

/*
 * One attempt on one connection. Returns 0 when the response went through; a negative
 * code otherwise, with *retryable set when nothing reached either side yet.
 */
static int attempt(tb__fwd_t *f, int fd, const tb_buf_t *head, const uint8_t *first, size_t first_len, int64_t clen,
                   const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res, int64_t timeout_ns,
                   bool *retryable, bool *reusable) {
  fwd_x_t x = {.io = io, .res = res};
  tb_http_parser_t *p = NULL;
  tb_http_parser_cbs_t cbs = {on_head, on_data, on_end};
  tb_http_limits_t lim = {.max_body_bytes = UINT64_MAX};
  int rc = tb_http_parser_new(TB_HTTP_RESPONSE, &lim, &cbs, &x, &p);
  if (rc != 0) return rc;
  if (strcmp(req->method, "HEAD") == 0) tb_http_parser_set_skip_body(p, true);
  /* Outgoing bytes: the head, then body pieces as they come (framed when chunked). */
  static _Thread_local uint8_t out[FWD_IO_CHUNK + 64], in[FWD_IO_CHUNK];
  size_t out_len = 0, out_off = 0;
  const uint8_t *pend = head->data;
  size_t pend_len = head->len;
  bool chunked = clen < 0, body_done = clen == 0, last_chunk_sent = !chunked;
  bool first_used = false, got_byte = false;
  int64_t deadline = tb_clock_mono_ns() + timeout_ns;
  *retryable = true;
  for (;;) {
    /* Refill the outgoing buffer: the head first, then the body. */
    if (out_off == out_len) {
      out_off = out_len = 0;
      if (pend_len) {
        size_t n = pend_len < sizeof out ? pend_len : sizeof out;
        memcpy(out, pend, n);
        pend += n, pend_len -= n, out_len = n;
      } else if (!body_done && !x.ended) {
        int64_t n;
        uint8_t *dst = chunked ? out + TB_HTTP_CHUNK_PREFIX_MAX : out;
        if (!first_used && first_len) {
          memcpy(dst, first, first_len);
          n = (int64_t)first_len;
          first_used = true;
        } else {
          *retryable = false; /* the client's bytes are being consumed: no second attempt */
          n = io->read_body(io->arg, dst, FWD_IO_CHUNK);
        }
        if (n < 0) {
          rc = (int)n;
          goto out;
        }
        res->body_in += (uint64_t)n;
        if (n == 0) {
          body_done = true;
        } else if (chunked) {
          char pre[TB_HTTP_CHUNK_PREFIX_MAX];
          size_t pl = tb_http_chunk_prefix(pre, (size_t)n);
          memcpy(out + TB_HTTP_CHUNK_PREFIX_MAX - pl, pre, pl); /* the prefix right before the data */
          out_off = TB_HTTP_CHUNK_PREFIX_MAX - pl;
          out_len = TB_HTTP_CHUNK_PREFIX_MAX + (size_t)n;
          out[out_len++] = '\r', out[out_len++] = '\n';
        } else {
          out_len = (size_t)n;
        }
      }
      if (out_off == out_len && body_done && !last_chunk_sent) {
        memcpy(out, TB_HTTP_CHUNK_LAST, sizeof TB_HTTP_CHUNK_LAST - 1);
        out_len = sizeof TB_HTTP_CHUNK_LAST - 1;
        last_chunk_sent = true;
      }
    }
    bool sending = out_off < out_len;
    if (x.ended) break;
    struct pollfd pf = {.fd = fd, .events = (short)(POLLIN | (sending ? POLLOUT : 0))};
    int64_t left = (deadline - tb_clock_mono_ns()) / TB_NS_PER_MS;
    int n = left > 0 ? poll(&pf, 1, left > 1000 ? 1000 : (int)left) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      if (tb_clock_mono_ns() < deadline) continue;
      rc = TB_ETIMEDOUT;
      goto out;
    }
    if (pf.revents & POLLOUT) {
      ssize_t w = send(fd, out + out_off, out_len - out_off, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) {
        /* The app may have answered and closed early: read what it said before failing. */
        if (!(pf.revents & POLLIN)) {
          rc = -errno;
          goto out;
        }
        body_done = last_chunk_sent = true;
        out_off = out_len = pend_len = 0;
      } else if (w > 0) {
        out_off += (size_t)w;
        deadline = tb_clock_mono_ns() + timeout_ns;
      }
    }
    if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = recv(fd, in, sizeof in, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        int e = r < 0 ? -errno : 0;
        if (tb_http_parser_finish(p) == 0 && x.ended) break; /* close-delimited body */
        rc = e ? e : TB_ECONNRESET;
        goto out;
      }
      got_byte = true;
      *retryable = false;
      deadline = tb_clock_mono_ns() + timeout_ns;
      size_t used = 0;
      rc = tb_http_parser_feed(p, in, (size_t)r, &used);
      if (rc != 0) goto out;
    }
  }
  rc = 0;
  *reusable = x.keep_alive && body_done && last_chunk_sent && out_off == out_len && pend_len == 0;
out:
  if (rc != 0 && x.io_err) rc = x.io_err;
  if (got_byte) *retryable = false;
  if (rc != 0 && rc != x.io_err) {
    if (!x.head_seen) {
      *retryable = *retryable && rc != TB_ETIMEDOUT;
      if (!*retryable) {
        bool late = rc == TB_ETIMEDOUT;
        int arc = answer(io, res, late ? 504 : 502,
                         late ? "the app at %s did not answer within the request timeout%s"
                              : "the app at %s broke off before its response: %s",
                         f->address, late ? "" : tb_strerror(rc));
        rc = arc == 0 ? 0 : arc;
      }
    } else {
      res->truncated = true;
      snprintf(res->error, sizeof res->error, "the app at %s broke off its response: %s", f->address, tb_strerror(rc));
      rc = TB_ETRAP;
    }
  }
  tb_http_parser_free(p);
  return rc;
}

int tb__fwd_serve(tb__fwd_t *f, const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res) {
  memset(res, 0, sizeof *res);
  int64_t t0 = tb_clock_mono_ns(), timeout_ns = (int64_t)f->timeout_ms * TB_NS_PER_MS;
  /* The target: the path as received, and the query. */
  char target[8192];
  int tl = snprintf(target, sizeof target, "%s%s%s", req->path && *req->path ? req->path : "/",
                    req->query && *req->query ? "?" : "", req->query ? req->query : "");
  if (tl >= (int)sizeof target) return answer(io, res, 414, "the request target is too long for %s%s", f->address, "");
  /* A body of unknown length on a method that usually has none: look before choosing. */
  static _Thread_local uint8_t first[FWD_IO_CHUNK];
  size_t first_len = 0;
  int64_t clen = req->content_length;
  if (clen < 0) {
    int64_t n = io->read_body(io->arg, first, sizeof first);
    if (n < 0) return (int)n;
    first_len = (size_t)n;
    if (n == 0) clen = 0;
  }
  tb_http_header_t hs[FWD_MAX_HEADERS];
  size_t nh = 0;
  for (size_t i = 0; i < req->nheaders && nh < FWD_MAX_HEADERS; i++) {
    if (strcasecmp(req->headers[i].name, "Host") == 0) continue; /* the serialiser writes it */
    hs[nh++] = (tb_http_header_t){.name = req->headers[i].name, .value = req->headers[i].value};
  }
  const char *host = req->server_name && *req->server_name ? req->server_name : f->address;
  tb_buf_t head;
  tb_buf_init(&head, (size_t)64 << 10);
  int rc = tb_http_request_head(&head, req->method, target, host, hs, nh, clen, true);
  if (rc != 0) {
    tb_buf_deinit(&head);
    return answer(io, res, 400, "the request cannot be forwarded to %s: %s", f->address, tb_strerror(rc));
  }
  for (int tries = 0;; tries++) {
    bool reused = false, retryable = false, reusable = false;
    int fd = dial(f, tb_clock_mono_ns() + timeout_ns, &reused);
    if (fd < 0) {
      rc = answer(io, res, 502, "the app at %s cannot be reached: %s", f->address, strerror(-fd));
      break;
    }
    rc = attempt(f, fd, &head, first, first_len, clen, req, io, res, timeout_ns, &retryable, &reusable);
    if (rc == 0 && reusable && tl_fd < 0) {
      tl_fd = fd, tl_gen = f->gen; /* kept for this worker's next request */
    } else {
      close(fd);
    }
    if (rc != 0 && reused && retryable && tries == 0) {
      memset(res, 0, sizeof *res);
      continue;
    }
    if (rc != 0 && retryable && !res->head_sent)
      rc = answer(io, res, 502, "the app at %s broke off before its response: %s", f->address, tb_strerror(rc));
    break;
  }
  tb_buf_deinit(&head);
  res->run_ns = tb_clock_mono_ns() - t0;
  return rc;
}
