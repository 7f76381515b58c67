/*
 * projections.h — the read side: apps, versions, deployments, supervisors, runners,
 * secrets and tokens, derived only from the event log.
 *
 * A tb_projections_t is the state you get by applying every event of the log in offset
 * order (the catalogue and what each event does to the state: docs/internals/EVENTS.md).
 * Nothing else writes it: a mutation is an append to the log, and the projections learn
 * of it by reading the log (tb_projections_catch_up). Start-up loads the newest snapshot
 * (the state serialised with the offset and event id it reflects) and applies only the
 * events after it; a snapshot that does not match the log is ignored and the state
 * rebuilt by full replay, so a snapshot can make start-up faster but never wrong.
 *
 * Applying is idempotent by offset: an event at or below the state's offset is skipped,
 * so feeding it from an at-least-once subscription is safe. Unknown event types advance
 * the offset and change nothing (old readers tolerate new producers); a known type with a
 * schema newer than this program knows stops with TB_EUNSUPPORTED (never guess); a known
 * type whose payload is malformed changes nothing, is logged and counted in "skipped",
 * identically on every replay.
 *
 * Threads: every function may be called from any thread; applying takes a write lock,
 * queries a read lock. Query answers are new JSON values owned by the caller
 * (json_decref), never views into the state.
 */
#ifndef TB_PROJECTIONS_H
#define TB_PROJECTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "tb/buf.h"
#include "tb/err.h"
#include "tb/eventlog.h"
#include "tb/uuid.h"

typedef struct tb_projections tb_projections_t;

/** An empty state (offset 0). Free with tb_projections_free. */
int tb_projections_new(tb_projections_t **out);
void tb_projections_free(tb_projections_t *p);

/**
 * Applies one event (borrowed). Its offset must be offset()+1; lower offsets are skipped
 * (returns 0), a higher one is a gap: TB_ECONFLICT. TB_EUNSUPPORTED: a newer schema.
 */
int tb_projections_apply(tb_projections_t *p, const tb_event_t *ev, tb_errbuf_t *eb);

/** The offset of the last event applied (0: none). */
uint64_t tb_projections_offset(tb_projections_t *p);

/**
 * Reads `log` from offset()+1 to its current head and applies every event. Stores the
 * number applied in *applied (may be NULL). Errors from the log (TB_ECORRUPT...) or from
 * applying; events applied before the error stay applied.
 */
int tb_projections_catch_up(tb_projections_t *p, tb_eventlog_t *log, uint64_t *applied, tb_errbuf_t *eb);

/**
 * Writes a snapshot of the current state to <dir>/projections.snap atomically (temporary
 * file, fsync, rename; the previous snapshot is kept as projections.snap.prev).
 */
int tb_projections_snapshot_save(tb_projections_t *p, const char *dir, tb_errbuf_t *eb);

/**
 * Replaces the state of `p` with the newest snapshot in `dir` that is intact and agrees
 * with `log` (the event at its offset exists and has the id it recorded). TB_ENOENT when
 * there is none; a damaged or mismatched snapshot is logged and passed over.
 */
int tb_projections_snapshot_load(tb_projections_t *p, const char *dir, tb_eventlog_t *log, tb_errbuf_t *eb);

/**
 * Start-up: a new state from the newest usable snapshot in `dir` (if any), caught up
 * with `log`. `dir` may be NULL (no snapshots: full replay).
 */
int tb_projections_open(tb_eventlog_t *log, const char *dir, tb_projections_t **out, tb_errbuf_t *eb);

/** Saves a snapshot when `every` or more events were applied since the last one. */
int tb_projections_maybe_snapshot(tb_projections_t *p, const char *dir, uint64_t every, tb_errbuf_t *eb);

/**
 * Appends the whole state as canonical JSON (keys sorted, compact) to `out`: two states
 * are the same exactly when their dumps are byte-equal. Secrets appear sealed.
 */
int tb_projections_dump(tb_projections_t *p, tb_buf_t *out);

/* ---- Queries. Each stores a new JSON value in *out; TB_ENOTFOUND when there is none. ---- */

/**
 * The apps of `tenant` (not deleted), oldest first: an array of
 * {"app","tenant","name","runtime","state","latest_version","deployment","created_at",...}.
 */
int tb_proj_apps_of_tenant(tb_projections_t *p, const char *tenant, json_t **out);

/**
 * One app: its summary fields (where "deployment" and "runner" are ids or null) plus
 * "versions" (array, ascending), "current_deployment" (the deployment object or null),
 * "current_runner" (the runner serving it, or null), "deployments" (the recent ones,
 * newest first: the state keeps the current one and 8 before it) and "secrets" (names and
 * versions, never the ciphertext).
 */
int tb_proj_app(tb_projections_t *p, const tb_uuid_t *app, json_t **out);

/** One deployment. */
int tb_proj_deployment(tb_projections_t *p, const tb_uuid_t *deployment, json_t **out);

/**
 * Supervisors, oldest first; with `tag` not NULL only those carrying that tag, and with
 * `runtime` not NULL only those offering that runtime. Lost and departed supervisors are
 * included with their "state".
 */
int tb_proj_supervisors(tb_projections_t *p, const char *tag, const char *runtime, json_t **out);

/** The runner serving `app` now ({"runner","supervisor","address","pid",...}). */
int tb_proj_runner_of(tb_projections_t *p, const tb_uuid_t *app, json_t **out);

/**
 * What a supervisor should run: every app (not deleted) whose current deployment is
 * placed on `supervisor`, oldest app first, as [{"app": app summary, "name", "tenant",
 * "app_state", "deployment": the deployment, "version": the version deployed (digest,
 * artifact...) or null, "runner": the app's current runner or null}]. The supervisor
 * compares this with the runners it has (lib/supervisor).
 */
int tb_proj_placements(tb_projections_t *p, const tb_uuid_t *supervisor, json_t **out);

/** The secrets of `app`: [{"name","version","key_id","updated_at","updated_by"}], by name. */
int tb_proj_secrets_of(tb_projections_t *p, const tb_uuid_t *app, json_t **out);

/**
 * One sealed secret with what tb_secretbox_unseal needs: {"name","version","alg","key_id",
 * "nonce","ciphertext",...}.
 */
int tb_proj_secret(tb_projections_t *p, const tb_uuid_t *app, const char *name, json_t **out);

/** True when the token `id` has been revoked. */
bool tb_proj_token_revoked(tb_projections_t *p, const tb_uuid_t *id);

/**
 * Checks that `ev`'s payload has what its type needs (EVENTS.md) without changing any
 * state: producers call it before appending. 0; TB_EINVAL with a sentence; unknown types
 * pass.
 */
int tb_projections_check_event(const tb_event_t *ev, tb_errbuf_t *eb);

#endif /* TB_PROJECTIONS_H */
