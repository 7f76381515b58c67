/*
 * payload.c — reading and checking event payloads without building a JSON tree
 * (include/tb/eventlog.h, "Payloads").
 *
 * Every consumer of events (the projections on replay, services reacting to them) needs
 * a few top-level fields of each payload, and appends must check that a payload is one
 * JSON object. jansson does both by building a tree of hash tables per object, which
 * costs 3 to 5 µs for a 150-byte payload (measured): at a million events that is seconds
 * of replay and half the CPU of an append. So this scanner walks the text once,
 * validating it against the JSON grammar (RFC 8259) as jansson does — UTF-8, escapes,
 * paired surrogates, no NUL, no repeated key in any object, numbers jansson can hold —
 * and records where the wanted members lie; strings are unescaped only when asked for.
 * Every payload it accepts, jansson accepts too (tests/eventlog/test_payload.c checks
 * the two against each other), so programs may still read payloads with jansson.
 * Nesting is limited to PAYLOAD_DEPTH levels.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog_int.h"
#include "tb/alloc.h"

#define PAYLOAD_DEPTH 64

typedef struct sc {
  const char *p, *end;
  bool check;       /* full check for an append: repeated keys everywhere, number limits */
  bool escaped_key; /* check: a key with escapes was seen (its duplicates need unescaping) */
} sc_t;

static void ws(sc_t *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/* Hex digit values; 0x10 marks a byte that is not a hex digit. */
static const uint8_t hex_table[256] = {
#define X16 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10
    X16, X16, X16,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,             /* 0x30 */
    0x10, 10, 11, 12, 13, 14, 15, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, /* 0x40 */
    X16,
    0x10, 10, 11, 12, 13, 14, 15, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, /* 0x60 */
    X16, X16, X16, X16, X16, X16, X16, X16, X16,
#undef X16
};

static int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static uint32_t hex4(const char *p) {
  return (uint32_t)(hexv(p[0]) << 12 | hexv(p[1]) << 8 | hexv(p[2]) << 4 | hexv(p[3]));
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (k == 0 || (size_t)(end - p) < k) return 0;
  uint32_t cp = c & (0x7f >> k);
  for (size_t j = 1; j < k; j++) {
    if ((p[j] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[j] & 0x3f);
  }
  if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return k;
}

/* Reads the 4 hex digits after "\u" at p (p points at 'u'); 0 or TB_EPARSE. */
static int u_escape(const char *p, const char *end, uint32_t *cp) {
  if (end - p < 5 || p[0] != 'u') return TB_EPARSE;
  for (int i = 1; i <= 4; i++)
    if (hexv(p[i]) < 0) return TB_EPARSE;
  *cp = hex4(p + 1);
  return 0;
}

/*
 * Skips a string starting at '"', checking it as jansson does: no raw control
 * characters, valid escapes, surrogates in pairs, UTF-8. Sets *esc when it has escapes.
 */
/* Bytes that need no attention inside a string: printable ASCII but '"' and '\\'. */
static inline bool plain(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

static int skip_string(sc_t *s, bool *esc) {
  s->p++;
  *esc = false;
  while (s->p < s->end) {
    while (s->p < s->end && plain((unsigned char)*s->p)) s->p++;
    if (s->p >= s->end) break;
    unsigned char c = (unsigned char)*s->p;
    if (c == '"') {
      s->p++;
      return 0;
    }
    if (c < 0x20) return TB_EPARSE;
    if (c >= 0x80) {
      size_t k = utf8_seq((const unsigned char *)s->p, (const unsigned char *)s->end);
      if (k == 0) return TB_EPARSE;
      s->p += k;
      continue;
    }
    if (c == '\\') {
      *esc = true;
      if (++s->p >= s->end) return TB_EPARSE;
      char e = *s->p;
      if (e == 'u') {
        uint32_t cp;
        if (u_escape(s->p, s->end, &cp)) return TB_EPARSE;
        s->p += 5;
        if (cp >= 0xdc00 && cp <= 0xdfff) return TB_EPARSE;
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t lo;
          if (s->end - s->p < 6 || s->p[0] != '\\' || u_escape(s->p + 1, s->end, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return TB_EPARSE;
          s->p += 6;
        }
        continue;
      }
      if (e == '\0' || !strchr("\"\\/bfnrt", e)) return TB_EPARSE;
    }
    s->p++;
  }
  return TB_EPARSE;
}

/* check: does the number [p, end) fit what jansson holds (long long, finite double)? */
static bool number_fits(const char *p, const char *end) {
  size_t n = (size_t)(end - p);
  bool real = memchr(p, '.', n) || memchr(p, 'e', n) || memchr(p, 'E', n);
  if (!real) {
    bool neg = *p == '-';
    const char *d = p + neg;
    size_t dl = (size_t)(end - d);
    const char *lim = neg ? "9223372036854775808" : "9223372036854775807";
    return dl < 19 || (dl == 19 && memcmp(d, lim, 19) <= 0);
  }
  char small[64], *buf = n < sizeof small ? small : tb_malloc(n + 1);
  if (buf == NULL) return false;
  memcpy(buf, p, n);
  buf[n] = '\0';
  errno = 0;
  double v = strtod(buf, NULL);
  bool ok = !(errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL));
  if (buf != small) tb_free(buf);
  return ok;
}

static int skip_number(sc_t *s) {
  const char *p = s->p;
  if (p < s->end && *p == '-') p++;
  if (p >= s->end) return TB_EPARSE;
  if (*p == '0') p++;
  else if (*p >= '1' && *p <= '9')
    while (p < s->end && *p >= '0' && *p <= '9') p++;
  else return TB_EPARSE;
  if (p < s->end && *p == '.') {
    p++;
    if (p >= s->end || !(*p >= '0' && *p <= '9')) return TB_EPARSE;
    while (p < s->end && *p >= '0' && *p <= '9') p++;
  }
  if (p < s->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < s->end && (*p == '+' || *p == '-')) p++;
    if (p >= s->end || !(*p >= '0' && *p <= '9')) return TB_EPARSE;
    while (p < s->end && *p >= '0' && *p <= '9') p++;
  }
  if (s->check && !number_fits(s->p, p)) return TB_EPARSE;
  s->p = p;
  return 0;
}

static int skip_value(sc_t *s, int depth, tb_event_field_t *v);

static int skip_lit(sc_t *s, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return TB_EPARSE;
  s->p += n;
  return 0;
}

static int skip_array(sc_t *s, int depth) {
  if (depth >= PAYLOAD_DEPTH) return TB_EPARSE;
  s->p++;
  ws(s);
  if (s->p < s->end && *s->p == ']') {
    s->p++;
    return 0;
  }
  for (;;) {
    ws(s);
    if (skip_value(s, depth + 1, NULL)) return TB_EPARSE;
    ws(s);
    if (s->p >= s->end) return TB_EPARSE;
    if (*s->p == ',') {
      s->p++;
      continue;
    }
    if (*s->p == ']') {
      s->p++;
      return 0;
    }
    return TB_EPARSE;
  }
}

/* A key as it appears between its quotes. */
typedef struct keyv {
  const char *p;
  size_t n;
} keyv_t;

static int cmp_key(const void *a, const void *b) {
  const keyv_t *x = a, *y = b;
  int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
  return c ? c : (x->n > y->n) - (x->n < y->n);
}

static bool has_dup(keyv_t *k, size_t n) {
  if (n <= 16) {
    for (size_t i = 0; i < n; i++)
      for (size_t j = i + 1; j < n; j++)
        if (k[i].n == k[j].n && memcmp(k[i].p, k[j].p, k[i].n) == 0) return true;
    return false;
  }
  qsort(k, n, sizeof *k, cmp_key);
  for (size_t i = 1; i < n; i++)
    if (cmp_key(&k[i - 1], &k[i]) == 0) return true;
  return false;
}

/*
 * Skips an object at '{'. With `keys`, records the values of those members in `vals`
 * (a wanted key twice is an error). In check mode, refuses any repeated key.
 */
static int skip_object(sc_t *s, int depth, const char *const *keys, size_t nkeys, tb_event_field_t *vals) {
  if (depth >= PAYLOAD_DEPTH) return TB_EPARSE;
  keyv_t local[16], *kv = local;
  size_t nk = 0, cap = 16;
  int rc = TB_EPARSE;
  s->p++;
  ws(s);
  if (s->p < s->end && *s->p == '}') {
    s->p++;
    return 0;
  }
  for (;;) {
    ws(s);
    bool esc;
    const char *k = s->p;
    if (s->p >= s->end || *s->p != '"' || skip_string(s, &esc)) goto out;
    size_t kl = (size_t)(s->p - k) - 2;
    if (esc) s->escaped_key = true;
    if (s->check) {
      if (nk == cap) {
        keyv_t *nv = tb_malloc(2 * cap * sizeof *nv);
        if (nv == NULL) goto out;
        memcpy(nv, kv, nk * sizeof *kv);
        if (kv != local) tb_free(kv);
        kv = nv;
        cap *= 2;
      }
      kv[nk++] = (keyv_t){k + 1, kl};
    }
    ws(s);
    if (s->p >= s->end || *s->p != ':') goto out;
    s->p++;
    ws(s);
    tb_event_field_t *slot = NULL;
    if (keys && !esc) /* wanted keys never need escapes */
      for (size_t i = 0; i < nkeys; i++)
        if (strlen(keys[i]) == kl && memcmp(keys[i], k + 1, kl) == 0) {
          if (vals[i].kind) goto out; /* repeated */
          slot = &vals[i];
          break;
        }
    if (skip_value(s, depth + 1, slot)) goto out;
    ws(s);
    if (s->p >= s->end) goto out;
    if (*s->p == ',') {
      s->p++;
      continue;
    }
    if (*s->p == '}') {
      s->p++;
      break;
    }
    goto out;
  }
  rc = s->check && has_dup(kv, nk) ? TB_EPARSE : 0;
out:
  if (kv != local) tb_free(kv);
  return rc;
}

/* Skips one value, recording where it is in `v` (when not NULL). */
static int skip_value(sc_t *s, int depth, tb_event_field_t *v) {
  if (s->p >= s->end) return TB_EPARSE;
  const char *start = s->p;
  char kind;
  bool esc = false;
  int rc;
  switch (*s->p) {
  case '"':
    kind = 's';
    rc = skip_string(s, &esc);
    break;
  case '{':
    kind = 'o';
    rc = skip_object(s, depth, NULL, 0, NULL);
    break;
  case '[':
    kind = 'a';
    rc = skip_array(s, depth);
    break;
  case 't':
    kind = 't';
    rc = skip_lit(s, "true");
    break;
  case 'f':
    kind = 'f';
    rc = skip_lit(s, "false");
    break;
  case 'n':
    kind = 'z';
    rc = skip_lit(s, "null");
    break;
  default:
    kind = 'n';
    rc = skip_number(s);
  }
  if (rc == 0 && v) *v = (tb_event_field_t){.p = start, .n = (size_t)(s->p - start), .kind = kind, .esc = esc};
  return rc;
}

/* The whole text must be one object, with only whitespace around it. */
static int scan_top(sc_t *s, const char *const *keys, size_t nkeys, tb_event_field_t *vals) {
  for (size_t i = 0; i < nkeys; i++) vals[i].kind = 0;
  ws(s);
  if (s->p >= s->end || *s->p != '{') return TB_EPARSE;
  if (skip_object(s, 0, keys, nkeys, vals)) return TB_EPARSE;
  ws(s);
  return s->p == s->end ? 0 : TB_EPARSE;
}

int tb_event_fields(const char *payload, size_t len, const char *const *keys, size_t nkeys, tb_event_field_t *out) {
  sc_t s = {payload, payload + len, false, false};
  return scan_top(&s, keys, nkeys, out);
}

bool tb__payload_ok(const char *payload, size_t len) {
  sc_t s = {payload, payload + len, true, false};
  if (scan_top(&s, NULL, 0, NULL) != 0) return false;
  if (!s.escaped_key) return true;
  /* Escaped keys may spell the same key two ways ("a" and "\u0061"): let jansson decide. */
  json_error_t je;
  json_t *j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je);
  bool ok = j != NULL;
  json_decref(j);
  return ok;
}

/* Appends the UTF-8 encoding of `cp`. */
static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12);
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18);
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Checks that `n` bytes are UTF-8 without NUL (names and text we store as C strings). */
static bool utf8_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c == 0) return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (k == 0 || i + k > n) return false;
    uint32_t cp = c & (0x7f >> k);
    for (size_t j = 1; j < k; j++) {
      unsigned char d = (unsigned char)s[i + j];
      if ((d & 0xc0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += k;
  }
  return true;
}

int tb_event_field_str(const tb_event_field_t *v, char **out) {
  *out = NULL;
  if (v->kind != 's') return v->kind ? TB_EINVAL : TB_ENOENT;
  const char *p = v->p + 1, *end = v->p + v->n - 1;
  char *o = tb_malloc((size_t)(end - p) + 1);
  if (o == NULL) return TB_ENOMEM;
  size_t n = 0;
  if (!v->esc) {
    memcpy(o, p, (size_t)(end - p));
    n = (size_t)(end - p);
  } else {
    while (p < end) {
      if (*p != '\\') {
        o[n++] = *p++;
        continue;
      }
      p++;
      char e = *p++;
      switch (e) {
      case 'b': o[n++] = '\b'; break;
      case 'f': o[n++] = '\f'; break;
      case 'n': o[n++] = '\n'; break;
      case 'r': o[n++] = '\r'; break;
      case 't': o[n++] = '\t'; break;
      case 'u': {
        uint32_t cp = hex4(p);
        p += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (end - p < 6 || p[0] != '\\' || p[1] != 'u') goto bad;
          uint32_t lo = hex4(p + 2);
          if (lo < 0xdc00 || lo > 0xdfff) goto bad;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          p += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          goto bad;
        }
        n += put_utf8(o + n, cp); /* an escape is 6+ bytes, its UTF-8 at most 4: fits */
        break;
      }
      default: o[n++] = e; /* " \ / */
      }
    }
  }
  o[n] = '\0';
  if (!utf8_ok(o, n)) goto bad;
  *out = o;
  return 0;
bad:
  tb_free(o);
  return TB_EINVAL;
}

int tb_event_field_int(const tb_event_field_t *v, int64_t *out) {
  if (v->kind != 'n') return v->kind ? TB_EINVAL : TB_ENOENT;
  const char *p = v->p, *end = v->p + v->n;
  bool neg = *p == '-';
  if (neg) p++;
  uint64_t x = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9') return TB_EINVAL; /* a fraction or exponent: not an integer */
    if (x > (UINT64_MAX - 9) / 10) return TB_EINVAL;
    x = x * 10 + (uint64_t)(*p - '0');
  }
  if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX) return TB_EINVAL;
  *out = neg ? (int64_t)(0 - x) : (int64_t)x;
  return 0;
}

int tb_event_field_uuid(const tb_event_field_t *v, tb_uuid_t *out) {
  if (v->kind != 's') return v->kind ? TB_EINVAL : TB_ENOENT;
  if (v->esc || v->n != TB_UUID_STR_LEN + 2) return TB_EINVAL;
  /* The canonical form, as tb_uuid_parse reads it, inlined with a table: replay parses
   * millions of these. */
  static const uint8_t at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  const unsigned char *t = (const unsigned char *)v->p + 1;
  if (t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-') return TB_EINVAL;
  tb_uuid_t u;
  unsigned bad = 0;
  for (int b = 0; b < 16; b++) {
    uint8_t hi = hex_table[t[at[b]]], lo = hex_table[t[at[b] + 1]];
    bad |= (hi | lo) & 0x10;
    u.b[b] = (uint8_t)(hi << 4 | (lo & 0x0f));
  }
  if (bad) return TB_EINVAL;
  *out = u;
  return 0;
}

int tb_event_field_bool(const tb_event_field_t *v, bool *out) {
  if (v->kind == 't' || v->kind == 'f') {
    *out = v->kind == 't';
    return 0;
  }
  return v->kind ? TB_EINVAL : TB_ENOENT;
}

int tb_event_field_strv(const tb_event_field_t *v, tb_event_strv_t *out) {
  out->v = NULL;
  out->n = 0;
  if (v->kind != 'a') return v->kind ? TB_EINVAL : TB_ENOENT;
  sc_t s = {v->p + 1, v->p + v->n - 1, false, false};
  int rc = 0;
  for (;;) {
    ws(&s);
    if (s.p >= s.end) break;
    tb_event_field_t e;
    if (skip_value(&s, 1, &e) || e.kind != 's') {
      rc = TB_EINVAL;
      break;
    }
    char *str = NULL;
    if ((rc = tb_event_field_str(&e, &str)) != 0) break;
    char **nv = tb_reallocarray(out->v, out->n + 1, sizeof *nv);
    if (nv == NULL) {
      tb_free(str);
      rc = TB_ENOMEM;
      break;
    }
    out->v = nv;
    out->v[out->n++] = str;
    ws(&s);
    if (s.p < s.end && *s.p == ',') s.p++;
  }
  if (rc) tb_event_strv_free(out);
  return rc;
}

void tb_event_strv_free(tb_event_strv_t *sv) {
  for (size_t i = 0; i < sv->n; i++) tb_free(sv->v[i]);
  tb_free(sv->v);
  sv->v = NULL;
  sv->n = 0;
}
