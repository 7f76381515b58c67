/*
 * test_spec.c — the runner's spec parser and digest check (lib/runner/spec.c): defaults,
 * and a sentence naming the field for every refusal.
 */
#include "test.h"

#include <stdio.h>
#include <string.h>

#include "tb/manifest.h"
#include "tb/runner.h"

#define BASE "\"runner\":\"r1\",\"app\":\"a1\",\"artifact\":\"/x/a.wasm\",\"listen\":\"127.0.0.1:0\"," \
             "\"control\":\"/x/c.sock\",\"log\":\"/x/l.log\""

static void expect_error(const char *json, const char *needle) {
  tb_runner_spec_t s;
  char buf[300] = "";
  tb_errbuf_t eb = {buf, sizeof buf};
  int rc = tb_runner_spec_parse(json, strlen(json), &s, &eb);
  if (rc == 0 || strstr(buf, needle) == NULL) {
    printf("spec %s\n  expected an error containing: %s\n  got: rc=%d \"%s\"\n", json, needle, rc, buf);
    tb_runner_spec_deinit(&s);
    fail();
  }
}

static void test_minimal_defaults(void **state) {
  (void)state;
  const char *json = "{" BASE "}";
  tb_runner_spec_t s;
  char buf[300] = "";
  tb_errbuf_t eb = {buf, sizeof buf};
  assert_int_equal(tb_runner_spec_parse(json, strlen(json), &s, &eb), 0);
  assert_string_equal(s.runner, "r1");
  assert_string_equal(s.runtime, "wasm-http");
  assert_string_equal(s.name, "app");
  assert_string_equal(s.digest, "");
  assert_int_equal(s.lifecycle, TB_RUNNER_ALWAYS_ON);
  assert_int_equal(s.memory_mb, TB_MANIFEST_DEFAULT_MEMORY_MB);
  assert_int_equal(s.idle_timeout_sec, TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC);
  assert_int_equal(s.request_timeout_sec, TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC);
  assert_int_equal(s.nenv, 0);
  uint32_t w = tb_runner_spec_workers(&s);
  tb_runner_spec_deinit(&s);
  /* Zeros are defaults too. */
  const char *zeros = "{" BASE ",\"memory_mb\":0,\"idle_timeout_sec\":0,\"request_timeout_sec\":0,\"workers\":0}";
  assert_int_equal(tb_runner_spec_parse(zeros, strlen(zeros), &s, &eb), 0);
  assert_int_equal(s.memory_mb, TB_MANIFEST_DEFAULT_MEMORY_MB);
  assert_int_equal(s.idle_timeout_sec, TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC);
  assert_int_equal(s.request_timeout_sec, TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC);
  assert_true(w >= 2 && w <= TB_RUNNER_MAX_WORKERS);
  tb_runner_spec_deinit(&s);
}

static void test_full(void **state) {
  (void)state;
  const char *json = "{" BASE ",\"deployment\":\"d\",\"version\":3,\"supervisor\":\"s\",\"name\":\"hello\","
                     "\"digest\":\"sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                     "\"lifecycle\":\"on_request\",\"idle_timeout_sec\":5,\"memory_mb\":16,\"request_timeout_sec\":2,"
                     "\"env\":{\"A\":\"1\",\"B\":\"x=y\"},\"args\":[\"a\",\"b\"],\"workers\":3,\"future\":true}";
  tb_runner_spec_t s;
  assert_int_equal(tb_runner_spec_parse(json, strlen(json), &s, NULL), 0);
  assert_int_equal(s.version, 3);
  assert_int_equal(s.lifecycle, TB_RUNNER_ON_REQUEST);
  assert_int_equal(s.idle_timeout_sec, 5);
  assert_int_equal(s.memory_mb, 16);
  assert_int_equal(s.workers, 3);
  assert_int_equal(tb_runner_spec_workers(&s), 3);
  assert_int_equal(s.nenv, 2);
  assert_string_equal(s.env[0], "A=1");
  assert_string_equal(s.env[1], "B=x=y");
  assert_int_equal(s.nargs, 2);
  assert_string_equal(s.args[1], "b");
  tb_runner_spec_deinit(&s);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("{", "not valid JSON");
  expect_error("[1]", "must be a JSON object");
  expect_error("{\"app\":\"a\"}", "spec field \"runner\" is missing");
  expect_error("{\"runner\":\"r\",\"app\":\"a\",\"artifact\":\"/a\",\"control\":\"/c\",\"log\":\"/l\"}",
               "spec field \"listen\" is missing");
  expect_error("{" BASE ",\"memory_mb\":\"big\"}", "spec field \"memory_mb\" must be an integer");
  expect_error("{" BASE ",\"memory_mb\":-1}", "spec field \"memory_mb\" must be an integer from 0 to 4096");
  expect_error("{" BASE ",\"request_timeout_sec\":1.5}", "spec field \"request_timeout_sec\" must be an integer");
  expect_error("{" BASE ",\"workers\":65}", "spec field \"workers\"");
  expect_error("{" BASE ",\"name\":7}", "spec field \"name\" must be a string");
  expect_error("{" BASE ",\"lifecycle\":\"sometimes\"}", "spec field \"lifecycle\" must be");
  expect_error("{" BASE ",\"env\":[1]}", "spec field \"env\" must be an object");
  expect_error("{" BASE ",\"env\":{\"A\":1}}", "the value of \"A\" must be a string");
  expect_error("{" BASE ",\"args\":[1]}", "spec field \"args\": element 0");
  expect_error("{" BASE ",\"digest\":\"md5:abc\"}", "spec field \"digest\"");
  expect_error("{\"runner\":\"r\",\"app\":\"a\",\"artifact\":\"rel.wasm\",\"listen\":\"x\",\"control\":\"/c\",\"log\":\"/l\"}",
               "spec field \"artifact\" must be an absolute path");
  expect_error("{\"runner\":\"\",\"app\":\"a\"}", "spec field \"runner\" must not be empty");
}

static void test_digest(void **state) {
  (void)state;
  char buf[300];
  tb_errbuf_t eb = {buf, sizeof buf};
  /* sha256("abc") */
  assert_int_equal(tb_runner_digest_check((const uint8_t *)"abc", 3,
                                          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &eb),
                   0);
  assert_int_equal(tb_runner_digest_check((const uint8_t *)"abd", 3,
                                          "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &eb),
                   TB_ECORRUPT);
  assert_non_null(strstr(buf, "does not match its digest"));
  /* blake3("abc") */
  assert_int_equal(tb_runner_digest_check((const uint8_t *)"abc", 3,
                                          "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85", &eb),
                   0);
  assert_int_equal(tb_runner_digest_check((const uint8_t *)"abc", 3, "", &eb), 0);
  assert_int_equal(tb_runner_digest_check((const uint8_t *)"abc", 3, "sha1:00", &eb), TB_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimal_defaults),
      cmocka_unit_test(test_full),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_digest),
  };
  return TB_RUN(tests);
}
