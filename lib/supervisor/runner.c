/*
 * runner.c — one app slot: the tabbify-runner process that serves a deployment.
 *
 * Start: the spec (include/tb/runner.h) is written to <state>/runners/<runner>/spec.json,
 * the runner is spawned detached (a new session: it outlives us) with stdout and stderr
 * appended to the app's log and a pipe as fd 3 (TABBIFY_READY_FD) on which it says
 * {"address":...} once it serves, or {"error":...} if it cannot. record.json next to the
 * spec keeps its pid and process start time (so a reused pid is never taken for it) and,
 * once ready, its address: that is what a restarted supervisor adopts from.
 *
 * Exit: a child's status comes from libuv; an adopted runner (not our child) is watched
 * with a pidfd, and since its status is lost, a control socket still on disk tells a
 * crash (the runner removes it when it stops cleanly) from a clean stop. Then:
 * asked to stop → runner_exited; exit 10 (idle) → runner_exited "idle"; exit 2 (could not
 * start) → deployment_failed, not retried; anything else → app_crashed, and an always_on
 * app is restarted after a backoff that doubles from 100 ms to 30 s (reset once a runner
 * has stayed up for a minute).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "supervisor_int.h"
#include "tb/alloc.h"
#include "tb/log.h"
#include "tb/manifest.h"
#include "tb/runner.h"

extern char **environ;

struct tb__sup_waiter {
  tb_http_req_t *req;
  tb__sup_runner_t *r; /* NULL once answered */
  tb__sup_waiter_t *next;
};

const char *tb__sup_run_state_name(tb__run_state_t st) {
  switch (st) {
  case TB__RUN_STARTING: return "starting";
  case TB__RUN_RUNNING: return "running";
  case TB__RUN_STOPPING: return "stopping";
  case TB__RUN_BACKOFF: return "backoff";
  case TB__RUN_FAILED: return "failed";
  }
  return "?";
}

json_t *tb__sup_runner_json(const tb__sup_runner_t *r) {
  return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:i, s:b, s:s, s:i, s:s}", "runner", r->id_s, "app", r->app_s,
                   "deployment", r->dep_s, "version", (json_int_t)r->version, "state", tb__sup_run_state_name(r->state),
                   "address", r->address, "pid", r->pid, "adopted", r->adopted, "lifecycle",
                   r->always_on ? "always_on" : "on_request", "restarts", (int)r->restarts, "error", r->error);
}

/* ---- small file helpers ---- */

static int write_file(const char *path, const char *text) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tb_err_from_errno(errno);
  size_t len = strlen(text);
  bool ok = write(fd, text, len) == (ssize_t)len;
  close(fd);
  if (!ok || rename(tmp, path) != 0) {
    int e = errno ? errno : EIO;
    unlink(tmp);
    return tb_err_from_errno(e);
  }
  return 0;
}

static int write_json(const char *dir, const char *leaf, json_t *j) {
  char path[600], *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  if (!text) return TB_ENOMEM;
  snprintf(path, sizeof path, "%s/%s", dir, leaf);
  int rc = write_file(path, text);
  free(text);
  return rc;
}

static void remove_dir(const char *dir) {
  static const char *const leaves[] = {"spec.json", "record.json", "ctl.sock", "exit.json", "spec.json.tmp",
                                       "record.json.tmp"};
  char path[600];
  for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, leaves[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* Field 22 of /proc/<pid>/stat, the start time in clock ticks; 0 when the process is gone. */
static unsigned long long proc_starttime(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
  if (!p) return 0;
  p += 2; /* now at field 3 (state) */
  if (*p == 'Z' || *p == 'X') return 0;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p ? strtoull(p, NULL, 10) : 0;
}

/* ---- handles and freeing ---- */

static void maybe_free(tb__sup_runner_t *r) {
  if (!r->dead || r->handles > 0) return;
  tb_supervisor_t *s = r->sup;
  tb_free(r);
  tb__sup_closed_one(s);
}

static void handle_closed(uv_handle_t *h) {
  tb__sup_runner_t *r = h->data;
  if (h->type == UV_POLL && r->pidfd >= 0) {
    close(r->pidfd);
    r->pidfd = -1;
  }
  tb_free(h);
  r->handles--;
  maybe_free(r);
}

static void close_handle(tb__sup_runner_t *r, uv_handle_t **hp) {
  if (*hp == NULL) return;
  uv_close(*hp, handle_closed);
  *hp = NULL;
}

static void answer_waiters(tb__sup_runner_t *r) {
  tb__sup_waiter_t *w = r->waiters;
  r->waiters = NULL;
  while (w) {
    tb__sup_waiter_t *nx = w->next;
    w->r = NULL;
    w->next = NULL;
    if (r->state == TB__RUN_RUNNING) tb__sup_reply_ready(r, w->req);
    else
      tb_http_resp_error(w->req, 503, "start_failed",
                         r->error[0] ? r->error : "The app's runner stopped before it was ready.");
    w = nx;
  }
}

static void unlink_slot(tb__sup_runner_t *r) {
  for (tb__sup_runner_t **pp = &r->sup->runners; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      break;
    }
}

/* Forgets the slot: its handles close; the process, if any, is left alone. */
void tb__sup_runner_drop(tb__sup_runner_t *r) {
  if (r->state == TB__RUN_BACKOFF || r->state == TB__RUN_FAILED) remove_dir(r->dir);
  answer_waiters(r);
  unlink_slot(r);
  close_handle(r, (uv_handle_t **)&r->ready);
  close_handle(r, (uv_handle_t **)&r->timer);
  close_handle(r, (uv_handle_t **)&r->pidpoll);
  close_handle(r, (uv_handle_t **)&r->proc);
  r->dead = true;
  maybe_free(r);
}

static int ensure_timer(tb__sup_runner_t *r) {
  if (r->timer) return 0;
  r->timer = tb_malloc(sizeof *r->timer);
  if (!r->timer) return TB_ENOMEM;
  uv_timer_init(r->sup->loop, r->timer);
  r->timer->data = r;
  r->handles++;
  return 0;
}

/* ---- events ---- */

static json_t *base_payload(tb__sup_runner_t *r) {
  return json_pack("{s:s, s:s, s:s, s:s}", "app", r->app_s, "runner", r->id_s, "deployment", r->dep_s, "supervisor",
                   r->sup->id_s);
}

static void emit_started(tb__sup_runner_t *r, bool adopted) {
  json_t *p = base_payload(r);
  json_object_set_new(p, "address", json_string(r->address));
  json_object_set_new(p, "pid", json_integer(r->pid));
  char idem[80];
  snprintf(idem, sizeof idem, "%s:%s", adopted ? "adopted" : "started", r->id_s);
  tb__sup_emit(r->sup, adopted ? "runner_adopted" : "app_started", &r->app, adopted ? NULL : idem, p);
}

/* ---- start ---- */

static void restart_cb(uv_timer_t *t);
static int spawn(tb__sup_runner_t *r, tb_errbuf_t *eb);

static json_int_t int_or(json_t *o, const char *key, json_int_t dflt) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* A runner's spec from the placement, the version's manifest and our own paths. */
static json_t *build_spec(tb__sup_runner_t *r, json_t *pl, tb_errbuf_t *eb) {
  tb_supervisor_t *s = r->sup;
  json_t *dep = json_object_get(pl, "deployment"), *ver = json_object_get(pl, "version");
  const char *artifact = json_string_value(json_object_get(ver, "artifact"));
  const char *runtime = json_string_value(json_object_get(dep, "runtime"));
  if (!runtime) runtime = json_string_value(json_object_get(json_object_get(pl, "app"), "runtime"));
  if (!artifact) {
    tb_errf(eb, TB_ENOTFOUND, "version %lld of app %s has no artifact", (long long)r->version, r->app_s);
    return NULL;
  }
  char art[1200];
  snprintf(art, sizeof art, "%s/%s", s->store_dir, artifact);
  json_t *m = tb__sup_version_manifest(s, pl); /* absent: the defaults */
  json_t *rt = json_object_get(m, "runtime");
  const char *lifecycle = json_string_value(json_object_get(rt, "lifecycle"));
  if (!lifecycle) lifecycle = tb_lifecycle_name(TB_MANIFEST_DEFAULT_LIFECYCLE);
  json_int_t idle = int_or(rt, "idle_timeout_sec", TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC);
  json_int_t mem = int_or(rt, "memory_mb", TB_MANIFEST_DEFAULT_MEMORY_MB);
  json_int_t rto = int_or(rt, "request_timeout_sec", TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC);
  json_t *env = json_is_object(json_object_get(m, "env")) ? json_incref(json_object_get(m, "env")) : json_object();
  json_t *args = json_is_array(json_object_get(rt, "args")) ? json_incref(json_object_get(rt, "args")) : json_array();
  r->always_on = strcmp(lifecycle, "on_request") != 0;
  char ctl[600], logp[1200];
  snprintf(ctl, sizeof ctl, "%s/ctl.sock", r->dir);
  snprintf(logp, sizeof logp, "%s/%s.log", s->logs_dir, r->app_s);
  const char *digest = json_string_value(json_object_get(ver, "digest"));
  const char *health = json_string_value(json_object_get(rt, "health_path"));
  json_t *spec = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}",
                           "runner", r->id_s, "app", r->app_s, "deployment", r->dep_s, "version", (json_int_t)r->version,
                           "supervisor", s->id_s, "name", json_string_value(json_object_get(pl, "name")) ?: "app",
                           "runtime", runtime ? runtime : "wasm-http", "artifact", art, "digest", digest ? digest : "",
                           "listen", "127.0.0.1:0", "control", ctl, "log", logp, "lifecycle", lifecycle,
                           "idle_timeout_sec", idle, "memory_mb", mem, "request_timeout_sec", rto, "env", env, "args", args);
  if (spec) {
    json_object_set_new(spec, "port", json_integer(int_or(rt, "port", TB_MANIFEST_DEFAULT_PORT)));
    if (health) json_object_set_new(spec, "health_path", json_string(health));
    json_object_set_new(spec, "docker_socket", json_string(s->docker_socket));
  }
  json_decref(m);
  if (!spec) tb_errf(eb, TB_ENOMEM, "cannot build the runner's spec");
  return spec;
}

/* Gives the slot a fresh runner id and directory and writes the spec there. */
static int prepare(tb__sup_runner_t *r, json_t *spec_in, tb_errbuf_t *eb) {
  tb_uuid_v7_new(&r->id);
  tb_uuid_format(&r->id, r->id_s);
  snprintf(r->dir, sizeof r->dir, "%s/%s", r->sup->runners_dir, r->id_s);
  if (mkdir(r->dir, 0700) != 0) return tb_errf(eb, tb_err_from_errno(errno), "cannot create %s: %s", r->dir, strerror(errno));
  json_object_set_new(spec_in, "runner", json_string(r->id_s));
  char ctl[600];
  snprintf(ctl, sizeof ctl, "%s/ctl.sock", r->dir);
  json_object_set_new(spec_in, "control", json_string(ctl));
  int rc = write_json(r->dir, "spec.json", json_incref(spec_in));
  return rc ? tb_errf(eb, rc, "cannot write the spec in %s: %s", r->dir, tb_strerror(rc)) : 0;
}

int tb__sup_runner_start(tb_supervisor_t *s, json_t *pl, tb__sup_runner_t **out, tb_errbuf_t *eb) {
  *out = NULL;
  tb__sup_runner_t *r = tb_calloc(1, sizeof *r);
  if (!r) return TB_ENOMEM;
  r->sup = s;
  r->pidfd = -1;
  json_t *dep = json_object_get(pl, "deployment");
  const char *app = json_string_value(json_object_get(json_object_get(pl, "app"), "app"));
  const char *did = json_string_value(json_object_get(dep, "deployment"));
  r->version = json_integer_value(json_object_get(dep, "version"));
  if (!app || !did || tb_uuid_parse(app, strlen(app), &r->app) != 0 || tb_uuid_parse(did, strlen(did), &r->deployment) != 0) {
    tb_free(r);
    return tb_errf(eb, TB_EINVAL, "the placement names no app or deployment");
  }
  tb_uuid_format(&r->app, r->app_s);
  tb_uuid_format(&r->deployment, r->dep_s);
  json_t *spec = build_spec(r, pl, eb);
  int rc = spec ? prepare(r, spec, eb) : TB_ENOMEM;
  json_decref(spec);
  if (rc != 0) {
    tb_free(r);
    return rc;
  }
  r->next = s->runners;
  s->runners = r;
  *out = r;
  rc = spawn(r, eb);
  if (rc != 0) {
    r->state = TB__RUN_FAILED;
    snprintf(r->error, sizeof r->error, "%s", eb && eb->buf ? eb->buf : tb_strerror(rc));
  }
  return 0;
}

/* ---- readiness ---- */

static void ready_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  tb__sup_runner_t *r = h->data;
  buf->base = r->ready_buf + r->ready_len;
  buf->len = sizeof r->ready_buf - 1 - r->ready_len;
}

static void became_ready(tb__sup_runner_t *r, const char *address) {
  snprintf(r->address, sizeof r->address, "%s", address);
  r->state = TB__RUN_RUNNING;
  r->started_ms = uv_now(r->sup->loop);
  if (r->timer) uv_timer_stop(r->timer);
  json_t *rec = json_pack("{s:s, s:i, s:I, s:s}", "runner", r->id_s, "pid", r->pid, "starttime",
                          (json_int_t)r->starttime, "address", r->address);
  write_json(r->dir, "record.json", rec);
  emit_started(r, false);
  tb_log_info("supervisor", "runner ready", TB_KV_STR("app", r->app_s), TB_KV_STR("runner", r->id_s),
              TB_KV_STR("address", r->address), TB_KV_INT("pid", r->pid));
  answer_waiters(r);
}

static void ready_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  tb__sup_runner_t *r = st->data;
  if (n > 0) r->ready_len += (size_t)n;
  r->ready_buf[r->ready_len] = 0;
  char *nl = strchr(r->ready_buf, '\n');
  if (!nl && n >= 0 && r->ready_len < sizeof r->ready_buf - 1) return;
  if (nl) *nl = 0;
  json_t *j = json_loads(r->ready_buf, 0, NULL);
  const char *addr = json_string_value(json_object_get(j, "address"));
  const char *err = json_string_value(json_object_get(j, "error"));
  if (addr && r->state == TB__RUN_STARTING) became_ready(r, addr);
  else if (err) snprintf(r->error, sizeof r->error, "%s", err);
  else if (r->ready_len) snprintf(r->error, sizeof r->error, "the runner said \"%.200s\" instead of its address", r->ready_buf);
  json_decref(j);
  close_handle(r, (uv_handle_t **)&r->ready); /* one line only; the exit tells the rest */
}

static void ready_timeout(uv_timer_t *t) {
  tb__sup_runner_t *r = t->data;
  if (r->state != TB__RUN_STARTING) return;
  snprintf(r->error, sizeof r->error, "the runner was not ready within %d s", TB__SUP_READY_TIMEOUT_MS / 1000);
  if (r->proc) uv_process_kill(r->proc, SIGKILL);
}

/* ---- exit ---- */

static void ended(tb__sup_runner_t *r, bool known, int64_t code, int sig, bool clean_guess);

static void proc_exit(uv_process_t *p, int64_t status, int term_signal) {
  tb__sup_runner_t *r = p->data;
  close_handle(r, (uv_handle_t **)&r->proc);
  ended(r, true, status, term_signal, false);
}

static void pidfd_ready(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  tb__sup_runner_t *r = h->data;
  close_handle(r, (uv_handle_t **)&r->pidpoll);
  char ctl[600];
  snprintf(ctl, sizeof ctl, "%s/ctl.sock", r->dir);
  char exitp[600];
  snprintf(exitp, sizeof exitp, "%s/exit.json", r->dir);
  /* A clean stop removes the control socket; a runner whose app died leaves exit.json. */
  ended(r, false, 0, 0, access(ctl, F_OK) != 0 && access(exitp, F_OK) != 0);
}

static void ended(tb__sup_runner_t *r, bool known, int64_t code, int sig, bool clean_guess) {
  tb_supervisor_t *s = r->sup;
  tb__run_state_t was = r->state;
  if (r->timer) uv_timer_stop(r->timer);
  close_handle(r, (uv_handle_t **)&r->ready);
  bool idle = known ? code == TB_RUNNER_EXIT_IDLE && sig == 0 : clean_guess && !r->always_on;
  bool clean = known ? code == 0 && sig == 0 : clean_guess;
  json_t *p = base_payload(r);
  if (known && sig) json_object_set_new(p, "signal", json_integer(sig));
  else if (known) json_object_set_new(p, "exit_code", json_integer(code));
  char reason[600], idem[80];
  if (was == TB__RUN_STOPPING) {
    json_object_set_new(p, "reason", json_string(r->stop_reason));
    snprintf(idem, sizeof idem, "exited:%s", r->id_s);
    tb__sup_emit(s, "runner_exited", &r->app, idem, p);
    remove_dir(r->dir);
    r->state = TB__RUN_FAILED; /* no process; dropped below */
    tb__sup_runner_drop(r);
    tb__sup_reconcile(s);
    return;
  }
  if (idle || (clean && was == TB__RUN_RUNNING && !r->always_on)) {
    json_object_set_new(p, "reason", json_string("idle"));
    snprintf(idem, sizeof idem, "exited:%s", r->id_s);
    tb__sup_emit(s, "runner_exited", &r->app, idem, p);
    tb_log_info("supervisor", "runner idled out", TB_KV_STR("app", r->app_s), TB_KV_STR("runner", r->id_s));
    remove_dir(r->dir);
    r->state = TB__RUN_FAILED;
    tb__sup_runner_drop(r);
    return;
  }
  if (known && code == TB_RUNNER_EXIT_SETUP && sig == 0) {
    /* The app cannot start as deployed (bad artifact, bad module): retrying will not help. */
    if (!r->error[0]) snprintf(r->error, sizeof r->error, "the runner could not start the app (exit status 2)");
    json_decref(p);
    tb__sup_emit(s, "deployment_failed", &r->app, NULL,
                 json_pack("{s:s, s:s, s:s}", "app", r->app_s, "deployment", r->dep_s, "reason", r->error));
    tb_log_error("supervisor", "app cannot start", TB_KV_STR("app", r->app_s), TB_KV_STR("reason", r->error));
    remove_dir(r->dir);
    r->state = TB__RUN_FAILED;
    answer_waiters(r);
    return;
  }
  /* A runner whose app died (a container killed for memory, say) says why in exit.json. */
  char exitp[600];
  snprintf(exitp, sizeof exitp, "%s/exit.json", r->dir);
  json_t *ej = json_load_file(exitp, 0, NULL);
  const char *said = json_string_value(json_object_get(ej, "reason"));
  if (said) snprintf(reason, sizeof reason, "%s", said);
  else if (!known) snprintf(reason, sizeof reason, "the runner (pid %d) died; its status is unknown (it was adopted)", r->pid);
  else if (sig) snprintf(reason, sizeof reason, "the runner was killed by signal %d (%s)", sig, strsignal(sig));
  else snprintf(reason, sizeof reason, "the runner exited with status %lld", (long long)code);
  json_decref(ej);
  if (was == TB__RUN_STARTING && r->error[0]) snprintf(reason, sizeof reason, "%s", r->error);
  json_object_set_new(p, "reason", json_string(reason));
  snprintf(idem, sizeof idem, "crashed:%s", r->id_s);
  tb__sup_emit(s, "app_crashed", &r->app, idem, p);
  tb_log_error("supervisor", "runner crashed", TB_KV_STR("app", r->app_s), TB_KV_STR("runner", r->id_s),
               TB_KV_STR("reason", reason));
  if (!r->error[0]) snprintf(r->error, sizeof r->error, "%s", reason);
  remove_dir(r->dir);
  r->pid = 0;
  r->address[0] = 0;
  if (!r->always_on || s->closing) {
    r->state = TB__RUN_FAILED;
    tb__sup_runner_drop(r); /* on_request: the next request starts it again */
    return;
  }
  /* always_on: back off, then start again; a runner that stayed up a minute resets it. */
  uint64_t up = was == TB__RUN_RUNNING ? uv_now(s->loop) - r->started_ms : 0;
  if (up >= TB__SUP_HEALTHY_MS || r->backoff_ms == 0) r->backoff_ms = TB__SUP_BACKOFF_MIN_MS;
  else r->backoff_ms = r->backoff_ms * 2 > TB__SUP_BACKOFF_MAX_MS ? TB__SUP_BACKOFF_MAX_MS : r->backoff_ms * 2;
  r->state = TB__RUN_BACKOFF;
  answer_waiters(r);
  if (ensure_timer(r) == 0) uv_timer_start(r->timer, restart_cb, r->backoff_ms, 0);
}

/* ---- spawning ---- */

static int spawn(tb__sup_runner_t *r, tb_errbuf_t *eb) {
  tb_supervisor_t *s = r->sup;
  char spec[600], logp[1200];
  snprintf(spec, sizeof spec, "%s/spec.json", r->dir);
  snprintf(logp, sizeof logp, "%s/%s.log", s->logs_dir, r->app_s);
  int logfd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (logfd < 0) return tb_errf(eb, tb_err_from_errno(errno), "cannot open the app's log %s: %s", logp, strerror(errno));
  size_t nenv = 0;
  while (environ[nenv]) nenv++;
  char **env = tb_calloc(nenv + 2, sizeof *env);
  r->proc = tb_calloc(1, sizeof *r->proc);
  r->ready = tb_calloc(1, sizeof *r->ready);
  int rc = ensure_timer(r);
  if (!env || !r->proc || !r->ready || rc != 0) {
    close(logfd);
    tb_free(env), tb_free(r->proc), tb_free(r->ready);
    r->proc = NULL, r->ready = NULL;
    return TB_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < nenv; i++)
    if (strncmp(environ[i], "TABBIFY_READY_FD=", 17) != 0) env[k++] = environ[i];
  env[k++] = "TABBIFY_READY_FD=3";
  uv_pipe_init(s->loop, r->ready, 0);
  r->ready->data = r;
  r->handles++;
  uv_stdio_container_t stdio[4] = {
      {.flags = UV_IGNORE},
      {.flags = UV_INHERIT_FD, .data.fd = logfd},
      {.flags = UV_INHERIT_FD, .data.fd = logfd},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)r->ready},
  };
  char *args[] = {s->runner_path, "--spec", spec, NULL};
  uv_process_options_t o = {.exit_cb = proc_exit, .file = s->runner_path, .args = args, .env = env,
                            .flags = UV_PROCESS_DETACHED, .stdio_count = 4, .stdio = stdio};
  r->proc->data = r;
  r->ready_len = 0;
  r->error[0] = 0;
  rc = uv_spawn(s->loop, r->proc, &o);
  r->handles++; /* a process handle must be closed even when the spawn failed */
  close(logfd);
  tb_free(env);
  if (rc != 0) {
    close_handle(r, (uv_handle_t **)&r->proc);
    close_handle(r, (uv_handle_t **)&r->ready);
    return tb_errf(eb, TB_ENOENT, "cannot start %s: %s", s->runner_path, uv_strerror(rc));
  }
  r->pid = r->proc->pid;
  r->starttime = proc_starttime(r->pid);
  r->adopted = false;
  r->state = TB__RUN_STARTING;
  write_json(r->dir, "record.json",
             json_pack("{s:s, s:i, s:I}", "runner", r->id_s, "pid", r->pid, "starttime", (json_int_t)r->starttime));
  uv_read_start((uv_stream_t *)r->ready, ready_alloc, ready_read);
  uv_timer_start(r->timer, ready_timeout, TB__SUP_READY_TIMEOUT_MS, 0);
  return 0;
}

static void restart_cb(uv_timer_t *t) {
  tb__sup_runner_t *r = t->data;
  if (r->state != TB__RUN_BACKOFF) return;
  /* The deployment may have changed while we waited: let the reconciler decide. */
  json_t *pl = NULL;
  tb__sup_sync(r->sup);
  json_t *all = NULL;
  if (tb_proj_placements(r->sup->proj, &r->sup->id, &all) == 0) {
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
      const char *d = json_string_value(json_object_get(json_object_get(e, "deployment"), "deployment"));
      const char *st = json_string_value(json_object_get(e, "app_state"));
      if (d && strcmp(d, r->dep_s) == 0 && st && strcmp(st, "stopped") != 0) pl = json_incref(e);
    }
  }
  json_decref(all);
  char msg[300] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  json_t *spec = pl ? build_spec(r, pl, &eb) : NULL;
  json_decref(pl);
  if (!spec) {
    tb__sup_runner_drop(r);
    tb__sup_reconcile(r->sup);
    return;
  }
  int rc = prepare(r, spec, &eb);
  json_decref(spec);
  if (rc == 0) rc = spawn(r, &eb);
  r->restarts++;
  if (rc != 0) {
    r->state = TB__RUN_FAILED;
    snprintf(r->error, sizeof r->error, "%s", msg[0] ? msg : tb_strerror(rc));
    tb_log_error("supervisor", "restart failed", TB_KV_STR("app", r->app_s), TB_KV_STR("reason", r->error));
  }
}

/* ---- stop ---- */

static int send_signal(tb__sup_runner_t *r, int sig) {
  if (r->proc) return uv_process_kill(r->proc, sig);
  if (r->pidfd >= 0) return (int)syscall(SYS_pidfd_send_signal, r->pidfd, sig, NULL, 0);
  return UV_ESRCH;
}

static void stop_grace(uv_timer_t *t) {
  tb__sup_runner_t *r = t->data;
  if (r->state == TB__RUN_STOPPING) send_signal(r, SIGKILL);
}

void tb__sup_runner_stop(tb__sup_runner_t *r, const char *reason) {
  if (r->state == TB__RUN_BACKOFF || r->state == TB__RUN_FAILED) {
    tb__sup_runner_drop(r);
    return;
  }
  if (r->state == TB__RUN_STOPPING) return;
  snprintf(r->stop_reason, sizeof r->stop_reason, "%s", reason);
  snprintf(r->error, sizeof r->error, "The app was stopped (%s).", reason);
  r->state = TB__RUN_STOPPING;
  answer_waiters(r);
  tb_log_info("supervisor", "stopping runner", TB_KV_STR("app", r->app_s), TB_KV_STR("runner", r->id_s),
              TB_KV_STR("reason", reason));
  if (send_signal(r, SIGTERM) != 0) return;
  if (ensure_timer(r) == 0) uv_timer_start(r->timer, stop_grace, TB__SUP_STOP_GRACE_MS, 0);
}

/* ---- wake-up requests ---- */

static void waiter_done(tb_http_req_t *req, int err, void *ud) {
  (void)req, (void)err;
  tb__sup_waiter_t *w = ud;
  if (w->r)
    for (tb__sup_waiter_t **pp = &w->r->waiters; *pp; pp = &(*pp)->next)
      if (*pp == w) {
        *pp = w->next;
        break;
      }
  tb_free(w);
}

int tb__sup_runner_wait(tb__sup_runner_t *r, tb_http_req_t *req) {
  tb__sup_waiter_t *w = tb_calloc(1, sizeof *w);
  if (!w) return TB_ENOMEM;
  w->req = req, w->r = r;
  w->next = r->waiters;
  r->waiters = w;
  tb_http_req_on_done(req, waiter_done, w);
  return 0;
}

void tb__sup_reply_ready(tb__sup_runner_t *r, tb_http_req_t *req) {
  char body[400];
  int n = snprintf(body, sizeof body, "{\"app\":\"%s\",\"runner\":\"%s\",\"deployment\":\"%s\",\"address\":\"%s\"}\n",
                   r->app_s, r->id_s, r->dep_s, r->address);
  tb_http_resp_send(req, 200, "application/json", body, (size_t)n);
}

/* ---- adoption ---- */

/* GET /status on a runner's control socket, blocking, 1 s at most; the JSON body or NULL. */
static json_t *control_status(const char *sock) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return NULL;
  json_t *j = NULL;
  static const char rq[] = "GET /status HTTP/1.0\r\nHost: runner\r\n\r\n";
  char buf[8192];
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || write(fd, rq, sizeof rq - 1) != (ssize_t)(sizeof rq - 1))
    goto out;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1000) <= 0) goto out;
    ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof buf - 1) break;
  }
  buf[got] = 0;
  char *body = strstr(buf, "\r\n\r\n");
  if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 9, "200", 3) == 0 && body) j = json_loads(body + 4, 0, NULL);
out:
  close(fd);
  return j;
}

static void adopt_one(tb_supervisor_t *s, const char *dir) {
  char path[700];
  snprintf(path, sizeof path, "%s/spec.json", dir);
  json_t *spec = json_load_file(path, 0, NULL), *st = NULL;
  snprintf(path, sizeof path, "%s/record.json", dir);
  json_t *rec = json_load_file(path, 0, NULL);
  tb__sup_runner_t *r = tb_calloc(1, sizeof *r);
  const char *id = json_string_value(json_object_get(spec, "runner"));
  const char *app = json_string_value(json_object_get(spec, "app"));
  const char *dep = json_string_value(json_object_get(spec, "deployment"));
  if (!r || !id || !app || !dep || tb_uuid_parse(id, strlen(id), &r->id) || tb_uuid_parse(app, strlen(app), &r->app) ||
      tb_uuid_parse(dep, strlen(dep), &r->deployment)) {
    tb_log_warn("supervisor", "unreadable runner record removed", TB_KV_STR("dir", dir));
    remove_dir(dir);
    tb_free(r);
    goto out;
  }
  r->sup = s;
  r->pidfd = -1;
  snprintf(r->dir, sizeof r->dir, "%s", dir);
  tb_uuid_format(&r->id, r->id_s);
  tb_uuid_format(&r->app, r->app_s);
  tb_uuid_format(&r->deployment, r->dep_s);
  r->version = json_integer_value(json_object_get(spec, "version"));
  const char *lc = json_string_value(json_object_get(spec, "lifecycle"));
  r->always_on = !lc || strcmp(lc, "on_request") != 0;
  r->pid = (int)json_integer_value(json_object_get(rec, "pid"));
  r->starttime = (unsigned long long)json_integer_value(json_object_get(rec, "starttime"));
  bool alive = r->pid > 0 && r->starttime && proc_starttime(r->pid) == r->starttime;
  int pidfd = alive ? (int)syscall(SYS_pidfd_open, r->pid, 0) : -1;
  /* The pidfd pins the process: from here on a signal cannot reach a reused pid. */
  alive = pidfd >= 0 && proc_starttime(r->pid) == r->starttime;
  const char *addr = NULL, *sid = NULL;
  if (alive) {
    snprintf(path, sizeof path, "%s/ctl.sock", dir);
    st = control_status(path);
    addr = json_string_value(json_object_get(st, "address"));
    sid = json_string_value(json_object_get(st, "runner"));
  }
  r->next = s->runners;
  s->runners = r;
  if (alive && addr && sid && strcmp(sid, r->id_s) == 0) {
    r->pidfd = pidfd;
    r->adopted = true;
    r->pidpoll = tb_malloc(sizeof *r->pidpoll);
    if (r->pidpoll && uv_poll_init(s->loop, r->pidpoll, pidfd) == 0) {
      r->pidpoll->data = r;
      r->handles++;
      uv_poll_start(r->pidpoll, UV_READABLE, pidfd_ready);
    }
    snprintf(r->address, sizeof r->address, "%s", addr);
    r->state = TB__RUN_RUNNING;
    r->started_ms = uv_now(s->loop);
    emit_started(r, true);
    tb_log_info("supervisor", "runner adopted", TB_KV_STR("app", r->app_s), TB_KV_STR("runner", r->id_s),
                TB_KV_STR("address", r->address), TB_KV_INT("pid", r->pid));
  } else {
    if (alive) { /* alive but not answering as itself: not trustworthy, end it */
      syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
      tb_log_warn("supervisor", "runner not answering its control socket; killed", TB_KV_STR("runner", r->id_s));
    }
    if (pidfd >= 0) close(pidfd);
    snprintf(path, sizeof path, "%s/ctl.sock", dir);
    bool clean = !alive && access(path, F_OK) != 0;
    r->state = TB__RUN_RUNNING; /* so that ended() reports it as a runner that went away */
    ended(r, false, 0, 0, clean);
  }
out:
  json_decref(spec);
  json_decref(rec);
  json_decref(st);
}

void tb__sup_adopt_all(tb_supervisor_t *s) {
  DIR *d = opendir(s->runners_dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    tb_uuid_t u;
    if (strlen(e->d_name) != TB_UUID_STR_LEN || tb_uuid_parse(e->d_name, TB_UUID_STR_LEN, &u) != 0) continue;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", s->runners_dir, e->d_name);
    adopt_one(s, dir);
  }
  closedir(d);
}
