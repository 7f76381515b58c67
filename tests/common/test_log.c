/* test_log.c — logfmt records: quoting, typed fields, levels, truncation, one write. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tb/log.h"
#include "test.h"

static void format_fields(void **state) {
  char line[512];
  const tb_kv_t fields[] = {TB_KV_STR("addr", "127.0.0.1"), TB_KV_INT("port", 8090), TB_KV_UINT("n", 18446744073709551615u),
                            TB_KV_BOOL("tls", false), TB_KV_F64("ratio", 0.5), TB_KV_ERR(TB_ENOENT), {0}};
  tb_log_format(line, sizeof line, "T", TB_LOG_INFO, "node", "listening", fields);
  assert_string_equal(line, "ts=T level=info comp=node msg=\"listening\" addr=127.0.0.1 port=8090 "
                            "n=18446744073709551615 tls=false ratio=0.5 err=TB_ENOENT "
                            "reason=\"no such file or directory\"\n");
}

static void quoting(void **state) {
  char line[512];
  const tb_kv_t fields[] = {TB_KV_STR("path", "/a b"), TB_KV_STR("q", "say \"hi\"\n"), TB_KV_STR("e", ""),
                            TB_KV_STR("eq", "a=b"), TB_KV_STR("ctl", "\x01"), TB_KV_STR("null", NULL), {0}};
  tb_log_format(line, sizeof line, "T", TB_LOG_WARN, "cli", "m", fields);
  assert_string_equal(line, "ts=T level=warn comp=cli msg=\"m\" path=\"/a b\" q=\"say \\\"hi\\\"\\n\" e=\"\" "
                            "eq=\"a=b\" ctl=\"\\x01\" null=(null)\n");
}

static void truncates_with_marker(void **state) {
  char line[64];
  char big[200];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  const tb_kv_t fields[] = {TB_KV_STR("v", big), {0}};
  size_t n = tb_log_format(line, sizeof line, "T", TB_LOG_ERROR, "x", "m", fields);
  assert_true(n < sizeof line);
  assert_int_equal(strlen(line), n);
  assert_int_equal(line[n - 1], '\n');
  assert_non_null(strstr(line, "\xe2\x80\xa6\n"));
}

static void levels_and_output(void **state) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  tb_log_set_fd(fds[1]);
  tb_log_set_level(TB_LOG_WARN);
  tb_log_info("test", "dropped");
  tb_log_warn("test", "kept", TB_KV_INT("k", 1));
  tb_log_error("test", "also kept");
  tb_log_set_fd(2);
  tb_log_set_level(TB_LOG_INFO);
  close(fds[1]);
  char out[1024] = {0};
  ssize_t n = read(fds[0], out, sizeof out - 1);
  close(fds[0]);
  assert_true(n > 0);
  assert_null(strstr(out, "dropped"));
  assert_non_null(strstr(out, "level=warn comp=test msg=\"kept\" k=1\n"));
  assert_non_null(strstr(out, "level=error comp=test msg=\"also kept\"\n"));
  assert_int_equal(strncmp(out, "ts=20", 5), 0);
}

static void parse_level(void **state) {
  tb_log_level_t l;
  assert_int_equal(tb_log_level_parse("debug", &l), 0);
  assert_int_equal(l, TB_LOG_DEBUG);
  assert_int_equal(tb_log_level_parse("off", &l), 0);
  assert_int_equal(l, TB_LOG_OFF);
  assert_int_equal(tb_log_level_parse("loud", &l), TB_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(format_fields),
      cmocka_unit_test(quoting),
      cmocka_unit_test(truncates_with_marker),
      cmocka_unit_test(levels_and_output),
      cmocka_unit_test(parse_level),
  };
  return TB_RUN(tests);
}
