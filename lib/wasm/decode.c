/*
 * decode.c — the first stage of the wasm engine: a binary module's bytes become the
 * structures of wasm_int.h (types, imports, function declarations, tables, memories,
 * globals, exports, the start function, element and data segments, custom sections and
 * the function names of the "name" section), with every module-level validation rule
 * that is not about function bodies checked on the way. Bodies are only delimited here
 * (their locals decoded); compile.c validates and compiles them.
 *
 * The spec decodes the whole binary before it validates anything, so a module that is
 * both malformed and invalid is malformed. We decode in one pass and check validity as
 * we go, but a validity problem is only recorded (the first one wins) and reported as
 * TB_EINVAL once the last section decoded cleanly (and, since bodies are compile.c's,
 * once a quick walk through them found nothing malformed either); a malformation ends
 * decoding at once with TB_EPARSE. Messages use the spec testsuite's words after the byte offset
 * ("offset 0x1f: unexpected end") so that they can be compared with the suite's.
 *
 * Nothing is read past m->len, and every count is checked against the bytes left
 * before anything is allocated for it, so a hostile count costs nothing. On failure the
 * module may be partly filled; tb__wasm_module_release frees whatever is there.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "wasm_int.h"

/* A window [pos, end) over the module's bytes; offsets are absolute. `top` marks the
 * module-level reader (section headers), as opposed to one inside a section. */
typedef struct reader {
  const uint8_t *p;
  size_t pos, end;
  bool top;
} reader_t;

typedef struct decoder {
  tb_wasm_module_t *m;
  tb_errbuf_t *eb; /* NULL while decoding the name section, whose errors are ignored */
  size_t len;      /* m->len */
  bool invalid;    /* a validation error was recorded in invalid_msg */
  char invalid_msg[256];
  bool has_code_section, has_data_section;
  uint32_t nfunc_decls; /* the function section's count */
  size_t name_pos, name_end; /* content of the first "name" custom section, if any */
  bool has_name;
} decoder_t;

#define TRY(expr)                  \
  do {                             \
    if ((rc = (expr)) < 0) goto out; \
  } while (0)

/* ---- errors ---------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int fail(decoder_t *d, int code, size_t off, const char *fmt, ...) {
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return tb_errf(d->eb, code, "offset 0x%zx: %s", off, msg);
}

#define MALFORMED(d, off, ...) fail((d), TB_EPARSE, (off), __VA_ARGS__)

/* Records a validation error, to be reported if the rest of the module decodes. */
__attribute__((format(printf, 3, 4))) static void invalid(decoder_t *d, size_t off, const char *fmt, ...) {
  if (d->invalid) return;
  d->invalid = true;
  int n = snprintf(d->invalid_msg, sizeof d->invalid_msg, "offset 0x%zx: ", off);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->invalid_msg + n, sizeof d->invalid_msg - (size_t)n, fmt, ap);
  va_end(ap);
}

/* Running out of bytes: the spec's words are "unexpected end" in the header and between
 * sections, "unexpected end of section or function" inside one. */
static int eos(decoder_t *d, const reader_t *r) {
  return MALFORMED(d, r->end, r->top ? "unexpected end" : "unexpected end of section or function");
}

static int out_of_memory(decoder_t *d) { return tb_errf(d->eb, TB_ENOMEM, "out of memory decoding the module"); }

/* ---- primitive readers ------------------------------------------------------------- */

static size_t left(const reader_t *r) { return r->end - r->pos; }

/* The readers zero their output on failure too, which keeps the compiler's flow
 * analysis (it cannot know that an error code is negative) free of false alarms. */
static int rd_u8(decoder_t *d, reader_t *r, uint8_t *out) {
  *out = 0;
  if (r->pos >= r->end) return eos(d, r);
  *out = r->p[r->pos++];
  return 0;
}

static int rd_bytes(decoder_t *d, reader_t *r, size_t n, const uint8_t **out) {
  if (out != NULL) *out = NULL;
  if (n > left(r)) return eos(d, r);
  if (out != NULL) *out = r->p + r->pos;
  r->pos += n;
  return 0;
}

/* Unsigned LEB128 of at most `bits` bits (1 or 32): ceil(bits/7) bytes at most, and
 * the bits of the last byte beyond `bits` must be zero. */
static int rd_uleb(decoder_t *d, reader_t *r, unsigned bits, uint32_t *out) {
  size_t start = r->pos;
  unsigned maxbytes = (bits + 6) / 7;
  uint32_t v = 0;
  *out = 0;
  for (unsigned i = 0;; i++) {
    uint8_t b;
    int rc = rd_u8(d, r, &b);
    if (rc < 0) return rc;
    if (i == maxbytes - 1) {
      if (b & 0x80) return MALFORMED(d, start, "integer representation too long");
      unsigned used = bits - 7 * i; /* payload bits this byte may carry */
      if ((b >> used) != 0) return MALFORMED(d, start, "integer too large");
      v |= (uint32_t)b << (7 * i);
      break;
    }
    v |= (uint32_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) break;
  }
  *out = v;
  return 0;
}

static int rd_u32(decoder_t *d, reader_t *r, uint32_t *out) { return rd_uleb(d, r, 32, out); }

/* Signed LEB128 of `bits` bits (32, 33 or 64): the last byte's unused bits must all
 * equal the sign bit. */
static int rd_sleb(decoder_t *d, reader_t *r, unsigned bits, int64_t *out) {
  size_t start = r->pos;
  unsigned maxbytes = (bits + 6) / 7;
  uint64_t v = 0;
  unsigned shift = 0;
  uint8_t b;
  *out = 0;
  for (unsigned i = 0;; i++) {
    int rc = rd_u8(d, r, &b);
    if (rc < 0) return rc;
    if (i == maxbytes - 1) {
      if (b & 0x80) return MALFORMED(d, start, "integer representation too long");
      unsigned used = bits - 7 * i; /* payload bits, the sign bit included */
      uint8_t rest = (uint8_t)((b & 0x7f) >> (used - 1)); /* the sign bit and above */
      if (rest != 0 && rest != (0x7f >> (used - 1))) return MALFORMED(d, start, "integer too large");
    }
    v |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (shift < 64 && (b & 0x40)) v |= ~(uint64_t)0 << shift;
  *out = (int64_t)v;
  return 0;
}

/*
 * A count of items: each takes at least a byte, so a count past the bytes left cannot be
 * right and fails before anything is allocated for it. (Tighter bounds per kind of item
 * would change which error the spec's order of decoding reports first.)
 */
static int rd_count(decoder_t *d, reader_t *r, uint32_t *out) {
  int rc = rd_u32(d, r, out);
  if (rc < 0) return rc;
  if (*out > left(r)) return eos(d, r);
  return 0;
}

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
      k = 1, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      k = 2, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      k = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i <= k) return false;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += k + 1;
  }
  return true;
}

static int rd_name(decoder_t *d, reader_t *r, const uint8_t **s, uint32_t *n) {
  size_t start = r->pos;
  int rc = rd_u32(d, r, n);
  if (rc < 0) return rc;
  if ((rc = rd_bytes(d, r, *n, s)) < 0) return rc;
  if (!utf8_valid(*s, *n)) return MALFORMED(d, start, "malformed UTF-8 encoding");
  return 0;
}

/* ---- types ---------------------------------------------------------------------- */

static bool is_valtype(uint8_t b) {
  switch (b) {
  case TB_WASM_I32:
  case TB_WASM_I64:
  case TB_WASM_F32:
  case TB_WASM_F64:
  case TB_WASM_V128:
  case TB_WASM_FUNCREF:
  case TB_WASM_EXTERNREF:
    return true;
  default:
    return false;
  }
}


static int rd_valtype(decoder_t *d, reader_t *r, tb_wasm_valtype_t *out) {
  size_t at = r->pos;
  *out = TB_WASM_I32;
  uint8_t b;
  int rc = rd_u8(d, r, &b);
  if (rc < 0) return rc;
  if (b & 0x80) return MALFORMED(d, at, "integer representation too long"); /* as the spec's s7 */
  if (!is_valtype(b)) return MALFORMED(d, at, "malformed value type 0x%02x", b);
  *out = (tb_wasm_valtype_t)b;
  return 0;
}

static int rd_reftype(decoder_t *d, reader_t *r, tb_wasm_valtype_t *out) {
  size_t at = r->pos;
  *out = TB_WASM_FUNCREF;
  uint8_t b;
  int rc = rd_u8(d, r, &b);
  if (rc < 0) return rc;
  if (b != TB_WASM_FUNCREF && b != TB_WASM_EXTERNREF) return MALFORMED(d, at, "malformed reference type");
  *out = (tb_wasm_valtype_t)b;
  return 0;
}

static int rd_limits(decoder_t *d, reader_t *r, tb_wasm_limits_t *out) {
  uint32_t flags, min, max = 0;
  int rc;
  /* The flag is a LEB128 of one bit, so 0x81 0x00 is "too long", 0x02 "too large". */
  if ((rc = rd_uleb(d, r, 1, &flags)) < 0) return rc;
  if ((rc = rd_u32(d, r, &min)) < 0) return rc;
  if (flags == 1 && (rc = rd_u32(d, r, &max)) < 0) return rc;
  out->min = min;
  out->max = max;
  out->has_max = flags == 1;
  return 0;
}

static void check_limits(decoder_t *d, size_t at, const tb_wasm_limits_t *l, uint64_t range, const char *too_big) {
  if (l->min > range || (l->has_max && l->max > range))
    invalid(d, at, "%s", too_big);
  else if (l->has_max && l->min > l->max)
    invalid(d, at, "size minimum must not be greater than maximum");
}

static void check_memory(decoder_t *d, size_t at, const tb_wasm_limits_t *l) {
  check_limits(d, at, l, TB__WASM_MAX_PAGES, "memory size must be at most 65536 pages (4GiB)");
}

static void check_table(decoder_t *d, size_t at, const tb__wtabletype_t *t) {
  check_limits(d, at, &t->limits, UINT32_MAX, "table size must be at most 2^32-1");
}

static int rd_tabletype(decoder_t *d, reader_t *r, tb__wtabletype_t *out) {
  int rc = rd_reftype(d, r, &out->elem);
  if (rc < 0) return rc;
  return rd_limits(d, r, &out->limits);
}

static int rd_globaltype(decoder_t *d, reader_t *r, tb__wglobaltype_t *out) {
  int rc = rd_valtype(d, r, &out->type);
  if (rc < 0) return rc;
  size_t at = r->pos;
  uint8_t mut;
  if ((rc = rd_u8(d, r, &mut)) < 0) return rc;
  if (mut > 1) return MALFORMED(d, at, "malformed mutability");
  out->mutable_ = mut == 1;
  return 0;
}

/* ---- instructions (only skipped: constant expressions may contain any) ------------ */

static int rd_memarg(decoder_t *d, reader_t *r) {
  uint32_t align, offset;
  int rc = rd_u32(d, r, &align);
  if (rc < 0) return rc;
  return rd_u32(d, r, &offset);
}

static int rd_zero_byte(decoder_t *d, reader_t *r) {
  size_t at = r->pos;
  uint8_t b;
  int rc = rd_u8(d, r, &b);
  if (rc < 0) return rc;
  if (b != 0) return MALFORMED(d, at, "zero byte expected");
  return 0;
}

/*
 * Reads the immediates of the instruction whose first byte `op` was just read at `at`,
 * so that a constant expression holding any instruction decodes as the spec decodes it
 * (an unknown opcode is malformed, a known but non-constant one merely invalid).
 * *nest is +1 for block/loop/if, 0 otherwise.
 */
static int skip_instr(decoder_t *d, reader_t *r, uint8_t op, size_t at, int *nest) {
  uint32_t u, n;
  int64_t s;
  int rc = 0;
  *nest = 0;
  switch (op) {
  case 0x00: case 0x01: case 0x05: case 0x0f: case 0x1a: case 0x1b: case 0xd1:
    return 0;
  case 0x02: case 0x03: case 0x04: { /* block, loop, if: blocktype */
    *nest = 1;
    if (r->pos < r->end && (r->p[r->pos] == 0x40 || is_valtype(r->p[r->pos]))) {
      r->pos++;
      return 0;
    }
    size_t bt = r->pos;
    if ((rc = rd_sleb(d, r, 33, &s)) < 0) return rc;
    if (s < 0) return MALFORMED(d, bt, "malformed block type");
    return 0;
  }
  case 0x0c: case 0x0d: case 0x10: case 0x20: case 0x21: case 0x22: case 0x23: case 0x24:
  case 0x25: case 0x26: case 0xd2:
    return rd_u32(d, r, &u);
  case 0x0e: /* br_table */
    if ((rc = rd_count(d, r, &n)) < 0) return rc;
    for (uint32_t i = 0; i <= n; i++)
      if ((rc = rd_u32(d, r, &u)) < 0) return rc;
    return 0;
  case 0x11: /* call_indirect typeidx tableidx */
    if ((rc = rd_u32(d, r, &u)) < 0) return rc;
    return rd_u32(d, r, &u);
  case 0x1c: { /* select t* */
    tb_wasm_valtype_t t;
    if ((rc = rd_count(d, r, &n)) < 0) return rc;
    for (uint32_t i = 0; i < n; i++)
      if ((rc = rd_valtype(d, r, &t)) < 0) return rc;
    return 0;
  }
  case 0x3f: case 0x40:
    return rd_zero_byte(d, r);
  case 0x41:
    return rd_sleb(d, r, 32, &s);
  case 0x42:
    return rd_sleb(d, r, 64, &s);
  case 0x43:
    return rd_bytes(d, r, 4, NULL);
  case 0x44:
    return rd_bytes(d, r, 8, NULL);
  case 0xd0: {
    tb_wasm_valtype_t t;
    return rd_reftype(d, r, &t);
  }
  case 0xfc:
    if ((rc = rd_u32(d, r, &u)) < 0) return rc;
    switch (u) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
      return 0;
    case 8: /* memory.init dataidx 0x00 */
      if ((rc = rd_u32(d, r, &n)) < 0) return rc;
      return rd_zero_byte(d, r);
    case 9: case 13: case 15: case 16: case 17:
      return rd_u32(d, r, &n);
    case 10:
      if ((rc = rd_zero_byte(d, r)) < 0) return rc;
      return rd_zero_byte(d, r);
    case 11:
      return rd_zero_byte(d, r);
    case 12: case 14:
      if ((rc = rd_u32(d, r, &n)) < 0) return rc;
      return rd_u32(d, r, &n);
    default:
      return MALFORMED(d, at, "illegal opcode 0xfc %u", u);
    }
  case 0xfd: /* SIMD: only the immediates' shapes matter here */
    if ((rc = rd_u32(d, r, &u)) < 0) return rc;
    if (u <= 11 || u == 92 || u == 93) return rd_memarg(d, r);
    if (u == 12 || u == 13) return rd_bytes(d, r, 16, NULL);
    if (u >= 21 && u <= 34) return rd_bytes(d, r, 1, NULL);
    if (u >= 84 && u <= 91) {
      if ((rc = rd_memarg(d, r)) < 0) return rc;
      return rd_bytes(d, r, 1, NULL);
    }
    if (u <= 255) return 0;
    return MALFORMED(d, at, "illegal opcode 0xfd %u", u);
  default:
    if (op >= 0x28 && op <= 0x3e) return rd_memarg(d, r);
    if (op >= 0x45 && op <= 0xc4) return 0;
    return MALFORMED(d, at, "illegal opcode 0x%02x", op);
  }
}

/* ---- constant expressions ------------------------------------------------------------ */

/* Marks function `idx` as named outside function bodies (C.refs), so ref.func may use it. */
static int declare_ref(decoder_t *d, uint32_t idx) {
  tb_wasm_module_t *m = d->m;
  if (m->declared_refs == NULL) {
    /* The function index space is complete: every section naming a function comes
     * after the function section. */
    m->declared_refs = tb_calloc(((size_t)m->nfuncs + 7) / 8, 1);
    if (m->declared_refs == NULL) return out_of_memory(d);
  }
  if (idx < m->nfuncs) m->declared_refs[idx / 8] |= (uint8_t)(1u << (idx % 8));
  return 0;
}

/*
 * Decodes a constant expression through its `end` into *out and checks (deferred) that it
 * is constant and produces exactly one value of type `want`. In Wasm 2.0 global.get in a
 * constant expression may only name an imported, immutable global (module validation
 * uses a context holding just the imported globals for globals, elements and data).
 */
static int rd_constexpr(decoder_t *d, reader_t *r, tb_wasm_valtype_t want, tb__wconstexpr_t *out) {
  tb_wasm_module_t *m = d->m;
  size_t start = r->pos;
  uint32_t count = 0, depth = 0;
  bool problem = false; /* the first non-constant instruction was already reported */
  int rc;
  memset(out, 0, sizeof *out);
  for (;;) {
    size_t at = r->pos;
    uint8_t op;
    if ((rc = rd_u8(d, r, &op)) < 0) return rc;
    if (op == 0x0b) {
      if (depth == 0) break;
      depth--;
      continue;
    }
    if (op == 0x05 && depth == 0) return MALFORMED(d, at, "END opcode expected");
    bool top = depth == 0, constant = top;
    tb__wconstexpr_t c = {0};
    uint32_t u;
    int64_t s;
    switch (op) {
    case 0x41:
      if ((rc = rd_sleb(d, r, 32, &s)) < 0) return rc;
      c = (tb__wconstexpr_t){TB__WCONST_I32, TB_WASM_I32, (uint32_t)s, 0};
      break;
    case 0x42:
      if ((rc = rd_sleb(d, r, 64, &s)) < 0) return rc;
      c = (tb__wconstexpr_t){TB__WCONST_I64, TB_WASM_I64, (uint64_t)s, 0};
      break;
    case 0x43: {
      const uint8_t *p;
      if ((rc = rd_bytes(d, r, 4, &p)) < 0) return rc;
      c = (tb__wconstexpr_t){TB__WCONST_F32, TB_WASM_F32,
                             (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24, 0};
      break;
    }
    case 0x44: {
      const uint8_t *p;
      if ((rc = rd_bytes(d, r, 8, &p)) < 0) return rc;
      uint64_t v = 0;
      for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
      c = (tb__wconstexpr_t){TB__WCONST_F64, TB_WASM_F64, v, 0};
      break;
    }
    case 0x23:
      if ((rc = rd_u32(d, r, &u)) < 0) return rc;
      if (u >= m->nimported_globals) {
        if (constant && !problem) invalid(d, at, "unknown global %u", u);
        problem = true;
        constant = false;
        break;
      }
      c = (tb__wconstexpr_t){TB__WCONST_GLOBAL_GET, m->globals[u].type.type, u, 0};
      if (m->globals[u].type.mutable_) constant = false;
      break;
    case 0xd0: {
      tb_wasm_valtype_t t;
      if ((rc = rd_reftype(d, r, &t)) < 0) return rc;
      c = (tb__wconstexpr_t){TB__WCONST_REF_NULL, t, 0, 0};
      break;
    }
    case 0xd2:
      if ((rc = rd_u32(d, r, &u)) < 0) return rc;
      c = (tb__wconstexpr_t){TB__WCONST_REF_FUNC, TB_WASM_FUNCREF, u, 0};
      if ((rc = declare_ref(d, u)) < 0) return rc;
      break;
    case 0xfd: {
      /* v128.const is 0xfd then 12 as a u32 LEB128 (which may be padded). Anything else
       * after 0xfd, or an error reading it, goes to skip_instr, which reads it again. */
      reader_t peek = *r;
      uint32_t sub;
      if (rd_u32(d, &peek, &sub) == 0 && sub == 12) {
        const uint8_t *p;
        *r = peek;
        if ((rc = rd_bytes(d, r, 16, &p)) < 0) return rc;
        uint64_t lo = 0, hi = 0;
        for (int i = 7; i >= 0; i--) lo = lo << 8 | p[i], hi = hi << 8 | p[8 + i];
        c = (tb__wconstexpr_t){TB__WCONST_V128, TB_WASM_V128, lo, hi};
        break;
      }
    }
      /* fallthrough */
    default: {
      int nest;
      if ((rc = skip_instr(d, r, op, at, &nest)) < 0) return rc;
      depth += (uint32_t)nest;
      constant = false;
      break;
    }
    }
    if (top) {
      if (!constant && !problem) {
        invalid(d, at, "constant expression required");
        problem = true;
      }
      if (count == 0) *out = c;
      count++;
    }
  }
  if (problem) return 0;
  if (count != 1) {
    invalid(d, start, "type mismatch: a constant expression must produce one %s, this one produces %u values",
            tb_wasm_valtype_name(want), count);
    return 0;
  }
  if (out->op == TB__WCONST_REF_FUNC && out->bits >= m->nfuncs) {
    invalid(d, start, "unknown function %u", (uint32_t)out->bits);
    return 0;
  }
  if (out->type != want)
    invalid(d, start, "type mismatch: expected %s, got %s", tb_wasm_valtype_name(want),
            tb_wasm_valtype_name(out->type));
  return 0;
}

/* ---- sections --------------------------------------------------------------------- */

static int too_many(decoder_t *d, size_t at, const char *what, uint64_t n, uint32_t limit) {
  return fail(d, TB_ETOOBIG, at, "too many %s (%llu, the limit is %u)", what, (unsigned long long)n, limit);
}

static int sec_type(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if (n > TB__WASM_MAX_TYPES) return too_many(d, at, "types", n, TB__WASM_MAX_TYPES);
  m->types = tb_calloc(n, sizeof *m->types);
  if (m->types == NULL) return out_of_memory(d);
  for (uint32_t i = 0; i < n; i++) {
    tb__wfunctype_t *t = &m->types[i];
    uint8_t form;
    uint32_t np, nr;
    at = r->pos;
    if ((rc = rd_u8(d, r, &form)) < 0) return rc;
    /* The reference decoder reads the form as a one-byte signed LEB128. */
    if (form & 0x80) return MALFORMED(d, at, "integer representation too long");
    if (form != 0x60) return MALFORMED(d, at, "malformed function type 0x%02x", form);
    /* Read (and check) both vectors, then allocate and copy them. */
    size_t pat = r->pos;
    tb_wasm_valtype_t vt;
    if ((rc = rd_count(d, r, &np)) < 0) return rc;
    if (np > TB__WASM_MAX_PARAMS) return too_many(d, pat, "parameters", np, TB__WASM_MAX_PARAMS);
    size_t params = r->pos;
    for (uint32_t k = 0; k < np; k++)
      if ((rc = rd_valtype(d, r, &vt)) < 0) return rc;
    size_t rat = r->pos;
    if ((rc = rd_count(d, r, &nr)) < 0) return rc;
    if (nr > TB__WASM_MAX_RESULTS) return too_many(d, rat, "results", nr, TB__WASM_MAX_RESULTS);
    size_t results = r->pos;
    for (uint32_t k = 0; k < nr; k++)
      if ((rc = rd_valtype(d, r, &vt)) < 0) return rc;
    t->types = tb_calloc((size_t)np + nr, sizeof *t->types);
    if (t->types == NULL) return out_of_memory(d);
    m->ntypes = i + 1; /* owns t->types from here on */
    for (uint32_t k = 0; k < np; k++) t->types[k] = (tb_wasm_valtype_t)r->p[params + k];
    for (uint32_t k = 0; k < nr; k++) t->types[np + k] = (tb_wasm_valtype_t)r->p[results + k];
    t->nparams = np;
    t->nresults = nr;
    if ((rc = tb__wasm_type_intern(m->engine, t->types, np, nr, &t->id)) < 0)
      return tb_errf(d->eb, rc, "interning function type %u: %s", i, tb_strerror(rc));
  }
  return 0;
}

static int sec_import(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if (n > TB__WASM_MAX_IMPORTS) return too_many(d, at, "imports", n, TB__WASM_MAX_IMPORTS);
  m->imports = tb_calloc(n, sizeof *m->imports);
  if (m->imports == NULL) return out_of_memory(d);
  for (uint32_t i = 0; i < n; i++) {
    tb__wimport_t *im = &m->imports[i];
    const uint8_t *mod, *name;
    uint32_t modlen, namelen;
    if ((rc = rd_name(d, r, &mod, &modlen)) < 0) return rc;
    if ((rc = rd_name(d, r, &name, &namelen)) < 0) return rc;
    im->module = tb_strndup((const char *)mod, modlen);
    im->name = tb_strndup((const char *)name, namelen);
    m->nimports = i + 1;
    if (im->module == NULL || im->name == NULL) return out_of_memory(d);
    im->module_len = modlen;
    im->name_len = namelen;
    at = r->pos;
    uint8_t kind;
    if ((rc = rd_u8(d, r, &kind)) < 0) return rc;
    if (kind > 3) return MALFORMED(d, at, "malformed import kind");
    im->kind = (tb_wasm_extern_kind_t)kind;
    size_t dat = r->pos;
    switch (im->kind) {
    case TB_WASM_EXTERN_FUNC:
      if ((rc = rd_u32(d, r, &im->type_index)) < 0) return rc;
      if (im->type_index >= m->ntypes) invalid(d, dat, "unknown type %u", im->type_index);
      im->index = m->nimported_funcs++;
      break;
    case TB_WASM_EXTERN_TABLE:
      if ((rc = rd_tabletype(d, r, &im->table)) < 0) return rc;
      check_table(d, dat, &im->table);
      im->index = m->nimported_tables++;
      break;
    case TB_WASM_EXTERN_MEMORY:
      if ((rc = rd_limits(d, r, &im->memory)) < 0) return rc;
      check_memory(d, dat, &im->memory);
      im->index = m->nimported_mems++;
      break;
    case TB_WASM_EXTERN_GLOBAL:
      if ((rc = rd_globaltype(d, r, &im->global)) < 0) return rc;
      im->index = m->nimported_globals++;
      break;
    }
  }
  /* The imports open each index space. */
  m->funcs = tb_calloc(m->nimported_funcs, sizeof *m->funcs);
  m->tables = tb_calloc(m->nimported_tables, sizeof *m->tables);
  m->mems = tb_calloc(m->nimported_mems, sizeof *m->mems);
  m->globals = tb_calloc(m->nimported_globals, sizeof *m->globals);
  if (m->funcs == NULL || m->tables == NULL || m->mems == NULL || m->globals == NULL) return out_of_memory(d);
  for (uint32_t i = 0; i < m->nimports; i++) {
    const tb__wimport_t *im = &m->imports[i];
    switch (im->kind) {
    case TB_WASM_EXTERN_FUNC:
      m->funcs[im->index] = (tb__wfuncdecl_t){.type_index = im->type_index, .imported = true};
      break;
    case TB_WASM_EXTERN_TABLE:
      m->tables[im->index] = im->table;
      break;
    case TB_WASM_EXTERN_MEMORY:
      m->mems[im->index] = im->memory;
      break;
    case TB_WASM_EXTERN_GLOBAL:
      m->globals[im->index].type = im->global;
      break;
    }
  }
  m->nfuncs = m->nimported_funcs;
  m->ntables = m->nimported_tables;
  m->nmems = m->nimported_mems;
  m->nglobals = m->nimported_globals;
  return 0;
}

/* Grows `*arr` (of `have` elements of `size` bytes) to `have + more`, zeroing the rest. */
static int grow(decoder_t *d, void **arr, uint32_t have, uint32_t more, size_t size) {
  void *p = tb_reallocarray(*arr, (size_t)have + more, size);
  if (p == NULL) return out_of_memory(d);
  memset((uint8_t *)p + (size_t)have * size, 0, (size_t)more * size);
  *arr = p;
  return 0;
}

static int sec_function(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if ((uint64_t)m->nfuncs + n > TB__WASM_MAX_FUNCS)
    return too_many(d, at, "functions", (uint64_t)m->nfuncs + n, TB__WASM_MAX_FUNCS);
  if ((rc = grow(d, (void **)&m->funcs, m->nfuncs, n, sizeof *m->funcs)) < 0) return rc;
  d->nfunc_decls = n;
  for (uint32_t i = 0; i < n; i++) {
    at = r->pos;
    uint32_t ti;
    if ((rc = rd_u32(d, r, &ti)) < 0) return rc;
    if (ti >= m->ntypes) invalid(d, at, "unknown type %u", ti);
    m->funcs[m->nfuncs++].type_index = ti;
  }
  return 0;
}

static int sec_table(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if ((uint64_t)m->ntables + n > TB__WASM_MAX_TABLES)
    return too_many(d, at, "tables", (uint64_t)m->ntables + n, TB__WASM_MAX_TABLES);
  if ((rc = grow(d, (void **)&m->tables, m->ntables, n, sizeof *m->tables)) < 0) return rc;
  for (uint32_t i = 0; i < n; i++) {
    at = r->pos;
    if ((rc = rd_tabletype(d, r, &m->tables[m->ntables])) < 0) return rc;
    check_table(d, at, &m->tables[m->ntables]);
    m->ntables++;
  }
  return 0;
}

static int sec_memory(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if ((rc = grow(d, (void **)&m->mems, m->nmems, n, sizeof *m->mems)) < 0) return rc;
  for (uint32_t i = 0; i < n; i++) {
    size_t at = r->pos;
    if ((rc = rd_limits(d, r, &m->mems[m->nmems])) < 0) return rc;
    check_memory(d, at, &m->mems[m->nmems]);
    m->nmems++;
  }
  return 0;
}

static int sec_global(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if ((uint64_t)m->nglobals + n > TB__WASM_MAX_GLOBALS)
    return too_many(d, at, "globals", (uint64_t)m->nglobals + n, TB__WASM_MAX_GLOBALS);
  if ((rc = grow(d, (void **)&m->globals, m->nglobals, n, sizeof *m->globals)) < 0) return rc;
  for (uint32_t i = 0; i < n; i++) {
    tb__wglobal_t *g = &m->globals[m->nglobals];
    if ((rc = rd_globaltype(d, r, &g->type)) < 0) return rc;
    if ((rc = rd_constexpr(d, r, g->type.type, &g->init)) < 0) return rc;
    m->nglobals++;
  }
  return 0;
}

/* Export names must be unique: sort indices by name and compare neighbours. */
static int check_export_names(decoder_t *d, const size_t *offsets) {
  tb_wasm_module_t *m = d->m;
  uint32_t *idx = tb_calloc(m->nexports, sizeof *idx);
  if (idx == NULL) return out_of_memory(d);
  for (uint32_t i = 0; i < m->nexports; i++) idx[i] = i;
  /* A bottom-up merge sort: qsort has no context argument, and modules are decoded on
   * several threads at once, so a comparator reading a static would race. */
  uint32_t *tmp = tb_calloc(m->nexports, sizeof *tmp);
  if (tmp == NULL) {
    tb_free(idx);
    return out_of_memory(d);
  }
  for (uint32_t w = 1; w < m->nexports; w *= 2) {
    for (uint32_t lo = 0; lo < m->nexports; lo += 2 * w) {
      uint32_t mid = lo + w < m->nexports ? lo + w : m->nexports;
      uint32_t hi = mid + w < m->nexports ? mid + w : m->nexports;
      uint32_t a = lo, b = mid, k = lo;
      while (a < mid && b < hi) {
        const tb__wexport_t *x = &m->exports[idx[a]], *y = &m->exports[idx[b]];
        int c = x->name_len != y->name_len ? (x->name_len < y->name_len ? -1 : 1)
                                           : memcmp(x->name, y->name, x->name_len);
        tmp[k++] = c <= 0 ? idx[a++] : idx[b++];
      }
      while (a < mid) tmp[k++] = idx[a++];
      while (b < hi) tmp[k++] = idx[b++];
    }
    memcpy(idx, tmp, (size_t)m->nexports * sizeof *idx);
  }
  for (uint32_t i = 1; i < m->nexports; i++) {
    const tb__wexport_t *x = &m->exports[idx[i - 1]], *y = &m->exports[idx[i]];
    if (x->name_len == y->name_len && memcmp(x->name, y->name, x->name_len) == 0) {
      uint32_t later = idx[i - 1] > idx[i] ? idx[i - 1] : idx[i];
      invalid(d, offsets[later], "duplicate export name \"%.*s\"", (int)(y->name_len > 64 ? 64 : y->name_len),
              y->name);
      break;
    }
  }
  tb_free(tmp);
  tb_free(idx);
  return 0;
}

static int sec_export(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc = 0;
  size_t *offsets = NULL;
  size_t at = r->pos;
  TRY(rd_count(d, r, &n));
  if (n > TB__WASM_MAX_EXPORTS) {
    rc = too_many(d, at, "exports", n, TB__WASM_MAX_EXPORTS);
    goto out;
  }
  m->exports = tb_calloc(n, sizeof *m->exports);
  offsets = tb_calloc(n, sizeof *offsets);
  if (m->exports == NULL || offsets == NULL) {
    rc = out_of_memory(d);
    goto out;
  }
  for (uint32_t i = 0; i < n; i++) {
    tb__wexport_t *ex = &m->exports[i];
    const uint8_t *name;
    uint32_t namelen;
    offsets[i] = r->pos;
    TRY(rd_name(d, r, &name, &namelen));
    ex->name = tb_strndup((const char *)name, namelen);
    ex->name_len = namelen;
    m->nexports = i + 1;
    if (ex->name == NULL) {
      rc = out_of_memory(d);
      goto out;
    }
    at = r->pos;
    uint8_t kind;
    TRY(rd_u8(d, r, &kind));
    if (kind > 3) {
      rc = MALFORMED(d, at, "malformed export kind");
      goto out;
    }
    ex->kind = (tb_wasm_extern_kind_t)kind;
    at = r->pos;
    TRY(rd_u32(d, r, &ex->index));
    switch (ex->kind) {
    case TB_WASM_EXTERN_FUNC:
      if (ex->index >= m->nfuncs) invalid(d, at, "unknown function %u", ex->index);
      TRY(declare_ref(d, ex->index));
      break;
    case TB_WASM_EXTERN_TABLE:
      if (ex->index >= m->ntables) invalid(d, at, "unknown table %u", ex->index);
      break;
    case TB_WASM_EXTERN_MEMORY:
      if (ex->index >= m->nmems) invalid(d, at, "unknown memory %u", ex->index);
      break;
    case TB_WASM_EXTERN_GLOBAL:
      if (ex->index >= m->nglobals) invalid(d, at, "unknown global %u", ex->index);
      break;
    }
  }
  TRY(check_export_names(d, offsets));
out:
  tb_free(offsets);
  return rc;
}

static int sec_start(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  size_t at = r->pos;
  int rc = rd_u32(d, r, &m->start);
  if (rc < 0) return rc;
  m->has_start = true;
  if (m->start >= m->nfuncs) {
    invalid(d, at, "unknown function %u", m->start);
  } else {
    uint32_t ti = m->funcs[m->start].type_index;
    if (ti < m->ntypes && (m->types[ti].nparams != 0 || m->types[ti].nresults != 0))
      invalid(d, at, "start function must have type [] -> []");
  }
  return 0;
}

static int sec_elem(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  if (n > TB__WASM_MAX_SEGMENTS) return too_many(d, at, "element segments", n, TB__WASM_MAX_SEGMENTS);
  m->elems = tb_calloc(n, sizeof *m->elems);
  if (m->elems == NULL) return out_of_memory(d);
  for (uint32_t i = 0; i < n; i++) {
    tb__welem_t *e = &m->elems[i];
    m->nelems = i + 1;
    at = r->pos;
    uint32_t flags;
    if ((rc = rd_u32(d, r, &flags)) < 0) return rc;
    if (flags > 7) return MALFORMED(d, at, "malformed elements segment kind %u", flags);
    /* Bit 0: passive or declarative (bit 1 tells which) versus active; bit 1 on an active
     * segment: an explicit table index; bit 2: items are expressions, not indices. */
    bool active = !(flags & 1), exprs = flags & 4;
    e->mode = active ? TB__WSEG_ACTIVE : (flags & 2) ? TB__WSEG_DECLARATIVE : TB__WSEG_PASSIVE;
    e->type = TB_WASM_FUNCREF;
    size_t tat = r->pos;
    if (active && (flags & 2) && (rc = rd_u32(d, r, &e->table)) < 0) return rc;
    if (active) {
      if (e->table >= m->ntables) invalid(d, tat, "unknown table %u", e->table);
      if ((rc = rd_constexpr(d, r, TB_WASM_I32, &e->offset)) < 0) return rc;
    }
    if (!active || (flags & 2)) {
      if (exprs) {
        if ((rc = rd_reftype(d, r, &e->type)) < 0) return rc;
      } else {
        size_t kat = r->pos;
        uint8_t kind;
        if ((rc = rd_u8(d, r, &kind)) < 0) return rc;
        if (kind != 0) return MALFORMED(d, kat, "malformed element kind");
      }
    }
    if (active && e->table < m->ntables && m->tables[e->table].elem != e->type)
      invalid(d, tat, "type mismatch: %s segment for a table of %s", tb_wasm_valtype_name(e->type),
              tb_wasm_valtype_name(m->tables[e->table].elem));
    uint32_t count;
    if ((rc = rd_count(d, r, &count)) < 0) return rc;
    e->items = tb_calloc(count, sizeof *e->items);
    if (e->items == NULL) return out_of_memory(d);
    e->count = count;
    for (uint32_t k = 0; k < count; k++) {
      if (exprs) {
        if ((rc = rd_constexpr(d, r, e->type, &e->items[k])) < 0) return rc;
        continue;
      }
      at = r->pos;
      uint32_t fi;
      if ((rc = rd_u32(d, r, &fi)) < 0) return rc;
      if (fi >= m->nfuncs) invalid(d, at, "unknown function %u", fi);
      if ((rc = declare_ref(d, fi)) < 0) return rc;
      e->items[k] = (tb__wconstexpr_t){TB__WCONST_REF_FUNC, TB_WASM_FUNCREF, fi, 0};
    }
  }
  return 0;
}

static int sec_datacount(decoder_t *d, reader_t *r) {
  int rc = rd_u32(d, r, &d->m->data_count);
  if (rc < 0) return rc;
  d->m->has_data_count = true;
  return 0;
}

/* One body: its size, its locals (run-length encoded), then the instructions. */
static int rd_body(decoder_t *d, reader_t *r, tb__wfuncdecl_t *f) {
  tb_wasm_module_t *m = d->m;
  uint32_t size, nentries;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_u32(d, r, &size)) < 0) return rc;
  if (size > left(r)) return eos(d, r);
  if (size > TB__WASM_MAX_BODY) return fail(d, TB_ETOOBIG, at, "function body of %u bytes is too big", size);
  reader_t b = {r->p, r->pos, r->pos + size};
  r->pos += size;
  if ((rc = rd_count(d, &b, &nentries)) < 0) return rc;
  /* First pass: check the entries and add up the counts without allocating. */
  size_t entries = b.pos;
  uint64_t total = 0;
  for (uint32_t i = 0; i < nentries; i++) {
    uint32_t cnt;
    tb_wasm_valtype_t t;
    if ((rc = rd_u32(d, &b, &cnt)) < 0) return rc;
    if ((rc = rd_valtype(d, &b, &t)) < 0) return rc;
    total += cnt;
  }
  if (total > UINT32_MAX) return MALFORMED(d, entries, "too many locals");
  uint32_t nparams = f->type_index < m->ntypes ? m->types[f->type_index].nparams : 0;
  if (total + nparams > TB__WASM_MAX_LOCALS)
    return fail(d, TB_ETOOBIG, entries, "too many locals (%llu with the parameters, the limit is %u)",
                (unsigned long long)(total + nparams), TB__WASM_MAX_LOCALS);
  f->local_types = tb_calloc(total, sizeof *f->local_types);
  if (f->local_types == NULL) return out_of_memory(d);
  f->nlocals = (uint32_t)total;
  /* Second pass: expand them (nothing can fail any more). */
  b.pos = entries;
  uint32_t k = 0;
  for (uint32_t i = 0; i < nentries; i++) {
    uint32_t cnt;
    tb_wasm_valtype_t t;
    rd_u32(d, &b, &cnt);
    rd_valtype(d, &b, &t);
    for (uint32_t j = 0; j < cnt; j++) f->local_types[k++] = t;
  }
  /* The instructions are compile.c's, but a body must end with `end` whatever it holds,
   * and checking that here keeps the spec's order of errors for a truncated last body
   * followed by more sections. */
  if (b.pos == b.end || b.p[b.end - 1] != 0x0b) return MALFORMED(d, b.end, "END opcode expected");
  f->body = b.p + b.pos;
  f->body_end = b.p + b.end;
  f->body_offset = (uint32_t)b.pos;
  return 0;
}

static int sec_code(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  d->has_code_section = true;
  if (n != d->nfunc_decls) return MALFORMED(d, at, "function and code section have inconsistent lengths");
  for (uint32_t i = 0; i < n; i++)
    if ((rc = rd_body(d, r, &m->funcs[m->nimported_funcs + i])) < 0) return rc;
  return 0;
}

static int sec_data(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  uint32_t n;
  int rc;
  size_t at = r->pos;
  if ((rc = rd_count(d, r, &n)) < 0) return rc;
  d->has_data_section = true;
  if (n > TB__WASM_MAX_SEGMENTS) return too_many(d, at, "data segments", n, TB__WASM_MAX_SEGMENTS);
  if (m->has_data_count && n != m->data_count)
    return MALFORMED(d, at, "data count and data section have inconsistent lengths");
  m->datas = tb_calloc(n, sizeof *m->datas);
  if (m->datas == NULL) return out_of_memory(d);
  for (uint32_t i = 0; i < n; i++) {
    tb__wdata_t *s = &m->datas[i];
    m->ndatas = i + 1;
    at = r->pos;
    uint32_t flags, len;
    if ((rc = rd_u32(d, r, &flags)) < 0) return rc;
    if (flags > 2) return MALFORMED(d, at, "malformed data segment kind %u", flags);
    s->mode = flags == 1 ? TB__WSEG_PASSIVE : TB__WSEG_ACTIVE;
    size_t mat = r->pos;
    if (flags == 2 && (rc = rd_u32(d, r, &s->memory)) < 0) return rc;
    if (s->mode == TB__WSEG_ACTIVE) {
      if (s->memory >= m->nmems) invalid(d, mat, "unknown memory %u", s->memory);
      if ((rc = rd_constexpr(d, r, TB_WASM_I32, &s->offset)) < 0) return rc;
    }
    if ((rc = rd_u32(d, r, &len)) < 0) return rc;
    if ((rc = rd_bytes(d, r, len, &s->bytes)) < 0) return rc;
    s->len = len;
  }
  return 0;
}

static int sec_custom(decoder_t *d, reader_t *r) {
  tb_wasm_module_t *m = d->m;
  const uint8_t *name;
  uint32_t namelen;
  int rc = rd_name(d, r, &name, &namelen);
  if (rc < 0) return rc;
  /* The array's capacity is 4, 8, 16, ...: grow when the count reaches one of them. */
  uint32_t n = m->ncustoms;
  if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
    void *p = tb_reallocarray(m->customs, n ? (size_t)n * 2 : 4, sizeof *m->customs);
    if (p == NULL) return out_of_memory(d);
    m->customs = p;
  }
  tb__wcustom_t *c = &m->customs[m->ncustoms];
  c->name = tb_strndup((const char *)name, namelen);
  if (c->name == NULL) return out_of_memory(d);
  m->ncustoms++;
  c->name_len = namelen;
  c->bytes = r->p + r->pos;
  c->len = (uint32_t)left(r);
  if (!d->has_name && namelen == 4 && memcmp(name, "name", 4) == 0) {
    d->has_name = true;
    d->name_pos = r->pos;
    d->name_end = r->end;
  }
  r->pos = r->end;
  return 0;
}

/*
 * The "name" section's function names (subsection 1). Custom sections never make a
 * module malformed, so a malformed name section is dropped and otherwise ignored; only
 * running out of memory is an error.
 */
static int parse_names(decoder_t *d) {
  tb_wasm_module_t *m = d->m;
  tb_errbuf_t *eb = d->eb;
  reader_t r = {m->bytes, d->name_pos, d->name_end, false};
  char **names = NULL;
  int rc = 0;
  d->eb = NULL; /* the readers' sentences are not wanted here */
  int last_id = -1;
  while (r.pos < r.end) {
    uint8_t id;
    uint32_t size;
    if (rd_u8(d, &r, &id) < 0 || rd_u32(d, &r, &size) < 0 || size > left(&r) || (int)id <= last_id) goto bad;
    last_id = id;
    reader_t s = {r.p, r.pos, r.pos + size, false};
    r.pos += size;
    if (id != 1) continue;
    uint32_t n;
    if (rd_count(d, &s, &n) < 0) goto bad;
    names = tb_calloc(m->nfuncs, sizeof *names);
    if (names == NULL) goto nomem;
    int64_t prev = -1;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t idx, len;
      const uint8_t *p;
      if (rd_u32(d, &s, &idx) < 0 || rd_name(d, &s, &p, &len) < 0) goto bad;
      if (idx >= m->nfuncs || (int64_t)idx <= prev) goto bad;
      prev = idx;
      names[idx] = tb_strndup((const char *)p, len);
      if (names[idx] == NULL) goto nomem;
    }
    if (s.pos != s.end) goto bad;
  }
  m->func_names = names;
  names = NULL;
  goto out;
nomem:
  d->eb = eb;
  rc = out_of_memory(d);
bad:
  if (names != NULL) {
    for (uint32_t i = 0; i < m->nfuncs; i++) tb_free(names[i]);
    tb_free(names);
  }
out:
  d->eb = eb;
  return rc;
}

/*
 * The spec decodes every function body before it validates anything, so a module that
 * is invalid outside its bodies but has a malformed body is malformed. Bodies are
 * compile.c's, decoded after we return; so when a validation error is pending, this
 * walks the bodies for malformations first: instruction encodings, block structure
 * (`else` only in an `if`, the final `end` last) and the data count rule.
 */
static int scan_bodies(decoder_t *d) {
  tb_wasm_module_t *m = d->m;
  uint8_t *kinds = NULL; /* per open block: 0 block or loop, 1 if, 2 if after its else */
  int rc = 0;
  size_t cap = 0;
  for (uint32_t i = m->nimported_funcs; i < m->nfuncs; i++) {
    const tb__wfuncdecl_t *f = &m->funcs[i];
    if (f->body == NULL) continue;
    reader_t r = {m->bytes, f->body_offset, (size_t)(f->body_end - m->bytes), false};
    size_t len = r.end - r.pos;
    if (len > cap) {
      tb_free(kinds);
      cap = len;
      kinds = tb_malloc(cap);
      if (kinds == NULL) {
        rc = out_of_memory(d);
        goto out;
      }
    }
    size_t depth = 0;
    for (;;) {
      size_t at = r.pos;
      uint8_t op;
      TRY(rd_u8(d, &r, &op));
      if (op == 0x0b) {
        if (depth > 0) {
          depth--;
          continue;
        }
        if (r.pos != r.end) {
          rc = MALFORMED(d, r.pos, "section size mismatch: function body continues after its end");
          goto out;
        }
        break;
      }
      if (op == 0x05) {
        if (depth == 0 || kinds[depth - 1] != 1) {
          rc = MALFORMED(d, at, "END opcode expected");
          goto out;
        }
        kinds[depth - 1] = 2;
        continue;
      }
      if (op == 0xfc && !m->has_data_count) {
        reader_t peek = r;
        uint32_t sub;
        if (rd_u32(d, &peek, &sub) == 0 && (sub == 8 || sub == 9)) {
          rc = MALFORMED(d, at, "data count section required");
          goto out;
        }
      }
      int nest;
      TRY(skip_instr(d, &r, op, at, &nest));
      if (nest) kinds[depth++] = op == 0x04; /* each block takes 2 bytes: depth < len */
    }
  }
out:
  tb_free(kinds);
  return rc;
}

/* The order non-custom sections must come in: ids 1-9, then 12 (data count), 10, 11. */
static int section_rank(uint8_t id) {
  static const int8_t rank[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10};
  return rank[id];
}

int tb__wasm_decode(tb_wasm_module_t *m, tb_errbuf_t *eb) {
  decoder_t d = {.m = m, .eb = eb, .len = m->len};
  reader_t r = {m->bytes, 0, m->len, true};
  int rc = 0;
  static const uint8_t magic[4] = {0x00, 0x61, 0x73, 0x6d};
  if (m->len < 4) return eos(&d, &r);
  if (memcmp(m->bytes, magic, 4) != 0) return MALFORMED(&d, 0, "magic header not detected");
  if (m->len < 8) return eos(&d, &r);
  if (m->bytes[4] != 1 || m->bytes[5] != 0 || m->bytes[6] != 0 || m->bytes[7] != 0)
    return MALFORMED(&d, 4, "unknown binary version");
  r.pos = 8;
  int last_rank = 0;
  uint8_t last_id = 0;
  while (r.pos < r.end) {
    size_t at = r.pos;
    uint8_t id;
    uint32_t size;
    TRY(rd_u8(&d, &r, &id));
    if (id > 12) {
      rc = MALFORMED(&d, at, "malformed section id %u", id);
      goto out;
    }
    TRY(rd_u32(&d, &r, &size));
    if (size > left(&r)) {
      rc = MALFORMED(&d, at, "length out of bounds: section %u of %u bytes, %zu left", id, size, left(&r));
      goto out;
    }
    if (id != 0) {
      if (section_rank(id) <= last_rank) {
        rc = MALFORMED(&d, at, "unexpected content after last section (section %u after section %u)", id, last_id);
        goto out;
      }
      last_rank = section_rank(id);
      last_id = id;
    }
    reader_t s = {r.p, r.pos, r.pos + size};
    switch (id) {
    case 0: rc = sec_custom(&d, &s); break;
    case 1: rc = sec_type(&d, &s); break;
    case 2: rc = sec_import(&d, &s); break;
    case 3: rc = sec_function(&d, &s); break;
    case 4: rc = sec_table(&d, &s); break;
    case 5: rc = sec_memory(&d, &s); break;
    case 6: rc = sec_global(&d, &s); break;
    case 7: rc = sec_export(&d, &s); break;
    case 8: rc = sec_start(&d, &s); break;
    case 9: rc = sec_elem(&d, &s); break;
    case 10: rc = sec_code(&d, &s); break;
    case 11: rc = sec_data(&d, &s); break;
    case 12: rc = sec_datacount(&d, &s); break;
    }
    if (rc < 0) goto out;
    if (s.pos != s.end) {
      rc = MALFORMED(&d, s.pos, "section size mismatch: section %u ends at 0x%zx", id, s.end);
      goto out;
    }
    r.pos = s.end;
  }
  if (!d.has_code_section && d.nfunc_decls != 0) {
    rc = MALFORMED(&d, r.pos, "function and code section have inconsistent lengths");
    goto out;
  }
  if (m->has_data_count && !d.has_data_section && m->data_count != 0) {
    rc = MALFORMED(&d, r.pos, "data count and data section have inconsistent lengths");
    goto out;
  }
  if (m->nmems > 1) invalid(&d, r.pos, "multiple memories");
  TRY(declare_ref(&d, UINT32_MAX)); /* allocate the set even when nothing is declared */
  if (d.has_name) TRY(parse_names(&d));
  if (d.invalid) {
    TRY(scan_bodies(&d));
    rc = tb_errf(eb, TB_EINVAL, "%s", d.invalid_msg);
  }
out:
  return rc;
}

void tb__wasm_module_release(tb_wasm_module_t *m) {
  if (m == NULL) return;
  for (uint32_t i = 0; i < m->ntypes; i++) tb_free(m->types[i].types);
  tb_free(m->types);
  for (uint32_t i = 0; i < m->nimports; i++) {
    tb_free((char *)m->imports[i].module);
    tb_free((char *)m->imports[i].name);
  }
  tb_free(m->imports);
  for (uint32_t i = 0; i < m->nfuncs; i++) {
    tb_free(m->funcs[i].local_types);
    if (m->funcs[i].code != NULL) tb__wasm_code_free(m->funcs[i].code);
  }
  tb_free(m->funcs);
  tb_free(m->tables);
  tb_free(m->mems);
  tb_free(m->globals);
  for (uint32_t i = 0; i < m->nexports; i++) tb_free((char *)m->exports[i].name);
  tb_free(m->exports);
  for (uint32_t i = 0; i < m->nelems; i++) tb_free(m->elems[i].items);
  tb_free(m->elems);
  tb_free(m->datas);
  for (uint32_t i = 0; i < m->ncustoms; i++) tb_free((char *)m->customs[i].name);
  tb_free(m->customs);
  tb_free(m->declared_refs);
  if (m->func_names != NULL) {
    for (uint32_t i = 0; i < m->nfuncs; i++) tb_free(m->func_names[i]);
    tb_free(m->func_names);
  }
  tb_free(m->bytes);
  tb_free(m);
}
