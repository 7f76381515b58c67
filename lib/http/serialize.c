/*
 * serialize.c — the other half of the protocol core (include/tb/http.h): request and
 * response heads, chunk framing, reason phrases and the JSON error body.
 *
 * The framing decision lives here, not in the server, so that it can be tested on bytes:
 * given the request's facts (HEAD? HTTP/1.0? may the connection persist?) and the body's
 * length (known or not), tb_http_response_head picks Content-Length, chunked, or a body
 * delimited by closing the connection, and says whether the connection survives. Header
 * names and values are checked, so a value taken from a request cannot split a response.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tb/http.h"

const char *tb_http_status_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 300: return "Multiple Choices";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Content";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool valid_name(const char *s) {
  if (s == NULL || *s == '\0') return false;
  for (; *s; s++)
    if (!is_tchar((unsigned char)*s)) return false;
  return true;
}

/* Field values may hold anything visible, blanks and obs-text, never CR, LF or NUL
 * (or another control character). */
static bool valid_value(const char *s) {
  if (s == NULL) return false;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

/* Headers the layer owns: framing and hop-by-hop (RFC 9110 §7.6.1). */
static bool owned_header(const char *name) {
  static const char *const owned[] = {"content-length", "transfer-encoding", "connection", "keep-alive",
                                      "te", "trailer", "upgrade", "proxy-connection"};
  char c0 = (char)(name[0] | 0x20);
  if (c0 != 'c' && c0 != 't' && c0 != 'k' && c0 != 'u' && c0 != 'p') return false; /* most headers */
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
    if (strcasecmp(name, owned[i]) == 0) return true;
  return false;
}

static int check_headers(const tb_http_header_t *h, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!valid_name(h[i].name) || !valid_value(h[i].value)) return TB_EINVAL;
  return 0;
}

/* The Date value changes once a second; each thread keeps the last one it formatted. */
static void http_date(char out[40]) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static _Thread_local time_t last = -1;
  static _Thread_local char text[40];
  time_t now = time(NULL);
  if (now != last) {
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    last = now;
  }
  memcpy(out, text, sizeof text);
}

/* Appends the decimal digits of `v`. */
static int put_int(tb_buf_t *out, long long v) {
  char d[24];
  size_t n = 0;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do d[sizeof d - 1 - n++] = (char)('0' + u % 10); while ((u /= 10) != 0);
  if (v < 0) d[sizeof d - 1 - n++] = '-';
  return tb_buf_append(out, d + sizeof d - n, n);
}

/* "name: value\r\n", without printf's parsing: heads are built once per message. */
static int put_header(tb_buf_t *out, const char *name, const char *value) {
  size_t nl = strlen(name), vl = strlen(value);
  int rc = tb_buf_reserve(out, nl + vl + 4);
  if (rc == 0) rc = tb_buf_append(out, name, nl);
  if (rc == 0) rc = tb_buf_append(out, ": ", 2);
  if (rc == 0) rc = tb_buf_append(out, value, vl);
  if (rc == 0) rc = tb_buf_append(out, "\r\n", 2);
  return rc;
}

int tb_http_response_head(tb_buf_t *out, int status, const char *reason, const tb_http_header_t *headers,
                          size_t nheaders, tb_http_framing_t *f) {
  if (status < 100 || status > 999) return TB_EINVAL;
  if (reason == NULL) reason = tb_http_status_reason(status);
  if (!valid_value(reason) || check_headers(headers, nheaders) != 0) return TB_EINVAL;

  size_t start = out->len;
  int rc = 0;
  bool http10 = f->request_minor == 0;
  f->chunked = false;
  f->close_delimited = false;
  f->no_body = f->head_request || status / 100 == 1 || status == 204 || status == 304;
  if (status / 100 == 1) f->keep_alive = true; /* interim: the final response follows */

  bool has_date = false;
  {
    char line[16] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100), line[10] = (char)('0' + status / 10 % 10), line[11] = (char)('0' + status % 10);
    if ((rc = tb_buf_append(out, line, 13)) != 0 || (rc = tb_buf_puts(out, reason)) != 0 ||
        (rc = tb_buf_append(out, "\r\n", 2)) != 0)
      goto out;
  }
  for (size_t i = 0; i < nheaders; i++) {
    if (owned_header(headers[i].name)) continue;
    if (strcasecmp(headers[i].name, "date") == 0) has_date = true; /* a proxy passes the origin's */
    if ((rc = put_header(out, headers[i].name, headers[i].value)) != 0) goto out;
  }
  if (status / 100 == 1) goto end; /* no Date, no framing on interim responses */
  if (!has_date) {
    char date[40];
    http_date(date);
    if ((rc = put_header(out, "Date", date)) != 0) goto out;
  }

  if (status == 204 || (status / 100 == 1)) {
    /* no framing headers at all */
  } else if (f->content_length >= 0) {
    if (status != 304 || f->content_length > 0)
      if ((rc = tb_buf_puts(out, "Content-Length: ")) != 0 || (rc = put_int(out, f->content_length)) != 0 ||
          (rc = tb_buf_append(out, "\r\n", 2)) != 0)
        goto out;
  } else if (f->head_request || status == 304) {
    /* the length of a body never sent is unknown: say nothing */
  } else if (http10) {
    f->close_delimited = true;
    f->keep_alive = false;
  } else {
    f->chunked = true;
    if ((rc = tb_buf_puts(out, "Transfer-Encoding: chunked\r\n")) != 0) goto out;
  }
  if (!f->keep_alive) {
    if ((rc = tb_buf_puts(out, "Connection: close\r\n")) != 0) goto out;
  } else if (http10) {
    if ((rc = tb_buf_puts(out, "Connection: keep-alive\r\n")) != 0) goto out;
  }
end:
  rc = tb_buf_puts(out, "\r\n");
out:
  if (rc != 0) {
    out->len = start;
    if (out->data) out->data[start] = '\0';
  }
  return rc;
}

static bool bodyless_method(const char *m) {
  return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "DELETE") == 0 ||
         strcmp(m, "OPTIONS") == 0;
}

int tb_http_request_head(tb_buf_t *out, const char *method, const char *target, const char *host,
                         const tb_http_header_t *headers, size_t nheaders, int64_t content_length,
                         bool keep_alive) {
  if (!valid_name(method) || !valid_value(target) || target[0] == '\0' || strchr(target, ' ') ||
      !valid_value(host) || check_headers(headers, nheaders) != 0)
    return TB_EINVAL;
  size_t start = out->len;
  int rc = 0;
  if ((rc = tb_buf_puts(out, method)) != 0 || (rc = tb_buf_putc(out, ' ')) != 0 || (rc = tb_buf_puts(out, target)) != 0 ||
      (rc = tb_buf_puts(out, " HTTP/1.1\r\n")) != 0 || (rc = put_header(out, "Host", host)) != 0)
    goto out;
  for (size_t i = 0; i < nheaders; i++) {
    if (owned_header(headers[i].name) || strcasecmp(headers[i].name, "host") == 0) continue;
    if ((rc = put_header(out, headers[i].name, headers[i].value)) != 0) goto out;
  }
  if (content_length < 0) {
    if ((rc = tb_buf_puts(out, "Transfer-Encoding: chunked\r\n")) != 0) goto out;
  } else if (content_length > 0 || !bodyless_method(method)) {
    if ((rc = tb_buf_puts(out, "Content-Length: ")) != 0 || (rc = put_int(out, content_length)) != 0 ||
        (rc = tb_buf_append(out, "\r\n", 2)) != 0)
      goto out;
  }
  if (!keep_alive && (rc = tb_buf_puts(out, "Connection: close\r\n")) != 0) goto out;
  rc = tb_buf_puts(out, "\r\n");
out:
  if (rc != 0) {
    out->len = start;
    if (out->data) out->data[start] = '\0';
  }
  return rc;
}

size_t tb_http_chunk_prefix(char out[TB_HTTP_CHUNK_PREFIX_MAX], size_t len) {
  return (size_t)snprintf(out, TB_HTTP_CHUNK_PREFIX_MAX, "%zx\r\n", len);
}

/* Length of the valid UTF-8 sequence at `s` (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return n;
}

/* Appends `s` as a JSON string: valid UTF-8 passes through, control characters are
 * escaped and invalid bytes become U+FFFD, so the output is valid JSON whatever `s` holds. */
static int json_str(tb_buf_t *out, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  int rc = tb_buf_putc(out, '"');
  while (rc == 0 && *s) {
    unsigned char c = *s;
    size_t n;
    if (c == '"' || c == '\\') rc = tb_buf_printf(out, "\\%c", c), s++;
    else if (c < 0x20 || c == 0x7f) rc = tb_buf_printf(out, "\\u%04x", c), s++;
    else if (c < 0x80) rc = tb_buf_putc(out, c), s++;
    else if ((n = utf8_seq(s)) != 0) rc = tb_buf_append(out, s, n), s += n;
    else rc = tb_buf_puts(out, "\\ufffd"), s++;
  }
  return rc ? rc : tb_buf_putc(out, '"');
}

int tb_http_error_json(tb_buf_t *out, int status, const char *code, const char *message) {
  size_t start = out->len;
  int rc = tb_buf_puts(out, "{\"error\":");
  if (rc == 0) rc = json_str(out, code ? code : "error");
  if (rc == 0) rc = tb_buf_puts(out, ",\"message\":");
  if (rc == 0) rc = json_str(out, message ? message : "");
  if (rc == 0) rc = tb_buf_printf(out, ",\"status\":%d}", status);
  if (rc != 0) {
    out->len = start;
    if (out->data) out->data[start] = '\0';
  }
  return rc;
}
