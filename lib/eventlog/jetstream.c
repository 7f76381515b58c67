/*
 * jetstream.c — the distributed backend: the log is a NATS JetStream stream (EVENTLOG.md).
 *
 * Mapping. One stream (default TB_EVENTS, file storage, deletes and purges denied so the
 * sequence stays gap-free) takes subjects <prefix>.<type>; an event's offset is its stream
 * sequence. The envelope travels in headers (Tb-Id, Tb-Schema, Tb-Agg, Tb-Actor, Tb-Ts,
 * Tb-Idem, Tb-Sum) and the payload is the message body. Nats-Msg-Id is "k:<idempotency
 * key>" or "e:<event id>", so the stream's duplicate window drops both a caller's repeated
 * key and our own re-sends after a lost acknowledgement. Durable cursors live in a KV
 * bucket <stream>_cursors, one key per subscription name.
 *
 * Appends. A publisher thread takes queued records, gives each an in-flight slot and
 * publishes it with the reply subject <inbox>.<slot>.<token>; one wildcard subscription
 * receives the stream's acknowledgements and hands each to its slot. The publisher
 * completes acknowledged records, re-sends those unacknowledged after ACK_WAIT (the
 * server restarted, the connection dropped) or refused with "no responders" (JetStream
 * still recovering), and fails a record only when its append_timeout passes. Many appends
 * are in flight at once; the server batches their writes, which is JetStream's group
 * commit.
 *
 * Reads. A reader is an ephemeral pull consumer (AckNone, in memory) starting at the
 * reader's next offset. Every message is checked: its sequence must be the next one
 * (anything else is either a message lost in transit, which re-creating the consumer
 * repairs, or a hole in the stream, which is TB_ECORRUPT) and its Tb-Sum must match.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eventlog_int.h"
#include "nats_dl.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/log.h"

#define SLOTS 4096
#define ACK_WAIT_NS (2 * TB_NS_PER_SEC)
#define RETRY_NS (100 * TB_NS_PER_MS)
#define FETCH_BATCH 512
#define DEFAULT_STREAM "TB_EVENTS"
#define DEFAULT_PREFIX "tb.events"

typedef enum { SLOT_FREE = 0, SLOT_SENT, SLOT_RETRY, SLOT_DONE, SLOT_DUPCHECK } slot_state_t;

typedef struct slot {
  slot_state_t state;
  tb__evrec_t *rec;
  uint64_t token;   /* the same for every send of this record */
  int64_t when_ns;  /* SENT: when sent; RETRY: when to re-send */
  int tries;
} slot_t;

typedef struct js {
  tb_eventlog_t *log;
  natsConnection *nc;
  jsCtx *jsx;
  kvStore *kv;
  char *stream, *prefix, *inbox;
  natsSubscription *ack_sub;
  int64_t append_timeout_ns;

  pthread_mutex_t mu;
  pthread_cond_t cv;       /* the publisher waits for work and acknowledgements */
  pthread_cond_t space_cv; /* submitters wait for queue room */
  tb__evrec_t *q_first, *q_last;
  size_t q_len;
  slot_t slots[SLOTS];
  int free_idx[SLOTS];
  int n_free;
  int done_idx[SLOTS]; /* slots whose outcome is known, for the publisher */
  int n_done;
  uint64_t next_token;
  bool stopping;
  pthread_t pub;
  bool pub_started;
} js_t;

static int nats_err(natsStatus s) {
  switch (s) {
  case NATS_OK:
    return 0;
  case NATS_TIMEOUT:
    return TB_ETIMEDOUT;
  case NATS_NO_SERVER:
  case NATS_CONNECTION_CLOSED:
  case NATS_CONNECTION_DISCONNECTED:
  case NATS_STALE_CONNECTION:
  case NATS_NO_RESPONDERS:
    return TB_EAGAIN;
  case NATS_NOT_FOUND:
    return TB_ENOTFOUND;
  case NATS_NO_MEMORY:
    return TB_ENOMEM;
  case NATS_INVALID_ARG:
  case NATS_INVALID_SUBJECT:
    return TB_EINVAL;
  default:
    return TB_EIO;
  }
}

static char *xstrdup(const char *s) { return tb_strdup(s); }

/* ---- Messages. ---- */

static void put_uuid(char out[TB_UUID_STR_LEN + 1], const tb_uuid_t *u) { tb_uuid_format(u, out); }

static natsStatus build_msg(js_t *j, tb__evrec_t *r, const char *reply, natsMsg **out) {
  char subject[TB_EVENT_TYPE_MAX + 128], id[TB_UUID_STR_LEN + 1], agg[TB_UUID_STR_LEN + 1], num[32], ts[32],
      sum[16], msgid[TB_EVENT_IDEM_MAX + 8];
  snprintf(subject, sizeof subject, "%s.%s", j->prefix, r->ev.type);
  put_uuid(id, &r->ev.id);
  put_uuid(agg, &r->ev.aggregate);
  snprintf(num, sizeof num, "%u", r->ev.schema);
  snprintf(ts, sizeof ts, "%lld", (long long)r->ev.ts_ns);
  snprintf(sum, sizeof sum, "%u", r->sum0);
  if (r->ev.idem_key) snprintf(msgid, sizeof msgid, "k:%s", r->ev.idem_key);
  else snprintf(msgid, sizeof msgid, "e:%s", id);
  natsMsg *m = NULL;
  natsStatus s = tb__nats.natsMsg_Create(&m, subject, reply, r->ev.payload, (int)r->ev.payload_len);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Nats-Msg-Id", msgid);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Nats-Expected-Stream", j->stream);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Tb-Id", id);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Tb-Schema", num);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Tb-Agg", agg);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Tb-Actor", r->ev.actor);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Tb-Ts", ts);
  if (s == NATS_OK && r->ev.idem_key) s = tb__nats.natsMsgHeader_Set(m, "Tb-Idem", r->ev.idem_key);
  if (s == NATS_OK) s = tb__nats.natsMsgHeader_Set(m, "Tb-Sum", sum);
  if (s != NATS_OK) {
    tb__nats.natsMsg_Destroy(m);
    m = NULL;
  }
  *out = m;
  return s;
}

static bool parse_u64(const char *s, uint64_t *v) {
  if (s == NULL || *s == '\0') return false;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *v = x;
  return true;
}

/*
 * Decodes a stored message into `ev` (pointers into the message) and checks its sum.
 * Returns 0 or TB_ECORRUPT.
 */
static int decode_msg(js_t *j, natsMsg *m, uint64_t seq, tb_event_t *ev) {
  const char *subj = tb__nats.natsMsg_GetSubject(m), *id = NULL, *schema = NULL, *agg = NULL, *actor = NULL, *ts = NULL,
             *idem = NULL, *sum = NULL;
  size_t pl = strlen(j->prefix);
  memset(ev, 0, sizeof *ev);
  if (subj == NULL || strncmp(subj, j->prefix, pl) != 0 || subj[pl] != '.') return TB_ECORRUPT;
  ev->type = subj + pl + 1;
  tb__nats.natsMsgHeader_Get(m, "Tb-Id", &id);
  tb__nats.natsMsgHeader_Get(m, "Tb-Schema", &schema);
  tb__nats.natsMsgHeader_Get(m, "Tb-Agg", &agg);
  tb__nats.natsMsgHeader_Get(m, "Tb-Actor", &actor);
  tb__nats.natsMsgHeader_Get(m, "Tb-Ts", &ts);
  if (tb__nats.natsMsgHeader_Get(m, "Tb-Idem", &idem) != NATS_OK) idem = NULL;
  tb__nats.natsMsgHeader_Get(m, "Tb-Sum", &sum);
  uint64_t v, s32, t;
  if (!id || !agg || !actor || !parse_u64(schema, &v) || v == 0 || v > UINT32_MAX || !parse_u64(sum, &s32) ||
      s32 > UINT32_MAX || ts == NULL)
    return TB_ECORRUPT;
  if (tb_uuid_parse(id, strlen(id), &ev->id) || tb_uuid_parse(agg, strlen(agg), &ev->aggregate)) return TB_ECORRUPT;
  bool neg = ts[0] == '-';
  if (!parse_u64(ts + neg, &t)) return TB_ECORRUPT;
  ev->ts_ns = neg ? -(int64_t)t : (int64_t)t;
  ev->schema = (uint32_t)v;
  ev->actor = actor;
  ev->idem_key = idem;
  ev->payload = tb__nats.natsMsg_GetData(m);
  ev->payload_len = (size_t)tb__nats.natsMsg_GetDataLength(m);
  if (ev->payload == NULL) ev->payload = "";
  if (tb__event_sum(0, ev) != (uint32_t)s32) return TB_ECORRUPT;
  ev->offset = seq;
  return 0;
}

/* ---- Acknowledgements (on libnats's delivery thread). ---- */

static void on_ack(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
  js_t *j = closure;
  const char *subj = tb__nats.natsMsg_GetSubject(msg);
  size_t il = strlen(j->inbox);
  unsigned idx = 0;
  unsigned long long token = 0;
  if (strncmp(subj, j->inbox, il) != 0 || sscanf(subj + il, ".%u.%llu", &idx, &token) != 2 || idx >= SLOTS) {
    tb__nats.natsMsg_Destroy(msg);
    return;
  }
  pthread_mutex_lock(&j->mu);
  slot_t *sl = &j->slots[idx];
  if (sl->state != SLOT_SENT || sl->token != token) goto out; /* a late answer to an earlier send */
  if (tb__nats.natsMsg_IsNoResponders(msg)) {
    sl->state = SLOT_RETRY;
    sl->when_ns = tb_clock_mono_ns() + RETRY_NS;
    goto out;
  }
  json_error_t je;
  json_t *a = json_loadb(tb__nats.natsMsg_GetData(msg), (size_t)tb__nats.natsMsg_GetDataLength(msg), 0, &je);
  json_t *err = a ? json_object_get(a, "error") : NULL;
  json_t *seq = a ? json_object_get(a, "seq") : NULL;
  if (err) {
    int code = (int)json_integer_value(json_object_get(err, "code"));
    const char *desc = json_string_value(json_object_get(err, "description"));
    if (code == 503) {
      sl->state = SLOT_RETRY;
      sl->when_ns = tb_clock_mono_ns() + RETRY_NS;
    } else {
      tb_log_error("eventlog", "jetstream refused an append", TB_KV_STR("stream", j->stream), TB_KV_INT("code", code),
                   TB_KV_STR("error", desc ? desc : "?"));
      sl->rec->status = TB_EIO;
      sl->state = SLOT_DONE;
      j->done_idx[j->n_done++] = (int)idx;
    }
  } else if (json_is_integer(seq) && json_integer_value(seq) > 0) {
    sl->rec->ack.offset = (uint64_t)json_integer_value(seq);
    sl->rec->ack.id = sl->rec->ev.id;
    sl->rec->ack.duplicate = json_is_true(json_object_get(a, "duplicate"));
    sl->rec->status = 0;
    /* A duplicate of a keyed append may be someone else's event: look its id up. */
    sl->state = sl->rec->ack.duplicate && sl->rec->ev.idem_key ? SLOT_DUPCHECK : SLOT_DONE;
    j->done_idx[j->n_done++] = (int)idx;
  } else {
    sl->state = SLOT_RETRY;
    sl->when_ns = tb_clock_mono_ns() + RETRY_NS;
  }
  json_decref(a);
  pthread_cond_signal(&j->cv);
out:
  pthread_mutex_unlock(&j->mu);
  tb__nats.natsMsg_Destroy(msg);
}

/* ---- The publisher thread. ---- */

/* Sends slot `idx`'s record; called with the lock held, releases it around the send. */
static void send_slot(js_t *j, int idx) {
  slot_t *sl = &j->slots[idx];
  char reply[128];
  snprintf(reply, sizeof reply, "%s.%d.%llu", j->inbox, idx, (unsigned long long)sl->token);
  sl->state = SLOT_SENT;
  sl->when_ns = tb_clock_mono_ns();
  sl->tries++;
  tb__evrec_t *r = sl->rec;
  uint64_t token = sl->token;
  pthread_mutex_unlock(&j->mu);
  natsMsg *m = NULL;
  natsStatus s = build_msg(j, r, reply, &m);
  if (s == NATS_OK) s = tb__nats.natsConnection_PublishMsg(j->nc, m);
  tb__nats.natsMsg_Destroy(m);
  pthread_mutex_lock(&j->mu);
  if (s != NATS_OK && sl->state == SLOT_SENT && sl->token == token) {
    sl->state = SLOT_RETRY;
    sl->when_ns = tb_clock_mono_ns() + RETRY_NS;
  }
}

static void finish_slot(js_t *j, int idx, tb__evrec_t **done) {
  slot_t *sl = &j->slots[idx];
  sl->rec->next = *done;
  *done = sl->rec;
  sl->rec = NULL;
  sl->state = SLOT_FREE;
  j->free_idx[j->n_free++] = idx;
}

static void *publisher_main(void *arg) {
  js_t *j = arg;
  int64_t last_scan = 0;
  pthread_mutex_lock(&j->mu);
  for (;;) {
    tb__evrec_t *done = NULL;
    /* Outcomes that arrived. */
    while (j->n_done > 0) {
      int idx = j->done_idx[--j->n_done];
      slot_t *sl = &j->slots[idx];
      if (sl->state == SLOT_DUPCHECK) {
        uint64_t seq = sl->rec->ack.offset;
        pthread_mutex_unlock(&j->mu);
        natsMsg *m = NULL;
        const char *id = NULL;
        if (tb__nats.js_GetMsg(&m, j->jsx, j->stream, seq, NULL, NULL) == NATS_OK &&
            tb__nats.natsMsgHeader_Get(m, "Tb-Id", &id) == NATS_OK)
          tb_uuid_parse(id, strlen(id), &sl->rec->ack.id);
        tb__nats.natsMsg_Destroy(m);
        pthread_mutex_lock(&j->mu);
      }
      finish_slot(j, idx, &done);
    }
    /* Re-sends and timeouts. */
    int64_t now = tb_clock_mono_ns();
    if (now - last_scan >= 20 * TB_NS_PER_MS) {
      last_scan = now;
      for (int i = 0; i < SLOTS; i++) {
        slot_t *sl = &j->slots[i];
        bool due = (sl->state == SLOT_SENT && now - sl->when_ns >= ACK_WAIT_NS) ||
                   (sl->state == SLOT_RETRY && now >= sl->when_ns);
        if (!due) continue;
        if (now >= sl->rec->deadline_ns) {
          sl->rec->status = TB_ETIMEDOUT;
          finish_slot(j, i, &done);
        } else {
          send_slot(j, i);
        }
      }
    }
    /* New appends. */
    while (j->q_first && j->n_free > 0) {
      tb__evrec_t *r = j->q_first;
      j->q_first = r->next;
      if (j->q_first == NULL) j->q_last = NULL;
      j->q_len--;
      int idx = j->free_idx[--j->n_free];
      slot_t *sl = &j->slots[idx];
      sl->rec = r;
      sl->token = ++j->next_token;
      sl->tries = 0;
      send_slot(j, idx);
    }
    pthread_cond_broadcast(&j->space_cv);
    if (done) {
      pthread_mutex_unlock(&j->mu);
      while (done) {
        tb__evrec_t *next = done->next;
        tb__evrec_complete(done, done->status, &done->ack);
        done = next;
      }
      pthread_mutex_lock(&j->mu);
      continue;
    }
    if (j->stopping && j->q_first == NULL && j->n_free == SLOTS) break;
    if (j->n_done == 0 && (j->q_first == NULL || j->n_free == 0)) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 20 * 1000 * 1000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
  }
  pthread_mutex_unlock(&j->mu);
  return NULL;
}

static int js_submit(tb_eventlog_t *log, tb__evrec_t *rec) {
  js_t *j = log->impl;
  rec->deadline_ns = tb_clock_mono_ns() + j->append_timeout_ns;
  pthread_mutex_lock(&j->mu);
  while (j->q_len >= 65536 && !j->stopping) pthread_cond_wait(&j->space_cv, &j->mu);
  if (j->stopping) {
    pthread_mutex_unlock(&j->mu);
    return TB_ECANCELED;
  }
  rec->next = NULL;
  if (j->q_last) j->q_last->next = rec;
  else j->q_first = rec;
  j->q_last = rec;
  j->q_len++;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* ---- Stream state. ---- */

static int stream_info(js_t *j, jsStreamInfo **si) {
  jsErrCode jerr = 0;
  natsStatus s = tb__nats.js_GetStreamInfo(si, j->jsx, j->stream, NULL, &jerr);
  if (s == NATS_OK) return 0;
  if (jerr == JSStreamNotFoundErr || s == NATS_NOT_FOUND) return TB_ENOTFOUND;
  return nats_err(s);
}

static int js_head(tb_eventlog_t *log, uint64_t *head) {
  js_t *j = log->impl;
  jsStreamInfo *si = NULL;
  int rc = stream_info(j, &si);
  if (rc == 0) *head = si->State.LastSeq;
  tb__nats.jsStreamInfo_Destroy(si);
  return rc;
}

/* ---- Cursors. ---- */

static int js_cursor_get(tb_eventlog_t *log, const char *name, uint64_t *off) {
  js_t *j = log->impl;
  kvEntry *e = NULL;
  if (j->kv == NULL) return TB_ENOTFOUND; /* read-only, and no cursor was ever stored */
  natsStatus s = tb__nats.kvStore_Get(&e, j->kv, name);
  if (s == NATS_NOT_FOUND) return TB_ENOTFOUND;
  if (s != NATS_OK) return nats_err(s);
  int rc = parse_u64(tb__nats.kvEntry_ValueString(e), off) ? 0 : TB_ECORRUPT;
  tb__nats.kvEntry_Destroy(e);
  return rc;
}

static int js_cursor_set(tb_eventlog_t *log, const char *name, uint64_t off) {
  js_t *j = log->impl;
  if (log->read_only || j->kv == NULL) return TB_EPERM;
  char v[32];
  snprintf(v, sizeof v, "%llu", (unsigned long long)off);
  natsStatus s = tb__nats.kvStore_PutString(NULL, j->kv, name, v);
  return nats_err(s);
}

static int js_cursor_delete(tb_eventlog_t *log, const char *name) {
  js_t *j = log->impl;
  uint64_t off;
  int rc = js_cursor_get(log, name, &off);
  if (rc) return rc;
  return nats_err(tb__nats.kvStore_Delete(j->kv, name));
}

/* ---- Readers. ---- */

struct tb__evreader {
  js_t *j;
  natsSubscription *sub;
  uint64_t pos; /* next offset to deliver */
  uint64_t until;
  char *type;
  bool repaired;   /* the consumer was re-created at pos after a gap */
  int64_t idle_ns; /* since when fetches have come back empty */
};

static void drop_consumer(tb__evreader_t *r) {
  if (r->sub) {
    tb__nats.natsSubscription_Unsubscribe(r->sub);
    tb__nats.natsSubscription_Destroy(r->sub);
    r->sub = NULL;
  }
}

static int make_consumer(tb__evreader_t *r) {
  js_t *j = r->j;
  char filter[256];
  snprintf(filter, sizeof filter, "%s.>", j->prefix);
  jsSubOptions so;
  tb__nats.jsSubOptions_Init(&so);
  so.Stream = j->stream;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = r->pos;
  so.Config.AckPolicy = js_AckNone;
  so.Config.InactiveThreshold = 60 * TB_NS_PER_SEC;
  so.Config.MemoryStorage = true;
  so.Config.MaxRequestBatch = FETCH_BATCH;
  jsErrCode jerr = 0;
  natsStatus s = tb__nats.js_PullSubscribe(&r->sub, j->jsx, filter, NULL, NULL, &so, &jerr);
  if (s != NATS_OK) {
    r->sub = NULL;
    return jerr == JSStreamNotFoundErr ? TB_ENOTFOUND : TB_EAGAIN;
  }
  return 0;
}

static int js_reader_open(tb_eventlog_t *log, uint64_t from, uint64_t until, const char *type, tb__evreader_t **out,
                          tb_errbuf_t *eb) {
  *out = NULL;
  tb__evreader_t *r = tb_calloc(1, sizeof *r);
  if (r == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  r->j = log->impl;
  r->pos = from ? from : 1;
  r->until = until;
  if (type && (r->type = xstrdup(type)) == NULL) {
    tb_free(r);
    return tb_errf(eb, TB_ENOMEM, "out of memory");
  }
  /* The consumer is made on first use, so a subscription can be opened while the server
   * is briefly away. */
  *out = r;
  return 0;
}

static int js_reader_next(tb__evreader_t *r, size_t max, int timeout_ms, tb_eventlog_cb cb, void *ud, size_t *n,
                          bool *end, tb_errbuf_t *eb) {
  js_t *j = r->j;
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : tb_clock_mono_ns() + (int64_t)timeout_ms * TB_NS_PER_MS;
  size_t delivered = 0;
  int rc = 0;
  *n = 0;
  *end = false;
  while (delivered == 0 && rc == 0) {
    if (r->until && r->pos > r->until) break;
    if (r->sub == NULL && (rc = make_consumer(r)) != 0) {
      if (rc == TB_ENOTFOUND) rc = tb_errf(eb, TB_ENOTFOUND, "stream %s does not exist", j->stream);
      else if (tb_clock_mono_ns() < deadline) {
        tb_clock_sleep_ms(50);
        rc = 0;
        continue;
      }
      break;
    }
    int64_t left = deadline - tb_clock_mono_ns();
    jsFetchRequest req;
    tb__nats.jsFetchRequest_Init(&req);
    size_t want = max - delivered;
    req.Batch = (int)(want < FETCH_BATCH ? want : FETCH_BATCH);
    if (r->until || left <= 0) {
      req.NoWait = true;
      req.Expires = 2 * TB_NS_PER_SEC;
    } else {
      req.Expires = left > TB_NS_PER_SEC ? TB_NS_PER_SEC : left;
      if (req.Expires < TB_NS_PER_MS) req.Expires = TB_NS_PER_MS;
    }
    natsMsgList list = {0};
    natsStatus s = tb__nats.natsSubscription_FetchRequest(&list, r->sub, &req);
    if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND || (s == NATS_OK && list.Count == 0)) {
      tb__nats.natsMsgList_Destroy(&list);
      int64_t now = tb_clock_mono_ns();
      if (r->idle_ns == 0) r->idle_ns = now;
      /* A consumer that lost its server (restart) may just go quiet: make a new one now and then. */
      if (now - r->idle_ns > 3 * TB_NS_PER_SEC) {
        drop_consumer(r);
        r->idle_ns = 0;
      }
      if (now >= deadline) break;
      if (r->until) tb_clock_sleep_ms(10); /* events up to `until` exist: they are on their way */
      continue;
    }
    r->idle_ns = 0;
    if (s != NATS_OK) {
      tb__nats.natsMsgList_Destroy(&list);
      drop_consumer(r); /* the server restarted or the connection dropped: start over at pos */
      if (tb_clock_mono_ns() >= deadline) {
        rc = TB_EAGAIN;
        break;
      }
      tb_clock_sleep_ms(50);
      continue;
    }
    for (int i = 0; i < list.Count && rc == 0; i++) {
      natsMsg *m = list.Msgs[i];
      jsMsgMetaData *meta = NULL;
      if (tb__nats.natsMsg_GetMetaData(&meta, m) != NATS_OK) {
        rc = TB_EAGAIN;
        break;
      }
      uint64_t seq = meta->Sequence.Stream;
      tb__nats.jsMsgMetaData_Destroy(meta);
      if (seq < r->pos) continue; /* seen before the consumer was re-created */
      if (seq > r->pos) {
        if (!r->repaired) { /* maybe lost in transit: ask again from pos */
          r->repaired = true;
          drop_consumer(r);
          break;
        }
        tb_log_error("eventlog", "events missing from the stream", TB_KV_STR("stream", j->stream),
                     TB_KV_UINT("from", r->pos), TB_KV_UINT("to", seq - 1));
        rc = tb_errf(eb, TB_ECORRUPT, "stream %s: events %llu to %llu are missing", j->stream,
                     (unsigned long long)r->pos, (unsigned long long)seq - 1);
        break;
      }
      r->repaired = false;
      if (r->until && seq > r->until) {
        drop_consumer(r);
        break;
      }
      tb_event_t ev;
      if (decode_msg(j, m, seq, &ev) != 0) {
        tb_log_error("eventlog", "corrupt event", TB_KV_STR("stream", j->stream), TB_KV_UINT("offset", seq));
        rc = tb_errf(eb, TB_ECORRUPT, "stream %s: the event at offset %llu is malformed or fails its checksum",
                     j->stream, (unsigned long long)seq);
        break;
      }
      if (r->type == NULL || strcmp(r->type, ev.type) == 0) {
        int cr = cb(&ev, ud);
        if (cr) {
          rc = cr;
          drop_consumer(r); /* the rest of the batch is re-fetched from pos next time */
          break;
        }
        delivered++;
      }
      r->pos = seq + 1;
    }
    tb__nats.natsMsgList_Destroy(&list);
    if (rc == 0 && delivered == 0 && tb_clock_mono_ns() >= deadline && !r->until) break;
  }
  if (r->until && r->pos > r->until) *end = true;
  *n = delivered;
  return rc;
}

static void js_reader_close(tb__evreader_t *r) {
  if (r == NULL) return;
  drop_consumer(r);
  tb_free(r->type);
  tb_free(r);
}

/* ---- Verification. ---- */

static int count_cb(const tb_event_t *ev, void *ud) {
  (*(uint64_t *)ud)++;
  return 0;
}

static int js_verify(tb_eventlog_t *log, tb_errbuf_t *eb) {
  js_t *j = log->impl;
  jsStreamInfo *si = NULL;
  int rc = stream_info(j, &si);
  if (rc) return tb_errf(eb, rc, "stream %s: %s", j->stream, tb_strerror(rc));
  uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, msgs = si->State.Msgs;
  bool lost = si->State.Lost != NULL;
  tb__nats.jsStreamInfo_Destroy(si);
  if (lost) return tb_errf(eb, TB_ECORRUPT, "stream %s: the server reports lost messages", j->stream);
  if (last > 0 && (first != 1 || msgs != last))
    return tb_errf(eb, TB_ECORRUPT, "stream %s holds %llu messages for sequences %llu to %llu: events are missing",
                   j->stream, (unsigned long long)msgs, (unsigned long long)first, (unsigned long long)last);
  uint64_t n = 0;
  rc = tb_eventlog_read(log, 1, NULL, count_cb, &n, eb);
  if (rc == 0 && n < last)
    rc = tb_errf(eb, TB_ECORRUPT, "stream %s: read %llu events of %llu", j->stream, (unsigned long long)n,
                 (unsigned long long)last);
  return rc;
}

/* ---- Open and close. ---- */

static void js_free(js_t *j) {
  if (j->ack_sub) {
    tb__nats.natsSubscription_Unsubscribe(j->ack_sub);
    tb__nats.natsSubscription_Destroy(j->ack_sub);
  }
  tb__nats.kvStore_Destroy(j->kv);
  tb__nats.jsCtx_Destroy(j->jsx);
  if (j->nc) {
    tb__nats.natsConnection_Close(j->nc);
    tb__nats.natsConnection_Destroy(j->nc);
  }
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  pthread_cond_destroy(&j->space_cv);
  tb_free(j->stream);
  tb_free(j->prefix);
  tb_free(j->inbox);
  tb_free(j);
}

static void js_close(tb_eventlog_t *log) {
  js_t *j = log->impl;
  if (j->pub_started) {
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    pthread_cond_broadcast(&j->cv);
    pthread_cond_broadcast(&j->space_cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->pub, NULL);
  }
  js_free(j);
}

static const tb__evlog_ops_t js_ops = {
    .name = "jetstream",
    .submit = js_submit,
    .head = js_head,
    .reader_open = js_reader_open,
    .reader_next = js_reader_next,
    .reader_close = js_reader_close,
    .cursor_get = js_cursor_get,
    .cursor_set = js_cursor_set,
    .cursor_delete = js_cursor_delete,
    .verify = js_verify,
    .close = js_close,
};

static bool name_ok(const char *s, const char *extra) {
  if (s == NULL || *s == '\0' || strlen(s) > 64) return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(extra, *p)))
      return false;
  return true;
}

static int ensure_stream(js_t *j, const tb_eventlog_opts_t *o, tb_errbuf_t *eb) {
  jsStreamInfo *si = NULL;
  char subj[160];
  snprintf(subj, sizeof subj, "%s.>", j->prefix);
  int rc = stream_info(j, &si);
  if (rc == 0) {
    bool ours = false;
    for (int i = 0; i < si->Config->SubjectsLen; i++)
      if (strcmp(si->Config->Subjects[i], subj) == 0) ours = true;
    bool lost = si->State.Lost != NULL;
    tb__nats.jsStreamInfo_Destroy(si);
    if (!ours) return tb_errf(eb, TB_EINVAL, "stream %s exists but does not take subjects %s", j->stream, subj);
    if (lost) return tb_errf(eb, TB_ECORRUPT, "stream %s: the server reports lost messages", j->stream);
    return 0;
  }
  if (rc != TB_ENOTFOUND) return tb_errf(eb, rc, "cannot look up stream %s: %s", j->stream, tb_strerror(rc));
  if (o->read_only) return tb_errf(eb, TB_ENOENT, "there is no event stream %s", j->stream);
  jsStreamConfig cfg;
  tb__nats.jsStreamConfig_Init(&cfg);
  const char *subjects[] = {subj};
  cfg.Name = j->stream;
  cfg.Description = "Tabbify event log";
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.Replicas = o->replicas > 0 ? o->replicas : 1;
  cfg.Duplicates = (o->dedup_window_ms > 0 ? o->dedup_window_ms : 120000) * TB_NS_PER_MS;
  cfg.DenyDelete = true;
  cfg.DenyPurge = true;
  cfg.MaxMsgSize = TB_EVENT_PAYLOAD_MAX + 8192;
  jsErrCode jerr = 0;
  natsStatus s = tb__nats.js_AddStream(NULL, j->jsx, &cfg, NULL, &jerr);
  if (s != NATS_OK && jerr != JSStreamNameExistErr)
    return tb_errf(eb, nats_err(s), "cannot create stream %s: %s", j->stream, tb__nats.nats_GetLastError(NULL));
  return 0;
}

static int ensure_kv(js_t *j, const tb_eventlog_opts_t *o, tb_errbuf_t *eb) {
  char bucket[96];
  snprintf(bucket, sizeof bucket, "%s_cursors", j->stream);
  natsStatus s = tb__nats.js_KeyValue(&j->kv, j->jsx, bucket);
  if (s == NATS_OK) return 0;
  if (o->read_only) return 0; /* no cursors yet; reading needs none */
  kvConfig kc;
  tb__nats.kvConfig_Init(&kc);
  kc.Bucket = bucket;
  kc.History = 1;
  kc.StorageType = js_FileStorage;
  kc.Replicas = o->replicas > 0 ? o->replicas : 1;
  s = tb__nats.js_CreateKeyValue(&j->kv, j->jsx, &kc);
  if (s != NATS_OK) return tb_errf(eb, nats_err(s), "cannot create the cursor bucket %s: %s", bucket,
                                   tb__nats.nats_GetLastError(NULL));
  return 0;
}

int tb__jetstream_open(tb_eventlog_t *log, const tb_eventlog_opts_t *o, tb_errbuf_t *eb) {
  const char *stream = o->stream ? o->stream : DEFAULT_STREAM;
  const char *prefix = o->subject_prefix ? o->subject_prefix : DEFAULT_PREFIX;
  if (o->nats_url == NULL || o->nats_url[0] == '\0') return tb_errf(eb, TB_EINVAL, "the jetstream backend needs a NATS URL");
  if (!name_ok(stream, "_-")) return tb_errf(eb, TB_EINVAL, "stream name \"%s\" must be letters, digits, '_' or '-'", stream);
  if (!name_ok(prefix, "_-.") || prefix[0] == '.' || prefix[strlen(prefix) - 1] == '.' || strstr(prefix, ".."))
    return tb_errf(eb, TB_EINVAL, "subject prefix \"%s\" must be dot-separated tokens of letters, digits, '_' or '-'",
                   prefix);
  int loaded = tb__nats_load(eb);
  if (loaded) return loaded;
  js_t *j = tb_calloc(1, sizeof *j);
  if (j == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  j->log = log;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  pthread_cond_init(&j->space_cv, NULL);
  for (int i = 0; i < SLOTS; i++) j->free_idx[i] = SLOTS - 1 - i;
  j->n_free = SLOTS;
  j->append_timeout_ns = (o->append_timeout_ms > 0 ? o->append_timeout_ms : 30000) * TB_NS_PER_MS;
  int rc = 0;
  natsOptions *no = NULL;
  natsInbox *inbox = NULL;
  char subj[256];
  j->stream = xstrdup(stream);
  j->prefix = xstrdup(prefix);
  if (!j->stream || !j->prefix) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory");
    goto out;
  }
  natsStatus s = tb__nats.natsOptions_Create(&no);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetURL(no, o->nats_url);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetMaxReconnect(no, -1);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetReconnectWait(no, 100);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetReconnectJitter(no, 50, 50);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetTimeout(no, 3000);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetReconnectBufSize(no, 32 * 1024 * 1024);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetPingInterval(no, 2000);
  if (s == NATS_OK) s = tb__nats.natsOptions_SetMaxPingsOut(no, 2);
  if (s != NATS_OK) {
    rc = tb_errf(eb, nats_err(s), "cannot configure the NATS connection: %s", tb__nats.natsStatus_GetText(s));
    goto out;
  }
  s = tb__nats.natsConnection_Connect(&j->nc, no);
  if (s != NATS_OK) {
    rc = tb_errf(eb, s == NATS_NO_SERVER ? TB_ECONNREFUSED : nats_err(s), "cannot connect to NATS at %s: %s",
                 o->nats_url, tb__nats.natsStatus_GetText(s));
    j->nc = NULL;
    goto out;
  }
  jsOptions jo;
  tb__nats.jsOptions_Init(&jo);
  jo.Wait = 5000;
  if ((s = tb__nats.natsConnection_JetStream(&j->jsx, j->nc, &jo)) != NATS_OK) {
    rc = tb_errf(eb, nats_err(s), "cannot use JetStream: %s", tb__nats.natsStatus_GetText(s));
    goto out;
  }
  if ((rc = ensure_stream(j, o, eb)) != 0 || (rc = ensure_kv(j, o, eb)) != 0) goto out;
  if (!o->read_only) {
    if ((s = tb__nats.natsInbox_Create(&inbox)) != NATS_OK || (j->inbox = xstrdup((const char *)inbox)) == NULL) {
      rc = tb_errf(eb, TB_ENOMEM, "cannot make an inbox");
      goto out;
    }
    snprintf(subj, sizeof subj, "%s.*.*", j->inbox);
    s = tb__nats.natsConnection_Subscribe(&j->ack_sub, j->nc, subj, on_ack, j);
    if (s == NATS_OK) s = tb__nats.natsSubscription_SetPendingLimits(j->ack_sub, -1, -1);
    if (s != NATS_OK) {
      rc = tb_errf(eb, nats_err(s), "cannot subscribe to acknowledgements: %s", tb__nats.natsStatus_GetText(s));
      goto out;
    }
    int e = pthread_create(&j->pub, NULL, publisher_main, j);
    if (e) {
      rc = tb_errf(eb, tb_err_from_errno(e), "cannot start the publisher thread");
      goto out;
    }
    j->pub_started = true;
  }
  log->ops = &js_ops;
  log->impl = j;
out:
  tb__nats.natsInbox_Destroy(inbox);
  tb__nats.natsOptions_Destroy(no);
  if (rc) js_free(j);
  return rc;
}
