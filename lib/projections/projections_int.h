/*
 * projections_int.h — what the files of lib/projections share: the state (typed records
 * in hash maps keyed by UUID) and the functions that turn the state into JSON and back.
 * Payload fields are read with tb_event_fields (eventlog.h), which builds no JSON tree.
 *
 *   map.c         open-addressing hash map from a UUID to a record
 *   apply.c       one handler per event type: the only code that changes the state
 *   state_json.c  state -> JSON: the canonical dump and query answers
 *   state_bin.c   state <-> compact binary: the snapshot body
 *   query.c       the read side's questions, answered as JSON under a read lock
 *   snapshot.c    snapshot files, start-up and catching up with the log
 *   projections.c new/free, locking, apply dispatch
 */
#ifndef TB_PROJECTIONS_INT_H
#define TB_PROJECTIONS_INT_H

#include <pthread.h>

#include "tb/projections.h"

/* ---- Records. Strings are owned (tb_malloc); NULL means absent. ---- */

typedef struct tb__version {
  int64_t version;
  char *digest, *artifact, *runtime, *uploaded_by;
  int64_t size, uploaded_at;
} tb__version_t;

typedef struct tb__secret {
  char *name, *alg, *key_id, *nonce, *ciphertext, *updated_by;
  int64_t version, updated_at;
} tb__secret_t;

typedef struct tb__app {
  tb_uuid_t id;
  char *tenant, *name, *runtime, *created_by;
  int64_t created_at, updated_at;
  const char *state; /* static: "registered", "deploying", "running", ... */
  tb__version_t *versions; /* ascending by version */
  size_t n_versions;
  tb__secret_t *secrets; /* ascending by name */
  size_t n_secrets;
  tb_uuid_t deployment; /* current deployment, nil for none */
  tb_uuid_t runner;     /* the runner serving it now, nil for none */
  /* Its deployments and runners still in the state, oldest first. History is bounded:
   * beyond TB__KEEP_HISTORY older deployments and ended runners, the oldest are dropped
   * from the state (never from the log), so the state grows with apps, not with time. */
  tb_uuid_t *deps;
  size_t n_deps;
  tb_uuid_t *runs;
  size_t n_runs;
} tb__app_t;

#define TB__KEEP_HISTORY 8

typedef struct tb__deployment {
  tb_uuid_t id, app, supervisor, runner;
  int64_t version, rollback_from; /* rollback_from 0: not a rollback */
  const char *state;
  char *runtime, *target, *requested_by, *reason;
  tb_event_strv_t tags;
  int64_t requested_at, updated_at;
} tb__deployment_t;

typedef struct tb__supervisor {
  tb_uuid_t id;
  char *name, *hostname, *address, *version;
  tb_event_strv_t tags, runtimes;
  const char *state;
  int64_t registered_at, last_seen, runners, cpu_milli, mem_free_mb;
} tb__supervisor_t;

typedef struct tb__runner {
  tb_uuid_t id, app, deployment, supervisor;
  char *address, *reason;
  const char *state;
  int64_t pid, started_at, ended_at, exit_code, signal;
  bool has_exit_code, has_signal;
} tb__runner_t;

typedef struct tb__token {
  tb_uuid_t id;
  char *tenant, *subject, *reason;
  tb_event_strv_t scopes;
  int64_t issued_at, expires_at, revoked_at; /* revoked_at 0: not revoked */
} tb__token_t;

/* ---- UUID-keyed hash map (map.c). ---- */

typedef struct tb__map {
  tb_uuid_t *keys;
  void **vals; /* NULL: empty slot */
  size_t cap;  /* a power of two, or 0 */
  size_t len;
} tb__map_t;

/** The value for `k`, or NULL. */
void *tb__map_get(const tb__map_t *m, const tb_uuid_t *k);
/** Inserts `v` (not NULL) for a key not yet present. TB_ENOMEM. */
int tb__map_put(tb__map_t *m, const tb_uuid_t *k, void *v);
/** Removes `k` and returns its value, or NULL. */
void *tb__map_del(tb__map_t *m, const tb_uuid_t *k);
/** Frees the table (not the values). */
void tb__map_deinit(tb__map_t *m);
/** The values in ascending key order (v7 UUIDs: creation order); tb_free the array. */
void **tb__map_sorted(const tb__map_t *m, size_t *n);

/* ---- The state. ---- */

typedef struct tb__state {
  uint64_t offset;  /* the last event applied */
  tb_uuid_t last_id; /* its id, recorded in snapshots */
  uint64_t skipped; /* events of a known type whose payload could not be applied */
  tb__map_t apps, deployments, supervisors, runners, tokens;
} tb__state_t;

struct tb_projections {
  pthread_rwlock_t lock;
  tb__state_t st;
  uint64_t snapshot_offset; /* offset of the last snapshot saved or loaded */
};

void tb__state_init(tb__state_t *st);
void tb__state_deinit(tb__state_t *st);

/**
 * Applies one event's effect (apply.c); the caller has checked the offset and holds the
 * write lock. 0; TB_EUNSUPPORTED for a schema newer than we know; TB_EINVAL when the
 * payload cannot be applied (the caller counts it as skipped); TB_ENOMEM.
 */
int tb__apply(tb__state_t *st, const tb_event_t *ev, tb_errbuf_t *eb);

void tb__app_free(tb__app_t *a);
void tb__deployment_free(tb__deployment_t *d);
void tb__supervisor_free(tb__supervisor_t *s);
void tb__runner_free(tb__runner_t *r);
void tb__token_free(tb__token_t *t);

/* ---- JSON (state_json.c). ---- */

/** The whole state as one JSON object (new reference); NULL when out of memory. */
json_t *tb__state_to_json(const tb__state_t *st);

/* ---- Binary (state_bin.c). ---- */

/** Appends the binary encoding of `st` to `out`. */
int tb__state_encode(const tb__state_t *st, tb_buf_t *out);
/** Rebuilds `st` (empty) from an encoding; TB_ECORRUPT or TB_ENOMEM with a sentence. */
int tb__state_decode(tb__state_t *st, const void *data, size_t len, tb_errbuf_t *eb);
/** The static string for a known state name ("running"...), or NULL. */
const char *tb__state_name(const char *s);

json_t *tb__app_json(const tb__app_t *a, bool full);
json_t *tb__version_json(const tb__version_t *v);
json_t *tb__deployment_json(const tb__deployment_t *d);
json_t *tb__supervisor_json(const tb__supervisor_t *s);
json_t *tb__runner_json(const tb__runner_t *r);
json_t *tb__secret_json(const tb__secret_t *s, bool sealed);
json_t *tb__token_json(const tb__token_t *t);

#endif /* TB_PROJECTIONS_INT_H */
