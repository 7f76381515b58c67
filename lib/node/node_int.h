/*
 * node_int.h — what the files of lib/node share: the node itself, the route table and
 * one exchange's state.
 */
#ifndef TB_NODE_INT_H
#define TB_NODE_INT_H

#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>

#include "tb/auth.h"
#include "tb/buf.h"
#include "tb/eventlog.h"
#include "tb/http.h"
#include "tb/node.h"
#include "tb/projections.h"
#include "tb/uuid.h"

#define TB__NODE_LIST_CACHE 16
#define TB__NODE_SYNC_MS 250
#define TB__NODE_DESTS 256     /* route cache slots (a power of two) */
#define TB__NODE_ADDR_MAX 300  /* "host:port" of a runner or supervisor, with its NUL */

typedef struct tb__node_x tb__node_x_t;
typedef struct tb__node_px tb__node_px_t;
typedef struct tb__node_wake tb__node_wake_t;

/*
 * Where traffic for one app goes (proxy.c's route cache): what the projections said at
 * `offset`, plus what wake answers and failed dials taught since. Entries hold no
 * pointers, so evicting one is forgetting it.
 */
typedef struct tb__node_dest {
  tb_uuid_t app;
  bool used;
  uint64_t offset;                /* the projections' offset this entry was checked at */
  uint64_t used_at;
  int status;                     /* 0, or 503 for an app stopped or never deployed */
  const char *code;               /* "app_stopped", "not_deployed" with status */
  char addr[TB__NODE_ADDR_MAX];   /* the runner to dial; "" none known */
  bool from_wake;                 /* addr came from a wake answer, not the projection */
  char dead[TB__NODE_ADDR_MAX];   /* refused a connection: not used again until told */
  char runner[TB_UUID_STR_LEN + 1];      /* the projection's current runner ("" none) */
  char dead_runner[TB_UUID_STR_LEN + 1]; /* ...when `dead` refused: a new runner clears it */
  char sup[TB__NODE_ADDR_MAX];    /* the supervisor to wake the app through; "" none */
} tb__node_dest_t;

/** A serialised GET /v1/apps answer for one tenant, valid while the offset is current. */
typedef struct tb__node_list_cache {
  char *tenant; /* tb_malloc'd; NULL: empty slot */
  char *body;   /* malloc'd by jansson */
  size_t len;
  uint64_t offset;
  uint64_t used_at;
} tb__node_list_cache_t;

struct tb_node {
  uv_loop_t *loop;
  tb_http_server_t *srv;
  tb_eventlog_t *log;
  tb_projections_t *proj;
  tb_auth_key_t *key;
  tb_auth_t *auth;
  char *state_dir, *store_dir, *logs_dir;
  uint64_t max_artifact;
  uint64_t dial_timeout_ms;
  uint64_t supervisor_lost_ns; /* heartbeats older than this: the supervisor is lost */
  uint64_t liveness_at;        /* loop time of the last liveness check */
  uint64_t proxy_timeout_ms;  /* upstream silence before its head: 504 */
  uint64_t wake_timeout_ms;   /* a wake call to a supervisor */
  tb_http_client_t *client;   /* upstream calls to runners and supervisors (keep-alive pool) */
  tb__node_dest_t *dests;     /* TB__NODE_DESTS entries */
  uint64_t dest_clock;
  tb__node_wake_t *wakes;     /* wake calls in flight, one per app */
  tb__node_list_cache_t list_cache[TB__NODE_LIST_CACHE];
  uint64_t list_clock;
  tb__node_x_t *followers; /* log streams kept open with follow=1, ended at close */
  bool closing;
  uv_timer_t sync_timer;   /* catches up with events other processes append */
  uint64_t revoked_upto;   /* revocation events applied to `auth` up to this offset */
  void (*on_closed)(void *);
  void *closed_ud;
};

typedef void (*tb__node_handler_fn)(tb__node_x_t *x);

/** One row of the route table: the router and /v1/openapi.json both read it. */
typedef struct tb__node_route {
  const char *method;   /* "GET", "POST", "PUT"; "*" any */
  const char *pattern;  /* "/v1/apps/{uuid}/versions/{n}"; a trailing slash-star matches any rest */
  const char *scope;    /* scope the token needs; NULL: no auth at all */
  bool json_body;       /* read a JSON body (at most 1 MiB) before the handler runs */
  tb__node_handler_fn handler;
  const char *summary;
  const int *statuses;  /* the statuses it can answer, 0-terminated */
} tb__node_route_t;

extern const tb__node_route_t tb__node_routes[];
extern const size_t tb__node_nroutes;

/** One exchange. Freed in the request's on_done. */
struct tb__node_x {
  tb_node_t *node;
  tb_http_req_t *req;
  const tb__node_route_t *route;
  char path[1024];
  char query[1024];
  const char *params[4]; /* captured {segments}, pointing into `segs` */
  size_t nparams;
  char segs[1024];
  tb_auth_claims_t claims;
  bool have_claims;
  char actor[300];
  tb_buf_t body;
  json_t *json;
  json_t *app; /* the app named by {uuid}, when the route has one and it exists */
  tb_uuid_t app_id;
  /* upload */
  int fd;
  char tmp_path[1200];
  crypto_hash_sha256_state sha; /* of the bytes received so far */
  uint64_t received;
  uint8_t want_sha[32];
  int64_t version;
  bool failed;
  /* The file work runs on the libuv threadpool, one job at a time: while a job is in
   * flight the worker owns fd, sha and up_fly, and the body is not read (backpressure). */
  uv_work_t up_work;
  tb_buf_t up_pend;    /* body bytes received, not yet handed to a job */
  tb_buf_t up_fly;     /* the bytes the job in flight writes */
  bool up_busy;        /* a job is in flight */
  bool up_finishing;   /* ...and it is the final fsync + rename */
  bool up_end_pending; /* the body ended while a write was in flight */
  bool up_orphan;      /* the exchange ended meanwhile: free it when the job is back */
  int up_errno;        /* the job's failure (errno), 0 if none */
  int up_step;         /* which step of the finish job failed: 1 fsync/mkdir, 2 rename */
  char up_dir[1200];   /* apps/<uuid>/v<N> under the store, for the finish job */
  /* logs */
  uv_timer_t *timer;
  int log_fd;
  bool done;
  tb__node_x_t *fnext, **fprev; /* in node->followers while following */
  /* /app/ proxy state (proxy.c); NULL for other routes */
  tb__node_px_t *px;
};

/* api.c */
void tb__node_handle(tb_http_req_t *req, void *ud);
/** Frees an exchange whose request is done (its on_done ran). */
void tb__node_x_free(tb__node_x_t *x);
int tb__node_reply_json(tb__node_x_t *x, int status, json_t *v); /* steals v */
int tb__node_error(tb__node_x_t *x, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tb__node_append(tb_node_t *n, const char *type, const tb_uuid_t *agg, const char *actor, const char *idem,
                    json_t *payload, uint64_t *offset, tb_errbuf_t *eb);

/** Catches the projections up with the log and applies new revocations to the verifier. */
int tb__node_sync(tb_node_t *n, tb_errbuf_t *eb);

/* store.c: artifact upload */
void tb__node_put_version(tb__node_x_t *x);
void tb__node_store_sweep(tb_node_t *n);
/** Closes and unlinks the upload's temporary file. Returns false, touching nothing,
 *  while a threadpool job still uses the exchange (it is then freed when the job ends). */
bool tb__node_x_store_cleanup(tb__node_x_t *x);

/* stream.c: logs */
void tb__node_get_logs(tb__node_x_t *x);
void tb__node_x_stream_cleanup(tb__node_x_t *x);
/** Ends every follow=1 log stream (the node is closing). */
void tb__node_end_followers(tb_node_t *n);

/* proxy.c: ANY /app/{uuid}/... */
void tb__node_app_route(tb__node_x_t *x);
/** The client exchange is over: cancels its upstream call or leaves its wake. */
void tb__node_proxy_detach(tb__node_x_t *x);
/** Sets up the upstream client and the route cache; frees them again. */
int tb__node_proxy_init(tb_node_t *n, const tb_node_config_t *cfg);
void tb__node_proxy_deinit(tb_node_t *n);

/* openapi.c */
void tb__node_get_openapi(tb__node_x_t *x);

#endif /* TB_NODE_INT_H */
