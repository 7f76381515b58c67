/*
 * runtime.c — the embedding API of include/tb/wasm.h: engines and their type registry,
 * modules (decode + compile), stores and everything they own, instantiation, calls
 * from the host, and the host's bounds-checked view of memories, tables and globals.
 *
 * The interpreter (interp.c) runs code; this file builds the world it runs in. A store
 * owns its objects through singly linked lists and frees them all at once, which is
 * what makes a fresh store per request cheap and leak-proof. Memories reserve their
 * whole address range up front (PROT_NONE) and grow with mprotect, so a memory's base
 * never moves and the interpreter may cache it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "tb/alloc.h"
#include "wasm_int.h"

int tb__wasm_trap(tb_wasm_trap_t *trap, tb_wasm_trap_kind_t kind, uint32_t func_index, uint32_t offset) {
  if (trap) {
    trap->kind = kind;
    trap->exit_code = 0;
    trap->func_index = func_index;
    trap->offset = offset;
    snprintf(trap->msg, sizeof trap->msg, "%s", tb_wasm_trap_message(kind));
  }
  return TB_ETRAP;
}

/* ---- The type registry: one canonical id per distinct signature, engine-wide ---- */

typedef struct type_entry {
  uint64_t hash;
  uint32_t nparams, nresults;
  tb_wasm_valtype_t *types;
} type_entry_t;

typedef struct type_registry {
  pthread_mutex_t lock;
  type_entry_t *entries; /* id - 1 indexes here */
  uint32_t n, cap;
  uint32_t *buckets; /* open addressing: id, or 0 for empty */
  uint32_t nbuckets; /* power of two, at least 2 * n */
} type_registry_t;

static uint64_t type_hash(const tb_wasm_valtype_t *types, uint32_t nparams, uint32_t nresults) {
  uint64_t h = 1469598103934665603u ^ ((uint64_t)nparams << 32 | nresults);
  for (uint32_t i = 0; i < nparams + nresults; i++) h = (h ^ (uint64_t)types[i]) * 1099511628211u;
  return h ^ (h >> 29);
}

static bool type_equal(const type_entry_t *e, uint64_t hash, const tb_wasm_valtype_t *types, uint32_t np,
                       uint32_t nr) {
  return e->hash == hash && e->nparams == np && e->nresults == nr &&
         memcmp(e->types, types, (size_t)(np + nr) * sizeof *types) == 0;
}

static int registry_grow(type_registry_t *r) {
  uint32_t nb = r->nbuckets ? r->nbuckets * 2 : 64;
  uint32_t *b = tb_calloc(nb, sizeof *b);
  if (b == NULL) return TB_ENOMEM;
  for (uint32_t id = 1; id <= r->n; id++) {
    uint32_t i = (uint32_t)r->entries[id - 1].hash & (nb - 1);
    while (b[i]) i = (i + 1) & (nb - 1);
    b[i] = id;
  }
  tb_free(r->buckets);
  r->buckets = b;
  r->nbuckets = nb;
  return 0;
}

int tb__wasm_type_intern(tb_wasm_engine_t *engine, const tb_wasm_valtype_t *types, uint32_t nparams,
                         uint32_t nresults, uint32_t *id) {
  type_registry_t *r = engine->types;
  uint64_t h = type_hash(types, nparams, nresults);
  int rc = 0;
  pthread_mutex_lock(&r->lock);
  if (2 * (r->n + 1) > r->nbuckets && (rc = registry_grow(r)) != 0) goto out;
  uint32_t i = (uint32_t)h & (r->nbuckets - 1);
  for (; r->buckets[i]; i = (i + 1) & (r->nbuckets - 1)) {
    if (type_equal(&r->entries[r->buckets[i] - 1], h, types, nparams, nresults)) {
      *id = r->buckets[i];
      goto out;
    }
  }
  if (r->n == r->cap) {
    uint32_t cap = r->cap ? r->cap * 2 : 64;
    type_entry_t *e = tb_reallocarray(r->entries, cap, sizeof *e);
    if (e == NULL) {
      rc = TB_ENOMEM;
      goto out;
    }
    r->entries = e;
    r->cap = cap;
  }
  size_t bytes = (size_t)(nparams + nresults) * sizeof *types;
  tb_wasm_valtype_t *copy = tb_malloc(bytes);
  if (copy == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  if (bytes) memcpy(copy, types, bytes);
  r->entries[r->n] = (type_entry_t){h, nparams, nresults, copy};
  *id = ++r->n;
  r->buckets[i] = *id;
out:
  pthread_mutex_unlock(&r->lock);
  return rc;
}

/* ---- Engine ---- */

int tb_wasm_engine_new(const tb_wasm_config_t *cfg, tb_wasm_engine_t **out) {
  tb_wasm_engine_t *e = tb_calloc(1, sizeof *e);
  type_registry_t *r = tb_calloc(1, sizeof *r);
  if (e == NULL || r == NULL) {
    tb_free(e);
    tb_free(r);
    return TB_ENOMEM;
  }
  pthread_mutex_init(&r->lock, NULL);
  e->types = r;
  e->cfg = (tb_wasm_config_t){TB__WASM_MAX_PAGES, 10000, 1u << 20, 10u << 20};
  if (cfg) {
    if (cfg->max_memory_pages) e->cfg.max_memory_pages = cfg->max_memory_pages;
    if (cfg->max_call_depth) e->cfg.max_call_depth = cfg->max_call_depth;
    if (cfg->value_stack_slots) e->cfg.value_stack_slots = cfg->value_stack_slots;
    if (cfg->max_table_elems) e->cfg.max_table_elems = cfg->max_table_elems;
  }
  if (e->cfg.max_memory_pages > TB__WASM_MAX_PAGES) e->cfg.max_memory_pages = TB__WASM_MAX_PAGES;
  *out = e;
  return 0;
}

void tb_wasm_engine_free(tb_wasm_engine_t *engine) {
  if (engine == NULL) return;
  type_registry_t *r = engine->types;
  for (uint32_t i = 0; i < r->n; i++) tb_free(r->entries[i].types);
  tb_free(r->entries);
  tb_free(r->buckets);
  pthread_mutex_destroy(&r->lock);
  tb_free(r);
  tb_free(engine);
}

/* ---- Modules ---- */

int tb_wasm_module_new(tb_wasm_engine_t *engine, const uint8_t *bytes, size_t len, tb_wasm_module_t **out,
                       tb_errbuf_t *eb) {
  int rc = 0;
  *out = NULL;
  if (len > UINT32_MAX) return tb_errf(eb, TB_ETOOBIG, "module is %zu bytes; the limit is 4 GiB", len);
  tb_wasm_module_t *m = tb_calloc(1, sizeof *m);
  if (m == NULL) return TB_ENOMEM;
  m->engine = engine;
  m->len = len;
  m->bytes = tb_malloc(len);
  if (m->bytes == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  if (len) memcpy(m->bytes, bytes, len);
  if ((rc = tb__wasm_decode(m, eb)) != 0) goto out;
  if ((rc = tb__wasm_compile(m, eb)) != 0) goto out;
  *out = m;
  m = NULL;
out:
  if (m) tb__wasm_module_release(m);
  return rc;
}

void tb_wasm_module_free(tb_wasm_module_t *module) {
  if (module) tb__wasm_module_release(module);
}

/* The declared type of import/export target `kind`/`index` of module `m`. */
static void externtype_of(const tb_wasm_module_t *m, tb_wasm_extern_kind_t kind, uint32_t index,
                          tb_wasm_externtype_t *t) {
  memset(t, 0, sizeof *t);
  t->kind = kind;
  switch (kind) {
  case TB_WASM_EXTERN_FUNC: {
    const tb__wfunctype_t *ft = &m->types[m->funcs[index].type_index];
    t->func = (tb_wasm_functype_t){ft->nparams, ft->nresults, ft->types, ft->types + ft->nparams};
    break;
  }
  case TB_WASM_EXTERN_TABLE:
    t->elem = m->tables[index].elem;
    t->limits = m->tables[index].limits;
    break;
  case TB_WASM_EXTERN_MEMORY:
    t->limits = m->mems[index];
    break;
  case TB_WASM_EXTERN_GLOBAL:
    t->global_type = m->globals[index].type.type;
    t->global_mutable = m->globals[index].type.mutable_;
    break;
  }
}

size_t tb_wasm_module_import_count(const tb_wasm_module_t *m) { return m->nimports; }

int tb_wasm_module_import(const tb_wasm_module_t *m, size_t i, tb_wasm_port_t *out) {
  if (i >= m->nimports) return TB_ERANGE;
  const tb__wimport_t *im = &m->imports[i];
  out->module = im->module;
  out->module_len = im->module_len;
  out->name = im->name;
  out->name_len = im->name_len;
  externtype_of(m, im->kind, im->index, &out->type);
  return 0;
}

size_t tb_wasm_module_export_count(const tb_wasm_module_t *m) { return m->nexports; }

int tb_wasm_module_export(const tb_wasm_module_t *m, size_t i, tb_wasm_port_t *out) {
  if (i >= m->nexports) return TB_ERANGE;
  const tb__wexport_t *ex = &m->exports[i];
  out->module = NULL;
  out->module_len = 0;
  out->name = ex->name;
  out->name_len = ex->name_len;
  externtype_of(m, ex->kind, ex->index, &out->type);
  return 0;
}

const uint8_t *tb_wasm_module_custom_section(const tb_wasm_module_t *m, const char *name, size_t *len) {
  size_t n = strlen(name);
  for (uint32_t i = 0; i < m->ncustoms; i++) {
    if (m->customs[i].name_len == n && memcmp(m->customs[i].name, name, n) == 0) {
      if (len) *len = m->customs[i].len;
      return m->customs[i].bytes;
    }
  }
  return NULL;
}

const char *tb_wasm_module_func_name(const tb_wasm_module_t *m, uint32_t func_index) {
  return m->func_names && func_index < m->nfuncs ? m->func_names[func_index] : NULL;
}

/* ---- Stores ---- */

int tb_wasm_store_new(tb_wasm_engine_t *engine, tb_wasm_store_t **out) {
  tb_wasm_store_t *s = tb_calloc(1, sizeof *s);
  if (s == NULL) return TB_ENOMEM;
  s->engine = engine;
  atomic_init(&s->interrupt, 0);
  /* The value stack is reserved, not committed: pages cost memory only once touched. */
  size_t bytes = (size_t)engine->cfg.value_stack_slots * sizeof(uint64_t);
  void *stack = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  s->frames = tb_calloc(engine->cfg.max_call_depth + 1, sizeof *s->frames);
  if (stack == MAP_FAILED || s->frames == NULL) {
    if (stack != MAP_FAILED) munmap(stack, bytes);
    tb_free(s->frames);
    tb_free(s);
    return TB_ENOMEM;
  }
  s->stack = stack;
  s->stack_end = s->stack + engine->cfg.value_stack_slots;
  s->stack_top = s->stack;
  *out = s;
  return 0;
}

static void memory_release(tb_wasm_memory_t *m) {
  if (m->base) munmap(m->base, m->reserved);
  tb_free(m);
}

void tb_wasm_store_free(tb_wasm_store_t *s) {
  if (s == NULL) return;
  for (tb_wasm_instance_t *i = s->instances, *next; i; i = next) {
    next = i->next;
    tb_free(i->funcs);
    tb_free(i->own_funcs);
    tb_free(i->mems);
    tb_free(i->tables);
    tb_free(i->globals);
    tb_free(i->elem_dropped);
    tb_free(i->data_dropped);
    tb_free(i);
  }
  for (tb_wasm_func_t *f = s->funcs, *next; f; f = next) {
    next = f->next;
    tb_free(f->type_storage);
    tb_free(f);
  }
  for (tb_wasm_memory_t *m = s->memories, *next; m; m = next) {
    next = m->next;
    memory_release(m);
  }
  for (tb_wasm_table_t *t = s->tables, *next; t; t = next) {
    next = t->next;
    tb_free(t->elems);
    tb_free(t);
  }
  for (tb_wasm_global_t *g = s->globals, *next; g; g = next) {
    next = g->next;
    tb_free(g);
  }
  munmap(s->stack, (size_t)s->engine->cfg.value_stack_slots * sizeof(uint64_t));
  tb_free(s->frames);
  tb_free(s);
}

void tb_wasm_store_interrupt(tb_wasm_store_t *store) { atomic_store_explicit(&store->interrupt, 1, memory_order_relaxed); }

void tb_wasm_store_clear_interrupt(tb_wasm_store_t *store) {
  atomic_store_explicit(&store->interrupt, 0, memory_order_relaxed);
}

void tb_wasm_store_set_memory_limit(tb_wasm_store_t *store, uint32_t max_pages) { store->memory_limit = max_pages; }

void tb_wasm_store_set_data(tb_wasm_store_t *store, void *data) { store->data = data; }

void *tb_wasm_store_data(const tb_wasm_store_t *store) { return store->data; }

/* The most pages any memory of this store may reach. */
static uint64_t page_limit(const tb_wasm_store_t *s) {
  uint64_t limit = s->engine->cfg.max_memory_pages;
  if (s->memory_limit && s->memory_limit < limit) limit = s->memory_limit;
  return limit;
}

/* ---- Memories ---- */

static int memory_create(tb_wasm_store_t *s, const tb_wasm_limits_t *limits, tb_wasm_memory_t **out) {
  uint64_t cap = page_limit(s);
  uint64_t max = limits->has_max && limits->max < cap ? limits->max : cap;
  if (limits->min > max) return TB_ERANGE;
  tb_wasm_memory_t *m = tb_calloc(1, sizeof *m);
  if (m == NULL) return TB_ENOMEM;
  /* Reserve everything the memory may ever grow to, so its base never moves. */
  m->reserved = max * TB__WASM_PAGE;
  if (m->reserved == 0) m->reserved = TB__WASM_PAGE; /* a valid mapping to point at */
  void *p = mmap(NULL, m->reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    tb_free(m);
    return TB_ENOMEM;
  }
  m->base = p;
  m->max_pages = max;
  m->has_max = limits->has_max;
  m->declared_max = limits->max;
  m->store = s;
  if (limits->min && mprotect(m->base, limits->min * TB__WASM_PAGE, PROT_READ | PROT_WRITE) != 0) {
    memory_release(m);
    return TB_ENOMEM;
  }
  m->size = limits->min * TB__WASM_PAGE;
  m->next = s->memories;
  s->memories = m;
  *out = m;
  return 0;
}

int tb_wasm_memory_new(tb_wasm_store_t *store, const tb_wasm_limits_t *limits, tb_wasm_memory_t **out) {
  return memory_create(store, limits, out);
}

int64_t tb__wasm_memory_grow(tb_wasm_memory_t *mem, uint64_t delta_pages) {
  uint64_t old = mem->size / TB__WASM_PAGE;
  if (delta_pages == 0) return (int64_t)old;
  if (delta_pages > mem->max_pages - old) return -1;
  uint64_t size = (old + delta_pages) * TB__WASM_PAGE;
  if (mprotect(mem->base + mem->size, size - mem->size, PROT_READ | PROT_WRITE) != 0) return -1;
  mem->size = size;
  return (int64_t)old;
}

uint64_t tb_wasm_memory_size(const tb_wasm_memory_t *mem) { return mem->size; }

int tb_wasm_memory_grow(tb_wasm_memory_t *mem, uint32_t delta, uint32_t *old_pages) {
  int64_t old = tb__wasm_memory_grow(mem, delta);
  if (old < 0) return TB_ERANGE;
  if (old_pages) *old_pages = (uint32_t)old;
  return 0;
}

uint8_t *tb_wasm_memory_ptr(tb_wasm_memory_t *mem, uint64_t offset, uint64_t len) {
  if (offset > mem->size || len > mem->size - offset) return NULL;
  return mem->base + offset;
}

int tb_wasm_memory_read(const tb_wasm_memory_t *mem, uint64_t offset, void *dst, size_t len) {
  if (offset > mem->size || len > mem->size - offset) return TB_EFAULT;
  if (len) memcpy(dst, mem->base + offset, len);
  return 0;
}

int tb_wasm_memory_write(tb_wasm_memory_t *mem, uint64_t offset, const void *src, size_t len) {
  if (offset > mem->size || len > mem->size - offset) return TB_EFAULT;
  if (len) memcpy(mem->base + offset, src, len);
  return 0;
}

/* ---- Tables ---- */

static int table_create(tb_wasm_store_t *s, tb_wasm_valtype_t elem, const tb_wasm_limits_t *limits,
                        tb_wasm_table_t **out) {
  uint64_t cap = s->engine->cfg.max_table_elems;
  uint64_t max = limits->has_max && limits->max < cap ? limits->max : cap;
  if (limits->min > max) return TB_ERANGE;
  tb_wasm_table_t *t = tb_calloc(1, sizeof *t);
  if (t == NULL) return TB_ENOMEM;
  t->elems = tb_calloc(limits->min, sizeof *t->elems);
  if (t->elems == NULL) {
    tb_free(t);
    return TB_ENOMEM;
  }
  t->size = (uint32_t)limits->min;
  t->max = (uint32_t)max;
  t->has_max = limits->has_max;
  t->declared_max = limits->max;
  t->elem = elem;
  t->store = s;
  t->next = s->tables;
  s->tables = t;
  *out = t;
  return 0;
}

int tb_wasm_table_new(tb_wasm_store_t *store, tb_wasm_valtype_t elem, const tb_wasm_limits_t *limits,
                      tb_wasm_table_t **out) {
  if (elem != TB_WASM_FUNCREF && elem != TB_WASM_EXTERNREF) return TB_EINVAL;
  return table_create(store, elem, limits, out);
}

int64_t tb__wasm_table_grow(tb_wasm_table_t *t, uint64_t delta, tb__wref_t init) {
  uint32_t old = t->size;
  if (delta > (uint64_t)(t->max - old)) return -1;
  if (delta == 0) return old;
  tb__wref_t *e = tb_reallocarray(t->elems, old + delta, sizeof *e);
  if (e == NULL) return -1;
  for (uint64_t i = old; i < old + delta; i++) e[i] = init;
  t->elems = e;
  t->size = (uint32_t)(old + delta);
  return old;
}

uint32_t tb_wasm_table_size(const tb_wasm_table_t *t) { return t->size; }

int tb_wasm_table_get(const tb_wasm_table_t *t, uint32_t i, tb_wasm_val_t *out) {
  if (i >= t->size) return TB_ERANGE;
  out->type = t->elem;
  if (t->elem == TB_WASM_FUNCREF)
    out->of.funcref = t->elems[i];
  else
    out->of.externref = t->elems[i];
  return 0;
}

int tb_wasm_table_set(tb_wasm_table_t *t, uint32_t i, const tb_wasm_val_t *v) {
  if (i >= t->size) return TB_ERANGE;
  if (v->type != t->elem) return TB_EINVAL;
  t->elems[i] = t->elem == TB_WASM_FUNCREF ? (void *)v->of.funcref : v->of.externref;
  return 0;
}

/* ---- Values in slots ---- */

static void val_to_slots(const tb_wasm_val_t *v, uint64_t *slot) {
  switch (v->type) {
  case TB_WASM_I32:
  case TB_WASM_F32:
    slot[0] = v->of.f32_bits;
    break;
  case TB_WASM_I64:
  case TB_WASM_F64:
    slot[0] = v->of.f64_bits;
    break;
  case TB_WASM_V128:
    memcpy(slot, v->of.v128, 16);
    break;
  case TB_WASM_FUNCREF:
    slot[0] = (uint64_t)(uintptr_t)v->of.funcref;
    break;
  case TB_WASM_EXTERNREF:
    slot[0] = (uint64_t)(uintptr_t)v->of.externref;
    break;
  }
}

static void slots_to_val(tb_wasm_valtype_t type, const uint64_t *slot, tb_wasm_val_t *v) {
  memset(v, 0, sizeof *v);
  v->type = type;
  switch (type) {
  case TB_WASM_I32:
  case TB_WASM_F32:
    v->of.f32_bits = (uint32_t)slot[0];
    break;
  case TB_WASM_I64:
  case TB_WASM_F64:
    v->of.f64_bits = slot[0];
    break;
  case TB_WASM_V128:
    memcpy(v->of.v128, slot, 16);
    break;
  case TB_WASM_FUNCREF:
    v->of.funcref = (tb_wasm_func_t *)(uintptr_t)slot[0];
    break;
  case TB_WASM_EXTERNREF:
    v->of.externref = (void *)(uintptr_t)slot[0];
    break;
  }
}

/* Slots a value of type t occupies. */
static uint32_t slots_of(tb_wasm_valtype_t t) { return t == TB_WASM_V128 ? 2 : 1; }

/* ---- Globals ---- */

static int global_create(tb_wasm_store_t *s, tb_wasm_valtype_t type, bool mutable_, tb_wasm_global_t **out) {
  tb_wasm_global_t *g = tb_calloc(1, sizeof *g);
  if (g == NULL) return TB_ENOMEM;
  g->type = type;
  g->mutable_ = mutable_;
  g->next = s->globals;
  s->globals = g;
  *out = g;
  return 0;
}

int tb_wasm_global_new(tb_wasm_store_t *store, const tb_wasm_val_t *init, bool mutable_, tb_wasm_global_t **out) {
  int rc = global_create(store, init->type, mutable_, out);
  if (rc == 0) val_to_slots(init, (*out)->value);
  return rc;
}

void tb_wasm_global_get(const tb_wasm_global_t *g, tb_wasm_val_t *out) { slots_to_val(g->type, g->value, out); }

int tb_wasm_global_set(tb_wasm_global_t *g, const tb_wasm_val_t *v) {
  if (!g->mutable_ || v->type != g->type) return TB_EINVAL;
  val_to_slots(v, g->value);
  return 0;
}

/* ---- Functions ---- */

static void link_func(tb_wasm_store_t *s, tb_wasm_func_t *f) {
  f->next = s->funcs;
  s->funcs = f;
}

int tb_wasm_func_new_host(tb_wasm_store_t *store, const tb_wasm_functype_t *type, tb_wasm_host_fn fn, void *env,
                          tb_wasm_func_t **out) {
  uint32_t n = type->nparams + type->nresults;
  tb_wasm_func_t *f = tb_calloc(1, sizeof *f);
  tb_wasm_valtype_t *types = tb_calloc(n ? n : 1, sizeof *types);
  if (f == NULL || types == NULL) {
    tb_free(f);
    tb_free(types);
    return TB_ENOMEM;
  }
  if (type->nparams) memcpy(types, type->params, type->nparams * sizeof *types);
  if (type->nresults) memcpy(types + type->nparams, type->results, type->nresults * sizeof *types);
  int rc = tb__wasm_type_intern(store->engine, types, type->nparams, type->nresults, &f->type_id);
  if (rc) {
    tb_free(f);
    tb_free(types);
    return rc;
  }
  f->type = (tb_wasm_functype_t){type->nparams, type->nresults, types, types + type->nparams};
  f->type_storage = types;
  f->host = fn;
  f->env = env;
  link_func(store, f);
  *out = f;
  return 0;
}

const tb_wasm_functype_t *tb_wasm_func_type(const tb_wasm_func_t *f) { return &f->type; }

tb_wasm_store_t *tb_wasm_caller_store(tb_wasm_caller_t *caller) { return caller->store; }

tb_wasm_memory_t *tb_wasm_caller_memory(tb_wasm_caller_t *caller) {
  return caller->inst && caller->inst->module->nmems ? caller->inst->mems[0] : NULL;
}

int tb_wasm_caller_trap(tb_wasm_caller_t *caller, const char *fmt, ...) {
  if (caller->trap) {
    caller->trap->kind = TB_WASM_TRAP_HOST;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(caller->trap->msg, sizeof caller->trap->msg, fmt, ap);
    va_end(ap);
  }
  return TB_ETRAP;
}

int tb_wasm_caller_exit(tb_wasm_caller_t *caller, int code) {
  if (caller->trap) {
    caller->trap->kind = TB_WASM_TRAP_EXIT;
    caller->trap->exit_code = code;
    snprintf(caller->trap->msg, sizeof caller->trap->msg, "exit with code %d", code);
  }
  return TB_ETRAP;
}

/* ---- Instantiation ---- */

static const char *const kind_names[] = {"a function", "a table", "a memory", "a global"};

/* An extern's limits are a subtype of the declared ones (spec "import matching"). */
static bool limits_match(uint64_t actual_min, bool actual_has_max, uint64_t actual_max, const tb_wasm_limits_t *want) {
  if (actual_min < want->min) return false;
  if (!want->has_max) return true;
  return actual_has_max && actual_max <= want->max;
}

static int check_import(const tb_wasm_module_t *m, const tb__wimport_t *im, const tb_wasm_extern_t *ex,
                        tb_errbuf_t *eb) {
  char want[256], got[256];
  if (ex->kind != im->kind || ex->of.func == NULL)
    return tb_errf(eb, TB_EINVAL, "import \"%s\" \"%s\": expected %s, got %s (incompatible import type)", im->module,
                   im->name, kind_names[im->kind], ex->of.func == NULL ? "nothing" : kind_names[ex->kind]);
  switch (im->kind) {
  case TB_WASM_EXTERN_FUNC: {
    const tb__wfunctype_t *ft = &m->types[im->type_index];
    if (ex->of.func->type_id == ft->id) return 0;
    tb_wasm_functype_t wt = {ft->nparams, ft->nresults, ft->types, ft->types + ft->nparams};
    tb_wasm_functype_format(&wt, want, sizeof want);
    tb_wasm_functype_format(&ex->of.func->type, got, sizeof got);
    return tb_errf(eb, TB_EINVAL, "import \"%s\" \"%s\": expected a function of type %s, got %s (incompatible import "
                   "type)", im->module, im->name, want, got);
  }
  case TB_WASM_EXTERN_TABLE: {
    const tb_wasm_table_t *t = ex->of.table;
    if (t->elem == im->table.elem && limits_match(t->size, t->has_max, t->declared_max, &im->table.limits))
      return 0;
    return tb_errf(eb, TB_EINVAL, "import \"%s\" \"%s\": table type or limits do not match (incompatible import type)",
                   im->module, im->name);
  }
  case TB_WASM_EXTERN_MEMORY: {
    const tb_wasm_memory_t *mem = ex->of.memory;
    if (limits_match(mem->size / TB__WASM_PAGE, mem->has_max, mem->declared_max, &im->memory)) return 0;
    return tb_errf(eb, TB_EINVAL, "import \"%s\" \"%s\": memory limits do not match (incompatible import type)",
                   im->module, im->name);
  }
  case TB_WASM_EXTERN_GLOBAL: {
    const tb_wasm_global_t *g = ex->of.global;
    if (g->type == im->global.type && g->mutable_ == im->global.mutable_) return 0;
    return tb_errf(eb, TB_EINVAL, "import \"%s\" \"%s\": expected %s %s global, got %s %s (incompatible import type)",
                   im->module, im->name, im->global.mutable_ ? "a mutable" : "an immutable",
                   tb_wasm_valtype_name(im->global.type), g->mutable_ ? "a mutable" : "an immutable",
                   tb_wasm_valtype_name(g->type));
  }
  }
  return TB_EINVAL;
}

/* Evaluates a constant expression in the context of a (partly built) instance. */
static void eval_const(const tb_wasm_instance_t *inst, const tb__wconstexpr_t *e, uint64_t out[2]) {
  out[1] = 0;
  switch (e->op) {
  case TB__WCONST_GLOBAL_GET:
    out[0] = inst->globals[e->bits]->value[0];
    out[1] = inst->globals[e->bits]->value[1];
    break;
  case TB__WCONST_REF_NULL:
    out[0] = 0;
    break;
  case TB__WCONST_REF_FUNC:
    out[0] = (uint64_t)(uintptr_t)inst->funcs[e->bits];
    break;
  case TB__WCONST_V128:
    out[0] = e->bits;
    out[1] = e->bits_hi;
    break;
  default:
    out[0] = e->bits;
    break;
  }
}

/* Builds the instance's own functions, memories, tables and globals. */
static int instance_build(tb_wasm_store_t *s, tb_wasm_instance_t *inst, const tb_wasm_extern_t *imports) {
  const tb_wasm_module_t *m = inst->module;
  int rc;
  inst->funcs = tb_calloc(m->nfuncs, sizeof *inst->funcs);
  inst->own_funcs = tb_calloc(m->nfuncs - m->nimported_funcs, sizeof *inst->own_funcs);
  inst->mems = tb_calloc(m->nmems, sizeof *inst->mems);
  inst->tables = tb_calloc(m->ntables, sizeof *inst->tables);
  inst->globals = tb_calloc(m->nglobals, sizeof *inst->globals);
  inst->elem_dropped = tb_calloc(m->nelems, 1);
  inst->data_dropped = tb_calloc(m->ndatas, 1);
  if (!inst->funcs || !inst->own_funcs || !inst->mems || !inst->tables || !inst->globals || !inst->elem_dropped ||
      !inst->data_dropped)
    return TB_ENOMEM;

  for (uint32_t i = 0; i < m->nimports; i++) {
    const tb__wimport_t *im = &m->imports[i];
    switch (im->kind) {
    case TB_WASM_EXTERN_FUNC:
      inst->funcs[im->index] = imports[i].of.func;
      break;
    case TB_WASM_EXTERN_TABLE:
      inst->tables[im->index] = imports[i].of.table;
      break;
    case TB_WASM_EXTERN_MEMORY:
      inst->mems[im->index] = imports[i].of.memory;
      break;
    case TB_WASM_EXTERN_GLOBAL:
      inst->globals[im->index] = imports[i].of.global;
      break;
    }
  }
  for (uint32_t i = m->nimported_funcs; i < m->nfuncs; i++) {
    tb_wasm_func_t *f = &inst->own_funcs[i - m->nimported_funcs];
    const tb__wfunctype_t *ft = &m->types[m->funcs[i].type_index];
    f->type_id = ft->id;
    f->type = (tb_wasm_functype_t){ft->nparams, ft->nresults, ft->types, ft->types + ft->nparams};
    f->inst = inst;
    f->code = m->funcs[i].code;
    f->index = i;
    inst->funcs[i] = f;
  }
  for (uint32_t i = m->nimported_mems; i < m->nmems; i++)
    if ((rc = memory_create(s, &m->mems[i], &inst->mems[i])) != 0) return rc;
  for (uint32_t i = m->nimported_tables; i < m->ntables; i++)
    if ((rc = table_create(s, m->tables[i].elem, &m->tables[i].limits, &inst->tables[i])) != 0) return rc;
  for (uint32_t i = m->nimported_globals; i < m->nglobals; i++) {
    if ((rc = global_create(s, m->globals[i].type.type, m->globals[i].type.mutable_, &inst->globals[i])) != 0)
      return rc;
    eval_const(inst, &m->globals[i].init, inst->globals[i]->value);
  }
  return 0;
}

/* Active element and data segments, in order; then the start function (spec 4.5.4). */
static int instance_initialise(tb_wasm_store_t *s, tb_wasm_instance_t *inst, tb_wasm_trap_t *trap) {
  const tb_wasm_module_t *m = inst->module;
  uint64_t v[2];
  for (uint32_t i = 0; i < m->nelems; i++) {
    const tb__welem_t *e = &m->elems[i];
    if (e->mode == TB__WSEG_PASSIVE) continue;
    inst->elem_dropped[i] = 1; /* active and declarative segments are dropped once used */
    if (e->mode == TB__WSEG_DECLARATIVE) continue;
    eval_const(inst, &e->offset, v);
    uint64_t offset = (uint32_t)v[0];
    tb_wasm_table_t *t = inst->tables[e->table];
    if (offset + e->count > t->size) return tb__wasm_trap(trap, TB_WASM_TRAP_TABLE_OOB, 0, 0);
    for (uint32_t j = 0; j < e->count; j++) {
      eval_const(inst, &e->items[j], v);
      t->elems[offset + j] = (tb__wref_t)(uintptr_t)v[0];
    }
  }
  for (uint32_t i = 0; i < m->ndatas; i++) {
    const tb__wdata_t *d = &m->datas[i];
    if (d->mode != TB__WSEG_ACTIVE) continue;
    inst->data_dropped[i] = 1;
    eval_const(inst, &d->offset, v);
    uint64_t offset = (uint32_t)v[0];
    tb_wasm_memory_t *mem = inst->mems[d->memory];
    if (offset + d->len > mem->size) return tb__wasm_trap(trap, TB_WASM_TRAP_MEMORY_OOB, 0, 0);
    if (d->len) memcpy(mem->base + offset, d->bytes, d->len);
  }
  if (m->has_start) {
    uint64_t none[1];
    return tb__wasm_invoke(s, inst->funcs[m->start], none, none, trap);
  }
  return 0;
}

int tb_wasm_instantiate(tb_wasm_store_t *store, const tb_wasm_module_t *module, const tb_wasm_extern_t *imports,
                        size_t nimports, tb_wasm_instance_t **out, tb_wasm_trap_t *trap, tb_errbuf_t *eb) {
  *out = NULL;
  if (nimports != module->nimports)
    return tb_errf(eb, TB_EINVAL, "the module has %u imports, %zu were given", module->nimports, nimports);
  for (uint32_t i = 0; i < module->nimports; i++) {
    int rc = check_import(module, &module->imports[i], &imports[i], eb);
    if (rc) return rc;
  }
  tb_wasm_instance_t *inst = tb_calloc(1, sizeof *inst);
  if (inst == NULL) return TB_ENOMEM;
  inst->module = module;
  inst->store = store;
  /* Linked first, so the store frees it whatever happens below. */
  inst->next = store->instances;
  store->instances = inst;
  int rc = instance_build(store, inst, imports);
  if (rc) return rc == TB_ERANGE ? tb_errf(eb, TB_ENOMEM, "memory or table limits exceed this store's") : rc;
  rc = instance_initialise(store, inst, trap);
  if (rc) return rc;
  *out = inst;
  return 0;
}

int tb_wasm_instance_export(const tb_wasm_instance_t *inst, const char *name, size_t len, tb_wasm_extern_t *out) {
  const tb_wasm_module_t *m = inst->module;
  for (uint32_t i = 0; i < m->nexports; i++) {
    const tb__wexport_t *ex = &m->exports[i];
    if (ex->name_len != len || memcmp(ex->name, name, len) != 0) continue;
    out->kind = ex->kind;
    switch (ex->kind) {
    case TB_WASM_EXTERN_FUNC:
      out->of.func = inst->funcs[ex->index];
      break;
    case TB_WASM_EXTERN_TABLE:
      out->of.table = inst->tables[ex->index];
      break;
    case TB_WASM_EXTERN_MEMORY:
      out->of.memory = inst->mems[ex->index];
      break;
    case TB_WASM_EXTERN_GLOBAL:
      out->of.global = inst->globals[ex->index];
      break;
    }
    return 0;
  }
  return TB_ENOTFOUND;
}

tb_wasm_func_t *tb_wasm_instance_func(const tb_wasm_instance_t *inst, const char *name) {
  tb_wasm_extern_t ex;
  if (tb_wasm_instance_export(inst, name, strlen(name), &ex) != 0 || ex.kind != TB_WASM_EXTERN_FUNC) return NULL;
  return ex.of.func;
}

tb_wasm_memory_t *tb_wasm_instance_memory(const tb_wasm_instance_t *inst) {
  return inst->module->nmems ? inst->mems[0] : NULL;
}

const tb_wasm_module_t *tb_wasm_instance_module(const tb_wasm_instance_t *inst) { return inst->module; }

/* ---- Calls from the host ---- */

int tb_wasm_call(tb_wasm_store_t *store, tb_wasm_func_t *f, const tb_wasm_val_t *args, size_t nargs,
                 tb_wasm_val_t *results, size_t nresults, tb_wasm_trap_t *trap) {
  const tb_wasm_functype_t *t = &f->type;
  if (nargs != t->nparams || nresults != t->nresults) return TB_EINVAL;
  uint32_t in = 0, out = 0;
  for (uint32_t i = 0; i < t->nparams; i++) {
    if (args[i].type != t->params[i]) return TB_EINVAL;
    in += slots_of(t->params[i]);
  }
  for (uint32_t i = 0; i < t->nresults; i++) out += slots_of(t->results[i]);
  uint32_t n = in > out ? in : out;
  uint64_t small[16], *slots = n <= 16 ? small : tb_calloc(n, sizeof *slots);
  if (slots == NULL) return TB_ENOMEM;
  for (uint32_t i = 0, k = 0; i < t->nparams; k += slots_of(t->params[i]), i++) val_to_slots(&args[i], slots + k);
  if (trap) memset(trap, 0, sizeof *trap);
  int rc = tb__wasm_invoke(store, f, slots, slots, trap);
  if (rc == 0)
    for (uint32_t i = 0, k = 0; i < t->nresults; k += slots_of(t->results[i]), i++)
      slots_to_val(t->results[i], slots + k, &results[i]);
  if (slots != small) tb_free(slots);
  return rc;
}
