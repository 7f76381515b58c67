/* test_clock.c — monotonic and wall time, RFC 3339 formatting. */
#include <string.h>
#include <time.h>

#include "tb/clock.h"
#include "test.h"

static void monotonic_advances(void **state) {
  int64_t a = tb_clock_mono_ns();
  tb_clock_sleep_ms(5);
  int64_t b = tb_clock_mono_ns();
  assert_true(b - a >= 5 * TB_NS_PER_MS);
}

static void wall_matches_time(void **state) {
  int64_t ns = tb_clock_wall_ns();
  time_t t = time(NULL);
  assert_true(ns / TB_NS_PER_SEC - t <= 1 && t - ns / TB_NS_PER_SEC <= 1);
}

static void rfc3339(void **state) {
  char out[TB_RFC3339_MAX];
  assert_string_equal(tb_clock_format_rfc3339(0, out), "1970-01-01T00:00:00.000Z");
  assert_string_equal(tb_clock_format_rfc3339(INT64_C(1795308249123456789), out), "2026-11-22T00:44:09.123Z");
  assert_string_equal(tb_clock_format_rfc3339(-1, out), "1969-12-31T23:59:59.999Z");
  assert_string_equal(tb_clock_format_rfc3339(INT64_C(951782400) * TB_NS_PER_SEC, out), "2000-02-29T00:00:00.000Z");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(monotonic_advances),
      cmocka_unit_test(wall_matches_time),
      cmocka_unit_test(rfc3339),
  };
  return TB_RUN(tests);
}
