/*
 * wasm.h — Tabbify's WebAssembly engine: decode, validate, compile, instantiate, run.
 *
 * The objects, from longest- to shortest-lived:
 *
 *   engine    configuration and the function-type registry; shared by every thread.
 *   module    a binary that was decoded, validated and compiled to the interpreter's
 *             internal code, once. Immutable, so one module serves any number of
 *             instances on any number of threads. It must outlive the stores using it.
 *   store     the owner of everything created while running: instances, host
 *             functions, memories, tables, globals. Freed as one. A store is used by
 *             one thread at a time (tb_wasm_store_interrupt excepted). A request that
 *             wants isolation gets a fresh store and instance, which is cheap: the
 *             compiled code is the module's and is not copied.
 *   instance  a module's functions bound to their memory, tables and globals.
 *
 * Every guest fault ends in a trap, a value (tb_wasm_trap_t) carrying the kind, the
 * spec's message, and the function index and code offset where it happened; nothing a
 * module does — valid, invalid or hostile — crashes the host or reaches memory outside
 * its own. Guest memory is reached by the host only through the bounds-checked helpers
 * below.
 *
 * Errors follow include/tb/err.h: 0 or a negative TB_E* code; loaders also write a
 * sentence with the byte offset into a tb_errbuf_t ("section 10, function 3, offset
 * 0x1f2: type mismatch: expected i32, got f64").
 */
#ifndef TB_WASM_H
#define TB_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"

typedef struct tb_wasm_engine tb_wasm_engine_t;
typedef struct tb_wasm_module tb_wasm_module_t;
typedef struct tb_wasm_store tb_wasm_store_t;
typedef struct tb_wasm_instance tb_wasm_instance_t;
typedef struct tb_wasm_func tb_wasm_func_t;
typedef struct tb_wasm_memory tb_wasm_memory_t;
typedef struct tb_wasm_table tb_wasm_table_t;
typedef struct tb_wasm_global tb_wasm_global_t;

/* ---- Values ---- */

typedef enum tb_wasm_valtype {
  TB_WASM_I32 = 0x7f,
  TB_WASM_I64 = 0x7e,
  TB_WASM_F32 = 0x7d,
  TB_WASM_F64 = 0x7c,
  TB_WASM_V128 = 0x7b,
  TB_WASM_FUNCREF = 0x70,
  TB_WASM_EXTERNREF = 0x6f,
} tb_wasm_valtype_t;

/** "i32", "i64", "f32", "f64", "v128", "funcref", "externref". */
const char *tb_wasm_valtype_name(tb_wasm_valtype_t t);

/*
 * A value crossing the API. Floats are carried as their bits (f32_bits/f64_bits alias
 * f32/f64) so that NaN payloads survive. A funcref is a tb_wasm_func_t * or NULL; an
 * externref is any host pointer, NULL being the null reference.
 */
typedef struct tb_wasm_val {
  tb_wasm_valtype_t type;
  union {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    uint32_t f32_bits;
    uint64_t f64_bits;
    tb_wasm_func_t *funcref;
    void *externref;
    uint8_t v128[16];
  } of;
} tb_wasm_val_t;

/* A function type: parameter types then result types. Borrowed from its owner. */
typedef struct tb_wasm_functype {
  uint32_t nparams, nresults;
  const tb_wasm_valtype_t *params, *results;
} tb_wasm_functype_t;

/** Writes "(i32, i64) -> (f32)" into `buf` (at most `size` bytes, NUL-terminated). */
void tb_wasm_functype_format(const tb_wasm_functype_t *t, char *buf, size_t size);

/* ---- Traps ---- */

typedef enum tb_wasm_trap_kind {
  TB_WASM_TRAP_NONE = 0,
  TB_WASM_TRAP_UNREACHABLE,          /* "unreachable" */
  TB_WASM_TRAP_MEMORY_OOB,           /* "out of bounds memory access" */
  TB_WASM_TRAP_TABLE_OOB,            /* "out of bounds table access" */
  TB_WASM_TRAP_UNDEFINED_ELEMENT,    /* "undefined element" (call_indirect past the table) */
  TB_WASM_TRAP_UNINITIALIZED_ELEMENT,/* "uninitialized element" (call_indirect of null) */
  TB_WASM_TRAP_INDIRECT_TYPE,        /* "indirect call type mismatch" */
  TB_WASM_TRAP_DIV_ZERO,             /* "integer divide by zero" */
  TB_WASM_TRAP_INT_OVERFLOW,         /* "integer overflow" */
  TB_WASM_TRAP_INVALID_CONVERSION,   /* "invalid conversion to integer" */
  TB_WASM_TRAP_STACK_EXHAUSTED,      /* "call stack exhausted" */
  TB_WASM_TRAP_INTERRUPTED,          /* "interrupted": tb_wasm_store_interrupt or the deadline */
  TB_WASM_TRAP_NULL_REFERENCE,       /* "null reference" */
  TB_WASM_TRAP_HOST,                 /* a host function failed; msg says why */
  TB_WASM_TRAP_EXIT,                 /* the guest asked to exit (WASI proc_exit): exit_code */
} tb_wasm_trap_kind_t;

typedef struct tb_wasm_trap {
  tb_wasm_trap_kind_t kind;
  int exit_code;       /* TB_WASM_TRAP_EXIT */
  uint32_t func_index; /* function where it happened, in the module's index space */
  uint32_t offset;     /* byte offset of the trapping instruction in the module binary */
  char msg[160];       /* the spec's message, or the host's sentence */
} tb_wasm_trap_t;

/** The spec's message for a trap kind ("integer divide by zero"). */
const char *tb_wasm_trap_message(tb_wasm_trap_kind_t kind);

/* ---- Engine ---- */

typedef struct tb_wasm_config {
  uint32_t max_memory_pages; /* per memory, default 65536 (4 GiB) */
  uint32_t max_call_depth;   /* frames before "call stack exhausted", default 10000 */
  uint32_t value_stack_slots;/* 8-byte slots per store, default 1 Mi (8 MiB) */
  uint32_t max_table_elems;  /* per table, default 10 Mi */
} tb_wasm_config_t;

/** A new engine; `cfg` may be NULL for the defaults. Free with tb_wasm_engine_free. */
int tb_wasm_engine_new(const tb_wasm_config_t *cfg, tb_wasm_engine_t **out);
/** Frees the engine; every module made with it must be freed first. */
void tb_wasm_engine_free(tb_wasm_engine_t *engine);

/* ---- Modules ---- */

/**
 * Decodes, validates and compiles `len` bytes of a binary module. The bytes are copied;
 * the caller keeps its buffer. On success stores a new module in *out. Malformed input
 * is TB_EPARSE and invalid input (well-formed but ill-typed) TB_EINVAL, each with a
 * sentence in `eb` naming the byte offset; TB_ENOMEM, TB_ETOOBIG past engine limits.
 * Thread-safe: any number of threads may compile modules on one engine.
 */
int tb_wasm_module_new(tb_wasm_engine_t *engine, const uint8_t *bytes, size_t len, tb_wasm_module_t **out,
                       tb_errbuf_t *eb);
/** Frees the module; no store may still hold one of its instances. NULL is fine. */
void tb_wasm_module_free(tb_wasm_module_t *module);

typedef enum tb_wasm_extern_kind {
  TB_WASM_EXTERN_FUNC = 0,
  TB_WASM_EXTERN_TABLE = 1,
  TB_WASM_EXTERN_MEMORY = 2,
  TB_WASM_EXTERN_GLOBAL = 3,
} tb_wasm_extern_kind_t;

typedef struct tb_wasm_limits {
  uint64_t min;
  uint64_t max; /* meaningful when has_max */
  bool has_max;
} tb_wasm_limits_t;

/* The type of an import or export, as the module declares it. Borrowed from the module. */
typedef struct tb_wasm_externtype {
  tb_wasm_extern_kind_t kind;
  tb_wasm_functype_t func;             /* FUNC */
  tb_wasm_valtype_t elem;              /* TABLE: funcref or externref */
  tb_wasm_limits_t limits;             /* TABLE (elements), MEMORY (64 KiB pages) */
  tb_wasm_valtype_t global_type;       /* GLOBAL */
  bool global_mutable;                 /* GLOBAL */
} tb_wasm_externtype_t;

/* One import or export of a module. Strings are borrowed from the module (and may
 * contain any UTF-8; lengths are given because names may hold NUL). */
typedef struct tb_wasm_port {
  const char *module; /* imports only */
  size_t module_len;
  const char *name;
  size_t name_len;
  tb_wasm_externtype_t type;
} tb_wasm_port_t;

size_t tb_wasm_module_import_count(const tb_wasm_module_t *m);
/** Import i (0-based, in declaration order); TB_ERANGE past the end. */
int tb_wasm_module_import(const tb_wasm_module_t *m, size_t i, tb_wasm_port_t *out);
size_t tb_wasm_module_export_count(const tb_wasm_module_t *m);
int tb_wasm_module_export(const tb_wasm_module_t *m, size_t i, tb_wasm_port_t *out);
/** The bytes of the first custom section called `name`, or NULL. Borrowed. */
const uint8_t *tb_wasm_module_custom_section(const tb_wasm_module_t *m, const char *name, size_t *len);
/** The function's name from the "name" section, or NULL. Borrowed. */
const char *tb_wasm_module_func_name(const tb_wasm_module_t *m, uint32_t func_index);

/* ---- Stores ---- */

/** A new, empty store. Free with tb_wasm_store_free, which frees all it owns. */
int tb_wasm_store_new(tb_wasm_engine_t *engine, tb_wasm_store_t **out);
void tb_wasm_store_free(tb_wasm_store_t *store);

/**
 * Makes the guest running in `store` (now or next) trap with TB_WASM_TRAP_INTERRUPTED
 * at its next loop back-edge or call. Safe from any thread and from signal handlers.
 * tb_wasm_store_clear_interrupt() re-arms the store for further calls.
 */
void tb_wasm_store_interrupt(tb_wasm_store_t *store);
void tb_wasm_store_clear_interrupt(tb_wasm_store_t *store);

/** Per-store cap on memory pages (below the engine's); 0 means the engine's. */
void tb_wasm_store_set_memory_limit(tb_wasm_store_t *store, uint32_t max_pages);

/** What the host attaches to the store: WASI context, request state. Not owned. */
void tb_wasm_store_set_data(tb_wasm_store_t *store, void *data);
void *tb_wasm_store_data(const tb_wasm_store_t *store);

/* ---- Externs: what imports are satisfied with and exports resolve to ---- */

typedef struct tb_wasm_extern {
  tb_wasm_extern_kind_t kind;
  union {
    tb_wasm_func_t *func;
    tb_wasm_table_t *table;
    tb_wasm_memory_t *memory;
    tb_wasm_global_t *global;
  } of;
} tb_wasm_extern_t;

/* ---- Host functions ---- */

/* What a host function sees of the call: the store and the caller's memory 0. */
typedef struct tb_wasm_caller tb_wasm_caller_t;

/**
 * A host function. `args` holds the parameters, one 8-byte slot each (i32 in the low
 * 32 bits, f32/f64 as bits, references as pointers); the function writes its results
 * into `results`, one slot each. The two may point to the same slots: read every
 * argument before writing a result. Return 0, or call tb_wasm_caller_trap/_exit and
 * return their value to end the guest with a trap.
 */
typedef int (*tb_wasm_host_fn)(tb_wasm_caller_t *caller, void *env, const uint64_t *args, uint64_t *results);

/**
 * A host function of type `type` (copied) living in `store`. `env` is passed back to
 * `fn` and is not owned.
 */
int tb_wasm_func_new_host(tb_wasm_store_t *store, const tb_wasm_functype_t *type, tb_wasm_host_fn fn, void *env,
                          tb_wasm_func_t **out);

tb_wasm_store_t *tb_wasm_caller_store(tb_wasm_caller_t *caller);
/** The calling instance's memory 0, or NULL when it has none. */
tb_wasm_memory_t *tb_wasm_caller_memory(tb_wasm_caller_t *caller);
/** Ends the guest with TB_WASM_TRAP_HOST and this sentence; returns the value to return. */
int tb_wasm_caller_trap(tb_wasm_caller_t *caller, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Ends the guest with TB_WASM_TRAP_EXIT and `code`; returns the value to return. */
int tb_wasm_caller_exit(tb_wasm_caller_t *caller, int code);

/* ---- Instances ---- */

/**
 * Instantiates `module` in `store`. `imports` lists one extern per module import, in
 * import order; each must match the import's kind and type (TB_EINVAL with a sentence
 * naming the import otherwise: "import \"env\" \"f\": expected a function of type
 * (i32) -> (), got (i64) -> ()"). Runs segment initialisation and the start function;
 * if those trap, returns TB_ETRAP and fills *trap (the instance is not created, but
 * effects on imported memories and tables persist, as the spec says).
 * The instance belongs to the store.
 */
int tb_wasm_instantiate(tb_wasm_store_t *store, const tb_wasm_module_t *module, const tb_wasm_extern_t *imports,
                        size_t nimports, tb_wasm_instance_t **out, tb_wasm_trap_t *trap, tb_errbuf_t *eb);

/** The export called `name` (`len` bytes); TB_ENOTFOUND if there is none. */
int tb_wasm_instance_export(const tb_wasm_instance_t *inst, const char *name, size_t len, tb_wasm_extern_t *out);
/** Convenience: the exported function `name` (NUL-terminated), or NULL. */
tb_wasm_func_t *tb_wasm_instance_func(const tb_wasm_instance_t *inst, const char *name);
/** The instance's memory 0, or NULL. */
tb_wasm_memory_t *tb_wasm_instance_memory(const tb_wasm_instance_t *inst);
const tb_wasm_module_t *tb_wasm_instance_module(const tb_wasm_instance_t *inst);

/* ---- Calling ---- */

/** The function's type; borrowed from the function. */
const tb_wasm_functype_t *tb_wasm_func_type(const tb_wasm_func_t *f);

/**
 * Calls `f` with `nargs` arguments (types must match its parameters: TB_EINVAL) and
 * stores its results in `results` (`nresults` must equal its result count). Returns 0,
 * or TB_ETRAP with *trap filled. Re-entrant: a host function may call back into the
 * guest on the same store.
 */
int tb_wasm_call(tb_wasm_store_t *store, tb_wasm_func_t *f, const tb_wasm_val_t *args, size_t nargs,
                 tb_wasm_val_t *results, size_t nresults, tb_wasm_trap_t *trap);

/* ---- Memories, tables and globals ---- */

/** A memory created by the host (to be imported); limits in 64 KiB pages. */
int tb_wasm_memory_new(tb_wasm_store_t *store, const tb_wasm_limits_t *limits, tb_wasm_memory_t **out);
/** Current size in bytes. */
uint64_t tb_wasm_memory_size(const tb_wasm_memory_t *mem);
/** Grows by `delta` pages, storing the old size in pages; TB_ERANGE if it cannot. */
int tb_wasm_memory_grow(tb_wasm_memory_t *mem, uint32_t delta, uint32_t *old_pages);
/** Copies between guest memory and the host; TB_EFAULT when [offset, offset+len) is outside. */
int tb_wasm_memory_read(const tb_wasm_memory_t *mem, uint64_t offset, void *dst, size_t len);
int tb_wasm_memory_write(tb_wasm_memory_t *mem, uint64_t offset, const void *src, size_t len);
/**
 * A pointer to [offset, offset+len) of guest memory, or NULL if any of it is outside.
 * Valid until control returns to the guest (which may grow or write the memory).
 */
uint8_t *tb_wasm_memory_ptr(tb_wasm_memory_t *mem, uint64_t offset, uint64_t len);

int tb_wasm_table_new(tb_wasm_store_t *store, tb_wasm_valtype_t elem, const tb_wasm_limits_t *limits,
                      tb_wasm_table_t **out);
uint32_t tb_wasm_table_size(const tb_wasm_table_t *t);
int tb_wasm_table_get(const tb_wasm_table_t *t, uint32_t i, tb_wasm_val_t *out);
int tb_wasm_table_set(tb_wasm_table_t *t, uint32_t i, const tb_wasm_val_t *v);

int tb_wasm_global_new(tb_wasm_store_t *store, const tb_wasm_val_t *init, bool mutable_, tb_wasm_global_t **out);
void tb_wasm_global_get(const tb_wasm_global_t *g, tb_wasm_val_t *out);
/** TB_EINVAL if the global is immutable or the type differs. */
int tb_wasm_global_set(tb_wasm_global_t *g, const tb_wasm_val_t *v);

#endif /* TB_WASM_H */
