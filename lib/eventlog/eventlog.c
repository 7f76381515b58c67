/*
 * eventlog.c — the front of the event log (include/tb/eventlog.h).
 *
 * Backend-independent work lives here: checking an event's fields before anything is
 * queued, copying it into a record the backend owns, waiting for a blocking append's
 * completion, reading up to a fixed head, and subscriptions, which are a backend reader
 * plus a durable cursor. The backends (embedded.c, jetstream.c) sit behind the
 * tb__evlog_ops_t vtable in eventlog_int.h.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog_int.h"
#include "tb/alloc.h"
#include "tb/clock.h"

void tb_eventlog_opts_init(tb_eventlog_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->backend = TB_EVENTLOG_EMBEDDED;
}

const char *tb_eventlog_backend_name(const tb_eventlog_t *log) { return log->ops->name; }

/* ---- Checking an event. ---- */

static bool type_ok(const char *t, size_t len) {
  if (len == 0 || !(t[0] >= 'a' && t[0] <= 'z')) return false;
  for (size_t i = 1; i < len; i++) {
    char c = t[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

/* Text without control characters, and valid UTF-8 (jansson refuses anything else). */
static bool text_ok(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    uint8_t c = (uint8_t)s[i];
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n = 0;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3;
    else if (c >= 0xf0 && c <= 0xf4) n = 4;
    if (n == 0 || i + n > len) return false;
    uint32_t cp = c & (0xff >> (n + 1));
    for (size_t k = 1; k < n; k++) {
      uint8_t d = (uint8_t)s[i + k];
      if ((d & 0xc0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += n;
  }
  return true;
}

int tb_event_validate(const tb_event_t *ev, tb_errbuf_t *eb) {
  if (ev->type == NULL) return tb_errf(eb, TB_EINVAL, "an event needs a type");
  size_t tl = strlen(ev->type);
  if (tl > TB_EVENT_TYPE_MAX)
    return tb_errf(eb, TB_ETOOBIG, "event type is %zu characters long; the limit is %d", tl, TB_EVENT_TYPE_MAX);
  if (!type_ok(ev->type, tl))
    return tb_errf(eb, TB_EINVAL, "event type \"%.64s\" must be lower-case letters, digits and '_', starting with a letter",
                   ev->type);
  if (ev->schema == 0) return tb_errf(eb, TB_EINVAL, "event %s: schema version must be 1 or more", ev->type);
  if (ev->actor == NULL || ev->actor[0] == '\0') return tb_errf(eb, TB_EINVAL, "event %s: an actor is required", ev->type);
  size_t al = strlen(ev->actor);
  if (al > TB_EVENT_ACTOR_MAX)
    return tb_errf(eb, TB_ETOOBIG, "event %s: actor is %zu bytes long; the limit is %d", ev->type, al, TB_EVENT_ACTOR_MAX);
  if (!text_ok(ev->actor, al))
    return tb_errf(eb, TB_EINVAL, "event %s: actor must be UTF-8 text without control characters", ev->type);
  if (ev->idem_key) {
    size_t kl = strlen(ev->idem_key);
    if (kl == 0 || kl > TB_EVENT_IDEM_MAX)
      return tb_errf(eb, kl ? TB_ETOOBIG : TB_EINVAL, "event %s: idempotency key must be 1 to %d characters", ev->type,
                     TB_EVENT_IDEM_MAX);
    for (size_t i = 0; i < kl; i++)
      if (ev->idem_key[i] < 0x21 || ev->idem_key[i] > 0x7e)
        return tb_errf(eb, TB_EINVAL, "event %s: idempotency key must be printable ASCII without spaces", ev->type);
  }
  if (ev->payload == NULL) return tb_errf(eb, TB_EINVAL, "event %s: a payload (a JSON object) is required", ev->type);
  if (ev->payload_len > TB_EVENT_PAYLOAD_MAX)
    return tb_errf(eb, TB_ETOOBIG, "event %s: payload is %zu bytes; the limit is %d", ev->type, ev->payload_len,
                   TB_EVENT_PAYLOAD_MAX);
  if (tb__payload_ok(ev->payload, ev->payload_len)) return 0;
  /* The slow path, for the sentence: jansson says where the text goes wrong. */
  if (memchr(ev->payload, 0, ev->payload_len))
    return tb_errf(eb, TB_EINVAL, "event %s: payload is not JSON: it contains a NUL byte", ev->type);
  json_error_t je;
  json_t *j = json_loadb(ev->payload, ev->payload_len, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL)
    return tb_errf(eb, TB_EINVAL, "event %s: payload is not JSON: line %d, column %d: %s", ev->type, je.line, je.column,
                   je.text);
  bool obj = json_is_object(j);
  json_decref(j);
  if (!obj) return tb_errf(eb, TB_EINVAL, "event %s: payload must be a JSON object", ev->type);
  return tb_errf(eb, TB_EINVAL, "event %s: payload is not JSON: nested deeper than 64 levels", ev->type);
}

/* ---- Records. ---- */

tb__evrec_t *tb__evrec_new(const tb_event_t *ev, tb_eventlog_done_cb cb, void *ud) {
  size_t tl = strlen(ev->type) + 1, al = strlen(ev->actor) + 1, kl = ev->idem_key ? strlen(ev->idem_key) + 1 : 0;
  tb__evrec_t *r = tb_malloc(sizeof *r + tl + al + kl + ev->payload_len + 1);
  if (r == NULL) return NULL;
  char *p = (char *)(r + 1);
  memset(r, 0, sizeof *r);
  r->kind = TB__EVREC_APPEND;
  r->ev = *ev;
  r->ev.offset = 0;
  r->cb = cb;
  r->ud = ud;
  r->ev.type = memcpy(p, ev->type, tl);
  p += tl;
  r->ev.actor = memcpy(p, ev->actor, al);
  p += al;
  r->ev.idem_key = kl ? memcpy(p, ev->idem_key, kl) : NULL;
  p += kl;
  memcpy(p, ev->payload, ev->payload_len);
  p[ev->payload_len] = '\0';
  r->ev.payload = p;
  r->sum0 = tb__event_sum(0, &r->ev);
  return r;
}

void tb__evrec_complete(tb__evrec_t *rec, int status, const tb_eventlog_ack_t *ack) {
  if (rec->cb) rec->cb(status, status == 0 ? ack : NULL, rec->ud);
  tb_free(rec);
}

/* ---- Open and close. ---- */

int tb_eventlog_open(const tb_eventlog_opts_t *o, tb_eventlog_t **out, tb_errbuf_t *eb) {
  *out = NULL;
  tb_eventlog_t *log = tb_calloc(1, sizeof *log);
  if (log == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  pthread_mutex_init(&log->wait_mu, NULL);
  pthread_cond_init(&log->wait_cv, NULL);
  pthread_mutex_init(&log->subs_mu, NULL);
  log->read_only = o->read_only;
  int rc;
  switch (o->backend) {
  case TB_EVENTLOG_EMBEDDED:
    rc = tb__embedded_open(log, o, eb);
    break;
  case TB_EVENTLOG_JETSTREAM:
    rc = tb__jetstream_open(log, o, eb);
    break;
  default:
    rc = tb_errf(eb, TB_EINVAL, "unknown event log backend %d", (int)o->backend);
  }
  if (rc) {
    pthread_mutex_destroy(&log->wait_mu);
    pthread_cond_destroy(&log->wait_cv);
    pthread_mutex_destroy(&log->subs_mu);
    tb_free(log);
    return rc;
  }
  *out = log;
  return 0;
}

void tb_eventlog_close(tb_eventlog_t *log) {
  if (log == NULL) return;
  log->ops->close(log);
  for (size_t i = 0; i < log->n_sub_names; i++) tb_free(log->sub_names[i]);
  tb_free(log->sub_names);
  pthread_mutex_destroy(&log->wait_mu);
  pthread_cond_destroy(&log->wait_cv);
  pthread_mutex_destroy(&log->subs_mu);
  tb_free(log);
}

/* ---- Appends. ---- */

int tb_eventlog_append_async(tb_eventlog_t *log, const tb_event_t *ev, tb_eventlog_done_cb cb, void *ud,
                             tb_errbuf_t *eb) {
  if (log->read_only) return tb_errf(eb, TB_EPERM, "the event log was opened read-only");
  int rc = tb_event_validate(ev, eb);
  if (rc) return rc;
  tb_event_t e = *ev;
  if (tb_uuid_is_nil(&e.id) && (rc = tb_uuid_v7_new(&e.id)) != 0)
    return tb_errf(eb, rc, "cannot make an event id: %s", tb_strerror(rc));
  if (e.ts_ns == 0) e.ts_ns = tb_clock_wall_ns();
  tb__evrec_t *rec = tb__evrec_new(&e, cb, ud);
  if (rec == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  rc = log->ops->submit(log, rec);
  if (rc) {
    tb_free(rec);
    return tb_errf(eb, rc, "cannot queue the append: %s", tb_strerror(rc));
  }
  return 0;
}

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done;
  int status;
  tb_eventlog_ack_t ack;
} waiter_t;

static void sync_done(int status, const tb_eventlog_ack_t *ack, void *ud) {
  waiter_t *w = ud;
  pthread_mutex_lock(&w->mu);
  w->status = status;
  if (ack) w->ack = *ack;
  w->done = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

int tb_eventlog_append(tb_eventlog_t *log, const tb_event_t *ev, tb_eventlog_ack_t *ack, tb_errbuf_t *eb) {
  waiter_t w = {.done = false};
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  int rc = tb_eventlog_append_async(log, ev, sync_done, &w, eb);
  if (rc == 0) {
    pthread_mutex_lock(&w.mu);
    while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    rc = w.status;
    if (rc) tb_errf(eb, rc, "event %s was not appended: %s", ev->type, tb_strerror(rc));
    else if (ack) *ack = w.ack;
  }
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  return rc;
}

int tb_eventlog_head(tb_eventlog_t *log, uint64_t *head) { return log->ops->head(log, head); }

/* ---- Reads. ---- */

int tb_eventlog_read(tb_eventlog_t *log, uint64_t from, const char *type, tb_eventlog_cb cb, void *ud,
                     tb_errbuf_t *eb) {
  uint64_t head = 0;
  tb__evreader_t *r = NULL;
  if (from == 0) from = 1;
  int rc = log->ops->head(log, &head);
  if (rc) return tb_errf(eb, rc, "cannot find the end of the log: %s", tb_strerror(rc));
  if (from > head) return 0;
  rc = log->ops->reader_open(log, from, head, type, &r, eb);
  if (rc) return rc;
  for (;;) {
    size_t n = 0;
    bool end = false;
    rc = log->ops->reader_next(r, 4096, 5000, cb, ud, &n, &end, eb);
    if (rc || end) break;
    if (n == 0) {
      rc = tb_errf(eb, TB_ETIMEDOUT, "events up to offset %llu did not arrive in time", (unsigned long long)head);
      break;
    }
  }
  log->ops->reader_close(r);
  return rc;
}

/* ---- Subscriptions. ---- */

struct tb_eventlog_sub {
  tb_eventlog_t *log;
  char *name; /* NULL for an ephemeral subscription */
  uint64_t acked;
  uint64_t pos;
  tb__evreader_t *r;
  /* the poll in progress */
  tb_eventlog_cb cb;
  void *ud;
};

bool tb__evlog_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > TB_EVENTLOG_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  }
  return true;
}

static int claim_name(tb_eventlog_t *log, const char *name) {
  int rc = 0;
  pthread_mutex_lock(&log->subs_mu);
  for (size_t i = 0; i < log->n_sub_names; i++)
    if (strcmp(log->sub_names[i], name) == 0) rc = TB_EBUSY;
  if (rc == 0) {
    char **v = tb_reallocarray(log->sub_names, log->n_sub_names + 1, sizeof *v);
    char *copy = tb_strdup(name);
    if (v) log->sub_names = v;
    if (v == NULL || copy == NULL) {
      tb_free(copy);
      rc = TB_ENOMEM;
    } else {
      log->sub_names[log->n_sub_names++] = copy;
    }
  }
  pthread_mutex_unlock(&log->subs_mu);
  return rc;
}

static void release_name(tb_eventlog_t *log, const char *name) {
  pthread_mutex_lock(&log->subs_mu);
  for (size_t i = 0; i < log->n_sub_names; i++) {
    if (strcmp(log->sub_names[i], name) == 0) {
      tb_free(log->sub_names[i]);
      log->sub_names[i] = log->sub_names[--log->n_sub_names];
      break;
    }
  }
  pthread_mutex_unlock(&log->subs_mu);
}

int tb_eventlog_sub_open(tb_eventlog_t *log, const char *name, uint64_t from, tb_eventlog_sub_t **out,
                         tb_errbuf_t *eb) {
  *out = NULL;
  int rc = 0;
  bool claimed = false;
  tb_eventlog_sub_t *sub = NULL;
  if (from == 0) from = 1;
  if (name && !tb__evlog_name_ok(name))
    return tb_errf(eb, TB_EINVAL, "subscription name \"%.80s\" must be 1 to %d letters, digits, '_' or '-'", name,
                   TB_EVENTLOG_NAME_MAX);
  sub = tb_calloc(1, sizeof *sub);
  if (sub == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  sub->log = log;
  sub->acked = sub->pos = from - 1;
  if (name) {
    if ((rc = claim_name(log, name)) != 0) {
      tb_errf(eb, rc, rc == TB_EBUSY ? "subscription \"%s\" is already open" : "out of memory", name);
      goto out;
    }
    claimed = true;
    if ((sub->name = tb_strdup(name)) == NULL) {
      rc = tb_errf(eb, TB_ENOMEM, "out of memory");
      goto out;
    }
    uint64_t cur = 0;
    rc = log->ops->cursor_get(log, name, &cur);
    if (rc == 0) {
      sub->acked = sub->pos = cur;
    } else if (rc != TB_ENOTFOUND) {
      tb_errf(eb, rc, "cannot read the cursor of subscription \"%s\": %s", name, tb_strerror(rc));
      goto out;
    }
    rc = 0;
  }
  rc = log->ops->reader_open(log, sub->pos + 1, 0, NULL, &sub->r, eb);
out:
  if (rc) {
    if (claimed) release_name(log, name);
    tb_free(sub->name);
    tb_free(sub);
    return rc;
  }
  *out = sub;
  return 0;
}

static int sub_trampoline(const tb_event_t *ev, void *ud) {
  tb_eventlog_sub_t *sub = ud;
  int rc = sub->cb(ev, sub->ud);
  if (rc == 0) sub->pos = ev->offset;
  return rc;
}

int tb_eventlog_sub_poll(tb_eventlog_sub_t *sub, size_t max, int timeout_ms, tb_eventlog_cb cb, void *ud, size_t *n,
                         tb_errbuf_t *eb) {
  size_t got = 0;
  bool end = false;
  sub->cb = cb;
  sub->ud = ud;
  int rc = sub->log->ops->reader_next(sub->r, max, timeout_ms, sub_trampoline, sub, &got, &end, eb);
  if (n) *n = got;
  return rc;
}

int tb_eventlog_sub_ack(tb_eventlog_sub_t *sub, uint64_t offset) {
  if (sub->name == NULL || offset > sub->pos) return TB_EINVAL;
  if (offset <= sub->acked) return 0;
  int rc = sub->log->ops->cursor_set(sub->log, sub->name, offset);
  if (rc == 0) sub->acked = offset;
  return rc;
}

uint64_t tb_eventlog_sub_acked(const tb_eventlog_sub_t *sub) { return sub->acked; }
uint64_t tb_eventlog_sub_position(const tb_eventlog_sub_t *sub) { return sub->pos; }

void tb_eventlog_sub_close(tb_eventlog_sub_t *sub) {
  if (sub == NULL) return;
  sub->log->ops->reader_close(sub->r);
  if (sub->name) release_name(sub->log, sub->name);
  tb_free(sub->name);
  tb_free(sub);
}

int tb_eventlog_sub_delete(tb_eventlog_t *log, const char *name) {
  if (!tb__evlog_name_ok(name)) return TB_EINVAL;
  if (log->read_only) return TB_EPERM;
  int rc = claim_name(log, name);
  if (rc) return rc;
  rc = log->ops->cursor_delete(log, name);
  release_name(log, name);
  return rc;
}

int tb_eventlog_verify(tb_eventlog_t *log, tb_errbuf_t *eb) { return log->ops->verify(log, eb); }
