/*
 * record.c — the checksum every stored event carries (eventlog_int.h).
 *
 * CRC-32C, with the SSE 4.2 instruction when the CPU has it (a few GB/s, so verifying a
 * million events on replay costs milliseconds) and slicing-by-8 tables otherwise. A
 * checksum covers a fixed little-endian encoding of every field of the event, offset
 * included, and is seeded with the previous event's checksum, so the sums form a chain:
 * a changed, missing or reordered event breaks it. This detects damage, not tampering;
 * the log is not a cryptographic ledger. Pure functions, no I/O.
 */
#include <string.h>

#include "eventlog_int.h"

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static bool have_sse42;

static void table_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
  __builtin_cpu_init();
  have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
          table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
          table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
#endif

uint32_t tb__crc32c(uint32_t crc, const void *p, size_t n) {
  pthread_once(&table_once, table_init);
  crc = ~crc;
#if defined(__x86_64__)
  if (have_sse42) return ~crc_hw(crc, p, n);
#endif
  return ~crc_soft(crc, p, n);
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Adds a length-prefixed string; NULL is encoded as length 0xffffffff, distinct from "". */
static uint32_t add_str(uint32_t crc, const char *s, size_t len) {
  uint8_t l[4];
  put32(l, s ? (uint32_t)len : 0xffffffffu);
  crc = tb__crc32c(crc, l, 4);
  return s ? tb__crc32c(crc, s, len) : crc;
}

uint32_t tb__event_sum(uint32_t prev, const tb_event_t *ev) {
  /* prev (4) offset (8) id (16) aggregate (16) schema (4) ts (8) */
  uint8_t h[56];
  put32(h, prev);
  put64(h + 4, ev->offset);
  memcpy(h + 12, ev->id.b, 16);
  memcpy(h + 28, ev->aggregate.b, 16);
  put32(h + 44, ev->schema);
  put64(h + 48, (uint64_t)ev->ts_ns);
  uint32_t crc = tb__crc32c(0, h, sizeof h);
  crc = add_str(crc, ev->type, strlen(ev->type));
  crc = add_str(crc, ev->actor, strlen(ev->actor));
  crc = add_str(crc, ev->idem_key, ev->idem_key ? strlen(ev->idem_key) : 0);
  return add_str(crc, ev->payload, ev->payload_len);
}
