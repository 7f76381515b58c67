/*
 * kernel.h — what every benchmark kernel shares: the size switch, a PRNG, a checksum
 * mixer and the few memory helpers a program without libc needs.
 *
 * Each kernel is one freestanding C file that defines `uint32_t run(void)`: it does a
 * fixed amount of work and returns a checksum of its results, so that neither the
 * compiler nor an engine can skip the work, and so that bench/run can check that every
 * engine computed exactly what native code computed. The same source is compiled
 * natively (linked with bench/native_main.c) and to wasm32 without any libc, so nothing
 * here may include anything but <stdint.h> and <stddef.h>. Big data lives in static
 * arrays (linear memory on wasm); the wasm stack is wasm-ld's default 64 KiB, so no
 * kernel keeps more than a few hundred bytes on it.
 *
 * Built with -DQUICK, every kernel does about a tenth of the work (bench/run --quick,
 * the CTest smoke test, and slow reference interpreters such as wabt's wasm-interp).
 */
#ifndef TB_BENCH_KERNEL_H
#define TB_BENCH_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* KB_SIZE(full, quick): a repetition count or problem size for each mode. */
#ifdef QUICK
#define KB_SIZE(full, quick) (quick)
#else
#define KB_SIZE(full, quick) (full)
#endif

/*
 * A value the compiler cannot see through: read once at the start of run(), it stops
 * clang from evaluating a kernel, or part of one, at compile time. On wasm a volatile
 * load is an ordinary i32.load, so it costs every engine the same.
 */
static volatile uint32_t kb_opaque_one = 1;
static inline uint32_t kb_one(void) { return kb_opaque_one; }

/* xorshift32: small, fast, and the same on every engine (state must not be 0). */
static inline uint32_t kb_rand(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

/* Folds one value into a running checksum (murmur3's 32-bit step). */
static inline uint32_t kb_mix(uint32_t h, uint32_t v) {
  v *= 0xcc9e2d51u;
  v = (v << 15) | (v >> 17);
  v *= 0x1b873593u;
  h ^= v;
  h = (h << 13) | (h >> 19);
  return h * 5u + 0xe6546b64u;
}

/* The bits of a double, folded into 32, so results in f64 can be checksummed exactly. */
static inline uint32_t kb_f64_bits(double d) {
  union {
    double d;
    uint64_t u;
  } v = {d};
  return (uint32_t)v.u ^ (uint32_t)(v.u >> 32);
}

/*
 * Byte helpers written out, because there is no libc. The loops are simple enough that
 * clang may recognise them as memcpy/memset idioms; the kernels are compiled with
 * -ffreestanding -fno-builtin so it does not turn them into calls that nothing defines.
 */
static inline void kb_memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
}

static inline void kb_memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
}

static inline int kb_memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x < *y ? -1 : 1;
  return 0;
}

#ifdef __wasm__
/*
 * clang may still lower a large struct copy or initialiser to a call to memcpy or memset
 * even in freestanding mode; on wasm nothing else would define them, and the linker
 * drops these when nothing calls them. Natively libc provides them.
 */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n) {
  kb_memcpy(dst, src, n);
  return dst;
}
void *memset(void *dst, int c, size_t n) {
  kb_memset(dst, c, n);
  return dst;
}
#endif

/* The one entry point every kernel defines; bench/native_main.c and the engines call it. */
uint32_t run(void);

#endif
