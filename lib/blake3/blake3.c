/*
 * blake3.c — portable BLAKE3 (include/tb/blake3.h).
 *
 * The structure follows the specification's reference implementation: input is cut into
 * 1 KiB chunks, each chunk is hashed as a chain of 64-byte blocks into a chaining value
 * (CV), and CVs are combined pairwise into a binary tree whose root produces the output
 * stream. Two choices keep it fast without SIMD. The compression function runs its seven
 * rounds fully unrolled, reading message words through a precomputed schedule table
 * instead of permuting the message between rounds, so every index is a compile-time
 * constant and the state stays in registers. And input is compressed straight from the
 * caller's buffer; only the final, possibly partial block of each update is copied, since
 * BLAKE3 must know whether a block is the last one of its chunk before compressing it.
 */
#include "tb/blake3.h"

#include <string.h>

/* Domain-separation flags, from the specification. */
enum {
  CHUNK_START = 1 << 0,
  CHUNK_END = 1 << 1,
  PARENT = 1 << 2,
  ROOT = 1 << 3,
  KEYED_HASH = 1 << 4,
  DERIVE_KEY_CONTEXT = 1 << 5,
  DERIVE_KEY_MATERIAL = 1 << 6,
};

static const uint32_t IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                               0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

/*
 * Which message word each round feeds to the G functions: row r is the specification's
 * permutation applied r times to 0..15. Reading through this table is equivalent to
 * permuting the message after each round, without moving any data.
 */
static const uint8_t SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t rotr32(uint32_t w, unsigned c) { return (w >> c) | (w << (32 - c)); }

/* Byte-wise little-endian access: correct on any host, and compilers turn it into one
 * plain load or store on little-endian ones. */
static inline uint32_t load32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t w) {
  p[0] = (uint8_t)w;
  p[1] = (uint8_t)(w >> 8);
  p[2] = (uint8_t)(w >> 16);
  p[3] = (uint8_t)(w >> 24);
}

static inline void load_block(uint32_t m[16], const uint8_t block[TB_BLAKE3_BLOCK_LEN]) {
  for (int i = 0; i < 16; i++) m[i] = load32(block + 4 * i);
}

#define G(a, b, c, d, x, y)         \
  do {                              \
    v[a] = v[a] + v[b] + (x);       \
    v[d] = rotr32(v[d] ^ v[a], 16); \
    v[c] = v[c] + v[d];             \
    v[b] = rotr32(v[b] ^ v[c], 12); \
    v[a] = v[a] + v[b] + (y);       \
    v[d] = rotr32(v[d] ^ v[a], 8);  \
    v[c] = v[c] + v[d];             \
    v[b] = rotr32(v[b] ^ v[c], 7);  \
  } while (0)

/* One round: the columns, then the diagonals. */
#define ROUND(r)                                             \
  do {                                                       \
    G(0, 4, 8, 12, m[SCHEDULE[r][0]], m[SCHEDULE[r][1]]);    \
    G(1, 5, 9, 13, m[SCHEDULE[r][2]], m[SCHEDULE[r][3]]);    \
    G(2, 6, 10, 14, m[SCHEDULE[r][4]], m[SCHEDULE[r][5]]);   \
    G(3, 7, 11, 15, m[SCHEDULE[r][6]], m[SCHEDULE[r][7]]);   \
    G(0, 5, 10, 15, m[SCHEDULE[r][8]], m[SCHEDULE[r][9]]);   \
    G(1, 6, 11, 12, m[SCHEDULE[r][10]], m[SCHEDULE[r][11]]); \
    G(2, 7, 8, 13, m[SCHEDULE[r][12]], m[SCHEDULE[r][13]]);  \
    G(3, 4, 9, 14, m[SCHEDULE[r][14]], m[SCHEDULE[r][15]]);  \
  } while (0)

/*
 * The compression function up to, not including, the final feed-forward. It is forced
 * inline into its two callers so the state array becomes sixteen registers (or spill
 * slots the compiler picks); called out of line it would live in memory behind a
 * pointer, which costs about 40% at -O2.
 */
#define ALWAYS_INLINE inline __attribute__((always_inline))
static ALWAYS_INLINE void compress_rounds(uint32_t v[16], const uint32_t cv[8],
                                          const uint32_t m[16], uint8_t block_len, uint64_t counter,
                                          uint8_t flags) {
  for (int i = 0; i < 8; i++) v[i] = cv[i];
  v[8] = IV[0];
  v[9] = IV[1];
  v[10] = IV[2];
  v[11] = IV[3];
  v[12] = (uint32_t)counter;
  v[13] = (uint32_t)(counter >> 32);
  v[14] = block_len;
  v[15] = flags;
  ROUND(0);
  ROUND(1);
  ROUND(2);
  ROUND(3);
  ROUND(4);
  ROUND(5);
  ROUND(6);
}

/* Compresses one block into the chaining value `cv`, which it replaces. */
static void compress_in_place(uint32_t cv[8], const uint32_t m[16], uint8_t block_len,
                              uint64_t counter, uint8_t flags) {
  uint32_t v[16];
  compress_rounds(v, cv, m, block_len, counter, flags);
  for (int i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

/* The full 64-byte output of one compression, used for root output blocks only. */
static void compress_xof(const uint32_t cv[8], const uint32_t m[16], uint8_t block_len,
                         uint64_t counter, uint8_t flags, uint8_t out[64]) {
  uint32_t v[16];
  compress_rounds(v, cv, m, block_len, counter, flags);
  for (int i = 0; i < 8; i++) {
    store32(out + 4 * i, v[i] ^ v[i + 8]);
    store32(out + 4 * (i + 8), v[i + 8] ^ cv[i]);
  }
}

/*
 * A node whose compression has been prepared but not run: the last one of a chunk or a
 * parent. It stays unevaluated until we know whether it is the root, because the root is
 * compressed with the ROOT flag and may be asked for more than 32 bytes.
 */
typedef struct output {
  uint32_t cv[8];
  uint32_t m[16];
  uint64_t counter;
  uint8_t block_len;
  uint8_t flags;
} output_t;

static void output_cv(const output_t *o, uint32_t cv[8]) {
  memcpy(cv, o->cv, sizeof o->cv);
  compress_in_place(cv, o->m, o->block_len, o->counter, o->flags);
}

static void output_root_bytes(const output_t *o, uint8_t *out, size_t out_len) {
  uint8_t block[64];
  for (uint64_t counter = 0; out_len > 0; counter++) {
    compress_xof(o->cv, o->m, o->block_len, counter, o->flags | ROOT, block);
    size_t n = out_len < sizeof block ? out_len : sizeof block;
    memcpy(out, block, n);
    out += n;
    out_len -= n;
  }
}

static output_t parent_output(const uint32_t left[8], const uint32_t right[8],
                              const uint32_t key[8], uint8_t flags) {
  output_t o;
  memcpy(o.cv, key, sizeof o.cv);
  memcpy(o.m, left, 8 * sizeof(uint32_t));
  memcpy(o.m + 8, right, 8 * sizeof(uint32_t));
  o.counter = 0;
  o.block_len = TB_BLAKE3_BLOCK_LEN;
  o.flags = flags | PARENT;
  return o;
}

/* ---- The chunk being filled: h->cv, h->buf, h->blocks_compressed, h->chunk_counter. ---- */

static inline size_t chunk_len(const tb_blake3_t *h) {
  return (size_t)h->blocks_compressed * TB_BLAKE3_BLOCK_LEN + h->buf_len;
}

static inline uint8_t chunk_start_flag(const tb_blake3_t *h) {
  return h->blocks_compressed == 0 ? CHUNK_START : 0;
}

/* Compresses a block of the current chunk that is known not to be its last. */
static void chunk_compress_block(tb_blake3_t *h, const uint8_t block[TB_BLAKE3_BLOCK_LEN]) {
  uint32_t m[16];
  load_block(m, block);
  compress_in_place(h->cv, m, TB_BLAKE3_BLOCK_LEN, h->chunk_counter,
                    h->flags | chunk_start_flag(h));
  h->blocks_compressed++;
}

/* Adds `len` bytes to the current chunk; the caller guarantees they fit. A block is only
 * compressed once a byte past it has arrived, so the last block stays in buf. */
static void chunk_update(tb_blake3_t *h, const uint8_t *in, size_t len) {
  if (h->buf_len > 0) {
    size_t take = TB_BLAKE3_BLOCK_LEN - h->buf_len;
    if (take > len) take = len;
    memcpy(h->buf + h->buf_len, in, take);
    h->buf_len += (uint8_t)take;
    in += take;
    len -= take;
    if (len == 0) return;
    chunk_compress_block(h, h->buf);
    h->buf_len = 0;
  }
  while (len > TB_BLAKE3_BLOCK_LEN) {
    chunk_compress_block(h, in);
    in += TB_BLAKE3_BLOCK_LEN;
    len -= TB_BLAKE3_BLOCK_LEN;
  }
  memcpy(h->buf, in, len);
  h->buf_len = (uint8_t)len;
}

static output_t chunk_output(const tb_blake3_t *h) {
  uint8_t block[TB_BLAKE3_BLOCK_LEN] = {0};
  output_t o;
  memcpy(block, h->buf, h->buf_len);
  memcpy(o.cv, h->cv, sizeof o.cv);
  load_block(o.m, block);
  o.counter = h->chunk_counter;
  o.block_len = h->buf_len;
  o.flags = h->flags | chunk_start_flag(h) | CHUNK_END;
  return o;
}

static void chunk_reset(tb_blake3_t *h, uint64_t counter) {
  memcpy(h->cv, h->key, sizeof h->cv);
  h->chunk_counter = counter;
  h->buf_len = 0;
  h->blocks_compressed = 0;
}

/*
 * Records the CV of a finished chunk, `total_chunks` being the number finished so far.
 * Each trailing zero bit of that count is a completed subtree, so that many stacked CVs
 * are merged into parents first. This is lazy merging: the newest CV always stays on the
 * stack unmerged, because only final() knows which parent will be the root.
 */
static void push_chunk_cv(tb_blake3_t *h, uint32_t cv[8], uint64_t total_chunks) {
  while ((total_chunks & 1) == 0) {
    output_t o = parent_output(h->cv_stack[--h->cv_stack_len], cv, h->key, h->flags);
    output_cv(&o, cv);
    total_chunks >>= 1;
  }
  memcpy(h->cv_stack[h->cv_stack_len++], cv, 8 * sizeof(uint32_t));
}

/* ---- The public API. ---- */

static void hasher_init(tb_blake3_t *h, const uint32_t key[8], uint8_t flags) {
  memcpy(h->key, key, sizeof h->key);
  h->flags = flags;
  h->cv_stack_len = 0;
  chunk_reset(h, 0);
}

void tb_blake3_init(tb_blake3_t *h) { hasher_init(h, IV, 0); }

void tb_blake3_init_keyed(tb_blake3_t *h, const uint8_t key[TB_BLAKE3_KEY_LEN]) {
  uint32_t words[8];
  for (int i = 0; i < 8; i++) words[i] = load32(key + 4 * i);
  hasher_init(h, words, KEYED_HASH);
}

void tb_blake3_init_derive_key(tb_blake3_t *h, const char *context) {
  /* Stage one hashes the context string into a key; stage two hashes the material under
   * it. `h` serves as the stage-one hasher so no second 2 KiB state is needed. */
  uint8_t context_key[TB_BLAKE3_KEY_LEN];
  uint32_t words[8];
  hasher_init(h, IV, DERIVE_KEY_CONTEXT);
  tb_blake3_update(h, context, strlen(context));
  tb_blake3_final(h, context_key, sizeof context_key);
  for (int i = 0; i < 8; i++) words[i] = load32(context_key + 4 * i);
  hasher_init(h, words, DERIVE_KEY_MATERIAL);
}

void tb_blake3_update(tb_blake3_t *h, const void *data, size_t len) {
  const uint8_t *in = data;
  while (len > 0) {
    /* A full chunk followed by more input is not the last one: finish it. */
    if (chunk_len(h) == TB_BLAKE3_CHUNK_LEN) {
      uint32_t cv[8];
      output_t o = chunk_output(h);
      output_cv(&o, cv);
      uint64_t total = h->chunk_counter + 1;
      push_chunk_cv(h, cv, total);
      chunk_reset(h, total);
    }
    /* Whole chunks that are certainly not the last are hashed straight from `in`. */
    while (chunk_len(h) == 0 && len > TB_BLAKE3_CHUNK_LEN) {
      for (int i = 0; i < TB_BLAKE3_CHUNK_LEN / TB_BLAKE3_BLOCK_LEN - 1; i++) {
        chunk_compress_block(h, in);
        in += TB_BLAKE3_BLOCK_LEN;
      }
      uint32_t m[16];
      load_block(m, in);
      in += TB_BLAKE3_BLOCK_LEN;
      compress_in_place(h->cv, m, TB_BLAKE3_BLOCK_LEN, h->chunk_counter, h->flags | CHUNK_END);
      len -= TB_BLAKE3_CHUNK_LEN;
      uint64_t total = h->chunk_counter + 1;
      push_chunk_cv(h, h->cv, total);
      chunk_reset(h, total);
    }
    size_t take = TB_BLAKE3_CHUNK_LEN - chunk_len(h);
    if (take > len) take = len;
    chunk_update(h, in, take);
    in += take;
    len -= take;
  }
}

void tb_blake3_final(const tb_blake3_t *h, uint8_t *out, size_t out_len) {
  if (out_len == 0) return;
  /* The chunk being filled is the rightmost leaf; fold the stack into it from the top. */
  output_t o = chunk_output(h);
  for (size_t i = h->cv_stack_len; i-- > 0;) {
    uint32_t cv[8];
    output_cv(&o, cv);
    o = parent_output(h->cv_stack[i], cv, h->key, h->flags);
  }
  output_root_bytes(&o, out, out_len);
}

void tb_blake3_hash(const void *data, size_t len, uint8_t out[TB_BLAKE3_OUT_LEN]) {
  tb_blake3_t h;
  tb_blake3_init(&h);
  tb_blake3_update(&h, data, len);
  tb_blake3_final(&h, out, TB_BLAKE3_OUT_LEN);
}
