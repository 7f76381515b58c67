/*
 * eventlog_int.h — what the files of lib/eventlog share: the backend vtable, the queued
 * append record, the reader interface and the checksum core.
 *
 * eventlog.c is the front: it checks events, copies them into records, turns the async
 * path into the blocking one, and builds subscriptions out of a reader plus a cursor.
 * A backend (embedded.c on SQLite, jetstream.c on NATS) stores records, reads them back
 * in offset order and keeps named cursors. record.c holds the checksum, which does no I/O.
 */
#ifndef TB_EVENTLOG_INT_H
#define TB_EVENTLOG_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "tb/eventlog.h"

/*
 * A queued append, owned by the log from tb__evrec_new until its completion has been
 * reported. The strings of `ev` point into the same allocation.
 */
typedef enum tb__evrec_kind {
  TB__EVREC_APPEND = 0,
  TB__EVREC_CURSOR_SET, /* embedded: a cursor write rides the writer queue; name in ev.type */
  TB__EVREC_CURSOR_DEL,
} tb__evrec_kind_t;

typedef struct tb__evrec {
  struct tb__evrec *next; /* queue link, owned by whichever queue holds the record */
  tb__evrec_kind_t kind;
  tb_event_t ev;
  tb_eventlog_done_cb cb;
  void *ud;
  int64_t deadline_ns; /* monotonic: give up after this (jetstream) */
  uint32_t sum0;       /* checksum of the event without offset or chain (jetstream header) */
  int status;          /* the outcome, set by the backend before completion */
  tb_eventlog_ack_t ack;
} tb__evrec_t;

/** Copies `ev` (already validated) into one allocation; NULL when out of memory. */
tb__evrec_t *tb__evrec_new(const tb_event_t *ev, tb_eventlog_done_cb cb, void *ud);
/** Reports the outcome to the record's callback and frees the record. */
void tb__evrec_complete(tb__evrec_t *rec, int status, const tb_eventlog_ack_t *ack);

/* A backend's sequential reader (embedded: an SQLite connection; jetstream: a consumer). */
typedef struct tb__evreader tb__evreader_t;

typedef struct tb__evlog_ops {
  const char *name;
  /* Queues `rec` for appending; takes ownership on success (the completion then runs once). */
  int (*submit)(tb_eventlog_t *log, tb__evrec_t *rec);
  int (*head)(tb_eventlog_t *log, uint64_t *head);
  /*
   * A reader that delivers offsets from `from` on, stopping after `until` (0: no end),
   * passing only `type` when not NULL (but checking every event). The strings are copied.
   */
  int (*reader_open)(tb_eventlog_t *log, uint64_t from, uint64_t until, const char *type,
                     tb__evreader_t **out, tb_errbuf_t *eb);
  /*
   * Delivers up to `max` events, waiting up to timeout_ms (-1 forever) for the first. *n gets
   * the count delivered; *end is set when `until` has been passed. A callback returning
   * non-zero leaves its event undelivered and ends the call with that value.
   */
  int (*reader_next)(tb__evreader_t *r, size_t max, int timeout_ms, tb_eventlog_cb cb, void *ud,
                     size_t *n, bool *end, tb_errbuf_t *eb);
  void (*reader_close)(tb__evreader_t *r);
  /* Durable cursors: get (TB_ENOTFOUND when absent), set (durable on return), delete. */
  int (*cursor_get)(tb_eventlog_t *log, const char *name, uint64_t *off);
  int (*cursor_set)(tb_eventlog_t *log, const char *name, uint64_t off);
  int (*cursor_delete)(tb_eventlog_t *log, const char *name);
  int (*verify)(tb_eventlog_t *log, tb_errbuf_t *eb);
  /* Drains queued appends (completing each), stops threads, frees the backend state. */
  void (*close)(tb_eventlog_t *log);
} tb__evlog_ops_t;

struct tb_eventlog {
  const tb__evlog_ops_t *ops;
  void *impl;
  bool read_only;
  /* Blocking appends wait here for their completion. */
  pthread_mutex_t wait_mu;
  pthread_cond_t wait_cv;
  /* Durable names with an open subscription, to refuse a second one. */
  pthread_mutex_t subs_mu;
  char **sub_names;
  size_t n_sub_names;
};

int tb__embedded_open(tb_eventlog_t *log, const tb_eventlog_opts_t *o, tb_errbuf_t *eb);
int tb__jetstream_open(tb_eventlog_t *log, const tb_eventlog_opts_t *o, tb_errbuf_t *eb);

/* ---- Checksums (record.c); no I/O. ---- */

/** CRC-32C (Castagnoli) of `n` bytes continuing from `crc` (0 to start). */
uint32_t tb__crc32c(uint32_t crc, const void *p, size_t n);

/**
 * The checksum of one event chained to the previous one: CRC-32C over `prev` and a
 * fixed encoding of every field including the offset (EVENTLOG.md, "Checksums"). With
 * prev 0 and offset 0 it is the event's own checksum, independent of its position.
 */
uint32_t tb__event_sum(uint32_t prev, const tb_event_t *ev);

/**
 * True when `payload` is an acceptable event payload: one JSON object jansson accepts
 * (payload.c). Fast; falls back to jansson only for objects with escaped keys.
 */
bool tb__payload_ok(const char *payload, size_t len);

/** True when `name` is a valid durable subscription name. */
bool tb__evlog_name_ok(const char *name);

/* ---- The head marker. ---- */

/*
 * events.head (headmark.c): the embedded log's record of how far it has acknowledged.
 *
 * SQLite cannot tell a WAL that lost committed frames (truncated, or damaged so that its
 * frame checksums stop the replay early) from one whose writer crashed before committing:
 * both look like a shorter, healthy log. So after every group commit the writer thread
 * overwrites one 64-byte block in events.head with the offset, checksum and id of the last
 * durable event. The block is written only after the fsync that made the events durable,
 * so it may lag the database (a crash between the two) but can never be ahead of it unless
 * the database lost acknowledged events — which is then reported, not accepted.
 */
#define TB__HEADMARK_SIZE 64

typedef struct tb__headmark {
  tb_uuid_t log_id;  /* the log this marker belongs to (meta.log_id) */
  uint64_t offset;   /* last acknowledged offset */
  uint32_t sum;      /* its chained checksum */
  tb_uuid_t ev_id;   /* its event id */
} tb__headmark_t;

/** Encodes `hm` into 64 bytes, with a CRC-32C over the rest at the end. */
void tb__headmark_encode(const tb__headmark_t *hm, uint8_t out[TB__HEADMARK_SIZE]);
/** Decodes 64 bytes; TB_ECORRUPT when the magic or the checksum is wrong. */
int tb__headmark_decode(const uint8_t in[TB__HEADMARK_SIZE], tb__headmark_t *hm);

/** Reads `path`: 0, TB_ENOENT (no marker yet), TB_ECORRUPT, or an I/O error. */
int tb__headmark_read(const char *path, tb__headmark_t *hm);
/** Overwrites the block in the open file `fd` (no fsync). */
int tb__headmark_write(int fd, const tb__headmark_t *hm);

#endif /* TB_EVENTLOG_INT_H */
