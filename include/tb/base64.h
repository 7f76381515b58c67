/*
 * base64.h — base64url (RFC 4648 §5), as JWTs and our tokens use it.
 *
 * Encoding writes no padding. Decoding is strict, because tokens compared as text must
 * have exactly one spelling: it accepts only the URL-safe alphabet, accepts '=' padding
 * only where padding belongs, and rejects encodings whose unused trailing bits are not
 * zero.
 */
#ifndef TB_BASE64_H
#define TB_BASE64_H

#include <stddef.h>
#include <stdint.h>

/** Characters needed to encode `n` bytes without padding (excluding the NUL). */
#define TB_BASE64URL_ENCODED_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
/** Upper bound on the bytes that `n` encoded characters decode to. */
#define TB_BASE64URL_DECODED_MAX(n) (((n) / 4) * 3 + 2)

/**
 * Encodes `len` bytes at `src` into `out`, which must hold
 * TB_BASE64URL_ENCODED_LEN(len) + 1 bytes; writes a NUL and returns the text length.
 */
size_t tb_base64url_encode(const void *src, size_t len, char *out);

/**
 * Decodes `len` characters at `src` into `out` (capacity `cap`), storing the byte
 * count in *out_len. Returns 0, TB_EPARSE for any character outside the alphabet,
 * misplaced padding, an impossible length or non-zero trailing bits, and TB_ETOOBIG
 * when `cap` is too small.
 */
int tb_base64url_decode(const char *src, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif /* TB_BASE64_H */
