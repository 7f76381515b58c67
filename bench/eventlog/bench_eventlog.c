/*
 * bench_eventlog.c — durable appends per second and replay speed, for both backends.
 *
 *   bench_eventlog [--backend embedded|jetstream|both] [--dir DIR] [--events N]
 *                  [--appenders 1,4,16] [--window W] [--replay N] [--replay-js N]
 *
 * Appends: for each count of concurrent appender threads, a fresh log receives N events
 * from the workload generator (tests/eventlog/workload.c), in two ways: "blocking", where
 * each thread calls tb_eventlog_append and waits for durability before the next one, and
 * "pipelined", where each thread keeps up to W tb_eventlog_append_async calls in flight.
 * Every append counted was durable (embedded: its group's fsync returned; jetstream:
 * the stream acknowledged it) before the clock stopped.
 *
 * Replay: a log of --replay events is built once, then read back three ways: the raw read
 * (checksums verified), a full replay into the projections, and a start-up from a snapshot
 * taken 1,000 events before the end.
 *
 * JetStream runs against a nats-server this program starts on a loopback port with a
 * temporary store (see natsd.h). Figures are printed, never asserted: see README.md.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "evtest.h"
#include "natsd.h"
#include "tb/clock.h"
#include "tb/log.h"
#include "tb/projections.h"
#include "workload.h"

typedef struct cfg {
  bool embedded, jetstream;
  const char *dir;
  int events;
  int appenders[8];
  int n_appenders;
  int window;
  int replay, replay_js;
} cfg_t;

static natsd_t natsd;
static int stream_serial;

/* Pre-generated events, so generation is not timed. */
typedef struct pregen {
  tb_event_t *ev;
  char **payloads;
  char **types;
  char **actors;
  int n;
} pregen_t;

static void pregen_make(pregen_t *pg, int n, uint64_t seed) {
  wl_t *w = wl_new(seed);
  pg->n = n;
  pg->ev = calloc((size_t)n, sizeof *pg->ev);
  pg->payloads = calloc((size_t)n, sizeof(char *));
  pg->types = calloc((size_t)n, sizeof(char *));
  pg->actors = calloc((size_t)n, sizeof(char *));
  for (int i = 0; i < n; i++) {
    tb_event_t ev;
    wl_next(w, &ev);
    pg->payloads[i] = strndup(ev.payload, ev.payload_len);
    pg->types[i] = strdup(ev.type);
    pg->actors[i] = strdup(ev.actor);
    pg->ev[i] = ev;
    pg->ev[i].payload = pg->payloads[i];
    pg->ev[i].type = pg->types[i];
    pg->ev[i].actor = pg->actors[i];
  }
  wl_free(w);
}

static void pregen_free(pregen_t *pg) {
  for (int i = 0; i < pg->n; i++) {
    free(pg->payloads[i]);
    free(pg->types[i]);
    free(pg->actors[i]);
  }
  free(pg->ev);
  free(pg->payloads);
  free(pg->types);
  free(pg->actors);
}

/* Opens a new log (fresh = true: a new directory or stream, whose name goes to `name`) or
 * the one called `name` again. */
static tb_eventlog_t *open_log(const cfg_t *c, tb_eventlog_backend_t b, bool fresh, char *name, size_t size) {
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.backend = b;
  char prefix[96];
  if (b == TB_EVENTLOG_EMBEDDED) {
    if (fresh) {
      snprintf(name, size, "%s/bench-XXXXXX", c->dir);
      if (mkdtemp(name) == NULL) {
        perror("mkdtemp");
        exit(1);
      }
    }
    o.state_dir = name;
  } else {
    if (fresh) snprintf(name, size, "BENCH_%d", ++stream_serial);
    snprintf(prefix, sizeof prefix, "bench.%s", name);
    o.nats_url = natsd.url;
    o.stream = name;
    o.subject_prefix = prefix;
  }
  char msg[512];
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_eventlog_t *log = NULL;
  if (tb_eventlog_open(&o, &log, &eb) != 0) {
    fprintf(stderr, "bench: cannot open the log: %s\n", msg);
    exit(1);
  }
  return log;
}

/* ---- Appends. ---- */

typedef struct worker {
  tb_eventlog_t *log;
  const pregen_t *pg;
  int first, count, window;
  bool pipelined;
  int failures;
  /* In-flight accounting. The thread sleeps when its window is full and is woken once
   * half of it has drained, not at every completion, as an event loop would batch them. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int inflight;
  bool waiting;
} worker_t;

static void async_done(int status, const tb_eventlog_ack_t *ack, void *ud) {
  worker_t *w = ud;
  pthread_mutex_lock(&w->mu);
  if (status) w->failures++;
  w->inflight--;
  if (w->waiting && (w->inflight <= w->window / 2 || w->inflight == 0)) {
    w->waiting = false;
    pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  for (int i = 0; i < w->count; i++) {
    const tb_event_t *ev = &w->pg->ev[(w->first + i) % w->pg->n];
    if (!w->pipelined) {
      if (tb_eventlog_append(w->log, ev, NULL, NULL) != 0) w->failures++;
      continue;
    }
    pthread_mutex_lock(&w->mu);
    while (w->inflight >= w->window) {
      w->waiting = true;
      pthread_cond_wait(&w->cv, &w->mu);
    }
    w->inflight++;
    pthread_mutex_unlock(&w->mu);
    if (tb_eventlog_append_async(w->log, ev, async_done, w, NULL) != 0) {
      pthread_mutex_lock(&w->mu);
      w->failures++;
      w->inflight--;
      pthread_mutex_unlock(&w->mu);
    }
  }
  pthread_mutex_lock(&w->mu);
  while (w->inflight > 0) {
    w->waiting = true;
    pthread_cond_wait(&w->cv, &w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static double run_appends(const cfg_t *c, tb_eventlog_backend_t b, const pregen_t *pg, int threads, bool pipelined,
                          int total) {
  char dir[512];
  tb_eventlog_t *log = open_log(c, b, true, dir, sizeof dir);
  worker_t *ws = calloc((size_t)threads, sizeof *ws);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  int per = total / threads;
  int64_t t0 = tb_clock_mono_ns();
  for (int i = 0; i < threads; i++) {
    ws[i] = (worker_t){.log = log, .pg = pg, .first = i * per, .count = per, .window = c->window, .pipelined = pipelined};
    pthread_mutex_init(&ws[i].mu, NULL);
    pthread_cond_init(&ws[i].cv, NULL);
    pthread_create(&th[i], NULL, worker_main, &ws[i]);
  }
  int failures = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(th[i], NULL);
    failures += ws[i].failures;
  }
  double secs = (double)(tb_clock_mono_ns() - t0) / 1e9;
  uint64_t head = 0;
  tb_eventlog_head(log, &head);
  tb_eventlog_close(log);
  if (failures || head != (uint64_t)(per * threads))
    fprintf(stderr, "bench: %d appends failed; head %llu of %d\n", failures, (unsigned long long)head, per * threads);
  for (int i = 0; i < threads; i++) {
    pthread_mutex_destroy(&ws[i].mu);
    pthread_cond_destroy(&ws[i].cv);
  }
  free(ws);
  free(th);
  if (b == TB_EVENTLOG_EMBEDDED) evtest_rmrf(dir);
  return (double)(per * threads) / secs;
}

/* ---- Replay. ---- */

/* CPU seconds (user + system, all threads) used by this process so far. */
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int count_cb(const tb_event_t *ev, void *ud) {
  (*(uint64_t *)ud)++;
  return 0;
}

static void fill(tb_eventlog_t *log, const pregen_t *pg, int n) {
  worker_t w = {.log = log, .pg = pg, .first = 0, .count = n, .window = 8192, .pipelined = true};
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  worker_main(&w);
  if (w.failures) fprintf(stderr, "bench: %d appends failed while filling\n", w.failures);
}

static void run_replay(const cfg_t *c, tb_eventlog_backend_t b, int n, const char *name) {
  if (n <= 0) return;
  char dir[512], snaps[600];
  pregen_t pg;
  pregen_make(&pg, n, 42);
  tb_eventlog_t *log = open_log(c, b, true, dir, sizeof dir);
  int64_t t0 = tb_clock_mono_ns();
  fill(log, &pg, n);
  double fill_s = (double)(tb_clock_mono_ns() - t0) / 1e9;
  pregen_free(&pg);
  tb_eventlog_close(log);
  log = open_log(c, b, false, dir, sizeof dir); /* reopened: as a restarted program would */
  uint64_t count = 0;
  t0 = tb_clock_mono_ns();
  double c0 = cpu_s();
  int rc = tb_eventlog_read(log, 1, NULL, count_cb, &count, NULL);
  double read_s = (double)(tb_clock_mono_ns() - t0) / 1e9, read_cpu = cpu_s() - c0;
  tb_projections_t *p = NULL;
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  t0 = tb_clock_mono_ns();
  c0 = cpu_s();
  int prc = tb_projections_open(log, NULL, &p, &eb);
  double replay_s = (double)(tb_clock_mono_ns() - t0) / 1e9, replay_cpu = cpu_s() - c0;
  printf("%-10s %d events written in %.2f s (%.0f/s, pipelined, one appender)\n", name, n, fill_s, n / fill_s);
  printf("%-10s read back (checksums verified): %.3f s wall, %.3f s CPU (%.0f events/s)%s\n", name, read_s, read_cpu,
         (double)count / read_s, rc || count != (uint64_t)n ? ", INCOMPLETE" : "");
  printf("%-10s replay into projections: %.3f s wall, %.3f s CPU on 2 threads (%.0f events/s)%s\n", name, replay_s,
         replay_cpu, n / replay_s, prc ? ", FAILED" : "");
  if (prc) fprintf(stderr, "bench: %s\n", msg);
  if (p && b == TB_EVENTLOG_EMBEDDED) {
    snprintf(snaps, sizeof snaps, "%s/snaps", dir);
    t0 = tb_clock_mono_ns();
    tb_projections_snapshot_save(p, snaps, NULL);
    double save_s = (double)(tb_clock_mono_ns() - t0) / 1e9;
    tb_projections_t *q = NULL;
    t0 = tb_clock_mono_ns();
    tb_projections_open(log, snaps, &q, NULL);
    double start_s = (double)(tb_clock_mono_ns() - t0) / 1e9;
    printf("%-10s snapshot of the projections: save %.3f s, start-up from it (load + catch-up) %.3f s\n", name,
           save_s, start_s);
    tb_projections_free(q);
  }
  tb_projections_free(p);
  tb_eventlog_close(log);
  if (b == TB_EVENTLOG_EMBEDDED) evtest_rmrf(dir);
}

/* ---- Context. ---- */

static double fsync_us(const char *dir) {
  char path[600];
  snprintf(path, sizeof path, "%s/fsync-probe", dir);
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) return -1;
  char b[4096] = {1};
  int64_t t0 = tb_clock_mono_ns();
  for (int i = 0; i < 200; i++) {
    if (pwrite(fd, b, sizeof b, (off_t)i * 4096) < 0 || fdatasync(fd) != 0) break;
  }
  double us = (double)(tb_clock_mono_ns() - t0) / 200 / 1e3;
  close(fd);
  unlink(path);
  return us;
}

static void usage(void) {
  fputs("usage: bench_eventlog [--backend embedded|jetstream|both] [--dir DIR] [--events N] [--appenders 1,4,16]\n"
        "                      [--window W] [--replay N] [--replay-js N]\n",
        stderr);
  exit(2);
}

int main(int argc, char **argv) {
  cfg_t c = {.embedded = true, .jetstream = true, .dir = "/tmp", .events = 20000, .appenders = {1, 4, 16},
             .n_appenders = 3, .window = 256, .replay = 1000000, .replay_js = 200000};
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    if (strcmp(a, "--backend") == 0) {
      c.embedded = strcmp(v, "embedded") == 0 || strcmp(v, "both") == 0;
      c.jetstream = strcmp(v, "jetstream") == 0 || strcmp(v, "both") == 0;
      if (!c.embedded && !c.jetstream) usage();
    } else if (strcmp(a, "--dir") == 0) {
      c.dir = v;
    } else if (strcmp(a, "--events") == 0) {
      c.events = atoi(v);
    } else if (strcmp(a, "--window") == 0) {
      c.window = atoi(v);
    } else if (strcmp(a, "--replay") == 0) {
      c.replay = atoi(v);
    } else if (strcmp(a, "--replay-js") == 0) {
      c.replay_js = atoi(v);
    } else if (strcmp(a, "--appenders") == 0) {
      c.n_appenders = 0;
      for (char *s = strdup(v), *tok = strtok(s, ","); tok && c.n_appenders < 8; tok = strtok(NULL, ","))
        c.appenders[c.n_appenders++] = atoi(tok);
    } else {
      usage();
    }
  }
  const char *lvl = getenv("TB_LOG_LEVEL");
  tb_log_level_t level = TB_LOG_WARN;
  if (lvl) tb_log_level_parse(lvl, &level);
  tb_log_set_level(level);
  if (c.jetstream && (!natsd_available() || natsd_start(&natsd) != 0)) {
    fprintf(stderr, "bench: no nats-server; skipping jetstream\n");
    c.jetstream = false;
  }
  printf("fdatasync on %s: %.0f µs; %ld CPUs; %d events per run, pipelined window %d per appender\n\n", c.dir,
         fsync_us(c.dir), sysconf(_SC_NPROCESSORS_ONLN), c.events, c.window);
  pregen_t pg;
  pregen_make(&pg, c.events, 1);
  printf("%-10s %-10s %12s %14s\n", "backend", "appenders", "blocking/s", "pipelined/s");
  for (int b = 0; b < 2; b++) {
    if ((b == 0 && !c.embedded) || (b == 1 && !c.jetstream)) continue;
    tb_eventlog_backend_t be = b ? TB_EVENTLOG_JETSTREAM : TB_EVENTLOG_EMBEDDED;
    for (int i = 0; i < c.n_appenders; i++) {
      int k = c.appenders[i];
      /* Blocking appends at one per fsync are slow: fewer of them keep the run short. */
      int blocking_n = be == TB_EVENTLOG_EMBEDDED ? (k * 400 < c.events ? k * 400 : c.events) : c.events / 4;
      double blk = run_appends(&c, be, &pg, k, false, blocking_n);
      double pip = run_appends(&c, be, &pg, k, true, c.events);
      printf("%-10s %-10d %12.0f %14.0f\n", b ? "jetstream" : "embedded", k, blk, pip);
      fflush(stdout);
    }
  }
  pregen_free(&pg);
  printf("\n");
  if (c.embedded) run_replay(&c, TB_EVENTLOG_EMBEDDED, c.replay, "embedded");
  if (c.jetstream) run_replay(&c, TB_EVENTLOG_JETSTREAM, c.replay_js, "jetstream");
  if (c.jetstream) natsd_cleanup(&natsd);
  return 0;
}
