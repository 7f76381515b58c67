/*
 * eventlog.h — the append-only event log: Tabbify's source of truth.
 *
 * Every state change (app_registered, version_uploaded, app_started, secret_registered, ...)
 * is appended here before it takes effect; everything else (the projections of
 * include/tb/projections.h, supervisors reacting to deploys, the audit command) reads it.
 * The catalogue of event types and their payloads is docs/internals/EVENTS.md; the design
 * of the two backends is docs/internals/EVENTLOG.md.
 *
 * One interface, two backends:
 *   - embedded (the default): one SQLite file in WAL mode, <state_dir>/events.db;
 *   - jetstream: a NATS JetStream stream, for deployments that outgrow one machine.
 *
 * Guarantees, for both backends:
 *   - An event gets an offset: 1 for the first event, then every integer in turn, with no
 *     gaps. The offset order is the commit order.
 *   - tb_eventlog_append returns only once the event is durable (embedded: fsync'd WAL;
 *     jetstream: acknowledged by the stream). Concurrent appenders share one commit
 *     (group commit): the embedded backend has a single writer thread that takes every
 *     waiting append into one transaction and one fsync.
 *   - An append that carries an idempotency key which the log has already seen is not
 *     stored again: it returns the offset of the first event with that key, with
 *     `duplicate` set. Embedded: forever. JetStream: within the stream's duplicate window.
 *   - Readers see only committed events, whole, in offset order. Every stored event carries
 *     a checksum that every read verifies; a damaged or truncated store is reported as
 *     TB_ECORRUPT with a sentence naming the offset or the file, never skipped.
 *
 * Subscriptions have a durable name whose cursor (the last acknowledged offset) survives
 * restarts of the subscriber and of the log. Delivery is pull-based and at-least-once
 * across restarts: after a restart a subscriber resumes right after its last acknowledged
 * offset, so events it handled but did not acknowledge come again; within one open
 * subscription every event is delivered exactly once, in offset order. Handlers that must
 * not see an event twice keep the offset of the last event they applied next to their own
 * state and skip offsets at or below it (the projections do exactly that).
 *
 * Threads: a tb_eventlog_t is safe to use from any number of threads at once. A
 * tb_eventlog_sub_t belongs to one thread at a time. Callbacks run on the thread named
 * at each function.
 */
#ifndef TB_EVENTLOG_H
#define TB_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"
#include "tb/uuid.h"

/* Limits on the fields of one event; appends past them fail with TB_ETOOBIG. */
#define TB_EVENT_TYPE_MAX 64          /* [a-z][a-z0-9_]* */
#define TB_EVENT_ACTOR_MAX 256        /* printable text, no control characters */
#define TB_EVENT_IDEM_MAX 256         /* printable ASCII without spaces */
#define TB_EVENT_PAYLOAD_MAX (256 * 1024) /* one JSON object */
/** Longest durable subscription name: [A-Za-z0-9_-], at most 64 characters. */
#define TB_EVENTLOG_NAME_MAX 64

/**
 * One event. On append the caller fills it and the log reads it (borrowed for the call);
 * on read the log fills it with pointers valid only during the callback.
 */
typedef struct tb_event {
  uint64_t offset;      /* assigned by the log; ignored on append */
  tb_uuid_t id;         /* UUID v7 naming this event; on append, nil means "make one" */
  const char *type;     /* "app_registered" (see EVENTS.md) */
  uint32_t schema;      /* version of this type's payload, from 1 */
  tb_uuid_t aggregate;  /* what the event is about: an app, a supervisor, a token...; may be nil */
  const char *actor;    /* who caused it: "user:alice", "supervisor:<uuid>", "node" */
  int64_t ts_ns;        /* wall-clock nanoseconds since the epoch; on append 0 means now */
  const char *idem_key; /* optional idempotency key; NULL for none */
  const char *payload;  /* a JSON object, `payload_len` bytes, not NUL-terminated on read */
  size_t payload_len;
} tb_event_t;

typedef enum tb_eventlog_backend {
  TB_EVENTLOG_EMBEDDED = 0,
  TB_EVENTLOG_JETSTREAM = 1,
} tb_eventlog_backend_t;

/** How to open a log. Start from tb_eventlog_opts_init; strings are borrowed for the call. */
typedef struct tb_eventlog_opts {
  tb_eventlog_backend_t backend;
  /* embedded: the state directory; the log is <state_dir>/events.db. Created (0700) when
   * missing unless read_only. */
  const char *state_dir;
  /* jetstream: server URL(s), "nats://127.0.0.1:4222" (comma-separated for several). */
  const char *nats_url;
  const char *stream;         /* jetstream stream name; default "TB_EVENTS" */
  const char *subject_prefix; /* jetstream subjects are <prefix>.<type>; default "tb.events" */
  int replicas;               /* jetstream replicas when creating the stream; default 1 */
  int64_t dedup_window_ms;    /* jetstream duplicate window; default 120000 (2 minutes) */
  int64_t append_timeout_ms;  /* give up an append after this long; default 30000 */
  bool read_only;             /* open an existing log for reading; no appends, no acks */
  bool verify;                /* embedded: check every page and every checksum at open */
} tb_eventlog_opts_t;

typedef struct tb_eventlog tb_eventlog_t;
typedef struct tb_eventlog_sub tb_eventlog_sub_t;

/** Fills `o` with the defaults: embedded backend, everything else unset. */
void tb_eventlog_opts_init(tb_eventlog_opts_t *o);

/**
 * Opens (creating when needed) the log `o` describes and stores a new handle in *out.
 * The embedded backend checks the file before trusting it: an SQLite header, a size that
 * agrees with it, our schema, and the record of the last acknowledged offset kept next to
 * it (events.head), so a truncated file or a lost WAL is TB_ECORRUPT, not an empty log.
 * With o->verify it also checks every page and every event's checksum.
 * Errors: TB_ENOENT (read_only and no log), TB_ECORRUPT, TB_EUNSUPPORTED (a newer format),
 * TB_ECONNREFUSED (no NATS server), others from the system; a sentence goes to `eb`.
 * Close with tb_eventlog_close.
 */
int tb_eventlog_open(const tb_eventlog_opts_t *o, tb_eventlog_t **out, tb_errbuf_t *eb);

/**
 * Waits for appends already accepted to finish, stops the log's threads and frees it.
 * Subscriptions must be closed first. NULL is fine.
 */
void tb_eventlog_close(tb_eventlog_t *log);

/** "embedded" or "jetstream". */
const char *tb_eventlog_backend_name(const tb_eventlog_t *log);

/** What an append produced. */
typedef struct tb_eventlog_ack {
  uint64_t offset; /* where the event is (for a duplicate: where the first one is) */
  tb_uuid_t id;    /* the stored event's id */
  bool duplicate;  /* the idempotency key had been seen: nothing new was stored */
} tb_eventlog_ack_t;

/**
 * Appends `ev` (borrowed for the call) and returns once it is durable, filling *ack (may be
 * NULL). Any thread. Fields are checked first: an invalid type, actor, key or payload (not
 * a JSON object) is TB_EINVAL, an oversized one TB_ETOOBIG, with a sentence in `eb`.
 * Store failures: TB_EIO and friends, TB_ETIMEDOUT (jetstream unreachable for longer than
 * append_timeout_ms), TB_EPERM (read_only). On failure nothing was appended, or, after a
 * timeout, it may have been: retry with the same idempotency key to find out.
 */
int tb_eventlog_append(tb_eventlog_t *log, const tb_event_t *ev, tb_eventlog_ack_t *ack,
                       tb_errbuf_t *eb);

/**
 * Called once per accepted tb_eventlog_append_async, on one of the log's own threads (the
 * embedded writer thread, the jetstream reply thread): `status` is 0 and `ack` filled, or a
 * TB_E code and `ack` NULL. It must be quick and must not block on the log: post the result
 * to your own loop (uv_async_send) or signal a waiter.
 */
typedef void (*tb_eventlog_done_cb)(int status, const tb_eventlog_ack_t *ack, void *ud);

/**
 * Like tb_eventlog_append but returns as soon as the event is queued (the event is copied);
 * `cb` reports durability. Lets one thread keep many appends in flight. Appends queued by
 * one thread commit in the order they were queued, except that the jetstream backend
 * re-sends an append whose acknowledgement was lost, which may place it after later ones.
 * Returns 0 (cb will run exactly once) or an error, in which case cb never runs.
 */
int tb_eventlog_append_async(tb_eventlog_t *log, const tb_event_t *ev, tb_eventlog_done_cb cb,
                             void *ud, tb_errbuf_t *eb);

/** Stores the offset of the last committed event (0 for an empty log) in *head. */
int tb_eventlog_head(tb_eventlog_t *log, uint64_t *head);

/**
 * Read callback: `ev` and its strings are valid during the call only. Return 0 to go on; any
 * other value stops the read, and the read function returns it.
 */
typedef int (*tb_eventlog_cb)(const tb_event_t *ev, void *ud);

/**
 * Calls `cb` for every event from offset `from` (1 for everything) up to the head as it
 * was when the call started, in order, on the calling thread. `type`, if not NULL, passes
 * only events of that type (every event is still read and checked). Returns 0, the
 * callback's non-zero value, TB_ECORRUPT (a failed checksum or a missing offset, with the
 * offset in `eb`) or another error.
 */
int tb_eventlog_read(tb_eventlog_t *log, uint64_t from, const char *type, tb_eventlog_cb cb,
                     void *ud, tb_errbuf_t *eb);

/**
 * Opens a subscription. With a `name` ([A-Za-z0-9_-], at most 64 characters) it is durable:
 * if a cursor of that name exists, delivery resumes right after the cursor and `from` is
 * ignored; otherwise it starts at `from` (1: every event ever appended, the way a late
 * subscriber catches up). With name NULL it is ephemeral and starts at `from`, and
 * tb_eventlog_sub_ack is refused. One open subscription per name at a time.
 */
int tb_eventlog_sub_open(tb_eventlog_t *log, const char *name, uint64_t from,
                         tb_eventlog_sub_t **out, tb_errbuf_t *eb);

/**
 * Delivers up to `max` events after the last one delivered, calling `cb` on the calling
 * thread for each, in order. Waits up to `timeout_ms` (0: don't wait, -1: forever) for the
 * first one when none is ready. Stores how many were delivered in *n (may be NULL). A
 * callback that returns non-zero stops the poll; that event counts as not delivered and
 * comes again on the next poll; the value is returned. TB_EAGAIN: the backend is
 * unreachable for now (jetstream), try again.
 */
int tb_eventlog_sub_poll(tb_eventlog_sub_t *sub, size_t max, int timeout_ms, tb_eventlog_cb cb,
                         void *ud, size_t *n, tb_errbuf_t *eb);

/**
 * Makes `offset` the durable cursor: after a restart, delivery starts at offset + 1.
 * Returns once the cursor is durable. `offset` must not be past the last delivered event
 * (TB_EINVAL); an offset at or below the current cursor is a no-op.
 */
int tb_eventlog_sub_ack(tb_eventlog_sub_t *sub, uint64_t offset);

/** The last acknowledged offset (0 before any). */
uint64_t tb_eventlog_sub_acked(const tb_eventlog_sub_t *sub);
/** The offset of the last event delivered by this subscription (or the cursor it resumed from). */
uint64_t tb_eventlog_sub_position(const tb_eventlog_sub_t *sub);

/** Closes the subscription; the durable cursor stays. NULL is fine. */
void tb_eventlog_sub_close(tb_eventlog_sub_t *sub);

/** Forgets the durable cursor `name`. TB_ENOTFOUND if there is none. */
int tb_eventlog_sub_delete(tb_eventlog_t *log, const char *name);

/**
 * Checks the whole log: every page (embedded: PRAGMA integrity_check), every event's
 * checksum and the chain between them, and that offsets run 1..head with no gap.
 * Returns 0 or TB_ECORRUPT with a sentence naming the first damage found.
 */
int tb_eventlog_verify(tb_eventlog_t *log, tb_errbuf_t *eb);

/**
 * Checks the fields of `ev` as an append would (type, actor, key, payload a JSON object,
 * limits). Returns 0, TB_EINVAL or TB_ETOOBIG with a sentence in `eb`. Does no I/O.
 * A payload is accepted when it is one JSON object that jansson would also accept (valid
 * UTF-8, no key repeated in any object, integers within 64 bits, finite numbers), nested
 * at most 64 levels deep.
 */
int tb_event_validate(const tb_event_t *ev, tb_errbuf_t *eb);

/* ---- Payloads: fast access to top-level fields. ----
 *
 * Consumers of events read a few top-level members of each payload. These functions do
 * that without building a JSON tree (an order of magnitude faster than jansson, which
 * matters when replaying millions of events); they read the text in place.
 */

/** Where the value of one top-level member lies in a payload text (a view into it). */
typedef struct tb_event_field {
  const char *p; /* the value's JSON text */
  size_t n;
  char kind;     /* 0 absent, 's' string, 'n' number, 't' true, 'f' false, 'z' null, 'o' object, 'a' array */
  bool esc;      /* a string containing escapes */
} tb_event_field_t;

/**
 * Checks that `payload` is one JSON object and finds its members named keys[0..nkeys):
 * out[i] is where the value of keys[i] lies (kind 0 when absent). Keys must not need
 * escaping. TB_EPARSE when the text is not one valid object, or repeats a wanted key.
 * The views stay valid as long as the payload text.
 */
int tb_event_fields(const char *payload, size_t len, const char *const *keys, size_t nkeys, tb_event_field_t *out);

/*
 * Typed access to a field: 0; TB_ENOENT when absent; TB_EINVAL when of another type (or a
 * string that is not UTF-8 text without NUL, an integer beyond 64 bits, a malformed UUID);
 * TB_ENOMEM.
 */
/** A new NUL-terminated, unescaped copy of a string (tb_free it). */
int tb_event_field_str(const tb_event_field_t *f, char **out);
/** An integer (no fraction, no exponent). */
int tb_event_field_int(const tb_event_field_t *f, int64_t *out);
/** A UUID in canonical text form. */
int tb_event_field_uuid(const tb_event_field_t *f, tb_uuid_t *out);
int tb_event_field_bool(const tb_event_field_t *f, bool *out);

/** An array of strings, owned: free with tb_event_strv_free. */
typedef struct tb_event_strv {
  char **v;
  size_t n;
} tb_event_strv_t;
/** Copies an array of strings ([] gives n 0). */
int tb_event_field_strv(const tb_event_field_t *f, tb_event_strv_t *out);
void tb_event_strv_free(tb_event_strv_t *sv);

#endif /* TB_EVENTLOG_H */
