/*
 * toml.c — the TOML document tree: its arena, table lookup and the public accessors.
 *
 * A parsed document is a tree of tb_toml_value_t nodes that all live in one arena owned
 * by the tb_toml_doc_t (which itself sits in its first chunk), so tb_toml_free is a walk
 * over a short chunk list however large the document was. Tables keep their entries in
 * document order; small ones are searched linearly, larger ones get an open-addressing
 * index keyed with SipHash so that neither 100k keys nor crafted colliding keys make
 * lookups quadratic. The grammar lives in toml_parse.c, the lexing in toml_lex.c.
 */
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "tb/toml.h"
#include "toml_int.h"

/* ---- arena ------------------------------------------------------------------------ */

/* Strictest alignment any node member needs; max_align_t would waste 16 bytes a string. */
#define ALIGN alignof(union { void *p; uint64_t u; double d; size_t z; })
#define CHUNK_FIRST ((size_t)4096)
#define CHUNK_MAX ((size_t)1 << 20)

struct tb__toml_chunk {
  tb__toml_chunk_t *next;
  size_t cap, used;
  alignas(ALIGN) unsigned char data[];
};

static size_t round_up(size_t n) { return (n + (ALIGN - 1)) & ~(ALIGN - 1); }

static tb__toml_chunk_t *chunk_new(size_t cap) {
  if (cap > SIZE_MAX - sizeof(tb__toml_chunk_t)) return NULL;
  tb__toml_chunk_t *c = tb_malloc(sizeof *c + cap);
  if (c == NULL) return NULL;
  c->next = NULL;
  c->cap = cap;
  c->used = 0;
  return c;
}

void *tb__toml_alloc(tb__toml_arena_t *a, size_t n) {
  if (n > SIZE_MAX / 2) return NULL;
  n = round_up(n ? n : 1);
  tb__toml_chunk_t *c = a->head;
  if (c != NULL && c->cap - c->used >= n) {
    void *p = c->data + c->used;
    c->used += n;
    return p;
  }
  if (a->next_size == 0) a->next_size = CHUNK_FIRST;
  if (n > a->next_size / 2) {
    /* A large block gets a chunk of its own, linked behind the head so that the head's
     * free space keeps serving small allocations. */
    tb__toml_chunk_t *big = chunk_new(n);
    if (big == NULL) return NULL;
    big->used = n;
    if (c == NULL) {
      a->head = big;
    } else {
      big->next = c->next;
      c->next = big;
    }
    return big->data;
  }
  tb__toml_chunk_t *fresh = chunk_new(a->next_size);
  if (fresh == NULL) return NULL;
  if (a->next_size < CHUNK_MAX) a->next_size *= 2;
  fresh->next = c;
  a->head = fresh;
  fresh->used = n;
  return fresh->data;
}

void *tb__toml_grow(tb__toml_arena_t *a, void *old, size_t old_n, size_t new_n) {
  if (old == NULL) return tb__toml_alloc(a, new_n);
  if (new_n <= old_n) return old;
  tb__toml_chunk_t *c = a->head;
  size_t old_r = round_up(old_n);
  /* The last block of the head chunk can simply extend into the free space after it. */
  if (c != NULL && (unsigned char *)old + old_r == c->data + c->used && new_n < SIZE_MAX / 2) {
    size_t extra = round_up(new_n) - old_r;
    if (c->cap - c->used >= extra) {
      c->used += extra;
      return old;
    }
  }
  void *p = tb__toml_alloc(a, new_n);
  if (p == NULL) return NULL;
  memcpy(p, old, old_n);
  return p;
}

void tb__toml_arena_free(tb__toml_arena_t *a) {
  tb__toml_chunk_t *c = a->head;
  while (c != NULL) {
    tb__toml_chunk_t *next = c->next;
    tb_free(c);
    c = next;
  }
  a->head = NULL;
  a->next_size = 0;
}

/* ---- hashing ---------------------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND(v0, v1, v2, v3) \
  do {                           \
    v0 += v1;                    \
    v1 = rotl(v1, 13);           \
    v1 ^= v0;                    \
    v0 = rotl(v0, 32);           \
    v2 += v3;                    \
    v3 = rotl(v3, 16);           \
    v3 ^= v2;                    \
    v0 += v3;                    \
    v3 = rotl(v3, 21);           \
    v3 ^= v0;                    \
    v2 += v1;                    \
    v1 = rotl(v1, 17);           \
    v1 ^= v2;                    \
    v2 = rotl(v2, 32);           \
  } while (0)

/* SipHash-1-3: keyed, so an input cannot be crafted to collide without knowing the key. */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *m, size_t len) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w = 0;
    for (int j = 0; j < 8; j++) w |= (uint64_t)m[i + j] << (8 * j);
    v3 ^= w;
    SIPROUND(v0, v1, v2, v3);
    v0 ^= w;
  }
  uint64_t b = (uint64_t)len << 56;
  for (size_t j = 0; i + j < len; j++) b |= (uint64_t)m[i + j] << (8 * j);
  v3 ^= b;
  SIPROUND(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND(v0, v1, v2, v3);
  SIPROUND(v0, v1, v2, v3);
  SIPROUND(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void index_put(tb__toml_index_t *idx, const tb__toml_entry_t *ent, size_t i) {
  uint64_t h = siphash13(idx->k0, idx->k1, (const uint8_t *)ent[i].key, ent[i].key_len);
  uint32_t j = (uint32_t)h & idx->mask;
  while (idx->slot[j] != 0) j = (j + 1) & idx->mask;
  idx->slot[j] = (uint32_t)i + 1;
}

/* (Re)builds table t's index with `slots` slots (a power of two, > 2 * len). */
static int index_build(tb__toml_arena_t *a, tb_toml_value_t *t, size_t slots) {
  tb__toml_index_t *old = t->u.tab.idx;
  tb__toml_index_t *idx = tb__toml_alloc(a, sizeof *idx + slots * sizeof idx->slot[0]);
  if (idx == NULL) return TB_ENOMEM;
  if (old != NULL) {
    idx->k0 = old->k0;
    idx->k1 = old->k1;
  } else {
    /* Seeded from addresses: ASLR makes them differ between runs, and no input can
     * observe them, which is all a hash-flooding defence for a parser needs. */
    uint64_t local = 0;
    idx->k0 = splitmix((uint64_t)(uintptr_t)t ^ (uint64_t)(uintptr_t)a->head);
    idx->k1 = splitmix((uint64_t)(uintptr_t)&local ^ idx->k0);
  }
  idx->mask = (uint32_t)(slots - 1);
  memset(idx->slot, 0, slots * sizeof idx->slot[0]);
  for (size_t i = 0; i < t->u.tab.len; i++) index_put(idx, t->u.tab.ent, i);
  t->u.tab.idx = idx;
  return 0;
}

static bool key_eq(const tb__toml_entry_t *e, const char *key, size_t len) {
  return e->key_len == len && memcmp(e->key, key, len) == 0;
}

tb__toml_entry_t *tb__toml_find(const tb_toml_value_t *t, const char *key, size_t len) {
  if (t == NULL || t->type != TB_TOML_TABLE || key == NULL) return NULL;
  tb__toml_entry_t *ent = t->u.tab.ent;
  const tb__toml_index_t *idx = t->u.tab.idx;
  if (idx == NULL) {
    for (size_t i = 0; i < t->u.tab.len; i++)
      if (key_eq(&ent[i], key, len)) return &ent[i];
    return NULL;
  }
  uint64_t h = siphash13(idx->k0, idx->k1, (const uint8_t *)key, len);
  for (uint32_t j = (uint32_t)h & idx->mask; idx->slot[j] != 0; j = (j + 1) & idx->mask) {
    tb__toml_entry_t *e = &ent[idx->slot[j] - 1];
    if (key_eq(e, key, len)) return e;
  }
  return NULL;
}

int tb__toml_add(tb__toml_arena_t *a, tb_toml_value_t *t, const char *key, size_t len,
                 tb_toml_pos_t key_pos, tb_toml_value_t *v) {
  size_t n = t->u.tab.len;
  /* Index slots hold entry numbers in 32 bits; no real input gets near this. */
  if (n >= UINT32_MAX / 4) return TB_ENOMEM;
  if (n == t->u.tab.cap) {
    size_t cap = n ? n * 2 : 4;
    tb__toml_entry_t *ent = tb__toml_grow(a, t->u.tab.ent, n * sizeof *ent, cap * sizeof *ent);
    if (ent == NULL) return TB_ENOMEM;
    t->u.tab.ent = ent;
    t->u.tab.cap = cap;
  }
  tb__toml_entry_t *e = &t->u.tab.ent[n];
  e->key = key;
  e->key_len = len;
  e->key_pos = key_pos;
  e->value = v;
  t->u.tab.len = n + 1;
  if (t->u.tab.len <= TB__TOML_INDEX_MIN) return 0;
  tb__toml_index_t *idx = t->u.tab.idx;
  if (idx == NULL || (size_t)t->u.tab.len * 2 > (size_t)idx->mask + 1) {
    size_t slots = idx ? ((size_t)idx->mask + 1) * 2 : 4 * TB__TOML_INDEX_MIN;
    int rc = index_build(a, t, slots);
    if (rc != 0) {
      t->u.tab.len = n; /* keep the table consistent with its old index */
      return rc;
    }
    return 0;
  }
  index_put(idx, t->u.tab.ent, n);
  return 0;
}

int tb__toml_push(tb__toml_arena_t *a, tb_toml_value_t *arr, tb_toml_value_t *v) {
  size_t n = arr->u.arr.len;
  if (n == arr->u.arr.cap) {
    if (n > SIZE_MAX / 2 / sizeof(v)) return TB_ENOMEM;
    size_t cap = n ? n * 2 : 4;
    tb_toml_value_t **items =
        tb__toml_grow(a, arr->u.arr.items, n * sizeof *items, cap * sizeof *items);
    if (items == NULL) return TB_ENOMEM;
    arr->u.arr.items = items;
    arr->u.arr.cap = cap;
  }
  arr->u.arr.items[n] = v;
  arr->u.arr.len = n + 1;
  return 0;
}

/* ---- public accessors ------------------------------------------------------------- */

void tb_toml_free(tb_toml_doc_t *doc) {
  if (doc == NULL) return;
  /* The document lives in its own arena: copy the chunk list out before freeing it. */
  tb__toml_arena_t a = doc->arena;
  tb__toml_arena_free(&a);
}

const tb_toml_value_t *tb_toml_root(const tb_toml_doc_t *doc) { return doc ? doc->root : NULL; }

tb_toml_type_t tb_toml_type(const tb_toml_value_t *v) {
  return v ? (tb_toml_type_t)v->type : (tb_toml_type_t)0;
}

tb_toml_pos_t tb_toml_pos(const tb_toml_value_t *v) {
  return v ? v->pos : (tb_toml_pos_t){0, 0};
}

const char *tb_toml_type_name(tb_toml_type_t t) {
  switch (t) {
  case TB_TOML_TABLE:
    return "table";
  case TB_TOML_ARRAY:
    return "array";
  case TB_TOML_STRING:
    return "string";
  case TB_TOML_INTEGER:
    return "integer";
  case TB_TOML_FLOAT:
    return "float";
  case TB_TOML_BOOL:
    return "boolean";
  case TB_TOML_DATETIME:
    return "offset date-time";
  case TB_TOML_LOCAL_DATETIME:
    return "local date-time";
  case TB_TOML_LOCAL_DATE:
    return "local date";
  case TB_TOML_LOCAL_TIME:
    return "local time";
  }
  return "unknown";
}

size_t tb_toml_len(const tb_toml_value_t *v) {
  if (v == NULL) return 0;
  if (v->type == TB_TOML_TABLE) return v->u.tab.len;
  if (v->type == TB_TOML_ARRAY) return v->u.arr.len;
  return 0;
}

const tb_toml_value_t *tb_toml_at(const tb_toml_value_t *array, size_t i) {
  if (array == NULL || array->type != TB_TOML_ARRAY || i >= array->u.arr.len) return NULL;
  return array->u.arr.items[i];
}

const char *tb_toml_entry(const tb_toml_value_t *table, size_t i, size_t *key_len,
                          const tb_toml_value_t **value, tb_toml_pos_t *key_pos) {
  if (table == NULL || table->type != TB_TOML_TABLE || i >= table->u.tab.len) return NULL;
  const tb__toml_entry_t *e = &table->u.tab.ent[i];
  if (key_len) *key_len = e->key_len;
  if (value) *value = e->value;
  if (key_pos) *key_pos = e->key_pos;
  return e->key;
}

const tb_toml_value_t *tb_toml_get(const tb_toml_value_t *table, const char *key) {
  if (key == NULL) return NULL;
  return tb_toml_getn(table, key, strlen(key));
}

const tb_toml_value_t *tb_toml_getn(const tb_toml_value_t *table, const char *key, size_t len) {
  const tb__toml_entry_t *e = tb__toml_find(table, key, len);
  return e ? e->value : NULL;
}

const char *tb_toml_str(const tb_toml_value_t *v, size_t *len) {
  if (v == NULL || v->type != TB_TOML_STRING) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = v->u.str.len;
  return v->u.str.ptr;
}

int64_t tb_toml_int(const tb_toml_value_t *v) {
  return v && v->type == TB_TOML_INTEGER ? v->u.i : 0;
}

double tb_toml_float(const tb_toml_value_t *v) {
  return v && v->type == TB_TOML_FLOAT ? v->u.f : 0.0;
}

bool tb_toml_bool(const tb_toml_value_t *v) { return v && v->type == TB_TOML_BOOL && v->u.b; }

const tb_toml_datetime_t *tb_toml_datetime(const tb_toml_value_t *v) {
  if (v == NULL) return NULL;
  switch (v->type) {
  case TB_TOML_DATETIME:
  case TB_TOML_LOCAL_DATETIME:
  case TB_TOML_LOCAL_DATE:
  case TB_TOML_LOCAL_TIME:
    return &v->u.dt;
  default:
    return NULL;
  }
}
