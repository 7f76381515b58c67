/*
 * node.h — tabbify-node: the one public listener. It serves REST API v1 (JSON in and
 * out, every /v1 call authenticated with an EdDSA token), stores uploaded artifacts,
 * turns deploy requests into events, and routes /app/{uuid}/... to the app's runner.
 *
 * Every mutation is appended to the event log (include/tb/eventlog.h) before it takes
 * effect and every read is answered from the projections (include/tb/projections.h),
 * which the node catches up right after each of its own appends. Routes, auth, the
 * artifact store and the events each route emits: docs/internals/NODE.md.
 *
 * Threads: a node belongs to the thread running its uv_loop_t. Appends are synchronous
 * on that thread (one fsync each; the embedded log group-commits them).
 */
#ifndef TB_NODE_H
#define TB_NODE_H

#include <stdint.h>
#include <uv.h>

#include "tb/err.h"

typedef struct tb_node tb_node_t;

typedef struct tb_node_config {
  const char *listen;          /* "127.0.0.1:8090", "[::1]:0"...; default "127.0.0.1:8090" */
  const char *state_dir;       /* required: events.db, projections.snap, logs/ */
  const char *store_dir;       /* artifact store; default <state_dir>/artifacts */
  const char *key_file;        /* Ed25519 signing key, created 0600; default <state_dir>/node.key */
  uint64_t max_artifact_bytes; /* larger uploads answer 413; default 256 MiB */
  uint64_t dial_timeout_ms;    /* connect timeout towards runners and supervisors; default 1000 */
  uint64_t proxy_timeout_ms;   /* /app/: upstream silence before its response head, then 504; default 60000 */
  uint64_t wake_timeout_ms;    /* /app/: how long a supervisor may take to wake an app; default 30000 */
  uint64_t supervisor_lost_ms; /* no heartbeat (or registration) for this long: supervisor_lost; default 90000 */
} tb_node_config_t;

#define TB_NODE_DEFAULT_LISTEN "127.0.0.1:8090"
#define TB_NODE_DEFAULT_MAX_ARTIFACT ((uint64_t)256 << 20)

/**
 * Opens the state (event log, projections, signing key, store) and listens. `cfg` is
 * borrowed for the call. Returns 0 and the node in *out, or a TB_E code with a sentence
 * in `eb`. Close with tb_node_close.
 */
int tb_node_new(uv_loop_t *loop, const tb_node_config_t *cfg, tb_node_t **out, tb_errbuf_t *eb);

/** The TCP port the node listens on (what port 0 became). */
int tb_node_port(const tb_node_t *node);

/**
 * Appends the supervisor_registered event for a supervisor called `name` carrying the
 * comma-separated `tags` (also taken as its runtimes) — the same event tabbify-supervisord
 * appends when it joins. For tests and single-machine set-ups. Idempotent by name.
 */
int tb_node_register_supervisor(tb_node_t *node, const char *name, const char *tags, tb_errbuf_t *eb);

/** Stops listening, lets exchanges finish, closes the state, frees the node, then on_closed(ud). */
void tb_node_close(tb_node_t *node, void (*on_closed)(void *ud), void *ud);

#endif /* TB_NODE_H */
