/*
 * supervisor.h — tabbify-supervisord: the control plane of one machine.
 *
 * A supervisor detects which runtimes this machine can honestly offer (wasm-http always;
 * docker while the daemon answers /_ping; firecracker when /dev/kvm opens and a VMM is
 * installed), registers itself in the event log with those as tags, heartbeats, and runs
 * the apps the node places on it: one detached `tabbify-runner` process per app
 * (include/tb/runner.h), started in a new session so that it outlives the supervisor.
 *
 * It never serves app traffic itself. What it runs follows from the event log alone:
 * every 100 ms it catches its projections up and compares the placements
 * (tb_proj_placements) with the runners it has, starting always_on apps, stopping what
 * was stopped or replaced by a newer deployment. An on_request app is started by the
 * node asking for it (POST /v1/apps/{uuid}/wake on the control API) and stops itself
 * after its idle timeout. Every change is reported as an event: app_started,
 * runner_adopted, app_crashed, runner_exited, deployment_failed, supervisor_registered,
 * supervisor_heartbeat (docs/internals/EVENTS.md).
 *
 * Each runner's identity (its spec, pid and process start time, address) is kept on disk
 * under <state_dir>/runners/<runner-uuid>/, so a supervisor that crashed or was
 * restarted finds its living runners again and adopts them (runner_adopted) instead of
 * starting duplicates. Crashed runners of always_on apps are restarted with exponential
 * backoff. Design notes: docs/internals/SUPERVISOR.md.
 *
 * Threads: a supervisor belongs to the thread running its uv_loop_t.
 */
#ifndef TB_SUPERVISOR_H
#define TB_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tb/err.h"
#include "tb/eventlog.h"

typedef struct tb_supervisor tb_supervisor_t;

typedef struct tb_supervisor_config {
  const char *state_dir;     /* required: supervisor.json (identity), runners/ */
  const char *events_dir;    /* the embedded event log's directory; default state_dir */
  const char *nats_url;      /* use this JetStream log instead of the embedded one */
  tb_eventlog_t *log;        /* or this log, borrowed (tabbify up shares the node's) */
  const char *store_dir;     /* the artifact store the node writes; default <state_dir>/artifacts */
  const char *logs_dir;      /* the apps' logs; default <state_dir>/logs */
  const char *name;          /* display name; default the host name */
  const char *tags;          /* extra tags, comma-separated (from a join token, later) */
  const char *bind;          /* control API; default "127.0.0.1:8730" (port 0: ephemeral) */
  const char *advertise;     /* the address registered; default the bound one (0.0.0.0 -> 127.0.0.1) */
  const char *runner_path;   /* tabbify-runner; default: next to this executable, then $PATH */
  const char *docker_socket; /* default $DOCKER_HOST (unix://) or /var/run/docker.sock */
  uint64_t heartbeat_ms;     /* default 30000 */
  uint64_t sync_ms;          /* how often the log is read for placements; default 100 */
  bool stop_runners_on_close;/* tabbify up: stop every runner on a clean exit */
} tb_supervisor_config_t;

/** What the supervisor found this machine can run (re-checked at every heartbeat). */
typedef struct tb_supervisor_caps {
  bool docker;       /* the daemon's socket answers GET /_ping with OK */
  bool firecracker;  /* /dev/kvm opens read-write and a VMM (firecracker, qemu-system-x86_64) is installed */
  char docker_why[160], firecracker_why[160]; /* why not, for `GET /health` and the log */
} tb_supervisor_caps_t;

/**
 * Opens the identity (creating <state_dir>/supervisor.json with a new UUID v7 at first
 * start), the event log and projections, adopts living runners, listens on the control
 * API and registers. `cfg` is borrowed for the call. Returns 0 and the supervisor in
 * *out, or a TB_E code with a sentence in `eb`.
 */
int tb_supervisor_new(uv_loop_t *loop, const tb_supervisor_config_t *cfg, tb_supervisor_t **out, tb_errbuf_t *eb);

/** The TCP port of the control API (what port 0 became). */
int tb_supervisor_port(const tb_supervisor_t *s);

/** The supervisor's id, canonical text. Valid as long as `s`. */
const char *tb_supervisor_id(const tb_supervisor_t *s);

/**
 * Stops timers and the control API, stops every runner when the config asked for it
 * (otherwise runners keep serving and the next start adopts them), closes the state,
 * frees the supervisor, then calls on_closed(ud).
 */
void tb_supervisor_close(tb_supervisor_t *s, void (*on_closed)(void *ud), void *ud);

/** Probes the runtimes now (blocking, at most ~1 s for the docker socket). */
void tb_supervisor_detect(const char *docker_socket, tb_supervisor_caps_t *out);

#endif /* TB_SUPERVISOR_H */
