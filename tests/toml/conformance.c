/*
 * conformance.c — runs the toml-test suite (the TOML 1.0.0 file list) against tb_toml_parse.
 *
 * Usage: toml_conformance <toml-test/tests dir> [-v]
 *
 * Every valid/ case is parsed, turned into toml-test's tagged JSON and compared with the
 * sibling .json file semantically: floats numerically (nan equals nan), date-times after
 * normalising separators, fraction length and "Z" versus "+00:00", everything else exactly.
 * Every invalid/ case must be rejected with TB_EPARSE, a position and a message. With -v the
 * message of each rejection is printed too, which is how their wording gets reviewed.
 * Prints one line per failure and the totals; exits 1 if anything failed.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tb/err.h"
#include "tb/toml.h"

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0, cap = 0;
  if (f == NULL) return NULL;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      char *p = realloc(buf, cap);
      if (p == NULL) {
        free(buf);
        buf = NULL;
        goto out;
      }
      buf = p;
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    if (r == 0) break;
    n += r;
  }
  /* An exact-size copy, so that ASan notices any read past the end of the input. */
  char *exact = malloc(n ? n : 1);
  if (exact != NULL && n) memcpy(exact, buf, n);
  free(buf);
  buf = exact;
  *len = n;
out:
  fclose(f);
  return buf;
}

/*
 * jansson cannot hold NUL inside object keys, and toml-test has such a key. Both sides of
 * the comparison therefore use a reversible spelling in which NUL becomes the two
 * characters \0 and a backslash becomes two: spell_json() rewrites a JSON text's escapes
 * so that jansson decodes them that way, and spell_bytes() does the same to parsed bytes.
 */
static char *spell_json(const char *src, size_t len, size_t *out_len) {
  char *out = malloc(len * 2 + 1);
  size_t o = 0;
  bool in_str = false;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len; i++) {
    char c = src[i];
    if (in_str && c == '\\' && i + 1 < len) {
      bool u = src[i + 1] == 'u' && i + 5 < len;
      if (u && memcmp(src + i + 2, "0000", 4) == 0) {
        memcpy(out + o, "\\\\0", 3);
        o += 3;
        i += 5;
      } else if (src[i + 1] == '\\' || (u && strncasecmp(src + i + 2, "005c", 4) == 0)) {
        memcpy(out + o, "\\\\\\\\", 4);
        o += 4;
        i += src[i + 1] == '\\' ? 1 : 5;
      } else {
        out[o++] = c;
        out[o++] = src[++i];
      }
      continue;
    }
    if (c == '"') in_str = !in_str;
    out[o++] = c;
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

/* s[0..len) in the spelling of spell_json, as a malloc'd text or (keybuf NULL) a json string. */
static json_t *spell_bytes(const char *s, size_t len, char **keybuf, size_t *keylen) {
  char *t = malloc(len * 2 + 1);
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\0' || s[i] == '\\') {
      t[o++] = '\\';
      t[o++] = s[i] ? '\\' : '0';
    } else {
      t[o++] = s[i];
    }
  }
  t[o] = '\0';
  if (keybuf != NULL) {
    *keybuf = t;
    *keylen = o;
    return NULL;
  }
  json_t *j = json_stringn(t, o);
  free(t);
  return j;
}

static json_t *tagged(const char *type, json_t *value) {
  json_t *o = json_object();
  json_object_set_new(o, "type", json_string(type));
  json_object_set_new(o, "value", value);
  return o;
}

static void format_datetime(const tb_toml_value_t *v, char *buf, size_t n) {
  const tb_toml_datetime_t *dt = tb_toml_datetime(v);
  tb_toml_type_t t = tb_toml_type(v);
  char date[32] = "", time[48] = "", off[16] = "";
  if (t != TB_TOML_LOCAL_TIME)
    snprintf(date, sizeof date, "%04d-%02d-%02d", dt->year, dt->month, dt->day);
  if (t != TB_TOML_LOCAL_DATE) {
    int k = snprintf(time, sizeof time, "%02d:%02d:%02d", dt->hour, dt->minute, dt->second);
    if (dt->nanosecond) snprintf(time + k, sizeof time - (size_t)k, ".%09" PRIu32, dt->nanosecond);
  }
  if (t == TB_TOML_DATETIME) {
    int m = dt->offset_minutes;
    if (m == 0)
      snprintf(off, sizeof off, "Z");
    else
      snprintf(off, sizeof off, "%c%02d:%02d", m < 0 ? '-' : '+', abs(m) / 60, abs(m) % 60);
  }
  snprintf(buf, n, "%s%s%s%s", date, date[0] && time[0] ? "T" : "", time, off);
}

/* The tagged-JSON form of v, as toml-test's decoders print it. */
static json_t *to_json(const tb_toml_value_t *v) {
  char buf[64];
  size_t len;
  switch (tb_toml_type(v)) {
  case TB_TOML_TABLE: {
    json_t *o = json_object();
    for (size_t i = 0; i < tb_toml_len(v); i++) {
      const tb_toml_value_t *val;
      const char *k = tb_toml_entry(v, i, &len, &val, NULL);
      char *key;
      size_t keylen;
      spell_bytes(k, len, &key, &keylen);
      json_object_setn_new(o, key, keylen, to_json(val));
      free(key);
    }
    return o;
  }
  case TB_TOML_ARRAY: {
    json_t *a = json_array();
    for (size_t i = 0; i < tb_toml_len(v); i++) json_array_append_new(a, to_json(tb_toml_at(v, i)));
    return a;
  }
  case TB_TOML_STRING: {
    const char *s = tb_toml_str(v, &len);
    return tagged("string", spell_bytes(s, len, NULL, NULL));
  }
  case TB_TOML_INTEGER:
    snprintf(buf, sizeof buf, "%" PRId64, tb_toml_int(v));
    return tagged("integer", json_string(buf));
  case TB_TOML_FLOAT: {
    double d = tb_toml_float(v);
    if (isnan(d))
      snprintf(buf, sizeof buf, "nan");
    else if (isinf(d))
      snprintf(buf, sizeof buf, "%sinf", d < 0 ? "-" : "");
    else
      snprintf(buf, sizeof buf, "%.17g", d);
    return tagged("float", json_string(buf));
  }
  case TB_TOML_BOOL:
    return tagged("bool", json_string(tb_toml_bool(v) ? "true" : "false"));
  case TB_TOML_DATETIME:
  case TB_TOML_LOCAL_DATETIME:
  case TB_TOML_LOCAL_DATE:
  case TB_TOML_LOCAL_TIME: {
    static const char *names[] = {"datetime", "datetime-local", "date-local", "time-local"};
    format_datetime(v, buf, sizeof buf);
    return tagged(names[tb_toml_type(v) - TB_TOML_DATETIME], json_string(buf));
  }
  }
  return json_null();
}

/* A date-time string broken into parts, so differently spelled equal values compare equal. */
typedef struct dtparts {
  int y, mo, d, h, mi, s;
  long ns;
  int has_off, off;
} dtparts_t;

static bool parse_dt(const char *s, dtparts_t *o) {
  memset(o, 0, sizeof *o);
  int n = 0;
  if (strlen(s) >= 10 && s[4] == '-') {
    if (sscanf(s, "%4d-%2d-%2d%n", &o->y, &o->mo, &o->d, &n) != 3) return false;
    s += n;
    if (*s == 'T' || *s == 't' || *s == ' ') s++;
  }
  if (*s && s[2] == ':') {
    if (sscanf(s, "%2d:%2d:%2d%n", &o->h, &o->mi, &o->s, &n) != 3) return false;
    s += n;
    if (*s == '.') {
      long scale = 100000000;
      for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10) o->ns += (*s - '0') * scale;
    }
  }
  if (*s == 'Z' || *s == 'z') {
    o->has_off = 1;
    s++;
  } else if (*s == '+' || *s == '-') {
    int hh, mm;
    if (sscanf(s + 1, "%2d:%2d", &hh, &mm) != 2) return false;
    o->has_off = 1;
    o->off = (*s == '-' ? -1 : 1) * (hh * 60 + mm);
    s += 6;
  }
  return *s == '\0';
}

static bool is_tagged(json_t *o) {
  return json_is_object(o) && json_object_size(o) == 2 &&
         json_is_string(json_object_get(o, "type")) && json_is_string(json_object_get(o, "value"));
}

static bool same_scalar(json_t *want, json_t *got) {
  const char *wt = json_string_value(json_object_get(want, "type"));
  const char *gt = json_string_value(json_object_get(got, "type"));
  json_t *wv = json_object_get(want, "value"), *gv = json_object_get(got, "value");
  const char *w = json_string_value(wv), *g = json_string_value(gv);
  if (strcmp(wt, gt) != 0) return false;
  if (strcmp(wt, "integer") == 0) return strtoll(w, NULL, 10) == strtoll(g, NULL, 10);
  if (strcmp(wt, "float") == 0) {
    double a = strtod(w, NULL), b = strtod(g, NULL);
    return (isnan(a) && isnan(b)) || a == b;
  }
  if (strcmp(wt, "datetime") == 0 || strcmp(wt, "datetime-local") == 0 ||
      strcmp(wt, "date-local") == 0 || strcmp(wt, "time-local") == 0) {
    dtparts_t a, b;
    if (!parse_dt(w, &a) || !parse_dt(g, &b)) return false;
    return memcmp(&a, &b, sizeof a) == 0;
  }
  return json_string_length(wv) == json_string_length(gv) &&
         memcmp(w, g, json_string_length(wv)) == 0;
}

/* Compares semantically; on a difference prints where and returns false. */
static bool same(const char *file, const char *path, json_t *want, json_t *got) {
  bool ok = true;
  char sub[512];
  if (is_tagged(want) || is_tagged(got)) {
    ok = is_tagged(want) && is_tagged(got) && same_scalar(want, got);
  } else if (json_is_object(want) && json_is_object(got)) {
    const char *k;
    size_t klen;
    json_t *wv;
    ok = json_object_size(want) == json_object_size(got);
    json_object_keylen_foreach(want, k, klen, wv) {
      json_t *gv = json_object_getn(got, k, klen);
      snprintf(sub, sizeof sub, "%s.%.*s", path, (int)klen, k);
      if (gv == NULL) {
        printf("FAIL %s: %s: missing\n", file, sub);
        return false;
      }
      if (!same(file, sub, wv, gv)) return false;
    }
  } else if (json_is_array(want) && json_is_array(got)) {
    ok = json_array_size(want) == json_array_size(got);
    for (size_t i = 0; ok && i < json_array_size(want); i++) {
      snprintf(sub, sizeof sub, "%s[%zu]", path, i);
      if (!same(file, sub, json_array_get(want, i), json_array_get(got, i))) return false;
    }
  } else {
    ok = false;
  }
  if (!ok) {
    char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    printf("FAIL %s: %s: expected %.300s, got %.300s\n", file, path[0] ? path : "(root)", w, g);
    free(w);
    free(g);
  }
  return ok;
}

/* Every value and key of a parsed document must carry a 1-based position. */
static bool positions_ok(const tb_toml_value_t *v) {
  tb_toml_pos_t pos = tb_toml_pos(v);
  if (pos.line < 1 || pos.col < 1) return false;
  for (size_t i = 0; i < tb_toml_len(v); i++) {
    const tb_toml_value_t *child = tb_toml_at(v, i);
    if (tb_toml_type(v) == TB_TOML_TABLE) {
      tb_toml_pos_t kp;
      tb_toml_entry(v, i, NULL, &child, &kp);
      if (kp.line < 1 || kp.col < 1) return false;
    }
    if (!positions_ok(child)) return false;
  }
  return true;
}

static bool run_valid(const char *dir, const char *name, const char *src, size_t len) {
  char path[4096];
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  json_t *want = NULL, *got = NULL;
  bool ok = false;
  int rc = tb_toml_parse(src, len, &doc, &err);
  if (rc != 0) {
    printf("FAIL %s: rejected (%s) at %u:%u: %s\n", name, tb_err_name(rc), err.line, err.col,
           err.msg);
    goto out;
  }
  snprintf(path, sizeof path, "%s/%.*s.json", dir, (int)(strlen(name) - 5), name);
  json_error_t jerr;
  size_t jlen = 0, tlen = 0;
  char *jtext = read_file(path, &jlen);
  char *text = jtext ? spell_json(jtext, jlen, &tlen) : NULL;
  bool readable = text != NULL;
  want = readable ? json_loadb(text, tlen, JSON_DECODE_ANY, &jerr) : NULL;
  free(jtext);
  free(text);
  if (want == NULL) {
    printf("FAIL %s: cannot load %s: %s\n", name, path, readable ? jerr.text : "unreadable");
    goto out;
  }
  got = to_json(tb_toml_root(doc));
  if (!same(name, "", want, got)) goto out;
  if (!positions_ok(tb_toml_root(doc))) {
    printf("FAIL %s: a value or key has no position\n", name);
    goto out;
  }
  ok = true;
out:
  json_decref(want);
  json_decref(got);
  tb_toml_free(doc);
  return ok;
}

static bool run_invalid(const char *name, const char *src, size_t len, bool verbose) {
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  int rc = tb_toml_parse(src, len, &doc, &err);
  if (rc == 0) {
    printf("FAIL %s: accepted: \"", name);
    for (size_t i = 0; i < len && i < 200; i++) {
      unsigned char c = (unsigned char)src[i];
      if (c == '\n')
        printf("\\n");
      else if (c < 0x20 || c == 0x7F || c == '"' || c == '\\')
        printf("\\x%02X", c);
      else
        putchar(c);
    }
    printf("\"\n");
    tb_toml_free(doc);
    return false;
  }
  if (rc != TB_EPARSE || err.line < 1 || err.col < 1 || err.msg[0] == '\0') {
    printf("FAIL %s: rejected with %s at %u:%u and message \"%s\"\n", name, tb_err_name(rc),
           err.line, err.col, err.msg);
    return false;
  }
  if (verbose) printf("ok   %s: %u:%u: %s\n", name, err.line, err.col, err.msg);
  return true;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <toml-test/tests dir> [-v]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  bool verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
  char path[4096], line[1024];
  snprintf(path, sizeof path, "%s/files-toml-1.0.0", dir);
  FILE *list = fopen(path, "r");
  if (list == NULL) {
    perror(path);
    return 2;
  }
  int valid = 0, valid_ok = 0, invalid = 0, invalid_ok = 0, unreadable = 0;
  while (fgets(line, sizeof line, list) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    size_t n = strlen(line);
    /* The list also names the .json expectations; only .toml files are cases. */
    if (n < 5 || strcmp(line + n - 5, ".toml") != 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, line);
    size_t len = 0;
    char *src = read_file(path, &len);
    if (src == NULL) {
      printf("FAIL %s: cannot read %s\n", line, path);
      unreadable++;
      continue;
    }
    if (strncmp(line, "valid/", 6) == 0) {
      valid++;
      valid_ok += run_valid(dir, line, src, len);
    } else if (strncmp(line, "invalid/", 8) == 0) {
      invalid++;
      invalid_ok += run_invalid(line, src, len, verbose);
    }
    free(src);
  }
  fclose(list);
  printf("toml-test 1.0.0: valid %d/%d passed, invalid %d/%d rejected\n", valid_ok, valid,
         invalid_ok, invalid);
  bool ok = valid > 0 && invalid > 0 && valid_ok == valid && invalid_ok == invalid && !unreadable;
  return ok ? 0 : 1;
}
