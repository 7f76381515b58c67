/*
 * docker_client.c — the Docker client against a real daemon, end to end.
 *
 * docker_e2e.sh starts a private dockerd (dockerd.sh) and runs this program on its
 * socket with the test image tarballs made at build time (image/mkimage.sh):
 *
 *   docker_client SOCKET DOCKER_TAR OCI_TAR BOTH_TAR ROOTFS_TAR   the whole client
 *   docker_client --down SOCKET                                  a daemon that is gone
 *   docker_client --watch SOCKET                                 a handle that outlives it
 *
 * It loads the image, runs the static httpd in a container with labels, env and a
 * 32 MiB limit, talks HTTP to it at its bridge address (libcurl), follows its logs
 * demultiplexed, finds it by label, makes it exceed its memory limit, and checks the
 * error sentences. Every check prints what was expected and what came back; every
 * container it made is removed on the way out, pass or fail. Timings go to stdout.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "tb/docker.h"

static int failures, checks;
static char made[8][65]; /* containers to remove at the end */
static int nmade;

#define CHECK(cond, ...)                          \
  do {                                            \
    checks++;                                     \
    if (cond) {                                   \
      printf("ok: ");                             \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    } else {                                      \
      failures++;                                 \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    }                                             \
  } while (0)

/* Expects rc == want and the sentence to contain every needle. */
static void expect_err(const char *what, int rc, int want, const char *msg, const char *needle1, const char *needle2) {
  bool ok = rc == want && (!needle1 || strstr(msg, needle1)) && (!needle2 || strstr(msg, needle2));
  CHECK(ok, "%s -> %s \"%s\"%s%s%s%s%s", what, tb_err_name(rc), msg, ok ? "" : "\n  expected: ", ok ? "" : tb_err_name(want),
        ok ? "" : " containing \"", ok ? "" : needle1 ? needle1 : "", ok ? "" : "\"");
}

/* A JSON string's value, "" for anything else. */
static const char *str(const json_t *v) {
  const char *s = json_string_value(v);
  return s ? s : "";
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- HTTP to the container, with libcurl ---- */

typedef struct body {
  char *data;
  size_t len, cap;
} body_t;

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  body_t *b = ud;
  size_t n = size * nmemb;
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *q = realloc(b->data, cap);
    if (q == NULL) return 0;
    b->data = q;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

typedef struct upload {
  const char *data;
  size_t len, at;
} upload_t;

static size_t on_upload(char *p, size_t size, size_t nmemb, void *ud) {
  upload_t *u = ud;
  size_t n = size * nmemb;
  if (n > u->len - u->at) n = u->len - u->at;
  if (n > 10000) n = 10000; /* small pieces: the chunked body gets many chunks */
  memcpy(p, u->data + u->at, n);
  u->at += n;
  return n;
}

/* GET or POST http://ip:8080/path; returns the status (0 when the request failed). */
static long http(const char *ip, const char *path, const char *post, size_t post_len, bool chunked, body_t *out,
                 long timeout_s) {
  char url[256];
  snprintf(url, sizeof url, "http://%s:8080%s", ip, path);
  CURL *c = curl_easy_init();
  upload_t up = {post, post_len, 0};
  struct curl_slist *h = NULL;
  out->len = 0;
  if (out->data) out->data[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 2L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (post) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    h = curl_slist_append(h, "Expect:");
    if (chunked) h = curl_slist_append(h, "Transfer-Encoding: chunked");
    else curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  }
  long status = 0;
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return status;
}

/* ---- logs on a second handle, in a thread ---- */

typedef struct logs {
  tb_docker_t *d;
  char id[65];
  body_t out, err;
  int frames[3];
  int rc;
  char msg[512];
  pthread_mutex_t mu;
} logs_t;

static int on_log(void *ud, int stream, const uint8_t *p, size_t n, bool end) {
  logs_t *l = ud;
  pthread_mutex_lock(&l->mu);
  on_body((char *)p, 1, n, stream == TB_DOCKER_STDERR ? &l->err : &l->out);
  if (end) l->frames[stream]++;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static void *logs_thread(void *ud) {
  logs_t *l = ud;
  l->rc = tb_docker_logs(l->d, l->id, 0, TB_DOCKER_LOGS_FOLLOW, on_log, l, &(tb_errbuf_t){l->msg, sizeof l->msg});
  return NULL;
}

typedef struct waiter {
  tb_docker_t *d;
  const char *id;
  int rc;
  int64_t code;
  char msg[512];
  double returned_ms;
} waiter_t;

static void *wait_thread(void *ud) {
  waiter_t *w = ud;
  w->rc = tb_docker_container_wait(w->d, w->id, NULL, &w->code, &(tb_errbuf_t){w->msg, sizeof w->msg});
  w->returned_ms = now_ms();
  return NULL;
}

/* ---- the checks ---- */

static char msg[2048];
static tb_errbuf_t eb = {msg, sizeof msg};

static bool wait_http_ok(const char *ip, body_t *b, double *first_ms) {
  for (int i = 0; i < 500; i++) {
    if (http(ip, "/", NULL, 0, false, b, 2) == 200) {
      *first_ms = now_ms();
      return true;
    }
    usleep(10000);
  }
  return false;
}

static int down(const char *socket) {
  tb_docker_t *d = NULL;
  int rc = tb_docker_open(socket, &d, &eb);
  CHECK(d == NULL, "no handle from a daemon that is gone");
  bool ok = (rc == TB_ECONNREFUSED || rc == TB_ENOENT) && strstr(msg, socket) && strstr(msg, "is dockerd running?");
  CHECK(ok, "open on a stopped daemon -> %s \"%s\" (expected TB_ECONNREFUSED or TB_ENOENT naming %s)",
        tb_err_name(rc), msg, socket);
  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures ? 1 : 0;
}

/* --watch: a long-lived handle, as the supervisor keeps one for capability detection.
 * Pings, says "ready", waits for a line on stdin (the script kills the daemon), pings
 * again on the same handle and expects the daemon-is-gone sentence. */
static int watch(const char *socket) {
  tb_docker_t *d = NULL;
  int rc = tb_docker_open(socket, &d, &eb);
  CHECK(rc == 0 && tb_docker_ping(d, &eb) == 0, "a watching handle pings the daemon (%s)", rc ? msg : "");
  printf("ready\n");
  fflush(stdout);
  char line[16];
  if (fgets(line, sizeof line, stdin) == NULL) return 1;
  rc = d ? tb_docker_ping(d, &eb) : TB_EINVAL;
  bool ok = (rc == TB_ECONNREFUSED || rc == TB_ENOENT) && strstr(msg, socket) && strstr(msg, "is dockerd running?");
  CHECK(ok, "ping on the same handle after the daemon died -> %s \"%s\"", tb_err_name(rc), msg);
  tb_docker_close(d);
  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--down") == 0) return down(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--watch") == 0) return watch(argv[2]);
  if (argc != 6) {
    fprintf(stderr, "usage: docker_client SOCKET DOCKER_TAR OCI_TAR BOTH_TAR ROOTFS_TAR | --down SOCKET\n");
    return 2;
  }
  const char *socket = argv[1], *docker_tar = argv[2], *oci_tar = argv[3], *both_tar = argv[4], *rootfs = argv[5];
  tb_docker_t *d = NULL, *d2 = NULL, *d3 = NULL;
  char *image = NULL, *imported = NULL;
  json_t *j = NULL;
  body_t b = {0};
  char *big = NULL;
  logs_t logs = {.mu = PTHREAD_MUTEX_INITIALIZER};
  int rc;
  char app[64];
  snprintf(app, sizeof app, "0190a2b4-0000-7000-8000-%012d", (int)getpid());

  /* open, version */
  double t0 = now_ms();
  rc = tb_docker_open(socket, &d, &eb);
  double t_open = now_ms() - t0;
  CHECK(rc == 0, "open %s -> %s %s", socket, tb_err_name(rc), rc ? msg : "");
  if (rc) goto out;
  CHECK(strcmp(tb_docker_api_version(d), "1.41") == 0, "API version: expected 1.41, got %s (daemon %s)",
        tb_docker_api_version(d), tb_docker_daemon_version(d));
  CHECK(tb_docker_ping(d, &eb) == 0, "ping");
  if ((rc = tb_docker_open(socket, &d2, &eb)) != 0 || (rc = tb_docker_open(socket, &d3, &eb)) != 0) {
    CHECK(0, "second and third handles: %s", msg);
    goto out;
  }

  /* images */
  t0 = now_ms();
  rc = tb_docker_image_load(d, docker_tar, &image, &eb);
  double t_load = now_ms() - t0;
  CHECK(rc == 0 && image && strcmp(image, "tabbify-test/httpd:1") == 0,
        "load the docker-save tarball -> %s, image %s %s", tb_err_name(rc), image ? image : "(none)", rc ? msg : "");
  if (rc) goto out;
  rc = tb_docker_image_inspect(d, image, &j, &eb);
  const json_t *cfg = json_object_get(j, "Config");
  CHECK(rc == 0 && json_object_get(json_object_get(cfg, "ExposedPorts"), "8080/tcp") &&
            strcmp(str(json_array_get(json_object_get(cfg, "Cmd"), 0)), "/httpd") == 0,
        "inspect %s: Cmd [/httpd], ExposedPorts 8080/tcp (%s)", image, rc ? msg : "");
  json_decref(j);
  j = NULL;
  rc = tb_docker_image_inspect(d, "tabbify-test/no-such-image:1", &j, &eb);
  expect_err("inspect a missing image", rc, TB_ENOTFOUND, msg, "No such image", NULL);

  char *other = NULL;
  rc = tb_docker_image_load(d, both_tar, &other, &eb);
  CHECK(rc == 0 && other && strcmp(other, "tabbify-test/httpd-both:1") == 0,
        "load a tarball with an OCI layout beside manifest.json (Docker 25 save) -> %s %s %s", tb_err_name(rc),
        other ? other : "", rc ? msg : "");
  tb_free(other);
  other = NULL;
  rc = tb_docker_image_load(d, oci_tar, &other, &eb);
  expect_err("load a bare OCI image layout", rc, TB_EINVAL, msg, "OCI image layout", oci_tar);
  tb_free(other);
  other = NULL;
  char notar[] = "/tmp/tb-not-a-tar.XXXXXX";
  int fd = mkstemp(notar);
  if (fd >= 0) {
    dprintf(fd, "this is not a tarball\n");
    close(fd);
    rc = tb_docker_image_load(d, notar, &other, &eb);
    expect_err("load a text file", rc, TB_EINVAL, msg, notar, "not a `docker save` tarball");
    unlink(notar);
  }
  rc = tb_docker_image_load(d, "/nonexistent/image.tar", &other, &eb);
  expect_err("load a missing file", rc, TB_ENOENT, msg, "/nonexistent/image.tar", NULL);
  rc = tb_docker_image_pull(d, "127.0.0.1:9/tabbify/nope:1", &eb);
  CHECK(rc != 0 && strstr(msg, "127.0.0.1:9/tabbify/nope:1") && strstr(msg, "connection refused"),
        "pull from a registry nobody serves -> %s \"%s\"", tb_err_name(rc), msg);

  const char *changes[] = {"CMD [\"/httpd\"]", "EXPOSE 8080", "ENV PORT=8080"};
  rc = tb_docker_image_import(d, rootfs, "tabbify-test/imported:2", changes, 3, &imported, &eb);
  CHECK(rc == 0 && imported && strncmp(imported, "sha256:", 7) == 0, "import a root file system -> %s %s %s",
        tb_err_name(rc), imported ? imported : "", rc ? msg : "");
  if (rc == 0) {
    rc = tb_docker_image_inspect(d, "tabbify-test/imported:2", &j, &eb);
    cfg = json_object_get(j, "Config");
    CHECK(rc == 0 && strcmp(str(json_array_get(json_object_get(cfg, "Cmd"), 0)), "/httpd") == 0,
          "the imported image has Cmd [/httpd]");
    json_decref(j);
    j = NULL;
    rc = tb_docker_image_remove(d, "tabbify-test/imported:2", false, &eb);
    CHECK(rc == 0, "remove the imported image (%s)", rc ? msg : "");
  }

  /* a container that cannot be created */
  char id[65];
  tb_docker_container_spec_t bad = {.image = "tabbify-test/no-such-image:1"};
  rc = tb_docker_container_create(d, &bad, id, &eb);
  expect_err("create from a missing image", rc, TB_ENOTFOUND, msg,
             "the Docker daemon refused to create the container: No such image: tabbify-test/no-such-image:1", NULL);
  bad.image = "Not A/valid::ref";
  rc = tb_docker_container_create(d, &bad, id, &eb);
  expect_err("create from an invalid reference", rc, TB_EINVAL, msg, "invalid reference format", NULL);

  /* the container */
  char name[64];
  snprintf(name, sizeof name, "tb-e2e-%d", (int)getpid());
  const tb_docker_label_t labels[] = {{"io.tabbify.app", app},
                                      {"io.tabbify.version", "3"},
                                      {"io.tabbify.deployment", "d-e2e"},
                                      {"io.tabbify.runner", "r-e2e"}};
  const char *env[] = {"GREETING=hello from the manifest", "PORT=8080"};
  tb_docker_container_spec_t spec = {.image = image, .name = name, .labels = labels, .nlabels = 4, .env = env,
                                     .nenv = 2, .memory_mb = 32, .port = 8080};
  double t_create0 = now_ms();
  rc = tb_docker_container_create(d, &spec, id, &eb);
  double t_created = now_ms();
  CHECK(rc == 0 && strlen(id) == 64, "create %s -> %s %s", name, id, rc ? msg : "");
  if (rc) goto out;
  snprintf(made[nmade++], 65, "%s", id);
  rc = tb_docker_container_create(d, &spec, (char[65]){0}, &eb);
  expect_err("create a second container with the same name", rc, TB_ECONFLICT, msg, "is already in use", NULL);

  rc = tb_docker_container_start(d, id, &eb);
  double t_started = now_ms();
  CHECK(rc == 0, "start (%s)", rc ? msg : "");
  tb_docker_container_state_t st;
  rc = tb_docker_container_inspect(d, id, &st, &j, &eb);
  CHECK(rc == 0 && st.running && strcmp(st.status, "running") == 0 && st.ip[0] && strcmp(st.id, id) == 0 &&
            st.pid > 0,
        "inspect: running, status %s, ip %s, pid %" PRId64 ", started %s", st.status, st.ip, st.pid, st.started_at);
  const json_t *hc = json_object_get(j, "HostConfig");
  CHECK(json_integer_value(json_object_get(hc, "Memory")) == 32 << 20 &&
            json_integer_value(json_object_get(hc, "MemorySwap")) == 32 << 20,
        "HostConfig.Memory and MemorySwap are 32 MiB");
  CHECK(strcmp(str(json_object_get(json_object_get(json_object_get(j, "Config"), "Labels"), "io.tabbify.app")), app) == 0,
        "label io.tabbify.app=%s", app);
  json_decref(j);
  j = NULL;
  rc = tb_docker_container_start(d, id, &eb);
  CHECK(rc == 0, "starting it again is not an error (%s)", rc ? msg : "");

  /* its logs, followed from another thread on another handle */
  pthread_t lt;
  logs.d = d2;
  snprintf(logs.id, sizeof logs.id, "%s", id);
  pthread_create(&lt, NULL, logs_thread, &logs);

  double t_first = 0;
  bool up = wait_http_ok(st.ip, &b, &t_first);
  double t_first200 = t_first - t_started;
  CHECK(up && strcmp(b.data, "hello from a container\n") == 0, "GET http://%s:8080/ -> %s", st.ip,
        up ? b.data : "(no answer)");
  long status = http(st.ip, "/env", NULL, 0, false, &b, 5);
  CHECK(status == 200 && strstr(b.data, "GREETING=hello from the manifest\n"), "GET /env has GREETING (%ld)", status);

  size_t big_len = 1 << 20;
  big = malloc(big_len);
  srand(42);
  for (size_t i = 0; i < big_len; i++) big[i] = (char)(rand() & 0xff);
  status = http(st.ip, "/echo", big, big_len, false, &b, 20);
  CHECK(status == 200 && b.len == big_len && memcmp(b.data, big, big_len) == 0,
        "POST 1 MiB to /echo (Content-Length) comes back byte-exact (%ld, %zu bytes)", status, b.len);
  status = http(st.ip, "/echo", big, big_len, true, &b, 20);
  CHECK(status == 200 && b.len == big_len && memcmp(b.data, big, big_len) == 0,
        "POST 1 MiB to /echo (chunked) comes back byte-exact (%ld, %zu bytes)", status, b.len);

  /* found by label */
  char filter[128];
  snprintf(filter, sizeof filter, "io.tabbify.app=%s", app);
  rc = tb_docker_container_list(d, filter, &j, &eb);
  CHECK(rc == 0 && json_array_size(j) == 1 &&
            strcmp(str(json_object_get(json_array_get(j, 0), "Id")), id) == 0,
        "list by label %s finds exactly our container (%zu found) %s", filter, json_array_size(j), rc ? msg : "");
  json_decref(j);
  j = NULL;
  rc = tb_docker_container_list(d, "io.tabbify.app=nobody", &j, &eb);
  CHECK(rc == 0 && json_array_size(j) == 0, "list by a label nobody has finds nothing");
  json_decref(j);
  j = NULL;

  /* over the memory limit: the kernel kills PID 1, the container stops */
  status = http(st.ip, "/alloc?mb=100", NULL, 0, false, &b, 20);
  CHECK(status == 0, "GET /alloc?mb=100 with a 32 MiB limit gets no answer (status %ld)", status);
  int64_t code = -1;
  rc = tb_docker_container_wait(d, id, "not-running", &code, &eb);
  CHECK(rc == 0 && code == 137, "wait -> exit code %" PRId64 " (expected 137) %s", code, rc ? msg : "");
  rc = tb_docker_container_inspect(d, id, &st, NULL, &eb);
  CHECK(rc == 0 && st.oom_killed && !st.running && st.exit_code == 137 && strcmp(st.status, "exited") == 0,
        "inspect after the OOM kill: OOMKilled %d, running %d, exit code %" PRId64 ", status %s", st.oom_killed,
        st.running, st.exit_code, st.status);

  pthread_join(lt, NULL);
  CHECK(logs.rc == 0, "the followed log ends when the container stops (%s %s)", tb_err_name(logs.rc), logs.msg);
  const char *o = logs.out.data ? logs.out.data : "", *e = logs.err.data ? logs.err.data : "";
  CHECK(strstr(o, "GET / HTTP/1.1\n") && strstr(o, "POST /echo HTTP/1.1\n") && strstr(o, "GET /alloc?mb=100 HTTP/1.1\n"),
        "stdout has the request lines (%d frames):\n%s", logs.frames[1], o);
  CHECK(strstr(e, "httpd: listening on port 8080\n") && strstr(e, "httpd: GET / -> 200\n") &&
            strstr(e, "httpd: allocating 100 MiB\n"),
        "stderr has the server's notes (%d frames):\n%s", logs.frames[2], e);
  CHECK(!strstr(o, "httpd:") && !strstr(e, "HTTP/1.1"), "nothing of one stream leaked into the other");
  /* The same logs again, not followed, from the stopped container: the same bytes. */
  logs_t again = {.mu = PTHREAD_MUTEX_INITIALIZER};
  rc = tb_docker_logs(d, id, 0, 0, on_log, &again, &eb);
  CHECK(rc == 0 && again.out.len == logs.out.len && again.err.len == logs.err.len &&
            memcmp(again.out.data, logs.out.data, logs.out.len) == 0,
        "the logs read again without follow are the same (%zu+%zu bytes) %s", again.out.len, again.err.len,
        rc ? msg : "");
  free(again.out.data);
  free(again.err.data);
  again = (logs_t){.mu = PTHREAD_MUTEX_INITIALIZER};
  rc = tb_docker_logs(d, id, 0, TB_DOCKER_LOGS_TIMESTAMPS, on_log, &again, &eb);
  CHECK(rc == 0 && again.out.data && strncmp(again.out.data, "20", 2) == 0 && strstr(again.out.data, "Z GET / HTTP/1.1\n"),
        "with timestamps every line starts with an RFC 3339 time: %.60s", again.out.data ? again.out.data : "");
  free(again.out.data);
  free(again.err.data);

  /* the runner's restart after an OOM kill: the same container again */
  rc = tb_docker_container_start(d, id, &eb);
  CHECK(rc == 0, "start it again after the OOM kill (%s)", rc ? msg : "");
  rc = tb_docker_container_inspect(d, id, &st, NULL, &eb);
  up = rc == 0 && wait_http_ok(st.ip, &b, &t_first);
  /* Docker 20.10 does not reset State.OOMKilled on start (later versions do): it only
   * describes the last exit while the container is not running (docs/internals/DOCKER.md). */
  CHECK(up && st.running, "it answers again at %s (OOMKilled still reads %d while running)", st.ip, st.oom_killed);
  double t_stop = now_ms();
  rc = tb_docker_container_stop(d, id, 10, &eb);
  t_stop = now_ms() - t_stop;
  CHECK(rc == 0 && t_stop < 5000, "stop takes %.0f ms (SIGTERM ends the server) %s", t_stop, rc ? msg : "");
  rc = tb_docker_container_inspect(d, id, &st, NULL, &eb);
  CHECK(rc == 0 && !st.running && st.exit_code == 0, "stopped with exit code %" PRId64, st.exit_code);
  rc = tb_docker_container_stop(d, id, 10, &eb);
  CHECK(rc == 0, "stopping a stopped container is not an error (%s)", rc ? msg : "");
  rc = tb_docker_container_remove(d, id, false, &eb);
  CHECK(rc == 0, "remove (%s)", rc ? msg : "");
  if (rc == 0) made[--nmade][0] = '\0';
  rc = tb_docker_container_inspect(d, id, &st, NULL, &eb);
  expect_err("inspect a removed container", rc, TB_ENOTFOUND, msg, "No such container", NULL);
  rc = tb_docker_container_start(d, id, &eb);
  expect_err("start a removed container", rc, TB_ENOTFOUND, msg, "refused to start the container", NULL);

  /* a wait given up from another thread; kill; remove with force */
  char id2[65];
  tb_docker_container_spec_t spec2 = {.image = image, .labels = labels, .nlabels = 1, .read_only = true,
                                      .network = "none"};
  rc = tb_docker_container_create(d, &spec2, id2, &eb);
  CHECK(rc == 0, "create a second container (read-only, no network) %s", rc ? msg : "");
  if (rc) goto out;
  snprintf(made[nmade++], 65, "%s", id2);
  rc = tb_docker_container_start(d, id2, &eb);
  CHECK(rc == 0, "start it (%s)", rc ? msg : "");
  rc = tb_docker_container_inspect(d, id2, &st, NULL, &eb);
  CHECK(rc == 0 && st.running && st.ip[0] == '\0', "it runs without an address (ip \"%s\")", st.ip);
  waiter_t w = {.d = d3, .id = id2};
  pthread_t wt;
  pthread_create(&wt, NULL, wait_thread, &w);
  usleep(300000);
  double t_cancel = now_ms();
  tb_docker_cancel(d3);
  pthread_join(wt, NULL);
  CHECK(w.rc == TB_ECANCELED && w.returned_ms - t_cancel < 2500, "a cancelled wait returns %s after %.0f ms",
        tb_err_name(w.rc), w.returned_ms - t_cancel);
  rc = tb_docker_container_kill(d, id2, "SIGKILL", &eb);
  CHECK(rc == 0, "kill (%s)", rc ? msg : "");
  rc = tb_docker_container_wait(d, id2, NULL, &code, &eb);
  CHECK(rc == 0 && code == 137, "wait after SIGKILL -> %" PRId64, code);
  rc = tb_docker_container_kill(d, id2, "SIGKILL", &eb);
  expect_err("kill a stopped container", rc, TB_ECONFLICT, msg, "is not running", NULL);
  rc = tb_docker_container_start(d, id2, &eb);
  rc = rc ? rc : tb_docker_container_remove(d, id2, false, &eb);
  expect_err("remove a running container without force", rc, TB_ECONFLICT, msg, "refused to remove", NULL);
  rc = tb_docker_container_remove(d, id2, true, &eb);
  CHECK(rc == 0, "remove with force (%s)", rc ? msg : "");
  if (rc == 0) made[--nmade][0] = '\0';

  printf("timing: open %.1f ms, load %.1f ms, create %.1f ms, start %.1f ms, start -> first 200 %.1f ms\n", t_open,
         t_load, t_created - t_create0, t_started - t_created, t_first200);

out:
  for (int i = 0; i < nmade; i++) {
    if (made[i][0] && d && tb_docker_container_remove(d, made[i], true, &eb) != 0) {
      printf("cleanup: cannot remove %s: %s\n", made[i], msg);
    }
  }
  json_decref(j);
  tb_free(image);
  tb_free(imported);
  free(big);
  free(b.data);
  free(logs.out.data);
  free(logs.err.data);
  tb_docker_close(d);
  tb_docker_close(d2);
  tb_docker_close(d3);
  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures || checks == 0 ? 1 : 0;
}
