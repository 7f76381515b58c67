/*
 * secretbox.h — secret values encrypted at rest.
 *
 * An app's secrets (`tabbify secrets set APP NAME`) are events like everything else, but
 * their values must never be readable from the log, a snapshot, a log line or `tabbify
 * events`. So the value is sealed before it is appended: XChaCha20-Poly1305 (libsodium's
 * crypto_aead_xchacha20poly1305_ietf) under a 256-bit key that the first start creates in
 * <state_dir>/secrets.key (mode 0600), with a fresh random 192-bit nonce per value and the
 * app id and secret name as associated data, so a ciphertext cannot be moved to another
 * app or name. The secret_registered event carries only the key id, the nonce and the
 * ciphertext (EVENTS.md); unsealing happens where the value is handed to the runner.
 *
 * The key stays in memory that libsodium guards (sodium_malloc: guard pages, no core dump,
 * read-only except while loading) and is wiped on close. A key file that group or others
 * can read is refused rather than used.
 */
#ifndef TB_SECRETBOX_H
#define TB_SECRETBOX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"
#include "tb/uuid.h"

/** Largest secret value, in bytes. */
#define TB_SECRET_VALUE_MAX (64 * 1024)
/** Longest secret name: letters, digits and '_', not starting with a digit (an env name). */
#define TB_SECRET_NAME_MAX 128
/** The algorithm name recorded in events. */
#define TB_SECRETBOX_ALG "xchacha20poly1305-ietf"

typedef struct tb_secretbox tb_secretbox_t;

/**
 * Loads <state_dir>/secrets.key, creating it (and state_dir, 0700) with a new random key
 * if it does not exist. Creation is atomic: the key is written to a temporary file, synced
 * and linked into place, so two programs starting at once end up with the same key.
 * Errors: TB_EPERM (the file is readable by group or others), TB_ECORRUPT (not a key
 * file), system errors; a sentence goes to `eb`. Close with tb_secretbox_close.
 */
int tb_secretbox_open(const char *state_dir, tb_secretbox_t **out, tb_errbuf_t *eb);

/** Wipes and frees the key. NULL is fine. */
void tb_secretbox_close(tb_secretbox_t *box);

/** The key's id: 16 hex characters derived from the key (not secret). Valid until close. */
const char *tb_secretbox_key_id(const tb_secretbox_t *box);

/** True when `name` is a valid secret name. */
int tb_secret_name_check(const char *name, tb_errbuf_t *eb);

/**
 * Seals `len` bytes of `value` (borrowed) for the secret `name` of `app` and stores in
 * *payload a new JSON object, the payload of a secret_registered event:
 * {"app","name","alg","key_id","nonce","ciphertext"} with nonce and ciphertext in
 * base64url. The caller json_decref()s it. TB_EINVAL (bad name), TB_ETOOBIG.
 */
int tb_secretbox_seal(const tb_secretbox_t *box, const tb_uuid_t *app, const char *name, const void *value,
                      size_t len, json_t **payload, tb_errbuf_t *eb);

/**
 * Opens a sealed value: `key_id`, `nonce` and `ciphertext` as they appear in the event.
 * On success *value is a new buffer of *len bytes (plus a NUL, not counted) that the
 * caller releases with tb_secretbox_free_value, which wipes it. TB_EAUTH when the
 * ciphertext does not authenticate (wrong key, wrong app or name, damaged), TB_ENOTFOUND
 * when it was sealed under another key, TB_EPARSE for malformed base64.
 */
int tb_secretbox_unseal(const tb_secretbox_t *box, const tb_uuid_t *app, const char *name, const char *key_id,
                        const char *nonce, const char *ciphertext, uint8_t **value, size_t *len, tb_errbuf_t *eb);

/** Wipes and frees a value from tb_secretbox_unseal. NULL is fine. */
void tb_secretbox_free_value(uint8_t *value, size_t len);

#endif /* TB_SECRETBOX_H */
