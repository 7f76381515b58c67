/*
 * state_bin.c — the state as a compact binary record, the body of a snapshot.
 *
 * JSON would do (state_json.c makes the canonical dump), but building and parsing a
 * jansson tree for a state of a few hundred thousand records costs seconds, which is what
 * a snapshot is meant to save. This encoding writes each record's fields in a fixed order:
 * integers as 8 bytes little-endian, UUIDs as their 16 bytes, strings as a 4-byte length
 * (0xffffffff for absent) and their bytes, lists as a 4-byte count and their elements.
 * Decoding checks every length against what is left and every state name against the
 * known ones; anything else is TB_ECORRUPT. The snapshot file hashes the whole body, so
 * a decoding error means a bug or a format change, and FORMAT in snapshot.c changes with
 * any change here.
 */
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"

/* ---- Encoding. ---- */

typedef struct enc {
  tb_buf_t *b;
  int rc;
} enc_t;

static void put(enc_t *e, const void *p, size_t n) {
  if (e->rc == 0) e->rc = tb_buf_append(e->b, p, n);
}
static void put_i64(enc_t *e, int64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)v >> (8 * i));
  put(e, b, 8);
}
static void put_u32(enc_t *e, uint32_t v) {
  uint8_t b[4];
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
  put(e, b, 4);
}
static void put_uuid(enc_t *e, const tb_uuid_t *u) { put(e, u->b, 16); }
static void put_str(enc_t *e, const char *s) {
  if (s == NULL) {
    put_u32(e, 0xffffffffu);
    return;
  }
  size_t n = strlen(s);
  put_u32(e, (uint32_t)n);
  put(e, s, n);
}
static void put_strv(enc_t *e, const tb_event_strv_t *v) {
  put_u32(e, (uint32_t)v->n);
  for (size_t i = 0; i < v->n; i++) put_str(e, v->v[i]);
}
static void put_uuids(enc_t *e, const tb_uuid_t *v, size_t n) {
  put_u32(e, (uint32_t)n);
  put(e, v, n * sizeof *v);
}

static void enc_app(enc_t *e, const tb__app_t *a) {
  put_uuid(e, &a->id);
  put_str(e, a->tenant);
  put_str(e, a->name);
  put_str(e, a->runtime);
  put_str(e, a->created_by);
  put_i64(e, a->created_at);
  put_i64(e, a->updated_at);
  put_str(e, a->state);
  put_uuid(e, &a->deployment);
  put_uuid(e, &a->runner);
  put_u32(e, (uint32_t)a->n_versions);
  for (size_t i = 0; i < a->n_versions; i++) {
    const tb__version_t *v = &a->versions[i];
    put_i64(e, v->version);
    put_str(e, v->digest);
    put_str(e, v->artifact);
    put_str(e, v->runtime);
    put_str(e, v->uploaded_by);
    put_i64(e, v->size);
    put_i64(e, v->uploaded_at);
  }
  put_u32(e, (uint32_t)a->n_secrets);
  for (size_t i = 0; i < a->n_secrets; i++) {
    const tb__secret_t *s = &a->secrets[i];
    put_str(e, s->name);
    put_str(e, s->alg);
    put_str(e, s->key_id);
    put_str(e, s->nonce);
    put_str(e, s->ciphertext);
    put_str(e, s->updated_by);
    put_i64(e, s->version);
    put_i64(e, s->updated_at);
  }
  put_uuids(e, a->deps, a->n_deps);
  put_uuids(e, a->runs, a->n_runs);
}

static void enc_dep(enc_t *e, const tb__deployment_t *d) {
  put_uuid(e, &d->id);
  put_uuid(e, &d->app);
  put_uuid(e, &d->supervisor);
  put_uuid(e, &d->runner);
  put_i64(e, d->version);
  put_i64(e, d->rollback_from);
  put_str(e, d->state);
  put_str(e, d->runtime);
  put_str(e, d->target);
  put_str(e, d->requested_by);
  put_str(e, d->reason);
  put_strv(e, &d->tags);
  put_i64(e, d->requested_at);
  put_i64(e, d->updated_at);
}

static void enc_sup(enc_t *e, const tb__supervisor_t *s) {
  put_uuid(e, &s->id);
  put_str(e, s->name);
  put_str(e, s->hostname);
  put_str(e, s->address);
  put_str(e, s->version);
  put_strv(e, &s->tags);
  put_strv(e, &s->runtimes);
  put_str(e, s->state);
  put_i64(e, s->registered_at);
  put_i64(e, s->last_seen);
  put_i64(e, s->runners);
  put_i64(e, s->cpu_milli);
  put_i64(e, s->mem_free_mb);
}

static void enc_run(enc_t *e, const tb__runner_t *r) {
  put_uuid(e, &r->id);
  put_uuid(e, &r->app);
  put_uuid(e, &r->deployment);
  put_uuid(e, &r->supervisor);
  put_str(e, r->address);
  put_str(e, r->reason);
  put_str(e, r->state);
  put_i64(e, r->pid);
  put_i64(e, r->started_at);
  put_i64(e, r->ended_at);
  put_i64(e, r->exit_code);
  put_i64(e, r->signal);
  put_u32(e, (r->has_exit_code ? 1u : 0u) | (r->has_signal ? 2u : 0u));
}

static void enc_tok(enc_t *e, const tb__token_t *t) {
  put_uuid(e, &t->id);
  put_str(e, t->tenant);
  put_str(e, t->subject);
  put_str(e, t->reason);
  put_strv(e, &t->scopes);
  put_i64(e, t->issued_at);
  put_i64(e, t->expires_at);
  put_i64(e, t->revoked_at);
}

static void enc_map(enc_t *e, const tb__map_t *m, void (*fn)(enc_t *, const void *)) {
  put_u32(e, (uint32_t)m->len);
  for (size_t i = 0; i < m->cap; i++)
    if (m->vals[i]) fn(e, m->vals[i]);
}

static void enc_app_v(enc_t *e, const void *p) { enc_app(e, p); }
static void enc_dep_v(enc_t *e, const void *p) { enc_dep(e, p); }
static void enc_sup_v(enc_t *e, const void *p) { enc_sup(e, p); }
static void enc_run_v(enc_t *e, const void *p) { enc_run(e, p); }
static void enc_tok_v(enc_t *e, const void *p) { enc_tok(e, p); }

int tb__state_encode(const tb__state_t *st, tb_buf_t *out) {
  enc_t e = {out, 0};
  put_i64(&e, (int64_t)st->offset);
  put_uuid(&e, &st->last_id);
  put_i64(&e, (int64_t)st->skipped);
  enc_map(&e, &st->apps, enc_app_v);
  enc_map(&e, &st->deployments, enc_dep_v);
  enc_map(&e, &st->supervisors, enc_sup_v);
  enc_map(&e, &st->runners, enc_run_v);
  enc_map(&e, &st->tokens, enc_tok_v);
  return e.rc;
}

/* ---- Decoding. ---- */

typedef struct dec {
  const uint8_t *p, *end;
  int rc; /* the first error; every read after it returns zeros */
} dec_t;

static bool take(dec_t *d, void *out, size_t n) {
  if (d->rc || (size_t)(d->end - d->p) < n) {
    if (d->rc == 0) d->rc = TB_ECORRUPT;
    memset(out, 0, n);
    return false;
  }
  memcpy(out, d->p, n);
  d->p += n;
  return true;
}
static int64_t get_i64(dec_t *d) {
  uint8_t b[8];
  uint64_t v = 0;
  if (take(d, b, 8))
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
  return (int64_t)v;
}
static uint32_t get_u32(dec_t *d) {
  uint8_t b[4];
  uint32_t v = 0;
  if (take(d, b, 4))
    for (int i = 0; i < 4; i++) v |= (uint32_t)b[i] << (8 * i);
  return v;
}
static tb_uuid_t get_uuid(dec_t *d) {
  tb_uuid_t u;
  take(d, u.b, 16);
  return u;
}
static char *get_str(dec_t *d) {
  uint32_t n = get_u32(d);
  if (d->rc || n == 0xffffffffu) return NULL;
  if ((size_t)(d->end - d->p) < n || memchr(d->p, 0, n)) {
    d->rc = TB_ECORRUPT;
    return NULL;
  }
  char *s = tb_strndup((const char *)d->p, n);
  if (s == NULL) d->rc = TB_ENOMEM;
  d->p += n;
  return s;
}
/* A count of elements of at least `min` bytes each: bounded by what is left. */
static size_t get_count(dec_t *d, size_t min) {
  uint32_t n = get_u32(d);
  if (d->rc == 0 && (size_t)n > (size_t)(d->end - d->p) / min) d->rc = TB_ECORRUPT;
  return d->rc ? 0 : n;
}
static tb_event_strv_t get_strv(dec_t *d) {
  tb_event_strv_t v = {0};
  size_t n = get_count(d, 4);
  if (n == 0) return v;
  if ((v.v = tb_calloc(n, sizeof *v.v)) == NULL) {
    d->rc = TB_ENOMEM;
    return v;
  }
  for (; v.n < n && d->rc == 0; v.n++) v.v[v.n] = get_str(d);
  return v;
}
static tb_uuid_t *get_uuids(dec_t *d, size_t *n) {
  *n = get_count(d, 16);
  if (*n == 0) return NULL;
  tb_uuid_t *v = tb_calloc(*n, sizeof *v);
  if (v == NULL) {
    d->rc = TB_ENOMEM;
    *n = 0;
    return NULL;
  }
  take(d, v, *n * sizeof *v);
  return v;
}
static const char *get_state(dec_t *d) {
  char *s = get_str(d);
  const char *known = s ? tb__state_name(s) : NULL;
  if (known == NULL && d->rc == 0) d->rc = TB_ECORRUPT;
  tb_free(s);
  return known ? known : "registered";
}

static void *dec_app(dec_t *d) {
  tb__app_t *a = tb_calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  a->id = get_uuid(d);
  a->tenant = get_str(d);
  a->name = get_str(d);
  a->runtime = get_str(d);
  a->created_by = get_str(d);
  a->created_at = get_i64(d);
  a->updated_at = get_i64(d);
  a->state = get_state(d);
  a->deployment = get_uuid(d);
  a->runner = get_uuid(d);
  size_t nv = get_count(d, 8);
  if (nv && (a->versions = tb_calloc(nv, sizeof *a->versions)) == NULL) d->rc = TB_ENOMEM;
  for (; a->n_versions < nv && d->rc == 0; a->n_versions++) {
    tb__version_t *v = &a->versions[a->n_versions];
    v->version = get_i64(d);
    v->digest = get_str(d);
    v->artifact = get_str(d);
    v->runtime = get_str(d);
    v->uploaded_by = get_str(d);
    v->size = get_i64(d);
    v->uploaded_at = get_i64(d);
  }
  size_t ns = get_count(d, 8);
  if (ns && (a->secrets = tb_calloc(ns, sizeof *a->secrets)) == NULL) d->rc = TB_ENOMEM;
  for (; a->n_secrets < ns && d->rc == 0; a->n_secrets++) {
    tb__secret_t *s = &a->secrets[a->n_secrets];
    s->name = get_str(d);
    s->alg = get_str(d);
    s->key_id = get_str(d);
    s->nonce = get_str(d);
    s->ciphertext = get_str(d);
    s->updated_by = get_str(d);
    s->version = get_i64(d);
    s->updated_at = get_i64(d);
    if (s->name == NULL && d->rc == 0) d->rc = TB_ECORRUPT;
  }
  a->deps = get_uuids(d, &a->n_deps);
  a->runs = get_uuids(d, &a->n_runs);
  return a;
}

static void *dec_dep(dec_t *d) {
  tb__deployment_t *x = tb_calloc(1, sizeof *x);
  if (x == NULL) return NULL;
  x->id = get_uuid(d);
  x->app = get_uuid(d);
  x->supervisor = get_uuid(d);
  x->runner = get_uuid(d);
  x->version = get_i64(d);
  x->rollback_from = get_i64(d);
  x->state = get_state(d);
  x->runtime = get_str(d);
  x->target = get_str(d);
  x->requested_by = get_str(d);
  x->reason = get_str(d);
  x->tags = get_strv(d);
  x->requested_at = get_i64(d);
  x->updated_at = get_i64(d);
  return x;
}

static void *dec_sup(dec_t *d) {
  tb__supervisor_t *s = tb_calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->id = get_uuid(d);
  s->name = get_str(d);
  s->hostname = get_str(d);
  s->address = get_str(d);
  s->version = get_str(d);
  s->tags = get_strv(d);
  s->runtimes = get_strv(d);
  s->state = get_state(d);
  s->registered_at = get_i64(d);
  s->last_seen = get_i64(d);
  s->runners = get_i64(d);
  s->cpu_milli = get_i64(d);
  s->mem_free_mb = get_i64(d);
  return s;
}

static void *dec_run(dec_t *d) {
  tb__runner_t *r = tb_calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->id = get_uuid(d);
  r->app = get_uuid(d);
  r->deployment = get_uuid(d);
  r->supervisor = get_uuid(d);
  r->address = get_str(d);
  r->reason = get_str(d);
  r->state = get_state(d);
  r->pid = get_i64(d);
  r->started_at = get_i64(d);
  r->ended_at = get_i64(d);
  r->exit_code = get_i64(d);
  r->signal = get_i64(d);
  uint32_t f = get_u32(d);
  r->has_exit_code = f & 1;
  r->has_signal = f & 2;
  return r;
}

static void *dec_tok(dec_t *d) {
  tb__token_t *t = tb_calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->id = get_uuid(d);
  t->tenant = get_str(d);
  t->subject = get_str(d);
  t->reason = get_str(d);
  t->scopes = get_strv(d);
  t->issued_at = get_i64(d);
  t->expires_at = get_i64(d);
  t->revoked_at = get_i64(d);
  return t;
}

/* Records of one map; each record starts with its own UUID key. */
static void dec_map(dec_t *d, tb__map_t *m, void *(*fn)(dec_t *), void (*free_fn)(void *)) {
  size_t n = get_count(d, 16);
  for (size_t i = 0; i < n && d->rc == 0; i++) {
    void *rec = fn(d);
    if (rec == NULL) {
      d->rc = TB_ENOMEM;
      return;
    }
    const tb_uuid_t *id = rec; /* every record type begins with its id */
    if (d->rc == 0 && tb__map_get(m, id)) d->rc = TB_ECORRUPT;
    if (d->rc || tb__map_put(m, id, rec) != 0) {
      free_fn(rec);
      if (d->rc == 0) d->rc = TB_ENOMEM;
    }
  }
}

static void app_free_v(void *p) { tb__app_free(p); }
static void dep_free_v(void *p) { tb__deployment_free(p); }
static void sup_free_v(void *p) { tb__supervisor_free(p); }
static void run_free_v(void *p) { tb__runner_free(p); }
static void tok_free_v(void *p) { tb__token_free(p); }

int tb__state_decode(tb__state_t *st, const void *data, size_t len, tb_errbuf_t *eb) {
  dec_t d = {data, (const uint8_t *)data + len, 0};
  st->offset = (uint64_t)get_i64(&d);
  st->last_id = get_uuid(&d);
  st->skipped = (uint64_t)get_i64(&d);
  dec_map(&d, &st->apps, dec_app, app_free_v);
  dec_map(&d, &st->deployments, dec_dep, dep_free_v);
  dec_map(&d, &st->supervisors, dec_sup, sup_free_v);
  dec_map(&d, &st->runners, dec_run, run_free_v);
  dec_map(&d, &st->tokens, dec_tok, tok_free_v);
  if (d.rc == 0 && d.p != d.end) d.rc = TB_ECORRUPT;
  if (d.rc == TB_ENOMEM) return tb_errf(eb, TB_ENOMEM, "out of memory");
  if (d.rc) return tb_errf(eb, d.rc, "the snapshot body does not decode at byte %zu", (size_t)(d.p - (const uint8_t *)data));
  return 0;
}
