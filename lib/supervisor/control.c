/*
 * control.c — the supervisor's control API (HTTP on --bind; later on its mesh address):
 *
 *   GET  /health                  {"status":"ok","supervisor","name","firecracker","docker","ula",
 *                                  "runtimes":[...],"runners":N,"why":{...}}
 *   GET  /v1/runners              the slots: [{"runner","app","deployment","state","address",...}]
 *   POST /v1/apps/{uuid}/wake     starts the app's runner if it is not running and answers once
 *                                 it serves: 200 {"app","runner","deployment","address"};
 *                                 404 not placed here, 409 stopped, 503 start_failed
 *
 * The node calls wake for a request to an app without a running runner (scale to zero,
 * or a crash); concurrent wakes for one app wait on the same start. Wake changes no
 * desired state (it only starts what the log already says should run), which is why it
 * is safe to leave unauthenticated on loopback and on the mesh, where only members reach it.
 */
#include <stdio.h>
#include <string.h>

#include "supervisor_int.h"
#include "tb/log.h"

static void reply(tb_http_req_t *req, int status, json_t *j) {
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (!text) {
    tb_http_resp_error(req, 500, "internal", "The answer could not be built.");
    return;
  }
  size_t n = strlen(text);
  text[n] = '\n'; /* json_dumps leaves room for nothing more: send without the NUL */
  tb_http_resp_send(req, status, "application/json", text, n + 1);
  free(text);
}

static void health(tb_supervisor_t *s, tb_http_req_t *req) {
  int n = 0;
  for (tb__sup_runner_t *r = s->runners; r; r = r->next) n += r->state == TB__RUN_RUNNING;
  json_t *why = json_object();
  if (!s->caps.docker) json_object_set_new(why, "docker", json_string(s->caps.docker_why));
  if (!s->caps.firecracker) json_object_set_new(why, "firecracker", json_string(s->caps.firecracker_why));
  reply(req, 200,
        json_pack("{s:s, s:s, s:s, s:b, s:b, s:n, s:s, s:o, s:i, s:o}", "status", "ok", "supervisor", s->id_s, "name",
                  s->name, "firecracker", s->caps.firecracker, "docker", s->caps.docker, "ula", "address", s->advertise,
                  "runtimes", tb__sup_runtimes(s), "runners", n, "why", why));
}

static void runners(tb_supervisor_t *s, tb_http_req_t *req) {
  json_t *a = json_array();
  for (tb__sup_runner_t *r = s->runners; r; r = r->next) json_array_append_new(a, tb__sup_runner_json(r));
  reply(req, 200, a);
}

static void wake(tb_supervisor_t *s, tb_http_req_t *req, const char *id) {
  tb_uuid_t app;
  if (tb_uuid_parse(id, strlen(id), &app) != 0) {
    tb_http_resp_error(req, 400, "invalid_uuid", "That is not an app UUID.");
    return;
  }
  char msg[600] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb__sup_runner_t *r = NULL;
  int rc = tb__sup_ensure(s, &app, &r, &eb);
  if (rc == TB_ENOTFOUND) tb_http_resp_error(req, 404, "not_placed", msg);
  else if (rc == TB_ECONFLICT) tb_http_resp_error(req, 409, "app_stopped", msg);
  else if (rc != 0) tb_http_resp_error(req, 503, "start_failed", msg[0] ? msg : tb_strerror(rc));
  else if (r->state == TB__RUN_RUNNING) tb__sup_reply_ready(r, req);
  else if (tb__sup_runner_wait(r, req) != 0) tb_http_resp_error(req, 503, "overloaded", "Out of memory.");
}

void tb__sup_handle(tb_http_req_t *req, void *ud) {
  tb_supervisor_t *s = ud;
  const tb_http_head_t *h = tb_http_req_head(req);
  char path[512];
  snprintf(path, sizeof path, "%s", h->target);
  char *q = strchr(path, '?');
  if (q) *q = 0;
  bool get = strcmp(h->method, "GET") == 0, post = strcmp(h->method, "POST") == 0;
  size_t pl = strlen(path);
  if (strcmp(path, "/health") == 0 && get) health(s, req);
  else if (strcmp(path, "/v1/runners") == 0 && get) runners(s, req);
  else if (post && strncmp(path, "/v1/apps/", 9) == 0 && pl > 14 && strcmp(path + pl - 5, "/wake") == 0) {
    path[pl - 5] = 0;
    wake(s, req, path + 9);
  } else if (strcmp(path, "/health") == 0 || strcmp(path, "/v1/runners") == 0 || strncmp(path, "/v1/apps/", 9) == 0)
    tb_http_resp_error(req, 405, "method_not_allowed", "That method is not allowed here.");
  else tb_http_resp_error(req, 404, "not_found", "No such route on the supervisor.");
}
