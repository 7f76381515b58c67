/*
 * crash_writer.c — the program the crash test kills (test_crash.c).
 *
 *   crash_writer embedded  DIR                   SNAPDIR START TOTAL WINDOW
 *   crash_writer jetstream URL STREAM PREFIX     SNAPDIR START TOTAL WINDOW
 *
 * Appends events START..TOTAL-1 of the workload (seed 1), event i with the idempotency
 * key "w-<i>", keeping up to WINDOW appends in flight, and prints one line per
 * acknowledgement on stdout: "ack <i> <offset> <duplicate 0|1>". Meanwhile a second thread
 * keeps projections up to date from the log and snapshots them into SNAPDIR every 300
 * events, so that kills also land in the middle of snapshot writes. Prints "ready" once
 * the log is open and "done" after a clean close.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb/clock.h"
#include "tb/log.h"
#include "tb/projections.h"
#include "workload.h"

typedef struct state {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inflight, failures;
  volatile bool stop;
  tb_eventlog_t *log;
  const char *snapdir;
} state_t;

typedef struct slot {
  state_t *st;
  int i;
} slot_t;

static void say(const char *line) {
  size_t n = strlen(line);
  if (write(1, line, n) != (ssize_t)n) _exit(3);
}

static void done(int status, const tb_eventlog_ack_t *ack, void *ud) {
  slot_t *s = ud;
  state_t *st = s->st;
  char line[96];
  if (status == 0) {
    snprintf(line, sizeof line, "ack %d %llu %d\n", s->i, (unsigned long long)ack->offset, ack->duplicate ? 1 : 0);
    say(line);
  }
  pthread_mutex_lock(&st->mu);
  if (status) st->failures++;
  st->inflight--;
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
  free(s);
}

static void *follower(void *arg) {
  state_t *st = arg;
  tb_projections_t *p = NULL;
  char msg[256];
  tb_errbuf_t eb = {msg, sizeof msg};
  if (tb_projections_open(st->log, st->snapdir, &p, &eb) != 0) {
    fprintf(stderr, "crash_writer: projections: %s\n", msg);
    return NULL;
  }
  while (!st->stop) {
    if (tb_projections_catch_up(p, st->log, NULL, &eb) != 0) fprintf(stderr, "crash_writer: catch up: %s\n", msg);
    if (tb_projections_maybe_snapshot(p, st->snapdir, 300, &eb) != 0) fprintf(stderr, "crash_writer: snapshot: %s\n", msg);
    tb_clock_sleep_ms(5);
  }
  tb_projections_free(p);
  return NULL;
}

int main(int argc, char **argv) {
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  int a = 2;
  if (argc == 7 && strcmp(argv[1], "embedded") == 0) {
    o.state_dir = argv[a++];
  } else if (argc == 9 && strcmp(argv[1], "jetstream") == 0) {
    o.backend = TB_EVENTLOG_JETSTREAM;
    o.nats_url = argv[a++];
    o.stream = argv[a++];
    o.subject_prefix = argv[a++];
    o.append_timeout_ms = 120000;
  } else {
    fprintf(stderr, "usage: crash_writer embedded DIR SNAPDIR START TOTAL WINDOW\n"
                    "       crash_writer jetstream URL STREAM PREFIX SNAPDIR START TOTAL WINDOW\n");
    return 2;
  }
  tb_log_set_level(TB_LOG_ERROR);
  state_t st = {.snapdir = argv[a++]};
  int start = atoi(argv[a++]), total = atoi(argv[a++]), window = atoi(argv[a++]);
  pthread_mutex_init(&st.mu, NULL);
  pthread_cond_init(&st.cv, NULL);
  char msg[512];
  tb_errbuf_t eb = {msg, sizeof msg};
  if (tb_eventlog_open(&o, &st.log, &eb) != 0) {
    fprintf(stderr, "crash_writer: %s\n", msg);
    return 1;
  }
  say("ready\n");
  pthread_t th;
  pthread_create(&th, NULL, follower, &st);
  wl_t *w = wl_new(1);
  for (int i = 0; i < total; i++) {
    tb_event_t ev;
    wl_next(w, &ev);
    if (i < start) continue;
    char key[32];
    snprintf(key, sizeof key, "w-%d", i);
    ev.idem_key = key;
    pthread_mutex_lock(&st.mu);
    while (st.inflight >= window) pthread_cond_wait(&st.cv, &st.mu);
    st.inflight++;
    pthread_mutex_unlock(&st.mu);
    slot_t *s = malloc(sizeof *s);
    *s = (slot_t){&st, i};
    if (tb_eventlog_append_async(st.log, &ev, done, s, &eb) != 0) {
      fprintf(stderr, "crash_writer: append %d: %s\n", i, msg);
      return 1;
    }
  }
  pthread_mutex_lock(&st.mu);
  while (st.inflight > 0) pthread_cond_wait(&st.cv, &st.mu);
  pthread_mutex_unlock(&st.mu);
  st.stop = true;
  pthread_join(th, NULL);
  wl_free(w);
  tb_eventlog_close(st.log);
  say("done\n");
  return st.failures ? 1 : 0;
}
