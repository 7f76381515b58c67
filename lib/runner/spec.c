/*
 * spec.c — the runner's spec file (include/tb/runner.h) and the artifact digest check.
 *
 * The spec is written by the supervisor, but a runner started by hand reads one a user
 * wrote, so every refusal is a sentence naming the field and what it must be. Bytes in,
 * struct out: no I/O here (the fuzz target drives tb_runner_spec_parse directly).
 */
#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "runner_int.h"
#include "tb/alloc.h"
#include "tb/blake3.h"
#include "tb/json.h"
#include "tb/manifest.h"

static int str_field(const json_t *o, const char *key, bool required, const char *dflt, char **out, tb_errbuf_t *eb) {
  json_t *v = json_object_get(o, key);
  const char *s = dflt;
  if (v == NULL || json_is_null(v)) {
    if (required) return tb_errf(eb, TB_EINVAL, "spec field \"%s\" is missing", key);
  } else if (!json_is_string(v)) {
    return tb_errf(eb, TB_EINVAL, "spec field \"%s\" must be a string", key);
  } else {
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
      return tb_errf(eb, TB_EINVAL, "spec field \"%s\" must not contain NUL characters", key);
    if (required && s[0] == '\0') return tb_errf(eb, TB_EINVAL, "spec field \"%s\" must not be empty", key);
  }
  *out = tb_strdup(s ? s : "");
  return *out ? 0 : TB_ENOMEM;
}

static int int_field(const json_t *o, const char *key, int64_t dflt, int64_t min, int64_t max, int64_t *out,
                     tb_errbuf_t *eb) {
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v)) {
    *out = dflt;
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
    return tb_errf(eb, TB_EINVAL, "spec field \"%s\" must be an integer from %lld to %lld", key, (long long)min,
                   (long long)max);
  *out = (int64_t)json_integer_value(v);
  return 0;
}

static bool is_hex64(const char *s) {
  size_t n = 0;
  for (; s[n]; n++)
    if (!isxdigit((unsigned char)s[n])) return false;
  return n == 64;
}

static int env_field(const json_t *o, tb_runner_spec_t *s, tb_errbuf_t *eb) {
  json_t *v = json_object_get(o, "env"), *val;
  const char *k;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_object(v)) return tb_errf(eb, TB_EINVAL, "spec field \"env\" must be an object of strings");
  s->env = tb_calloc(json_object_size(v) + 1, sizeof *s->env);
  if (s->env == NULL) return TB_ENOMEM;
  json_object_foreach(v, k, val) {
    if (!json_is_string(val))
      return tb_errf(eb, TB_EINVAL, "spec field \"env\": the value of \"%.60s\" must be a string", k);
    if (k[0] == '\0' || strchr(k, '='))
      return tb_errf(eb, TB_EINVAL, "spec field \"env\": \"%.60s\" is not a valid variable name", k);
    size_t kl = strlen(k), vl = strlen(json_string_value(val));
    char *kv = tb_malloc(kl + vl + 2);
    if (kv == NULL) return TB_ENOMEM;
    memcpy(kv, k, kl);
    kv[kl] = '=';
    memcpy(kv + kl + 1, json_string_value(val), vl + 1);
    s->env[s->nenv++] = kv;
  }
  return 0;
}

static int args_field(const json_t *o, tb_runner_spec_t *s, tb_errbuf_t *eb) {
  json_t *v = json_object_get(o, "args"), *val;
  size_t i;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_array(v)) return tb_errf(eb, TB_EINVAL, "spec field \"args\" must be an array of strings");
  s->args = tb_calloc(json_array_size(v) + 1, sizeof *s->args);
  if (s->args == NULL) return TB_ENOMEM;
  json_array_foreach(v, i, val) {
    if (!json_is_string(val)) return tb_errf(eb, TB_EINVAL, "spec field \"args\": element %zu must be a string", i);
    s->args[s->nargs] = tb_strdup(json_string_value(val));
    if (s->args[s->nargs] == NULL) return TB_ENOMEM;
    s->nargs++;
  }
  return 0;
}

int tb_runner_spec_parse(const char *text, size_t len, tb_runner_spec_t *out, tb_errbuf_t *eb) {
  json_t *root = NULL;
  char ebuf[200] = "";
  tb_errbuf_t jeb = {ebuf, sizeof ebuf};
  char *lifecycle = NULL;
  int64_t n;
  int rc;

  memset(out, 0, sizeof *out);
  rc = tb_json_parse(text, len, &root, &jeb);
  if (rc != 0) {
    rc = tb_errf(eb, TB_EPARSE, "the spec is not valid JSON: %s", ebuf);
    goto out;
  }
  if (!json_is_object(root)) {
    rc = tb_errf(eb, TB_EINVAL, "the spec must be a JSON object");
    goto out;
  }
  if ((rc = str_field(root, "runner", true, NULL, &out->runner, eb)) != 0) goto out;
  if ((rc = str_field(root, "app", true, NULL, &out->app, eb)) != 0) goto out;
  if ((rc = str_field(root, "deployment", false, "", &out->deployment, eb)) != 0) goto out;
  if ((rc = str_field(root, "supervisor", false, "", &out->supervisor, eb)) != 0) goto out;
  if ((rc = int_field(root, "version", 0, 0, INT64_MAX, &out->version, eb)) != 0) goto out;
  if ((rc = str_field(root, "name", false, "app", &out->name, eb)) != 0) goto out;
  if ((rc = str_field(root, "runtime", false, "wasm-http", &out->runtime, eb)) != 0) goto out;
  if ((rc = str_field(root, "artifact", true, NULL, &out->artifact, eb)) != 0) goto out;
  if ((rc = str_field(root, "digest", false, "", &out->digest, eb)) != 0) goto out;
  if ((rc = str_field(root, "listen", true, NULL, &out->listen, eb)) != 0) goto out;
  if ((rc = str_field(root, "control", true, NULL, &out->control, eb)) != 0) goto out;
  if ((rc = str_field(root, "log", true, NULL, &out->log, eb)) != 0) goto out;
  if ((rc = str_field(root, "lifecycle", false, "always_on", &lifecycle, eb)) != 0) goto out;
  if (strcmp(lifecycle, "always_on") == 0) {
    out->lifecycle = TB_RUNNER_ALWAYS_ON;
  } else if (strcmp(lifecycle, "on_request") == 0) {
    out->lifecycle = TB_RUNNER_ON_REQUEST;
  } else {
    rc = tb_errf(eb, TB_EINVAL, "spec field \"lifecycle\" must be \"always_on\" or \"on_request\", not \"%.60s\"",
                 lifecycle);
    goto out;
  }
  /* 0 means the default too: a supervisor serialising a zeroed struct gets defaults. */
  if ((rc = int_field(root, "idle_timeout_sec", 0, 0, 86400 * 365, &n, eb)) != 0) goto out;
  out->idle_timeout_sec = n ? (uint32_t)n : TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC;
  /* A wasm32 linear memory tops out at 4 GiB; a container's limit does not. */
  int64_t mem_max = strcmp(out->runtime, "wasm-http") == 0 ? TB_MANIFEST_WASM_MAX_MEMORY_MB : TB_MANIFEST_MAX_MEMORY_MB;
  if ((rc = int_field(root, "memory_mb", 0, 0, mem_max, &n, eb)) != 0) goto out;
  out->memory_mb = n ? (uint32_t)n : TB_MANIFEST_DEFAULT_MEMORY_MB;
  if ((rc = int_field(root, "request_timeout_sec", 0, 0, 86400, &n, eb)) != 0) goto out;
  out->request_timeout_sec = n ? (uint32_t)n : TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC;
  if ((rc = int_field(root, "workers", 0, 0, TB_RUNNER_MAX_WORKERS, &n, eb)) != 0) goto out;
  out->workers = (uint32_t)n;
  if ((rc = env_field(root, out, eb)) != 0) goto out;
  if ((rc = args_field(root, out, eb)) != 0) goto out;
  if ((rc = int_field(root, "port", TB_MANIFEST_DEFAULT_PORT, 1, 65535, &n, eb)) != 0) goto out;
  out->port = (uint32_t)n;
  if ((rc = str_field(root, "health_path", false, "", &out->health_path, eb)) != 0) goto out;
  if ((rc = str_field(root, "docker_socket", false, "", &out->docker_socket, eb)) != 0) goto out;
  if (out->health_path[0] && out->health_path[0] != '/') {
    rc = tb_errf(eb, TB_EINVAL, "spec field \"health_path\" must start with '/', not \"%.100s\"", out->health_path);
    goto out;
  }

  if (out->digest[0] && !((strncmp(out->digest, "sha256:", 7) == 0 || strncmp(out->digest, "blake3:", 7) == 0) &&
                          is_hex64(out->digest + 7))) {
    rc = tb_errf(eb, TB_EINVAL, "spec field \"digest\" must be \"sha256:\" or \"blake3:\" and 64 hex digits, not \"%.80s\"",
                 out->digest);
    goto out;
  }
  if (out->artifact[0] != '/') {
    rc = tb_errf(eb, TB_EINVAL, "spec field \"artifact\" must be an absolute path, not \"%.100s\"", out->artifact);
    goto out;
  }
  if (out->control[0] != '/' || strlen(out->control) >= 108) {
    rc = tb_errf(eb, TB_EINVAL, "spec field \"control\" must be an absolute path shorter than 108 bytes");
    goto out;
  }
  if (out->log[0] != '/') {
    rc = tb_errf(eb, TB_EINVAL, "spec field \"log\" must be an absolute path, not \"%.100s\"", out->log);
    goto out;
  }
out:
  tb_free(lifecycle);
  json_decref(root);
  if (rc != 0) tb_runner_spec_deinit(out);
  return rc;
}

static void free_list(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++) tb_free(v[i]);
  tb_free(v);
}

void tb_runner_spec_deinit(tb_runner_spec_t *s) {
  if (s == NULL) return;
  char **strs[] = {&s->runner, &s->app, &s->deployment, &s->supervisor, &s->name, &s->runtime, &s->artifact,
                   &s->digest, &s->listen, &s->control, &s->log, &s->health_path, &s->docker_socket};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) tb_free(*strs[i]);
  free_list(s->env, s->nenv);
  free_list(s->args, s->nargs);
  memset(s, 0, sizeof *s);
}

uint32_t tb_runner_spec_workers(const tb_runner_spec_t *s) {
  if (s->workers) return s->workers;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 2) n = 2;
  if (n > TB_RUNNER_MAX_WORKERS) n = TB_RUNNER_MAX_WORKERS;
  return (uint32_t)n;
}

static void to_hex(const uint8_t *b, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[b[i] >> 4];
    out[2 * i + 1] = hx[b[i] & 15];
  }
  out[2 * n] = '\0';
}

/* The algorithm of a well-formed digest ("sha256:" or "blake3:" and 64 hex digits). */
static int digest_kind(const char *digest, bool *sha, tb_errbuf_t *eb) {
  *sha = strncmp(digest, "sha256:", 7) == 0;
  if (!(*sha || strncmp(digest, "blake3:", 7) == 0) || !is_hex64(digest + 7))
    return tb_errf(eb, TB_EINVAL, "the digest \"%.80s\" is not \"sha256:<64 hex>\" or \"blake3:<64 hex>\"", digest);
  return 0;
}

static int digest_compare(const uint8_t h[32], const char *digest, tb_errbuf_t *eb) {
  char got[65];
  to_hex(h, 32, got);
  if (strcasecmp(got, digest + 7) != 0)
    return tb_errf(eb, TB_ECORRUPT, "the artifact does not match its digest: expected %s, got %.7s%s", digest, digest,
                   got);
  return 0;
}

int tb_runner_digest_check(const uint8_t *data, size_t len, const char *digest, tb_errbuf_t *eb) {
  bool sha;
  uint8_t h[32];
  if (digest == NULL || digest[0] == '\0') return 0;
  int rc = digest_kind(digest, &sha, eb);
  if (rc != 0) return rc;
  if (sha) crypto_hash_sha256(h, data, len);
  else tb_blake3_hash(data, len, h);
  return digest_compare(h, digest, eb);
}

int tb_runner_digest_check_file(const char *path, const char *digest, tb_errbuf_t *eb) {
  bool sha;
  if (digest == NULL || digest[0] == '\0') return 0;
  int rc = digest_kind(digest, &sha, eb);
  if (rc != 0) return rc;
  FILE *f = fopen(path, "rb");
  if (!f) return tb_errf(eb, -errno, "cannot read %s: %s", path, strerror(errno));
  crypto_hash_sha256_state s256;
  tb_blake3_t b3;
  if (sha) crypto_hash_sha256_init(&s256);
  else tb_blake3_init(&b3);
  static _Thread_local uint8_t buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    if (sha) crypto_hash_sha256_update(&s256, buf, n);
    else tb_blake3_update(&b3, buf, n);
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad) return tb_errf(eb, TB_EIO, "cannot read %s to the end", path);
  uint8_t h[32];
  if (sha) crypto_hash_sha256_final(&s256, h);
  else tb_blake3_final(&b3, h, sizeof h);
  return digest_compare(h, digest, eb);
}
