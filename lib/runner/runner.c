/*
 * runner.c — tabbify-runner: one app, one process (include/tb/runner.h is the contract
 * with the supervisor; docs/internals/RUNNER.md the design).
 *
 * Setup happens on the main thread: spec, log file, artifact and digest, backend,
 * worker pool, the data listener and the control socket, then the readiness line. Any
 * failure up to there is a setup error: one sentence on the readiness fd and stderr,
 * exit 2. After that everything runs on one libuv loop: the data server hands each
 * request to the pool (exchange.c); the control server answers /status, /health and
 * /stop; signals, POST /stop and the idle timer all end in runner_stop, which drains
 * the data server, then the control server, then the pool, and the loop ends.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner_int.h"
#include "tb/fs.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/json.h"
#include "tb/log.h"

#ifndef TB_RUNNER_VERSION
#define TB_RUNNER_VERSION "0.0.0"
#endif

#define SPEC_MAX_BYTES ((size_t)1 << 20)
#define ARTIFACT_MAX_BYTES ((size_t)512 << 20)

typedef struct runner {
  uv_loop_t loop;
  bool loop_ready;
  tb_runner_spec_t spec;
  tb__applog_t log;
  const tb__runner_backend_t *backend;
  void *bstate;
  tb__runner_pool_t *pool;
  tb_http_server_t *data, *ctl;
  uv_signal_t sigterm, sigint;
  uv_timer_t idle;
  bool handles_ready;
  char address[320];
  int ready_fd;
  int exit_code;
  bool stopping, data_closed, ctl_closed, pool_closing, ctl_bound;
  uint64_t requests;
  int64_t started_at_ns;  /* wall clock */
  int64_t last_active_ns; /* monotonic: the last time a request ended or started */
} runner_t;

static void usage(FILE *f) {
  fputs("usage: tabbify-runner --spec FILE\n"
        "Runs one app as the supervisor describes it in FILE (JSON; see docs/internals/RUNNER.md).\n"
        "  --spec FILE   the spec written by the supervisor\n"
        "  --help        this text\n"
        "  --version     the version\n"
        "Environment: TABBIFY_READY_FD=N  write one JSON line to fd N when ready (or on a setup error).\n"
        "Exit codes: 0 stopped when asked, 2 setup error, 10 idle (lifecycle on_request),\n"
        "            11 the app died under the runner (the reason is in exit.json).\n",
        f);
}

/* ---- Readiness ---- */

static void ready_write(runner_t *r, json_t *obj) {
  tb_buf_t b;
  if (r->ready_fd < 0) {
    json_decref(obj);
    return;
  }
  tb_buf_init(&b, 64 << 10);
  if (obj && tb_json_dump(obj, TB_JSON_COMPACT, &b) == 0 && tb_buf_putc(&b, '\n') == 0) {
    size_t off = 0;
    while (off < b.len) {
      ssize_t w = write(r->ready_fd, b.data + off, b.len - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      off += (size_t)w;
    }
  }
  tb_buf_deinit(&b);
  json_decref(obj);
  close(r->ready_fd);
  r->ready_fd = -1;
}

/* A setup error: the sentence on the readiness fd, stderr and the log; exit code 2. */
static int setup_fail(runner_t *r, const char *sentence) {
  fprintf(stderr, "tabbify-runner: %s\n", sentence);
  tb__applog_printf(&r->log, "runner", "setup failed: %s", sentence);
  ready_write(r, json_pack("{s:s}", "error", sentence));
  return TB_RUNNER_EXIT_SETUP;
}

static int ready_fd_from_env(void) {
  const char *v = getenv(TB_RUNNER_READY_FD_ENV);
  char *end;
  if (v == NULL || *v == '\0') return -1;
  long fd = strtol(v, &end, 10);
  if (*end || fd < 0 || fd > 1 << 20 || fcntl((int)fd, F_GETFD) < 0) {
    fprintf(stderr, "tabbify-runner: %s=%s does not name an open file descriptor; ignored\n", TB_RUNNER_READY_FD_ENV, v);
    return -1;
  }
  fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  return (int)fd;
}

static int read_file(const char *what, const char *path, size_t max, uint8_t **out, size_t *len, tb_errbuf_t *eb) {
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
  struct stat st;
  uint8_t *buf = NULL;
  size_t n = 0;
  if (fd < 0) {
    rc = -errno;
    return tb_errf(eb, rc, "cannot read the %s %s: %s", what, path, tb_strerror(rc));
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = tb_errf(eb, TB_EINVAL, "the %s %s is not a regular file", what, path);
    goto out;
  }
  if ((uint64_t)st.st_size > max) {
    rc = tb_errf(eb, TB_EFBIG, "the %s %s is larger than %zu bytes", what, path, max);
    goto out;
  }
  buf = tb_malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory reading the %s %s", what, path);
    goto out;
  }
  while (n < (size_t)st.st_size) {
    ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      rc = -errno;
      rc = tb_errf(eb, rc, "cannot read the %s %s: %s", what, path, tb_strerror(rc));
      goto out;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  buf[n] = '\0';
out:
  close(fd);
  if (rc != 0) {
    tb_free(buf);
    return rc;
  }
  *out = buf;
  *len = n;
  return 0;
}

/* ---- The app died under its backend ---- */

/* Set from any thread (tb__runner_app_died), acted on by the loop through died_async. */
static pthread_mutex_t died_mu = PTHREAD_MUTEX_INITIALIZER;
static char died_reason[512];
static bool died, died_async_ready;
static uv_async_t died_async;

static void runner_stop(runner_t *r, int code, const char *why);

void tb__runner_app_died(const char *reason) {
  pthread_mutex_lock(&died_mu);
  bool first = !died, send = first && died_async_ready;
  if (first) snprintf(died_reason, sizeof died_reason, "%s", reason);
  died = true;
  pthread_mutex_unlock(&died_mu);
  if (send) uv_async_send(&died_async);
}

/* exit.json beside the control socket carries the reason to the supervisor (runner.h). */
static void write_exit_reason(const runner_t *r, const char *reason) {
  char path[600];
  if (!r->spec.control) return;
  snprintf(path, sizeof path, "%s", r->spec.control);
  char *slash = strrchr(path, '/');
  if (!slash) return;
  snprintf(slash, sizeof path - (size_t)(slash - path), "/exit.json");
  json_t *j = json_pack("{s:s}", "reason", reason);
  if (j) json_dump_file(j, path, JSON_COMPACT);
  json_decref(j);
}

static void on_died(uv_async_t *a) {
  runner_t *r = a->data;
  char reason[512];
  pthread_mutex_lock(&died_mu);
  snprintf(reason, sizeof reason, "%s", died_reason);
  pthread_mutex_unlock(&died_mu);
  write_exit_reason(r, reason);
  tb__applog_printf(&r->log, "runner", "the app died: %s", reason);
  runner_stop(r, TB_RUNNER_EXIT_APP_DIED, "the app died");
}

/* ---- Stopping ---- */

static void on_pool_closed(void *ud) {
  runner_t *r = ud;
  r->pool = NULL;
  pthread_mutex_lock(&died_mu);
  died_async_ready = false;
  pthread_mutex_unlock(&died_mu);
  uv_close((uv_handle_t *)&died_async, NULL);
  uv_close((uv_handle_t *)&r->idle, NULL);
  uv_close((uv_handle_t *)&r->sigterm, NULL);
  uv_close((uv_handle_t *)&r->sigint, NULL);
}

static void maybe_finish(runner_t *r) {
  if (!r->stopping || !r->data_closed || !r->ctl_closed || r->pool_closing) return;
  if (r->pool && tb__runner_pool_inflight(r->pool) > 0) return;
  r->pool_closing = true;
  if (r->pool) tb__runner_pool_free(r->pool, on_pool_closed, r);
  else on_pool_closed(r);
}

static void on_ctl_closed(void *ud) {
  runner_t *r = ud;
  r->ctl = NULL;
  r->ctl_closed = true;
  if (r->ctl_bound) unlink(r->spec.control);
  maybe_finish(r);
}

static void on_data_closed(void *ud) {
  runner_t *r = ud;
  r->data = NULL;
  r->data_closed = true;
  if (r->ctl) tb_http_server_close(r->ctl, on_ctl_closed, r);
  else on_ctl_closed(r);
}

static void runner_stop(runner_t *r, int code, const char *why) {
  if (r->stopping) return;
  r->stopping = true;
  r->exit_code = code;
  uv_timer_stop(&r->idle);
  tb__applog_printf(&r->log, "runner", "stopping: %s (%zu requests in flight)", why,
                    r->pool ? tb__runner_pool_inflight(r->pool) : 0);
  tb_log_info("runner", "stopping", TB_KV_STR("why", why));
  if (r->data) tb_http_server_close(r->data, on_data_closed, r);
  else on_data_closed(r);
}

static void on_signal(uv_signal_t *s, int signum) {
  runner_t *r = s->data;
  runner_stop(r, TB_RUNNER_EXIT_OK, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_idle(uv_timer_t *t) {
  runner_t *r = t->data;
  if (r->pool && tb__runner_pool_inflight(r->pool) > 0) return;
  tb__applog_printf(&r->log, "runner", "idle for %u s: stopping (lifecycle on_request)", r->spec.idle_timeout_sec);
  runner_stop(r, TB_RUNNER_EXIT_IDLE, "idle");
}

static void idle_restart(runner_t *r) {
  if (r->spec.lifecycle != TB_RUNNER_ON_REQUEST || r->stopping) return;
  uv_timer_start(&r->idle, on_idle, (uint64_t)r->spec.idle_timeout_sec * 1000u, 0);
}

static void on_released(void *ud) {
  runner_t *r = ud;
  r->last_active_ns = tb_clock_mono_ns();
  if (tb__runner_pool_inflight(r->pool) == 0) {
    idle_restart(r);
    maybe_finish(r);
  }
}

/* ---- The data server ---- */

static void on_data_request(tb_http_req_t *req, void *ud) {
  runner_t *r = ud;
  r->requests++;
  r->last_active_ns = tb_clock_mono_ns();
  uv_timer_stop(&r->idle);
  tb__runner_pool_submit(r->pool, req);
  if (tb__runner_pool_inflight(r->pool) == 0) idle_restart(r); /* it was refused at once */
}

/* ---- The control server ---- */

static void send_json(tb_http_req_t *req, int status, json_t *obj) {
  tb_buf_t b;
  tb_buf_init(&b, 64 << 10);
  if (obj && tb_json_dump(obj, TB_JSON_COMPACT, &b) == 0)
    tb_http_resp_send(req, status, "application/json", b.data, b.len);
  else
    tb_http_resp_error(req, 500, "internal_error", "out of memory");
  tb_buf_deinit(&b);
  json_decref(obj);
}

static json_t *status_json(runner_t *r) {
  size_t inflight = r->pool ? tb__runner_pool_inflight(r->pool) : 0;
  int64_t idle_ms = inflight ? 0 : (tb_clock_mono_ns() - r->last_active_ns) / TB_NS_PER_MS;
  return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "runner", r->spec.runner, "app",
                   r->spec.app, "deployment", r->spec.deployment, "version", (json_int_t)r->spec.version, "pid",
                   (json_int_t)getpid(), "address", r->address, "runtime", r->spec.runtime, "lifecycle",
                   r->spec.lifecycle == TB_RUNNER_ON_REQUEST ? "on_request" : "always_on", "state",
                   r->stopping ? "draining" : "running", "inflight", (json_int_t)inflight, "requests",
                   (json_int_t)r->requests, "started_at_ns", (json_int_t)r->started_at_ns, "idle_ms",
                   (json_int_t)idle_ms);
}

static void on_ctl_request(tb_http_req_t *req, void *ud) {
  runner_t *r = ud;
  const tb_http_head_t *h = tb_http_req_head(req);
  const char *q = strchr(h->target, '?');
  size_t n = q ? (size_t)(q - h->target) : strlen(h->target);
  bool get = strcmp(h->method, "GET") == 0 || strcmp(h->method, "HEAD") == 0;
  bool post = strcmp(h->method, "POST") == 0;

  if (n == 7 && memcmp(h->target, "/status", 7) == 0) {
    if (!get) goto not_allowed;
    send_json(req, 200, status_json(r));
  } else if (n == 7 && memcmp(h->target, "/health", 7) == 0) {
    if (!get) goto not_allowed;
    send_json(req, 200, json_pack("{s:s}", "status", "ok"));
  } else if (n == 5 && memcmp(h->target, "/stop", 5) == 0) {
    if (!post) goto not_allowed;
    send_json(req, 202, json_pack("{s:s}", "state", "draining"));
    runner_stop(r, TB_RUNNER_EXIT_OK, "POST /stop on the control socket");
  } else {
    tb_http_resp_error(req, 404, "not_found", "no such control endpoint: try GET /status, GET /health, POST /stop");
  }
  return;
not_allowed:
  tb_http_resp_error(req, 405, "method_not_allowed", "this method is not allowed on this control endpoint");
}

/* ---- Setup ---- */


static void format_address(runner_t *r) {
  tb_http_addr_t a;
  if (tb_http_addr_parse(r->spec.listen, 0, &a, NULL) != 0 || a.kind == TB_HTTP_ADDR_UNIX) {
    snprintf(r->address, sizeof r->address, "%s", r->spec.listen);
    return;
  }
  int port = tb_http_server_port(r->data);
  if (strchr(a.host, ':')) snprintf(r->address, sizeof r->address, "[%s]:%d", a.host, port);
  else snprintf(r->address, sizeof r->address, "%s:%d", a.host, port);
}

/* The spec's worker count, else the backend's (forwarders wait on I/O), else the CPUs. */
static uint32_t workers_of(const runner_t *r) {
  return r->spec.workers || !r->backend->workers ? tb_runner_spec_workers(&r->spec) : r->backend->workers;
}

/* Everything up to the readiness line. Returns 0 or a setup error with `eb` filled. */
static int setup(runner_t *r, const char *spec_path, tb_errbuf_t *eb) {
  uint8_t *text = NULL, *art = NULL;
  size_t len = 0, alen = 0;
  char ebuf[400] = "";
  tb_errbuf_t seb = {ebuf, sizeof ebuf};
  int rc;

  rc = read_file("spec file", spec_path, SPEC_MAX_BYTES, &text, &len, eb);
  if (rc != 0) goto out;
  rc = tb_runner_spec_parse((const char *)text, len, &r->spec, &seb);
  if (rc != 0) {
    rc = tb_errf(eb, rc, "%s: %s", spec_path, ebuf);
    goto out;
  }
  r->backend = tb__runner_backend_find(r->spec.runtime);
  if (r->backend == NULL) {
    rc = tb_errf(eb, TB_EUNSUPPORTED,
                 "%s: spec field \"runtime\" is \"%.60s\", but this runner runs \"wasm-http\" and \"docker\" "
                 "(firecracker is not built yet)",
                 spec_path, r->spec.runtime);
    goto out;
  }
  rc = tb__applog_open(&r->log, r->spec.log, eb);
  if (rc != 0) goto out;
  if (r->backend->reads_artifact) {
    rc = 0; /* the backend checks the digest when it reads the artifact (docker: before a load) */
  } else {
    rc = read_file("artifact", r->spec.artifact, ARTIFACT_MAX_BYTES, &art, &alen, eb);
    if (rc != 0) goto out;
    rc = tb_runner_digest_check(art, alen, r->spec.digest, &seb);
  }
  if (rc != 0) {
    rc = tb_errf(eb, rc, "the artifact %s: %s", r->spec.artifact, ebuf);
    goto out;
  }
  rc = r->backend->start(&r->spec, art, alen, tb__applog_wagi, &r->log, &r->bstate, eb);
  if (rc != 0) goto out;

  rc = uv_loop_init(&r->loop);
  if (rc != 0) {
    rc = tb_errf(eb, TB_EINTERNAL, "cannot create the event loop: %s", uv_strerror(rc));
    goto out;
  }
  r->loop_ready = true;
  uv_async_init(&r->loop, &died_async, on_died);
  died_async.data = r;
  uv_timer_init(&r->loop, &r->idle);
  uv_signal_init(&r->loop, &r->sigterm);
  uv_signal_init(&r->loop, &r->sigint);
  r->idle.data = r->sigterm.data = r->sigint.data = r;
  r->handles_ready = true;

  tb__runner_pool_config_t pc = {
      .workers = workers_of(r),
      .max_queued = TB_RUNNER_MAX_QUEUED,
      .request_timeout_ms = r->spec.request_timeout_sec * 1000u,
      .backend = r->backend,
      .backend_state = r->bstate,
      .log = &r->log,
      .cbs = {.on_released = on_released},
      .ud = r,
  };
  rc = tb__runner_pool_new(&r->loop, &pc, &r->pool);
  if (rc != 0) {
    rc = tb_errf(eb, rc, "cannot start %u worker threads", pc.workers);
    goto out;
  }

  tb_http_server_config_t dcfg = {.close_grace_ms = TB_RUNNER_GRACE_MS, .read_buffer_size = (size_t)64 << 10};
  rc = tb_http_server_new(&r->loop, &dcfg, on_data_request, r, &r->data);
  if (rc == 0) rc = tb_http_server_listen(r->data, r->spec.listen, &seb);
  if (rc != 0) {
    rc = tb_errf(eb, rc, "spec field \"listen\": %s", ebuf[0] ? ebuf : tb_strerror(rc));
    goto out;
  }

  {
    struct stat st;
    char addr[TB_HTTP_UNIX_PATH_MAX + 8];
    if (lstat(r->spec.control, &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        rc = tb_errf(eb, TB_EEXIST, "spec field \"control\": %s exists and is not a socket", r->spec.control);
        goto out;
      }
      unlink(r->spec.control); /* a stale socket from an earlier runner */
    }
    rc = tb_mkdir_parents(r->spec.control, 0750);
    if (rc != 0) {
      rc = tb_errf(eb, rc, "spec field \"control\": cannot create the directory of %s: %s", r->spec.control,
                   tb_strerror(rc));
      goto out;
    }
    snprintf(addr, sizeof addr, "unix:%s", r->spec.control);
    tb_http_server_config_t ccfg = {.max_connections = 64};
    rc = tb_http_server_new(&r->loop, &ccfg, on_ctl_request, r, &r->ctl);
    if (rc == 0) rc = tb_http_server_listen(r->ctl, addr, &seb);
    if (rc != 0) {
      rc = tb_errf(eb, rc, "spec field \"control\": %s", ebuf[0] ? ebuf : tb_strerror(rc));
      goto out;
    }
    r->ctl_bound = true;
  }
  format_address(r);
out:
  tb_free(text);
  tb_free(art);
  return rc;
}

static void teardown(runner_t *r) {
  if (r->loop_ready) {
    if (!r->stopping) {
      /* A setup error after the loop started: close what exists the normal way. */
      r->stopping = true;
      if (r->data) tb_http_server_close(r->data, on_data_closed, r);
      else on_data_closed(r);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r->loop) != 0) tb_log_warn("runner", "the event loop still had handles at exit");
  }
  if (r->backend) r->backend->stop(r->bstate);
  tb__applog_close(&r->log);
  tb_runner_spec_deinit(&r->spec);
}

int tb_runner_main(int argc, char **argv) {
  runner_t *r = NULL;
  const char *spec_path = NULL;
  char ebuf[600] = "";
  tb_errbuf_t eb = {ebuf, sizeof ebuf};
  int code;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("tabbify-runner %s\n", TB_RUNNER_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--spec") == 0 && i + 1 < argc) {
      spec_path = argv[++i];
    } else if (strncmp(argv[i], "--spec=", 7) == 0) {
      spec_path = argv[i] + 7;
    } else {
      fprintf(stderr, "tabbify-runner: unknown argument \"%s\"\n", argv[i]);
      usage(stderr);
      return TB_RUNNER_EXIT_SETUP;
    }
  }
  signal(SIGHUP, SIG_IGN); /* the supervisor may go away; we do not */
  signal(SIGPIPE, SIG_IGN);

  r = tb_calloc(1, sizeof *r);
  if (r == NULL) return TB_RUNNER_EXIT_SETUP;
  r->log.fd = -1;
  r->ready_fd = ready_fd_from_env();
  r->started_at_ns = tb_clock_wall_ns();
  r->last_active_ns = tb_clock_mono_ns();

  if (spec_path == NULL) {
    code = setup_fail(r, "missing --spec FILE: the runner needs the spec the supervisor wrote");
    usage(stderr);
    goto out;
  }
  int src = setup(r, spec_path, &eb);
  if (src != 0) {
    code = setup_fail(r, ebuf);
    /* A daemon that does not answer (docker) is an outage, not a broken deployment: say
     * so as an app that died, which the supervisor retries with backoff. */
    if (src == TB_ECONNREFUSED) {
      write_exit_reason(r, ebuf);
      code = TB_RUNNER_EXIT_APP_DIED;
    }
    r->exit_code = code;
    goto out;
  }

  uv_signal_start(&r->sigterm, on_signal, SIGTERM);
  uv_signal_start(&r->sigint, on_signal, SIGINT);
  pthread_mutex_lock(&died_mu);
  died_async_ready = true;
  if (died) uv_async_send(&died_async); /* it died while we were setting up */
  pthread_mutex_unlock(&died_mu);
  idle_restart(r);
  tb__applog_printf(&r->log, "runner", "started %s (%s) on %s, pid %d, %u workers, lifecycle %s", r->spec.name,
                    r->spec.runtime, r->address, (int)getpid(), workers_of(r),
                    r->spec.lifecycle == TB_RUNNER_ON_REQUEST ? "on_request" : "always_on");
  tb_log_info("runner", "started", TB_KV_STR("app", r->spec.app), TB_KV_STR("address", r->address),
              TB_KV_INT("pid", getpid()));
  if (r->ready_fd >= 0) {
    ready_write(r, json_pack("{s:s,s:I,s:s}", "address", r->address, "pid", (json_int_t)getpid(), "runner",
                             r->spec.runner));
  } else {
    printf("tabbify-runner listening on %s\n", r->address);
    fflush(stdout);
  }
  uv_run(&r->loop, UV_RUN_DEFAULT);
  code = r->exit_code;
  tb__applog_printf(&r->log, "runner", "stopped, exit code %d", code);
out:
  teardown(r);
  code = r->exit_code ? r->exit_code : code;
  tb_free(r);
  return code;
}
