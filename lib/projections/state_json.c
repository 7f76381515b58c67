/*
 * state_json.c — the state as JSON (projections_int.h).
 *
 * One function per record turns it into a JSON object; the same objects make up the
 * canonical dump (every field of every record: two states are equal when their dumps
 * are) and the answers to queries. Absent strings and nil UUIDs are null; lists are
 * always arrays. Snapshots use the binary encoding of state_bin.c instead.
 */
#include <stdarg.h>
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"

/* ---- To JSON. ---- */

static json_t *jstr(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *juuid(const tb_uuid_t *u) {
  if (tb_uuid_is_nil(u)) return json_null();
  char t[TB_UUID_STR_LEN + 1];
  tb_uuid_format(u, t);
  return json_string(t);
}

static json_t *jstrv(const tb_event_strv_t *v) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < v->n; i++)
    if (json_array_append_new(a, json_string(v->v[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static json_t *jint_or_null(bool has, int64_t v) { return has ? json_integer(v) : json_null(); }

/* Builds an object from (key, value) pairs ending with NULL; takes every value. */
static json_t *obj(const char *k, ...) {
  json_t *o = json_object();
  bool ok = o != NULL;
  va_list ap;
  va_start(ap, k);
  for (; k; k = va_arg(ap, const char *)) {
    json_t *v = va_arg(ap, json_t *);
    if (v == NULL) ok = false;
    else if (!ok) json_decref(v);
    else if (json_object_set_new(o, k, v) != 0) ok = false; /* which took v */
  }
  va_end(ap);
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *tb__version_json(const tb__version_t *v) {
  return obj("version", json_integer(v->version), "digest", jstr(v->digest), "size", json_integer(v->size), "artifact",
             jstr(v->artifact), "runtime", jstr(v->runtime), "uploaded_at", json_integer(v->uploaded_at),
             "uploaded_by", jstr(v->uploaded_by), NULL);
}

json_t *tb__secret_json(const tb__secret_t *s, bool sealed) {
  if (!sealed)
    return obj("name", jstr(s->name), "version", json_integer(s->version), "key_id", jstr(s->key_id), "updated_at",
               json_integer(s->updated_at), "updated_by", jstr(s->updated_by), NULL);
  return obj("name", jstr(s->name), "version", json_integer(s->version), "alg", jstr(s->alg), "key_id",
             jstr(s->key_id), "nonce", jstr(s->nonce), "ciphertext", jstr(s->ciphertext), "updated_at",
             json_integer(s->updated_at), "updated_by", jstr(s->updated_by), NULL);
}

static json_t *juuids(const tb_uuid_t *v, size_t n) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++)
    if (json_array_append_new(arr, juuid(&v[i])) != 0) {
      json_decref(arr);
      return NULL;
    }
  return arr;
}

json_t *tb__app_json(const tb__app_t *a, bool full) {
  json_t *o = obj("app", juuid(&a->id), "tenant", jstr(a->tenant), "name", jstr(a->name), "runtime", jstr(a->runtime),
                  "state", jstr(a->state), "created_at", json_integer(a->created_at), "created_by", jstr(a->created_by),
                  "updated_at", json_integer(a->updated_at), "deployment", juuid(&a->deployment), "runner",
                  juuid(&a->runner), "latest_version",
                  a->n_versions ? json_integer(a->versions[a->n_versions - 1].version) : json_null(), NULL);
  if (o == NULL || !full) return o;
  if (json_object_set_new(o, "deployment_history", juuids(a->deps, a->n_deps)) != 0 ||
      json_object_set_new(o, "runner_history", juuids(a->runs, a->n_runs)) != 0) {
    json_decref(o);
    return NULL;
  }
  json_t *vs = json_array(), *ss = json_array();
  bool ok = vs && ss;
  for (size_t i = 0; ok && i < a->n_versions; i++) ok = json_array_append_new(vs, tb__version_json(&a->versions[i])) == 0;
  for (size_t i = 0; ok && i < a->n_secrets; i++)
    ok = json_array_append_new(ss, tb__secret_json(&a->secrets[i], true)) == 0;
  if (!ok || json_object_set_new(o, "versions", vs) != 0) {
    json_decref(ss);
    json_decref(o);
    return NULL;
  }
  if (json_object_set_new(o, "secrets", ss) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *tb__deployment_json(const tb__deployment_t *d) {
  return obj("deployment", juuid(&d->id), "app", juuid(&d->app), "version", json_integer(d->version), "rollback_from",
             jint_or_null(d->rollback_from != 0, d->rollback_from), "state", jstr(d->state), "runtime", jstr(d->runtime),
             "target", jstr(d->target), "tags", jstrv(&d->tags), "supervisor", juuid(&d->supervisor), "runner",
             juuid(&d->runner), "requested_at", json_integer(d->requested_at), "requested_by", jstr(d->requested_by),
             "updated_at", json_integer(d->updated_at), "reason", jstr(d->reason), NULL);
}

json_t *tb__supervisor_json(const tb__supervisor_t *s) {
  return obj("supervisor", juuid(&s->id), "name", jstr(s->name), "hostname", jstr(s->hostname), "address",
             jstr(s->address), "version", jstr(s->version), "tags", jstrv(&s->tags), "runtimes", jstrv(&s->runtimes),
             "state", jstr(s->state), "registered_at", json_integer(s->registered_at), "last_seen",
             json_integer(s->last_seen), "runners", json_integer(s->runners), "cpu_milli", json_integer(s->cpu_milli),
             "mem_free_mb", json_integer(s->mem_free_mb), NULL);
}

json_t *tb__runner_json(const tb__runner_t *r) {
  return obj("runner", juuid(&r->id), "app", juuid(&r->app), "deployment", juuid(&r->deployment), "supervisor",
             juuid(&r->supervisor), "address", jstr(r->address), "pid", json_integer(r->pid), "state", jstr(r->state),
             "started_at", json_integer(r->started_at), "ended_at", jint_or_null(r->ended_at != 0, r->ended_at),
             "exit_code", jint_or_null(r->has_exit_code, r->exit_code), "signal",
             jint_or_null(r->has_signal, r->signal), "reason", jstr(r->reason), NULL);
}

json_t *tb__token_json(const tb__token_t *t) {
  return obj("token", juuid(&t->id), "tenant", jstr(t->tenant), "subject", jstr(t->subject), "scopes",
             jstrv(&t->scopes), "issued_at", json_integer(t->issued_at), "expires_at", json_integer(t->expires_at),
             "revoked_at", jint_or_null(t->revoked_at != 0, t->revoked_at), "reason", jstr(t->reason), NULL);
}

/* A map as {"<uuid>": record, ...}. */
static json_t *map_json(const tb__map_t *m, json_t *(*fn)(const void *)) {
  json_t *o = json_object();
  if (o == NULL) return NULL;
  for (size_t i = 0; i < m->cap; i++) {
    if (m->vals[i] == NULL) continue;
    char k[TB_UUID_STR_LEN + 1];
    tb_uuid_format(&m->keys[i], k);
    if (json_object_set_new(o, k, fn(m->vals[i])) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

static json_t *app_full(const void *p) { return tb__app_json(p, true); }
static json_t *dep_j(const void *p) { return tb__deployment_json(p); }
static json_t *sup_j(const void *p) { return tb__supervisor_json(p); }
static json_t *run_j(const void *p) { return tb__runner_json(p); }
static json_t *tok_j(const void *p) { return tb__token_json(p); }

json_t *tb__state_to_json(const tb__state_t *st) {
  return obj("offset", json_integer((json_int_t)st->offset), "last_id", juuid(&st->last_id), "skipped",
             json_integer((json_int_t)st->skipped), "apps", map_json(&st->apps, app_full), "deployments",
             map_json(&st->deployments, dep_j), "supervisors", map_json(&st->supervisors, sup_j), "runners",
             map_json(&st->runners, run_j), "tokens", map_json(&st->tokens, tok_j), NULL);
}
