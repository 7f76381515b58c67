/*
 * test_toml.c — unit tests for the TOML parser (lib/toml) through its public header.
 *
 * The toml-test suite (conformance.c) checks what documents mean; these tests check what
 * it cannot: positions of keys and values, the position and wording of errors, the
 * accessors' behaviour on wrong types, scale (100k keys), the nesting limit, inputs that
 * are not NUL-terminated, and that every allocation failure ends in TB_ENOMEM with
 * nothing leaked (the sanitizer build checks the leaks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "tb/toml.h"

/* Parses a copy of `text` in an exact-size buffer without NUL, so ASan sees over-reads. */
static int parse_n(const char *text, size_t len, tb_toml_doc_t **doc, tb_toml_error_t *err) {
  char *copy = malloc(len ? len : 1);
  assert_non_null(copy);
  if (len) memcpy(copy, text, len);
  int rc = tb_toml_parse(copy, len, doc, err);
  free(copy);
  return rc;
}

static tb_toml_doc_t *parse_ok(const char *text) {
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  int rc = parse_n(text, strlen(text), &doc, &err);
  if (rc != 0) fail_msg("parse failed (%s) at %u:%u: %s", tb_err_name(rc), err.line, err.col, err.msg);
  assert_non_null(doc);
  return doc;
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *msg) {
  tb_toml_doc_t *doc = (tb_toml_doc_t *)1;
  tb_toml_error_t err;
  int rc = parse_n(text, strlen(text), &doc, &err);
  if (rc != TB_EPARSE || err.line != line || err.col != col || strstr(err.msg, msg) == NULL)
    fail_msg("for %s\n  expected TB_EPARSE at %u:%u containing \"%s\"\n  got %s at %u:%u: %s",
             text, line, col, msg, tb_err_name(rc), err.line, err.col, err.msg);
  assert_null(doc);
}

static const tb_toml_value_t *path(const tb_toml_doc_t *doc, const char *dotted) {
  const tb_toml_value_t *v = tb_toml_root(doc);
  char buf[256];
  snprintf(buf, sizeof buf, "%s", dotted);
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
    v = tb_toml_get(v, k);
  return v;
}

static const char rich_doc[] =
    "# A document with every construct, used by several tests.\n"
    "title = \"TOML \\\"example\\\" \\u00e9\\U0001F600\"\n"
    "literal = 'C:\\Users\\x'\n"
    "multi = \"\"\"\n  one \\\n    two\"\"\"\n"
    "raw = '''\nline1\r\nline2'''\n"
    "n = -42\n"
    "big = 9_223_372_036_854_775_807\n"
    "small = -9223372036854775808\n"
    "hex = 0xDEAD_beef\n"
    "oct = 0o755\n"
    "bin = 0b1101\n"
    "f = 6.626e-34\n"
    "g = -1_000.5\n"
    "pinf = +inf\n"
    "nnan = -nan\n"
    "yes = true\n"
    "no = false\n"
    "odt = 1979-05-27T07:32:00.999999999999-07:30\n"
    "odtz = 1979-05-27 07:32:00z\n"
    "ldt = 1979-05-27t07:32:00\n"
    "ld = 2000-02-29\n"
    "lt = 07:32:00.5\n"
    "arr = [ 1, \"two\", [3.0, [ ]], { x = 1 }, ] # trailing comma is fine\n"
    "multiline_arr = [\n  1, # one\n  2\n]\n"
    "inline = { a.b = 1, c = \"d\" }\n"
    "\"quoted key\" = 1\n"
    "site.\"google.com\" = true\n"
    "\n"
    "[table]\n"
    "key = \"value\"\n"
    "[table.sub]\n"
    "[[fruits]]\n"
    "name = \"apple\"\n"
    "[fruits.physical]\n"
    "color = \"red\"\n"
    "[[fruits.varieties]]\n"
    "name = \"red delicious\"\n"
    "[[fruits]]\n"
    "name = \"banana\"\n"
    "[x.y.z]\n"
    "[x]\n"
    "w = 1\n";

static void test_accessors(void **state) {
  (void)state;
  tb_toml_doc_t *doc = parse_ok(rich_doc);
  const tb_toml_value_t *root = tb_toml_root(doc);
  size_t len;

  assert_int_equal(tb_toml_type(root), TB_TOML_TABLE);
  assert_string_equal(tb_toml_str(path(doc, "title"), &len), "TOML \"example\" \xC3\xA9\xF0\x9F\x98\x80");
  assert_int_equal(len, strlen("TOML \"example\" \xC3\xA9\xF0\x9F\x98\x80"));
  assert_string_equal(tb_toml_str(path(doc, "literal"), NULL), "C:\\Users\\x");
  assert_string_equal(tb_toml_str(path(doc, "multi"), NULL), "  one two");
  assert_string_equal(tb_toml_str(path(doc, "raw"), NULL), "line1\nline2");
  assert_int_equal(tb_toml_int(path(doc, "n")), -42);
  assert_true(tb_toml_int(path(doc, "big")) == INT64_MAX);
  assert_true(tb_toml_int(path(doc, "small")) == INT64_MIN);
  assert_int_equal(tb_toml_int(path(doc, "hex")), 0xdeadbeef);
  assert_int_equal(tb_toml_int(path(doc, "oct")), 0755);
  assert_int_equal(tb_toml_int(path(doc, "bin")), 13);
  assert_true(tb_toml_float(path(doc, "f")) == 6.626e-34);
  assert_true(tb_toml_float(path(doc, "g")) == -1000.5);
  assert_true(isinf(tb_toml_float(path(doc, "pinf"))) && tb_toml_float(path(doc, "pinf")) > 0);
  assert_true(isnan(tb_toml_float(path(doc, "nnan"))));
  assert_true(tb_toml_bool(path(doc, "yes")));
  assert_false(tb_toml_bool(path(doc, "no")));
  assert_int_equal(tb_toml_type(path(doc, "no")), TB_TOML_BOOL);

  const tb_toml_datetime_t *dt = tb_toml_datetime(path(doc, "odt"));
  assert_int_equal(tb_toml_type(path(doc, "odt")), TB_TOML_DATETIME);
  assert_non_null(dt);
  assert_int_equal(dt->year, 1979);
  assert_int_equal(dt->month, 5);
  assert_int_equal(dt->day, 27);
  assert_int_equal(dt->hour, 7);
  assert_int_equal(dt->minute, 32);
  assert_int_equal(dt->second, 0);
  assert_int_equal(dt->nanosecond, 999999999); /* truncated, not rounded */
  assert_int_equal(dt->offset_minutes, -(7 * 60 + 30));
  assert_int_equal(tb_toml_type(path(doc, "odtz")), TB_TOML_DATETIME);
  assert_int_equal(tb_toml_datetime(path(doc, "odtz"))->offset_minutes, 0);
  assert_int_equal(tb_toml_type(path(doc, "ldt")), TB_TOML_LOCAL_DATETIME);
  assert_int_equal(tb_toml_type(path(doc, "ld")), TB_TOML_LOCAL_DATE);
  assert_int_equal(tb_toml_datetime(path(doc, "ld"))->day, 29);
  assert_int_equal(tb_toml_type(path(doc, "lt")), TB_TOML_LOCAL_TIME);
  assert_int_equal(tb_toml_datetime(path(doc, "lt"))->nanosecond, 500000000);

  const tb_toml_value_t *arr = path(doc, "arr");
  assert_int_equal(tb_toml_type(arr), TB_TOML_ARRAY);
  assert_int_equal(tb_toml_len(arr), 4);
  assert_int_equal(tb_toml_int(tb_toml_at(arr, 0)), 1);
  assert_string_equal(tb_toml_str(tb_toml_at(arr, 1), NULL), "two");
  assert_int_equal(tb_toml_len(tb_toml_at(arr, 2)), 2);
  assert_int_equal(tb_toml_len(tb_toml_at(tb_toml_at(arr, 2), 1)), 0);
  assert_int_equal(tb_toml_int(tb_toml_get(tb_toml_at(arr, 3), "x")), 1);
  assert_null(tb_toml_at(arr, 4));
  assert_int_equal(tb_toml_len(path(doc, "multiline_arr")), 2);
  assert_int_equal(tb_toml_int(path(doc, "inline.a.b")), 1);
  assert_int_equal(tb_toml_int(path(doc, "quoted key")), 1);
  assert_true(tb_toml_bool(tb_toml_get(path(doc, "site"), "google.com")));

  assert_string_equal(tb_toml_str(path(doc, "table.key"), NULL), "value");
  assert_int_equal(tb_toml_type(path(doc, "table.sub")), TB_TOML_TABLE);
  const tb_toml_value_t *fruits = path(doc, "fruits");
  assert_int_equal(tb_toml_type(fruits), TB_TOML_ARRAY);
  assert_int_equal(tb_toml_len(fruits), 2);
  const tb_toml_value_t *apple = tb_toml_at(fruits, 0);
  assert_string_equal(tb_toml_str(tb_toml_get(apple, "name"), NULL), "apple");
  assert_string_equal(tb_toml_str(tb_toml_get(tb_toml_get(apple, "physical"), "color"), NULL), "red");
  assert_int_equal(tb_toml_len(tb_toml_get(apple, "varieties")), 1);
  assert_string_equal(tb_toml_str(tb_toml_get(tb_toml_at(fruits, 1), "name"), NULL), "banana");
  assert_int_equal(tb_toml_int(path(doc, "x.w")), 1);
  assert_int_equal(tb_toml_type(path(doc, "x.y.z")), TB_TOML_TABLE);

  /* Entries come back in document order. */
  const tb_toml_value_t *val = NULL;
  tb_toml_pos_t kp;
  assert_string_equal(tb_toml_entry(root, 0, &len, &val, &kp), "title");
  assert_int_equal(len, 5);
  assert_ptr_equal(val, path(doc, "title"));
  assert_string_equal(tb_toml_entry(root, 1, NULL, NULL, NULL), "literal");
  assert_null(tb_toml_entry(root, tb_toml_len(root), NULL, NULL, NULL));
  tb_toml_free(doc);
}

/* Table-definition rules where TOML 1.0 allows more than one might guess. */
static void test_table_rules(void **state) {
  (void)state;
  /* Headers only implied a.b, so dotted keys in [a] may still define it. */
  tb_toml_doc_t *doc = parse_ok("[a.b.c]\nx = 1\n[a]\nb.d = 2\n");
  assert_int_equal(tb_toml_int(path(doc, "a.b.d")), 2);
  assert_int_equal(tb_toml_int(path(doc, "a.b.c.x")), 1);
  tb_toml_free(doc);
  /* Sub-tables of a dotted-key table may get headers; the table itself may not. */
  doc = parse_ok("[fruit]\napple.color = \"red\"\n[fruit.apple.texture]\nsmooth = true\n");
  assert_true(tb_toml_bool(path(doc, "fruit.apple.texture.smooth")));
  tb_toml_free(doc);
  /* A header below an array of tables belongs to its latest element. */
  doc = parse_ok("[[a]]\n[[a]]\n[a.b]\nc = 1\n");
  assert_null(tb_toml_get(tb_toml_at(path(doc, "a"), 0), "b"));
  assert_int_equal(tb_toml_int(tb_toml_get(tb_toml_get(tb_toml_at(path(doc, "a"), 1), "b"), "c")), 1);
  tb_toml_free(doc);
}

static void test_wrong_types_and_null(void **state) {
  (void)state;
  tb_toml_doc_t *doc = parse_ok("s = \"x\"\ni = 3\n");
  const tb_toml_value_t *s = path(doc, "s"), *i = path(doc, "i");
  size_t len = 99;
  assert_null(tb_toml_str(i, &len));
  assert_int_equal(len, 0);
  assert_int_equal(tb_toml_int(s), 0);
  assert_true(tb_toml_float(i) == 0.0);
  assert_false(tb_toml_bool(i));
  assert_null(tb_toml_datetime(i));
  assert_int_equal(tb_toml_len(s), 0);
  assert_null(tb_toml_at(s, 0));
  assert_null(tb_toml_get(s, "x"));
  assert_null(tb_toml_entry(s, 0, NULL, NULL, NULL));
  assert_null(tb_toml_get(tb_toml_root(doc), "missing"));
  assert_null(tb_toml_get(tb_toml_root(doc), NULL));

  assert_int_equal(tb_toml_type(NULL), 0);
  assert_int_equal(tb_toml_pos(NULL).line, 0);
  assert_null(tb_toml_root(NULL));
  assert_int_equal(tb_toml_len(NULL), 0);
  assert_null(tb_toml_get(NULL, "x"));
  assert_null(tb_toml_str(NULL, NULL));
  tb_toml_free(NULL);

  assert_string_equal(tb_toml_type_name(TB_TOML_TABLE), "table");
  assert_string_equal(tb_toml_type_name(TB_TOML_ARRAY), "array");
  assert_string_equal(tb_toml_type_name(TB_TOML_STRING), "string");
  assert_string_equal(tb_toml_type_name(TB_TOML_INTEGER), "integer");
  assert_string_equal(tb_toml_type_name(TB_TOML_FLOAT), "float");
  assert_string_equal(tb_toml_type_name(TB_TOML_BOOL), "boolean");
  assert_string_equal(tb_toml_type_name(TB_TOML_LOCAL_TIME), "local time");
  assert_string_equal(tb_toml_type_name((tb_toml_type_t)99), "unknown");

  tb_toml_doc_t *out = (tb_toml_doc_t *)1;
  assert_int_equal(tb_toml_parse(NULL, 1, &out, NULL), TB_EINVAL);
  assert_null(out);
  assert_int_equal(tb_toml_parse("a=1", 3, NULL, NULL), TB_EINVAL);
  assert_int_equal(tb_toml_parse(NULL, 0, &out, NULL), 0);
  assert_int_equal(tb_toml_len(tb_toml_root(out)), 0);
  tb_toml_free(out);
  tb_toml_free(doc);
}

static void assert_pos(tb_toml_pos_t p, unsigned line, unsigned col) {
  if (p.line != line || p.col != col)
    fail_msg("expected position %u:%u, got %u:%u", line, col, p.line, p.col);
}

/* Position of the entry named `key` in `table`. */
static tb_toml_pos_t key_pos(const tb_toml_value_t *table, const char *key) {
  tb_toml_pos_t kp = {0, 0};
  for (size_t i = 0; i < tb_toml_len(table); i++) {
    const char *k = tb_toml_entry(table, i, NULL, NULL, &kp);
    if (strcmp(k, key) == 0) return kp;
  }
  fail_msg("no key %s", key);
  return kp;
}

static void test_positions(void **state) {
  (void)state;
  tb_toml_doc_t *doc = parse_ok(
      "name = \"x\"\n"                    /* 1 */
      "  \"ключ\" = 'é'   # unicode\n"    /* 2: columns count characters */
      "a.b.c = [1,\n"                     /* 3 */
      "\t2]\n"                            /* 4 */
      "t = { u = 1, v = { w = 2 } }\r\n"  /* 5: CRLF */
      "\n"                                /* 6 */
      "[sec.sub]  \n"                     /* 7 */
      "x = \"\"\"\nline\n\"\"\"\n"        /* 8-10 */
      "y = 1\n"                           /* 11 */
      "[[arr]]\n"                         /* 12 */
      "[[arr]]\n"                         /* 13 */
      "[sec]\n");                         /* 14 */
  const tb_toml_value_t *root = tb_toml_root(doc);
  assert_pos(tb_toml_pos(root), 1, 1);
  assert_pos(key_pos(root, "name"), 1, 1);
  assert_pos(tb_toml_pos(path(doc, "name")), 1, 8);
  assert_pos(key_pos(root, "ключ"), 2, 3);
  assert_pos(tb_toml_pos(tb_toml_get(root, "ключ")), 2, 12);
  assert_pos(key_pos(root, "a"), 3, 1);
  assert_pos(tb_toml_pos(path(doc, "a")), 3, 1);
  assert_pos(key_pos(path(doc, "a"), "b"), 3, 3);
  assert_pos(key_pos(path(doc, "a.b"), "c"), 3, 5);
  const tb_toml_value_t *c = path(doc, "a.b.c");
  assert_pos(tb_toml_pos(c), 3, 9);
  assert_pos(tb_toml_pos(tb_toml_at(c, 0)), 3, 10);
  assert_pos(tb_toml_pos(tb_toml_at(c, 1)), 4, 2);
  assert_pos(tb_toml_pos(path(doc, "t")), 5, 5);
  assert_pos(key_pos(path(doc, "t"), "v"), 5, 14);
  assert_pos(tb_toml_pos(path(doc, "t.v")), 5, 18);
  assert_pos(tb_toml_pos(path(doc, "t.v.w")), 5, 24);
  /* [sec.sub] implied sec at line 7; [sec] defined it at line 14. */
  assert_pos(tb_toml_pos(path(doc, "sec")), 14, 1);
  assert_pos(key_pos(root, "sec"), 7, 2);
  assert_pos(tb_toml_pos(path(doc, "sec.sub")), 7, 1);
  assert_pos(key_pos(path(doc, "sec"), "sub"), 7, 6);
  assert_pos(tb_toml_pos(path(doc, "sec.sub.x")), 8, 5);
  assert_pos(key_pos(path(doc, "sec.sub"), "y"), 11, 1);
  assert_pos(tb_toml_pos(path(doc, "sec.sub.y")), 11, 5);
  const tb_toml_value_t *arr = path(doc, "arr");
  assert_pos(tb_toml_pos(arr), 12, 1);
  assert_pos(key_pos(root, "arr"), 12, 3);
  assert_pos(tb_toml_pos(tb_toml_at(arr, 1)), 13, 1);
  tb_toml_free(doc);

  /* A byte order mark is not a column. */
  doc = parse_ok("\xEF\xBB\xBFk = 1\n");
  assert_pos(key_pos(tb_toml_root(doc), "k"), 1, 1);
  assert_pos(tb_toml_pos(path(doc, "k")), 1, 5);
  tb_toml_free(doc);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("name \"x\"\n", 1, 6, "expected '=' after key \"name\"");
  expect_error("a = 1\n\nb = \"bad \\q escape\"\n", 3, 10, "invalid escape sequence \\q in string");
  expect_error("x = 1\ny = 2\na = 1\nb = 2\na = 3\n", 5, 1, "key \"a\" is already defined at line 3");
  expect_error("[t]\nk = 1\n[t]\n", 3, 2, "table \"t\" is already defined at line 1");
  expect_error("a = [1, 2\n", 2, 1, "expected ']' to close the array opened at line 1");
  expect_error("a = { b = 1,\n c = 2 }\n", 1, 13, "inline table must stay on one line");
  expect_error("a = { b = 1, }\n", 1, 12, "trailing comma");
  expect_error("v = 2023-02-29\n", 1, 13, "2023-02 has no day 29");
  expect_error("v = 25:00:00\n", 1, 5, "hour 25");
  expect_error("v = 07:32\n", 1, 5, "seconds are required");
  expect_error("v = 9223372036854775808\n", 1, 5, "does not fit");
  expect_error("v = 0x8000000000000000\n", 1, 5, "does not fit");
  expect_error("v = 1__0\n", 1, 6, "underscore");
  expect_error("v = 012\n", 1, 5, "leading zeros");
  expect_error("v = 1e400\n", 1, 5, "too large");
  expect_error("v = \"\\e\"\n", 1, 6, "\\e"); /* TOML 1.1 only */
  expect_error("v = \"\\x41\"\n", 1, 6, "\\x"); /* TOML 1.1 only */
  expect_error("v = yes\n", 1, 5, "invalid value \"yes\"");
  expect_error("v = truely\n", 1, 5, "invalid boolean \"truely\"");
  expect_error("a = 1 b = 2\n", 1, 7, "expected a newline after the value");
  expect_error("a = 1\rb = 2\n", 1, 6, "carriage return");
  expect_error("s = \"tab\tok but bell \a not\"\n", 1, 22, "control character U+0007");
  expect_error("# comment \x7f\n", 1, 11, "control character U+007F");
  expect_error("s = \"\xC3\x28\"\n", 1, 6, "invalid UTF-8");
  expect_error("a.b = 1\na.b.c = 2\n", 2, 3, "key \"a.b\" is already defined at line 1");
  expect_error("[a]\nb.c = 1\n[a.b]\n", 3, 4, "already defined by dotted keys at line 2");
  expect_error("[a.b.c]\n[a]\nb.c.d = 1\n", 3, 3, "table \"b.c\" is defined by the header at line 1");
  expect_error("[a.b.c]\n[a]\nb.d = 1\n[a.b]\n", 4, 4, "already defined by dotted keys at line 3");
  expect_error("[[a.b]]\n[a]\nb.c = 1\n", 3, 1, "array of tables (line 1)");
  expect_error("a = {}\n[a.b]\n", 2, 2, "inline table \"a\" (line 1) cannot be extended");
  expect_error("a = []\n[[a]]\n", 2, 3, "only arrays made with [[...]]");
  expect_error("[[a]]\n[a]\n", 2, 2, "already defined as an array of tables at line 1");
  expect_error("s = \"abc\n", 1, 9, "newline in a single-line string");
  expect_error("s = \"\"\"abc", 1, 11, "unterminated string (opened at line 1, column 5)");
  expect_error("[a b]\n", 1, 4, "expected ']' to close the table header");
  expect_error("\"\"\"k\"\"\" = 1\n", 1, 1, "multi-line string cannot be used as a key");
  expect_error("= 1\n", 1, 1, "expected a key");
  expect_error("k =\n", 1, 4, "expected a value, found end of line");
  expect_error("k = 1979-05-27T\n", 1, 15, "expected a time after 'T'");
}

/* Builds "k<i> = <i>\n" lines for n keys. */
static char *many_keys(size_t n, const char *prefix, size_t *len) {
  size_t cap = n * 32 + strlen(prefix) + 64, o = 0;
  char *s = malloc(cap);
  assert_non_null(s);
  o += (size_t)snprintf(s, cap, "%s", prefix);
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(s + o, cap - o, "k%zu = %zu\n", i, i);
  *len = o;
  return s;
}

static void test_large_table(void **state) {
  (void)state;
  size_t n = 100000, len;
  char *text = many_keys(n, "[big]\n", &len);
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  assert_int_equal(parse_n(text, len, &doc, &err), 0);
  const tb_toml_value_t *big = path(doc, "big");
  assert_int_equal(tb_toml_len(big), n);
  char key[32];
  for (size_t i = 0; i < n; i += 7) {
    snprintf(key, sizeof key, "k%zu", i);
    assert_int_equal(tb_toml_int(tb_toml_get(big, key)), (int64_t)i);
  }
  assert_null(tb_toml_get(big, "k100000"));
  tb_toml_free(doc);

  /* A duplicate at the very end is still found through the index. */
  char *dup = malloc(len + 32);
  assert_non_null(dup);
  memcpy(dup, text, len);
  memcpy(dup + len, "k5 = 0\n", 7);
  assert_int_equal(parse_n(dup, len + 7, &doc, &err), TB_EPARSE);
  assert_int_equal(err.line, n + 2);
  assert_non_null(strstr(err.msg, "key \"k5\" is already defined at line 7"));
  free(dup);
  free(text);

  /* Many array-of-tables elements and array elements are linear too. */
  size_t cap = n * 16, o = 0;
  text = malloc(cap);
  assert_non_null(text);
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(text + o, cap - o, "[[a]]\nv=%zu\n", i);
  assert_int_equal(parse_n(text, o, &doc, &err), 0);
  assert_int_equal(tb_toml_len(path(doc, "a")), n);
  assert_int_equal(tb_toml_int(tb_toml_get(tb_toml_at(path(doc, "a"), n - 1), "v")), n - 1);
  tb_toml_free(doc);
  o = (size_t)snprintf(text, cap, "a = [");
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(text + o, cap - o, "%zu,", i);
  o += (size_t)snprintf(text + o, cap - o, "]");
  assert_int_equal(parse_n(text, o, &doc, &err), 0);
  assert_int_equal(tb_toml_len(path(doc, "a")), n);
  tb_toml_free(doc);
  free(text);
}

/* n nested openings of `open` around 1, closed by `close`. */
static char *nested(size_t n, const char *prefix, const char *open, const char *mid,
                    const char *close, size_t *len) {
  size_t cap = strlen(prefix) + n * (strlen(open) + strlen(close)) + strlen(mid) + 1, o = 0;
  char *s = malloc(cap);
  assert_non_null(s);
  o += (size_t)snprintf(s, cap, "%s", prefix);
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(s + o, cap - o, "%s", open);
  o += (size_t)snprintf(s + o, cap - o, "%s", mid);
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(s + o, cap - o, "%s", close);
  *len = o;
  return s;
}

static void expect_depth(size_t n, const char *prefix, const char *open, const char *mid,
                         const char *close, int want) {
  size_t len;
  char *text = nested(n, prefix, open, mid, close, &len);
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  int rc = parse_n(text, len, &doc, &err);
  if (rc != want)
    fail_msg("depth %zu of %s: expected %s, got %s (%u:%u: %s)", n, open, tb_err_name(want),
             tb_err_name(rc), err.line, err.col, err.msg);
  if (rc == TB_EPARSE) assert_non_null(strstr(err.msg, "deeper than 128"));
  tb_toml_free(doc);
  free(text);
}

static void test_deep_nesting(void **state) {
  (void)state;
  const int max = TB_TOML_MAX_DEPTH;
  expect_depth((size_t)max, "a = ", "[", "1", "]", 0);
  expect_depth((size_t)max + 1, "a = ", "[", "1", "]", TB_EPARSE);
  expect_depth((size_t)max, "a = ", "{b=", "1", "}", 0);
  expect_depth((size_t)max + 1, "a = ", "{b=", "1", "}", TB_EPARSE);
  expect_depth(100000, "a = ", "[", "", "]", TB_EPARSE);
  expect_depth(100000, "a = ", "{b=", "1", "}", TB_EPARSE);
  expect_depth(100000, "a = ", "[{b=", "1", "}]", TB_EPARSE);
  /* Tables from headers and dotted keys count too, so any tree walk stays shallow. */
  expect_depth((size_t)max, "", "a.", "b = 1", "", 0);
  expect_depth((size_t)max + 1, "", "a.", "b = 1", "", TB_EPARSE);
  expect_depth((size_t)max, "[", "a.", "b]", "", TB_EPARSE);
  expect_depth(5000, "[[", "a.", "b]]", "", TB_EPARSE);
}

static void test_not_nul_terminated(void **state) {
  (void)state;
  /* Every prefix of a rich document either parses or fails cleanly, never reads past. */
  size_t n = strlen(rich_doc);
  for (size_t i = 0; i <= n; i++) {
    tb_toml_doc_t *doc = NULL;
    tb_toml_error_t err;
    int rc = parse_n(rich_doc, i, &doc, &err);
    assert_true(rc == 0 || rc == TB_EPARSE);
    if (rc == TB_EPARSE) {
      assert_true(err.line >= 1 && err.col >= 1 && err.msg[0] != '\0');
      assert_null(doc);
    }
    tb_toml_free(doc);
  }
  tb_toml_doc_t *doc = NULL;
  assert_int_equal(parse_n("a = 12", 6, &doc, NULL), 0);
  assert_int_equal(tb_toml_int(path(doc, "a")), 12);
  tb_toml_free(doc);
  assert_int_equal(parse_n("a = 12", 5, &doc, NULL), 0);
  assert_int_equal(tb_toml_int(path(doc, "a")), 1);
  tb_toml_free(doc);
  assert_int_equal(parse_n("a = tr", 6, &doc, NULL), TB_EPARSE);
  assert_int_equal(parse_n("a = 1979-05-2", 13, &doc, NULL), TB_EPARSE);
  assert_int_equal(parse_n("a = \"\\u00", 9, &doc, NULL), TB_EPARSE);
}

static void test_nul_in_keys_and_strings(void **state) {
  (void)state;
  tb_toml_doc_t *doc = parse_ok("\"a\\u0000b\" = \"x\\u0000y\"\n");
  const tb_toml_value_t *root = tb_toml_root(doc);
  size_t klen, slen;
  const tb_toml_value_t *v;
  const char *k = tb_toml_entry(root, 0, &klen, &v, NULL);
  assert_int_equal(klen, 3);
  assert_memory_equal(k, "a\0b", 4);
  assert_ptr_equal(tb_toml_getn(root, "a\0b", 3), v);
  assert_null(tb_toml_get(root, "a"));
  assert_memory_equal(tb_toml_str(v, &slen), "x\0y", 4);
  assert_int_equal(slen, 3);
  tb_toml_free(doc);
}

static void test_float_ignores_locale(void **state) {
  (void)state;
  /* A program that set a locale with a decimal comma must still read 1.5 as 1.5. */
  const char *locales[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "C.UTF-8"};
  for (size_t i = 0; i < sizeof locales / sizeof locales[0]; i++)
    if (setlocale(LC_NUMERIC, locales[i]) != NULL) break;
  tb_toml_doc_t *doc = parse_ok("f = 1.5\ng = 2e-3\n");
  assert_true(tb_toml_float(path(doc, "f")) == 1.5);
  assert_true(tb_toml_float(path(doc, "g")) == 2e-3);
  tb_toml_free(doc);
  setlocale(LC_NUMERIC, "C");
}

/* Fails the n-th allocation and onwards for n = 0, 1, 2, ... until parsing succeeds. */
static void test_alloc_failure(void **state) {
  (void)state;
  size_t len;
  char *text = many_keys(40, rich_doc, &len); /* enough keys to build a hash index */
  int successes = 0;
  long n;
  for (n = 0; n < 100000 && successes == 0; n++) {
    tb_toml_doc_t *doc = (tb_toml_doc_t *)1;
    tb_toml_error_t err;
    tb_alloc_fail_after(n);
    int rc = tb_toml_parse(text, len, &doc, &err);
    tb_alloc_fail_after(-1);
    if (rc == TB_ENOMEM) {
      assert_null(doc);
      assert_string_equal(err.msg, "out of memory");
      continue;
    }
    if (rc != 0) fail_msg("n=%ld: %s at %u:%u: %s", n, tb_err_name(rc), err.line, err.col, err.msg);
    assert_int_equal(tb_toml_int(path(doc, "x.k39")), 39); /* rich_doc ends in [x] */
    assert_string_equal(tb_toml_str(path(doc, "title"), NULL), "TOML \"example\" \xC3\xA9\xF0\x9F\x98\x80");
    tb_toml_free(doc);
    successes++;
  }
  assert_int_equal(successes, 1);
  assert_true(n > 3); /* the walk did go through failures */
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_table_rules),
      cmocka_unit_test(test_wrong_types_and_null),
      cmocka_unit_test(test_positions),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_large_table),
      cmocka_unit_test(test_deep_nesting),
      cmocka_unit_test(test_not_nul_terminated),
      cmocka_unit_test(test_nul_in_keys_and_strings),
      cmocka_unit_test(test_float_ignores_locale),
      cmocka_unit_test(test_alloc_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
