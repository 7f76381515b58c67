/*
 * embedded.c — the embedded backend: one SQLite database in WAL mode, <state_dir>/events.db.
 *
 * Writes: every append and cursor write goes through a queue to one writer thread, which
 * takes everything waiting (up to BATCH_MAX) into one IMMEDIATE transaction, assigns
 * offsets head+1, head+2, ... with their chained checksums, commits (synchronous=FULL: the
 * WAL is fsync'd before COMMIT returns), records the new head in events.head, and only
 * then completes each record. So concurrent appenders share one fsync (group commit) and
 * nothing is acknowledged before it is durable. The head is re-read inside each write
 * transaction, which keeps offsets gap-free even if another process appends to the file.
 *
 * Reads: each reader has its own connection and reads offset ranges inside short read
 * transactions, checking that offsets are contiguous and every checksum matches the
 * chain. Readers waiting for new events sleep on a condition variable the writer
 * broadcasts after each commit, and re-check every 100 ms for appends by other processes.
 *
 * Before SQLite touches the file, open checks its header and size (a truncated file is
 * reported, not treated as a shorter log), then the schema and the head marker
 * (eventlog_int.h, "The head marker"). Storage schema and rationale: EVENTLOG.md.
 */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eventlog_int.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/log.h"

#define APP_ID 0x54424556 /* "TBEV" */
#define FORMAT 1
#define BATCH_MAX 8192
#define QUEUE_MAX 65536
#define CHUNK_SIZE (1 << 20)
#define WAIT_SLICE_MS 100

typedef struct emb {
  tb_eventlog_t *log;
  char *db_path;
  char *head_path;
  bool read_only;
  tb_uuid_t log_id;

  /* The writer thread and what only it touches. */
  sqlite3 *wdb;
  sqlite3_stmt *st_ins, *st_dup, *st_last, *st_cset, *st_cdel;
  int head_fd;
  pthread_t writer;
  bool writer_started;

  /* The queue in front of the writer. */
  pthread_mutex_t q_mu;
  pthread_cond_t q_cv;       /* the writer waits for work */
  pthread_cond_t q_space_cv; /* submitters wait for room */
  tb__evrec_t *q_first, *q_last;
  size_t q_len;
  bool stopping;

  /* Commit notifications for waiting readers. */
  pthread_mutex_t c_mu;
  pthread_cond_t c_cv;
  uint64_t commits;

  /* A connection for head() and cursor_get(), from any thread. */
  pthread_mutex_t qdb_mu;
  sqlite3 *qdb;
} emb_t;

static int sq_err(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return 0;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return TB_ECORRUPT;
  case SQLITE_FULL:
    return TB_ENOSPC;
  case SQLITE_IOERR:
    return TB_EIO;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return TB_EBUSY;
  case SQLITE_NOMEM:
    return TB_ENOMEM;
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    return TB_EPERM;
  case SQLITE_CANTOPEN:
    return TB_EACCES;
  case SQLITE_CONSTRAINT:
    return TB_ECONFLICT;
  case SQLITE_TOOBIG:
    return TB_ETOOBIG;
  default:
    return TB_EINTERNAL;
  }
}

/* Reports an SQLite failure on `db` as a sentence naming the file. */
static int sq_fail(emb_t *e, sqlite3 *db, int rc, const char *what, tb_errbuf_t *eb) {
  int err = sq_err(rc);
  return tb_errf(eb, err, "%s: %s: %s", e->db_path, what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int exec(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL); }

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
  return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

/* ---- Checking the file before SQLite trusts it. ---- */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int check_file(const char *path, bool *is_new, tb_errbuf_t *eb) {
  struct stat st;
  uint8_t h[100];
  *is_new = false;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT) {
      *is_new = true;
      return 0;
    }
    return tb_errf(eb, tb_err_from_errno(errno), "%s: %s", path, strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return tb_errf(eb, TB_EINVAL, "%s is not a regular file", path);
  if (st.st_size == 0) {
    *is_new = true;
    return 0;
  }
  if (st.st_size < 100)
    return tb_errf(eb, TB_ECORRUPT, "%s is %lld bytes long, shorter than an SQLite header: the file is truncated", path,
                   (long long)st.st_size);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tb_errf(eb, tb_err_from_errno(errno), "%s: %s", path, strerror(errno));
  ssize_t n = pread(fd, h, sizeof h, 0);
  close(fd);
  if (n != (ssize_t)sizeof h) return tb_errf(eb, TB_EIO, "%s: cannot read the header", path);
  if (memcmp(h, "SQLite format 3", 16) != 0)
    return tb_errf(eb, TB_ECORRUPT, "%s does not start with an SQLite header: it is damaged or not an event log", path);
  uint32_t ps = (uint32_t)h[16] << 8 | h[17];
  if (ps == 1) ps = 65536;
  if (ps < 512 || (ps & (ps - 1)) != 0)
    return tb_errf(eb, TB_ECORRUPT, "%s: the header's page size %u is invalid: the header is damaged", path, ps);
  if (st.st_size % ps != 0)
    return tb_errf(eb, TB_ECORRUPT, "%s is %lld bytes long, not a whole number of %u-byte pages: the file is truncated",
                   path, (long long)st.st_size, ps);
  uint32_t change = be32(h + 24), npages = be32(h + 28), valid_for = be32(h + 92);
  if (npages && valid_for == change && (uint64_t)npages * ps > (uint64_t)st.st_size)
    return tb_errf(eb, TB_ECORRUPT, "%s holds %lld bytes but its header counts %u pages of %u bytes: the file is truncated",
                   path, (long long)st.st_size, npages, ps);
  return 0;
}

/* ---- Connections. ---- */

static int open_conn(emb_t *e, bool ro, bool writer, sqlite3 **out, tb_errbuf_t *eb) {
  sqlite3 *db = NULL;
  int flags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(e->db_path, &db, flags, NULL);
  if (rc != SQLITE_OK) {
    int err = sq_fail(e, db, rc, "cannot open", eb);
    sqlite3_close(db);
    return err;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 10000);
  /* Grow the file in whole chunks. SQLite then extends the file before a checkpoint copies
   * pages into it, so the header never counts more pages than the file holds, even when a
   * checkpoint is killed half-way; check_file relies on that. */
  int chunk = CHUNK_SIZE;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
  const char *pragmas = writer ? "PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=4096;"
                               : "PRAGMA cache_size=-16384; PRAGMA mmap_size=1073741824; PRAGMA query_only=1;";
  rc = exec(db, pragmas);
  if (rc != SQLITE_OK) {
    int err = sq_fail(e, db, rc, "cannot configure the connection", eb);
    sqlite3_close(db);
    return err;
  }
  *out = db;
  return 0;
}

/* Runs a query that returns one integer; *found tells whether a row came back. */
static int query_int(sqlite3 *db, const char *sql, int64_t *v, bool *found) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  rc = sqlite3_step(st);
  if (found) *found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
  if (rc == SQLITE_ROW) {
    *v = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static const char schema_sql[] =
    "CREATE TABLE events("
    " off INTEGER PRIMARY KEY,"  /* the offset: 1, 2, 3, ... */
    " id BLOB NOT NULL,"         /* 16-byte UUID v7 */
    " type TEXT NOT NULL,"
    " schema INTEGER NOT NULL,"
    " agg BLOB NOT NULL,"        /* 16-byte aggregate UUID */
    " actor TEXT NOT NULL,"
    " ts INTEGER NOT NULL,"      /* ns since the epoch */
    " idem TEXT,"                /* idempotency key */
    " payload TEXT NOT NULL,"    /* a JSON object */
    " sum INTEGER NOT NULL);"    /* chained CRC-32C */
    "CREATE UNIQUE INDEX events_idem ON events(idem) WHERE idem IS NOT NULL;"
    "CREATE TABLE cursors(name TEXT PRIMARY KEY, off INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;";

/* Creates the schema in a new database, or checks that an existing one is ours. */
static int init_schema(emb_t *e, sqlite3 *db, bool may_create, tb_errbuf_t *eb) {
  int64_t app_id = 0, version = 0, tables = 0;
  int rc = SQLITE_OK;
  bool began = false;
  if (may_create) {
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      const char *mode = (const char *)sqlite3_column_text(st, 0);
      rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) return sq_fail(e, db, rc, "cannot switch to WAL mode", eb);
    if ((rc = exec(db, "BEGIN IMMEDIATE")) != SQLITE_OK) return sq_fail(e, db, rc, "cannot begin", eb);
    began = true;
  }
  if ((rc = query_int(db, "PRAGMA application_id", &app_id, NULL)) != SQLITE_OK ||
      (rc = query_int(db, "PRAGMA user_version", &version, NULL)) != SQLITE_OK ||
      (rc = query_int(db, "SELECT count(*) FROM sqlite_schema", &tables, NULL)) != SQLITE_OK) {
    rc = sq_fail(e, db, rc, "cannot read the schema", eb);
    goto out;
  }
  if (app_id == 0 && version == 0 && tables == 0) {
    if (!may_create) {
      rc = tb_errf(eb, TB_ENOENT, "%s is empty: no event has been logged yet", e->db_path);
      goto out;
    }
    tb_uuid_t id;
    char sql[200];
    if ((rc = tb_uuid_v7_new(&id)) != 0) {
      rc = tb_errf(eb, rc, "cannot make a log id");
      goto out;
    }
    snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;", APP_ID, FORMAT);
    sqlite3_stmt *st = NULL;
    if ((rc = exec(db, schema_sql)) != SQLITE_OK || (rc = exec(db, sql)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v2(db, "INSERT INTO meta VALUES('log_id', ?1)", -1, &st, NULL)) != SQLITE_OK) {
      rc = sq_fail(e, db, rc, "cannot create the schema", eb);
      goto out;
    }
    sqlite3_bind_blob(st, 1, id.b, 16, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
      rc = sq_fail(e, db, rc, "cannot create the schema", eb);
      goto out;
    }
    rc = 0;
  } else if (app_id != APP_ID) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s is an SQLite database but not a Tabbify event log", e->db_path);
    goto out;
  } else if (version != FORMAT) {
    rc = tb_errf(eb, TB_EUNSUPPORTED, "%s has format %lld; this program reads format %d", e->db_path, (long long)version,
                 FORMAT);
    goto out;
  }
  if (began) {
    if ((rc = exec(db, "COMMIT")) != SQLITE_OK) {
      rc = sq_fail(e, db, rc, "cannot create the schema", eb);
      goto out;
    }
    began = false;
  }
  /* The log's identity. */
  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='log_id'", -1, &st, NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 16) {
    memcpy(e->log_id.b, sqlite3_column_blob(st, 0), 16);
    rc = 0;
  } else {
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? tb_errf(eb, TB_ECORRUPT, "%s: the log id is missing", e->db_path)
                                               : sq_fail(e, db, rc, "cannot read the log id", eb);
  }
  sqlite3_finalize(st);
out:
  if (began) exec(db, "ROLLBACK");
  return rc;
}

/* The last event: its offset (0 when empty), checksum and id. */
static int last_event(sqlite3 *db, uint64_t *off, uint32_t *sum, tb_uuid_t *id) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "SELECT off, sum, id FROM events ORDER BY off DESC LIMIT 1", -1, &st, NULL);
  if (rc != SQLITE_OK) return rc;
  *off = 0;
  *sum = 0;
  memset(id, 0, sizeof *id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *off = (uint64_t)sqlite3_column_int64(st, 0);
    *sum = (uint32_t)sqlite3_column_int64(st, 1);
    if (sqlite3_column_bytes(st, 2) == 16) memcpy(id->b, sqlite3_column_blob(st, 2), 16);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Compares the database's head with events.head. */
static int check_head(emb_t *e, sqlite3 *db, bool have_mark, const tb__headmark_t *hm, tb_errbuf_t *eb) {
  uint64_t head;
  uint32_t sum;
  tb_uuid_t id;
  int64_t first = 0;
  bool any = false;
  int rc = last_event(db, &head, &sum, &id);
  if (rc == SQLITE_OK) rc = query_int(db, "SELECT min(off) FROM events", &first, &any);
  if (rc != SQLITE_OK) return sq_fail(e, db, rc, "cannot read the last event", eb);
  if (any && first != 1)
    return tb_errf(eb, TB_ECORRUPT, "%s: events before offset %lld are missing", e->db_path, (long long)first);
  if (!have_mark) return 0;
  char mark_id[TB_UUID_STR_LEN + 1], log_id[TB_UUID_STR_LEN + 1];
  if (memcmp(hm->log_id.b, e->log_id.b, 16) != 0) {
    tb_uuid_format(&hm->log_id, mark_id);
    tb_uuid_format(&e->log_id, log_id);
    return tb_errf(eb, TB_ECORRUPT, "%s belongs to log %s but %s is log %s: the files do not belong together",
                   e->head_path, mark_id, e->db_path, log_id);
  }
  if (hm->offset > head)
    return tb_errf(eb, TB_ECORRUPT,
                   "%s ends at offset %llu but %llu events were acknowledged (%s): the database or its WAL lost "
                   "committed events. If you restored an older copy on purpose, remove %s",
                   e->db_path, (unsigned long long)head, (unsigned long long)hm->offset, e->head_path, e->head_path);
  if (hm->offset == 0) return 0;
  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(db, "SELECT sum, id FROM events WHERE off = ?1", -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (int64_t)hm->offset);
    rc = sqlite3_step(st);
  }
  bool same = rc == SQLITE_ROW && (uint32_t)sqlite3_column_int64(st, 0) == hm->sum &&
              sqlite3_column_bytes(st, 1) == 16 && memcmp(sqlite3_column_blob(st, 1), hm->ev_id.b, 16) == 0;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    rc = sq_fail(e, db, rc, "cannot read the acknowledged head", eb);
  } else if (!same) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s: the event at offset %llu is not the one that was acknowledged there",
                 e->db_path, (unsigned long long)hm->offset);
  } else {
    rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

/* ---- The writer thread. ---- */

static void notify_commit(emb_t *e) {
  pthread_mutex_lock(&e->c_mu);
  e->commits++;
  pthread_cond_broadcast(&e->c_cv);
  pthread_mutex_unlock(&e->c_mu);
}

/* Inserts one append; sets its ack (or duplicate ack) or returns an SQLite error. */
static int write_append(emb_t *e, tb__evrec_t *r, uint64_t *head, uint32_t *prev) {
  tb_event_t *ev = &r->ev;
  ev->offset = *head + 1;
  uint32_t sum = tb__event_sum(*prev, ev);
  sqlite3_stmt *st = e->st_ins;
  sqlite3_bind_int64(st, 1, (int64_t)ev->offset);
  sqlite3_bind_blob(st, 2, ev->id.b, 16, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, ev->type, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, ev->schema);
  sqlite3_bind_blob(st, 5, ev->aggregate.b, 16, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, ev->actor, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, ev->ts_ns);
  if (ev->idem_key) sqlite3_bind_text(st, 8, ev->idem_key, -1, SQLITE_STATIC);
  else sqlite3_bind_null(st, 8);
  sqlite3_bind_text(st, 9, ev->payload, (int)ev->payload_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 10, sum);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) {
    *head = ev->offset;
    *prev = sum;
    r->ack = (tb_eventlog_ack_t){.offset = ev->offset, .id = ev->id, .duplicate = false};
    r->status = 0;
    return SQLITE_OK;
  }
  if (rc != SQLITE_CONSTRAINT_UNIQUE || ev->idem_key == NULL) return rc;
  /* The key was seen before, possibly earlier in this very transaction. */
  st = e->st_dup;
  sqlite3_bind_text(st, 1, ev->idem_key, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    r->ack.offset = (uint64_t)sqlite3_column_int64(st, 0);
    if (sqlite3_column_bytes(st, 1) == 16) memcpy(r->ack.id.b, sqlite3_column_blob(st, 1), 16);
    r->ack.duplicate = true;
    r->status = 0;
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT;
  }
  sqlite3_reset(st);
  return rc;
}

static int write_cursor(emb_t *e, tb__evrec_t *r) {
  sqlite3_stmt *st = r->kind == TB__EVREC_CURSOR_SET ? e->st_cset : e->st_cdel;
  sqlite3_bind_text(st, 1, r->ev.type, -1, SQLITE_STATIC);
  if (r->kind == TB__EVREC_CURSOR_SET) {
    sqlite3_bind_int64(st, 2, (int64_t)r->ev.offset);
    sqlite3_bind_int64(st, 3, tb_clock_wall_ns());
  }
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return rc;
  r->status = r->kind == TB__EVREC_CURSOR_DEL && sqlite3_changes(e->wdb) == 0 ? TB_ENOTFOUND : 0;
  return SQLITE_OK;
}

/* Commits one batch: one transaction, one fsync. Completes every record. */
static void write_batch(emb_t *e, tb__evrec_t *batch) {
  uint64_t head = 0;
  uint32_t prev = 0;
  tb_uuid_t last_id;
  bool appended = false;
  size_t n = 0;
  int64_t t0 = tb_clock_mono_ns(), t1 = 0;
  int rc = exec(e->wdb, "BEGIN IMMEDIATE");
  if (rc == SQLITE_OK) rc = last_event(e->wdb, &head, &prev, &last_id);
  for (tb__evrec_t *r = batch; r && rc == SQLITE_OK; r = r->next, n++) {
    if (r->kind == TB__EVREC_APPEND) {
      rc = write_append(e, r, &head, &prev);
      if (rc == SQLITE_OK && !r->ack.duplicate) {
        last_id = r->ev.id;
        appended = true;
      }
    } else {
      rc = write_cursor(e, r);
    }
  }
  t1 = tb_clock_mono_ns();
  if (rc == SQLITE_OK) rc = exec(e->wdb, "COMMIT");
  tb_log_debug("eventlog", "group commit", TB_KV_UINT("records", n), TB_KV_INT("insert_us", (t1 - t0) / 1000),
               TB_KV_INT("commit_us", (tb_clock_mono_ns() - t1) / 1000));
  int status = 0;
  if (rc != SQLITE_OK) {
    status = sq_err(rc);
    tb_log_error("eventlog", "commit failed", TB_KV_STR("file", e->db_path), TB_KV_STR("sqlite", sqlite3_errmsg(e->wdb)),
                 TB_KV_ERR(status));
    if (!sqlite3_get_autocommit(e->wdb)) exec(e->wdb, "ROLLBACK");
  } else if (appended) {
    tb__headmark_t hm = {.log_id = e->log_id, .offset = head, .sum = prev, .ev_id = last_id};
    int hr = tb__headmark_write(e->head_fd, &hm);
    if (hr) tb_log_warn("eventlog", "cannot record the head", TB_KV_STR("file", e->head_path), TB_KV_ERR(hr));
  }
  if (status == 0) notify_commit(e);
  while (batch) {
    tb__evrec_t *next = batch->next;
    tb__evrec_complete(batch, status ? status : batch->status, &batch->ack);
    batch = next;
  }
}

static void *writer_main(void *arg) {
  emb_t *e = arg;
  pthread_mutex_lock(&e->q_mu);
  for (;;) {
    while (e->q_first == NULL && !e->stopping) pthread_cond_wait(&e->q_cv, &e->q_mu);
    if (e->q_first == NULL) break; /* stopping, and drained */
    tb__evrec_t *batch = e->q_first, *tail = batch;
    size_t n = 1;
    while (tail->next && n < BATCH_MAX) {
      tail = tail->next;
      n++;
    }
    e->q_first = tail->next;
    if (e->q_first == NULL) e->q_last = NULL;
    tail->next = NULL;
    e->q_len -= n;
    pthread_cond_broadcast(&e->q_space_cv);
    pthread_mutex_unlock(&e->q_mu);
    write_batch(e, batch);
    pthread_mutex_lock(&e->q_mu);
  }
  pthread_mutex_unlock(&e->q_mu);
  return NULL;
}

static int emb_submit(tb_eventlog_t *log, tb__evrec_t *rec) {
  emb_t *e = log->impl;
  pthread_mutex_lock(&e->q_mu);
  while (e->q_len >= QUEUE_MAX && !e->stopping) pthread_cond_wait(&e->q_space_cv, &e->q_mu);
  if (e->stopping) {
    pthread_mutex_unlock(&e->q_mu);
    return TB_ECANCELED;
  }
  rec->next = NULL;
  if (e->q_last) e->q_last->next = rec;
  else e->q_first = rec;
  e->q_last = rec;
  e->q_len++;
  pthread_cond_signal(&e->q_cv);
  pthread_mutex_unlock(&e->q_mu);
  return 0;
}

/* ---- Head and cursors. ---- */

static int emb_head(tb_eventlog_t *log, uint64_t *head) {
  emb_t *e = log->impl;
  int64_t v = 0;
  pthread_mutex_lock(&e->qdb_mu);
  int rc = query_int(e->qdb, "SELECT max(off) FROM events", &v, NULL);
  pthread_mutex_unlock(&e->qdb_mu);
  *head = (uint64_t)v;
  return sq_err(rc);
}

static int emb_cursor_get(tb_eventlog_t *log, const char *name, uint64_t *off) {
  emb_t *e = log->impl;
  sqlite3_stmt *st = NULL;
  pthread_mutex_lock(&e->qdb_mu);
  int rc = sqlite3_prepare_v2(e->qdb, "SELECT off FROM cursors WHERE name = ?1", -1, &st, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
  }
  if (rc == SQLITE_ROW) {
    *off = (uint64_t)sqlite3_column_int64(st, 0);
    rc = 0;
  } else {
    rc = rc == SQLITE_DONE ? TB_ENOTFOUND : sq_err(rc);
  }
  sqlite3_finalize(st);
  pthread_mutex_unlock(&e->qdb_mu);
  return rc;
}

typedef struct cwait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int status;
} cwait_t;

static void cursor_done(int status, const tb_eventlog_ack_t *ack, void *ud) {
  cwait_t *w = ud;
  pthread_mutex_lock(&w->mu);
  w->status = status;
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

/* Sends a cursor write through the writer queue and waits for its commit. */
static int cursor_write(tb_eventlog_t *log, tb__evrec_kind_t kind, const char *name, uint64_t off) {
  if (log->read_only) return TB_EPERM;
  size_t len = strlen(name) + 1;
  tb__evrec_t *r = tb_calloc(1, sizeof *r + len);
  if (r == NULL) return TB_ENOMEM;
  cwait_t w = {.done = false};
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  r->kind = kind;
  r->ev.type = memcpy((char *)(r + 1), name, len);
  r->ev.offset = off;
  r->cb = cursor_done;
  r->ud = &w;
  int rc = emb_submit(log, r);
  if (rc) {
    tb_free(r);
  } else {
    pthread_mutex_lock(&w.mu);
    while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    rc = w.status;
  }
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  return rc;
}

static int emb_cursor_set(tb_eventlog_t *log, const char *name, uint64_t off) {
  return cursor_write(log, TB__EVREC_CURSOR_SET, name, off);
}

static int emb_cursor_delete(tb_eventlog_t *log, const char *name) {
  return cursor_write(log, TB__EVREC_CURSOR_DEL, name, 0);
}

/* ---- Readers. ---- */

struct tb__evreader {
  emb_t *e;
  sqlite3 *db;
  sqlite3_stmt *st_max, *st_range, *st_sum;
  uint64_t pos;   /* next offset to deliver */
  uint64_t until; /* 0: no end */
  char *type;
  uint32_t prev;  /* checksum of pos - 1 */
  bool prev_ok;
};

static void reader_free(tb__evreader_t *r) {
  if (r == NULL) return;
  sqlite3_finalize(r->st_max);
  sqlite3_finalize(r->st_range);
  sqlite3_finalize(r->st_sum);
  sqlite3_close(r->db);
  tb_free(r->type);
  tb_free(r);
}

static int emb_reader_open(tb_eventlog_t *log, uint64_t from, uint64_t until, const char *type, tb__evreader_t **out,
                           tb_errbuf_t *eb) {
  emb_t *e = log->impl;
  *out = NULL;
  tb__evreader_t *r = tb_calloc(1, sizeof *r);
  if (r == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  r->e = e;
  r->pos = from ? from : 1;
  r->until = until;
  r->prev_ok = r->pos == 1;
  int rc = 0;
  if (type && (r->type = tb_strdup(type)) == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory");
    goto out;
  }
  if ((rc = open_conn(e, e->read_only, false, &r->db, eb)) != 0) goto out;
  int s = prepare(r->db, "SELECT max(off) FROM events", &r->st_max);
  if (s == SQLITE_OK)
    s = prepare(r->db,
                "SELECT off, id, type, schema, agg, actor, ts, idem, payload, sum FROM events "
                "WHERE off >= ?1 AND off <= ?2 ORDER BY off",
                &r->st_range);
  if (s == SQLITE_OK) s = prepare(r->db, "SELECT sum FROM events WHERE off = ?1", &r->st_sum);
  if (s != SQLITE_OK) rc = sq_fail(e, r->db, s, "cannot prepare the reader", eb);
out:
  if (rc) {
    reader_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static int corrupt_at(tb__evreader_t *r, uint64_t off, const char *what, tb_errbuf_t *eb) {
  tb_log_error("eventlog", "corrupt event", TB_KV_STR("file", r->e->db_path), TB_KV_UINT("offset", off),
               TB_KV_STR("problem", what));
  return tb_errf(eb, TB_ECORRUPT, "%s: the event at offset %llu %s", r->e->db_path, (unsigned long long)off, what);
}

/*
 * One read transaction: delivers events in [pos, pos+max-1] that exist. *scanned counts
 * the events checked (delivered or filtered out), *delivered those passed to cb.
 */
static int read_batch(tb__evreader_t *r, size_t max, tb_eventlog_cb cb, void *ud, size_t *scanned, size_t *delivered,
                      tb_errbuf_t *eb) {
  emb_t *e = r->e;
  int rc = 0, s;
  uint64_t head = 0;
  *scanned = *delivered = 0;
  if ((s = exec(r->db, "BEGIN")) != SQLITE_OK) return sq_fail(e, r->db, s, "cannot begin a read", eb);
  s = sqlite3_step(r->st_max);
  if (s == SQLITE_ROW) head = (uint64_t)sqlite3_column_int64(r->st_max, 0);
  sqlite3_reset(r->st_max);
  if (s != SQLITE_ROW) {
    rc = sq_fail(e, r->db, s, "cannot read the head", eb);
    goto out;
  }
  uint64_t last = r->pos + max - 1;
  if (r->until && last > r->until) last = r->until;
  if (last > head) last = head;
  if (r->pos > last) goto out;
  if (!r->prev_ok) {
    sqlite3_bind_int64(r->st_sum, 1, (int64_t)(r->pos - 1));
    s = sqlite3_step(r->st_sum);
    if (s == SQLITE_ROW) r->prev = (uint32_t)sqlite3_column_int64(r->st_sum, 0);
    sqlite3_reset(r->st_sum);
    if (s == SQLITE_DONE) {
      rc = corrupt_at(r, r->pos - 1, "is missing", eb);
      goto out;
    }
    if (s != SQLITE_ROW) {
      rc = sq_fail(e, r->db, s, "cannot read", eb);
      goto out;
    }
    r->prev_ok = true;
  }
  sqlite3_stmt *st = r->st_range;
  sqlite3_bind_int64(st, 1, (int64_t)r->pos);
  sqlite3_bind_int64(st, 2, (int64_t)last);
  while ((s = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t off = (uint64_t)sqlite3_column_int64(st, 0);
    if (off != r->pos) {
      rc = corrupt_at(r, r->pos, "is missing", eb);
      break;
    }
    tb_event_t ev = {.offset = off};
    const char *type = (const char *)sqlite3_column_text(st, 2);
    const char *actor = (const char *)sqlite3_column_text(st, 5);
    const char *payload = (const char *)sqlite3_column_text(st, 8);
    if (sqlite3_column_bytes(st, 1) != 16 || sqlite3_column_bytes(st, 4) != 16 || !type || !actor || !payload) {
      rc = corrupt_at(r, off, "has a malformed field", eb);
      break;
    }
    memcpy(ev.id.b, sqlite3_column_blob(st, 1), 16);
    memcpy(ev.aggregate.b, sqlite3_column_blob(st, 4), 16);
    ev.type = type;
    ev.schema = (uint32_t)sqlite3_column_int64(st, 3);
    ev.actor = actor;
    ev.ts_ns = sqlite3_column_int64(st, 6);
    ev.idem_key = (const char *)sqlite3_column_text(st, 7);
    ev.payload = payload;
    ev.payload_len = (size_t)sqlite3_column_bytes(st, 8);
    uint32_t sum = (uint32_t)sqlite3_column_int64(st, 9);
    if (tb__event_sum(r->prev, &ev) != sum) {
      rc = corrupt_at(r, off, "fails its checksum", eb);
      break;
    }
    if (r->type == NULL || strcmp(r->type, type) == 0) {
      int cr = cb(&ev, ud);
      if (cr) {
        rc = cr;
        break;
      }
      (*delivered)++;
    }
    (*scanned)++;
    r->prev = sum;
    r->pos++;
  }
  sqlite3_reset(st);
  if (rc == 0 && s != SQLITE_DONE) rc = sq_fail(e, r->db, s, "cannot read events", eb);
  else if (rc == 0 && r->pos <= last) rc = corrupt_at(r, r->pos, "is missing", eb);
out:
  exec(r->db, "COMMIT");
  return rc;
}

static int emb_reader_next(tb__evreader_t *r, size_t max, int timeout_ms, tb_eventlog_cb cb, void *ud, size_t *n,
                           bool *end, tb_errbuf_t *eb) {
  emb_t *e = r->e;
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : tb_clock_mono_ns() + timeout_ms * TB_NS_PER_MS;
  size_t total = 0;
  int rc = 0;
  *end = false;
  if (max == 0) max = 1;
  for (;;) {
    if (r->until && r->pos > r->until) {
      *end = true;
      break;
    }
    pthread_mutex_lock(&e->c_mu);
    uint64_t seen = e->commits;
    pthread_mutex_unlock(&e->c_mu);
    size_t scanned = 0, delivered = 0;
    rc = read_batch(r, max - total, cb, ud, &scanned, &delivered, eb);
    total += delivered;
    if (rc || total >= max) break;
    if (scanned > 0) {
      if (total > 0) break;
      continue; /* everything was filtered out: read on without waiting */
    }
    if (total > 0) break;
    int64_t now = tb_clock_mono_ns();
    if (now >= deadline) break;
    int64_t wait_ns = deadline - now;
    if (wait_ns > WAIT_SLICE_MS * TB_NS_PER_MS) wait_ns = WAIT_SLICE_MS * TB_NS_PER_MS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = (int64_t)ts.tv_nsec + wait_ns;
    ts.tv_sec += t / TB_NS_PER_SEC;
    ts.tv_nsec = t % TB_NS_PER_SEC;
    pthread_mutex_lock(&e->c_mu);
    while (e->commits == seen) {
      if (pthread_cond_timedwait(&e->c_cv, &e->c_mu, &ts) != 0) break;
    }
    pthread_mutex_unlock(&e->c_mu);
  }
  if (r->until && r->pos > r->until) *end = true;
  *n = total;
  return rc;
}

static void emb_reader_close(tb__evreader_t *r) { reader_free(r); }

/* ---- Verification. ---- */

static int count_cb(const tb_event_t *ev, void *ud) {
  (*(uint64_t *)ud)++;
  return 0;
}

static int emb_verify(tb_eventlog_t *log, tb_errbuf_t *eb) {
  emb_t *e = log->impl;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  int rc = open_conn(e, true, false, &db, eb);
  if (rc) return rc;
  int s = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
  if (s == SQLITE_OK) s = sqlite3_step(st);
  if (s == SQLITE_ROW) {
    const char *res = (const char *)sqlite3_column_text(st, 0);
    if (res == NULL || strcmp(res, "ok") != 0)
      rc = tb_errf(eb, TB_ECORRUPT, "%s fails SQLite's integrity check: %s", e->db_path, res ? res : "?");
  } else {
    rc = sq_fail(e, db, s, "integrity check failed", eb);
  }
  sqlite3_finalize(st);
  tb__headmark_t hm;
  if (rc == 0) {
    int hr = tb__headmark_read(e->head_path, &hm);
    if (hr == TB_ECORRUPT) rc = tb_errf(eb, TB_ECORRUPT, "%s is damaged", e->head_path);
    else if (hr == 0 || hr == TB_ENOENT) rc = check_head(e, db, hr == 0, &hm, eb);
  }
  sqlite3_close(db);
  if (rc) return rc;
  uint64_t head = 0, n = 0;
  if ((rc = emb_head(log, &head)) != 0) return tb_errf(eb, rc, "%s: cannot read the head", e->db_path);
  tb__evreader_t *r = NULL;
  if (head == 0) return 0;
  if ((rc = emb_reader_open(log, 1, head, NULL, &r, eb)) != 0) return rc;
  for (;;) {
    size_t got = 0;
    bool end = false;
    if ((rc = emb_reader_next(r, 8192, 0, count_cb, &n, &got, &end, eb)) != 0 || end) break;
    if (got == 0) {
      rc = tb_errf(eb, TB_ECORRUPT, "%s: events after offset %llu are missing", e->db_path, (unsigned long long)n);
      break;
    }
  }
  reader_free(r);
  return rc;
}

/* ---- Open and close. ---- */

static void emb_free(emb_t *e) {
  if (e == NULL) return;
  sqlite3_finalize(e->st_ins);
  sqlite3_finalize(e->st_dup);
  sqlite3_finalize(e->st_last);
  sqlite3_finalize(e->st_cset);
  sqlite3_finalize(e->st_cdel);
  sqlite3_close(e->wdb);
  sqlite3_close(e->qdb);
  if (e->head_fd >= 0) close(e->head_fd);
  pthread_mutex_destroy(&e->q_mu);
  pthread_cond_destroy(&e->q_cv);
  pthread_cond_destroy(&e->q_space_cv);
  pthread_mutex_destroy(&e->c_mu);
  pthread_cond_destroy(&e->c_cv);
  pthread_mutex_destroy(&e->qdb_mu);
  tb_free(e->db_path);
  tb_free(e->head_path);
  tb_free(e);
}

static void emb_close(tb_eventlog_t *log) {
  emb_t *e = log->impl;
  if (e->writer_started) {
    pthread_mutex_lock(&e->q_mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->q_cv);
    pthread_cond_broadcast(&e->q_space_cv);
    pthread_mutex_unlock(&e->q_mu);
    pthread_join(e->writer, NULL);
  }
  if (e->head_fd >= 0) fdatasync(e->head_fd);
  emb_free(e);
}

static const tb__evlog_ops_t emb_ops = {
    .name = "embedded",
    .submit = emb_submit,
    .head = emb_head,
    .reader_open = emb_reader_open,
    .reader_next = emb_reader_next,
    .reader_close = emb_reader_close,
    .cursor_get = emb_cursor_get,
    .cursor_set = emb_cursor_set,
    .cursor_delete = emb_cursor_delete,
    .verify = emb_verify,
    .close = emb_close,
};

static char *join_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = tb_malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

int tb__embedded_open(tb_eventlog_t *log, const tb_eventlog_opts_t *o, tb_errbuf_t *eb) {
  if (o->state_dir == NULL || o->state_dir[0] == '\0')
    return tb_errf(eb, TB_EINVAL, "the embedded event log needs a state directory");
  emb_t *e = tb_calloc(1, sizeof *e);
  if (e == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  e->log = log;
  e->head_fd = -1;
  e->read_only = o->read_only;
  pthread_mutex_init(&e->q_mu, NULL);
  pthread_cond_init(&e->q_cv, NULL);
  pthread_cond_init(&e->q_space_cv, NULL);
  pthread_mutex_init(&e->c_mu, NULL);
  pthread_cond_init(&e->c_cv, NULL);
  pthread_mutex_init(&e->qdb_mu, NULL);
  int rc = 0, s;
  tb__headmark_t hm;
  bool have_mark = false, is_new = false;
  e->db_path = join_path(o->state_dir, "events.db");
  e->head_path = join_path(o->state_dir, "events.head");
  if (e->db_path == NULL || e->head_path == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory");
    goto out;
  }
  if (!o->read_only && mkdir(o->state_dir, 0700) != 0 && errno != EEXIST) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create the state directory %s: %s", o->state_dir,
                 strerror(errno));
    goto out;
  }
  rc = tb__headmark_read(e->head_path, &hm);
  if (rc == TB_ECORRUPT) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s is damaged; remove it to accept the log as it is", e->head_path);
    goto out;
  }
  if (rc && rc != TB_ENOENT) {
    rc = tb_errf(eb, rc, "cannot read %s: %s", e->head_path, tb_strerror(rc));
    goto out;
  }
  have_mark = rc == 0;
  if ((rc = check_file(e->db_path, &is_new, eb)) != 0) goto out;
  if (is_new && have_mark && hm.offset > 0) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s is missing or empty but %s records %llu acknowledged events", e->db_path,
                 e->head_path, (unsigned long long)hm.offset);
    goto out;
  }
  if (is_new && o->read_only) {
    rc = tb_errf(eb, TB_ENOENT, "there is no event log at %s", e->db_path);
    goto out;
  }
  if (o->read_only) {
    if ((rc = open_conn(e, true, false, &e->qdb, eb)) != 0 || (rc = init_schema(e, e->qdb, false, eb)) != 0) goto out;
  } else {
    if ((rc = open_conn(e, false, true, &e->wdb, eb)) != 0 || (rc = init_schema(e, e->wdb, true, eb)) != 0) goto out;
    if ((rc = open_conn(e, false, false, &e->qdb, eb)) != 0) goto out;
  }
  if ((rc = check_head(e, e->qdb, have_mark, &hm, eb)) != 0) goto out;
  if (!have_mark && !is_new && !o->read_only) {
    uint64_t head;
    uint32_t sum;
    tb_uuid_t id;
    if (last_event(e->qdb, &head, &sum, &id) == SQLITE_OK && head > 0)
      tb_log_warn("eventlog", "the head marker is missing; trusting the database as it is",
                  TB_KV_STR("file", e->head_path), TB_KV_UINT("head", head));
  }
  if (o->verify) {
    log->impl = e;
    rc = emb_verify(log, eb);
    log->impl = NULL;
    if (rc) goto out;
  }
  if (!o->read_only) {
    s = prepare(e->wdb,
                "INSERT INTO events(off, id, type, schema, agg, actor, ts, idem, payload, sum) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                &e->st_ins);
    if (s == SQLITE_OK) s = prepare(e->wdb, "SELECT off, id FROM events WHERE idem = ?1", &e->st_dup);
    if (s == SQLITE_OK)
      s = prepare(e->wdb,
                  "INSERT INTO cursors(name, off, updated) VALUES(?1, ?2, ?3) "
                  "ON CONFLICT(name) DO UPDATE SET off = max(off, excluded.off), updated = excluded.updated",
                  &e->st_cset);
    if (s == SQLITE_OK) s = prepare(e->wdb, "DELETE FROM cursors WHERE name = ?1", &e->st_cdel);
    if (s != SQLITE_OK) {
      rc = sq_fail(e, e->wdb, s, "cannot prepare statements", eb);
      goto out;
    }
    e->head_fd = open(e->head_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (e->head_fd < 0) {
      rc = tb_errf(eb, tb_err_from_errno(errno), "cannot open %s: %s", e->head_path, strerror(errno));
      goto out;
    }
    /* Record the head as it is now, so the marker exists from the first open on. */
    uint64_t head;
    tb__headmark_t now = {.log_id = e->log_id};
    if ((s = last_event(e->qdb, &head, &now.sum, &now.ev_id)) != SQLITE_OK) {
      rc = sq_fail(e, e->qdb, s, "cannot read the last event", eb);
      goto out;
    }
    now.offset = head;
    if ((rc = tb__headmark_write(e->head_fd, &now)) != 0) {
      rc = tb_errf(eb, rc, "cannot write %s: %s", e->head_path, tb_strerror(rc));
      goto out;
    }
    if ((s = pthread_create(&e->writer, NULL, writer_main, e)) != 0) {
      rc = tb_errf(eb, tb_err_from_errno(s), "cannot start the writer thread");
      goto out;
    }
    e->writer_started = true;
  }
  log->ops = &emb_ops;
  log->impl = e;
out:
  if (rc) emb_free(e);
  return rc;
}
