/*
 * evtest.h — what the event log tests share: a fresh log on either backend, and
 * scratch directories.
 *
 * evtest_setup(backend) prepares the backend once per test program (for jetstream: starts
 * a nats-server); evtest_new_log() then gives each test a log of its own (a new state
 * directory, or a new stream with its own subjects on the shared server), which
 * evtest_reopen() opens again as a restarted program would.
 */
#ifndef TB_TEST_EVTEST_H
#define TB_TEST_EVTEST_H

#include <stdbool.h>

#include "natsd.h"
#include "tb/eventlog.h"

typedef struct evtest_log {
  tb_eventlog_opts_t opts;
  char dir[256];     /* state directory (embedded) */
  char stream[64];   /* stream name (jetstream) */
  char prefix[64];   /* subject prefix (jetstream) */
} evtest_log_t;

extern tb_eventlog_backend_t evtest_backend;
extern natsd_t evtest_natsd;

/** Parses "embedded" or "jetstream"; for jetstream starts the server. 0, or -1 to skip. */
int evtest_setup(const char *backend);
void evtest_teardown(void);
/** A fresh, empty log description for this test (does not open it). */
void evtest_new_log(evtest_log_t *t);
/** Opens the log `t` describes; fails the test on error. */
tb_eventlog_t *evtest_open(evtest_log_t *t);
/** Removes the state directory of `t` (embedded). */
void evtest_remove(evtest_log_t *t);
/** A temporary directory (mkdtemp under $TMPDIR or /tmp) into `out`. */
void evtest_tmpdir(char *out, size_t size, const char *tag);
/** rm -rf `path`. */
void evtest_rmrf(const char *path);

#endif
