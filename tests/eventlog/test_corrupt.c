/*
 * test_corrupt.c — the embedded log reports damaged and truncated files instead of
 * accepting them: a truncated database, a damaged header, a flipped byte in an event, a
 * WAL that lost committed frames, rows deleted or edited behind the log's back, a head
 * marker that is damaged or belongs to another log, and a database that is not ours.
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evtest.h"
#include "test.h"

static char dir[256];
static char db_path[300], wal_path[300], head_path[300];

static int setup(void **state) {
  evtest_tmpdir(dir, sizeof dir, "corrupt");
  snprintf(db_path, sizeof db_path, "%s/events.db", dir);
  snprintf(wal_path, sizeof wal_path, "%s/events.db-wal", dir);
  snprintf(head_path, sizeof head_path, "%s/events.head", dir);
  return 0;
}

static int teardown(void **state) {
  evtest_rmrf(dir);
  return 0;
}

static int open_log(tb_eventlog_t **log, char *msg, size_t size, bool verify) {
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.state_dir = dir;
  o.verify = verify;
  tb_errbuf_t eb = {msg, size};
  msg[0] = '\0';
  *log = NULL;
  return tb_eventlog_open(&o, log, &eb);
}

/* Appends n events whose payloads are {"needle":"needle-<i>","pad":"..."} and closes. */
static void fill(int n) {
  char msg[256];
  tb_eventlog_t *log = NULL;
  if (open_log(&log, msg, sizeof msg, false)) fail_msg("open: %s", msg);
  for (int i = 1; i <= n; i++) {
    char payload[300];
    snprintf(payload, sizeof payload, "{\"needle\":\"needle-%06d\",\"pad\":\"%0200d\"}", i, i);
    tb_event_t ev = {.type = "filler", .schema = 1, .actor = "test", .payload = payload, .payload_len = strlen(payload)};
    assert_int_equal(tb_eventlog_append_async(log, &ev, NULL, NULL, NULL), 0);
  }
  tb_eventlog_close(log);
}

static int count_cb(const tb_event_t *ev, void *ud) {
  (*(int *)ud)++;
  return 0;
}

static void expect_open_fails(const char *fragment) {
  char msg[512];
  tb_eventlog_t *log = NULL;
  int rc = open_log(&log, msg, sizeof msg, false);
  tb_eventlog_close(log);
  if (rc != TB_ECORRUPT || strstr(msg, fragment) == NULL)
    fail_msg("expected TB_ECORRUPT mentioning \"%s\", got %s: \"%s\"", fragment, tb_err_name(rc), msg);
}

/* Opens the log (which must succeed) and expects a full read, and verify, to fail. */
static void expect_read_fails(const char *fragment) {
  char msg[512];
  tb_eventlog_t *log = NULL;
  int rc = open_log(&log, msg, sizeof msg, false);
  if (rc) fail_msg("open: %s", msg);
  int n = 0;
  tb_errbuf_t eb = {msg, sizeof msg};
  msg[0] = '\0';
  rc = tb_eventlog_read(log, 1, NULL, count_cb, &n, &eb);
  if (rc != TB_ECORRUPT || strstr(msg, fragment) == NULL)
    fail_msg("read: expected TB_ECORRUPT mentioning \"%s\", got %s: \"%s\"", fragment, tb_err_name(rc), msg);
  msg[0] = '\0';
  rc = tb_eventlog_verify(log, &eb);
  if (rc != TB_ECORRUPT) fail_msg("verify: expected TB_ECORRUPT, got %s: \"%s\"", tb_err_name(rc), msg);
  tb_eventlog_close(log);
  /* And opening with verify refuses it outright. */
  rc = open_log(&log, msg, sizeof msg, true);
  tb_eventlog_close(log);
  if (rc != TB_ECORRUPT) fail_msg("open with verify: expected TB_ECORRUPT, got %s: \"%s\"", tb_err_name(rc), msg);
}

static off_t file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? st.st_size : -1;
}

static void test_healthy(void **state) {
  fill(500);
  char msg[256];
  tb_eventlog_t *log = NULL;
  assert_int_equal(open_log(&log, msg, sizeof msg, true), 0);
  int n = 0;
  assert_int_equal(tb_eventlog_read(log, 1, NULL, count_cb, &n, NULL), 0);
  assert_int_equal(n, 500);
  assert_int_equal(tb_eventlog_verify(log, NULL), 0);
  tb_eventlog_close(log);
}

static void test_truncated_file(void **state) {
  fill(2000);
  off_t size = file_size(db_path);
  assert_true(size > 100000);
  assert_int_equal(truncate(db_path, (size / 2) & ~(off_t)4095), 0);
  expect_open_fails("truncated");
}

static void test_truncated_mid_page(void **state) {
  fill(200);
  assert_int_equal(truncate(db_path, file_size(db_path) - 1000), 0);
  expect_open_fails("not a whole number");
}

static void test_truncated_to_nothing(void **state) {
  fill(10);
  assert_int_equal(truncate(db_path, 0), 0);
  expect_open_fails("acknowledged");
  assert_int_equal(unlink(db_path), 0);
  expect_open_fails("missing");
  assert_int_equal(truncate(head_path, 0), 0); /* an empty marker is a marker never written */
  char msg[256];
  tb_eventlog_t *log = NULL;
  assert_int_equal(open_log(&log, msg, sizeof msg, false), 0);
  tb_eventlog_close(log);
}

static void test_damaged_header(void **state) {
  fill(10);
  int fd = open(db_path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, "garbage garbage!", 16, 0), 16);
  close(fd);
  expect_open_fails("SQLite header");
}

/* Flips one byte inside the payload of event `which`, in the database file. */
static void flip_in_payload(int which) {
  char needle[32];
  snprintf(needle, sizeof needle, "needle-%06d", which);
  FILE *f = fopen(db_path, "r+b");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  char *buf = malloc((size_t)n);
  fseek(f, 0, SEEK_SET);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  char *hit = memmem(buf, (size_t)n, needle, strlen(needle));
  assert_non_null(hit);
  long at = hit - buf + 8;
  fseek(f, at, SEEK_SET);
  fputc(hit[8] ^ 0x01, f);
  fclose(f);
  free(buf);
}

static void test_flipped_byte(void **state) {
  fill(300);
  flip_in_payload(123);
  expect_read_fails("offset 123 fails its checksum");
}

static void sql(const char *stmt) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
  char *err = NULL;
  if (sqlite3_exec(db, stmt, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", stmt, err);
  sqlite3_close(db);
}

static void test_deleted_row(void **state) {
  fill(300);
  sql("DELETE FROM events WHERE off = 77");
  expect_read_fails("offset 77 is missing");
}

static void test_edited_row(void **state) {
  fill(300);
  sql("UPDATE events SET payload = '{\"needle\":\"forged\"}' WHERE off = 42");
  expect_read_fails("offset 42 fails its checksum");
}

static void test_deleted_tail(void **state) {
  fill(300);
  sql("DELETE FROM events WHERE off > 250");
  expect_open_fails("ends at offset 250 but 300 events were acknowledged");
}

/* A child appends and dies without closing, so its events sit only in the WAL. */
static void crash_after_appends(int n) {
  pid_t pid = fork();
  if (pid == 0) {
    char msg[256];
    tb_eventlog_t *log = NULL;
    if (open_log(&log, msg, sizeof msg, false)) _exit(2);
    for (int i = 1; i <= n; i++) {
      char payload[64];
      snprintf(payload, sizeof payload, "{\"needle\":\"wal-%06d\"}", i);
      tb_event_t ev = {.type = "walled", .schema = 1, .actor = "test", .payload = payload, .payload_len = strlen(payload)};
      if (tb_eventlog_append(log, &ev, NULL, NULL)) _exit(3);
    }
    _exit(0); /* no close: no checkpoint, the WAL stays */
  }
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_truncated_wal(void **state) {
  fill(50);
  crash_after_appends(100);
  off_t wal = file_size(wal_path);
  assert_true(wal > 32 + 4096 * 10);
  /* Keep the WAL header and a few frames: later commits vanish as far as SQLite knows. */
  assert_int_equal(truncate(wal_path, 32 + (4096 + 24) * 3), 0);
  expect_open_fails("lost committed events");
}

static void test_damaged_wal(void **state) {
  fill(50);
  crash_after_appends(100);
  int fd = open(wal_path, O_RDWR);
  assert_true(fd >= 0);
  char junk[64];
  memset(junk, 0x5a, sizeof junk);
  /* Somewhere in the middle of the frames: SQLite's frame checksums stop recovery there. */
  off_t at = file_size(wal_path) / 2;
  assert_int_equal(pwrite(fd, junk, sizeof junk, at), (ssize_t)sizeof junk);
  close(fd);
  expect_open_fails("lost committed events");
}

static void test_damaged_marker(void **state) {
  fill(10);
  int fd = open(head_path, O_WRONLY);
  assert_int_equal(pwrite(fd, "x", 1, 30), 1);
  close(fd);
  expect_open_fails("events.head is damaged");
}

static void test_foreign_marker(void **state) {
  fill(10);
  char other[256], cmd[700];
  evtest_tmpdir(other, sizeof other, "other");
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.state_dir = other;
  tb_eventlog_t *log = NULL;
  assert_int_equal(tb_eventlog_open(&o, &log, NULL), 0);
  tb_eventlog_close(log);
  snprintf(cmd, sizeof cmd, "cp '%s/events.head' '%s'", other, head_path);
  assert_int_equal(system(cmd), 0);
  evtest_rmrf(other);
  expect_open_fails("do not belong together");
}

static void test_not_our_database(void **state) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes(x)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  expect_open_fails("not a Tabbify event log");
}

static void test_read_only(void **state) {
  char msg[256];
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.state_dir = dir;
  o.read_only = true;
  tb_eventlog_t *ro = NULL, *rw = NULL;
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_eventlog_open(&o, &ro, &eb), TB_ENOENT);
  fill(5);
  assert_int_equal(tb_eventlog_open(&o, &ro, &eb), 0);
  assert_int_equal(open_log(&rw, msg, sizeof msg, false), 0);
  tb_event_t ev = {.type = "x", .schema = 1, .actor = "test", .payload = "{}", .payload_len = 2};
  assert_int_equal(tb_eventlog_append(ro, &ev, NULL, NULL), TB_EPERM);
  assert_int_equal(tb_eventlog_append(rw, &ev, NULL, NULL), 0);
  int n = 0;
  assert_int_equal(tb_eventlog_read(ro, 1, NULL, count_cb, &n, NULL), 0);
  assert_int_equal(n, 6); /* sees the other handle's append */
  tb_eventlog_close(rw);
  tb_eventlog_close(ro);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_healthy),        T(test_truncated_file), T(test_truncated_mid_page), T(test_truncated_to_nothing),
      T(test_damaged_header), T(test_flipped_byte),   T(test_deleted_row),        T(test_edited_row),
      T(test_deleted_tail),   T(test_truncated_wal),  T(test_damaged_wal),        T(test_damaged_marker),
      T(test_foreign_marker), T(test_not_our_database), T(test_read_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
