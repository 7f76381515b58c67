/* test_err.c — the error table: names, sentences, errno mapping, tb_errf. */
#include <string.h>

#include "tb/err.h"
#include "test.h"

static void names_and_messages(void **state) {
  assert_string_equal(tb_err_name(TB_ENOENT), "TB_ENOENT");
  assert_string_equal(tb_strerror(TB_ENOENT), "no such file or directory");
  assert_string_equal(tb_err_name(TB_EPARSE), "TB_EPARSE");
  assert_string_equal(tb_strerror(TB_ETOOBIG), "size limit exceeded");
  assert_string_equal(tb_err_name(0), "TB_OK");
  assert_string_equal(tb_err_name(-123456), "TB_EUNKNOWN");
  assert_string_equal(tb_strerror(-123456), "unknown error");
}

static void every_code_is_distinct_and_named(void **state) {
  static const int codes[] = {
#define X(name, value, msg) TB_##name,
      TB_ERR_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    assert_true(codes[i] < 0);
    assert_string_not_equal(tb_err_name(codes[i]), "TB_EUNKNOWN");
    for (size_t j = i + 1; j < n; j++) assert_int_not_equal(codes[i], codes[j]);
  }
}

static void errno_maps_to_negative(void **state) {
  assert_int_equal(tb_err_from_errno(ENOENT), TB_ENOENT);
  assert_int_equal(tb_err_from_errno(EACCES), TB_EACCES);
  assert_int_equal(tb_err_from_errno(0), TB_EINTERNAL);
}

static void errf_formats_and_returns_code(void **state) {
  char text[32];
  tb_errbuf_t eb = {text, sizeof text};
  assert_int_equal(tb_errf(&eb, TB_EPARSE, "line %d: %s", 7, "bad"), TB_EPARSE);
  assert_string_equal(text, "line 7: bad");
  /* A long sentence is cut, never overflows. */
  tb_errf(&eb, TB_EPARSE, "%s", "0123456789012345678901234567890123456789");
  assert_int_equal(strlen(text), sizeof text - 1);
  /* No buffer: still returns the code. */
  assert_int_equal(tb_errf(NULL, TB_EIO, "x"), TB_EIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_and_messages),
      cmocka_unit_test(every_code_is_distinct_and_named),
      cmocka_unit_test(errno_maps_to_negative),
      cmocka_unit_test(errf_formats_and_returns_code),
  };
  return TB_RUN(tests);
}
