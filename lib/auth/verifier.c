/*
 * verifier.c — the verifier's state (include/tb/auth.h): trusted public keys, revoked
 * key ids and token ids, and the revocation event payloads that change them.
 *
 * Revocations only ever grow (a revoked credential stays revoked), so every node that
 * applies the same events in any order ends up with the same sets. The sets are sorted
 * arrays: lookups on every API call are a binary search, insertions are rare.
 */
#include <stdlib.h>
#include <string.h>

#include "auth_int.h"
#include "tb/alloc.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool set_has(const tb__auth_set_t *s, const char *id) {
  return s->n && bsearch(&id, s->items, s->n, sizeof *s->items, cmp_str) != NULL;
}

static int set_add(tb__auth_set_t *s, const char *id) {
  if (id == NULL || id[0] == '\0') return TB_EINVAL;
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(s->items[mid], id);
    if (c == 0) return 0;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    char **items = tb_reallocarray(s->items, cap, sizeof *items);
    if (items == NULL) return TB_ENOMEM;
    s->items = items;
    s->cap = cap;
  }
  char *copy = tb_strdup(id);
  if (copy == NULL) return TB_ENOMEM;
  memmove(s->items + lo + 1, s->items + lo, (s->n - lo) * sizeof *s->items);
  s->items[lo] = copy;
  s->n++;
  return 0;
}

static void set_free(tb__auth_set_t *s) {
  for (size_t i = 0; i < s->n; i++) tb_free(s->items[i]);
  tb_free(s->items);
}

int tb_auth_new(const char *issuer, tb_auth_t **out) {
  int rc = tb__auth_sodium_init();
  if (rc != 0) return rc;
  tb_auth_t *a = tb_calloc(1, sizeof *a);
  if (a == NULL) return TB_ENOMEM;
  a->issuer = tb_strdup(issuer ? issuer : TB_AUTH_DEFAULT_ISSUER);
  if (a->issuer == NULL) {
    tb_free(a);
    return TB_ENOMEM;
  }
  a->leeway_s = TB_AUTH_DEFAULT_LEEWAY_S;
  *out = a;
  return 0;
}

void tb_auth_free(tb_auth_t *a) {
  if (a == NULL) return;
  tb_free(a->issuer);
  tb_free(a->keys);
  set_free(&a->revoked_kids);
  set_free(&a->revoked_jtis);
  tb_free(a);
}

void tb_auth_set_leeway(tb_auth_t *a, int64_t seconds) { a->leeway_s = seconds < 0 ? 0 : seconds; }

const tb__auth_trusted_t *tb__auth_find_key(const tb_auth_t *a, const char *kid, size_t len) {
  for (size_t i = 0; i < a->nkeys; i++)
    if (len == TB_AUTH_KID_LEN && memcmp(a->keys[i].kid, kid, len) == 0) return &a->keys[i];
  return NULL;
}

int tb_auth_trust_public_key(tb_auth_t *a, const uint8_t pk[32], char kid_out[TB_AUTH_KID_LEN + 1]) {
  char kid[TB_AUTH_KID_LEN + 1];
  tb_auth_kid(pk, kid);
  if (kid_out) memcpy(kid_out, kid, sizeof kid);
  if (tb__auth_find_key(a, kid, TB_AUTH_KID_LEN)) return 0;
  if (a->nkeys == a->cap_keys) {
    size_t cap = a->cap_keys ? a->cap_keys * 2 : 4;
    tb__auth_trusted_t *k = tb_reallocarray(a->keys, cap, sizeof *k);
    if (k == NULL) return TB_ENOMEM;
    a->keys = k;
    a->cap_keys = cap;
  }
  memcpy(a->keys[a->nkeys].pk, pk, 32);
  memcpy(a->keys[a->nkeys].kid, kid, sizeof kid);
  a->nkeys++;
  return 0;
}

int tb_auth_trust_key(tb_auth_t *a, const tb_auth_key_t *key) { return tb_auth_trust_public_key(a, key->pk, NULL); }

int tb_auth_revoke_key(tb_auth_t *a, const char *kid) { return set_add(&a->revoked_kids, kid); }
int tb_auth_revoke_token(tb_auth_t *a, const char *jti) { return set_add(&a->revoked_jtis, jti); }
bool tb_auth_key_revoked(const tb_auth_t *a, const char *kid) { return set_has(&a->revoked_kids, kid); }
bool tb_auth_token_revoked(const tb_auth_t *a, const char *jti) { return set_has(&a->revoked_jtis, jti); }

json_t *tb_auth_revocation_event(const char *kind, const char *id, const char *reason) {
  if (kind == NULL || (strcmp(kind, "key") != 0 && strcmp(kind, "token") != 0)) return NULL;
  if (id == NULL || id[0] == '\0') return NULL;
  json_t *o = json_pack("{s:s, s:s}", "kind", kind, "id", id);
  if (o && reason && json_object_set_new(o, "reason", json_string(reason)) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int tb_auth_apply_revocation(tb_auth_t *a, const json_t *payload, tb_errbuf_t *eb) {
  const json_t *kind = json_object_get(payload, "kind"), *id = json_object_get(payload, "id");
  if (!json_is_string(kind) || !json_is_string(id) || json_string_length(id) == 0)
    return tb_errf(eb, TB_EINVAL, "a revocation needs \"kind\" and a non-empty \"id\"");
  if (strcmp(json_string_value(kind), "key") == 0) return tb_auth_revoke_key(a, json_string_value(id));
  if (strcmp(json_string_value(kind), "token") == 0) return tb_auth_revoke_token(a, json_string_value(id));
  return tb_errf(eb, TB_EINVAL, "revocation kind must be \"key\" or \"token\", got \"%.32s\"", json_string_value(kind));
}
