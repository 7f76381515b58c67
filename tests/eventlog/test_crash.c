/*
 * test_crash.c — SIGKILL a writer at random moments, many times, and check the log after
 * each kill.
 *
 *   eventlog_crash embedded|jetstream CRASH_WRITER
 *
 * A writer (crash_writer.c) appends TB_CRASH_EVENTS (default 10,000) workload events with
 * idempotency keys, pipelined, while snapshotting projections; this test kills it with
 * SIGKILL at a random moment (after a random number of acknowledgements, or a random
 * delay that may fall in its start-up and recovery), then opens the log itself and checks
 * that:
 *   - the log opens (nothing is reported corrupt) and reads back with gap-free offsets and
 *     valid checksums;
 *   - every event the writer reported acknowledged is there, exactly once, at the offset
 *     it was acknowledged at, with exactly the content that was appended: nothing partial;
 *   - no event is there twice, acknowledged or not;
 *   - projections rebuilt by full replay equal those started from the writer's last
 *     snapshot (possibly killed mid-write) plus the events after it.
 * Then it starts the writer again from the first unacknowledged event (re-appending the
 * ones that may or may not have made it: the idempotency keys sort that out), until all
 * are acknowledged. With jetstream, every other round also kills nats-server (SIGKILL)
 * while the writer runs and restarts it.
 *
 * To stay within CI's time, a run stops killing after TB_CRASH_KILLS kills (default 30, 20
 * with jetstream) and lets the writer finish. TB_CRASH_ROUNDS repeats the whole run on
 * fresh logs (default 1), TB_CRASH_EVENTS changes the count (default 10,000; 3,000 in
 * the sanitizer build), TB_CRASH_SEED fixes the random delays (the seed used is printed).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evtest.h"
#include "tb/clock.h"
#include "tb/log.h"
#include "tb/projections.h"
#include "test.h"
#include "workload.h"

extern char **environ;

static const char *writer_path;
#ifdef TB_SANITIZE
static int total = 3000;
#else
static int total = 10000;
#endif
static int max_kills;
static uint64_t rng;

static int rnd(int lo, int hi) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return lo + (int)(rng % (uint64_t)(hi - lo + 1));
}

/* The events the writer appends: type and payload of event i. */
static char **gen_type, **gen_payload;

static void pregen(void) {
  wl_t *w = wl_new(1);
  gen_type = calloc((size_t)total, sizeof(char *));
  gen_payload = calloc((size_t)total, sizeof(char *));
  for (int i = 0; i < total; i++) {
    tb_event_t ev;
    wl_next(w, &ev);
    gen_type[i] = strdup(ev.type);
    gen_payload[i] = strndup(ev.payload, ev.payload_len);
  }
  wl_free(w);
}

typedef struct run {
  evtest_log_t t;
  char snapdir[256];
  uint64_t *acked; /* offset acknowledged for event i, 0 if none */
  int kills, server_kills, rounds;
} run_t;

typedef struct child {
  pid_t pid;
  int fd;
  char buf[8192];
  size_t len;
  bool ready, done;
  int acks; /* acknowledgements seen from this writer */
} child_t;

static void spawn_writer(run_t *r, int start, int window, child_t *c) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char s_start[16], s_total[16], s_window[16];
  snprintf(s_start, sizeof s_start, "%d", start);
  snprintf(s_total, sizeof s_total, "%d", total);
  snprintf(s_window, sizeof s_window, "%d", window);
  char *argv_e[] = {(char *)writer_path, "embedded", r->t.dir, r->snapdir, s_start, s_total, s_window, NULL};
  char *argv_j[] = {(char *)writer_path, "jetstream", evtest_natsd.url, r->t.stream, r->t.prefix, r->snapdir,
                    s_start, s_total, s_window, NULL};
  char **argv = evtest_backend == TB_EVENTLOG_EMBEDDED ? argv_e : argv_j;
  memset(c, 0, sizeof *c);
  int rc = posix_spawn(&c->pid, writer_path, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc) fail_msg("cannot start %s: %s", writer_path, strerror(rc));
  c->fd = fds[0];
}

static void handle_line(run_t *r, child_t *c, const char *line) {
  int i, dup;
  unsigned long long off;
  if (strcmp(line, "ready") == 0) c->ready = true;
  else if (strcmp(line, "done") == 0) c->done = true;
  else if (sscanf(line, "ack %d %llu %d", &i, &off, &dup) == 3 && i >= 0 && i < total && off > 0) {
    if (r->acked[i] && r->acked[i] != off)
      fail_msg("event %d was acknowledged at offset %llu, earlier at %llu", i, off, (unsigned long long)r->acked[i]);
    r->acked[i] = off;
    c->acks++;
  } else fail_msg("the writer said \"%s\"", line);
}

/* Reads what the writer printed, waiting up to `ms`. False at end of file. */
static bool pump(run_t *r, child_t *c, int ms) {
  struct pollfd pfd = {c->fd, POLLIN, 0};
  if (poll(&pfd, 1, ms) <= 0) return true;
  ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
  if (n <= 0) return false;
  c->len += (size_t)n;
  char *nl;
  while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
    *nl = '\0';
    handle_line(r, c, c->buf);
    size_t used = (size_t)(nl - c->buf) + 1;
    memmove(c->buf, nl + 1, c->len - used);
    c->len -= used;
  }
  return true;
}

/* Lets the writer run for `ms`, or until it exits. True if it exited by itself. */
static bool run_for(run_t *r, child_t *c, int ms) {
  int64_t deadline = tb_clock_mono_ns() + (int64_t)ms * TB_NS_PER_MS;
  while (tb_clock_mono_ns() < deadline)
    if (!pump(r, c, 5)) return true;
  return false;
}

/* Lets the writer run until it has acknowledged `n` more events (at most `ms`). */
static bool run_until_acks(run_t *r, child_t *c, int n, int ms) {
  int64_t deadline = tb_clock_mono_ns() + (int64_t)ms * TB_NS_PER_MS;
  int goal = c->acks + n;
  while (c->acks < goal && tb_clock_mono_ns() < deadline)
    if (!pump(r, c, 2)) return true;
  return false;
}

static void reap(run_t *r, child_t *c, bool kill_it) {
  if (kill_it) {
    kill(c->pid, SIGKILL);
    r->kills++;
  }
  int st;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
  }
  while (pump(r, c, 0) && c->len < sizeof c->buf - 1) {
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, 0) <= 0) break;
  }
  close(c->fd);
  if (!kill_it && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) fail_msg("the writer failed (status %d)", st);
}

/* ---- Checking the log after a kill. ---- */

typedef struct seen {
  run_t *r;
  int *count;
  uint64_t *at;
  uint64_t n;
  char problem[300];
} seen_t;

static int check_event(const tb_event_t *ev, void *ud) {
  seen_t *s = ud;
  int i = -1;
  s->n++;
  if (ev->idem_key == NULL || sscanf(ev->idem_key, "w-%d", &i) != 1 || i < 0 || i >= total) {
    snprintf(s->problem, sizeof s->problem, "offset %llu: unexpected key %s", (unsigned long long)ev->offset,
             ev->idem_key ? ev->idem_key : "(none)");
    return 1;
  }
  if (++s->count[i] > 1) {
    snprintf(s->problem, sizeof s->problem, "event %d is in the log twice (offsets %llu and %llu)", i,
             (unsigned long long)s->at[i], (unsigned long long)ev->offset);
    return 1;
  }
  s->at[i] = ev->offset;
  if (strcmp(ev->type, gen_type[i]) != 0 || ev->payload_len != strlen(gen_payload[i]) ||
      memcmp(ev->payload, gen_payload[i], ev->payload_len) != 0) {
    snprintf(s->problem, sizeof s->problem, "event %d at offset %llu is not what was appended", i,
             (unsigned long long)ev->offset);
    return 1;
  }
  return 0;
}

static tb_eventlog_t *open_retrying(run_t *r) {
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_eventlog_t *log = NULL;
  for (int attempt = 0;; attempt++) {
    int rc = tb_eventlog_open(&r->t.opts, &log, &eb);
    if (rc == 0) return log;
    /* A restarted nats-server takes a moment to recover its streams; corruption is final. */
    if (evtest_backend == TB_EVENTLOG_EMBEDDED || rc == TB_ECORRUPT || attempt == 100)
      fail_msg("after kill %d the log does not open: %s (%s)", r->kills, msg, tb_err_name(rc));
    tb_clock_sleep_ms(100);
  }
}

static char *dump(tb_projections_t *p) {
  tb_buf_t b;
  tb_buf_init(&b, TB_BUF_DEFAULT_MAX);
  assert_int_equal(tb_projections_dump(p, &b), 0);
  return tb_buf_steal(&b, NULL);
}

static void verify(run_t *r) {
  tb_eventlog_t *log = open_retrying(r);
  seen_t s = {.r = r, .count = calloc((size_t)total, sizeof(int)), .at = calloc((size_t)total, sizeof(uint64_t))};
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc;
  for (int attempt = 0;; attempt++) {
    memset(s.count, 0, (size_t)total * sizeof(int));
    s.n = 0;
    rc = tb_eventlog_read(log, 1, NULL, check_event, &s, &eb);
    if (rc == 0 || rc == 1 || rc == TB_ECORRUPT || attempt == 50) break;
    tb_clock_sleep_ms(100); /* jetstream still recovering */
  }
  if (rc == 1) fail_msg("after kill %d: %s", r->kills, s.problem);
  if (rc) fail_msg("after kill %d the log does not read back: %s (%s)", r->kills, msg, tb_err_name(rc));
  for (int i = 0; i < total; i++) {
    if (r->acked[i] == 0) continue;
    if (s.count[i] != 1) fail_msg("after kill %d: acknowledged event %d is missing", r->kills, i);
    if (s.at[i] != r->acked[i])
      fail_msg("after kill %d: event %d was acknowledged at offset %llu but is at %llu", r->kills, i,
               (unsigned long long)r->acked[i], (unsigned long long)s.at[i]);
  }
  /* Replay equals snapshot plus the events after it. */
  tb_projections_t *full = NULL, *fast = NULL;
  if ((rc = tb_projections_open(log, NULL, &full, &eb)) != 0) fail_msg("replay: %s", msg);
  if ((rc = tb_projections_open(log, r->snapdir, &fast, &eb)) != 0) fail_msg("start from snapshot: %s", msg);
  char *a = dump(full), *b = dump(fast);
  if (strcmp(a, b) != 0) fail_msg("after kill %d the projections from the snapshot differ from a replay", r->kills);
  free(a);
  free(b);
  tb_projections_free(full);
  tb_projections_free(fast);
  tb_eventlog_close(log);
  free(s.count);
  free(s.at);
}

static int first_unacked(run_t *r) {
  for (int i = 0; i < total; i++)
    if (r->acked[i] == 0) return i;
  return total;
}

static void one_run(void) {
  run_t r = {.acked = calloc((size_t)total, sizeof(uint64_t))};
  evtest_new_log(&r.t);
  evtest_tmpdir(r.snapdir, sizeof r.snapdir, "crash-snaps");
  bool js = evtest_backend == TB_EVENTLOG_JETSTREAM;
  int64_t t0 = tb_clock_mono_ns();
  int round = 0;
  for (int start; (start = first_unacked(&r)) < total; round++) {
    if (round > 400) fail_msg("no progress after %d rounds (%d acknowledged)", round, start);
    child_t c;
    /* A small window keeps the writer slow enough to be killed many times over. */
    spawn_writer(&r, start, js ? 4 : 8, &c);
    bool exited;
    if (r.kills >= max_kills) {
      exited = run_for(&r, &c, 600000); /* enough: let it finish */
      if (!exited) fail_msg("the writer did not finish");
    } else if (js && round % 2 == 1) {
      /* Kill the server under the writer, bring it back, let the writer recover, kill it.
       * The writer must have connected first: a first connection that finds no server is
       * an error to report (its open fails), not something to ride out. */
      for (int i = 0; i < 2000 && !c.ready; i++) pump(&r, &c, 5);
      exited = run_for(&r, &c, rnd(20, 200));
      natsd_kill(&evtest_natsd, SIGKILL);
      r.server_kills++;
      tb_clock_sleep_ms(rnd(20, 300));
      if (natsd_restart(&evtest_natsd) != 0) fail_msg("nats-server does not restart");
      if (!exited) exited = run_for(&r, &c, rnd(200, 800));
    } else if (rnd(0, 9) < 3) {
      exited = run_for(&r, &c, rnd(1, 120)); /* anywhere: in open, recovery, or appending */
    } else {
      /* After a random number of acknowledgements, so the kills spread over the whole run
       * however fast this machine's disk happens to be. */
      exited = run_until_acks(&r, &c, rnd(1, total / max_kills), 5000);
    }
    reap(&r, &c, !exited);
    verify(&r);
  }
  /* Once more, complete: every event exactly once. */
  verify(&r);
  tb_eventlog_t *log = open_retrying(&r);
  uint64_t head = 0;
  assert_int_equal(tb_eventlog_head(log, &head), 0);
  assert_int_equal(head, (uint64_t)total);
  tb_eventlog_close(log);
  printf("%s: %d events, %d writer kills, %d server kills, %d rounds, %.1f s\n", js ? "jetstream" : "embedded", total,
         r.kills, r.server_kills, round, (double)(tb_clock_mono_ns() - t0) / 1e9);
  evtest_remove(&r.t);
  evtest_rmrf(r.snapdir);
  free(r.acked);
}

static void test_crash_loop(void **state) {
  const char *rounds = getenv("TB_CRASH_ROUNDS");
  int n = rounds ? atoi(rounds) : 1;
  for (int i = 0; i < n; i++) one_run();
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: eventlog_crash embedded|jetstream CRASH_WRITER\n");
    return 2;
  }
  writer_path = argv[2];
  const char *e = getenv("TB_CRASH_EVENTS");
  if (e && atoi(e) > 0) total = atoi(e);
  const char *k = getenv("TB_CRASH_KILLS");
  max_kills = k && atoi(k) > 0 ? atoi(k) : strcmp(argv[1], "jetstream") == 0 ? 20 : 30;
  const char *seed = getenv("TB_CRASH_SEED");
  rng = seed ? strtoull(seed, NULL, 10) : (uint64_t)tb_clock_wall_ns();
  if (rng == 0) rng = 1;
  printf("TB_CRASH_SEED=%llu\n", (unsigned long long)rng);
  tb_log_set_level(TB_LOG_ERROR);
  if (evtest_setup(argv[1]) != 0) return evtest_backend == TB_EVENTLOG_JETSTREAM ? 77 : 1;
  pregen();
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_crash_loop)};
  int rc = cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
  evtest_teardown();
  return rc;
}
