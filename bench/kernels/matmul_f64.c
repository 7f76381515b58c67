/*
 * matmul_f64.c — dense f64 matrix multiplication (i-k-j order), repeated with the
 * inputs perturbed between rounds.
 *
 * Exercises: f64 mul/add, f64 loads and stores with computed addresses, i32 -> f64
 * conversion when filling the inputs. The checksum takes the exact bits of every
 * element, so it also checks that each engine rounds exactly as IEEE 754 says.
 */
#include "kernel.h"

#define N 128

static double a[N][N], b[N][N], c[N][N];

uint32_t run(void) {
  uint32_t rounds = KB_SIZE(360u, 36u) * kb_one();
  uint32_t seed = 0x9e3779b9u, h = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      a[i][j] = (double)(int32_t)(kb_rand(&seed) % 2001u - 1000u) / 64.0;
      b[i][j] = (double)(int32_t)(kb_rand(&seed) % 2001u - 1000u) / 128.0;
    }
  for (uint32_t r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++)
      for (int j = 0; j < N; j++) c[i][j] = 0.0;
    for (int i = 0; i < N; i++)
      for (int k = 0; k < N; k++) {
        double aik = a[i][k];
        for (int j = 0; j < N; j++) c[i][j] += aik * b[k][j];
      }
    for (int i = 0; i < N; i++)
      for (int j = 0; j < N; j++) h = kb_mix(h, kb_f64_bits(c[i][j]));
    a[r % N][(r * 7) % N] = (double)(int32_t)(h % 2001u - 1000u) / 64.0;
  }
  return h;
}
