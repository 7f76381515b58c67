/*
 * test_progs.c — runs the WASI test programs (tests/wasi/progs, compiled for
 * wasm32-wasi at build time) on the engine through tb_wasi_run_command, the way an
 * embedder does: a fresh host tree per run, granted as /sandbox (read-write) and /ro
 * (read-only), stdio captured through callbacks. Each program checks one family of calls
 * and prints "N checks, M failed"; the harness checks its exit status and output, and
 * afterwards that nothing outside the sandbox changed. The filesystem programs run under
 * both resolvers: the kernel's openat2 and the portable walk.
 *
 * usage: wasi_progs PROGS_DIR   (cmocka selects tests with CMOCKA_TEST_ABORT etc.)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "tb/alloc.h"
#include "tb/buf.h"
#include "tb/wasi.h"
#include "tb/wasm.h"

static const char *progs_dir;
static char root[256]; /* the current run's host tree */

/* ---- The host tree ---- */

static void put(const char *rel, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void dir(const char *rel) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  assert_int_equal(mkdir(p, 0755), 0);
}

static void link_to(const char *target, const char *rel) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  assert_int_equal(symlink(target, p), 0);
}

static void make_tree(void) {
  strcpy(root, "/tmp/tb-wasi-XXXXXX");
  assert_non_null(mkdtemp(root));
  dir("sandbox");
  dir("sandbox/sub");
  dir("ro");
  dir("ro/dir");
  dir("outside");
  put("sandbox/hello.txt", "hello, sandbox\n");
  put("sandbox/sub/inner.txt", "inner\n");
  put("ro/data.txt", "read only data\n");
  put("outside/secret.txt", "OUTSIDE SECRET\n");
  put("outside/victim.txt", "victim\n");
  char abs[512];
  snprintf(abs, sizeof abs, "%s/outside/secret.txt", root);
  link_to(abs, "sandbox/link_abs");
  link_to("../outside/secret.txt", "sandbox/link_rel");
  link_to("../outside", "sandbox/link_dir");
  link_to("hello.txt", "sandbox/link_in");
  link_to("../hello.txt", "sandbox/sub/link_up");
}

static int rm_cb(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    chmod(path, 0755);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char p[4096];
      snprintf(p, sizeof p, "%s/%s", path, de->d_name);
      rm_cb(p);
    }
    if (d) closedir(d);
    return rmdir(path);
  }
  return unlink(path);
}

static void remove_tree(void) {
  if (root[0]) rm_cb(root);
  root[0] = '\0';
}

/* A description of everything under `rel` (names, types, sizes, times, contents, link
 * targets), to compare before and after a run. */
static void describe(tb_buf_t *b, const char *rel) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", root, rel);
  struct stat st;
  if (lstat(p, &st) != 0) {
    tb_buf_printf(b, "%s: missing\n", rel);
    return;
  }
  tb_buf_printf(b, "%s: mode %o size %lld mtime %lld.%09ld nlink %lld", rel, st.st_mode, (long long)st.st_size,
                (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_nlink);
  if (S_ISLNK(st.st_mode)) {
    char t[4096];
    ssize_t n = readlink(p, t, sizeof t - 1);
    tb_buf_printf(b, " -> %.*s\n", (int)(n > 0 ? n : 0), t);
  } else if (S_ISREG(st.st_mode)) {
    char t[256] = {0};
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(t, 1, sizeof t - 1, f) : 0;
    if (f) fclose(f);
    tb_buf_printf(b, " [%.*s]\n", (int)n, t);
  } else if (S_ISDIR(st.st_mode)) {
    tb_buf_puts(b, "\n");
    struct dirent **names = NULL;
    int n = scandir(p, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
      if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", rel, names[i]->d_name);
        describe(b, sub);
      }
      free(names[i]);
    }
    free(names);
  }
}

/* What must not change: everything outside the sandbox, the read-only tree included. */
static char *outside_state(void) {
  tb_buf_t b;
  tb_buf_init(&b, 1 << 20);
  describe(&b, "outside");
  describe(&b, "ro");
  char p[512];
  snprintf(p, sizeof p, "%s", root);
  struct dirent **names = NULL;
  int n = scandir(p, &names, NULL, alphasort);
  tb_buf_puts(&b, "top:");
  for (int i = 0; i < n; i++) {
    tb_buf_printf(&b, " %s", names[i]->d_name);
    free(names[i]);
  }
  free(names);
  return tb_buf_steal(&b, NULL);
}

/* ---- Running a program ---- */

typedef struct run {
  const char *prog;
  const char *args[8];
  const char *env[8];
  tb_wasi_resolver_t resolver;
  int stdin_fd;           /* a host descriptor for stdin, or -1 */
  const char *stdin_text; /* else fed through the read callback, 3 bytes at a time */
  int sock_fd;            /* a pre-opened socket, or -1 */
  /* results */
  int rc, exit_code, raised;
  tb_wasm_trap_t trap;
  tb_buf_t out, err;
  size_t stdin_off;
} run_t;

static int64_t sink(void *arg, const uint8_t *data, size_t len) {
  return tb_buf_append(arg, data, len) == 0 ? (int64_t)len : TB_ENOSPC;
}

static int64_t source(void *arg, uint8_t *buf, size_t len) {
  run_t *r = arg;
  size_t left = strlen(r->stdin_text) - r->stdin_off, n = len < 3 ? len : 3;
  if (n > left) n = left;
  memcpy(buf, r->stdin_text + r->stdin_off, n);
  r->stdin_off += n;
  return (int64_t)n;
}

static void read_all(const char *path, tb_buf_t *b) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) assert_int_equal(tb_buf_append(b, chunk, n), 0);
  fclose(f);
}

static void run(run_t *r) {
  char path[512], host[512], msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_buf_t bytes;
  tb_wasm_engine_t *engine = NULL;
  tb_wasm_module_t *module = NULL;
  tb_wasm_store_t *store = NULL;
  tb_wasi_config_t *cfg = NULL;
  tb_wasi_ctx_t *ctx = NULL;
  tb_buf_init(&bytes, 64 << 20);
  tb_buf_init(&r->out, 1 << 20);
  tb_buf_init(&r->err, 1 << 20);
  snprintf(path, sizeof path, "%s/%s.wasm", progs_dir, r->prog);
  read_all(path, &bytes);
  assert_int_equal(tb_wasm_engine_new(NULL, &engine), 0);
  int rc = tb_wasm_module_new(engine, bytes.data, bytes.len, &module, &eb);
  if (rc) fail_msg("%s: %s", path, msg);
  assert_int_equal(tb_wasm_store_new(engine, &store), 0);

  assert_int_equal(tb_wasi_config_new(&cfg), 0);
  assert_int_equal(tb_wasi_config_arg(cfg, r->prog), 0);
  for (int i = 0; r->args[i]; i++) assert_int_equal(tb_wasi_config_arg(cfg, r->args[i]), 0);
  for (int i = 0; r->env[i]; i++) assert_int_equal(tb_wasi_config_env_grant(cfg, r->env[i], &eb), 0);
  snprintf(host, sizeof host, "%s/sandbox", root);
  assert_int_equal(tb_wasi_config_dir(cfg, host, "/sandbox", 0, &eb), 0);
  snprintf(host, sizeof host, "%s/ro", root);
  assert_int_equal(tb_wasi_config_dir(cfg, host, "/ro", TB_WASI_DIR_READONLY, &eb), 0);
  if (r->sock_fd >= 0) assert_int_equal(tb_wasi_config_socket(cfg, r->sock_fd, &eb), 0);
  tb_wasi_stdio_t out = {.kind = TB_WASI_STDIO_CALLBACK, .write = sink, .arg = &r->out};
  tb_wasi_stdio_t err = {.kind = TB_WASI_STDIO_CALLBACK, .write = sink, .arg = &r->err};
  assert_int_equal(tb_wasi_config_stdio(cfg, 1, &out), 0);
  assert_int_equal(tb_wasi_config_stdio(cfg, 2, &err), 0);
  if (r->stdin_fd >= 0) {
    tb_wasi_stdio_t in = {.kind = TB_WASI_STDIO_FD, .fd = r->stdin_fd};
    assert_int_equal(tb_wasi_config_stdio(cfg, 0, &in), 0);
  } else if (r->stdin_text) {
    tb_wasi_stdio_t in = {.kind = TB_WASI_STDIO_CALLBACK, .read = source, .arg = r};
    assert_int_equal(tb_wasi_config_stdio(cfg, 0, &in), 0);
  }
  tb_wasi_config_resolver(cfg, r->resolver);
  rc = tb_wasi_ctx_new(cfg, &ctx, &eb);
  if (rc) fail_msg("tb_wasi_ctx_new: %s (%s)", msg, tb_strerror(rc));
  /* The config is no longer needed: the context holds its own descriptors. */
  tb_wasi_config_free(cfg);
  r->rc = tb_wasi_run_command(ctx, store, module, &r->exit_code, &r->trap, &eb);
  r->raised = tb_wasi_ctx_raised_signal(ctx);
  if (r->rc && r->rc != TB_ETRAP) fail_msg("%s: %s (%s)", r->prog, msg, tb_strerror(r->rc));
  tb_wasm_store_free(store);
  tb_wasi_ctx_free(ctx);
  tb_wasm_module_free(module);
  tb_wasm_engine_free(engine);
  tb_buf_deinit(&bytes);
}

static void run_done(run_t *r) {
  tb_buf_deinit(&r->out);
  tb_buf_deinit(&r->err);
}

/* Runs a self-checking program and requires all its checks to pass. */
static void run_checks(run_t *r) {
  run(r);
  const char *out = tb_buf_cstr(&r->out);
  if (r->rc != 0 || r->exit_code != 0 || strstr(out, " 0 failed\n") == NULL)
    fail_msg("%s (resolver %d): rc %s, exit %d, trap \"%s\"; output:\n%s%s", r->prog, r->resolver,
             tb_err_name(r->rc), r->exit_code, r->rc ? r->trap.msg : "", out, tb_buf_cstr(&r->err));
  print_message("%s", out);
}

static bool have_openat2(void) {
  long r = syscall(SYS_openat2, AT_FDCWD, "", NULL, 0);
  return !(r < 0 && (errno == ENOSYS || errno == EPERM));
}

/* Runs `prog` in a fresh tree under each resolver, checking the outside is untouched. */
static void run_family(const char *prog) {
  tb_wasi_resolver_t resolvers[] = {TB_WASI_RESOLVE_OPENAT2, TB_WASI_RESOLVE_WALK};
  for (size_t i = 0; i < 2; i++) {
    if (resolvers[i] == TB_WASI_RESOLVE_OPENAT2 && !have_openat2()) continue;
    make_tree();
    char *before = outside_state();
    run_t r = {.prog = prog, .resolver = resolvers[i], .stdin_fd = -1, .sock_fd = -1};
    run_checks(&r);
    char *after = outside_state();
    if (strcmp(before, after) != 0)
      fail_msg("%s changed the host outside the sandbox:\nbefore:\n%s\nafter:\n%s", prog, before, after);
    free(before);
    free(after);
    run_done(&r);
    remove_tree();
  }
}

/* ---- The families ---- */

static void test_basics(void **state) {
  make_tree();
  run_t r = {.prog = "basics", .args = {"one", "two words", ""}, .env = {"FOO=bar", "EMPTY="}, .stdin_fd = -1,
             .sock_fd = -1};
  run_checks(&r);
  run_done(&r);
  remove_tree();
}

static void test_fd(void **state) { run_family("fd"); }
static void test_path(void **state) { run_family("path"); }
static void test_escape(void **state) { run_family("escape"); }
static void test_readonly(void **state) { run_family("readonly"); }
static void test_memcheck(void **state) { run_family("memcheck"); }
static void test_cxx(void **state) {
  make_tree();
  run_t r = {.prog = "cxx", .stdin_fd = -1, .sock_fd = -1};
  run(&r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(tb_buf_cstr(&r.out),
                      "args=1 lines=5 words=capability,sandbox,tabbify,wasi,wasm sum=5050 firsts=c1s1t1w2\n"
                      "outside readable: no\n");
  run_done(&r);
  remove_tree();
}

static void test_exit(void **state) {
  make_tree();
  run_t r = {.prog = "exit", .stdin_fd = -1, .sock_fd = -1};
  run(&r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.exit_code, 42);
  assert_string_equal(tb_buf_cstr(&r.out), "before exit\n");
  run_done(&r);
  remove_tree();
}

static void test_raise(void **state) {
  make_tree();
  run_t r = {.prog = "raise", .stdin_fd = -1, .sock_fd = -1};
  run(&r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.exit_code, 128 + 15);
  assert_int_equal(r.raised, 15);
  assert_string_equal(tb_wasi_signal_name(r.raised), "SIGTERM");
  assert_string_equal(tb_buf_cstr(&r.out), "5 checks, 0 failed\n");
  run_done(&r);
  remove_tree();
}

static void test_trap(void **state) {
  make_tree();
  run_t r = {.prog = "trap", .stdin_fd = -1, .sock_fd = -1};
  run(&r);
  assert_int_equal(r.rc, TB_ETRAP);
  assert_int_equal(r.trap.kind, TB_WASM_TRAP_UNREACHABLE);
  assert_string_equal(tb_buf_cstr(&r.out), "about to abort\n");
  run_done(&r);
  remove_tree();
}

static void test_stdio_callbacks(void **state) {
  make_tree();
  run_t r = {.prog = "stdio", .stdin_fd = -1, .sock_fd = -1, .stdin_text = "a line\nanother line\n"};
  run(&r);
  assert_int_equal(r.rc, 0);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(tb_buf_cstr(&r.out), "A LINE\nANOTHER LINE\n");
  assert_string_equal(tb_buf_cstr(&r.err), "read 20 bytes\nstdout is a tty: 0\n");
  run_done(&r);
  remove_tree();
}

/* Writes "ping\n" into the guest's stdin after a while, then closes it. */
static void *late_writer(void *arg) {
  int fd = *(int *)arg;
  usleep(50 * 1000);
  ssize_t n = write(fd, "ping\n", 5);
  (void)n;
  usleep(20 * 1000);
  close(fd);
  return NULL;
}

static void test_poll(void **state) {
  make_tree();
  int p[2];
  assert_int_equal(pipe(p), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, late_writer, &p[1]), 0);
  run_t r = {.prog = "poll", .stdin_fd = p[0], .sock_fd = -1};
  run_checks(&r);
  pthread_join(t, NULL);
  close(p[0]);
  run_done(&r);
  remove_tree();
}

typedef struct client {
  int port;
  char reply[64];
} client_t;

/* A client, as the guest's peer: sends "ping", reads to the end, closes. */
static void *client(void *arg) {
  client_t *c = arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
    usleep(20 * 1000); /* let the guest block in recv first */
    ssize_t n = write(fd, "ping", 4);
    size_t got = 0;
    while (n >= 0 && got < sizeof c->reply - 1 && (n = read(fd, c->reply + got, sizeof c->reply - 1 - got)) > 0)
      got += (size_t)n;
  }
  close(fd);
  return NULL;
}

static void test_sockets(void **state) {
  make_tree();
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(ls, 4), 0);
  assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &len), 0);
  client_t c = {.port = ntohs(a.sin_port)};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, client, &c), 0);
  run_t r = {.prog = "sock", .stdin_fd = -1, .sock_fd = ls};
  run_checks(&r);
  pthread_join(t, NULL);
  assert_string_equal(c.reply, "pong:ping");
  close(ls);
  run_done(&r);
  remove_tree();
}

/* ---- The race: a host thread swaps directories and links while the guest opens ---- */

typedef struct racer {
  volatile int stop;
  long swaps;
} racer_t;

static void *swapper(void *arg) {
  racer_t *x = arg;
  char a[512], b[512], c[512], d[512];
  snprintf(a, sizeof a, "%s/sandbox/race", root);
  snprintf(b, sizeof b, "%s/sandbox/race_swap", root);
  snprintf(c, sizeof c, "%s/sandbox/final", root);
  snprintf(d, sizeof d, "%s/sandbox/final_swap", root);
  while (!x->stop) {
    syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    syscall(SYS_renameat2, AT_FDCWD, c, AT_FDCWD, d, RENAME_EXCHANGE);
    x->swaps++;
  }
  return NULL;
}

static void test_race(void **state) {
  tb_wasi_resolver_t resolvers[] = {TB_WASI_RESOLVE_OPENAT2, TB_WASI_RESOLVE_WALK};
  for (size_t i = 0; i < 2; i++) {
    if (resolvers[i] == TB_WASI_RESOLVE_OPENAT2 && !have_openat2()) continue;
    make_tree();
    dir("sandbox/race");
    put("sandbox/race/secret.txt", "inside\n");
    link_to("../outside", "sandbox/race_swap");
    put("sandbox/final", "inside\n");
    link_to("../outside/secret.txt", "sandbox/final_swap");
    char *before = outside_state();
    racer_t x = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, swapper, &x), 0);
    run_t r = {.prog = "race", .resolver = resolvers[i], .stdin_fd = -1, .sock_fd = -1};
    run(&r);
    x.stop = 1;
    pthread_join(t, NULL);
    const char *out = tb_buf_cstr(&r.out);
    print_message("resolver %d, %ld swaps: %s", resolvers[i], x.swaps, out);
    if (r.rc != 0 || r.exit_code != 0)
      fail_msg("race (resolver %d): exit %d, output:\n%s", resolvers[i], r.exit_code, out);
    char *after = outside_state();
    assert_string_equal(before, after);
    free(before);
    free(after);
    run_done(&r);
    remove_tree();
  }
}

/* ---- Linking, configuration, contexts ---- */

/* (module (import "wasi_snapshot_preview1" NAME (func))) */
static size_t import_module(uint8_t *out, const char *name) {
  static const uint8_t head[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0};
  size_t n = 0, nl = strlen(name);
  memcpy(out, head, sizeof head);
  n = sizeof head;
  out[n++] = 2;
  out[n++] = (uint8_t)(1 + 1 + 22 + 1 + nl + 2);
  out[n++] = 1;
  out[n++] = 22;
  memcpy(out + n, "wasi_snapshot_preview1", 22);
  n += 22;
  out[n++] = (uint8_t)nl;
  memcpy(out + n, name, nl);
  n += nl;
  out[n++] = 0;
  out[n++] = 0;
  return n;
}

static int link_one(const char *name, char *msg, size_t size) {
  uint8_t bin[128];
  size_t len = import_module(bin, name);
  tb_errbuf_t eb = {msg, size};
  tb_wasm_engine_t *engine;
  tb_wasm_module_t *module;
  tb_wasm_store_t *store;
  tb_wasi_config_t *cfg;
  tb_wasi_ctx_t *ctx;
  tb_wasm_extern_t imports[1] = {0};
  assert_int_equal(tb_wasm_engine_new(NULL, &engine), 0);
  assert_int_equal(tb_wasm_module_new(engine, bin, len, &module, &eb), 0);
  assert_true(tb_wasi_module_uses_wasi(module));
  assert_int_equal(tb_wasm_store_new(engine, &store), 0);
  assert_int_equal(tb_wasi_config_new(&cfg), 0);
  assert_int_equal(tb_wasi_ctx_new(cfg, &ctx, &eb), 0);
  int rc = tb_wasi_link(ctx, store, module, imports, &eb);
  tb_wasm_store_free(store);
  tb_wasi_ctx_free(ctx);
  tb_wasi_config_free(cfg);
  tb_wasm_module_free(module);
  tb_wasm_engine_free(engine);
  return rc;
}

static void test_link_errors(void **state) {
  char msg[256];
  assert_int_equal(link_one("no_such_call", msg, sizeof msg), TB_ENOTFOUND);
  assert_string_equal(msg, "import \"wasi_snapshot_preview1\" \"no_such_call\": "
                           "wasi_snapshot_preview1 has no such function");
  assert_int_equal(link_one("fd_write", msg, sizeof msg), TB_EINVAL);
  assert_string_equal(msg, "import \"wasi_snapshot_preview1\" \"fd_write\": WASI defines (i32, i32, i32, i32) -> (i32), "
                           "the module declares () -> ()");
}

static void test_reactor(void **state) {
  char path[512], msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_buf_t bytes;
  tb_buf_init(&bytes, 64 << 20);
  snprintf(path, sizeof path, "%s/reactor.wasm", progs_dir);
  read_all(path, &bytes);
  tb_wasm_engine_t *engine;
  tb_wasm_module_t *module;
  tb_wasm_store_t *store;
  tb_wasi_config_t *cfg;
  tb_wasi_ctx_t *ctx;
  tb_wasm_instance_t *inst;
  tb_wasm_trap_t trap;
  assert_int_equal(tb_wasm_engine_new(NULL, &engine), 0);
  assert_int_equal(tb_wasm_module_new(engine, bytes.data, bytes.len, &module, &eb), 0);
  assert_int_equal(tb_wasm_store_new(engine, &store), 0);
  assert_int_equal(tb_wasi_config_new(&cfg), 0);
  assert_int_equal(tb_wasi_config_env(cfg, "BASE", "7", &eb), 0);
  assert_int_equal(tb_wasi_ctx_new(cfg, &ctx, &eb), 0);
  /* Not a command: run_command says so. */
  int code;
  assert_int_equal(tb_wasi_run_command(ctx, store, module, &code, &trap, &eb), TB_ENOTFOUND);
  assert_string_equal(msg, "the module exports no _start function: it is not a WASI command");
  assert_int_equal(tb_wasi_instantiate(ctx, store, module, NULL, &inst, &trap, &eb), 0);
  tb_wasm_func_t *f = tb_wasm_instance_func(inst, "answer");
  assert_non_null(f);
  tb_wasm_val_t arg = {.type = TB_WASM_I32, .of.i32 = 6}, res;
  assert_int_equal(tb_wasm_call(store, f, &arg, 1, &res, 1, &trap), 0);
  assert_int_equal(res.of.i32, 42); /* _initialize ran the constructor that read BASE=7 */
  tb_wasm_store_free(store);
  tb_wasi_ctx_free(ctx);
  tb_wasi_config_free(cfg);
  tb_wasm_module_free(module);
  tb_wasm_engine_free(engine);
  tb_buf_deinit(&bytes);
}

static void test_config_errors(void **state) {
  char msg[256];
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_wasi_config_t *cfg;
  assert_int_equal(tb_wasi_config_new(&cfg), 0);
  assert_int_equal(tb_wasi_config_dir_grant(cfg, "/nonexistent/dir", 0, &eb), TB_ENOENT);
  assert_string_equal(msg, "no such directory");
  assert_int_equal(tb_wasi_config_dir_grant(cfg, "/etc/hostname::/h", 0, &eb), TB_ENOTDIR);
  assert_string_equal(msg, "not a directory");
  assert_int_equal(tb_wasi_config_dir_grant(cfg, "/tmp::", 0, &eb), TB_EINVAL);
  assert_string_equal(msg, "the guest path is empty");
  assert_int_equal(tb_wasi_config_dir_grant(cfg, "::/x", 0, &eb), TB_EINVAL);
  assert_string_equal(msg, "the host path is empty");
  assert_int_equal(tb_wasi_config_env_grant(cfg, "=x", &eb), TB_EINVAL);
  assert_string_equal(msg, "the variable's name is empty");
  assert_int_equal(tb_wasi_config_env(cfg, "A=B", "x", &eb), TB_EINVAL);
  tb_wasi_stdio_t bad = {.kind = TB_WASI_STDIO_CALLBACK};
  assert_int_equal(tb_wasi_config_stdio(cfg, 1, &bad), TB_EINVAL);
  assert_int_equal(tb_wasi_config_stdio(cfg, 3, &bad), TB_EINVAL);
  int devnull = open("/dev/null", O_RDONLY);
  assert_int_equal(tb_wasi_config_socket(cfg, devnull, &eb), TB_EINVAL);
  assert_non_null(strstr(msg, "is not a socket"));
  close(devnull);
  tb_wasi_config_free(cfg);
}

/* Every allocation of a context's construction may fail: each ends in TB_ENOMEM and
 * leaks nothing (the ASan build checks). */
static void test_ctx_alloc_failures(void **state) {
  tb_wasi_config_t *cfg;
  assert_int_equal(tb_wasi_config_new(&cfg), 0);
  assert_int_equal(tb_wasi_config_arg(cfg, "prog"), 0);
  assert_int_equal(tb_wasi_config_env(cfg, "A", "1", NULL), 0);
  assert_int_equal(tb_wasi_config_dir(cfg, "/tmp", "/tmp", 0, NULL), 0);
  assert_int_equal(tb_wasi_config_dir(cfg, "/", "/", TB_WASI_DIR_READONLY, NULL), 0);
  for (long n = 0;; n++) {
    tb_wasi_ctx_t *ctx = NULL;
    tb_alloc_fail_after(n);
    int rc = tb_wasi_ctx_new(cfg, &ctx, NULL);
    tb_alloc_fail_after(-1);
    if (rc == 0) {
      tb_wasi_ctx_free(ctx);
      assert_true(n > 3);
      break;
    }
    assert_int_equal(rc, TB_ENOMEM);
  }
  tb_wasi_config_free(cfg);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s PROGS_DIR\n", argv[0]);
    return 2;
  }
  progs_dir = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basics),
      cmocka_unit_test(test_fd),
      cmocka_unit_test(test_path),
      cmocka_unit_test(test_escape),
      cmocka_unit_test(test_readonly),
      cmocka_unit_test(test_memcheck),
      cmocka_unit_test(test_race),
      cmocka_unit_test(test_poll),
      cmocka_unit_test(test_sockets),
      cmocka_unit_test(test_stdio_callbacks),
      cmocka_unit_test(test_exit),
      cmocka_unit_test(test_raise),
      cmocka_unit_test(test_trap),
      cmocka_unit_test(test_cxx),
      cmocka_unit_test(test_reactor),
      cmocka_unit_test(test_link_errors),
      cmocka_unit_test(test_config_errors),
      cmocka_unit_test(test_ctx_alloc_failures),
  };
  return cmocka_run_group_tests_name("wasi", tests, NULL, NULL);
}
