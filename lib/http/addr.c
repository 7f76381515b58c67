/*
 * addr.c — addresses and URLs as the HTTP layer accepts them (include/tb/http.h).
 *
 * Tabbify dials IPv6 ULAs ("[fd5a:1f02:...::1]:8730"), link-local addresses with a zone
 * ("[fe80::1%eth0]:8730"), loopback and unix sockets, so those are what this parses;
 * it resolves nothing (the client does, for names) and does no I/O.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"
#include "tb/http.h"

static int parse_port(const char *s, size_t n, uint16_t *out) {
  if (n == 0 || n > 5) return -1;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > 65535) return -1;
  *out = (uint16_t)v;
  return 0;
}

/* Copies the host, turning RFC 6874's "%25" zone separator into "%". */
static int copy_host(char *dst, size_t cap, const char *s, size_t n) {
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (j + 1 >= cap) return -1;
    dst[j++] = s[i];
    if (s[i] == '%' && i + 2 < n && s[i + 1] == '2' && s[i + 2] == '5') i += 2;
  }
  dst[j] = '\0';
  return j ? 0 : -1;
}

/* Parses `n` bytes of "host[:port]" or "[v6][:port]". */
static int parse_hostport(const char *s, size_t n, int default_port, tb_http_addr_t *out, bool *bracketed,
                          bool *explicit_port, tb_errbuf_t *eb) {
  const char *host = s, *port = NULL;
  size_t host_len = n, port_len = 0;
  *bracketed = false;
  if (n > 0 && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (close == NULL) return tb_errf(eb, TB_EINVAL, "address \"%.*s\": missing ']'", (int)n, s);
    host = s + 1;
    host_len = (size_t)(close - host);
    size_t rest = n - (size_t)(close + 1 - s);
    if (rest > 0) {
      if (close[1] != ':') return tb_errf(eb, TB_EINVAL, "address \"%.*s\": expected ':' after ']'", (int)n, s);
      port = close + 2;
      port_len = rest - 1;
    }
    *bracketed = true;
  } else {
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
      if (s[i] == ':') {
        if (colon) return tb_errf(eb, TB_EINVAL, "address \"%.*s\": write IPv6 addresses in brackets, [::1]:8090", (int)n, s);
        colon = s + i;
      }
    if (colon) {
      host_len = (size_t)(colon - s);
      port = colon + 1;
      port_len = n - host_len - 1;
    }
  }
  if (host_len == 0) return tb_errf(eb, TB_EINVAL, "address \"%.*s\" has no host", (int)n, s);
  out->kind = TB_HTTP_ADDR_TCP;
  if (copy_host(out->host, sizeof out->host, host, host_len) != 0)
    return tb_errf(eb, TB_EINVAL, "address \"%.*s\": host is too long", (int)n, s);
  *explicit_port = port != NULL;
  if (port) {
    if (parse_port(port, port_len, &out->port) != 0)
      return tb_errf(eb, TB_EINVAL, "address \"%.*s\": port must be a number from 0 to 65535", (int)n, s);
  } else if (default_port > 0) {
    out->port = (uint16_t)default_port;
  } else {
    return tb_errf(eb, TB_EINVAL, "address \"%.*s\" has no port", (int)n, s);
  }
  for (const char *h = out->host; *h; h++)
    if ((unsigned char)*h <= ' ' || *h == '/' || *h == '@' || *h == '[' || *h == ']')
      return tb_errf(eb, TB_EINVAL, "address \"%.*s\": invalid character in host", (int)n, s);
  return 0;
}

int tb_http_addr_parse(const char *text, int default_port, tb_http_addr_t *out, tb_errbuf_t *eb) {
  memset(out, 0, sizeof *out);
  if (strncmp(text, "unix:", 5) == 0) {
    size_t n = strlen(text + 5);
    if (n == 0) return tb_errf(eb, TB_EINVAL, "address \"%s\" has no socket path", text);
    if (n >= sizeof out->path)
      return tb_errf(eb, TB_EINVAL, "unix socket path is longer than %zu bytes", sizeof out->path - 1);
    out->kind = TB_HTTP_ADDR_UNIX;
    memcpy(out->path, text + 5, n + 1);
    return 0;
  }
  bool bracketed, explicit_port;
  return parse_hostport(text, strlen(text), default_port, out, &bracketed, &explicit_port, eb);
}

int tb_http_url_parse(const char *url, tb_http_url_t *out, tb_errbuf_t *eb) {
  memset(out, 0, sizeof *out);
  if (strncasecmp(url, "http://", 7) != 0) {
    if (strncasecmp(url, "https://", 8) == 0)
      return tb_errf(eb, TB_EINVAL, "URL \"%s\": https is not supported here; TLS ends in front of the node", url);
    return tb_errf(eb, TB_EINVAL, "URL \"%s\" must start with http://", url);
  }
  const char *auth = url + 7;
  size_t alen = strcspn(auth, "/?#");
  if (memchr(auth, '@', alen)) return tb_errf(eb, TB_EINVAL, "URL \"%s\": user information is not supported", url);
  bool bracketed, explicit_port;
  int rc = parse_hostport(auth, alen, 80, &out->addr, &bracketed, &explicit_port, eb);
  if (rc != 0) return rc;
  const char *rest = auth + alen;
  if (*rest == '?') return tb_errf(eb, TB_EINVAL, "URL \"%s\": a query needs a path before it", url);
  if (*rest == '\0' || *rest == '#') {
    out->target = "/";
    out->target_len = 1;
  } else {
    out->target = rest;
    out->target_len = strcspn(rest, "#");
  }
  for (size_t i = 0; i < out->target_len; i++)
    if ((unsigned char)out->target[i] <= ' ' || out->target[i] == 0x7f)
      return tb_errf(eb, TB_EINVAL, "URL \"%s\": spaces and control characters must be percent-encoded", url);
  /* Host header: the host as written, without a zone (RFC 6874 §4), and the port if given. */
  char host[256];
  snprintf(host, sizeof host, "%s", out->addr.host);
  char *zone = strchr(host, '%');
  if (zone) *zone = '\0';
  if (explicit_port)
    snprintf(out->authority, sizeof out->authority, bracketed ? "[%s]:%u" : "%s:%u", host, out->addr.port);
  else
    snprintf(out->authority, sizeof out->authority, bracketed ? "[%s]" : "%s", host);
  return 0;
}

/* Socket addresses, for the server and client (http_int.h) ------------------------------ */


void tb__http_ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO)) {
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

int tb__http_sockaddr(const tb_http_addr_t *a, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)ss) == 0) return 0;
  if (strchr(a->host, ':') && uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return TB_EINVAL;
}

void tb__http_format_sockaddr(const struct sockaddr *sa, char *out, size_t size) {
  char ip[64] = "?";
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    uv_ip4_name(in, ip, sizeof ip);
    snprintf(out, size, "%s:%u", ip, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(in6, ip, sizeof ip);
    snprintf(out, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(out, size, "unix");
  }
}
