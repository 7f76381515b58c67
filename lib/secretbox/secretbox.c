/*
 * secretbox.c — the secrets key file and sealing of secret values (include/tb/secretbox.h).
 *
 * Key file format, text so that it survives copying: one line
 *   tabbify-secrets-key-v1 <43 characters of base64url: the 32-byte key>
 * Key id: the first 8 bytes of BLAKE2b(key = the key, message "tabbify secrets key id"),
 * in hex: it names the key in events without revealing anything about it.
 * Associated data of every seal: "tabbify secret v1" NUL, the 16 app-id bytes, the name.
 */
#include "tb/secretbox.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "tb/base64.h"

#define KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define MAGIC "tabbify-secrets-key-v1 "
#define AD_PREFIX "tabbify secret v1"

struct tb_secretbox {
  uint8_t *key; /* sodium_malloc'd, read-only after load */
  char key_id[17];
};

int tb_secret_name_check(const char *name, tb_errbuf_t *eb) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > TB_SECRET_NAME_MAX)
    return tb_errf(eb, TB_EINVAL, "a secret name must be 1 to %d characters", TB_SECRET_NAME_MAX);
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return tb_errf(eb, TB_EINVAL, "secret name \"%.*s\" must be letters, digits and '_', not starting with a digit",
                     (int)(n > 64 ? 64 : n), name);
  }
  return 0;
}

static int load_key(tb_secretbox_t *box, const char *path, tb_errbuf_t *eb) {
  char text[128];
  struct stat st;
  int rc = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) return TB_ENOENT; /* the caller creates it */
  if (fd < 0) return tb_errf(eb, tb_err_from_errno(errno), "cannot open %s: %s", path, strerror(errno));
  if (fstat(fd, &st) != 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "%s: %s", path, strerror(errno));
    goto out;
  }
  if (st.st_mode & 077) {
    rc = tb_errf(eb, TB_EPERM, "%s can be read by other users (mode %03o); run chmod 600 %s", path,
                 (unsigned)(st.st_mode & 0777), path);
    goto out;
  }
  ssize_t n = read(fd, text, sizeof text - 1);
  if (n < 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "%s: %s", path, strerror(errno));
    goto out;
  }
  text[n] = '\0';
  size_t ml = strlen(MAGIC), el = TB_BASE64URL_ENCODED_LEN(KEY_LEN);
  size_t got = 0;
  if ((size_t)n < ml + el || memcmp(text, MAGIC, ml) != 0 ||
      ((size_t)n > ml + el && text[ml + el] != '\n') ||
      tb_base64url_decode(text + ml, el, box->key, KEY_LEN, &got) != 0 || got != KEY_LEN) {
    rc = tb_errf(eb, TB_ECORRUPT, "%s is not a Tabbify secrets key file", path);
    goto out;
  }
out:
  sodium_memzero(text, sizeof text);
  close(fd);
  return rc;
}

/* Writes a new key to a temporary file and links it to `path`; TB_EEXIST if another
 * program got there first. */
static int create_key(tb_secretbox_t *box, const char *dir, const char *path, tb_errbuf_t *eb) {
  char tmp[512], text[128];
  snprintf(tmp, sizeof tmp, "%s/.secrets.key.%d.tmp", dir, (int)getpid());
  randombytes_buf(box->key, KEY_LEN);
  size_t ml = strlen(MAGIC);
  memcpy(text, MAGIC, ml);
  size_t el = tb_base64url_encode(box->key, KEY_LEN, text + ml);
  text[ml + el] = '\n';
  size_t len = ml + el + 1;
  int rc = 0;
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create %s: %s", tmp, strerror(errno));
    goto out;
  }
  if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
    rc = tb_errf(eb, tb_err_from_errno(errno ? errno : EIO), "cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    goto out;
  }
  close(fd);
  if (link(tmp, path) != 0) {
    rc = errno == EEXIST ? TB_EEXIST : tb_errf(eb, tb_err_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    unlink(tmp);
    goto out;
  }
  unlink(tmp);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
out:
  sodium_memzero(text, sizeof text);
  return rc;
}

int tb_secretbox_open(const char *state_dir, tb_secretbox_t **out, tb_errbuf_t *eb) {
  *out = NULL;
  if (sodium_init() < 0) return tb_errf(eb, TB_EINTERNAL, "libsodium cannot initialise");
  char path[512];
  snprintf(path, sizeof path, "%s/secrets.key", state_dir);
  tb_secretbox_t *box = tb_calloc(1, sizeof *box);
  if (box == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  int rc = 0;
  box->key = sodium_malloc(KEY_LEN);
  if (box->key == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "cannot allocate protected memory for the key");
    goto out;
  }
  if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
    rc = tb_errf(eb, tb_err_from_errno(errno), "cannot create %s: %s", state_dir, strerror(errno));
    goto out;
  }
  rc = load_key(box, path, eb);
  if (rc == TB_ENOENT) {
    rc = create_key(box, state_dir, path, eb);
    if (rc == TB_EEXIST) rc = load_key(box, path, eb);
  }
  if (rc) goto out;
  uint8_t id[8];
  static const char id_msg[] = "tabbify secrets key id";
  crypto_generichash(id, sizeof id, (const uint8_t *)id_msg, sizeof id_msg - 1, box->key, KEY_LEN);
  sodium_bin2hex(box->key_id, sizeof box->key_id, id, sizeof id);
  sodium_mprotect_readonly(box->key);
out:
  if (rc) {
    tb_secretbox_close(box);
    return rc;
  }
  *out = box;
  return 0;
}

void tb_secretbox_close(tb_secretbox_t *box) {
  if (box == NULL) return;
  sodium_free(box->key); /* wipes */
  tb_free(box);
}

const char *tb_secretbox_key_id(const tb_secretbox_t *box) { return box->key_id; }

/* "tabbify secret v1" NUL | app (16) | name. */
static size_t make_ad(uint8_t *ad, const tb_uuid_t *app, const char *name) {
  size_t pl = sizeof AD_PREFIX, nl = strlen(name);
  memcpy(ad, AD_PREFIX, pl);
  memcpy(ad + pl, app->b, 16);
  memcpy(ad + pl + 16, name, nl);
  return pl + 16 + nl;
}

int tb_secretbox_seal(const tb_secretbox_t *box, const tb_uuid_t *app, const char *name, const void *value, size_t len,
                      json_t **payload, tb_errbuf_t *eb) {
  *payload = NULL;
  int rc = tb_secret_name_check(name, eb);
  if (rc) return rc;
  if (len > TB_SECRET_VALUE_MAX)
    return tb_errf(eb, TB_ETOOBIG, "secret %s is %zu bytes; the limit is %d", name, len, TB_SECRET_VALUE_MAX);
  uint8_t nonce[NONCE_LEN], ad[sizeof AD_PREFIX + 16 + TB_SECRET_NAME_MAX];
  char nonce_b64[TB_BASE64URL_ENCODED_LEN(NONCE_LEN) + 1], app_text[TB_UUID_STR_LEN + 1];
  size_t ct_len = len + TAG_LEN;
  uint8_t *ct = tb_malloc(ct_len);
  char *ct_b64 = tb_malloc(TB_BASE64URL_ENCODED_LEN(ct_len) + 1);
  json_t *p = NULL;
  if (ct == NULL || ct_b64 == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory");
    goto out;
  }
  randombytes_buf(nonce, sizeof nonce);
  size_t adl = make_ad(ad, app, name);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, value, len, ad, adl, NULL, nonce, box->key);
  tb_base64url_encode(nonce, sizeof nonce, nonce_b64);
  tb_base64url_encode(ct, (size_t)clen, ct_b64);
  tb_uuid_format(app, app_text);
  p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "app", app_text, "name", name, "alg", TB_SECRETBOX_ALG, "key_id",
                box->key_id, "nonce", nonce_b64, "ciphertext", ct_b64);
  if (p == NULL) rc = tb_errf(eb, TB_ENOMEM, "out of memory");
out:
  tb_free(ct);
  tb_free(ct_b64);
  *payload = p;
  return rc;
}

int tb_secretbox_unseal(const tb_secretbox_t *box, const tb_uuid_t *app, const char *name, const char *key_id,
                        const char *nonce, const char *ciphertext, uint8_t **value, size_t *len, tb_errbuf_t *eb) {
  *value = NULL;
  *len = 0;
  int rc = tb_secret_name_check(name, eb);
  if (rc) return rc;
  if (key_id == NULL || strcmp(key_id, box->key_id) != 0)
    return tb_errf(eb, TB_ENOTFOUND, "secret %s was sealed with key %s, not with this node's key %s", name,
                   key_id ? key_id : "(none)", box->key_id);
  uint8_t n[NONCE_LEN], ad[sizeof AD_PREFIX + 16 + TB_SECRET_NAME_MAX];
  size_t nl = 0, cl = strlen(ciphertext ? ciphertext : "");
  if (nonce == NULL || tb_base64url_decode(nonce, strlen(nonce), n, sizeof n, &nl) != 0 || nl != NONCE_LEN)
    return tb_errf(eb, TB_EPARSE, "secret %s: the nonce is not %d bytes of base64url", name, NONCE_LEN);
  if (cl > TB_BASE64URL_ENCODED_LEN(TB_SECRET_VALUE_MAX + TAG_LEN))
    return tb_errf(eb, TB_ETOOBIG, "secret %s: the ciphertext is too long", name);
  size_t cap = TB_BASE64URL_DECODED_MAX(cl), ctl = 0;
  uint8_t *ct = tb_malloc(cap ? cap : 1);
  uint8_t *plain = NULL;
  if (ct == NULL) return tb_errf(eb, TB_ENOMEM, "out of memory");
  if (tb_base64url_decode(ciphertext, cl, ct, cap, &ctl) != 0 || ctl < TAG_LEN) {
    rc = tb_errf(eb, TB_EPARSE, "secret %s: the ciphertext is not valid base64url", name);
    goto out;
  }
  plain = sodium_malloc(ctl - TAG_LEN + 1);
  if (plain == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory");
    goto out;
  }
  size_t adl = make_ad(ad, app, name);
  unsigned long long pl = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &pl, NULL, ct, ctl, ad, adl, n, box->key) != 0) {
    rc = tb_errf(eb, TB_EAUTH, "secret %s does not decrypt: it was sealed for another app or name, or is damaged", name);
    sodium_free(plain);
    plain = NULL;
    goto out;
  }
  plain[pl] = '\0';
  *value = plain;
  *len = (size_t)pl;
out:
  tb_free(ct);
  return rc;
}

void tb_secretbox_free_value(uint8_t *value, size_t len) {
  if (value) sodium_free(value);
}
