/*
 * test_decode.c — the wasm decoder (lib/wasm/decode.c) on its own.
 *
 * Usage: wasm_decode_unit [SPEC_JSON_DIR] [-v]
 *
 * Two halves. The spec testsuite, converted by wast2json into SPEC_JSON_DIR (one folder
 * per .wast): every module the suite instantiates must decode, every binary module it
 * calls malformed must fail with TB_EPARSE unless the flaw can only be inside a function
 * body (bodies are compile.c's), and no module it calls invalid may be reported as
 * malformed. Then hand-made modules pin down what the suite does not: the decoded
 * structures, every element and data segment encoding, hostile counts, truncation at
 * every byte, allocation failure at every point, and the validation rules.
 *
 * The test calls tb__wasm_decode directly, so it supplies the two functions decode.c
 * borrows from other stages as weak stubs: it needs no engine, and the real ones (when
 * linked in) behave the same for its purposes.
 */
#include "test.h"

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "wasm_int.h"

static const char *spec_dir;
static bool verbose;

/* ---- stubs for the other stages ----------------------------------------------- */

__attribute__((weak)) int tb__wasm_type_intern(tb_wasm_engine_t *engine, const tb_wasm_valtype_t *types,
                                               uint32_t nparams, uint32_t nresults, uint32_t *id) {
  (void)engine;
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < nparams + nresults; i++) h = (h ^ (uint32_t)types[i]) * 16777619u;
  *id = (h ^ nparams) * 16777619u;
  return 0;
}

__attribute__((weak)) void tb__wasm_code_free(tb__wcode_t *code) { (void)code; }

/* ---- helpers ---------------------------------------------------------------------- */

/* Decodes a copy of bytes[0..len) into a fresh module; *out receives it on success (free
 * with tb__wasm_module_release), and msg the error sentence. */
static int decode(const void *bytes, size_t len, tb_wasm_module_t **out, char *msg, size_t msgsz) {
  tb_wasm_module_t *m = tb_calloc(1, sizeof *m);
  assert_non_null(m);
  m->bytes = tb_malloc(len); /* exact size, so ASan catches any read past the end */
  assert_non_null(m->bytes);
  if (len) memcpy(m->bytes, bytes, len);
  m->len = len;
  msg[0] = '\0';
  tb_errbuf_t eb = {msg, msgsz};
  int rc = tb__wasm_decode(m, &eb);
  if (rc == 0 && out != NULL)
    *out = m;
  else
    tb__wasm_module_release(m);
  return rc;
}

/* A module under construction. */
typedef struct mod {
  uint8_t b[8192];
  size_t n;
} mod_t;

static void put(mod_t *m, const void *p, size_t n) {
  assert_true(m->n + n <= sizeof m->b);
  memcpy(m->b + m->n, p, n);
  m->n += n;
}

static void put_uleb(mod_t *m, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    put(m, &b, 1);
  } while (v);
}

#define PUT(m, lit) put((m), (lit), sizeof(lit) - 1)

static void header(mod_t *m) {
  m->n = 0;
  PUT(m, "\0asm\1\0\0\0");
}

static void section(mod_t *m, uint8_t id, const void *content, size_t n) {
  put(m, &id, 1);
  put_uleb(m, n);
  put(m, content, n);
}

#define SEC(m, id, lit) section((m), (id), (lit), sizeof(lit) - 1)

/* Expects decoding to fail with `code` and a sentence containing `words`. */
static void expect_fail(const mod_t *m, int code, const char *words) {
  char msg[256];
  int rc = decode(m->b, m->n, NULL, msg, sizeof msg);
  if (rc != code || strstr(msg, words) == NULL) {
    print_error("expected %s \"%s\", got %s \"%s\"\n", tb_err_name(code), words, tb_err_name(rc), msg);
    fail();
  }
}

static tb_wasm_module_t *expect_ok(const mod_t *m) {
  char msg[256];
  tb_wasm_module_t *out = NULL;
  int rc = decode(m->b, m->n, &out, msg, sizeof msg);
  if (rc != 0) {
    print_error("expected success, got %s \"%s\"\n", tb_err_name(rc), msg);
    fail();
  }
  return out;
}

/* ---- the spec testsuite ---------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fileno(f), &st) == 0 && (buf = malloc(st.st_size ? (size_t)st.st_size : 1)) != NULL) {
    *len = fread(buf, 1, (size_t)st.st_size, f);
  }
  fclose(f);
  return buf;
}

/* Messages of malformations that can sit inside a function body, which decode.c does
 * not look into. */
static bool body_level(const char *text) {
  static const char *const words[] = {
      "END opcode expected", "zero byte expected", "data count section required", "illegal opcode",
      "unexpected end", "integer representation too long", "integer too large", "malformed memop flags",
  };
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (strncmp(text, words[i], strlen(words[i])) == 0) return true;
  return false;
}

/* Messages of invalid modules that only module-level rules produce. */
static bool module_level(const char *text) {
  static const char *const words[] = {
      "duplicate export name", "multiple memories", "memory size must be at most",
      "size minimum must not be greater than maximum", "start function", "constant expression required",
  };
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (strncmp(text, words[i], strlen(words[i])) == 0) return true;
  return false;
}

typedef struct tally {
  unsigned modules, malformed, malformed_in_body, invalid, invalid_here, failures;
} tally_t;

static void run_json(const char *dir, const char *name, tally_t *t) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%s.json", dir, name, name);
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
  if (root == NULL) {
    print_error("%s: %s\n", path, jerr.text);
    t->failures++;
    return;
  }
  json_t *cmds = json_object_get(root, "commands");
  size_t i;
  json_t *c;
  json_array_foreach(cmds, i, c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *file = json_string_value(json_object_get(c, "filename"));
    const char *mtype = json_string_value(json_object_get(c, "module_type"));
    const char *text = json_string_value(json_object_get(c, "text"));
    int line = (int)json_integer_value(json_object_get(c, "line"));
    if (file == NULL || (mtype != NULL && strcmp(mtype, "binary") != 0)) continue;
    snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    size_t len = 0;
    uint8_t *bytes = read_file(path, &len);
    if (bytes == NULL) {
      print_error("%s: cannot read\n", path);
      t->failures++;
      continue;
    }
    char msg[256];
    tb_wasm_module_t *m = NULL;
    int rc = decode(bytes, len, &m, msg, sizeof msg);
    bool has_bodies = rc == 0 && m->nfuncs > m->nimported_funcs;
    if (rc == 0) tb__wasm_module_release(m);
    free(bytes);
    bool ok = true;
    if (strcmp(type, "module") == 0 || strcmp(type, "assert_unlinkable") == 0 ||
        strcmp(type, "assert_uninstantiable") == 0) {
      t->modules++;
      ok = rc == 0;
    } else if (strcmp(type, "assert_malformed") == 0) {
      t->malformed++;
      if (rc == 0) {
        ok = has_bodies && body_level(text);
        t->malformed_in_body++;
        if (verbose) printf("%s:%d: left to compile.c: %s\n", name, line, text);
      } else {
        ok = rc == TB_EPARSE;
        if (verbose && strstr(msg, text) == NULL) printf("%s:%d: expected \"%s\", said \"%s\"\n", name, line, text, msg);
      }
    } else if (strcmp(type, "assert_invalid") == 0) {
      t->invalid++;
      if (rc == TB_EINVAL) t->invalid_here++;
      ok = rc != TB_EPARSE && rc != TB_ENOMEM && (rc == TB_EINVAL || !module_level(text));
      if (verbose && rc == TB_EINVAL && strstr(msg, text) == NULL)
        printf("%s:%d: expected \"%s\", said \"%s\"\n", name, line, text, msg);
    }
    if (!ok) {
      print_error("%s.wast:%d: %s (%s): expected \"%s\", decode said %s \"%s\"\n", name, line, type, file,
                  text ? text : "success", tb_err_name(rc), msg);
      t->failures++;
    }
  }
  json_decref(root);
}

static void test_spec_suite(void **state) {
  (void)state;
  if (spec_dir == NULL) skip();
  DIR *dir = opendir(spec_dir);
  if (dir == NULL) {
    print_message("no converted suite at %s: skipped\n", spec_dir);
    skip();
  }
  tally_t t = {0};
  struct dirent *e;
  unsigned files = 0;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    run_json(spec_dir, e->d_name, &t);
    files++;
  }
  closedir(dir);
  print_message("%u files: %u modules decoded; %u malformed (%u left to compile.c); %u invalid (%u caught here); "
                "%u failures\n",
                files, t.modules, t.malformed, t.malformed_in_body, t.invalid, t.invalid_here, t.failures);
  assert_true(files > 100);
  assert_int_equal(t.failures, 0);
}

/* ---- a module using every section and encoding --------------------------------------- */

static void build_rich(mod_t *m) {
  header(m);
  SEC(m, 1, "\x03" "\x60\x00\x00" "\x60\x02\x7f\x7e\x01\x7d" "\x60\x02\x7b\x6f\x01\x70");
  SEC(m, 2, "\x04"
            "\x03" "env" "\x01" "f" "\x00\x01"
            "\x03" "env" "\x01" "t" "\x01\x70\x01\x01\x0a"
            "\x03" "env" "\x01" "m" "\x02\x00\x01"
            "\x03" "env" "\x01" "g" "\x03\x7f\x00");
  SEC(m, 3, "\x03\x00\x01\x00");
  SEC(m, 4, "\x01\x6f\x00\x00");
  SEC(m, 0, "\x05" "other" "xyz");
  SEC(m, 6, "\x04"
            "\x7e\x01\x42\x7e\x0b"
            "\x7f\x00\x23\x00\x0b"
            "\x70\x00\xd2\x02\x0b"
            "\x7b\x00\xfd\x0c" "0123456789abcdef" "\x0b");
  SEC(m, 7, "\x04"
            "\x03" "run" "\x00\x01"
            "\x03" "mem" "\x02\x00"
            "\x02" "g1" "\x03\x01"
            "\x03" "tab" "\x01\x01");
  SEC(m, 8, "\x01");
  SEC(m, 9, "\x08"
            "\x00\x41\x00\x0b\x01\x01"
            "\x01\x00\x01\x02"
            "\x02\x00\x41\x01\x0b\x00\x01\x03"
            "\x03\x00\x01\x02"
            "\x04\x41\x02\x0b\x02\xd2\x01\x0b\xd0\x70\x0b"
            "\x05\x6f\x01\xd0\x6f\x0b"
            "\x06\x01\x41\x00\x0b\x6f\x01\xd0\x6f\x0b"
            "\x07\x70\x01\xd2\x03\x0b");
  SEC(m, 12, "\x03");
  SEC(m, 10, "\x03"
             "\x06\x02\x02\x7f\x01\x7c\x0b"
             "\x07\x00\x43\x00\x00\x80\x3f\x0b"
             "\x04\x01\x03\x7b\x0b");
  SEC(m, 11, "\x03"
             "\x00\x41\x10\x0b\x03" "abc"
             "\x01\x02" "hi"
             "\x02\x00\x41\x20\x0b\x01" "z");
  SEC(m, 0, "\x04" "name"
            "\x00\x04\x03" "mod"
            "\x01\x0d\x02\x01\x03" "run" "\x03\x05" "third");
}

static void test_rich_module(void **state) {
  (void)state;
  mod_t mb;
  build_rich(&mb);
  tb_wasm_module_t *m = expect_ok(&mb);

  assert_int_equal(m->ntypes, 3);
  assert_int_equal(m->types[1].nparams, 2);
  assert_int_equal(m->types[1].nresults, 1);
  assert_int_equal(m->types[1].types[1], TB_WASM_I64);
  assert_int_equal(m->types[2].types[0], TB_WASM_V128);
  assert_int_equal(m->types[2].types[2], TB_WASM_FUNCREF);
  assert_int_not_equal(m->types[0].id, m->types[1].id);

  assert_int_equal(m->nimports, 4);
  assert_string_equal(m->imports[2].module, "env");
  assert_string_equal(m->imports[2].name, "m");
  assert_int_equal(m->imports[0].kind, TB_WASM_EXTERN_FUNC);
  assert_int_equal(m->imports[0].type_index, 1);
  assert_int_equal(m->imports[1].table.limits.max, 10);
  assert_true(m->imports[3].global.type == TB_WASM_I32 && !m->imports[3].global.mutable_);

  assert_int_equal(m->nfuncs, 4);
  assert_int_equal(m->nimported_funcs, 1);
  assert_true(m->funcs[0].imported);
  assert_int_equal(m->funcs[2].type_index, 1);
  assert_int_equal(m->funcs[1].nlocals, 3);
  assert_int_equal(m->funcs[1].local_types[1], TB_WASM_I32);
  assert_int_equal(m->funcs[1].local_types[2], TB_WASM_F64);
  assert_int_equal(m->funcs[3].nlocals, 3);
  assert_int_equal(m->funcs[3].local_types[0], TB_WASM_V128);
  assert_int_equal(m->funcs[2].body_end - m->funcs[2].body, 6);
  assert_int_equal(m->funcs[2].body[0], 0x43);
  assert_int_equal(m->funcs[2].body_end[-1], 0x0b);
  assert_ptr_equal(m->bytes + m->funcs[2].body_offset, m->funcs[2].body);

  assert_int_equal(m->ntables, 2);
  assert_int_equal(m->nimported_tables, 1);
  assert_int_equal(m->tables[1].elem, TB_WASM_EXTERNREF);
  assert_false(m->tables[1].limits.has_max);
  assert_int_equal(m->nmems, 1);
  assert_int_equal(m->mems[0].min, 1);

  assert_int_equal(m->nglobals, 5);
  assert_int_equal(m->nimported_globals, 1);
  assert_true(m->globals[1].type.mutable_);
  assert_int_equal(m->globals[1].init.op, TB__WCONST_I64);
  assert_int_equal((int64_t)m->globals[1].init.bits, -2);
  assert_int_equal(m->globals[2].init.op, TB__WCONST_GLOBAL_GET);
  assert_int_equal(m->globals[2].init.bits, 0);
  assert_int_equal(m->globals[3].init.op, TB__WCONST_REF_FUNC);
  assert_int_equal(m->globals[3].init.bits, 2);
  assert_int_equal(m->globals[4].init.op, TB__WCONST_V128);
  assert_int_equal(m->globals[4].init.bits & 0xff, '0');
  assert_int_equal(m->globals[4].init.bits_hi >> 56, 'f');

  assert_int_equal(m->nexports, 4);
  assert_string_equal(m->exports[3].name, "tab");
  assert_int_equal(m->exports[3].kind, TB_WASM_EXTERN_TABLE);
  assert_int_equal(m->exports[3].index, 1);
  assert_true(m->has_start);
  assert_int_equal(m->start, 1);

  assert_int_equal(m->nelems, 8);
  static const tb__wseg_mode_t modes[8] = {TB__WSEG_ACTIVE,  TB__WSEG_PASSIVE, TB__WSEG_ACTIVE,
                                           TB__WSEG_DECLARATIVE, TB__WSEG_ACTIVE, TB__WSEG_PASSIVE,
                                           TB__WSEG_ACTIVE,  TB__WSEG_DECLARATIVE};
  for (int i = 0; i < 8; i++) assert_int_equal(m->elems[i].mode, modes[i]);
  assert_int_equal(m->elems[0].items[0].op, TB__WCONST_REF_FUNC);
  assert_int_equal(m->elems[0].items[0].bits, 1);
  assert_int_equal(m->elems[2].table, 0);
  assert_int_equal(m->elems[2].offset.bits, 1);
  assert_int_equal(m->elems[4].count, 2);
  assert_int_equal(m->elems[4].offset.bits, 2);
  assert_int_equal(m->elems[4].items[1].op, TB__WCONST_REF_NULL);
  assert_int_equal(m->elems[5].type, TB_WASM_EXTERNREF);
  assert_int_equal(m->elems[6].table, 1);
  assert_int_equal(m->elems[6].type, TB_WASM_EXTERNREF);
  assert_int_equal(m->elems[7].items[0].bits, 3);

  assert_true(m->has_data_count);
  assert_int_equal(m->data_count, 3);
  assert_int_equal(m->ndatas, 3);
  assert_int_equal(m->datas[0].mode, TB__WSEG_ACTIVE);
  assert_int_equal(m->datas[0].offset.bits, 0x10);
  assert_int_equal(m->datas[0].len, 3);
  assert_memory_equal(m->datas[0].bytes, "abc", 3);
  assert_int_equal(m->datas[1].mode, TB__WSEG_PASSIVE);
  assert_memory_equal(m->datas[1].bytes, "hi", 2);
  assert_int_equal(m->datas[2].memory, 0);
  assert_int_equal(m->datas[2].offset.bits, 0x20);

  assert_int_equal(m->ncustoms, 2);
  assert_string_equal(m->customs[0].name, "other");
  assert_int_equal(m->customs[0].len, 3);
  assert_memory_equal(m->customs[0].bytes, "xyz", 3);
  assert_string_equal(m->customs[1].name, "name");

  assert_non_null(m->func_names);
  assert_null(m->func_names[0]);
  assert_string_equal(m->func_names[1], "run");
  assert_string_equal(m->func_names[3], "third");

  /* C.refs: exports (1), element segments (1, 2, 3) and globals (2); never function 0. */
  assert_non_null(m->declared_refs);
  assert_int_equal(m->declared_refs[0], 0x0e);
  tb__wasm_module_release(m);
}

/* Every prefix of a module is either a (shorter) module or malformed; never a crash or a
 * read past the end (the copy is exact-size, for ASan). */
static void test_truncation(void **state) {
  (void)state;
  mod_t mb;
  build_rich(&mb);
  for (size_t n = 0; n < mb.n; n++) {
    char msg[256];
    int rc = decode(mb.b, n, NULL, msg, sizeof msg);
    if (rc != 0 && rc != TB_EPARSE && rc != TB_EINVAL) {
      print_error("prefix of %zu bytes: %s %s\n", n, tb_err_name(rc), msg);
      fail();
    }
  }
}

/* Every allocation failure ends in TB_ENOMEM with nothing leaked (ASan checks leaks). */
static void test_alloc_failures(void **state) {
  (void)state;
  mod_t mb;
  build_rich(&mb);
  for (long n = 0;; n++) {
    tb_wasm_module_t *m = tb_calloc(1, sizeof *m);
    m->bytes = tb_malloc(mb.n);
    memcpy(m->bytes, mb.b, mb.n);
    m->len = mb.n;
    char msg[256] = "";
    tb_errbuf_t eb = {msg, sizeof msg};
    tb_alloc_fail_after(n);
    int rc = tb__wasm_decode(m, &eb);
    tb_alloc_fail_after(-1);
    tb__wasm_module_release(m);
    if (rc == 0) {
      assert_true(n > 10);
      break;
    }
    if (rc != TB_ENOMEM) {
      print_error("failing allocation %ld: %s %s\n", n, tb_err_name(rc), msg);
      fail();
    }
  }
}

/* ---- malformed ---------------------------------------------------------------------- */

static void test_header(void **state) {
  (void)state;
  static const struct {
    const char *bytes;
    size_t len;
    const char *words;
  } cases[] = {
      {"", 0, "unexpected end"},
      {"\x01", 1, "unexpected end"},
      {"\0as", 3, "unexpected end"},
      {"asm\0", 4, "magic header not detected"},
      {"\0asm", 4, "unexpected end"},
      {"\0asm\1\0\0", 7, "unexpected end"},
      {"\0asm\2\0\0\0", 8, "unknown binary version"},
      {"\0asm\0\0\0\1", 8, "unknown binary version"},
      {"\0asm\1\0\0\0\x0d\0", 10, "malformed section id"},
      {"\0asm\1\0\0\0\x80\0\1\0", 12, "malformed section id"},
      {"\0asm\1\0\0\0\0", 9, "unexpected end"},
      {"\0asm\1\0\0\0\0\0", 10, "unexpected end"},
      {"\0asm\1\0\0\0\1\5\1", 11, "length out of bounds"},
      {"\0asm\1\0\0\0\0asm\1\0\0\0", 16, "length out of bounds"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    mod_t m = {.n = 0};
    put(&m, cases[i].bytes, cases[i].len);
    expect_fail(&m, TB_EPARSE, cases[i].words);
  }
  mod_t m;
  header(&m);
  tb__wasm_module_release(expect_ok(&m));
}

/* Hostile counts fail at once, before anything of their size is allocated. */
static void test_hostile_counts(void **state) {
  (void)state;
  for (uint8_t id = 1; id <= 11; id++) {
    if (id == 8) continue; /* start holds an index, not a count */
    mod_t m;
    header(&m);
    SEC(&m, id, "\xff\xff\xff\xff\x0f\x00\x00\x00");
    unsigned long before = tb_alloc_count();
    expect_fail(&m, TB_EPARSE, "unexpected end");
    assert_true(tb_alloc_count() - before < 10);
  }
  /* A string length past the section. */
  mod_t m;
  header(&m);
  SEC(&m, 2, "\x01\xff\xff\xff\xff\x0f");
  expect_fail(&m, TB_EPARSE, "unexpected end");
  /* A body size past the section. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\xff\xff\xff\x7f\x00\x0b");
  expect_fail(&m, TB_EPARSE, "unexpected end");
  /* A vector of locals declaring more than there are bytes. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x05\xff\xff\xff\xff\x0f");
  expect_fail(&m, TB_EPARSE, "unexpected end");
}

static void test_leb128(void **state) {
  (void)state;
  mod_t m;
  /* Type count 0 in six bytes: too long. */
  header(&m);
  SEC(&m, 1, "\x80\x80\x80\x80\x80\x00");
  expect_fail(&m, TB_EPARSE, "integer representation too long");
  /* Type count 0 in five bytes: fine. */
  header(&m);
  SEC(&m, 1, "\x80\x80\x80\x80\x00");
  tb__wasm_module_release(expect_ok(&m));
  /* Unused bits set in the fifth byte of a u32. */
  header(&m);
  SEC(&m, 1, "\x80\x80\x80\x80\x10");
  expect_fail(&m, TB_EPARSE, "integer too large");
  /* Section size in a padded LEB. */
  header(&m);
  PUT(&m, "\x01\x81\x80\x80\x80\x00\x00");
  tb__wasm_module_release(expect_ok(&m));
  /* s32 with unused bits that are not the sign's: too large; with them: fine. */
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x41\x80\x80\x80\x80\x70\x0b");
  expect_fail(&m, TB_EPARSE, "integer too large");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x41\xff\xff\xff\xff\x7f\x0b");
  tb_wasm_module_t *mod = expect_ok(&m);
  assert_int_equal((uint32_t)mod->globals[0].init.bits, 0xffffffffu);
  tb__wasm_module_release(mod);
  /* s64: ten bytes, the last only sign. */
  header(&m);
  SEC(&m, 6, "\x01\x7e\x00\x42\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7e\x0b");
  expect_fail(&m, TB_EPARSE, "integer too large");
  header(&m);
  SEC(&m, 6, "\x01\x7e\x00\x42\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f\x0b");
  mod = expect_ok(&m);
  assert_int_equal(mod->globals[0].init.bits, 0x8000000000000000ull);
  tb__wasm_module_release(mod);
  header(&m);
  SEC(&m, 6, "\x01\x7e\x00\x42\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00\x0b");
  expect_fail(&m, TB_EPARSE, "integer representation too long");
  /* Limits flags are a one-bit LEB. */
  header(&m);
  SEC(&m, 5, "\x01\x02\x00");
  expect_fail(&m, TB_EPARSE, "integer too large");
  header(&m);
  SEC(&m, 5, "\x01\x81\x00\x00\x00");
  expect_fail(&m, TB_EPARSE, "integer representation too long");
}

static void test_structure_errors(void **state) {
  (void)state;
  mod_t m;
  /* Section order: a repeated section, one out of order, data count after code. */
  header(&m);
  SEC(&m, 1, "\x00");
  SEC(&m, 1, "\x00");
  expect_fail(&m, TB_EPARSE, "unexpected content after last section");
  header(&m);
  SEC(&m, 3, "\x00");
  SEC(&m, 1, "\x00");
  expect_fail(&m, TB_EPARSE, "unexpected content after last section");
  header(&m);
  SEC(&m, 10, "\x00");
  SEC(&m, 12, "\x00");
  expect_fail(&m, TB_EPARSE, "unexpected content after last section");
  /* Custom sections anywhere, data count between element and code. */
  header(&m);
  SEC(&m, 0, "\x01x");
  SEC(&m, 1, "\x00");
  SEC(&m, 0, "\x01y");
  SEC(&m, 9, "\x00");
  SEC(&m, 12, "\x00");
  SEC(&m, 10, "\x00");
  SEC(&m, 0, "\x01z");
  tb__wasm_module_release(expect_ok(&m));
  /* Section size larger and smaller than the contents. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00\x00");
  expect_fail(&m, TB_EPARSE, "section size mismatch");
  header(&m);
  SEC(&m, 1, "\x01\x60\x00");
  expect_fail(&m, TB_EPARSE, "unexpected end");
  header(&m);
  SEC(&m, 1, "\x01\x60\x00");
  SEC(&m, 0, "\x01x");
  expect_fail(&m, TB_EPARSE, "unexpected end of section or function");
  /* Function and code counts. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x02\x00\x00");
  expect_fail(&m, TB_EPARSE, "function and code section have inconsistent lengths");
  header(&m);
  SEC(&m, 10, "\x01\x02\x00\x0b");
  expect_fail(&m, TB_EPARSE, "function and code section have inconsistent lengths");
  /* Data count and data. */
  header(&m);
  SEC(&m, 12, "\x01");
  expect_fail(&m, TB_EPARSE, "data count and data section have inconsistent lengths");
  header(&m);
  SEC(&m, 12, "\x02");
  SEC(&m, 11, "\x01\x01\x00");
  expect_fail(&m, TB_EPARSE, "data count and data section have inconsistent lengths");
  /* Bytes of the wrong kind. */
  header(&m);
  SEC(&m, 1, "\x01\x61\x00\x00");
  expect_fail(&m, TB_EPARSE, "malformed function type");
  header(&m);
  SEC(&m, 1, "\x01\x60\x01\x7a\x00");
  expect_fail(&m, TB_EPARSE, "malformed value type");
  header(&m);
  SEC(&m, 2, "\x01\x00\x00\x04\x00");
  expect_fail(&m, TB_EPARSE, "malformed import kind");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x02\x41\x00\x0b");
  expect_fail(&m, TB_EPARSE, "malformed mutability");
  header(&m);
  SEC(&m, 4, "\x01\x7f\x00\x00");
  expect_fail(&m, TB_EPARSE, "malformed reference type");
  header(&m);
  SEC(&m, 9, "\x01\x05\x7f\x00");
  expect_fail(&m, TB_EPARSE, "malformed reference type");
  header(&m);
  SEC(&m, 9, "\x01\x08\x00");
  expect_fail(&m, TB_EPARSE, "malformed elements segment kind");
  header(&m);
  SEC(&m, 9, "\x01\x01\x01\x00");
  expect_fail(&m, TB_EPARSE, "malformed element kind");
  header(&m);
  SEC(&m, 11, "\x01\x03\x00");
  expect_fail(&m, TB_EPARSE, "malformed data segment kind");
  header(&m);
  SEC(&m, 7, "\x01\x01x\x04\x00");
  expect_fail(&m, TB_EPARSE, "malformed export kind");
  /* An unknown opcode in a constant expression is malformed, a known one invalid. */
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x06\x0b");
  expect_fail(&m, TB_EPARSE, "illegal opcode");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x41\x00\x41\x00\x6a\x0b");
  expect_fail(&m, TB_EINVAL, "constant expression required");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x02\x40\x0b\x41\x00\x0b");
  expect_fail(&m, TB_EINVAL, "constant expression required");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x41\x00");
  expect_fail(&m, TB_EPARSE, "unexpected end");
  /* Malformed beats invalid, even when the invalid part comes first, and even when the
   * malformation is inside a function body. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 7, "\x01\x01x\x00\x05"); /* unknown function 5 */
  SEC(&m, 10, "\x01\x04\x00\x06\x00\x0b");
  expect_fail(&m, TB_EPARSE, "illegal opcode");
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 7, "\x01\x01x\x00\x05");
  SEC(&m, 10, "\x01\x06\x00\x02\x40\x05\x0b\x0b"); /* else in a block */
  expect_fail(&m, TB_EPARSE, "END opcode expected");
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 7, "\x01\x01x\x00\x05");
  SEC(&m, 10, "\x01\x04\x00\x0b\x01\x0b"); /* code after the final end */
  expect_fail(&m, TB_EPARSE, "section size mismatch");
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 7, "\x01\x01x\x00\x05");
  SEC(&m, 10, "\x01\x05\x00\xfc\x09\x00\x0b"); /* data.drop without a data count */
  expect_fail(&m, TB_EPARSE, "data count section required");
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 7, "\x01\x01x\x00\x05");
  SEC(&m, 10, "\x01\x10\x00\x41\x00\x04\x40\x01\x05\x01\x0b\x03\x7f\x41\x00\x0b\x1a\x0b");
  expect_fail(&m, TB_EINVAL, "unknown function 5"); /* a well-formed body: the error stands */
  /* Malformed beats invalid, even when the invalid part comes first. */
  header(&m);
  SEC(&m, 3, "\x01\x05");
  SEC(&m, 1, "\x00");
  expect_fail(&m, TB_EPARSE, "unexpected content after last section");
}

static void test_utf8(void **state) {
  (void)state;
  static const char *const bad[] = {"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                                    "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xe2\x82", "\xff", "a\xfe"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mod_t m;
    uint8_t content[16];
    size_t n = strlen(bad[i]);
    content[0] = (uint8_t)n;
    memcpy(content + 1, bad[i], n);
    header(&m);
    section(&m, 0, content, n + 1);
    expect_fail(&m, TB_EPARSE, "malformed UTF-8 encoding");
  }
  static const char *const good[] = {"", "a\0b", "\xc2\x80", "\xed\x9f\xbf", "\xee\x80\x80", "\xf0\x90\x80\x80",
                                     "\xf4\x8f\xbf\xbf", "\xef\xbb\xbf"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    mod_t m;
    uint8_t content[16];
    size_t n = i == 1 ? 3 : strlen(good[i]);
    content[0] = (uint8_t)n;
    memcpy(content + 1, good[i], n);
    header(&m);
    section(&m, 0, content, n + 1);
    tb__wasm_module_release(expect_ok(&m));
  }
}

static void test_locals(void **state) {
  (void)state;
  mod_t m;
  /* 2^32 locals in total: malformed. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x0d\x02\xff\xff\xff\xff\x0f\x7f\x01\x7e\x0b\x00\x00\x00");
  expect_fail(&m, TB_EPARSE, "too many locals");
  /* Past our limit but within u32: too big. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x01\x7f\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x06\x01\xd0\x86\x03\x7f\x0b"); /* 50000 locals + 1 param */
  expect_fail(&m, TB_ETOOBIG, "too many locals");
  /* At the limit: fine. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x06\x01\xd0\x86\x03\x7f\x0b");
  tb_wasm_module_t *mod = expect_ok(&m);
  assert_int_equal(mod->funcs[0].nlocals, 50000);
  tb__wasm_module_release(mod);
  /* A body too big. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  uint8_t *big = calloc(1, TB__WASM_MAX_BODY + 64);
  assert_non_null(big);
  memcpy(big, m.b, m.n);
  size_t n = m.n;
  big[n++] = 10;
  uint32_t body = TB__WASM_MAX_BODY + 1, sec = body + 5;
  for (int i = 0; i < 4; i++) big[n++] = (uint8_t)(0x80 | ((sec >> (7 * i)) & 0x7f));
  big[n++] = (uint8_t)(sec >> 28);
  big[n++] = 1;
  for (int i = 0; i < 3; i++) big[n++] = (uint8_t)(0x80 | ((body >> (7 * i)) & 0x7f));
  big[n++] = (uint8_t)(body >> 21);
  n += body;
  char msg[256];
  assert_int_equal(decode(big, n, NULL, msg, sizeof msg), TB_ETOOBIG);
  free(big);
}

/* ---- invalid ----------------------------------------------------------------------- */

static void test_validation(void **state) {
  (void)state;
  mod_t m;
  header(&m);
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x02\x00\x0b");
  expect_fail(&m, TB_EINVAL, "unknown type");
  header(&m);
  SEC(&m, 2, "\x01\x00\x00\x00\x00");
  expect_fail(&m, TB_EINVAL, "unknown type");
  header(&m);
  SEC(&m, 5, "\x02\x00\x00\x00\x00");
  expect_fail(&m, TB_EINVAL, "multiple memories");
  header(&m);
  SEC(&m, 2, "\x01\x00\x00\x02\x00\x00");
  SEC(&m, 5, "\x01\x00\x00");
  expect_fail(&m, TB_EINVAL, "multiple memories");
  header(&m);
  SEC(&m, 5, "\x01\x00\x81\x80\x04");
  expect_fail(&m, TB_EINVAL, "memory size must be at most 65536 pages (4GiB)");
  header(&m);
  SEC(&m, 5, "\x01\x01\x00\x81\x80\x04");
  expect_fail(&m, TB_EINVAL, "memory size must be at most 65536 pages (4GiB)");
  header(&m);
  SEC(&m, 5, "\x01\x01\x80\x80\x04\x80\x80\x04");
  tb__wasm_module_release(expect_ok(&m));
  header(&m);
  SEC(&m, 5, "\x01\x01\x02\x01");
  expect_fail(&m, TB_EINVAL, "size minimum must not be greater than maximum");
  header(&m);
  SEC(&m, 4, "\x01\x70\x01\x02\x01");
  expect_fail(&m, TB_EINVAL, "size minimum must not be greater than maximum");
  /* Exports. */
  header(&m);
  SEC(&m, 7, "\x01\x01x\x00\x00");
  expect_fail(&m, TB_EINVAL, "unknown function");
  header(&m);
  SEC(&m, 7, "\x01\x01x\x01\x00");
  expect_fail(&m, TB_EINVAL, "unknown table");
  header(&m);
  SEC(&m, 7, "\x01\x01x\x02\x00");
  expect_fail(&m, TB_EINVAL, "unknown memory");
  header(&m);
  SEC(&m, 7, "\x01\x01x\x03\x00");
  expect_fail(&m, TB_EINVAL, "unknown global");
  header(&m);
  SEC(&m, 5, "\x01\x00\x00");
  SEC(&m, 7, "\x03\x01x\x02\x00\x01y\x02\x00\x01x\x02\x00");
  expect_fail(&m, TB_EINVAL, "duplicate export name");
  header(&m);
  SEC(&m, 5, "\x01\x00\x00");
  SEC(&m, 7, "\x03\x01x\x02\x00\x02xy\x02\x00\x01y\x02\x00");
  tb__wasm_module_release(expect_ok(&m));
  /* Start. */
  header(&m);
  SEC(&m, 8, "\x00");
  expect_fail(&m, TB_EINVAL, "unknown function");
  header(&m);
  SEC(&m, 1, "\x01\x60\x01\x7f\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 8, "\x00");
  SEC(&m, 10, "\x01\x02\x00\x0b");
  expect_fail(&m, TB_EINVAL, "start function");
  /* Constant expressions. */
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x42\x00\x0b");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x0b");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x41\x00\x41\x00\x0b");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  header(&m);
  SEC(&m, 6, "\x01\x7f\x00\x23\x00\x0b");
  expect_fail(&m, TB_EINVAL, "unknown global");
  header(&m);
  SEC(&m, 6, "\x02\x7f\x00\x41\x00\x0b\x7f\x00\x23\x00\x0b"); /* defined globals are not visible */
  expect_fail(&m, TB_EINVAL, "unknown global");
  header(&m);
  SEC(&m, 2, "\x01\x00\x00\x03\x7f\x01");
  SEC(&m, 6, "\x01\x7f\x00\x23\x00\x0b");
  expect_fail(&m, TB_EINVAL, "constant expression required");
  header(&m);
  SEC(&m, 2, "\x01\x00\x00\x03\x6f\x00");
  SEC(&m, 6, "\x01\x70\x00\x23\x00\x0b");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  header(&m);
  SEC(&m, 6, "\x01\x70\x00\xd2\x00\x0b");
  expect_fail(&m, TB_EINVAL, "unknown function");
  header(&m);
  SEC(&m, 6, "\x01\x70\x00\xd0\x6f\x0b");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  /* Element segments. */
  header(&m);
  SEC(&m, 9, "\x01\x00\x41\x00\x0b\x00");
  expect_fail(&m, TB_EINVAL, "unknown table");
  header(&m);
  SEC(&m, 4, "\x01\x6f\x00\x00");
  SEC(&m, 9, "\x01\x00\x41\x00\x0b\x00");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  header(&m);
  SEC(&m, 4, "\x01\x70\x00\x00");
  SEC(&m, 9, "\x01\x00\x42\x00\x0b\x00");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  header(&m);
  SEC(&m, 9, "\x01\x01\x00\x01\x00");
  expect_fail(&m, TB_EINVAL, "unknown function");
  header(&m);
  SEC(&m, 9, "\x01\x05\x70\x01\xd0\x6f\x0b");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  /* Data segments. */
  header(&m);
  SEC(&m, 11, "\x01\x00\x41\x00\x0b\x00");
  expect_fail(&m, TB_EINVAL, "unknown memory");
  header(&m);
  SEC(&m, 5, "\x01\x00\x00");
  SEC(&m, 11, "\x01\x02\x01\x41\x00\x0b\x00");
  expect_fail(&m, TB_EINVAL, "unknown memory");
  header(&m);
  SEC(&m, 5, "\x01\x00\x00");
  SEC(&m, 11, "\x01\x00\x42\x00\x0b\x00");
  expect_fail(&m, TB_EINVAL, "type mismatch");
  /* A v128 global decodes (the validator has the last word on v128). */
  header(&m);
  SEC(&m, 6, "\x01\x7b\x00\xfd\x0c" "0123456789abcdef" "\x0b");
  tb__wasm_module_release(expect_ok(&m));
  /* Its opcode is a LEB128, which may be padded. */
  header(&m);
  SEC(&m, 6, "\x01\x7b\x00\xfd\x8c\x80\x00" "0123456789abcdef" "\x0b");
  tb__wasm_module_release(expect_ok(&m));
  /* Other SIMD instructions are not constant. */
  header(&m);
  SEC(&m, 6, "\x01\x7b\x00\xfd\x0c" "0123456789abcdef" "\xfd\x4d\x0b");
  expect_fail(&m, TB_EINVAL, "constant expression required");
}

static void test_names(void **state) {
  (void)state;
  mod_t m;
  /* A malformed name section (an index past the functions) is ignored. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x02\x00\x0b");
  SEC(&m, 0, "\x04name\x01\x05\x01\x07\x01" "f");
  tb_wasm_module_t *mod = expect_ok(&m);
  assert_null(mod->func_names);
  assert_int_equal(mod->ncustoms, 1);
  tb__wasm_module_release(mod);
  /* As are truncated ones and bad UTF-8. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x02\x00\x0b");
  SEC(&m, 0, "\x04name\x01\x09\x01\x00\x05" "ab");
  mod = expect_ok(&m);
  assert_null(mod->func_names);
  tb__wasm_module_release(mod);
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x02\x00\x0b");
  SEC(&m, 0, "\x04name\x01\x04\x01\x00\x01\xff");
  mod = expect_ok(&m);
  assert_null(mod->func_names);
  tb__wasm_module_release(mod);
  /* Only the first name section counts. */
  header(&m);
  SEC(&m, 1, "\x01\x60\x00\x00");
  SEC(&m, 3, "\x01\x00");
  SEC(&m, 10, "\x01\x02\x00\x0b");
  SEC(&m, 0, "\x04name\x01\x04\x01\x00\x01" "a");
  SEC(&m, 0, "\x04name\x01\x04\x01\x00\x01" "b");
  mod = expect_ok(&m);
  assert_string_equal(mod->func_names[0], "a");
  tb__wasm_module_release(mod);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-v") == 0)
      verbose = true;
    else
      spec_dir = argv[i];
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header),        cmocka_unit_test(test_hostile_counts),
      cmocka_unit_test(test_leb128),        cmocka_unit_test(test_structure_errors),
      cmocka_unit_test(test_utf8),          cmocka_unit_test(test_locals),
      cmocka_unit_test(test_validation),    cmocka_unit_test(test_names),
      cmocka_unit_test(test_rich_module),   cmocka_unit_test(test_truncation),
      cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_spec_suite),
  };
  return TB_RUN(tests);
}
