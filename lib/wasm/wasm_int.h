/*
 * wasm_int.h — the engine's internal contract between its stages:
 *
 *   decode.c    bytes           -> tb_wasm_module (sections, types, bodies as byte ranges)
 *   compile.c   function bodies -> validated and compiled tb__wcode (one pass per body)
 *   interp.c    tb__wcode       -> execution, on a store's value stack
 *   runtime.c   instances, memories, tables, globals, host functions, calls from the API
 *
 * Design notes live in docs/internals/WASM-ENGINE.md. Nothing outside lib/wasm includes
 * this header.
 */
#ifndef TB_WASM_INT_H
#define TB_WASM_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/wasm.h"

#define TB__WASM_PAGE 65536u
#define TB__WASM_MAX_PAGES 65536u /* 4 GiB: the 32-bit address space */

/* Implementation limits (beyond the spec's own), applied by the decoder and validator.
 * They bound what hostile modules can make us allocate; real programs sit far below. */
#define TB__WASM_MAX_TYPES 1000000u
#define TB__WASM_MAX_FUNCS 1000000u
#define TB__WASM_MAX_IMPORTS 100000u
#define TB__WASM_MAX_EXPORTS 100000u
#define TB__WASM_MAX_GLOBALS 1000000u
#define TB__WASM_MAX_TABLES 100000u
#define TB__WASM_MAX_SEGMENTS 100000u
#define TB__WASM_MAX_PARAMS 1000u
#define TB__WASM_MAX_RESULTS 1000u
#define TB__WASM_MAX_LOCALS 50000u /* per function, params included */
#define TB__WASM_MAX_BODY (8u << 20)

/* ---- Types ---- */

/* A function type as the module declares it. `types` holds params then results. */
typedef struct tb__wfunctype {
  uint32_t nparams, nresults;
  tb_wasm_valtype_t *types;
  uint32_t id; /* engine-wide canonical id: equal types have equal ids (tb__wasm_type_intern) */
} tb__wfunctype_t;

typedef struct tb__wtabletype {
  tb_wasm_valtype_t elem; /* funcref or externref */
  tb_wasm_limits_t limits;
} tb__wtabletype_t;

typedef struct tb__wglobaltype {
  tb_wasm_valtype_t type;
  bool mutable_;
} tb__wglobaltype_t;

/*
 * A constant expression. Wasm 2.0 allows exactly one instruction before `end`:
 * t.const, ref.null, ref.func or global.get (of an imported global, or — per 2.0 —
 * any preceding immutable global), so it is stored decoded.
 */
typedef enum tb__wconst_op {
  TB__WCONST_I32 = 0x41,
  TB__WCONST_I64 = 0x42,
  TB__WCONST_F32 = 0x43,
  TB__WCONST_F64 = 0x44,
  TB__WCONST_V128 = 0xfd,
  TB__WCONST_GLOBAL_GET = 0x23,
  TB__WCONST_REF_NULL = 0xd0,
  TB__WCONST_REF_FUNC = 0xd2,
} tb__wconst_op_t;

typedef struct tb__wconstexpr {
  tb__wconst_op_t op;
  tb_wasm_valtype_t type; /* the value's type (for ref.null: the reftype) */
  uint64_t bits;          /* the constant's bits, or the global/function index */
  uint64_t bits_hi;       /* v128 high half */
} tb__wconstexpr_t;

/* ---- The module, as decoded ---- */

typedef struct tb__wimport {
  const char *module, *name; /* NUL-terminated copies (owned by the module) */
  uint32_t module_len, name_len;
  tb_wasm_extern_kind_t kind;
  uint32_t index; /* in the kind's index space (imports come first in each) */
  uint32_t type_index;          /* FUNC: index into module->types */
  tb__wtabletype_t table;       /* TABLE */
  tb_wasm_limits_t memory;      /* MEMORY, in pages */
  tb__wglobaltype_t global;     /* GLOBAL */
} tb__wimport_t;

typedef struct tb__wexport {
  const char *name;
  uint32_t name_len;
  tb_wasm_extern_kind_t kind;
  uint32_t index;
} tb__wexport_t;

typedef struct tb__wcode tb__wcode_t;

/* Every function, imported or defined, in one index space (imports first). */
typedef struct tb__wfuncdecl {
  uint32_t type_index;
  bool imported;
  /* Defined functions only: */
  uint32_t nlocals;                 /* declared locals, params excluded */
  tb_wasm_valtype_t *local_types;   /* nlocals entries (owned) */
  const uint8_t *body, *body_end;   /* instructions after the locals, up to and including the final `end` */
  uint32_t body_offset;             /* offset of `body` in the binary, for error messages and traps */
  tb__wcode_t *code;                /* the compiled form, filled by compile.c */
} tb__wfuncdecl_t;

typedef struct tb__wglobal {
  tb__wglobaltype_t type;
  tb__wconstexpr_t init; /* defined globals only */
} tb__wglobal_t;

typedef enum tb__wseg_mode { TB__WSEG_ACTIVE = 0, TB__WSEG_PASSIVE, TB__WSEG_DECLARATIVE } tb__wseg_mode_t;

typedef struct tb__welem {
  tb__wseg_mode_t mode;
  tb_wasm_valtype_t type; /* funcref or externref */
  uint32_t table;         /* active */
  tb__wconstexpr_t offset;/* active */
  uint32_t count;
  tb__wconstexpr_t *items; /* count entries: ref.func i, ref.null t, or global.get */
} tb__welem_t;

typedef struct tb__wdata {
  tb__wseg_mode_t mode; /* active or passive */
  uint32_t memory;
  tb__wconstexpr_t offset;
  const uint8_t *bytes; /* points into module->bytes */
  uint32_t len;
} tb__wdata_t;

typedef struct tb__wcustom {
  const char *name; /* owned copy */
  uint32_t name_len;
  const uint8_t *bytes; /* into module->bytes */
  uint32_t len;
} tb__wcustom_t;

struct tb_wasm_module {
  tb_wasm_engine_t *engine;
  uint8_t *bytes; /* owned copy of the binary; bodies, data and custom sections point into it */
  size_t len;

  tb__wfunctype_t *types;
  uint32_t ntypes;
  tb__wimport_t *imports;
  uint32_t nimports;
  tb__wfuncdecl_t *funcs; /* imported first */
  uint32_t nfuncs, nimported_funcs;
  tb__wtabletype_t *tables;
  uint32_t ntables, nimported_tables;
  tb_wasm_limits_t *mems;
  uint32_t nmems, nimported_mems;
  tb__wglobal_t *globals;
  uint32_t nglobals, nimported_globals;
  tb__wexport_t *exports;
  uint32_t nexports;
  bool has_start;
  uint32_t start;
  tb__welem_t *elems;
  uint32_t nelems;
  tb__wdata_t *datas;
  uint32_t ndatas;
  bool has_data_count;
  uint32_t data_count;
  tb__wcustom_t *customs;
  uint32_t ncustoms;
  /* C.refs: functions named outside function bodies (exports, elements, globals); ref.func
   * in a body may only name these. One bit per function. */
  uint8_t *declared_refs;
  /* The "name" section, if present and well-formed (a malformed one is ignored, as the
   * spec says for custom sections). */
  char **func_names; /* nfuncs entries, NULL where unnamed (owned) */
};

/** Decodes `module->bytes` into the structures above (no body validation). */
int tb__wasm_decode(tb_wasm_module_t *module, tb_errbuf_t *eb);
/** Validates and compiles every defined function body (compile.c). */
int tb__wasm_compile(tb_wasm_module_t *module, tb_errbuf_t *eb);
/** Frees everything decode and compile allocated, and the module. */
void tb__wasm_module_release(tb_wasm_module_t *module);
/** Frees one function's compiled code (compile.c); called by tb__wasm_module_release. */
void tb__wasm_code_free(tb__wcode_t *code);

/** The canonical id of a function type; equal signatures get equal ids (engine-wide). */
int tb__wasm_type_intern(tb_wasm_engine_t *engine, const tb_wasm_valtype_t *types, uint32_t nparams,
                         uint32_t nresults, uint32_t *id);

/* ---- Compiled code ---- */

/*
 * The internal code is a sequence of 8-byte cells. Each instruction starts with a cell
 * holding its handler's address (computed goto); its operands follow, two 32-bit slot
 * indices per cell, then any 64-bit immediates and branch targets (cell pointers).
 * Slots are the 8-byte cells of the frame: params, then locals, then the operand stack.
 * The exact encoding is private to compile.c and interp.c (tb__wop_* in interp_ops.h).
 */
typedef union tb__wcell {
  const void *op;
  const union tb__wcell *target;
  uint64_t u64;
  int64_t i64;
  struct {
    uint32_t a, b;
  } s;
  void *ptr;
} tb__wcell_t;

/* Where a trap at a given code position happened in the binary. */
typedef struct tb__wsrcmap {
  uint32_t cell;   /* index of the instruction's first cell */
  uint32_t offset; /* byte offset in the module binary */
} tb__wsrcmap_t;

struct tb__wcode {
  tb__wcell_t *cells;
  uint32_t ncells;
  uint32_t nparams, nresults;
  uint32_t nlocals;     /* params + declared locals: the slots zeroed/filled at entry */
  uint32_t frame_slots; /* all slots the frame may use: locals + the deepest operand stack + scratch */
  uint32_t func_index;
  tb__wsrcmap_t *srcmap; /* sorted by cell; instructions that can trap */
  uint32_t nsrcmap;
};

/* ---- Runtime objects ---- */

struct tb_wasm_memory {
  uint8_t *base;      /* reservation of `reserved` bytes; [0, size) is read-write */
  uint64_t size;      /* bytes */
  uint64_t max_pages; /* the declared max, clamped by engine and store limits */
  uint64_t reserved;  /* bytes of address space reserved, so base never moves */
  bool has_max;       /* the declared limits, for import matching */
  uint64_t declared_max;
  tb_wasm_store_t *store;
  struct tb_wasm_memory *next; /* the store's list */
};

/* A reference in a table or slot: a function, an extern pointer, or NULL. */
typedef void *tb__wref_t;

struct tb_wasm_table {
  tb__wref_t *elems;
  uint32_t size, max;     /* max: what it may grow to (declared, clamped by the engine) */
  bool has_max;           /* the declared limits, for import matching */
  uint64_t declared_max;
  tb_wasm_valtype_t elem;
  tb_wasm_store_t *store;
  struct tb_wasm_table *next;
};

struct tb_wasm_global {
  uint64_t value[2]; /* value[1] only for v128 */
  tb_wasm_valtype_t type;
  bool mutable_;
  struct tb_wasm_global *next;
};

struct tb_wasm_func {
  uint32_t type_id;              /* canonical, for call_indirect */
  tb_wasm_functype_t type;       /* views into `type_storage` or the module's type */
  tb_wasm_instance_t *inst;      /* NULL for host functions */
  const tb__wcode_t *code;       /* wasm functions */
  uint32_t index;                /* in the instance's function index space */
  tb_wasm_host_fn host;          /* host functions */
  void *env;
  tb_wasm_valtype_t *type_storage; /* host functions: owned copy of the type */
  struct tb_wasm_func *next;
};

struct tb_wasm_instance {
  const tb_wasm_module_t *module;
  tb_wasm_store_t *store;
  tb_wasm_func_t **funcs;     /* nfuncs: imports resolved, then own_funcs */
  tb_wasm_func_t *own_funcs;  /* the defined functions */
  tb_wasm_memory_t **mems;
  tb_wasm_table_t **tables;
  tb_wasm_global_t **globals;
  uint8_t *elem_dropped; /* per element segment */
  uint8_t *data_dropped; /* per data segment */
  struct tb_wasm_instance *next;
};

/* A saved call frame: where to resume the caller. */
typedef struct tb__wframe {
  const tb__wcell_t *ip;
  uint64_t *fp;
  tb_wasm_func_t *func;
} tb__wframe_t;

struct tb_wasm_store {
  tb_wasm_engine_t *engine;
  void *data;
  atomic_int interrupt;   /* non-zero: trap at the next back-edge or call */
  uint32_t memory_limit;  /* pages, 0 = engine's */
  uint64_t *stack;        /* value stack: engine->cfg.value_stack_slots slots, allocated on first call */
  uint64_t *stack_end;
  uint64_t *stack_top;    /* first free slot: nested calls (host -> guest) start here */
  tb__wframe_t *frames;   /* call stack: engine->cfg.max_call_depth entries */
  uint32_t depth;         /* frames in use */
  tb_wasm_instance_t *instances;
  tb_wasm_func_t *funcs;
  tb_wasm_memory_t *memories;
  tb_wasm_table_t *tables;
  tb_wasm_global_t *globals;
};

struct tb_wasm_engine {
  tb_wasm_config_t cfg;
  void *types; /* the type registry (runtime.c), behind its own lock */
};

struct tb_wasm_caller {
  tb_wasm_store_t *store;
  tb_wasm_instance_t *inst;
  tb_wasm_trap_t *trap;
};

/**
 * Runs `f` on the store's stack with `args` (nparams slots) and writes its results
 * (nresults slots) to `results`; the two may alias. Returns 0, or TB_ETRAP with *trap
 * filled (kind, message, function index, offset). Implemented by interp.c.
 */
int tb__wasm_invoke(tb_wasm_store_t *store, tb_wasm_func_t *f, const uint64_t *args, uint64_t *results,
                    tb_wasm_trap_t *trap);

/** Fills *trap for `kind` at function `func_index`, byte offset `offset`; returns TB_ETRAP. */
int tb__wasm_trap(tb_wasm_trap_t *trap, tb_wasm_trap_kind_t kind, uint32_t func_index, uint32_t offset);

/** memory.grow's semantics: old size in pages, or -1 (limits, or no address space). */
int64_t tb__wasm_memory_grow(tb_wasm_memory_t *mem, uint64_t delta_pages);
/** table.grow's semantics: old size, or -1. Fills new elements with `init`. */
int64_t tb__wasm_table_grow(tb_wasm_table_t *t, uint64_t delta, tb__wref_t init);

#endif /* TB_WASM_INT_H */
