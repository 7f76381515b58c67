/*
 * test_auth.c — keys, tokens and verification, checked against OpenSSL 3 as an
 * independent implementation: our key file and public key PEM are what `openssl pkey`
 * reads and writes, our signatures verify with `openssl pkeyutl -verify -rawin`, and
 * tokens signed by openssl verify with ours.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "tb/auth.h"
#include "tb/base64.h"
#include "test.h"

#ifndef TH_OPENSSL
#define TH_OPENSSL "openssl"
#endif

static char dir[256];

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/tb-auth-test-%d", (int)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) return -1;
  return mkdir(dir, 0700);
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static const char *path_in(const char *name) {
  static char buf[4][512];
  static int i;
  char *p = buf[i++ % 4];
  snprintf(p, 512, "%s/%s", dir, name);
  return p;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

/* Runs a shell command; returns its exit status. Output goes to `out` (if any). */
static int run(const char *cmd, const char *out) {
  char full[2048];
  snprintf(full, sizeof full, "%s >%s 2>&1", cmd, out ? out : "/dev/null");
  int st = system(full);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *const scopes_rw[] = {"apps:read", "apps:write"};

__attribute__((noinline)) static char *mint(const tb_auth_key_t *k, const char *tenant, const char *const *scopes, size_t n, int64_t now,
                  int64_t ttl, char jti[TB_AUTH_JTI_MAX]) {
  tb_auth_token_spec_t spec = {.subject = "alice", .tenant = tenant, .scopes = scopes, .nscopes = n,
                               .ttl_s = ttl, .now_s = now};
  char *tok = NULL;
  char err[200] = "";
  tb_errbuf_t eb = {err, sizeof err};
  int rc = tb_auth_token_create(k, &spec, &tok, jti, &eb);
  if (rc) fprintf(stderr, "mint: %s\n", err);
  assert_int_equal(rc, 0);
  return tok;
}

/* The key is created 0600 on first start and the same key is loaded afterwards. */
static void key_file_lifecycle(void **state) {
  tb_auth_key_t *k1 = NULL, *k2 = NULL;
  bool created = false;
  char err[300] = "";
  tb_errbuf_t eb = {err, sizeof err};
  const char *path = path_in("state/node.key");
  mode_t old = umask(0); /* even with a permissive umask */
  int rc = tb_auth_key_load_or_create(path, &k1, &created, &eb);
  umask(old);
  if (rc) fprintf(stderr, "%s\n", err);
  assert_int_equal(rc, 0);
  assert_true(created);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(path_in("state"), &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(strlen(tb_auth_key_id(k1)), TB_AUTH_KID_LEN);
  assert_int_equal(tb_auth_key_load_or_create(path, &k2, &created, &eb), 0);
  assert_false(created);
  assert_string_equal(tb_auth_key_id(k1), tb_auth_key_id(k2));
  tb_auth_key_free(k2);
  k2 = NULL;
  /* No temporary file is left behind. */
  char ls[600];
  snprintf(ls, sizeof ls, "ls -A %s | grep -c tmp", path_in("state"));
  assert_int_equal(run(ls, NULL), 1);

  /* A key file others can read is refused, with a sentence that says what to do. */
  assert_int_equal(chmod(path, 0644), 0);
  assert_int_equal(tb_auth_key_load(path, &k2, &eb), TB_EPERM);
  assert_non_null(strstr(err, "chmod 600"));
  assert_int_equal(tb_auth_key_load_or_create(path, &k2, &created, &eb), TB_EPERM);
  assert_int_equal(chmod(path, 0600), 0);
  /* Garbage is refused, not mistaken for a key. */
  const char *bad = path_in("bad.key");
  write_file(bad, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 58);
  chmod(bad, 0600);
  assert_int_equal(tb_auth_key_load(bad, &k2, &eb), TB_ECORRUPT);
  assert_non_null(strstr(err, "bad.key"));
  assert_int_equal(tb_auth_key_load(path_in("missing.key"), &k2, &eb), TB_ENOENT);
  tb_auth_key_free(k1);
}

/* Our PEM is OpenSSL's PEM: `openssl pkey` derives the same public key from our key file
 * and reads back an identical private key. */
static void pem_matches_openssl(void **state) {
  tb_auth_key_t *k = NULL;
  char err[300];
  tb_errbuf_t eb = {err, sizeof err};
  const char *path = path_in("pem/node.key");
  assert_int_equal(tb_auth_key_load_or_create(path, &k, NULL, &eb), 0);
  tb_buf_t pub, priv;
  tb_buf_init(&pub, 4096);
  tb_buf_init(&priv, 4096);
  assert_int_equal(tb_auth_key_public_pem(k, &pub), 0);
  assert_int_equal(tb_auth_key_private_pem(k, &priv), 0);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s pkey -in %s -pubout", TH_OPENSSL, path);
  assert_int_equal(run(cmd, path_in("pem/pub-openssl.pem")), 0);
  assert_string_equal(read_file(path_in("pem/pub-openssl.pem"), NULL), tb_buf_cstr(&pub));
  snprintf(cmd, sizeof cmd, "%s pkey -in %s", TH_OPENSSL, path);
  assert_int_equal(run(cmd, path_in("pem/priv-openssl.pem")), 0);
  assert_string_equal(read_file(path_in("pem/priv-openssl.pem"), NULL), tb_buf_cstr(&priv));
  uint8_t pk[32], pk2[32];
  tb_auth_key_public(k, pk);
  assert_int_equal(tb_auth_public_key_from_pem((const char *)pub.data, pub.len, pk2, &eb), 0);
  assert_memory_equal(pk, pk2, 32);
  assert_int_equal(tb_auth_public_key_from_pem((const char *)priv.data, priv.len, pk2, &eb), TB_ECORRUPT);
  tb_buf_deinit(&pub);
  tb_buf_deinit(&priv);
  tb_auth_key_free(k);
}

static void round_trip_and_claims(void **state) {
  tb_auth_key_t *k;
  tb_auth_t *a;
  assert_int_equal(tb_auth_key_generate(&k), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  assert_int_equal(tb_auth_trust_key(a, k), 0);
  char jti[TB_AUTH_JTI_MAX];
  char *tok = mint(k, "acme", scopes_rw, 2, 1700000000, 3600, jti);
  assert_int_equal(strlen(jti), 36); /* a UUID */
  char hdr[512];
  snprintf(hdr, sizeof hdr, "Bearer %s", tok);
  tb_auth_need_t need = {.tenant = "acme", .scope = "apps:write", .now_s = 1700000100};
  tb_auth_claims_t c;
  tb_auth_result_t res;
  assert_int_equal(tb_auth_verify(a, hdr, &need, &c, &res), 0);
  assert_int_equal(res.status, 0);
  assert_string_equal(c.issuer, "tabbify");
  assert_string_equal(c.subject, "alice");
  assert_string_equal(c.tenant, "acme");
  assert_string_equal(c.jti, jti);
  assert_string_equal(c.kid, tb_auth_key_id(k));
  assert_int_equal(c.nscopes, 2);
  assert_string_equal(c.scopes[0], "apps:read");
  assert_string_equal(c.scopes[1], "apps:write");
  assert_int_equal(c.iat, 1700000000);
  assert_int_equal(c.exp, 1700003600);
  tb_auth_claims_deinit(&c);
  /* The header form is forgiving about case and blanks; the token is not. */
  snprintf(hdr, sizeof hdr, "  bearer \t%s  ", tok);
  assert_int_equal(tb_auth_verify(a, hdr, &need, NULL, &res), 0);
  /* The header and payload are what we say they are. */
  const char *d1 = strchr(tok, '.');
  uint8_t raw[512];
  size_t n;
  assert_int_equal(tb_base64url_decode(tok, (size_t)(d1 - tok), raw, sizeof raw, &n), 0);
  char expect[128];
  snprintf(expect, sizeof expect, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", tb_auth_key_id(k));
  assert_int_equal(n, strlen(expect));
  assert_memory_equal(raw, expect, n);
  tb_free(tok);
  tb_auth_free(a);
  tb_auth_key_free(k);
}

static void expiry_and_time(void **state) {
  tb_auth_key_t *k;
  tb_auth_t *a;
  assert_int_equal(tb_auth_key_generate(&k), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  tb_auth_trust_key(a, k);
  char *tok = mint(k, "acme", scopes_rw, 2, 1700000000, 60, NULL);
  tb_auth_result_t res;
  tb_auth_need_t need = {.now_s = 1700000059};
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), 0);
  need.now_s = 1700000060; /* exp itself is too late */
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), TB_EAUTH);
  assert_int_equal(res.status, 401);
  assert_string_equal(res.error, "token_expired");
  assert_string_equal(res.message, "the token expired at 2023-11-14T22:14:20.000Z");
  /* Issued in the future beyond the leeway: not valid yet. */
  need.now_s = 1700000000 - 61;
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), TB_EAUTH);
  assert_string_equal(res.error, "invalid_token");
  need.now_s = 1700000000 - 59;
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), 0);
  /* A token minted now is valid now, by the wall clock. */
  tb_free(tok);
  tok = mint(k, "acme", scopes_rw, 2, 0, 60, NULL);
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), NULL, NULL, &res), 0);
  tb_free(tok);
  tb_auth_free(a);
  tb_auth_key_free(k);
}

/* Builds header.payload.sig from JSON texts, signing with `sign` (NULL: `sig` as given). */
static char *forge(const char *header, const char *payload, const tb_auth_key_t *sign_with, const char *sig) {
  static char out[4096];
  char h[1024], p[2048];
  tb_base64url_encode(header, strlen(header), h);
  tb_base64url_encode(payload, strlen(payload), p);
  snprintf(out, sizeof out, "%s.%s.", h, p);
  if (sign_with) {
    /* Re-sign through the library: mint with the same key then swap parts is not
     * possible, so use the private PEM with openssl. */
    tb_buf_t pem;
    tb_buf_init(&pem, 4096);
    tb_auth_key_private_pem(sign_with, &pem);
    write_file(path_in("forge.key"), pem.data, pem.len);
    tb_buf_deinit(&pem);
    char msg[3072];
    snprintf(msg, sizeof msg, "%s.%s", h, p);
    write_file(path_in("forge.msg"), msg, strlen(msg));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s pkeyutl -sign -inkey %s -rawin -in %s -out %s", TH_OPENSSL,
             path_in("forge.key"), path_in("forge.msg"), path_in("forge.sig"));
    assert_int_equal(run(cmd, NULL), 0);
    size_t n;
    char *raw = read_file(path_in("forge.sig"), &n);
    assert_int_equal(n, 64);
    tb_base64url_encode(raw, n, out + strlen(out));
  } else {
    strcat(out, sig);
  }
  return out;
}

static void tampering_is_401(void **state) {
  tb_auth_key_t *k, *other;
  tb_auth_t *a;
  assert_int_equal(tb_auth_key_generate(&k), 0);
  assert_int_equal(tb_auth_key_generate(&other), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  tb_auth_trust_key(a, k);
  char *tok = mint(k, "acme", scopes_rw, 2, 0, 3600, NULL);
  tb_auth_result_t res;
  char t[4096];
  size_t len = strlen(tok);
  const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');

  /* A flipped bit anywhere: header, payload, signature. */
  size_t spots[] = {2, (size_t)(d1 - tok) + 5, (size_t)(d2 - tok) + 10, len - 2};
  for (size_t i = 0; i < 4; i++) {
    memcpy(t, tok, len + 1);
    t[spots[i]] = t[spots[i]] == 'A' ? 'B' : 'A';
    assert_int_equal(tb_auth_verify_token(a, t, len, NULL, NULL, &res), TB_EAUTH);
    assert_int_equal(res.status, 401);
    assert_string_equal(res.error, "invalid_token");
  }
  /* The payload swapped for another tenant's, signature kept. */
  char kid_hdr[256];
  snprintf(kid_hdr, sizeof kid_hdr, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", tb_auth_key_id(k));
  const char *evil = "{\"iss\":\"tabbify\",\"sub\":\"alice\",\"tenant\":\"victim\",\"scope\":\"*\","
                     "\"iat\":1700000000,\"exp\":4000000000,\"jti\":\"x\"}";
  char *f = forge(kid_hdr, evil, NULL, d2 + 1);
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  assert_string_equal(res.message, "the token signature does not verify");
  /* The same payload properly signed is accepted: the forge helper works. */
  f = forge(kid_hdr, evil, k, NULL);
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), 0);
  /* alg none, with and without a signature. */
  f = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", evil, NULL, "");
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  f = forge("{\"alg\":\"none\"}", evil, NULL, "AAAA");
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  assert_non_null(strstr(res.message, "\"none\" is not accepted"));
  /* alg swapped to HS256 (HMAC keyed with the public key): refused before any crypto. */
  char hs[256];
  snprintf(hs, sizeof hs, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", tb_auth_key_id(k));
  f = forge(hs, evil, NULL, d2 + 1);
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  assert_non_null(strstr(res.message, "\"HS256\" is not accepted"));
  /* Signed by a key we do not trust, even with our kid in the header. */
  f = forge(kid_hdr, evil, other, NULL);
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  char okid[256];
  snprintf(okid, sizeof okid, "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", tb_auth_key_id(other));
  f = forge(okid, evil, other, NULL);
  assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  assert_non_null(strstr(res.message, "not trusted here"));
  /* No kid, crit, a duplicate alg, wrong issuer, missing claims, string exp. */
  const char *bad_headers[] = {"{\"alg\":\"EdDSA\"}",
                               "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"crit\":[\"b64\"]}",
                               "{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"%s\"}",
                               "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JOSE+X\"}"};
  for (size_t i = 0; i < 4; i++) {
    char h[256];
    snprintf(h, sizeof h, bad_headers[i], tb_auth_key_id(k));
    f = forge(h, evil, k, NULL);
    assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
  }
  const char *bad_payloads[] = {
      "{\"iss\":\"someone\",\"sub\":\"a\",\"tenant\":\"t\",\"scope\":\"\",\"iat\":1,\"exp\":4000000000,\"jti\":\"x\"}",
      "{\"iss\":\"tabbify\",\"sub\":\"a\",\"scope\":\"\",\"iat\":1,\"exp\":4000000000,\"jti\":\"x\"}",
      "{\"iss\":\"tabbify\",\"sub\":\"a\",\"tenant\":\"t\",\"scope\":\"\",\"iat\":1,\"exp\":\"4000000000\",\"jti\":\"x\"}",
      "{\"iss\":\"tabbify\",\"sub\":\"a\",\"tenant\":\"t\",\"scope\":\"\",\"iat\":1,\"jti\":\"x\"}",
      "[1,2,3]",
  };
  for (size_t i = 0; i < 5; i++) {
    f = forge(kid_hdr, bad_payloads[i], k, NULL);
    assert_int_equal(tb_auth_verify_token(a, f, strlen(f), NULL, NULL, &res), TB_EAUTH);
    assert_int_equal(res.status, 401);
  }
  /* Shapes that are not a JWT at all, and padding. */
  const char *shapes[] = {"abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b."};
  for (size_t i = 0; i < 6; i++)
    assert_int_equal(tb_auth_verify_token(a, shapes[i], strlen(shapes[i]), NULL, NULL, &res), TB_EAUTH);
  memcpy(t, tok, len + 1);
  strcat(t, "==");
  assert_int_equal(tb_auth_verify_token(a, t, strlen(t), NULL, NULL, &res), TB_EAUTH);
  tb_free(tok);
  tb_auth_free(a);
  tb_auth_key_free(k);
  tb_auth_key_free(other);
}

static void tenant_and_scope_403(void **state) {
  tb_auth_key_t *k;
  tb_auth_t *a;
  assert_int_equal(tb_auth_key_generate(&k), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  tb_auth_trust_key(a, k);
  char *tok = mint(k, "acme", scopes_rw, 2, 0, 3600, NULL);
  tb_auth_result_t res;
  tb_auth_need_t need = {.tenant = "globex", .scope = "apps:read"};
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), TB_EDENIED);
  assert_int_equal(res.status, 403);
  assert_string_equal(res.error, "wrong_tenant");
  assert_string_equal(res.message, "the token is for tenant \"acme\", not \"globex\"");
  need.tenant = "acme";
  need.scope = "secrets:write";
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), TB_EDENIED);
  assert_string_equal(res.error, "insufficient_scope");
  tb_buf_t b;
  tb_buf_init(&b, 4096);
  assert_int_equal(tb_auth_result_json(&res, &b), 0);
  assert_string_equal(tb_buf_cstr(&b), "{\"error\":\"insufficient_scope\",\"message\":\"the token does not grant "
                                       "scope \\\"secrets:write\\\"\",\"status\":403}");
  tb_buf_reset(&b);
  assert_int_equal(tb_auth_result_www_authenticate(&res, &need, &b), 0);
  assert_string_equal(tb_buf_cstr(&b), "Bearer realm=\"tabbify\", error=\"insufficient_scope\", error_description=\"the "
                                       "token does not grant scope 'secrets:write'\", scope=\"secrets:write\"");
  tb_free(tok);
  /* Wildcards. */
  const char *wild[] = {"apps:*"}, *all[] = {"*"};
  tok = mint(k, "acme", wild, 1, 0, 3600, NULL);
  need.scope = "apps:deploy";
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), 0);
  need.scope = "appsx:deploy";
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), TB_EDENIED);
  need.scope = "apps";
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), TB_EDENIED);
  tb_free(tok);
  tok = mint(k, "acme", all, 1, 0, 3600, NULL);
  need.scope = "anything:at:all";
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, NULL, &res), 0);
  tb_free(tok);
  /* No token, or another scheme: 401 missing_token with a bare challenge. */
  assert_int_equal(tb_auth_verify(a, NULL, NULL, NULL, &res), TB_EAUTH);
  assert_string_equal(res.error, "missing_token");
  tb_buf_reset(&b);
  tb_auth_result_www_authenticate(&res, NULL, &b);
  assert_string_equal(tb_buf_cstr(&b), "Bearer realm=\"tabbify\"");
  tb_buf_reset(&b);
  tb_auth_result_json(&res, &b);
  assert_string_equal(tb_buf_cstr(&b),
                      "{\"error\":\"missing_token\",\"message\":\"this API needs a bearer token\",\"status\":401}");
  assert_int_equal(tb_auth_verify(a, "Basic YWxpY2U6cHc=", NULL, NULL, &res), TB_EAUTH);
  assert_string_equal(res.error, "missing_token");
  tb_buf_deinit(&b);
  tb_auth_free(a);
  tb_auth_key_free(k);
}

static void revocation(void **state) {
  tb_auth_key_t *k1, *k2;
  tb_auth_t *a;
  assert_int_equal(tb_auth_key_generate(&k1), 0);
  assert_int_equal(tb_auth_key_generate(&k2), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  tb_auth_trust_key(a, k1);
  tb_auth_trust_key(a, k2);
  char j1[TB_AUTH_JTI_MAX], j2[TB_AUTH_JTI_MAX];
  char *t1 = mint(k1, "acme", scopes_rw, 2, 0, 3600, j1);
  char *t2 = mint(k1, "acme", scopes_rw, 2, 0, 3600, j2);
  char *t3 = mint(k2, "acme", scopes_rw, 2, 0, 3600, NULL);
  tb_auth_result_t res;
  /* A token revoked by id, through an event payload. */
  json_t *ev = tb_auth_revocation_event("token", j1, "leaked in a log");
  assert_non_null(ev);
  assert_int_equal(tb_auth_apply_revocation(a, ev, NULL), 0);
  assert_int_equal(tb_auth_apply_revocation(a, ev, NULL), 0); /* idempotent */
  json_decref(ev);
  assert_int_equal(tb_auth_verify_token(a, t1, strlen(t1), NULL, NULL, &res), TB_EAUTH);
  assert_string_equal(res.error, "token_revoked");
  assert_int_equal(tb_auth_verify_token(a, t2, strlen(t2), NULL, NULL, &res), 0);
  /* A key revoked: every token it signed, and only those. */
  ev = tb_auth_revocation_event("key", tb_auth_key_id(k1), NULL);
  assert_int_equal(tb_auth_apply_revocation(a, ev, NULL), 0);
  json_decref(ev);
  assert_int_equal(tb_auth_verify_token(a, t2, strlen(t2), NULL, NULL, &res), TB_EAUTH);
  assert_string_equal(res.error, "token_revoked");
  assert_int_equal(tb_auth_verify_token(a, t3, strlen(t3), NULL, NULL, &res), 0);
  assert_true(tb_auth_key_revoked(a, tb_auth_key_id(k1)));
  assert_false(tb_auth_key_revoked(a, tb_auth_key_id(k2)));
  /* Bad payloads. */
  char err[200];
  tb_errbuf_t eb = {err, sizeof err};
  assert_null(tb_auth_revocation_event("user", "x", NULL));
  assert_null(tb_auth_revocation_event("key", "", NULL));
  json_t *bad = json_pack("{s:s, s:s}", "kind", "user", "id", "x");
  assert_int_equal(tb_auth_apply_revocation(a, bad, &eb), TB_EINVAL);
  assert_non_null(strstr(err, "\"user\""));
  json_decref(bad);
  /* Many revocations stay searchable. */
  for (int i = 0; i < 1000; i++) {
    char id[32];
    snprintf(id, sizeof id, "jti-%04d", (i * 7919) % 1000);
    assert_int_equal(tb_auth_revoke_token(a, id), 0);
  }
  assert_true(tb_auth_token_revoked(a, "jti-0000"));
  assert_true(tb_auth_token_revoked(a, "jti-0999"));
  assert_false(tb_auth_token_revoked(a, "jti-1000"));
  tb_free(t1);
  tb_free(t2);
  tb_free(t3);
  tb_auth_free(a);
  tb_auth_key_free(k1);
  tb_auth_key_free(k2);
}

/* Our JWT's signature verifies with OpenSSL, given the public key as PEM. */
static void openssl_verifies_ours(void **state) {
  tb_auth_key_t *k;
  char err[300];
  tb_errbuf_t eb = {err, sizeof err};
  assert_int_equal(tb_auth_key_load_or_create(path_in("x/node.key"), &k, NULL, &eb), 0);
  tb_buf_t pub;
  tb_buf_init(&pub, 4096);
  tb_auth_key_public_pem(k, &pub);
  write_file(path_in("x/pub.pem"), pub.data, pub.len);
  tb_buf_deinit(&pub);
  char *tok = mint(k, "acme", scopes_rw, 2, 0, 3600, NULL);
  const char *d2 = strrchr(tok, '.');
  write_file(path_in("x/msg"), tok, (size_t)(d2 - tok));
  uint8_t sig[64];
  size_t n;
  assert_int_equal(tb_base64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig, &n), 0);
  assert_int_equal(n, 64);
  write_file(path_in("x/sig"), sig, 64);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s pkeyutl -verify -pubin -inkey %s -rawin -in %s -sigfile %s", TH_OPENSSL,
           path_in("x/pub.pem"), path_in("x/msg"), path_in("x/sig"));
  assert_int_equal(run(cmd, path_in("x/out")), 0);
  assert_non_null(strstr(read_file(path_in("x/out"), NULL), "Signature Verified Successfully"));
  /* And a changed message does not verify there either. */
  char *m = read_file(path_in("x/msg"), &n);
  m[n - 1] = m[n - 1] == 'A' ? 'B' : 'A';
  write_file(path_in("x/msg"), m, n);
  assert_int_not_equal(run(cmd, path_in("x/out")), 0);
  tb_free(tok);
  tb_auth_key_free(k);
}

/* Tokens signed by OpenSSL verify with ours: with our key file, and with a key OpenSSL
 * generated, trusted by its public PEM (and loadable as a key file). */
static void ours_verifies_openssl(void **state) {
  tb_auth_key_t *k;
  tb_auth_t *a;
  char err[300];
  tb_errbuf_t eb = {err, sizeof err};
  assert_int_equal(tb_auth_key_load_or_create(path_in("o/node.key"), &k, NULL, &eb), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  tb_auth_trust_key(a, k);
  char hdr[256];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", tb_auth_key_id(k));
  const char *payload = "{\"iss\":\"tabbify\",\"sub\":\"ci\",\"tenant\":\"acme\",\"scope\":\"apps:read\","
                        "\"iat\":1700000000,\"exp\":1700003600,\"jti\":\"openssl-1\"}";
  char *tok = forge(hdr, payload, k, NULL); /* forge() signs with `openssl pkeyutl -sign` */
  tb_auth_need_t need = {.tenant = "acme", .scope = "apps:read", .now_s = 1700000001};
  tb_auth_claims_t c;
  tb_auth_result_t res;
  assert_int_equal(tb_auth_verify_token(a, tok, strlen(tok), &need, &c, &res), 0);
  assert_string_equal(c.subject, "ci");
  assert_string_equal(c.jti, "openssl-1");
  tb_auth_claims_deinit(&c);

  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s genpkey -algorithm ed25519 -out %s && chmod 600 %s && %s pkey -in %s -pubout -out %s",
           TH_OPENSSL, path_in("o/gen.key"), path_in("o/gen.key"), TH_OPENSSL, path_in("o/gen.key"),
           path_in("o/gen.pub"));
  assert_int_equal(run(cmd, NULL), 0);
  size_t n;
  char *pem = read_file(path_in("o/gen.pub"), &n);
  uint8_t pk[32];
  char kid[TB_AUTH_KID_LEN + 1];
  assert_int_equal(tb_auth_public_key_from_pem(pem, n, pk, &eb), 0);
  assert_int_equal(tb_auth_trust_public_key(a, pk, kid), 0);
  snprintf(hdr, sizeof hdr, "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", kid);
  /* sign with the openssl-generated key file directly */
  char h64[512], p64[1024], msg[2048];
  tb_base64url_encode(hdr, strlen(hdr), h64);
  tb_base64url_encode(payload, strlen(payload), p64);
  snprintf(msg, sizeof msg, "%s.%s", h64, p64);
  write_file(path_in("o/msg"), msg, strlen(msg));
  snprintf(cmd, sizeof cmd, "%s pkeyutl -sign -inkey %s -rawin -in %s -out %s", TH_OPENSSL, path_in("o/gen.key"),
           path_in("o/msg"), path_in("o/sig"));
  assert_int_equal(run(cmd, NULL), 0);
  char *sig = read_file(path_in("o/sig"), &n);
  assert_int_equal(n, 64);
  char tok2[4096];
  snprintf(tok2, sizeof tok2, "%s.", msg);
  tb_base64url_encode(sig, 64, tok2 + strlen(tok2));
  assert_int_equal(tb_auth_verify_token(a, tok2, strlen(tok2), &need, NULL, &res), 0);
  /* The openssl key file is a key file for us too, with the same key id. */
  tb_auth_key_t *g;
  assert_int_equal(tb_auth_key_load(path_in("o/gen.key"), &g, &eb), 0);
  assert_string_equal(tb_auth_key_id(g), kid);
  tb_auth_key_free(g);
  tb_auth_free(a);
  tb_auth_key_free(k);
}

/* RFC 8037 A.1/A.2 key and RFC 7638-style thumbprint computed independently. */
static void rfc8037_key(void **state) {
  /* RFC 8037 Appendix A.1: d = nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A,
   * x = 11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo. */
  const char *pem = "-----BEGIN PRIVATE KEY-----\n"
                    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                    "-----END PRIVATE KEY-----\n";
  tb_auth_key_t *k;
  assert_int_equal(tb_auth_key_from_pem(pem, strlen(pem), &k, NULL), 0);
  uint8_t pk[32];
  tb_auth_key_public(k, pk);
  char x[64];
  tb_base64url_encode(pk, 32, x);
  assert_string_equal(x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  /* RFC 8037 A.3: the thumbprint of this key. */
  assert_string_equal(tb_auth_key_id(k), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  tb_auth_key_free(k);
}

static void spec_validation(void **state) {
  tb_auth_key_t *k;
  assert_int_equal(tb_auth_key_generate(&k), 0);
  char err[200];
  tb_errbuf_t eb = {err, sizeof err};
  char *tok;
  const char *spaced[] = {"apps read"};
  tb_auth_token_spec_t bad[] = {
      {.subject = "", .tenant = "t", .ttl_s = 60},
      {.subject = "s", .tenant = "a b", .ttl_s = 60},
      {.subject = "s", .tenant = "t", .ttl_s = 0},
      {.subject = "s", .tenant = "t", .ttl_s = 60, .scopes = spaced, .nscopes = 1},
      {.subject = "s\n", .tenant = "t", .ttl_s = 60},
  };
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(tb_auth_token_create(k, &bad[i], &tok, NULL, &eb), TB_EINVAL);
    assert_null(tok);
  }
  tb_auth_key_free(k);
}

/* Every allocation in minting and verifying can fail; each failure is TB_ENOMEM and
 * leaks nothing (the ASan build checks). */
static void allocation_failures(void **state) {
  tb_auth_key_t *k;
  tb_auth_t *a;
  assert_int_equal(tb_auth_key_generate(&k), 0);
  assert_int_equal(tb_auth_new(NULL, &a), 0);
  tb_auth_trust_key(a, k);
  int failures = 0;
  for (long n = 0; n < 300; n++) {
    char *tok = NULL;
    tb_auth_claims_t c;
    tb_auth_result_t res;
    tb_auth_token_spec_t spec = {.subject = "s", .tenant = "t", .scopes = scopes_rw, .nscopes = 2, .ttl_s = 60};
    tb_alloc_fail_after(n);
    int rc = tb_auth_token_create(k, &spec, &tok, NULL, NULL);
    if (rc == 0) {
      rc = tb_auth_verify_token(a, tok, strlen(tok), NULL, &c, &res);
      if (rc == 0) tb_auth_claims_deinit(&c);
    }
    tb_alloc_fail_after(-1);
    tb_free(tok);
    if (rc == 0) break;
    assert_int_equal(rc, TB_ENOMEM);
    failures++;
  }
  assert_true(failures > 3);
  tb_auth_free(a);
  tb_auth_key_free(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(key_file_lifecycle),
      cmocka_unit_test(pem_matches_openssl),
      cmocka_unit_test(round_trip_and_claims),
      cmocka_unit_test(expiry_and_time),
      cmocka_unit_test(tampering_is_401),
      cmocka_unit_test(tenant_and_scope_403),
      cmocka_unit_test(revocation),
      cmocka_unit_test(openssl_verifies_ours),
      cmocka_unit_test(ours_verifies_openssl),
      cmocka_unit_test(rfc8037_key),
      cmocka_unit_test(spec_validation),
      cmocka_unit_test(allocation_failures),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
