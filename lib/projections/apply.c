/*
 * apply.c — what each event does to the state: the only code that changes it.
 *
 * One handler per event type of the catalogue (docs/internals/EVENTS.md). A handler
 * first reads and checks every field it needs into locals; with a NULL state it stops
 * there, which is how tb_projections_check_event validates a payload for producers.
 * Then it checks the event against the state (an app must exist before its version can
 * be uploaded, a version before it can be deployed...) and only then changes anything,
 * so a refused event leaves the state exactly as it was. Handlers use the event's own
 * timestamp and actor, never the clock, so every replay builds the same state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"

/* The field list of a handler; v[i] is the value of keys[i]. */
typedef int (*handler_fn)(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb);

typedef struct handler {
  const char *type;
  uint32_t schema; /* the newest payload version this program understands */
  const char *const *keys;
  size_t nkeys;
  handler_fn fn;
} handler_t;

static int field_err(tb_errbuf_t *eb, const tb_event_t *ev, const char *key, int rc, const char *want) {
  return tb_errf(eb, rc == TB_ENOMEM ? TB_ENOMEM : TB_EINVAL, "%s: field \"%s\" %s", ev->type, key,
                 rc == TB_ENOENT ? "is required" : want);
}

static int refuse(tb_errbuf_t *eb, const tb_event_t *ev, const char *why) {
  return tb_errf(eb, TB_EINVAL, "%s: %s", ev->type, why);
}

/* Field readers: required (req) or optional (absent and null leave the default). */
static int uuid_req(const tb_event_t *ev, const tb_event_field_t *v, const char *k, tb_uuid_t *out, tb_errbuf_t *eb) {
  int rc = tb_event_field_uuid(v, out);
  return rc ? field_err(eb, ev, k, rc, "must be a UUID") : 0;
}
static int uuid_opt(const tb_event_t *ev, const tb_event_field_t *v, const char *k, tb_uuid_t *out, tb_errbuf_t *eb) {
  if (v->kind == 0 || v->kind == 'z') return 0;
  return uuid_req(ev, v, k, out, eb);
}
static int str_req(const tb_event_t *ev, const tb_event_field_t *v, const char *k, char **out, tb_errbuf_t *eb) {
  int rc = tb_event_field_str(v, out);
  if (rc == 0 && **out == '\0') {
    tb_free(*out);
    *out = NULL;
    rc = TB_EINVAL;
  }
  return rc ? field_err(eb, ev, k, rc, "must be a non-empty string") : 0;
}
static int str_opt(const tb_event_t *ev, const tb_event_field_t *v, const char *k, char **out, tb_errbuf_t *eb) {
  if (v->kind == 0 || v->kind == 'z') return 0;
  int rc = tb_event_field_str(v, out);
  return rc ? field_err(eb, ev, k, rc, "must be a string") : 0;
}
static int int_req(const tb_event_t *ev, const tb_event_field_t *v, const char *k, int64_t *out, tb_errbuf_t *eb) {
  int rc = tb_event_field_int(v, out);
  return rc ? field_err(eb, ev, k, rc, "must be an integer") : 0;
}
static int int_opt(const tb_event_t *ev, const tb_event_field_t *v, const char *k, int64_t *out, bool *has, tb_errbuf_t *eb) {
  if (v->kind == 0 || v->kind == 'z') return 0;
  if (has) *has = true;
  return int_req(ev, v, k, out, eb);
}
static int strv_opt(const tb_event_t *ev, const tb_event_field_t *v, const char *k, tb_event_strv_t *out, tb_errbuf_t *eb) {
  if (v->kind == 0 || v->kind == 'z') return 0;
  int rc = tb_event_field_strv(v, out);
  return rc ? field_err(eb, ev, k, rc, "must be an array of strings") : 0;
}

static void set_str(char **dst, char **src) {
  tb_free(*dst);
  *dst = *src;
  *src = NULL;
}

static bool terminal_dep(const char *s) {
  return strcmp(s, "failed") == 0 || strcmp(s, "stopped") == 0 || strcmp(s, "superseded") == 0 ||
         strcmp(s, "crashed") == 0;
}

/* ---- Freeing records. ---- */

static void version_deinit(tb__version_t *v) {
  tb_free(v->digest);
  tb_free(v->artifact);
  tb_free(v->runtime);
  tb_free(v->uploaded_by);
}

static void secret_deinit(tb__secret_t *s) {
  tb_free(s->name);
  tb_free(s->alg);
  tb_free(s->key_id);
  tb_free(s->nonce);
  tb_free(s->ciphertext);
  tb_free(s->updated_by);
}

void tb__app_free(tb__app_t *a) {
  if (a == NULL) return;
  tb_free(a->tenant);
  tb_free(a->name);
  tb_free(a->runtime);
  tb_free(a->created_by);
  for (size_t i = 0; i < a->n_versions; i++) version_deinit(&a->versions[i]);
  tb_free(a->versions);
  for (size_t i = 0; i < a->n_secrets; i++) secret_deinit(&a->secrets[i]);
  tb_free(a->secrets);
  tb_free(a->deps);
  tb_free(a->runs);
  tb_free(a);
}

void tb__deployment_free(tb__deployment_t *d) {
  if (d == NULL) return;
  tb_free(d->runtime);
  tb_free(d->target);
  tb_free(d->requested_by);
  tb_free(d->reason);
  tb_event_strv_free(&d->tags);
  tb_free(d);
}

void tb__supervisor_free(tb__supervisor_t *s) {
  if (s == NULL) return;
  tb_free(s->name);
  tb_free(s->hostname);
  tb_free(s->address);
  tb_free(s->version);
  tb_event_strv_free(&s->tags);
  tb_event_strv_free(&s->runtimes);
  tb_free(s);
}

void tb__runner_free(tb__runner_t *r) {
  if (r == NULL) return;
  tb_free(r->address);
  tb_free(r->reason);
  tb_free(r);
}

void tb__token_free(tb__token_t *t) {
  if (t == NULL) return;
  tb_free(t->tenant);
  tb_free(t->subject);
  tb_free(t->reason);
  tb_event_strv_free(&t->scopes);
  tb_free(t);
}

/* ---- Apps and versions. ---- */

static const char *const k_app_registered[] = {"app", "tenant", "name", "runtime"};
static int h_app_registered(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  char *tenant = NULL, *name = NULL, *runtime = NULL, *actor = NULL;
  tb__app_t *a = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &id, eb)) || (rc = str_req(ev, &v[1], "tenant", &tenant, eb)) ||
      (rc = str_req(ev, &v[2], "name", &name, eb)) || (rc = str_req(ev, &v[3], "runtime", &runtime, eb)) || !st)
    goto out;
  if (tb__map_get(&st->apps, &id)) {
    rc = refuse(eb, ev, "the app is already registered");
    goto out;
  }
  if ((a = tb_calloc(1, sizeof *a)) == NULL || (actor = tb_strdup(ev->actor)) == NULL ||
      tb__map_put(&st->apps, &id, a) != 0) {
    rc = TB_ENOMEM;
    goto out;
  }
  a->id = id;
  a->tenant = tenant;
  a->name = name;
  a->runtime = runtime;
  a->created_by = actor;
  tenant = name = runtime = actor = NULL;
  a->created_at = a->updated_at = ev->ts_ns;
  a->state = "registered";
  a = NULL;
out:
  tb_free(a);
  tb_free(tenant);
  tb_free(name);
  tb_free(runtime);
  tb_free(actor);
  return rc;
}

static const char *const k_app_deleted[] = {"app", "reason"};
static int h_app_deleted(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  char *reason = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &id, eb)) || (rc = str_opt(ev, &v[1], "reason", &reason, eb)) || !st) goto out;
  tb__app_t *a = tb__map_get(&st->apps, &id);
  if (a == NULL) {
    rc = refuse(eb, ev, "no such app");
    goto out;
  }
  a->state = "deleted";
  a->updated_at = ev->ts_ns;
out:
  tb_free(reason);
  return rc;
}

static const char *const k_version_uploaded[] = {"app", "version", "digest", "size", "artifact", "runtime"};
static int h_version_uploaded(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  int64_t version = 0, size = 0;
  char *digest = NULL, *artifact = NULL, *runtime = NULL, *actor = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &id, eb)) || (rc = int_req(ev, &v[1], "version", &version, eb)) ||
      (rc = str_req(ev, &v[2], "digest", &digest, eb)) || (rc = int_opt(ev, &v[3], "size", &size, NULL, eb)) ||
      (rc = str_req(ev, &v[4], "artifact", &artifact, eb)) || (rc = str_opt(ev, &v[5], "runtime", &runtime, eb)))
    goto out;
  if (version < 1) {
    rc = field_err(eb, ev, "version", TB_EINVAL, "must be 1 or more");
    goto out;
  }
  if (!st) goto out;
  tb__app_t *a = tb__map_get(&st->apps, &id);
  if (a == NULL) {
    rc = refuse(eb, ev, "no such app");
    goto out;
  }
  size_t at = a->n_versions;
  while (at > 0 && a->versions[at - 1].version > version) at--;
  if (at > 0 && a->versions[at - 1].version == version) {
    rc = refuse(eb, ev, "that version was uploaded before");
    goto out;
  }
  tb__version_t *vs = tb_reallocarray(a->versions, a->n_versions + 1, sizeof *vs);
  if (vs == NULL || (actor = tb_strdup(ev->actor)) == NULL) {
    if (vs) a->versions = vs;
    rc = TB_ENOMEM;
    goto out;
  }
  a->versions = vs;
  memmove(&vs[at + 1], &vs[at], (a->n_versions - at) * sizeof *vs);
  vs[at] = (tb__version_t){.version = version, .digest = digest, .artifact = artifact, .runtime = runtime,
                           .uploaded_by = actor, .size = size, .uploaded_at = ev->ts_ns};
  digest = artifact = runtime = actor = NULL;
  a->n_versions++;
  a->updated_at = ev->ts_ns;
out:
  tb_free(digest);
  tb_free(artifact);
  tb_free(runtime);
  tb_free(actor);
  return rc;
}

static bool has_version(const tb__app_t *a, int64_t version) {
  for (size_t i = 0; i < a->n_versions; i++)
    if (a->versions[i].version == version) return true;
  return false;
}

/* ---- Bounded history (projections_int.h, TB__KEEP_HISTORY). ---- */

static int push_id(tb_uuid_t **v, size_t *n, const tb_uuid_t *id) {
  tb_uuid_t *nv = tb_reallocarray(*v, *n + 1, sizeof *nv);
  if (nv == NULL) return TB_ENOMEM;
  nv[(*n)++] = *id;
  *v = nv;
  return 0;
}

static void remove_at(tb_uuid_t *v, size_t *n, size_t i) {
  memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof *v);
  (*n)--;
}

static bool same(const tb_uuid_t *a, const tb_uuid_t *b) { return memcmp(a->b, b->b, 16) == 0; }

/* Drops the oldest ended runners beyond the limit; running ones always stay. */
static void prune_runners(tb__state_t *st, tb__app_t *a) {
  size_t ended = 0;
  for (size_t i = 0; i < a->n_runs; i++) {
    tb__runner_t *r = tb__map_get(&st->runners, &a->runs[i]);
    if (r && strcmp(r->state, "running") != 0 && !same(&r->id, &a->runner)) ended++;
  }
  for (size_t i = 0; i < a->n_runs && ended > TB__KEEP_HISTORY;) {
    tb__runner_t *r = tb__map_get(&st->runners, &a->runs[i]);
    if (r && (strcmp(r->state, "running") == 0 || same(&r->id, &a->runner))) {
      i++;
      continue;
    }
    tb__runner_free(tb__map_del(&st->runners, &a->runs[i]));
    remove_at(a->runs, &a->n_runs, i);
    if (r) ended--;
  }
}

/* Drops the oldest deployments beyond the limit, never the current one. */
static void prune_deployments(tb__state_t *st, tb__app_t *a) {
  for (size_t i = 0; i < a->n_deps && a->n_deps > TB__KEEP_HISTORY + 1;) {
    if (same(&a->deps[i], &a->deployment)) {
      i++;
      continue;
    }
    tb__deployment_free(tb__map_del(&st->deployments, &a->deps[i]));
    remove_at(a->deps, &a->n_deps, i);
  }
}

/* ---- Deployments. ---- */

/* deploy_requested and rollback_requested: a new current deployment of the app. */
static int new_deployment(tb__state_t *st, const tb_event_t *ev, tb_uuid_t app, tb_uuid_t dep, int64_t version,
                          int64_t rollback_from, char **runtime, char **target, tb_event_strv_t *tags, tb_errbuf_t *eb) {
  tb__app_t *a = tb__map_get(&st->apps, &app);
  if (a == NULL) return refuse(eb, ev, "no such app");
  if (strcmp(a->state, "deleted") == 0) return refuse(eb, ev, "the app is deleted");
  if (!has_version(a, version)) return refuse(eb, ev, "that version was never uploaded");
  if (tb__map_get(&st->deployments, &dep)) return refuse(eb, ev, "the deployment id is already used");
  tb__deployment_t *d = tb_calloc(1, sizeof *d);
  char *actor = tb_strdup(ev->actor);
  if (d == NULL || actor == NULL || push_id(&a->deps, &a->n_deps, &dep) != 0) {
    tb_free(d);
    tb_free(actor);
    return TB_ENOMEM;
  }
  if (tb__map_put(&st->deployments, &dep, d) != 0) {
    a->n_deps--;
    tb_free(d);
    tb_free(actor);
    return TB_ENOMEM;
  }
  tb__deployment_t *prev = tb_uuid_is_nil(&a->deployment) ? NULL : tb__map_get(&st->deployments, &a->deployment);
  if (prev && !terminal_dep(prev->state)) {
    prev->state = "superseded";
    prev->updated_at = ev->ts_ns;
  }
  d->id = dep;
  d->app = app;
  d->version = version;
  d->rollback_from = rollback_from;
  d->state = "requested";
  d->runtime = *runtime;
  d->target = *target;
  d->tags = *tags;
  *runtime = *target = NULL;
  *tags = (tb_event_strv_t){0};
  d->requested_by = actor;
  d->requested_at = d->updated_at = ev->ts_ns;
  a->deployment = dep;
  a->state = "deploying";
  a->updated_at = ev->ts_ns;
  prune_deployments(st, a);
  return 0;
}

static const char *const k_deploy_requested[] = {"app", "deployment", "version", "runtime", "target", "tags"};
static int h_deploy_requested(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app, dep;
  int64_t version = 0;
  char *runtime = NULL, *target = NULL;
  tb_event_strv_t tags = {0};
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = uuid_req(ev, &v[1], "deployment", &dep, eb)) ||
      (rc = int_req(ev, &v[2], "version", &version, eb)) || (rc = str_opt(ev, &v[3], "runtime", &runtime, eb)) ||
      (rc = str_opt(ev, &v[4], "target", &target, eb)) || (rc = strv_opt(ev, &v[5], "tags", &tags, eb)) || !st)
    goto out;
  rc = new_deployment(st, ev, app, dep, version, 0, &runtime, &target, &tags, eb);
out:
  tb_free(runtime);
  tb_free(target);
  tb_event_strv_free(&tags);
  return rc;
}

static const char *const k_rollback_requested[] = {"app", "deployment", "from_version", "to_version", "runtime",
                                                   "target", "tags"};
static int h_rollback_requested(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app, dep;
  int64_t from = 0, to = 0;
  char *runtime = NULL, *target = NULL;
  tb_event_strv_t tags = {0};
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = uuid_req(ev, &v[1], "deployment", &dep, eb)) ||
      (rc = int_req(ev, &v[2], "from_version", &from, eb)) || (rc = int_req(ev, &v[3], "to_version", &to, eb)) ||
      (rc = str_opt(ev, &v[4], "runtime", &runtime, eb)) || (rc = str_opt(ev, &v[5], "target", &target, eb)) ||
      (rc = strv_opt(ev, &v[6], "tags", &tags, eb)) || !st)
    goto out;
  rc = new_deployment(st, ev, app, dep, to, from, &runtime, &target, &tags, eb);
out:
  tb_free(runtime);
  tb_free(target);
  tb_event_strv_free(&tags);
  return rc;
}

/* Looks up the app and one of its deployments. */
static int app_dep(tb__state_t *st, const tb_event_t *ev, const tb_uuid_t *app, const tb_uuid_t *dep, tb__app_t **a,
                   tb__deployment_t **d, tb_errbuf_t *eb) {
  *a = tb__map_get(&st->apps, app);
  *d = NULL;
  if (*a == NULL) return refuse(eb, ev, "no such app");
  *d = tb__map_get(&st->deployments, dep);
  if (*d == NULL || memcmp((*d)->app.b, app->b, 16) != 0) return refuse(eb, ev, "no such deployment of this app");
  return 0;
}

static const char *const k_deployment_placed[] = {"app", "deployment", "supervisor"};
static int h_deployment_placed(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app, dep, sup;
  tb__app_t *a = NULL;
  tb__deployment_t *d = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = uuid_req(ev, &v[1], "deployment", &dep, eb)) ||
      (rc = uuid_req(ev, &v[2], "supervisor", &sup, eb)) || !st)
    return rc;
  if ((rc = app_dep(st, ev, &app, &dep, &a, &d, eb)) != 0) return rc;
  d->supervisor = sup;
  if (strcmp(d->state, "requested") == 0) d->state = "placed";
  d->updated_at = ev->ts_ns;
  return 0;
}

static const char *const k_deployment_failed[] = {"app", "deployment", "reason"};
static int h_deployment_failed(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app, dep;
  char *reason = NULL;
  tb__app_t *a = NULL;
  tb__deployment_t *d = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = uuid_req(ev, &v[1], "deployment", &dep, eb)) ||
      (rc = str_opt(ev, &v[2], "reason", &reason, eb)) || !st)
    goto out;
  if ((rc = app_dep(st, ev, &app, &dep, &a, &d, eb)) != 0) goto out;
  d->state = "failed";
  set_str(&d->reason, &reason);
  d->updated_at = ev->ts_ns;
  if (memcmp(a->deployment.b, dep.b, 16) == 0) {
    a->state = "failed";
    a->updated_at = ev->ts_ns;
  }
out:
  tb_free(reason);
  return rc;
}

/* ---- Runners. ---- */

/* app_started and runner_adopted: the runner serves the app's deployment. */
static const char *const k_app_started[] = {"app", "deployment", "supervisor", "runner", "address", "pid"};
static int started(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, bool adopted, tb_errbuf_t *eb) {
  tb_uuid_t app, dep, sup, rid;
  int64_t pid = 0;
  char *address = NULL;
  tb__app_t *a = NULL;
  tb__deployment_t *d = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = uuid_req(ev, &v[1], "deployment", &dep, eb)) ||
      (rc = uuid_req(ev, &v[2], "supervisor", &sup, eb)) || (rc = uuid_req(ev, &v[3], "runner", &rid, eb)) ||
      (rc = str_req(ev, &v[4], "address", &address, eb)) || (rc = int_opt(ev, &v[5], "pid", &pid, NULL, eb)) || !st)
    goto out;
  if ((rc = app_dep(st, ev, &app, &dep, &a, &d, eb)) != 0) goto out;
  tb__runner_t *r = tb__map_get(&st->runners, &rid);
  bool fresh = r == NULL;
  if (fresh) {
    if ((r = tb_calloc(1, sizeof *r)) == NULL || push_id(&a->runs, &a->n_runs, &rid) != 0) {
      tb_free(r);
      rc = TB_ENOMEM;
      goto out;
    }
    if (tb__map_put(&st->runners, &rid, r) != 0) {
      a->n_runs--;
      tb_free(r);
      rc = TB_ENOMEM;
      goto out;
    }
    r->id = rid;
    r->started_at = ev->ts_ns;
  } else if (!adopted) {
    r->started_at = ev->ts_ns;
  }
  r->app = app;
  r->deployment = dep;
  r->supervisor = sup;
  r->pid = pid;
  r->state = "running";
  r->ended_at = 0;
  r->has_exit_code = r->has_signal = false;
  set_str(&r->address, &address);
  tb_free(r->reason);
  r->reason = NULL;
  /* A restarted runner revives a crashed deployment; one that was replaced or stopped
   * stays over unless a restarted supervisor adopted its still-living runner. */
  if (!terminal_dep(d->state) || adopted || strcmp(d->state, "crashed") == 0) d->state = "running";
  d->runner = rid;
  d->supervisor = sup;
  d->updated_at = ev->ts_ns;
  if (memcmp(a->deployment.b, dep.b, 16) == 0) {
    a->runner = rid;
    if (strcmp(a->state, "deleted") != 0) a->state = "running";
    a->updated_at = ev->ts_ns;
  }
  prune_runners(st, a);
out:
  tb_free(address);
  return rc;
}
static int h_app_started(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  return started(st, ev, v, false, eb);
}
static int h_runner_adopted(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  return started(st, ev, v, true, eb);
}

/* app_crashed and runner_exited: the runner is gone. */
static const char *const k_runner_ended[] = {"app", "runner", "deployment", "supervisor", "exit_code", "signal",
                                             "reason"};
static int ended(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, bool crashed, tb_errbuf_t *eb) {
  tb_uuid_t app, rid = {{0}}, dep = {{0}}, sup = {{0}};
  int64_t code = 0, sig = 0;
  bool has_code = false, has_sig = false;
  char *reason = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) ||
      (rc = (crashed ? uuid_opt : uuid_req)(ev, &v[1], "runner", &rid, eb)) ||
      (rc = uuid_opt(ev, &v[2], "deployment", &dep, eb)) || (rc = uuid_opt(ev, &v[3], "supervisor", &sup, eb)) ||
      (rc = int_opt(ev, &v[4], "exit_code", &code, &has_code, eb)) ||
      (rc = int_opt(ev, &v[5], "signal", &sig, &has_sig, eb)) || (rc = str_opt(ev, &v[6], "reason", &reason, eb)) ||
      !st)
    goto out;
  tb__app_t *a = tb__map_get(&st->apps, &app);
  if (a == NULL) {
    rc = refuse(eb, ev, "no such app");
    goto out;
  }
  tb__runner_t *r = tb_uuid_is_nil(&rid) ? tb__map_get(&st->runners, &a->runner) : tb__map_get(&st->runners, &rid);
  if (r == NULL && !crashed) {
    rc = refuse(eb, ev, "no such runner");
    goto out;
  }
  /* An on_request runner that stopped for want of traffic leaves its app "idle": the next
   * request starts it again (scale to zero). */
  bool idle = !crashed && reason && strcmp(reason, "idle") == 0;
  if (r) {
    rid = r->id;
    r->state = crashed ? "crashed" : "exited";
    r->ended_at = ev->ts_ns;
    r->exit_code = code;
    r->signal = sig;
    r->has_exit_code = has_code;
    r->has_signal = has_sig;
    set_str(&r->reason, &reason);
    if (tb_uuid_is_nil(&dep)) dep = r->deployment;
  }
  if (tb_uuid_is_nil(&dep)) dep = a->deployment;
  tb__deployment_t *d = tb__map_get(&st->deployments, &dep);
  if (d && crashed && (strcmp(d->state, "running") == 0 || strcmp(d->state, "placed") == 0 ||
                       strcmp(d->state, "requested") == 0)) {
    d->state = "crashed";
    d->updated_at = ev->ts_ns;
  } else if (d && idle && strcmp(d->state, "running") == 0) {
    d->state = "idle";
    d->updated_at = ev->ts_ns;
  }
  bool current = r ? memcmp(a->runner.b, rid.b, 16) == 0 : true;
  if (current) {
    memset(&a->runner, 0, sizeof a->runner);
    if (crashed) a->state = "crashed";
    else if (strcmp(a->state, "running") == 0) a->state = idle ? "idle" : "exited";
    a->updated_at = ev->ts_ns;
  }
  prune_runners(st, a);
out:
  tb_free(reason);
  return rc;
}
static int h_app_crashed(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  return ended(st, ev, v, true, eb);
}
static int h_runner_exited(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  return ended(st, ev, v, false, eb);
}

static const char *const k_app_stopped[] = {"app", "reason"};
static int h_app_stopped(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app;
  char *reason = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = str_opt(ev, &v[1], "reason", &reason, eb)) || !st) goto out;
  tb__app_t *a = tb__map_get(&st->apps, &app);
  if (a == NULL) {
    rc = refuse(eb, ev, "no such app");
    goto out;
  }
  tb__deployment_t *d = tb__map_get(&st->deployments, &a->deployment);
  if (d && !terminal_dep(d->state)) {
    d->state = "stopped";
    set_str(&d->reason, &reason);
    d->updated_at = ev->ts_ns;
  }
  if (strcmp(a->state, "deleted") != 0) a->state = "stopped";
  a->updated_at = ev->ts_ns;
out:
  tb_free(reason);
  return rc;
}

/* ---- Supervisors. ---- */

static const char *const k_supervisor_registered[] = {"supervisor", "name", "hostname", "address", "tags", "runtimes",
                                                      "version"};
static int h_supervisor_registered(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  char *name = NULL, *host = NULL, *addr = NULL, *version = NULL;
  tb_event_strv_t tags = {0}, runtimes = {0};
  int rc;
  if ((rc = uuid_req(ev, &v[0], "supervisor", &id, eb)) || (rc = str_req(ev, &v[1], "name", &name, eb)) ||
      (rc = str_opt(ev, &v[2], "hostname", &host, eb)) || (rc = str_req(ev, &v[3], "address", &addr, eb)) ||
      (rc = strv_opt(ev, &v[4], "tags", &tags, eb)) || (rc = strv_opt(ev, &v[5], "runtimes", &runtimes, eb)) ||
      (rc = str_opt(ev, &v[6], "version", &version, eb)) || !st)
    goto out;
  tb__supervisor_t *s = tb__map_get(&st->supervisors, &id);
  if (s == NULL) {
    if ((s = tb_calloc(1, sizeof *s)) == NULL || tb__map_put(&st->supervisors, &id, s) != 0) {
      tb_free(s);
      rc = TB_ENOMEM;
      goto out;
    }
    s->id = id;
    s->registered_at = ev->ts_ns;
  }
  set_str(&s->name, &name);
  set_str(&s->hostname, &host);
  set_str(&s->address, &addr);
  set_str(&s->version, &version);
  tb_event_strv_free(&s->tags);
  tb_event_strv_free(&s->runtimes);
  s->tags = tags;
  s->runtimes = runtimes;
  tags = runtimes = (tb_event_strv_t){0};
  s->state = "up";
  s->last_seen = ev->ts_ns;
out:
  tb_free(name);
  tb_free(host);
  tb_free(addr);
  tb_free(version);
  tb_event_strv_free(&tags);
  tb_event_strv_free(&runtimes);
  return rc;
}

static const char *const k_supervisor_heartbeat[] = {"supervisor", "runners", "cpu_milli", "mem_free_mb"};
static int h_supervisor_heartbeat(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  int64_t runners = 0, cpu = 0, mem = 0;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "supervisor", &id, eb)) || (rc = int_opt(ev, &v[1], "runners", &runners, NULL, eb)) ||
      (rc = int_opt(ev, &v[2], "cpu_milli", &cpu, NULL, eb)) ||
      (rc = int_opt(ev, &v[3], "mem_free_mb", &mem, NULL, eb)) || !st)
    return rc;
  tb__supervisor_t *s = tb__map_get(&st->supervisors, &id);
  if (s == NULL) return refuse(eb, ev, "no such supervisor");
  s->last_seen = ev->ts_ns;
  s->runners = runners;
  s->cpu_milli = cpu;
  s->mem_free_mb = mem;
  if (strcmp(s->state, "lost") == 0) s->state = "up";
  return 0;
}

static const char *const k_supervisor_gone[] = {"supervisor", "reason"};
static int supervisor_gone(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, const char *state,
                           tb_errbuf_t *eb) {
  tb_uuid_t id;
  char *reason = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "supervisor", &id, eb)) || (rc = str_opt(ev, &v[1], "reason", &reason, eb)) || !st)
    goto out;
  tb__supervisor_t *s = tb__map_get(&st->supervisors, &id);
  if (s == NULL) {
    rc = refuse(eb, ev, "no such supervisor");
    goto out;
  }
  s->state = state;
out:
  tb_free(reason);
  return rc;
}
static int h_supervisor_lost(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  return supervisor_gone(st, ev, v, "lost", eb);
}
static int h_supervisor_left(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  return supervisor_gone(st, ev, v, "left", eb);
}

/* ---- Secrets. ---- */

static const char *const k_secret_registered[] = {"app", "name", "alg", "key_id", "nonce", "ciphertext"};
static int h_secret_registered(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app;
  char *name = NULL, *alg = NULL, *key_id = NULL, *nonce = NULL, *ct = NULL, *actor = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = str_req(ev, &v[1], "name", &name, eb)) ||
      (rc = str_req(ev, &v[2], "alg", &alg, eb)) || (rc = str_req(ev, &v[3], "key_id", &key_id, eb)) ||
      (rc = str_req(ev, &v[4], "nonce", &nonce, eb)) || (rc = str_req(ev, &v[5], "ciphertext", &ct, eb)) || !st)
    goto out;
  tb__app_t *a = tb__map_get(&st->apps, &app);
  if (a == NULL) {
    rc = refuse(eb, ev, "no such app");
    goto out;
  }
  if ((actor = tb_strdup(ev->actor)) == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  size_t at = 0;
  while (at < a->n_secrets && strcmp(a->secrets[at].name, name) < 0) at++;
  tb__secret_t *s;
  if (at < a->n_secrets && strcmp(a->secrets[at].name, name) == 0) {
    s = &a->secrets[at];
    s->version++;
  } else {
    tb__secret_t *ss = tb_reallocarray(a->secrets, a->n_secrets + 1, sizeof *ss);
    if (ss == NULL) {
      rc = TB_ENOMEM;
      goto out;
    }
    a->secrets = ss;
    memmove(&ss[at + 1], &ss[at], (a->n_secrets - at) * sizeof *ss);
    a->n_secrets++;
    s = &ss[at];
    *s = (tb__secret_t){.version = 1};
    s->name = name;
    name = NULL;
  }
  set_str(&s->alg, &alg);
  set_str(&s->key_id, &key_id);
  set_str(&s->nonce, &nonce);
  set_str(&s->ciphertext, &ct);
  set_str(&s->updated_by, &actor);
  s->updated_at = ev->ts_ns;
  a->updated_at = ev->ts_ns;
out:
  tb_free(name);
  tb_free(alg);
  tb_free(key_id);
  tb_free(nonce);
  tb_free(ct);
  tb_free(actor);
  return rc;
}

static const char *const k_secret_removed[] = {"app", "name"};
static int h_secret_removed(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t app;
  char *name = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "app", &app, eb)) || (rc = str_req(ev, &v[1], "name", &name, eb)) || !st) goto out;
  tb__app_t *a = tb__map_get(&st->apps, &app);
  size_t at = 0;
  while (a && at < a->n_secrets && strcmp(a->secrets[at].name, name) != 0) at++;
  if (a == NULL || at == a->n_secrets) {
    rc = refuse(eb, ev, "no such secret");
    goto out;
  }
  secret_deinit(&a->secrets[at]);
  memmove(&a->secrets[at], &a->secrets[at + 1], (a->n_secrets - at - 1) * sizeof *a->secrets);
  a->n_secrets--;
  a->updated_at = ev->ts_ns;
out:
  tb_free(name);
  return rc;
}

/* ---- Tokens. ---- */

static const char *const k_token_issued[] = {"token", "tenant", "subject", "scopes", "expires_at"};
static int h_token_issued(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  char *tenant = NULL, *subject = NULL;
  tb_event_strv_t scopes = {0};
  int64_t expires = 0;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "token", &id, eb)) || (rc = str_req(ev, &v[1], "tenant", &tenant, eb)) ||
      (rc = str_req(ev, &v[2], "subject", &subject, eb)) || (rc = strv_opt(ev, &v[3], "scopes", &scopes, eb)) ||
      (rc = int_opt(ev, &v[4], "expires_at", &expires, NULL, eb)) || !st)
    goto out;
  if (tb__map_get(&st->tokens, &id)) {
    rc = refuse(eb, ev, "the token id is already used");
    goto out;
  }
  tb__token_t *t = tb_calloc(1, sizeof *t);
  if (t == NULL || tb__map_put(&st->tokens, &id, t) != 0) {
    tb_free(t);
    rc = TB_ENOMEM;
    goto out;
  }
  t->id = id;
  t->tenant = tenant;
  t->subject = subject;
  t->scopes = scopes;
  tenant = subject = NULL;
  scopes = (tb_event_strv_t){0};
  t->issued_at = ev->ts_ns;
  t->expires_at = expires;
out:
  tb_free(tenant);
  tb_free(subject);
  tb_event_strv_free(&scopes);
  return rc;
}

static const char *const k_token_revoked[] = {"token", "reason"};
static int h_token_revoked(tb__state_t *st, const tb_event_t *ev, const tb_event_field_t *v, tb_errbuf_t *eb) {
  tb_uuid_t id;
  char *reason = NULL;
  int rc;
  if ((rc = uuid_req(ev, &v[0], "token", &id, eb)) || (rc = str_opt(ev, &v[1], "reason", &reason, eb)) || !st) goto out;
  tb__token_t *t = tb__map_get(&st->tokens, &id);
  if (t == NULL) { /* a token from before this log, or from elsewhere: still revoked */
    if ((t = tb_calloc(1, sizeof *t)) == NULL || tb__map_put(&st->tokens, &id, t) != 0) {
      tb_free(t);
      rc = TB_ENOMEM;
      goto out;
    }
    t->id = id;
  }
  if (t->revoked_at == 0) t->revoked_at = ev->ts_ns;
  set_str(&t->reason, &reason);
out:
  tb_free(reason);
  return rc;
}

/* ---- Dispatch. ---- */

#define H(name, keys, fn) {name, 1, keys, sizeof keys / sizeof keys[0], fn}

/* Ordered by how often they occur: heartbeats dominate a long-lived log. */
static const handler_t handlers[] = {
    H("supervisor_heartbeat", k_supervisor_heartbeat, h_supervisor_heartbeat),
    H("app_started", k_app_started, h_app_started),
    H("runner_exited", k_runner_ended, h_runner_exited),
    H("app_crashed", k_runner_ended, h_app_crashed),
    H("deploy_requested", k_deploy_requested, h_deploy_requested),
    H("deployment_placed", k_deployment_placed, h_deployment_placed),
    H("version_uploaded", k_version_uploaded, h_version_uploaded),
    H("app_registered", k_app_registered, h_app_registered),
    H("app_stopped", k_app_stopped, h_app_stopped),
    H("runner_adopted", k_app_started, h_runner_adopted),
    H("deployment_failed", k_deployment_failed, h_deployment_failed),
    H("rollback_requested", k_rollback_requested, h_rollback_requested),
    H("app_deleted", k_app_deleted, h_app_deleted),
    H("supervisor_registered", k_supervisor_registered, h_supervisor_registered),
    H("supervisor_lost", k_supervisor_gone, h_supervisor_lost),
    H("supervisor_left", k_supervisor_gone, h_supervisor_left),
    H("secret_registered", k_secret_registered, h_secret_registered),
    H("secret_removed", k_secret_removed, h_secret_removed),
    H("token_issued", k_token_issued, h_token_issued),
    H("token_revoked", k_token_revoked, h_token_revoked),
};

#define MAX_KEYS 8

static int run(tb__state_t *st, const tb_event_t *ev, tb_errbuf_t *eb) {
  const handler_t *h = NULL;
  size_t tl = strlen(ev->type);
  for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
    if (handlers[i].type[0] == ev->type[0] && strlen(handlers[i].type) == tl &&
        memcmp(handlers[i].type, ev->type, tl) == 0) {
      h = &handlers[i];
      break;
    }
  if (h == NULL) return 0; /* not ours: the offset advances, nothing else */
  if (ev->schema > h->schema)
    return tb_errf(eb, TB_EUNSUPPORTED, "%s: schema %u is newer than this program understands (%u)", ev->type,
                   ev->schema, h->schema);
  tb_event_field_t v[MAX_KEYS];
  if (tb_event_fields(ev->payload, ev->payload_len, h->keys, h->nkeys, v) != 0)
    return tb_errf(eb, TB_EINVAL, "%s: the payload is not a JSON object", ev->type);
  return h->fn(st, ev, v, eb);
}

int tb__apply(tb__state_t *st, const tb_event_t *ev, tb_errbuf_t *eb) { return run(st, ev, eb); }

int tb_projections_check_event(const tb_event_t *ev, tb_errbuf_t *eb) { return run(NULL, ev, eb); }
