/*
 * cmd_app.c — the CLI commands that act on apps through a node's API:
 *
 *   tabbify ls                                  the tenant's apps
 *   tabbify status  [--app UUID]                one app: state, versions, deployment
 *   tabbify deploy  [--app UUID] [--version N] [--target NAME] [--runtime R]
 *   tabbify stop    [--app UUID]
 *   tabbify rollback [--app UUID] [--version N]
 *   tabbify logs    [--app UUID] [-f]
 *
 * The app is --app, else the [app] id of ./tabbify.toml. Server and token: --server,
 * --token, $TABBIFY_SERVER, $TABBIFY_TOKEN, ~/.config/tabbify/config.toml (api_client.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "tb/alloc.h"

typedef struct opts {
  const char *app, *version, *target, *runtime;
  bool follow;
} opts_t;

static int parse(int argc, char **argv, opts_t *o, const char *allowed) {
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if ((strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) && strstr(allowed, "f")) {
      o->follow = true;
      continue;
    }
    const char **slot = strcmp(a, "--app") == 0                             ? &o->app
                         : strcmp(a, "--version") == 0 && strstr(allowed, "v") ? &o->version
                         : strcmp(a, "--target") == 0 && strstr(allowed, "t")  ? &o->target
                         : strcmp(a, "--runtime") == 0 && strstr(allowed, "r") ? &o->runtime
                                                                               : NULL;
    if (!slot) return tb__cli_fail(2, "unknown option %s for %s.", a, argv[0]);
    if (!v) return tb__cli_fail(2, "%s needs a value.", a);
    *slot = v;
    i++;
  }
  if (o->version) {
    char *end;
    long n = strtol(o->version, &end, 10);
    if (*end || n < 1) return tb__cli_fail(2, "--version must be a version number, not \"%s\".", o->version);
  }
  return 0;
}

static const char *str(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

int tb__cli_ls(int argc, char **argv) {
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
  if (argc > 1) return tb__cli_api_deinit(&api), tb__cli_fail(2, "ls takes no arguments.");
  long st = 0;
  json_t *v = NULL, *a;
  int rc = tb__cli_api_call(&api, "GET", "/v1/apps", NULL, &st, &v);
  if (rc == 0) {
    size_t i;
    printf("%-36s  %-20s  %-10s  %-10s  %s\n", "ID", "NAME", "RUNTIME", "STATE", "VERSION");
    json_array_foreach(v, i, a) {
      json_t *lv = json_object_get(a, "latest_version");
      printf("%-36s  %-20s  %-10s  %-10s  %s%lld\n", str(a, "app"), str(a, "name"), str(a, "runtime"),
             str(a, "state"), json_is_integer(lv) ? "v" : "-", json_is_integer(lv) ? (long long)json_integer_value(lv) : 0);
    }
  }
  json_decref(v);
  tb__cli_api_deinit(&api);
  return rc;
}

int tb__cli_status(int argc, char **argv) {
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
  opts_t o;
  char id[TB_UUID_STR_LEN + 1], path[128];
  int rc = parse(argc, argv, &o, "");
  if (rc == 0) rc = tb__cli_app_id(o.app, NULL, id);
  json_t *v = NULL;
  long st = 0;
  if (rc == 0) {
    snprintf(path, sizeof path, "/v1/apps/%s", id);
    rc = tb__cli_api_call(&api, "GET", path, NULL, &st, &v);
  }
  if (rc == 0) {
    printf("app:      %s (%s)\nruntime:  %s\nstate:    %s\n", str(v, "name"), str(v, "app"), str(v, "runtime"),
           str(v, "state"));
    json_t *e, *d = json_object_get(v, "current_deployment");
    size_t i;
    printf("versions:");
    json_array_foreach(json_object_get(v, "versions"), i, e)
      printf(" v%lld", (long long)json_integer_value(json_object_get(e, "version")));
    printf("%s\n", json_array_size(json_object_get(v, "versions")) ? "" : " none");
    if (json_is_object(d))
      printf("deployed: v%lld, %s (deployment %s)\n", (long long)json_integer_value(json_object_get(d, "version")),
             str(d, "state"), str(d, "deployment"));
    else
      printf("deployed: no\n");
  }
  json_decref(v);
  tb__cli_api_deinit(&api);
  return rc;
}

/* deploy, stop and rollback: one POST each. */
static int post_cmd(int argc, char **argv, const char *what, const char *allowed) {
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
  opts_t o;
  char id[TB_UUID_STR_LEN + 1], path[128];
  int rc = parse(argc, argv, &o, allowed);
  if (rc == 0) rc = tb__cli_app_id(o.app, NULL, id);
  json_t *v = NULL, *body = json_object();
  long st = 0;
  if (rc == 0) {
    if (o.version) json_object_set_new(body, "version", json_integer(atoll(o.version)));
    if (o.target) json_object_set_new(body, "target", json_string(o.target));
    if (o.runtime) json_object_set_new(body, "runtime", json_string(o.runtime));
    char *text = json_dumps(body, JSON_COMPACT);
    tb__cli_body_t b = {.json = text};
    snprintf(path, sizeof path, "/v1/apps/%s/%s", id, what);
    rc = tb__cli_api_call(&api, "POST", path, &b, &st, &v);
    free(text);
  }
  if (rc == 0) {
    if (strcmp(what, "stop") == 0)
      printf("stopped %s\n", id);
    else
      printf("%s %s: version %lld on %s (deployment %s)\n", strcmp(what, "deploy") == 0 ? "deploying" : "rolling back",
             id, (long long)json_integer_value(json_object_get(v, "version")), str(v, "supervisor_name"),
             str(v, "deployment"));
  }
  json_decref(body);
  json_decref(v);
  tb__cli_api_deinit(&api);
  return rc;
}

int tb__cli_deploy(int argc, char **argv) { return post_cmd(argc, argv, "deploy", "vtr"); }
int tb__cli_stop(int argc, char **argv) { return post_cmd(argc, argv, "stop", ""); }
int tb__cli_rollback(int argc, char **argv) { return post_cmd(argc, argv, "rollback", "v"); }

int tb__cli_logs(int argc, char **argv) {
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
  opts_t o;
  char id[TB_UUID_STR_LEN + 1], path[160];
  int rc = parse(argc, argv, &o, "f");
  if (rc == 0) rc = tb__cli_app_id(o.app, NULL, id);
  long st = 0;
  if (rc == 0) {
    snprintf(path, sizeof path, "/v1/apps/%s/logs%s", id, o.follow ? "?follow=1" : "");
    rc = tb__cli_api_call(&api, "GET", path, NULL, &st, NULL);
  }
  tb__cli_api_deinit(&api);
  return rc;
}
