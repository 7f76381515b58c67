/*
 * cmd_wasm.c — `tabbify wasm run [GRANTS] FILE.wasm [--invoke NAME] [ARGS...]`.
 *
 * Loads the module on our engine and runs it. A module that imports
 * wasi_snapshot_preview1 gets a WASI context holding exactly the grants given before
 * FILE (--dir HOST[::GUEST], --dir-ro HOST[::GUEST], --env KEY=VALUE, --env KEY,
 * --tcplisten HOST:PORT for a listening socket) and the host's stdio; without --invoke
 * it is run as a command (`_start`, its ARGS as its argv after FILE) and the process
 * exits with the guest's exit code. With --invoke NAME the module is instantiated (a
 * reactor's `_initialize` runs first) and NAME is called with ARGS converted to its
 * parameter types, each result printed on its own line (as wasmtime does). A trap is
 * reported with its message, function and offset, and exits 1; a module that fails to
 * load, or a bad grant, is reported in one sentence and exits 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_int.h"
#include "tb/alloc.h"
#include "tb/buf.h"
#include "tb/wasi.h"
#include "tb/wasm.h"

#define MAX_MODULE_BYTES ((size_t)1 << 30)

/* Reads a whole file into `out` (bounded). */
static int read_file(const char *path, tb_buf_t *out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return tb_err_from_errno(errno);
  int rc = 0;
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if ((rc = tb_buf_append(out, chunk, n)) != 0) break;
  if (rc == 0 && ferror(f)) rc = TB_EIO;
  fclose(f);
  return rc;
}

/* Parses one command-line argument as a value of type t. */
static int parse_arg(const char *s, tb_wasm_valtype_t t, tb_wasm_val_t *v) {
  char *end;
  errno = 0;
  v->type = t;
  switch (t) {
  case TB_WASM_I32: {
    long long x = strtoll(s, &end, 0);
    if (errno == ERANGE || x < INT32_MIN || x > UINT32_MAX) return TB_ERANGE;
    v->of.i32 = (int32_t)(uint32_t)x;
    break;
  }
  case TB_WASM_I64: {
    if (s[0] == '-') {
      v->of.i64 = strtoll(s, &end, 0);
    } else {
      v->of.i64 = (int64_t)strtoull(s, &end, 0);
    }
    if (errno == ERANGE) return TB_ERANGE;
    break;
  }
  case TB_WASM_F32:
    v->of.f32 = strtof(s, &end);
    break;
  case TB_WASM_F64:
    v->of.f64 = strtod(s, &end);
    break;
  default:
    return TB_EUNSUPPORTED;
  }
  return *s && *end == '\0' ? 0 : TB_EINVAL;
}

static void print_val(const tb_wasm_val_t *v) {
  switch (v->type) {
  case TB_WASM_I32:
    printf("%" PRId32 "\n", v->of.i32);
    break;
  case TB_WASM_I64:
    printf("%" PRId64 "\n", v->of.i64);
    break;
  case TB_WASM_F32:
    printf("%.9g\n", (double)v->of.f32);
    break;
  case TB_WASM_F64:
    printf("%.17g\n", v->of.f64);
    break;
  case TB_WASM_FUNCREF:
    printf(v->of.funcref ? "funcref\n" : "null\n");
    break;
  case TB_WASM_EXTERNREF:
    printf(v->of.externref ? "externref\n" : "null\n");
    break;
  case TB_WASM_V128:
    for (int i = 0; i < 16; i++) printf("%02x", v->of.v128[i]);
    printf("\n");
    break;
  }
}

static int report_trap(const tb_wasm_module_t *m, const tb_wasm_trap_t *trap) {
  if (trap->kind == TB_WASM_TRAP_EXIT) return trap->exit_code;
  const char *name = tb_wasm_module_func_name(m, trap->func_index);
  if (trap->kind == TB_WASM_TRAP_HOST)
    return tb__cli_fail(TB_EXIT_FAIL, "trap: %s", trap->msg);
  return tb__cli_fail(TB_EXIT_FAIL, "trap: %s (function %" PRIu32 "%s%s%s, offset 0x%" PRIx32 ")", trap->msg,
                      trap->func_index, name ? " \"" : "", name ? name : "", name ? "\"" : "", trap->offset);
}

/* Calls export `name` with the command-line arguments converted to its types. */
static int invoke_export(const char *path, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                         tb_wasm_instance_t *inst, const char *name, int argc, char **argv) {
  int status = TB_EXIT_FAIL, rc;
  tb_wasm_val_t *args = NULL, *results = NULL;
  tb_wasm_trap_t trap = {0};
  tb_wasm_func_t *f = tb_wasm_instance_func(inst, name);
  if (f == NULL) {
    status = strcmp(name, "_start") != 0
                 ? tb__cli_fail(TB_EXIT_USAGE, "%s exports no function \"%s\"", path, name)
                 : tb__cli_fail(TB_EXIT_USAGE, "%s has no _start; name an export with --invoke NAME", path);
    goto out;
  }
  const tb_wasm_functype_t *t = tb_wasm_func_type(f);
  if ((uint32_t)argc != t->nparams) {
    status = tb__cli_fail(TB_EXIT_USAGE, "\"%s\" takes %" PRIu32 " argument%s, %d given", name, t->nparams,
                          t->nparams == 1 ? "" : "s", argc);
    goto out;
  }
  args = tb_calloc(t->nparams + 1, sizeof *args);
  results = tb_calloc(t->nresults + 1, sizeof *results);
  if (args == NULL || results == NULL) goto out;
  for (int i = 0; i < argc; i++) {
    if (parse_arg(argv[i], t->params[i], &args[i]) != 0) {
      status = tb__cli_fail(TB_EXIT_USAGE, "argument %d of \"%s\" must be %s, got \"%s\"", i + 1, name,
                            tb_wasm_valtype_name(t->params[i]), argv[i]);
      goto out;
    }
  }
  rc = tb_wasm_call(store, f, args, t->nparams, results, t->nresults, &trap);
  if (rc == TB_ETRAP) {
    status = report_trap(module, &trap);
    goto out;
  }
  if (rc) {
    status = tb__cli_fail(TB_EXIT_FAIL, "cannot call \"%s\": %s", name, tb_strerror(rc));
    goto out;
  }
  for (uint32_t i = 0; i < t->nresults; i++) print_val(&results[i]);
  status = TB_EXIT_OK;
out:
  tb_free(args);
  tb_free(results);
  return status;
}

/* Runs a module that imports WASI: as a command, or as a reactor with --invoke. */
static int run_wasi(const char *path, tb_wasi_config_t *cfg, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                    const char *invoke, int argc, char **argv) {
  int status = TB_EXIT_FAIL, rc, code = 0;
  tb_wasi_ctx_t *ctx = NULL;
  tb_wasm_instance_t *inst = NULL;
  tb_wasm_trap_t trap = {0};
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};

  /* argv[0] is the module as named; the rest are the program's, unless they are the
   * invoked function's arguments. */
  if (tb_wasi_config_arg(cfg, path) != 0) goto out;
  for (int i = 0; invoke == NULL && i < argc; i++)
    if (tb_wasi_config_arg(cfg, argv[i]) != 0) goto out;
  for (int fd = 0; fd < 3; fd++) {
    tb_wasi_stdio_t io = {.kind = TB_WASI_STDIO_FD, .fd = fd};
    if (fcntl(fd, F_GETFD) < 0) io.kind = TB_WASI_STDIO_NULL; /* closed: the guest gets nothing */
    if (tb_wasi_config_stdio(cfg, fd, &io) != 0) goto out;
  }
  if ((rc = tb_wasi_ctx_new(cfg, &ctx, &eb)) != 0) {
    status = tb__cli_fail(TB_EXIT_FAIL, "cannot set up WASI: %s", msg[0] ? msg : tb_strerror(rc));
    goto out;
  }
  /* A guest writing to a closed pipe gets EPIPE, as it would natively; it must not kill us. */
  signal(SIGPIPE, SIG_IGN);
  if (invoke == NULL) {
    rc = tb_wasi_run_command(ctx, store, module, &code, &trap, &eb);
    if (rc == 0) {
      status = code;
    } else if (rc == TB_ETRAP) {
      status = report_trap(module, &trap);
    } else {
      status = tb__cli_fail(rc == TB_ENOTFOUND || rc == TB_EINVAL ? TB_EXIT_USAGE : TB_EXIT_FAIL, "%s: %s", path,
                            msg[0] ? msg : tb_strerror(rc));
    }
    goto out;
  }
  rc = tb_wasi_instantiate(ctx, store, module, NULL, &inst, &trap, &eb);
  if (rc == TB_ETRAP) {
    status = report_trap(module, &trap);
    goto out;
  }
  if (rc) {
    status = tb__cli_fail(TB_EXIT_FAIL, "%s: %s", path, msg[0] ? msg : tb_strerror(rc));
    goto out;
  }
  status = invoke_export(path, store, module, inst, invoke, argc, argv);
out:
  fflush(stdout);
  /* The store's host functions point into the context: free the store first. */
  tb_wasm_store_free(store);
  tb_wasi_ctx_free(ctx);
  return status;
}

static int run(const char *path, tb_wasi_config_t *cfg, const char *invoke, int argc, char **argv) {
  int status = TB_EXIT_FAIL, rc;
  tb_buf_t bytes;
  tb_wasm_engine_t *engine = NULL;
  tb_wasm_module_t *module = NULL;
  tb_wasm_store_t *store = NULL;
  tb_wasm_instance_t *inst = NULL;
  tb_wasm_trap_t trap = {0};
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_buf_init(&bytes, MAX_MODULE_BYTES);

  if ((rc = read_file(path, &bytes)) != 0) {
    status = tb__cli_fail(TB_EXIT_FAIL, "cannot read %s: %s", path, tb_strerror(rc));
    goto out;
  }
  if ((rc = tb_wasm_engine_new(NULL, &engine)) != 0 || (rc = tb_wasm_store_new(engine, &store)) != 0) {
    status = tb__cli_fail(TB_EXIT_FAIL, "cannot start the engine: %s", tb_strerror(rc));
    goto out;
  }
  if ((rc = tb_wasm_module_new(engine, bytes.data, bytes.len, &module, &eb)) != 0) {
    status = tb__cli_fail(TB_EXIT_USAGE, "%s: %s", path, msg[0] ? msg : tb_strerror(rc));
    goto out;
  }
  if (tb_wasi_module_uses_wasi(module)) {
    status = run_wasi(path, cfg, store, module, invoke, argc, argv);
    store = NULL; /* run_wasi freed it */
    goto out;
  }
  if (tb_wasm_module_import_count(module) > 0) {
    tb_wasm_port_t imp;
    tb_wasm_module_import(module, 0, &imp);
    status = tb__cli_fail(TB_EXIT_USAGE, "%s: imports \"%.*s\" \"%.*s\", which nothing provides", path,
                          (int)imp.module_len, imp.module, (int)imp.name_len, imp.name);
    goto out;
  }
  rc = tb_wasm_instantiate(store, module, NULL, 0, &inst, &trap, &eb);
  if (rc == TB_ETRAP) {
    status = report_trap(module, &trap);
    goto out;
  }
  if (rc) {
    status = tb__cli_fail(TB_EXIT_FAIL, "%s: %s", path, msg[0] ? msg : tb_strerror(rc));
    goto out;
  }
  status = invoke_export(path, store, module, inst, invoke ? invoke : "_start", argc, argv);
out:
  tb_wasm_store_free(store);
  tb_wasm_module_free(module);
  tb_wasm_engine_free(engine);
  tb_buf_deinit(&bytes);
  return status;
}

/*
 * --tcplisten HOST:PORT (wasmtime's option): a listening TCP socket the guest gets as a
 * pre-opened descriptor, after the directories, for sock_accept. IPv6 as [ADDR]:PORT.
 */
static int tcp_listen(tb_wasi_config_t *cfg, const char *spec, tb_errbuf_t *eb) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || colon == spec || colon[1] == '\0' || (size_t)(colon - spec) >= sizeof host)
    return tb_errf(eb, TB_EINVAL, "expected HOST:PORT");
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = '\0';
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
  int e = getaddrinfo(host, colon + 1, &hints, &ai);
  if (e != 0) return tb_errf(eb, TB_EINVAL, "%s", gai_strerror(e));
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, rc = 0;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    rc = tb_err_from_errno(errno);
    tb_errf(eb, rc, "cannot listen: %s", tb_strerror(rc));
  } else {
    rc = tb_wasi_config_socket(cfg, fd, eb);
  }
  if (fd >= 0) close(fd); /* the config holds its own dup */
  freeaddrinfo(ai);
  return rc;
}

/* "--opt VALUE" or "--opt=VALUE": the value, advancing *i past it; NULL if `a` is not --opt. */
static const char *opt_value(const char *opt, int argc, char **argv, int *i, bool *missing) {
  const char *a = argv[*i];
  size_t n = strlen(opt);
  if (strncmp(a, opt, n) != 0) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n] != '\0') return NULL;
  if (*i + 1 == argc) {
    *missing = true;
    return NULL;
  }
  return argv[++*i];
}

int tb__cli_wasm(int argc, char **argv) {
  static const char usage[] =
      "usage: tabbify wasm run [--dir HOST[::GUEST]] [--dir-ro HOST[::GUEST]] [--env KEY[=VALUE]] "
      "[--tcplisten HOST:PORT] FILE.wasm [--invoke NAME] [ARGS...]";
  if (argc < 3 || strcmp(argv[1], "run") != 0) return tb__cli_fail(TB_EXIT_USAGE, "%s", usage);
  const char *path = NULL, *invoke = NULL;
  tb_wasi_config_t *cfg = NULL;
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  int status = TB_EXIT_FAIL, i = 2;
  if (tb_wasi_config_new(&cfg) != 0) return tb__cli_fail(TB_EXIT_FAIL, "out of memory");
  for (; i < argc; i++) {
    const char *a = argv[i], *v;
    bool missing = false;
    if (path != NULL) {
      /* After FILE only --invoke (where it has always been accepted) is ours; the rest
       * belongs to the program. */
      if (invoke == NULL && (v = opt_value("--invoke", argc, argv, &i, &missing)) != NULL) {
        invoke = v;
        continue;
      }
      if (missing) {
        status = tb__cli_fail(TB_EXIT_USAGE, "--invoke needs a function name");
        goto out;
      }
      break; /* the program's arguments start here */
    }
    if (strcmp(a, "--") == 0) {
      if (++i == argc) break;
      path = argv[i];
      continue;
    }
    int rc = 0;
    const char *opt = NULL;
    if ((v = opt_value("--dir-ro", argc, argv, &i, &missing)) != NULL) {
      opt = "--dir-ro";
      rc = tb_wasi_config_dir_grant(cfg, v, TB_WASI_DIR_READONLY, &eb);
    } else if (!missing && (v = opt_value("--dir", argc, argv, &i, &missing)) != NULL) {
      opt = "--dir";
      rc = tb_wasi_config_dir_grant(cfg, v, 0, &eb);
    } else if (!missing && (v = opt_value("--env", argc, argv, &i, &missing)) != NULL) {
      opt = "--env";
      rc = tb_wasi_config_env_grant(cfg, v, &eb);
    } else if (!missing && (v = opt_value("--tcplisten", argc, argv, &i, &missing)) != NULL) {
      opt = "--tcplisten";
      rc = tcp_listen(cfg, v, &eb);
    } else if (!missing && (v = opt_value("--invoke", argc, argv, &i, &missing)) != NULL) {
      invoke = v;
    } else if (missing) {
      status = tb__cli_fail(TB_EXIT_USAGE, "%s needs a value", a);
      goto out;
    } else if (a[0] == '-' && a[1] != '\0') {
      status = tb__cli_fail(TB_EXIT_USAGE, "unknown option %s; %s", a, usage);
      goto out;
    } else {
      path = a;
    }
    if (rc != 0) {
      status = tb__cli_fail(TB_EXIT_USAGE, "%s %s: %s", opt, v, msg[0] ? msg : tb_strerror(rc));
      goto out;
    }
  }
  if (path == NULL) {
    status = tb__cli_fail(TB_EXIT_USAGE, "%s", usage);
    goto out;
  }
  status = run(path, cfg, invoke, argc - i, argv + i);
out:
  tb_wasi_config_free(cfg);
  return status;
}
