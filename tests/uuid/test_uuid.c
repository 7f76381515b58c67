/* test_uuid.c — RFC 9562 UUIDs: text forms, version and variant, and the v7 generator. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tb/clock.h"
#include "tb/err.h"
#include "tb/uuid.h"
#include "test.h"
#include "uuid_int.h"

#define N_TIGHT 1000000
#define N_THREADS 4
#define N_PER_THREAD 250000

static tb_uuid_t must_parse(const char *s) {
  tb_uuid_t u;
  assert_int_equal(tb_uuid_parse(s, strlen(s), &u), 0);
  return u;
}

/* The 42-bit counter a v7 UUID from our generator carries in rand_a and rand_b. */
static uint64_t counter_of(const tb_uuid_t *u) {
  uint64_t rand_a = (uint64_t)(u->b[6] & 0x0F) << 8 | u->b[7];
  uint64_t hi30 = (uint64_t)(u->b[8] & 0x3F) << 24 | (uint64_t)u->b[9] << 16 |
                  (uint64_t)u->b[10] << 8 | u->b[11];
  return rand_a << 30 | hi30;
}

static void parse_and_format_round_trip(void **state) {
  /* The DNS namespace UUID from RFC 9562 §6.6, a version 1 UUID. */
  tb_uuid_t u = must_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  static const uint8_t want[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
  assert_memory_equal(u.b, want, 16);
  char s[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&u, s);
  assert_string_equal(s, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  assert_int_equal(strlen(s), TB_UUID_STR_LEN);

  /* Upper and mixed case parse to the same bytes; formatting is always lower case. */
  tb_uuid_t upper = must_parse("6BA7B810-9DAD-11D1-80B4-00C04FD430C8");
  tb_uuid_t mixed = must_parse("6Ba7b810-9dAd-11d1-80B4-00c04fD430c8");
  assert_memory_equal(upper.b, want, 16);
  assert_memory_equal(mixed.b, want, 16);

  /* Only `len` bytes are read: a longer buffer with the UUID first is fine. */
  const char *longer = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b and more";
  tb_uuid_t p;
  assert_int_equal(tb_uuid_parse(longer, TB_UUID_STR_LEN, &p), 0);
  tb_uuid_format(&p, s);
  assert_string_equal(s, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");

  /* Generated UUIDs survive the round trip. */
  for (int i = 0; i < 1000; i++) {
    tb_uuid_t a, b;
    assert_int_equal(tb_uuid_v7_new(&a), 0);
    tb_uuid_format(&a, s);
    assert_int_equal(tb_uuid_parse(s, strlen(s), &b), 0);
    assert_int_equal(tb_uuid_compare(&a, &b), 0);
  }

  tb_uuid_t nil = {{0}}, max;
  memset(max.b, 0xFF, 16);
  tb_uuid_format(&nil, s);
  assert_string_equal(s, "00000000-0000-0000-0000-000000000000");
  tb_uuid_format(&max, s);
  assert_string_equal(s, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

static void parse_rejects_malformed(void **state) {
  static const struct {
    const char *s;
    size_t len; /* 0: strlen(s) */
    const char *why;
  } bad[] = {
      {"", 0, "empty"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c", 0, "35 characters"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c88", 0, "37 characters"},
      {"6ba7b8109dad11d180b400c04fd430c8", 0, "no hyphens"},
      {"6ba7b8109dad-11d1-80b4-00c04fd430c8", 0, "one hyphen missing"},
      {"6ba7b81-09dad-11d1-80b4-00c04fd430c8", 0, "first hyphen one early"},
      {"6ba7b810-9da-d11d1-80b4-00c04fd430c8", 0, "second hyphen one early"},
      {"6ba7b810-9dad-11d18-0b4-00c04fd430c8", 0, "third hyphen one late"},
      {"6ba7b810-9dad-11d1-80b400-c04fd430c8", 0, "fourth hyphen two late"},
      {"6ba7b810:9dad:11d1:80b4:00c04fd430c8", 0, "colons for hyphens"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430cg", 0, "non-hex g"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c ", 0, "trailing space"},
      {" 6ba7b810-9dad-11d1-80b4-00c04fd430c", 0, "leading space"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c\n", 0, "newline"},
      {"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", 0, "braces"},
      {"urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8", 0, "urn prefix"},
      {"+ba7b810-9dad-11d1-80b4-00c04fd430c8", 0, "sign"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430\0008", 36, "embedded NUL"},
      {"6ba7b810--dad-11d1-80b4-00c04fd430c8", 0, "hyphen where a digit belongs"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", 35, "len cuts the last digit"},
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", 37, "len takes the NUL"},
      {"\303\2516ba7b810-9dad-11d1-80b4-00c04fd4", 0, "non-ASCII"},
  };
  tb_uuid_t u, sentinel;
  memset(sentinel.b, 0xA5, 16);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].s);
    u = sentinel;
    int rc = tb_uuid_parse(bad[i].s, len, &u);
    if (rc != TB_EPARSE) fail_msg("accepted (%s): \"%s\"", bad[i].why, bad[i].s);
    assert_memory_equal(u.b, sentinel.b, 16); /* untouched on failure */
  }
  assert_int_equal(tb_uuid_parse(NULL, 0, &u), TB_EPARSE);
}

static void version_variant_and_validate(void **state) {
  tb_uuid_t u;
  assert_int_equal(tb_uuid_v7_new(&u), 0);
  assert_int_equal(tb_uuid_version(&u), 7);
  assert_int_equal(u.b[6] >> 4, 7);
  assert_int_equal(u.b[8] & 0xC0, 0x80); /* variant 10 */
  assert_int_equal(tb_uuid_validate(&u), 0);
  assert_false(tb_uuid_is_nil(&u));
  assert_false(tb_uuid_is_max(&u));

  tb_uuid_t nil = {{0}}, max;
  memset(max.b, 0xFF, 16);
  assert_true(tb_uuid_is_nil(&nil));
  assert_true(tb_uuid_is_max(&max));
  assert_false(tb_uuid_is_nil(&max));
  assert_false(tb_uuid_is_max(&nil));
  assert_int_equal(tb_uuid_validate(&nil), 0);
  assert_int_equal(tb_uuid_validate(&max), 0);
  assert_int_equal(tb_uuid_version(&nil), 0);
  assert_int_equal(tb_uuid_version(&max), 15);

  static const struct {
    const char *s;
    int want;
  } cases[] = {
      {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", 0},         /* v1 */
      {"000003e8-c2b5-21ef-9a00-325096b39f47", 0},         /* a v2 */
      {"5df41881-3aed-3515-88a7-2f4a814cf09e", 0},         /* v3, RFC 9562 A.2 */
      {"919108f7-52d1-4320-9bac-f847db4148a8", 0},         /* v4, RFC 9562 A.3 */
      {"2ed6657d-e927-568b-95e1-2665a8aea6a2", 0},         /* v5, RFC 9562 A.4 */
      {"1ec9414c-232a-6b00-b3c8-9f6bdeced846", 0},         /* a v6 */
      {"017f22e2-79b0-7cc3-98c4-dc0c0c07398f", 0},         /* v7, RFC 9562 A.6 */
      {"2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", 0},         /* v8, RFC 9562 B.1 */
      {"2489e9ad-2ee2-0e00-8ec9-32d5f69181c0", TB_EINVAL}, /* version 0 */
      {"2489e9ad-2ee2-9e00-8ec9-32d5f69181c0", TB_EINVAL}, /* version 9 */
      {"2489e9ad-2ee2-fe00-8ec9-32d5f69181c0", TB_EINVAL}, /* version 15 */
      {"017f22e2-79b0-7cc3-08c4-dc0c0c07398f", TB_EINVAL}, /* NCS variant 0xxx */
      {"017f22e2-79b0-7cc3-c8c4-dc0c0c07398f", TB_EINVAL}, /* Microsoft variant 110x */
      {"017f22e2-79b0-7cc3-e8c4-dc0c0c07398f", TB_EINVAL}, /* reserved variant 111x */
      {"00000000-0000-0000-0000-000000000001", TB_EINVAL}, /* almost nil */
      {"ffffffff-ffff-ffff-ffff-fffffffffffe", TB_EINVAL}, /* almost max */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    u = must_parse(cases[i].s);
    if (tb_uuid_validate(&u) != cases[i].want)
      fail_msg("tb_uuid_validate(%s) = %d, want %d", cases[i].s, tb_uuid_validate(&u),
               cases[i].want);
  }
}

static void unix_ms_reads_the_timestamp(void **state) {
  /* RFC 9562 A.6: 017f22e2-79b0-7cc3-98c4-dc0c0c07398f is 2022-02-22 19:22:22 UTC. */
  tb_uuid_t rfc = must_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  assert_int_equal(tb_uuid_v7_unix_ms(&rfc), INT64_C(1645557742000));
  tb_uuid_t v4 = must_parse("919108f7-52d1-4320-9bac-f847db4148a8");
  assert_int_equal(tb_uuid_v7_unix_ms(&v4), TB_EINVAL);
  tb_uuid_t nil = {{0}};
  assert_int_equal(tb_uuid_v7_unix_ms(&nil), TB_EINVAL);

  for (int i = 0; i < 100; i++) {
    int64_t before = tb_clock_wall_ms();
    tb_uuid_t u;
    assert_int_equal(tb_uuid_v7_new(&u), 0);
    int64_t after = tb_clock_wall_ms();
    int64_t ms = tb_uuid_v7_unix_ms(&u);
    /* A few ms of slack: earlier tests may have left the generator on a timestamp that
     * the clock has only just reached. */
    assert_in_range(ms, before - 5, after + 5);
  }
}

static void compare_is_byte_order(void **state) {
  tb_uuid_t a = must_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
  tb_uuid_t b = must_parse("017f22e2-79b1-7000-8000-000000000000");
  tb_uuid_t c = must_parse("ffffffff-ffff-ffff-ffff-ffffffffffff");
  assert_true(tb_uuid_compare(&a, &b) < 0);
  assert_true(tb_uuid_compare(&b, &a) > 0);
  assert_true(tb_uuid_compare(&b, &c) < 0);
  assert_int_equal(tb_uuid_compare(&a, &a), 0);
}

static void tight_loop_is_strictly_increasing(void **state) {
  tb_uuid_t *u = malloc(N_TIGHT * sizeof *u);
  assert_non_null(u);
  for (int i = 0; i < N_TIGHT; i++) assert_int_equal(tb_uuid_v7_new(&u[i]), 0);
  size_t same_ms = 0;
  for (int i = 1; i < N_TIGHT; i++) {
    if (tb_uuid_compare(&u[i - 1], &u[i]) >= 0) {
      char x[TB_UUID_STR_LEN + 1], y[TB_UUID_STR_LEN + 1];
      tb_uuid_format(&u[i - 1], x);
      tb_uuid_format(&u[i], y);
      fail_msg("not increasing at %d: %s then %s", i, x, y);
    }
    /* Method 1: within a millisecond the counter steps by exactly one. */
    if (memcmp(u[i - 1].b, u[i].b, 6) == 0) {
      same_ms++;
      assert_int_equal(counter_of(&u[i]), counter_of(&u[i - 1]) + 1);
    }
    assert_int_equal(tb_uuid_version(&u[i]), 7);
  }
  /* A million in a tight loop cannot all fall in distinct milliseconds. */
  assert_true(same_ms > 0);
  /* The generator must not have run ahead of the clock. */
  int64_t now = tb_clock_wall_ms();
  assert_in_range(tb_uuid_v7_unix_ms(&u[N_TIGHT - 1]), now - 1000, now + 5);
  free(u);
}

typedef struct worker {
  pthread_t thread;
  tb_uuid_t *u;
  int failed_at; /* -1 when every call succeeded */
} worker_t;

static void *worker_run(void *arg) {
  worker_t *w = arg;
  w->failed_at = -1;
  for (int i = 0; i < N_PER_THREAD; i++)
    if (tb_uuid_v7_new(&w->u[i]) != 0 && w->failed_at < 0) w->failed_at = i;
  return NULL;
}

static int cmp_uuid(const void *a, const void *b) { return tb_uuid_compare(a, b); }

static void threads_are_monotonic_and_unique(void **state) {
  worker_t w[N_THREADS];
  tb_uuid_t *all = malloc((size_t)N_THREADS * N_PER_THREAD * sizeof *all);
  assert_non_null(all);
  for (int t = 0; t < N_THREADS; t++) {
    w[t].u = all + (size_t)t * N_PER_THREAD;
    assert_int_equal(pthread_create(&w[t].thread, NULL, worker_run, &w[t]), 0);
  }
  for (int t = 0; t < N_THREADS; t++) assert_int_equal(pthread_join(w[t].thread, NULL), 0);
  for (int t = 0; t < N_THREADS; t++) {
    assert_int_equal(w[t].failed_at, -1);
    for (int i = 1; i < N_PER_THREAD; i++)
      if (tb_uuid_compare(&w[t].u[i - 1], &w[t].u[i]) >= 0)
        fail_msg("thread %d: not increasing at %d", t, i);
  }
  size_t n = (size_t)N_THREADS * N_PER_THREAD;
  qsort(all, n, sizeof *all, cmp_uuid);
  for (size_t i = 1; i < n; i++)
    if (tb_uuid_compare(&all[i - 1], &all[i]) == 0) fail_msg("duplicate UUID across threads");
  /* The counters are global, not per thread: across all threads no (timestamp, counter)
   * pair repeats either, which is what makes the sorted order a total order. */
  for (size_t i = 1; i < n; i++)
    if (memcmp(all[i - 1].b, all[i].b, 12) == 0) fail_msg("two UUIDs share timestamp and counter");
  free(all);
}

static void step(tb__uuid_gen_t *g, int64_t now, uint64_t seed, tb_uuid_t *prev, tb_uuid_t *out) {
  uint8_t rnd[TB__UUID_RAND_LEN];
  for (int i = 0; i < 6; i++) rnd[i] = (uint8_t)(seed >> (40 - 8 * i));
  memset(rnd + 6, 0x5A, 4);
  tb__uuid_v7_next(g, now, rnd, out);
  assert_int_equal(tb_uuid_version(out), 7);
  assert_int_equal(tb_uuid_validate(out), 0);
  if (prev) assert_true(tb_uuid_compare(prev, out) < 0);
}

static void generator_handles_clock_steps_and_rollover(void **state) {
  tb__uuid_gen_t g;
  tb__uuid_gen_init(&g);
  tb_uuid_t a, b, c, d, e, f, h;

  /* A new millisecond seeds the counter with the seed's low 41 bits: the top (guard)
   * bit of the 42-bit counter starts clear. */
  step(&g, 1000, UINT64_C(0xFFFFFFFFFFFF), NULL, &a);
  assert_int_equal(tb_uuid_v7_unix_ms(&a), 1000);
  assert_int_equal(counter_of(&a), (UINT64_C(1) << 41) - 1);
  assert_memory_equal(a.b + 12, "\x5a\x5a\x5a\x5a", 4);

  /* Same millisecond: counter + 1. */
  step(&g, 1000, 7, &a, &b);
  assert_int_equal(tb_uuid_v7_unix_ms(&b), 1000);
  assert_int_equal(counter_of(&b), counter_of(&a) + 1);

  /* The clock steps back 900 ms: keep the last timestamp and count on. */
  step(&g, 100, 7, &b, &c);
  assert_int_equal(tb_uuid_v7_unix_ms(&c), 1000);
  assert_int_equal(counter_of(&c), counter_of(&b) + 1);

  /* Rollover: the timestamp runs one millisecond ahead and the counter is reseeded. */
  g.counter = TB__UUID_COUNTER_MAX;
  tb_uuid_t at_max = c; /* what the generator last issued: c's timestamp, counter at max */
  memcpy(at_max.b + 6, "\x7f\xff\xbf\xff\xff\xff", 6);
  assert_int_equal(counter_of(&at_max), TB__UUID_COUNTER_MAX);
  step(&g, 1000, 0x1234, &at_max, &d);
  assert_int_equal(tb_uuid_v7_unix_ms(&d), 1001);
  assert_int_equal(counter_of(&d), 0x1234);

  /* The clock reaching the advanced timestamp does not reseed (that could go back). */
  step(&g, 1001, 0, &d, &e);
  assert_int_equal(tb_uuid_v7_unix_ms(&e), 1001);
  assert_int_equal(counter_of(&e), 0x1235);

  /* A later millisecond reseeds, even with a smaller seed. */
  step(&g, 1002, 0, &e, &f);
  assert_int_equal(tb_uuid_v7_unix_ms(&f), 1002);
  assert_int_equal(counter_of(&f), 0);

  /* A clock before the epoch is clamped, and still cannot move the timestamp back. */
  step(&g, -5, 0, &f, &h);
  assert_int_equal(tb_uuid_v7_unix_ms(&h), 1002);
  tb__uuid_gen_t fresh;
  tb__uuid_gen_init(&fresh);
  step(&fresh, -5, 0, NULL, &h);
  assert_int_equal(tb_uuid_v7_unix_ms(&h), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_and_format_round_trip),
      cmocka_unit_test(parse_rejects_malformed),
      cmocka_unit_test(version_variant_and_validate),
      cmocka_unit_test(unix_ms_reads_the_timestamp),
      cmocka_unit_test(compare_is_byte_order),
      cmocka_unit_test(generator_handles_clock_steps_and_rollover),
      cmocka_unit_test(tight_loop_is_strictly_increasing),
      cmocka_unit_test(threads_are_monotonic_and_unique),
  };
  return TB_RUN(tests);
}
