/*
 * blake3.h — the BLAKE3 hash function: plain hashing, keyed hashing (a MAC), key
 * derivation, and output of any length (XOF).
 *
 * This is a portable C implementation with no SIMD and no threads; it produces exactly
 * the bytes of the reference implementation and of the `b3sum` tool, which the tests
 * check over thousands of inputs. Tabbify uses it where a value must be derived the same
 * way by every program, most visibly the app address (ula.h). The hasher state is a
 * public struct so it can live on the stack and needs no allocation; nothing here can
 * fail. docs/internals/IDENTITY.md has the implementation notes.
 */
#ifndef TB_BLAKE3_H
#define TB_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

/** Length in bytes of a default BLAKE3 digest, and of a key. */
#define TB_BLAKE3_OUT_LEN 32
#define TB_BLAKE3_KEY_LEN 32
/** Bytes in one block (the compression function's input) and in one chunk (a leaf). */
#define TB_BLAKE3_BLOCK_LEN 64
#define TB_BLAKE3_CHUNK_LEN 1024
/*
 * Depth of the chaining-value stack: 2^54 chunks of 1 KiB is 2^64 bytes, the most a
 * 64-bit length can describe, and the stack never holds more than one entry per level.
 */
#define TB_BLAKE3_MAX_DEPTH 54

/**
 * Hasher state. Every field is private: initialise it with one of the tb_blake3_init*
 * functions and touch it only through this API. It owns no resources, so it may be
 * copied (to fork a hash of a common prefix) and simply dropped when no longer needed.
 * Not thread-safe: one hasher belongs to one thread at a time.
 */
typedef struct tb_blake3 {
  uint32_t key[8];                  /* key words: the IV, the caller's key or the derived key */
  uint32_t cv[8];                   /* chaining value of the chunk being filled */
  uint64_t chunk_counter;           /* index of the chunk being filled */
  uint8_t buf[TB_BLAKE3_BLOCK_LEN]; /* the current block's bytes not yet compressed */
  uint8_t buf_len;                  /* bytes in buf */
  uint8_t blocks_compressed;        /* blocks of the current chunk already compressed */
  uint8_t flags;                    /* mode flags: keyed hash, or which derive-key stage */
  uint8_t cv_stack_len;             /* entries in cv_stack */
  uint32_t cv_stack[TB_BLAKE3_MAX_DEPTH][8]; /* subtree chaining values awaiting a parent */
} tb_blake3_t;

/** Starts a plain (unkeyed) hash. `h` is caller-owned storage. */
void tb_blake3_init(tb_blake3_t *h);

/**
 * Starts a keyed hash (BLAKE3's MAC mode) with the 32-byte `key`, which is copied; the
 * caller may wipe it after this returns.
 */
void tb_blake3_init_keyed(tb_blake3_t *h, const uint8_t key[TB_BLAKE3_KEY_LEN]);

/**
 * Starts key derivation: the material fed with tb_blake3_update is turned into key bytes
 * specific to `context`, a NUL-terminated string that should be hard-coded, globally
 * unique and application-specific ("tabbify 2025-06-01 session keys"), never secret and
 * never derived from input. The string is hashed here and not kept.
 */
void tb_blake3_init_derive_key(tb_blake3_t *h, const char *context);

/**
 * Feeds `len` bytes at `data` (borrowed for the call only). May be called any number of
 * times with pieces of any size, including 0 (when `data` may be NULL); the result depends
 * only on the concatenation.
 */
void tb_blake3_update(tb_blake3_t *h, const void *data, size_t len);

/**
 * Writes the first `out_len` bytes of the output stream to `out`. Any length is valid:
 * 32 bytes is the standard digest, a shorter output is a prefix of a longer one. `h` is
 * not modified, so this may be called repeatedly and more input may be added afterwards.
 */
void tb_blake3_final(const tb_blake3_t *h, uint8_t *out, size_t out_len);

/** One-shot convenience: the 32-byte plain hash of `len` bytes at `data` into `out`. */
void tb_blake3_hash(const void *data, size_t len, uint8_t out[TB_BLAKE3_OUT_LEN]);

#endif /* TB_BLAKE3_H */
