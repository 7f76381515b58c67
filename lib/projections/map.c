/*
 * map.c — an open-addressing hash map from a UUID to a record (projections_int.h).
 *
 * Linear probing, power-of-two capacity, at most 3/4 full, backward-shift deletion so no
 * tombstones accumulate. The hash mixes all 16 bytes: v7 UUIDs have random low bytes but
 * callers may also use UUIDs that are not random at all.
 */
#include <stdlib.h>
#include <string.h>

#include "projections_int.h"
#include "tb/alloc.h"

static uint64_t hash(const tb_uuid_t *k) {
  uint64_t a, b;
  memcpy(&a, k->b, 8);
  memcpy(&b, k->b + 8, 8);
  uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

void *tb__map_get(const tb__map_t *m, const tb_uuid_t *k) {
  if (m->cap == 0) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
    if (m->vals[i] == NULL) return NULL;
    if (memcmp(m->keys[i].b, k->b, 16) == 0) return m->vals[i];
  }
}

static int grow(tb__map_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  tb_uuid_t *keys = tb_calloc(cap, sizeof *keys);
  void **vals = tb_calloc(cap, sizeof *vals);
  if (keys == NULL || vals == NULL) {
    tb_free(keys);
    tb_free(vals);
    return TB_ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->vals[i] == NULL) continue;
    size_t j = hash(&m->keys[i]) & (cap - 1);
    while (vals[j]) j = (j + 1) & (cap - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  tb_free(m->keys);
  tb_free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
  return 0;
}

int tb__map_put(tb__map_t *m, const tb_uuid_t *k, void *v) {
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0) return TB_ENOMEM;
  size_t mask = m->cap - 1, i = hash(k) & mask;
  while (m->vals[i]) i = (i + 1) & mask;
  m->keys[i] = *k;
  m->vals[i] = v;
  m->len++;
  return 0;
}

void *tb__map_del(tb__map_t *m, const tb_uuid_t *k) {
  if (m->cap == 0) return NULL;
  size_t mask = m->cap - 1, i = hash(k) & mask;
  while (m->vals[i] && memcmp(m->keys[i].b, k->b, 16) != 0) i = (i + 1) & mask;
  void *v = m->vals[i];
  if (v == NULL) return NULL;
  /* Backward shift: move later members of the probe run into the hole. */
  size_t hole = i;
  for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
    size_t home = hash(&m->keys[j]) & mask;
    bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (between) continue;
    m->keys[hole] = m->keys[j];
    m->vals[hole] = m->vals[j];
    hole = j;
  }
  m->vals[hole] = NULL;
  m->len--;
  return v;
}

void tb__map_deinit(tb__map_t *m) {
  tb_free(m->keys);
  tb_free(m->vals);
  memset(m, 0, sizeof *m);
}

typedef struct kv {
  const tb_uuid_t *k;
  void *v;
} kv_t;

static int cmp_kv(const void *a, const void *b) { return memcmp(((const kv_t *)a)->k->b, ((const kv_t *)b)->k->b, 16); }

void **tb__map_sorted(const tb__map_t *m, size_t *n) {
  *n = 0;
  kv_t *tmp = tb_calloc(m->len ? m->len : 1, sizeof *tmp);
  void **out = tb_calloc(m->len ? m->len : 1, sizeof *out);
  if (tmp == NULL || out == NULL) {
    tb_free(tmp);
    tb_free(out);
    return NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < m->cap; i++)
    if (m->vals[i]) tmp[k++] = (kv_t){&m->keys[i], m->vals[i]};
  qsort(tmp, k, sizeof *tmp, cmp_kv);
  for (size_t i = 0; i < k; i++) out[i] = tmp[i].v;
  tb_free(tmp);
  *n = k;
  return out;
}
