/*
 * cmd_up.c — `tabbify up`: the whole platform on this machine, in this process.
 *
 *   tabbify up [--state-dir DIR] [--listen ADDR] [--demo DIR | --no-demo]
 *
 * One libuv loop on a thread of its own runs tabbify-node (REST API, artifact store,
 * proxy) and tabbify-supervisord (runners on loopback, no mesh) over one state directory
 * and one SQLite event log. An admin token (every scope, 30 days) is written 0600 to
 * <state>/admin.token. Then, from the main thread and through the node's API like any
 * client, the demo app (examples/hello, compiled to wasm32-wasi at build time) is pushed
 * and deployed — unless the state already holds it — and the curl line that reaches it
 * is printed. Ctrl-C stops the runners and the platform.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_int.h"
#include "tb/alloc.h"
#include "tb/auth.h"
#include "tb/manifest.h"
#include "tb/node.h"
#include "tb/supervisor.h"

typedef struct up {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_async_t started;
  tb_node_t *node;
  tb_supervisor_t *sup;
  tb_node_config_t ncfg;
  tb_supervisor_config_t scfg;
  char sup_dir[1100];
  int rc;
  char msg[600];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool ready; /* node and supervisor are up (or rc says why not) */
  int port;
} up_t;

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  up_t *u = s->data;
  uv_close((uv_handle_t *)&u->sigint, NULL);
  uv_close((uv_handle_t *)&u->sigterm, NULL);
  fprintf(stderr, "\ntabbify up: stopping\n");
  if (u->sup) tb_supervisor_close(u->sup, NULL, NULL);
  if (u->node) tb_node_close(u->node, NULL, NULL);
}

static void signal_ready(up_t *u) {
  pthread_mutex_lock(&u->mu);
  u->ready = true;
  pthread_cond_signal(&u->cv);
  pthread_mutex_unlock(&u->mu);
}

static void *loop_main(void *arg) {
  up_t *u = arg;
  tb_errbuf_t eb = {u->msg, sizeof u->msg};
  uv_loop_init(&u->loop);
  u->rc = tb_node_new(&u->loop, &u->ncfg, &u->node, &eb);
  if (u->rc == 0) {
    u->port = tb_node_port(u->node);
    u->rc = tb_supervisor_new(&u->loop, &u->scfg, &u->sup, &eb);
    if (u->rc != 0) tb_node_close(u->node, NULL, NULL), u->node = NULL;
  }
  if (u->rc == 0) {
    uv_signal_init(&u->loop, &u->sigint);
    uv_signal_init(&u->loop, &u->sigterm);
    u->sigint.data = u->sigterm.data = u;
    uv_signal_start(&u->sigint, on_signal, SIGINT);
    uv_signal_start(&u->sigterm, on_signal, SIGTERM);
  }
  signal_ready(u);
  uv_run(&u->loop, UV_RUN_DEFAULT);
  uv_loop_close(&u->loop);
  return NULL;
}

/* The demo: examples/hello as the build left it (tabbify.toml and hello.wasm side by side). */
static bool find_demo(char *out, size_t cap) {
  char exe[1024];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return false;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash) return false;
  *slash = 0;
  static const char *const rel[] = {"/../../examples/hello", "/../share/tabbify/examples/hello"};
  for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
    snprintf(out, cap, "%s%s", exe, rel[i]);
    char probe[1300];
    snprintf(probe, sizeof probe, "%s/hello.wasm", out);
    if (access(probe, R_OK) == 0) return true;
  }
  return false;
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
  char buf[65536];
  size_t n;
  int rc = in && out ? 0 : -1;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out) != n) rc = -1;
  if (in) fclose(in);
  if (out && fclose(out) != 0) rc = -1;
  return rc;
}

static int write_token(const char *state, char *token_out, size_t cap) {
  char key_path[1100], tok_path[1100];
  snprintf(key_path, sizeof key_path, "%s/node.key", state);
  snprintf(tok_path, sizeof tok_path, "%s/admin.token", state);
  char msg[300] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_auth_key_t *key = NULL;
  int rc = tb_auth_key_load(key_path, &key, &eb);
  if (rc != 0) return tb__cli_fail(1, "%s.", msg);
  const char *scopes[] = {"*"};
  tb_auth_token_spec_t spec = {.subject = "admin", .tenant = "local", .scopes = scopes, .nscopes = 1,
                               .ttl_s = 30 * 24 * 3600};
  char *tok = NULL;
  rc = tb_auth_token_create(key, &spec, &tok, NULL, &eb);
  tb_auth_key_free(key);
  if (rc != 0) return tb__cli_fail(1, "cannot mint the admin token: %s.", msg);
  snprintf(token_out, cap, "%s", tok);
  tb_free(tok);
  FILE *f = NULL;
  int fd = open(tok_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0 && fchmod(fd, 0600) == 0) f = fdopen(fd, "w");
  if (!f || fprintf(f, "%s\n", token_out) < 0 || fclose(f) != 0) {
    if (!f && fd >= 0) close(fd);
    return tb__cli_fail(1, "cannot write %s: %s.", tok_path, strerror(errno));
  }
  return 0;
}

/* The [app] id of a manifest, if it has one. */
static bool read_id(const char *toml, char *app_id) {
  tb_manifest_t *m = NULL;
  tb_diags_t d;
  tb_diags_init(&d);
  bool has = tb_manifest_load(toml, &m, &d) == 0 && m->app.has_id;
  if (has) tb_uuid_format(&m->app.id, app_id);
  tb_manifest_free(m);
  tb_diags_deinit(&d);
  return has;
}

/* Pushes and deploys the demo through the node's API, as `tabbify push` and `deploy` would. */
static int deploy_demo(const char *state, const char *demo_src, const char *server, const char *token, char *app_id) {
  char dir[1100], toml[1200], wasm[1200], from[1300];
  snprintf(dir, sizeof dir, "%s/demo", state);
  snprintf(toml, sizeof toml, "%s/tabbify.toml", dir);
  snprintf(wasm, sizeof wasm, "%s/hello.wasm", dir);
  mkdir(dir, 0700);
  if (access(toml, F_OK) != 0) {
    snprintf(from, sizeof from, "%s/tabbify.toml", demo_src);
    if (copy_file(from, toml) != 0) return tb__cli_fail(1, "cannot copy the demo's manifest %s.", from);
  }
  snprintf(from, sizeof from, "%s/hello.wasm", demo_src);
  if (copy_file(from, wasm) != 0) return tb__cli_fail(1, "cannot copy the demo app %s.", from);

  tb__cli_api_t api = {0};
  char *argv[] = {"up", "--server", (char *)server, "--token", (char *)token, NULL};
  int argc = 5, rc = 0;
  tb__cli_api_init(&api, &argc, argv);
  json_t *v = NULL;
  long st = 0;
  if (read_id(toml, app_id)) {
    /* Deployed by an earlier `tabbify up` on this state: the log already says so. */
    char path[100];
    snprintf(path, sizeof path, "/v1/apps/%s", app_id);
    bool known = tb__cli_api_call(&api, "GET", path, NULL, &st, &v) == 0 && !json_is_null(json_object_get(v, "deployment"));
    json_decref(v);
    if (known) goto out;
  }
  char *push[] = {"push", "--manifest", toml, "--server", (char *)server, "--token", (char *)token, NULL};
  if ((rc = tb__cli_push(7, push)) != 0) goto out;
  if (!read_id(toml, app_id)) {
    rc = tb__cli_fail(1, "the demo's manifest %s has no id after push.", toml);
    goto out;
  }
  /* The supervisor registers in the background: wait until the node lists it. */
  for (int attempt = 0; attempt < 100; attempt++) {
    v = NULL;
    bool seen = tb__cli_api_call(&api, "GET", "/v1/supervisors", NULL, &st, &v) == 0 && json_array_size(v) > 0;
    json_decref(v);
    if (seen) break;
    usleep(50 * 1000);
  }
  char *dep[] = {"deploy", "--app", app_id, "--server", (char *)server, "--token", (char *)token, NULL};
  rc = tb__cli_deploy(7, dep);
out:
  tb__cli_api_deinit(&api);
  return rc;
}

int tb__cli_up(int argc, char **argv) {
  const char *state_flag = NULL, *listen = NULL, *demo = NULL;
  bool no_demo = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--no-demo") == 0) {
      no_demo = true;
      continue;
    }
    const char **slot = strcmp(a, "--state-dir") == 0 ? &state_flag
                        : strcmp(a, "--listen") == 0  ? &listen
                        : strcmp(a, "--demo") == 0    ? &demo
                                                      : NULL;
    if (!slot) return tb__cli_fail(2, "unknown option %s for up.", a);
    if (!v) return tb__cli_fail(2, "%s needs a value.", a);
    *slot = v;
    i++;
  }
  char state_buf[900], demo_buf[1100];
  const char *state = tb__cli_state_dir(state_flag, state_buf, sizeof state_buf);
  if (!no_demo && !demo) {
    if (!find_demo(demo_buf, sizeof demo_buf))
      return tb__cli_fail(2, "cannot find the demo app (examples/hello/hello.wasm in the build tree); "
                             "give --demo DIR or --no-demo.");
    demo = demo_buf;
  }
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", state);
  if (mkdir(state, 0700) != 0 && errno != EEXIST && system(cmd) != 0)
    return tb__cli_fail(1, "cannot create %s: %s.", state, strerror(errno));

  up_t *u = tb_calloc(1, sizeof *u);
  if (!u) return tb__cli_fail(1, "out of memory.");
  pthread_mutex_init(&u->mu, NULL);
  pthread_cond_init(&u->cv, NULL);
  u->ncfg.state_dir = state;
  u->ncfg.listen = listen ? listen : TB_NODE_DEFAULT_LISTEN;
  snprintf(u->sup_dir, sizeof u->sup_dir, "%s/supervisor", state);
  char store[1100], logs[1100];
  snprintf(store, sizeof store, "%s/artifacts", state);
  snprintf(logs, sizeof logs, "%s/logs", state);
  u->scfg = (tb_supervisor_config_t){.state_dir = u->sup_dir, .events_dir = state, .store_dir = store,
                                     .logs_dir = logs, .name = "local", .bind = "127.0.0.1:0",
                                     .stop_runners_on_close = true};
  pthread_t th;
  if (pthread_create(&th, NULL, loop_main, u) != 0) return tb__cli_fail(1, "cannot start the event loop thread.");
  pthread_mutex_lock(&u->mu);
  while (!u->ready) pthread_cond_wait(&u->cv, &u->mu);
  pthread_mutex_unlock(&u->mu);
  int rc = 0;
  if (u->rc != 0) {
    rc = tb__cli_fail(1, "%s.", u->msg[0] ? u->msg : tb_strerror(u->rc));
    pthread_join(th, NULL);
    tb_free(u);
    return rc;
  }
  char server[300], token[2048], app_id[TB_UUID_STR_LEN + 1] = "";
  snprintf(server, sizeof server, "http://127.0.0.1:%d", u->port);
  printf("tabbify up: node on %s, supervisor %s, state in %s\n", server, tb_supervisor_id(u->sup), state);
  if ((rc = write_token(state, token, sizeof token)) == 0) {
    printf("admin token: %s/admin.token   (export TABBIFY_TOKEN=$(cat %s/admin.token) TABBIFY_SERVER=%s)\n", state,
           state, server);
    if (!no_demo) rc = deploy_demo(state, demo, server, token, app_id);
  }
  if (rc == 0 && app_id[0]) {
    printf("\nThe demo app is deployed. Try:\n\n  curl %s/app/%s/\n  curl --data-binary 'echo me' %s/app/%s/echo\n\n",
           server, app_id, server, app_id);
  }
  if (rc == 0) printf("Ctrl-C stops it.\n");
  fflush(stdout);
  if (rc != 0) kill(getpid(), SIGTERM); /* the loop thread closes everything */
  pthread_join(th, NULL);
  tb_free(u);
  return rc;
}
