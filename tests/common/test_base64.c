/* test_base64.c — base64url: RFC 4648 vectors, strictness, round trips. */
#include <string.h>

#include "tb/base64.h"
#include "tb/err.h"
#include "test.h"

/* RFC 4648 §10 vectors; base64url has the same text for these inputs, minus padding. */
static void rfc4648_vectors(void **state) {
  static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    char enc[16];
    size_t n = tb_base64url_encode(in[i], strlen(in[i]), enc);
    assert_string_equal(enc, out[i]);
    assert_int_equal(n, TB_BASE64URL_ENCODED_LEN(strlen(in[i])));
    uint8_t dec[16];
    size_t dlen;
    assert_int_equal(tb_base64url_decode(enc, n, dec, sizeof dec, &dlen), 0);
    assert_int_equal(dlen, strlen(in[i]));
    assert_memory_equal(dec, in[i], dlen);
  }
}

static void url_alphabet(void **state) {
  const uint8_t in[] = {0xfb, 0xff, 0xbf};
  char enc[8];
  tb_base64url_encode(in, 3, enc);
  assert_string_equal(enc, "-_-_");
}

static void padding_accepted_only_where_it_belongs(void **state) {
  uint8_t out[8];
  size_t n;
  assert_int_equal(tb_base64url_decode("Zg==", 4, out, sizeof out, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(tb_base64url_decode("Zm8=", 4, out, sizeof out, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(tb_base64url_decode("Zm9v====", 8, out, sizeof out, &n), TB_EPARSE);
  assert_int_equal(tb_base64url_decode("Z===", 4, out, sizeof out, &n), TB_EPARSE);
  assert_int_equal(tb_base64url_decode("Zg=", 3, out, sizeof out, &n), TB_EPARSE);
}

static void rejects_bad_input(void **state) {
  uint8_t out[8];
  size_t n;
  assert_int_equal(tb_base64url_decode("Zm9+", 4, out, sizeof out, &n), TB_EPARSE); /* '+' is base64, not url */
  assert_int_equal(tb_base64url_decode("Zm9/", 4, out, sizeof out, &n), TB_EPARSE);
  assert_int_equal(tb_base64url_decode("Z", 1, out, sizeof out, &n), TB_EPARSE);    /* impossible length */
  assert_int_equal(tb_base64url_decode("Zh", 2, out, sizeof out, &n), TB_EPARSE);   /* trailing bits set */
  assert_int_equal(tb_base64url_decode("Zm9 ", 4, out, sizeof out, &n), TB_EPARSE);
  assert_int_equal(tb_base64url_decode("Zm9vYmFy", 8, out, 5, &n), TB_ETOOBIG);
}

static void round_trip_all_lengths(void **state) {
  uint8_t in[300], dec[300];
  char enc[TB_BASE64URL_ENCODED_LEN(300) + 1];
  for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i * 131 + 7);
  for (size_t len = 0; len <= sizeof in; len++) {
    size_t n = tb_base64url_encode(in, len, enc), dlen;
    assert_int_equal(tb_base64url_decode(enc, n, dec, TB_BASE64URL_DECODED_MAX(n), &dlen), 0);
    assert_int_equal(dlen, len);
    assert_memory_equal(dec, in, len);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rfc4648_vectors),
      cmocka_unit_test(url_alphabet),
      cmocka_unit_test(padding_accepted_only_where_it_belongs),
      cmocka_unit_test(rejects_bad_input),
      cmocka_unit_test(round_trip_all_lengths),
  };
  return TB_RUN(tests);
}
