/*
 * matmul_i32.c — dense i32 matrix multiplication (i-k-j order), repeated with the
 * inputs perturbed between rounds.
 *
 * Exercises: i32 mul/add, i32 loads and stores with computed addresses in a triple
 * loop, loop-invariant address arithmetic. Natively clang vectorises the inner loop
 * with SSE2; wasm32 without SIMD cannot, which is part of what the ratio shows.
 */
#include "kernel.h"

#define N 128

static int32_t a[N][N], b[N][N], c[N][N];

uint32_t run(void) {
  uint32_t rounds = KB_SIZE(400u, 40u) * kb_one();
  uint32_t seed = 0x12345678u, h = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      a[i][j] = (int32_t)(kb_rand(&seed) % 201u) - 100;
      b[i][j] = (int32_t)(kb_rand(&seed) % 201u) - 100;
    }
  for (uint32_t r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++)
      for (int j = 0; j < N; j++) c[i][j] = 0;
    for (int i = 0; i < N; i++)
      for (int k = 0; k < N; k++) {
        int32_t aik = a[i][k];
        for (int j = 0; j < N; j++) c[i][j] += aik * b[k][j];
      }
    /* Fold the result in and feed part of it back, so each round multiplies new data. */
    for (int i = 0; i < N; i++)
      for (int j = 0; j < N; j++) h = kb_mix(h, (uint32_t)c[i][j]);
    a[r % N][(r * 7) % N] = (int32_t)(h % 201u) - 100;
  }
  return h;
}
