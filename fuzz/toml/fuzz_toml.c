/*
 * fuzz_toml.c — libFuzzer target for the TOML parser (lib/toml).
 *
 * Parses the input as a TOML document. A rejection must come with TB_EPARSE, a 1-based
 * position and a sentence; an accepted document is walked entirely through the public
 * accessors, checking what they promise: positions are 1-based, every key finds its own
 * value again through tb_toml_getn, strings are NUL-terminated at their length, and
 * date-time fields are in range. Then the input is parsed once more with an allocation
 * failure injected at an input-derived point among the allocations the first parse made,
 * which must end in TB_ENOMEM (leaks on that path are LeakSanitizer's to find). Any broken
 * promise aborts, so the fuzzer reports it. fuzz/replay.c runs the same function over the
 * checked-in corpus in every build.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "tb/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
  if (!ok) abort();
}

static void check_pos(tb_toml_pos_t p) { check(p.line >= 1 && p.col >= 1); }

static void check_datetime(const tb_toml_value_t *v) {
  const tb_toml_datetime_t *dt = tb_toml_datetime(v);
  check(dt != NULL);
  tb_toml_type_t t = tb_toml_type(v);
  if (t != TB_TOML_LOCAL_TIME)
    check(dt->year >= 0 && dt->year <= 9999 && dt->month >= 1 && dt->month <= 12 &&
          dt->day >= 1 && dt->day <= 31);
  if (t != TB_TOML_LOCAL_DATE)
    check(dt->hour >= 0 && dt->hour <= 23 && dt->minute >= 0 && dt->minute <= 59 &&
          dt->second >= 0 && dt->second <= 60 && dt->nanosecond < 1000000000u);
  if (t == TB_TOML_DATETIME) check(dt->offset_minutes > -24 * 60 && dt->offset_minutes < 24 * 60);
}

static void walk(const tb_toml_value_t *v, int depth) {
  check(v != NULL);
  check(depth <= TB_TOML_MAX_DEPTH + 1);
  check_pos(tb_toml_pos(v));
  check(tb_toml_type_name(tb_toml_type(v)) != NULL);
  size_t len = 0;
  switch (tb_toml_type(v)) {
  case TB_TOML_TABLE:
    for (size_t i = 0; i < tb_toml_len(v); i++) {
      const tb_toml_value_t *child = NULL;
      tb_toml_pos_t kp;
      const char *key = tb_toml_entry(v, i, &len, &child, &kp);
      check(key != NULL && key[len] == '\0');
      check_pos(kp);
      check(tb_toml_getn(v, key, len) == child);
      if (memchr(key, '\0', len) == NULL) check(tb_toml_get(v, key) == child);
      walk(child, depth + 1);
    }
    check(tb_toml_entry(v, tb_toml_len(v), NULL, NULL, NULL) == NULL);
    break;
  case TB_TOML_ARRAY:
    for (size_t i = 0; i < tb_toml_len(v); i++) walk(tb_toml_at(v, i), depth + 1);
    check(tb_toml_at(v, tb_toml_len(v)) == NULL);
    break;
  case TB_TOML_STRING: {
    const char *s = tb_toml_str(v, &len);
    check(s != NULL && s[len] == '\0');
    break;
  }
  case TB_TOML_INTEGER:
    (void)tb_toml_int(v);
    break;
  case TB_TOML_FLOAT:
    (void)tb_toml_float(v);
    break;
  case TB_TOML_BOOL:
    (void)tb_toml_bool(v);
    break;
  case TB_TOML_DATETIME:
  case TB_TOML_LOCAL_DATETIME:
  case TB_TOML_LOCAL_DATE:
  case TB_TOML_LOCAL_TIME:
    check_datetime(v);
    break;
  default:
    abort();
  }
}

/* The same allocations happen in the same order for the same input, so failing the
 * k-th of the `used` allocations of a parse must turn that parse into TB_ENOMEM. */
static void parse_failing_alloc(const uint8_t *data, size_t size, unsigned long used) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ULL;
  tb_toml_doc_t *doc = (tb_toml_doc_t *)1;
  tb_toml_error_t err;
  tb_alloc_fail_after((long)(h % used));
  int rc = tb_toml_parse((const char *)data, size, &doc, &err);
  tb_alloc_fail_after(-1);
  check(rc == TB_ENOMEM && doc == NULL && strcmp(err.msg, "out of memory") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t err;
  unsigned long before = tb_alloc_count();
  int rc = tb_toml_parse((const char *)data, size, &doc, &err);
  unsigned long used = tb_alloc_count() - before;
  if (rc != 0) {
    check(rc == TB_EPARSE && doc == NULL);
    check(err.line >= 1 && err.col >= 1 && err.msg[0] != '\0');
    check(memchr(err.msg, '\0', sizeof err.msg) != NULL);
  } else {
    const tb_toml_value_t *root = tb_toml_root(doc);
    check(tb_toml_type(root) == TB_TOML_TABLE);
    walk(root, 0);
    tb_toml_free(doc);
  }
  if (used > 0) parse_failing_alloc(data, size, used);
  return 0;
}
