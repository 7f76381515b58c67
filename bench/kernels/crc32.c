/*
 * crc32.c — CRC-32 (IEEE 802.3, reflected, the one zlib and PNG use), byte at a time
 * through a 256-entry table built at run time, over a generated buffer, many passes.
 *
 * Exercises: the classic table-lookup loop: a byte load, xor, shift, and a
 * data-dependent i32 load from a small table per input byte.
 */
#include "kernel.h"

#define BUF_SIZE 65536u

static uint32_t table[256];
static uint8_t buf[BUF_SIZE];

static void make_table(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
}

static uint32_t crc32(uint32_t crc, const uint8_t *p, uint32_t n) {
  crc = ~crc;
  while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t run(void) {
  uint32_t rounds = KB_SIZE(2000u, 200u) * kb_one();
  uint32_t seed = 0x1badb002u, h = 0;
  make_table();
  /* The check value every CRC-32 implementation must produce. */
  if (crc32(0, (const uint8_t *)"123456789", 9) != 0xcbf43926u) return 0;
  for (uint32_t i = 0; i < BUF_SIZE; i++) buf[i] = (uint8_t)kb_rand(&seed);
  uint32_t crc = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    /* Chain the passes and change one byte each time, so no pass repeats another. */
    buf[r % BUF_SIZE] ^= (uint8_t)crc;
    crc = crc32(crc, buf, BUF_SIZE);
    h = kb_mix(h, crc);
  }
  return h;
}
