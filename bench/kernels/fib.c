/*
 * fib.c — naive doubly recursive Fibonacci: almost nothing but calls and returns.
 *
 * Exercises: function call and return cost (frame setup, argument passing, the return
 * value), i32 compare-and-branch, a little arithmetic. In an interpreter this is the
 * kernel that shows what one call costs; natively a call is ~20 instructions.
 */
#include "kernel.h"

static uint32_t fib(uint32_t n) {
  if (n < 2) return n;
  return fib(n - 1) + fib(n - 2);
}

uint32_t run(void) {
  /* kb_one() keeps clang from folding fib(n) into a constant. */
  uint32_t n = KB_SIZE(38u, 33u) * kb_one();
  uint32_t h = 0;
  for (uint32_t i = 0; i < 3; i++) h = kb_mix(h, fib(n - i));
  return h;
}
