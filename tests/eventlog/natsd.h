/*
 * natsd.h — a real nats-server with JetStream for tests and benchmarks.
 *
 * Starts /usr/sbin/nats-server (or $NATS_SERVER) on 127.0.0.1 with an ephemeral port
 * and a store directory under a fresh temporary directory, learns the port from the
 * server's ports file, and can kill and restart it on the same port and store. The
 * server is started with PR_SET_PDEATHSIG, so it dies with the process that started it
 * even when that process crashes; natsd_cleanup kills it and removes the directory.
 */
#ifndef TB_TEST_NATSD_H
#define TB_TEST_NATSD_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct natsd {
  pid_t pid;
  int port;
  char dir[256];  /* temporary directory: store/, ports files, nats.log */
  char url[64];   /* nats://127.0.0.1:<port> */
} natsd_t;

/** True when a nats-server binary is available. */
bool natsd_available(void);
/** Starts a new server in a new temporary directory. 0 or -errno. */
int natsd_start(natsd_t *d);
/** Kills the server with `sig` (SIGKILL, SIGTERM) and reaps it. */
void natsd_kill(natsd_t *d, int sig);
/** Starts the server again on the same port and store (after natsd_kill). */
int natsd_restart(natsd_t *d);
/** Kills the server if it runs and removes the temporary directory. */
void natsd_cleanup(natsd_t *d);

#endif
