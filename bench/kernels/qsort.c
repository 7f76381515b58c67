/*
 * qsort.c — quicksort (median-of-three, insertion sort for short runs, recursion on
 * the smaller side) of a PRNG-filled array of u32, repeated on fresh data.
 *
 * Exercises: data-dependent, hard-to-predict branches, i32 loads/stores through
 * pointers, swaps, recursive calls with three arguments, and unsigned compares.
 */
#include "kernel.h"

#define COUNT 100000u

static uint32_t data[COUNT];

static void insertion_sort(uint32_t *v, int32_t n) {
  for (int32_t i = 1; i < n; i++) {
    uint32_t x = v[i];
    int32_t j = i - 1;
    while (j >= 0 && v[j] > x) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = x;
  }
}

static inline void swap(uint32_t *a, uint32_t *b) {
  uint32_t t = *a;
  *a = *b;
  *b = t;
}

static void quicksort(uint32_t *v, int32_t n) {
  while (n > 16) {
    int32_t mid = n / 2, last = n - 1;
    if (v[mid] < v[0]) swap(&v[mid], &v[0]);
    if (v[last] < v[0]) swap(&v[last], &v[0]);
    if (v[last] < v[mid]) swap(&v[last], &v[mid]);
    uint32_t pivot = v[mid];
    int32_t i = 0, j = last;
    for (;;) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i >= j) break;
      swap(&v[i], &v[j]);
      i++;
      j--;
    }
    /* Recurse on the smaller part and loop on the larger: the depth stays O(log n). */
    int32_t left = j + 1;
    if (left < n - left) {
      quicksort(v, left);
      v += left;
      n -= left;
    } else {
      quicksort(v + left, n - left);
      n = left;
    }
  }
  insertion_sort(v, n);
}

uint32_t run(void) {
  uint32_t rounds = KB_SIZE(40u, 4u) * kb_one();
  uint32_t seed = 0x2545f491u, h = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    /* Every fourth round sorts many duplicates, which is the case Hoare partitions must handle. */
    uint32_t mask = (r & 3) == 3 ? 0xffu : 0xffffffffu;
    for (uint32_t i = 0; i < COUNT; i++) data[i] = kb_rand(&seed) & mask;
    quicksort(data, (int32_t)COUNT);
    uint32_t sorted = 1;
    for (uint32_t i = 1; i < COUNT; i++) sorted &= data[i - 1] <= data[i];
    h = kb_mix(h, sorted);
    for (uint32_t i = 0; i < COUNT; i += 997) h = kb_mix(h, data[i]);
  }
  return h;
}
