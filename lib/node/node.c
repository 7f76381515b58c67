/*
 * node.c — the node's life: open the state (event log, projections, signing key, artifact
 * store, log directory), the upstream client of the /app/ proxy, listen, and close again
 * (the server first, then the client). Requests go to api.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node_int.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/log.h"

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = tb_malloc(n);
  if (s) snprintf(s, n, "%s/%s", a, b);
  return s;
}

typedef struct rev_ctx {
  tb_node_t *n;
  uint64_t last;
} rev_ctx_t;

static int apply_revocation(const tb_event_t *ev, void *ud) {
  rev_ctx_t *c = ud;
  json_t *pl = json_loadb(ev->payload, ev->payload_len, 0, NULL);
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  if (!pl || tb_auth_apply_revocation(c->n->auth, pl, &eb) != 0)
    tb_log_warn("node", "skipped a malformed revocation", TB_KV_UINT("offset", ev->offset), TB_KV_STR("detail", msg));
  json_decref(pl);
  return 0;
}

int tb__node_sync(tb_node_t *n, tb_errbuf_t *eb) {
  int rc = tb_projections_catch_up(n->proj, n->log, NULL, eb);
  uint64_t head = 0;
  if (rc == 0) rc = tb_eventlog_head(n->log, &head);
  if (rc == 0 && head > n->revoked_upto) {
    rev_ctx_t c = {n, 0};
    rc = tb_eventlog_read(n->log, n->revoked_upto + 1, TB_AUTH_EVENT_REVOKED, apply_revocation, &c, eb);
    if (rc == 0) n->revoked_upto = head;
  }
  return rc;
}

/*
 * Liveness is the node's to decide and to record (EVENTS.md): a supervisor in state up
 * whose last heartbeat or registration is older than supervisor_lost_ms becomes lost,
 * so placement skips it; its next heartbeat makes it up again. Checked once a second.
 */
static void check_liveness(tb_node_t *n) {
  uint64_t now_loop = uv_now(n->loop);
  if (now_loop - n->liveness_at < 1000) return;
  n->liveness_at = now_loop;
  json_t *all = NULL, *s;
  size_t i;
  if (tb_proj_supervisors(n->proj, NULL, NULL, &all) != 0) return;
  int64_t now = tb_clock_wall_ns();
  json_array_foreach(all, i, s) {
    const char *st = json_string_value(json_object_get(s, "state")), *id = json_string_value(json_object_get(s, "supervisor"));
    int64_t seen = json_integer_value(json_object_get(s, "last_seen"));
    tb_uuid_t u;
    if (!st || strcmp(st, "up") != 0 || !id || tb_uuid_parse(id, strlen(id), &u) != 0) continue;
    if (seen == 0 || now - seen < (int64_t)n->supervisor_lost_ns) continue;
    char reason[100], idem[120], eb_[200] = "";
    tb_errbuf_t eb = {eb_, sizeof eb_};
    snprintf(reason, sizeof reason, "no heartbeat for %lld s", (long long)((now - seen) / 1000000000));
    snprintf(idem, sizeof idem, "lost:%s:%lld", id, (long long)seen); /* once per silence */
    json_t *pl = json_pack("{s:s, s:s}", "supervisor", id, "reason", reason);
    int rc = pl ? tb__node_append(n, "supervisor_lost", &u, "node", idem, pl, NULL, &eb) : TB_ENOMEM;
    json_decref(pl);
    if (rc == 0) tb_log_warn("node", "supervisor lost", TB_KV_STR("supervisor", id), TB_KV_STR("reason", reason));
    else tb_log_error("node", "cannot record a lost supervisor", TB_KV_ERR(rc), TB_KV_STR("detail", eb_));
  }
  json_decref(all);
}

static void sync_tick(uv_timer_t *t) {
  tb_node_t *n = t->data;
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc = tb__node_sync(n, &eb);
  if (rc != 0) tb_log_error("node", "cannot catch up with the event log", TB_KV_ERR(rc), TB_KV_STR("detail", msg));
  else check_liveness(n);
}

static void node_free(tb_node_t *n) {
  for (size_t i = 0; i < TB__NODE_LIST_CACHE; i++) {
    tb_free(n->list_cache[i].tenant);
    free(n->list_cache[i].body);
  }
  tb__node_proxy_deinit(n);
  tb_projections_free(n->proj);
  tb_eventlog_close(n->log);
  tb_auth_free(n->auth);
  tb_auth_key_free(n->key);
  tb_free(n->state_dir);
  tb_free(n->store_dir);
  tb_free(n->logs_dir);
  tb_free(n);
}

int tb_node_new(uv_loop_t *loop, const tb_node_config_t *cfg, tb_node_t **out, tb_errbuf_t *eb) {
  if (!cfg || !cfg->state_dir || !*cfg->state_dir) return tb_errf(eb, TB_EINVAL, "the node needs a state directory");
  tb_node_t *n = tb_calloc(1, sizeof *n);
  if (!n) return TB_ENOMEM;
  int rc = 0;
  char *key_file = NULL;
  n->loop = loop;
  n->max_artifact = cfg->max_artifact_bytes ? cfg->max_artifact_bytes : TB_NODE_DEFAULT_MAX_ARTIFACT;
  n->dial_timeout_ms = cfg->dial_timeout_ms ? cfg->dial_timeout_ms : 1000;
  n->supervisor_lost_ns = (cfg->supervisor_lost_ms ? cfg->supervisor_lost_ms : 90000) * 1000000ull;
  n->state_dir = tb_strdup(cfg->state_dir);
  n->store_dir = cfg->store_dir ? tb_strdup(cfg->store_dir) : join(cfg->state_dir, "artifacts");
  n->logs_dir = join(cfg->state_dir, "logs");
  key_file = cfg->key_file ? tb_strdup(cfg->key_file) : join(cfg->state_dir, "node.key");
  if (!n->state_dir || !n->store_dir || !n->logs_dir || !key_file) {
    rc = TB_ENOMEM;
    goto out;
  }
  if (mkdir(n->state_dir, 0700) != 0 && errno != EEXIST) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create the state directory %s: %s", n->state_dir,
                 strerror(errno));
    goto out;
  }
  mkdir(n->logs_dir, 0700);
  if (mkdir(n->store_dir, 0700) != 0 && errno != EEXIST) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create the artifact store %s: %s", n->store_dir,
                 strerror(errno));
    goto out;
  }
  tb__node_store_sweep(n);

  bool created = false;
  if ((rc = tb_auth_key_load_or_create(key_file, &n->key, &created, eb)) != 0) goto out;
  if (created) tb_log_info("node", "created the signing key", TB_KV_STR("file", key_file));
  if ((rc = tb_auth_new(NULL, &n->auth)) != 0 || (rc = tb_auth_trust_key(n->auth, n->key)) != 0) goto out;

  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.state_dir = n->state_dir;
  if ((rc = tb_eventlog_open(&o, &n->log, eb)) != 0) goto out;
  if ((rc = tb_projections_open(n->log, n->state_dir, &n->proj, eb)) != 0) goto out;
  if ((rc = tb__node_sync(n, eb)) != 0) goto out;
  if ((rc = tb__node_proxy_init(n, cfg)) != 0) goto out;

  tb_http_server_config_t sc = {0};
  sc.limits.max_body_bytes = n->max_artifact + 1; /* the store answers 413 with its own sentence */
  if ((rc = tb_http_server_new(loop, &sc, tb__node_handle, n, &n->srv)) != 0) goto out;
  if ((rc = tb_http_server_listen(n->srv, cfg->listen ? cfg->listen : TB_NODE_DEFAULT_LISTEN, eb)) != 0) {
    tb_http_server_close(n->srv, NULL, NULL);
    n->srv = NULL;
    goto out;
  }
  /* Supervisors and revocations may come from other processes appending to the log. */
  uv_timer_init(loop, &n->sync_timer);
  n->sync_timer.data = n;
  uv_timer_start(&n->sync_timer, sync_tick, TB__NODE_SYNC_MS, TB__NODE_SYNC_MS);
out:
  tb_free(key_file);
  if (rc != 0) {
    if (n->client) tb_http_client_close(n->client, NULL, NULL); /* freed from the loop; no call ran on it */
    node_free(n);
    return rc;
  }
  *out = n;
  return 0;
}

int tb_node_port(const tb_node_t *node) { return tb_http_server_port(node->srv); }

int tb_node_register_supervisor(tb_node_t *n, const char *name, const char *tags, tb_errbuf_t *eb) {
  tb_uuid_t id;
  bool known = false;
  json_t *all = NULL, *s;
  size_t i;
  if (tb_proj_supervisors(n->proj, NULL, NULL, &all) == 0) {
    json_array_foreach(all, i, s) {
      const char *nm = json_string_value(json_object_get(s, "name"));
      const char *sid = json_string_value(json_object_get(s, "supervisor"));
      if (nm && sid && strcmp(nm, name) == 0 && tb_uuid_parse(sid, strlen(sid), &id) == 0) {
        known = true;
        break;
      }
    }
  }
  json_decref(all);
  if (!known && tb_uuid_v7_new(&id) != 0) return TB_EIO;
  char ids[TB_UUID_STR_LEN + 1];
  tb_uuid_format(&id, ids);
  json_t *tv = json_array();
  char buf[512];
  snprintf(buf, sizeof buf, "%s", tags ? tags : "");
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
    json_array_append_new(tv, json_string(t));
  json_t *pl = json_pack("{s:s, s:s, s:s, s:O, s:o}", "supervisor", ids, "name", name, "address", "::1", "tags", tv,
                         "runtimes", tv);
  int rc = pl ? tb__node_append(n, "supervisor_registered", &id, "node", NULL, pl, NULL, eb) : TB_ENOMEM;
  json_decref(pl);
  return rc;
}

static void timer_closed(uv_handle_t *h) {
  tb_node_t *n = h->data;
  void (*cb)(void *) = n->on_closed;
  void *cud = n->closed_ud;
  node_free(n);
  if (cb) cb(cud);
}

static void client_closed(void *ud) {
  tb_node_t *n = ud;
  uv_close((uv_handle_t *)&n->sync_timer, timer_closed);
}

/* The server first (its exchanges may still use upstream calls), then the client. */
static void srv_closed(void *ud) {
  tb_node_t *n = ud;
  tb_http_client_close(n->client, client_closed, n);
}

void tb_node_close(tb_node_t *n, void (*on_closed)(void *ud), void *ud) {
  n->on_closed = on_closed, n->closed_ud = ud;
  n->closing = true;
  tb__node_end_followers(n);
  tb_http_server_close(n->srv, srv_closed, n);
}
