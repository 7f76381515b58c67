/*
 * alloc.c — thin wrappers over the C allocator with a failure-injection hook.
 *
 * The hook is a thread-local countdown checked before each allocation; with injection
 * off it costs one predictable branch, which is why it lives here and not behind a
 * build flag: the code tests exercise is the code that ships.
 */
#include "tb/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local long fail_countdown = -1;
static _Thread_local unsigned long alloc_calls;

void tb_alloc_fail_after(long n) { fail_countdown = n < 0 ? -1 : n; }

unsigned long tb_alloc_count(void) { return alloc_calls; }

/* True when this allocation must fail. */
static int injected_failure(void) {
  alloc_calls++;
  if (fail_countdown < 0) return 0;
  if (fail_countdown == 0) return 1;
  fail_countdown--;
  return 0;
}

void *tb_malloc(size_t n) {
  if (injected_failure()) return NULL;
  return malloc(n ? n : 1);
}

void *tb_calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  if (injected_failure()) return NULL;
  return calloc(count ? count : 1, size ? size : 1);
}

void *tb_realloc(void *p, size_t n) {
  if (injected_failure()) return NULL;
  return realloc(p, n ? n : 1);
}

void *tb_reallocarray(void *p, size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size) return NULL;
  return tb_realloc(p, count * size);
}

void tb_free(void *p) { free(p); }

char *tb_strndup(const char *p, size_t n) {
  if (n == SIZE_MAX) return NULL;
  char *s = tb_malloc(n + 1);
  if (s == NULL) return NULL;
  if (n) memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

char *tb_strdup(const char *s) { return tb_strndup(s, strlen(s)); }
