/*
 * test_compile.c — the validator/compiler (lib/wasm/compile.c) and the interpreter
 * (lib/wasm/interp.c), through the public API on small hand-assembled modules.
 *
 * The spec testsuite (wasm_spec) covers the instruction semantics and validation rules
 * broadly; these tests pin down what it does not reach or what the compiler does
 * specially: the lazy operand stack (local.get/const folded into the consumer, results
 * written straight into locals, lazy references flushed before their local is
 * overwritten), fused compare-and-branch, branch value moves, multi-value returns whose
 * sources overlap their destinations, calls with no argument copying, traps with their
 * function index and byte offset, call-stack exhaustion without a host stack overflow,
 * interruption of an infinite loop from another thread, host functions that re-enter
 * the guest, and the validator's error sentences.
 */
#include "test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "tb/wasm.h"

/* ---- a tiny module assembler ---------------------------------------------------- */

typedef struct bytes {
  uint8_t b[16384];
  size_t n;
} bytes_t;

static void put(bytes_t *o, const void *p, size_t n) {
  assert_true(o->n + n <= sizeof o->b);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put8(bytes_t *o, uint8_t v) { put(o, &v, 1); }
static void uleb(bytes_t *o, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    put8(o, (uint8_t)(b | (v ? 0x80 : 0)));
  } while (v);
}

enum { I32 = 0x7f, I64 = 0x7e, F32 = 0x7d, F64 = 0x7c, FUNCREF = 0x70 };

typedef struct fn {
  uint32_t type;
  const char *locals; /* one letter per local: i I f F */
  const uint8_t *body;
  size_t len;
} fn_t;

typedef struct mod {
  bytes_t types;
  uint32_t ntypes;
  bytes_t imports;
  uint32_t nimports;
  fn_t fns[16];
  uint32_t nfns;
  int mem_min; /* -1: no memory */
  int table;   /* >= 0: a funcref table of all functions, this many */
  size_t body_at[16]; /* filled by build(): offset of each body's first instruction */
} mod_t;

static uint8_t vt(char c) { return c == 'i' ? I32 : c == 'I' ? I64 : c == 'f' ? F32 : F64; }

/* A function type from "params:results", e.g. "ii:i". */
static uint32_t type(mod_t *m, const char *sig) {
  const char *colon = strchr(sig, ':');
  size_t np = (size_t)(colon - sig), nr = strlen(colon + 1);
  put8(&m->types, 0x60);
  uleb(&m->types, np);
  for (size_t i = 0; i < np; i++) put8(&m->types, vt(sig[i]));
  uleb(&m->types, nr);
  for (size_t i = 0; i < nr; i++) put8(&m->types, vt(colon[1 + i]));
  return m->ntypes++;
}

static void import_func(mod_t *m, const char *name, uint32_t t) {
  uleb(&m->imports, 3);
  put(&m->imports, "env", 3);
  uleb(&m->imports, strlen(name));
  put(&m->imports, name, strlen(name));
  put8(&m->imports, 0x00);
  uleb(&m->imports, t);
  m->nimports++;
}

static void func(mod_t *m, uint32_t t, const char *locals, const uint8_t *body, size_t len) {
  m->fns[m->nfns++] = (fn_t){t, locals, body, len};
}

static void section(bytes_t *o, uint8_t id, const bytes_t *content) {
  put8(o, id);
  uleb(o, content->n);
  put(o, content->b, content->n);
}

/* The binary: every defined function is exported as "f<i>" (i counts defined ones). */
static void build(mod_t *m, bytes_t *o) {
  static const uint8_t magic[] = {0, 'a', 's', 'm', 1, 0, 0, 0};
  bytes_t s;
  o->n = 0;
  put(o, magic, sizeof magic);
  s.n = 0;
  uleb(&s, m->ntypes);
  put(&s, m->types.b, m->types.n);
  section(o, 1, &s);
  if (m->nimports) {
    s.n = 0;
    uleb(&s, m->nimports);
    put(&s, m->imports.b, m->imports.n);
    section(o, 2, &s);
  }
  s.n = 0;
  uleb(&s, m->nfns);
  for (uint32_t i = 0; i < m->nfns; i++) uleb(&s, m->fns[i].type);
  section(o, 3, &s);
  if (m->table >= 0) {
    s.n = 0;
    uleb(&s, 1);
    put8(&s, FUNCREF);
    put8(&s, 0);
    uleb(&s, (uint64_t)m->table);
    section(o, 4, &s);
  }
  if (m->mem_min >= 0) {
    s.n = 0;
    uleb(&s, 1);
    put8(&s, 0);
    uleb(&s, (uint64_t)m->mem_min);
    section(o, 5, &s);
  }
  s.n = 0;
  uleb(&s, m->nfns);
  for (uint32_t i = 0; i < m->nfns; i++) {
    char name[8];
    snprintf(name, sizeof name, "f%u", i);
    uleb(&s, strlen(name));
    put(&s, name, strlen(name));
    put8(&s, 0);
    uleb(&s, m->nimports + i);
  }
  section(o, 7, &s);
  if (m->table >= 0) { /* elem: table 0 from 0 holds every function */
    s.n = 0;
    uleb(&s, 1);
    put8(&s, 0);
    put8(&s, 0x41);
    put8(&s, 0);
    put8(&s, 0x0b);
    uleb(&s, m->nimports + m->nfns);
    for (uint32_t i = 0; i < m->nimports + m->nfns; i++) uleb(&s, i);
    section(o, 9, &s);
  }
  /* Code: lay it out to know where each body lands in the binary. */
  bytes_t code;
  code.n = 0;
  uleb(&code, m->nfns);
  size_t body_rel[16];
  for (uint32_t i = 0; i < m->nfns; i++) {
    bytes_t f;
    f.n = 0;
    size_t nl = strlen(m->fns[i].locals);
    uleb(&f, nl);
    for (size_t k = 0; k < nl; k++) {
      uleb(&f, 1);
      put8(&f, vt(m->fns[i].locals[k]));
    }
    size_t locals_len = f.n;
    put(&f, m->fns[i].body, m->fns[i].len);
    uleb(&code, f.n);
    body_rel[i] = code.n + locals_len;
    put(&code, f.b, f.n);
  }
  put8(o, 10);
  uleb(o, code.n);
  for (uint32_t i = 0; i < m->nfns; i++) m->body_at[i] = o->n + body_rel[i];
  put(o, code.b, code.n);
}

static void mod_init(mod_t *m) {
  memset(m, 0, sizeof *m);
  m->mem_min = -1;
  m->table = -1;
}

/* ---- running ---------------------------------------------------------------------- */

typedef struct env {
  tb_wasm_engine_t *engine;
  tb_wasm_module_t *module;
  tb_wasm_store_t *store;
  tb_wasm_instance_t *inst;
} env_t;

static int load(env_t *e, mod_t *m, const tb_wasm_config_t *cfg, const tb_wasm_extern_t *imports, char *msg,
                size_t msgsz) {
  bytes_t bin;
  build(m, &bin);
  memset(e, 0, sizeof *e);
  assert_int_equal(tb_wasm_engine_new(cfg, &e->engine), 0);
  tb_errbuf_t eb = {msg, msgsz};
  msg[0] = '\0';
  int rc = tb_wasm_module_new(e->engine, bin.b, bin.n, &e->module, &eb);
  if (rc != 0) return rc;
  assert_int_equal(tb_wasm_store_new(e->engine, &e->store), 0);
  tb_wasm_trap_t trap;
  rc = tb_wasm_instantiate(e->store, e->module, imports, m->nimports, &e->inst, &trap, &eb);
  assert_int_equal(rc, 0);
  return 0;
}

static void must_load(env_t *e, mod_t *m) {
  char msg[256];
  int rc = load(e, m, NULL, NULL, msg, sizeof msg);
  if (rc != 0) fail_msg("module did not load: %s", msg);
}

static void unload(env_t *e) {
  if (e->store) tb_wasm_store_free(e->store);
  if (e->module) tb_wasm_module_free(e->module);
  if (e->engine) tb_wasm_engine_free(e->engine);
}

static tb_wasm_val_t vi32(int32_t v) { return (tb_wasm_val_t){.type = TB_WASM_I32, .of.i32 = v}; }
static tb_wasm_val_t vi64(int64_t v) { return (tb_wasm_val_t){.type = TB_WASM_I64, .of.i64 = v}; }
static tb_wasm_val_t vf64(double v) { return (tb_wasm_val_t){.type = TB_WASM_F64, .of.f64 = v}; }

/* Calls export "f<i>" and returns its status; results go to res. */
static int call(env_t *e, int i, const tb_wasm_val_t *args, size_t nargs, tb_wasm_val_t *res, size_t nres,
                tb_wasm_trap_t *trap) {
  char name[8];
  snprintf(name, sizeof name, "f%d", i);
  tb_wasm_func_t *f = tb_wasm_instance_func(e->inst, name);
  assert_non_null(f);
  return tb_wasm_call(e->store, f, args, nargs, res, nres, trap);
}

static int32_t call_i32(env_t *e, int i, const tb_wasm_val_t *args, size_t nargs) {
  tb_wasm_val_t r;
  tb_wasm_trap_t trap;
  int rc = call(e, i, args, nargs, &r, 1, &trap);
  if (rc != 0) fail_msg("f%d trapped: %s", i, trap.msg);
  assert_int_equal(r.type, TB_WASM_I32);
  return r.of.i32;
}

/* Opcodes used below. */
#define LGET(x) 0x20, (x)
#define LSET(x) 0x21, (x)
#define LTEE(x) 0x22, (x)
#define I32C(x) 0x41, (x) /* x < 64 */
#define END 0x0b

/* ---- tests ------------------------------------------------------------------------- */

static void test_arithmetic(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  uint32_t t_ii_i = type(&m, "ii:i");
  uint32_t t_II_I = type(&m, "II:I");
  uint32_t t_FF_F = type(&m, "FF:F");
  /* (a * b + 7 - a / b) ^ (a << 3) with a local in the middle */
  static const uint8_t f0[] = {LGET(0), LGET(1), 0x6c, I32C(7), 0x6a, LGET(0), LGET(1), 0x6d, 0x6b, LSET(2),
                               LGET(2), LGET(0), I32C(3), 0x74, 0x73, END};
  /* i64: rotl(a, b) + popcnt(a) */
  static const uint8_t f1[] = {LGET(0), LGET(1), 0x89, LGET(0), 0x7b, 0x7c, END};
  /* f64: min(a, b) * 2.5 + copysign(1, b) */
  static const uint8_t f2[] = {LGET(0), LGET(1), 0xa4, 0x44, 0, 0, 0, 0, 0, 0, 0x04, 0x40, 0xa2,
                               0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, LGET(1), 0xa6, 0xa0, END};
  /* constant on the left of a non-commutative op: 100 - a, and 5 < a */
  static const uint8_t f3[] = {0x41, 0xe4, 0x00, LGET(0), 0x6b, I32C(5), LGET(0), 0x48, 0x6a, END};
  func(&m, t_ii_i, "i", f0, sizeof f0);
  func(&m, t_II_I, "", f1, sizeof f1);
  func(&m, t_FF_F, "", f2, sizeof f2);
  func(&m, t_ii_i, "", f3, sizeof f3);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a[2] = {vi32(9), vi32(4)};
  assert_int_equal(call_i32(&e, 0, a, 2), (9 * 4 + 7 - 9 / 4) ^ (9 << 3));
  a[0] = vi32(-20);
  a[1] = vi32(3);
  assert_int_equal(call_i32(&e, 0, a, 2), (-20 * 3 + 7 - (-20 / 3)) ^ (int32_t)((uint32_t)-20 << 3));
  tb_wasm_val_t b[2] = {vi64(0x8000000000000001LL), vi64(4)}, r;
  tb_wasm_trap_t trap;
  assert_int_equal(call(&e, 1, b, 2, &r, 1, &trap), 0);
  assert_int_equal(r.of.i64, 0x18 + 2);
  tb_wasm_val_t c[2] = {vf64(3.0), vf64(-8.0)};
  assert_int_equal(call(&e, 2, c, 2, &r, 1, &trap), 0);
  assert_true(r.of.f64 == -8.0 * 2.5 - 1.0);
  a[0] = vi32(7);
  assert_int_equal(call_i32(&e, 3, a, 2), 100 - 7 + 1);
  a[0] = vi32(2);
  assert_int_equal(call_i32(&e, 3, a, 2), 100 - 2 + 0);
  unload(&e);
}

static void test_control_flow(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  uint32_t t_i_i = type(&m, "i:i");
  /* sum 1..n with a loop: fused compare-and-branch back-edge */
  static const uint8_t sum[] = {
      0x02, 0x40, 0x03, 0x40,             /* block loop */
      LGET(0), 0x45, 0x0d, 0x01,          /* i32.eqz n; br_if 1 (leave) */
      LGET(1), LGET(0), 0x6a, LSET(1),    /* s += n */
      LGET(0), I32C(1), 0x6b, LTEE(0),    /* n -= 1 */
      I32C(0), 0x4a, 0x0d, 0x00,          /* n > 0: br_if 0 */
      END, END, LGET(1), END};
  /* switch with br_table and block results: 0 -> 100, 1 -> 200, other -> 300 */
  static const uint8_t sw[] = {
      0x02, I32,                              /* block (result i32) $out */
      0x02, 0x40, 0x02, 0x40, 0x02, 0x40,     /* three empty blocks */
      LGET(0), 0x0e, 0x02, 0x00, 0x01, 0x02,  /* br_table 0 1 2 */
      END, 0x41, 0xe4, 0x00, 0x0c, 0x02,      /* case 0: 100, br $out */
      END, 0x41, 0xc8, 0x01, 0x0c, 0x01,      /* case 1: 200 */
      END, 0x41, 0xac, 0x02,                  /* default: 300 */
      END, END};
  /* br_table carrying a value to differently placed labels (needs stubs) */
  static const uint8_t swv[] = {
      0x02, I32,                      /* block $a (result i32) */
      I32C(1), 0x02, I32,             /* 1; block $b (result i32) */
      I32C(5), LGET(0),               /* value 5, index */
      0x0e, 0x01, 0x00, 0x01,         /* br_table $b $a */
      END, 0x6a,                      /* $b: 1 + 5 */
      END, END};
  /* if/else with results and a param: (n) -> n < 10 ? n * 2 : n - 10, via block params */
  static const uint8_t ife[] = {
      LGET(0), LGET(0), I32C(10), 0x48, /* n, n < 10 */
      0x04, 0x01,                       /* if (type 1 = i:i) */
      I32C(2), 0x6c, 0x05,              /* then n * 2 */
      I32C(10), 0x6b,                   /* else n - 10 */
      END, END};
  func(&m, t_i_i, "i", sum, sizeof sum);
  func(&m, t_i_i, "", sw, sizeof sw);
  func(&m, t_i_i, "", swv, sizeof swv);
  func(&m, type(&m, "i:i"), "", ife, sizeof ife);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a = vi32(100);
  assert_int_equal(call_i32(&e, 0, &a, 1), 5050);
  a = vi32(0);
  assert_int_equal(call_i32(&e, 0, &a, 1), 0);
  for (int i = -1; i < 4; i++) {
    a = vi32(i);
    assert_int_equal(call_i32(&e, 1, &a, 1), i == 0 ? 100 : i == 1 ? 200 : 300);
    assert_int_equal(call_i32(&e, 2, &a, 1), i == 0 ? 6 : 5);
  }
  a = vi32(7);
  assert_int_equal(call_i32(&e, 3, &a, 1), 14);
  a = vi32(17);
  assert_int_equal(call_i32(&e, 3, &a, 1), 7);
  unload(&e);
}

/* The compiler's lazy operands: values read from a local before it is overwritten. */
static void test_lazy_locals(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  uint32_t t_ii_i = type(&m, "ii:i");
  uint32_t t_ii_ii = type(&m, "ii:ii");
  /* old = a; a = a + 1 (into a directly); return old * 10 + a */
  static const uint8_t f0[] = {LGET(0), LGET(0), I32C(1), 0x6a, LSET(0), I32C(10), 0x6c, LGET(0), 0x6a, END};
  /* swap through the stack: get 1, get 0, set 1, set 0; return a - b */
  static const uint8_t f1[] = {LGET(1), LGET(0), LSET(1), LSET(0), LGET(0), LGET(1), 0x6b, END};
  /* multi-value return of (b, a): results overlap the params */
  static const uint8_t f2[] = {LGET(1), LGET(0), END};
  /* tee then use both: (a = b * 3) + a, with a pending read of a below */
  static const uint8_t f3[] = {LGET(0), LGET(1), I32C(3), 0x6c, LTEE(0), LGET(0), 0x6a, 0x6a, END};
  /* a value read before a block that overwrites its local: a; block { a = 99 }; + a */
  static const uint8_t f4[] = {LGET(0), 0x02, 0x40, 0x41, 0xe3, 0x00, LSET(0), END, LGET(0), 0x6a, END};
  func(&m, t_ii_i, "", f0, sizeof f0);
  func(&m, t_ii_i, "", f1, sizeof f1);
  func(&m, t_ii_ii, "", f2, sizeof f2);
  func(&m, t_ii_i, "", f3, sizeof f3);
  func(&m, t_ii_i, "", f4, sizeof f4);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a[2] = {vi32(4), vi32(9)}, r[2];
  assert_int_equal(call_i32(&e, 0, a, 2), 4 * 10 + 5);
  assert_int_equal(call_i32(&e, 1, a, 2), 9 - 4);
  tb_wasm_trap_t trap;
  assert_int_equal(call(&e, 2, a, 2, r, 2, &trap), 0);
  assert_int_equal(r[0].of.i32, 9);
  assert_int_equal(r[1].of.i32, 4);
  assert_int_equal(call_i32(&e, 3, a, 2), 4 + 27 + 27);
  assert_int_equal(call_i32(&e, 4, a, 2), 4 + 99);
  unload(&e);
}

static const uint8_t fib_body[] = {
    LGET(0), I32C(2), 0x48, 0x04, I32, /* n < 2: if (result i32) */
    LGET(0), 0x05,                     /* then n */
    LGET(0), I32C(1), 0x6b, 0x10, 0x00, LGET(0), I32C(2), 0x6b, 0x10, 0x00, 0x6a, /* fib(n-1) + fib(n-2) */
    END, END};

static void test_calls(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  m.table = 4;
  uint32_t t_i_i = type(&m, "i:i");
  uint32_t t_ii_i = type(&m, "ii:i");
  func(&m, t_i_i, "", fib_body, sizeof fib_body);
  /* call_indirect: table[i](x) for i in 0 (fib), 2 (double) */
  static const uint8_t f1[] = {LGET(1), LGET(0), 0x11, 0x00, 0x00, END};
  static const uint8_t f2[] = {LGET(0), LGET(0), 0x6a, END};
  /* wrong type through the table: index 1 is (ii:i) */
  func(&m, t_ii_i, "", f1, sizeof f1);
  func(&m, t_i_i, "", f2, sizeof f2);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a = vi32(20);
  assert_int_equal(call_i32(&e, 0, &a, 1), 6765);
  tb_wasm_val_t b[2] = {vi32(0), vi32(10)};
  assert_int_equal(call_i32(&e, 1, b, 2), 55);
  b[0] = vi32(2);
  assert_int_equal(call_i32(&e, 1, b, 2), 20);
  tb_wasm_val_t r;
  tb_wasm_trap_t trap;
  b[0] = vi32(1);
  assert_int_equal(call(&e, 1, b, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_INDIRECT_TYPE);
  b[0] = vi32(3);
  assert_int_equal(call(&e, 1, b, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_UNINITIALIZED_ELEMENT);
  b[0] = vi32(4);
  assert_int_equal(call(&e, 1, b, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_UNDEFINED_ELEMENT);
  unload(&e);
}

static void test_trap_offset(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  m.mem_min = 1;
  uint32_t t_ii_i = type(&m, "ii:i");
  static const uint8_t f0[] = {LGET(0), LGET(1), 0x6d, END};           /* div_s at +4 */
  static const uint8_t f1[] = {0x01, LGET(0), 0x28, 0x02, 0x00, END};  /* i32.load at +3 */
  static const uint8_t f2[] = {0x01, 0x01, 0x00, END};                 /* unreachable at +2 */
  func(&m, t_ii_i, "", f0, sizeof f0);
  func(&m, t_ii_i, "", f1, sizeof f1);
  func(&m, t_ii_i, "", f2, sizeof f2);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a[2] = {vi32(1), vi32(0)}, r;
  tb_wasm_trap_t trap;
  assert_int_equal(call(&e, 0, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_DIV_ZERO);
  assert_int_equal(trap.func_index, 0);
  assert_int_equal(trap.offset, m.body_at[0] + 4);
  assert_string_equal(trap.msg, "integer divide by zero");
  a[0] = vi32(INT32_MIN);
  a[1] = vi32(-1);
  assert_int_equal(call(&e, 0, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_INT_OVERFLOW);
  a[0] = vi32(65533);
  assert_int_equal(call(&e, 1, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_MEMORY_OOB);
  assert_int_equal(trap.func_index, 1);
  assert_int_equal(trap.offset, m.body_at[1] + 3);
  a[0] = vi32(65532);
  assert_int_equal(call(&e, 1, a, 2, &r, 1, &trap), 0);
  assert_int_equal(call(&e, 2, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_UNREACHABLE);
  assert_int_equal(trap.func_index, 2);
  assert_int_equal(trap.offset, m.body_at[2] + 2);
  unload(&e);
}

static void test_stack_exhaustion(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  uint32_t t_i_i = type(&m, "i:i");
  /* f(n) = f(n + 1) + 1: unbounded recursion, with a frame of a few slots */
  static const uint8_t f0[] = {LGET(0), I32C(1), 0x6a, 0x10, 0x00, I32C(1), 0x6a, END};
  func(&m, t_i_i, "IIII", f0, sizeof f0);
  tb_wasm_config_t cfgs[2] = {{.max_call_depth = 0}, {.max_call_depth = 1000000, .value_stack_slots = 1 << 16}};
  for (int k = 0; k < 2; k++) {
    env_t e;
    char msg[256];
    assert_int_equal(load(&e, &m, &cfgs[k], NULL, msg, sizeof msg), 0);
    tb_wasm_val_t a = vi32(0), r;
    tb_wasm_trap_t trap;
    assert_int_equal(call(&e, 0, &a, 1, &r, 1, &trap), TB_ETRAP);
    assert_int_equal(trap.kind, TB_WASM_TRAP_STACK_EXHAUSTED);
    assert_int_equal(trap.func_index, 0);
    /* The store is usable again afterwards. */
    assert_int_equal(call(&e, 0, &a, 1, &r, 1, &trap), TB_ETRAP);
    assert_int_equal(trap.kind, TB_WASM_TRAP_STACK_EXHAUSTED);
    unload(&e);
  }
}

typedef struct interrupter {
  tb_wasm_store_t *store;
} interrupter_t;

static void *interrupt_later(void *arg) {
  interrupter_t *it = arg;
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  tb_wasm_store_interrupt(it->store);
  return NULL;
}

static void test_interrupt(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  uint32_t t_i_i = type(&m, "i:i");
  static const uint8_t f0[] = {0x03, 0x40, LGET(0), I32C(1), 0x6a, LSET(0), 0x0c, 0x00, END, LGET(0), END};
  /* n >= 0 (unsigned) is always true: a fused compare-and-branch back-edge */
  static const uint8_t f1[] = {0x03, 0x40, LGET(0), I32C(1), 0x6a, LTEE(0), I32C(0), 0x4f, 0x0d, 0x00, END,
                               LGET(0), END};
  func(&m, t_i_i, "", f0, sizeof f0);
  func(&m, t_i_i, "", f1, sizeof f1);
  env_t e;
  must_load(&e, &m);
  for (int i = 0; i < 2; i++) {
    interrupter_t it = {e.store};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, interrupt_later, &it), 0);
    tb_wasm_val_t a = vi32(0), r;
    tb_wasm_trap_t trap;
    assert_int_equal(call(&e, i, &a, 1, &r, 1, &trap), TB_ETRAP);
    assert_int_equal(trap.kind, TB_WASM_TRAP_INTERRUPTED);
    assert_int_equal(trap.func_index, (uint32_t)i);
    pthread_join(th, NULL);
    tb_wasm_store_clear_interrupt(e.store);
  }
  unload(&e);
}

/* A host function that calls back into the guest: fib through the host. */
static int host_fib(tb_wasm_caller_t *caller, void *env, const uint64_t *args, uint64_t *results) {
  env_t *e = env;
  int32_t n = (int32_t)args[0];
  tb_wasm_val_t a = vi32(n), r;
  tb_wasm_trap_t trap;
  tb_wasm_func_t *f = tb_wasm_instance_func(e->inst, "f0");
  if (tb_wasm_call(tb_wasm_caller_store(caller), f, &a, 1, &r, 1, &trap) != 0)
    return tb_wasm_caller_trap(caller, "nested: %s", trap.msg);
  results[0] = (uint32_t)r.of.i32;
  return 0;
}

static int host_fail(tb_wasm_caller_t *caller, void *env, const uint64_t *args, uint64_t *results) {
  return tb_wasm_caller_trap(caller, "no luck with %d", (int)args[0]);
}

static void test_host_calls(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  uint32_t t_i_i = type(&m, "i:i");
  import_func(&m, "fib", t_i_i);
  import_func(&m, "fail", t_i_i);
  /* f0 = fib via the host for n >= 2 (host re-enters the guest) */
  static const uint8_t f0[] = {LGET(0), I32C(2), 0x48, 0x04, I32, LGET(0), 0x05,
                               LGET(0), I32C(1), 0x6b, 0x10, 0x00, LGET(0), I32C(2), 0x6b, 0x10, 0x02, 0x6a,
                               END, END};
  static const uint8_t f1[] = {I32C(1), LGET(0), 0x10, 0x01, 0x6a, END};
  func(&m, t_i_i, "", f0, sizeof f0);
  func(&m, t_i_i, "", f1, sizeof f1);
  env_t e;
  char msg[256];
  memset(&e, 0, sizeof e);
  /* Two-step load: the host functions need the store. */
  bytes_t bin;
  build(&m, &bin);
  assert_int_equal(tb_wasm_engine_new(NULL, &e.engine), 0);
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_wasm_module_new(e.engine, bin.b, bin.n, &e.module, &eb), 0);
  assert_int_equal(tb_wasm_store_new(e.engine, &e.store), 0);
  tb_wasm_valtype_t p = TB_WASM_I32;
  tb_wasm_functype_t ft = {1, 1, &p, &p};
  tb_wasm_extern_t imports[2] = {{.kind = TB_WASM_EXTERN_FUNC}, {.kind = TB_WASM_EXTERN_FUNC}};
  assert_int_equal(tb_wasm_func_new_host(e.store, &ft, host_fib, &e, &imports[0].of.func), 0);
  assert_int_equal(tb_wasm_func_new_host(e.store, &ft, host_fail, NULL, &imports[1].of.func), 0);
  tb_wasm_trap_t trap;
  assert_int_equal(tb_wasm_instantiate(e.store, e.module, imports, 2, &e.inst, &trap, &eb), 0);
  tb_wasm_val_t a = vi32(15), r;
  assert_int_equal(call_i32(&e, 0, &a, 1), 610);
  assert_int_equal(call(&e, 1, &a, 1, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_HOST);
  assert_string_equal(trap.msg, "no luck with 15");
  assert_int_equal(trap.func_index, 3);
  assert_int_equal(trap.offset, m.body_at[1] + 4);
  unload(&e);
}

static void test_memory(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  m.mem_min = 1;
  uint32_t t_ii_i = type(&m, "ii:i");
  /* grow by a, store b at the last byte of the new memory, load it back as i32.load8_u */
  static const uint8_t f0[] = {LGET(0), 0x40, 0x00, 0x1a,                           /* memory.grow a; drop */
                               0x3f, 0x00, 0x41, 0x80, 0x80, 0x04, 0x6c, I32C(1), 0x6b, LSET(0), /* size*64K-1 */
                               LGET(0), LGET(1), 0x3a, 0x00, 0x00,                   /* i32.store8 */
                               LGET(0), 0x2d, 0x00, 0x00, END};                      /* i32.load8_u */
  func(&m, t_ii_i, "", f0, sizeof f0);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a[2] = {vi32(2), vi32(0x1ab)};
  assert_int_equal(call_i32(&e, 0, a, 2), 0xab);
  assert_int_equal(tb_wasm_memory_size(tb_wasm_instance_memory(e.inst)), 3 * 65536);
  unload(&e);
}

/* Loads and stores whose address add the compiler folds into them: the add wraps at
 * 2^32 exactly as the separate i32.add would, and a trap names the load or store. */
static void test_fused_addresses(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  m.mem_min = 1;
  uint32_t t_ii_i = type(&m, "ii:i");
  /* f0: store b at 4; return load(a + 8) (wraps to 4 for a = -4) */
  static const uint8_t f0[] = {I32C(4), LGET(1), 0x36, 0x02, 0x00, LGET(0), I32C(8), 0x6a, 0x28, 0x02, 0x00, END};
  /* f1: load(a + b) */
  static const uint8_t f1[] = {LGET(0), LGET(1), 0x6a, 0x28, 0x02, 0x00, END};
  /* f2: load(tee l2 = a + 8) + l2, and load(tee l2 = a + b) */
  static const uint8_t f2[] = {LGET(0), I32C(8), 0x6a, LTEE(2), 0x28, 0x02, 0x00, LGET(2), 0x6a,
                               LGET(0), LGET(1), 0x6a, LTEE(2), 0x28, 0x02, 0x00, 0x6a, END};
  /* f3: store b at (a + 12), store 7 at a (immediate value), store b at (a + b); load(a + 12) */
  static const uint8_t f3[] = {LGET(0), I32C(12), 0x6a, LGET(1), 0x36, 0x02, 0x00,
                               LGET(0), I32C(7), 0x3a, 0x00, 0x00,
                               LGET(0), LGET(1), 0x6a, LGET(1), 0x36, 0x02, 0x00,
                               LGET(0), 0x28, 0x02, 0x0c, END};
  func(&m, t_ii_i, "", f0, sizeof f0);
  func(&m, t_ii_i, "", f1, sizeof f1);
  func(&m, t_ii_i, "i", f2, sizeof f2);
  func(&m, t_ii_i, "", f3, sizeof f3);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a[2] = {vi32(-4), vi32(1234)}, r;
  tb_wasm_trap_t trap;
  assert_int_equal(call_i32(&e, 0, a, 2), 1234);
  a[0] = vi32(65528); /* 65536 - 8: just past the end */
  assert_int_equal(call(&e, 0, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.kind, TB_WASM_TRAP_MEMORY_OOB);
  assert_int_equal(trap.offset, m.body_at[0] + 12);
  a[0] = vi32(-8); /* wraps to 4 */
  a[1] = vi32(12);
  assert_int_equal(call_i32(&e, 1, a, 2), 1234);
  a[1] = vi32(65544); /* -8 + 65544 = 65536: out of bounds */
  assert_int_equal(call(&e, 1, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.offset, m.body_at[1] + 5);
  a[0] = vi32(-4);
  a[1] = vi32(8);
  assert_int_equal(call_i32(&e, 2, a, 2), 1234 + 4 + 1234);
  a[0] = vi32(100);
  a[1] = vi32(55);
  assert_int_equal(call_i32(&e, 3, a, 2), 55);
  uint8_t bytes[4];
  assert_int_equal(tb_wasm_memory_read(tb_wasm_instance_memory(e.inst), 100, bytes, 1), 0);
  assert_int_equal(bytes[0], 7);
  assert_int_equal(tb_wasm_memory_read(tb_wasm_instance_memory(e.inst), 155, bytes, 4), 0);
  assert_int_equal(bytes[0], 55);
  a[0] = vi32(65530); /* the first store, at a + 12, is out of bounds */
  assert_int_equal(call(&e, 3, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.offset, m.body_at[3] + 7);
  unload(&e);
}

/* Loop back-edges that the compiler fuses with the counter's add. */
static void test_loop_closers(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  m.mem_min = 1;
  uint32_t t_ii_i = type(&m, "ii:i");
  /* f0(n, step): s = 0; i = 0; do { s += i; i += 1 } while (i < n): add-imm, compare with a slot */
  static const uint8_t f0[] = {0x03, 0x40, LGET(3), LGET(2), 0x6a, LSET(3), LGET(2), I32C(1), 0x6a, LTEE(2),
                               LGET(0), 0x48, 0x0d, 0x00, END, LGET(3), END};
  /* f1(n, step): count = 0; j = 0; do { count++; j += step } while (j <u n): add of slots */
  static const uint8_t f1[] = {0x03, 0x40, LGET(3), I32C(1), 0x6a, LSET(3), LGET(2), LGET(1), 0x6a, LTEE(2),
                               LGET(0), 0x49, 0x0d, 0x00, END, LGET(3), END};
  /* f2: i = i + 1; loop while i > i (never): the compare must see the new value twice */
  static const uint8_t f2[] = {0x03, 0x40, LGET(3), I32C(1), 0x6a, LSET(3), LGET(2), I32C(1), 0x6a, LTEE(2),
                               LGET(2), 0x4b, 0x0d, 0x00, END, LGET(3), END};
  /* f3(a, v): store8 7 at a + 3 (immediate value, fused address); load8_u it back */
  static const uint8_t f3[] = {LGET(0), I32C(3), 0x6a, I32C(7), 0x3a, 0x00, 0x00, LGET(0), 0x2d, 0x00, 0x03, END};
  func(&m, t_ii_i, "ii", f0, sizeof f0);
  func(&m, t_ii_i, "ii", f1, sizeof f1);
  func(&m, t_ii_i, "ii", f2, sizeof f2);
  func(&m, t_ii_i, "", f3, sizeof f3);
  env_t e;
  must_load(&e, &m);
  tb_wasm_val_t a[2] = {vi32(10), vi32(3)}, r;
  tb_wasm_trap_t trap;
  assert_int_equal(call_i32(&e, 0, a, 2), 45);
  assert_int_equal(call_i32(&e, 1, a, 2), 4); /* j = 3, 6, 9, 12 */
  assert_int_equal(call_i32(&e, 2, a, 2), 1);
  a[0] = vi32(200);
  assert_int_equal(call_i32(&e, 3, a, 2), 7);
  a[0] = vi32(65533); /* 65536: out of bounds */
  assert_int_equal(call(&e, 3, a, 2, &r, 1, &trap), TB_ETRAP);
  assert_int_equal(trap.offset, m.body_at[3] + 7);
  unload(&e);
}

static void expect_invalid(mod_t *m, int code, const char *words) {
  env_t e;
  char msg[256];
  int rc = load(&e, m, NULL, NULL, msg, sizeof msg);
  if (rc != code || strstr(msg, words) == NULL)
    fail_msg("expected %s \"%s\", got %s \"%s\"", tb_err_name(code), words, tb_err_name(rc), msg);
  unload(&e);
}

/* Like expect_invalid, for one body bigger than the assembler's buffer (type () -> ()). */
static void expect_invalid_big(mod_t *m, const char *words) {
  static uint8_t big[1 << 20];
  static const uint8_t head[] = {0, 'a', 's', 'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0};
  size_t n = sizeof head, body = 1 + m->fns[0].len, sec = 1 + 3 + body; /* sizes as 3-byte LEBs */
  assert_true(n + 8 + body <= sizeof big && body < (1u << 21));
  memcpy(big, head, n);
  big[n++] = 10;
  big[n++] = (uint8_t)(0x80 | (sec & 0x7f));
  big[n++] = (uint8_t)(0x80 | ((sec >> 7) & 0x7f));
  big[n++] = (uint8_t)((sec >> 14) & 0x7f);
  big[n++] = 1;
  big[n++] = (uint8_t)(0x80 | (body & 0x7f));
  big[n++] = (uint8_t)(0x80 | ((body >> 7) & 0x7f));
  big[n++] = (uint8_t)((body >> 14) & 0x7f);
  big[n++] = 0; /* no locals */
  memcpy(big + n, m->fns[0].body, m->fns[0].len);
  n += m->fns[0].len;
  tb_wasm_engine_t *engine;
  tb_wasm_module_t *mod = NULL;
  char msg[256];
  tb_errbuf_t eb = {msg, sizeof msg};
  assert_int_equal(tb_wasm_engine_new(NULL, &engine), 0);
  int rc = tb_wasm_module_new(engine, big, n, &mod, &eb);
  if (rc != TB_ETOOBIG || strstr(msg, words) == NULL)
    fail_msg("expected TB_ETOOBIG \"%s\", got %s \"%s\"", words, tb_err_name(rc), msg);
  tb_wasm_engine_free(engine);
}

static void test_validation(void **state) {
  (void)state;
  static const struct {
    const char *sig, *locals;
    uint8_t body[16];
    size_t len;
    int code;
    const char *words;
  } cases[] = {
      {"i:i", "", {LGET(0), 0x44, 0, 0, END}, 6, TB_EPARSE, "unexpected end"},
      {"i:i", "", {LGET(0), 0x42, 0x00, 0x6a, END}, 6, TB_EINVAL, "type mismatch: expected i32, got i64"},
      {"i:i", "", {LGET(1), END}, 3, TB_EINVAL, "unknown local 1"},
      {"i:i", "", {LGET(0), 0x0c, 0x01, END}, 5, TB_EINVAL, "unknown label 1"},
      {"i:i", "", {LGET(0), 0x28, 0x02, 0x00, END}, 6, TB_EINVAL, "unknown memory 0"},
      {"i:", "", {LGET(0), 0x24, 0x00, END}, 5, TB_EINVAL, "unknown global 0"},
      {"i:i", "", {LGET(0), 0xff, END}, 4, TB_EPARSE, "illegal opcode"},
      {"i:i", "", {LGET(0)}, 2, TB_EPARSE, "END opcode expected"},
      {"i:i", "", {0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, END}, 8, TB_EPARSE, "integer representation too long"},
      {"i:i", "", {0x41, 0x80, 0x80, 0x80, 0x80, 0x70, END}, 7, TB_EPARSE, "integer too large"},
      {"i:i", "", {LGET(0), 0x02, 0x40, 0x1a, END, END}, 7, TB_EINVAL, "type mismatch"},
      {"i:", "", {0x6a, END}, 2, TB_EINVAL, "type mismatch: expected i32, got nothing"},
      {":i", "", {0x00, 0x02, I32, END, 0x6a, END}, 6, TB_EINVAL, "type mismatch"},
      {"i:i", "", {LGET(0), 0x0f, 0x6a, END}, 5, TB_EINVAL, "X"}, /* polymorphic: valid */
      {"i:", "", {LGET(0), LGET(0), 0x1c, 0x02, I32, I32, 0x1a, END}, 10, TB_EINVAL, "invalid result arity"},
      {"i:i", "", {0x00, 0x1b, END}, 3, TB_EINVAL, "X"}, /* select on bottom types: valid */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mod_t m;
    mod_init(&m);
    uint32_t t = type(&m, cases[i].sig);
    func(&m, t, cases[i].locals, cases[i].body, cases[i].len);
    if (strcmp(cases[i].words, "X") == 0) {
      env_t e;
      char msg[256];
      int rc = load(&e, &m, NULL, NULL, msg, sizeof msg);
      if (rc != 0) fail_msg("case %zu: expected valid, got %s", i, msg);
      unload(&e);
      continue;
    }
    expect_invalid(&m, cases[i].code, cases[i].words);
  }
  /* Implementation limits: nesting and operand stack depth are bounded. */
  {
    static uint8_t deep[2 * 100001 + 100001 + 1];
    size_t k = 0;
    for (int i = 0; i < 100001; i++) deep[k++] = 0x02, deep[k++] = 0x40;
    for (int i = 0; i < 100001; i++) deep[k++] = END;
    deep[k++] = END;
    mod_t m;
    mod_init(&m);
    func(&m, type(&m, ":"), "", deep, k);
    expect_invalid_big(&m, "nested too deeply");
  }
  /* The sentence names function and offset. */
  mod_t m;
  mod_init(&m);
  uint32_t t = type(&m, "i:i");
  static const uint8_t ok[] = {LGET(0), END};
  static const uint8_t bad[] = {0x01, 0x01, 0x43, 0, 0, 0, 0, END};
  func(&m, t, "", ok, sizeof ok);
  func(&m, t, "", bad, sizeof bad);
  bytes_t bin;
  build(&m, &bin);
  char want[64];
  snprintf(want, sizeof want, "function 1, offset 0x%zx: type mismatch", m.body_at[1] + 7);
  expect_invalid(&m, TB_EINVAL, want);
}

/* Every allocation of module compilation failing in turn: TB_ENOMEM, nothing leaked
 * (the ASan build checks), and success once enough allocations succeed. */
static void test_alloc_failures(void **state) {
  (void)state;
  mod_t m;
  mod_init(&m);
  m.table = 3;
  uint32_t t_i_i = type(&m, "i:i");
  func(&m, t_i_i, "", fib_body, sizeof fib_body);
  static const uint8_t sw[] = {0x02, I32, I32C(1), 0x02, I32, I32C(5), LGET(0), 0x0e, 0x01, 0x00, 0x01,
                               END, 0x6a, END, END};
  static const uint8_t ci[] = {I32C(3), LGET(0), 0x11, 0x00, 0x00, END};
  func(&m, t_i_i, "i", sw, sizeof sw);
  func(&m, t_i_i, "", ci, sizeof ci);
  bytes_t bin;
  build(&m, &bin);
  tb_wasm_engine_t *engine;
  assert_int_equal(tb_wasm_engine_new(NULL, &engine), 0);
  bool done = false;
  for (long n = 0; n < 1000 && !done; n++) {
    tb_wasm_module_t *mod = NULL;
    char msg[256];
    tb_errbuf_t eb = {msg, sizeof msg};
    tb_alloc_fail_after(n);
    int rc = tb_wasm_module_new(engine, bin.b, bin.n, &mod, &eb);
    tb_alloc_fail_after(-1);
    if (rc == 0) {
      done = true;
      tb_wasm_module_free(mod);
    } else {
      assert_int_equal(rc, TB_ENOMEM);
    }
  }
  assert_true(done);
  tb_wasm_engine_free(engine);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arithmetic),  cmocka_unit_test(test_control_flow), cmocka_unit_test(test_lazy_locals),
      cmocka_unit_test(test_calls),       cmocka_unit_test(test_trap_offset),  cmocka_unit_test(test_stack_exhaustion),
      cmocka_unit_test(test_interrupt),   cmocka_unit_test(test_host_calls),   cmocka_unit_test(test_memory),
      cmocka_unit_test(test_validation),  cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_fused_addresses), cmocka_unit_test(test_loop_closers),
  };
  return TB_RUN(tests);
}
