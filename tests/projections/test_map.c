/*
 * test_map.c — the UUID hash map of lib/projections, against a plain array.
 */
#include <stdlib.h>
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"
#include "test.h"

static uint64_t rng = 0x1234567;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void test_map(void **state) {
  enum { N = 20000 };
  tb__map_t m = {0};
  tb_uuid_t *keys_ = calloc(N, sizeof *keys_);
  bool *in = calloc(N, 1);
  for (int i = 0; i < N; i++) {
    uint64_t a = rnd(), b = rnd() % 64; /* low entropy in half the key on purpose */
    memcpy(keys_[i].b, &a, 8);
    memcpy(keys_[i].b + 8, &b, 8);
  }
  for (int round = 0; round < 200000; round++) {
    int i = (int)(rnd() % N);
    if (rnd() % 3) {
      if (!in[i]) {
        assert_int_equal(tb__map_put(&m, &keys_[i], &keys_[i]), 0);
        in[i] = true;
      }
    } else {
      void *v = tb__map_del(&m, &keys_[i]);
      assert_true(in[i] ? v == &keys_[i] : v == NULL);
      in[i] = false;
    }
    if (round % 1000 == 0) {
      size_t count = 0;
      for (int k = 0; k < N; k++) {
        void *v = tb__map_get(&m, &keys_[k]);
        assert_true(in[k] ? v == &keys_[k] : v == NULL);
        count += in[k];
      }
      assert_int_equal(count, m.len);
    }
  }
  size_t n = 0;
  void **sorted = tb__map_sorted(&m, &n);
  assert_int_equal(n, m.len);
  for (size_t i = 1; i < n; i++) assert_true(memcmp(((tb_uuid_t *)sorted[i - 1])->b, ((tb_uuid_t *)sorted[i])->b, 16) < 0);
  tb_free(sorted);
  tb__map_deinit(&m);
  free(keys_);
  free(in);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_map)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
