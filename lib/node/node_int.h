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

typedef struct tb__node_x tb__node_x_t;

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
  /* dial */
  uv_tcp_t *tcp;
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

/* stream.c: logs and the /app/ dial */
void tb__node_get_logs(tb__node_x_t *x);
void tb__node_app_route(tb__node_x_t *x);
void tb__node_x_stream_cleanup(tb__node_x_t *x);
/** Ends every follow=1 log stream (the node is closing). */
void tb__node_end_followers(tb_node_t *n);

/* openapi.c */
void tb__node_get_openapi(tb__node_x_t *x);

#endif /* TB_NODE_INT_H */
