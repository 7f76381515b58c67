/*
 * test_secretbox.c — the secrets key file and sealing (include/tb/secretbox.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tb/secretbox.h"
#include "test.h"

static char dir[256];

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/tb-secretbox-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static char *key_path(void) {
  static char p[300];
  snprintf(p, sizeof p, "%s/secrets.key", dir);
  return p;
}

static void test_key_file(void **state) {
  tb_secretbox_t *a = NULL, *b = NULL;
  assert_int_equal(tb_secretbox_open(dir, &a, NULL), 0);
  struct stat st;
  assert_int_equal(stat(key_path(), &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  const char *id = tb_secretbox_key_id(a);
  assert_int_equal(strlen(id), 16);
  assert_true(strspn(id, "0123456789abcdef") == 16);
  assert_int_equal(tb_secretbox_open(dir, &b, NULL), 0);
  assert_string_equal(tb_secretbox_key_id(b), id);
  tb_secretbox_close(a);
  tb_secretbox_close(b);
}

static void test_key_file_refused(void **state) {
  tb_secretbox_t *a = NULL;
  char msg[256];
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_secretbox_open(dir, &a, NULL), 0);
  tb_secretbox_close(a);
  assert_int_equal(chmod(key_path(), 0644), 0);
  assert_int_equal(tb_secretbox_open(dir, &a, &eb), TB_EPERM);
  assert_non_null(strstr(msg, "chmod 600"));
  assert_int_equal(chmod(key_path(), 0600), 0);
  FILE *f = fopen(key_path(), "w");
  fputs("not a key\n", f);
  fclose(f);
  assert_int_equal(tb_secretbox_open(dir, &a, &eb), TB_ECORRUPT);
  assert_null(a);
}

static void test_concurrent_creation(void **state) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  enum { KIDS = 6 };
  for (int i = 0; i < KIDS; i++) {
    if (fork() == 0) {
      tb_secretbox_t *b = NULL;
      if (tb_secretbox_open(dir, &b, NULL) != 0) _exit(1);
      char line[32];
      snprintf(line, sizeof line, "%s\n", tb_secretbox_key_id(b));
      if (write(fds[1], line, strlen(line)) < 0) _exit(2);
      _exit(0);
    }
  }
  close(fds[1]);
  for (int i = 0; i < KIDS; i++) {
    int st;
    wait(&st);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  char buf[KIDS * 17 + 1];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  assert_int_equal(n, KIDS * 17);
  for (int i = 1; i < KIDS; i++) assert_memory_equal(buf, buf + 17 * i, 17);
}

static void test_seal_unseal(void **state) {
  tb_secretbox_t *box = NULL;
  assert_int_equal(tb_secretbox_open(dir, &box, NULL), 0);
  tb_uuid_t app, other;
  tb_uuid_v7_new(&app);
  tb_uuid_v7_new(&other);
  const char *value = "s3cr3t-DATABASE-password";
  json_t *p = NULL;
  assert_int_equal(tb_secretbox_seal(box, &app, "DB_PASSWORD", value, strlen(value), &p, NULL), 0);
  char *text = json_dumps(p, JSON_COMPACT);
  assert_null(strstr(text, value));
  assert_null(strstr(text, "s3cr3t"));
  assert_non_null(strstr(text, TB_SECRETBOX_ALG));
  free(text);
  const char *key_id = json_string_value(json_object_get(p, "key_id"));
  const char *nonce = json_string_value(json_object_get(p, "nonce"));
  const char *ct = json_string_value(json_object_get(p, "ciphertext"));
  assert_string_equal(key_id, tb_secretbox_key_id(box));
  uint8_t *out = NULL;
  size_t len = 0;
  assert_int_equal(tb_secretbox_unseal(box, &app, "DB_PASSWORD", key_id, nonce, ct, &out, &len, NULL), 0);
  assert_int_equal(len, strlen(value));
  assert_memory_equal(out, value, len);
  tb_secretbox_free_value(out, len);
  /* Bound to its app and name. */
  assert_int_equal(tb_secretbox_unseal(box, &other, "DB_PASSWORD", key_id, nonce, ct, &out, &len, NULL), TB_EAUTH);
  assert_int_equal(tb_secretbox_unseal(box, &app, "DB_PASSWORD2", key_id, nonce, ct, &out, &len, NULL), TB_EAUTH);
  assert_int_equal(tb_secretbox_unseal(box, &app, "DB_PASSWORD", "0000000000000000", nonce, ct, &out, &len, NULL),
                   TB_ENOTFOUND);
  char *bad = strdup(ct);
  bad[3] = bad[3] == 'A' ? 'B' : 'A';
  assert_int_equal(tb_secretbox_unseal(box, &app, "DB_PASSWORD", key_id, nonce, bad, &out, &len, NULL), TB_EAUTH);
  assert_int_equal(tb_secretbox_unseal(box, &app, "DB_PASSWORD", key_id, "!!", ct, &out, &len, NULL), TB_EPARSE);
  free(bad);
  assert_null(out);
  /* A fresh nonce each time. */
  json_t *p2 = NULL;
  assert_int_equal(tb_secretbox_seal(box, &app, "DB_PASSWORD", value, strlen(value), &p2, NULL), 0);
  assert_string_not_equal(json_string_value(json_object_get(p2, "nonce")), nonce);
  json_decref(p2);
  json_decref(p);
  /* Empty values are values. */
  assert_int_equal(tb_secretbox_seal(box, &app, "EMPTY", "", 0, &p, NULL), 0);
  assert_int_equal(tb_secretbox_unseal(box, &app, "EMPTY", tb_secretbox_key_id(box), json_string_value(json_object_get(p, "nonce")),
                                       json_string_value(json_object_get(p, "ciphertext")), &out, &len, NULL),
                   0);
  assert_int_equal(len, 0);
  tb_secretbox_free_value(out, len);
  json_decref(p);
  /* Names and sizes. */
  assert_int_equal(tb_secretbox_seal(box, &app, "1ABC", "x", 1, &p, NULL), TB_EINVAL);
  assert_int_equal(tb_secretbox_seal(box, &app, "A-B", "x", 1, &p, NULL), TB_EINVAL);
  assert_int_equal(tb_secretbox_seal(box, &app, "", "x", 1, &p, NULL), TB_EINVAL);
  char *big = calloc(1, TB_SECRET_VALUE_MAX + 1);
  assert_int_equal(tb_secretbox_seal(box, &app, "BIG", big, TB_SECRET_VALUE_MAX + 1, &p, NULL), TB_ETOOBIG);
  free(big);
  tb_secretbox_close(box);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {T(test_key_file), T(test_key_file_refused), T(test_concurrent_creation),
                                     T(test_seal_unseal)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
