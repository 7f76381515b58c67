/*
 * evtest.c — fresh logs on either backend for the event log tests (evtest.h).
 */
#include "evtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

tb_eventlog_backend_t evtest_backend = TB_EVENTLOG_EMBEDDED;
natsd_t evtest_natsd;
static int serial;

void evtest_tmpdir(char *out, size_t size, const char *tag) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, size, "%s/tb-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
  if (mkdtemp(out) == NULL) {
    perror("mkdtemp");
    abort();
  }
}

void evtest_rmrf(const char *path) {
  char cmd[600];
  if (path[0] == '\0') return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", path);
}

int evtest_setup(const char *backend) {
  if (backend == NULL || strcmp(backend, "embedded") == 0) {
    evtest_backend = TB_EVENTLOG_EMBEDDED;
    return 0;
  }
  if (strcmp(backend, "jetstream") != 0) {
    fprintf(stderr, "unknown backend %s\n", backend);
    return -1;
  }
  evtest_backend = TB_EVENTLOG_JETSTREAM;
  if (!natsd_available()) {
    fprintf(stderr, "nats-server is not installed (scripts/setup installs it); skipping\n");
    return -1;
  }
  int rc = natsd_start(&evtest_natsd);
  if (rc) {
    fprintf(stderr, "cannot start nats-server: %s\n", strerror(-rc));
    return -1;
  }
  return 0;
}

void evtest_teardown(void) {
  if (evtest_backend == TB_EVENTLOG_JETSTREAM) natsd_cleanup(&evtest_natsd);
}

void evtest_new_log(evtest_log_t *t) {
  memset(t, 0, sizeof *t);
  tb_eventlog_opts_init(&t->opts);
  t->opts.backend = evtest_backend;
  if (evtest_backend == TB_EVENTLOG_EMBEDDED) {
    evtest_tmpdir(t->dir, sizeof t->dir, "evlog");
    t->opts.state_dir = t->dir;
  } else {
    serial++;
    snprintf(t->stream, sizeof t->stream, "T%d_%d", (int)getpid(), serial);
    snprintf(t->prefix, sizeof t->prefix, "t%d.%d", (int)getpid(), serial);
    t->opts.nats_url = evtest_natsd.url;
    t->opts.stream = t->stream;
    t->opts.subject_prefix = t->prefix;
  }
}

tb_eventlog_t *evtest_open(evtest_log_t *t) {
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_eventlog_t *log = NULL;
  int rc = tb_eventlog_open(&t->opts, &log, &eb);
  if (rc) fail_msg("cannot open the %s log: %s (%s)", evtest_backend ? "jetstream" : "embedded", msg, tb_err_name(rc));
  return log;
}

void evtest_remove(evtest_log_t *t) { evtest_rmrf(t->dir); }
