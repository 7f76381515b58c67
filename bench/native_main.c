/*
 * native_main.c — the native driver for one benchmark kernel: calls the kernel's
 * run() once and prints its checksum as an unsigned decimal, the way bench/run reads
 * every engine's answer. Linked with one kernel object compiled from bench/kernels/.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

uint32_t run(void);

int main(void) {
  printf("%" PRIu32 "\n", run());
  return 0;
}
