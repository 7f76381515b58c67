/*
 * supervisor.c — a supervisor's life: identity, event log, registration, heartbeats, and
 * the timer that reads the log for placements.
 *
 * Identity: <state_dir>/supervisor.json holds the supervisor's UUID v7, minted at first
 * start (0600), so a restarted supervisor re-registers as itself and finds its runners.
 * Events are appended in the background (tb_eventlog_append_async): they report what has
 * happened, in the order it happened, and a slow disk never delays a wake-up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor_int.h"
#include "tb/alloc.h"
#include "tb/fs.h"
#include "tb/log.h"

#ifndef TB_VERSION
#define TB_VERSION "0"
#endif

static char *dup_or(const char *v, const char *base, const char *leaf) {
  if (v && *v) return tb_strdup(v);
  size_t n = strlen(base) + strlen(leaf) + 2;
  char *p = tb_malloc(n);
  if (p) snprintf(p, n, "%s/%s", base, leaf);
  return p;
}


/* Reads or creates supervisor.json: {"id": "<uuid v7>"}. */
static int load_identity(tb_supervisor_t *s, tb_errbuf_t *eb) {
  char path[1100];
  snprintf(path, sizeof path, "%s/supervisor.json", s->state_dir);
  json_error_t je;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (j) {
    const char *id = json_string_value(json_object_get(j, "id"));
    int rc = id && tb_uuid_parse(id, strlen(id), &s->id) == 0 ? 0 : TB_ECORRUPT;
    json_decref(j);
    return rc ? tb_errf(eb, rc, "%s does not hold a supervisor id; remove it to start as a new supervisor", path) : 0;
  }
  if (access(path, F_OK) == 0) return tb_errf(eb, TB_ECORRUPT, "%s:%d: %s", path, je.line, je.text);
  tb_uuid_v7_new(&s->id);
  char id[TB_UUID_STR_LEN + 1], tmp[1200], text[128];
  tb_uuid_format(&s->id, id);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int n = snprintf(text, sizeof text, "{\"id\":\"%s\"}\n", id);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return tb_errf(eb, TB_EIO, "cannot write %s: %s", path, strerror(errno));
  }
  return 0;
}

/* ---- events ---- */

static void emitted(int status, const tb_eventlog_ack_t *ack, void *ud) {
  (void)ack;
  char *type = ud;
  if (status != 0) tb_log_error("supervisor", "event not recorded", TB_KV_STR("type", type), TB_KV_ERR(status));
  tb_free(type);
}

void tb__sup_emit(tb_supervisor_t *s, const char *type, const tb_uuid_t *aggregate, const char *idem, json_t *payload) {
  char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
  json_decref(payload);
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_event_t ev = {.type = type, .schema = 1, .actor = s->actor, .idem_key = idem, .payload = text,
                   .payload_len = text ? strlen(text) : 0};
  if (aggregate) ev.aggregate = *aggregate;
  char *tag = tb_strdup(type);
  int rc = !text || !tag ? TB_ENOMEM : tb_projections_check_event(&ev, &eb);
  if (rc == 0) rc = tb_eventlog_append_async(s->log, &ev, emitted, tag, &eb);
  if (rc != 0) {
    tb_log_error("supervisor", "event not recorded", TB_KV_STR("type", type), TB_KV_ERR(rc), TB_KV_STR("detail", msg));
    tb_free(tag);
  }
  free(text);
}

json_t *tb__sup_runtimes(const tb_supervisor_t *s) {
  /* What tabbify-runner implements and this machine supports right now: wasm-http always,
   * docker while the daemon answers. firecracker joins when the runner can run it; until
   * then /health reports only what the machine could do. */
  json_t *a = json_pack("[s]", "wasm-http");
  if (s->caps.docker) json_array_append_new(a, json_string("docker"));
  return a;
}

static void register_self(tb_supervisor_t *s) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  json_t *runtimes = tb__sup_runtimes(s), *tags = json_array();
  json_array_append_new(tags, json_string("supervisor"));
  json_array_extend(tags, runtimes);
  for (const char *p = s->tags; p && *p;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n) json_array_append_new(tags, json_stringn(p, n));
    p += n + (c != NULL);
  }
  tb__sup_emit(s, "supervisor_registered", &s->id, NULL,
               json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "supervisor", s->id_s, "name", s->name, "hostname",
                         host, "address", s->advertise, "tags", tags, "runtimes", runtimes, "version", TB_VERSION));
}

/* ---- timers ---- */

bool tb__sup_sync(tb_supervisor_t *s) {
  uint64_t applied = 0;
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int rc = tb_projections_catch_up(s->proj, s->log, &applied, &eb);
  if (rc != 0) tb_log_error("supervisor", "cannot read the event log", TB_KV_ERR(rc), TB_KV_STR("detail", msg));
  return applied > 0;
}

static void on_sync(uv_timer_t *t) {
  tb_supervisor_t *s = t->data;
  if (tb__sup_sync(s)) tb__sup_reconcile(s);
}

static void maybe_finish(tb_supervisor_t *s);

static void detect_job(uv_work_t *w) {
  tb_supervisor_t *s = w->data;
  tb_supervisor_detect(s->docker_socket, &s->caps_new);
}

static void detect_done(uv_work_t *w, int status) {
  tb_supervisor_t *s = w->data;
  s->detecting = false;
  if (s->closing) {
    maybe_finish(s);
    return;
  }
  if (status != 0) return;
  bool changed = s->caps_new.docker != s->caps.docker || s->caps_new.firecracker != s->caps.firecracker;
  s->caps = s->caps_new;
  if (changed) {
    tb_log_info("supervisor", "runtimes changed", TB_KV_BOOL("docker", s->caps.docker),
                TB_KV_BOOL("firecracker", s->caps.firecracker));
    register_self(s);
  }
}

static void on_beat(uv_timer_t *t) {
  tb_supervisor_t *s = t->data;
  int64_t n = 0;
  for (tb__sup_runner_t *r = s->runners; r; r = r->next) n += r->state == TB__RUN_RUNNING;
  tb__sup_emit(s, "supervisor_heartbeat", &s->id, NULL, json_pack("{s:s, s:I}", "supervisor", s->id_s, "runners", (json_int_t)n));
  if (!s->detecting) {
    s->detecting = true;
    s->detect_work.data = s;
    if (uv_queue_work(s->loop, &s->detect_work, detect_job, detect_done) != 0) s->detecting = false;
  }
}

/* ---- new / close ---- */

static char *find_runner(const char *configured) {
  if (configured && *configured) return tb_strdup(configured);
  const char *env = getenv("TABBIFY_RUNNER");
  if (env && *env) return tb_strdup(env);
  char exe[1024];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 64);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    /* Installed side by side, or in the build tree: build/src/<prog>/ next to build/src/runner/. */
    static const char *const rel[] = {"/tabbify-runner", "/../runner/tabbify-runner", "/../src/runner/tabbify-runner"};
    for (size_t i = 0; slash && i < sizeof rel / sizeof rel[0]; i++) {
      char cand[1200];
      snprintf(cand, sizeof cand, "%.*s%s", (int)(slash - exe), exe, rel[i]);
      if (access(cand, X_OK) == 0) return realpath(cand, NULL);
    }
  }
  return tb_strdup("tabbify-runner"); /* $PATH */
}

static void free_fields(tb_supervisor_t *s) {
  tb_free(s->state_dir), tb_free(s->store_dir), tb_free(s->logs_dir), tb_free(s->runners_dir);
  tb_free(s->name), tb_free(s->tags), tb_free(s->advertise), tb_free(s->docker_socket);
  free(s->runner_path); /* realpath's or tb_strdup's: both are malloc */
}

int tb_supervisor_new(uv_loop_t *loop, const tb_supervisor_config_t *cfg, tb_supervisor_t **out, tb_errbuf_t *eb) {
  *out = NULL;
  if (!cfg->state_dir || !*cfg->state_dir) return tb_errf(eb, TB_EINVAL, "a state directory is required");
  tb_supervisor_t *s = tb_calloc(1, sizeof *s);
  if (!s) return TB_ENOMEM;
  s->loop = loop;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  s->state_dir = tb_strdup(cfg->state_dir);
  s->store_dir = dup_or(cfg->store_dir, cfg->state_dir, "artifacts");
  s->logs_dir = dup_or(cfg->logs_dir, cfg->state_dir, "logs");
  s->runners_dir = dup_or(NULL, cfg->state_dir, "runners");
  s->name = tb_strdup(cfg->name && *cfg->name ? cfg->name : host[0] ? host : "supervisor");
  s->tags = tb_strdup(cfg->tags ? cfg->tags : "");
  s->docker_socket = tb_strdup(tb__sup_docker_socket(cfg->docker_socket));
  s->runner_path = find_runner(cfg->runner_path);
  s->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : 30000;
  s->sync_ms = cfg->sync_ms ? cfg->sync_ms : 100;
  s->stop_on_close = cfg->stop_runners_on_close;
  int rc = 0;
  if (!s->state_dir || !s->store_dir || !s->logs_dir || !s->runners_dir || !s->name || !s->tags || !s->docker_socket ||
      !s->runner_path) {
    rc = TB_ENOMEM;
    goto fail;
  }
  if ((rc = tb_mkdir_p(s->runners_dir, 0700)) != 0 || (rc = tb_mkdir_p(s->logs_dir, 0700)) != 0) {
    rc = tb_errf(eb, rc, "cannot create the directories under %s: %s", s->state_dir, tb_strerror(rc));
    goto fail;
  }
  /* A runner's control socket is <state>/runners/<uuid>/ctl.sock; sun_path holds 107 bytes. */
  if (strlen(s->runners_dir) + 1 + TB_UUID_STR_LEN + sizeof "/ctl.sock" > TB_HTTP_UNIX_PATH_MAX) {
    rc = tb_errf(eb, TB_EINVAL, "the state directory %s is too long for unix sockets; use a shorter path",
                 s->state_dir);
    goto fail;
  }
  if ((rc = load_identity(s, eb)) != 0) goto fail;
  tb_uuid_format(&s->id, s->id_s);
  snprintf(s->actor, sizeof s->actor, "supervisor:%s", s->id_s);

  if (cfg->log) {
    s->log = cfg->log;
  } else {
    tb_eventlog_opts_t o;
    tb_eventlog_opts_init(&o);
    if (cfg->nats_url && *cfg->nats_url) o.backend = TB_EVENTLOG_JETSTREAM, o.nats_url = cfg->nats_url;
    else o.state_dir = cfg->events_dir && *cfg->events_dir ? cfg->events_dir : cfg->state_dir;
    if ((rc = tb_eventlog_open(&o, &s->log, eb)) != 0) goto fail;
    s->own_log = true;
  }
  if ((rc = tb_projections_open(s->log, NULL, &s->proj, eb)) != 0) goto fail;
  s->seen_offset = tb_projections_offset(s->proj);

  if ((rc = tb_http_server_new(loop, NULL, tb__sup_handle, s, &s->srv)) != 0) goto fail;
  const char *bind = cfg->bind && *cfg->bind ? cfg->bind : "127.0.0.1:8730";
  if ((rc = tb_http_server_listen(s->srv, bind, eb)) != 0) goto fail;
  if (cfg->advertise && *cfg->advertise) {
    s->advertise = tb_strdup(cfg->advertise);
  } else {
    tb_http_addr_t a;
    char buf[300];
    tb_http_addr_parse(bind, 0, &a, NULL);
    const char *h = strcmp(a.host, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(a.host, "::") == 0 ? "::1" : a.host;
    snprintf(buf, sizeof buf, strchr(h, ':') ? "[%s]:%d" : "%s:%d", h, tb_http_server_port(s->srv));
    s->advertise = tb_strdup(buf);
  }
  if (!s->advertise) {
    rc = TB_ENOMEM;
    goto fail;
  }
  tb_supervisor_detect(s->docker_socket, &s->caps);

  tb__sup_adopt_all(s);
  register_self(s);
  tb__sup_reconcile(s);

  uv_timer_init(loop, &s->sync_timer);
  uv_timer_init(loop, &s->beat_timer);
  s->sync_timer.data = s->beat_timer.data = s;
  s->open_handles = 2;
  uv_timer_start(&s->sync_timer, on_sync, s->sync_ms, s->sync_ms);
  uv_timer_start(&s->beat_timer, on_beat, s->heartbeat_ms, s->heartbeat_ms);
  tb_log_info("supervisor", "started", TB_KV_STR("id", s->id_s), TB_KV_STR("name", s->name),
              TB_KV_STR("address", s->advertise), TB_KV_STR("runner", s->runner_path),
              TB_KV_BOOL("docker", s->caps.docker), TB_KV_BOOL("firecracker", s->caps.firecracker));
  *out = s;
  return 0;
fail:
  if (s->srv) tb_http_server_close(s->srv, NULL, NULL);
  tb_projections_free(s->proj);
  if (s->own_log) tb_eventlog_close(s->log);
  free_fields(s);
  tb_free(s);
  return rc;
}

int tb_supervisor_port(const tb_supervisor_t *s) { return tb_http_server_port(s->srv); }
const char *tb_supervisor_id(const tb_supervisor_t *s) { return s->id_s; }

static void maybe_finish(tb_supervisor_t *s) {
  if (s->open_handles > 0 || s->runners || s->srv || s->detecting) return;
  tb_projections_free(s->proj);
  if (s->own_log) tb_eventlog_close(s->log);
  void (*cb)(void *) = s->on_closed;
  void *ud = s->closed_ud;
  free_fields(s);
  tb_free(s);
  if (cb) cb(ud);
}

static void timer_closed(uv_handle_t *h) {
  tb_supervisor_t *s = h->data;
  s->open_handles--;
  maybe_finish(s);
}

static void srv_closed(void *ud) {
  tb_supervisor_t *s = ud;
  s->srv = NULL;
  maybe_finish(s);
}

void tb__sup_closed_one(tb_supervisor_t *s) {
  if (s->closing) maybe_finish(s);
}

void tb_supervisor_close(tb_supervisor_t *s, void (*on_closed)(void *), void *ud) {
  if (!s || s->closing) return;
  s->closing = true;
  s->on_closed = on_closed, s->closed_ud = ud;
  uv_close((uv_handle_t *)&s->sync_timer, timer_closed);
  uv_close((uv_handle_t *)&s->beat_timer, timer_closed);
  tb_http_server_close(s->srv, srv_closed, s);
  /* Runners are detached: unless asked, they keep serving and the next start adopts them. */
  for (tb__sup_runner_t *r = s->runners, *nx; r; r = nx) {
    nx = r->next;
    if (s->stop_on_close && (r->state == TB__RUN_RUNNING || r->state == TB__RUN_STARTING || r->state == TB__RUN_STOPPING))
      tb__sup_runner_stop(r, "supervisor stopped");
    else tb__sup_runner_drop(r);
  }
}
