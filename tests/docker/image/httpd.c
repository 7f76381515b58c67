/*
 * httpd.c — the tiny HTTP server inside the Docker test image.
 *
 * Built with `gcc -static` so that an image holding this one file runs anywhere (no libc
 * in the image). It serves one connection at a time, one request per connection
 * (Connection: close), as PID 1 of its container, on port $PORT (8080 by default):
 *   GET  /            "hello from a container\n"
 *   POST /echo        the request body back, streamed as it arrives (Content-Length or
 *                     chunked in; the same framing out)
 *   GET  /env         the environment, one VAR=value per line
 *   GET  /alloc?mb=N  allocates and touches N MiB, then answers (the memory-limit test:
 *                     over the container's limit the kernel kills this process, PID 1)
 * Each request line goes to stdout and a short note to stderr, unbuffered, so tests can
 * check that the daemon's multiplexed log stream keeps the two apart. Serving in one
 * process (no fork) matters for /alloc: the OOM killer must hit PID 1 so the container
 * itself dies with OOMKilled set. SIGTERM ends it at once (PID 1 has no default action).
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static void say(int fd, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) write_all(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* A connection's read side: bytes already received past the head sit in buf[pos..len). */
typedef struct conn {
  int fd;
  char buf[65536];
  size_t pos, len;
} conn_t;

static int fill(conn_t *c) {
  if (c->pos < c->len) return 0;
  ssize_t r = read(c->fd, c->buf, sizeof c->buf);
  if (r <= 0) return -1;
  c->pos = 0;
  c->len = (size_t)r;
  return 0;
}

/* Reads one CRLF- (or LF-) terminated line into out, without the terminator. */
static int read_line(conn_t *c, char *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    if (fill(c) != 0) return -1;
    char ch = c->buf[c->pos++];
    if (ch == '\n') break;
    if (n + 1 < cap) out[n++] = ch;
  }
  if (n > 0 && out[n - 1] == '\r') n--;
  out[n] = '\0';
  return 0;
}

static void respond(int fd, int status, const char *reason, const char *body, size_t len) {
  say(fd, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
      status, reason, len);
  write_all(fd, body, len);
}

/* POST /echo: streams the body back with the framing it came with. */
static void echo(conn_t *c, long long clen, int chunked) {
  if (chunked) {
    say(c->fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
               "Connection: close\r\n\r\n");
    char line[128];
    for (;;) {
      if (read_line(c, line, sizeof line) != 0) return;
      unsigned long long size = strtoull(line, NULL, 16);
      if (size == 0) break;
      say(c->fd, "%llx\r\n", size);
      while (size > 0) {
        if (fill(c) != 0) return;
        size_t n = c->len - c->pos;
        if (n > size) n = (size_t)size;
        if (write_all(c->fd, c->buf + c->pos, n) != 0) return;
        c->pos += n;
        size -= n;
      }
      if (read_line(c, line, sizeof line) != 0) return; /* the CRLF after the data */
      say(c->fd, "\r\n");
    }
    do { /* trailers, up to the empty line */
      if (read_line(c, line, sizeof line) != 0) return;
    } while (line[0] != '\0');
    say(c->fd, "0\r\n\r\n");
    return;
  }
  if (clen < 0) clen = 0;
  say(c->fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %lld\r\n"
             "Connection: close\r\n\r\n", clen);
  while (clen > 0) {
    if (fill(c) != 0) return;
    size_t n = c->len - c->pos;
    if ((long long)n > clen) n = (size_t)clen;
    if (write_all(c->fd, c->buf + c->pos, n) != 0) return;
    c->pos += n;
    clen -= (long long)n;
  }
}

static void serve(int fd) {
  static conn_t c;
  c.fd = fd;
  c.pos = c.len = 0;
  char line[4096], method[16] = "", target[2048] = "";
  if (read_line(&c, line, sizeof line) != 0) return;
  say(1, "%s\n", line);
  if (sscanf(line, "%15s %2047s", method, target) != 2) {
    respond(fd, 400, "Bad Request", "bad request line\n", 17);
    return;
  }
  long long clen = -1;
  int chunked = 0;
  for (;;) {
    if (read_line(&c, line, sizeof line) != 0) return;
    if (line[0] == '\0') break;
    if (strncasecmp(line, "Content-Length:", 15) == 0) clen = atoll(line + 15);
    if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line + 18, "chunked")) chunked = 1;
  }
  int status = 200;
  if (strcmp(method, "GET") == 0 && strcmp(target, "/") == 0) {
    respond(fd, 200, "OK", "hello from a container\n", 23);
  } else if (strcmp(method, "POST") == 0 && strcmp(target, "/echo") == 0) {
    echo(&c, clen, chunked);
  } else if (strcmp(method, "GET") == 0 && strcmp(target, "/env") == 0) {
    static char body[65536];
    size_t n = 0;
    for (char **e = environ; *e && n < sizeof body; e++) {
      int w = snprintf(body + n, sizeof body - n, "%s\n", *e);
      if (w < 0 || (size_t)w >= sizeof body - n) break;
      n += (size_t)w;
    }
    respond(fd, 200, "OK", body, n);
  } else if (strcmp(method, "GET") == 0 && strncmp(target, "/alloc?mb=", 10) == 0) {
    long mb = atol(target + 10);
    size_t size = (size_t)(mb > 0 ? mb : 0) << 20;
    say(2, "httpd: allocating %ld MiB\n", mb);
    char *p = malloc(size ? size : 1);
    if (p == NULL) {
      status = 507;
      respond(fd, 507, "Insufficient Storage", "malloc failed\n", 14);
    } else {
      for (size_t i = 0; i < size; i += 4096) p[i] = (char)i; /* make every page resident */
      char msg[64];
      int n = snprintf(msg, sizeof msg, "allocated %ld MiB\n", mb);
      respond(fd, 200, "OK", msg, (size_t)n);
      free(p);
    }
  } else {
    status = 404;
    respond(fd, 404, "Not Found", "not found\n", 10);
  }
  say(2, "httpd: %s %s -> %d\n", method, target, status);
}

int main(void) {
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGPIPE, SIG_IGN);
  const char *port_s = getenv("PORT");
  int port = port_s && *port_s ? atoi(port_s) : 8080;
  int ls = socket(AF_INET6, SOCK_STREAM, 0);
  int v6 = 1;
  if (ls < 0) { /* no IPv6 in this network namespace: IPv4 only */
    ls = socket(AF_INET, SOCK_STREAM, 0);
    v6 = 0;
  }
  int one = 1, zero = 0;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
    rc = bind(ls, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = INADDR_ANY};
    rc = bind(ls, (struct sockaddr *)&a, sizeof a);
  }
  if (rc != 0 || listen(ls, 64) != 0) {
    say(2, "httpd: cannot listen on port %d\n", port);
    return 1;
  }
  say(2, "httpd: listening on port %d\n", port);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) continue;
    serve(fd);
    shutdown(fd, SHUT_WR);
    close(fd);
  }
}
