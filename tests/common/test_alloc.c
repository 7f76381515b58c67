/* test_alloc.c — allocation wrappers and failure injection. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "tb/alloc.h"
#include "test.h"

static void basic(void **state) {
  char *s = tb_strdup("hello");
  assert_non_null(s);
  assert_string_equal(s, "hello");
  tb_free(s);
  s = tb_strndup("hello world", 5);
  assert_string_equal(s, "hello");
  tb_free(s);
  void *z = tb_malloc(0);
  assert_non_null(z);
  tb_free(z);
  tb_free(NULL);
}

static void overflow_is_refused(void **state) {
  assert_null(tb_calloc(SIZE_MAX / 2, 4));
  assert_null(tb_reallocarray(NULL, SIZE_MAX / 2, 4));
  assert_null(tb_strndup("x", SIZE_MAX));
}

static void injection_fails_after_n(void **state) {
  tb_alloc_fail_after(2);
  void *a = tb_malloc(8), *b = tb_calloc(1, 8), *c = tb_malloc(8), *d = tb_strdup("x");
  tb_alloc_fail_after(-1);
  assert_non_null(a);
  assert_non_null(b);
  assert_null(c);
  assert_null(d);
  void *e = tb_malloc(8);
  assert_non_null(e);
  tb_free(a);
  tb_free(b);
  tb_free(e);
}

static void failed_realloc_keeps_block(void **state) {
  char *p = tb_malloc(4);
  memcpy(p, "abc", 4);
  tb_alloc_fail_after(0);
  assert_null(tb_realloc(p, 1024));
  tb_alloc_fail_after(-1);
  assert_string_equal(p, "abc");
  tb_free(p);
}

static void *other_thread(void *arg) {
  void *p = tb_malloc(16);
  *(int *)arg = p != NULL;
  tb_free(p);
  return NULL;
}

static void injection_is_per_thread(void **state) {
  int ok = 0;
  pthread_t t;
  tb_alloc_fail_after(0);
  pthread_create(&t, NULL, other_thread, &ok);
  pthread_join(t, NULL);
  assert_null(tb_malloc(1));
  tb_alloc_fail_after(-1);
  assert_int_equal(ok, 1);
}

static void counts_calls(void **state) {
  unsigned long before = tb_alloc_count();
  tb_free(tb_malloc(1));
  tb_free(tb_calloc(2, 2));
  assert_int_equal(tb_alloc_count() - before, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(basic),
      cmocka_unit_test(overflow_is_refused),
      cmocka_unit_test(injection_fails_after_n),
      cmocka_unit_test(failed_realloc_keeps_block),
      cmocka_unit_test(injection_is_per_thread),
      cmocka_unit_test(counts_calls),
  };
  return TB_RUN(tests);
}
