/*
 * api.c — the node's router and its JSON handlers. A request head is matched against the
 * route table (tb__node_routes, which /v1/openapi.json is generated from), the token
 * verified against the route's scope and the app's tenant, a JSON body read when the
 * route takes one, then the handler runs. Mutations append an event (and catch the
 * projections up) before answering; reads come from the projections only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "tb/alloc.h"
#include "tb/json.h"
#include "tb/log.h"

#define JSON_BODY_MAX ((size_t)1 << 20)

/* ---- replies ---- */

int tb__node_reply_json(tb__node_x_t *x, int status, json_t *v) {
  tb_buf_t b;
  tb_buf_init(&b, TB_BUF_DEFAULT_MAX);
  int rc = v ? tb_json_dump(v, TB_JSON_COMPACT, &b) : TB_ENOMEM;
  json_decref(v);
  if (rc == 0) rc = tb_buf_putc(&b, '\n');
  if (rc != 0) {
    tb_buf_deinit(&b);
    return tb_http_resp_error(x->req, 500, "internal", "The response could not be built.");
  }
  rc = tb_http_resp_send(x->req, status, "application/json", b.data, b.len);
  tb_buf_deinit(&b);
  return rc;
}

int tb__node_error(tb__node_x_t *x, int status, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return tb_http_resp_error(x->req, status, code, msg);
}

int tb__node_append(tb_node_t *n, const char *type, const tb_uuid_t *agg, const char *actor, const char *idem,
                    json_t *payload, uint64_t *offset, tb_errbuf_t *eb) {
  char *text = json_dumps(payload, JSON_COMPACT);
  if (!text) return TB_ENOMEM;
  tb_event_t ev = {.type = type, .schema = 1, .actor = actor, .idem_key = idem, .payload = text,
                   .payload_len = strlen(text)};
  if (agg) ev.aggregate = *agg;
  int rc = tb_projections_check_event(&ev, eb);
  tb_eventlog_ack_t ack = {0};
  if (rc == 0) rc = tb_eventlog_append(n->log, &ev, &ack, eb);
  free(text);
  if (rc == 0) rc = tb__node_sync(n, eb);
  if (rc == 0 && offset) *offset = ack.offset;
  return rc;
}

static void reply_append_failed(tb__node_x_t *x, int rc, const char *msg) {
  tb_log_error("node", "append failed", TB_KV_ERR(rc), TB_KV_STR("detail", msg));
  tb__node_error(x, rc == TB_EINVAL ? 400 : 500, rc == TB_EINVAL ? "invalid_event" : "event_log",
                 "The change could not be recorded: %s.", msg[0] ? msg : tb_strerror(rc));
}

/* ---- query strings ---- */

static bool query_get(const tb__node_x_t *x, const char *key, char *out, size_t cap) {
  size_t kl = strlen(key);
  for (const char *p = x->query; *p;) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    if (len >= kl && strncmp(p, key, kl) == 0 && (len == kl || p[kl] == '=')) {
      size_t vl = len > kl ? len - kl - 1 : 0;
      if (vl >= cap) vl = cap - 1;
      memcpy(out, p + kl + (len > kl), vl);
      out[vl] = 0;
      return true;
    }
    p += len + (amp != NULL);
  }
  return false;
}

static bool parse_pos_int(const char *s, int64_t *out) {
  if (!s || !*s || strlen(s) > 15) return false;
  int64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (*s - '0');
  }
  *out = v;
  return true;
}

/* ---- handlers ---- */

static void h_health(tb__node_x_t *x) {
  tb__node_reply_json(x, 200, json_pack("{s:s, s:I}", "status", "ok", "offset",
                                        (json_int_t)tb_projections_offset(x->node->proj)));
}

/*
 * GET /v1/apps answers from a small cache of serialised lists, one per tenant, keyed by the
 * projections' offset: the list can only change when an event is applied, so an entry
 * whose offset is the current one is exactly what the projections would say. Building
 * the list of 1,000 apps costs milliseconds of JSON work; copying it, microseconds.
 */
static void h_apps_list(tb__node_x_t *x) {
  tb_node_t *n = x->node;
  uint64_t off = tb_projections_offset(n->proj);
  tb__node_list_cache_t *slot = NULL, *oldest = &n->list_cache[0];
  for (size_t i = 0; i < TB__NODE_LIST_CACHE; i++) {
    tb__node_list_cache_t *c = &n->list_cache[i];
    if (c->tenant && strcmp(c->tenant, x->claims.tenant) == 0) {
      slot = c;
      break;
    }
    if (c->used_at < oldest->used_at) oldest = c;
  }
  if (slot && slot->offset == off && slot->body) {
    slot->used_at = ++n->list_clock;
    tb_http_resp_send(x->req, 200, "application/json", slot->body, slot->len);
    return;
  }
  json_t *v = NULL;
  int rc = tb_proj_apps_of_tenant(n->proj, x->claims.tenant, &v);
  if (rc == TB_ENOTFOUND) v = json_array(), rc = 0;
  char *text = rc == 0 && v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (!text) {
    tb__node_error(x, 500, "internal", "The apps could not be listed: %s.", tb_strerror(rc ? rc : TB_ENOMEM));
    return;
  }
  size_t len = strlen(text);
  tb_http_resp_send(x->req, 200, "application/json", text, len);
  if (!slot) {
    slot = oldest;
    tb_free(slot->tenant);
    slot->tenant = tb_strdup(x->claims.tenant);
  }
  free(slot->body);
  slot->body = text, slot->len = len, slot->offset = off, slot->used_at = ++n->list_clock;
}

static void h_app_get(tb__node_x_t *x) { tb__node_reply_json(x, 200, json_incref(x->app)); }

static void h_apps_register(tb__node_x_t *x) {
  /* The body is the resolved manifest (tb_manifest_to_json), as `tabbify push` sends it. */
  json_t *app = json_object_get(x->json, "app"), *rt = json_object_get(x->json, "runtime");
  const char *id = json_string_value(json_object_get(app, "id"));
  const char *name = json_string_value(json_object_get(app, "name"));
  const char *runtime = json_string_value(json_object_get(rt, "type"));
  if (!id || !name || !runtime) {
    tb__node_error(x, 400, "invalid_manifest",
                   "The body must be a resolved manifest with app.id, app.name and runtime.type.");
    return;
  }
  tb_uuid_t u;
  if (tb_uuid_parse(id, strlen(id), &u) != 0 || tb_uuid_version(&u) != 7) {
    tb__node_error(x, 400, "invalid_uuid", "app.id \"%s\" is not a UUID v7.", id);
    return;
  }
  json_t *old = NULL;
  if (tb_proj_app(x->node->proj, &u, &old) == 0) {
    const char *t = json_string_value(json_object_get(old, "tenant"));
    bool same = t && strcmp(t, x->claims.tenant) == 0;
    json_decref(old);
    if (!same) {
      tb__node_error(x, 409, "app_exists", "App %s is already registered.", id);
      return;
    }
    json_t *v = NULL;
    tb_proj_app(x->node->proj, &u, &v);
    tb__node_reply_json(x, 200, v);
    return;
  }
  char idem[64];
  snprintf(idem, sizeof idem, "register:%s", id);
  json_t *pl = json_pack("{s:s, s:s, s:s, s:s}", "app", id, "tenant", x->claims.tenant, "name", name, "runtime", runtime);
  char eb_[256] = "";
  tb_errbuf_t eb = {eb_, sizeof eb_};
  int rc = pl ? tb__node_append(x->node, "app_registered", &u, x->actor, idem, pl, NULL, &eb) : TB_ENOMEM;
  json_decref(pl);
  if (rc != 0) {
    reply_append_failed(x, rc, eb_);
    return;
  }
  json_t *v = NULL;
  tb_proj_app(x->node->proj, &u, &v);
  tb__node_reply_json(x, 201, v);
}

static bool sup_has(json_t *sup, const char *field, const char *want) {
  json_t *a = json_object_get(sup, field), *e;
  size_t i;
  json_array_foreach(a, i, e) if (json_is_string(e) && strcmp(json_string_value(e), want) == 0) return true;
  return false;
}

/* Picks an up supervisor whose tags include `runtime` (and called `target` if given). */
static json_t *place(tb_node_t *n, const char *runtime, const char *target) {
  json_t *all = NULL, *s, *found = NULL;
  size_t i;
  if (tb_proj_supervisors(n->proj, NULL, NULL, &all) != 0) return NULL;
  json_array_foreach(all, i, s) {
    const char *st = json_string_value(json_object_get(s, "state"));
    const char *nm = json_string_value(json_object_get(s, "name"));
    if (st && strcmp(st, "up") != 0) continue;
    if (target && (!nm || strcmp(nm, target) != 0)) continue;
    if (!sup_has(s, "tags", runtime)) continue;
    found = json_incref(s);
    break;
  }
  json_decref(all);
  return found;
}

static bool has_version(json_t *app, int64_t v) {
  json_t *e;
  size_t i;
  json_array_foreach(json_object_get(app, "versions"), i, e) if (json_integer_value(json_object_get(e, "version")) == v) return true;
  return false;
}

/* deploy and rollback share placement and the answer. */
static void deploy_common(tb__node_x_t *x, bool rollback) {
  tb_node_t *n = x->node;
  char id[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&x->app_id, id);
  int64_t version = 0, from_version = 0;
  const char *runtime = json_string_value(json_object_get(x->app, "runtime"));
  const char *target = NULL;
  char eb_[256] = "";
  tb_errbuf_t eb = {eb_, sizeof eb_};
  if (x->json) {
    if (tb_json_get_int(x->json, "version", &version, &eb) == TB_EINVAL ||
        tb_json_get_str(x->json, "runtime", &runtime, &eb) == TB_EINVAL ||
        tb_json_get_str(x->json, "target", &target, &eb) == TB_EINVAL ||
        (!target && tb_json_get_str(x->json, "supervisor", &target, &eb) == TB_EINVAL)) {
      tb__node_error(x, 400, "invalid_body", "%s.", eb_);
      return;
    }
  }
  json_t *cur = json_object_get(x->app, "current_deployment");
  if (rollback) {
    if (!json_is_object(cur)) {
      tb__node_error(x, 409, "nothing_to_roll_back", "App %s has no deployment to roll back from.", id);
      return;
    }
    from_version = json_integer_value(json_object_get(cur, "version"));
    if (version == 0) {
      json_t *e;
      size_t i;
      json_array_foreach(json_object_get(x->app, "versions"), i, e) {
        int64_t v = json_integer_value(json_object_get(e, "version"));
        if (v < from_version && v > version) version = v;
      }
      if (version == 0) {
        tb__node_error(x, 409, "nothing_to_roll_back", "App %s has no version before %lld to roll back to.", id,
                       (long long)from_version);
        return;
      }
    }
  } else if (version == 0) {
    version = json_integer_value(json_object_get(x->app, "latest_version"));
    if (version <= 0) {
      tb__node_error(x, 409, "no_version", "App %s has no uploaded version to deploy; push one first.", id);
      return;
    }
  }
  if (version <= 0 || !has_version(x->app, version)) {
    tb__node_error(x, 404, "unknown_version", "App %s has no version %lld.", id, (long long)version);
    return;
  }
  if (!runtime) runtime = "wasm-http";
  json_t *sup = place(n, runtime, target);
  if (!sup) {
    if (target)
      tb__node_error(x, 409, "no_supervisor", "No supervisor named \"%s\" is up with the tag \"%s\".", target, runtime);
    else
      tb__node_error(x, 409, "no_supervisor", "No supervisor is up whose tags include the runtime \"%s\".", runtime);
    return;
  }
  const char *sup_id = json_string_value(json_object_get(sup, "supervisor"));
  tb_uuid_t dep;
  tb_uuid_v7_new(&dep);
  char dep_s[TB_UUID_STR_LEN + 1], idem[96];
  tb_uuid_format(&dep, dep_s);
  json_t *pl;
  if (rollback) {
    pl = json_pack("{s:s, s:s, s:I, s:I, s:s}", "app", id, "deployment", dep_s, "from_version", (json_int_t)from_version,
                   "to_version", (json_int_t)version, "runtime", runtime);
    snprintf(idem, sizeof idem, "rollback:%s", dep_s);
  } else {
    pl = json_pack("{s:s, s:s, s:I, s:s}", "app", id, "deployment", dep_s, "version", (json_int_t)version, "runtime",
                   runtime);
    snprintf(idem, sizeof idem, "deploy:%s", dep_s);
  }
  if (pl && target) json_object_set_new(pl, "target", json_string(target));
  int rc = pl ? tb__node_append(n, rollback ? "rollback_requested" : "deploy_requested", &x->app_id, x->actor, idem, pl,
                                NULL, &eb)
              : TB_ENOMEM;
  json_decref(pl);
  if (rc == 0) {
    pl = json_pack("{s:s, s:s, s:s}", "app", id, "deployment", dep_s, "supervisor", sup_id);
    snprintf(idem, sizeof idem, "placed:%s", dep_s);
    rc = pl ? tb__node_append(n, "deployment_placed", &x->app_id, "node", idem, pl, NULL, &eb) : TB_ENOMEM;
    json_decref(pl);
  }
  if (rc != 0) {
    json_decref(sup);
    reply_append_failed(x, rc, eb_);
    return;
  }
  json_t *out = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "app", id, "deployment", dep_s, "version",
                          (json_int_t)version, "runtime", runtime, "supervisor", sup_id, "supervisor_name",
                          json_string_value(json_object_get(sup, "name")));
  json_decref(sup);
  tb__node_reply_json(x, 202, out);
}

static void h_deploy(tb__node_x_t *x) { deploy_common(x, false); }
static void h_rollback(tb__node_x_t *x) { deploy_common(x, true); }

static void h_stop(tb__node_x_t *x) {
  char id[TB_UUID_STR_LEN + 1], eb_[256] = "";
  tb_errbuf_t eb = {eb_, sizeof eb_};
  tb_uuid_format(&x->app_id, id);
  json_t *pl = json_pack("{s:s, s:s}", "app", id, "reason", "stopped by the user");
  int rc = pl ? tb__node_append(x->node, "app_stopped", &x->app_id, x->actor, NULL, pl, NULL, &eb) : TB_ENOMEM;
  json_decref(pl);
  if (rc != 0) {
    reply_append_failed(x, rc, eb_);
    return;
  }
  json_t *v = NULL;
  tb_proj_app(x->node->proj, &x->app_id, &v);
  tb__node_reply_json(x, 202, v);
}

static void h_supervisors(tb__node_x_t *x) {
  json_t *all = NULL, *s, *out = json_array();
  size_t i;
  if (tb_proj_supervisors(x->node->proj, NULL, NULL, &all) == 0) {
    json_array_foreach(all, i, s) {
      json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O}", "display_name", json_object_get(s, "name"), "tags",
                                           json_object_get(s, "tags"), "id", json_object_get(s, "supervisor"),
                                           "state", json_object_get(s, "state")));
    }
  }
  json_decref(all);
  tb__node_reply_json(x, 200, out);
}

typedef struct ev_ctx {
  json_t *arr;
  size_t max;
} ev_ctx_t;

static int ev_cb(const tb_event_t *ev, void *ud) {
  ev_ctx_t *c = ud;
  char id[TB_UUID_STR_LEN + 1], agg[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&ev->id, id);
  tb_uuid_format(&ev->aggregate, agg);
  json_t *pl = json_loadb(ev->payload, ev->payload_len, 0, NULL);
  json_array_append_new(c->arr, json_pack("{s:I, s:s, s:s, s:i, s:s, s:s, s:I, s:o, s:o}", "offset",
                                          (json_int_t)ev->offset, "id", id, "type", ev->type, "schema",
                                          (int)ev->schema, "aggregate", agg, "actor", ev->actor, "ts_ns",
                                          (json_int_t)ev->ts_ns, "idempotency_key",
                                          ev->idem_key ? json_string(ev->idem_key) : json_null(), "payload",
                                          pl ? pl : json_null()));
  return json_array_size(c->arr) >= c->max ? 1 : 0;
}

static void h_events(tb__node_x_t *x) {
  char v[32];
  int64_t from = 1, limit = 1000;
  if (query_get(x, "from", v, sizeof v) && (!parse_pos_int(v, &from) || from < 1)) {
    tb__node_error(x, 400, "invalid_query", "from must be an offset of 1 or more.");
    return;
  }
  if (query_get(x, "limit", v, sizeof v) && (!parse_pos_int(v, &limit) || limit < 1 || limit > 10000)) {
    tb__node_error(x, 400, "invalid_query", "limit must be between 1 and 10000.");
    return;
  }
  /* type=T keeps only events of that type (the log filters them while reading). */
  char type[64];
  bool typed = query_get(x, "type", type, sizeof type);
  if (typed) {
    bool okt = type[0] != 0 && strlen(type) < sizeof type - 1;
    for (const char *p = type; okt && *p; p++) okt = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
    if (!okt) {
      tb__node_error(x, 400, "invalid_query", "type must be an event type such as app_registered.");
      return;
    }
  }
  ev_ctx_t c = {json_array(), (size_t)limit};
  char eb_[256] = "";
  tb_errbuf_t eb = {eb_, sizeof eb_};
  int rc = tb_eventlog_read(x->node->log, (uint64_t)from, typed ? type : NULL, ev_cb, &c, &eb);
  if (rc < 0) {
    json_decref(c.arr);
    tb__node_error(x, 500, "event_log", "The event log could not be read: %s.", eb_[0] ? eb_ : tb_strerror(rc));
    return;
  }
  tb__node_reply_json(x, 200, c.arr);
}

/*
 * POST /v1/revocations {"kind":"key"|"token","id":"...","reason"?:"..."}. The revocation is
 * the credential_revoked event every verifier applies; it is appended (durable) first, and
 * tb__node_append's catch-up applies it to this node's verifier before we answer, so the
 * very next request with that token is refused. Other nodes reading the same log apply it
 * within their sync period. Revoking what is already revoked appends nothing (200).
 */
static bool printable_id(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return false;
  for (; *s; s++)
    if (*s <= ' ' || *s > '~') return false;
  return true;
}

static void h_revoke(tb__node_x_t *x) {
  tb_node_t *n = x->node;
  const char *kind = NULL, *id = NULL, *reason = NULL;
  char eb_[256] = "";
  tb_errbuf_t eb = {eb_, sizeof eb_};
  if (!x->json) {
    tb__node_error(x, 400, "invalid_json", "This call needs a JSON body {\"kind\":\"key\"|\"token\",\"id\":\"...\"}.");
    return;
  }
  int rk = tb_json_get_str(x->json, "kind", &kind, &eb);
  int ri = rk == 0 ? tb_json_get_str(x->json, "id", &id, &eb) : 0;
  int rr = rk == 0 && ri == 0 ? tb_json_get_str(x->json, "reason", &reason, &eb) : 0;
  if (rk != 0 || ri != 0 || rr == TB_EINVAL) {
    tb__node_error(x, 400, "invalid_body", "The body needs \"kind\" and \"id\" strings (and an optional \"reason\"): %s.",
                   eb_[0] ? eb_ : rk != 0 ? "\"kind\" is missing" : "\"id\" is missing");
    return;
  }
  bool is_key = strcmp(kind, "key") == 0;
  if (!is_key && strcmp(kind, "token") != 0) {
    tb__node_error(x, 400, "invalid_body", "\"kind\" must be \"key\" or \"token\".");
    return;
  }
  if (!printable_id(id, is_key ? TB_AUTH_KID_LEN : TB_AUTH_JTI_MAX - 1)) {
    tb__node_error(x, 400, "invalid_body", "\"id\" must be a %s: 1 to %d printable characters without spaces.",
                   is_key ? "key id" : "token id", is_key ? TB_AUTH_KID_LEN : TB_AUTH_JTI_MAX - 1);
    return;
  }
  if (reason && strlen(reason) > 1024) {
    tb__node_error(x, 400, "invalid_body", "\"reason\" may be at most 1024 bytes.");
    return;
  }
  bool already = is_key ? tb_auth_key_revoked(n->auth, id) : tb_auth_token_revoked(n->auth, id);
  uint64_t off = 0;
  if (!already) {
    json_t *pl = tb_auth_revocation_event(kind, id, reason);
    int rc = pl ? tb__node_append(n, TB_AUTH_EVENT_REVOKED, NULL, x->actor, NULL, pl, &off, &eb) : TB_ENOMEM;
    json_decref(pl);
    if (rc != 0) {
      reply_append_failed(x, rc, eb_);
      return;
    }
  }
  json_t *out = json_pack("{s:s, s:s, s:b}", "kind", kind, "id", id, "revoked", 1);
  if (out && reason) json_object_set_new(out, "reason", json_string(reason));
  if (out && !already) json_object_set_new(out, "offset", json_integer((json_int_t)off));
  tb__node_reply_json(x, already ? 200 : 201, out);
}

/* ---- the route table ---- */

static const int S_OPEN[] = {200, 0};
static const int S_READ[] = {200, 401, 403, 0};
static const int S_APP_READ[] = {200, 400, 401, 403, 404, 0};
static const int S_REGISTER[] = {200, 201, 400, 401, 403, 409, 0};
static const int S_PUT[] = {201, 400, 401, 403, 404, 409, 413, 0};
static const int S_DEPLOY[] = {202, 400, 401, 403, 404, 409, 0};
static const int S_STOP[] = {202, 400, 401, 403, 404, 0};
static const int S_EVENTS[] = {200, 400, 401, 403, 0};
static const int S_APP_ROUTE[] = {200, 400, 404, 502, 503, 504, 0}; /* or whatever the app answers */
static const int S_REVOKE[] = {200, 201, 400, 401, 403, 0};

const tb__node_route_t tb__node_routes[] = {
    {"GET", "/health", NULL, false, h_health, "Liveness: answers while the node serves.", S_OPEN},
    {"GET", "/v1/openapi.json", NULL, false, tb__node_get_openapi, "This document.", S_OPEN},
    {"GET", "/v1/apps", "apps:read", false, h_apps_list, "The apps of the token's tenant.", S_READ},
    {"POST", "/v1/apps", "apps:write", true, h_apps_register, "Registers an app from its resolved manifest.",
     S_REGISTER},
    {"GET", "/v1/apps/{uuid}", "apps:read", false, h_app_get, "One app with its versions and deployments.",
     S_APP_READ},
    {"PUT", "/v1/apps/{uuid}/versions/{n}", "apps:write", false, tb__node_put_version,
     "Uploads version n's artifact (streamed; X-Content-SHA256 required).", S_PUT},
    {"POST", "/v1/apps/{uuid}/deploy", "apps:deploy", true, h_deploy,
     "Deploys a version on a supervisor whose tags include the runtime.", S_DEPLOY},
    {"POST", "/v1/apps/{uuid}/stop", "apps:deploy", true, h_stop, "Stops the app.", S_STOP},
    {"POST", "/v1/apps/{uuid}/rollback", "apps:deploy", true, h_rollback,
     "Deploys the version before the current one (or the one given).", S_DEPLOY},
    {"GET", "/v1/apps/{uuid}/logs", "apps:read", false, tb__node_get_logs,
     "The app's log; follow=1 keeps streaming new lines.", S_APP_READ},
    {"GET", "/v1/supervisors", "supervisors:read", false, h_supervisors, "The supervisors and their tags.", S_READ},
    {"GET", "/v1/events", "events:read", false, h_events, "Events from offset `from` (at most `limit`; only type `type` if given).", S_EVENTS},
    {"POST", "/v1/revocations", "admin:revoke", true, h_revoke,
     "Revokes a token id or a key id (appends credential_revoked; applied at once).", S_REVOKE},
    {"*", "/app/{uuid}/*", NULL, false, tb__node_app_route,
     "Traffic for an app, proxied to its runner (woken through its supervisor when idle).",
     S_APP_ROUTE},
};
const size_t tb__node_nroutes = sizeof tb__node_routes / sizeof tb__node_routes[0];

/* Matches `path` against `pattern`, capturing {segments} into x->params. */
static bool match(tb__node_x_t *x, const char *pattern, const char *path) {
  char *w = x->segs;
  size_t left = sizeof x->segs;
  x->nparams = 0;
  const char *p = pattern, *s = path;
  while (*p) {
    if (p[0] == '/' && p[1] == '*' && p[2] == 0) return *s == '/' || *s == 0;
    if (*p == '{') {
      const char *end = strchr(p, '}');
      size_t n = strcspn(s, "/");
      if (!end || n == 0 || n + 1 > left || x->nparams == 4) return false;
      memcpy(w, s, n);
      w[n] = 0;
      x->params[x->nparams++] = w;
      w += n + 1, left -= n + 1;
      s += n, p = end + 1;
      continue;
    }
    if (*p != *s) return false;
    p++, s++;
  }
  return *s == 0;
}

void tb__node_x_free(tb__node_x_t *x) {
  if (!tb__node_x_store_cleanup(x)) {
    x->up_orphan = true; /* store.c frees it when its threadpool job comes back */
    return;
  }
  if (x->have_claims) tb_auth_claims_deinit(&x->claims);
  tb_buf_deinit(&x->body);
  json_decref(x->json);
  json_decref(x->app);
  tb__node_proxy_detach(x);
  tb__node_x_stream_cleanup(x); /* frees x, now or once its handles are closed */
}

static void on_done(tb_http_req_t *req, int err, void *ud) {
  (void)req, (void)err;
  tb__node_x_t *x = ud;
  x->done = true;
  tb__node_x_free(x);
}

static void body_data(tb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  tb__node_x_t *x = ud;
  if (x->failed) return;
  if (tb_buf_append(&x->body, data, len) != 0) {
    x->failed = true;
    tb_http_req_read_stop(req);
    tb__node_error(x, 413, "body_too_large", "A JSON body may be at most %zu bytes.", JSON_BODY_MAX);
  }
}

static void body_end(tb_http_req_t *req, void *ud) {
  (void)req;
  tb__node_x_t *x = ud;
  if (x->failed) return;
  if (x->body.len > 0) {
    char eb_[256] = "";
    tb_errbuf_t eb = {eb_, sizeof eb_};
    if (tb_json_parse((const char *)x->body.data, x->body.len, &x->json, &eb) != 0 || !json_is_object(x->json)) {
      tb__node_error(x, 400, "invalid_json", "The body is not a JSON object%s%s.", eb_[0] ? ": " : "", eb_);
      return;
    }
  } else if (strcmp(x->route->pattern, "/v1/apps") == 0) {
    tb__node_error(x, 400, "invalid_json", "This call needs a JSON body.");
    return;
  }
  x->route->handler(x);
}

static void refuse_auth(tb__node_x_t *x, const tb_auth_result_t *res, const tb_auth_need_t *need) {
  tb_buf_t body, www;
  tb_buf_init(&body, 4096);
  tb_buf_init(&www, 4096);
  tb_auth_result_json(res, &body);
  tb_auth_result_www_authenticate(res, need, &www);
  tb_http_header_t h[2] = {{"Content-Type", "application/json", 0, 0}, {"WWW-Authenticate", tb_buf_cstr(&www), 0, 0}};
  if (tb_http_resp_start(x->req, res->status, h, 2, (int64_t)body.len) == 0) {
    tb_http_resp_write(x->req, body.data, body.len, NULL, NULL);
    tb_http_resp_end(x->req);
  }
  tb_buf_deinit(&body);
  tb_buf_deinit(&www);
}

void tb__node_handle(tb_http_req_t *req, void *ud) {
  tb_node_t *n = ud;
  tb__node_x_t *x = tb_calloc(1, sizeof *x);
  if (!x) {
    tb_http_resp_error(req, 503, "overloaded", "The node is out of memory.");
    return;
  }
  x->node = n, x->req = req, x->fd = -1, x->log_fd = -1;
  tb_buf_init(&x->body, JSON_BODY_MAX);
  tb_http_req_on_done(req, on_done, x);
  const tb_http_head_t *head = tb_http_req_head(req);
  const char *t = head->target, *q = strchr(t, '?');
  size_t pl = q ? (size_t)(q - t) : strlen(t);
  if (pl >= sizeof x->path || (q && strlen(q + 1) >= sizeof x->query)) {
    tb__node_error(x, 414, "uri_too_long", "The request target is too long.");
    return;
  }
  memcpy(x->path, t, pl);
  if (q) strcpy(x->query, q + 1);

  bool path_matched = false;
  for (size_t i = 0; i < tb__node_nroutes; i++) {
    if (!match(x, tb__node_routes[i].pattern, x->path)) continue;
    path_matched = true;
    if (strcmp(tb__node_routes[i].method, "*") == 0 || strcmp(tb__node_routes[i].method, head->method) == 0) {
      x->route = &tb__node_routes[i];
      break;
    }
  }
  if (!x->route) {
    if (path_matched)
      tb__node_error(x, 405, "method_not_allowed", "%s is not allowed on %s.", head->method, x->path);
    else
      tb__node_error(x, 404, "no_route", "There is no route %s %s; see /v1/openapi.json.", head->method, x->path);
    return;
  }
  const tb__node_route_t *r = x->route;
  if (strncmp(r->pattern, "/app/", 5) == 0) {
    r->handler(x);
    return;
  }
  /* An app route names its app: look it up so the tenant check can use it. */
  bool app_route = strstr(r->pattern, "{uuid}") != NULL;
  bool bad_uuid = false;
  if (app_route) {
    if (tb_uuid_parse(x->params[0], strlen(x->params[0]), &x->app_id) != 0)
      bad_uuid = true;
    else if (tb_proj_app(n->proj, &x->app_id, &x->app) != 0)
      x->app = NULL;
  }
  if (r->scope) {
    tb_auth_need_t need = {.scope = r->scope};
    if (x->app) need.tenant = json_string_value(json_object_get(x->app, "tenant"));
    tb_auth_result_t res;
    int rc = tb_auth_verify(n->auth, tb_http_req_header(req, "Authorization"), &need, &x->claims, &res);
    if (rc == TB_EAUTH || rc == TB_EDENIED) {
      refuse_auth(x, &res, &need);
      return;
    }
    if (rc != 0) {
      tb__node_error(x, 500, "internal", "The token could not be checked.");
      return;
    }
    x->have_claims = true;
    snprintf(x->actor, sizeof x->actor, "user:%s", x->claims.subject);
  }
  if (bad_uuid) {
    tb__node_error(x, 400, "invalid_uuid", "\"%s\" is not a UUID.", x->params[0]);
    return;
  }
  if (app_route && !x->app) {
    tb__node_error(x, 404, "unknown_app", "There is no app %s.", x->params[0]);
    return;
  }
  if (r->json_body) {
    if (head->content_length > (int64_t)JSON_BODY_MAX) {
      tb__node_error(x, 413, "body_too_large", "A JSON body may be at most %zu bytes.", JSON_BODY_MAX);
      return;
    }
    tb_http_req_read_start(req, body_data, body_end, x);
    return;
  }
  r->handler(x);
}
