/*
 * auth_int.h — what the files of lib/auth share: the key pair, the verifier's state, and
 * the strict base64url helpers tokens are made of.
 */
#ifndef TB_AUTH_INT_H
#define TB_AUTH_INT_H

#include <sodium.h>

#include "tb/auth.h"

struct tb_auth_key {
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* libsodium's: seed then public key */
  char kid[TB_AUTH_KID_LEN + 1];
};

typedef struct tb__auth_trusted {
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  char kid[TB_AUTH_KID_LEN + 1];
} tb__auth_trusted_t;

/* A sorted set of strings (ids are compared as bytes). */
typedef struct tb__auth_set {
  char **items;
  size_t n, cap;
} tb__auth_set_t;

struct tb_auth {
  char *issuer;
  int64_t leeway_s;
  tb__auth_trusted_t *keys;
  size_t nkeys, cap_keys;
  tb__auth_set_t revoked_kids, revoked_jtis;
};

/** Initialises libsodium once; TB_EINTERNAL if it cannot. */
int tb__auth_sodium_init(void);

/** The trusted key with id `kid` (`len` bytes), or NULL. */
const tb__auth_trusted_t *tb__auth_find_key(const tb_auth_t *a, const char *kid, size_t len);

#endif /* TB_AUTH_INT_H */
