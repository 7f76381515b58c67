/* test_buf.c — slices and bounded buffers. */
#include <string.h>

#include "tb/alloc.h"
#include "tb/buf.h"
#include "tb/err.h"
#include "test.h"

static void slices(void **state) {
  tb_slice_t a = tb_slice_cstr("hello"), b = tb_slice("hello world", 5);
  assert_true(tb_slice_eq(a, b));
  assert_true(tb_slice_eq_cstr(a, "hello"));
  assert_false(tb_slice_eq_cstr(a, "hell"));
  assert_true(tb_slice_starts_with(tb_slice_cstr("hello world"), a));
  assert_false(tb_slice_starts_with(a, tb_slice_cstr("hello world")));
  assert_true(tb_slice_eq(tb_slice(NULL, 0), tb_slice_cstr("")));
}

static void append_and_grow(void **state) {
  tb_buf_t b;
  tb_buf_init(&b, 1 << 20);
  assert_string_equal(tb_buf_cstr(&b), "");
  for (int i = 0; i < 1000; i++) assert_int_equal(tb_buf_printf(&b, "%d,", i), 0);
  assert_int_equal(strncmp(tb_buf_cstr(&b), "0,1,2,", 6), 0);
  assert_int_equal(b.data[b.len], '\0');
  assert_int_equal(tb_buf_putc(&b, 'x'), 0);
  assert_int_equal(tb_buf_puts(&b, "yz"), 0);
  assert_int_equal(memcmp(b.data + b.len - 3, "xyz", 3), 0);
  tb_buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_string_equal(tb_buf_cstr(&b), "");
  tb_buf_deinit(&b);
}

static void limit_is_exact_and_leaves_buffer_intact(void **state) {
  tb_buf_t b;
  tb_buf_init(&b, 10);
  assert_int_equal(tb_buf_append(&b, "0123456789", 10), 0);
  assert_int_equal(tb_buf_putc(&b, 'x'), TB_ETOOBIG);
  assert_int_equal(tb_buf_printf(&b, "%s", "more"), TB_ETOOBIG);
  assert_int_equal(b.len, 10);
  assert_string_equal(tb_buf_cstr(&b), "0123456789");
  assert_int_equal(tb_buf_reserve(&b, SIZE_MAX), TB_ETOOBIG);
  tb_buf_deinit(&b);
}

static void allocation_failure(void **state) {
  tb_buf_t b;
  tb_buf_init(&b, 1000);
  tb_alloc_fail_after(0);
  assert_int_equal(tb_buf_puts(&b, "abc"), TB_ENOMEM);
  tb_alloc_fail_after(-1);
  assert_int_equal(b.len, 0);
  assert_int_equal(tb_buf_puts(&b, "abc"), 0);
  tb_buf_deinit(&b);
}

static void steal(void **state) {
  tb_buf_t b;
  size_t len = 99;
  tb_buf_init(&b, 100);
  char *empty = tb_buf_steal(&b, &len);
  assert_string_equal(empty, "");
  assert_int_equal(len, 0);
  tb_free(empty);
  tb_buf_puts(&b, "data");
  char *s = tb_buf_steal(&b, &len);
  assert_string_equal(s, "data");
  assert_int_equal(len, 4);
  assert_null(b.data);
  assert_int_equal(b.max, 100);
  tb_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(slices),
      cmocka_unit_test(append_and_grow),
      cmocka_unit_test(limit_is_exact_and_leaves_buffer_intact),
      cmocka_unit_test(allocation_failure),
      cmocka_unit_test(steal),
  };
  return TB_RUN(tests);
}
