/*
 * workload.h — a deterministic stream of realistic events, for tests and benchmarks.
 *
 * From a seed, wl_next produces the same sequence every time: supervisors registering
 * and (mostly) heartbeating, apps registered by a handful of tenants, versions uploaded,
 * deployments requested, placed, started, crashed, stopped and rolled back, secrets set
 * and removed, tokens issued and revoked, and now and then an event type the projections
 * do not know. Every event refers only to things earlier events created, so applying the
 * stream skips nothing, and a crash test can regenerate event i after a restart.
 */
#ifndef TB_TEST_WORKLOAD_H
#define TB_TEST_WORKLOAD_H

#include <stdint.h>

#include "tb/eventlog.h"

typedef struct wl wl_t;

/** A new generator; NULL when out of memory. */
wl_t *wl_new(uint64_t seed);
void wl_free(wl_t *w);
/**
 * Fills `ev` with the next event (type, schema, aggregate, actor, ts_ns, payload; id nil,
 * no idempotency key). The strings are valid until the next call.
 */
void wl_next(wl_t *w, tb_event_t *ev);

#endif
