/*
 * interp.c — the third stage of the wasm engine: runs the internal code compile.c
 * produced (wasm_int.h, instruction set in interp_ops.h) on a store's value stack.
 *
 * One function, run(), holds every handler; each ends by jumping to the next one's
 * address (`goto *ip->op`, GNU labels-as-values), so there is no central switch and
 * each handler's indirect jump is predicted on its own. The instruction pointer, the
 * frame pointer, the current instance's memory base and size live in run()'s locals so
 * the compiler keeps them in registers.
 *
 * Frames sit on the store's value stack: a callee's frame begins at the caller's slot
 * holding its first argument, so calls copy nothing, and results come back in the
 * callee's slots 0..n-1, which are where the caller wants them. What a return needs
 * (resume ip, caller fp, caller function) goes on store->frames, so wasm-to-wasm calls
 * never recurse on the C stack; both stacks are bounded and overflowing either is the
 * trap "call stack exhausted". Host functions are called directly with their
 * arguments in place; they may re-enter through tb__wasm_invoke, which starts a new
 * run() above the caller's frame.
 *
 * Every trap leaves through one path that maps ip to a byte offset through the
 * function's srcmap and unwinds what this invocation pushed.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "interp_ops.h"
#include "tb/alloc.h"
#include "tb/err.h"
#include "wasm_int.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- Values in slots ---- */

static inline float f32_of(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}
static inline uint32_t bits_f32(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}
static inline double f64_of(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}
static inline uint64_t bits_f64(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

#define CT_I32 uint32_t
#define CT_I64 uint64_t
#define CT_F32 float
#define CT_F64 double
#define CT_F32B uint32_t
#define CT_F64B uint64_t
#define RD_I32(v) ((uint32_t)(v))
#define RD_I64(v) ((uint64_t)(v))
#define RD_F32(v) f32_of((uint32_t)(v))
#define RD_F64(v) f64_of(v)
#define RD_F32B(v) ((uint32_t)(v))
#define RD_F64B(v) ((uint64_t)(v))
#define WR_I32(x) ((uint64_t)(uint32_t)(x))
#define WR_I64(x) ((uint64_t)(x))
#define WR_F32(x) ((uint64_t)bits_f32(x))
#define WR_F64(x) bits_f64(x)
#define WR_F32B(x) ((uint64_t)(uint32_t)(x))
#define WR_F64B(x) ((uint64_t)(x))
/* A loaded value of C type ct, as a slot. */
#define WL_I32(x) ((uint64_t)(uint32_t)(x))
#define WL_I64(x) ((uint64_t)(x))
#define WL_F32(x) ((uint64_t)(uint32_t)(x))
#define WL_F64(x) ((uint64_t)(x))

/* ---- Numeric helpers the X lists call ---- */

static inline uint32_t rotl32(uint32_t a, uint32_t b) { return (a << (b & 31)) | (a >> ((32 - b) & 31)); }
static inline uint32_t rotr32(uint32_t a, uint32_t b) { return (a >> (b & 31)) | (a << ((32 - b) & 31)); }
static inline uint64_t rotl64(uint64_t a, uint64_t b) { return (a << (b & 63)) | (a >> ((64 - b) & 63)); }
static inline uint64_t rotr64(uint64_t a, uint64_t b) { return (a >> (b & 63)) | (a << ((64 - b) & 63)); }

/* Rounding functions may return a signalling NaN operand as is; the spec wants it quiet. */
static inline float fq32(float r, float a) { return a != a ? a + a : r; }
static inline double fq64(double r, double a) { return a != a ? a + a : r; }

/* min/max: NaN if either is NaN; -0 < +0. */
static inline float fmin32(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) return bits_f32(a) & 0x80000000u ? a : b;
  return a < b ? a : b;
}
static inline float fmax32(float a, float b) {
  if (a != a || b != b) return a + b;
  if (a == b) return bits_f32(a) & 0x80000000u ? b : a;
  return a > b ? a : b;
}
static inline double fmin64(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return bits_f64(a) & 0x8000000000000000u ? a : b;
  return a < b ? a : b;
}
static inline double fmax64(double a, double b) {
  if (a != a || b != b) return a + b;
  if (a == b) return bits_f64(a) & 0x8000000000000000u ? b : a;
  return a > b ? a : b;
}

/* Saturating truncation; floats widen to double exactly. */
static inline uint32_t sat_i32_s(double x) {
  if (x != x) return 0;
  if (x <= -2147483648.0) return 0x80000000u;
  if (x >= 2147483647.0) return 0x7fffffffu;
  return (uint32_t)(int32_t)x;
}
static inline uint32_t sat_i32_u(double x) {
  if (x != x || x <= -1.0) return 0;
  if (x >= 4294967295.0) return 0xffffffffu;
  return (uint32_t)x;
}
static inline uint64_t sat_i64_s(double x) {
  if (x != x) return 0;
  if (x <= -9223372036854775808.0) return 0x8000000000000000u;
  if (x >= 9223372036854775808.0) return 0x7fffffffffffffffu;
  return (uint64_t)(int64_t)x;
}
static inline uint64_t sat_i64_u(double x) {
  if (x != x || x <= -1.0) return 0;
  if (x >= 18446744073709551616.0) return 0xffffffffffffffffu;
  return (uint64_t)x;
}

/* ---- Traps ---- */

static uint32_t src_offset(const tb__wcode_t *code, const tb__wcell_t *ip) {
  if (code == NULL || code->nsrcmap == 0) return 0;
  uint32_t cell = (uint32_t)(ip - code->cells), lo = 0, hi = code->nsrcmap;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (code->srcmap[mid].cell <= cell) lo = mid;
    else hi = mid;
  }
  return code->srcmap[lo].offset;
}

/* An element segment's item i, evaluated for table.init. */
static tb__wref_t elem_item(const tb_wasm_instance_t *inst, const tb__wconstexpr_t *e) {
  switch (e->op) {
  case TB__WCONST_REF_FUNC:
    return inst->funcs[e->bits];
  case TB__WCONST_GLOBAL_GET:
    return (tb__wref_t)(uintptr_t)inst->globals[e->bits]->value[0];
  default:
    return NULL;
  }
}

static const tb_wasm_memory_t no_memory; /* stands in for memory 0 when there is none */

/* ---- The interpreter ---- */

/*
 * Runs `f` (a wasm function) whose arguments are already in fp[0..]. With store ==
 * NULL, only stores the handler table in *table and returns.
 */
static int run(tb_wasm_store_t *store, tb_wasm_func_t *f, uint64_t *fp, tb_wasm_trap_t *trap,
               const void *const **table) {
  static const void *const handlers[TB__WOP_COUNT] = {
#define H1(name, ...) [TB__WOP_##name] = &&L_##name,
#define HBINI(name, ...) [TB__WOP_##name] = &&L_##name, [TB__WOP_##name##_imm] = &&L_##name##_imm,
#define HLOAD(name, ...)                                                                                    \
  [TB__WOP_##name] = &&L_##name, [TB__WOP_##name##_ai] = &&L_##name##_ai, [TB__WOP_##name##_aa] = &&L_##name##_aa, \
  [TB__WOP_##name##_ait] = &&L_##name##_ait, [TB__WOP_##name##_aat] = &&L_##name##_aat,
#define HSTORE(name, ...)                                                                                   \
  [TB__WOP_##name] = &&L_##name, [TB__WOP_##name##_ai] = &&L_##name##_ai, [TB__WOP_##name##_vi] = &&L_##name##_vi, \
  [TB__WOP_##name##_aa] = &&L_##name##_aa, [TB__WOP_##name##_vai] = &&L_##name##_vai,
#define HCMP(name, ...)                                                                                     \
  [TB__WOP_##name] = &&L_##name, [TB__WOP_##name##_imm] = &&L_##name##_imm, [TB__WOP_br_##name] = &&L_br_##name, \
  [TB__WOP_br_##name##_imm] = &&L_br_##name##_imm, [TB__WOP_br_##name##_loop] = &&L_br_##name##_loop,             \
  [TB__WOP_br_##name##_imm_loop] = &&L_br_##name##_imm_loop, [TB__WOP_br_add_##name##_imm_loop] = &&L_br_add_##name##_imm_loop, \
  [TB__WOP_br_addi_##name##_loop] = &&L_br_addi_##name##_loop, [TB__WOP_br_adds_##name##_loop] = &&L_br_adds_##name##_loop,
      TB__WOPS_MISC(H1) TB__WOPS_UNARY(H1) TB__WOPS_SAT(H1) TB__WOPS_TRUNC(H1) TB__WOPS_BINARY(H1)
          TB__WOPS_BINI(HBINI) TB__WOPS_CMP(HCMP) TB__WOPS_DIV(H1) TB__WOPS_LOAD(HLOAD) TB__WOPS_STORE(HSTORE)};
  if (store == NULL) {
    *table = handlers;
    return 0;
  }

  /* Only ip, fp and the memory are locals: every handler needs them. What calls,
   * returns, globals and tables need lives in `st`, in memory: with fewer values live
   * across every dispatch, compilers (clang especially) keep those four in registers
   * instead of reloading and shuffling spilled values at the top of each handler. */
  struct {
    tb_wasm_func_t *cur;         /* the running function */
    tb_wasm_instance_t *inst;    /* its instance */
    const tb_wasm_memory_t *mem0;
    tb__wframe_t *ftop, *fentry; /* frames in use: [store->frames, ftop); this run's from fentry */
    tb__wframe_t *flimit;
    uint64_t *stack_end;
    atomic_int *intr;
    uint8_t *mbase;
    uint64_t msize;
  } st;
  __asm__ volatile("" : : "r"(&st) : "memory"); /* keep it in memory */
  const tb__wcell_t *ip;
  st.cur = f;
  st.inst = f->inst;
  st.mem0 = st.inst->module->nmems ? st.inst->mems[0] : &no_memory;
#if defined(__clang__)
  /* clang copies values live across the dispatch between registers at the top of each
   * handler when handlers can change them; the memory base and size stay in `st`. */
#define mbase st.mbase
#define msize st.msize
#else
  uint8_t *mbase;
  uint64_t msize;
#endif
  mbase = st.mem0->base;
  msize = st.mem0->size;
  const uint32_t base_depth = store->depth;
  st.ftop = store->frames + base_depth;
  st.flimit = store->frames + store->engine->cfg.max_call_depth;
  st.stack_end = store->stack_end;
  st.intr = &store->interrupt;
  uint64_t *const entry_top = store->stack_top;
  tb_wasm_trap_kind_t tk = TB_WASM_TRAP_NONE;
  tb_wasm_func_t *callee;
  uint64_t *args;
  const tb__wcell_t *next;
  int host_rc = 0;

  /* The entry counts as a frame, so host <-> guest recursion is bounded too. */
  if (st.ftop >= st.flimit) {
    ip = f->code->cells;
    tk = TB_WASM_TRAP_STACK_EXHAUSTED;
    goto trap;
  }
  *st.ftop++ = (tb__wframe_t){NULL, fp, NULL};
  st.fentry = st.ftop;
  ip = f->code->cells;

#define NEXT() goto *ip->op
#define TRAP(kind)        \
  do {                    \
    tk = (kind);          \
    goto trap;            \
  } while (0)
#define CHECK_INTERRUPT()                                                                \
  do {                                                                                   \
    if (UNLIKELY(atomic_load_explicit(st.intr, memory_order_relaxed))) TRAP(TB_WASM_TRAP_INTERRUPTED); \
  } while (0)
#define RELOAD_MEMORY()                                                  \
  do {                                                                   \
    st.mem0 = st.inst->module->nmems ? st.inst->mems[0] : &no_memory;             \
    mbase = st.mem0->base;                                                  \
    msize = st.mem0->size;                                                  \
  } while (0)
#define A1 ip[1].s.a
#define B1 ip[1].s.b
#define A2 ip[2].s.a
#define B2 ip[2].s.b

  NEXT();

  /* ---- Numeric handlers, generated from interp_ops.h ---- */

#define GEN_UN(name, opc, ti, to, expr) \
  L_##name : {                          \
    CT_##ti a = RD_##ti(fp[B1]);        \
    fp[A1] = WR_##to(expr);             \
    ip += 2;                            \
    NEXT();                             \
  }
  TB__WOPS_UNARY(GEN_UN)
  TB__WOPS_SAT(GEN_UN)

#define GEN_TRUNC(name, opc, ti, to, lo, hi, ct)                          \
  L_##name : {                                                            \
    CT_##ti a = RD_##ti(fp[B1]);                                          \
    if (UNLIKELY(a != a)) TRAP(TB_WASM_TRAP_INVALID_CONVERSION);          \
    if (UNLIKELY(!(a > (lo) && a < (hi)))) TRAP(TB_WASM_TRAP_INT_OVERFLOW); \
    fp[A1] = WR_##to((ct)a);                                              \
    ip += 2;                                                              \
    NEXT();                                                               \
  }
  TB__WOPS_TRUNC(GEN_TRUNC)

#define GEN_BIN(name, opc, ti, to, expr)               \
  L_##name : {                                         \
    CT_##ti a = RD_##ti(fp[B1]), b = RD_##ti(fp[A2]);  \
    fp[A1] = WR_##to(expr);                            \
    ip += 3;                                           \
    NEXT();                                            \
  }
#define GEN_BINI(name, opc, ti, to, expr)                \
  GEN_BIN(name, opc, ti, to, expr)                       \
  L_##name##_imm : {                                     \
    CT_##ti a = RD_##ti(fp[B1]), b = RD_##ti(ip[2].u64); \
    fp[A1] = WR_##to(expr);                              \
    ip += 3;                                             \
    NEXT();                                              \
  }
  TB__WOPS_BINARY(GEN_BIN)
  TB__WOPS_BINI(GEN_BINI)

#define GEN_CMP(name, opc, ti, to, expr)                 \
  GEN_BINI(name, opc, ti, to, expr)                      \
  L_br_##name : {                                        \
    CT_##ti a = RD_##ti(fp[A1]), b = RD_##ti(fp[B1]);    \
    if (expr) ip = ip[2].target;                         \
    else ip += 3;                                        \
    NEXT();                                              \
  }                                                      \
  L_br_##name##_imm : {                                  \
    CT_##ti a = RD_##ti(fp[A1]), b = RD_##ti(ip[2].u64); \
    if (expr) ip = ip[3].target;                         \
    else ip += 4;                                        \
    NEXT();                                              \
  }                                                      \
  L_br_##name##_loop : {                                 \
    CT_##ti a = RD_##ti(fp[A1]), b = RD_##ti(fp[B1]);    \
    if (expr) {                                          \
      CHECK_INTERRUPT();                                 \
      ip = ip[2].target;                                 \
    } else {                                             \
      ip += 3;                                           \
    }                                                    \
    NEXT();                                              \
  }                                                      \
  L_br_##name##_imm_loop : {                             \
    CT_##ti a = RD_##ti(fp[A1]), b = RD_##ti(ip[2].u64); \
    if (expr) {                                          \
      CHECK_INTERRUPT();                                 \
      ip = ip[3].target;                                 \
    } else {                                             \
      ip += 4;                                           \
    }                                                    \
    NEXT();                                              \
  }                                                      \
  L_br_add_##name##_imm_loop : {                         \
    CT_##ti a = RD_##ti(fp[B1]) + RD_##ti(ip[2].u64);    \
    CT_##ti b = RD_##ti(ip[3].u64);                      \
    fp[A1] = WR_##ti(a);                                 \
    if (expr) {                                          \
      CHECK_INTERRUPT();                                 \
      ip = ip[4].target;                                 \
    } else {                                             \
      ip += 5;                                           \
    }                                                    \
    NEXT();                                              \
  }                                                      \
  L_br_addi_##name##_loop : {                            \
    CT_##ti a = RD_##ti(fp[B1]) + RD_##ti(ip[2].u64);    \
    fp[A1] = WR_##ti(a); /* before b: c may be d */      \
    CT_##ti b = RD_##ti(fp[ip[3].s.a]);                  \
    if (expr) {                                          \
      CHECK_INTERRUPT();                                 \
      ip = ip[4].target;                                 \
    } else {                                             \
      ip += 5;                                           \
    }                                                    \
    NEXT();                                              \
  }                                                      \
  L_br_adds_##name##_loop : {                            \
    CT_##ti a = RD_##ti(fp[B1]) + RD_##ti(fp[A2]);       \
    fp[A1] = WR_##ti(a);                                 \
    CT_##ti b = RD_##ti(fp[B2]);                         \
    if (expr) {                                          \
      CHECK_INTERRUPT();                                 \
      ip = ip[3].target;                                 \
    } else {                                             \
      ip += 4;                                           \
    }                                                    \
    NEXT();                                              \
  }
  TB__WOPS_CMP(GEN_CMP)

  L_i32_div_s : {
    uint32_t a = (uint32_t)fp[B1], b = (uint32_t)fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    if (UNLIKELY(a == 0x80000000u && b == 0xffffffffu)) TRAP(TB_WASM_TRAP_INT_OVERFLOW);
    fp[A1] = (uint32_t)((int32_t)a / (int32_t)b);
    ip += 3;
    NEXT();
  }
  L_i32_div_u : {
    uint32_t a = (uint32_t)fp[B1], b = (uint32_t)fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    fp[A1] = a / b;
    ip += 3;
    NEXT();
  }
  L_i32_rem_s : {
    uint32_t a = (uint32_t)fp[B1], b = (uint32_t)fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    fp[A1] = b == 0xffffffffu ? 0 : (uint32_t)((int32_t)a % (int32_t)b);
    ip += 3;
    NEXT();
  }
  L_i32_rem_u : {
    uint32_t a = (uint32_t)fp[B1], b = (uint32_t)fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    fp[A1] = a % b;
    ip += 3;
    NEXT();
  }
  L_i64_div_s : {
    uint64_t a = fp[B1], b = fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    if (UNLIKELY(a == 0x8000000000000000u && b == 0xffffffffffffffffu)) TRAP(TB_WASM_TRAP_INT_OVERFLOW);
    fp[A1] = (uint64_t)((int64_t)a / (int64_t)b);
    ip += 3;
    NEXT();
  }
  L_i64_div_u : {
    uint64_t a = fp[B1], b = fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    fp[A1] = a / b;
    ip += 3;
    NEXT();
  }
  L_i64_rem_s : {
    uint64_t a = fp[B1], b = fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    fp[A1] = b == 0xffffffffffffffffu ? 0 : (uint64_t)((int64_t)a % (int64_t)b);
    ip += 3;
    NEXT();
  }
  L_i64_rem_u : {
    uint64_t a = fp[B1], b = fp[A2];
    if (UNLIKELY(b == 0)) TRAP(TB_WASM_TRAP_DIV_ZERO);
    fp[A1] = a % b;
    ip += 3;
    NEXT();
  }

  /* ---- Memory: ea = zero-extended address + offset, checked against the size ---- */

#define GEN_LOAD(name, opc, t, n, ct, al)                               \
  L_##name : {                                                          \
    uint64_t ea = (uint64_t)(uint32_t)fp[B1] + ip[2].u64;               \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v;                                                               \
    memcpy(&v, mbase + ea, (n));                                        \
    fp[A1] = WL_##t(v);                                                 \
    ip += 3;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_ai : {                                                     \
    uint64_t ea = (uint64_t)(uint32_t)((uint32_t)fp[B1] + B2) + A2;     \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v;                                                               \
    memcpy(&v, mbase + ea, (n));                                        \
    fp[A1] = WL_##t(v);                                                 \
    ip += 3;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_aa : {                                                     \
    uint64_t ea = (uint64_t)(uint32_t)((uint32_t)fp[B1] + (uint32_t)fp[A2]) + B2; \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v;                                                               \
    memcpy(&v, mbase + ea, (n));                                        \
    fp[A1] = WL_##t(v);                                                 \
    ip += 3;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_ait : {                                                    \
    uint32_t addr = (uint32_t)fp[B1] + B2;                              \
    uint64_t ea = (uint64_t)addr + A2;                                  \
    fp[ip[3].s.a] = addr;                                               \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v;                                                               \
    memcpy(&v, mbase + ea, (n));                                        \
    fp[A1] = WL_##t(v);                                                 \
    ip += 4;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_aat : {                                                    \
    uint32_t addr = (uint32_t)fp[B1] + (uint32_t)fp[A2];                \
    uint64_t ea = (uint64_t)addr + B2;                                  \
    fp[ip[3].s.a] = addr;                                               \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v;                                                               \
    memcpy(&v, mbase + ea, (n));                                        \
    fp[A1] = WL_##t(v);                                                 \
    ip += 4;                                                            \
    NEXT();                                                             \
  }
  TB__WOPS_LOAD(GEN_LOAD)

#define GEN_STORE(name, opc, t, n, ct, al)                              \
  L_##name : {                                                          \
    uint64_t ea = (uint64_t)(uint32_t)fp[A1] + ip[2].u64;               \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v = (ct)fp[B1];                                                  \
    memcpy(mbase + ea, &v, (n));                                        \
    ip += 3;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_ai : {                                                     \
    uint64_t ea = (uint64_t)(uint32_t)((uint32_t)fp[A1] + B2) + A2;     \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v = (ct)fp[B1];                                                  \
    memcpy(mbase + ea, &v, (n));                                        \
    ip += 3;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_aa : {                                                     \
    uint64_t ea = (uint64_t)(uint32_t)((uint32_t)fp[A1] + (uint32_t)fp[A2]) + B2; \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v = (ct)fp[B1];                                                  \
    memcpy(mbase + ea, &v, (n));                                        \
    ip += 3;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_vi : {                                                     \
    uint64_t ea = (uint64_t)(uint32_t)fp[A1] + ip[2].u64;               \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v = (ct)ip[3].u64;                                               \
    memcpy(mbase + ea, &v, (n));                                        \
    ip += 4;                                                            \
    NEXT();                                                             \
  }                                                                     \
  L_##name##_vai : {                                                    \
    uint64_t ea = (uint64_t)(uint32_t)((uint32_t)fp[A1] + B1) + ip[2].u64; \
    if (UNLIKELY(ea + (n) > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);      \
    ct v = (ct)ip[3].u64;                                               \
    memcpy(mbase + ea, &v, (n));                                        \
    ip += 4;                                                            \
    NEXT();                                                             \
  }
  TB__WOPS_STORE(GEN_STORE)

  L_memory_size : {
    fp[A1] = (uint32_t)(msize / TB__WASM_PAGE);
    ip += 2;
    NEXT();
  }
  L_memory_grow : {
    int64_t r = tb__wasm_memory_grow((tb_wasm_memory_t *)st.mem0, (uint32_t)fp[B1]);
    RELOAD_MEMORY();
    fp[A1] = (uint32_t)r;
    ip += 2;
    NEXT();
  }
  L_memory_fill : { /* [d,v][n,-] */
    uint64_t d = (uint32_t)fp[A1], n = (uint32_t)fp[A2];
    if (UNLIKELY(d + n > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);
    if (n) memset(mbase + d, (int)(uint8_t)fp[B1], n);
    ip += 3;
    NEXT();
  }
  L_memory_copy : { /* [d,s][n,-] */
    uint64_t d = (uint32_t)fp[A1], s = (uint32_t)fp[B1], n = (uint32_t)fp[A2];
    if (UNLIKELY(d + n > msize || s + n > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);
    if (n) memmove(mbase + d, mbase + s, n);
    ip += 3;
    NEXT();
  }
  L_memory_init : { /* [d,s][n,seg] */
    const tb__wdata_t *seg = &st.inst->module->datas[B2];
    uint64_t d = (uint32_t)fp[A1], s = (uint32_t)fp[B1], n = (uint32_t)fp[A2];
    uint64_t len = st.inst->data_dropped[B2] ? 0 : seg->len;
    if (UNLIKELY(s + n > len || d + n > msize)) TRAP(TB_WASM_TRAP_MEMORY_OOB);
    if (n) memcpy(mbase + d, seg->bytes + s, n);
    ip += 3;
    NEXT();
  }
  L_data_drop : {
    st.inst->data_dropped[A1] = 1;
    ip += 2;
    NEXT();
  }

  /* ---- Tables and references ---- */

  L_table_get : { /* [d,i][table,-] */
    const tb_wasm_table_t *t = st.inst->tables[A2];
    uint32_t i = (uint32_t)fp[B1];
    if (UNLIKELY(i >= t->size)) TRAP(TB_WASM_TRAP_TABLE_OOB);
    fp[A1] = (uint64_t)(uintptr_t)t->elems[i];
    ip += 3;
    NEXT();
  }
  L_table_set : { /* [i,v][table,-] */
    tb_wasm_table_t *t = st.inst->tables[A2];
    uint32_t i = (uint32_t)fp[A1];
    if (UNLIKELY(i >= t->size)) TRAP(TB_WASM_TRAP_TABLE_OOB);
    t->elems[i] = (tb__wref_t)(uintptr_t)fp[B1];
    ip += 3;
    NEXT();
  }
  L_table_size : {
    fp[A1] = st.inst->tables[B1]->size;
    ip += 2;
    NEXT();
  }
  L_table_grow : { /* [d,init][n,table] */
    int64_t r = tb__wasm_table_grow(st.inst->tables[B2], (uint32_t)fp[A2], (tb__wref_t)(uintptr_t)fp[B1]);
    fp[A1] = (uint32_t)r;
    ip += 3;
    NEXT();
  }
  L_table_fill : { /* [i,v][n,table] */
    tb_wasm_table_t *t = st.inst->tables[B2];
    uint64_t i = (uint32_t)fp[A1], n = (uint32_t)fp[A2];
    if (UNLIKELY(i + n > t->size)) TRAP(TB_WASM_TRAP_TABLE_OOB);
    tb__wref_t v = (tb__wref_t)(uintptr_t)fp[B1];
    for (uint64_t k = 0; k < n; k++) t->elems[i + k] = v;
    ip += 3;
    NEXT();
  }
  L_table_copy : { /* [d,s][n,-][dtable,stable] */
    tb_wasm_table_t *dt = st.inst->tables[ip[3].s.a], *stab = st.inst->tables[ip[3].s.b];
    uint64_t d = (uint32_t)fp[A1], s = (uint32_t)fp[B1], n = (uint32_t)fp[A2];
    if (UNLIKELY(d + n > dt->size || s + n > stab->size)) TRAP(TB_WASM_TRAP_TABLE_OOB);
    if (n) memmove(dt->elems + d, stab->elems + s, n * sizeof *dt->elems);
    ip += 4;
    NEXT();
  }
  L_table_init : { /* [d,s][n,seg][table,-] */
    tb_wasm_table_t *t = st.inst->tables[ip[3].s.a];
    const tb__welem_t *seg = &st.inst->module->elems[B2];
    uint64_t d = (uint32_t)fp[A1], s = (uint32_t)fp[B1], n = (uint32_t)fp[A2];
    uint64_t len = st.inst->elem_dropped[B2] ? 0 : seg->count;
    if (UNLIKELY(s + n > len || d + n > t->size)) TRAP(TB_WASM_TRAP_TABLE_OOB);
    for (uint64_t k = 0; k < n; k++) t->elems[d + k] = elem_item(st.inst, &seg->items[s + k]);
    ip += 4;
    NEXT();
  }
  L_elem_drop : {
    st.inst->elem_dropped[A1] = 1;
    ip += 2;
    NEXT();
  }
  L_ref_func : {
    fp[A1] = (uint64_t)(uintptr_t)st.inst->funcs[B1];
    ip += 2;
    NEXT();
  }
  L_ref_is_null : {
    fp[A1] = fp[B1] == 0;
    ip += 2;
    NEXT();
  }

  /* ---- Variables ---- */

  L_mov : {
    fp[A1] = fp[B1];
    ip += 2;
    NEXT();
  }
  L_const : {
    fp[A1] = ip[2].u64;
    ip += 3;
    NEXT();
  }
  L_select : { /* [d,c][a,b] */
    fp[A1] = (uint32_t)fp[B1] ? fp[A2] : fp[B2];
    ip += 3;
    NEXT();
  }
  L_global_get : {
    fp[A1] = st.inst->globals[B1]->value[0];
    ip += 2;
    NEXT();
  }
  L_global_set : {
    st.inst->globals[B1]->value[0] = fp[A1];
    ip += 2;
    NEXT();
  }

  /* ---- Control ---- */

  L_nop : {
    ip += 1;
    NEXT();
  }
  L_unreachable : { TRAP(TB_WASM_TRAP_UNREACHABLE); }
  L_br : {
    ip = ip[1].target;
    NEXT();
  }
  L_br_loop : {
    CHECK_INTERRUPT();
    ip = ip[1].target;
    NEXT();
  }
#define GEN_BRIF(name, cond)        \
  L_##name : {                      \
    if (cond) ip = ip[2].target;    \
    else ip += 3;                   \
    NEXT();                         \
  }                                 \
  L_##name##_loop : {               \
    if (cond) {                     \
      CHECK_INTERRUPT();            \
      ip = ip[2].target;            \
    } else {                        \
      ip += 3;                      \
    }                               \
    NEXT();                         \
  }
  GEN_BRIF(br_if, (uint32_t)fp[A1] != 0)
  GEN_BRIF(br_unless, (uint32_t)fp[A1] == 0)
  GEN_BRIF(br_if64, fp[A1] != 0)
  GEN_BRIF(br_unless64, fp[A1] == 0)

  L_br_table : { /* [idx,n][T0]..[Tn-1][Tdefault] */
    uint32_t i = (uint32_t)fp[A1], n = B1;
    ip = ip[2 + (i < n ? i : n)].target;
    NEXT();
  }

  L_enter : { /* [frame_slots,nparams][nlocals,-] */
    if (UNLIKELY((size_t)(st.stack_end - fp) < A1)) TRAP(TB_WASM_TRAP_STACK_EXHAUSTED);
    CHECK_INTERRUPT();
    ip += 3;
    NEXT();
  }
  L_enter_z : {
    if (UNLIKELY((size_t)(st.stack_end - fp) < A1)) TRAP(TB_WASM_TRAP_STACK_EXHAUSTED);
    CHECK_INTERRUPT();
    /* Usually a handful of locals: a loop beats a call to memset. */
    for (uint64_t *p = fp + B1, *e = fp + A2; p < e; p++) *p = 0;
    ip += 3;
    NEXT();
  }

  L_call : { /* [slot,k][entry][frame_slots,nparams][nlocals,-]: own function k */
    /* The callee's `enter`, done here: entry is just past it. */
    uint64_t *nfp = fp + A1;
    if (UNLIKELY(st.ftop == st.flimit)) TRAP(TB_WASM_TRAP_STACK_EXHAUSTED);
    if (UNLIKELY((size_t)(st.stack_end - nfp) < ip[3].s.a)) TRAP(TB_WASM_TRAP_STACK_EXHAUSTED);
    CHECK_INTERRUPT();
    for (uint64_t *p = nfp + ip[3].s.b, *e = nfp + ip[4].s.a; p < e; p++) *p = 0;
    st.ftop->ip = ip + 5;
    st.ftop->fp = fp;
    st.ftop->func = st.cur;
    st.ftop++;
    fp = nfp;
    st.cur = &st.inst->own_funcs[B1];
    ip = ip[2].target;
    NEXT();
  }
  L_call_import : { /* [slot,func] */
    callee = st.inst->funcs[B1];
    args = fp + A1;
    next = ip + 2;
    goto call_other;
  }
  L_call_indirect : { /* [slot,i][table,typeid] */
    const tb_wasm_table_t *t = st.inst->tables[A2];
    uint32_t i = (uint32_t)fp[B1];
    if (UNLIKELY(i >= t->size)) TRAP(TB_WASM_TRAP_UNDEFINED_ELEMENT);
    callee = t->elems[i];
    if (UNLIKELY(callee == NULL)) TRAP(TB_WASM_TRAP_UNINITIALIZED_ELEMENT);
    if (UNLIKELY(callee->type_id != B2)) TRAP(TB_WASM_TRAP_INDIRECT_TYPE);
    args = fp + A1;
    next = ip + 3;
    if (LIKELY(callee->inst == st.inst)) {
      if (UNLIKELY(st.ftop == st.flimit)) TRAP(TB_WASM_TRAP_STACK_EXHAUSTED);
      st.ftop->ip = next;
      st.ftop->fp = fp;
      st.ftop->func = st.cur;
      st.ftop++;
      fp = args;
      st.cur = callee;
      ip = callee->code->cells;
      NEXT();
    }
    goto call_other;
  }

call_other:
  /* A host function, or a function of another instance. */
  if (callee->host) {
    tb_wasm_caller_t caller = {store, st.inst, trap};
    store->depth = (uint32_t)(st.ftop - store->frames);
    store->stack_top = fp + st.cur->code->frame_slots;
    trap->kind = TB_WASM_TRAP_NONE;
    host_rc = callee->host(&caller, callee->env, args, args);
    store->stack_top = entry_top;
    if (UNLIKELY(host_rc != 0)) goto host_trap;
    RELOAD_MEMORY();
    ip = next;
    NEXT();
  }
  /* Another instance's function: the frame's function pointer is tagged (low bit) so
   * that the return knows to switch the instance back. */
  if (UNLIKELY(st.ftop == st.flimit)) TRAP(TB_WASM_TRAP_STACK_EXHAUSTED);
  {
    st.ftop->ip = next;
    st.ftop->fp = fp;
    st.ftop->func = (tb_wasm_func_t *)((uintptr_t)st.cur | 1);
    st.ftop++;
    fp = args;
    st.cur = callee;
    st.inst = callee->inst;
    RELOAD_MEMORY();
    ip = callee->code->cells;
    NEXT();
  }

  L_ret1 : {
    fp[0] = fp[A1];
    goto do_return;
  }
  L_ret : {
  do_return:
    if (UNLIKELY(st.ftop == st.fentry)) goto done;
    st.ftop--;
    ip = st.ftop->ip;
    fp = st.ftop->fp;
    st.cur = st.ftop->func;
    /* Within an instance the memory is the same and msize already current (a grow in
     * the callee updated it); only a return across instances switches. */
    if (UNLIKELY((uintptr_t)st.cur & 1)) {
      st.cur = (tb_wasm_func_t *)((uintptr_t)st.cur & ~(uintptr_t)1);
      st.inst = st.cur->inst;
      RELOAD_MEMORY();
    }
    NEXT();
  }

done:
  store->depth = base_depth;
  store->stack_top = entry_top;
  return 0;

host_trap:
  /* The host filled *trap (tb_wasm_caller_trap/_exit), or failed without saying why. */
  if (trap->kind == TB_WASM_TRAP_NONE) {
    tb__wasm_trap(trap, TB_WASM_TRAP_HOST, 0, 0);
    snprintf(trap->msg, sizeof trap->msg, "host function failed: %s", tb_strerror(host_rc));
  }
  trap->func_index = st.cur->code->func_index;
  trap->offset = src_offset(st.cur->code, ip);
  store->depth = base_depth;
  store->stack_top = entry_top;
  return TB_ETRAP;

trap:
  store->depth = base_depth;
  store->stack_top = entry_top;
  return tb__wasm_trap(trap, tk, st.cur->code ? st.cur->code->func_index : 0, src_offset(st.cur->code, ip));
}

#if defined(__clang__)
#undef mbase
#undef msize
#endif

const void *const *tb__wasm_handlers(void) {
  const void *const *table = NULL;
  run(NULL, NULL, NULL, NULL, &table);
  return table;
}

int tb__wasm_invoke(tb_wasm_store_t *store, tb_wasm_func_t *f, const uint64_t *args, uint64_t *results,
                    tb_wasm_trap_t *trap) {
  tb_wasm_trap_t scratch;
  if (trap == NULL) trap = &scratch;
  trap->kind = TB_WASM_TRAP_NONE;
  if (f->host) {
    tb_wasm_caller_t caller = {store, NULL, trap};
    int rc = f->host(&caller, f->env, args, results);
    if (rc == 0) return 0;
    if (trap->kind == TB_WASM_TRAP_NONE) {
      tb__wasm_trap(trap, TB_WASM_TRAP_HOST, 0, 0);
      snprintf(trap->msg, sizeof trap->msg, "host function failed: %s", tb_strerror(rc));
    }
    return TB_ETRAP;
  }
  const tb__wcode_t *code = f->code;
  uint64_t *base = store->stack_top;
  uint32_t need = code->nparams > code->nresults ? code->nparams : code->nresults;
  if (store->stack == NULL || (size_t)(store->stack_end - base) < need)
    return tb__wasm_trap(trap, TB_WASM_TRAP_STACK_EXHAUSTED, code->func_index, 0);
  if (code->nparams) memmove(base, args, code->nparams * sizeof *base);
  int rc = run(store, f, base, trap, NULL);
  if (rc == 0 && code->nresults) memmove(results, base, code->nresults * sizeof *base);
  return rc;
}
