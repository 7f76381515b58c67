/*
 * micro.c — the native twins of fib.wat and loop.wat, for bench/micro/run.
 * `noinline` and `volatile` keep clang from folding the work away.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) static uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) static uint32_t loop(uint32_t n) {
  uint32_t s = 0;
  for (uint32_t i = 0; i < n; i++) s = s * 1103515245u + i;
  return s;
}

int main(int argc, char **argv) {
  volatile uint32_t n30 = 30, n10m = 10000000;
  if (argc > 1 && strcmp(argv[1], "fib") == 0) printf("%u\n", fib(n30));
  else if (argc > 1 && strcmp(argv[1], "loop") == 0) printf("%u\n", loop(n10m));
  else printf("42\n");
  return 0;
}
