/*
 * test_payload.c — the payload scanner of lib/eventlog (tb_event_fields and the check
 * appends run), against jansson on generated documents and their mutations: the check
 * must accept exactly what jansson accepts, and field values must be jansson's.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog_int.h"
#include "tb/alloc.h"
#include "test.h"

static uint64_t rng = 0x1234567;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void put(char **p, const char *s) {
  size_t n = strlen(s);
  memcpy(*p, s, n);
  *p += n;
}

static void gen_string(char **p) {
  static const char *pieces[] = {"a", "B", "z9", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00",
                                 "\xc3\xa9", "\xe2\x82\xac", "\\t", "x-y", "\\u0041", "\\b\\f\\r"};
  put(p, "\"");
  int n = (int)(rnd() % 6);
  for (int i = 0; i < n; i++) put(p, pieces[rnd() % (sizeof pieces / sizeof pieces[0])]);
  put(p, "\"");
}

static void gen_value(char **p, int depth) {
  int k = (int)(rnd() % (depth > 3 ? 5 : 7));
  char num[64];
  switch (k) {
  case 0: gen_string(p); break;
  case 1:
    snprintf(num, sizeof num, "%lld", (long long)(rnd() % 2000000) - 1000000);
    put(p, num);
    break;
  case 2: put(p, (const char *[]){"true", "false", "null", "0", "-0.5e+3", "12.25", "1E2"}[rnd() % 7]); break;
  case 3:
    snprintf(num, sizeof num, "%llu", (unsigned long long)(rnd() % 9000000000000000000ull));
    put(p, num);
    break;
  case 4: gen_string(p); break;
  case 5: {
    put(p, "[");
    int n = (int)(rnd() % 4);
    for (int i = 0; i < n; i++) {
      if (i) put(p, rnd() % 2 ? "," : " , ");
      gen_value(p, depth + 1);
    }
    put(p, "]");
    break;
  }
  default: {
    put(p, "{");
    int n = (int)(rnd() % 4);
    for (int i = 0; i < n; i++) {
      if (i) put(p, ",");
      snprintf(num, sizeof num, "\"k%d\" : ", i);
      put(p, num);
      gen_value(p, depth + 1);
    }
    put(p, "}");
  }
  }
}

static const char *const keys[] = {"k0", "k1", "k2", "k3", "k4"};

/* One document: both parsers must agree on validity, and on every wanted string/int. */
static void compare(const char *doc, size_t len) {
  tb_event_field_t v[5];
  int ours = tb_event_fields(doc, len, keys, 5, v);
  bool strict = tb__payload_ok(doc, len);
  json_error_t je;
  json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  bool theirs = j && json_is_object(j);
  if (strict != theirs) fail_msg("the append check says %d, jansson %d, of: %.*s", strict, theirs, (int)len, doc);
  /* Reading fields is lenient where jansson is strict (1e999, 2^64, repeated keys that
   * were not asked for): appends never let those in. Anything jansson takes, it takes. */
  bool lenient = !j && (strstr(je.text, "overflow") || strstr(je.text, "too big") || strstr(je.text, "duplicate"));
  if ((ours == 0) != theirs && !(lenient && ours == 0))
    fail_msg("disagree on validity (ours %d, jansson %d) of: %.*s", ours, theirs, (int)len, doc);
  if (theirs) {
    for (int i = 0; i < 5; i++) {
      json_t *jv = json_object_get(j, keys[i]);
      if ((jv == NULL) != (v[i].kind == 0)) fail_msg("key %s presence differs in %.*s", keys[i], (int)len, doc);
      if (json_is_string(jv)) {
        char *s = NULL;
        int rc = tb_event_field_str(&v[i], &s);
        bool has_nul = memchr(json_string_value(jv), 0, json_string_length(jv)) != NULL;
        if (has_nul) {
          assert_int_equal(rc, TB_EINVAL); /* we keep C strings: NUL is refused */
        } else {
          assert_int_equal(rc, 0);
          if (strlen(s) != json_string_length(jv) || memcmp(s, json_string_value(jv), strlen(s)) != 0)
            fail_msg("string %s differs: ours \"%s\", jansson \"%s\"", keys[i], s, json_string_value(jv));
        }
        tb_free(s);
      } else if (json_is_integer(jv)) {
        int64_t x = 0;
        assert_int_equal(tb_event_field_int(&v[i], &x), 0);
        assert_int_equal(x, json_integer_value(jv));
      } else if (json_is_real(jv)) {
        int64_t x = 0;
        assert_int_equal(tb_event_field_int(&v[i], &x), TB_EINVAL);
      }
    }
  }
  json_decref(j);
}

static void test_scan_vs_jansson(void **state) {
  char *buf = malloc(1 << 16);
  for (int round = 0; round < 20000; round++) {
    char *p = buf;
    put(&p, rnd() % 8 ? "{" : " {\n");
    int n = (int)(rnd() % 5);
    for (int i = 0; i < n; i++) {
      char k[32];
      if (i) put(&p, ",");
      snprintf(k, sizeof k, "\"k%d\":", i);
      put(&p, k);
      gen_value(&p, 0);
    }
    put(&p, "}");
    if (rnd() % 4 == 0) put(&p, " ");
    size_t len = (size_t)(p - buf);
    compare(buf, len);
    /* Mutations: a byte replaced by JSON punctuation, or the text cut short. */
    for (int m = 0; m < 3; m++) {
      char *copy = malloc(len + 1);
      memcpy(copy, buf, len);
      size_t at = rnd() % len;
      static const char punct[] = "{}[]\",:\\ 0a-e.tu\x01";
      copy[at] = punct[rnd() % (sizeof punct - 1)]; /* not the NUL: jansson skips it between tokens */
      compare(copy, len);
      compare(copy, at);
      free(copy);
    }
  }
  free(buf);
}

#define CHECK(text) tb__payload_ok((text), strlen(text))
#define SCAN(text) tb_event_fields((text), strlen(text), k2, 2, v)

static void test_scan_edges(void **state) {
  tb_event_field_t v[2];
  const char *const k2[] = {"a", "b"};
  assert_int_equal(tb_event_fields("{\"a\":1,\"a\":2}", 13, k2, 2, v), TB_EPARSE); /* repeated wanted key */
  assert_int_equal(tb_event_fields("[1]", 3, k2, 2, v), TB_EPARSE);
  assert_int_equal(tb_event_fields("{} {}", 5, k2, 2, v), TB_EPARSE);
  assert_int_equal(tb_event_fields("{\"a\":1\0}", 8, k2, 2, v), TB_EPARSE);
  assert_false(tb__payload_ok("{\"a\":1\0}", 8));
  /* The append check refuses what jansson cannot hold, and repeated keys at any depth. */
  assert_false(CHECK("{\"a\":1e999}"));
  assert_false(CHECK("{\"a\":9223372036854775808}"));
  assert_true(CHECK("{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":1e300}"));
  assert_false(CHECK("{\"a\":{\"x\":1,\"x\":2}}"));
  assert_false(CHECK("{\"x\":1,\"\\u0078\":2}"));
  assert_true(CHECK("{\"x\":1,\"\\u0079\":2}"));
  assert_int_equal(tb_event_fields("{\"a\":01}", 8, k2, 2, v), TB_EPARSE);
  char deep[300];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  char doc[400];
  int n = snprintf(doc, sizeof doc, "{\"a\":%.200s}", deep);
  assert_int_equal(tb_event_fields(doc, (size_t)n, k2, 2, v), TB_EPARSE); /* deeper than the limit */
  assert_int_equal(SCAN("{\"a\":\"\\ud800\"}"), TB_EPARSE); /* a lone surrogate is not text */
  assert_int_equal(SCAN("{\"a\":\"\\udc00\\ud800\"}"), TB_EPARSE);
  assert_int_equal(SCAN("{\"a\":\"\\u0000\"}"), 0);
  char *s = NULL;
  assert_int_equal(tb_event_field_str(&v[0], &s), TB_EINVAL); /* NUL does not fit a C string */
  assert_int_equal(SCAN("{\"a\":9223372036854775808,\"b\":-9223372036854775808}"), 0);
  int64_t x;
  assert_int_equal(tb_event_field_int(&v[0], &x), TB_EINVAL);
  assert_int_equal(tb_event_field_int(&v[1], &x), 0);
  assert_true(x == INT64_MIN);
  tb_event_strv_t sv;
  assert_int_equal(SCAN("{\"a\":[\"x\",\"y\\u00e9\"],\"b\":[1]}"), 0);
  assert_int_equal(tb_event_field_strv(&v[0], &sv), 0);
  assert_int_equal(sv.n, 2);
  assert_string_equal(sv.v[1], "y\xc3\xa9");
  tb_event_strv_free(&sv);
  assert_int_equal(tb_event_field_strv(&v[1], &sv), TB_EINVAL);
  tb_uuid_t u;
  assert_int_equal(SCAN("{\"a\":\"0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887\",\"b\":\"x\"}"), 0);
  assert_int_equal(tb_event_field_uuid(&v[0], &u), 0);
  assert_int_equal(tb_event_field_uuid(&v[1], &u), TB_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_scan_vs_jansson), cmocka_unit_test(test_scan_edges)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
