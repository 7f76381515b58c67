/*
 * link.c — binding wasi_snapshot_preview1 imports to host functions, and running
 * command and reactor modules.
 *
 * One table lists the 46 functions of the witx with their core wasm signatures and
 * implementations. tb_wasi_link turns each WASI import of a module into an engine host
 * function whose env is the context's binding for that function; a shared trampoline
 * copies the arguments (the engine may alias them with the results), finds the caller's
 * memory and calls the implementation, which returns a WASI errno.
 */
#include <stdio.h>
#include <string.h>

#include "tb/alloc.h"
#include "wasi_int.h"

typedef struct wasi_fn {
  const char *name;
  const char *params; /* 'i' i32, 'I' i64 */
  const char *results;
  tb__wasi_impl_fn impl;
} wasi_fn_t;

#define F(name, params, results) {#name, params, results, tb__wasi_##name}
static const wasi_fn_t fns[] = {
    F(args_get, "ii", "i"),
    F(args_sizes_get, "ii", "i"),
    F(environ_get, "ii", "i"),
    F(environ_sizes_get, "ii", "i"),
    F(clock_res_get, "ii", "i"),
    F(clock_time_get, "iIi", "i"),
    F(fd_advise, "iIIi", "i"),
    F(fd_allocate, "iII", "i"),
    F(fd_close, "i", "i"),
    F(fd_datasync, "i", "i"),
    F(fd_fdstat_get, "ii", "i"),
    F(fd_fdstat_set_flags, "ii", "i"),
    F(fd_fdstat_set_rights, "iII", "i"),
    F(fd_filestat_get, "ii", "i"),
    F(fd_filestat_set_size, "iI", "i"),
    F(fd_filestat_set_times, "iIIi", "i"),
    F(fd_pread, "iiiIi", "i"),
    F(fd_prestat_get, "ii", "i"),
    F(fd_prestat_dir_name, "iii", "i"),
    F(fd_pwrite, "iiiIi", "i"),
    F(fd_read, "iiii", "i"),
    F(fd_readdir, "iiiIi", "i"),
    F(fd_renumber, "ii", "i"),
    F(fd_seek, "iIii", "i"),
    F(fd_sync, "i", "i"),
    F(fd_tell, "ii", "i"),
    F(fd_write, "iiii", "i"),
    F(path_create_directory, "iii", "i"),
    F(path_filestat_get, "iiiii", "i"),
    F(path_filestat_set_times, "iiiiIIi", "i"),
    F(path_link, "iiiiiii", "i"),
    F(path_open, "iiiiiIIii", "i"),
    F(path_readlink, "iiiiii", "i"),
    F(path_remove_directory, "iii", "i"),
    F(path_rename, "iiiiii", "i"),
    F(path_symlink, "iiiii", "i"),
    F(path_unlink_file, "iii", "i"),
    F(poll_oneoff, "iiii", "i"),
    F(proc_exit, "i", ""),
    F(proc_raise, "i", "i"),
    F(sched_yield, "", "i"),
    F(random_get, "ii", "i"),
    F(sock_accept, "iii", "i"),
    F(sock_recv, "iiiiii", "i"),
    F(sock_send, "iiiii", "i"),
    F(sock_shutdown, "ii", "i"),
};
#undef F
#define NFNS (sizeof fns / sizeof fns[0])
#define MAX_PARAMS 9

struct tb__wasi_binding {
  tb_wasi_ctx_t *ctx;
  const wasi_fn_t *fn;
};

int tb__wasi_bindings_new(tb_wasi_ctx_t *ctx) {
  if ((ctx->bindings = tb_calloc(NFNS, sizeof *ctx->bindings)) == NULL) return TB_ENOMEM;
  for (size_t i = 0; i < NFNS; i++) ctx->bindings[i] = (tb__wasi_binding_t){ctx, &fns[i]};
  return 0;
}

void tb__wasi_bindings_free(tb__wasi_binding_t *b) { tb_free(b); }

static int trampoline(tb_wasm_caller_t *caller, void *env, const uint64_t *args, uint64_t *results) {
  const tb__wasi_binding_t *b = env;
  uint64_t a[MAX_PARAMS];
  size_t np = strlen(b->fn->params);
  memcpy(a, args, np * sizeof a[0]);
  tb__wasi_call_t call = {b->ctx, caller, tb_wasm_caller_memory(caller)};
  uint32_t r = b->fn->impl(&call, a);
  if (r == TB__WASI_TRAP) return TB_ETRAP;
  if (b->fn->results[0]) results[0] = r;
  return 0;
}

static void types_of(const char *sig, tb_wasm_valtype_t *out) {
  for (size_t i = 0; sig[i]; i++) out[i] = sig[i] == 'I' ? TB_WASM_I64 : TB_WASM_I32;
}

static bool is_wasi(const tb_wasm_port_t *imp) {
  return imp->module_len == strlen(TB_WASI_MODULE) && memcmp(imp->module, TB_WASI_MODULE, imp->module_len) == 0;
}

bool tb_wasi_module_uses_wasi(const tb_wasm_module_t *module) {
  size_t n = tb_wasm_module_import_count(module);
  for (size_t i = 0; i < n; i++) {
    tb_wasm_port_t imp;
    if (tb_wasm_module_import(module, i, &imp) == 0 && is_wasi(&imp)) return true;
  }
  return false;
}

int tb_wasi_link(tb_wasi_ctx_t *ctx, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                 tb_wasm_extern_t *imports, tb_errbuf_t *eb) {
  size_t n = tb_wasm_module_import_count(module);
  for (size_t i = 0; i < n; i++) {
    tb_wasm_port_t imp;
    int rc = tb_wasm_module_import(module, i, &imp);
    if (rc) return rc;
    if (!is_wasi(&imp)) continue;
    size_t k = 0;
    while (k < NFNS && !(strlen(fns[k].name) == imp.name_len && memcmp(fns[k].name, imp.name, imp.name_len) == 0))
      k++;
    if (k == NFNS)
      return tb_errf(eb, TB_ENOTFOUND, "import \"%s\" \"%.*s\": %s has no such function", TB_WASI_MODULE,
                     (int)imp.name_len, imp.name, TB_WASI_MODULE);
    tb_wasm_valtype_t params[MAX_PARAMS], results[1];
    tb_wasm_functype_t want = {(uint32_t)strlen(fns[k].params), (uint32_t)strlen(fns[k].results), params, results};
    types_of(fns[k].params, params);
    types_of(fns[k].results, results);
    bool same = imp.type.kind == TB_WASM_EXTERN_FUNC && imp.type.func.nparams == want.nparams &&
                imp.type.func.nresults == want.nresults &&
                (want.nparams == 0 || memcmp(imp.type.func.params, params, want.nparams * sizeof *params) == 0) &&
                (want.nresults == 0 || memcmp(imp.type.func.results, results, want.nresults * sizeof *results) == 0);
    if (!same) {
      char w[160], g[160] = "not a function";
      tb_wasm_functype_format(&want, w, sizeof w);
      if (imp.type.kind == TB_WASM_EXTERN_FUNC) tb_wasm_functype_format(&imp.type.func, g, sizeof g);
      return tb_errf(eb, TB_EINVAL, "import \"%s\" \"%s\": WASI defines %s, the module declares %s", TB_WASI_MODULE,
                     fns[k].name, w, g);
    }
    tb_wasm_func_t *f;
    if ((rc = tb_wasm_func_new_host(store, &want, trampoline, &ctx->bindings[k], &f)) != 0) return rc;
    imports[i] = (tb_wasm_extern_t){.kind = TB_WASM_EXTERN_FUNC, .of.func = f};
  }
  return 0;
}

static bool nullary(const tb_wasm_func_t *f) {
  const tb_wasm_functype_t *t = tb_wasm_func_type(f);
  return t->nparams == 0 && t->nresults == 0;
}

int tb_wasi_instantiate(tb_wasi_ctx_t *ctx, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                        const tb_wasm_extern_t *imports, tb_wasm_instance_t **out, tb_wasm_trap_t *trap,
                        tb_errbuf_t *eb) {
  int rc;
  size_t n = tb_wasm_module_import_count(module);
  tb_wasm_extern_t *ex = tb_calloc(n + 1, sizeof *ex);
  tb_wasm_instance_t *inst = NULL;
  if (ex == NULL) return TB_ENOMEM;
  if (imports) {
    memcpy(ex, imports, n * sizeof *ex);
  } else {
    for (size_t i = 0; i < n; i++) {
      tb_wasm_port_t imp;
      if ((rc = tb_wasm_module_import(module, i, &imp)) != 0) goto out;
      if (!is_wasi(&imp)) {
        rc = tb_errf(eb, TB_ENOTFOUND, "import \"%.*s\" \"%.*s\" is not provided: only %s is", (int)imp.module_len,
                     imp.module, (int)imp.name_len, imp.name, TB_WASI_MODULE);
        goto out;
      }
    }
  }
  if ((rc = tb_wasi_link(ctx, store, module, ex, eb)) != 0) goto out;
  if ((rc = tb_wasm_instantiate(store, module, ex, n, &inst, trap, eb)) != 0) goto out;
  tb_wasm_func_t *init = tb_wasm_instance_func(inst, "_initialize");
  if (init) {
    if (!nullary(init)) {
      rc = tb_errf(eb, TB_EINVAL, "_initialize must take and return nothing");
      goto out;
    }
    if ((rc = tb_wasm_call(store, init, NULL, 0, NULL, 0, trap)) != 0) goto out;
  }
  *out = inst;
out:
  tb_free(ex);
  return rc;
}

int tb_wasi_run_command(tb_wasi_ctx_t *ctx, tb_wasm_store_t *store, const tb_wasm_module_t *module,
                        int *exit_code, tb_wasm_trap_t *trap, tb_errbuf_t *eb) {
  tb_wasm_instance_t *inst = NULL;
  int rc = tb_wasi_instantiate(ctx, store, module, NULL, &inst, trap, eb);
  if (rc == 0) {
    tb_wasm_func_t *start = tb_wasm_instance_func(inst, "_start");
    if (start == NULL)
      return tb_errf(eb, TB_ENOTFOUND, "the module exports no _start function: it is not a WASI command");
    if (!nullary(start)) return tb_errf(eb, TB_EINVAL, "_start must take and return nothing");
    rc = tb_wasm_call(store, start, NULL, 0, NULL, 0, trap);
  }
  if (rc == TB_ETRAP && trap->kind == TB_WASM_TRAP_EXIT) {
    *exit_code = trap->exit_code;
    return 0;
  }
  if (rc == 0) *exit_code = 0;
  return rc;
}
