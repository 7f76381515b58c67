/*
 * auth.h — who may call Tabbify's APIs: Ed25519 signing keys, EdDSA JSON Web Tokens, and
 * their verification with a status and a JSON error body.
 *
 * A node creates its signing key on first start (a PKCS#8 PEM file, mode 0600, that
 * OpenSSL reads as well) and mints tokens with it (RFC 7519, alg "EdDSA" as RFC 8037
 * defines it). A token names its issuer (iss), subject (sub), tenant, scopes (scope, as
 * in OAuth: space-separated), issue and expiry times (iat, exp), its own id (jti, a UUID
 * v7) and, in the header, the id of the key that signed it (kid: the RFC 7638 JWK
 * thumbprint of the public key). There is no default secret and no other algorithm:
 * "none", HMAC and anything else are refused whatever the header says.
 *
 * A verifier (tb_auth_t) holds the public keys it trusts and the revoked key ids and
 * token ids. tb_auth_verify answers each API call: 401 for a missing, malformed,
 * forged, expired or revoked token, 403 for a good token of another tenant or without
 * the scope, each with {"error":"<code>","message":"<sentence>","status":N} and a
 * WWW-Authenticate value (RFC 6750). Revocation is an event in the log; the payload
 * helpers below build and apply it so every node's verifier converges on the same set.
 *
 * Keys and verifiers are plain memory: use one from one thread at a time (verification
 * does not modify the verifier, so concurrent tb_auth_verify calls are fine as long as
 * nobody trusts or revokes meanwhile). Design notes: docs/internals/AUTH.md.
 */
#ifndef TB_AUTH_H
#define TB_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/buf.h"
#include "tb/err.h"

/** Length of a key id: base64url of a SHA-256 digest, without padding. */
#define TB_AUTH_KID_LEN 43
/** Room for a token id (a UUID, or an id given to tb_auth_token_create) and its NUL. */
#define TB_AUTH_JTI_MAX 65
/** Tokens longer than this are refused unread. */
#define TB_AUTH_TOKEN_MAX 8192
/** The issuer when none is configured. */
#define TB_AUTH_DEFAULT_ISSUER "tabbify"
/** Seconds a clock may be behind the issuer's before nbf/iat make a token "not yet valid". */
#define TB_AUTH_DEFAULT_LEEWAY_S 60

/* ---------------------------------------------------------------------------------- */
/* Keys                                                                               */
/* ---------------------------------------------------------------------------------- */

/** An Ed25519 key pair. Opaque; the secret half is wiped when freed. */
typedef struct tb_auth_key tb_auth_key_t;

/** A new key from the system's random source. Free with tb_auth_key_free. */
int tb_auth_key_generate(tb_auth_key_t **out);

/**
 * Loads the key at `path`, or creates it if the file does not exist: a new key written
 * with mode 0600 to a temporary file in the same directory and linked into place, so a
 * crash never leaves half a key and two processes starting at once end up with the same
 * one. The directory is created (mode 0700) if it is missing, one level deep.
 * *created (may be NULL) says which happened. Errors as tb_auth_key_load, plus
 * the errno codes of creating the file, with a sentence in `eb`.
 */
int tb_auth_key_load_or_create(const char *path, tb_auth_key_t **out, bool *created, tb_errbuf_t *eb);

/**
 * Loads a key file: an unencrypted PKCS#8 "PRIVATE KEY" PEM holding an Ed25519 key (what
 * `openssl genpkey -algorithm ed25519` writes). Refuses with TB_EPERM a file that group
 * or others may read or that another user owns, TB_ECORRUPT anything that is not such a
 * key, TB_ENOENT a missing file; the sentence in `eb` names the file.
 */
int tb_auth_key_load(const char *path, tb_auth_key_t **out, tb_errbuf_t *eb);

/** Parses PKCS#8 PEM text (as tb_auth_key_load, without the file checks). */
int tb_auth_key_from_pem(const char *pem, size_t len, tb_auth_key_t **out, tb_errbuf_t *eb);

/** Appends the key as PKCS#8 "PRIVATE KEY" PEM. The text is secret. */
int tb_auth_key_private_pem(const tb_auth_key_t *key, tb_buf_t *out);

/** Appends the public key as SubjectPublicKeyInfo "PUBLIC KEY" PEM (`openssl pkey -pubout`). */
int tb_auth_key_public_pem(const tb_auth_key_t *key, tb_buf_t *out);

/** Parses a "PUBLIC KEY" PEM holding an Ed25519 key into its 32 bytes. TB_ECORRUPT otherwise. */
int tb_auth_public_key_from_pem(const char *pem, size_t len, uint8_t pk[32], tb_errbuf_t *eb);

/** The key id (RFC 7638 thumbprint); valid as long as `key`. */
const char *tb_auth_key_id(const tb_auth_key_t *key);

/** Copies the 32-byte public key. */
void tb_auth_key_public(const tb_auth_key_t *key, uint8_t pk[32]);

/** Computes the key id of a public key into `kid` (TB_AUTH_KID_LEN + 1 bytes). */
void tb_auth_kid(const uint8_t pk[32], char kid[TB_AUTH_KID_LEN + 1]);

/** Wipes and frees; NULL is fine. */
void tb_auth_key_free(tb_auth_key_t *key);

/* ---------------------------------------------------------------------------------- */
/* Tokens                                                                             */
/* ---------------------------------------------------------------------------------- */

typedef struct tb_auth_token_spec {
  const char *issuer;            /* NULL: TB_AUTH_DEFAULT_ISSUER */
  const char *subject;           /* who: a user, a service, a node; required */
  const char *tenant;            /* whose apps; required */
  const char *const *scopes;     /* e.g. "apps:read", "apps:*", "*"; may be empty */
  size_t nscopes;
  int64_t ttl_s;                 /* lifetime in seconds, 1 .. 10 years */
  int64_t now_s;                 /* issue time; 0: the wall clock */
  const char *jti;               /* token id; NULL: a new UUID v7 */
} tb_auth_token_spec_t;

/**
 * Mints a token signed with `key`. Subject, tenant, issuer and each scope must be 1 to
 * 256 printable ASCII characters (no spaces in scopes, which the scope claim joins with
 * spaces). On success *token is a tb_malloc'd NUL-terminated string (free with tb_free)
 * and `jti` (may be NULL; TB_AUTH_JTI_MAX bytes) receives the token id. Returns
 * TB_EINVAL with a sentence in `eb`, TB_ENOMEM.
 */
int tb_auth_token_create(const tb_auth_key_t *key, const tb_auth_token_spec_t *spec, char **token,
                         char jti[TB_AUTH_JTI_MAX], tb_errbuf_t *eb);

/* ---------------------------------------------------------------------------------- */
/* Verification                                                                       */
/* ---------------------------------------------------------------------------------- */

/** The trusted keys and the revocations. */
typedef struct tb_auth tb_auth_t;

/** A verifier that accepts tokens from `issuer` (NULL: TB_AUTH_DEFAULT_ISSUER). */
int tb_auth_new(const char *issuer, tb_auth_t **out);
void tb_auth_free(tb_auth_t *a);

/** Trusts the public half of `key` (copied). Idempotent. */
int tb_auth_trust_key(tb_auth_t *a, const tb_auth_key_t *key);
/** Trusts a public key given as 32 bytes; its key id goes to `kid` (may be NULL). */
int tb_auth_trust_public_key(tb_auth_t *a, const uint8_t pk[32], char kid[TB_AUTH_KID_LEN + 1]);

/** Revokes every token signed by key `kid` (copied). Idempotent; TB_EINVAL for "". */
int tb_auth_revoke_key(tb_auth_t *a, const char *kid);
/** Revokes the token with id `jti` (copied). Idempotent; TB_EINVAL for "". */
int tb_auth_revoke_token(tb_auth_t *a, const char *jti);
bool tb_auth_key_revoked(const tb_auth_t *a, const char *kid);
bool tb_auth_token_revoked(const tb_auth_t *a, const char *jti);

/** Sets how far nbf and iat may lie in the future (default TB_AUTH_DEFAULT_LEEWAY_S).
 *  Expiry has no leeway: a token is dead from its exp on. */
void tb_auth_set_leeway(tb_auth_t *a, int64_t seconds);

/** What an API call requires. */
typedef struct tb_auth_need {
  const char *tenant; /* the tenant the call acts on; NULL: any */
  const char *scope;  /* the scope it needs ("apps:write"); NULL: none */
  int64_t now_s;      /* 0: the wall clock */
} tb_auth_need_t;

/** A verified token's claims; owned strings, freed by tb_auth_claims_deinit. */
typedef struct tb_auth_claims {
  char *issuer, *subject, *tenant, *jti, *kid;
  char **scopes;
  size_t nscopes;
  int64_t iat, exp;
} tb_auth_claims_t;

void tb_auth_claims_deinit(tb_auth_claims_t *c);

/** True when the scopes grant `scope` (NULL: always): the scope itself, "*", or
 *  "<prefix>:*" for every scope that begins "<prefix>:". */
bool tb_auth_scopes_grant(char *const *scopes, size_t nscopes, const char *scope);

/** The outcome of a verification, ready to be sent. */
typedef struct tb_auth_result {
  int status;        /* 0 (allowed), 401 or 403 */
  const char *error; /* NULL, or one of: missing_token, invalid_token, token_expired,
                        token_revoked, wrong_tenant, insufficient_scope (static) */
  char message[256]; /* a sentence for the caller; never contains the token */
} tb_auth_result_t;

/**
 * Verifies the Authorization header value `authorization` ("Bearer <token>"; NULL when
 * the request had none) against `need` (may be NULL). Returns 0 and fills `claims` (may
 * be NULL; deinit it after) when allowed; TB_EAUTH (status 401) or TB_EDENIED (status
 * 403) with `res` filled; TB_ENOMEM. The signature is checked before any claim is
 * believed; the key id, expiry, revocations, tenant and scope after it, in that order.
 */
int tb_auth_verify(const tb_auth_t *a, const char *authorization, const tb_auth_need_t *need,
                   tb_auth_claims_t *claims, tb_auth_result_t *res);

/** As tb_auth_verify, for a bare token of `len` bytes. */
int tb_auth_verify_token(const tb_auth_t *a, const char *token, size_t len, const tb_auth_need_t *need,
                         tb_auth_claims_t *claims, tb_auth_result_t *res);

/** Appends {"error":..,"message":..,"status":..} for a refusal. */
int tb_auth_result_json(const tb_auth_result_t *res, tb_buf_t *out);

/** Appends the WWW-Authenticate value for a refusal: Bearer realm="tabbify" plus
 *  error, error_description (and scope for insufficient_scope), as RFC 6750 §3 says. */
int tb_auth_result_www_authenticate(const tb_auth_result_t *res, const tb_auth_need_t *need, tb_buf_t *out);

/* ---------------------------------------------------------------------------------- */
/* Revocation as events                                                               */
/* ---------------------------------------------------------------------------------- */

/** The event type that carries a revocation. */
#define TB_AUTH_EVENT_REVOKED "credential_revoked"

/**
 * The payload of a revocation event: {"kind":"key"|"token","id":id,"reason":reason}.
 * Returns a new reference (json_decref it), or NULL for a bad kind, an empty id or no
 * memory. `reason` may be NULL.
 */
json_t *tb_auth_revocation_event(const char *kind, const char *id, const char *reason);

/** Applies a revocation payload to `a`. TB_EINVAL with a sentence for a bad payload. */
int tb_auth_apply_revocation(tb_auth_t *a, const json_t *payload, tb_errbuf_t *eb);

#endif /* TB_AUTH_H */
