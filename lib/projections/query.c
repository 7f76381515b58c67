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

int tb_proj_apps_of_tenant(tb_projections_t *p, const char *tenant, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  size_t n = 0;
  void **apps = tb__map_sorted(&p->st.apps, &n);
  json_t *arr = apps ? json_array() : NULL;
  for (size_t i = 0; arr && i < n; i++) {
    tb__app_t *a = apps[i];
    if (strcmp(a->state, "deleted") == 0 || a->tenant == NULL || strcmp(a->tenant, tenant) != 0) continue;
    if (json_array_append_new(arr, tb__app_json(a, false)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  pthread_rwlock_unlock(&p->lock);
  tb_free(apps);
  return answer(arr, out);
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

int tb_proj_supervisors(tb_projections_t *p, const char *tag, const char *runtime, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  size_t n = 0;
  void **sups = tb__map_sorted(&p->st.supervisors, &n);
  json_t *arr = sups ? json_array() : NULL;
  for (size_t i = 0; arr && i < n; i++) {
    tb__supervisor_t *s = sups[i];
    if ((tag && !has(&s->tags, tag)) || (runtime && !has(&s->runtimes, runtime))) continue;
    if (json_array_append_new(arr, tb__supervisor_json(s)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  pthread_rwlock_unlock(&p->lock);
  tb_free(sups);
  return answer(arr, out);
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

int tb_proj_placements(tb_projections_t *p, const tb_uuid_t *supervisor, json_t **out) {
  *out = NULL;
  pthread_rwlock_rdlock(&p->lock);
  size_t n = 0;
  void **apps = tb__map_sorted(&p->st.apps, &n);
  json_t *arr = apps ? json_array() : NULL;
  for (size_t i = 0; arr && i < n; i++) {
    tb__app_t *a = apps[i];
    tb__deployment_t *d = tb__map_get(&p->st.deployments, &a->deployment);
    if (d == NULL || memcmp(d->supervisor.b, supervisor->b, 16) != 0 || strcmp(a->state, "deleted") == 0) continue;
    const tb__version_t *v = NULL;
    for (size_t k = 0; k < a->n_versions; k++)
      if (a->versions[k].version == d->version) v = &a->versions[k];
    tb__runner_t *r = tb__map_get(&p->st.runners, &a->runner);
    json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:o}", "app", tb__app_json(a, false), "name",
                          a->name ? a->name : "", "tenant", a->tenant ? a->tenant : "", "app_state", a->state,
                          "deployment", tb__deployment_json(d), "version", v ? tb__version_json(v) : json_null(),
                          "runner", r ? tb__runner_json(r) : json_null());
    if (o == NULL || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  pthread_rwlock_unlock(&p->lock);
  tb_free(apps);
  return answer(arr, out);
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
