/*
 * toml_lex.c — the lexical half of the TOML parser: positions, error sentences, UTF-8,
 * whitespace and comments, keys, the four string kinds, numbers and date-times.
 *
 * Everything here reads the input through p->src / p->len with explicit bounds checks
 * (the input is not NUL-terminated) and reports problems through tb__toml_fail, which
 * turns a byte offset into the line and column users see. Decoded text goes through
 * p->scratch and is then copied into the document's arena; nothing here allocates
 * anything else. The grammar that strings these tokens together is in toml_parse.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/err.h"
#include "toml_int.h"

/* ---- positions and errors --------------------------------------------------------- */

tb_toml_pos_t tb__toml_pos(tb__toml_parser_t *p, size_t off) {
  if (off > p->len) off = p->len;
  if (off < p->start) off = p->start;
  /* Moving backwards only happens when reporting an error; start over from the top. */
  if (off < p->cur_off) {
    p->cur_off = p->start;
    p->cur_line = 1;
    p->cur_col = 1;
  }
  uint32_t line = p->cur_line, col = p->cur_col;
  for (size_t i = p->cur_off; i < off; i++) {
    uint8_t c = p->src[i];
    if (c == '\n') {
      if (line < UINT32_MAX) line++;
      col = 1;
    } else if ((c & 0xC0) != 0x80 && col < UINT32_MAX) {
      /* Continuation bytes belong to the character before: columns count characters. */
      col++;
    }
  }
  p->cur_off = off;
  p->cur_line = line;
  p->cur_col = col;
  return (tb_toml_pos_t){line, col};
}

int tb__toml_fail(tb__toml_parser_t *p, size_t off, const char *fmt, ...) {
  if (!p->failed) {
    p->failed = true;
    if (p->err != NULL) {
      tb_toml_pos_t pos = tb__toml_pos(p, off);
      p->err->line = pos.line;
      p->err->col = pos.col;
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
      va_end(ap);
    }
  }
  return TB_EPARSE;
}

int tb__toml_nomem(tb__toml_parser_t *p) {
  if (!p->failed) {
    p->failed = true;
    if (p->err != NULL) {
      tb_toml_pos_t pos = tb__toml_pos(p, p->off);
      p->err->line = pos.line;
      p->err->col = pos.col;
      snprintf(p->err->msg, sizeof p->err->msg, "out of memory");
    }
  }
  return TB_ENOMEM;
}

/* Length of the UTF-8 sequence that starts with byte c (input is validated first). */
static size_t utf8_len(uint8_t c) {
  if (c < 0x80) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return 4;
}

const char *tb__toml_describe(const tb__toml_parser_t *p, size_t off, char *buf, size_t n) {
  if (off >= p->len) {
    snprintf(buf, n, "end of input");
    return buf;
  }
  uint8_t c = p->src[off];
  if (c == '\n' || c == '\r') {
    snprintf(buf, n, "end of line");
  } else if (c == ' ') {
    snprintf(buf, n, "a space");
  } else if (c == '\t') {
    snprintf(buf, n, "a tab");
  } else if (c > 0x20 && c < 0x7F) {
    snprintf(buf, n, "'%c'", c);
  } else if (c < 0x80) {
    snprintf(buf, n, "control character U+%04X", c);
  } else {
    size_t k = utf8_len(c);
    if (k > p->len - off) k = p->len - off;
    uint32_t cp = c & (0x7F >> k);
    for (size_t i = 1; i < k; i++) cp = (cp << 6) | (p->src[off + i] & 0x3F);
    snprintf(buf, n, "'%.*s' (U+%04X)", (int)k, (const char *)p->src + off, (unsigned)cp);
  }
  return buf;
}

const char *tb__toml_keystr(const tb__toml_part_t *parts, size_t n, char *buf, size_t size) {
  /* Keys can be long or hold control characters; a message should stay one short line. */
  size_t limit = size < 84 ? size : 84, o = 0;
  bool cut = false;
  buf[0] = '\0';
  for (size_t i = 0; i < n && !cut; i++) {
    if (i > 0) {
      if (o + 2 > limit) {
        cut = true;
        break;
      }
      buf[o++] = '.';
    }
    const uint8_t *s = (const uint8_t *)parts[i].s;
    for (size_t j = 0; j < parts[i].len;) {
      uint8_t c = s[j];
      char tmp[8];
      size_t k;
      if (c == '"' || c == '\\') {
        tmp[0] = '\\';
        tmp[1] = (char)c;
        k = 2;
      } else if (c < 0x20 || c == 0x7F) {
        snprintf(tmp, sizeof tmp, "\\u%04X", c);
        k = 6;
      } else {
        k = utf8_len(c);
        if (k > parts[i].len - j) k = parts[i].len - j;
        memcpy(tmp, s + j, k);
      }
      if (o + k + 4 > limit) {
        cut = true;
        break;
      }
      memcpy(buf + o, tmp, k);
      o += k;
      j += (c == '"' || c == '\\' || c < 0x20 || c == 0x7F) ? 1 : k;
    }
  }
  if (cut) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o] = '\0';
  return buf;
}

/* ---- characters ------------------------------------------------------------------- */

int tb__toml_check_utf8(tb__toml_parser_t *p) {
  const uint8_t *s = p->src;
  size_t n = p->len, i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return tb__toml_fail(p, i, "invalid UTF-8: byte 0x%02X cannot start a character", c);
    }
    if (n - i <= need) return tb__toml_fail(p, i, "invalid UTF-8: truncated character");
    for (size_t k = 1; k <= need; k++) {
      uint8_t cc = s[i + k];
      if ((cc & 0xC0) != 0x80)
        return tb__toml_fail(p, i, "invalid UTF-8: byte 0x%02X cannot continue a character", cc);
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min) return tb__toml_fail(p, i, "invalid UTF-8: overlong encoding");
    if (cp >= 0xD800 && cp <= 0xDFFF)
      return tb__toml_fail(p, i, "invalid UTF-8: encoded surrogate U+%04X", (unsigned)cp);
    if (cp > 0x10FFFF) return tb__toml_fail(p, i, "invalid UTF-8: beyond U+10FFFF");
    i += need + 1;
  }
  return 0;
}

/* Control characters TOML forbids in comments and strings: all of C0 but tab, and DEL. */
static bool is_control(uint8_t c) { return (c < 0x20 && c != '\t') || c == 0x7F; }

void tb__toml_skip_ws(tb__toml_parser_t *p) {
  while (p->off < p->len && (p->src[p->off] == ' ' || p->src[p->off] == '\t')) p->off++;
}

int tb__toml_comment(tb__toml_parser_t *p) {
  size_t i = p->off + 1;
  for (; i < p->len; i++) {
    uint8_t c = p->src[i];
    if (c == '\n') break;
    if (c == '\r' && i + 1 < p->len && p->src[i + 1] == '\n') break;
    if (is_control(c))
      return tb__toml_fail(p, i, "control character U+%04X is not allowed in a comment", c);
  }
  p->off = i;
  return 0;
}

int tb__toml_newline(tb__toml_parser_t *p) {
  int c = tb__toml_peek(p, 0);
  if (c == '\n') {
    p->off++;
    return 1;
  }
  if (c == '\r') {
    if (tb__toml_peek(p, 1) == '\n') {
      p->off += 2;
      return 1;
    }
    return tb__toml_fail(p, p->off, "carriage return not followed by a line feed");
  }
  return 0;
}

int tb__toml_skip_wcn(tb__toml_parser_t *p) {
  for (;;) {
    tb__toml_skip_ws(p);
    if (tb__toml_peek(p, 0) == '#') {
      int rc = tb__toml_comment(p);
      if (rc != 0) return rc;
    }
    int r = tb__toml_newline(p);
    if (r <= 0) return r;
  }
}

/* ---- strings ---------------------------------------------------------------------- */

static int put(tb__toml_parser_t *p, const void *b, size_t n) {
  return tb_buf_append(&p->scratch, b, n) == 0 ? 0 : tb__toml_nomem(p);
}

/* Copies the scratch buffer into the arena as a NUL-terminated string. */
static int keep(tb__toml_parser_t *p, const char **out, size_t *len) {
  size_t n = p->scratch.len;
  char *s = tb__toml_alloc(p->arena, n + 1);
  if (s == NULL) return tb__toml_nomem(p);
  if (n) memcpy(s, p->scratch.data, n);
  s[n] = '\0';
  *out = s;
  *len = n;
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int put_utf8(tb__toml_parser_t *p, uint32_t cp) {
  uint8_t b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (uint8_t)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (uint8_t)(0xC0 | (cp >> 6));
    b[1] = (uint8_t)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (uint8_t)(0xE0 | (cp >> 12));
    b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (uint8_t)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (uint8_t)(0xF0 | (cp >> 18));
    b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (uint8_t)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return put(p, b, n);
}

/* At a backslash inside a basic string: decodes one escape into the scratch buffer. */
static int escape(tb__toml_parser_t *p, bool multi) {
  size_t at = p->off;
  int e = tb__toml_peek(p, 1);
  char c;
  switch (e) {
  case 'b':
    c = '\b';
    break;
  case 't':
    c = '\t';
    break;
  case 'n':
    c = '\n';
    break;
  case 'f':
    c = '\f';
    break;
  case 'r':
    c = '\r';
    break;
  case '"':
    c = '"';
    break;
  case '\\':
    c = '\\';
    break;
  case 'u':
  case 'U': {
    size_t n = e == 'u' ? 4 : 8;
    uint32_t cp = 0;
    for (size_t i = 0; i < n; i++) {
      int h = hexval(tb__toml_peek(p, 2 + i));
      if (h < 0)
        return tb__toml_fail(p, at, "escape sequence \\%c needs %zu hexadecimal digits", e, n);
      cp = (cp << 4) | (uint32_t)h;
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return tb__toml_fail(p, at, "escape sequence \\%c%.*s is not a Unicode scalar value", e,
                           (int)n, (const char *)p->src + at + 2);
    p->off += 2 + n;
    return put_utf8(p, cp);
  }
  default:
    if (multi && (e == ' ' || e == '\t' || e == '\n' || e == '\r')) {
      /* A line-ending backslash: it, the rest of its line and all whitespace and
       * newlines after it vanish. Anything but whitespace before the newline is an
       * invalid escape. */
      size_t i = p->off + 1;
      while (i < p->len && (p->src[i] == ' ' || p->src[i] == '\t')) i++;
      if (i < p->len && (p->src[i] == '\n' || p->src[i] == '\r')) {
        p->off = i;
        for (;;) {
          tb__toml_skip_ws(p);
          int r = tb__toml_newline(p);
          if (r < 0) return r;
          if (r == 0) return 0;
        }
      }
      return tb__toml_fail(p, at,
                           "invalid escape sequence: a backslash followed by whitespace must "
                           "end its line");
    }
    if (e > 0x20 && e < 0x7F)
      return tb__toml_fail(p, at, "invalid escape sequence \\%c in string", e);
    char what[48];
    return tb__toml_fail(p, at, "invalid escape sequence in string: backslash followed by %s",
                         tb__toml_describe(p, at + 1, what, sizeof what));
  }
  p->off += 2;
  return put(p, &c, 1);
}

/*
 * Reads a string whose opening delimiter is at p->off into the scratch buffer. `q` is
 * the quote character; basic strings (") have escapes, literal strings (') do not.
 */
static int string_body(tb__toml_parser_t *p, uint8_t q, bool multi) {
  size_t open = p->off;
  tb_buf_reset(&p->scratch);
  p->off += multi ? 3 : 1;
  if (multi) {
    /* A newline right after the opening delimiter is not part of the string. */
    int r = tb__toml_newline(p);
    if (r < 0) return r;
  }
  for (;;) {
    if (p->off >= p->len) {
      tb_toml_pos_t at = tb__toml_pos(p, open);
      return tb__toml_fail(p, p->len, "unterminated string (opened at line %u, column %u)",
                           at.line, at.col);
    }
    uint8_t c = p->src[p->off];
    if (c == q) {
      if (!multi) {
        p->off++;
        return 0;
      }
      /* Up to two quotes may sit right before the closing three. */
      size_t n = 1;
      while (n < 5 && p->off + n < p->len && p->src[p->off + n] == q) n++;
      size_t content = n >= 3 ? n - 3 : n;
      int rc = put(p, p->src + p->off, content);
      if (rc != 0) return rc;
      p->off += n;
      if (n >= 3) return 0;
      continue;
    }
    if (c == '\\' && q == '"') {
      int rc = escape(p, multi);
      if (rc != 0) return rc;
      continue;
    }
    if (c == '\n' || c == '\r') {
      if (!multi)
        return tb__toml_fail(p, p->off,
                             "newline in a single-line string (use %c%c%c for multi-line strings)",
                             q, q, q);
      int r = tb__toml_newline(p);
      if (r < 0) return r;
      /* CRLF is stored as LF, so documents mean the same with either line ending. */
      int rc = put(p, "\n", 1);
      if (rc != 0) return rc;
      continue;
    }
    if (is_control(c)) {
      return tb__toml_fail(p, p->off, "control character U+%04X must be escaped in a string%s",
                           c, q == '\'' ? " (literal strings cannot contain it at all)" : "");
    }
    size_t s = p->off;
    while (p->off < p->len) {
      uint8_t d = p->src[p->off];
      if (d == q || (d == '\\' && q == '"') || d == '\n' || d == '\r' || is_control(d)) break;
      p->off++;
    }
    int rc = put(p, p->src + s, p->off - s);
    if (rc != 0) return rc;
  }
}

int tb__toml_string(tb__toml_parser_t *p, tb_toml_value_t *v) {
  uint8_t q = p->src[p->off];
  bool multi = tb__toml_peek(p, 1) == q && tb__toml_peek(p, 2) == q;
  int rc = string_body(p, q, multi);
  if (rc != 0) return rc;
  v->type = TB_TOML_STRING;
  return keep(p, &v->u.str.ptr, &v->u.str.len);
}

int tb__toml_key_part(tb__toml_parser_t *p, tb__toml_part_t *part) {
  part->off = p->off;
  int c = tb__toml_peek(p, 0);
  if (tb__toml_is_bare(c)) {
    size_t s = p->off;
    while (p->off < p->len && tb__toml_is_bare(p->src[p->off])) p->off++;
    char *k = tb__toml_alloc(p->arena, p->off - s + 1);
    if (k == NULL) return tb__toml_nomem(p);
    memcpy(k, p->src + s, p->off - s);
    k[p->off - s] = '\0';
    part->s = k;
    part->len = p->off - s;
    return 0;
  }
  if (c == '"' || c == '\'') {
    if (tb__toml_peek(p, 1) == c && tb__toml_peek(p, 2) == c)
      return tb__toml_fail(p, p->off, "a multi-line string cannot be used as a key");
    int rc = string_body(p, (uint8_t)c, false);
    if (rc != 0) return rc;
    return keep(p, &part->s, &part->len);
  }
  char what[48];
  tb__toml_describe(p, p->off, what, sizeof what);
  if (c == '=') return tb__toml_fail(p, p->off, "expected a key before '='");
  return tb__toml_fail(p, p->off, "expected a key, found %s", what);
}

/* ---- numbers ---------------------------------------------------------------------- */

/* Bytes that can appear in a number token; the token is validated as a whole. */
static bool is_numchar(uint8_t c) { return tb__toml_is_bare(c) || c == '.' || c == '+'; }

static int digit_val(uint8_t c, int radix) {
  int d = hexval(c);
  return d >= 0 && d < radix ? d : -1;
}

/*
 * Scans digits of `radix` with single underscores between digits, starting at t[i].
 * Stores the index after them in *end (== i when there is no digit at all).
 */
static int scan_digits(tb__toml_parser_t *p, size_t tok, const uint8_t *t, size_t i, size_t n,
                       int radix, size_t *end) {
  size_t j = i;
  while (j < n) {
    if (digit_val(t[j], radix) >= 0) {
      j++;
    } else if (t[j] == '_') {
      if (j == i || j + 1 >= n || digit_val(t[j + 1], radix) < 0)
        return tb__toml_fail(p, tok + j, "an underscore in a number must sit between two digits");
      j++;
    } else {
      break;
    }
  }
  *end = j;
  return 0;
}

static int bad_number(tb__toml_parser_t *p, size_t tok, size_t n, const char *why) {
  return tb__toml_fail(p, tok, "invalid number \"%.*s\": %s", (int)(n > 40 ? 40 : n),
                       (const char *)p->src + tok, why);
}

static int radix_int(tb__toml_parser_t *p, size_t tok, const uint8_t *t, size_t n,
                     tb_toml_value_t *v) {
  int radix = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
  const char *name = radix == 16 ? "hexadecimal" : radix == 8 ? "octal" : "binary";
  size_t end;
  int rc = scan_digits(p, tok, t, 2, n, radix, &end);
  if (rc != 0) return rc;
  if (end == 2) return bad_number(p, tok, n, "no digits after the prefix");
  if (end != n) {
    return tb__toml_fail(p, tok + end, "invalid digit '%c' in %s integer \"%.*s\"", t[end], name,
                         (int)(n > 40 ? 40 : n), (const char *)t);
  }
  uint64_t val = 0;
  for (size_t i = 2; i < n; i++) {
    if (t[i] == '_') continue;
    uint64_t d = (uint64_t)digit_val(t[i], radix);
    if (val > ((uint64_t)INT64_MAX - d) / (uint64_t)radix)
      return bad_number(p, tok, n, "does not fit in a signed 64-bit integer");
    val = val * (uint64_t)radix + d;
  }
  v->type = TB_TOML_INTEGER;
  v->u.i = (int64_t)val;
  return 0;
}

static int number(tb__toml_parser_t *p, tb_toml_value_t *v) {
  size_t tok = p->off, e = p->off;
  while (e < p->len && is_numchar(p->src[e])) e++;
  const uint8_t *t = p->src + tok;
  size_t n = e - tok, i = 0;
  bool neg = false;
  if (n > 0 && (t[0] == '+' || t[0] == '-')) {
    neg = t[0] == '-';
    i = 1;
  }
  if (n - i == 3 && (memcmp(t + i, "inf", 3) == 0 || memcmp(t + i, "nan", 3) == 0)) {
    v->type = TB_TOML_FLOAT;
    v->u.f = t[i] == 'i' ? INFINITY : NAN;
    if (neg) v->u.f = -v->u.f;
    p->off = e;
    return 0;
  }
  if (n - i >= 2 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'o' || t[i + 1] == 'b')) {
    if (i > 0)
      return bad_number(p, tok, n, "hexadecimal, octal and binary integers cannot have a sign");
    p->off = e;
    return radix_int(p, tok, t, n, v);
  }
  if (i == n || digit_val(t[i], 10) < 0) {
    if (i < n && t[i] == '.')
      return bad_number(p, tok, n, "a float needs a digit before the decimal point");
    if (i < n && t[i] == '_')
      return tb__toml_fail(p, tok + i, "an underscore in a number must sit between two digits");
    return bad_number(p, tok, n, "expected a digit");
  }
  size_t j;
  int rc = scan_digits(p, tok, t, i, n, 10, &j);
  if (rc != 0) return rc;
  if (t[i] == '0' && j - i > 1) return bad_number(p, tok, n, "leading zeros are not allowed");
  bool is_float = false;
  if (j < n && t[j] == '.') {
    is_float = true;
    size_t k;
    rc = scan_digits(p, tok, t, j + 1, n, 10, &k);
    if (rc != 0) return rc;
    if (k == j + 1) return bad_number(p, tok, n, "expected a digit after the decimal point");
    j = k;
  }
  if (j < n && (t[j] == 'e' || t[j] == 'E')) {
    is_float = true;
    j++;
    if (j < n && (t[j] == '+' || t[j] == '-')) j++;
    size_t k;
    rc = scan_digits(p, tok, t, j, n, 10, &k);
    if (rc != 0) return rc;
    if (k == j) return bad_number(p, tok, n, "expected a digit in the exponent");
    j = k;
  }
  if (j != n) return bad_number(p, tok, n, "unexpected character");
  p->off = e;
  if (!is_float) {
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, val = 0;
    for (size_t k = i; k < n; k++) {
      if (t[k] == '_') continue;
      uint64_t d = (uint64_t)(t[k] - '0');
      if (val > (limit - d) / 10)
        return bad_number(p, tok, n, "does not fit in a signed 64-bit integer");
      val = val * 10 + d;
    }
    v->type = TB_TOML_INTEGER;
    /* Negating in unsigned arithmetic keeps INT64_MIN exact. */
    v->u.i = neg ? (int64_t)(0 - val) : (int64_t)val;
    return 0;
  }
  /* strtod does the correctly rounded conversion; it needs the text without
   * underscores, and a locale whose decimal point is '.', whatever the program set. */
  tb_buf_reset(&p->scratch);
  for (size_t k = 0; k < n; k++) {
    if (t[k] == '_') continue;
    rc = put(p, t + k, 1);
    if (rc != 0) return rc;
  }
  if (p->c_locale == (locale_t)0) {
    p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (p->c_locale == (locale_t)0) return tb__toml_nomem(p);
  }
  char *endp = NULL;
  errno = 0;
  double d = strtod_l((const char *)p->scratch.data, &endp, p->c_locale);
  if (endp != (const char *)p->scratch.data + p->scratch.len)
    return bad_number(p, tok, n, "not a float");
  if (errno == ERANGE && isinf(d))
    return bad_number(p, tok, n, "too large for a 64-bit float");
  v->type = TB_TOML_FLOAT;
  v->u.f = d;
  return 0;
}

/* ---- date-times ------------------------------------------------------------------- */

/* Reads exactly n ASCII digits at p->off + k as a number, or returns -1. */
static int fixed_digits(const tb__toml_parser_t *p, size_t k, size_t n) {
  int val = 0;
  for (size_t i = 0; i < n; i++) {
    int c = tb__toml_peek(p, k + i);
    if (c < '0' || c > '9') return -1;
    val = val * 10 + (c - '0');
  }
  return val;
}

static bool is_digit_at(const tb__toml_parser_t *p, size_t k) {
  int c = tb__toml_peek(p, k);
  return c >= '0' && c <= '9';
}

static int days_in_month(int year, int month) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return days[month - 1];
}

/* Reads HH:MM:SS[.fraction] at p->off into dt. */
static int partial_time(tb__toml_parser_t *p, tb_toml_datetime_t *dt) {
  size_t at = p->off;
  int h = fixed_digits(p, 0, 2), m = -1, s = -1;
  if (h >= 0 && tb__toml_peek(p, 2) == ':') m = fixed_digits(p, 3, 2);
  if (m >= 0 && tb__toml_peek(p, 5) == ':') s = fixed_digits(p, 6, 2);
  if (h < 0 || m < 0)
    return tb__toml_fail(p, at, "invalid time: expected HH:MM:SS with two digits each");
  if (s < 0)
    return tb__toml_fail(p, at, "invalid time: seconds are required in TOML 1.0 (HH:MM:SS)");
  if (h > 23) return tb__toml_fail(p, at, "invalid time: hour %d is out of range 00-23", h);
  if (m > 59) return tb__toml_fail(p, at + 3, "invalid time: minute %d is out of range 00-59", m);
  /* 60 is a leap second, which RFC 3339 allows. */
  if (s > 60) return tb__toml_fail(p, at + 6, "invalid time: second %d is out of range 00-60", s);
  dt->hour = h;
  dt->minute = m;
  dt->second = s;
  dt->nanosecond = 0;
  p->off += 8;
  if (tb__toml_peek(p, 0) == '.') {
    if (!is_digit_at(p, 1))
      return tb__toml_fail(p, p->off, "invalid time: expected digits after '.' in the seconds");
    p->off++;
    /* Any number of digits is allowed; beyond nanoseconds they are truncated. */
    uint32_t ns = 0;
    int digits = 0;
    while (is_digit_at(p, 0)) {
      if (digits < 9) {
        ns = ns * 10 + (uint32_t)(p->src[p->off] - '0');
        digits++;
      }
      p->off++;
    }
    while (digits++ < 9) ns *= 10;
    dt->nanosecond = ns;
  }
  return 0;
}

static int datetime(tb__toml_parser_t *p, tb_toml_value_t *v, bool has_date) {
  tb_toml_datetime_t *dt = &v->u.dt;
  size_t at = p->off;
  memset(dt, 0, sizeof *dt);
  if (!has_date) {
    v->type = TB_TOML_LOCAL_TIME;
    return partial_time(p, dt);
  }
  int y = fixed_digits(p, 0, 4), mo = -1, d = -1;
  if (y >= 0 && tb__toml_peek(p, 4) == '-') mo = fixed_digits(p, 5, 2);
  if (mo >= 0 && tb__toml_peek(p, 7) == '-') d = fixed_digits(p, 8, 2);
  if (y < 0 || mo < 0 || d < 0 || is_digit_at(p, 10))
    return tb__toml_fail(p, at, "invalid date: expected YYYY-MM-DD");
  if (mo < 1 || mo > 12)
    return tb__toml_fail(p, at + 5, "invalid date: month %d is out of range 01-12", mo);
  if (d < 1 || d > days_in_month(y, mo))
    return tb__toml_fail(p, at + 8, "invalid date: %04d-%02d has no day %d", y, mo, d);
  dt->year = y;
  dt->month = mo;
  dt->day = d;
  p->off += 10;
  int sep = tb__toml_peek(p, 0);
  if (sep == 'T' || sep == 't') {
    if (!is_digit_at(p, 1))
      return tb__toml_fail(p, p->off, "invalid date-time: expected a time after '%c'", sep);
  } else if (!(sep == ' ' && is_digit_at(p, 1) && is_digit_at(p, 2) &&
               tb__toml_peek(p, 3) == ':')) {
    /* A space not followed by a time just ends the date. */
    v->type = TB_TOML_LOCAL_DATE;
    return 0;
  }
  p->off++;
  int rc = partial_time(p, dt);
  if (rc != 0) return rc;
  int z = tb__toml_peek(p, 0);
  if (z == 'Z' || z == 'z') {
    p->off++;
    v->type = TB_TOML_DATETIME;
    return 0;
  }
  if (z == '+' || z == '-') {
    int oh = fixed_digits(p, 1, 2), om = -1;
    if (oh >= 0 && tb__toml_peek(p, 3) == ':') om = fixed_digits(p, 4, 2);
    if (oh < 0 || om < 0)
      return tb__toml_fail(p, p->off, "invalid date-time: expected an offset like %c07:00", z);
    if (oh > 23 || om > 59)
      return tb__toml_fail(p, p->off, "invalid date-time: offset %c%02d:%02d is out of range", z,
                           oh, om);
    dt->offset_minutes = (z == '-' ? -1 : 1) * (oh * 60 + om);
    p->off += 6;
    v->type = TB_TOML_DATETIME;
    return 0;
  }
  v->type = TB_TOML_LOCAL_DATETIME;
  return 0;
}

/* ---- scalars ---------------------------------------------------------------------- */

/* Whether the bytes at p->off spell `word`; what may follow is checked by the caller. */
static bool match_word(const tb__toml_parser_t *p, const char *word) {
  size_t n = strlen(word);
  return p->len - p->off >= n && memcmp(p->src + p->off, word, n) == 0;
}

int tb__toml_scalar(tb__toml_parser_t *p, tb_toml_value_t *v) {
  int c = tb__toml_peek(p, 0);
  if (c == 't' && match_word(p, "true")) {
    v->type = TB_TOML_BOOL;
    v->u.b = true;
    p->off += 4;
    return 0;
  }
  if (c == 'f' && match_word(p, "false")) {
    v->type = TB_TOML_BOOL;
    v->u.b = false;
    p->off += 5;
    return 0;
  }
  if (c >= '0' && c <= '9') {
    if (is_digit_at(p, 1) && is_digit_at(p, 2) && is_digit_at(p, 3) && tb__toml_peek(p, 4) == '-')
      return datetime(p, v, true);
    if (is_digit_at(p, 1) && tb__toml_peek(p, 2) == ':') return datetime(p, v, false);
  }
  if ((c >= '0' && c <= '9') || c == '+' || c == '-' || (c == 'i' && match_word(p, "inf")) ||
      (c == 'n' && match_word(p, "nan")))
    return number(p, v);
  char what[48];
  if (tb__toml_is_bare(c)) {
    size_t e = p->off;
    while (e < p->len && is_numchar(p->src[e]) && e - p->off < 40) e++;
    return tb__toml_fail(p, p->off, "invalid value \"%.*s\" (strings must be quoted)",
                         (int)(e - p->off), (const char *)p->src + p->off);
  }
  return tb__toml_fail(p, p->off, "expected a value, found %s",
                       tb__toml_describe(p, p->off, what, sizeof what));
}
