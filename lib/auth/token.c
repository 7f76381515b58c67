/*
 * token.c — minting and verifying EdDSA JWTs (include/tb/auth.h).
 *
 * A token is three base64url parts, header.payload.signature, and only one shape is
 * accepted: alg "EdDSA", a kid we trust, a 64-byte signature over the first two parts,
 * no padding, no "crit". The header is read before the signature is checked (it names
 * the key) but only alg, typ, crit and kid are looked at; nothing in the payload is
 * believed until the signature verifies. Refusals carry a code and a sentence; values
 * echoed into the sentence are cut to printable ASCII, and the token itself never is.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth_int.h"
#include "tb/alloc.h"
#include "tb/base64.h"
#include "tb/clock.h"
#include "tb/json.h"
#include "tb/uuid.h"

#define FIELD_MAX 256
#define MAX_SCOPES 64

/* 1..256 printable ASCII characters; spaces only where `spaces` allows. */
static bool printable(const char *s, bool spaces) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > FIELD_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e || (c == ' ' && !spaces)) return false;
  }
  return true;
}

/* Copies `s` for a message: printable ASCII, at most 64 characters. */
static void quote(char out[72], const char *s, size_t len) {
  size_t j = 0;
  for (size_t i = 0; i < len && j < 64; i++) {
    unsigned char c = (unsigned char)s[i];
    out[j++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
  }
  if (len > 64) memcpy(out + j, "...", 4);
  else out[j] = '\0';
}

static int64_t now_s(const tb_auth_need_t *need) {
  return need && need->now_s ? need->now_s : tb_clock_wall_ns() / TB_NS_PER_SEC;
}

/* Appends base64url(JSON of v). */
static int append_b64_json(tb_buf_t *out, const json_t *v) {
  tb_buf_t js;
  tb_buf_init(&js, 64 << 10);
  int rc = tb_json_dump(v, TB_JSON_COMPACT, &js);
  if (rc == 0) rc = tb_buf_reserve(out, TB_BASE64URL_ENCODED_LEN(js.len) + 1);
  if (rc == 0) out->len += tb_base64url_encode(js.data, js.len, (char *)out->data + out->len);
  tb_buf_deinit(&js);
  return rc;
}

int tb_auth_token_create(const tb_auth_key_t *key, const tb_auth_token_spec_t *spec, char **token,
                         char jti_out[TB_AUTH_JTI_MAX], tb_errbuf_t *eb) {
  json_t *header = NULL, *payload = NULL;
  tb_buf_t out, scope;
  int rc = 0;
  const char *issuer = spec->issuer ? spec->issuer : TB_AUTH_DEFAULT_ISSUER;
  char jti[TB_AUTH_JTI_MAX];
  tb_buf_init(&out, 64 << 10);
  tb_buf_init(&scope, 64 << 10);
  *token = NULL;
  if (!printable(spec->subject, true)) {
    rc = tb_errf(eb, TB_EINVAL, "the subject must be 1 to %d printable ASCII characters", FIELD_MAX);
    goto out;
  }
  if (!printable(spec->tenant, false)) {
    rc = tb_errf(eb, TB_EINVAL, "the tenant must be 1 to %d printable ASCII characters without spaces", FIELD_MAX);
    goto out;
  }
  if (!printable(issuer, true)) {
    rc = tb_errf(eb, TB_EINVAL, "the issuer must be 1 to %d printable ASCII characters", FIELD_MAX);
    goto out;
  }
  if (spec->ttl_s <= 0 || spec->ttl_s > INT64_C(10) * 366 * 86400) {
    rc = tb_errf(eb, TB_EINVAL, "the lifetime must be between 1 second and 10 years, got %lld s",
                 (long long)spec->ttl_s);
    goto out;
  }
  if (spec->nscopes > MAX_SCOPES) {
    rc = tb_errf(eb, TB_EINVAL, "a token carries at most %d scopes", MAX_SCOPES);
    goto out;
  }
  for (size_t i = 0; i < spec->nscopes; i++) {
    if (!printable(spec->scopes[i], false)) {
      rc = tb_errf(eb, TB_EINVAL, "scope %zu must be 1 to %d printable ASCII characters without spaces", i + 1,
                   FIELD_MAX);
      goto out;
    }
    if ((rc = tb_buf_printf(&scope, "%s%s", i ? " " : "", spec->scopes[i])) != 0) goto out;
  }
  if (spec->jti) {
    if (!printable(spec->jti, false) || strlen(spec->jti) >= TB_AUTH_JTI_MAX) {
      rc = tb_errf(eb, TB_EINVAL, "the token id must be 1 to %d printable ASCII characters", TB_AUTH_JTI_MAX - 1);
      goto out;
    }
    snprintf(jti, sizeof jti, "%s", spec->jti);
  } else {
    tb_uuid_t u;
    if ((rc = tb_uuid_v7_new(&u)) != 0) goto out;
    tb_uuid_format(&u, jti);
  }
  int64_t iat = spec->now_s ? spec->now_s : tb_clock_wall_ns() / TB_NS_PER_SEC;
  header = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", key->kid);
  payload = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "iss", issuer, "sub", spec->subject, "tenant",
                      spec->tenant, "scope", tb_buf_cstr(&scope), "iat", (json_int_t)iat, "exp",
                      (json_int_t)(iat + spec->ttl_s), "jti", jti);
  if (header == NULL || payload == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  if ((rc = append_b64_json(&out, header)) != 0) goto out;
  if ((rc = tb_buf_putc(&out, '.')) != 0) goto out;
  if ((rc = append_b64_json(&out, payload)) != 0) goto out;
  uint8_t sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, NULL, out.data, out.len, key->sk);
  if ((rc = tb_buf_putc(&out, '.')) != 0) goto out;
  if ((rc = tb_buf_reserve(&out, TB_BASE64URL_ENCODED_LEN(sizeof sig) + 1)) != 0) goto out;
  out.len += tb_base64url_encode(sig, sizeof sig, (char *)out.data + out.len);
  if ((*token = tb_buf_steal(&out, NULL)) == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  if (jti_out) snprintf(jti_out, TB_AUTH_JTI_MAX, "%s", jti);
out:
  json_decref(header);
  json_decref(payload);
  tb_buf_deinit(&out);
  tb_buf_deinit(&scope);
  return rc;
}

/* Verification ------------------------------------------------------------------------------ */

static int refuse(tb_auth_result_t *res, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(tb_auth_result_t *res, int status, const char *error, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->message, sizeof res->message, fmt, ap);
  va_end(ap);
  res->status = status;
  res->error = error;
  return status == 403 ? TB_EDENIED : TB_EAUTH;
}

static int invalid(tb_auth_result_t *res, const char *why) {
  return refuse(res, 401, "invalid_token", "%s", why);
}

/* Decodes one base64url part (no padding allowed) and parses it as a JSON object into
 * *out. Returns 0, TB_ENOMEM, or TB_EPARSE for anything else. */
static int decode_json(const char *s, size_t len, json_t **out) {
  *out = NULL;
  if (len == 0 || memchr(s, '=', len)) return TB_EPARSE;
  size_t cap = TB_BASE64URL_DECODED_MAX(len), n = 0;
  uint8_t *raw = tb_malloc(cap);
  if (raw == NULL) return TB_ENOMEM;
  json_t *v = NULL;
  int rc = TB_EPARSE;
  if (tb_base64url_decode(s, len, raw, cap, &n) == 0 && tb_json_parse((const char *)raw, n, &v, NULL) == 0) {
    if (json_is_object(v)) {
      *out = v;
      rc = 0;
    } else {
      json_decref(v);
    }
  }
  tb_free(raw);
  return rc;
}

static const char *str_field(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

static bool int_field(const json_t *o, const char *key, int64_t *out) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_integer(v)) return false;
  *out = (int64_t)json_integer_value(v);
  return true;
}

static char *dup_or_null(const char *s, bool *oom) {
  char *d = tb_strdup(s);
  if (d == NULL) *oom = true;
  return d;
}

/* Splits a space-separated scope claim. Returns 0, TB_ENOMEM or TB_EINVAL (too many). */
static int split_scopes(const char *s, char ***out, size_t *n) {
  char **v = NULL;
  size_t k = 0;
  *out = NULL;
  *n = 0;
  while (*s) {
    while (*s == ' ') s++;
    if (*s == '\0') break;
    size_t len = strcspn(s, " ");
    if (k == MAX_SCOPES) goto toomany;
    char **nv = tb_reallocarray(v, k + 1, sizeof *v);
    if (nv == NULL) goto oom;
    v = nv;
    if ((v[k] = tb_strndup(s, len)) == NULL) goto oom;
    k++;
    s += len;
  }
  *out = v;
  *n = k;
  return 0;
toomany:
  for (size_t i = 0; i < k; i++) tb_free(v[i]);
  tb_free(v);
  return TB_EINVAL;
oom:
  for (size_t i = 0; i < k; i++) tb_free(v[i]);
  tb_free(v);
  return TB_ENOMEM;
}

bool tb_auth_scopes_grant(char *const *scopes, size_t nscopes, const char *scope) {
  if (scope == NULL) return true;
  size_t n = strlen(scope);
  for (size_t i = 0; i < nscopes; i++) {
    const char *s = scopes[i];
    size_t sl = strlen(s);
    if (strcmp(s, scope) == 0 || strcmp(s, "*") == 0) return true;
    /* "apps:*" grants every scope that begins "apps:" */
    if (sl >= 2 && s[sl - 2] == ':' && s[sl - 1] == '*' && n > sl - 1 && strncmp(s, scope, sl - 1) == 0)
      return true;
  }
  return false;
}

void tb_auth_claims_deinit(tb_auth_claims_t *c) {
  if (c == NULL) return;
  tb_free(c->issuer);
  tb_free(c->subject);
  tb_free(c->tenant);
  tb_free(c->jti);
  tb_free(c->kid);
  for (size_t i = 0; i < c->nscopes; i++) tb_free(c->scopes[i]);
  tb_free(c->scopes);
  memset(c, 0, sizeof *c);
}

int tb_auth_verify_token(const tb_auth_t *a, const char *token, size_t len, const tb_auth_need_t *need,
                         tb_auth_claims_t *claims, tb_auth_result_t *res) {
  json_t *header = NULL, *payload = NULL;
  char **scopes = NULL;
  size_t nscopes = 0;
  int rc = 0;
  char q1[72], q2[72];
  memset(res, 0, sizeof *res);
  if (claims) memset(claims, 0, sizeof *claims);

  if (len == 0) {
    rc = refuse(res, 401, "missing_token", "this API needs a bearer token");
    goto out;
  }
  if (len > TB_AUTH_TOKEN_MAX) {
    rc = refuse(res, 401, "invalid_token", "the token is longer than %d bytes", TB_AUTH_TOKEN_MAX);
    goto out;
  }
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  const char *end = token + len;
  if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL || d1 == token ||
      d2 == d1 + 1 || d2 + 1 == end) {
    rc = invalid(res, "the token is not a JWT: it must be three base64url parts joined by dots");
    goto out;
  }
  if ((rc = decode_json(token, (size_t)(d1 - token), &header)) != 0) {
    if (rc != TB_ENOMEM) rc = invalid(res, "the token header is not base64url-encoded JSON");
    goto out;
  }
  const json_t *alg = json_object_get(header, "alg");
  if (!json_is_string(alg) || strcmp(json_string_value(alg), "EdDSA") != 0) {
    const char *s = json_is_string(alg) ? json_string_value(alg) : "(none)";
    quote(q1, s, strlen(s));
    rc = refuse(res, 401, "invalid_token", "token algorithm \"%s\" is not accepted; only EdDSA is", q1);
    goto out;
  }
  const json_t *typ = json_object_get(header, "typ");
  if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) {
    rc = invalid(res, "the token type must be JWT");
    goto out;
  }
  if (json_object_get(header, "crit")) {
    rc = invalid(res, "the token has critical header parameters we do not understand");
    goto out;
  }
  const char *kid = str_field(header, "kid");
  if (kid == NULL) {
    rc = invalid(res, "the token header has no key id (kid)");
    goto out;
  }
  const tb__auth_trusted_t *key = tb__auth_find_key(a, kid, strlen(kid));
  if (key == NULL) {
    quote(q1, kid, strlen(kid));
    rc = refuse(res, 401, "invalid_token", "the token was signed by key \"%s\", which is not trusted here", q1);
    goto out;
  }
  size_t siglen = (size_t)(end - d2 - 1), n = 0;
  uint8_t sig[crypto_sign_BYTES + 3];
  if (memchr(d2 + 1, '=', siglen) || tb_base64url_decode(d2 + 1, siglen, sig, sizeof sig, &n) != 0 ||
      n != crypto_sign_BYTES) {
    rc = invalid(res, "the token signature is not a base64url Ed25519 signature");
    goto out;
  }
  if (crypto_sign_verify_detached(sig, (const uint8_t *)token, (unsigned long long)(d2 - token), key->pk) != 0) {
    rc = invalid(res, "the token signature does not verify");
    goto out;
  }
  /* From here on the bytes are the issuer's. */
  if (tb_auth_key_revoked(a, kid)) {
    rc = refuse(res, 401, "token_revoked", "the key that signed the token has been revoked");
    goto out;
  }
  if ((rc = decode_json(d1 + 1, (size_t)(d2 - d1 - 1), &payload)) != 0) {
    if (rc != TB_ENOMEM) rc = invalid(res, "the token payload is not base64url-encoded JSON");
    goto out;
  }
  const char *iss = str_field(payload, "iss"), *sub = str_field(payload, "sub");
  const char *tenant = str_field(payload, "tenant"), *jti = str_field(payload, "jti");
  const json_t *scope = json_object_get(payload, "scope");
  int64_t iat, exp, nbf;
  if (iss == NULL || strcmp(iss, a->issuer) != 0) {
    quote(q1, iss ? iss : "", iss ? strlen(iss) : 0);
    rc = refuse(res, 401, "invalid_token", "the token was issued by \"%s\", not by this service", q1);
    goto out;
  }
  if (sub == NULL || tenant == NULL || jti == NULL || !json_is_string(scope) || !int_field(payload, "exp", &exp) ||
      !int_field(payload, "iat", &iat)) {
    rc = invalid(res, "the token lacks a claim: sub, tenant, scope, iat, exp and jti are required");
    goto out;
  }
  int64_t now = now_s(need);
  if (now >= exp) {
    char when[TB_RFC3339_MAX];
    tb_clock_format_rfc3339(exp * TB_NS_PER_SEC, when);
    rc = refuse(res, 401, "token_expired", "the token expired at %s", when);
    goto out;
  }
  if ((json_object_get(payload, "nbf") && (!int_field(payload, "nbf", &nbf) || nbf > now + a->leeway_s)) ||
      iat > now + a->leeway_s) {
    rc = invalid(res, "the token is not valid yet");
    goto out;
  }
  if (tb_auth_token_revoked(a, jti)) {
    rc = refuse(res, 401, "token_revoked", "the token has been revoked");
    goto out;
  }
  int src = split_scopes(json_string_value(scope), &scopes, &nscopes);
  if (src == TB_EINVAL) {
    rc = invalid(res, "the token carries too many scopes");
    goto out;
  }
  if (src != 0) {
    rc = src;
    goto out;
  }
  if (need && need->tenant && strcmp(need->tenant, tenant) != 0) {
    quote(q1, tenant, strlen(tenant));
    quote(q2, need->tenant, strlen(need->tenant));
    rc = refuse(res, 403, "wrong_tenant", "the token is for tenant \"%s\", not \"%s\"", q1, q2);
    goto out;
  }
  if (need && need->scope && !tb_auth_scopes_grant(scopes, nscopes, need->scope)) {
    quote(q1, need->scope, strlen(need->scope));
    rc = refuse(res, 403, "insufficient_scope", "the token does not grant scope \"%s\"", q1);
    goto out;
  }
  if (claims) {
    bool oom = false;
    claims->issuer = dup_or_null(iss, &oom);
    claims->subject = dup_or_null(sub, &oom);
    claims->tenant = dup_or_null(tenant, &oom);
    claims->jti = dup_or_null(jti, &oom);
    claims->kid = dup_or_null(kid, &oom);
    claims->scopes = scopes;
    claims->nscopes = nscopes;
    claims->iat = iat;
    claims->exp = exp;
    scopes = NULL;
    nscopes = 0;
    if (oom) {
      tb_auth_claims_deinit(claims);
      rc = TB_ENOMEM;
      goto out;
    }
  }
out:
  for (size_t i = 0; i < nscopes; i++) tb_free(scopes[i]);
  tb_free(scopes);
  json_decref(header);
  json_decref(payload);
  return rc;
}

int tb_auth_verify(const tb_auth_t *a, const char *authorization, const tb_auth_need_t *need,
                   tb_auth_claims_t *claims, tb_auth_result_t *res) {
  const char *p = authorization ? authorization : "";
  while (*p == ' ' || *p == '\t') p++;
  if (*p == '\0') return tb_auth_verify_token(a, "", 0, need, claims, res);
  if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t')) {
    memset(res, 0, sizeof *res);
    if (claims) memset(claims, 0, sizeof *claims);
    return refuse(res, 401, "missing_token", "the Authorization header must be \"Bearer <token>\"");
  }
  p += 6;
  while (*p == ' ' || *p == '\t') p++;
  size_t len = strlen(p);
  while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
  return tb_auth_verify_token(a, p, len, need, claims, res);
}

int tb_auth_result_json(const tb_auth_result_t *res, tb_buf_t *out) {
  json_t *o = json_pack("{s:s, s:s, s:i}", "error", res->error ? res->error : "unauthorized", "message",
                        res->message, "status", res->status ? res->status : 401);
  if (o == NULL) return TB_ENOMEM;
  int rc = tb_json_dump(o, TB_JSON_COMPACT, out);
  json_decref(o);
  return rc;
}

int tb_auth_result_www_authenticate(const tb_auth_result_t *res, const tb_auth_need_t *need, tb_buf_t *out) {
  size_t start = out->len;
  int rc = tb_buf_puts(out, "Bearer realm=\"tabbify\"");
  if (rc == 0 && res->error && strcmp(res->error, "missing_token") != 0) {
    /* RFC 6750 knows invalid_token (401) and insufficient_scope (403). */
    const char *code = res->status == 403 ? "insufficient_scope" : "invalid_token";
    char desc[sizeof res->message];
    size_t j = 0;
    for (const char *s = res->message; *s && j + 1 < sizeof desc; s++)
      desc[j++] = (*s == '"' || *s == '\\') ? '\'' : *s; /* a quoted-string stays one */
    desc[j] = '\0';
    rc = tb_buf_printf(out, ", error=\"%s\", error_description=\"%s\"", code, desc);
    if (rc == 0 && res->status == 403 && need && need->scope && strcmp(res->error, "insufficient_scope") == 0) {
      char q[72];
      quote(q, need->scope, strlen(need->scope));
      rc = tb_buf_printf(out, ", scope=\"%s\"", q);
    }
  }
  if (rc != 0) {
    out->len = start;
    if (out->data) out->data[start] = '\0';
  }
  return rc;
}
