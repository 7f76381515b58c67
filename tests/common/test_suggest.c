/* test_suggest.c — edit distance and did-you-mean. */
#include "tb/suggest.h"
#include "test.h"

static void distance(void **state) {
  assert_int_equal(tb_edit_distance("", ""), 0);
  assert_int_equal(tb_edit_distance("docker", "docker"), 0);
  assert_int_equal(tb_edit_distance("dockr", "docker"), 1);
  assert_int_equal(tb_edit_distance("nmae", "name"), 1); /* transposition */
  assert_int_equal(tb_edit_distance("kitten", "sitting"), 3);
  assert_int_equal(tb_edit_distance("RUNTIME", "runtime"), 0);
}

static void suggestions(void **state) {
  static const char *const keys[] = {"name", "id", "description"};
  assert_string_equal(tb_suggest("nmae", keys, 3), "name");
  assert_string_equal(tb_suggest("descripton", keys, 3), "description");
  assert_string_equal(tb_suggest("ib", keys, 3), "id");
  assert_null(tb_suggest("version", keys, 3));
  assert_null(tb_suggest("x", keys, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(distance),
      cmocka_unit_test(suggestions),
  };
  return TB_RUN(tests);
}
