/*
 * docker.c — the docker backend: the app is an OCI image run as one container by the
 * host's Docker daemon (lib/docker, over its unix socket), and the runner forwards the
 * app's traffic to the container's HTTP port (forward.c).
 *
 * Start (blocking, before the runner says it is ready):
 *   1. the image: the artifact is a `docker save` tarball (tabbify push of build.archive),
 *      loaded through the API; or a small JSON file {"image": "<reference>"} naming an
 *      image the daemon pulls (build.image);
 *   2. adoption: a running container labelled with this app AND this deployment (left by
 *      an earlier runner of the same deployment that died) is taken over instead of
 *      making a second one; stopped containers of the app are removed; running ones of
 *      other deployments are left to their own runners, which remove them when stopped;
 *   3. otherwise a new container: labels io.tabbify.{app,version,deployment,runner}, the
 *      spec's env and args, memory_mb as its memory limit (no swap), the app's port;
 *   4. ready when its port accepts connections (and, with health_path, answers it with
 *      a status below 400) — within request_timeout_sec.
 * Then two threads with their own API handles: one follows the container's log stream
 * into the app log (stdout and stderr lines), one waits for the container to stop. A
 * container that stops while the runner did not ask for it means the app died: the
 * reason (an OOM kill names memory_mb) goes to tb__runner_app_died.
 * Stop: the container is stopped (10 s grace) and removed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runner_int.h"
#include "tb/alloc.h"
#include "tb/clock.h"
#include "tb/docker.h"

#define STOP_GRACE_S 10
#define LOG_LINE_MAX 4096

typedef struct docker_rt {
  const tb_runner_spec_t *spec;
  tb__applog_t *log;
  tb_docker_t *api;               /* the main thread's handle */
  tb_docker_t *watch_api, *logs_api;
  pthread_t watch_th, logs_th;
  bool watch_started, logs_started;
  atomic_bool stopping;
  char image[300];
  char container[65];
  char address[80];
  tb__fwd_t *fwd;
  int64_t adopted_ns;             /* 0: the container's whole output; adopted: lines from then on */
  char partial[2][LOG_LINE_MAX];   /* an unfinished stdout / stderr line */
  size_t partial_len[2];
  /* Following an adopted container: lines come with the daemon's timestamp, those from
   * before the adoption (the last partial second) are dropped, the stamp is cut off. */
  bool at_stamp[2], skip_line[2];
  char stamp[2][48];
  size_t stamp_len[2];
} docker_rt_t;

static tb_docker_t *open_api(const tb_runner_spec_t *spec, tb_errbuf_t *eb) {
  tb_docker_t *d = NULL;
  tb_docker_open(spec->docker_socket[0] ? spec->docker_socket : NULL, &d, eb);
  return d;
}

/* ---- the image ---- */

/* A JSON artifact {"image": "ref"} names an image to pull; anything else is a tarball. */
static bool image_reference(const char *path, char *ref, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  if (n == 0 || buf[0] != '{') return false;
  json_t *j = json_loads(buf, 0, NULL);
  const char *r = json_string_value(json_object_get(j, "image"));
  bool ok = r && *r && strlen(r) < cap;
  if (ok) snprintf(ref, cap, "%s", r);
  json_decref(j);
  return ok;
}

static int ensure_image(docker_rt_t *d, tb_errbuf_t *eb) {
  const tb_runner_spec_t *s = d->spec;
  char ref[256], msg[400] = "";
  tb_errbuf_t meb = {msg, sizeof msg};
  int rc;
  if (image_reference(s->artifact, ref, sizeof ref)) {
    if ((rc = tb_runner_digest_check_file(s->artifact, s->digest, &meb)) != 0)
      return tb_errf(eb, rc, "the artifact %s: %s", s->artifact, msg);
    json_t *info = NULL;
    if (tb_docker_image_inspect(d->api, ref, &info, NULL) != 0) {
      tb__applog_printf(d->log, "runner", "pulling the image %s", ref);
      rc = tb_docker_image_pull(d->api, ref, &meb);
      if (rc != 0) return tb_errf(eb, rc, "cannot pull the image %s: %s", ref, msg);
    }
    json_decref(info);
    snprintf(d->image, sizeof d->image, "%s", ref);
    return 0;
  }
  /* A tarball loaded once is tagged with its digest (the version's identity), so later
   * starts of the same version — restarts, scale-to-zero wake-ups — skip the load. */
  char tag[40] = "";
  if (s->digest[0]) snprintf(tag, sizeof tag, "%.7s%.16s", s->digest, s->digest + 7);
  for (char *c = tag; *c; c++)
    if (*c == ':') *c = '-';
  json_t *info = NULL;
  if (tag[0]) {
    snprintf(d->image, sizeof d->image, "tabbify/%s:%s", s->app, tag);
    if (tb_docker_image_inspect(d->api, d->image, &info, NULL) == 0) {
      json_decref(info);
      return 0;
    }
  }
  /* Only a tarball about to be loaded is hashed: a tagged image is already this digest's. */
  if ((rc = tb_runner_digest_check_file(s->artifact, s->digest, &meb)) != 0)
    return tb_errf(eb, rc, "the artifact %s: %s", s->artifact, msg);
  char *img = NULL;
  rc = tb_docker_image_load(d->api, s->artifact, &img, &meb);
  if (rc != 0) return tb_errf(eb, rc, "the artifact %s is not an image the Docker daemon can load: %s", s->artifact, msg);
  char repo[80];
  snprintf(repo, sizeof repo, "tabbify/%s", s->app);
  if (!tag[0] || tb_docker_image_tag(d->api, img, repo, tag, NULL) != 0) snprintf(d->image, sizeof d->image, "%s", img);
  tb_free(img);
  return 0;
}

/* ---- the container ---- */

static const char *label_of(json_t *c, const char *key) {
  return json_string_value(json_object_get(json_object_get(c, "Labels"), key));
}

/* A running container of this deployment to adopt; removes the app's stopped ones. */
static void adopt_or_clean(docker_rt_t *d) {
  char filter[120];
  snprintf(filter, sizeof filter, "io.tabbify.app=%s", d->spec->app);
  json_t *all = NULL, *c;
  size_t i;
  if (tb_docker_container_list(d->api, filter, &all, NULL) != 0) return;
  json_array_foreach(all, i, c) {
    const char *id = json_string_value(json_object_get(c, "Id")), *state = json_string_value(json_object_get(c, "State"));
    const char *dep = label_of(c, "io.tabbify.deployment");
    if (!id || !state) continue;
    bool running = strcmp(state, "running") == 0;
    bool mine = dep && strcmp(dep, d->spec->deployment) == 0;
    if (running && mine && !d->container[0]) {
      snprintf(d->container, sizeof d->container, "%s", id);
      d->adopted_ns = tb_clock_wall_ns(); /* its earlier output is in the log already */
      tb__applog_printf(d->log, "runner", "adopted the running container %.12s", id);
    } else if (!running) {
      tb_docker_container_remove(d->api, id, true, NULL);
    }
  }
  json_decref(all);
}

static int create_container(docker_rt_t *d, tb_errbuf_t *eb) {
  const tb_runner_spec_t *s = d->spec;
  char version[24], name[80], msg[400] = "";
  tb_errbuf_t meb = {msg, sizeof msg};
  snprintf(version, sizeof version, "%lld", (long long)s->version);
  snprintf(name, sizeof name, "tabbify-%s", s->runner);
  tb_docker_label_t labels[] = {
      {"io.tabbify.app", s->app},
      {"io.tabbify.version", version},
      {"io.tabbify.deployment", s->deployment},
      {"io.tabbify.runner", s->runner},
  };
  tb_docker_container_spec_t cs = {
      .image = d->image,
      .name = name,
      .labels = labels,
      .nlabels = sizeof labels / sizeof labels[0],
      .env = (const char *const *)s->env,
      .nenv = s->nenv,
      .cmd = (const char *const *)s->args,
      .ncmd = s->nargs,
      .memory_mb = s->memory_mb,
      .port = (uint16_t)s->port,
  };
  int rc = tb_docker_container_create(d->api, &cs, d->container, &meb);
  if (rc != 0) return tb_errf(eb, rc, "cannot create the container from %s: %s", d->image, msg);
  rc = tb_docker_container_start(d->api, d->container, &meb);
  if (rc != 0) {
    tb_docker_container_remove(d->api, d->container, true, NULL);
    d->container[0] = 0;
    return tb_errf(eb, rc, "cannot start the container from %s: %s", d->image, msg);
  }
  tb__applog_printf(d->log, "runner", "started container %.12s from %s (memory %u MiB)", d->container, d->image,
                    s->memory_mb);
  return 0;
}

/* Why a container that stopped on its own stopped, for the log and app_crashed. */
static void death_reason(docker_rt_t *d, tb_docker_t *api, char *out, size_t cap) {
  tb_docker_container_state_t st;
  if (tb_docker_container_inspect(api, d->container, &st, NULL, NULL) != 0) {
    snprintf(out, cap, "the container %.12s is gone", d->container);
  } else if (st.oom_killed) {
    snprintf(out, cap, "the container was killed for using more than its memory limit (memory_mb = %u)",
             d->spec->memory_mb);
  } else if (st.error[0]) {
    snprintf(out, cap, "the container stopped: %s", st.error);
  } else {
    snprintf(out, cap, "the container exited with status %lld", (long long)st.exit_code);
  }
}

/* ---- readiness ---- */

static bool port_accepts(const char *ip, uint16_t port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

static int health_status(const char *ip, uint16_t port, const char *path) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;
  if (fd < 0) return -1;
  char rq[600], buf[64];
  int n = snprintf(rq, sizeof rq, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tabbify-runner\r\n\r\n", path, ip);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && write(fd, rq, (size_t)n) == n && poll(&p, 1, 1000) == 1) {
    ssize_t got = read(fd, buf, sizeof buf - 1);
    if (got >= 12 && memcmp(buf, "HTTP/1.", 7) == 0) status = atoi(buf + 9);
  }
  close(fd);
  return status;
}

/*
 * Ready when the port accepts (and health_path answers below 400). The port is tried
 * every 5 ms; the daemon is asked (for the IP, and whether the container still runs)
 * first and then every 100 ms, since an inspect costs far more than a connect.
 */
static int wait_ready(docker_rt_t *d, tb_errbuf_t *eb) {
  const tb_runner_spec_t *s = d->spec;
  int64_t now = tb_clock_mono_ns(), deadline = now + (int64_t)s->request_timeout_sec * TB_NS_PER_SEC, next_inspect = now;
  tb_docker_container_state_t st = {0};
  int last = -1;
  for (;;) {
    if (tb_clock_mono_ns() >= next_inspect) {
      int rc = tb_docker_container_inspect(d->api, d->container, &st, NULL, eb);
      if (rc != 0) return rc;
      if (!st.running) {
        char why[300];
        death_reason(d, d->api, why, sizeof why);
        return tb_errf(eb, TB_ECANCELED, "%s before it was ready", why);
      }
      next_inspect = tb_clock_mono_ns() + 100 * TB_NS_PER_MS;
    }
    if (st.ip[0] && port_accepts(st.ip, (uint16_t)s->port)) {
      if (!s->health_path[0]) break;
      last = health_status(st.ip, (uint16_t)s->port, s->health_path);
      if (last > 0 && last < 400) break;
    }
    if (tb_clock_mono_ns() > deadline) {
      if (!st.ip[0]) return tb_errf(eb, TB_ETIMEDOUT, "the container has no IP address (is it on a bridge network?)");
      if (last >= 0)
        return tb_errf(eb, TB_ETIMEDOUT, "the app answered %s with %d, not a success, for %u s", s->health_path, last,
                       s->request_timeout_sec);
      return tb_errf(eb, TB_ETIMEDOUT, "the app did not accept connections on port %u within %u s (runtime.port)",
                     s->port, s->request_timeout_sec);
    }
    usleep(5 * 1000);
  }
  snprintf(d->address, sizeof d->address, "%s:%u", st.ip, s->port);
  return 0;
}

/* ---- the threads ---- */

/* "2026-11-22T05:12:00.123456789Z" (RFC 3339 in UTC, as the daemon stamps lines) in ns; 0 if not. */
static int64_t stamp_ns(const char *s) {
  struct tm tm = {0};
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  int64_t ns = 0, scale = 100000000;
  if (*rest == '.')
    for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10) ns += (*rest - '0') * scale;
  return (int64_t)timegm(&tm) * TB_NS_PER_SEC + ns;
}

/* Log frames into lines, per stream; a partial line waits for its end (or is cut at LOG_LINE_MAX). */
static int on_log(void *ud, int stream, const uint8_t *p, size_t n, bool end) {
  (void)end;
  docker_rt_t *d = ud;
  int k = stream == TB_DOCKER_STDERR ? 1 : 0;
  const char *name = k ? "stderr" : "stdout";
  for (size_t i = 0; i < n; i++) {
    if (d->at_stamp[k]) { /* adopted: the daemon's stamp, up to its space */
      if (p[i] == ' ') {
        d->stamp[k][d->stamp_len[k]] = '\0';
        d->skip_line[k] = stamp_ns(d->stamp[k]) < d->adopted_ns;
        d->at_stamp[k] = false;
        d->stamp_len[k] = 0;
      } else if (d->stamp_len[k] < sizeof d->stamp[k] - 1) {
        d->stamp[k][d->stamp_len[k]++] = (char)p[i];
      }
      continue;
    }
    if (p[i] == '\n' || d->partial_len[k] == LOG_LINE_MAX) {
      if (!d->skip_line[k]) tb__applog_line(d->log, name, d->partial[k], d->partial_len[k]);
      d->partial_len[k] = 0;
      d->at_stamp[k] = d->adopted_ns != 0 && p[i] == '\n';
      if (p[i] == '\n') continue;
    }
    d->partial[k][d->partial_len[k]++] = (char)p[i];
  }
  return 0;
}

/* Each thread opens its own handle (opening costs a ping), so start-up does not wait for
 * them; dk_stop cancels a handle only once it exists (handle_mu). */
static pthread_mutex_t handle_mu = PTHREAD_MUTEX_INITIALIZER;

static tb_docker_t *thread_api(docker_rt_t *d, tb_docker_t **slot) {
  tb_docker_t *api = open_api(d->spec, NULL);
  pthread_mutex_lock(&handle_mu);
  *slot = api;
  if (api && atomic_load(&d->stopping)) tb_docker_cancel(api);
  pthread_mutex_unlock(&handle_mu);
  return api;
}

static void *logs_main(void *arg) {
  docker_rt_t *d = arg;
  if (!thread_api(d, &d->logs_api)) return NULL;
  int64_t since = d->adopted_ns / TB_NS_PER_SEC; /* whole seconds: the stamps do the rest */
  d->at_stamp[0] = d->at_stamp[1] = d->adopted_ns != 0;
  tb_docker_logs(d->logs_api, d->container, since,
                 TB_DOCKER_LOGS_FOLLOW | (d->adopted_ns ? TB_DOCKER_LOGS_TIMESTAMPS : 0), on_log, d, NULL);
  for (int k = 0; k < 2; k++)
    if (d->partial_len[k] && !d->skip_line[k])
      tb__applog_line(d->log, k ? "stderr" : "stdout", d->partial[k], d->partial_len[k]);
  return NULL;
}

static void *watch_main(void *arg) {
  docker_rt_t *d = arg;
  int64_t code = 0;
  if (!thread_api(d, &d->watch_api)) {
    if (!atomic_load(&d->stopping)) tb__runner_app_died("the Docker daemon stopped answering");
    return NULL;
  }
  int rc = tb_docker_container_wait(d->watch_api, d->container, "not-running", &code, NULL);
  if (rc == TB_ECANCELED || atomic_load(&d->stopping)) return NULL;
  char why[400];
  death_reason(d, d->watch_api, why, sizeof why);
  tb__runner_app_died(why);
  return NULL;
}

/* ---- the backend ---- */

static void dk_stop(void *state) {
  docker_rt_t *d = state;
  if (!d) return;
  atomic_store(&d->stopping, true);
  if (d->api && d->container[0]) {
    tb_docker_container_stop(d->api, d->container, STOP_GRACE_S, NULL);
    tb_docker_container_remove(d->api, d->container, true, NULL);
    tb__applog_printf(d->log, "runner", "removed container %.12s", d->container);
  }
  /* The stop ended the wait and the followed logs; cancel in case the daemon is gone. */
  pthread_mutex_lock(&handle_mu);
  if (d->watch_api) tb_docker_cancel(d->watch_api);
  if (d->logs_api) tb_docker_cancel(d->logs_api);
  pthread_mutex_unlock(&handle_mu);
  if (d->watch_started) pthread_join(d->watch_th, NULL);
  if (d->logs_started) pthread_join(d->logs_th, NULL);
  tb_docker_close(d->watch_api);
  tb_docker_close(d->logs_api);
  tb_docker_close(d->api);
  tb__fwd_free(d->fwd);
  tb_free(d);
}

static int dk_start(const tb_runner_spec_t *spec, const uint8_t *bytes, size_t len, tb_wagi_log_fn log, void *log_arg,
                    void **state, tb_errbuf_t *eb) {
  (void)bytes, (void)len, (void)log;
  docker_rt_t *d = tb_calloc(1, sizeof *d);
  if (!d) return TB_ENOMEM;
  d->spec = spec;
  d->log = log_arg; /* the runner's app log (runner.c passes &r->log) */
  int rc = 0;
  if ((d->api = open_api(spec, eb)) == NULL) {
    rc = TB_ECONNREFUSED;
    goto out;
  }
  if ((rc = ensure_image(d, eb)) != 0) goto out;
  adopt_or_clean(d);
  if (!d->container[0] && (rc = create_container(d, eb)) != 0) goto out;
  if ((rc = wait_ready(d, eb)) != 0) goto out;
  if ((rc = tb__fwd_new(d->address, spec->request_timeout_sec * 1000u, &d->fwd, eb)) != 0) goto out;
  d->logs_started = pthread_create(&d->logs_th, NULL, logs_main, d) == 0;
  d->watch_started = pthread_create(&d->watch_th, NULL, watch_main, d) == 0;
  if (!d->watch_started) rc = tb_errf(eb, TB_ENOMEM, "cannot start the thread that watches the container");
out:
  if (rc != 0) {
    dk_stop(d);
    return rc;
  }
  *state = d;
  return 0;
}

static int dk_serve(void *state, const tb_wagi_request_t *req, const tb_wagi_io_t *io, tb_wagi_result_t *res) {
  return tb__fwd_serve(((docker_rt_t *)state)->fwd, req, io, res);
}

const tb__runner_backend_t tb__runner_docker = {
    .runtime = "docker",
    .reads_artifact = true,
    .workers = 32, /* workers wait on the container's answers, not on a CPU */
    .start = dk_start,
    .serve = dk_serve,
    .stop = dk_stop,
};
