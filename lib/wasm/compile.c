/*
 * compile.c — the second stage of the wasm engine: every defined function body is
 * validated and compiled, in one pass, into the internal code that interp.c runs
 * (tb__wcode_t of wasm_int.h, instruction set in interp_ops.h).
 *
 * Validation is the spec's algorithm (Wasm 2.0 appendix, "Validation Algorithm"): an
 * operand stack of types, a stack of control frames, and the polymorphic stack of
 * unreachable code. Each operand stack entry also says where its value lives, which is
 * how the compiler gets three-address code out of a stack machine:
 *
 *   K_SLOT   the value is in the entry's home slot (stack height h lives in slot
 *            nlocal_slots + h, counted in 8-byte slots so that a v128 can take two);
 *   K_LOCAL  the value is whatever local `src` holds: local.get emits nothing;
 *   K_CONST  the value is `imm`: t.const emits nothing, and the consumer uses an
 *            immediate form when it has one.
 *
 * Lazy entries are turned into K_SLOT ("materialised": a mov or const into the home
 * slot) where the value must be somewhere definite: before the local they name is
 * overwritten, at control-flow merges (block entry, branches carrying values, block
 * ends), and for call arguments. The last instruction emitted is remembered, so that a
 * local.set/local.tee right after it rewrites its destination slot to the local, a
 * br_if/if right after an integer comparison becomes one compare-and-branch, a load or
 * store takes in the i32.add that computed its address, and a loop's back-edge takes in
 * the add of its counter. Finished code gets jump threading (branches to branches, and
 * to returns). docs/internals/WASM-ENGINE.md ("Internal code") tells the whole story.
 *
 * Calls need no argument copying: the arguments are the top of the operand stack, in
 * consecutive home slots, and the callee's frame begins at the first of them; results
 * come back in the same slots. Direct calls are resolved to the callee's code once the
 * whole module is compiled.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "interp_ops.h"
#include "tb/alloc.h"
#include "tb/err.h"
#include "wasm_int.h"

/* ---- Operand stack entries and control frames ---- */

enum { K_SLOT, K_LOCAL, K_CONST };

#define T_UNKNOWN 0u  /* the bottom type of unreachable code: matches anything */
#define T_ANY 0xffffu /* pop(): no expectation */

typedef struct opnd {
  uint32_t type; /* tb_wasm_valtype_t, or T_UNKNOWN */
  uint32_t kind;
  uint32_t slot; /* home slot */
  uint32_t src;  /* K_LOCAL: the local's slot */
  uint64_t imm;  /* K_CONST */
} opnd_t;

enum { C_BLOCK, C_LOOP, C_IF, C_ELSE, C_FUNC };

typedef struct ctrl {
  uint32_t kind;
  bool unreachable;   /* validation: the operand stack is polymorphic */
  bool dead_at_entry; /* no code ran to the start of this block */
  bool end_reached;   /* a live branch targets the end label */
  uint32_t height;    /* operand stack entries below the block's params */
  uint32_t slot_base; /* home slot of the entry at `height` */
  uint32_t nparams, nresults;
  const tb_wasm_valtype_t *params, *results;
  uint32_t loop_cell;  /* C_LOOP: the first cell of the loop */
  uint32_t patch;      /* forward branches to the end: chain of target cells (index + 1) */
  uint32_t else_patch; /* C_IF: the target cell of the branch to the else arm (index + 1) */
} ctrl_t;

/* What the condition of a br_if/if is: a plain value or a comparison to fuse. */
enum { CMP_NONE, CMP_SS, CMP_SI, CMP_EQZ32, CMP_EQZ64 };

typedef struct cmpinfo {
  uint32_t kind;
  uint32_t opc; /* wasm opcode of the comparison */
  uint32_t a, b;
  uint64_t imm;
} cmpinfo_t;

typedef struct fixup {
  uint32_t func, cell, callee;
} fixup_t;

typedef struct comp {
  tb_wasm_module_t *m;
  tb_errbuf_t *eb;
  const void *const *h; /* handler table */
  uint32_t fidx;
  const uint8_t *body, *p, *end, *op_start;
  uint32_t body_offset;

  /* locals: params first */
  uint32_t nlocals, nlocal_slots, nparam_slots;
  uint32_t *lslot;
  tb_wasm_valtype_t *ltype;
  uint32_t *lrefs;   /* per local slot: K_LOCAL entries on the stack naming it */
  uint32_t nlazy;    /* sum of lrefs */
  uint32_t results_slots;
  const tb_wasm_valtype_t *results;
  uint32_t nresults;

  opnd_t *stk;
  uint32_t nstk, capstk;
  uint32_t max_slot;
  ctrl_t *ctl;
  uint32_t nctl, capctl;

  tb__wcell_t *code;
  uint32_t ncode, capcode;
  uint32_t *relocs;
  uint32_t nrelocs, caprelocs;
  tb__wsrcmap_t *srcmap;
  uint32_t nsrcmap, capsrcmap;
  uint32_t *brs; /* first cells of the plain `br` instructions, for jump threading */
  uint32_t nbrs, capbrs;
  fixup_t *fixups; /* module-wide */
  uint32_t nfixups, capfixups;
  opnd_t *tmp; /* popped values of branches */
  uint32_t captmp;
  uint32_t *labels; /* br_table */
  uint32_t caplabels;

  char errmsg[256]; /* the last error's sentence */
  uint32_t skim_depth; /* after a validation error: blocks open at c->p */
  bool dead; /* no code reaches the current position: emit nothing */
  bool oom;
  bool toohigh; /* push_entry() refused: MAX_HEIGHT */
  tb__wcell_t scratch[8];
  struct last {
    uint32_t start, end, dst, op;
    bool has_dst;
    cmpinfo_t cmp;
  } last, prev; /* the last instruction emitted, and the one before it */
} comp_t;

/* Implementation limits on what one body may make the compiler hold (TB_ETOOBIG): real
 * code nests a few dozen blocks deep and keeps a few dozen values on the stack. */
#define MAX_NESTING 100000u
#define MAX_HEIGHT (1u << 20)

#define TRY(x)                 \
  do {                         \
    int rc_ = (x);             \
    if (rc_ != 0) return rc_;  \
  } while (0)

/* ---- Opcode tables, from interp_ops.h ---- */

#define VT_I32 TB_WASM_I32
#define VT_I64 TB_WASM_I64
#define VT_F32 TB_WASM_F32
#define VT_F64 TB_WASM_F64
#define VT_F32B TB_WASM_F32
#define VT_F64B TB_WASM_F64

enum { NK_NONE, NK_UN, NK_BIN, NK_BINI, NK_CMP, NK_DIV, NK_TRUNC, NK_LOAD, NK_STORE };

typedef struct numop {
  uint16_t op, kind;
  uint8_t in, out, bytes, align;
} numop_t;

static const numop_t numops[256] = {
#define X_UN(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_UN, VT_##ti, VT_##to, 0, 0},
#define X_BIN(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_BIN, VT_##ti, VT_##to, 0, 0},
#define X_BINI(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_BINI, VT_##ti, VT_##to, 0, 0},
#define X_CMP(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_CMP, VT_##ti, VT_##to, 0, 0},
#define X_DIV(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_DIV, VT_##ti, VT_##to, 0, 0},
#define X_TRUNC(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_TRUNC, VT_##ti, VT_##to, 0, 0},
#define X_LOAD(name, opc, t, n, ct, al) [opc] = {TB__WOP_##name, NK_LOAD, TB_WASM_I32, VT_##t, n, al},
#define X_STORE(name, opc, t, n, ct, al) [opc] = {TB__WOP_##name, NK_STORE, VT_##t, 0, n, al},
    TB__WOPS_UNARY(X_UN) TB__WOPS_BINARY(X_BIN) TB__WOPS_BINI(X_BINI) TB__WOPS_CMP(X_CMP) TB__WOPS_DIV(X_DIV)
        TB__WOPS_TRUNC(X_TRUNC) TB__WOPS_LOAD(X_LOAD) TB__WOPS_STORE(X_STORE)};

static const numop_t satops[8] = {
#define X_SAT(name, opc, ti, to, ...) [opc] = {TB__WOP_##name, NK_UN, VT_##ti, VT_##to, 0, 0},
    TB__WOPS_SAT(X_SAT)};

/* Comparison forms by wasm opcode. */
static const uint16_t cmp_br[256] = {
#define X_CBR(name, opc, ...) [opc] = TB__WOP_br_##name,
    TB__WOPS_CMP(X_CBR)};

/* Position of a comparison in its group (eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u). */
static const uint8_t cmp_inverse[10] = {1, 0, 8, 9, 6, 7, 4, 5, 2, 3};
static const uint8_t cmp_mirror[10] = {0, 1, 4, 5, 2, 3, 8, 9, 6, 7};

static uint32_t cmp_base(uint32_t opc) { return opc >= 0x51 ? 0x51 : 0x46; }
static uint32_t cmp_inv(uint32_t opc) { return cmp_base(opc) + cmp_inverse[opc - cmp_base(opc)]; }
static uint32_t cmp_mir(uint32_t opc) { return cmp_base(opc) + cmp_mirror[opc - cmp_base(opc)]; }

static bool is_commutative(uint32_t opc) {
  switch (opc) {
  case 0x6a: case 0x6c: case 0x71: case 0x72: case 0x73: /* i32 add mul and or xor */
  case 0x7c: case 0x7e: case 0x83: case 0x84: case 0x85: /* i64 */
    return true;
  default:
    return false;
  }
}

/* ---- Types ---- */

static const tb_wasm_valtype_t vt_single[] = {TB_WASM_I32, TB_WASM_I64, TB_WASM_F32, TB_WASM_F64,
                                              TB_WASM_V128, TB_WASM_FUNCREF, TB_WASM_EXTERNREF};

static const tb_wasm_valtype_t *vt_ptr(uint32_t t) {
  for (size_t i = 0; i < sizeof vt_single / sizeof vt_single[0]; i++)
    if (vt_single[i] == t) return &vt_single[i];
  return NULL;
}

static uint32_t width(uint32_t t) { return t == TB_WASM_V128 ? 2 : 1; }
static bool is_num(uint32_t t) {
  return t == TB_WASM_I32 || t == TB_WASM_I64 || t == TB_WASM_F32 || t == TB_WASM_F64 || t == T_UNKNOWN;
}
static bool is_ref(uint32_t t) { return t == TB_WASM_FUNCREF || t == TB_WASM_EXTERNREF || t == T_UNKNOWN; }

static const char *tname(uint32_t t) {
  return t == T_UNKNOWN ? "unknown" : tb_wasm_valtype_name((tb_wasm_valtype_t)t);
}

/* ---- Errors and reading ---- */

__attribute__((format(printf, 3, 4))) static int fail(comp_t *c, int code, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const uint8_t *at = c->op_start ? c->op_start : c->p;
  uint32_t off = c->body_offset + (uint32_t)(at - c->body);
  snprintf(c->errmsg, sizeof c->errmsg, "function %u, offset 0x%x: %s", c->fidx, off, msg);
  return tb_errf(c->eb, code, "%s", c->errmsg);
}

static int nomem(comp_t *c) {
  if (c->toohigh) return fail(c, TB_ETOOBIG, "operand stack too deep");
  return tb_errf(c->eb, TB_ENOMEM, "function %u: out of memory", c->fidx);
}

static int rd_u8(comp_t *c, uint8_t *out) {
  if (c->p >= c->end) return fail(c, TB_EPARSE, "unexpected end");
  *out = *c->p++;
  return 0;
}

static int rd_uleb(comp_t *c, unsigned bits, uint64_t *out) {
  uint64_t r = 0;
  unsigned maxbytes = (bits + 6) / 7;
  for (unsigned i = 0;; i++) {
    if (c->p >= c->end) return fail(c, TB_EPARSE, "unexpected end");
    uint8_t b = *c->p++;
    if (i == maxbytes - 1) {
      if (b & 0x80) return fail(c, TB_EPARSE, "integer representation too long");
      unsigned used = bits - 7 * i; /* value bits this byte may carry */
      if (b >> used) return fail(c, TB_EPARSE, "integer too large");
    }
    r |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) break;
  }
  *out = r;
  return 0;
}

static int rd_u32(comp_t *c, uint32_t *out) {
  uint64_t v = 0;
  TRY(rd_uleb(c, 32, &v));
  *out = (uint32_t)v;
  return 0;
}

static int rd_sleb(comp_t *c, unsigned bits, int64_t *out) {
  uint64_t r = 0;
  unsigned maxbytes = (bits + 6) / 7, shift = 0;
  uint8_t b = 0;
  for (unsigned i = 0;; i++) {
    if (c->p >= c->end) return fail(c, TB_EPARSE, "unexpected end");
    b = *c->p++;
    if (i == maxbytes - 1) {
      if (b & 0x80) return fail(c, TB_EPARSE, "integer representation too long");
      /* The bits past the value's width must all equal its sign bit. */
      unsigned used = bits - 7 * i; /* 1..7 */
      uint8_t rest = (uint8_t)(b & 0x7f) >> (used - 1);
      uint8_t all = (uint8_t)(0x7f >> (used - 1));
      if (rest != 0 && rest != all) return fail(c, TB_EPARSE, "integer too large");
    }
    r |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (shift < 64 && (b & 0x40)) r |= ~(uint64_t)0 << shift;
  memcpy(out, &r, sizeof r);
  return 0;
}

static int rd_bytes(comp_t *c, void *dst, size_t n) {
  if ((size_t)(c->end - c->p) < n) return fail(c, TB_EPARSE, "unexpected end");
  memcpy(dst, c->p, n);
  c->p += n;
  return 0;
}

static int rd_zero(comp_t *c) {
  uint8_t b = 0;
  TRY(rd_u8(c, &b));
  if (b != 0) return fail(c, TB_EPARSE, "zero byte expected");
  return 0;
}

/* ---- Growable arrays ---- */

static bool grow(void **p, uint32_t *cap, uint64_t need, size_t elem) {
  if (need <= *cap) return true;
  uint64_t n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  if (n > UINT32_MAX / 2) return false;
  void *q = tb_reallocarray(*p, n, elem);
  if (q == NULL) return false;
  *p = q;
  *cap = (uint32_t)n;
  return true;
}

/* ---- Emitting ---- */

/* Appends an instruction of n cells and returns them; in dead code (or after a failed
 * allocation, noted in c->oom) the cells go to a scratch area and are forgotten. */
static tb__wcell_t *emit(comp_t *c, unsigned op, unsigned n) {
  if (c->dead || c->oom) {
    c->last.end = UINT32_MAX;
    return c->scratch;
  }
  if (!grow((void **)&c->code, &c->capcode, (uint64_t)c->ncode + n, sizeof *c->code)) {
    c->oom = true;
    return c->scratch;
  }
  tb__wcell_t *w = &c->code[c->ncode];
  memset(w, 0, n * sizeof *w);
  w[0].op = c->h[op];
  c->prev = c->last;
  c->last.start = c->ncode;
  c->last.op = op;
  c->ncode += n;
  c->last.end = c->ncode;
  c->last.has_dst = false;
  c->last.cmp.kind = CMP_NONE;
  return w;
}

/* Notes that the instruction just emitted can trap, for the trap's byte offset. */
static void mark_trap(comp_t *c) {
  if (c->dead || c->oom) return;
  if (!grow((void **)&c->srcmap, &c->capsrcmap, (uint64_t)c->nsrcmap + 1, sizeof *c->srcmap)) {
    c->oom = true;
    return;
  }
  c->srcmap[c->nsrcmap].cell = c->last.start;
  c->srcmap[c->nsrcmap].offset = c->body_offset + (uint32_t)(c->op_start - c->body);
  c->nsrcmap++;
}

static void set_dst(comp_t *c, uint32_t dst) {
  if (c->dead || c->oom) return;
  c->last.has_dst = true;
  c->last.dst = dst;
}

/* A cell that holds a code position: the index now, a pointer once the code is final. */
static void add_reloc(comp_t *c, uint32_t cell) {
  if (c->dead || c->oom) return;
  if (!grow((void **)&c->relocs, &c->caprelocs, (uint64_t)c->nrelocs + 1, sizeof *c->relocs)) {
    c->oom = true;
    return;
  }
  c->relocs[c->nrelocs++] = cell;
}

/* A label is bound here: the previous instruction is no longer the only way in. */
static void bind_here(comp_t *c) { c->last.end = UINT32_MAX; }

/* Makes target cell `cell` jump to `f`'s label. */
static void add_target(comp_t *c, uint32_t cell, ctrl_t *f) {
  if (c->dead || c->oom) return;
  if (f->kind == C_LOOP) {
    c->code[cell].u64 = f->loop_cell;
  } else {
    c->code[cell].u64 = f->patch;
    f->patch = cell + 1;
    f->end_reached = true;
  }
  add_reloc(c, cell);
}

static void bind_patches(comp_t *c, uint32_t chain) {
  if (c->oom) return;
  while (chain) {
    uint32_t cell = chain - 1;
    chain = (uint32_t)c->code[cell].u64;
    c->code[cell].u64 = c->ncode;
  }
}

/* ---- The operand stack ---- */

static uint32_t next_home(comp_t *c) {
  if (c->nstk == 0) return c->nlocal_slots;
  const opnd_t *t = &c->stk[c->nstk - 1];
  return t->slot + width(t->type);
}

static opnd_t *push_entry(comp_t *c, uint32_t type, uint32_t kind) {
  if (c->nstk >= MAX_HEIGHT) {
    c->toohigh = true;
    return NULL;
  }
  if (!grow((void **)&c->stk, &c->capstk, (uint64_t)c->nstk + 1, sizeof *c->stk)) {
    c->oom = true;
    return NULL;
  }
  uint32_t home = next_home(c);
  if ((uint64_t)home + 2 >= UINT32_MAX / 2) {
    c->oom = true;
    return NULL;
  }
  opnd_t *o = &c->stk[c->nstk++];
  o->type = type;
  o->kind = kind;
  o->slot = home;
  o->src = 0;
  o->imm = 0;
  if (home + width(type) > c->max_slot) c->max_slot = home + width(type);
  return o;
}

static int push(comp_t *c, uint32_t type) {
  if (push_entry(c, type, K_SLOT) == NULL) return nomem(c);
  return 0;
}

/* Pushes the result of an instruction: its home slot is the destination. */
static int push_result(comp_t *c, uint32_t type, uint32_t *dst) {
  opnd_t *o = push_entry(c, type, K_SLOT);
  if (o == NULL) return nomem(c);
  *dst = o->slot;
  return 0;
}

static int push_local(comp_t *c, uint32_t type, uint32_t src) {
  opnd_t *o = push_entry(c, type, K_LOCAL);
  if (o == NULL) return nomem(c);
  o->src = src;
  c->lrefs[src]++;
  c->nlazy++;
  return 0;
}

static int push_const(comp_t *c, uint32_t type, uint64_t imm) {
  opnd_t *o = push_entry(c, type, K_CONST);
  if (o == NULL) return nomem(c);
  o->imm = imm;
  return 0;
}

/* Re-pushes a popped entry (as it was, possibly with another type). */
static int repush(comp_t *c, const opnd_t *v, uint32_t type) {
  opnd_t *o = push_entry(c, type, v->kind);
  if (o == NULL) return nomem(c);
  o->src = v->src;
  o->imm = v->imm;
  if (v->kind == K_LOCAL) {
    c->lrefs[v->src]++;
    c->nlazy++;
  }
  return 0;
}

static void forget(comp_t *c, const opnd_t *o) {
  if (o->kind == K_LOCAL) {
    c->lrefs[o->src]--;
    c->nlazy--;
  }
}

static int pop(comp_t *c, uint32_t expect, opnd_t *out) {
  ctrl_t *f = &c->ctl[c->nctl - 1];
  if (c->nstk == f->height) {
    if (f->unreachable) {
      out->type = T_UNKNOWN;
      out->kind = K_SLOT;
      out->slot = next_home(c);
      out->src = 0;
      out->imm = 0;
      return 0;
    }
    if (expect == T_ANY) return fail(c, TB_EINVAL, "type mismatch: expected a value, got nothing");
    return fail(c, TB_EINVAL, "type mismatch: expected %s, got nothing", tname(expect));
  }
  opnd_t o = c->stk[--c->nstk];
  forget(c, &o);
  if (expect != T_ANY && o.type != expect && o.type != T_UNKNOWN)
    return fail(c, TB_EINVAL, "type mismatch: expected %s, got %s", tname(expect), tname(o.type));
  *out = o;
  return 0;
}

/* Pops n values of the given types into vals[0..n) (in stack order). */
static int pop_types(comp_t *c, const tb_wasm_valtype_t *types, uint32_t n, opnd_t *vals) {
  for (uint32_t i = n; i-- > 0;) TRY(pop(c, types[i], &vals[i]));
  return 0;
}

static int tmp_reserve(comp_t *c, uint32_t n) {
  if (!grow((void **)&c->tmp, &c->captmp, (uint64_t)n + 1, sizeof *c->tmp)) return nomem(c);
  return 0;
}

static void copy_vals(opnd_t *dst, const opnd_t *src, uint32_t n) {
  if (n) memcpy(dst, src, n * sizeof *dst);
}

static void drop_to(comp_t *c, uint32_t height) {
  while (c->nstk > height) forget(c, &c->stk[--c->nstk]);
}

static void set_unreachable(comp_t *c) {
  ctrl_t *f = &c->ctl[c->nctl - 1];
  drop_to(c, f->height);
  f->unreachable = true;
  c->dead = true;
}

/* Puts an entry's value into its home slot. */
static void materialise(comp_t *c, opnd_t *o) {
  if (o->kind == K_LOCAL) {
    tb__wcell_t *w = emit(c, TB__WOP_mov, 2);
    w[1].s.a = o->slot;
    w[1].s.b = o->src;
    set_dst(c, o->slot);
    if (o->type == TB_WASM_V128) { /* the high half too; no destination rewrite */
      w = emit(c, TB__WOP_mov, 2);
      w[1].s.a = o->slot + 1;
      w[1].s.b = o->src + 1;
    }
    forget(c, o);
  } else if (o->kind == K_CONST) {
    tb__wcell_t *w = emit(c, TB__WOP_const, 3);
    w[1].s.a = o->slot;
    w[2].u64 = o->imm;
    set_dst(c, o->slot);
  }
  o->kind = K_SLOT;
}

/* The slot an instruction reads a popped operand from (constants are put in their home). */
static uint32_t src_of(comp_t *c, opnd_t *o) {
  if (o->kind == K_LOCAL) return o->src;
  if (o->kind == K_CONST) {
    tb__wcell_t *w = emit(c, TB__WOP_const, 3);
    w[1].s.a = o->slot;
    w[2].u64 = o->imm;
    o->kind = K_SLOT;
  }
  return o->slot;
}

/* Before local slot `ls` is written: copy its value into the entries still naming it. */
static void flush_local(comp_t *c, uint32_t ls) {
  for (uint32_t i = c->nstk; i-- > 0 && c->lrefs[ls] > 0;)
    if (c->stk[i].kind == K_LOCAL && c->stk[i].src == ls) materialise(c, &c->stk[i]);
}

static void flush_all_locals(comp_t *c) {
  for (uint32_t i = c->nstk; i-- > 0 && c->nlazy > 0;)
    if (c->stk[i].kind == K_LOCAL) materialise(c, &c->stk[i]);
}

/* ---- Control ---- */

static int push_ctrl(comp_t *c, uint32_t kind, const tb_wasm_valtype_t *params, uint32_t np,
                     const tb_wasm_valtype_t *results, uint32_t nr) {
  if (c->nctl >= MAX_NESTING) return fail(c, TB_ETOOBIG, "blocks nested too deeply");
  if (!grow((void **)&c->ctl, &c->capctl, (uint64_t)c->nctl + 1, sizeof *c->ctl)) return nomem(c);
  ctrl_t *f = &c->ctl[c->nctl++];
  memset(f, 0, sizeof *f);
  f->kind = kind;
  f->dead_at_entry = c->dead;
  f->height = c->nstk - np;
  f->slot_base = f->height ? c->stk[f->height - 1].slot + width(c->stk[f->height - 1].type) : c->nlocal_slots;
  f->params = params;
  f->nparams = np;
  f->results = results;
  f->nresults = nr;
  return 0;
}

static void label_types(const ctrl_t *f, const tb_wasm_valtype_t **types, uint32_t *n) {
  if (f->kind == C_LOOP) {
    *types = f->params;
    *n = f->nparams;
  } else {
    *types = f->results;
    *n = f->nresults;
  }
}

static int read_blocktype(comp_t *c, const tb_wasm_valtype_t **params, uint32_t *np,
                          const tb_wasm_valtype_t **results, uint32_t *nr) {
  if (c->p >= c->end) return fail(c, TB_EPARSE, "unexpected end");
  uint8_t b = *c->p;
  *params = *results = NULL;
  *np = *nr = 0;
  if (b == 0x40) {
    c->p++;
    return 0;
  }
  if (b & 0x40 && !(b & 0x80)) { /* a negative one-byte s33: a value type */
    const tb_wasm_valtype_t *t = vt_ptr(b);
    if (t == NULL) return fail(c, TB_EPARSE, "malformed value type");
    c->p++;
    *results = t;
    *nr = 1;
    return 0;
  }
  int64_t x;
  TRY(rd_sleb(c, 33, &x));
  if (x < 0) return fail(c, TB_EPARSE, "malformed value type");
  if ((uint64_t)x >= c->m->ntypes) return fail(c, TB_EINVAL, "unknown type %llu", (unsigned long long)x);
  const tb__wfunctype_t *ft = &c->m->types[x];
  *params = ft->types;
  *np = ft->nparams;
  *results = ft->types + ft->nparams;
  *nr = ft->nresults;
  return 0;
}

/* Do the values vals[0..n) need copying to reach `f`'s label slots? */
static bool needs_moves(const ctrl_t *f, const opnd_t *vals, uint32_t n) {
  uint32_t d = f->slot_base;
  for (uint32_t i = 0; i < n; i++) {
    if (vals[i].kind != K_SLOT || vals[i].slot != d) return true;
    d += width(vals[i].type);
  }
  return false;
}

static void emit_move(comp_t *c, const opnd_t *v, uint32_t d) {
  if (v->kind == K_CONST) {
    tb__wcell_t *w = emit(c, TB__WOP_const, 3);
    w[1].s.a = d;
    w[2].u64 = v->imm;
  } else {
    uint32_t s = v->kind == K_LOCAL ? v->src : v->slot;
    if (s == d) return;
    tb__wcell_t *w = emit(c, TB__WOP_mov, 2);
    w[1].s.a = d;
    w[1].s.b = s;
    if (v->type == TB_WASM_V128) {
      w = emit(c, TB__WOP_mov, 2);
      w[1].s.a = d + 1;
      w[1].s.b = s + 1;
    }
  }
}

/* Copies vals[0..n) to consecutive slots from `d`. The sources are never below their
 * destinations (home slots), or are locals below every destination. */
static void emit_moves(comp_t *c, const opnd_t *vals, uint32_t n, uint32_t d) {
  for (uint32_t i = 0; i < n; i++) {
    emit_move(c, &vals[i], d);
    d += width(vals[i].type);
  }
}

/* Returns from the function with vals[0..n) as results. */
static void emit_return(comp_t *c, opnd_t *vals, uint32_t n) {
  if (c->dead) return;
  if (n == 1 && vals[0].type != TB_WASM_V128 && vals[0].kind != K_CONST) {
    uint32_t s = vals[0].kind == K_LOCAL ? vals[0].src : vals[0].slot;
    if (s == 0) {
      emit(c, TB__WOP_ret, 1);
    } else {
      tb__wcell_t *w = emit(c, TB__WOP_ret1, 2);
      w[1].s.a = s;
    }
    return;
  }
  /* Results go to slots 0..; a local source below its destination could be overwritten
   * by an earlier result, so such values go to their home slot first. */
  uint32_t d = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (vals[i].kind == K_LOCAL && vals[i].src < d) {
      tb__wcell_t *w = emit(c, TB__WOP_mov, 2);
      w[1].s.a = vals[i].slot;
      w[1].s.b = vals[i].src;
      vals[i].kind = K_SLOT;
    }
    d += width(vals[i].type);
  }
  emit_moves(c, vals, n, 0);
  emit(c, TB__WOP_ret, 1);
}

/* A `br` to a block's end, remembered for jump threading. */
static void emit_plain_br(comp_t *c, ctrl_t *f) {
  emit(c, TB__WOP_br, 2);
  if (c->dead || c->oom) return;
  if (!grow((void **)&c->brs, &c->capbrs, (uint64_t)c->nbrs + 1, sizeof *c->brs)) {
    c->oom = true;
    return;
  }
  c->brs[c->nbrs++] = c->ncode - 2;
  add_target(c, c->ncode - 1, f);
}

/* Unconditional branch to `f` with vals[0..n) as the label's values. */
static void emit_br(comp_t *c, ctrl_t *f, opnd_t *vals, uint32_t n) {
  if (c->dead) return;
  if (f->kind == C_FUNC) {
    emit_return(c, vals, n);
    return;
  }
  emit_moves(c, vals, n, f->slot_base);
  if (f->kind == C_LOOP) {
    emit(c, TB__WOP_br_loop, 2);
    mark_trap(c);
    add_target(c, c->ncode - 1, f);
  } else {
    emit_plain_br(c, f);
  }
}

/* Takes the i32 condition off the stack, fusing it with the comparison that computed it
 * when that was the last instruction emitted. */
static int take_cond(comp_t *c, cmpinfo_t *ci) {
  opnd_t v = {0};
  TRY(pop(c, TB_WASM_I32, &v));
  memset(ci, 0, sizeof *ci);
  if (c->dead) return 0;
  if (v.kind == K_SLOT && c->last.cmp.kind != CMP_NONE && c->last.end == c->ncode && c->last.dst == v.slot &&
      c->last.has_dst) {
    *ci = c->last.cmp;
    c->ncode = c->last.start; /* the comparison is redone by the branch */
    /* The instruction before is the last one again (unless a label came in between,
     * which invalidated it), for the loop-closing fusion of op_br_if. */
    if (c->prev.end == c->ncode) c->last = c->prev;
    else c->last.end = UINT32_MAX;
    c->prev.end = UINT32_MAX;
    return 0;
  }
  ci->kind = CMP_NONE;
  ci->a = src_of(c, &v);
  return 0;
}

/* Emits a conditional branch taken when the condition is `when` (true/false); returns
 * the index of its target cell in *cell. */
static void emit_condbr(comp_t *c, const cmpinfo_t *ci0, bool when, bool loop, uint32_t *cell) {
  cmpinfo_t ci = *ci0;
  tb__wcell_t *w;
  *cell = 0;
  if (c->dead) return;
  switch (ci.kind) {
  case CMP_NONE:
    w = emit(c, when ? (loop ? TB__WOP_br_if_loop : TB__WOP_br_if) : (loop ? TB__WOP_br_unless_loop : TB__WOP_br_unless),
             3);
    w[1].s.a = ci.a;
    break;
  case CMP_EQZ32:
    w = emit(c, when ? (loop ? TB__WOP_br_unless_loop : TB__WOP_br_unless) : (loop ? TB__WOP_br_if_loop : TB__WOP_br_if),
             3);
    w[1].s.a = ci.a;
    break;
  case CMP_EQZ64:
    w = emit(c,
             when ? (loop ? TB__WOP_br_unless64_loop : TB__WOP_br_unless64)
                  : (loop ? TB__WOP_br_if64_loop : TB__WOP_br_if64),
             3);
    w[1].s.a = ci.a;
    break;
  default: {
    uint32_t opc = when ? ci.opc : cmp_inv(ci.opc);
    unsigned op = cmp_br[opc]; /* br_X, br_X_imm, br_X_loop, br_X_imm_loop follow in this order */
    if (ci.kind == CMP_SS) {
      w = emit(c, op + (loop ? 2 : 0), 3);
      w[1].s.a = ci.a;
      w[1].s.b = ci.b;
    } else {
      w = emit(c, op + (loop ? 3 : 1), 4);
      w[1].s.a = ci.a;
      w[2].u64 = ci.imm;
    }
    break;
  }
  }
  if (loop) mark_trap(c);
  *cell = c->ncode - 1;
}

/* ---- Instructions ---- */

static int op_unary(comp_t *c, const numop_t *n, bool traps) {
  opnd_t a = {0};
  uint32_t d = 0;
  TRY(pop(c, n->in, &a));
  uint32_t sa = src_of(c, &a);
  TRY(push_result(c, n->out, &d));
  tb__wcell_t *w = emit(c, n->op, 2);
  w[1].s.a = d;
  w[1].s.b = sa;
  if (traps) mark_trap(c);
  set_dst(c, d);
  return 0;
}

static int op_binary(comp_t *c, uint32_t opc, const numop_t *n) {
  opnd_t a = {0}, b = {0};
  uint32_t d = 0;
  TRY(pop(c, n->in, &b));
  TRY(pop(c, n->in, &a));
  bool imm_ok = n->kind == NK_BINI || n->kind == NK_CMP;
  if (imm_ok && a.kind == K_CONST && b.kind != K_CONST) {
    if (n->kind == NK_CMP) {
      opc = cmp_mir(opc);
      n = &numops[opc];
      opnd_t t = a;
      a = b;
      b = t;
    } else if (is_commutative(opc)) {
      opnd_t t = a;
      a = b;
      b = t;
    }
  }
  tb__wcell_t *w;
  if (imm_ok && b.kind == K_CONST) {
    uint32_t sa = src_of(c, &a);
    TRY(push_result(c, n->out, &d));
    w = emit(c, n->op + 1u, 3);
    w[1].s.a = d;
    w[1].s.b = sa;
    w[2].u64 = n->in == TB_WASM_I32 ? (uint32_t)b.imm : b.imm;
    set_dst(c, d);
    if (n->kind == NK_CMP && !c->dead) {
      c->last.cmp.kind = CMP_SI;
      c->last.cmp.opc = opc;
      c->last.cmp.a = sa;
      c->last.cmp.imm = w[2].u64;
    }
    return 0;
  }
  uint32_t sa = src_of(c, &a), sb = src_of(c, &b);
  TRY(push_result(c, n->out, &d));
  w = emit(c, n->op, 3);
  w[1].s.a = d;
  w[1].s.b = sa;
  w[2].s.a = sb;
  if (n->kind == NK_DIV) mark_trap(c);
  set_dst(c, d);
  if (n->kind == NK_CMP && !c->dead) {
    c->last.cmp.kind = CMP_SS;
    c->last.cmp.opc = opc;
    c->last.cmp.a = sa;
    c->last.cmp.b = sb;
  }
  return 0;
}

static int op_eqz(comp_t *c, uint32_t opc) {
  bool is64 = opc == 0x50;
  opnd_t a = {0};
  TRY(pop(c, is64 ? TB_WASM_I64 : TB_WASM_I32, &a));
  /* eqz of a comparison just emitted: invert the comparison. */
  if (!c->dead && a.kind == K_SLOT && c->last.has_dst && c->last.end == c->ncode && c->last.dst == a.slot &&
      (c->last.cmp.kind == CMP_SS || c->last.cmp.kind == CMP_SI)) {
    cmpinfo_t *ci = &c->last.cmp;
    ci->opc = cmp_inv(ci->opc);
    c->code[c->last.start].op = c->h[numops[ci->opc].op + (ci->kind == CMP_SI ? 1u : 0u)];
    return push(c, TB_WASM_I32);
  }
  uint32_t sa = src_of(c, &a), d = 0;
  TRY(push_result(c, TB_WASM_I32, &d));
  tb__wcell_t *w = emit(c, is64 ? TB__WOP_i64_eqz : TB__WOP_i32_eqz, 2);
  w[1].s.a = d;
  w[1].s.b = sa;
  set_dst(c, d);
  if (!c->dead) {
    c->last.cmp.kind = is64 ? CMP_EQZ64 : CMP_EQZ32;
    c->last.cmp.a = sa;
  }
  return 0;
}

static int memarg(comp_t *c, const numop_t *n, uint64_t *offset) {
  uint32_t align = 0, off = 0;
  TRY(rd_u32(c, &align));
  TRY(rd_u32(c, &off));
  if (c->m->nmems == 0) return fail(c, TB_EINVAL, "unknown memory 0");
  if (align > n->align) return fail(c, TB_EINVAL, "alignment must not be larger than natural");
  *offset = off;
  return 0;
}

/* If the address `a` was just computed by i32.add of a slot and a constant, takes that
 * instruction back and returns its operands, for a load/store that adds them itself. */
static unsigned take_addr_add(comp_t *c, const opnd_t *a, uint32_t *src, uint32_t *imm, bool allow_ss) {
  if (c->dead || c->last.end != c->ncode ||
      (c->last.op != TB__WOP_i32_add_imm && !(allow_ss && c->last.op == TB__WOP_i32_add)))
    return 0;
  const tb__wcell_t *w = &c->code[c->last.start];
  if (!(a->kind == K_SLOT && c->last.has_dst && c->last.dst == a->slot)) return 0;
  unsigned form = c->last.op == TB__WOP_i32_add_imm ? 1 : 3; /* _ai or _aa */
  *src = w[1].s.b;
  *imm = form == 1 ? (uint32_t)w[2].u64 : w[2].s.a;
  c->ncode = c->last.start;
  c->last.end = UINT32_MAX;
  return form;
}

/* The same for a load whose address is a local the add just wrote (`local.tee`): the
 * load does the add, keeps the sum in the local, and loads. Returns 1 (_ait), 3 (_aat). */
static unsigned take_addr_add_tee(comp_t *c, const opnd_t *a, uint32_t *src, uint32_t *imm) {
  if (c->dead || a->kind != K_LOCAL || c->last.end != c->ncode ||
      (c->last.op != TB__WOP_i32_add_imm && c->last.op != TB__WOP_i32_add))
    return 0;
  const tb__wcell_t *w = &c->code[c->last.start];
  if (w[1].s.a != a->src) return 0;
  unsigned form = c->last.op == TB__WOP_i32_add_imm ? 1 : 3;
  *src = w[1].s.b;
  *imm = form == 1 ? (uint32_t)w[2].u64 : w[2].s.a;
  c->ncode = c->last.start;
  c->last.end = UINT32_MAX;
  return form;
}

static int op_load(comp_t *c, const numop_t *n) {
  uint64_t off = 0;
  opnd_t a = {0};
  uint32_t d = 0, sa = 0, imm = 0;
  TRY(memarg(c, n, &off));
  TRY(pop(c, TB_WASM_I32, &a));
  unsigned form = take_addr_add(c, &a, &sa, &imm, true), tee = 0;
  if (!form && (tee = take_addr_add_tee(c, &a, &sa, &imm)) != 0) form = tee;
  if (!form) sa = src_of(c, &a);
  TRY(push_result(c, n->out, &d));
  /* _ai: +1, _aa: +2, _ait: +3, _aat: +4 */
  unsigned variant = form ? form - (form == 3) + (tee ? 2u : 0u) : 0u;
  tb__wcell_t *w = emit(c, n->op + variant, tee ? 4 : 3);
  if (tee) w[3].s.a = a.src;
  w[1].s.a = d;
  w[1].s.b = sa;
  if (form == 1) {
    w[2].s.a = (uint32_t)off;
    w[2].s.b = imm;
  } else if (form == 3) {
    w[2].s.a = imm;
    w[2].s.b = (uint32_t)off;
  } else {
    w[2].u64 = off;
  }
  mark_trap(c);
  set_dst(c, d);
  return 0;
}

static int op_store(comp_t *c, const numop_t *n) {
  uint64_t off = 0;
  opnd_t a = {0}, v = {0};
  TRY(memarg(c, n, &off));
  TRY(pop(c, n->in, &v));
  TRY(pop(c, TB_WASM_I32, &a));
  tb__wcell_t *w;
  if (v.kind == K_CONST) {
    uint32_t sa = 0, imm = 0;
    bool fused = take_addr_add(c, &a, &sa, &imm, false) == 1; /* only an add of a constant */
    if (!fused) sa = src_of(c, &a);
    w = emit(c, n->op + (fused ? 4u : 2u), 4); /* _vai or _vi */
    w[1].s.a = sa;
    w[1].s.b = fused ? imm : 0;
    w[2].u64 = off;
    w[3].u64 = v.imm;
  } else {
    uint32_t sa = 0, imm = 0;
    /* An address computed last (after the value) by an add: fuse the add. */
    unsigned form = take_addr_add(c, &a, &sa, &imm, true);
    if (!form) sa = src_of(c, &a);
    uint32_t sv = src_of(c, &v);
    w = emit(c, n->op + form, 3); /* _ai: +1, _aa: +3 */
    w[1].s.a = sa;
    w[1].s.b = sv;
    if (form == 1) {
      w[2].s.a = (uint32_t)off;
      w[2].s.b = imm;
    } else if (form == 3) {
      w[2].s.a = imm;
      w[2].s.b = (uint32_t)off;
    } else {
      w[2].u64 = off;
    }
  }
  mark_trap(c);
  return 0;
}

static int local_index(comp_t *c, uint32_t *x) {
  TRY(rd_u32(c, x));
  if (*x >= c->nlocals) return fail(c, TB_EINVAL, "unknown local %u", *x);
  return 0;
}

/* local.set / local.tee */
static int op_local_set(comp_t *c, bool tee) {
  uint32_t x = 0;
  opnd_t v = {0};
  TRY(local_index(c, &x));
  uint32_t ls = c->lslot[x], t = c->ltype[x];
  TRY(pop(c, t, &v));
  if (!c->dead) {
    flush_local(c, ls);
    if (v.kind == K_SLOT && c->last.has_dst && c->last.end == c->ncode && c->last.dst == v.slot &&
        t != TB_WASM_V128) {
      /* The value was just computed: compute it into the local instead. */
      c->code[c->last.start + 1].s.a = ls;
      c->last.has_dst = false;
      c->last.cmp.kind = CMP_NONE;
    } else if (!(v.kind == K_LOCAL && v.src == ls)) {
      emit_move(c, &v, ls);
      c->last.has_dst = false;
    }
  }
  if (tee) return push_local(c, t, ls);
  return 0;
}

static int global_index(comp_t *c, uint32_t *x) {
  TRY(rd_u32(c, x));
  if (*x >= c->m->nglobals) return fail(c, TB_EINVAL, "unknown global %u", *x);
  if (c->m->globals[*x].type.type == TB_WASM_V128) return fail(c, TB_EUNSUPPORTED, "v128 is not supported yet");
  return 0;
}

static int table_index(comp_t *c, uint32_t *x) {
  TRY(rd_u32(c, x));
  if (*x >= c->m->ntables) return fail(c, TB_EINVAL, "unknown table %u", *x);
  return 0;
}

/* Arguments of a call: pops them (checked), puts them in consecutive home slots and
 * returns the first. */
static int call_args(comp_t *c, const tb__wfunctype_t *ft, uint32_t *slot) {
  TRY(tmp_reserve(c, ft->nparams));
  TRY(pop_types(c, ft->types, ft->nparams, c->tmp));
  *slot = next_home(c);
  for (uint32_t i = 0; i < ft->nparams; i++) {
    opnd_t *o = &c->tmp[i];
    if (o->kind != K_SLOT) {
      if (o->kind == K_LOCAL) {
        /* forget() already ran in pop(); materialise without counting again */
        tb__wcell_t *w = emit(c, TB__WOP_mov, 2);
        w[1].s.a = o->slot;
        w[1].s.b = o->src;
      } else {
        tb__wcell_t *w = emit(c, TB__WOP_const, 3);
        w[1].s.a = o->slot;
        w[2].u64 = o->imm;
      }
      if (o->type == TB_WASM_V128 && o->kind == K_LOCAL) {
        tb__wcell_t *w = emit(c, TB__WOP_mov, 2);
        w[1].s.a = o->slot + 1;
        w[1].s.b = o->src + 1;
      }
      o->kind = K_SLOT;
    }
  }
  if (ft->nparams) *slot = c->tmp[0].slot;
  return 0;
}

static int push_results(comp_t *c, const tb__wfunctype_t *ft) {
  for (uint32_t i = 0; i < ft->nresults; i++) TRY(push(c, ft->types[ft->nparams + i]));
  return 0;
}

static int op_call(comp_t *c) {
  uint32_t x = 0, slot = 0;
  TRY(rd_u32(c, &x));
  if (x >= c->m->nfuncs) return fail(c, TB_EINVAL, "unknown function %u", x);
  const tb__wfunctype_t *ft = &c->m->types[c->m->funcs[x].type_index];
  TRY(call_args(c, ft, &slot));
  if (c->m->funcs[x].imported) {
    tb__wcell_t *w = emit(c, TB__WOP_call_import, 2);
    w[1].s.a = slot;
    w[1].s.b = x;
  } else {
    tb__wcell_t *w = emit(c, TB__WOP_call, 5); /* [entry] and the callee's frame: fixed up */
    w[1].s.a = slot;
    w[1].s.b = x - c->m->nimported_funcs;
    if (!c->dead && !c->oom) {
      if (!grow((void **)&c->fixups, &c->capfixups, (uint64_t)c->nfixups + 1, sizeof *c->fixups)) return nomem(c);
      c->fixups[c->nfixups++] = (fixup_t){c->fidx, c->ncode - 3, x};
    }
  }
  mark_trap(c);
  return push_results(c, ft);
}

static int op_call_indirect(comp_t *c) {
  uint32_t x = 0, t = 0, slot = 0;
  opnd_t i = {0};
  TRY(rd_u32(c, &x));
  TRY(rd_u32(c, &t));
  if (x >= c->m->ntypes) return fail(c, TB_EINVAL, "unknown type %u", x);
  if (t >= c->m->ntables) return fail(c, TB_EINVAL, "unknown table %u", t);
  if (c->m->tables[t].elem != TB_WASM_FUNCREF) return fail(c, TB_EINVAL, "type mismatch: table %u is not funcref", t);
  const tb__wfunctype_t *ft = &c->m->types[x];
  TRY(pop(c, TB_WASM_I32, &i));
  TRY(call_args(c, ft, &slot));
  uint32_t si = src_of(c, &i);
  tb__wcell_t *w = emit(c, TB__WOP_call_indirect, 3);
  w[1].s.a = slot;
  w[1].s.b = si;
  w[2].s.a = t;
  w[2].s.b = ft->id;
  mark_trap(c);
  return push_results(c, ft);
}

static int op_block(comp_t *c, uint8_t opc) {
  const tb_wasm_valtype_t *params, *results;
  uint32_t np, nr;
  cmpinfo_t ci = {0};
  TRY(read_blocktype(c, &params, &np, &results, &nr));
  if (opc == 0x04) TRY(take_cond(c, &ci));
  TRY(tmp_reserve(c, np));
  TRY(pop_types(c, params, np, c->tmp));
  for (uint32_t i = 0; i < np; i++) TRY(repush(c, &c->tmp[i], params[i]));
  if (!c->dead) {
    flush_all_locals(c);
    for (uint32_t i = c->nstk - np; i < c->nstk; i++) materialise(c, &c->stk[i]);
  }
  TRY(push_ctrl(c, opc == 0x02 ? C_BLOCK : opc == 0x03 ? C_LOOP : C_IF, params, np, results, nr));
  ctrl_t *f = &c->ctl[c->nctl - 1];
  if (opc == 0x03) {
    f->loop_cell = c->ncode;
    bind_here(c);
  } else if (opc == 0x04 && !c->dead) {
    uint32_t cell;
    emit_condbr(c, &ci, false, false, &cell);
    f->else_patch = cell + 1;
    add_reloc(c, cell);
  }
  return 0;
}

/* Checks that the stack holds exactly f's results above its height; leaves them there. */
static int check_results(comp_t *c, ctrl_t *f) {
  TRY(tmp_reserve(c, f->nresults));
  TRY(pop_types(c, f->results, f->nresults, c->tmp));
  if (c->nstk != f->height)
    return fail(c, TB_EINVAL, "type mismatch: %u values left on the stack at the end of a block",
                c->nstk - f->height);
  for (uint32_t i = 0; i < f->nresults; i++) TRY(repush(c, &c->tmp[i], f->results[i]));
  /* A block's results go to its label's slots; a function's are moved by the return. */
  if (!c->dead && f->kind != C_FUNC)
    for (uint32_t i = f->height; i < c->nstk; i++) materialise(c, &c->stk[i]);
  return 0;
}

static int op_else(comp_t *c) {
  ctrl_t *f = &c->ctl[c->nctl - 1];
  if (f->kind != C_IF) return fail(c, TB_EPARSE, "END opcode expected");
  TRY(check_results(c, f));
  if (!c->dead) emit_plain_br(c, f);
  if (f->else_patch && !c->oom) {
    c->code[f->else_patch - 1].u64 = c->ncode;
    f->else_patch = 0;
  }
  drop_to(c, f->height);
  for (uint32_t i = 0; i < f->nparams; i++) TRY(push(c, f->params[i]));
  f->kind = C_ELSE;
  f->unreachable = false;
  c->dead = f->dead_at_entry;
  bind_here(c);
  return 0;
}

static int op_end(comp_t *c) {
  ctrl_t *f = &c->ctl[c->nctl - 1];
  if (f->kind == C_IF) {
    /* No else: the params must pass for the results. */
    if (f->nparams != f->nresults) return fail(c, TB_EINVAL, "type mismatch: if without else must have matching types");
    for (uint32_t i = 0; i < f->nparams; i++)
      if (f->params[i] != f->results[i]) return fail(c, TB_EINVAL, "type mismatch: if without else must have matching types");
  }
  TRY(check_results(c, f));
  if (f->kind == C_FUNC) {
    if (!c->dead) {
      TRY(tmp_reserve(c, f->nresults));
      copy_vals(c->tmp, &c->stk[f->height], f->nresults);
      emit_return(c, c->tmp, f->nresults);
    }
    drop_to(c, 0);
    c->nctl--;
    return 0;
  }
  bool reach = !c->dead || f->end_reached || (f->kind == C_IF && !f->dead_at_entry);
  if (f->patch || f->else_patch) bind_here(c);
  bind_patches(c, f->patch);
  if (f->else_patch && !c->oom) c->code[f->else_patch - 1].u64 = c->ncode;
  /* The results stay where they are: they are the entries above the height, now
   * materialised in the label's slots. */
  uint32_t h = f->height;
  TRY(tmp_reserve(c, f->nresults));
  copy_vals(c->tmp, &c->stk[h], f->nresults);
  c->nctl--;
  drop_to(c, h);
  c->dead = !reach;
  for (uint32_t i = 0; i < f->nresults; i++) TRY(push(c, c->tmp[i].type == T_UNKNOWN ? f->results[i] : c->tmp[i].type));
  return 0;
}

static int label_index(comp_t *c, uint32_t *l) {
  TRY(rd_u32(c, l));
  if (*l >= c->nctl) return fail(c, TB_EINVAL, "unknown label %u", *l);
  return 0;
}

static int op_br(comp_t *c) {
  uint32_t l = 0, n = 0;
  const tb_wasm_valtype_t *types;
  TRY(label_index(c, &l));
  ctrl_t *f = &c->ctl[c->nctl - 1 - l];
  label_types(f, &types, &n);
  TRY(tmp_reserve(c, n));
  TRY(pop_types(c, types, n, c->tmp));
  emit_br(c, f, c->tmp, n);
  set_unreachable(c);
  return 0;
}

static int op_br_if(comp_t *c) {
  uint32_t l = 0, n = 0;
  const tb_wasm_valtype_t *types;
  cmpinfo_t ci;
  TRY(label_index(c, &l));
  TRY(take_cond(c, &ci));
  ctrl_t *f = &c->ctl[c->nctl - 1 - l];
  label_types(f, &types, &n);
  TRY(tmp_reserve(c, n));
  TRY(pop_types(c, types, n, c->tmp));
  for (uint32_t i = 0; i < n; i++) TRY(repush(c, &c->tmp[i], types[i]));
  if (c->dead) return 0;
  opnd_t *vals = &c->stk[c->nstk - n];
  bool is32 = (ci.kind == CMP_SI || ci.kind == CMP_SS) && numops[ci.opc].in == TB_WASM_I32;
  unsigned addi = is32 ? TB__WOP_i32_add_imm : TB__WOP_i64_add_imm, adds = is32 ? TB__WOP_i32_add : TB__WOP_i64_add;
  if (f->kind == C_LOOP && !needs_moves(f, vals, n) && (ci.kind == CMP_SI || ci.kind == CMP_SS) &&
      c->last.end == c->ncode && (c->last.op == addi || (c->last.op == adds && ci.kind == CMP_SS)) &&
      c->code[c->last.start + 1].s.a == ci.a) {
    /* d = a + x; loop while cmp(d, y): one instruction closes the loop. */
    tb__wcell_t add[3];
    memcpy(add, &c->code[c->last.start], sizeof add);
    bool imm_add = c->last.op == addi;
    c->ncode = c->last.start;
    tb__wcell_t *w;
    if (imm_add && ci.kind == CMP_SI) { /* br_add_X_imm_loop [d,a][inc][imm][T] */
      w = emit(c, cmp_br[ci.opc] + 4u, 5);
      w[2] = add[2];
      w[3].u64 = ci.imm;
    } else if (imm_add) { /* br_addi_X_loop [d,a][inc][c,-][T] */
      w = emit(c, cmp_br[ci.opc] + 5u, 5);
      w[2] = add[2];
      w[3].s.a = ci.b;
    } else { /* br_adds_X_loop [d,a][b,c][T] */
      w = emit(c, cmp_br[ci.opc] + 6u, 4);
      w[2].s.a = add[2].s.a;
      w[2].s.b = ci.b;
    }
    w[1] = add[1];
    mark_trap(c);
    add_target(c, c->ncode - 1, f);
  } else if (f->kind != C_FUNC && !needs_moves(f, vals, n)) {
    uint32_t cell;
    emit_condbr(c, &ci, true, f->kind == C_LOOP, &cell);
    add_target(c, cell, f);
  } else {
    /* Values must move: branch around the moves when the condition is false. */
    uint32_t skip;
    emit_condbr(c, &ci, false, false, &skip);
    add_reloc(c, skip);
    copy_vals(c->tmp, vals, n);
    emit_br(c, f, c->tmp, n);
    if (!c->oom) c->code[skip].u64 = c->ncode;
    bind_here(c);
  }
  return 0;
}

static int op_br_table(comp_t *c) {
  uint32_t n = 0, arity = 0;
  opnd_t idx = {0};
  TRY(rd_u32(c, &n));
  if (n > (size_t)(c->end - c->p)) return fail(c, TB_EPARSE, "unexpected end");
  if (!grow((void **)&c->labels, &c->caplabels, (uint64_t)n + 1, sizeof *c->labels)) return nomem(c);
  for (uint32_t i = 0; i <= n; i++) TRY(label_index(c, &c->labels[i]));
  TRY(pop(c, TB_WASM_I32, &idx));
  const tb_wasm_valtype_t *types;
  label_types(&c->ctl[c->nctl - 1 - c->labels[n]], &types, &arity);
  for (uint32_t i = 0; i <= n; i++) {
    uint32_t k = 0;
    const tb_wasm_valtype_t *lt = NULL;
    label_types(&c->ctl[c->nctl - 1 - c->labels[i]], &lt, &k);
    if (k != arity) return fail(c, TB_EINVAL, "type mismatch: br_table targets differ in arity");
    TRY(tmp_reserve(c, k));
    TRY(pop_types(c, lt, k, c->tmp));
    for (uint32_t j = 0; j < k; j++) TRY(repush(c, &c->tmp[j], c->tmp[j].type));
  }
  if (!c->dead) {
    uint32_t si = src_of(c, &idx);
    if (!grow((void **)&c->code, &c->capcode, (uint64_t)c->ncode + n + 3, sizeof *c->code)) return nomem(c);
    tb__wcell_t *w = emit(c, TB__WOP_br_table, 2 + n + 1);
    w[1].s.a = si;
    w[1].s.b = n;
    uint32_t table = c->ncode - (n + 1);
    opnd_t *vals = &c->stk[c->nstk - arity];
    /* Targets that need no moves are jumped to directly; the others get a stub. */
    for (uint32_t i = 0; i <= n; i++) {
      ctrl_t *f = &c->ctl[c->nctl - 1 - c->labels[i]];
      if (f->kind == C_BLOCK || f->kind == C_IF || f->kind == C_ELSE) {
        if (!needs_moves(f, vals, arity)) {
          add_target(c, table + i, f);
          continue;
        }
      }
      c->code[table + i].u64 = UINT64_MAX; /* stub below */
    }
    for (uint32_t i = 0; i <= n && !c->oom; i++) {
      if (c->code[table + i].u64 != UINT64_MAX) continue;
      ctrl_t *f = &c->ctl[c->nctl - 1 - c->labels[i]];
      c->code[table + i].u64 = c->ncode;
      add_reloc(c, table + i);
      TRY(tmp_reserve(c, arity));
      copy_vals(c->tmp, vals, arity);
      emit_br(c, f, c->tmp, arity);
    }
    bind_here(c);
  }
  set_unreachable(c);
  return 0;
}

static int op_return(comp_t *c) {
  TRY(tmp_reserve(c, c->nresults));
  TRY(pop_types(c, c->results, c->nresults, c->tmp));
  emit_return(c, c->tmp, c->nresults);
  set_unreachable(c);
  return 0;
}

static int op_select(comp_t *c, bool typed) {
  uint32_t t = T_ANY;
  if (typed) {
    uint32_t n = 0;
    TRY(rd_u32(c, &n));
    if (n != 1) return fail(c, TB_EINVAL, "invalid result arity");
    uint8_t b = 0;
    TRY(rd_u8(c, &b));
    if (vt_ptr(b) == NULL) return fail(c, TB_EPARSE, "malformed value type");
    t = b;
  }
  opnd_t cond = {0}, a = {0}, b = {0};
  TRY(pop(c, TB_WASM_I32, &cond));
  TRY(pop(c, t, &b));
  TRY(pop(c, t, &a));
  uint32_t rt = t;
  if (!typed) {
    bool num = is_num(a.type) && is_num(b.type);
    bool vec = (a.type == TB_WASM_V128 || a.type == T_UNKNOWN) && (b.type == TB_WASM_V128 || b.type == T_UNKNOWN);
    if (!num && !vec) return fail(c, TB_EINVAL, "type mismatch: select needs numeric operands");
    if (a.type != b.type && a.type != T_UNKNOWN && b.type != T_UNKNOWN)
      return fail(c, TB_EINVAL, "type mismatch: select of %s and %s", tname(a.type), tname(b.type));
    rt = a.type == T_UNKNOWN ? b.type : a.type;
  }
  if (rt == TB_WASM_V128) return fail(c, TB_EUNSUPPORTED, "v128 is not supported yet");
  uint32_t sc = src_of(c, &cond), sa = src_of(c, &a), sb = src_of(c, &b), d = 0;
  TRY(push_result(c, rt, &d));
  tb__wcell_t *w = emit(c, TB__WOP_select, 3);
  w[1].s.a = d;
  w[1].s.b = sc;
  w[2].s.a = sa;
  w[2].s.b = sb;
  set_dst(c, d);
  return 0;
}

/* A data segment index (memory.init, data.drop). These need the data count section,
 * which is a malformation; but the spec's own tests, written in the text format, expect
 * a bad index to be reported as one even when the binary lacks the section. */
static int data_index(comp_t *c, uint32_t x) {
  uint32_t n = c->m->has_data_count ? c->m->data_count : c->m->ndatas;
  if (x >= n) return fail(c, TB_EINVAL, "unknown data segment %u", x);
  if (!c->m->has_data_count) return fail(c, TB_EPARSE, "data count section required");
  return 0;
}

static int op_prefix_fc(comp_t *c) {
  uint32_t sub = 0;
  TRY(rd_u32(c, &sub));
  tb_wasm_module_t *m = c->m;
  opnd_t a = {0}, b = {0}, n = {0};
  uint32_t d = 0, x = 0, y = 0;
  tb__wcell_t *w;
  if (sub < 8) return op_unary(c, &satops[sub], false);
  switch (sub) {
  case 8: /* memory.init */
    TRY(rd_u32(c, &x));
    TRY(rd_zero(c));
    if (m->nmems == 0) return fail(c, TB_EINVAL, "unknown memory 0");
    TRY(data_index(c, x));
    TRY(pop(c, TB_WASM_I32, &n));
    TRY(pop(c, TB_WASM_I32, &b));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a), sb = src_of(c, &b), sn = src_of(c, &n);
      w = emit(c, TB__WOP_memory_init, 3);
      w[1].s.a = sa;
      w[1].s.b = sb;
      w[2].s.a = sn;
      w[2].s.b = x;
    }
    mark_trap(c);
    return 0;
  case 9: /* data.drop */
    TRY(rd_u32(c, &x));
    TRY(data_index(c, x));
    w = emit(c, TB__WOP_data_drop, 2);
    w[1].s.a = x;
    return 0;
  case 10: /* memory.copy */
  case 11: /* memory.fill */
    TRY(rd_zero(c));
    if (sub == 10) TRY(rd_zero(c));
    if (m->nmems == 0) return fail(c, TB_EINVAL, "unknown memory 0");
    TRY(pop(c, TB_WASM_I32, &n));
    TRY(pop(c, TB_WASM_I32, &b));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a), sb = src_of(c, &b), sn = src_of(c, &n);
      w = emit(c, sub == 10 ? TB__WOP_memory_copy : TB__WOP_memory_fill, 3);
      w[1].s.a = sa;
      w[1].s.b = sb;
      w[2].s.a = sn;
    }
    mark_trap(c);
    return 0;
  case 12: /* table.init elem table */
    TRY(rd_u32(c, &x));
    TRY(table_index(c, &y));
    if (x >= m->nelems) return fail(c, TB_EINVAL, "unknown elem segment %u", x);
    if (m->elems[x].type != m->tables[y].elem) return fail(c, TB_EINVAL, "type mismatch: element segment and table");
    TRY(pop(c, TB_WASM_I32, &n));
    TRY(pop(c, TB_WASM_I32, &b));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a), sb = src_of(c, &b), sn = src_of(c, &n);
      w = emit(c, TB__WOP_table_init, 4);
      w[1].s.a = sa;
      w[1].s.b = sb;
      w[2].s.a = sn;
      w[2].s.b = x;
      w[3].s.a = y;
    }
    mark_trap(c);
    return 0;
  case 13: /* elem.drop */
    TRY(rd_u32(c, &x));
    if (x >= m->nelems) return fail(c, TB_EINVAL, "unknown elem segment %u", x);
    w = emit(c, TB__WOP_elem_drop, 2);
    w[1].s.a = x;
    return 0;
  case 14: /* table.copy dst src */
    TRY(table_index(c, &x));
    TRY(table_index(c, &y));
    if (m->tables[x].elem != m->tables[y].elem) return fail(c, TB_EINVAL, "type mismatch: table.copy between types");
    TRY(pop(c, TB_WASM_I32, &n));
    TRY(pop(c, TB_WASM_I32, &b));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a), sb = src_of(c, &b), sn = src_of(c, &n);
      w = emit(c, TB__WOP_table_copy, 4);
      w[1].s.a = sa;
      w[1].s.b = sb;
      w[2].s.a = sn;
      w[3].s.a = x;
      w[3].s.b = y;
    }
    mark_trap(c);
    return 0;
  case 15: /* table.grow */
    TRY(table_index(c, &x));
    TRY(pop(c, TB_WASM_I32, &n));
    TRY(pop(c, m->tables[x].elem, &a));
    {
      uint32_t sa = src_of(c, &a), sn = src_of(c, &n);
      TRY(push_result(c, TB_WASM_I32, &d));
      w = emit(c, TB__WOP_table_grow, 3);
      w[1].s.a = d;
      w[1].s.b = sa;
      w[2].s.a = sn;
      w[2].s.b = x;
      set_dst(c, d);
    }
    return 0;
  case 16: /* table.size */
    TRY(table_index(c, &x));
    TRY(push_result(c, TB_WASM_I32, &d));
    w = emit(c, TB__WOP_table_size, 2);
    w[1].s.a = d;
    w[1].s.b = x;
    set_dst(c, d);
    return 0;
  case 17: /* table.fill */
    TRY(table_index(c, &x));
    TRY(pop(c, TB_WASM_I32, &n));
    TRY(pop(c, m->tables[x].elem, &b));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a), sb = src_of(c, &b), sn = src_of(c, &n);
      w = emit(c, TB__WOP_table_fill, 3);
      w[1].s.a = sa;
      w[1].s.b = sb;
      w[2].s.a = sn;
      w[2].s.b = x;
    }
    mark_trap(c);
    return 0;
  default:
    return fail(c, TB_EPARSE, "illegal opcode 0xfc %u", sub);
  }
}

/* One instruction. */
static int instr(comp_t *c) {
  c->op_start = c->p;
  uint8_t opc = 0;
  TRY(rd_u8(c, &opc));
  tb_wasm_module_t *m = c->m;
  opnd_t a = {0}, b = {0};
  uint32_t x = 0, d = 0;
  tb__wcell_t *w;
  const numop_t *n = &numops[opc];
  switch (n->kind) {
  case NK_UN:
    if (opc == 0x45 || opc == 0x50) return op_eqz(c, opc);
    return op_unary(c, n, false);
  case NK_TRUNC:
    return op_unary(c, n, true);
  case NK_BIN:
  case NK_BINI:
  case NK_CMP:
  case NK_DIV:
    return op_binary(c, opc, n);
  case NK_LOAD:
    return op_load(c, n);
  case NK_STORE:
    return op_store(c, n);
  default:
    break;
  }
  switch (opc) {
  case 0x00: /* unreachable */
    emit(c, TB__WOP_unreachable, 1);
    mark_trap(c);
    set_unreachable(c);
    return 0;
  case 0x01: /* nop */
    return 0;
  case 0x02:
  case 0x03:
  case 0x04:
    return op_block(c, opc);
  case 0x05:
    return op_else(c);
  case 0x0b:
    return op_end(c);
  case 0x0c:
    return op_br(c);
  case 0x0d:
    return op_br_if(c);
  case 0x0e:
    return op_br_table(c);
  case 0x0f:
    return op_return(c);
  case 0x10:
    return op_call(c);
  case 0x11:
    return op_call_indirect(c);
  case 0x1a: /* drop */
    return pop(c, T_ANY, &a);
  case 0x1b:
    return op_select(c, false);
  case 0x1c:
    return op_select(c, true);
  case 0x20: /* local.get */
    TRY(local_index(c, &x));
    return push_local(c, c->ltype[x], c->lslot[x]);
  case 0x21:
    return op_local_set(c, false);
  case 0x22:
    return op_local_set(c, true);
  case 0x23: /* global.get */
    TRY(global_index(c, &x));
    TRY(push_result(c, m->globals[x].type.type, &d));
    w = emit(c, TB__WOP_global_get, 2);
    w[1].s.a = d;
    w[1].s.b = x;
    set_dst(c, d);
    return 0;
  case 0x24: /* global.set */
    TRY(global_index(c, &x));
    if (!m->globals[x].type.mutable_) return fail(c, TB_EINVAL, "global is immutable: global %u", x);
    TRY(pop(c, m->globals[x].type.type, &a));
    {
      uint32_t sa = src_of(c, &a);
      w = emit(c, TB__WOP_global_set, 2);
      w[1].s.a = sa;
      w[1].s.b = x;
    }
    return 0;
  case 0x25: /* table.get */
    TRY(table_index(c, &x));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a);
      TRY(push_result(c, m->tables[x].elem, &d));
      w = emit(c, TB__WOP_table_get, 3);
      w[1].s.a = d;
      w[1].s.b = sa;
      w[2].s.a = x;
      mark_trap(c);
      set_dst(c, d);
    }
    return 0;
  case 0x26: /* table.set */
    TRY(table_index(c, &x));
    TRY(pop(c, m->tables[x].elem, &b));
    TRY(pop(c, TB_WASM_I32, &a));
    {
      uint32_t sa = src_of(c, &a), sb = src_of(c, &b);
      w = emit(c, TB__WOP_table_set, 3);
      w[1].s.a = sa;
      w[1].s.b = sb;
      w[2].s.a = x;
      mark_trap(c);
    }
    return 0;
  case 0x3f: /* memory.size */
  case 0x40: /* memory.grow */
    TRY(rd_zero(c));
    if (m->nmems == 0) return fail(c, TB_EINVAL, "unknown memory 0");
    if (opc == 0x3f) {
      TRY(push_result(c, TB_WASM_I32, &d));
      w = emit(c, TB__WOP_memory_size, 2);
      w[1].s.a = d;
    } else {
      TRY(pop(c, TB_WASM_I32, &a));
      uint32_t sa = src_of(c, &a);
      TRY(push_result(c, TB_WASM_I32, &d));
      w = emit(c, TB__WOP_memory_grow, 2);
      w[1].s.a = d;
      w[1].s.b = sa;
    }
    set_dst(c, d);
    return 0;
  case 0x41: { /* i32.const */
    int64_t v = 0;
    TRY(rd_sleb(c, 32, &v));
    return push_const(c, TB_WASM_I32, (uint32_t)v);
  }
  case 0x42: {
    int64_t v = 0;
    TRY(rd_sleb(c, 64, &v));
    return push_const(c, TB_WASM_I64, (uint64_t)v);
  }
  case 0x43: {
    uint32_t v = 0;
    TRY(rd_bytes(c, &v, 4));
    return push_const(c, TB_WASM_F32, v);
  }
  case 0x44: {
    uint64_t v = 0;
    TRY(rd_bytes(c, &v, 8));
    return push_const(c, TB_WASM_F64, v);
  }
  case 0xbc: /* i32.reinterpret_f32 and friends: the bits stay, the type changes */
  case 0xbd:
  case 0xbe:
  case 0xbf: {
    static const uint32_t from[4] = {TB_WASM_F32, TB_WASM_F64, TB_WASM_I32, TB_WASM_I64};
    static const uint32_t to[4] = {TB_WASM_I32, TB_WASM_I64, TB_WASM_F32, TB_WASM_F64};
    TRY(pop(c, from[opc - 0xbc], &a));
    return repush(c, &a, to[opc - 0xbc]);
  }
  case 0xd0: { /* ref.null t */
    uint8_t t = 0;
    TRY(rd_u8(c, &t));
    if (t != TB_WASM_FUNCREF && t != TB_WASM_EXTERNREF) return fail(c, TB_EPARSE, "malformed reference type");
    return push_const(c, t, 0);
  }
  case 0xd1: /* ref.is_null */
    TRY(pop(c, T_ANY, &a));
    if (!is_ref(a.type)) return fail(c, TB_EINVAL, "type mismatch: expected a reference, got %s", tname(a.type));
    {
      uint32_t sa = src_of(c, &a);
      TRY(push_result(c, TB_WASM_I32, &d));
      w = emit(c, TB__WOP_ref_is_null, 2);
      w[1].s.a = d;
      w[1].s.b = sa;
      set_dst(c, d);
    }
    return 0;
  case 0xd2: /* ref.func */
    TRY(rd_u32(c, &x));
    if (x >= m->nfuncs) return fail(c, TB_EINVAL, "unknown function %u", x);
    if (m->declared_refs == NULL || !(m->declared_refs[x / 8] & (1u << (x % 8))))
      return fail(c, TB_EINVAL, "undeclared function reference %u", x);
    TRY(push_result(c, TB_WASM_FUNCREF, &d));
    w = emit(c, TB__WOP_ref_func, 2);
    w[1].s.a = d;
    w[1].s.b = x;
    set_dst(c, d);
    return 0;
  case 0xfc:
    return op_prefix_fc(c);
  default:
    return fail(c, TB_EPARSE, "illegal opcode 0x%02x", opc);
  }
}

/* ---- Malformations after an invalid instruction ---- */

/*
 * The spec decodes a whole module before validating it, so a malformed encoding
 * anywhere wins over an invalid instruction earlier. After a validation error the rest
 * of the bodies is only decoded, by this, from the failing instruction on (`depth`
 * blocks open); it returns the first malformation, or 0.
 */
static int skim(comp_t *c, uint32_t depth) {
  uint32_t x;
  uint64_t v64;
  int64_t s64;
  uint8_t b = 0;
  while (depth > 0) {
    if (c->p >= c->end) {
      c->op_start = c->p;
      return fail(c, TB_EPARSE, "END opcode expected");
    }
    c->op_start = c->p;
    uint8_t opc = *c->p++;
    if (numops[opc].kind == NK_LOAD || numops[opc].kind == NK_STORE) {
      TRY(rd_u32(c, &x));
      TRY(rd_u32(c, &x));
      continue;
    }
    if (numops[opc].kind != NK_NONE || (opc >= 0xbc && opc <= 0xbf)) continue;
    switch (opc) {
    case 0x00: case 0x01: case 0x0f: case 0x1a: case 0x1b: case 0xd1:
      break;
    case 0x02: case 0x03: case 0x04:
      if (c->p < c->end && (*c->p == 0x40 || (*c->p & 0xc0) == 0x40)) {
        if (*c->p != 0x40 && vt_ptr(*c->p) == NULL) return fail(c, TB_EPARSE, "malformed value type");
        c->p++;
      } else {
        TRY(rd_sleb(c, 33, &s64));
        if (s64 < 0) return fail(c, TB_EPARSE, "malformed value type");
      }
      depth++;
      break;
    case 0x05:
      break;
    case 0x0b:
      depth--;
      break;
    case 0x0c: case 0x0d: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25:
    case 0x26: case 0xd2:
      TRY(rd_u32(c, &x));
      break;
    case 0x0e: {
      uint32_t n;
      TRY(rd_u32(c, &n));
      for (uint64_t i = 0; i <= n; i++) TRY(rd_u32(c, &x));
      break;
    }
    case 0x11:
      TRY(rd_u32(c, &x));
      TRY(rd_u32(c, &x));
      break;
    case 0x1c: {
      uint32_t n;
      TRY(rd_u32(c, &n));
      for (uint64_t i = 0; i < n; i++) {
        TRY(rd_u8(c, &b));
        if (vt_ptr(b) == NULL) return fail(c, TB_EPARSE, "malformed value type");
      }
      break;
    }
    case 0x3f: case 0x40:
      TRY(rd_zero(c));
      break;
    case 0x41:
      TRY(rd_sleb(c, 32, &s64));
      break;
    case 0x42:
      TRY(rd_sleb(c, 64, &s64));
      break;
    case 0x43:
      TRY(rd_bytes(c, &x, 4));
      break;
    case 0x44:
      TRY(rd_bytes(c, &v64, 8));
      break;
    case 0xd0:
      TRY(rd_u8(c, &b));
      if (b != TB_WASM_FUNCREF && b != TB_WASM_EXTERNREF) return fail(c, TB_EPARSE, "malformed reference type");
      break;
    case 0xfc: {
      uint32_t sub;
      TRY(rd_u32(c, &sub));
      switch (sub) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
        break;
      case 8:
        TRY(rd_u32(c, &x));
        TRY(rd_zero(c));
        break;
      case 10:
        TRY(rd_zero(c));
        TRY(rd_zero(c));
        break;
      case 11:
        TRY(rd_zero(c));
        break;
      case 12: case 14:
        TRY(rd_u32(c, &x));
        TRY(rd_u32(c, &x));
        break;
      case 9: case 13: case 15: case 16: case 17:
        TRY(rd_u32(c, &x));
        break;
      default:
        return fail(c, TB_EPARSE, "illegal opcode 0xfc %u", sub);
      }
      break;
    }
    default:
      return fail(c, TB_EPARSE, "illegal opcode 0x%02x", opc);
    }
  }
  if (c->p != c->end) {
    c->op_start = c->p;
    return fail(c, TB_EPARSE, "section size mismatch");
  }
  return 0;
}

/* ---- Functions ---- */

static void comp_reset(comp_t *c) {
  tb_free(c->lslot);
  tb_free(c->ltype);
  tb_free(c->lrefs);
  c->lslot = NULL;
  c->ltype = NULL;
  c->lrefs = NULL;
  c->nstk = c->nctl = c->ncode = c->nrelocs = c->nsrcmap = c->nbrs = 0;
}

/*
 * Jump threading on the finished code (targets still cell indices): a branch to a plain
 * `br` goes straight to where that one goes, and a `br` to a return becomes the return.
 * Branches to loops (`br_loop`) are not followed: they check for interruption.
 */
static int thread_jumps(comp_t *c) {
  if (c->nbrs == 0) return 0;
  uint8_t *isbr = tb_calloc((size_t)c->ncode + 1, 1);
  uint32_t *dest = tb_calloc((size_t)c->nrelocs + 1, sizeof *dest);
  if (isbr == NULL || dest == NULL) {
    tb_free(isbr);
    tb_free(dest);
    return nomem(c);
  }
  for (uint32_t i = 0; i < c->nbrs; i++) isbr[c->brs[i]] = 1;
  const void *ret = c->h[TB__WOP_ret], *ret1 = c->h[TB__WOP_ret1];
  for (uint32_t i = 0; i < c->nrelocs; i++) {
    uint32_t d = (uint32_t)c->code[c->relocs[i]].u64;
    for (int hops = 0; hops < 16 && d < c->ncode && isbr[d]; hops++) d = (uint32_t)c->code[d + 1].u64;
    dest[i] = d;
  }
  for (uint32_t i = 0; i < c->nrelocs; i++) {
    uint32_t r = c->relocs[i], d = dest[i];
    if (r > 0 && isbr[r - 1] && d < c->ncode && (c->code[d].op == ret || c->code[d].op == ret1)) {
      c->code[r - 1] = c->code[d];
      c->code[r] = c->code[d].op == ret1 ? c->code[d + 1] : (tb__wcell_t){.u64 = 0};
      c->relocs[i] = UINT32_MAX;
    } else {
      c->code[r].u64 = d;
    }
  }
  tb_free(isbr);
  tb_free(dest);
  return 0;
}

void tb__wasm_code_free(tb__wcode_t *code) {
  if (code == NULL) return;
  tb_free(code->cells);
  tb_free(code->srcmap);
  tb_free(code);
}

static int compile_func(comp_t *c, uint32_t fidx) {
  tb_wasm_module_t *m = c->m;
  tb__wfuncdecl_t *fd = &m->funcs[fidx];
  const tb__wfunctype_t *ft = &m->types[fd->type_index];
  int rc = 0;
  tb__wcode_t *code = NULL;

  comp_reset(c);
  c->fidx = fidx;
  c->body = c->p = fd->body;
  c->end = fd->body_end;
  c->op_start = NULL;
  c->body_offset = fd->body_offset;
  c->dead = false;
  c->oom = false;
  c->toohigh = false;
  c->last.end = UINT32_MAX;
  c->nlazy = 0;

  uint64_t nl = (uint64_t)ft->nparams + fd->nlocals;
  if (nl > TB__WASM_MAX_LOCALS) return tb_errf(c->eb, TB_EPARSE, "function %u: too many locals", fidx);
  c->nlocals = (uint32_t)nl;
  c->lslot = tb_calloc(nl + 1, sizeof *c->lslot);
  c->ltype = tb_calloc(nl + 1, sizeof *c->ltype);
  if (c->lslot == NULL || c->ltype == NULL) return nomem(c);
  uint32_t s = 0;
  for (uint32_t i = 0; i < nl; i++) {
    tb_wasm_valtype_t t = i < ft->nparams ? ft->types[i] : fd->local_types[i - ft->nparams];
    c->ltype[i] = t;
    c->lslot[i] = s;
    s += width(t);
    if (i + 1 == ft->nparams) c->nparam_slots = s;
  }
  if (ft->nparams == 0) c->nparam_slots = 0;
  c->nlocal_slots = s;
  c->max_slot = s;
  c->lrefs = tb_calloc((size_t)s + 1, sizeof *c->lrefs);
  if (c->lrefs == NULL) return nomem(c);
  c->results = ft->types + ft->nparams;
  c->nresults = ft->nresults;
  c->results_slots = 0;
  for (uint32_t i = 0; i < ft->nresults; i++) c->results_slots += width(c->results[i]);

  /* Entry: stack check, interrupt check, locals zeroed. frame_slots is patched in. */
  c->op_start = c->body;
  emit(c, s > c->nparam_slots ? TB__WOP_enter_z : TB__WOP_enter, 3);
  mark_trap(c);
  TRY(push_ctrl(c, C_FUNC, NULL, 0, c->results, c->nresults));

  while (c->nctl > 0) {
    if (c->p >= c->end) {
      c->op_start = c->p;
      return fail(c, TB_EPARSE, "END opcode expected");
    }
    const uint8_t *start = c->p;
    uint32_t depth = c->nctl;
    rc = instr(c);
    if (rc == TB_EINVAL) {
      c->p = start; /* where skim() resumes */
      c->skim_depth = depth;
      return rc;
    }
    if (rc != 0) return rc;
    if (c->oom) return nomem(c);
  }
  if (c->p != c->end) {
    c->op_start = c->p;
    return fail(c, TB_EPARSE, "section size mismatch");
  }

  uint64_t frame = (uint64_t)c->max_slot + 2; /* +2: room for a v128 scratch */
  if (frame < c->results_slots) frame = c->results_slots;
  if (frame > UINT32_MAX / 2) return nomem(c);
  c->code[1].s.a = (uint32_t)frame;
  c->code[1].s.b = c->nparam_slots;
  c->code[2].s.a = c->nlocal_slots;

  TRY(thread_jumps(c));
  code = tb_calloc(1, sizeof *code);
  if (code == NULL) return nomem(c);
  code->cells = tb_reallocarray(NULL, c->ncode, sizeof *code->cells);
  code->srcmap = tb_reallocarray(NULL, c->nsrcmap ? c->nsrcmap : 1, sizeof *code->srcmap);
  if (code->cells == NULL || code->srcmap == NULL) {
    rc = nomem(c);
    goto out;
  }
  memcpy(code->cells, c->code, c->ncode * sizeof *code->cells);
  for (uint32_t i = 0; i < c->nrelocs; i++) {
    if (c->relocs[i] == UINT32_MAX) continue; /* a br that became a return */
    tb__wcell_t *cell = &code->cells[c->relocs[i]];
    cell->target = &code->cells[cell->u64];
  }
  memcpy(code->srcmap, c->srcmap, c->nsrcmap * sizeof *code->srcmap);
  code->ncells = c->ncode;
  code->nsrcmap = c->nsrcmap;
  code->nparams = c->nparam_slots;
  code->nresults = c->results_slots;
  code->nlocals = c->nlocal_slots;
  code->frame_slots = (uint32_t)frame;
  code->func_index = fidx;
  fd->code = code;
  code = NULL;
out:
  tb__wasm_code_free(code);
  return rc;
}

int tb__wasm_compile(tb_wasm_module_t *m, tb_errbuf_t *eb) {
  comp_t c;
  int rc = 0;
  memset(&c, 0, sizeof c);
  c.m = m;
  c.eb = eb;
  c.h = tb__wasm_handlers();
  /* Never NULL, so that &c.stk[i] and the like are always valid pointers. */
  if (!grow((void **)&c.stk, &c.capstk, 16, sizeof *c.stk) || !grow((void **)&c.tmp, &c.captmp, 16, sizeof *c.tmp)) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory");
    goto out;
  }
  for (uint32_t i = m->nimported_funcs; i < m->nfuncs; i++) {
    if ((rc = compile_func(&c, i)) == 0) continue;
    if (rc == TB_EINVAL) {
      /* Invalid, unless something after it is malformed. */
      char saved[sizeof c.errmsg];
      memcpy(saved, c.errmsg, sizeof saved);
      int prc = skim(&c, c.skim_depth);
      for (uint32_t j = i + 1; j < m->nfuncs && prc == 0; j++) {
        c.fidx = j;
        c.body = c.p = m->funcs[j].body;
        c.end = m->funcs[j].body_end;
        c.body_offset = m->funcs[j].body_offset;
        prc = skim(&c, 1);
      }
      if (prc != 0) rc = prc;
      else tb_errf(eb, rc, "%s", saved);
    }
    goto out;
  }
  /* Direct calls jump straight to the callee's first instruction. */
  for (uint32_t i = 0; i < c.nfixups; i++) {
    fixup_t *f = &c.fixups[i];
    tb__wcell_t *w = &m->funcs[f->func].code->cells[f->cell];
    const tb__wcell_t *callee = m->funcs[f->callee].code->cells;
    w[0].target = callee + 3; /* past its `enter`, which the call does */
    w[1] = callee[1];         /* frame_slots, nparams */
    w[2] = callee[2];         /* nlocals */
  }
out:
  comp_reset(&c);
  tb_free(c.stk);
  tb_free(c.ctl);
  tb_free(c.code);
  tb_free(c.relocs);
  tb_free(c.srcmap);
  tb_free(c.brs);
  tb_free(c.fixups);
  tb_free(c.tmp);
  tb_free(c.labels);
  return rc;
}
