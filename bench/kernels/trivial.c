/*
 * trivial.c — the smallest module clang makes: run() returns a constant.
 *
 * Not a benchmark kernel. bench/startup times whole processes that decode, validate,
 * instantiate and run it (what a user waits for before any guest code of substance
 * runs), and bench/run subtracts each engine's time and instruction count for it from
 * the kernels' figures, so the ratios compare execution, not process start-up.
 */
#include "kernel.h"

uint32_t run(void) { return 42; }
