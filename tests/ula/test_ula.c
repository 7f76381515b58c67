/* test_ula.c — the app address: fixed vectors, live b3sum checks, text forms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb/err.h"
#include "tb/ula.h"
#include "tb/uuid.h"
#include "test.h"

/*
 * Computed independently of this code with the b3sum tool, when this test was written:
 *
 *   printf '\x01\x94\x1f\x29...' | b3sum --no-names --length 6
 *
 * (the 16 raw UUID bytes, hex-escaped), giving h0..h5, and the address written out by
 * hand as fd5a:1f02:h0h1:h2h3:h4h5::1 in RFC 5952 form. The three 0194... UUIDs were
 * found by searching v7-shaped UUIDs for ones whose hash groups are zero, so "0" groups
 * and the choice of which zero run becomes "::" are exercised.
 */
static const struct {
  const char *uuid;
  const char *hash6; /* b3sum --length 6 */
  const char *addr;
} VECTORS[] = {
    {"00000000-0000-0000-0000-000000000000", "e572dff82304", "fd5a:1f02:e572:dff8:2304::1"},
    {"ffffffff-ffff-ffff-ffff-ffffffffffff", "c3870565bcf2", "fd5a:1f02:c387:565:bcf2::1"},
    /* h0h1 = 0: a single zero group stays "0"; "::" goes to the longer run. */
    {"01941f29-845d-7e7e-ab89-2a23aac84aef", "000052708148", "fd5a:1f02:0:5270:8148::1"},
    /* h2h3 = 0. */
    {"01941f29-8cd1-780b-81aa-d98c684af3f9", "ba6b0000dc85", "fd5a:1f02:ba6b:0:dc85::1"},
    /* h4h5 = 0: it joins the host part's zeros in one "::". */
    {"01941f2a-2eda-7a06-9152-17820a463e48", "d7db39580000", "fd5a:1f02:d7db:3958::1"},
    {"0192f3a1-b2c3-7def-8123-456789abcdef", "156a7596acdd", "fd5a:1f02:156a:7596:acdd::1"},
    /* The DNS namespace UUID (RFC 9562 §6.6), a version 1 UUID. */
    {"6ba7b810-9dad-11d1-80b4-00c04fd430c8", "5f6d5c185e0b", "fd5a:1f02:5f6d:5c18:5e0b::1"},
};
#define N_VECTORS (sizeof VECTORS / sizeof VECTORS[0])

static tb_uuid_t must_parse_uuid(const char *s) {
  tb_uuid_t u;
  assert_int_equal(tb_uuid_parse(s, strlen(s), &u), 0);
  return u;
}

static void hex6(const tb_ula_t *a, char out[13]) {
  for (int i = 0; i < 6; i++) snprintf(out + 2 * i, 3, "%02x", a->b[4 + i]);
}

static void fixed_vectors(void **state) {
  for (size_t i = 0; i < N_VECTORS; i++) {
    tb_uuid_t u = must_parse_uuid(VECTORS[i].uuid);
    tb_ula_t a;
    char text[TB_ULA_STR_MAX], h[13];
    tb_ula_derive_app(&u, &a);
    tb_ula_format(&a, text);
    hex6(&a, h);
    if (strcmp(h, VECTORS[i].hash6) != 0 || strcmp(text, VECTORS[i].addr) != 0)
      fail_msg("%s:\n  expected %s (%s)\n  got      %s (%s)", VECTORS[i].uuid, VECTORS[i].addr,
               VECTORS[i].hash6, text, h);
    assert_true(tb_ula_is_app(&a));
  }
}

/* A fresh random UUID each time, so every run checks addresses nobody wrote down. */
static void live_b3sum(void **state) {
  enum { N = 64 };
  if (system("b3sum --version >/dev/null 2>&1") != 0)
    fail_msg("b3sum is missing: it is the oracle for this test (scripts/setup installs it)");
  const char *tmp = getenv("TMPDIR");
  char dir[256], path[300];
  snprintf(dir, sizeof dir, "%s/tb-ula-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));

  tb_uuid_t u[N];
  char cmd[4096];
  int o = snprintf(cmd, sizeof cmd, "cd '%s' && b3sum --no-names --length 6 --", dir);
  for (int i = 0; i < N; i++) {
    assert_int_equal(tb_uuid_v7_new(&u[i]), 0);
    if (i % 2) /* half v7, half arbitrary bytes */
      for (int j = 0; j < 16; j++) u[i].b[j] = (uint8_t)(rand() >> 7);
    snprintf(path, sizeof path, "%s/%d", dir, i);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(u[i].b, 1, 16, f), 16);
    assert_int_equal(fclose(f), 0);
    o += snprintf(cmd + o, sizeof cmd - o, " %d", i);
  }
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char line[64];
  int checked = 0;
  for (int i = 0; i < N && fgets(line, sizeof line, p); i++) {
    line[strcspn(line, "\n")] = '\0';
    tb_ula_t a;
    char h[13], us[TB_UUID_STR_LEN + 1];
    tb_ula_derive_app(&u[i], &a);
    hex6(&a, h);
    tb_uuid_format(&u[i], us);
    if (strcmp(line, h) != 0) fail_msg("%s: b3sum says %s, we derived %s", us, line, h);
    checked++;
  }
  assert_int_equal(pclose(p), 0);
  assert_int_equal(checked, N);
  for (int i = 0; i < N; i++) {
    snprintf(path, sizeof path, "%s/%d", dir, i);
    unlink(path);
  }
  rmdir(dir);
}

static void format_parse_round_trip(void **state) {
  for (size_t i = 0; i < N_VECTORS; i++) {
    tb_uuid_t u = must_parse_uuid(VECTORS[i].uuid);
    tb_ula_t a, b;
    char text[TB_ULA_STR_MAX];
    tb_ula_derive_app(&u, &a);
    tb_ula_format(&a, text);
    assert_int_equal(tb_ula_parse(text, &b), 0);
    assert_memory_equal(a.b, b.b, 16);
  }
  /* Non-canonical spellings parse to the same address and format canonically. */
  tb_ula_t a;
  char text[TB_ULA_STR_MAX];
  assert_int_equal(tb_ula_parse("FD5A:1F02:0000:5270:8148:0000:0000:0001", &a), 0);
  tb_ula_format(&a, text);
  assert_string_equal(text, "fd5a:1f02:0:5270:8148::1");
  assert_true(tb_ula_is_app(&a));

  /* The longest text form fits TB_ULA_STR_MAX. */
  assert_int_equal(tb_ula_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &a), 0);
  tb_ula_format(&a, text);
  assert_string_equal(text, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

  static const char *const bad[] = {
      "",         "fd5a",          "fd5a:1f02::1::2", "fd5a:1f02:g::1",  "fd5a:1f02:1:2:3:4:5:6:7",
      "10.0.0.1", "fd5a:1f02::1 ", "[fd5a:1f02::1]",  "fd5a:1f02::1/64", "fd5a:1f02:12345::1",
  };
  tb_ula_t sentinel;
  memset(sentinel.b, 0xA5, 16);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    a = sentinel;
    if (tb_ula_parse(bad[i], &a) != TB_EPARSE) fail_msg("accepted \"%s\"", bad[i]);
    assert_memory_equal(a.b, sentinel.b, 16);
  }
  assert_int_equal(tb_ula_parse(NULL, &a), TB_EPARSE);
}

static void is_app(void **state) {
  static const struct {
    const char *addr;
    bool want;
  } cases[] = {
      {"fd5a:1f02:e572:dff8:2304::1", true},
      {"fd5a:1f02::1", true}, /* all-zero hash groups are still an app address */
      {"fd5a:1f02:ffff:ffff:ffff::1", true},
      {"fd5a:1f03:e572:dff8:2304::1", false}, /* other prefix */
      {"fd5b:1f02:e572:dff8:2304::1", false},
      {"fd5a:1f02:e572:dff8:2304::2", false}, /* other host */
      {"fd5a:1f02:e572:dff8:2304::", false},
      {"fd5a:1f02:e572:dff8:2304:0:1:1", false},
      {"fd5a:1f02:e572:dff8:2304:1::1", false},
      {"::1", false},
      {"fe80::1", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tb_ula_t a;
    assert_int_equal(tb_ula_parse(cases[i].addr, &a), 0);
    if (tb_ula_is_app(&a) != cases[i].want)
      fail_msg("tb_ula_is_app(%s) = %d, want %d", cases[i].addr, !cases[i].want, cases[i].want);
  }
  /* Every derived address is an app address. */
  for (int i = 0; i < 1000; i++) {
    tb_uuid_t u;
    tb_ula_t a;
    assert_int_equal(tb_uuid_v7_new(&u), 0);
    tb_ula_derive_app(&u, &a);
    assert_true(tb_ula_is_app(&a));
  }
}

int main(void) {
  srand((unsigned)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fixed_vectors),
      cmocka_unit_test(live_b3sum),
      cmocka_unit_test(format_parse_round_trip),
      cmocka_unit_test(is_app),
  };
  return TB_RUN(tests);
}
