/*
 * supervisor_int.h — what the files of lib/supervisor share.
 *
 *   supervisor.c  start-up, identity, registration, heartbeats, catching up with the log
 *   reconcile.c   placements (what should run) against runners (what does)
 *   runner.c      one runner: spec on disk, spawn, readiness, exit, backoff, adoption
 *   control.c     the control API: /health, /v1/runners, /v1/apps/{uuid}/wake
 *   detect.c      which runtimes this machine offers
 */
#ifndef TB_SUPERVISOR_INT_H
#define TB_SUPERVISOR_INT_H

#include <jansson.h>

#include "tb/http.h"
#include "tb/projections.h"
#include "tb/supervisor.h"
#include "tb/uuid.h"

#define TB__SUP_READY_TIMEOUT_MS 30000 /* a runner that is not ready by then is killed */
#define TB__SUP_STOP_GRACE_MS 15000    /* SIGTERM, then SIGKILL after this */
#define TB__SUP_BACKOFF_MIN_MS 100
#define TB__SUP_BACKOFF_MAX_MS 30000
#define TB__SUP_HEALTHY_MS 60000       /* a runner up this long resets the backoff */

typedef enum tb__run_state {
  TB__RUN_STARTING = 1, /* spawned, waiting for its readiness line */
  TB__RUN_RUNNING,      /* ready: serving at `address` */
  TB__RUN_STOPPING,     /* asked to stop (SIGTERM sent) */
  TB__RUN_BACKOFF,      /* crashed; restarts when the timer fires (no process) */
  TB__RUN_FAILED,       /* could not start (bad artifact or module): not retried (no process) */
} tb__run_state_t;

typedef struct tb__sup_waiter tb__sup_waiter_t;
typedef struct tb__sup_runner tb__sup_runner_t;

/*
 * One app slot on this machine: the process serving a deployment of the app (or, in
 * BACKOFF/FAILED, the memory of one). A restart keeps the slot and mints a new runner id.
 */
struct tb__sup_runner {
  tb_supervisor_t *sup;
  tb__sup_runner_t *next;
  tb_uuid_t id, app, deployment;
  char id_s[TB_UUID_STR_LEN + 1], app_s[TB_UUID_STR_LEN + 1], dep_s[TB_UUID_STR_LEN + 1];
  int64_t version;
  bool always_on;
  tb__run_state_t state;
  char dir[512];        /* <state>/runners/<id> */
  char address[128];    /* where it serves, once RUNNING */
  char error[512];      /* why it could not start */
  char stop_reason[64]; /* the runner_exited reason when we stopped it */
  int pid;
  unsigned long long starttime; /* /proc/<pid>/stat field 22: tells a reused pid apart */
  bool adopted;         /* not our child: watched through a pidfd */
  uv_process_t *proc;   /* our child */
  uv_pipe_t *ready;     /* its readiness pipe while STARTING */
  char ready_buf[1024];
  size_t ready_len;
  int pidfd;
  uv_poll_t *pidpoll;   /* adopted: readable when the process ends */
  uv_timer_t *timer;    /* readiness deadline, stop grace, backoff */
  uint64_t backoff_ms;
  uint64_t started_ms;  /* loop time when it became ready */
  unsigned restarts;
  tb__sup_waiter_t *waiters; /* wake requests answered when it is ready or has failed */
  int handles;          /* libuv handles still open; freed at 0 once `dead` */
  bool dead;
};

struct tb_supervisor {
  uv_loop_t *loop;
  char *state_dir, *store_dir, *logs_dir, *runners_dir, *name, *tags, *advertise, *runner_path, *docker_socket;
  tb_uuid_t id;
  char id_s[TB_UUID_STR_LEN + 1];
  char actor[64];
  tb_eventlog_t *log;
  bool own_log;
  tb_projections_t *proj;
  uint64_t seen_offset;       /* projections offset at the last reconcile */
  tb_http_server_t *srv;
  uv_timer_t sync_timer, beat_timer;
  uv_work_t detect_work;
  bool detecting;
  tb_supervisor_caps_t caps, caps_new;
  uint64_t heartbeat_ms, sync_ms;
  bool stop_on_close, closing;
  tb__sup_runner_t *runners;
  int open_handles;           /* the two timers */
  void (*on_closed)(void *);
  void *closed_ud;
};

/* supervisor.c */
/** Appends an event about the app `aggregate` (may be NULL) in the background; failures are logged. */
void tb__sup_emit(tb_supervisor_t *s, const char *type, const tb_uuid_t *aggregate, const char *idem, json_t *payload);
/** Catches the projections up; true when anything new was applied. */
bool tb__sup_sync(tb_supervisor_t *s);
/** runner.c tells the supervisor a slot is gone; finishes a close waiting for it. */
void tb__sup_closed_one(tb_supervisor_t *s);
/** The offered runtimes as a JSON array (new reference). */
json_t *tb__sup_runtimes(const tb_supervisor_t *s);

/* reconcile.c */
void tb__sup_reconcile(tb_supervisor_t *s);
/** The manifest.json stored with the placement's version (new reference), or NULL. */
json_t *tb__sup_version_manifest(tb_supervisor_t *s, json_t *placement);
/** The slot for `app`, or NULL. */
tb__sup_runner_t *tb__sup_find(tb_supervisor_t *s, const tb_uuid_t *app);
/**
 * Makes sure the app's current deployment, placed here, is running or starting; builds
 * the spec from the placement. 0, TB_ENOTFOUND (not placed here), TB_ECONFLICT (stopped),
 * or another code with a sentence in `eb`. *out: the slot.
 */
int tb__sup_ensure(tb_supervisor_t *s, const tb_uuid_t *app, tb__sup_runner_t **out, tb_errbuf_t *eb);

/* runner.c */
/** A new slot from a placement (tb_proj_placements element): spec written, process spawned. */
int tb__sup_runner_start(tb_supervisor_t *s, json_t *placement, tb__sup_runner_t **out, tb_errbuf_t *eb);
/** Asks the runner to stop (SIGTERM, SIGKILL after the grace); `reason` goes into runner_exited. */
void tb__sup_runner_stop(tb__sup_runner_t *r, const char *reason);
/** Forgets a slot without a process (BACKOFF, FAILED). */
void tb__sup_runner_drop(tb__sup_runner_t *r);
/** Finds the runners recorded under runners/ that still live and adopts them; reports the others. */
void tb__sup_adopt_all(tb_supervisor_t *s);
/** A wake request waits on the slot: answered when it is ready (200) or has failed (503). */
int tb__sup_runner_wait(tb__sup_runner_t *r, tb_http_req_t *req);
/** Answers `req` with the slot's address (200). */
void tb__sup_reply_ready(tb__sup_runner_t *r, tb_http_req_t *req);
json_t *tb__sup_runner_json(const tb__sup_runner_t *r);
const char *tb__sup_run_state_name(tb__run_state_t st);

/* control.c */
void tb__sup_handle(tb_http_req_t *req, void *ud);

/* detect.c */
const char *tb__sup_docker_socket(const char *configured);

#endif /* TB_SUPERVISOR_INT_H */
