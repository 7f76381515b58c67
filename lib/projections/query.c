/*
 * query.c — the questions the node asks the read side (include/tb/projections.h).
 *
 * Each query takes the read lock, builds a fresh JSON answer from the records and lets
 * go; callers never hold pointers into the state.
 */
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"

static int answer(json_t *j, json_t **out) {
  *out = j;
  return j ? 0 : TB_ENOMEM;
}

/*
 * The list queries: under the read lock, the records of `map` in key order (creation
 * order for v7 ids), each turned into JSON by `item`, which returns NULL and sets *skip
 * for a record that does not belong in the answer (NULL without *skip: out of memory).
 */
typedef json_t *(*item_fn)(const tb__state_t *st, const void *rec, const void *ud, bool *skip);

static int list(tb_projections_t *p, const tb__map_t *(*map)(const tb__state_t *), item_fn item, const void *ud,
                json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  size_t n = 0;
  void **recs = tb__map_sorted(map(&p->st), &n);
  json_t *arr = recs ? json_array() : NULL;
  for (size_t i = 0; arr && i < n; i++) {
    bool skip = false;
    json_t *j = item(&p->st, recs[i], ud, &skip);
    if (skip) continue;
    if (j == NULL || json_array_append_new(arr, j) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  pthread_rwlock_unlock(&p->lock);
  tb_free(recs);
  return answer(arr, out);
}

static const tb__map_t *apps_map(const tb__state_t *st) { return &st->apps; }
static const tb__map_t *sups_map(const tb__state_t *st) { return &st->supervisors; }

static json_t *app_of_tenant(const tb__state_t *st, const void *rec, const void *tenant, bool *skip) {
  (void)st;
  const tb__app_t *a = rec;
  *skip = strcmp(a->state, "deleted") == 0 || a->tenant == NULL || strcmp(a->tenant, tenant) != 0;
  return *skip ? NULL : tb__app_json(a, false);
}

int tb_proj_apps_of_tenant(tb_projections_t *p, const char *tenant, json_t **out) {
  return list(p, apps_map, app_of_tenant, tenant, out);
}

int tb_proj_app(tb_projections_t *p, const tb_uuid_t *id, json_t **out) {
  *out = NULL;
  int rc = 0;
  pthread_rwlock_rdlock(&p->lock);
  tb__app_t *a = tb__map_get(&p->st.apps, id);
  if (a == NULL) {
    rc = TB_ENOTFOUND;
    goto out;
  }
  json_t *j = tb__app_json(a, true);
  tb__deployment_t *d = tb__map_get(&p->st.deployments, &a->deployment);
  tb__runner_t *r = tb__map_get(&p->st.runners, &a->runner);
  json_t *secrets = json_array();
  for (size_t i = 0; secrets && i < a->n_secrets; i++)
    if (json_array_append_new(secrets, tb__secret_json(&a->secrets[i], false)) != 0) {
      json_decref(secrets);
      secrets = NULL;
    }
  json_t *dj = d ? tb__deployment_json(d) : json_null(), *rj = r ? tb__runner_json(r) : json_null();
  json_t *recent = json_array();
  for (size_t i = a->n_deps; recent && i-- > 0;) {
    tb__deployment_t *x = tb__map_get(&p->st.deployments, &a->deps[i]);
    if (x && json_array_append_new(recent, tb__deployment_json(x)) != 0) {
      json_decref(recent);
      recent = NULL;
    }
  }
  if (j == NULL || secrets == NULL || dj == NULL || rj == NULL || recent == NULL) {
    json_decref(j);
    json_decref(secrets);
    json_decref(dj);
    json_decref(rj);
    json_decref(recent);
    rc = TB_ENOMEM;
    goto out;
  }
  /* json_object_set_new takes the value even when it fails. */
  int bad = json_object_set_new(j, "secrets", secrets);
  bad |= json_object_set_new(j, "current_deployment", dj);
  bad |= json_object_set_new(j, "current_runner", rj);
  bad |= json_object_set_new(j, "deployments", recent);
  json_object_del(j, "deployment_history");
  json_object_del(j, "runner_history");
  if (bad) {
    json_decref(j);
    rc = TB_ENOMEM;
    goto out;
  }
  *out = j;
out:
  pthread_rwlock_unlock(&p->lock);
  return rc;
}

int tb_proj_deployment(tb_projections_t *p, const tb_uuid_t *id, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  tb__deployment_t *d = tb__map_get(&p->st.deployments, id);
  json_t *j = d ? tb__deployment_json(d) : NULL;
  pthread_rwlock_unlock(&p->lock);
  if (d == NULL) return TB_ENOTFOUND;
  return answer(j, out);
}

static bool has(const tb_event_strv_t *v, const char *s) {
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->v[i], s) == 0) return true;
  return false;
}

typedef struct sup_filter {
  const char *tag, *runtime;
} sup_filter_t;

static json_t *sup_item(const tb__state_t *st, const void *rec, const void *ud, bool *skip) {
  (void)st;
  const tb__supervisor_t *s = rec;
  const sup_filter_t *f = ud;
  *skip = (f->tag && !has(&s->tags, f->tag)) || (f->runtime && !has(&s->runtimes, f->runtime));
  return *skip ? NULL : tb__supervisor_json(s);
}

int tb_proj_supervisors(tb_projections_t *p, const char *tag, const char *runtime, json_t **out) {
  sup_filter_t f = {tag, runtime};
  return list(p, sups_map, sup_item, &f, out);
}

int tb_proj_runner_of(tb_projections_t *p, const tb_uuid_t *app, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  tb__app_t *a = tb__map_get(&p->st.apps, app);
  tb__runner_t *r = a ? tb__map_get(&p->st.runners, &a->runner) : NULL;
  json_t *j = r && strcmp(r->state, "running") == 0 ? tb__runner_json(r) : NULL;
  bool found = r && strcmp(r->state, "running") == 0;
  pthread_rwlock_unlock(&p->lock);
  if (!found) return TB_ENOTFOUND;
  return answer(j, out);
}

static json_t *placement(const tb__state_t *st, const void *rec, const void *supervisor, bool *skip) {
  const tb__app_t *a = rec;
  const tb__deployment_t *d = tb__map_get(&st->deployments, &a->deployment);
  *skip = d == NULL || memcmp(d->supervisor.b, ((const tb_uuid_t *)supervisor)->b, 16) != 0 ||
          strcmp(a->state, "deleted") == 0;
  if (*skip) return NULL;
  const tb__version_t *v = NULL;
  for (size_t k = 0; k < a->n_versions; k++)
    if (a->versions[k].version == d->version) v = &a->versions[k];
  const tb__runner_t *r = tb__map_get(&st->runners, &a->runner);
  return json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:o}", "app", tb__app_json(a, false), "name", a->name ? a->name : "",
                   "tenant", a->tenant ? a->tenant : "", "app_state", a->state, "deployment", tb__deployment_json(d),
                   "version", v ? tb__version_json(v) : json_null(), "runner", r ? tb__runner_json(r) : json_null());
}

int tb_proj_placements(tb_projections_t *p, const tb_uuid_t *supervisor, json_t **out) {
  return list(p, apps_map, placement, supervisor, out);
}

int tb_proj_secrets_of(tb_projections_t *p, const tb_uuid_t *app, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  tb__app_t *a = tb__map_get(&p->st.apps, app);
  json_t *arr = a ? json_array() : NULL;
  for (size_t i = 0; arr && i < a->n_secrets; i++)
    if (json_array_append_new(arr, tb__secret_json(&a->secrets[i], false)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  pthread_rwlock_unlock(&p->lock);
  if (a == NULL) return TB_ENOTFOUND;
  return answer(arr, out);
}

int tb_proj_secret(tb_projections_t *p, const tb_uuid_t *app, const char *name, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  tb__app_t *a = tb__map_get(&p->st.apps, app);
  const tb__secret_t *s = NULL;
  for (size_t i = 0; a && i < a->n_secrets; i++)
    if (strcmp(a->secrets[i].name, name) == 0) s = &a->secrets[i];
  json_t *j = s ? tb__secret_json(s, true) : NULL;
  pthread_rwlock_unlock(&p->lock);
  if (s == NULL) return TB_ENOTFOUND;
  return answer(j, out);
}

bool tb_proj_token_revoked(tb_projections_t *p, const tb_uuid_t *id) {
  pthread_rwlock_rdlock(&p->lock);
  tb__token_t *t = tb__map_get(&p->st.tokens, id);
  bool revoked = t && t->revoked_at != 0;
  pthread_rwlock_unlock(&p->lock);
  return revoked;
}
