/* test_json.c — parse errors with positions, dumping into bounded buffers, typed fields. */
#include <string.h>

#include "tb/alloc.h"
#include "tb/json.h"
#include "test.h"

static void parse_ok_and_error_position(void **state) {
  json_t *v;
  char msg[128];
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_json_parse("{\"a\": [1, 2]}", 13, &v, &eb), 0);
  assert_int_equal(json_array_size(json_object_get(v, "a")), 2);
  json_decref(v);
  assert_int_equal(tb_json_parse("{\"a\":\n  tru}", 12, &v, &eb), TB_EPARSE);
  assert_null(v);
  assert_int_equal(strncmp(msg, "line 2, column", 14), 0);
  assert_int_equal(tb_json_parse("{\"a\":1,\"a\":2}", 13, &v, &eb), TB_EPARSE); /* duplicate keys */
  assert_int_equal(tb_json_parse("\"scalar\"", 8, &v, &eb), 0);
  json_decref(v);
}

static void dump_keeps_order_and_respects_limit(void **state) {
  json_t *v = json_pack("{s:i, s:s, s:[b, n]}", "z", 1, "a", "x", "m", 1);
  tb_buf_t out;
  tb_buf_init(&out, 1 << 10);
  assert_int_equal(tb_json_dump(v, TB_JSON_COMPACT, &out), 0);
  assert_string_equal(tb_buf_cstr(&out), "{\"z\":1,\"a\":\"x\",\"m\":[true,null]}");
  tb_buf_deinit(&out);
  tb_buf_init(&out, 10);
  tb_buf_puts(&out, "ab");
  assert_int_equal(tb_json_dump(v, TB_JSON_PRETTY, &out), TB_ETOOBIG);
  assert_string_equal(tb_buf_cstr(&out), "ab"); /* untouched */
  tb_buf_deinit(&out);
  json_decref(v);
}

static void typed_fields(void **state) {
  json_t *o = json_pack("{s:s, s:I, s:b, s:{}, s:[]}", "name", "hello", "n", (json_int_t)1 << 40, "flag", 1, "obj",
                        "arr");
  char msg[128];
  tb_errbuf_t eb = {msg, sizeof msg};
  const char *s = "default";
  int64_t i = 0;
  bool b = false;
  json_t *sub;
  assert_int_equal(tb_json_get_str(o, "name", &s, &eb), 0);
  assert_string_equal(s, "hello");
  assert_int_equal(tb_json_get_int(o, "n", &i, &eb), 0);
  assert_int_equal(i, INT64_C(1) << 40);
  assert_int_equal(tb_json_get_bool(o, "flag", &b, &eb), 0);
  assert_true(b);
  assert_int_equal(tb_json_get_obj(o, "obj", &sub, &eb), 0);
  assert_int_equal(tb_json_get_array(o, "arr", &sub, &eb), 0);
  s = "default";
  assert_int_equal(tb_json_get_str(o, "missing", &s, &eb), TB_ENOENT);
  assert_string_equal(s, "default");
  assert_int_equal(tb_json_get_str(o, "n", &s, &eb), TB_EINVAL);
  assert_string_equal(msg, "field \"n\" must be a string");
  assert_int_equal(tb_json_get_int(o, "name", &i, &eb), TB_EINVAL);
  assert_string_equal(msg, "field \"name\" must be an integer");
  assert_int_equal(tb_json_get_bool(o, "n", &b, &eb), TB_EINVAL);
  assert_int_equal(tb_json_get_str(json_object_get(o, "arr"), "x", &s, &eb), TB_EINVAL);
  json_decref(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_ok_and_error_position),
      cmocka_unit_test(dump_keeps_order_and_respects_limit),
      cmocka_unit_test(typed_fields),
  };
  return TB_RUN(tests);
}
