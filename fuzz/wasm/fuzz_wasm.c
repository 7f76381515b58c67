/*
 * fuzz_wasm.c — libFuzzer target: any bytes through tb_wasm_module_new and, when they
 * compile, through instantiation and a call of every exported function whose parameters
 * are all numbers (with zeros). Nothing may crash, leak, read out of bounds or hang.
 *
 * Every import is satisfied by a dummy of the right type: host functions returning zeros,
 * fresh tables, memories and globals. Limits are small (256 pages of memory, 100k table
 * elements, 500 frames) so that one input cannot take the machine's memory, and a
 * watchdog thread interrupts the store once a call (or the start function) has run for
 * 50 ms, so infinite loops end in a trap like any other.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tb/err.h"
#include "tb/wasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEADLINE_NS (50 * 1000 * 1000)

static tb_wasm_engine_t *engine;
static pthread_mutex_t dog_lock = PTHREAD_MUTEX_INITIALIZER;
static tb_wasm_store_t *dog_store; /* the store running guest code, or NULL */
static uint64_t dog_deadline;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *watchdog(void *arg) {
  (void)arg;
  for (;;) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&dog_lock);
    if (dog_store != NULL && now_ns() > dog_deadline) tb_wasm_store_interrupt(dog_store);
    pthread_mutex_unlock(&dog_lock);
  }
  return NULL;
}

static void arm(tb_wasm_store_t *s) {
  pthread_mutex_lock(&dog_lock);
  dog_store = s;
  dog_deadline = now_ns() + DEADLINE_NS;
  pthread_mutex_unlock(&dog_lock);
}

static void disarm(tb_wasm_store_t *s) {
  pthread_mutex_lock(&dog_lock);
  dog_store = NULL;
  pthread_mutex_unlock(&dog_lock);
  tb_wasm_store_clear_interrupt(s);
}

static void setup(void) {
  tb_wasm_config_t cfg = {
      .max_memory_pages = 256,
      .max_call_depth = 500,
      .value_stack_slots = 1 << 16,
      .max_table_elems = 100000,
  };
  if (tb_wasm_engine_new(&cfg, &engine) != 0) abort();
  pthread_t t;
  if (pthread_create(&t, NULL, watchdog, NULL) != 0) abort();
  pthread_detach(t);
}

/* A host function returning zeros; env holds its result count. */
static int dummy_func(tb_wasm_caller_t *caller, void *env, const uint64_t *args, uint64_t *results) {
  (void)caller, (void)args;
  memset(results, 0, (uintptr_t)env * sizeof *results);
  return 0;
}

/* A dummy for import `p`, or nonzero when none can be made (limits past ours). */
static int dummy_extern(tb_wasm_store_t *s, const tb_wasm_port_t *p, tb_wasm_extern_t *out) {
  const tb_wasm_externtype_t *t = &p->type;
  out->kind = t->kind;
  switch (t->kind) {
  case TB_WASM_EXTERN_FUNC:
    return tb_wasm_func_new_host(s, &t->func, dummy_func, (void *)(uintptr_t)t->func.nresults, &out->of.func);
  case TB_WASM_EXTERN_TABLE:
    return tb_wasm_table_new(s, t->elem, &t->limits, &out->of.table);
  case TB_WASM_EXTERN_MEMORY:
    return tb_wasm_memory_new(s, &t->limits, &out->of.memory);
  case TB_WASM_EXTERN_GLOBAL: {
    tb_wasm_val_t v;
    memset(&v, 0, sizeof v);
    v.type = t->global_type;
    return tb_wasm_global_new(s, &v, t->global_mutable, &out->of.global);
  }
  }
  return TB_EINVAL;
}

static bool numeric(tb_wasm_valtype_t t) {
  return t == TB_WASM_I32 || t == TB_WASM_I64 || t == TB_WASM_F32 || t == TB_WASM_F64;
}

static void run(const tb_wasm_module_t *m) {
  tb_wasm_store_t *store = NULL;
  tb_wasm_extern_t *imports = NULL;
  tb_wasm_instance_t *inst = NULL;
  tb_wasm_trap_t trap;
  char msg[256];
  tb_errbuf_t eb = {msg, sizeof msg};
  if (tb_wasm_store_new(engine, &store) != 0) goto out;
  size_t n = tb_wasm_module_import_count(m);
  imports = calloc(n ? n : 1, sizeof *imports);
  if (imports == NULL) goto out;
  for (size_t i = 0; i < n; i++) {
    tb_wasm_port_t p;
    if (tb_wasm_module_import(m, i, &p) != 0 || dummy_extern(store, &p, &imports[i]) != 0) goto out;
  }
  arm(store);
  int rc = tb_wasm_instantiate(store, m, imports, n, &inst, &trap, &eb);
  disarm(store);
  if (rc != 0) goto out;
  size_t ne = tb_wasm_module_export_count(m);
  for (size_t i = 0; i < ne; i++) {
    tb_wasm_port_t p;
    tb_wasm_extern_t ext;
    if (tb_wasm_module_export(m, i, &p) != 0 || p.type.kind != TB_WASM_EXTERN_FUNC) continue;
    if (tb_wasm_instance_export(inst, p.name, p.name_len, &ext) != 0) abort(); /* it was just listed */
    const tb_wasm_functype_t *ft = tb_wasm_func_type(ext.of.func);
    bool ok = ft->nparams <= 64 && ft->nresults <= 64;
    for (uint32_t k = 0; ok && k < ft->nparams; k++) ok = numeric(ft->params[k]);
    if (!ok) continue;
    tb_wasm_val_t args[64], results[64];
    memset(args, 0, sizeof args);
    for (uint32_t k = 0; k < ft->nparams; k++) args[k].type = ft->params[k];
    arm(store);
    tb_wasm_call(store, ext.of.func, args, ft->nparams, results, ft->nresults, &trap);
    disarm(store);
  }
out:
  free(imports);
  tb_wasm_store_free(store);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, setup);
  char msg[256] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_wasm_module_t *m = NULL;
  int rc = tb_wasm_module_new(engine, data, size, &m, &eb);
  if (rc == 0) {
    run(m);
    tb_wasm_module_free(m);
  } else if ((rc == TB_EPARSE || rc == TB_EINVAL) && msg[0] == '\0') {
    abort(); /* a rejection must always say why */
  }
  return 0;
}
