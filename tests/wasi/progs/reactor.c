/*
 * reactor.c — a WASI reactor (built with -mexec-model=reactor): _initialize runs the
 * constructors, which read the environment; the embedder then calls `answer`.
 */
#include <stdlib.h>

static int base;

__attribute__((constructor)) static void init(void) {
  const char *b = getenv("BASE");
  base = b ? atoi(b) : 1;
}

__attribute__((export_name("answer"))) int answer(int x) { return base * x; }
