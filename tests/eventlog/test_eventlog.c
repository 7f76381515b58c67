/*
 * test_eventlog.c — the event log's contract (include/tb/eventlog.h), run against one
 * backend: `eventlog_api embedded` or `eventlog_api jetstream` (which starts its own
 * nats-server on a loopback ephemeral port).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evtest.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "test.h"

static tb_event_t mk(const char *type, const char *payload) {
  tb_event_t ev = {.type = type, .schema = 1, .actor = "test", .payload = payload, .payload_len = strlen(payload)};
  return ev;
}

static uint64_t append_ok(tb_eventlog_t *log, tb_event_t ev) {
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_eventlog_ack_t ack;
  int rc = tb_eventlog_append(log, &ev, &ack, &eb);
  if (rc) fail_msg("append %s: %s (%s)", ev.type, msg, tb_err_name(rc));
  return ack.offset;
}

/* Collects what a read delivers. */
typedef struct seen {
  uint64_t n;
  uint64_t last;
  bool in_order;
  char types[8][32];
  char payloads[8][64];
  tb_uuid_t ids[8];
  int64_t ts[8];
  char idem[8][32];
  uint64_t stop_at; /* return 7 at this offset */
} seen_t;

static int collect(const tb_event_t *ev, void *ud) {
  seen_t *s = ud;
  if (s->stop_at && ev->offset == s->stop_at) return 7;
  if (ev->offset != s->last + 1) s->in_order = false;
  if (s->n < 8) {
    snprintf(s->types[s->n], 32, "%s", ev->type);
    snprintf(s->payloads[s->n], 64, "%.*s", (int)ev->payload_len, ev->payload);
    s->ids[s->n] = ev->id;
    s->ts[s->n] = ev->ts_ns;
    snprintf(s->idem[s->n], 32, "%s", ev->idem_key ? ev->idem_key : "-");
  }
  s->last = ev->offset;
  s->n++;
  return 0;
}

static void test_append_read(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  uint64_t head = 99;
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, 0);

  tb_uuid_t app;
  tb_uuid_v7_new(&app);
  tb_event_t ev = mk("app_registered", "{\"app\":\"x\",\"name\":\"hello\"}");
  ev.aggregate = app;
  ev.actor = "user:alice";
  ev.ts_ns = 1234567890123456789;
  ev.idem_key = "req-1";
  tb_eventlog_ack_t ack;
  assert_int_equal(tb_eventlog_append(log, &ev, &ack, NULL), 0);
  assert_int_equal(ack.offset, 1);
  assert_false(ack.duplicate);
  assert_int_equal(tb_uuid_version(&ack.id), 7);
  assert_int_equal(append_ok(log, mk("app_started", "{\"n\":2}")), 2);
  assert_int_equal(append_ok(log, mk("app_stopped", "{}")), 3);
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, 3);

  seen_t s = {.in_order = true};
  assert_int_equal(tb_eventlog_read(log, 1, NULL, collect, &s, NULL), 0);
  assert_int_equal(s.n, 3);
  assert_true(s.in_order);
  assert_string_equal(s.types[0], "app_registered");
  assert_string_equal(s.payloads[0], "{\"app\":\"x\",\"name\":\"hello\"}");
  assert_memory_equal(s.ids[0].b, ack.id.b, 16);
  assert_int_equal(s.ts[0], 1234567890123456789);
  assert_string_equal(s.idem[0], "req-1");
  assert_string_equal(s.idem[1], "-");
  assert_string_equal(s.types[2], "app_stopped");

  /* From an offset, and by type. */
  seen_t s2 = {.last = 1, .in_order = true};
  assert_int_equal(tb_eventlog_read(log, 2, NULL, collect, &s2, NULL), 0);
  assert_int_equal(s2.n, 2);
  assert_string_equal(s2.types[0], "app_started");
  seen_t s3 = {.in_order = true};
  assert_int_equal(tb_eventlog_read(log, 1, "app_stopped", collect, &s3, NULL), 0);
  assert_int_equal(s3.n, 1);
  assert_int_equal(s3.last, 3);
  seen_t s4 = {.in_order = true};
  assert_int_equal(tb_eventlog_read(log, 4, NULL, collect, &s4, NULL), 0);
  assert_int_equal(s4.n, 0);
  /* A callback's non-zero value stops the read and comes back. */
  seen_t s5 = {.in_order = true, .stop_at = 2};
  assert_int_equal(tb_eventlog_read(log, 1, NULL, collect, &s5, NULL), 7);
  assert_int_equal(s5.n, 1);

  /* A restarted program sees the same log. */
  tb_eventlog_close(log);
  log = evtest_open(&t);
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, 3);
  seen_t s6 = {.in_order = true};
  assert_int_equal(tb_eventlog_read(log, 1, NULL, collect, &s6, NULL), 0);
  assert_int_equal(s6.n, 3);
  assert_string_equal(s6.payloads[1], "{\"n\":2}");
  assert_int_equal(append_ok(log, mk("app_started", "{}")), 4);

  /* Allocation failures on the appending thread end in TB_ENOMEM and append nothing. */
  uint64_t expect = 4;
  for (long fail = 0; fail < 40; fail++) {
    tb_event_t ev2 = mk("app_started", "{\"deeply\":{\"nested\":[1,2,{\"k\":\"v\"}]},\"a\":1,\"b\":2}");
    tb_eventlog_ack_t a2;
    tb_alloc_fail_after(fail);
    int rc = tb_eventlog_append(log, &ev2, &a2, NULL);
    tb_alloc_fail_after(-1);
    assert_true(rc == 0 || rc == TB_ENOMEM);
    if (rc == 0) assert_int_equal(a2.offset, ++expect);
  }
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, expect);
  tb_eventlog_close(log);
  evtest_remove(&t);
}

static void expect_invalid(tb_eventlog_t *log, tb_event_t ev, int want, const char *fragment) {
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc = tb_eventlog_append(log, &ev, NULL, &eb);
  if (rc != want || strstr(msg, fragment) == NULL)
    fail_msg("expected %s mentioning \"%s\", got %s: \"%s\"", tb_err_name(want), fragment, tb_err_name(rc), msg);
}

static void test_validation(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  expect_invalid(log, mk("App_Registered", "{}"), TB_EINVAL, "lower-case");
  expect_invalid(log, mk("", "{}"), TB_EINVAL, "lower-case");
  expect_invalid(log, mk("a.b", "{}"), TB_EINVAL, "lower-case");
  char longtype[80];
  memset(longtype, 'a', 70);
  longtype[70] = '\0';
  expect_invalid(log, mk(longtype, "{}"), TB_ETOOBIG, "limit is 64");
  expect_invalid(log, mk("x", "[1,2]"), TB_EINVAL, "must be a JSON object");
  expect_invalid(log, mk("x", "{\"a\":"), TB_EINVAL, "not JSON");
  expect_invalid(log, mk("x", "{\"a\":1,\"a\":2}"), TB_EINVAL, "not JSON");
  tb_event_t nul = mk("x", "{\"a\":1\0}");
  nul.payload_len = 8;
  expect_invalid(log, nul, TB_EINVAL, "NUL");
  tb_event_t ev = mk("x", "{}");
  ev.schema = 0;
  expect_invalid(log, ev, TB_EINVAL, "schema");
  ev = mk("x", "{}");
  ev.actor = "";
  expect_invalid(log, ev, TB_EINVAL, "actor is required");
  ev.actor = "bad\nactor";
  expect_invalid(log, ev, TB_EINVAL, "control characters");
  ev.actor = "bad \xff utf8";
  expect_invalid(log, ev, TB_EINVAL, "UTF-8");
  ev = mk("x", "{}");
  ev.idem_key = "has space";
  expect_invalid(log, ev, TB_EINVAL, "idempotency key");
  char *big = tb_malloc(TB_EVENT_PAYLOAD_MAX + 10);
  memset(big, ' ', TB_EVENT_PAYLOAD_MAX + 9);
  big[0] = '{';
  big[TB_EVENT_PAYLOAD_MAX + 8] = '}';
  ev = mk("x", "{}");
  ev.payload = big;
  ev.payload_len = TB_EVENT_PAYLOAD_MAX + 9;
  expect_invalid(log, ev, TB_ETOOBIG, "limit");
  tb_free(big);
  uint64_t head = 1;
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, 0); /* nothing got in */
  tb_eventlog_close(log);
  evtest_remove(&t);
}

static void test_idempotency(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  tb_event_t ev = mk("deploy_requested", "{\"v\":1}");
  ev.idem_key = "deploy-42";
  tb_eventlog_ack_t a1, a2, a3;
  assert_int_equal(tb_eventlog_append(log, &ev, &a1, NULL), 0);
  assert_int_equal(append_ok(log, mk("other", "{}")), 2);
  ev.payload = "{\"v\":2}";
  ev.payload_len = 7;
  assert_int_equal(tb_eventlog_append(log, &ev, &a2, NULL), 0);
  assert_true(a2.duplicate);
  assert_int_equal(a2.offset, a1.offset);
  assert_memory_equal(a2.id.b, a1.id.b, 16);
  /* After a restart too. */
  tb_eventlog_close(log);
  log = evtest_open(&t);
  assert_int_equal(tb_eventlog_append(log, &ev, &a3, NULL), 0);
  assert_true(a3.duplicate);
  assert_int_equal(a3.offset, 1);
  uint64_t head;
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, 2);
  seen_t s = {.in_order = true};
  assert_int_equal(tb_eventlog_read(log, 1, NULL, collect, &s, NULL), 0);
  assert_string_equal(s.payloads[0], "{\"v\":1}");
  tb_eventlog_close(log);
  evtest_remove(&t);
}

/* ---- Concurrency: many appenders, gap-free offsets, each thread's order kept. ---- */

enum { THREADS = 8, PER_THREAD = 300 };

typedef struct appender {
  tb_eventlog_t *log;
  int id;
  int failures;
  uint64_t offsets[PER_THREAD];
} appender_t;

static void *append_thread(void *arg) {
  appender_t *a = arg;
  for (int i = 0; i < PER_THREAD; i++) {
    char payload[64];
    snprintf(payload, sizeof payload, "{\"thread\":%d,\"i\":%d}", a->id, i);
    tb_event_t ev = mk("tick", payload);
    tb_eventlog_ack_t ack;
    if (tb_eventlog_append(a->log, &ev, &ack, NULL) != 0) a->failures++;
    a->offsets[i] = ack.offset;
  }
  return NULL;
}

typedef struct order_check {
  int next[THREADS];
  uint64_t n;
  bool ok;
} order_check_t;

static int check_order(const tb_event_t *ev, void *ud) {
  order_check_t *c = ud;
  int th = -1, i = -1;
  if (sscanf(ev->payload, "{\"thread\":%d,\"i\":%d}", &th, &i) != 2 || th < 0 || th >= THREADS || c->next[th] != i)
    c->ok = false;
  else
    c->next[th]++;
  c->n++;
  return 0;
}

static void test_concurrent_appends(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  appender_t a[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    a[i] = (appender_t){.log = log, .id = i};
    pthread_create(&th[i], NULL, append_thread, &a[i]);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  bool *used = calloc(THREADS * PER_THREAD + 1, 1);
  for (int i = 0; i < THREADS; i++) {
    assert_int_equal(a[i].failures, 0);
    for (int k = 0; k < PER_THREAD; k++) {
      uint64_t off = a[i].offsets[k];
      assert_true(off >= 1 && off <= THREADS * PER_THREAD);
      assert_false(used[off]);
      used[off] = true;
      if (k) assert_true(off > a[i].offsets[k - 1]);
    }
  }
  free(used);
  order_check_t c = {.ok = true};
  assert_int_equal(tb_eventlog_read(log, 1, NULL, check_order, &c, NULL), 0);
  assert_int_equal(c.n, THREADS * PER_THREAD);
  assert_true(c.ok);
  tb_eventlog_close(log);
  evtest_remove(&t);
}

/* ---- Async appends: many in flight from one thread. ---- */

typedef struct async_state {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, failed;
  uint64_t max_off;
} async_state_t;

static void async_done(int status, const tb_eventlog_ack_t *ack, void *ud) {
  async_state_t *s = ud;
  pthread_mutex_lock(&s->mu);
  if (status) s->failed++;
  else if (ack->offset > s->max_off) s->max_off = ack->offset;
  s->done++;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static void test_async_appends(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  async_state_t s = {.done = 0};
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cv, NULL);
  enum { N = 3000 };
  for (int i = 0; i < N; i++) {
    char payload[32];
    snprintf(payload, sizeof payload, "{\"i\":%d}", i);
    tb_event_t ev = mk("tick", payload);
    assert_int_equal(tb_eventlog_append_async(log, &ev, async_done, &s, NULL), 0);
  }
  pthread_mutex_lock(&s.mu);
  while (s.done < N) pthread_cond_wait(&s.cv, &s.mu);
  pthread_mutex_unlock(&s.mu);
  assert_int_equal(s.failed, 0);
  assert_int_equal(s.max_off, N);
  uint64_t head;
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, N);
  /* Invalid events are refused up front and their callback never runs. */
  tb_event_t bad = mk("x", "nope");
  assert_int_equal(tb_eventlog_append_async(log, &bad, async_done, &s, NULL), TB_EINVAL);
  tb_eventlog_close(log);
  assert_int_equal(s.done, N);
  pthread_cond_destroy(&s.cv);
  pthread_mutex_destroy(&s.mu);
  evtest_remove(&t);
}

/* ---- Subscriptions. ---- */

typedef struct subseen {
  uint64_t n, last, dups;
  bool in_order;
} subseen_t;

static int sub_collect(const tb_event_t *ev, void *ud) {
  subseen_t *s = ud;
  if (ev->offset <= s->last) s->dups++;
  else if (ev->offset != s->last + 1) s->in_order = false;
  if (ev->offset > s->last) s->last = ev->offset;
  s->n++;
  return 0;
}

typedef struct feeder {
  tb_eventlog_t *log;
  int n;
  int failures;
} feeder_t;

static void *feed(void *arg) {
  feeder_t *f = arg;
  for (int i = 0; i < f->n; i++) {
    tb_event_t ev = mk("later", "{\"x\":1}");
    if (tb_eventlog_append_async(f->log, &ev, NULL, NULL, NULL) != 0) f->failures++;
  }
  return NULL;
}

/* Polls until `want` events have been seen or 30 s pass. */
static void drain(tb_eventlog_sub_t *sub, subseen_t *s, uint64_t want) {
  int64_t deadline = tb_clock_mono_ns() + 30 * TB_NS_PER_SEC;
  while (s->last < want && tb_clock_mono_ns() < deadline) {
    size_t n = 0;
    int rc = tb_eventlog_sub_poll(sub, 1000, 200, sub_collect, s, &n, NULL);
    if (rc && rc != TB_EAGAIN) fail_msg("poll: %s", tb_err_name(rc));
  }
}

static void test_late_subscriber(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  for (int i = 0; i < 5000; i++) {
    tb_event_t ev = mk("early", "{\"x\":0}");
    assert_int_equal(tb_eventlog_append_async(log, &ev, NULL, NULL, NULL), 0);
  }
  uint64_t head = 0;
  for (int i = 0; i < 3000 && head < 5000; i++) {
    tb_eventlog_head(log, &head);
    if (head < 5000) tb_clock_sleep_ms(10);
  }
  assert_int_equal(head, 5000);
  /* Started after 5,000 events, with 5,000 more arriving while it catches up. */
  tb_eventlog_sub_t *sub = NULL;
  assert_int_equal(tb_eventlog_sub_open(log, "late", 1, &sub, NULL), 0);
  feeder_t f = {.log = log, .n = 5000};
  pthread_t th;
  pthread_create(&th, NULL, feed, &f);
  subseen_t s = {.in_order = true};
  drain(sub, &s, 10000);
  pthread_join(th, NULL);
  assert_int_equal(f.failures, 0);
  assert_int_equal(s.n, 10000);
  assert_int_equal(s.dups, 0);
  assert_true(s.in_order);
  assert_int_equal(tb_eventlog_sub_position(sub), 10000);
  /* Nothing more: an empty poll waits about its timeout and delivers nothing. */
  size_t n = 9;
  int64_t t0 = tb_clock_mono_ns();
  assert_int_equal(tb_eventlog_sub_poll(sub, 10, 100, sub_collect, &s, &n, NULL), 0);
  int64_t waited = (tb_clock_mono_ns() - t0) / TB_NS_PER_MS;
  assert_int_equal(n, 0);
  assert_true(waited >= 80 && waited < 10000);
  tb_eventlog_sub_close(sub);
  tb_eventlog_close(log);
  evtest_remove(&t);
}

static void test_restarted_subscriber(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  for (int i = 0; i < 3000; i++) {
    tb_event_t ev = mk("e", "{}");
    assert_int_equal(tb_eventlog_append_async(log, &ev, NULL, NULL, NULL), 0);
  }
  tb_eventlog_sub_t *sub = NULL;
  assert_int_equal(tb_eventlog_sub_open(log, "worker", 1, &sub, NULL), 0);
  /* A second subscription under the same name is refused while the first is open. */
  tb_eventlog_sub_t *again = NULL;
  assert_int_equal(tb_eventlog_sub_open(log, "worker", 1, &again, NULL), TB_EBUSY);
  subseen_t s = {.in_order = true};
  drain(sub, &s, 1500);
  assert_true(s.last >= 1500);
  assert_int_equal(tb_eventlog_sub_ack(sub, 1200), 0);
  assert_int_equal(tb_eventlog_sub_ack(sub, s.last + 1), TB_EINVAL); /* not delivered yet */
  assert_int_equal(tb_eventlog_sub_ack(sub, 10), 0);                 /* below the cursor: no-op */
  assert_int_equal(tb_eventlog_sub_acked(sub), 1200);
  uint64_t delivered_before = s.last;
  /* The subscriber dies without acknowledging past 1200, and the log restarts too. */
  tb_eventlog_sub_close(sub);
  tb_eventlog_close(log);
  log = evtest_open(&t);
  feeder_t f = {.log = log, .n = 2000};
  pthread_t th;
  pthread_create(&th, NULL, feed, &f);
  assert_int_equal(tb_eventlog_sub_open(log, "worker", 1, &sub, NULL), 0);
  assert_int_equal(tb_eventlog_sub_acked(sub), 1200);
  assert_int_equal(tb_eventlog_sub_position(sub), 1200);
  subseen_t r = {.last = 1200, .in_order = true};
  drain(sub, &r, 5000);
  pthread_join(th, NULL);
  assert_int_equal(f.failures, 0);
  assert_true(r.in_order);
  assert_int_equal(r.dups, 0);
  assert_int_equal(r.last, 5000);
  /* At-least-once: events delivered but not acknowledged came again, and only those. */
  assert_int_equal(r.n, 5000 - 1200);
  assert_true(delivered_before > 1200);
  assert_int_equal(tb_eventlog_sub_ack(sub, 5000), 0);
  tb_eventlog_sub_close(sub);
  /* Ephemeral subscriptions start where asked and cannot acknowledge. */
  assert_int_equal(tb_eventlog_sub_open(log, NULL, 4990, &sub, NULL), 0);
  subseen_t e = {.last = 4989, .in_order = true};
  drain(sub, &e, 5000);
  assert_int_equal(e.n, 11);
  assert_int_equal(tb_eventlog_sub_ack(sub, 4995), TB_EINVAL);
  tb_eventlog_sub_close(sub);
  /* Forgetting a cursor starts the name over. */
  assert_int_equal(tb_eventlog_sub_delete(log, "worker"), 0);
  assert_int_equal(tb_eventlog_sub_delete(log, "worker"), TB_ENOTFOUND);
  assert_int_equal(tb_eventlog_sub_open(log, "worker", 1, &sub, NULL), 0);
  assert_int_equal(tb_eventlog_sub_position(sub), 0);
  tb_eventlog_sub_close(sub);
  assert_int_equal(tb_eventlog_sub_open(log, "bad name!", 1, &sub, NULL), TB_EINVAL);
  tb_eventlog_close(log);
  evtest_remove(&t);
}

typedef struct stopper {
  int calls;
} stopper_t;

static int stop_third(const tb_event_t *ev, void *ud) {
  stopper_t *s = ud;
  return ++s->calls == 3 ? 42 : 0;
}

static void test_poll_stop_and_wakeup(void **state) {
  evtest_log_t t;
  evtest_new_log(&t);
  tb_eventlog_t *log = evtest_open(&t);
  for (int i = 0; i < 5; i++) append_ok(log, mk("e", "{}"));
  tb_eventlog_sub_t *sub = NULL;
  assert_int_equal(tb_eventlog_sub_open(log, "stopper", 1, &sub, NULL), 0);
  stopper_t st = {0};
  size_t n = 0;
  assert_int_equal(tb_eventlog_sub_poll(sub, 10, 1000, stop_third, &st, &n, NULL), 42);
  assert_int_equal(n, 2);
  assert_int_equal(tb_eventlog_sub_position(sub), 2);
  subseen_t s = {.last = 2, .in_order = true};
  assert_int_equal(tb_eventlog_sub_poll(sub, 10, 1000, sub_collect, &s, &n, NULL), 0);
  assert_int_equal(n, 3);
  assert_int_equal(s.last, 5);
  /* A poll waiting for the next event wakes up when it is appended. */
  feeder_t f = {.log = log, .n = 1};
  pthread_t th;
  int64_t t0 = tb_clock_mono_ns();
  pthread_create(&th, NULL, feed, &f);
  assert_int_equal(tb_eventlog_sub_poll(sub, 10, 30000, sub_collect, &s, &n, NULL), 0);
  int64_t ms = (tb_clock_mono_ns() - t0) / TB_NS_PER_MS;
  pthread_join(th, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(s.last, 6);
  assert_true(ms < 20000); /* woken by the append, not by the timeout */
  tb_eventlog_sub_close(sub);
  tb_eventlog_close(log);
  evtest_remove(&t);
}

int main(int argc, char **argv) {
  if (evtest_setup(argc > 1 ? argv[1] : "embedded") != 0) return evtest_backend == TB_EVENTLOG_JETSTREAM ? 77 : 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_read),        cmocka_unit_test(test_validation),
      cmocka_unit_test(test_idempotency),        cmocka_unit_test(test_concurrent_appends),
      cmocka_unit_test(test_async_appends),      cmocka_unit_test(test_late_subscriber),
      cmocka_unit_test(test_restarted_subscriber), cmocka_unit_test(test_poll_stop_and_wakeup),
  };
  int rc = cmocka_run_group_tests_name(argc > 1 ? argv[1] : "embedded", tests, NULL, NULL);
  evtest_teardown();
  return rc;
}
