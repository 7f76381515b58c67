/*
 * projections.c — the projections object: state lifetime, locking, applying events in
 * offset order, catching up with the log, the canonical dump (include/tb/projections.h).
 */
#include <stdio.h>
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"
#include "tb/log.h"

void tb__state_init(tb__state_t *st) { memset(st, 0, sizeof *st); }

/* Every state a record can be in; records point at these strings. */
static const char *const states[] = {"registered", "deploying", "running",    "crashed", "stopped",
                                     "exited",     "failed",    "deleted",    "requested", "placed",
                                     "superseded", "up",        "lost",       "left",    "idle"};

const char *tb__state_name(const char *s) {
  for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
    if (strcmp(states[i], s) == 0) return states[i];
  return NULL;
}

static void free_map(tb__map_t *m, void (*fn)(void *)) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->vals[i]) fn(m->vals[i]);
  tb__map_deinit(m);
}

static void app_f(void *p) { tb__app_free(p); }
static void dep_f(void *p) { tb__deployment_free(p); }
static void sup_f(void *p) { tb__supervisor_free(p); }
static void run_f(void *p) { tb__runner_free(p); }
static void tok_f(void *p) { tb__token_free(p); }

void tb__state_deinit(tb__state_t *st) {
  free_map(&st->apps, app_f);
  free_map(&st->deployments, dep_f);
  free_map(&st->supervisors, sup_f);
  free_map(&st->runners, run_f);
  free_map(&st->tokens, tok_f);
  memset(st, 0, sizeof *st);
}

int tb_projections_new(tb_projections_t **out) {
  tb_projections_t *p = tb_calloc(1, sizeof *p);
  if (p == NULL) return TB_ENOMEM;
  pthread_rwlock_init(&p->lock, NULL);
  tb__state_init(&p->st);
  *out = p;
  return 0;
}

void tb_projections_free(tb_projections_t *p) {
  if (p == NULL) return;
  tb__state_deinit(&p->st);
  pthread_rwlock_destroy(&p->lock);
  tb_free(p);
}

/* With the write lock held. */
static int apply_locked(tb_projections_t *p, const tb_event_t *ev, tb_errbuf_t *eb) {
  tb__state_t *st = &p->st;
  if (ev->offset <= st->offset) return 0; /* seen: at-least-once delivery is fine */
  if (ev->offset != st->offset + 1)
    return tb_errf(eb, TB_ECONFLICT, "event at offset %llu arrived but the projections are at %llu",
                   (unsigned long long)ev->offset, (unsigned long long)st->offset);
  char why[256] = "";
  tb_errbuf_t local = {why, sizeof why};
  int rc = tb__apply(st, ev, &local);
  if (rc == TB_EINVAL) {
    /* The sentence names the field, never its value: payloads may hold sealed secrets. */
    st->skipped++;
    tb_log_warn("projections", "event not applied", TB_KV_UINT("offset", ev->offset), TB_KV_STR("type", ev->type),
                TB_KV_STR("reason", why));
  } else if (rc) {
    return tb_errf(eb, rc, "offset %llu: %s", (unsigned long long)ev->offset, why[0] ? why : tb_strerror(rc));
  }
  st->offset = ev->offset;
  st->last_id = ev->id;
  return 0;
}

int tb_projections_apply(tb_projections_t *p, const tb_event_t *ev, tb_errbuf_t *eb) {
  pthread_rwlock_wrlock(&p->lock);
  int rc = apply_locked(p, ev, eb);
  pthread_rwlock_unlock(&p->lock);
  return rc;
}

uint64_t tb_projections_offset(tb_projections_t *p) {
  pthread_rwlock_rdlock(&p->lock);
  uint64_t o = p->st.offset;
  pthread_rwlock_unlock(&p->lock);
  return o;
}

typedef struct catch_ctx {
  tb_projections_t *p;
  uint64_t n;
  int rc;
  tb_errbuf_t *eb;
  unsigned held; /* events applied under the write lock taken for them */
} catch_ctx_t;

/* Batches of events share one write lock: queries wait at most this many events. */
#define LOCK_BATCH 512

static int catch_cb(const tb_event_t *ev, void *ud) {
  catch_ctx_t *c = ud;
  if (c->held == 0) pthread_rwlock_wrlock(&c->p->lock);
  int rc = apply_locked(c->p, ev, c->eb);
  if (++c->held == LOCK_BATCH || rc) {
    pthread_rwlock_unlock(&c->p->lock);
    c->held = 0;
  }
  if (rc) {
    c->rc = rc;
    return 1;
  }
  c->n++;
  return 0;
}

static int catch_up_inline(tb_projections_t *p, tb_eventlog_t *log, uint64_t *applied, tb_errbuf_t *eb) {
  catch_ctx_t c = {.p = p, .eb = eb};
  int rc = tb_eventlog_read(log, tb_projections_offset(p) + 1, NULL, catch_cb, &c, eb);
  if (c.held) pthread_rwlock_unlock(&p->lock);
  if (rc == 1) rc = c.rc;
  if (applied) *applied = c.n;
  return rc;
}

/*
 * A long catch-up (start-up with no snapshot, or an old one) runs on two threads: one
 * reads the log and copies events into batches, the caller applies them, so reading
 * (SQLite, checksums) and applying (payload scanning, the maps) overlap. Batches
 * circulate between a free list and a full queue; BATCHES bounds the memory.
 */
#define PIPELINE_MIN 20000
#define BATCHES 4
#define BATCH_EVENTS 2048
#define BATCH_BYTES (1 << 20)

typedef struct batch {
  struct batch *next;
  tb_event_t ev[BATCH_EVENTS];
  size_t n;
  char *arena; /* BATCH_BYTES for the strings of ev[] */
  size_t used;
} batch_t;

typedef struct pipe {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  batch_t *free, *full_first, *full_last;
  batch_t *cur;       /* being filled by the reader */
  bool reader_done;   /* the reader has pushed its last batch */
  bool stop;          /* the applier failed: the reader should give up */
  int read_rc;
  char read_msg[256];
  tb_eventlog_t *log;
  uint64_t from;
} pipe_t;

static void push_full(pipe_t *q, batch_t *b) {
  pthread_mutex_lock(&q->mu);
  b->next = NULL;
  if (q->full_last) q->full_last->next = b;
  else q->full_first = b;
  q->full_last = b;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

/* Takes a free batch, waiting for the applier to return one. NULL when told to stop. */
static batch_t *take_free(pipe_t *q) {
  pthread_mutex_lock(&q->mu);
  while (q->free == NULL && !q->stop) pthread_cond_wait(&q->cv, &q->mu);
  batch_t *b = q->stop ? NULL : q->free;
  if (b) q->free = b->next;
  pthread_mutex_unlock(&q->mu);
  if (b) {
    b->n = 0;
    b->used = 0;
  }
  return b;
}

static char *copy_in(batch_t *b, const char *s, size_t n) {
  char *d = b->arena + b->used;
  memcpy(d, s, n);
  d[n] = '\0';
  b->used += n + 1;
  return d;
}

static int pipe_cb(const tb_event_t *ev, void *ud) {
  pipe_t *q = ud;
  size_t tl = strlen(ev->type), al = strlen(ev->actor), kl = ev->idem_key ? strlen(ev->idem_key) : 0;
  size_t need = tl + al + kl + ev->payload_len + 4;
  if (need > BATCH_BYTES) return TB_ETOOBIG; /* cannot happen: payloads are bounded well below */
  batch_t *b = q->cur;
  if (b && (b->n == BATCH_EVENTS || b->used + need > BATCH_BYTES)) {
    push_full(q, b);
    b = q->cur = NULL;
  }
  if (b == NULL && (b = q->cur = take_free(q)) == NULL) return TB_ECANCELED;
  tb_event_t *e = &b->ev[b->n++];
  *e = *ev;
  e->type = copy_in(b, ev->type, tl);
  e->actor = copy_in(b, ev->actor, al);
  e->idem_key = ev->idem_key ? copy_in(b, ev->idem_key, kl) : NULL;
  e->payload = copy_in(b, ev->payload, ev->payload_len);
  return 0;
}

static void *reader_main(void *arg) {
  pipe_t *q = arg;
  tb_errbuf_t eb = {q->read_msg, sizeof q->read_msg};
  int rc = tb_eventlog_read(q->log, q->from, NULL, pipe_cb, q, &eb);
  if (q->cur && q->cur->n) push_full(q, q->cur);
  q->cur = NULL;
  pthread_mutex_lock(&q->mu);
  q->read_rc = rc;
  q->reader_done = true;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

static int catch_up_pipelined(tb_projections_t *p, tb_eventlog_t *log, uint64_t *applied, tb_errbuf_t *eb) {
  pipe_t q = {.log = log, .from = tb_projections_offset(p) + 1};
  batch_t *all[BATCHES] = {0};
  uint64_t n = 0;
  int rc = 0;
  pthread_t th;
  pthread_mutex_init(&q.mu, NULL);
  pthread_cond_init(&q.cv, NULL);
  for (int i = 0; i < BATCHES; i++) {
    all[i] = tb_calloc(1, sizeof *all[i]);
    if (all[i] == NULL || (all[i]->arena = tb_malloc(BATCH_BYTES)) == NULL) {
      rc = TB_ENOMEM;
      goto out;
    }
    all[i]->next = q.free;
    q.free = all[i];
  }
  if ((rc = pthread_create(&th, NULL, reader_main, &q)) != 0) {
    rc = tb_err_from_errno(rc);
    goto out;
  }
  for (;;) {
    pthread_mutex_lock(&q.mu);
    while (q.full_first == NULL && !q.reader_done) pthread_cond_wait(&q.cv, &q.mu);
    batch_t *b = q.full_first;
    if (b) {
      q.full_first = b->next;
      if (q.full_first == NULL) q.full_last = NULL;
    }
    pthread_mutex_unlock(&q.mu);
    if (b == NULL) break; /* the reader is done and everything is applied */
    pthread_rwlock_wrlock(&p->lock);
    for (size_t i = 0; i < b->n && rc == 0; i++) {
      rc = apply_locked(p, &b->ev[i], eb);
      if (rc == 0) n++;
    }
    pthread_rwlock_unlock(&p->lock);
    pthread_mutex_lock(&q.mu);
    b->next = q.free;
    q.free = b;
    if (rc) q.stop = true;
    pthread_cond_broadcast(&q.cv);
    pthread_mutex_unlock(&q.mu);
    if (rc) break;
  }
  pthread_join(th, NULL);
  if (rc == 0 && q.read_rc) rc = tb_errf(eb, q.read_rc, "%s", q.read_msg[0] ? q.read_msg : tb_strerror(q.read_rc));
out:
  for (int i = 0; i < BATCHES; i++) {
    if (all[i]) tb_free(all[i]->arena);
    tb_free(all[i]);
  }
  pthread_cond_destroy(&q.cv);
  pthread_mutex_destroy(&q.mu);
  if (applied) *applied = n;
  return rc;
}

int tb_projections_catch_up(tb_projections_t *p, tb_eventlog_t *log, uint64_t *applied, tb_errbuf_t *eb) {
  uint64_t head = 0;
  if (tb_eventlog_head(log, &head) == 0 && head > tb_projections_offset(p) + PIPELINE_MIN)
    return catch_up_pipelined(p, log, applied, eb);
  return catch_up_inline(p, log, applied, eb);
}

typedef struct dump_ctx {
  tb_buf_t *out;
  int rc;
} dump_ctx_t;

static int dump_cb(const char *buf, size_t size, void *data) {
  dump_ctx_t *c = data;
  c->rc = tb_buf_append(c->out, buf, size);
  return c->rc ? -1 : 0;
}

int tb_projections_dump(tb_projections_t *p, tb_buf_t *out) {
  pthread_rwlock_rdlock(&p->lock);
  json_t *j = tb__state_to_json(&p->st);
  pthread_rwlock_unlock(&p->lock);
  if (j == NULL) return TB_ENOMEM;
  dump_ctx_t c = {out, 0};
  int rc = json_dump_callback(j, dump_cb, &c, JSON_COMPACT | JSON_SORT_KEYS) == 0 ? 0 : (c.rc ? c.rc : TB_ENOMEM);
  json_decref(j);
  return rc;
}
