/*
 * reconcile.c — placements (what the log says should run here) against slots (what
 * runs). Runs after every catch-up that applied events, and after a slot changes.
 *
 *   placement runnable, always_on, no slot         → start a runner
 *   placement runnable, on_request, no slot        → nothing: the first request wakes it
 *   slot for an older deployment of the app        → stop it ("replaced"), start the new one
 *   slot whose app was stopped, deleted or moved   → stop it ("stopped")
 *
 * "Runnable" means the app is neither stopped, deleted nor failed and its deployment is
 * not over. A slot in FAILED stays as the memory that this deployment cannot start, so
 * it is not retried in a loop; a new deployment replaces it.
 */
#include <stdio.h>
#include <string.h>

#include "supervisor_int.h"
#include "tb/log.h"

tb__sup_runner_t *tb__sup_find(tb_supervisor_t *s, const tb_uuid_t *app) {
  for (tb__sup_runner_t *r = s->runners; r; r = r->next)
    if (memcmp(r->app.b, app->b, 16) == 0 && r->state != TB__RUN_STOPPING) return r;
  return NULL;
}

static bool is(const char *v, const char *a, const char *b, const char *c) {
  return v && (strcmp(v, a) == 0 || strcmp(v, b) == 0 || (c && strcmp(v, c) == 0));
}

static bool runnable(json_t *pl) {
  const char *app_state = json_string_value(json_object_get(pl, "app_state"));
  const char *dep_state = json_string_value(json_object_get(json_object_get(pl, "deployment"), "state"));
  return !is(app_state, "stopped", "deleted", "failed") && !is(dep_state, "stopped", "superseded", "failed") &&
         json_object_get(pl, "version") && !json_is_null(json_object_get(pl, "version"));
}

json_t *tb__sup_version_manifest(tb_supervisor_t *s, json_t *placement) {
  const char *artifact = json_string_value(json_object_get(json_object_get(placement, "version"), "artifact"));
  if (!artifact) return NULL;
  char path[1300];
  snprintf(path, sizeof path, "%s/%s", s->store_dir, artifact);
  char *slash = strrchr(path, '/');
  if (slash) snprintf(slash, sizeof path - (size_t)(slash - path), "/manifest.json");
  return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

static bool always_on_of(tb_supervisor_t *s, json_t *pl) {
  json_t *m = tb__sup_version_manifest(s, pl);
  const char *lc = json_string_value(json_object_get(json_object_get(m, "runtime"), "lifecycle"));
  bool on = !lc || strcmp(lc, "on_request") != 0;
  json_decref(m);
  return on;
}

static json_t *placement_of(json_t *all, const tb__sup_runner_t *r) {
  size_t i;
  json_t *e;
  json_array_foreach(all, i, e) {
    const char *app = json_string_value(json_object_get(json_object_get(e, "app"), "app"));
    if (app && strcmp(app, r->app_s) == 0) return e;
  }
  return NULL;
}

static void start(tb_supervisor_t *s, json_t *pl) {
  tb__sup_runner_t *r = NULL;
  char msg[400] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc = tb__sup_runner_start(s, pl, &r, &eb);
  if (rc != 0) tb_log_error("supervisor", "cannot start a runner", TB_KV_ERR(rc), TB_KV_STR("detail", msg));
}

void tb__sup_reconcile(tb_supervisor_t *s) {
  if (s->closing) return;
  json_t *all = NULL;
  if (tb_proj_placements(s->proj, &s->id, &all) != 0) return;
  /* Slots first: stop what should no longer run. */
  for (tb__sup_runner_t *r = s->runners, *nx; r; r = nx) {
    nx = r->next;
    if (r->state == TB__RUN_STOPPING) continue;
    json_t *pl = placement_of(all, r);
    const char *dep = json_string_value(json_object_get(json_object_get(pl, "deployment"), "deployment"));
    if (!pl || !runnable(pl)) tb__sup_runner_stop(r, "stopped");
    else if (!dep || strcmp(dep, r->dep_s) != 0) tb__sup_runner_stop(r, "replaced");
  }
  /* Then placements: start always_on apps that have no slot. */
  size_t i;
  json_t *pl;
  json_array_foreach(all, i, pl) {
    const char *app = json_string_value(json_object_get(json_object_get(pl, "app"), "app"));
    tb_uuid_t u;
    if (!app || tb_uuid_parse(app, strlen(app), &u) != 0 || !runnable(pl)) continue;
    if (tb__sup_find(s, &u) != NULL || !always_on_of(s, pl)) continue;
    start(s, pl);
  }
  json_decref(all);
}

int tb__sup_ensure(tb_supervisor_t *s, const tb_uuid_t *app, tb__sup_runner_t **out, tb_errbuf_t *eb) {
  *out = NULL;
  if (s->closing) return tb_errf(eb, TB_ECANCELED, "the supervisor is shutting down");
  tb__sup_sync(s);
  json_t *all = NULL, *pl = NULL;
  char app_s[TB_UUID_STR_LEN + 1];
  tb_uuid_format(app, app_s);
  if (tb_proj_placements(s->proj, &s->id, &all) != 0) return TB_ENOMEM;
  size_t i;
  json_t *e;
  json_array_foreach(all, i, e) {
    const char *a = json_string_value(json_object_get(json_object_get(e, "app"), "app"));
    if (a && strcmp(a, app_s) == 0) pl = e;
  }
  int rc = 0;
  if (!pl) {
    rc = tb_errf(eb, TB_ENOTFOUND, "app %s has no deployment placed on this supervisor", app_s);
    goto out;
  }
  if (!runnable(pl)) {
    json_t *dep = json_object_get(pl, "deployment");
    if (strcmp(json_string_value(json_object_get(dep, "state")) ?: "", "failed") == 0)
      rc = tb_errf(eb, TB_EINVAL, "the deployment of app %s failed: %s", app_s,
                   json_string_value(json_object_get(dep, "reason")) ?: "no reason recorded");
    else
      rc = tb_errf(eb, TB_ECONFLICT, "app %s is %s", app_s, json_string_value(json_object_get(pl, "app_state")));
    goto out;
  }
  const char *dep = json_string_value(json_object_get(json_object_get(pl, "deployment"), "deployment"));
  tb__sup_runner_t *r = tb__sup_find(s, app);
  if (r && dep && strcmp(dep, r->dep_s) != 0) {
    tb__sup_runner_stop(r, "replaced"); /* an older deployment: the new one takes over */
    r = NULL;
  }
  if (r && r->state == TB__RUN_FAILED) {
    rc = tb_errf(eb, TB_EINVAL, "%s", r->error[0] ? r->error : "the app could not start");
    goto out;
  }
  if (r && r->state == TB__RUN_BACKOFF) {
    tb__sup_runner_drop(r); /* a request is waiting: start now rather than after the backoff */
    r = NULL;
  }
  if (!r && (rc = tb__sup_runner_start(s, pl, &r, eb)) != 0) goto out;
  if (r->state == TB__RUN_FAILED) rc = tb_errf(eb, TB_EINVAL, "%s", r->error);
  *out = r;
out:
  json_decref(all);
  return rc;
}
