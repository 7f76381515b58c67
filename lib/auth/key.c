/*
 * key.c — Ed25519 key pairs (include/tb/auth.h): generation, the key file, PEM.
 *
 * The key file is what OpenSSL writes for an Ed25519 key, an unencrypted PKCS#8
 * "PRIVATE KEY" PEM, so operators can inspect and rotate keys with standard tools and the
 * tests can check our signatures against OpenSSL's. Its DER is fixed for Ed25519 (RFC
 * 8410): a 16-byte prefix and the 32-byte seed; the public key file is a 12-byte prefix
 * and the 32-byte key. Creating the file never exposes the secret: the temporary file is
 * created 0600 with O_EXCL, written and synced before it is linked into place.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth_int.h"
#include "tb/alloc.h"
#include "tb/base64.h"

static const uint8_t pkcs8_prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                         0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
/* PKCS#8 v2 (RFC 5958 OneAsymmetricKey) with the public key attached: prefix, seed, then
 * 0x81 0x21 0x00 and the public key. */
static const uint8_t pkcs8v2_prefix[16] = {0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06,
                                           0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};
static const uint8_t spki_prefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

#define KEY_FILE_MAX 16384

int tb__auth_sodium_init(void) { return sodium_init() < 0 ? TB_EINTERNAL : 0; }

void tb_auth_kid(const uint8_t pk[32], char kid[TB_AUTH_KID_LEN + 1]) {
  /* RFC 7638: SHA-256 of the JWK's required members in lexicographic order. */
  char x[TB_BASE64URL_ENCODED_LEN(32) + 1], jwk[96];
  tb_base64url_encode(pk, 32, x);
  int n = snprintf(jwk, sizeof jwk, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, (const uint8_t *)jwk, (unsigned long long)n);
  tb_base64url_encode(digest, sizeof digest, kid);
}

static int key_from_seed(const uint8_t seed[32], tb_auth_key_t **out) {
  int rc = tb__auth_sodium_init();
  if (rc != 0) return rc;
  tb_auth_key_t *k = tb_calloc(1, sizeof *k);
  if (k == NULL) return TB_ENOMEM;
  crypto_sign_seed_keypair(k->pk, k->sk, seed);
  tb_auth_kid(k->pk, k->kid);
  *out = k;
  return 0;
}

int tb_auth_key_generate(tb_auth_key_t **out) {
  int rc = tb__auth_sodium_init();
  if (rc != 0) return rc;
  uint8_t seed[32];
  randombytes_buf(seed, sizeof seed);
  rc = key_from_seed(seed, out);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

void tb_auth_key_free(tb_auth_key_t *key) {
  if (key == NULL) return;
  sodium_memzero(key, sizeof *key);
  tb_free(key);
}

const char *tb_auth_key_id(const tb_auth_key_t *key) { return key->kid; }

void tb_auth_key_public(const tb_auth_key_t *key, uint8_t pk[32]) { memcpy(pk, key->pk, 32); }

/* PEM ------------------------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends a PEM block: standard base64 with padding, 64 characters a line. */
static int pem_write(tb_buf_t *out, const char *label, const uint8_t *der, size_t len) {
  size_t start = out->len;
  int rc = tb_buf_printf(out, "-----BEGIN %s-----\n", label);
  size_t col = 0;
  for (size_t i = 0; rc == 0 && i < len; i += 3) {
    uint32_t v = (uint32_t)der[i] << 16 | (i + 1 < len ? (uint32_t)der[i + 1] << 8 : 0) | (i + 2 < len ? der[i + 2] : 0);
    char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < len ? b64[v >> 6 & 63] : '=', i + 2 < len ? b64[v & 63] : '='};
    rc = tb_buf_append(out, q, 4);
    col += 4;
    if (rc == 0 && (col == 64 || i + 3 >= len)) {
      rc = tb_buf_putc(out, '\n');
      col = 0;
    }
  }
  if (rc == 0) rc = tb_buf_printf(out, "-----END %s-----\n", label);
  if (rc != 0) {
    sodium_memzero(out->data + start, out->len - start);
    out->len = start;
    if (out->data) out->data[start] = '\0';
  }
  return rc;
}

/* Finds the block `label` in `pem` and decodes its base64 into `der` (capacity `cap`).
 * Returns the DER length, or -1. */
static long pem_read(const char *pem, size_t len, const char *label, uint8_t *der, size_t cap) {
  char begin[64], end[64];
  snprintf(begin, sizeof begin, "-----BEGIN %s-----", label);
  snprintf(end, sizeof end, "-----END %s-----", label);
  const char *b = memmem(pem, len, begin, strlen(begin));
  if (b == NULL) return -1;
  b += strlen(begin);
  const char *e = memmem(b, len - (size_t)(b - pem), end, strlen(end));
  if (e == NULL) return -1;
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  size_t n = 0;
  for (const char *p = b; p < e; p++) {
    char c = *p;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      pad++;
      continue;
    }
    const char *at = strchr(b64, c);
    if (at == NULL || c == '\0' || pad) return -1;
    acc = acc << 6 | (uint32_t)(at - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == cap) return -1;
      der[n++] = (uint8_t)(acc >> bits);
    }
  }
  if (pad > 2) return -1;
  return (long)n;
}

int tb_auth_key_private_pem(const tb_auth_key_t *key, tb_buf_t *out) {
  uint8_t der[48];
  memcpy(der, pkcs8_prefix, 16);
  memcpy(der + 16, key->sk, 32); /* libsodium's secret key starts with the seed */
  int rc = pem_write(out, "PRIVATE KEY", der, sizeof der);
  sodium_memzero(der, sizeof der);
  return rc;
}

int tb_auth_key_public_pem(const tb_auth_key_t *key, tb_buf_t *out) {
  uint8_t der[44];
  memcpy(der, spki_prefix, 12);
  memcpy(der + 12, key->pk, 32);
  return pem_write(out, "PUBLIC KEY", der, sizeof der);
}

int tb_auth_key_from_pem(const char *pem, size_t len, tb_auth_key_t **out, tb_errbuf_t *eb) {
  uint8_t der[128];
  int rc = 0;
  long n = pem_read(pem, len, "PRIVATE KEY", der, sizeof der);
  if (n == 48 && memcmp(der, pkcs8_prefix, 16) == 0) {
    rc = key_from_seed(der + 16, out);
  } else if (n == 83 && memcmp(der, pkcs8v2_prefix, 16) == 0 && der[48] == 0x81 && der[49] == 0x21 &&
             der[50] == 0x00) {
    rc = key_from_seed(der + 16, out);
    if (rc == 0 && sodium_memcmp((*out)->pk, der + 51, 32) != 0) {
      tb_auth_key_free(*out);
      *out = NULL;
      rc = tb_errf(eb, TB_ECORRUPT, "the key's public half does not match its secret half");
    }
  } else {
    rc = tb_errf(eb, TB_ECORRUPT, "not an Ed25519 private key in PKCS#8 PEM (\"-----BEGIN PRIVATE KEY-----\")");
  }
  sodium_memzero(der, sizeof der);
  return rc;
}

int tb_auth_public_key_from_pem(const char *pem, size_t len, uint8_t pk[32], tb_errbuf_t *eb) {
  uint8_t der[64];
  long n = pem_read(pem, len, "PUBLIC KEY", der, sizeof der);
  if (n != 44 || memcmp(der, spki_prefix, 12) != 0)
    return tb_errf(eb, TB_ECORRUPT, "not an Ed25519 public key in PEM (\"-----BEGIN PUBLIC KEY-----\")");
  memcpy(pk, der + 12, 32);
  return 0;
}

/* Files ------------------------------------------------------------------------------------- */

int tb_auth_key_load(const char *path, tb_auth_key_t **out, tb_errbuf_t *eb) {
  int fd = -1, rc = 0;
  char *text = NULL;
  size_t len = 0;
  struct stat st;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    rc = tb_err_from_errno(errno);
    rc = tb_errf(eb, rc, "cannot open key file %s: %s", path, tb_strerror(rc));
    goto out;
  }
  if (fstat(fd, &st) != 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot stat key file %s", path);
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = tb_errf(eb, TB_ECORRUPT, "key file %s is not a regular file", path);
    goto out;
  }
  if (st.st_uid != geteuid()) {
    rc = tb_errf(eb, TB_EPERM, "key file %s belongs to another user (uid %u)", path, (unsigned)st.st_uid);
    goto out;
  }
  if (st.st_mode & 077) {
    rc = tb_errf(eb, TB_EPERM, "key file %s has mode %04o: group and others must not read it; run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
    goto out;
  }
  if (st.st_size > KEY_FILE_MAX) {
    rc = tb_errf(eb, TB_ECORRUPT, "key file %s is larger than %d bytes", path, KEY_FILE_MAX);
    goto out;
  }
  text = tb_malloc((size_t)st.st_size + 1);
  if (text == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  while (len < (size_t)st.st_size) {
    ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  text[len] = '\0';
  char why[160] = "";
  tb_errbuf_t inner = {why, sizeof why};
  rc = tb_auth_key_from_pem(text, len, out, &inner);
  if (rc != 0) rc = tb_errf(eb, rc, "key file %s: %s", path, why);
out:
  if (text) {
    sodium_memzero(text, len);
    tb_free(text);
  }
  if (fd >= 0) close(fd);
  return rc;
}

/* Creates the directory holding `path` if it is missing (one level, mode 0700). */
static int ensure_parent(const char *path, tb_errbuf_t *eb) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash == NULL || slash == path) return 0;
  size_t n = (size_t)(slash - path);
  if (n >= sizeof dir) return tb_errf(eb, TB_ENAMETOOLONG, "key file path is too long");
  memcpy(dir, path, n);
  dir[n] = '\0';
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    int rc = tb_err_from_errno(errno);
    return tb_errf(eb, rc, "cannot create directory %s: %s", dir, tb_strerror(rc));
  }
  return 0;
}

static void sync_parent(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash == NULL) snprintf(dir, sizeof dir, ".");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

int tb_auth_key_load_or_create(const char *path, tb_auth_key_t **out, bool *created, tb_errbuf_t *eb) {
  tb_auth_key_t *key = NULL;
  tb_buf_t pem;
  char tmp[4200];
  int fd = -1, rc;
  bool tmp_made = false;
  tb_buf_init(&pem, 4096);
  if (created) *created = false;
  rc = tb_auth_key_load(path, out, eb);
  if (rc != TB_ENOENT) goto out;
  if ((rc = ensure_parent(path, eb)) != 0) goto out;
  if ((rc = tb_auth_key_generate(&key)) != 0) goto out;
  if ((rc = tb_auth_key_private_pem(key, &pem)) != 0) goto out;
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%08x", path, (long)getpid(), randombytes_random());
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    rc = tb_err_from_errno(errno);
    rc = tb_errf(eb, rc, "cannot create key file %s: %s", tmp, tb_strerror(rc));
    goto out;
  }
  tmp_made = true;
  if (fchmod(fd, 0600) != 0) { /* whatever the umask was */
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot set the mode of %s", tmp);
    goto out;
  }
  for (size_t off = 0; off < pem.len;) {
    ssize_t n = write(fd, pem.data + off, pem.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = tb_err_from_errno(errno);
      rc = tb_errf(eb, rc, "cannot write key file %s: %s", tmp, tb_strerror(rc));
      goto out;
    }
    off += (size_t)n;
  }
  if (fsync(fd) != 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot sync key file %s", tmp);
    goto out;
  }
  close(fd);
  fd = -1;
  if (link(tmp, path) != 0) {
    int e = errno;
    if (e == EEXIST) { /* someone else created it first: theirs wins */
      rc = tb_auth_key_load(path, out, eb);
      goto out;
    }
    rc = tb_errf(eb, tb_err_from_errno(e), "cannot create key file %s: %s", path, tb_strerror(tb_err_from_errno(e)));
    goto out;
  }
  sync_parent(path);
  *out = key;
  key = NULL;
  if (created) *created = true;
  rc = 0;
out:
  if (fd >= 0) close(fd);
  if (tmp_made) unlink(tmp);
  if (pem.data) sodium_memzero(pem.data, pem.len);
  tb_buf_deinit(&pem);
  tb_auth_key_free(key);
  return rc;
}
