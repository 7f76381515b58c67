/*
 * sieve.c — the sieve of Eratosthenes over a byte array, repeated.
 *
 * Exercises: byte loads and stores (i32.load8_u / i32.store8) in tight loops with a
 * stride, loop back-edges, and the cost of memory bounds checks.
 */
#include "kernel.h"

#define LIMIT 2000000u

static uint8_t composite[LIMIT + 1];

uint32_t run(void) {
  uint32_t rounds = KB_SIZE(45u, 5u) * kb_one();
  uint32_t h = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    /* Each round sieves a slightly different range, so no round repeats another. */
    uint32_t limit = LIMIT - r * 1000u;
    kb_memset(composite, 0, limit + 1);
    for (uint32_t i = 2; i * i <= limit; i++)
      if (!composite[i])
        for (uint32_t j = i * i; j <= limit; j += i) composite[j] = 1;
    uint32_t count = 0, sum = 0;
    for (uint32_t i = 2; i <= limit; i++)
      if (!composite[i]) {
        count++;
        sum += i;
      }
    h = kb_mix(kb_mix(h, count), sum);
  }
  return h;
}
