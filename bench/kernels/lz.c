/*
 * lz.c — an LZ77 compressor in the style of LZ4/snappy (a hash table of the last
 * position of each 4-byte sequence, greedy matching, literal runs and back-references),
 * its decompressor, and a round-trip check, over a generated semi-compressible buffer.
 *
 * Exercises: unaligned 32-bit loads, multiplicative hashing, a large table indexed by
 * hash, match-extension loops that exit at an unpredictable point, byte copies with
 * overlapping source and destination (runs), and many small branches.
 *
 * Token format: one byte; top bit 0 means "literal run of (byte + 1) bytes follow";
 * top bit 1 means "match of length (byte & 0x7f) + MIN_MATCH at the 16-bit distance
 * that follows, little-endian".
 */
#include "kernel.h"

#define BUF_SIZE 131072u
#define MIN_MATCH 4u
#define MAX_MATCH (0x7fu + MIN_MATCH)
#define MAX_DIST 65535u
#define HASH_BITS 14
#define MAX_LITERALS 128u

static uint8_t input[BUF_SIZE];
static uint8_t packed[BUF_SIZE + BUF_SIZE / 64 + 16];
static uint8_t output[BUF_SIZE];
static uint32_t head[1u << HASH_BITS];

static inline uint32_t load32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t hash4(uint32_t v) { return (v * 2654435761u) >> (32 - HASH_BITS); }

/* Text-like data: words from a small vocabulary, some mutated, some random bytes. */
static void generate(uint32_t seed) {
  static const char words[] = "the quick brown fox jumps over lazy dog wasm engine "
                              "interpreter frame slot branch table memory grow call ";
  const uint32_t nwords = sizeof words - 1;
  uint32_t i = 0;
  while (i < BUF_SIZE) {
    uint32_t r = kb_rand(&seed);
    if ((r & 7) == 0) {
      input[i++] = (uint8_t)(r >> 8); /* noise: about one byte in eight is random */
    } else {
      uint32_t start = (r >> 8) % nwords, len = 3 + ((r >> 20) & 7);
      for (uint32_t k = 0; k < len && i < BUF_SIZE; k++) input[i++] = (uint8_t)words[(start + k) % nwords];
    }
  }
}

static uint32_t flush_literals(uint8_t *out, uint32_t o, const uint8_t *lit, uint32_t n) {
  while (n > 0) {
    uint32_t run = n < MAX_LITERALS ? n : MAX_LITERALS;
    out[o++] = (uint8_t)(run - 1);
    kb_memcpy(out + o, lit, run);
    o += run;
    lit += run;
    n -= run;
  }
  return o;
}

static uint32_t compress(const uint8_t *in, uint32_t n, uint8_t *out) {
  uint32_t i = 0, o = 0, anchor = 0;
  for (uint32_t k = 0; k < (1u << HASH_BITS); k++) head[k] = 0xffffffffu;
  while (i + MIN_MATCH <= n) {
    uint32_t v = load32(in + i), hsh = hash4(v), cand = head[hsh];
    head[hsh] = i;
    if (cand != 0xffffffffu && i - cand <= MAX_DIST && load32(in + cand) == v) {
      uint32_t len = MIN_MATCH;
      while (i + len < n && len < MAX_MATCH && in[cand + len] == in[i + len]) len++;
      o = flush_literals(out, o, in + anchor, i - anchor);
      uint32_t dist = i - cand;
      out[o++] = (uint8_t)(0x80u | (len - MIN_MATCH));
      out[o++] = (uint8_t)dist;
      out[o++] = (uint8_t)(dist >> 8);
      /* Insert a couple of positions inside the match so later matches can find them. */
      if (i + len + MIN_MATCH <= n) {
        head[hash4(load32(in + i + 1))] = i + 1;
        head[hash4(load32(in + i + len - 1))] = i + len - 1;
      }
      i += len;
      anchor = i;
    } else {
      i++;
    }
  }
  return flush_literals(out, o, in + anchor, n - anchor);
}

/* Returns the decompressed size, or 0xffffffff when the stream is malformed. */
static uint32_t decompress(const uint8_t *in, uint32_t n, uint8_t *out, uint32_t cap) {
  uint32_t i = 0, o = 0;
  while (i < n) {
    uint32_t t = in[i++];
    if (t & 0x80u) {
      if (i + 2 > n) return 0xffffffffu;
      uint32_t len = (t & 0x7fu) + MIN_MATCH, dist = in[i] | (uint32_t)in[i + 1] << 8;
      i += 2;
      if (dist == 0 || dist > o || len > cap - o) return 0xffffffffu;
      /* Byte by byte on purpose: source and destination overlap when dist < len. */
      for (uint32_t k = 0; k < len; k++, o++) out[o] = out[o - dist];
    } else {
      uint32_t len = t + 1;
      if (len > n - i || len > cap - o) return 0xffffffffu;
      kb_memcpy(out + o, in + i, len);
      i += len;
      o += len;
    }
  }
  return o;
}

uint32_t run(void) {
  uint32_t rounds = KB_SIZE(150u, 15u) * kb_one();
  uint32_t h = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    generate(0x5eed0000u + r);
    uint32_t size = compress(input, BUF_SIZE, packed);
    uint32_t back = decompress(packed, size, output, BUF_SIZE);
    if (back != BUF_SIZE || kb_memcmp(input, output, BUF_SIZE) != 0) return 0; /* round trip failed */
    h = kb_mix(h, size);
    for (uint32_t i = 0; i < size; i += 61) h = kb_mix(h, packed[i]);
  }
  return h;
}
